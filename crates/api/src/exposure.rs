//! How a server that others can reach is told apart from a laptop's loopback server, and what
//! it needs then (issue 17, "leaving loopback safely"):
//! - the public URL clients use, so the Host and Origin guards accept that name and no other
//!   (a reverse proxy or a DNS name in front must not turn into a DNS-rebinding hole);
//! - the reverse proxies allowed to connect, whose `X-Forwarded-For` / `X-Forwarded-Proto`
//!   are believed (from anyone else those headers are a client's claim, so ignored);
//! - a limit on authentication failures, per client address and per token, so guessing tokens
//!   or hammering with a revoked one costs the caller time and the server nothing
//!   (no database lookup while the caller is held back).
//!
//! TLS itself (certificate loading, the listener) is in [`crate::tls`].

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Uri};

use crate::fallback::JsonErrorListener;

/// What a server reachable beyond loopback is configured with. The default (nothing set) is
/// the laptop's loopback server as before.
#[derive(Debug, Clone, Default)]
pub struct Exposure {
    /// The URL clients use (`--public-url`); its host is accepted in `Host`, its origin in
    /// `Origin`, beside the loopback names.
    pub public_url: Option<PublicUrl>,
    /// Addresses of the reverse proxies allowed to connect (`--behind-proxy`); when set, no
    /// one else may connect, and their forwarded headers are trusted.
    pub trusted_proxies: Vec<IpAddr>,
    /// Serve HTTPS with this configuration (`--tls-cert`/`--tls-key`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The authentication failure limit of a server others can reach.
    pub auth_limit: AuthLimit,
}

impl Exposure {
    /// Whether a server bound to `bind` with this configuration is meant for more than this
    /// machine: a non-loopback address, a proxy in front or a public name. Only such a server
    /// limits authentication failures; on a loopback-only server the only callers are the
    /// user's own programs.
    pub fn reachable(&self, bind: IpAddr) -> bool {
        !bind.is_loopback() || !self.trusted_proxies.is_empty() || self.public_url.is_some()
    }

    /// Why a server bound to `bind` must not start with this configuration, in one line, or
    /// `None` when it may. Off loopback, plain HTTP is only allowed behind a named proxy (the
    /// token would otherwise cross the network in clear), and the public URL is needed for the
    /// Host/Origin guards to accept anything but loopback names.
    pub fn refusal(&self, bind: SocketAddr) -> Option<String> {
        if bind.ip().is_loopback() {
            return None;
        }
        if self.tls.is_none() && self.trusted_proxies.is_empty() {
            return Some(format!(
                "refusing to listen on {bind} without TLS: off loopback OpsLens needs \
                 --tls-cert FILE --tls-key FILE, or --behind-proxy ADDR naming the reverse \
                 proxy that terminates TLS"
            ));
        }
        if self.public_url.is_none() {
            return Some(format!(
                "refusing to listen on {bind} without --public-url: name the URL clients use \
                 (e.g. https://opslens.example.com) so the Host and Origin checks can accept it"
            ));
        }
        None
    }
}

/// The public URL, reduced to what the guards compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// `scheme://host[:port]`, lowercased, the port only when not the scheme's default:
    /// exactly what a browser sends as `Origin`.
    pub origin: String,
    /// `Host` header values that name it: `host:port`, and `host` alone on the default port.
    pub hosts: Vec<String>,
    /// Whether the public URL is HTTPS.
    pub https: bool,
}

impl PublicUrl {
    /// Parses `https://opslens.example.com[:port][/]`; a path, query or credentials are
    /// refused (the API lives at the root of its origin).
    pub fn parse(s: &str) -> Result<PublicUrl, String> {
        let bad = |why: &str| format!("--public-url {s:?}: {why}");
        let uri: Uri = s
            .trim()
            .parse()
            .map_err(|_| bad("not a URL like https://opslens.example.com"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("the scheme must be https:// (or http://)")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| bad("no host in it"))?
            .as_str();
        if authority.contains('@') {
            return Err(bad("credentials do not belong in it"));
        }
        if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
            return Err(bad(
                "OpsLens serves from the root of its origin; drop the path",
            ));
        }
        let host = uri
            .host()
            .ok_or_else(|| bad("no host in it"))?
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(bad("no host in it"));
        }
        let default = if https { 443 } else { 80 };
        let port = uri.port_u16().unwrap_or(default);
        let scheme = if https { "https" } else { "http" };
        let (origin, hosts) = if port == default {
            (
                format!("{scheme}://{host}"),
                vec![host.clone(), format!("{host}:{port}")],
            )
        } else {
            (
                format!("{scheme}://{host}:{port}"),
                vec![format!("{host}:{port}")],
            )
        };
        Ok(PublicUrl {
            origin,
            hosts,
            https,
        })
    }

    /// The host name alone (for the MCP endpoint's own Host check).
    pub fn host(&self) -> &str {
        let rest = self.origin.split("://").nth(1).unwrap_or_default();
        match rest.rfind(':') {
            // `[::1]:8443` or `name:8443`; a bare `[::1]` has no port after its bracket.
            Some(i) if !rest[i..].contains(']') => &rest[..i],
            _ => rest,
        }
    }
}

