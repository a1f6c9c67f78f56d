//! `config.json` decisions seen through real loads of the tiny checkpoint: which head the
//! decoder uses when the two `tie_word_embeddings` flags disagree, and a refused value.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use opslens_vlm::{Engine, LoadOptions, VlmError, WeightMode};

fn tiny() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/test/tiny-qwen3-vl"
    ))
}

/// A copy of the tiny checkpoint whose weights also hold `lm_head.weight` = -embedding (so a
/// tied and an untied head give opposite logits) and whose config.json `edit` changes.
fn variant(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("opslens-vlm-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "tokenizer.json",
        "chat_template.json",
        "preprocessor_config.json",
    ] {
        std::fs::copy(tiny().join(f), dir.join(f)).unwrap();
    }
    let mut w =
        candle_core::safetensors::load(tiny().join("model.safetensors"), &Device::Cpu).unwrap();
    assert!(!w.contains_key("lm_head.weight"), "the fixture is tied");
    let head = w["model.language_model.embed_tokens.weight"].neg().unwrap();
    w.insert("lm_head.weight".into(), head);
    candle_core::safetensors::save(&w, dir.join("model.safetensors")).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tiny().join("config.json")).unwrap())
            .unwrap();
    edit(&mut cfg);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    dir
}

fn load(dir: &Path) -> Result<Engine, VlmError> {
    let opts = LoadOptions {
        mode: WeightMode::F32,
        ..Default::default()
    };
    Engine::load(dir, &Device::Cpu, &opts)
}

/// Last-position logits of a text-only prompt.
fn logits(dir: &Path) -> Tensor {
    let mut e = load(dir).unwrap();
    let ids = opslens_vlm::qwen3_vl::processor::encode(&e.tokenizer, "CPU usage spiked").unwrap();
    e.model
        .prefill(&ids, &[], None, false, &mut |_, _| {})
        .unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn the_text_configs_tie_flag_decides_the_head() {
    let reference = logits(&tiny());
    let scale = max_diff(&reference, &reference.zeros_like().unwrap());
    assert!(scale > 0.0);

    // top level says tied, the decoder says not: transformers 4.57 uses lm_head.weight
    let untied = variant("untied", |c| {
        c["tie_word_embeddings"] = true.into();
        c["text_config"]["tie_word_embeddings"] = false.into();
    });
    let got = logits(&untied);
    assert!(max_diff(&got, &reference.neg().unwrap()) < 1e-4 * scale);

    // top level says untied, the decoder says tied: the embedding, lm_head.weight ignored
    let tied = variant("tied", |c| {
        c["tie_word_embeddings"] = false.into();
        c["text_config"]["tie_word_embeddings"] = true.into();
    });
    let got = logits(&tied);
    assert!(max_diff(&got, &reference) < 1e-4 * scale);

    for d in [untied, tied] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn attention_bias_is_refused_at_load() {
    let dir = variant("bias", |c| c["text_config"]["attention_bias"] = true.into());
    let err = load(&dir).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        matches!(&err, VlmError::Unsupported { field, .. } if field == "text_config.attention_bias"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "config.json: text_config.attention_bias = true is not supported (this port implements false)"
    );
}
