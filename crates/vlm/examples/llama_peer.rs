//! Our side of the llama.cpp peer (`crates/vlm/peer/llama-cpp.sh`, issue 14): the same
//! measurements as `examples/bench.rs`, but on a checkpoint folder (the random Qwen3-VL-2B
//! checkpoint the script writes and converts to GGUF for llama.cpp), so both engines run the
//! SAME weights, picture and prompt text; and a teacher-forcing comparison of a quantized
//! decoder against our f32 path, scored like llama-perplexity's `--kl-divergence`.
//!
//! ```sh
//! llama_peer bench   --model DIR --image PNG --prompt TEXT [--mode q4k] [--decode 16]
//! llama_peer picture --out PNG [--width 1152 --height 640]
//! llama_peer teacher --model DIR --text FILE [--ctx 512] [--chunks 2] [--mode q4k]
//! ```
//! `bench` prints the bench's JSON report; `teacher` prints, per chunk of `ctx` tokens, the
//! positions `ctx/2 .. ctx-2` (llama-perplexity's scored half): top-1 agreement with the f32
//! logits and the mean KL(f32 || quantized) in nats, then the totals as JSON.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, D};
use opslens_vlm::qwen3_vl::processor::{encode, expand_image_pads};
use opslens_vlm::weights::{mmap_var_builder, weight_files};
use opslens_vlm::{Config, ImageProcessor, PreprocessorConfig, Qwen3Vl, WeightMode};
use tokenizers::Tokenizer;

mod common;
use common::{cpu_s, load_avg, peak_rss_mb, status_mb};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn need(name: &str) -> anyhow::Result<String> {
    arg(name).ok_or_else(|| anyhow::anyhow!("{name} is required"))
}

fn mode_arg(name: &str, default: &str) -> anyhow::Result<WeightMode> {
    let s = arg(name).unwrap_or_else(|| default.into());
    WeightMode::parse(&s).ok_or_else(|| anyhow::anyhow!("bad {name} {s}"))
}

fn load(dir: &Path, mode: WeightMode, vision: WeightMode) -> anyhow::Result<(Qwen3Vl, Config)> {
    let cfg = Config::from_file(&dir.join("config.json"))?;
    let files: Vec<PathBuf> = weight_files(dir)?;
    let vb = mmap_var_builder(&files, &Device::Cpu)?;
    let cache = arg("--cache-dir").map(|d| {
        let modes = format!("peer/{mode:?}/{vision:?}");
        std::sync::Arc::new(opslens_vlm::qcache::QuantCache::open(
            d.as_ref(),
            &files,
            &modes,
            &Device::Cpu,
        ))
    });
    let model = opslens_vlm::qcache::scoped(cache.clone(), || {
        Qwen3Vl::load_split(vb, &cfg, mode, vision)
    })?;
    if let Some(c) = cache {
        c.finish();
    }
    Ok((model, cfg))
}

fn tokenizer(dir: &Path) -> anyhow::Result<Tokenizer> {
    Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| anyhow::anyhow!("tokenizer: {e}"))
}

fn bench() -> anyhow::Result<()> {
    let dir = PathBuf::from(need("--model")?);
    let mode = mode_arg("--mode", "q4k")?;
    let vision_mode = match arg("--vision-mode") {
        Some(_) => mode_arg("--vision-mode", "")?,
        None => mode.default_vision(),
    };
    let n_decode: usize = arg("--decode").map_or(Ok(16), |s| s.parse())?;
    let max_pixels: Option<usize> = arg("--max-pixels").map(|s| s.parse()).transpose()?;
    let prompt = need("--prompt")?;
    let img = image::open(need("--image")?)?;
    let tok = tokenizer(&dir)?;

    let load_avg_start = load_avg();
    let c0 = cpu_s();
    let t = Instant::now();
    let (mut model, _cfg) = load(&dir, mode, vision_mode)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let c_load = cpu_s();
    let rss_after_load = status_mb("VmRSS");

    let proc = ImageProcessor::new(&PreprocessorConfig::default(), None, max_pixels);
    let t = Instant::now();
    let input = proc.preprocess(&img, &Device::Cpu)?;
    let pre_ms = t.elapsed().as_secs_f64() * 1e3;
    let n_img = input.num_tokens(2);
    // Qwen3-VL's chat template for one user turn with the picture first, as llama-mtmd-cli
    // renders it from the GGUF's template.
    let text = format!(
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{prompt}<|im_end|>\n<|im_start|>assistant\n"
    );
    let ids = encode(&tok, &expand_image_pads(&text, &[n_img]))?;

    eprintln!(
        "loaded in {load_ms:.0} ms; vision on {:?}; prompt {} tokens",
        input.grid_thw,
        ids.len()
    );
    let t = Instant::now();
    let vis = model.encode_images(std::slice::from_ref(&input))?;
    let vision_ms = t.elapsed().as_secs_f64() * 1e3;
    let c_vision = cpu_s();
    let t = Instant::now();
    let logits = model.prefill(&ids, &[input.grid_thw], Some(&vis), false, &mut |_, _| {})?;
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
        "model": dir.display().to_string(),
        "mode": format!("{mode:?}"),
        "vision_mode": format!("{vision_mode:?}"),
        "image": format!("{}x{}", img.width(), img.height()),
        "grid_thw": input.grid_thw,
        "image_tokens": n_img,
        "prompt_tokens": ids.len(),
        "load_ms": load_ms,
        "preprocess_ms": pre_ms,
        "vision_ms": vision_ms,
        "prefill_ms": prefill_ms,
        "time_to_first_token_ms": pre_ms + vision_ms + prefill_ms,
        "decode_tokens": n_decode,
        "decode_tokens_per_s": n_decode as f64 / decode_s,
        "rss_after_load_mb": rss_after_load,
        "peak_rss_mb": peak_rss_mb(),
        "cpu_s": {
            "load": c_load - c0,
            "vision": c_vision - c_load,
            "prefill": c_prefill - c_vision,
            "decode_per_token": (c_decode - c_prefill) / n_decode.max(1) as f64,
        },
        "load_avg_start": load_avg_start,
        "load_avg_end": load_avg(),
        "threads": std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into()),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Log-probabilities of the scored rows of one chunk, `(rows, vocab)` f32.