/// At most `failures` authentication failures per `window` and per client (or token); past
/// that, 429 until the oldest of them is older than the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthLimit {
    /// Failures allowed within the window; 0 turns the limit off.
    pub failures: u32,
    /// The sliding window.
    pub window: Duration,
}

impl Default for AuthLimit {
    /// 20 a minute: room for a page or a script retrying a few times with a stale token,
    /// nothing for guessing.
    fn default() -> Self {
        AuthLimit {
            failures: 20,
            window: Duration::from_secs(60),
        }
    }
}

/// Who a failure is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum LimitKey {
    /// A client address: missing, unknown or revoked tokens (IPv6 per /64, which one host
    /// holds as a whole).
    Peer(IpAddr),
    /// A person's token that is known but refused what it asked (a viewer writing).
    User(i64),
}

impl LimitKey {
    /// The key of a client address.
    pub(crate) fn peer(ip: IpAddr) -> LimitKey {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let s = v6.segments();
                LimitKey::Peer(IpAddr::V6(Ipv6Addr::new(
                    s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                )))
            }
            v4 => LimitKey::Peer(v4),
        }
    }
}

/// Keys tracked before stale ones are dropped, so a flood from many addresses cannot grow
/// memory without bound.
const MAX_KEYS: usize = 50_000;

/// The failure counts behind [`AuthLimit`], shared by every request of one server.
#[derive(Debug, Clone)]
pub(crate) struct Limiter {
    limit: AuthLimit,
    failures: Arc<Mutex<HashMap<LimitKey, VecDeque<Instant>>>>,
}

impl Limiter {
    /// A limiter applying `limit` (off when `failures` is 0).
    pub(crate) fn new(limit: AuthLimit) -> Self {
        Limiter {
            limit,
            failures: Arc::default(),
        }
    }

    fn on(&self) -> bool {
        self.limit.failures > 0
    }

    /// Seconds to wait when `key` is held back now, else `None`.
    pub(crate) fn blocked(&self, key: LimitKey) -> Option<u32> {
        if !self.on() {
            return None;
        }
        let now = Instant::now();
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let times = map.get(&key)?;
        self.wait(times, now)
    }

    /// Counts one failure of `key`.
    pub(crate) fn fail(&self, key: LimitKey) {
        if !self.on() {
            return;
        }
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS && !map.contains_key(&key) {
            let window = self.limit.window;
            map.retain(|_, t| t.back().is_some_and(|l| now.duration_since(*l) < window));
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        let times = map.entry(key).or_default();
        times.push_back(now);
        while times.len() > self.limit.failures as usize {
            times.pop_front();
        }
    }

    /// Seconds until the oldest of the last `failures` failures leaves the window, when all of
    /// them are within it.
    fn wait(&self, times: &VecDeque<Instant>, now: Instant) -> Option<u32> {
        if times.len() < self.limit.failures as usize {
            return None;
        }
        let oldest = *times.front()?;
        let left = self.limit.window.checked_sub(now.duration_since(oldest))?;
        // Round up: a client waiting the advertised seconds is let in.
        let secs = left.as_millis().div_ceil(1000).max(1);
        Some(u32::try_from(secs).unwrap_or(u32::MAX))
    }
}

/// The connection's far end, as the guards read it (`ConnectInfo<PeerAddr>`), whatever the
/// listener (plain TCP or TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl<L>
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, JsonErrorListener<L>>>
    for PeerAddr
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, JsonErrorListener<L>>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// Who is on the other end of a request, as far as this server may believe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Client {
    /// The client's address: the connection's peer, or behind a trusted proxy the address the
    /// proxy forwarded.
    pub ip: IpAddr,
    /// Whether the client reached us over HTTPS (our TLS, or the trusted proxy's).
    pub https: bool,
}

