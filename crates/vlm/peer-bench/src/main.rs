//! The peer of `examples/bench.rs`: candle-transformers 0.11.1's own `qwen3_vl::Qwen3VLModel`
//! (the module the issue's 113.7 s baseline was measured with, on another VM), f32, on this
//! machine, with the same full Qwen3-VL-2B shapes, the same random N(0, 0.02) weights (norms 1),
//! the same synthetic 1280x720 dashboard through our processor (720 image tokens) and the same
//! 770-token prompt layout. Its single `forward` runs vision and prefill together, so only the
//! time to first token is split out; then `--decode` one-token steps.
//!
//! `cargo run --release --manifest-path crates/vlm/peer-bench/Cargo.toml -- [--decode 8]`
//! Prints one JSON object (the same keys as the bench where they apply).

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::qwen3_vl::{Config, Qwen3VLModel};
use opslens_vlm::qwen3_vl::processor::ImageProcessor;
use opslens_vlm::PreprocessorConfig;

#[path = "../../examples/common/mod.rs"]
mod common;
use common::{cpu_s, dashboard, load_avg, peak_rss_mb, status_mb, RandomBackend};

/// `Qwen/Qwen3-VL-2B-Instruct`'s `config.json` values (as `opslens_vlm::Config::qwen3_vl_2b`),
/// in the fields candle-transformers reads.
const CONFIG: &str = r#"{
  "image_token_id": 151655, "video_token_id": 151656,
  "vision_start_token_id": 151652, "vision_end_token_id": 151653,
  "text_config": {
    "head_dim": 128, "vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 6144,
    "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
    "hidden_act": "silu", "max_position_embeddings": 262144, "rms_norm_eps": 1e-6,
    "tie_word_embeddings": true, "rope_theta": 5000000.0, "sliding_window": null
  },
  "vision_config": {
    "depth": 24, "hidden_size": 1024, "out_hidden_size": 2048, "hidden_act": "gelu_pytorch_tanh",
    "intermediate_size": 4096, "num_heads": 16, "in_chans": 3, "patch_size": 16,
    "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 2304,
    "deepstack_visual_indexes": [5, 11, 17]
  }
}"#;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n_decode: usize = args
        .iter()
        .position(|a| a == "--decode")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(8), |s| s.parse())?;
    let dev = Device::Cpu;
    let cfg: Config = serde_json::from_str(CONFIG)?;
    let load_avg_start = load_avg();

    let c0 = cpu_s();
    let t = Instant::now();
    let vb = VarBuilder::from_backend(Box::new(RandomBackend), DType::F32, dev.clone());
    let model = Qwen3VLModel::new(&cfg, vb)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let c_load = cpu_s();

    let proc = ImageProcessor::new(&PreprocessorConfig::default(), None, None);
    let input = proc.preprocess(&dashboard(1280, 720), &dev)?;
    let n_img = input.num_tokens(2);
    let mut ids = vec![151_644u32, 872, 198, 151_652];
    let pad_start = ids.len();
    ids.extend(std::iter::repeat_n(cfg.image_token_id, n_img));
    let pad_end = ids.len();
    ids.push(151_653);
    ids.extend((0..40u32).map(|i| 1000 + i * 37));
    ids.extend([151_645, 198, 151_644, 77_091, 198]);
    let n = ids.len();
    let [gt, gh, gw] = input.grid_thw;
    let grid = Tensor::new(&[[gt as u32, gh as u32, gw as u32]], &dev)?;
    eprintln!("loaded in {load_ms:.0} ms; prompt {n} tokens, {n_img} image tokens");

    let t = Instant::now();
    let logits = model.forward(
        &Tensor::new(ids.as_slice(), &dev)?.unsqueeze(0)?,
        Some(input.pixel_values.clone()),
        None,
        Some(grid),
        None,
        vec![n],
        vec![vec![(pad_start, pad_end)]],
        vec![vec![]],
        &[0],
    )?;
    let ttft_ms = t.elapsed().as_secs_f64() * 1e3;
    let c_first = cpu_s();
    eprintln!("first token after {ttft_ms:.0} ms");
    let mut next = logits.flatten_all()?.argmax(0)?.to_scalar::<u32>()?;
    let t = Instant::now();
    for step in 0..n_decode {
        let l = model.forward(
            &Tensor::new(&[[next]], &dev)?,
            None,
            None,
            None,
            None,
            vec![1],
            vec![vec![]],
            vec![vec![]],
            &[n + step],
        )?;
        next = l.flatten_all()?.argmax(0)?.to_scalar::<u32>()?;
    }
    let decode_s = t.elapsed().as_secs_f64();
    let c_decode = cpu_s();
    let report = serde_json::json!({
        "peer": "candle-transformers 0.11.1 qwen3_vl::Qwen3VLModel, f32",
        "image": "1280x720",
        "grid_thw": input.grid_thw,
        "image_tokens": n_img,
        "prompt_tokens": n,
        "load_ms": load_ms,
        "time_to_first_token_ms": ttft_ms,
        "decode_tokens": n_decode,
        "decode_tokens_per_s": n_decode as f64 / decode_s,
        "rss_end_mb": status_mb("VmRSS"),
        "peak_rss_mb": peak_rss_mb(),
        "cpu_s": {
            "load": c_load - c0,
            "first_token": c_first - c_load,
            "decode_per_token": (c_decode - c_first) / n_decode.max(1) as f64,
        },
        "load_avg_start": load_avg_start,
        "load_avg_end": load_avg(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
