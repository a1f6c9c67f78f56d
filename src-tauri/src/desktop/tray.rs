//! The tray icon: shows the active incident (the one captures go to) and offers "Capture
//! screen", "Capture region…", "Open" and "Quit". Desktops without a tray (or Xvfb) just do not show it; the app
//! works the same.

use std::time::Duration;

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, Wry};

use super::Desktop;

/// How often the tray re-reads the active incident when the change feed is quiet.
const REFRESH: Duration = Duration::from_secs(60);

struct Tray {
    icon: TrayIcon<Wry>,
    active: MenuItem<Wry>,
}

/// Creates the tray icon and its refresher; logs and carries on when the desktop has no tray.
pub fn install(app: &AppHandle<Wry>) {
    match build(app) {
        Ok(tray) => {
            app.manage(tray);
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                // Follows the change feed: whatever changes incidents (a capture, the UI, the
                // API, a sync) updates the tray, without the capture paths knowing the tray.
                let mut changes = app
                    .try_state::<Desktop>()
                    .map(|d| d.services.feed.subscribe());
                // Pointed at a team server: the spool's count changes the tray too.
                let mut team = app
                    .try_state::<Desktop>()
                    .and_then(|d| d.uplink.as_ref().map(|u| u.subscribe()));
                loop {
                    refresh(&app).await;
                    let feed = async {
                        match changes.as_mut() {
                            Some(rx) => {
                                let _ = rx.recv().await;
                            }
                            None => std::future::pending().await,
                        }
                    };
                    let spool = async {
                        match team.as_mut() {
                            Some(rx) => {
                                if rx.changed().await.is_err() {
                                    std::future::pending::<()>().await;
                                }
                            }
                            None => std::future::pending().await,
                        }
                    };
                    let _ = tokio::time::timeout(REFRESH, async {
                        tokio::select! {
                            () = feed => {}
                            () = spool => {}
                        }
                    })
                    .await;
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "no tray icon"),
    }
}

fn build(app: &AppHandle<Wry>) -> tauri::Result<Tray> {
    let active = MenuItem::with_id(app, "active", "No active incident", false, None::<&str>)?;
    let capture = MenuItem::with_id(app, "capture", "Capture screen", true, None::<&str>)?;
    let region = MenuItem::with_id(app, "region", "Capture region…", true, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let sep = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&active, &sep, &capture, &region, &open, &quit])?;
    let mut builder = TrayIconBuilder::with_id("opslens")
        .menu(&menu)
        .tooltip("OpsLens")
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "capture" => super::capture::from_shortcut(app),
            "region" => super::region::start(app),
            "open" => super::show_main(app),
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    let icon = builder.build(app)?;
    Ok(Tray { icon, active })
}

/// Re-reads the active incident into the menu and tooltip.
pub async fn refresh(app: &AppHandle<Wry>) {
    let (Some(d), Some(t)) = (app.try_state::<Desktop>(), app.try_state::<Tray>()) else {
        return;
    };
    if let Some(up) = &d.uplink {
        // The incidents are the team server's (the window shows them); the tray says where
        // captures go and how many wait.
        let s = up.status();
        let text = match s.waiting {
            0 if s.reachable == Some(false) => "Team server unreachable".to_string(),
            0 => "Captures go to the team server".to_string(),
            1 => "1 capture waiting to upload".to_string(),
            n => format!("{n} captures waiting to upload"),
        };
        let _ = t.active.set_text(&text);
        let _ = t
            .icon
            .set_tooltip(Some(format!("OpsLens — team {}\n{text}", up.server_url())));
        return;
    }
    let text = match d.services.incidents.active().await {
        Ok(Some(i)) => format!("Active: #{} {}", i.id, ellipsize(&i.title, 48)),
        Ok(None) => "No open incident (a capture opens one)".to_string(),
        Err(e) => {
            tracing::warn!(error = %e, "tray: cannot read the active incident");
            return;
        }
    };
    let _ = t.active.set_text(&text);
    let _ = t
        .icon
        .set_tooltip(Some(format!("OpsLens on {}\n{text}", d.addr)));
}

fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::ellipsize;

    #[test]
    fn long_titles_are_cut() {
        assert_eq!(ellipsize("short", 10), "short");
        assert_eq!(ellipsize("abcdefghijk", 5), "abcd…");
    }
}