/// The client of a request from `peer`, reading the forwarded headers only when `peer` is one
/// of `trusted` proxies. `X-Forwarded-For` is read from the right: each proxy appends the
/// address it saw, so the first entry from the right that is not a trusted proxy is the
/// client; entries left of it could be anything the client wrote.
pub(crate) fn client_of(
    peer: IpAddr,
    tls: bool,
    headers: &HeaderMap,
    trusted: &[IpAddr],
) -> Client {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
    if !is_trusted(&peer) {
        return Client {
            ip: peer,
            https: tls,
        };
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut ip = peer;
    for entry in forwarded.iter().rev() {
        let Some(found) = parse_forwarded_ip(entry) else {
            break;
        };
        ip = found;
        if !is_trusted(&found) {
            break;
        }
    }
    let https = headers
        .get_all("x-forwarded-proto")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .next_back()
        .map_or(tls, |p| p.eq_ignore_ascii_case("https"));
    Client { ip, https }
}

/// An address as proxies write it: `203.0.113.5`, `2001:db8::1`, `[2001:db8::1]:4711` or
/// `203.0.113.5:4711`.
fn parse_forwarded_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn public_url_names_its_host_and_origin() {
        let u = PublicUrl::parse("https://OpsLens.Example.com/").unwrap();
        assert_eq!(u.origin, "https://opslens.example.com");
        assert_eq!(u.hosts, ["opslens.example.com", "opslens.example.com:443"]);
        assert_eq!(u.host(), "opslens.example.com");
        let u = PublicUrl::parse("https://10.0.0.5:8443").unwrap();
        assert_eq!(u.origin, "https://10.0.0.5:8443");
        assert_eq!(u.hosts, ["10.0.0.5:8443"]);
        assert_eq!(u.host(), "10.0.0.5");
        let u = PublicUrl::parse("http://[2001:db8::1]:8000").unwrap();
        assert_eq!(u.host(), "[2001:db8::1]");
        for bad in [
            "opslens.example.com",
            "ftp://x",
            "https://x/opslens",
            "https://u:p@x",
            "https://x/?a=1",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn leaving_loopback_needs_tls_or_a_proxy_and_a_public_url() {
        let plain = Exposure::default();
        assert!(plain.refusal("127.0.0.1:8000".parse().unwrap()).is_none());
        assert!(plain.refusal("[::1]:8000".parse().unwrap()).is_none());
        let why = plain.refusal("0.0.0.0:8443".parse().unwrap()).unwrap();
        assert!(
            why.contains("--tls-cert") && why.contains("--behind-proxy"),
            "{why}"
        );
        let proxied = Exposure {
            trusted_proxies: vec!["10.0.0.2".parse().unwrap()],
            ..Exposure::default()
        };
        let why = proxied.refusal("0.0.0.0:8443".parse().unwrap()).unwrap();
        assert!(why.contains("--public-url"), "{why}");
        let named = Exposure {
            public_url: Some(PublicUrl::parse("https://ops.example.com").unwrap()),
            ..proxied
        };
        assert!(named.refusal("0.0.0.0:8443".parse().unwrap()).is_none());
        assert!(!plain.reachable("127.0.0.1".parse().unwrap()));
        assert!(named.reachable("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 203.0.113.7"),
        );
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            client_of(stranger, false, &h, &[proxy]),
            Client {
                ip: stranger,
                https: false
            }
        );
        // the rightmost entry a trusted proxy did not write is the client; 1.2.3.4 was the
        // client's own claim
        assert_eq!(
            client_of(proxy, false, &h, &[proxy]),
            Client {
                ip: "203.0.113.7".parse().unwrap(),
                https: true
            }
        );
        // a chain of trusted proxies is walked through; a mapped IPv4 peer is the same proxy
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 10.0.0.2"),
        );
        let mapped: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        assert_eq!(
            client_of(mapped, false, &h, &[proxy]).ip,
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn failures_past_the_limit_hold_the_key_back_until_the_window_passes() {
        let l = Limiter::new(AuthLimit {
            failures: 3,
            window: Duration::from_millis(300),
        });
        let a = LimitKey::peer("203.0.113.1".parse().unwrap());
        let b = LimitKey::peer("203.0.113.2".parse().unwrap());
        for _ in 0..2 {
            l.fail(a);
            assert_eq!(l.blocked(a), None);
        }
        l.fail(a);
        assert_eq!(l.blocked(a), Some(1));
        assert_eq!(l.blocked(b), None, "another client is not held back");
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(l.blocked(a), None);
        // one /64 is one client
        let v6a = LimitKey::peer("2001:db8::1".parse().unwrap());
        let v6b = LimitKey::peer("2001:db8::ffff".parse().unwrap());
        assert_eq!(v6a, v6b);
        let off = Limiter::new(AuthLimit {
            failures: 0,
            window: Duration::from_secs(60),
        });
        for _ in 0..100 {
            off.fail(a);
        }
        assert_eq!(off.blocked(a), None);
    }
}
