//! Rotary position machinery: the 3-D (t, h, w) position ids of a multimodal prompt
//! (transformers' `Qwen3VLModel.get_rope_index`), the interleaved M-RoPE tables of the text
//! decoder, and the 2-D rotary table of the vision encoder.
//!
//! candle-transformers' `qwen3_vl` uses plain 1-D RoPE here, which is wrong for every image
//! token and every text token after an image; this module is the fix.

use candle_core::{Device, Result, Tensor};

/// Positions of one prompt along the three M-RoPE axes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionIds {
    /// `[t, h, w]`, each as long as the prompt.
    pub axes: [Vec<u32>; 3],
    /// `max(position) + 1 - len`: added to the cache length to position decoded tokens.
    pub delta: i64,
}

/// Computes the 3-D position ids like `get_rope_index` for images (`grids[i] = (t, h, w)` in
/// patches; one `<|image_pad|>` run per grid, each run preceded by `vision_start`).
///
/// Text runs count up on all three axes from the last maximum + 1; an image run of
/// `t x (h/m) x (w/m)` tokens gets `(t_i, h_i, w_i)` offset by the position where it starts.
pub fn rope_index(
    ids: &[u32],
    grids: &[[usize; 3]],
    image_token_id: u32,
    merge: usize,
) -> PositionIds {
    let mut axes: [Vec<u32>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut st = 0usize;
    let mut next: u32 = 0; // max over all positions so far + 1
    let push_text = |axes: &mut [Vec<u32>; 3], n: usize, next: &mut u32| {
        for i in 0..n as u32 {
            for a in axes.iter_mut() {
                a.push(*next + i);
            }
        }
        *next += n as u32;
    };
    for grid in grids {
        let Some(ed) = ids[st..]
            .iter()
            .position(|&t| t == image_token_id)
            .map(|p| p + st)
        else {
            break;
        };
        push_text(&mut axes, ed - st, &mut next);
        let (gt, gh, gw) = (grid[0], grid[1] / merge, grid[2] / merge);
        let base = next;
        let mut max = base;
        for t in 0..gt {
            for h in 0..gh {
                for w in 0..gw {
                    let p = [base + t as u32, base + h as u32, base + w as u32];
                    for (a, v) in axes.iter_mut().zip(p) {
                        a.push(v);
                        max = max.max(v);
                    }
                }
            }
        }
        next = max + 1;
        st = ed + gt * gh * gw;
    }
    if st < ids.len() {
        push_text(&mut axes, ids.len() - st, &mut next);
    }
    let delta = next as i64 - ids.len() as i64;
    PositionIds { axes, delta }
}

/// Inverse frequencies `1 / theta^(2i/dim)` computed in f32 as transformers does.
fn inv_freq(dim: usize, theta: f64) -> Vec<f32> {
    (0..dim / 2)
        .map(|i| 1.0f32 / (theta as f32).powf((2 * i) as f32 / dim as f32))
        .collect()
}

/// Text-decoder rotary tables with interleaved M-RoPE.
#[derive(Debug, Clone)]
pub struct TextRope {
    inv_freq: Vec<f32>,
    /// For each frequency, the axis (0 = t, 1 = h, 2 = w) whose position drives it.
    axis_of: Vec<usize>,
}

impl TextRope {
    /// Builds the tables for `head_dim` and the `mrope_section` split.
    pub fn new(head_dim: usize, theta: f64, section: &[usize]) -> Self {
        let inv_freq = inv_freq(head_dim, theta);
        // `apply_interleaved_mrope`: frequency j uses h if j % 3 == 1 and j < 3*section[1],
        // w if j % 3 == 2 and j < 3*section[2], t otherwise.
        let axis_of = (0..inv_freq.len())
            .map(|j| {
                let s = |k: usize| section.get(k).copied().unwrap_or(0);
                if j % 3 == 1 && j < 3 * s(1) {
                    1
                } else if j % 3 == 2 && j < 3 * s(2) {
                    2
                } else {
                    0
                }
            })
            .collect();
        Self { inv_freq, axis_of }
    }

    /// `(cos, sin)` of shape `(len, head_dim / 2)` for positions `axes[a][i]`: the half tables
    /// candle's `rope` expects (the full tables repeat them).
    pub fn cos_sin(&self, axes: &[Vec<u32>; 3], dev: &Device) -> Result<(Tensor, Tensor)> {
        let n = axes[0].len();
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(n * half);
        let mut sin = Vec::with_capacity(n * half);
        for ((&t, &h), &w) in axes[0].iter().zip(&axes[1]).zip(&axes[2]) {
            let pos = [t, h, w];
            for (f, &axis) in self.inv_freq.iter().zip(&self.axis_of) {
                let p = pos[axis] as f32;
                let a = f * p;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        Ok((
            Tensor::from_vec(cos, (n, half), dev)?,
            Tensor::from_vec(sin, (n, half), dev)?,
        ))
    }
}

/// Patch coordinates `(row, col)` in the vision encoder's merge-window order: windows of
/// `merge x merge` patches are contiguous, row-major inside and across windows.
pub fn vision_patch_coords(grid: [usize; 3], merge: usize) -> Vec<(usize, usize)> {
    let [t, h, w] = grid;
    let mut out = Vec::with_capacity(t * h * w);
    for _ in 0..t {
        for bh in 0..h / merge {
            for bw in 0..w / merge {
                for ih in 0..merge {
                    for iw in 0..merge {
                        out.push((bh * merge + ih, bw * merge + iw));
                    }
                }
            }
        }
    }
    out
}

/// Vision rotary `(cos, sin)`, each `(patches, head_dim / 2)`: the first half of every row is
/// driven by the patch row, the second by the column (`rot_pos_emb`).
pub fn vision_cos_sin(
    grids: &[[usize; 3]],
    merge: usize,
    head_dim: usize,
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let freqs = inv_freq(head_dim / 2, 10_000.0);
    let q = freqs.len();
    let mut cos = Vec::new();
    let mut sin = Vec::new();
    let mut n = 0;
    for g in grids {
        for (r, c) in vision_patch_coords(*g, merge) {
            for p in [r, c] {
                for f in &freqs {
                    let a = p as f32 * f;
                    cos.push(a.cos());
                    sin.push(a.sin());
                }
            }
            n += 1;
        }
    }
    Ok((
        Tensor::from_vec(cos, (n, 2 * q), dev)?,
        Tensor::from_vec(sin, (n, 2 * q), dev)?,
    ))
}

/// `torch.linspace(0, end, steps)` in f32, including torch's symmetric evaluation (the second
/// half is computed from the end) so bilinear weights match bit for bit where possible.
fn linspace(end: f32, steps: usize) -> Vec<f32> {
    if steps == 1 {
        return vec![0.0];
    }
    let step = end / (steps - 1) as f32;
    let halfway = steps / 2;
    (0..steps)
        .map(|i| {
            if i < halfway {
                step * i as f32
            } else {
                end - step * (steps - 1 - i) as f32
            }
        })
        .collect()
}

/// Bilinear interpolation of the learned `side x side` position table onto an `h x w` patch
/// grid (`fast_pos_embed_interpolate`): four `(index, weight)` corner lists per patch, in the
/// merge-window order of [`vision_patch_coords`], repeated for each frame.
pub fn pos_embed_corners(grid: [usize; 3], merge: usize, side: usize) -> [Vec<(u32, f32)>; 4] {
    let [_, h, w] = grid;
    let last = (side - 1) as f32;
    let hs = linspace(last, h);
    let ws = linspace(last, w);
    let mut out: [Vec<(u32, f32)>; 4] = Default::default();
    for (r, c) in vision_patch_coords(grid, merge) {
        let (hf, wf) = (hs[r], ws[c]);
        let (h0, w0) = (hf as usize, wf as usize);
        let (h1, w1) = ((h0 + 1).min(side - 1), (w0 + 1).min(side - 1));
        let (dh, dw) = (hf - h0 as f32, wf - w0 as f32);
        let corners = [
            (h0 * side + w0, (1.0 - dh) * (1.0 - dw)),
            (h0 * side + w1, (1.0 - dh) * dw),
            (h1 * side + w0, dh * (1.0 - dw)),
            (h1 * side + w1, dh * dw),
        ];
        for (o, (i, wt)) in out.iter_mut().zip(corners) {
            o.push((i as u32, wt));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_only_positions_are_arange() {
        let p = rope_index(&[5, 6, 7], &[], 99, 2);
        assert_eq!(p.axes[0], vec![0, 1, 2]);
        assert_eq!(p.axes[2], vec![0, 1, 2]);
        assert_eq!(p.delta, 0);
    }

    #[test]
    fn image_run_restarts_after_max() {
        // 2 text, a 1x4x6 grid (2x3 tokens), 1 text
        let ids = [1, 2, 9, 9, 9, 9, 9, 9, 3];
        let p = rope_index(&ids, &[[1, 4, 6]], 9, 2);
        assert_eq!(p.axes[0], vec![0, 1, 2, 2, 2, 2, 2, 2, 5]);
        assert_eq!(p.axes[1], vec![0, 1, 2, 2, 2, 3, 3, 3, 5]);
        assert_eq!(p.axes[2], vec![0, 1, 2, 3, 4, 2, 3, 4, 5]);
        assert_eq!(p.delta, 6 - 9);
    }
}