fn scored_log_probs(model: &mut Qwen3Vl, chunk: &[u32], first: usize) -> anyhow::Result<Tensor> {
    let logits = model.prefill(chunk, &[], None, true, &mut |_, _| {})?;
    // logits at position j predict token j+1: rows first .. n-2, as llama-perplexity scores
    let rows = logits.narrow(0, first, chunk.len() - 1 - first)?;
    Ok(candle_nn::ops::log_softmax(
        &rows.to_dtype(DType::F32)?,
        D::Minus1,
    )?)
}

fn teacher() -> anyhow::Result<()> {
    let dir = PathBuf::from(need("--model")?);
    let mode = mode_arg("--mode", "q4k")?;
    let ctx: usize = arg("--ctx").map_or(Ok(512), |s| s.parse())?;
    let chunks: usize = arg("--chunks").map_or(Ok(2), |s| s.parse())?;
    let text = std::fs::read_to_string(need("--text")?)?;
    let tok = tokenizer(&dir)?;
    let ids = encode(&tok, &text)?;
    anyhow::ensure!(
        ids.len() >= ctx * chunks,
        "text has {} tokens, need {}",
        ids.len(),
        ctx * chunks
    );
    let first = ctx / 2;
    let load_avg_start = load_avg();
    // The f32 reference first, kept as log-probs of the scored rows only; then the model is
    // dropped before the quantized one loads (two full models would not fit beside the rest).
    let t = Instant::now();
    let (mut f32_model, _) = load(&dir, WeightMode::F32, WeightMode::Q8_0)?;
    eprintln!("f32 loaded in {:.0} s", t.elapsed().as_secs_f64());
    let mut base = Vec::new();
    for c in 0..chunks {
        let t = Instant::now();
        base.push(scored_log_probs(
            &mut f32_model,
            &ids[c * ctx..(c + 1) * ctx],
            first,
        )?);
        eprintln!("f32 chunk {c}: {:.0} s", t.elapsed().as_secs_f64());
    }
    drop(f32_model);
    let t = Instant::now();
    let (mut q_model, _) = load(&dir, mode, WeightMode::Q8_0)?;
    eprintln!("{mode:?} loaded in {:.0} s", t.elapsed().as_secs_f64());
    let (mut same, mut n, mut kl_sum, mut kl_sq) = (0usize, 0usize, 0f64, 0f64);
    let mut kl_max = 0f64;
    for (c, lp_base) in base.iter().enumerate() {
        let t = Instant::now();
        let lp_q = scored_log_probs(&mut q_model, &ids[c * ctx..(c + 1) * ctx], first)?;
        let top_b = lp_base.argmax(D::Minus1)?.to_vec1::<u32>()?;
        let top_q = lp_q.argmax(D::Minus1)?.to_vec1::<u32>()?;
        // KL(base || q) = sum p_base (log p_base - log p_q), per row
        let kl = (lp_base.exp()? * (lp_base - &lp_q)?)?
            .sum(D::Minus1)?
            .to_vec1::<f32>()?;
        let s = top_b.iter().zip(&top_q).filter(|(a, b)| a == b).count();
        for k in &kl {
            let k = *k as f64;
            kl_sum += k;
            kl_sq += k * k;
            kl_max = kl_max.max(k);
        }
        same += s;
        n += kl.len();
        eprintln!(
            "{mode:?} chunk {c}: {:.0} s, same top {s}/{}, mean KL {:.6}",
            t.elapsed().as_secs_f64(),
            kl.len(),
            kl.iter().map(|&k| k as f64).sum::<f64>() / kl.len() as f64
        );
    }
    let mean = kl_sum / n as f64;
    let report = serde_json::json!({
        "model": dir.display().to_string(),
        "mode": format!("{mode:?}"),
        "reference": "F32",
        "ctx": ctx,
        "chunks": chunks,
        "positions": n,
        "same_top1": same as f64 / n as f64,
        "mean_kl": mean,
        "kl_std_err": ((kl_sq / n as f64 - mean * mean).max(0.0) / n as f64).sqrt(),
        "max_kl": kl_max,
        "load_avg_start": load_avg_start,
        "load_avg_end": load_avg(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("bench") => bench(),
        Some("teacher") => teacher(),
        Some("picture") => {
            // the bench's synthetic dashboard, drawn at the size both engines are given
            let w: u32 = arg("--width").map_or(Ok(1152), |s| s.parse())?;
            let h: u32 = arg("--height").map_or(Ok(640), |s| s.parse())?;
            common::dashboard(w, h).save(need("--out")?)?;
            Ok(())
        }
        _ => anyhow::bail!("usage: llama_peer bench|teacher --model DIR ..."),
    }
}
