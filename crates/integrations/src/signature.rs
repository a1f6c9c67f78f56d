//! Webhook signatures: verifying what GitHub, Slack, PagerDuty v3, Grafana and Standard
//! Webhooks senders sign, and signing OpsLens's own outgoing webhooks (Standard Webhooks).
//!
//! Every check runs over the raw body bytes (re-serialised JSON breaks signatures) and compares
//! with `Mac::verify_slice`, which is constant time, so the answer time says nothing about how
//! many bytes of a forged signature matched (integrations.md §6.3, security.md §6).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Largest clock skew accepted where the sender signs a timestamp (Slack, Standard Webhooks).
pub const MAX_SKEW_SECS: i64 = 300;

/// Why a delivery was refused. Callers answer 400 for [`SigError::Missing`]/[`SigError::Malformed`]
/// and 401 for the rest; the variants never include the secret or the expected value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigError {
    /// A required header is absent.
    #[error("missing header {0}")]
    Missing(&'static str),
    /// A header is present but not in the documented format.
    #[error("malformed header {0}")]
    Malformed(&'static str),
    /// No signature matches the body.
    #[error("signature does not match the body")]
    Mismatch,
    /// The signed timestamp is too far from now (replay protection).
    #[error("timestamp is {0} s away from now (more than {MAX_SKEW_SECS} s)")]
    Stale(i64),
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    HmacSha256::new_from_slice(key).expect("HMAC takes any key length")
}

/// Constant-time check of `expected_hex` (lowercase or uppercase hex) against HMAC(key, parts).
fn verify_hex(key: &[u8], parts: &[&[u8]], sig_hex: &str) -> bool {
    let Ok(sig) = hex::decode(sig_hex.trim()) else {
        return false;
    };
    let mut m = mac(key);
    for p in parts {
        m.update(p);
    }
    m.verify_slice(&sig).is_ok()
}

/// Lowercase hex HMAC-SHA256 of `parts` under `key`; for tests and fakes that sign deliveries.
pub fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut m = mac(key);
    for p in parts {
        m.update(p);
    }
    hex::encode(m.finalize().into_bytes())
}

/// GitHub: `X-Hub-Signature-256: sha256=<hex>` over the raw body. The legacy SHA-1 header is
/// ignored on purpose (weaker, and GitHub always sends both).
pub fn verify_github(secret: &str, header: Option<&str>, body: &[u8]) -> Result<(), SigError> {
    const H: &str = "X-Hub-Signature-256";
    let h = header.ok_or(SigError::Missing(H))?;
    let hex_sig = h
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SigError::Malformed(H))?;
    if verify_hex(secret.as_bytes(), &[body], hex_sig) {
        Ok(())
    } else {
        Err(SigError::Mismatch)
    }
}

/// PagerDuty Webhooks v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`, one per active secret
/// during rotation; any match is enough. There is no signed timestamp, so replay protection is
/// the delivery-id dedup the caller does.
pub fn verify_pagerduty(secret: &str, header: Option<&str>, body: &[u8]) -> Result<(), SigError> {
    const H: &str = "X-PagerDuty-Signature";
    let h = header.ok_or(SigError::Missing(H))?;
    let mut any = false;
    let mut ok = false;
    for part in h.split(',') {
        if let Some(sig) = part.trim().strip_prefix("v1=") {
            any = true;
            // No early exit: every candidate is checked so timing does not reveal which matched.
            ok |= verify_hex(secret.as_bytes(), &[body], sig);
        }
    }
    match (any, ok) {
        (false, _) => Err(SigError::Malformed(H)),
        (true, true) => Ok(()),
        (true, false) => Err(SigError::Mismatch),
    }
}

fn check_skew(ts: i64, now: i64) -> Result<(), SigError> {
    let skew = (now - ts).abs();
    if skew > MAX_SKEW_SECS {
        Err(SigError::Stale(skew))
    } else {
        Ok(())
    }
}

