//! Screen capture through [xcap]: the monitor under the pointer (else the primary one), one
//! window, or a region, returned as PNG bytes. Knows nothing of HTTP or incidents; it
//! implements the domain's [`ScreenSource`] so the use-cases can be tested with a fake.
//!
//! Everything here blocks (X11 round trips, PNG encoding): call it from a blocking thread.
//! xcap's handles are not `Send`, so each call opens, captures and returns owned bytes.

use std::io::Cursor;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ImageEncoder, RgbaImage};
use opslens_domain::{CaptureError, CaptureTarget, Region, ScreenSource, Shot, WindowSelector};
use xcap::{Monitor, Window, XCapError};

/// The real screen, through xcap.
#[derive(Debug, Default, Clone, Copy)]
pub struct XcapSource;

impl ScreenSource for XcapSource {
    fn grab(&self, target: &CaptureTarget) -> Result<Shot, CaptureError> {
        grab(target)
    }
}

/// Captures `target` and encodes it as PNG. Blocking.
pub fn grab(target: &CaptureTarget) -> Result<Shot, CaptureError> {
    check_display()?;
    let (image, label) = match target {
        CaptureTarget::Monitor => {
            let m = pointer_monitor()?;
            let label = format!("monitor {}", m.name().unwrap_or_else(|_| "?".into()));
            (m.capture_image().map_err(failed)?, label)
        }
        CaptureTarget::Window(sel) => {
            let w = find_window(sel)?;
            let label = format!("window {:?}", w.title().unwrap_or_default());
            (w.capture_image().map_err(failed)?, label)
        }
        CaptureTarget::Region(r) => {
            r.validate()?;
            (capture_region(r)?, target.to_string())
        }
    };
    let (width, height) = image.dimensions();
    Ok(Shot {
        png: encode_png(&image)?,
        width,
        height,
        label,
    })
}

/// A window the user could pick, for listings (`opslens capture --list-windows`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowInfo {
    /// Platform window id.
    pub id: u32,
    /// Title.
    pub title: String,
    /// Application name.
    pub app: String,
    /// Size in pixels.
    pub width: u32,
    /// Size in pixels.
    pub height: u32,
}

/// The capturable windows, topmost first (minimized ones left out).
pub fn windows() -> Result<Vec<WindowInfo>, CaptureError> {
    check_display()?;
    let all = Window::all().map_err(failed)?;
    Ok(all
        .iter()
        .filter(|w| !w.is_minimized().unwrap_or(false))
        .filter_map(|w| {
            Some(WindowInfo {
                id: w.id().ok()?,
                title: w.title().unwrap_or_default(),
                app: w.app_name().unwrap_or_default(),
                width: w.width().ok()?,
                height: w.height().ok()?,
            })
        })
        .collect())
}

/// Fails early, with a message a person can act on, where there is no display at all; xcap's
/// own error ("Connection refused" from libxcb) says nothing about why.
fn check_display() -> Result<(), CaptureError> {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    if !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
        return Err(CaptureError::NoDisplay(
            "no display to capture (neither DISPLAY nor WAYLAND_DISPLAY is set): \
             this OpsLens runs headless; run it inside your desktop session to capture"
                .into(),
        ));
    }
    Ok(())
}

fn failed(e: XCapError) -> CaptureError {
    match e {
        XCapError::XcbConnError(c) => CaptureError::NoDisplay(format!(
            "cannot connect to the display ({c}); is DISPLAY right and the X server running?"
        )),
        XCapError::InvalidCaptureRegion(m) => CaptureError::InvalidTarget(m),
        other => CaptureError::Failed(format!("screen capture failed: {other}")),
    }
}

/// The monitor under the mouse pointer; the primary one where the pointer cannot be read
/// (Wayland hides it), else the first.
fn pointer_monitor() -> Result<Monitor, CaptureError> {
    if let Some((x, y)) = pointer::position() {
        if let Ok(m) = Monitor::from_point(x, y) {
            return Ok(m);
        }
    }
    let all = Monitor::all().map_err(failed)?;
    let primary = all.iter().position(|m| m.is_primary().unwrap_or(false));
    all.into_iter()
        .nth(primary.unwrap_or(0))
        .ok_or_else(|| CaptureError::NotFound("the display reports no monitor".into()))
}

