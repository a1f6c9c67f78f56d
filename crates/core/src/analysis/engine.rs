//! The engine seam: what runs one prompt over one screenshot. Two implementations, chosen once
//! at start: the local candle engine ([`LocalAnalyzer`]) and an OpenAI-compatible server
//! ([`super::remote::RemoteAnalyzer`]). Everything around them (the queue, leases, the
//! findings parser, timeline placement, streaming) is shared, so both behave the same.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use opslens_vlm::{EngineHandle, GenerateParams, Sampling};

/// A boxed future, so the trait stays object-safe without a macro crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Receives the text as the model writes it, piece by piece.
pub type OnText = Box<dyn FnMut(&str) + Send>;

/// One prompt over one screenshot.
#[derive(Debug, Clone)]
pub struct Request {
    /// The image file as stored (PNG/JPEG/…): the remote backend sends it as is.
    pub image: Vec<u8>,
    /// Its media type, for the data URL.
    pub mime: String,
    /// System message.
    pub system: String,
    /// The user prompt.
    pub prompt: String,
    /// Upper bound of generated tokens.
    pub max_new_tokens: usize,
    /// The answer is one JSON object: end the run as soon as it closes (the local engine
    /// stops decoding, the remote stream is dropped, which ends the server's generation).
    pub stop_at_json_end: bool,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The whole text written.
    pub text: String,
    /// Phase timings (ms) and token counts, as the engine knows them.
    pub timings: serde_json::Map<String, serde_json::Value>,
    /// The screenshot's vision-tower embedding, where the engine can see inside the model
    /// (the local one); kept for the similar-incidents ranking.
    pub embedding: Option<opslens_vlm::ImageEmbedding>,
}

/// Runs prompts over screenshots. Implementations never block the runtime and never hang:
/// a failure is an `Err` with words a person can act on (a server's own message included).
pub trait Analyzer: Send + Sync + std::fmt::Debug {
    /// Where runs happen, recorded on each job: the device name (`cpu`, `cuda:0`) or the
    /// server's URL.
    fn device(&self) -> String;

    /// Runs one request, calling `on_text` with each new piece of text; `cancel` set stops the
    /// run early (its result is then discarded by the caller).
    fn generate<'a>(
        &'a self,
        req: Request,
        on_text: OnText,
        cancel: Arc<AtomicBool>,
    ) -> BoxFuture<'a, Result<Generated, String>>;
}

/// The local candle engine on its own thread.
#[derive(Debug)]
pub struct LocalAnalyzer {
    /// The loaded engine (shared with summary drafts while loaded).
    pub handle: std::sync::Arc<EngineHandle>,
    /// Its device name.
    pub device: String,
}

impl Analyzer for LocalAnalyzer {
    fn device(&self) -> String {
        self.device.clone()
    }

    fn generate<'a>(
        &'a self,
        req: Request,
        mut on_text: OnText,
        cancel: Arc<AtomicBool>,
    ) -> BoxFuture<'a, Result<Generated, String>> {
        Box::pin(async move {
            let bytes = req.image;
            let image = tokio::task::spawn_blocking(move || {
                image::load_from_memory(&bytes).map_err(|e| format!("cannot decode the image: {e}"))
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()))?;
            let params = GenerateParams {
                max_new_tokens: req.max_new_tokens,
                sampling: Sampling::Greedy,
                system: Some(req.system),
                stop_at_json_end: req.stop_at_json_end,
                ..GenerateParams::default()
            };
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.handle
                .submit(opslens_vlm::Job {
                    image: Some(image),
                    more_images: Vec::new(),
                    prompt: req.prompt,
                    params,
                    cancel,
                    on_text: Some(Box::new(move |_, piece| on_text(piece))),
                    reply: Box::new(move |r| {
                        let _ = tx.send(r);
                    }),
                })
                .map_err(|e| e.to_string())?;
            let g = rx
                .await
                .map_err(|_| "the engine stopped during the analysis".to_string())?
                .map_err(|e| e.to_string())?;
            let t = &g.timings;
            let decode_s = t.decode_ms / 1000.0;
            let serde_json::Value::Object(timings) = serde_json::json!({
                "preprocess_ms": t.preprocess_ms,
                "vision_ms": t.vision_ms,
                "prefill_ms": t.prefill_ms,
                "decode_ms": t.decode_ms,
                "prompt_tokens": g.prompt_tokens,
                "image_tokens": g.image_tokens,
                "generated_tokens": g.token_ids.len(),
                "decode_tokens_per_s": if decode_s > 0.0 { g.token_ids.len() as f64 / decode_s } else { 0.0 },
                "stop_reason": g.stop_reason,
            }) else {
                unreachable!("a json! object literal is an object")
            };
            let embedding = g
                .image_embeddings
                .into_iter()
                .next()
                .filter(|v| !v.is_empty())
                .map(|vector| opslens_vlm::ImageEmbedding {
                    model: self.handle.model_id.clone(),
                    vector,
                });
            Ok(Generated {
                text: g.text,
                timings,
                embedding,
            })
        })
    }
}
