//! Region capture with a selection overlay: the region shortcut (`Ctrl+Shift+R`) or the tray's
//! "Capture region…" first freezes the monitor under the pointer, so neither the overlay nor
//! anything that moves meanwhile ends up in the picture, then shows that frame dimmed in a
//! borderless, always-on-top, fullscreen window on the same monitor. The user drags a
//! rectangle; mouse-up (or Enter) files that part of the frame on the active incident through
//! [`opslens_core::Services::store_capture`], the same path as every capture, and Esc or a
//! right click cancels.
//!
//! The overlay page (`ui/static/overlay.html`, `ui/src/overlay.ts`) is bundled into the
//! binary with the UI assets and loaded from Tauri's own protocol, not from the server: it
//! never holds the API token. It calls the four commands below, which only its window label
//! is granted (`capabilities/region.json`); the main window, a remote origin to Tauri, gets
//! none of them. The commands are generic over the Tauri runtime, so the unit tests run them on
//! the mock runtime without a display.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opslens_capture::{Frame, Selection};
use serde::Deserialize;
use tauri::ipc::Response;
use tauri::{
    AppHandle, Manager, PhysicalPosition, PhysicalSize, Runtime, State, WebviewUrl,
    WebviewWindowBuilder, WindowEvent,
};

use super::Desktop;

/// Label of the overlay window; `capabilities/region.json` grants the commands to it alone.
pub const REGION_WINDOW: &str = "region";

/// Title of the overlay window (window managers and tests find it by this).
pub const REGION_TITLE: &str = "OpsLens region selection";

/// The page the overlay window loads, from the bundled UI assets (`ui/dist`).
const OVERLAY_PAGE: &str = "overlay.html";

/// How long the overlay may stay hidden waiting for its page to draw the frame before it is
/// shown anyway (a page that failed shows its error, and Esc still cancels).
const SHOW_FALLBACK: Duration = Duration::from_secs(5);

/// Between the shortcut and the overlay showing (the grab takes a moment): a second press
/// then must not grab and open a second overlay.
static OPENING: AtomicBool = AtomicBool::new(false);

/// The frozen frame of the open selection; `None` while no overlay is open. One selection
/// at a time: the frame is taken out when the selection ends, however it ends.
#[derive(Default)]
pub struct Selecting(Mutex<Option<Arc<Frame>>>);

impl Selecting {
    fn frame(&self) -> Option<Arc<Frame>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, frame: Option<Arc<Frame>>) -> Option<Arc<Frame>> {
        std::mem::replace(
            &mut *self.0.lock().unwrap_or_else(|p| p.into_inner()),
            frame,
        )
    }
}

/// Starts a region selection in the background (the shortcut handler runs on the event
/// loop, which must not wait for the grab); focuses the overlay where one is open already.
pub fn start<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window(REGION_WINDOW) {
        // A hidden one is still drawing its frame: its page (or the fallback) shows it.
        if w.is_visible().unwrap_or(false) {
            let _ = w.set_focus();
        }
        return;
    }
    if OPENING.swap(true, Ordering::AcqRel) {
        tracing::debug!("region selection already opening; ignoring the shortcut");
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if let Err(why) = open(&app).await {
            tracing::warn!(error = %why, "region selection did not open");
            end(&app);
            super::capture::notify(&app, "Capture failed", &why);
        }
        OPENING.store(false, Ordering::Release);
    });
}

