//! A virtual X display for tests and the capture benchmark: `xvfb-run` (1920×1080×24,
//! `-noreset`) around `dbus-run-session` with openbox as window manager (xcap lists windows
//! only under one). The session writes its DISPLAY, XAUTHORITY and bus address to a file; the
//! test then starts programs with that environment, so it keeps their handles and output.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a session lives at most, whatever the test does (it stops by itself).
const SESSION_SECONDS: u32 = 600;

/// One session at a time: `xvfb-run -a` picks the display number racily, and two desktops at
/// once would only fight over two cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A running virtual display.
pub struct XSession {
    child: Child,
    _turn: std::sync::MutexGuard<'static, ()>,
    /// `DISPLAY`, e.g. `:99`.
    pub display: String,
    /// `XAUTHORITY` file of the display.
    pub xauthority: String,
    /// `DBUS_SESSION_BUS_ADDRESS` of the session bus.
    pub bus: String,
    dir: tempfile::TempDir,
}

/// Whether the tools exist; prints why a test is skipped when they do not.
pub fn available(test: &str) -> bool {
    let missing: Vec<&str> = [
        "xvfb-run",
        "dbus-run-session",
        "openbox",
        "xdotool",
        "import",
    ]
    .into_iter()
    .filter(|t| !on_path(t))
    .collect();
    if missing.is_empty() {
        return true;
    }
    eprintln!(
        "SKIPPED {test}: {} not installed (OPSLENS_UI_TESTS=1 scripts/deps.sh installs them)",
        missing.join(", ")
    );
    false
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

impl XSession {
    /// Starts the display and waits until it answers.
    pub fn start() -> XSession {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let env_file = dir.path().join("session.env");
        let script = format!(
            "printf '%s\\n%s\\n%s\\n' \"$DISPLAY\" \"$XAUTHORITY\" \"$DBUS_SESSION_BUS_ADDRESS\" > {f}.tmp \
             && mv {f}.tmp {f}; openbox >/dev/null 2>&1 & exec sleep {SESSION_SECONDS}",
            f = env_file.display()
        );
        let mut cmd = Command::new("xvfb-run");
        cmd.args([
            "-a",
            "-s",
            "-screen 0 1920x1080x24 -noreset",
            "dbus-run-session",
            "--",
        ])
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let child = cmd.spawn().expect("xvfb-run");
        let start = Instant::now();
        let text = loop {
            if let Ok(t) = std::fs::read_to_string(&env_file) {
                break t;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the Xvfb session did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut lines = text.lines().map(str::to_string);
        let s = XSession {
            child,
            _turn: turn,
            display: lines.next().unwrap_or_default(),
            xauthority: lines.next().unwrap_or_default(),
            bus: lines.next().unwrap_or_default(),
            dir,
        };
        assert!(s.display.starts_with(':'), "no DISPLAY from xvfb-run");
        // The window manager is up when it owns the root window's WM selection; wait for a
        // client list property it sets.
        let start = Instant::now();
        while !s
            .run("xprop", &["-root", "_NET_SUPPORTING_WM_CHECK"])
            .contains("window id")
        {
            if start.elapsed() > Duration::from_secs(15) {
                eprintln!("note: openbox did not come up; going on without a window manager");
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    /// A command with this display's environment (and none of the developer's desktop).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("DISPLAY", &self.display)
            .env("XAUTHORITY", &self.xauthority)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("XDG_SESSION_TYPE", "x11")
            .env_remove("WAYLAND_DISPLAY")
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env("XDG_DATA_HOME", self.dir.path().join("share"));
        c
    }

    /// Runs a tool on the display and returns its standard output (empty on failure).
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        self.command(program)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Ids of visible windows whose name matches `pattern` (a regex, as xdotool takes it).
    pub fn windows(&self, pattern: &str) -> Vec<u64> {
        self.run("xdotool", &["search", "--onlyvisible", "--name", pattern])
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Waits up to `timeout` for a visible window named like `pattern`.
    pub fn wait_window(&self, pattern: &str, timeout: Duration) -> Option<u64> {
        let start = Instant::now();
        loop {
            if let Some(w) = self.windows(pattern).into_iter().next() {
                return Some(w);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Saves the whole screen as PNG with ImageMagick's `import` (independent of xcap).
    pub fn screenshot(&self, to: &Path) -> image::RgbaImage {
        let ok = self
            .command("import")
            .args(["-window", "root"])
            .arg(to)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "import -window root failed");
        image::open(to).unwrap().to_rgba8()
    }

    /// A scratch folder that lives as long as the session.
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for XSession {
    fn drop(&mut self) {
        // The whole group: xvfb-run, Xvfb, the bus, openbox and sleep.
        // `--` so the negative id is read as a group, not as an option.
        let pgid = self.child.id();
        if pgid > 1 {
            let _ = Command::new("kill")
                .args(["-s", "TERM", "--", &format!("-{pgid}")])
                .status();
        }
        let _ = self.child.wait();
    }
}

/// Where tests leave screenshots for people to look at.
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let d = target.join("desktop-artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits for `DATA_DIR/server.json` and returns the address it records.
pub fn wait_server(data: &Path, timeout: Duration, child: &mut Child) -> std::net::SocketAddr {
    let start = Instant::now();
    loop {
        if let Ok(t) = std::fs::read_to_string(data.join("server.json")) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) {
                if let Some(a) = v["addr"].as_str().and_then(|a| a.parse().ok()) {
                    return a;
                }
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("opslens exited early with {status}");
        }
        assert!(
            start.elapsed() < timeout,
            "server did not start in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
