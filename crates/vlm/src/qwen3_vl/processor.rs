//! Image preprocessing (`Qwen2VLImageProcessor`: smart resize to multiples of 32 within a
//! pixel budget, rescale, normalise, temporal duplication, patch flattening grouped by merge
//! window), the Qwen chat template, and `<|image_pad|>` expansion + tokenization.

use candle_core::{Device, Tensor};
use image::{DynamicImage, RgbImage};
use tokenizers::Tokenizer;

use super::config::PreprocessorConfig;
use crate::error::VlmError;
use crate::resize::{resize_bicubic_pil_with, PassOrder};

/// Default lower pixel budget: tiny images are upscaled to at least this many pixels.
pub const DEFAULT_MIN_PIXELS: usize = 64 * 32 * 32;
/// Default upper pixel budget for CPU: 1024x768 worth of pixels, i.e. at most 768 image tokens
/// (each token covers 32x32 pixels). The released config allows 16 M pixels, far too slow on CPU.
pub const DEFAULT_MAX_PIXELS: usize = 1024 * 768;

/// Python's `round` (half to even), as `smart_resize` uses it.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        2.0 * (x / 2.0).round()
    } else {
        r
    }
}

/// `smart_resize`: the `(height, width)` nearest to the input that are multiples of `factor`
/// with a pixel count in `[min_pixels, max_pixels]`, keeping the aspect ratio.
pub fn smart_resize(
    height: usize,
    width: usize,
    factor: usize,
    min_pixels: usize,
    max_pixels: usize,
) -> Result<(usize, usize), VlmError> {
    let (h, w, f) = (height as f64, width as f64, factor as f64);
    if height == 0 || width == 0 || h.max(w) / h.min(w) > 200.0 {
        return Err(VlmError::Image(format!(
            "unsupported image size {width}x{height} (empty or aspect ratio above 200)"
        )));
    }
    let mut hb = (round_half_even(h / f) * f).max(f);
    let mut wb = (round_half_even(w / f) * f).max(f);
    if hb * wb > max_pixels as f64 {
        let beta = (h * w / max_pixels as f64).sqrt();
        hb = f.max((h / beta / f).floor() * f);
        wb = f.max((w / beta / f).floor() * f);
    } else if hb * wb < min_pixels as f64 {
        let beta = (min_pixels as f64 / (h * w)).sqrt();
        hb = (h * beta / f).ceil() * f;
        wb = (w * beta / f).ceil() * f;
    }
    Ok((hb as usize, wb as usize))
}

/// A preprocessed image ready for the vision tower.
#[derive(Debug, Clone)]
pub struct ImageInput {
    /// Flattened patches `(t*h*w, C*T*P*P)` in the reference order.
    pub pixel_values: Tensor,
    /// Patch grid `(t, h, w)`.
    pub grid_thw: [usize; 3],
}

impl ImageInput {
    /// Number of `<|image_pad|>` tokens this image occupies in the prompt.
    pub fn num_tokens(&self, merge: usize) -> usize {
        self.grid_thw.iter().product::<usize>() / (merge * merge)
    }
}

/// Image preprocessing settings, from `preprocessor_config.json` plus CPU-sized bounds.
#[derive(Debug, Clone)]
pub struct ImageProcessor {
    /// Patch side (16).
    pub patch_size: usize,
    /// Merge window side (2).
    pub merge_size: usize,
    /// Frames per temporal patch (2).
    pub temporal_patch_size: usize,
    /// Per-channel mean.
    pub mean: [f32; 3],
    /// Per-channel std.
    pub std: [f32; 3],
    /// Lower pixel budget.
    pub min_pixels: usize,
    /// Upper pixel budget.
    pub max_pixels: usize,
    /// Pillow's pass order to reproduce: the current one (13) unless matching a reference
    /// made with an older Pillow.
    pub resize_order: PassOrder,
}

impl ImageProcessor {
    /// Builds from the file's values; `min_pixels`/`max_pixels` override its budget (`None`
    /// keeps the file's lower bound and caps its upper bound at the CPU default).
    pub fn new(
        cfg: &PreprocessorConfig,
        min_pixels: Option<usize>,
        max_pixels: Option<usize>,
    ) -> Self {
        let (fmin, fmax) = cfg.pixel_bounds();
        let ch = |v: &[f32], i: usize| v.get(i).copied().unwrap_or(0.5);
        Self {
            patch_size: cfg.patch_size,
            merge_size: cfg.merge_size,
            temporal_patch_size: cfg.temporal_patch_size,
            mean: [
                ch(&cfg.image_mean, 0),
                ch(&cfg.image_mean, 1),
                ch(&cfg.image_mean, 2),
            ],
            std: [
                ch(&cfg.image_std, 0),
                ch(&cfg.image_std, 1),
                ch(&cfg.image_std, 2),
            ],
            min_pixels: min_pixels.or(fmin).unwrap_or(DEFAULT_MIN_PIXELS),
            max_pixels: max_pixels
                .unwrap_or_else(|| fmax.unwrap_or(DEFAULT_MAX_PIXELS).min(DEFAULT_MAX_PIXELS)),
            resize_order: PassOrder::default(),
        }
    }

