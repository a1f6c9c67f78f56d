//! Bicubic resampling that reproduces Pillow's `Image.resize(..., BICUBIC)` on 8-bit RGB
//! bit for bit (Pillow `libImaging/Resample.c`: separable, antialiased when shrinking,
//! 22-bit fixed-point coefficients, two passes with an 8-bit intermediate).
//! The reference processor resizes through PIL, so matching it keeps resized screenshots'
//! pixel values identical to transformers', not merely close.
//!
//! The order of the two passes changed in Pillow 13.0 ([`PassOrder`]); the 8-bit
//! intermediate makes the order visible in the result (up to 15 levels on tall screenshots).

use image::RgbImage;

const PRECISION_BITS: u32 = 32 - 8 - 2;
const SUPPORT: f64 = 2.0;

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Per output index: first input index and fixed-point weights.
fn coeffs(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = SUPPORT * filterscale;
    let ss = 1.0 / filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let w: Vec<f64> = (xmin..xmax)
                .map(|x| bicubic((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = w.iter().sum();
            let k = w
                .iter()
                .map(|&v| {
                    let v = if total != 0.0 { v / total } else { v };
                    let f = v * (1u32 << PRECISION_BITS) as f64;
                    if v < 0.0 {
                        (f - 0.5) as i32
                    } else {
                        (f + 0.5) as i32
                    }
                })
                .collect();
            (xmin, k)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Which of the two passes Pillow runs first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PassOrder {
    /// Pillow 13.0 and later (what a current transformers install resizes with): the
    /// vertical pass first when the height shrinks by more than twice as many pixels as the
    /// width, `(in_h - out_h) > 2 * (in_w - out_w)` with `in_h > out_h`; horizontal first
    /// otherwise.
    #[default]
    Pillow13,
    /// Pillow 12.3 and earlier: always horizontal first. Kept to match references made with
    /// those versions (the committed `big_resized_pil.png`).
    HorizontalFirst,
}

impl PassOrder {
    /// Whether the vertical pass runs first for this resize.
    pub fn vertical_first(self, (in_w, in_h): (u32, u32), (out_w, out_h): (u32, u32)) -> bool {
        let (dw, dh) = (in_w as i64 - out_w as i64, in_h as i64 - out_h as i64);
        self == Self::Pillow13 && dh > 0 && dh > 2 * dw
    }
}

/// Resizes like Pillow's `resize((w, h), Image.BICUBIC)` in Pillow 13 and later.
pub fn resize_bicubic_pil(src: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    resize_bicubic_pil_with(src, out_w, out_h, PassOrder::Pillow13)
}

/// Resizes like Pillow's `resize((w, h), Image.BICUBIC)` with the given Pillow pass order.
pub fn resize_bicubic_pil_with(
    src: &RgbImage,
    out_w: u32,
    out_h: u32,
    order: PassOrder,
) -> RgbImage {
    let (in_w, in_h) = src.dimensions();
    let horizontal = |img: &RgbImage| {
        if out_w == in_w {
            return img.clone();
        }
        let cx = coeffs(in_w as usize, out_w as usize);
        let mut out = RgbImage::new(out_w, img.height());
        for y in 0..img.height() {
            for (xx, (xmin, k)) in cx.iter().enumerate() {
                let px = (0..k.len()).map(|i| img.get_pixel((xmin + i) as u32, y));
                out.put_pixel(xx as u32, y, convolve(px, k));
            }
        }
        out
    };
    let vertical = |img: &RgbImage| {
        if out_h == in_h {
            return img.clone();
        }
        let cy = coeffs(in_h as usize, out_h as usize);
        let mut out = RgbImage::new(img.width(), out_h);
        for (yy, (ymin, k)) in cy.iter().enumerate() {
            for x in 0..img.width() {
                let px = (0..k.len()).map(|i| img.get_pixel(x, (ymin + i) as u32));
                out.put_pixel(x, yy as u32, convolve(px, k));
            }
        }
        out
    };
    if order.vertical_first((in_w, in_h), (out_w, out_h)) {
        horizontal(&vertical(src))
    } else {
        vertical(&horizontal(src))
    }
}

/// One output pixel: the taps weighted by fixed-point coefficients, rounded and clipped to
/// 8 bits as Pillow's `ImagingResample{Horizontal,Vertical}_8bpc` do.
fn convolve<'a>(taps: impl Iterator<Item = &'a image::Rgb<u8>>, k: &[i32]) -> image::Rgb<u8> {
    let mut acc = [1i64 << (PRECISION_BITS - 1); 3];
    for (p, &w) in taps.zip(k) {
        for c in 0..3 {
            acc[c] += p[c] as i64 * w as i64;
        }
    }
    image::Rgb(acc.map(clip8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pillow_13_goes_vertical_first_only_for_a_much_shorter_height() {
        let o = PassOrder::Pillow13;
        // 330x900 -> 128x416: height shrinks by 484 > 2 * 202
        assert!(o.vertical_first((330, 900), (128, 416)));
        // exactly twice is not more than twice
        assert!(!o.vertical_first((300, 900), (100, 500)));
        // wide images and enlargements stay horizontal first
        assert!(!o.vertical_first((700, 330), (352, 160)));
        assert!(!o.vertical_first((100, 100), (64, 200)));
        // a wider output with a shorter height: the width term is negative
        assert!(o.vertical_first((100, 200), (120, 190)));
        assert!(!PassOrder::HorizontalFirst.vertical_first((330, 900), (128, 416)));
    }
}