/// Freezes the monitor under the pointer and opens the overlay over it.
async fn open<R: Runtime>(app: &AppHandle<R>) -> Result<(), String> {
    let started = Instant::now();
    let frame = tokio::task::spawn_blocking(opslens_capture::freeze)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let (w, h) = frame.image.dimensions();
    tracing::info!(monitor = %frame.name, width = w, height = h, x = frame.x, y = frame.y,
        ms = started.elapsed().as_millis() as u64, "region selection: monitor frozen");
    let (x, y) = (frame.x, frame.y);
    app.state::<Selecting>().set(Some(Arc::new(frame)));
    let window =
        WebviewWindowBuilder::new(app, REGION_WINDOW, WebviewUrl::App(OVERLAY_PAGE.into()))
            .title(REGION_TITLE)
            .decorations(false)
            .always_on_top(true)
            .skip_taskbar(true)
            .resizable(false)
            .shadow(false)
            .visible(false)
            .focused(true)
            .build()
            .map_err(|e| format!("cannot open the selection overlay: {e}"))?;
    let ending = app.clone();
    window.on_window_event(move |e| {
        if let WindowEvent::Destroyed = e {
            ending.state::<Selecting>().set(None);
        }
    });
    // Placed on the frozen monitor in device pixels while hidden; shown (and made fullscreen
    // there) once the page has drawn the frame, so no blank window flashes over the screen.
    let placed = window
        .set_position(PhysicalPosition::new(x, y))
        .and_then(|()| window.set_size(PhysicalSize::new(w, h)));
    if let Err(e) = placed {
        let _ = window.destroy();
        return Err(format!("cannot place the selection overlay: {e}"));
    }
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(SHOW_FALLBACK).await;
        if !window.is_visible().unwrap_or(true) {
            tracing::warn!("region selection: the overlay page did not draw; showing it anyway");
            show(&window);
        }
    });
    Ok(())
}

/// Shows the overlay fullscreen on the monitor it was placed on (fullscreen takes the
/// window's monitor, and hides panels a plain window would leave) and gives it the keyboard.
fn show<R: Runtime>(window: &tauri::WebviewWindow<R>) {
    let shown = window
        .show()
        .and_then(|()| window.set_fullscreen(true))
        .and_then(|()| window.set_focus());
    if let Err(e) = shown {
        tracing::warn!(error = %e, "region selection: cannot show the overlay");
    }
}

/// Ends the selection: drops the frame and closes the overlay.
fn end<R: Runtime>(app: &AppHandle<R>) -> Option<Arc<Frame>> {
    let frame = app.state::<Selecting>().set(None);
    if let Some(w) = app.get_webview_window(REGION_WINDOW) {
        let _ = w.destroy();
    }
    frame
}

/// The frozen frame for the overlay page: its width and height (u32, little-endian), then
/// its RGBA rows. Raw, so the page puts it on a canvas without decoding and needs no image
/// URL beyond what the CSP allows.
#[tauri::command]
pub async fn region_frame(state: State<'_, Selecting>) -> Result<Response, String> {
    let frame = state.frame().ok_or("no region selection is open")?;
    let (w, h) = frame.image.dimensions();
    let mut out = Vec::with_capacity(8 + frame.image.as_raw().len());
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(frame.image.as_raw());
    tracing::info!(width = w, height = h, "region selection: overlay ready");
    Ok(Response::new(out))
}

/// The page has drawn the frame: the overlay is shown now.
#[tauri::command]
pub async fn region_shown<R: Runtime>(app: AppHandle<R>) -> Result<(), String> {
    let w = app
        .get_webview_window(REGION_WINDOW)
        .ok_or("no region selection is open")?;
    show(&w);
    tracing::info!("region selection: overlay shown");
    Ok(())
}

/// The rectangle the page reports, in CSS pixels of its viewport (see [`Selection`]).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Picked {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
    view_width: f64,
    view_height: f64,
}

impl From<Picked> for Selection {
    fn from(p: Picked) -> Self {
        Selection {
            x: p.x,
            y: p.y,
            width: p.width,
            height: p.height,
            view_width: p.view_width,
            view_height: p.view_height,
        }
    }
}

/// Confirms the dragged rectangle: closes the overlay at once, then crops, stores and
/// notifies in the background. An empty rectangle (a click) is refused and the overlay stays,
/// so the user can drag again.
#[tauri::command]
pub async fn region_select<R: Runtime>(app: AppHandle<R>, selection: Picked) -> Result<(), String> {
    let sel = Selection::from(selection);
    let frame = app
        .state::<Selecting>()
        .frame()
        .ok_or("no region selection is open")?;
    let (w, h) = frame.image.dimensions();
    if sel.to_pixels(w, h).is_none() {
        return Err("the selection is empty: drag a rectangle".into());
    }
    let Some(frame) = end(&app) else {
        return Err("the selection has ended".into());
    };
    let started = Instant::now();
    tauri::async_runtime::spawn(async move {
        let result = store(&app, frame, sel).await;
        super::capture::announce(&app, "Region captured", result, started).await;
    });
    Ok(())
}

