//! `opslens vlm run`: load a model folder, answer a prompt about an image, print the text or
//! a JSON report. The model library (`opslens_vlm`) does the work; this is the command glue.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use opslens_vlm::{Engine, GenerateParams, LoadOptions, Sampling, WeightMode};
use serde::Serialize;

/// Arguments of `opslens vlm run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Model folder in the Hugging Face layout (config.json, tokenizer.json, safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// Image to analyse (PNG or JPEG).
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// The question or instruction.
    #[arg(long)]
    pub prompt: String,
    /// Optional system message.
    #[arg(long)]
    pub system: Option<String>,
    /// Upper bound on generated tokens.
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// Greedy decoding (the default unless --temperature is given).
    #[arg(long)]
    pub greedy: bool,
    /// Sampling temperature; enables top-p sampling unless --greedy.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Nucleus mass for sampling.
    #[arg(long, default_value_t = 0.9)]
    pub top_p: f64,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Decoder weight storage: auto (default: OPSLENS_WEIGHTS when set, else bf16 on a GPU and
    /// q4k, the fastest, on the CPU), q4k, q6k, q8_0, bf16, f16 or f32.
    #[arg(long, default_value = "auto")]
    pub dtype: String,
    /// Vision-tower storage: q8_0 (default with quantized decoders), f16, f32, q6k or q4k.
    #[arg(long)]
    pub vision_dtype: Option<String>,
    /// Upper pixel budget of the resized image (default 1024*768).
    #[arg(long)]
    pub max_pixels: Option<usize>,
    /// Lower pixel budget of the resized image.
    #[arg(long)]
    pub min_pixels: Option<usize>,
    /// Keep the quantized weights in this folder so later runs skip quantizing.
    #[arg(long)]
    pub cache_dir: Option<std::path::PathBuf>,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    pub json: bool,
}

/// The `--json` report.
#[derive(Debug, Serialize)]
struct Report<'a> {
    text: &'a str,
    token_ids: &'a [u32],
    prompt_tokens: usize,
    image_tokens: usize,
    stop_reason: opslens_vlm::StopReason,
    load_ms: f64,
    preprocess_ms: f64,
    vision_ms: f64,
    prefill_ms: f64,
    decode_ms: f64,
    decode_tokens_per_s: f64,
    dtype: &'a str,
}

/// Runs `opslens vlm run` with parsed arguments.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let vision_mode = args
        .vision_dtype
        .as_deref()
        .map(|v| {
            WeightMode::parse(v)
                .with_context(|| format!("unknown --vision-dtype {v:?} (f16, f32, q8_0, q6k, q4k)"))
        })
        .transpose()?;
    // The app's one device chooser (OPSLENS_DEVICE), so the CLI runs where the app would.
    let chosen =
        opslens_core::analysis::device::choose(std::env::var("OPSLENS_DEVICE").ok().as_deref())
            .map_err(anyhow::Error::msg)?;
    // A fallback's note is logged by the chooser itself, once.
    let mode = if args.dtype.trim().eq_ignore_ascii_case("auto") {
        // The app's choice for a model that has every storage: half precision on a GPU.
        let all = opslens_models::manifest::Quantization {
            default: "q4k".into(),
            variants: WeightMode::NAMES.split(", ").map(String::from).collect(),
        };
        opslens_core::analysis::device::weights_for(
            &all,
            chosen.is_gpu(),
            std::env::var("OPSLENS_WEIGHTS").ok().as_deref(),
        )
        .map_err(anyhow::Error::msg)?
    } else {
        WeightMode::parse(&args.dtype).with_context(|| {
            format!(
                "unknown --dtype {:?} (auto, {})",
                args.dtype,
                WeightMode::NAMES
            )
        })?
    };
    let device = chosen.device;
    let image = args
        .image
        .as_ref()
        .map(|p| image::open(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let mut engine = Engine::load(
        &args.model,
        &device,
        &LoadOptions {
            mode,
            vision_mode,
            min_pixels: args.min_pixels,
            max_pixels: args.max_pixels,
            cache_dir: args.cache_dir.clone(),
        },
    )
    .with_context(|| format!("loading model from {}", args.model.display()))?;
    let sampling = match (args.greedy, args.temperature) {
        (false, Some(temperature)) => Sampling::TopP {
            temperature,
            top_p: args.top_p,
            seed: args.seed,
        },
        _ => Sampling::Greedy,
    };
    let params = GenerateParams {
        max_new_tokens: args.max_new_tokens,
        sampling,
        system: args.system.clone(),
        ..GenerateParams::default()
    };
    let stream = !args.json;
    let mut stdout = std::io::stdout();
    let g = engine.generate(
        image.as_ref(),
        &args.prompt,
        &params,
        &mut |_, piece| {
            if stream {
                let _ = write!(stdout, "{piece}");
                let _ = stdout.flush();
            }
        },
        None,
    )?;
    if args.json {
        let dtype = format!("{mode:?}").to_lowercase();
        let r = Report {
            text: &g.text,
            token_ids: &g.token_ids,
            prompt_tokens: g.prompt_tokens,
            image_tokens: g.image_tokens,
            stop_reason: g.stop_reason,
            load_ms: engine.load_ms,
            preprocess_ms: g.timings.preprocess_ms,
            vision_ms: g.timings.vision_ms,
            prefill_ms: g.timings.prefill_ms,
            decode_ms: g.timings.decode_ms,
            decode_tokens_per_s: g.timings.decode_tokens_per_s,
            dtype: &dtype,
        };
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// `RunArgs` as the binary embeds it (`opslens vlm run …`).
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/test/tiny-qwen3-vl");

    #[test]
    fn runs_on_the_tiny_model() {
        let image = format!("{TINY}/wide.png");
        for dtype in ["f32", "q4k"] {
            let cli = Cli::try_parse_from([
                "vlm",
                "--model",
                TINY,
                "--image",
                &image,
                "--prompt",
                "What spiked?",
                "--max-new-tokens",
                "4",
                "--greedy",
                "--json",
                "--dtype",
                dtype,
            ])
            .expect("args parse");
            assert_eq!(cli.run.max_new_tokens, 4);
            run(&cli.run).expect("run");
        }
    }

    #[test]
    fn rejects_unknown_dtype() {
        let cli =
            Cli::try_parse_from(["vlm", "--model", "x", "--prompt", "p", "--dtype", "q3"]).unwrap();
        let err = run(&cli.run).unwrap_err();
        assert!(err.to_string().contains("q3"), "{err}");
    }
}
