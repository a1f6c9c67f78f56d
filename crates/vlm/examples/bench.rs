//! CPU benchmark of the full-size Qwen3-VL-2B shapes (`Config::qwen3_vl_2b`) with random,
//! materialised weights on a synthetic 1280x720 dashboard: load/quantize time, vision and
//! prefill time (time to first token) and decode tokens/s, plus peak RSS.
//!
//! `cargo run --release -p opslens-vlm --example bench -- [--mode q4k|q8_0|f16|f32]
//!  [--vision-mode f32|f16|q8_0] [--width 1280 --height 720] [--decode 16] [--max-pixels N]
//!  [--cache-dir DIR] [--device cpu|cuda[:N]|metal[:N]]`
//! On a GPU (`--features cuda`, `--device cuda`) the timings synchronise the device before each
//! reading, so they are the GPU's own; RSS and CPU seconds are then the host's.
//! Zero weights would fake the numbers (untouched calloc pages, see reference/vlm.md).

use std::time::Instant;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use opslens_vlm::qwen3_vl::processor::ImageProcessor;
use opslens_vlm::{Config, PreprocessorConfig, Qwen3Vl, WeightMode};

mod common;
use common::{cpu_s, dashboard, load_avg, peak_rss_mb, status_mb, RandomBackend};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> anyhow::Result<()> {
    let mode = WeightMode::parse(&arg("--mode").unwrap_or_else(|| "q4k".into()))
        .ok_or_else(|| anyhow::anyhow!("bad --mode"))?;
    let w: u32 = arg("--width").map_or(Ok(1280), |s| s.parse())?;
    let h: u32 = arg("--height").map_or(Ok(720), |s| s.parse())?;
    let n_decode: usize = arg("--decode").map_or(Ok(16), |s| s.parse())?;
    let max_pixels: Option<usize> = arg("--max-pixels").map(|s| s.parse()).transpose()?;
    let dev = match arg("--device").as_deref().unwrap_or("cpu") {
        "cpu" => Device::Cpu,
        d => {
            let (kind, n) = d.split_once(':').unwrap_or((d, "0"));
            let n: usize = n.parse()?;
            match kind {
                "cuda" => Device::new_cuda(n)?,
                "metal" => Device::new_metal(n)?,
                _ => anyhow::bail!("bad --device {d} (cpu, cuda[:N], metal[:N])"),
            }
        }
    };
    // GPU work is asynchronous: wait for it before reading the clock.
    let sync = |d: &Device| d.synchronize();
    let cfg = Config::qwen3_vl_2b();

    let load_avg_start = load_avg();
    let c0 = cpu_s();
    let t = Instant::now();
    let vb = VarBuilder::from_backend(Box::new(RandomBackend), DType::F32, dev.clone());
    let vision_mode = match arg("--vision-mode") {
        Some(v) => WeightMode::parse(&v).ok_or_else(|| anyhow::anyhow!("bad --vision-mode"))?,
        None => mode.default_vision(),
    };
    eprintln!("loading {mode:?} (vision {vision_mode:?})");
    // --cache-dir: the app's quantized-weight cache. The key has no weight files here (random
    // weights), so a second run reads the first run's blocks: for timing the load only.
    let cache = arg("--cache-dir").map(|d| {
        let modes = format!("bench/{mode:?}/{vision_mode:?}");
        std::sync::Arc::new(opslens_vlm::qcache::QuantCache::open(
            d.as_ref(),
            &[],
            &modes,
            &dev,
        ))
    });
    let mut model = opslens_vlm::qcache::scoped(cache.clone(), || {
        Qwen3Vl::load_split(vb, &cfg, mode, vision_mode)
    })?;
    sync(&dev)?;
    let cache_note = cache.map(|c| c.finish());
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let c_load = cpu_s();
    let rss_after_load = status_mb("VmRSS");
    let peak_during_load = peak_rss_mb();

    let proc = ImageProcessor::new(&PreprocessorConfig::default(), None, max_pixels);
    let t = Instant::now();
    let input = proc.preprocess(&dashboard(w, h), &dev)?;
    let pre_ms = t.elapsed().as_secs_f64() * 1e3;
    let n_img = input.num_tokens(2);

    // <|im_start|>user\n<|vision_start|> [pads] <|vision_end|> 40 text tokens <|im_end|>\n<|im_start|>assistant\n
    let mut ids = vec![151_644u32, 872, 198, 151_652];
    ids.extend(std::iter::repeat_n(cfg.image_token_id, n_img));
    ids.push(151_653);
    ids.extend((0..40u32).map(|i| 1000 + i * 37));
    ids.extend([151_645, 198, 151_644, 77_091, 198]);

    eprintln!("loaded in {load_ms:.0} ms; vision on {:?}", input.grid_thw);
    let t = Instant::now();
    let vis = model.encode_images(std::slice::from_ref(&input))?;
    sync(&dev)?;
    let vision_ms = t.elapsed().as_secs_f64() * 1e3;
    let c_vision = cpu_s();
    eprintln!("vision {vision_ms:.0} ms; prefill of {} tokens", ids.len());
    let t = Instant::now();
    let logits = model.prefill(&ids, &[input.grid_thw], Some(&vis), false, &mut |_, _| {})?;
    sync(&dev)?;
    let prefill_ms = t.elapsed().as_secs_f64() * 1e3;
    let c_prefill = cpu_s();
    drop(vis);
    let mut next = logits.flatten_all()?.argmax(0)?.to_scalar::<u32>()?;
    let t = Instant::now();
    for _ in 0..n_decode {
        let l = model.decode_step(next)?;
        next = l.flatten_all()?.argmax(0)?.to_scalar::<u32>()?;
    }
    let decode_s = t.elapsed().as_secs_f64();
    let c_decode = cpu_s();
    let report = serde_json::json!({
        "device": format!("{dev:?}"),
        "mode": format!("{mode:?}"),
        "vision_mode": format!("{vision_mode:?}"),
        "image": format!("{w}x{h}"),
        "grid_thw": input.grid_thw,
        "image_tokens": n_img,
        "prompt_tokens": ids.len(),
        "load_ms": load_ms,
        "quant_cache": cache_note.map(|c| {
            serde_json::json!({"read": c.read, "written": c.written, "error": c.error})
        }),
        "preprocess_ms": pre_ms,
        "vision_ms": vision_ms,
        "prefill_ms": prefill_ms,
        "time_to_first_token_ms": pre_ms + vision_ms + prefill_ms,
        "decode_tokens": n_decode,
        "decode_tokens_per_s": n_decode as f64 / decode_s,
        "rss_after_load_mb": rss_after_load,
        "peak_rss_during_load_mb": peak_during_load,
        "rss_end_mb": status_mb("VmRSS"),
        "peak_rss_mb": peak_rss_mb(),
        "cpu_s": {
            "load": c_load - c0,
            "vision": c_vision - c_load,
            "prefill": c_prefill - c_vision,
            "decode_per_token": (c_decode - c_prefill) / n_decode.max(1) as f64,
        },
        "cpu": common::cpu(),
        "load_avg_start": load_avg_start,
        "load_avg_end": load_avg(),
        "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into()),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
