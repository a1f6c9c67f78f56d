//! The desktop app (`opslens` with no subcommand): the same server as `opslens serve`, and a
//! Tauri window showing the web UI that server serves, signed in with an injected token, plus
//! global capture shortcuts (the monitor, or a region dragged on an overlay), a tray icon and
//! capture notifications.
//!
//! The window loads `http://127.0.0.1:PORT/` (not bundled assets) so the desktop and a browser
//! run one UI against one API; the page calls no Tauri command (see `capabilities/main.json`).
//! Only the region overlay, a bundled page, calls commands (`capabilities/region.json`).

mod capture;
mod hotkey;
mod region;
mod team;
mod tray;

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use opslens_core::Services;
use opslens_domain::ScreenSource;
use tauri::{Manager, RunEvent, WebviewUrl, WebviewWindowBuilder, Wry};

use crate::server::{Server, StartOptions};

/// Label of the main window (capabilities name it).
const MAIN_WINDOW: &str = "main";

/// Exit status when there is no display: distinct from a crash, so launchers can fall back.
const NO_DISPLAY_EXIT: u8 = 3;

/// What the tray, the hotkey and the capture handlers share.
pub(crate) struct Desktop {
    services: Services,
    screen: Arc<dyn ScreenSource>,
    addr: SocketAddr,
    /// The team server captures go to, when the app is pointed at one.
    uplink: Option<Arc<opslens_core::uplink::Uplink>>,
}

/// Runs the desktop app until its window is closed or Quit is chosen.
pub fn run(
    rt: &tokio::runtime::Runtime,
    data_dir: &Path,
    addr: SocketAddr,
    analysis: opslens_core::analysis::AnalysisConfig,
) -> ExitCode {
    if let Err(why) = display_available() {
        return no_display(&why);
    }
    tauri::async_runtime::set(rt.handle().clone());
    let hotkey = hotkey::from_env(hotkey::Action::Capture);
    let region_hotkey = hotkey::from_env(hotkey::Action::Region);
    let app = match build_app(&region_hotkey) {
        Ok(app) => app,
        Err(why) => return no_display(&why),
    };
    let hotkey_state = hotkey::register(app.handle(), &hotkey);
    let region_state = hotkey::register(app.handle(), &region_hotkey);
    let screen: Arc<dyn ScreenSource> = Arc::new(opslens_capture::XcapSource);
    let uplink = match team::link(data_dir) {
        Ok(u) => u,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::FAILURE;
        }
    };
    let opts = StartOptions {
        extras: opslens_api::Extras {
            screen: Some(screen.clone()),
            hotkey: hotkey_state.describe(),
            region_hotkey: region_state.describe(),
            desktop: true,
            uplink: uplink.clone(),
            ..Default::default()
        },
        next_free_port: true,
        analysis: Some(analysis),
        ..StartOptions::default()
    };
    let server = match rt.block_on(Server::start_opts(data_dir, addr, opts)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = server.write_server_file() {
        tracing::warn!(error = %e, "cannot record the server address for the CLI");
    }
    eprintln!(
        "OpsLens desktop: API on http://{}/api/v1 (data: {})",
        server.addr,
        data_dir.display()
    );
    if let Some(up) = &uplink {
        eprintln!(
            "OpsLens desktop: pointed at the team server {} ({} captures waiting in {})",
            up.server_url(),
            up.status().waiting,
            data_dir.join(opslens_core::uplink::SPOOL_DIR).display()
        );
    }
    app.manage(Desktop {
        services: server.services.clone(),
        screen,
        addr: server.addr,
        uplink,
    });
    if let Err(e) = open_window(app.handle(), &server) {
        eprintln!("error: cannot open the window: {e:#}");
        let _ = rt.block_on(server.stop());
        return ExitCode::FAILURE;
    }
    tray::install(app.handle());
    let code = app.run_return(|_, _: RunEvent| {});
    if let Err(e) = rt.block_on(server.stop()) {
        tracing::warn!(error = %e, "server did not stop cleanly");
    }
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Why no window can open, where that is visible from the environment alone.
fn display_available() -> Result<(), String> {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    if set("DISPLAY") || set("WAYLAND_DISPLAY") || cfg!(any(windows, target_os = "macos")) {
        Ok(())
    } else {
        Err("no display (neither DISPLAY nor WAYLAND_DISPLAY is set)".into())
    }
}

fn no_display(why: &str) -> ExitCode {
    eprintln!(
        "OpsLens cannot open its window: {why}.\n\
         On a machine without a desktop, run the headless server instead:\n\
         \n    opslens serve        (then `opslens open` from a desktop, or the REST API)\n"
    );
    ExitCode::from(NO_DISPLAY_EXIT)
}

/// Builds the Tauri app. GTK panics when it cannot reach the display (tao's
/// `expect("Failed to initialize gtk backend!")`); that panic is turned into an error here
/// so the user gets advice instead of a backtrace.
fn build_app(region_hotkey: &hotkey::Hotkey) -> Result<tauri::App<Wry>, String> {
    let builder = tauri::Builder::default()
        .plugin(tauri_plugin_notification::init())
        .plugin(hotkey::plugin(region_hotkey))
        .manage(region::Selecting::default())
        .invoke_handler(tauri::generate_handler![
            region::region_frame,
            region::region_shown,
            region::region_select,
            region::region_cancel
        ]);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        builder.build(tauri::generate_context!())
    }));
    std::panic::set_hook(hook);
    match built {
        Ok(Ok(app)) => Ok(app),
        Ok(Err(e)) => Err(format!("the window system failed to start ({e})")),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("GTK could not start ({msg})"))
        }
    }
}

