//! Decode-only benchmark at the full Qwen3-VL-2B shapes (random weights): a text prompt of
//! `--prompt` tokens (default 770, the `bench` example's prompt length, so the KV cache is as
//! long), then `--decode` greedy steps, timed one by one. Skips the vision tower's minute, so
//! decode changes can be measured back to back (the `bench` example remains the end-to-end
//! figure).
//!
//! `cargo run --release -p opslens-vlm --example decode_bench -- [--mode q4k] [--prompt 770]
//!  [--decode 32] [--cache-dir DIR]`

use std::time::Instant;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use opslens_vlm::{Config, Qwen3Vl, WeightMode};

mod common;
use common::{cpu_s, load_avg, peak_rss_mb, RandomBackend};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> anyhow::Result<()> {
    let mode = WeightMode::parse(&arg("--mode").unwrap_or_else(|| "q4k".into()))
        .ok_or_else(|| anyhow::anyhow!("bad --mode"))?;
    let n_prompt: usize = arg("--prompt").map_or(Ok(770), |s| s.parse())?;
    let n_decode: usize = arg("--decode").map_or(Ok(32), |s| s.parse())?;
    let dev = Device::Cpu;
    let cfg = Config::qwen3_vl_2b();
    let load_avg_start = load_avg();
    let vb = VarBuilder::from_backend(Box::new(RandomBackend), DType::F32, dev.clone());
    let vision_mode = mode.default_vision();
    let cache = arg("--cache-dir").map(|d| {
        let modes = format!("bench/{mode:?}/{vision_mode:?}");
        std::sync::Arc::new(opslens_vlm::qcache::QuantCache::open(
            d.as_ref(),
            &[],
            &modes,
            &dev,
        ))
    });
    let t = Instant::now();
    let mut model = opslens_vlm::qcache::scoped(cache.clone(), || {
        Qwen3Vl::load_split(vb, &cfg, mode, vision_mode)
    })?;
    if let Some(c) = cache {
        c.finish();
    }
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    // <|im_start|>user\n, text, <|im_end|>\n<|im_start|>assistant\n
    let mut ids = vec![151_644u32, 872, 198];
    ids.extend((0..n_prompt.saturating_sub(8) as u32).map(|i| 1000 + (i * 37) % 50_000));
    ids.extend([151_645, 198, 151_644, 77_091, 198]);
    let t = Instant::now();
    let logits = model.prefill(&ids, &[], None, false, &mut |_, _| {})?;
    let prefill_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut next = logits.flatten_all()?.argmax(0)?.to_scalar::<u32>()?;
    let c0 = cpu_s();
    let t = Instant::now();
    let mut steps = Vec::with_capacity(n_decode);
    let mut tokens = Vec::with_capacity(n_decode);
    for _ in 0..n_decode {
        let s = Instant::now();
        let l = model.decode_step(next)?;
        next = l.flatten_all()?.argmax(0)?.to_scalar::<u32>()?;
        steps.push(s.elapsed().as_secs_f64() * 1e3);
        tokens.push(next);
    }
    let decode_s = t.elapsed().as_secs_f64();
    let cpu = (cpu_s() - c0) / n_decode.max(1) as f64;
    let mut sorted = steps.clone();
    sorted.sort_by(f64::total_cmp);
    let report = serde_json::json!({
        "mode": format!("{mode:?}"),
        "prompt_tokens": ids.len(),
        "load_ms": load_ms,
        "prefill_ms": prefill_ms,
        "decode_tokens": n_decode,
        "decode_tokens_per_s": n_decode as f64 / decode_s,
        "step_ms_median": sorted.get(sorted.len() / 2),
        "step_ms_best": sorted.first(),
        "cpu_s_per_token": cpu,
        "peak_rss_mb": peak_rss_mb(),
        "tokens": tokens,
        "cpu": common::cpu(),
        "load_avg_start": load_avg_start,
        "load_avg_end": load_avg(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
