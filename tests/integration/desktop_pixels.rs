//! What the desktop tests read off screenshots of the real window: severity badge colours
//! and their text contrast (WCAG), filled boxes, toasts. Pixel arithmetic only, kept apart
//! from tests/integration/desktop.rs, which drives the window.

/// Fill colours of a severity (dark theme, light theme), as in `ui/static/styles.css`.
pub(crate) fn severity_fills(sev: &str) -> [[u8; 3]; 2] {
    match sev {
        "critical" => [[0xff, 0x5c, 0x5c], [0xd9, 0x2d, 0x2d]],
        "high" => [[0xff, 0x96, 0x40], [0xd4, 0x62, 0x00]],
        other => panic!("no fill known for {other}"),
    }
}

/// WCAG 2 relative luminance of an sRGB colour.
pub(crate) fn luminance(p: [u8; 3]) -> f64 {
    let lin = |c: u8| {
        let x = f64::from(c) / 255.0;
        if x <= 0.03928 {
            x / 12.92
        } else {
            ((x + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(p[0]) + 0.7152 * lin(p[1]) + 0.0722 * lin(p[2])
}

pub(crate) fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// Boxes (left, top, right, bottom) of the areas of at least 30×14 pixels filled with
/// `fill` (text inside them left as holes), top to bottom.
pub(crate) fn filled_boxes(img: &image::RgbaImage, fill: [u8; 3]) -> Vec<(u32, u32, u32, u32)> {
    let (w, h) = img.dimensions();
    let mut mask: Vec<bool> = img
        .as_raw()
        .chunks_exact(4)
        .map(|p| {
            p[0].abs_diff(fill[0]) <= 3
                && p[1].abs_diff(fill[1]) <= 3
                && p[2].abs_diff(fill[2]) <= 3
        })
        .collect();
    let mut boxes = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] {
            continue;
        }
        mask[start] = false;
        let (x0, y0) = (start as u32 % w, start as u32 / w);
        let mut b = (x0, y0, x0, y0);
        let mut stack = vec![(x0, y0)];
        while let Some((x, y)) = stack.pop() {
            b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y));
            let near = [
                (x.wrapping_sub(1), y),
                (x + 1, y),
                (x, y.wrapping_sub(1)),
                (x, y + 1),
            ];
            for (nx, ny) in near {
                if nx < w && ny < h && mask[(ny * w + nx) as usize] {
                    mask[(ny * w + nx) as usize] = false;
                    stack.push((nx, ny));
                }
            }
        }
        if b.2 - b.0 + 1 >= 30 && b.3 - b.1 + 1 >= 14 {
            boxes.push(b);
        }
    }
    boxes
}

/// How readable the text in a filled box is: the contrast against the fill of its text
/// pixels (the 6th strongest, so a stray pixel cannot carry it), and how many text pixels
/// there are. The box is inset by 3 px so rounded corners (page behind) do not count.
pub(crate) fn text_contrast(
    img: &image::RgbaImage,
    b: (u32, u32, u32, u32),
    fill: [u8; 3],
) -> (f64, usize) {
    let mut c: Vec<f64> = Vec::new();
    for y in b.1 + 3..b.3.saturating_sub(2) {
        for x in b.0 + 3..b.2.saturating_sub(2) {
            let p = img.get_pixel(x, y).0;
            let k = contrast([p[0], p[1], p[2]], fill);
            if k > 1.5 {
                c.push(k);
            }
        }
    }
    c.sort_by(|a, b| b.total_cmp(a));
    (c.get(5).copied().unwrap_or(1.0), c.len())
}

/// Whether a toast shows: its 4 px left edge in the "ok" colour of either theme, at least
/// 20 px tall, in the lower half of the screen.
pub(crate) fn has_toast(img: &image::RgbaImage) -> bool {
    let oks = [[0x3f, 0xb9, 0x50], [0x1a, 0x7f, 0x37]];
    let (w, h) = img.dimensions();
    let ok = |x: u32, y: u32| {
        let p = img.get_pixel(x, y).0;
        oks.iter()
            .any(|c| p[..3].iter().zip(c).all(|(a, b)| a.abs_diff(*b) <= 3))
    };
    (0..w).any(|x| {
        let mut run = 0;
        (h / 2..h).any(|y| {
            run = if ok(x, y) { run + 1 } else { 0 };
            run >= 20
        })
    })
}
