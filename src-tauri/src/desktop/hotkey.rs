//! The global shortcuts: `Ctrl+Shift+O` captures the monitor under the pointer onto the
//! active incident (`OPSLENS_HOTKEY` names another), `Ctrl+Shift+R` opens the region selection
//! overlay (`OPSLENS_REGION_HOTKEY`). A shortcut another program (or a second OpsLens) already
//! holds is reported, not fatal: capture still works from the tray, the UI and the CLI.

use tauri::{AppHandle, Wry};
use tauri_plugin_global_shortcut::{GlobalShortcutExt, Shortcut, ShortcutState};

/// Environment variable naming the capture shortcut, e.g. `Ctrl+Alt+S` or `Super+Shift+C`.
pub const HOTKEY_ENV: &str = "OPSLENS_HOTKEY";

/// Environment variable naming the region selection shortcut.
pub const REGION_HOTKEY_ENV: &str = "OPSLENS_REGION_HOTKEY";

/// What a shortcut does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Capture the monitor under the pointer.
    Capture,
    /// Open the region selection overlay.
    Region,
}

impl Action {
    fn env(self) -> &'static str {
        match self {
            Action::Capture => HOTKEY_ENV,
            Action::Region => REGION_HOTKEY_ENV,
        }
    }

    fn default_text(self) -> &'static str {
        match self {
            Action::Capture => opslens_api::DEFAULT_HOTKEY,
            Action::Region => opslens_api::DEFAULT_REGION_HOTKEY,
        }
    }

    /// How messages name the shortcut.
    fn noun(self) -> &'static str {
        match self {
            Action::Capture => "capture shortcut",
            Action::Region => "region capture shortcut",
        }
    }
}

/// A shortcut to use, with its spelling for the settings screen.
#[derive(Debug, Clone)]
pub struct Hotkey {
    /// What it does.
    pub action: Action,
    /// As the user wrote it (or the default).
    pub text: String,
    /// Parsed; `None` when the text is not a shortcut.
    pub shortcut: Option<Shortcut>,
}

/// Whether the shortcut is live.
#[derive(Debug, Clone)]
pub enum HotkeyState {
    /// Registered: pressing it captures.
    Active(String),
    /// Not registered, and why.
    Unavailable(String, String),
}

impl HotkeyState {
    /// For `GET /info` (the settings screen).
    pub fn describe(&self) -> String {
        match self {
            HotkeyState::Active(t) => t.clone(),
            HotkeyState::Unavailable(t, why) => format!("{t} (not active: {why})"),
        }
    }
}

/// Reads the action's environment variable (`OPSLENS_HOTKEY`, `OPSLENS_REGION_HOTKEY`), else
/// its default.
pub fn from_env(action: Action) -> Hotkey {
    let text = std::env::var(action.env())
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| action.default_text().to_string());
    let shortcut = text.parse::<Shortcut>().ok();
    Hotkey {
        action,
        text,
        shortcut,
    }
}

/// The plugin, with the handler every registered shortcut runs: the region shortcut opens
/// the overlay, any other (the capture shortcut) captures the monitor.
pub fn plugin(region: &Hotkey) -> tauri::plugin::TauriPlugin<Wry> {
    let region = region.shortcut.map(|s| s.id());
    tauri_plugin_global_shortcut::Builder::new()
        .with_handler(move |app, shortcut, event| {
            if event.state() != ShortcutState::Pressed {
                return;
            }
            if Some(shortcut.id()) == region {
                super::region::start(app);
            } else {
                super::capture::from_shortcut(app);
            }
        })
        .build()
}

/// Registers the shortcut; failures are logged and reported, never fatal.
pub fn register(app: &AppHandle<Wry>, hotkey: &Hotkey) -> HotkeyState {
    let (env, noun) = (hotkey.action.env(), hotkey.action.noun());
    let Some(shortcut) = hotkey.shortcut else {
        let why = format!(
            "{env}={:?} is not a shortcut such as {}",
            hotkey.text,
            hotkey.action.default_text()
        );
        eprintln!("warning: {why}; the {noun} is off");
        return HotkeyState::Unavailable(hotkey.text.clone(), "not a valid shortcut".into());
    };
    match app.global_shortcut().register(shortcut) {
        Ok(()) => {
            tracing::info!(hotkey = %hotkey.text, "{noun} registered");
            HotkeyState::Active(hotkey.text.clone())
        }
        Err(e) => {
            let msg = e.to_string();
            let why = if msg.contains("already registered") {
                "another program or OpsLens instance holds it".to_string()
            } else {
                msg.clone()
            };
            eprintln!(
                "warning: the {noun} {} is not available ({msg}); capture from the tray, \
                 the UI or `opslens capture`, or pick another with {env}",
                hotkey.text
            );
            HotkeyState::Unavailable(hotkey.text.clone(), why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_custom_shortcuts_parse() {
        assert!(opslens_api::DEFAULT_HOTKEY.parse::<Shortcut>().is_ok());
        assert!(opslens_api::DEFAULT_REGION_HOTKEY
            .parse::<Shortcut>()
            .is_ok());
        assert_ne!(
            opslens_api::DEFAULT_HOTKEY
                .parse::<Shortcut>()
                .unwrap()
                .id(),
            opslens_api::DEFAULT_REGION_HOTKEY
                .parse::<Shortcut>()
                .unwrap()
                .id()
        );
        assert!("Ctrl+Alt+S".parse::<Shortcut>().is_ok());
        assert!("Ctrl+Banana".parse::<Shortcut>().is_err());
        let s = HotkeyState::Unavailable("Ctrl+Shift+O".into(), "taken".into());
        assert_eq!(s.describe(), "Ctrl+Shift+O (not active: taken)");
    }
}
