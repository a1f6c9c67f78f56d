//! `opslens vlm run`, the real binary on the tiny checkpoint: a JSON run, and how a failure
//! reads on the terminal (one line, each cause once, no backtrace unless `-v`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/test/tiny-qwen3-vl")
}

/// Runs `opslens [args]` with `env`; returns (success, stdout, stderr).
fn opslens(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_opslens"))
        .args(args)
        .env("OPSLENS_DATA_DIR", data.path())
        .env("RUST_LOG", "off")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn vlm_run_answers_in_json() {
    let model = fixture();
    let image = model.join("panel.png");
    let (ok, out, err) = opslens(
        &[
            "vlm",
            "run",
            "--model",
            model.to_str().unwrap(),
            "--image",
            image.to_str().unwrap(),
            "--prompt",
            "What spiked?",
            "--max-new-tokens",
            "3",
            "--dtype",
            "f32",
            "--json",
        ],
        &[],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["token_ids"].as_array().unwrap().len() <= 3, "{v}");
    assert!(v["image_tokens"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn a_missing_file_is_one_line_with_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("no-such-model");
    let (ok, _, err) = opslens(
        &[
            "vlm",
            "run",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "p",
        ],
        &[],
    );
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    // the operating system's wording ("No such file or directory (os error 2)" on Linux)
    let io = std::fs::read(model.join("config.json"))
        .unwrap_err()
        .to_string();
    let line = err.trim_end();
    assert!(line.starts_with("error: loading model from "), "{line}");
    assert!(line.contains("config.json"), "{line}");
    assert_eq!(line.matches(&io).count(), 1, "{line}");
}

#[test]
fn a_candle_error_shows_no_backtrace_unless_verbose() {
    // A config asking for one layer more than the weights hold: candle's "cannot find
    // tensor", which carries a backtrace in its message when RUST_BACKTRACE is set.
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "tokenizer.json",
        "chat_template.json",
        "preprocessor_config.json",
        "model.safetensors",
    ] {
        std::fs::copy(fixture().join(f), dir.path().join(f)).unwrap();
    }
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("config.json")).unwrap())
            .unwrap();
    cfg["text_config"]["num_hidden_layers"] = 4.into();
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let model = dir.path().to_str().unwrap();
    let args = [
        "vlm", "run", "--model", model, "--prompt", "p", "--dtype", "f32",
    ];
    let bt = [("RUST_BACKTRACE", "1")];

    let (ok, _, err) = opslens(&args, &bt);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot find tensor model.language_model.layers.3."),
        "{err}"
    );

    let verbose: Vec<&str> = ["-v"].into_iter().chain(args).collect();
    let (ok, _, err) = opslens(&verbose, &bt);
    assert!(!ok);
    assert!(err.lines().count() > 3, "{err}");
    assert!(err.contains("cannot find tensor"), "{err}");
}
