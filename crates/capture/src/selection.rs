//! A dragged region on a frozen frame. The overlay page measures the rectangle in CSS pixels
//! of its viewport; the frame is in the monitor's device pixels, and the monitor has its own
//! place on the virtual screen. The conversions live here, apart from any window, so they can
//! be tested on their own.

use image::RgbaImage;
use opslens_domain::{CaptureError, CaptureTarget, Region, Shot};

/// A monitor's picture, held while the user picks a region on it.
pub struct Frame {
    /// The monitor's pixels (device pixels, not CSS ones).
    pub image: RgbaImage,
    /// Left edge of the monitor on the virtual screen.
    pub x: i32,
    /// Top edge of the monitor on the virtual screen.
    pub y: i32,
    /// The monitor's name, for logs.
    pub name: String,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("width", &self.image.width())
            .field("height", &self.image.height())
            .field("x", &self.x)
            .field("y", &self.y)
            .field("name", &self.name)
            .finish()
    }
}

/// A rectangle as the overlay page measured it: CSS pixels in a viewport of
/// `view_width` × `view_height` CSS pixels that shows the whole frame stretched over it.
/// `width`/`height` may be negative (a drag up or to the left).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Selection {
    /// Where the drag started, from the viewport's left edge.
    pub x: f64,
    /// Where the drag started, from the viewport's top edge.
    pub y: f64,
    /// Horizontal extent of the drag.
    pub width: f64,
    /// Vertical extent of the drag.
    pub height: f64,
    /// Viewport width (`innerWidth`).
    pub view_width: f64,
    /// Viewport height (`innerHeight`).
    pub view_height: f64,
}

/// A rectangle in a frame's pixels: left, top, width, height.
pub type PixelRect = (u32, u32, u32, u32);

impl Selection {
    /// The rectangle in the pixels of a `frame_w` × `frame_h` frame, clamped to it; `None`
    /// when nothing of at least one pixel each way is left (a click, an empty viewport).
    ///
    /// The scale is frame size over viewport size, not `devicePixelRatio`: with the overlay
    /// covering the monitor the two agree (2 on a HiDPI screen), and where a window manager
    /// leaves the overlay a little smaller the frame is stretched over it, so the ratio of
    /// sizes is still what maps the page onto the frame. Edges are rounded, not the size, so
    /// a selection reaching the viewport's edge reaches the frame's.
    pub fn to_pixels(&self, frame_w: u32, frame_h: u32) -> Option<PixelRect> {
        let finite = [self.x, self.y, self.width, self.height];
        if finite.iter().any(|v| !v.is_finite())
            || !(self.view_width > 0.0 && self.view_height > 0.0)
        {
            return None;
        }
        let axis = |start: f64, extent: f64, view: f64, frame: u32| -> Option<(u32, u32)> {
            let scale = f64::from(frame) / view;
            let edge = |v: f64| (v * scale).round().clamp(0.0, f64::from(frame)) as u32;
            let (a, b) = (
                edge(start.min(start + extent)),
                edge(start.max(start + extent)),
            );
            (b > a).then_some((a, b - a))
        };
        let (x, w) = axis(self.x, self.width, self.view_width, frame_w)?;
        let (y, h) = axis(self.y, self.height, self.view_height, frame_h)?;
        Some((x, y, w, h))
    }
}

impl Frame {
    /// Where `rect` (in this frame's pixels) lies on the virtual screen: what
    /// `POST /capture` with that region would have grabbed.
    pub fn region(&self, rect: PixelRect) -> Region {
        let (x, y, width, height) = rect;
        let off = |o: i32, d: u32| o.saturating_add(i32::try_from(d).unwrap_or(i32::MAX));
        Region {
            x: off(self.x, x),
            y: off(self.y, y),
            width,
            height,
        }
    }

