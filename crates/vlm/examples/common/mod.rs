//! What the CPU benchmark (`examples/bench.rs`) and its peer (`peer-bench/`, candle-transformers'
//! own `qwen3_vl`) share, so both measure the same weights and picture: random materialised
//! weights (zero weights would fake the numbers: untouched calloc pages), the synthetic
//! dashboard, and /proc readings.

#![allow(dead_code)]

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use image::{DynamicImage, Rgb, RgbImage};

/// N(0, 0.02) weights, norm weights 1; no untied `lm_head` (like the real tied checkpoint).
pub struct RandomBackend;

impl SimpleBackend for RandomBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dt: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        let is_norm = name.contains("norm") && name.ends_with("weight");
        if is_norm {
            return Tensor::ones(s, dt, dev);
        }
        Tensor::randn(0f32, 0.02, s, dev)?.to_dtype(dt)
    }
    fn get_unchecked(&self, name: &str, _dt: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("no shape for {name}")
    }
    fn contains_tensor(&self, name: &str) -> bool {
        // untied lm_head is absent, like the real tied checkpoint
        !name.starts_with("lm_head")
    }
}

pub fn dashboard(w: u32, h: u32) -> DynamicImage {
    let mut img = RgbImage::from_pixel(w, h, Rgb([22, 24, 30]));
    for panel in 0..6u32 {
        let (px, py) = ((panel % 3) * w / 3, (panel / 3) * h / 2);
        for x in px + 8..px + w / 3 - 8 {
            let y =
                py + h / 4 + ((((x * 7 + panel * 13) % 37) as f32 - 18.0) * 2.0) as u32 % (h / 5);
            for dy in 0..3 {
                img.put_pixel(
                    x,
                    (y + dy).min(h - 1),
                    Rgb([230, 80 + panel as u8 * 20, 50]),
                );
            }
            img.put_pixel(x, py + 6, Rgb([90, 90, 100]));
        }
    }
    DynamicImage::ImageRgb8(img)
}

pub fn peak_rss_mb() -> f64 {
    status_mb("VmHWM")
}

/// A `/proc/self/status` memory line (kB) in MB.
pub fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(key)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds used by this process so far (all threads), from /proc: under a shared,
/// oversubscribed machine this is steadier than wall time.
pub fn cpu_s() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_owned();
            let f: Vec<&str> = rest.split_whitespace().collect();
            // fields 14 and 15 (utime, stime) are at 11, 12 after the ")"
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// The CPU's model name and the SIMD features candle's and our kernels choose between
/// (`avx2`, `avx512_vnni`, `amx_int8`, ...), from `/proc/cpuinfo`: the same code measured 2x
/// apart on two VMs of this project, and on AMX CPUs candle takes other kernels (and memory).
pub fn cpu() -> String {
    const SIMD: [&str; 7] = [
        "avx2",
        "fma",
        "f16c",
        "avx_vnni",
        "avx512f",
        "avx512bw",
        "avx512_vnni",
    ];
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let flags = field("flags");
    let kept: Vec<&str> = flags
        .split_whitespace()
        .filter(|f| SIMD.contains(f) || f.starts_with("amx"))
        .collect();
    format!("{} [{}]", field("model name"), kept.join(" "))
}

/// The system's load averages (`/proc/loadavg`), printed beside each figure.
pub fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}
