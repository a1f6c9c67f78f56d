//! What an analysis costs on this machine, measured rather than guessed: on the first load of a
//! model (per model, weights and device), once the queue is idle, the worker runs the real
//! analysis prompt over a generated 1280×720 dashboard-like picture for a few tokens and
//! records the seconds to the first token and the decode speed in `DATA_DIR/calibration.json`.
//! The status route and Settings turn it into "an analysis takes about N s on this machine".

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::engine::{Analyzer, Request};
use super::prompts;

/// The file, in the data dir.
pub const FILE: &str = "calibration.json";

/// Width and height of the calibration picture: a common laptop screenshot.
pub const SIZE: (u32, u32) = (1280, 720);

/// Tokens the run writes: enough to time decoding, short enough to take seconds.
const TOKENS: usize = 8;

/// Tokens a typical analysis writes (the JSON findings of a dashboard run 200–400), used to
/// turn the measured speeds into one estimate.
pub const TYPICAL_TOKENS: usize = 300;

/// One measurement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Calibration {
    /// Manifest id of the model measured.
    pub model: String,
    /// Its weight storage (`q4k`, `f32`, …).
    pub weights: String,
    /// The device it ran on.
    pub device: String,
    /// The picture's size, `1280x720`.
    pub image: String,
    /// Seconds from submitting the screenshot to the first token written (image preprocessing,
    /// vision tower, prompt prefill and one decode step).
    pub seconds_to_first_token: f64,
    /// Tokens per second after the first.
    pub decode_tokens_per_s: Option<f64>,
    /// Seconds a typical analysis takes here: the first token plus
    /// [`TYPICAL_TOKENS`] at the measured decode speed.
    pub analysis_seconds: f64,
    /// When it was measured.
    pub measured_at: DateTime<Utc>,
}

impl Calibration {
    /// Whether this measurement is of `model` with `weights` on `device`.
    pub fn is_for(&self, model: &str, weights: &str, device: &str) -> bool {
        self.model == model && self.weights == weights && self.device == device
    }
}

/// The stored measurement, if any (a damaged file reads as none: it is measured again).
pub fn load(data_dir: &Path) -> Option<Calibration> {
    let text = std::fs::read_to_string(data_dir.join(FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Stores `c`, replacing the file whole (written aside, then renamed).
pub fn store(data_dir: &Path, c: &Calibration) -> std::io::Result<()> {
    let tmp = data_dir.join(format!("{FILE}.tmp"));
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(c).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, data_dir.join(FILE))
}

/// A dashboard-like PNG of [`SIZE`]: panels with grid lines and a spiking series, so the
/// vision tower sees as many patches and as much detail as a real screenshot.
pub fn picture() -> Vec<u8> {
    let (w, h) = SIZE;
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let (px, py) = (x % 640, y % 360);
        let border = px < 8 || py < 8;
        let grid = px % 80 == 0 || py % 60 == 0;
        // A series that spikes in the middle of each panel.
        let t = px as f64 / 640.0;
        let level = 300.0 - 200.0 * (-(t - 0.6).powi(2) * 80.0).exp() - 30.0 * (t * 40.0).sin();
        let on_line = (py as f64 - level).abs() < 2.5;
        if border {
            image::Rgb([24, 27, 33])
        } else if on_line {
            image::Rgb([115, 191, 105])
        } else if grid {
            image::Rgb([44, 48, 56])
        } else {
            image::Rgb([17, 18, 23])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    // Encoding an in-memory RGB image cannot fail.
    let _ = img.write_to(&mut out, image::ImageFormat::Png);
    out.into_inner()
}

/// Runs the measurement on `engine` (the real prompt, [`TOKENS`] tokens).
pub async fn measure(
    engine: &dyn Analyzer,
    model: &str,
    weights: &str,
) -> Result<Calibration, String> {
    let started = Instant::now();
    let first: Arc<Mutex<Option<f64>>> = Arc::default();
    let f2 = first.clone();
    let req = Request {
        image: tokio::task::spawn_blocking(picture)
            .await
            .map_err(|e| e.to_string())?,
        mime: "image/png".into(),
        system: prompts::SYSTEM.into(),
        prompt: prompts::ANALYZE.into(),
        max_new_tokens: TOKENS,
        // A fixed number of tokens is measured, wherever the answer's JSON would close.
        stop_at_json_end: false,
    };
    let g = engine
        .generate(
            req,
            Box::new(move |_| {
                let mut f = f2.lock().unwrap_or_else(|e| e.into_inner());
                f.get_or_insert_with(|| started.elapsed().as_secs_f64());
            }),
            Arc::new(AtomicBool::new(false)),
        )
        .await?;
    let total = started.elapsed().as_secs_f64();
    let num = |k: &str| g.timings.get(k).and_then(serde_json::Value::as_f64);
    let tokens = num("generated_tokens").unwrap_or(0.0);
    let decode_s = num("decode_ms").unwrap_or(0.0) / 1000.0;
    // The engine times decoding from the first token on; without it, the wall clock.
    let rate = (tokens > 1.0 && decode_s > 0.0).then(|| (tokens - 1.0) / decode_s);
    let ttft = first
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(match rate {
            Some(r) => (total - (tokens - 1.0) / r).max(0.0),
            None => total,
        });
    let analysis_seconds = ttft + rate.map_or(0.0, |r| TYPICAL_TOKENS as f64 / r);
    Ok(Calibration {
        model: model.into(),
        weights: weights.into(),
        device: engine.device(),
        image: format!("{}x{}", SIZE.0, SIZE.1),
        seconds_to_first_token: ttft,
        decode_tokens_per_s: rate,
        analysis_seconds,
        measured_at: Utc::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_picture_is_a_1280x720_png_and_the_file_round_trips() {
        let png = picture();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), SIZE);
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).is_none());
        let c = Calibration {
            model: "m".into(),
            weights: "q4k".into(),
            device: "cpu".into(),
            image: "1280x720".into(),
            seconds_to_first_token: 1.5,
            decode_tokens_per_s: Some(10.0),
            analysis_seconds: 31.5,
            measured_at: Utc::now(),
        };
        store(dir.path(), &c).unwrap();
        assert_eq!(load(dir.path()), Some(c.clone()));
        assert!(c.is_for("m", "q4k", "cpu") && !c.is_for("m", "q4k", "cuda:0"));
        std::fs::write(dir.path().join(FILE), "{").unwrap();
        assert!(load(dir.path()).is_none());
    }
}
