//! The real `opslens` binary: `serve` on a free port, then CLI commands that find it.

use std::process::{Command, Stdio};

fn opslens(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_opslens"))
        .args(args)
        .env("OPSLENS_DATA_DIR", data)
        .env_remove("OPSLENS_ADDR")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serve_and_drive_it_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Command::new(env!("CARGO_BIN_EXE_opslens"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("OPSLENS_DATA_DIR", &data)
        .env_remove("PAGERDUTY_API_TOKEN")
        .env_remove("GITHUB_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::app::wait_for_serve(&data);

    let (ok, token, _) = opslens(&data, &["token"]);
    assert!(ok);
    assert_eq!(token.trim().len(), 64);
    let (ok, out, err) = opslens(
        &data,
        &[
            "incident",
            "create",
            "--title",
            "Disk full on db-1",
            "--severity",
            "critical",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("Disk full on db-1"), "{out}");
    let (ok, out, _) = opslens(&data, &["incident", "list", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["total"], 1);
    let (ok, _, err) = opslens(&data, &["incident", "update", "1", "--status", "mitigated"]);
    assert!(ok, "{err}");
    let (ok, out, _) = opslens(
        &data,
        &[
            "evidence",
            "add",
            "1",
            "--title",
            "df",
            "--content",
            "/dev/sda1 100%",
        ],
    );
    assert!(ok, "{out}");
    let png_path = dir.path().join("shot.png");
    std::fs::write(&png_path, crate::app::png(32, 32)).unwrap();
    let (ok, out, err) = opslens(
        &data,
        &["evidence", "upload", "1", png_path.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert!(out.contains("waiting-for-model"), "{out}");
    let (ok, out, _) = opslens(&data, &["incident", "show", "1"]);
    assert!(ok);
    assert!(
        out.contains("Status changed from triggered to mitigated"),
        "{out}"
    );
    let (ok, out, _) = opslens(&data, &["evidence", "show", "1", "--json"]);
    assert!(ok);
    assert!(out.contains("/dev/sda1 100%"));
    // errors are readable and fail the command
    let (ok, _, err) = opslens(&data, &["evidence", "show", "99"]);
    assert!(!ok);
    assert!(
        err.contains("404") && err.contains("evidence 99 not found"),
        "{err}"
    );

    // `open` prints a one-time sign-in link for the web UI.
    let (ok, out, err) = opslens(&data, &["open", "--no-browser"]);
    assert!(ok, "{err}");
    let link = out.trim();
    assert!(link.starts_with("http://127.0.0.1:"), "{link}");
    assert!(link.contains("/#code="), "{link}");
    // `opslens sync`: unconfigured integrations are skipped; naming one is an error.
    let (ok, _, err) = opslens(&data, &["sync"]);
    assert!(ok, "{err}");
    assert!(err.contains("pagerduty: skipped"), "{err}");
    let (ok, _, err) = opslens(&data, &["sync", "pagerduty"]);
    assert!(!ok);
    assert!(err.contains("PAGERDUTY_API_TOKEN"), "{err}");

    server.kill().unwrap();
    let _ = server.wait();
    let (ok, _, err) = opslens(&data, &["incident", "list"]);
    assert!(!ok);
    assert!(err.contains("is `opslens serve` running?"), "{err}");
}

#[test]
fn version_names_the_cargo_version_and_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = opslens(dir.path(), &["--version"]);
    assert!(ok, "{err}");
    let rest = out
        .trim()
        .strip_prefix(&format!("opslens {} (", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{out}"));
    let commit = rest.strip_suffix(')').unwrap_or_else(|| panic!("{out}"));
    let commit = commit.strip_suffix("-dirty").unwrap_or(commit);
    assert!(
        commit == "unknown" || (commit.len() >= 8 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{out}"
    );
}

#[test]
fn models_pull_refuses_a_download_the_disk_cannot_hold_before_any_network() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_opslens"))
        .args(["models", "pull"])
        .env("OPSLENS_DATA_DIR", dir.path().join("data"))
        .env("HF_HOME", dir.path().join("hf"))
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .env_remove("OPSLENS_MODEL_DIR")
        .env_remove("OPSLENS_MODEL")
        // A reserve no disk has: the 4 GB model cannot fit with it.
        .env("OPSLENS_LOW_DISK_MB", "1000000000")
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("not enough disk space for qwen3-vl-2b-instruct")
            && err.contains("bytes) free"),
        "{err}"
    );
    assert!(!err.contains("cannot reach"), "{err}");
}
