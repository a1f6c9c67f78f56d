//! Generation: prompt assembly, greedy or temperature/top-p sampling with a seed, stop tokens,
//! a token budget, streaming through a callback and cooperative cancellation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Tensor};
use image::DynamicImage;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Serialize;

use crate::chat_template::{Message, Part};
use crate::engine::Engine;
use crate::error::VlmError;
use crate::qwen3_vl::processor::{encode, expand_image_pads};

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// Highest logit: reproducible, the default for analysis.
    Greedy,
    /// Softmax at `temperature`, restricted to the smallest set of tokens whose probability
    /// reaches `top_p`, drawn from a generator seeded with `seed` (same seed, same output).
    TopP {
        /// Softmax temperature (> 0).
        temperature: f64,
        /// Nucleus mass in (0, 1].
        top_p: f64,
        /// RNG seed.
        seed: u64,
    },
}

/// Parameters of one generation.
#[derive(Debug, Clone)]
pub struct GenerateParams {
    /// Upper bound on generated tokens.
    pub max_new_tokens: usize,
    /// Token choice rule.
    pub sampling: Sampling,
    /// Extra stop tokens on top of the engine's (`<|im_end|>`, `<|endoftext|>`).
    pub extra_stop_tokens: Vec<u32>,
    /// Optional system message.
    pub system: Option<String>,
    /// Stop as soon as the first top-level JSON object of the answer closes (see
    /// [`JsonEnd`]): an answer asked for as one JSON object is complete there, and whatever a
    /// small model adds after it (a closing fence, a recap) costs decode time for nothing.
    pub stop_at_json_end: bool,
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            sampling: Sampling::Greedy,
            extra_stop_tokens: Vec::new(),
            system: None,
            stop_at_json_end: false,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A stop token was produced (it is not part of the text).
    StopToken,
    /// `max_new_tokens` was reached.
    MaxTokens,
    /// The cancel flag was set.
    Cancelled,
    /// The answer's top-level JSON object closed ([`GenerateParams::stop_at_json_end`]).
    JsonEnd,
}

/// Watches streamed text for the end of its first top-level JSON object: text before the
/// first `{` (a code fence, a preamble) is skipped, braces and brackets inside strings (with
/// their escapes) do not count, and the object is closed when its depth returns to zero. Fed
/// piece by piece, so it works on a token stream (local) or an SSE stream (remote) alike.
#[derive(Debug, Clone, Default)]
pub struct JsonEnd {
    depth: usize,
    started: bool,
    in_str: bool,
    escaped: bool,
    closed: bool,
}

impl JsonEnd {
    /// A watcher that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the next piece of text; returns whether the first top-level object has closed
    /// (by now or before).
    pub fn feed(&mut self, piece: &str) -> bool {
        for c in piece.chars() {
            if self.closed {
                break;
            }
            if !self.started {
                if c == '{' {
                    self.started = true;
                    self.depth = 1;
                }
                continue;
            }
            if self.in_str {
                if self.escaped {
                    self.escaped = false;
                } else if c == '\\' {
                    self.escaped = true;
                } else if c == '"' {
                    self.in_str = false;
                }
                continue;
            }
            match c {
                '"' => self.in_str = true,
                '{' | '[' => self.depth += 1,
                '}' | ']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.closed = true;
                    }
                }
                _ => {}
            }
        }
        self.closed
    }

    /// Whether the first top-level object has closed.
    pub fn closed(&self) -> bool {
        self.closed
    }
}

/// Timings of one generation, in milliseconds unless stated.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Image decode-free preprocessing (resize, normalise, flatten).
    pub preprocess_ms: f64,
    /// Vision tower.
    pub vision_ms: f64,
    /// Decoder prefill over the whole prompt.
    pub prefill_ms: f64,
    /// All decode steps.
    pub decode_ms: f64,
    /// Generated tokens per second of decode (excludes the first token, which prefill yields).
    pub decode_tokens_per_s: f64,
}

/// Result of one generation.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    /// Decoded text of the generated tokens (stop token excluded).
    pub text: String,
    /// Generated token ids (stop token excluded).
    pub token_ids: Vec<u32>,
    /// Prompt length in tokens, image tokens included.
    pub prompt_tokens: usize,
    /// Image tokens in the prompt.
    pub image_tokens: usize,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Where the time went.
    pub timings: Timings,
    /// Mean-pooled vision-tower output of each image of the prompt, in order (see
    /// [`crate::embed`]): a by-product of the vision pass, kept for image similarity.
    #[serde(skip)]
    pub image_embeddings: Vec<Vec<f32>>,
}

