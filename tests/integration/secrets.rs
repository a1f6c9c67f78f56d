//! `opslens secrets set/list/delete` on the real binary, the fallback to `secrets.env` where no
//! keychain answers (quickly, no hang), and secret values kept out of logs and API answers.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const VALUE: &str = "ghp_s3cret-VALUE_$HOME'x";

/// Runs the binary with `stdin`; the keychain off unless `env` says otherwise.
fn secrets(
    data: &std::path::Path,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opslens"));
    cmd.args(args)
        .env("OPSLENS_DATA_DIR", data)
        .env("OPSLENS_KEYCHAIN", "off")
        .env_remove("GITHUB_TOKEN")
        .env_remove("SLACK_WEBHOOK_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn secrets_set_list_delete_with_the_file_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, out, err) = secrets(
        &data,
        &["secrets", "set", "GITHUB_TOKEN"],
        &format!("{VALUE}\n"),
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("secrets.env (mode 0600)"), "{out}");
    assert!(!out.contains(VALUE) && !err.contains(VALUE));
    let file = data.join("secrets.env");
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("GITHUB_TOKEN"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The value reads back exactly (quotes, `$` and all) through the server's own loader.
    let cfg = opslens_integrations::Config::load(&data, false);
    assert!(cfg.github.is_none(), "no GITHUB_REPOS yet");
    let r = opslens_integrations::secrets::resolve(&data, false, None);
    assert_eq!(r.values["GITHUB_TOKEN"].0.expose(), VALUE);

    let (ok, out, _) = secrets(&data, &["secrets", "list"], "", &[]);
    assert!(ok);
    assert!(out.contains("OS keychain: off"), "{out}");
    assert!(
        out.contains("GITHUB_TOKEN") && out.contains("secrets.env"),
        "{out}"
    );
    assert!(!out.contains(VALUE), "{out}");
    // The environment wins, and the list says what it shadows.
    let (ok, out, _) = secrets(
        &data,
        &["secrets", "list"],
        "",
        &[("GITHUB_TOKEN", "from-env-123")],
    );
    assert!(ok);
    let line = out.lines().find(|l| l.starts_with("GITHUB_TOKEN")).unwrap();
    assert!(
        line.contains("environment") && line.contains("not used"),
        "{line}"
    );
    assert!(!out.contains("from-env-123"));

    // A value on the command line is refused, not stored.
    let (ok, _, _) = secrets(
        &data,
        &["secrets", "set", "GITHUB_TOKEN", "ghp_on_argv"],
        "",
        &[],
    );
    assert!(!ok);
    assert!(!std::fs::read_to_string(&file)
        .unwrap()
        .contains("ghp_on_argv"));
    let (ok, _, err) = secrets(&data, &["secrets", "set", "NOT_A_KEY"], "x\n", &[]);
    assert!(!ok);
    assert!(err.contains("known keys"), "{err}");
    let (ok, _, err) = secrets(&data, &["secrets", "set", "GITHUB_TOKEN"], "\n", &[]);
    assert!(!ok, "an empty value is refused");
    assert!(err.contains("standard input"), "{err}");

    let (ok, out, err) = secrets(&data, &["secrets", "delete", "GITHUB_TOKEN"], "", &[]);
    assert!(ok, "{err}");
    assert!(out.contains("Removed GITHUB_TOKEN"), "{out}");
    let (_, out, _) = secrets(&data, &["secrets", "list"], "", &[]);
    assert!(out.contains("No keys set"), "{out}");
    let (ok, _, _) = secrets(&data, &["secrets", "delete", "GITHUB_TOKEN"], "", &[]);
    assert!(!ok, "nothing left to delete");
}

/// As CI sees it: a session bus address that leads nowhere, no display to autolaunch one.
#[cfg(target_os = "linux")]
#[test]
fn without_a_reachable_keychain_the_commands_fall_back_to_the_file_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [
        ("OPSLENS_KEYCHAIN", "on"),
        (
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/opslens-test-bus",
        ),
        ("DISPLAY", ""),
    ];
    let start = Instant::now();
    let (ok, out, err) = secrets(
        &data,
        &["secrets", "set", "SLACK_WEBHOOK_URL"],
        "https://hooks.slack.com/services/T0/B0/KEYCHAINLESS\n",
        &env,
    );
    assert!(ok, "{err}");
    assert!(err.contains("No OS keychain here"), "{err}");
    assert!(out.contains("secrets.env"), "{out}");
    let (ok, out, _) = secrets(&data, &["secrets", "list"], "", &env);
    assert!(ok);
    assert!(out.contains("OS keychain: not available"), "{out}");
    assert!(out.contains("SLACK_WEBHOOK_URL"), "{out}");
    assert!(!out.contains("KEYCHAINLESS"));
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "no hang: {:?}",
        start.elapsed()
    );
}

