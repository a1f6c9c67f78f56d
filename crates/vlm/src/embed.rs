//! Image embeddings from the vision tower alone: what "these two dashboards look alike" is
//! measured with once a model is loaded.
//!
//! The vector is the mean over an image's merged tokens of the merger's output (the rows the
//! decoder receives in place of `<|image_pad|>`), the same preprocessing as generation, so a
//! screenshot analysed once yields its vector at no extra cost ([`crate::Generation`] carries
//! it) and a screenshot never analysed costs one vision pass ([`Engine::embed_image`]), no
//! decoding. Vectors only mean something next to vectors of the same weights: each carries the
//! [`model_id`] it came from.

use std::path::Path;

use candle_core::{DType, Tensor};
use image::DynamicImage;

use crate::engine::Engine;
use crate::error::VlmError;
use crate::qwen3_vl::model::Qwen3Vl;

/// One image's embedding and the model that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageEmbedding {
    /// [`model_id`] of the weights: vectors of different ids are not comparable.
    pub model: String,
    /// Mean-pooled merger output, `out_hidden_size` values.
    pub vector: Vec<f32>,
}

/// Identifies a model folder's weights for comparing embeddings: the folder name and a hash of
/// its `config.json` and the sizes of its weight files (cheap to compute on every load, and a
/// different checkpoint — even one with the same architecture — almost surely differs in one
/// of them). Weight storage (f32, Q8_0) is not part of it: quantization moves the vectors far
/// less than a different image does.
pub fn model_id(dir: &Path) -> String {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&std::fs::read(dir.join("config.json")).unwrap_or_default());
    for f in crate::weights::weight_files(dir).unwrap_or_default() {
        let len = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
        eat(&len.to_le_bytes());
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    format!("{name}@{h:016x}")
}

/// Mean over each image's rows of `embeds` (`(tokens, hidden)`, images in order with `counts`
/// tokens each).
pub fn mean_pool(embeds: &Tensor, counts: &[usize]) -> Result<Vec<Vec<f32>>, VlmError> {
    let embeds = embeds.to_dtype(DType::F32)?;
    let mut out = Vec::with_capacity(counts.len());
    let mut start = 0;
    for &n in counts {
        if n == 0 {
            out.push(Vec::new());
            continue;
        }
        let v: Vec<f32> = embeds.narrow(0, start, n)?.mean(0)?.to_vec1()?;
        out.push(v);
        start += n;
    }
    Ok(out)
}

/// Cosine similarity of two vectors, `None` when their lengths differ or either is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    (aa > 0.0 && bb > 0.0).then(|| ab / (aa.sqrt() * bb.sqrt()))
}

impl Qwen3Vl {
    /// Mean-pooled merger output of each of `images` (already preprocessed), in order.
    pub fn pooled_image_embeddings(
        &self,
        images: &[crate::qwen3_vl::ImageInput],
    ) -> Result<Vec<Vec<f32>>, VlmError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let merge = self.config().vision_config.spatial_merge_size;
        let v = self.encode_images(images)?;
        let counts: Vec<usize> = images.iter().map(|i| i.num_tokens(merge)).collect();
        mean_pool(&v.embeds, &counts)
    }
}

impl Engine {
    /// Runs only the vision tower on `image` (preprocessed as for [`Engine::generate`]) and
    /// returns its mean-pooled merger output, tagged with this engine's model id.
    pub fn embed_image(&self, image: &DynamicImage) -> Result<ImageEmbedding, VlmError> {
        let input = self.processor.preprocess(image, self.model.device())?;
        let mut v = self
            .model
            .pooled_image_embeddings(std::slice::from_ref(&input))?;
        Ok(ImageEmbedding {
            model: self.model_id.clone(),
            vector: v.pop().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_and_cosine() {
        let t = Tensor::from_vec(
            vec![1f32, 0., 3., 0., 0., 2., 0., 4.],
            (4, 2),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let v = mean_pool(&t, &[2, 2]).unwrap();
        assert_eq!(v, vec![vec![2.0, 0.0], vec![0.0, 3.0]]);
        assert_eq!(cosine(&v[0], &v[1]), Some(0.0));
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]).unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(cosine(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 2.0]), None);
    }
}
