//! How far each vision-tower storage moves the tower's output from f32, on the benchmark's
//! 2B shapes, random weights and synthetic dashboard:
//! `cargo run --release -p opslens-vlm --example vision_precision -- [q8_0 f16 q6k ...]`.
//!
//! Q8_0 layers take candle's VNNI tiles (8-bit activations) where the CPU has VNNI and expand
//! the weight to f32 elsewhere; `MISTRALRS_FORCE_AVX2=1` forces the second on a VNNI CPU, so
//! one machine measures both. Prints the relative error (Frobenius) of the merged image tokens
//! and of each DeepStack tap, and the tower's time.

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use opslens_vlm::qwen3_vl::vision::VisionModel;
use opslens_vlm::{Config, ImageProcessor, PreprocessorConfig, WeightMode};

/// [`common::RandomBackend`]'s weights, drawn once per name, so that every storage loads the
/// same tower.
#[derive(Clone, Default)]
struct SameWeights(Arc<Mutex<HashMap<String, Tensor>>>);

impl SimpleBackend for SameWeights {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: candle_nn::Init,
        dt: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        let mut m = self.0.lock().expect("weights");
        if let Some(t) = m.get(name) {
            return Ok(t.clone());
        }
        let t = common::RandomBackend.get(s, name, h, dt, dev)?;
        m.insert(name.to_string(), t.clone());
        Ok(t)
    }
    fn get_unchecked(&self, name: &str, _dt: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("no shape for {name}")
    }
    fn contains_tensor(&self, name: &str) -> bool {
        common::RandomBackend.contains_tensor(name)
    }
}

fn rel(a: &Tensor, b: &Tensor) -> Result<f32> {
    let d = (a - b)?.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
    Ok(d / b.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?)
}

fn main() -> anyhow::Result<()> {
    let modes: Vec<WeightMode> = std::env::args()
        .skip(1)
        .map(|s| WeightMode::parse(&s).ok_or_else(|| anyhow::anyhow!("bad mode {s}")))
        .collect::<anyhow::Result<_>>()?;
    let modes = if modes.is_empty() {
        vec![WeightMode::Q8_0]
    } else {
        modes
    };
    let dev = Device::Cpu;
    let cfg = Config::qwen3_vl_2b();
    let weights = SameWeights::default();
    let load = |mode| {
        let vb = VarBuilder::from_backend(Box::new(weights.clone()), DType::F32, dev.clone());
        VisionModel::load(vb.pp("model.visual"), &cfg.vision_config, mode)
    };
    let input = ImageProcessor::new(&PreprocessorConfig::default(), None, None)
        .preprocess(&common::dashboard(1280, 720), &dev)?;
    let run = |m: &VisionModel| -> Result<_> {
        let t = Instant::now();
        let out = m.forward(&input.pixel_values, &[input.grid_thw])?;
        Ok((out, t.elapsed().as_secs_f64()))
    };
    let (exact, s) = run(&load(WeightMode::F32)?)?;
    println!("f32: {s:.1} s, grid {:?}", input.grid_thw);
    for mode in modes {
        let (out, s) = run(&load(mode)?)?;
        let taps = exact
            .deepstack
            .iter()
            .zip(&out.deepstack)
            .map(|(e, o)| rel(o, e).map(|r| format!("{r:.1e}")))
            .collect::<Result<Vec<_>>>()?;
        println!(
            "{mode:?}: {s:.1} s, image tokens rel. error {:.1e}, DeepStack taps {}",
            rel(&out.embeds, &exact.embeds)?,
            taps.join(" ")
        );
    }
    Ok(())
}
