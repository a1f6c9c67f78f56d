//! A capture started from the desktop (shortcut or tray): the monitor under the pointer onto
//! the incident the window shows (else the active incident), through the same use-case as `POST /api/v1/capture`, then a
//! notification and a tray refresh. A notification that cannot be shown (no notification
//! daemon) is logged and does not fail the capture.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use opslens_core::capture::{CaptureFailure, Captured};
use opslens_core::uplink::QueuedCapture;
use opslens_domain::CaptureTarget;
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;

use super::Desktop;

/// One capture at a time: a held-down or bouncing key must not file five screenshots.
static BUSY: AtomicBool = AtomicBool::new(false);

/// Starts a capture in the background; returns at once (the shortcut handler runs on the
/// event loop, which must not wait for X11 and PNG encoding).
pub fn from_shortcut<R: Runtime>(app: &AppHandle<R>) {
    if BUSY.swap(true, Ordering::AcqRel) {
        tracing::debug!("capture already running; ignoring the shortcut");
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        run(&app).await;
        BUSY.store(false, Ordering::Release);
    });
}

async fn run<R: Runtime>(app: &AppHandle<R>) {
    let Some(d) = app.try_state::<Desktop>() else {
        return;
    };
    let started = Instant::now();
    let why = |e: CaptureFailure| match e {
        CaptureFailure::Capture(c) => c.to_string(),
        CaptureFailure::Core(c) => c.to_string(),
    };
    let result = match &d.uplink {
        Some(up) => up
            .capture(d.screen.clone(), None, CaptureTarget::Monitor)
            .await
            .map(Filed::Queued)
            .map_err(why),
        None => d
            .services
            .evidence
            .capture(d.screen.clone(), None, CaptureTarget::Monitor)
            .await
            .map(|c| Filed::Stored(Box::new(c)))
            .map_err(why),
    };
    announce(app, "Screen captured", result, started).await;
}

/// Where a desktop capture went: stored here, or spooled for the team server.
pub(super) enum Filed {
    /// Stored as evidence on this machine.
    Stored(Box<Captured>),
    /// On disk in the spool, uploaded to the team server in order.
    Queued(QueuedCapture),
}

/// Tells the user how a capture ended (a notification naming the incident and the size, or
/// why it failed) and refreshes the tray, whose active incident a capture may have opened.
/// Shared by the monitor capture and the region overlay.
pub(super) async fn announce<R: Runtime>(
    app: &AppHandle<R>,
    done: &str,
    result: Result<Filed, String>,
    started: Instant,
) {
    let Some(d) = app.try_state::<Desktop>() else {
        return;
    };
    let (title, body) = match &result {
        Ok(Filed::Queued(q)) => {
            tracing::info!(capture = %q.capture_id, waiting = q.waiting,
                ms = started.elapsed().as_millis() as u64, "capture spooled for the team server");
            let more = match q.waiting {
                0 | 1 => String::new(),
                n => format!(" ({} earlier captures still waiting)", n - 1),
            };
            (
                done.to_string(),
                format!(
                    "{}×{} screenshot saved; uploading to {}{more}",
                    q.width, q.height, q.server_url
                ),
            )
        }
        Ok(Filed::Stored(c)) => {
            let incident = d
                .services
                .incidents
                .get(c.evidence.incident_id)
                .await
                .map(|i| format!("#{} {}", i.id, i.title))
                .unwrap_or_else(|_| format!("#{}", c.evidence.incident_id));
            let size = c
                .evidence
                .image
                .as_ref()
                .map(|i| format!("{}×{}", i.width, i.height))
                .unwrap_or_default();
            tracing::info!(
                evidence = c.evidence.id,
                incident = c.evidence.incident_id,
                shown = ?c.shown_incident,
                fell_back = c.fell_back,
                ms = started.elapsed().as_millis() as u64,
                "capture stored"
            );
            let new = if c.created_incident {
                " (new incident: none was open)"
            } else if c.fell_back {
                " (no incident on screen: the one changed most recently)"
            } else {
                ""
            };
            (
                done.to_string(),
                format!("{size} screenshot added to {incident}{new}"),
            )
        }
        Err(why) => {
            tracing::warn!(error = %why, "capture failed");
            ("Capture failed".to_string(), why.clone())
        }
    };
    notify(app, &title, &body);
}

/// Shows a desktop notification; failures are only logged.
pub(super) fn notify<R: Runtime>(app: &AppHandle<R>, title: &str, body: &str) {
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::warn!(error = %e, "notification not shown");
    }
}