/// The script run before the UI's own: hands it the token, only on the origin the window
/// shows (the navigation guard below keeps the webview there anyway; this is the second
/// fence): the local server's, or the team server's with the team token.
fn init_script(origin: &str, token: &str, addr: &str, team: bool) -> anyhow::Result<String> {
    let value = serde_json::json!({
        "token": token,
        "addr": addr,
        "desktop": true,
        "team": team,
    });
    Ok(format!(
        "if (window.location.origin === {origin}) {{ Object.defineProperty(window, '__OPSLENS__', \
         {{ value: Object.freeze({value}), writable: false, configurable: false }}); }}",
        origin = serde_json::to_string(&origin)?,
        value = serde_json::to_string(&value)?,
    ))
}

fn open_window(app: &tauri::AppHandle<Wry>, server: &Server) -> anyhow::Result<()> {
    let team = app.try_state::<Desktop>().and_then(|d| d.uplink.clone());
    let (origin, token, addr, title) = match &team {
        Some(up) => {
            let origin = up.server_url().to_string();
            let addr = origin
                .split_once("://")
                .map_or(&*origin, |x| x.1)
                .to_string();
            (
                origin,
                up.token().to_string(),
                addr,
                team::title(&up.status()),
            )
        }
        None => (
            format!("http://{}", server.addr),
            server.token.expose().to_string(),
            server.addr.to_string(),
            format!("OpsLens — {}", server.addr),
        ),
    };
    let url: tauri::Url = format!("{origin}/").parse().context("server URL")?;
    let allowed = url.origin();
    let window = WebviewWindowBuilder::new(app, MAIN_WINDOW, WebviewUrl::External(url))
        .title(title)
        .inner_size(1280.0, 820.0)
        .min_inner_size(720.0, 480.0)
        .initialization_script(init_script(&origin, &token, &addr, team.is_some())?)
        // Links to other sites must not open inside the app's window (it holds the token).
        .on_navigation(move |u| {
            let ok = u.origin() == allowed;
            if !ok {
                tracing::warn!(url = %u, "blocked navigation away from the OpsLens UI");
            }
            ok
        })
        .build()
        .context("creating the webview")?;
    if let Some(up) = team {
        // The title says how many captures wait for the team server, as that changes.
        let mut status = up.subscribe();
        drop(up);
        tauri::async_runtime::spawn(async move {
            loop {
                let t = team::title(&status.borrow_and_update());
                let _ = window.set_title(&t);
                if status.changed().await.is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}

/// Shows and focuses the main window (tray "Open").
pub(crate) fn show_main(app: &tauri::AppHandle<Wry>) {
    if let Some(w) = app.get_webview_window(MAIN_WINDOW) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
    }
}