/// Picks the next token from `(1, vocab)` or `(vocab,)` logits.
pub fn sample(logits: &Tensor, sampling: Sampling, rng: &mut StdRng) -> Result<u32, VlmError> {
    let v: Vec<f32> = logits.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
    Ok(sample_slice(&v, sampling, rng))
}

fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best as u32
}

fn sample_slice(v: &[f32], sampling: Sampling, rng: &mut StdRng) -> u32 {
    let (temperature, top_p) = match sampling {
        Sampling::Greedy => return argmax(v),
        Sampling::TopP {
            temperature, top_p, ..
        } => (temperature, top_p),
    };
    if temperature <= 0.0 {
        return argmax(v);
    }
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut probs: Vec<(u32, f64)> = v
        .iter()
        .enumerate()
        .map(|(i, x)| (i as u32, ((*x as f64 - max) / temperature).exp()))
        .collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    probs.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut kept = 0.0;
    let mut n = 0;
    for p in &probs {
        kept += p.1 / total;
        n += 1;
        if kept >= top_p {
            break;
        }
    }
    let probs = &probs[..n.max(1)];
    let mass: f64 = probs.iter().map(|p| p.1).sum();
    let mut r = rng.random::<f64>() * mass;
    for p in probs {
        r -= p.1;
        if r <= 0.0 {
            return p.0;
        }
    }
    probs[probs.len() - 1].0
}

