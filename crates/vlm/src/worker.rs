//! The engine thread: the model lives on one dedicated thread and takes jobs from a queue,
//! one at a time (DESIGN "Processes and threads"; mistral.rs `get_sender` pattern). Callers on
//! an async runtime submit a job and await the reply callback; nothing blocks the runtime.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use candle_core::Device;
use image::DynamicImage;

use crate::engine::{Engine, LoadOptions};
use crate::error::VlmError;
use crate::generate::{GenerateParams, Generation};

/// Streaming callback: `(token id, new text piece)`.
pub type OnText = Box<dyn FnMut(u32, &str) + Send>;
/// Completion callback, called exactly once per job (e.g. wraps a tokio oneshot sender).
pub type Reply = Box<dyn FnOnce(Result<Generation, VlmError>) + Send>;

/// One analysis request.
pub struct Job {
    /// The screenshot, if any.
    pub image: Option<DynamicImage>,
    /// Further pictures after `image` in the same prompt (a before/after comparison).
    pub more_images: Vec<DynamicImage>,
    /// The question.
    pub prompt: String,
    /// Decoding parameters.
    pub params: GenerateParams,
    /// Set to stop this job early (it then replies with what it has, `StopReason::Cancelled`).
    pub cancel: Arc<AtomicBool>,
    /// Optional streaming of text pieces.
    pub on_text: Option<OnText>,
    /// Receives the result.
    pub reply: Reply,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("prompt", &self.prompt)
            .finish_non_exhaustive()
    }
}

/// Handle to the engine thread; dropping it ends the thread after the queued jobs.
#[derive(Debug)]
pub struct EngineHandle {
    tx: Option<mpsc::Sender<Job>>,
    queued: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
    /// Load time of the model, for status reporting.
    pub load_ms: f64,
    /// How the load used the quantized-weight cache, for the log.
    pub quant_cache: Option<crate::qcache::CacheUse>,
    /// The loaded weights' id (see [`crate::embed::model_id`]), what image embeddings from
    /// this engine are stamped with.
    pub model_id: String,
}

impl EngineHandle {
    /// Starts the thread, loads the model folder on it and returns once it is ready (or the
    /// load error).
    pub fn spawn(dir: PathBuf, device: Device, opts: LoadOptions) -> Result<Self, VlmError> {
        let (tx, rx) = mpsc::channel::<Job>();
        type Ready = (f64, Option<crate::qcache::CacheUse>, String);
        let (ready_tx, ready_rx) = mpsc::channel::<Result<Ready, VlmError>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        let thread = std::thread::Builder::new()
            .name("vlm".into())
            .spawn(move || {
                let mut engine = match Engine::load(&dir, &device, &opts) {
                    Ok(e) => {
                        let _ = ready_tx.send(Ok((
                            e.load_ms,
                            e.quant_cache.clone(),
                            e.model_id.clone(),
                        )));
                        e
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for mut job in rx {
                    let mut sink = |t: u32, s: &str| {
                        if let Some(f) = job.on_text.as_mut() {
                            f(t, s)
                        }
                    };
                    let images: Vec<&DynamicImage> =
                        job.image.iter().chain(&job.more_images).collect();
                    let r = engine.generate_images(
                        &images,
                        &job.prompt,
                        &job.params,
                        &mut sink,
                        Some(&job.cancel),
                    );
                    let left = q.fetch_sub(1, Ordering::SeqCst) - 1;
                    (job.reply)(r);
                    if left == 0 {
                        // The heap keeps the analysis' freed buffers (`alloc::tune`).
                        crate::alloc::give_back();
                    }
                }
            })
            .map_err(|e| VlmError::Model(format!("cannot start the vlm thread: {e}")))?;
        let (load_ms, quant_cache, model_id) = ready_rx
            .recv()
            .map_err(|_| VlmError::Model("vlm thread died while loading".into()))??;
        Ok(Self {
            tx: Some(tx),
            queued,
            thread: Some(thread),
            load_ms,
            quant_cache,
            model_id,
        })
    }

    /// Queues a job; its `reply` is called when it finishes.
    pub fn submit(&self, job: Job) -> Result<(), VlmError> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        match sent {
            true => Ok(()),
            false => {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                Err(VlmError::Model("the vlm thread has stopped".into()))
            }
        }
    }

    /// Jobs queued or running.
    pub fn queue_len(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