    /// The part of the frame under `sel`, as a PNG [`Shot`] labelled with its region on the
    /// virtual screen. Blocking (PNG encoding).
    pub fn crop(&self, sel: &Selection) -> Result<Shot, CaptureError> {
        let (w, h) = self.image.dimensions();
        let rect = sel.to_pixels(w, h).ok_or_else(|| {
            CaptureError::InvalidTarget("the selection is empty: drag a rectangle".into())
        })?;
        let region = self.region(rect);
        region.validate()?;
        let (x, y, width, height) = rect;
        let part = image::imageops::crop_imm(&self.image, x, y, width, height).to_image();
        Ok(Shot {
            png: crate::encode_png(&part)?,
            width,
            height,
            label: CaptureTarget::Region(region).to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(x: f64, y: f64, width: f64, height: f64, view: (f64, f64)) -> Selection {
        Selection {
            x,
            y,
            width,
            height,
            view_width: view.0,
            view_height: view.1,
        }
    }

    #[test]
    fn same_size_viewport_maps_one_to_one() {
        let s = sel(100.0, 50.0, 400.0, 300.0, (1920.0, 1080.0));
        assert_eq!(s.to_pixels(1920, 1080), Some((100, 50, 400, 300)));
    }

    #[test]
    fn hidpi_viewport_scales_by_the_device_pixel_ratio() {
        // A 3840×2160 monitor at scale 2 gives a 1920×1080 CSS viewport.
        let s = sel(100.0, 50.0, 400.5, 300.0, (1920.0, 1080.0));
        assert_eq!(s.to_pixels(3840, 2160), Some((200, 100, 801, 600)));
        // Fractional scale 1.25: 2400×1350 device pixels.
        let s = sel(10.0, 10.0, 80.0, 40.0, (1920.0, 1080.0));
        assert_eq!(s.to_pixels(2400, 1350), Some((13, 13, 100, 50)));
    }

    #[test]
    fn drags_up_and_left_are_normalised_and_edges_clamped() {
        let s = sel(500.0, 400.0, -400.0, -300.0, (1920.0, 1080.0));
        assert_eq!(s.to_pixels(1920, 1080), Some((100, 100, 400, 300)));
        // Dragged past the edges of the viewport (the pointer left the window).
        let s = sel(1800.0, 1000.0, 500.0, 500.0, (1920.0, 1080.0));
        assert_eq!(s.to_pixels(1920, 1080), Some((1800, 1000, 120, 80)));
        let s = sel(50.0, 50.0, -80.0, -90.0, (1920.0, 1080.0));
        assert_eq!(s.to_pixels(1920, 1080), Some((0, 0, 50, 50)));
    }

    #[test]
    fn clicks_and_nonsense_select_nothing() {
        assert_eq!(
            sel(10.0, 10.0, 0.0, 0.0, (800.0, 600.0)).to_pixels(800, 600),
            None
        );
        assert_eq!(
            sel(10.0, 10.0, 0.2, 50.0, (800.0, 600.0)).to_pixels(800, 600),
            None
        );
        assert_eq!(
            sel(10.0, 10.0, 5.0, 5.0, (0.0, 600.0)).to_pixels(800, 600),
            None
        );
        assert_eq!(
            sel(f64::NAN, 10.0, 5.0, 5.0, (800.0, 600.0)).to_pixels(800, 600),
            None
        );
        assert_eq!(
            sel(900.0, 10.0, 50.0, 5.0, (800.0, 600.0)).to_pixels(800, 600),
            None
        );
    }

    #[test]
    fn crop_takes_the_pixels_under_the_selection_and_names_its_screen_region() {
        // A second monitor to the right of a 1920-wide one, at scale 2.
        let image = RgbaImage::from_fn(200, 100, |x, y| image::Rgba([x as u8, y as u8, 7, 255]));
        let frame = Frame {
            image,
            x: 1920,
            y: 0,
            name: "HDMI-1".into(),
        };
        let shot = frame
            .crop(&sel(10.0, 5.0, 20.0, 10.0, (100.0, 50.0)))
            .unwrap();
        assert_eq!((shot.width, shot.height), (40, 20));
        assert_eq!(shot.label, "region 40×20 at (1940, 10)");
        let back = image::load_from_memory(&shot.png).unwrap().to_rgba8();
        assert_eq!(back.dimensions(), (40, 20));
        assert_eq!(back.get_pixel(0, 0).0, [20, 10, 7, 255]);
        assert_eq!(back.get_pixel(39, 19).0, [59, 29, 7, 255]);
        let empty = frame.crop(&sel(10.0, 5.0, 0.0, 0.0, (100.0, 50.0)));
        assert!(matches!(empty, Err(CaptureError::InvalidTarget(_))));
    }
}