/// The chat of one generation: an optional system message, then the user's `n_images`
/// pictures followed by the question. User text must not smuggle in control tokens
/// (`<|im_end|>`, `<|image_pad|>`, …), which the tokenizer would otherwise honour.
pub fn prompt_messages(system: Option<&str>, prompt: &str, n_images: usize) -> Vec<Message> {
    let defuse = |s: &str| s.replace("<|", "< |");
    let mut messages = Vec::with_capacity(2);
    if let Some(sys) = system {
        let text = defuse(sys);
        messages.push(Message::new("system", vec![Part::Text { text }]));
    }
    let mut user = vec![Part::Image; n_images];
    user.push(Part::Text {
        text: defuse(prompt),
    });
    messages.push(Message::new("user", user));
    messages
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

impl Engine {
    /// Answers `prompt` about `image` (or text only), streaming each new piece of text to
    /// `on_text` as it is decoded, and stopping early when `cancel` becomes true.
    pub fn generate(
        &mut self,
        image: Option<&DynamicImage>,
        prompt: &str,
        params: &GenerateParams,
        on_text: &mut dyn FnMut(u32, &str),
        cancel: Option<&AtomicBool>,
    ) -> Result<Generation, VlmError> {
        let images: Vec<&DynamicImage> = image.into_iter().collect();
        self.generate_images(&images, prompt, params, on_text, cancel)
    }

    /// [`Engine::generate`] over several images in one prompt (e.g. "what changed between
    /// these two screenshots?"): each image gets its own placeholder run and 3-D positions, and
    /// with more than one the template numbers them ("Picture 1: …"), as transformers does with
    /// `add_vision_id`.
    pub fn generate_images(
        &mut self,
        images: &[&DynamicImage],
        prompt: &str,
        params: &GenerateParams,
        on_text: &mut dyn FnMut(u32, &str),
        cancel: Option<&AtomicBool>,
    ) -> Result<Generation, VlmError> {
        let dev = self.model.device().clone();
        let merge = self.model.config().vision_config.spatial_merge_size;
        let mut timings = Timings::default();
        let t = Instant::now();
        let inputs = images
            .iter()
            .map(|img| self.processor.preprocess(img, &dev))
            .collect::<Result<Vec<_>, _>>()?;
        timings.preprocess_ms = ms(t);
        let text = self.template.render(
            &prompt_messages(params.system.as_deref(), prompt, inputs.len()),
            true,
            inputs.len() > 1,
        )?;
        let counts: Vec<usize> = inputs.iter().map(|i| i.num_tokens(merge)).collect();
        let ids = encode(&self.tokenizer, &expand_image_pads(&text, &counts))?;
        let t = Instant::now();
        let vision = if inputs.is_empty() {
            None
        } else {
            Some(self.model.encode_images(&inputs)?)
        };
        let image_embeddings = match &vision {
            Some(v) => crate::embed::mean_pool(&v.embeds, &counts)?,
            None => Vec::new(),
        };
        timings.vision_ms = ms(t);
        let grids: Vec<[usize; 3]> = inputs.iter().map(|i| i.grid_thw).collect();
        let t = Instant::now();
        let mut logits =
            self.model
                .prefill(&ids, &grids, vision.as_ref(), false, &mut |_, _| {})?;
        timings.prefill_ms = ms(t);
        drop(vision);
        let stops: Vec<u32> = self
            .stop_tokens
            .iter()
            .chain(&params.extra_stop_tokens)
            .copied()
            .collect();
        let seed = match params.sampling {
            Sampling::TopP { seed, .. } => seed,
            Sampling::Greedy => 0,
        };
        let mut rng = StdRng::seed_from_u64(seed);
        let mut out: Vec<u32> = Vec::new();
        let mut printed = String::new();
        let mut stop_reason = StopReason::MaxTokens;
        let t = Instant::now();
        let mut decoded_steps = 0usize;
        let mut json_end = params.stop_at_json_end.then(JsonEnd::new);
        while out.len() < params.max_new_tokens {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                stop_reason = StopReason::Cancelled;
                break;
            }
            let next = sample(&logits, params.sampling, &mut rng)?;
            if stops.contains(&next) {
                stop_reason = StopReason::StopToken;
                break;
            }
            out.push(next);
            // Decode the whole tail so multi-byte characters split across tokens come out whole.
            let full = self
                .tokenizer
                .decode(&out, true)
                .map_err(|e| VlmError::Tokenizer(e.to_string()))?;
            // Hold back an incomplete UTF-8 sequence (decoded as U+FFFD) until it completes.
            let piece = if full.ends_with('\u{fffd}') {
                String::new()
            } else {
                let p = full.strip_prefix(printed.as_str()).unwrap_or("").to_owned();
                printed = full;
                p
            };
            on_text(next, &piece);
            if json_end.as_mut().is_some_and(|j| j.feed(&piece)) {
                stop_reason = StopReason::JsonEnd;
                break;
            }
            if out.len() >= params.max_new_tokens {
                break;
            }
            logits = self.model.decode_step(next)?;
            decoded_steps += 1;
        }
        timings.decode_ms = ms(t);
        if decoded_steps > 0 && timings.decode_ms > 0.0 {
            timings.decode_tokens_per_s = decoded_steps as f64 / (timings.decode_ms / 1e3);
        }
        let text = self
            .tokenizer
            .decode(&out, true)
            .map_err(|e| VlmError::Tokenizer(e.to_string()))?;
        Ok(Generation {
            text,
            token_ids: out,
            prompt_tokens: ids.len(),
            image_tokens: counts.iter().sum(),
            stop_reason,
            timings,
            image_embeddings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` one by one; the index of the piece where the object closed.
    fn closes_at(pieces: &[&str]) -> Option<usize> {
        let mut j = JsonEnd::new();
        pieces.iter().position(|p| j.feed(p))
    }

    #[test]
    fn json_end_waits_for_the_top_level_object_to_balance() {
        // Nested containers and the closing brace arriving in a piece with more text after it.
        let pieces = [
            "```json\n",
            "{\"s\":",
            " \"a\"",
            ", \"p\": [{\"t\": \"x\"",
            "}]",
            "}\n",
            "```",
        ];
        assert_eq!(closes_at(&pieces), Some(5));
        // Braces, brackets and escaped quotes inside strings do not count.
        let tricky = [r#"{"s": "a } ] { [ \"quoted }\" \\"#, r#"", "e": []"#, "}"];
        assert_eq!(closes_at(&tricky), Some(2));
        // Prose before the object is skipped; a stray closer before it changes nothing.
        assert_eq!(closes_at(&["Sure ] } here:", " {", "}"]), Some(2));
        // Never opened, or still open: no stop.
        assert_eq!(closes_at(&["no json at all"]), None);
        assert_eq!(closes_at(&["{\"s\": [1, 2", "]"]), None);
        // A piece holding a whole object and the start of another stops at the first.
        let mut j = JsonEnd::new();
        assert!(j.feed("{}{\"more\": 1"));
        assert!(j.closed());
    }

    #[test]
    fn top_p_is_seeded_and_bounded() {
        let v = [0.0f32, 5.0, 4.9, -3.0];
        let s = Sampling::TopP {
            temperature: 1.0,
            top_p: 0.9,
            seed: 7,
        };
        let a: Vec<u32> = {
            let mut r = StdRng::seed_from_u64(7);
            (0..20).map(|_| sample_slice(&v, s, &mut r)).collect()
        };
        let b: Vec<u32> = {
            let mut r = StdRng::seed_from_u64(7);
            (0..20).map(|_| sample_slice(&v, s, &mut r)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().all(|&t| t == 1 || t == 2));
        let mut r = StdRng::seed_from_u64(0);
        assert_eq!(sample_slice(&v, Sampling::Greedy, &mut r), 1);
    }
}
