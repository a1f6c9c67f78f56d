//! The incident commander's CLI (issue 12): `note --at`, `evidence add --at`, `role`,
//! `config set name`, on the active incident, with human times.

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
fn notes_roles_and_names_from_the_cli_on_the_active_incident() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Command::new(env!("CARGO_BIN_EXE_opslens"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("OPSLENS_DATA_DIR", &data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::app::wait_for_serve(&data);

    let (ok, _, err) = opslens(&data, &["note", "nothing open"]);
    assert!(!ok);
    assert!(err.contains("no open incident"), "{err}");
    let (ok, out, err) = opslens(&data, &["config", "set", "name", "Ana Lima"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "name = Ana Lima");
    let (ok, _, err) = opslens(&data, &["config", "set", "handle", "ana"]);
    assert!(ok, "{err}");
    let (ok, _, err) = opslens(&data, &["incident", "create", "--title", "older"]);
    assert!(ok, "{err}");
    // The title is positional now.
    let (ok, out, err) = opslens(
        &data,
        &["incident", "create", "checkout p99", "--severity", "high"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("checkout p99"), "{out}");
    let (ok, _, _) = opslens(&data, &["incident", "create"]);
    assert!(!ok, "a title is needed");
    // A zone-less time is UTC, and the answer says so; the time prints without microseconds.
    let (ok, out, err) = opslens(
        &data,
        &["note", "deploy v2.41.0 finished", "--at", "00:00:01"],
    );
    assert!(ok, "{err}");
    assert!(out.starts_with("note on incident #2 at 00:00:01Z"), "{out}");
    assert!(out.contains("taken as UTC"), "{out}");
    let (ok, out, err) = opslens(
        &data,
        &[
            "note",
            "older note",
            "--incident",
            "1",
            "--at",
            "2026-11-01T07:12:58+01:00",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("#1 at 2026-11-01 06:12:58Z"), "{out}");
    // One line per error, naming the field.
    let (ok, _, err) = opslens(&data, &["note", "x", "--at", "soon"]);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("occurred_at"), "{err}");
    let (ok, out, err) = opslens(
        &data,
        &[
            "evidence",
            "add",
            "2",
            "--title",
            "api",
            "--content",
            "2026-11-30T07:12:58Z ready",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("(read from the content)"), "{out}");
    // A screenshot at the time it was on the screen; a bad time uploads nothing.
    let shot = dir.path().join("grafana.png");
    std::fs::write(&shot, crate::app::png(8, 8)).unwrap();
    let shot = shot.to_str().unwrap();
    let (ok, _, err) = opslens(&data, &["evidence", "upload", "2", shot, "--at", "25:99"]);
    assert!(!ok);
    assert!(err.contains("--at") && err.lines().count() == 1, "{err}");
    let (ok, out, err) = opslens(
        &data,
        &[
            "evidence",
            "upload",
            "2",
            shot,
            "--at",
            "00:00:02Z",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let ev: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        ev["occurred_at"].as_str().unwrap().ends_with("T00:00:02Z"),
        "{ev}"
    );
    assert_eq!(ev["occurred_at_source"], "user", "{ev}");
    let (ok, out, err) = opslens(
        &data,
        &["evidence", "upload", "2", shot, "--at", "00:00:03"],
    );
    assert!(ok, "{err}");
    assert!(out.ends_with("at 00:00:03Z\n"), "{out}");
    let (_, show, _) = opslens(&data, &["incident", "show", "2"]);
    assert!(
        show.contains("evidence 3"),
        "the log and two uploads; the refused one stored nothing: {show}"
    );
    let (ok, out, err) = opslens(&data, &["role", "commander", "@ana"]);
    assert!(ok, "{err}");
    assert!(out.contains("incident #2: commander: Ana Lima"), "{out}");
    // Someone new: unknown by name is refused naming the field; --add adds them first.
    let (ok, _, err) = opslens(&data, &["role", "communications", "Bo Chen"]);
    assert!(!ok);
    assert!(err.contains("person") && err.contains("Bo Chen"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let (ok, out, err) = opslens(
        &data,
        &[
            "role",
            "communications",
            "Bo Chen",
            "--add",
            "--handle",
            "bo",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("communications: Bo Chen"), "{out}");
    let (ok, out, err) = opslens(&data, &["role", "participant", "@bo"]);
    assert!(ok, "{err}");
    assert!(out.contains("participants: Bo Chen"), "{out}");
    let (ok, _, err) = opslens(&data, &["role", "scribe", "Bo", "--add", "--handle", "bo"]);
    assert!(!ok, "a taken handle is refused");
    assert!(err.contains("handle"), "{err}");
    let (ok, _, err) = opslens(&data, &["role", "captain", "ana"]);
    assert!(!ok);
    assert!(err.contains("role must be one of"), "{err}");
    let (ok, out, err) = opslens(
        &data,
        &[
            "update",
            "Rolled back; watching p99",
            "--impact",
            "EU checkout",
            "--next",
            "30m",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.starts_with("status update #1 on incident #2 (triggered); next update due"),
        "{out}"
    );
    let (ok, _, err) = opslens(&data, &["update", "x", "--next", "yesterday"]);
    assert!(!ok);
    assert!(err.contains("next_update_at"), "{err}");
    let (ok, out, err) = opslens(&data, &["hypothesis", "v2.41.0 exhausted the DB pool"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("hypothesis #1 on incident #2 (proposed)"),
        "{out}"
    );
    let (ok, out, err) = opslens(
        &data,
        &["action", "Alert on pool saturation", "--owner", "ana"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("for @ana"), "{out}");
    let (ok, out, err) = opslens(&data, &["postmortem"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("# Postmortem: incident #2"), "{out}");
    assert!(out.contains("Alert on pool saturation"), "{out}");
    let html = dir.path().join("pm.html");
    let (ok, _, err) = opslens(
        &data,
        &[
            "postmortem",
            "--format",
            "html",
            "--out",
            html.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .contains("<h2>Summary</h2>"));
    let (ok, out, _) = opslens(&data, &["incident", "show", "2"]);
    assert!(ok);
    assert!(out.contains("00:00:01Z  deploy v2.41.0 finished"), "{out}");
    assert!(out.contains("Ana Lima is now incident commander"), "{out}");
    assert!(!out.contains(".000000"), "no microseconds: {out}");

    server.kill().unwrap();
    let _ = server.wait();
}

#[test]
fn model_flags_are_only_on_the_commands_that_use_them() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_opslens"))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for cmd in [
        &["note", "--help"][..],
        &["incident", "create", "--help"],
        &["update", "--help"],
    ] {
        assert!(!help(cmd).contains("--model-dir"), "{cmd:?}");
    }
    for cmd in [
        &["serve", "--help"][..],
        &["models", "list", "--help"],
        &["--help"],
    ] {
        assert!(help(cmd).contains("--model-dir"), "{cmd:?}");
    }
    // Before or after the subcommand, as before.
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--model-dir", "/nonexistent", "models", "list"][..],
        &["models", "list", "--model-dir", "/nonexistent"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_opslens"))
            .args(args)
            .env("OPSLENS_DATA_DIR", dir.path())
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
    }
}

#[test]
fn similar_from_the_cli_lists_the_partner_with_why_and_the_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Command::new(env!("CARGO_BIN_EXE_opslens"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("OPSLENS_DATA_DIR", &data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::app::wait_for_serve(&data);
    for title in [
        "disk full on logging node",
        "checkout-api 5xx above 5%",
        "checkout-api 5xx above 5%",
    ] {
        let (ok, _, err) = opslens(&data, &["incident", "create", title]);
        assert!(ok, "{err}");
    }
    // Default: the active incident (#3, changed last).
    let (ok, out, err) = opslens(&data, &["similar"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("possible duplicate of #2"), "{out}");
    let first = out.lines().nth(1).unwrap_or("");
    assert!(first.starts_with("#2 "), "{out}");
    assert!(out.contains("same service checkout-api"), "{out}");
    assert!(!out.contains("disk full"), "{out}");
    let (ok, out, err) = opslens(&data, &["similar", "2", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["items"][0]["incident_id"], 3);
    let (ok, _, err) = opslens(&data, &["similar", "99"]);
    assert!(!ok);
    assert!(err.contains("incident 99 not found"), "{err}");
    server.kill().unwrap();
    let _ = server.wait();
}
