//! The desktop pointed at a team server. `OPSLENS_SERVER_URL` and `OPSLENS_SERVER_TOKEN` are
//! read like every other OpsLens key (the environment, then the OS keychain — `opslens secrets
//! set OPSLENS_SERVER_TOKEN` or Settings put them there —, then `secrets.env`). With both set,
//! the window shows the team server's own UI (signed in with the team token, injected on that
//! origin only), and captures go to the team server through the local spool
//! ([`opslens_core::uplink`]); the window title and the tray say how many wait.
//!
//! Why the window loads the team server's UI rather than the local server proxying the team's
//! API: the team's UI and API then always match (the team server serves both), the change feed
//! comes straight from the team server (a proxy would have to relay server-sent events and
//! hold a second copy of the team token in a second process), and the token stays confined to
//! one origin the navigation guard already enforces. The local server keeps running for what
//! only the laptop can do: the screen, the spool, the local model, the CLI.

use std::path::Path;
use std::sync::Arc;

use opslens_core::uplink::{TeamConfig, TeamStatus, Uplink};
use opslens_integrations::secrets::{self, KeyStore, OsKeychain};

/// The team server link the settings describe: `None` when no URL is set; an error naming
/// what is wrong when the URL is unusable or the token missing.
pub fn link(data_dir: &Path) -> Result<Option<Arc<Uplink>>, String> {
    let kc = OsKeychain::from_env();
    let r = secrets::resolve(data_dir, true, kc.as_ref().map(|k| k as &dyn KeyStore));
    let get = |k: &str| r.values.get(k).map(|(v, _)| v.expose().trim().to_string());
    let Some(url) = get("OPSLENS_SERVER_URL").filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let Some(token) = get("OPSLENS_SERVER_TOKEN").filter(|t| !t.is_empty()) else {
        return Err(format!(
            "OPSLENS_SERVER_URL is {url} but no OPSLENS_SERVER_TOKEN is set: set it \
             (`opslens secrets set OPSLENS_SERVER_TOKEN`, or in Settings) or unset the URL"
        ));
    };
    let cfg = TeamConfig::new(&url, &token, data_dir).map_err(|e| e.to_string())?;
    Uplink::open(cfg).map(Some).map_err(|e| e.to_string())
}

/// The window title for a status: the server and, when any wait, how many captures do.
pub fn title(s: &TeamStatus) -> String {
    let server = s.server_url.as_deref().unwrap_or("team server");
    let mut t = format!("OpsLens — team {server}");
    match (s.waiting, s.reachable) {
        (0, Some(false)) => t.push_str(" (unreachable)"),
        (0, _) => {}
        (1, _) => t.push_str(" — 1 capture waiting to upload"),
        (n, _) => t.push_str(&format!(" — {n} captures waiting to upload")),
    }
    if s.failed > 0 {
        t.push_str(&format!(
            " — {} refused (see the spool's failed/)",
            s.failed
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_counts_waiting_captures() {
        let mut s = TeamStatus {
            configured: true,
            server_url: Some("https://ops.example.com".into()),
            ..TeamStatus::default()
        };
        assert_eq!(title(&s), "OpsLens — team https://ops.example.com");
        s.waiting = 3;
        s.reachable = Some(false);
        assert!(title(&s).ends_with("3 captures waiting to upload"));
        s.waiting = 0;
        assert!(title(&s).ends_with("(unreachable)"));
    }
}
