//! Screen capture as the rest of OpsLens sees it: what to capture, what comes back, what can go
//! wrong, and the [`ScreenSource`] trait that hides the platform library (xcap) from the
//! use-cases and the API, so those build and test without a display or its system libraries.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest accepted side of a region, in pixels; the same bound as uploaded images.
pub const MAX_REGION_SIDE: u32 = 16_384;

/// A rectangle in virtual-screen coordinates (all monitors side by side, origin at the top
/// left of the primary one, as X11 and xcap count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Region {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width in pixels, 1 to 16384.
    pub width: u32,
    /// Height in pixels, 1 to 16384.
    pub height: u32,
}

impl Region {
    /// Checks the size bounds; whether the region lies on a monitor is the source's call,
    /// since only it knows the monitors.
    pub fn validate(&self) -> Result<(), CaptureError> {
        if self.width == 0 || self.height == 0 {
            return Err(CaptureError::InvalidTarget(format!(
                "region is {}×{} pixels: width and height must be at least 1",
                self.width, self.height
            )));
        }
        if self.width > MAX_REGION_SIDE || self.height > MAX_REGION_SIDE {
            return Err(CaptureError::InvalidTarget(format!(
                "region is {}×{} pixels: the limit is {MAX_REGION_SIDE} a side",
                self.width, self.height
            )));
        }
        Ok(())
    }
}

/// Which window to capture: its platform id (X11 window id), or a case-insensitive part of
/// its title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum WindowSelector {
    /// The platform's window id (`xdotool search`/`xwininfo` print it).
    Id(u32),
    /// A part of the title, e.g. `"Grafana"`; the first match from the top wins.
    Title(String),
}

/// What to capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureTarget {
    /// The monitor under the mouse pointer, else the primary one.
    Monitor,
    /// One window.
    Window(WindowSelector),
    /// A rectangle of the screen (it must lie on one monitor).
    Region(Region),
}

impl std::fmt::Display for CaptureTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureTarget::Monitor => f.write_str("monitor"),
            CaptureTarget::Window(WindowSelector::Id(id)) => write!(f, "window {id}"),
            CaptureTarget::Window(WindowSelector::Title(t)) => write!(f, "window {t:?}"),
            CaptureTarget::Region(r) => {
                write!(f, "region {}×{} at ({}, {})", r.width, r.height, r.x, r.y)
            }
        }
    }
}

/// A captured image, already encoded, owned (platform handles are not `Send`; the bytes are).
#[derive(Clone, PartialEq, Eq)]
pub struct Shot {
    /// PNG bytes.
    pub png: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// What was captured in words ("monitor Xvfb-0", "window \"Grafana\""), for titles.
    pub label: String,
}

impl std::fmt::Debug for Shot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shot")
            .field("png_bytes", &self.png.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .field("label", &self.label)
            .finish()
    }
}

/// Why a capture did not happen, in categories an API maps to status codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// No screen to capture: no display server, or this process is headless (503).
    #[error("{0}")]
    NoDisplay(String),
    /// The window (or the monitor under a point) does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The target is malformed or off-screen (422).
    #[error("{0}")]
    InvalidTarget(String),
    /// The platform library failed (500; the message is for the log).
    #[error("{0}")]
    Failed(String),
}

/// Something that can grab the screen. Blocking: implementations talk to the display server
/// and encode PNG, so callers run them on a blocking thread.
pub trait ScreenSource: Send + Sync + std::fmt::Debug {
    /// Captures `target` and returns it as PNG.
    fn grab(&self, target: &CaptureTarget) -> Result<Shot, CaptureError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_bounds() {
        let ok = Region {
            x: -10,
            y: 0,
            width: 1,
            height: 16_384,
        };
        assert!(ok.validate().is_ok());
        for (w, h) in [(0, 10), (10, 0), (16_385, 10)] {
            let r = Region {
                x: 0,
                y: 0,
                width: w,
                height: h,
            };
            assert!(matches!(r.validate(), Err(CaptureError::InvalidTarget(_))));
        }
    }

    #[test]
    fn window_selector_reads_an_id_or_a_title() {
        let id: WindowSelector = serde_json::from_str("4194305").unwrap();
        assert_eq!(id, WindowSelector::Id(4_194_305));
        let t: WindowSelector = serde_json::from_str("\"Grafana\"").unwrap();
        assert_eq!(t, WindowSelector::Title("Grafana".into()));
    }
}