async fn store<R: Runtime>(
    app: &AppHandle<R>,
    frame: Arc<Frame>,
    sel: Selection,
) -> Result<super::capture::Filed, String> {
    use super::capture::Filed;
    let d = app
        .try_state::<Desktop>()
        .ok_or("the app is shutting down")?;
    let shot = tokio::task::spawn_blocking(move || frame.crop(&sel))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    match &d.uplink {
        Some(up) => up.spool(None, shot).await.map(Filed::Queued),
        None => d
            .services
            .evidence
            .store_capture(None, shot)
            .await
            .map(|c| Filed::Stored(Box::new(c))),
    }
    .map_err(|e| e.to_string())
}

/// Cancels the selection (Esc, a right click): nothing is stored.
#[tauri::command]
pub async fn region_cancel<R: Runtime>(app: AppHandle<R>) -> Result<(), String> {
    if end(&app).is_some() {
        tracing::info!("region selection cancelled");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use tauri::ipc::{CallbackFn, InvokeBody, InvokeResponseBody};
    use tauri::test::{get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime};
    use tauri::webview::InvokeRequest;
    use tauri::WebviewWindow;

    use super::*;

    fn overlay() -> (tauri::App<MockRuntime>, WebviewWindow<MockRuntime>) {
        let app = mock_builder()
            .manage(Selecting::default())
            .invoke_handler(tauri::generate_handler![
                region_frame,
                region_shown,
                region_select,
                region_cancel
            ])
            .build(mock_context(noop_assets()))
            .expect("mock app");
        let w = WebviewWindowBuilder::new(&app, REGION_WINDOW, WebviewUrl::default())
            .build()
            .expect("mock overlay window");
        (app, w)
    }

    fn call(
        w: &WebviewWindow<MockRuntime>,
        cmd: &str,
        body: Value,
    ) -> Result<InvokeResponseBody, Value> {
        get_ipc_response(
            w,
            InvokeRequest {
                cmd: cmd.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: InvokeBody::Json(body),
                headers: Default::default(),
                invoke_key: tauri::test::INVOKE_KEY.to_string(),
            },
        )
    }

    #[test]
    fn the_overlay_commands_hand_out_the_frame_refuse_an_empty_selection_and_cancel() {
        let (app, w) = overlay();
        let closed = call(&w, "region_frame", json!({})).unwrap_err();
        assert!(
            closed.to_string().contains("no region selection is open"),
            "{closed}"
        );

        let image = image::RgbaImage::from_pixel(4, 3, image::Rgba([10, 20, 30, 255]));
        app.state::<Selecting>().set(Some(Arc::new(Frame {
            image,
            x: 0,
            y: 0,
            name: "mock".into(),
        })));
        // The page gets width and height (u32 LE) and then the RGBA rows.
        let InvokeResponseBody::Raw(bytes) = call(&w, "region_frame", json!({})).unwrap() else {
            panic!("the frame is sent raw");
        };
        assert_eq!(&bytes[..8], &[4, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(bytes.len(), 8 + 4 * 3 * 4);
        assert_eq!(&bytes[8..12], &[10, 20, 30, 255]);

        // A click (no area) is refused and the selection stays open for a drag.
        let click = json!({"selection": {"x": 1.0, "y": 1.0, "width": 0.0, "height": 0.0,
            "viewWidth": 4.0, "viewHeight": 3.0}});
        let refused = call(&w, "region_select", click).unwrap_err();
        assert!(refused.to_string().contains("empty"), "{refused}");
        assert!(app.state::<Selecting>().frame().is_some());

        // Esc: nothing stored, the frame let go.
        call(&w, "region_cancel", json!({})).unwrap();
        assert!(app.state::<Selecting>().frame().is_none());
        let gone = call(&w, "region_frame", json!({})).unwrap_err();
        assert!(
            gone.to_string().contains("no region selection is open"),
            "{gone}"
        );
    }
}
