//! The global capture shortcut: `Ctrl+Shift+O` unless `OPSLENS_HOTKEY` names another. It
//! captures the monitor under the pointer onto the active incident. A shortcut another program
//! (or a second OpsLens) already holds is reported, not fatal: capture still works from the
//! tray, the UI and the CLI.

use tauri::{AppHandle, Wry};
use tauri_plugin_global_shortcut::{GlobalShortcutExt, Shortcut, ShortcutState};

/// Environment variable naming the shortcut, e.g. `Ctrl+Alt+S` or `Super+Shift+C`.
pub const HOTKEY_ENV: &str = "OPSLENS_HOTKEY";

/// The shortcut to use, with its spelling for the settings screen.
#[derive(Debug, Clone)]
pub struct Hotkey {
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

/// Reads `OPSLENS_HOTKEY`, else the default.
pub fn from_env() -> Hotkey {
    let text = std::env::var(HOTKEY_ENV)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| opslens_api::DEFAULT_HOTKEY.to_string());
    let shortcut = text.parse::<Shortcut>().ok();
    Hotkey { text, shortcut }
}

/// The plugin, with the handler every registered shortcut runs.
pub fn plugin() -> tauri::plugin::TauriPlugin<Wry> {
    tauri_plugin_global_shortcut::Builder::new()
        .with_handler(|app, _shortcut, event| {
            if event.state() == ShortcutState::Pressed {
                super::capture::from_shortcut(app);
            }
        })
        .build()
}

/// Registers the shortcut; failures are logged and reported, never fatal.
pub fn register(app: &AppHandle<Wry>, hotkey: &Hotkey) -> HotkeyState {
    let Some(shortcut) = hotkey.shortcut else {
        let why = format!(
            "{HOTKEY_ENV}={:?} is not a shortcut such as Ctrl+Shift+O",
            hotkey.text
        );
        eprintln!("warning: {why}; the capture shortcut is off");
        return HotkeyState::Unavailable(hotkey.text.clone(), "not a valid shortcut".into());
    };
    match app.global_shortcut().register(shortcut) {
        Ok(()) => {
            tracing::info!(hotkey = %hotkey.text, "capture shortcut registered");
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
                "warning: the capture shortcut {} is not available ({msg}); capture from the tray, \
                 the UI or `opslens capture`, or pick another with {HOTKEY_ENV}",
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
        assert!("Ctrl+Alt+S".parse::<Shortcut>().is_ok());
        assert!("Ctrl+Banana".parse::<Shortcut>().is_err());
        let s = HotkeyState::Unavailable("Ctrl+Shift+O".into(), "taken".into());
        assert_eq!(s.describe(), "Ctrl+Shift+O (not active: taken)");
    }
}
