//! Screen capture through [xcap]: the monitor under the pointer (else the primary one), one
//! window, or a region, returned as PNG bytes. Knows nothing of HTTP or incidents; it
//! implements the domain's [`ScreenSource`] so the use-cases can be tested with a fake.
//!
//! Everything here blocks (X11 round trips, PNG encoding): call it from a blocking thread.
//! xcap's handles are not `Send`, so each call opens, captures and returns owned bytes.
//!
//! For a dragged region the desktop first [`freeze`]s the monitor under the pointer, shows
//! that frame in its selection overlay, then [`Frame::crop`]s it (see [`selection`]).

pub mod selection;

use std::io::Cursor;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ImageEncoder, RgbaImage};
use opslens_domain::{CaptureError, CaptureTarget, Region, ScreenSource, Shot, WindowSelector};
use xcap::{Monitor, Window, XCapError};

pub use selection::{Frame, Selection};

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
            let (w, title) = find_window(sel)?;
            let label = format!("window {title:?}");
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

/// Grabs the monitor under the pointer as raw pixels, with where that monitor lies, for a
/// selection overlay: the user picks a region on this still frame, so the overlay (and
/// anything that changes meanwhile) never ends up in the capture. Blocking.
pub fn freeze() -> Result<Frame, CaptureError> {
    check_display()?;
    let m = pointer_monitor()?;
    let image = m.capture_image().map_err(failed)?;
    Ok(Frame {
        image,
        x: m.x().map_err(failed)?,
        y: m.y().map_err(failed)?,
        name: m.name().unwrap_or_else(|_| "?".into()),
    })
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

/// A window's title: xcap's, else the plain `WM_NAME` from `fallback`.
fn title_of(w: &Window, fallback: &std::collections::HashMap<u32, String>) -> String {
    match w.title() {
        Ok(t) if !t.is_empty() => t,
        _ => w
            .id()
            .ok()
            .and_then(|id| fallback.get(&id).cloned())
            .unwrap_or_default(),
    }
}

fn find_window(sel: &WindowSelector) -> Result<(Window, String), CaptureError> {
    let all = Window::all().map_err(failed)?;
    let titles = x11::titles();
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
                    && title_of(w, &titles).to_lowercase().contains(&needle)
            })
        }
    };
    found
        .map(|w| {
            let t = title_of(&w, &titles);
            (w, t)
        })
        .ok_or_else(|| {
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

mod x11 {
    //! Window titles as X11 clients set them. xcap reads `_NET_WM_NAME` (UTF-8) or a
    //! `COMPOUND_TEXT` `WM_NAME` only, so windows that set a plain `STRING` `WM_NAME` (xterm,
    //! ImageMagick, many older tools) have no title there and could not be picked by title.

    use std::collections::HashMap;

    use xcb::x;

    /// Titles of the managed windows by id, read as any property type; empty where there is
    /// no X11 display or no window manager list.
    pub fn titles() -> HashMap<u32, String> {
        let mut out = HashMap::new();
        let Ok((conn, screen)) = xcb::Connection::connect(None) else {
            return out;
        };
        let Some(root) = usize::try_from(screen)
            .ok()
            .and_then(|i| conn.get_setup().roots().nth(i))
            .map(|s| s.root())
        else {
            return out;
        };
        let atom = |name: &[u8]| {
            let c = conn.send_request(&x::InternAtom {
                only_if_exists: true,
                name,
            });
            conn.wait_for_reply(c).ok().map(|r| r.atom())
        };
        let Some(list) = atom(b"_NET_CLIENT_LIST").filter(|a| *a != x::ATOM_NONE) else {
            return out;
        };
        let c = conn.send_request(&x::GetProperty {
            delete: false,
            window: root,
            property: list,
            r#type: x::ATOM_WINDOW,
            long_offset: 0,
            long_length: 4096,
        });
        let Ok(reply) = conn.wait_for_reply(c) else {
            return out;
        };
        for w in reply.value::<x::Window>() {
            let c = conn.send_request(&x::GetProperty {
                delete: false,
                window: *w,
                property: x::ATOM_WM_NAME,
                r#type: x::ATOM_ANY,
                long_offset: 0,
                long_length: 1024,
            });
            if let Ok(r) = conn.wait_for_reply(c) {
                let name = String::from_utf8_lossy(r.value::<u8>()).into_owned();
                if !name.is_empty() {
                    out.insert(xcb::Xid::resource_id(w), name);
                }
            }
        }
        out
    }
}

mod pointer {
    //! Where the mouse pointer is, on X11; `None` elsewhere or on any error.

    /// Pointer position in root-window coordinates.
    pub fn position() -> Option<(i32, i32)> {
        if std::env::var_os("WAYLAND_DISPLAY").is_some() && std::env::var_os("DISPLAY").is_none() {
            return None;
        }
        let (conn, screen) = xcb::Connection::connect(None).ok()?;
        let root = conn
            .get_setup()
            .roots()
            .nth(usize::try_from(screen).ok()?)?
            .root();
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