fn find_window(sel: &WindowSelector) -> Result<Window, CaptureError> {
    let all = Window::all().map_err(failed)?;
    let found = match sel {
        WindowSelector::Id(id) => all.into_iter().find(|w| w.id().ok() == Some(*id)),
        WindowSelector::Title(t) => {
            let needle = t.to_lowercase();
            if needle.trim().is_empty() {
                return Err(CaptureError::InvalidTarget(
                    "window title must not be empty".into(),
                ));
            }
            all.into_iter().find(|w| {
                !w.is_minimized().unwrap_or(false)
                    && w.title()
                        .map(|x| x.to_lowercase().contains(&needle))
                        .unwrap_or(false)
            })
        }
    };
    found.ok_or_else(|| {
        CaptureError::NotFound(match sel {
            WindowSelector::Id(id) => format!("no window with id {id}"),
            WindowSelector::Title(t) => format!("no visible window whose title contains {t:?}"),
        })
    })
}

/// A region must lie on one monitor (xcap captures per monitor).
fn capture_region(r: &Region) -> Result<RgbaImage, CaptureError> {
    let off = || {
        CaptureError::InvalidTarget(format!(
            "region {}×{} at ({}, {}) is not on a monitor: it must lie within one monitor",
            r.width, r.height, r.x, r.y
        ))
    };
    let m = Monitor::from_point(r.x, r.y).map_err(|_| off())?;
    let (mx, my) = (m.x().map_err(failed)?, m.y().map_err(failed)?);
    let (mw, mh) = (m.width().map_err(failed)?, m.height().map_err(failed)?);
    let (dx, dy) = (r.x - mx, r.y - my);
    let (Ok(dx), Ok(dy)) = (u32::try_from(dx), u32::try_from(dy)) else {
        return Err(off());
    };
    if u64::from(dx) + u64::from(r.width) > u64::from(mw)
        || u64::from(dy) + u64::from(r.height) > u64::from(mh)
    {
        return Err(CaptureError::InvalidTarget(format!(
            "region {}×{} at ({}, {}) runs off its monitor ({mw}×{mh} at ({mx}, {my}))",
            r.width, r.height, r.x, r.y
        )));
    }
    m.capture_region(dx, dy, r.width, r.height).map_err(failed)
}

/// PNG with fast compression: a 1920×1080 dashboard encodes in a few milliseconds instead of
/// ~100 with the default level, and screenshots compress well either way.
pub fn encode_png(image: &RgbaImage) -> Result<Vec<u8>, CaptureError> {
    let mut out = Cursor::new(Vec::with_capacity(image.as_raw().len() / 8));
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgba8,
        )
        .map_err(|e| CaptureError::Failed(format!("PNG encoding failed: {e}")))?;
    Ok(out.into_inner())
}

mod pointer {
    //! Where the mouse pointer is, on X11; `None` elsewhere or on any error.

    /// Pointer position in root-window coordinates.
    pub fn position() -> Option<(i32, i32)> {
        if std::env::var_os("WAYLAND_DISPLAY").is_some() && std::env::var_os("DISPLAY").is_none()
        {
            return None;
        }
        let (conn, screen) = xcb::Connection::connect(None).ok()?;
        let root = conn.get_setup().roots().nth(usize::try_from(screen).ok()?)?.root();
        let cookie = conn.send_request(&xcb::x::QueryPointer { window: root });
        let reply = conn.wait_for_reply(cookie).ok()?;
        Some((i32::from(reply.root_x()), i32::from(reply.root_y())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips_with_its_size_and_pixels() {
        let img = RgbaImage::from_fn(64, 32, |x, y| {
            image::Rgba([x as u8 * 3, y as u8 * 5, 200, 255])
        });
        let png = encode_png(&img).unwrap();
        let back = image::load_from_memory(&png).unwrap().to_rgba8();
        assert_eq!(back, img);
    }
}