/// Slack: `X-Slack-Signature: v0=<hex>` of `v0:{timestamp}:{body}`, with
/// `X-Slack-Request-Timestamp` within 5 minutes of `now` (unix seconds).
pub fn verify_slack(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SigError> {
    const TS: &str = "X-Slack-Request-Timestamp";
    const SIG: &str = "X-Slack-Signature";
    let ts_s = timestamp.ok_or(SigError::Missing(TS))?.trim();
    let ts: i64 = ts_s.parse().map_err(|_| SigError::Malformed(TS))?;
    let sig = signature
        .ok_or(SigError::Missing(SIG))?
        .trim()
        .strip_prefix("v0=")
        .ok_or(SigError::Malformed(SIG))?;
    check_skew(ts, now)?;
    if verify_hex(
        secret.as_bytes(),
        &[b"v0:", ts_s.as_bytes(), b":", body],
        sig,
    ) {
        Ok(())
    } else {
        Err(SigError::Mismatch)
    }
}

/// Grafana 12+ alerting webhooks (optional HMAC): bare hex HMAC of the body, or of
/// `{timestamp}:{body}` when the sender is configured with a timestamp header.
pub fn verify_grafana(
    secret: &str,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SigError> {
    const SIG: &str = "X-Grafana-Alerting-Signature";
    let sig = signature.ok_or(SigError::Missing(SIG))?;
    let ok = match timestamp {
        Some(ts_s) => {
            let ts: i64 = ts_s
                .trim()
                .parse()
                .map_err(|_| SigError::Malformed("X-Grafana-Alerting-Timestamp"))?;
            check_skew(ts, now)?;
            verify_hex(
                secret.as_bytes(),
                &[ts_s.trim().as_bytes(), b":", body],
                sig,
            )
        }
        None => verify_hex(secret.as_bytes(), &[body], sig),
    };
    if ok {
        Ok(())
    } else {
        Err(SigError::Mismatch)
    }
}

/// The key of a Standard Webhooks secret: the base64 bytes after `whsec_` (a bare base64
/// string is accepted too). `None` when it does not decode.
pub fn standard_key(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    B64.decode(b64.trim()).ok()
}

/// Standard Webhooks signature (`v1,<base64>`) of `{id}.{timestamp}.{body}`; what OpsLens sends
/// in `webhook-signature` so receivers can use stock verifiers.
pub fn sign_standard(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut m = mac(key);
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    format!("v1,{}", B64.encode(m.finalize().into_bytes()))
}

/// Verifies Standard Webhooks headers: `webhook-signature` is a space-separated list of
/// `v1,<base64>` (rotation), any of which may match; the timestamp must be within 5 minutes.
pub fn verify_standard(
    key: &[u8],
    msg_id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SigError> {
    let id = msg_id.ok_or(SigError::Missing("webhook-id"))?;
    let ts_s = timestamp
        .ok_or(SigError::Missing("webhook-timestamp"))?
        .trim();
    let ts: i64 = ts_s
        .parse()
        .map_err(|_| SigError::Malformed("webhook-timestamp"))?;
    let sigs = signature.ok_or(SigError::Missing("webhook-signature"))?;
    check_skew(ts, now)?;
    let mut ok = false;
    for s in sigs.split(' ') {
        let Some(b64) = s.strip_prefix("v1,") else {
            continue; // other schemes (v1a) are not ours to check
        };
        let Ok(sig) = B64.decode(b64) else { continue };
        let mut m = mac(key);
        m.update(id.as_bytes());
        m.update(b".");
        m.update(ts_s.as_bytes());
        m.update(b".");
        m.update(body);
        ok |= m.verify_slice(&sig).is_ok();
    }
    if ok {
        Ok(())
    } else {
        Err(SigError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer vectors from integrations.md; each one is also checked with a one-byte change.

    #[test]
    fn github_published_vector() {
        let secret = "It's a Secret to Everybody";
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(verify_github(secret, Some(sig), b"Hello, World!"), Ok(()));
        assert_eq!(
            verify_github(secret, Some(sig), b"Hello, World?"),
            Err(SigError::Mismatch)
        );
        assert_eq!(
            verify_github(secret, None, b"Hello, World!"),
            Err(SigError::Missing("X-Hub-Signature-256"))
        );
        assert!(matches!(
            verify_github(secret, Some("sha1=abc"), b"Hello, World!"),
            Err(SigError::Malformed(_))
        ));
        assert_eq!(
            format!(
                "sha256={}",
                hmac_hex(secret.as_bytes(), &[b"Hello, World!"])
            ),
            sig
        );
    }

    const PD_BODY: &str = r#"{"event":{"id":"5ac64822-4adc-4fda-ade0-410becf0de4f","event_type":"incident.triggered","resource_type":"incident","occurred_at":"2020-10-02T18:45:22.169Z","agent":null,"client":null,"data":{"id":"PGR0VU2","type":"incident","status":"triggered","title":"A little bump in the road"}}}"#;

    #[test]
    fn pagerduty_vector_and_rotation() {
        let s = "opslens-pd-test-secret";
        let one = "v1=c84a036e25f7b609647cf2985bf43b594206c8f3c78d2504d8a5b1c489b4f86f";
        assert_eq!(verify_pagerduty(s, Some(one), PD_BODY.as_bytes()), Ok(()));
        let two = "v1=e5e9e10d5ea7c933e0025d3ea673943bfab614470054f7260b2ca6696a7ec308,v1=c84a036e25f7b609647cf2985bf43b594206c8f3c78d2504d8a5b1c489b4f86f";
        // Only the second signature is valid for this secret: still accepted.
        assert_eq!(verify_pagerduty(s, Some(two), PD_BODY.as_bytes()), Ok(()));
        // The old secret matches the first one.
        assert_eq!(
            verify_pagerduty("opslens-pd-old-secret", Some(two), PD_BODY.as_bytes()),
            Ok(())
        );
        let mut tampered = PD_BODY.as_bytes().to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            verify_pagerduty(s, Some(two), &tampered),
            Err(SigError::Mismatch)
        );
        assert!(matches!(
            verify_pagerduty(s, Some("sha256=00"), PD_BODY.as_bytes()),
            Err(SigError::Malformed(_))
        ));
    }

    const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

    #[test]
    fn slack_published_vector_and_replay_window() {
        let s = "8f742231b10e8888abcd99yyyzzz85a5";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        let ts = 1531420618;
        let b = SLACK_BODY.as_bytes();
        assert_eq!(
            verify_slack(s, Some("1531420618"), Some(sig), b, ts + 299),
            Ok(())
        );
        assert_eq!(
            verify_slack(s, Some("1531420618"), Some(sig), b, ts + 301),
            Err(SigError::Stale(301))
        );
        let mut t = b.to_vec();
        t[0] ^= 1;
        assert_eq!(
            verify_slack(s, Some("1531420618"), Some(sig), &t, ts),
            Err(SigError::Mismatch)
        );
    }

    #[test]
    fn standard_webhooks_published_vector() {
        let key = standard_key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(key.len(), 24);
        let id = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
        let ts = 1649367553;
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let good = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
        assert_eq!(sign_standard(&key, id, ts, body), good);
        let t = Some("1649367553");
        assert_eq!(
            verify_standard(&key, Some(id), t, Some(good), body, ts),
            Ok(())
        );
        let bad = "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=";
        assert_eq!(
            verify_standard(&key, Some(id), t, Some(bad), body, ts),
            Err(SigError::Mismatch)
        );
        // Rotation: a list where only the second one matches.
        let both = format!("{bad} {good}");
        assert_eq!(
            verify_standard(&key, Some(id), t, Some(&both), body, ts),
            Ok(())
        );
        assert_eq!(
            verify_standard(&key, Some(id), t, Some(good), body, ts + 301),
            Err(SigError::Stale(301))
        );
        let mut tb = body.to_vec();
        tb[3] ^= 1;
        assert_eq!(
            verify_standard(&key, Some(id), t, Some(good), &tb, ts),
            Err(SigError::Mismatch)
        );
    }

    #[test]
    fn grafana_bare_hex_with_and_without_timestamp() {
        let s = "g-secret";
        let body = br#"{"status":"firing"}"#;
        let plain = hmac_hex(s.as_bytes(), &[body]);
        assert_eq!(verify_grafana(s, Some(&plain), None, body, 0), Ok(()));
        let with_ts = hmac_hex(s.as_bytes(), &[b"1700000000:", body]);
        assert_eq!(
            verify_grafana(s, Some(&with_ts), Some("1700000000"), body, 1700000100),
            Ok(())
        );
        assert_eq!(
            verify_grafana(s, Some(&with_ts), Some("1700000000"), body, 1700000301),
            Err(SigError::Stale(301))
        );
        assert_eq!(
            verify_grafana(s, Some(&plain), None, b"{\"status\":\"firinG\"}", 0),
            Err(SigError::Mismatch)
        );
    }
}