#[test]
fn secret_values_stay_out_of_logs_and_api_answers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Port 9 (discard) refuses connections: every post fails and its error is recorded.
    std::fs::write(
        data.join("secrets.env"),
        "SLACK_WEBHOOK_URL=http://127.0.0.1:9/services/T0/B0/LEAKCHECK1\n\
         WEBHOOK_URLS=http://127.0.0.1:9/hook?sig=LEAKCHECK2\n\
         WEBHOOK_SECRET=whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\n\
         PAGERDUTY_API_TOKEN=LEAKCHECK3\nPAGERDUTY_API_URL=http://127.0.0.1:9\n\
         OUTBOX_RETRY_BASE_MS=20\nSYNC_RETRY_BASE_MS=10\n",
    )
    .unwrap();
    let log_path = dir.path().join("server.log");
    let mut server = Command::new(env!("CARGO_BIN_EXE_opslens"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("OPSLENS_DATA_DIR", &data)
        .env("OPSLENS_KEYCHAIN", "off")
        .env("RUST_LOG", "debug")
        .env_remove("PAGERDUTY_API_TOKEN")
        .env_remove("SLACK_WEBHOOK_URL")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let api = crate::app::wait_for_serve(&data);
    let token = std::fs::read_to_string(data.join("api-token")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answers = rt.block_on(async {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = |p: &str| format!("{api}{p}");
        let res = http
            .post(url("/incidents"))
            .bearer_auth(token.trim())
            .json(&serde_json::json!({"title": "leak check", "severity": "low"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let mut answers = String::new();
        // Wait until both posts failed at least once (their errors are recorded).
        for _ in 0..250 {
            let v: serde_json::Value = http
                .get(url("/integrations/outbox"))
                .bearer_auth(token.trim())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if v.as_array()
                .unwrap()
                .iter()
                .all(|r| r["last_error"].is_string())
            {
                answers.push_str(&v.to_string());
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!answers.is_empty(), "posts never failed");
        for p in ["/integrations", "/integrations/test/all"] {
            let res = http
                .get(url(p))
                .bearer_auth(token.trim())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{p}");
            answers.push_str(&res.text().await.unwrap());
        }
        let res = http
            .post(url("/integrations/pagerduty/sync"))
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap();
        answers.push_str(&res.text().await.unwrap());
        answers
    });
    assert!(answers.contains("recent_errors"), "{answers}");
    server.kill().unwrap();
    let _ = server.wait();
    let log = std::fs::read_to_string(&log_path).unwrap();
    // The log did record the failures (so the check below looks at something).
    assert!(log.contains("DEBUG") || log.contains("WARN"), "{log}");
    for secret in [
        "LEAKCHECK1",
        "LEAKCHECK2",
        "LEAKCHECK3",
        "C2FVsBQIhrscChlQIMV",
    ] {
        assert!(
            !answers.contains(secret),
            "{secret} in an API answer: {answers}"
        );
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