    /// Resizes (Pillow-exact bicubic, as the reference) when needed, then normalises and
    /// flattens in the reference's patch order.
    pub fn preprocess(&self, img: &DynamicImage, dev: &Device) -> Result<ImageInput, VlmError> {
        let rgb = img.to_rgb8();
        let (w, h) = rgb.dimensions();
        let factor = self.patch_size * self.merge_size;
        let (rh, rw) = smart_resize(
            h as usize,
            w as usize,
            factor,
            self.min_pixels,
            self.max_pixels,
        )?;
        let rgb: RgbImage = if (rh, rw) == (h as usize, w as usize) {
            rgb
        } else {
            resize_bicubic_pil_with(&rgb, rw as u32, rh as u32, self.resize_order)
        };
        let (p, m, tp) = (self.patch_size, self.merge_size, self.temporal_patch_size);
        let (gh, gw) = (rh / p, rw / p);
        let dim = 3 * tp * p * p;
        let mut out = Vec::with_capacity(gh * gw * dim);
        // Reference: reshape (t, T, C, gh/m, m, P, gw/m, m, P) -> transpose (0,3,6,4,7,2,1,5,8):
        // patch order (bh, bw, ih, iw), inside a patch (C, T, py, px).
        for bh in 0..gh / m {
            for bw in 0..gw / m {
                for ih in 0..m {
                    for iw in 0..m {
                        let (r0, c0) = ((bh * m + ih) * p, (bw * m + iw) * p);
                        for c in 0..3 {
                            for _t in 0..tp {
                                for py in 0..p {
                                    for px in 0..p {
                                        let v =
                                            rgb.get_pixel((c0 + px) as u32, (r0 + py) as u32)[c];
                                        // rescale in f64 then round, as numpy does
                                        let x = (v as f64 * (1.0 / 255.0)) as f32;
                                        out.push((x - self.mean[c]) / self.std[c]);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let pixel_values = Tensor::from_vec(out, (gh * gw, dim), dev)?;
        Ok(ImageInput {
            pixel_values,
            grid_thw: [1, gh, gw],
        })
    }
}

/// Replaces the i-th `<|image_pad|>` with `counts[i]` copies, as `Qwen3VLProcessor` does.
pub fn expand_image_pads(text: &str, counts: &[usize]) -> String {
    const PAD: &str = "<|image_pad|>";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut i = 0;
    while let Some(pos) = rest.find(PAD) {
        out.push_str(&rest[..pos]);
        let n = counts.get(i).copied().unwrap_or(1);
        for _ in 0..n {
            out.push_str(PAD);
        }
        i += 1;
        rest = &rest[pos + PAD.len()..];
    }
    out.push_str(rest);
    out
}

/// Tokenizes a rendered, expanded prompt (special tokens are matched as added tokens).
pub fn encode(tok: &Tokenizer, text: &str) -> Result<Vec<u32>, VlmError> {
    let enc = tok
        .encode(text, false)
        .map_err(|e| VlmError::Tokenizer(e.to_string()))?;
    Ok(enc.get_ids().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_resize_matches_reference_cases() {
        assert_eq!(smart_resize(128, 192, 32, 4096, 65536).unwrap(), (128, 192));
        assert_eq!(smart_resize(170, 300, 32, 4096, 65536).unwrap(), (160, 288));
        // 1280x720 under the CPU budget: beta = sqrt(921600/786432)
        assert_eq!(
            smart_resize(720, 1280, 32, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS).unwrap(),
            (640, 1152)
        );
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
    }

    #[test]
    fn expands_pads() {
        let t = "<|vision_start|><|image_pad|><|vision_end|>a<|image_pad|>b";
        let e = expand_image_pads(t, &[3, 2]);
        assert_eq!(
            e,
            "<|vision_start|><|image_pad|><|image_pad|><|image_pad|><|vision_end|>a\
             <|image_pad|><|image_pad|>b"
        );
    }
}
