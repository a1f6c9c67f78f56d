//! The real desktop binary and the real screen under Xvfb: the window opens and renders the
//! incident list from its embedded server, the global shortcut files a capture, a second
//! instance comes up beside the first, `POST /capture` stores what is on the screen, and
//! without a display `opslens` says to use `serve`. Skipped (with a message) where Xvfb and
//! its tools are missing; `OPSLENS_UI_TESTS=1 scripts/deps.sh` installs them for CI.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::desktop_pixels::{filled_boxes, has_toast, severity_fills, text_contrast};
use crate::xvfb::{self, XSession};

/// Block shown on the screen in the capture test: a colour nothing else on screen has.
const BLOCK: [u8; 3] = [23, 201, 119];
const BLOCK_W: u32 = 400;
const BLOCK_H: u32 = 300;

struct Proc {
    child: Child,
    log: std::path::PathBuf,
}

impl Proc {
    /// Its stderr so far, without terminal colour codes.
    fn log(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // CSI sequence: ESC [ params letter
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `opslens ARGS` on the display with its stderr in a file.
fn spawn_opslens(x: &XSession, data: &Path, args: &[&str], addr: &str, name: &str) -> Proc {
    let log = x.scratch().join(format!("{name}.log"));
    let child = x
        .command(env!("CARGO_BIN_EXE_opslens"))
        .args(args)
        .env("OPSLENS_DATA_DIR", data)
        .env("OPSLENS_ADDR", addr)
        .env("RUST_LOG", "opslens=info,tower_http=debug")
        .env("NO_COLOR", "1")
        .env_remove("OPSLENS_HOTKEY")
        .env_remove("PAGERDUTY_API_TOKEN")
        .env_remove("GITHUB_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Proc { child, log }
}

/// Blocking HTTP for these synchronous tests (the X tools they drive are blocking too).
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn token(data: &Path) -> String {
    std::fs::read_to_string(data.join("api-token"))
        .unwrap()
        .trim()
        .to_string()
}

fn api(
    addr: std::net::SocketAddr,
    data: &Path,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let c = client();
    let url = format!("http://{addr}/api/v1{path}");
    let mut req = match method {
        "POST" => c.post(url),
        "PATCH" => c.patch(url),
        _ => c.get(url),
    }
    .bearer_auth(token(data));
    if let Some(b) = body {
        req = req.json(&b);
    }
    block_on(async move {
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    })
}

fn get_image(addr: std::net::SocketAddr, data: &Path, evidence: i64) -> image::RgbaImage {
    let req = client()
        .get(format!("http://{addr}/api/v1/evidence/{evidence}/image"))
        .bearer_auth(token(data));
    let bytes = block_on(async move {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap()
    });
    image::load_from_memory(&bytes).unwrap().to_rgba8()
}

fn distinct_colours(img: &image::RgbaImage) -> usize {
    let mut seen = std::collections::HashSet::new();
    for p in img.pixels().step_by(7) {
        seen.insert(p.0);
        if seen.len() > 1000 {
            break;
        }
    }
    seen.len()
}

fn is_block(p: &image::Rgba<u8>) -> bool {
    p.0[..3].iter().zip(BLOCK).all(|(a, b)| a.abs_diff(b) <= 2)
}

/// Waits until `f` returns something, or panics with `what` after `timeout`.
fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn without_a_display_opslens_says_to_use_serve() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_opslens"))
        .env("OPSLENS_DATA_DIR", dir.path())
        .env("OPSLENS_ADDR", format!("127.0.0.1:{}", xvfb::free_port()))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("opslens serve"), "{err}");
    assert!(err.contains("DISPLAY"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !dir.path().join("server.json").exists(),
        "no server may start without a window"
    );
}

#[test]
fn desktop_window_renders_the_incidents_and_the_hotkey_captures() {
    if !xvfb::available("desktop_window_renders_the_incidents_and_the_hotkey_captures") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // An incident to see in the list, made through the API of a short-lived server.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = opslens::server::Server::start_with(&data, "127.0.0.1:0".parse().unwrap(), false)
            .await
            .unwrap();
        let res = client()
            .post(format!("{}/incidents", s.api_url()))
            .bearer_auth(s.token.expose())
            .json(&json!({"title": "Checkout 5xx spike", "severity": "high"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        s.stop().await.unwrap();
    });

    let x = XSession::start();
    let port = xvfb::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut app = spawn_opslens(&x, &data, &[], &addr, "desktop");
    let bound = xvfb::wait_server(&data, Duration::from_secs(60), &mut app.child);
    assert_eq!(bound.port(), port);

    let win = x.wait_window("^OpsLens", Duration::from_secs(60));
    assert!(win.is_some(), "no OpsLens window; log:\n{}", app.log());
    let title = x.run("xdotool", &["getwindowname", &win.unwrap().to_string()]);
    assert!(
        title.contains(&addr),
        "window title {title:?} should show {addr}"
    );

    // The page ran, signed in with the injected token and listed the incidents.
    wait_for(
        "the UI's incident list request",
        Duration::from_secs(60),
        || {
            let log = app.log();
            log.lines()
                .any(|l| l.contains("uri=/api/v1/incidents") && l.contains("status=200"))
                .then_some(())
        },
    );
    assert!(
        !app.log().contains("status=401"),
        "the UI was refused: {}",
        app.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    let shot_path = xvfb::artifacts_dir().join("desktop-window.png");
    let shot = x.screenshot(&shot_path);
    assert_eq!(shot.dimensions(), (1920, 1080));
    let colours = distinct_colours(&shot);
    assert!(
        colours > 20,
        "the screen looks blank ({colours} colours): {}",
        shot_path.display()
    );

    // Open the incident in the window from the keyboard (the list selects its first row,
    // Enter opens it); the page tells the server it shows incident 1.
    let win = win.unwrap().to_string();
    x.run("xdotool", &["windowactivate", "--sync", &win]);
    x.run("xdotool", &["key", "--clearmodifiers", "Return"]);
    wait_for(
        "the window to say it shows incident 1",
        Duration::from_secs(30),
        || {
            let (_, f) = api(bound, &data, "GET", "/focus", None);
            (f["incident_id"] == 1).then_some(())
        },
    );

    // The severity control is readable where WebKitGTK draws it: filled with the
    // severity's colour like the badge beside the title (a native select would ignore the
    // fill), its text at 4.5:1 or more against it. High, then critical (the weakest pair),
    // then critical in the other theme (`t`).
    let started = Instant::now();
    let (_, high) = severity_contrast(&x, &win, "high", None, "desktop-severity-high.png");
    let (status, _) = api(
        bound,
        &data,
        "PATCH",
        "/incidents/1",
        Some(json!({"severity": "critical"})),
    );
    assert_eq!(status, 200);
    let (theme1, critical) =
        severity_contrast(&x, &win, "critical", None, "desktop-severity-critical.png");
    x.run("xdotool", &["key", "--clearmodifiers", "t"]);
    let (_, critical2) = severity_contrast(
        &x,
        &win,
        "critical",
        Some(theme1),
        "desktop-severity-critical-theme2.png",
    );
    eprintln!(
        "severity select contrast in WebKitGTK: high {high:.2}, critical {critical:.2}, \
         critical in the other theme {critical2:.2} ({} ms)",
        started.elapsed().as_millis()
    );

    // Another incident changed after it: the old rule (the open incident changed last) would
    // file the capture there; the shortcut files it onto the incident on screen.
    let (status, _) = api(
        bound,
        &data,
        "POST",
        "/incidents",
        Some(json!({"title": "DB replica lag", "severity": "low"})),
    );
    assert_eq!(status, 201);
    x.run("xdotool", &["key", "--clearmodifiers", "ctrl+shift+o"]);
    let ev = wait_for(
        "a capture from the shortcut",
        Duration::from_secs(30),
        || {
            let (_, list) = api(bound, &data, "GET", "/evidence/incident/1", None);
            list.as_array()?
                .iter()
                .find(|e| e["source"] == "capture")
                .cloned()
        },
    );
    let (_, other) = api(bound, &data, "GET", "/evidence/incident/2", None);
    assert_eq!(
        other,
        json!([]),
        "the capture went to the incident not on screen"
    );
    // The window says where it went: a toast (its green edge) in the corner.
    let toast_path = xvfb::artifacts_dir().join("desktop-capture-toast.png");
    wait_for("the capture toast", Duration::from_secs(15), || {
        has_toast(&x.screenshot(&toast_path)).then_some(())
    });
    assert_eq!(ev["image"]["width"], 1920, "{ev}");
    assert_eq!(ev["image"]["height"], 1080, "{ev}");
    let img = get_image(bound, &data, ev["id"].as_i64().unwrap());
    assert!(distinct_colours(&img) > 20, "the capture is blank");
    img.save(xvfb::artifacts_dir().join("desktop-hotkey-capture.png"))
        .unwrap();

    // A second instance: its port is taken and so is the shortcut; it still comes up.
    let data2 = dir.path().join("data2");
    let mut second = spawn_opslens(&x, &data2, &[], &addr, "second");
    let bound2 = xvfb::wait_server(&data2, Duration::from_secs(60), &mut second.child);
    assert_ne!(
        bound2.port(),
        port,
        "the second instance must move to a free port"
    );
    let (status, info) = api(bound2, &data2, "GET", "/info", None);
    assert_eq!(status, 200);
    assert_eq!(info["desktop"], true);
    wait_for("the second window", Duration::from_secs(60), || {
        (x.windows("^OpsLens").len() >= 2).then_some(())
    });
    let log2 = second.log();
    assert!(
        log2.contains("capture shortcut") && log2.contains("not available"),
        "the second instance should report the taken shortcut:\n{log2}"
    );
    assert!(
        info["hotkey"].as_str().unwrap_or("").contains("not active"),
        "{info}"
    );
    assert!(
        second.child.try_wait().unwrap().is_none(),
        "second instance died"
    );
    assert!(
        app.child.try_wait().unwrap().is_none(),
        "first instance died"
    );
}

/// How far down the window the incident header (title badge, severity select) reaches.
const HEADER_PX: u32 = 360;

/// Waits until the incident page shows severity `sev` in two filled boxes (the badge and the
/// select: a select drawn natively is not filled), in a theme whose fill is not `not`, and
/// returns that fill and the lower text contrast of the two; fails below 4.5:1. Saves the
/// window `win` as `artifact`.
fn severity_contrast(
    x: &XSession,
    win: &str,
    sev: &str,
    not: Option<[u8; 3]>,
    artifact: &str,
) -> ([u8; 3], f64) {
    let path = xvfb::artifacts_dir().join(artifact);
    let start = Instant::now();
    loop {
        // The window alone, and its top (the incident header), keeps each round short.
        let ok = x
            .command("import")
            .args(["-window", win])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "import -window {win} failed");
        let window = image::open(&path).unwrap().to_rgba8();
        let top = window.height().min(HEADER_PX);
        let shot = image::imageops::crop_imm(&window, 0, 0, window.width(), top).to_image();
        let found = severity_fills(sev)
            .into_iter()
            .filter(|f| Some(*f) != not)
            .find_map(|fill| {
                let boxes = filled_boxes(&shot, fill);
                (boxes.len() >= 2).then_some((fill, boxes))
            });
        if let Some((fill, boxes)) = found {
            let measured: Vec<(f64, usize)> = boxes
                .iter()
                .map(|b| text_contrast(&shot, *b, fill))
                .collect();
            if measured.iter().all(|(_, n)| *n >= 15) {
                let worst = measured.iter().map(|m| m.0).fold(f64::INFINITY, f64::min);
                assert!(
                    worst >= 4.5,
                    "{sev}: text at {worst:.2}:1 on the fill {fill:?} in {boxes:?} \
                     (badge and select; see {})",
                    path.display()
                );
                return (fill, worst);
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the {sev} severity select is not drawn filled with its colour beside the badge \
             (a native select ignoring the page's style?): {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// Shows the known test block (BLOCK_W x BLOCK_H of colour BLOCK) at `geometry` ("+X+Y") in
/// a window titled "opslens-block"; the caller kills the viewer.
fn show_block(x: &XSession, geometry: &str) -> std::process::Child {
    let block = x.scratch().join("block.png");
    image::RgbImage::from_pixel(BLOCK_W, BLOCK_H, image::Rgb(BLOCK))
        .save(&block)
        .unwrap();
    x.command("display")
        .args(["-title", "opslens-block", "-geometry", geometry])
        .arg(&block)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn capture_route_stores_what_is_on_the_screen() {
    if !xvfb::available("capture_route_stores_what_is_on_the_screen") {
        return;
    }
    let x = XSession::start();
    let mut viewer = show_block(&x, "+300+200");
    let win = x.wait_window("opslens-block", Duration::from_secs(20));
    assert!(win.is_some(), "the test image did not show");
    std::thread::sleep(Duration::from_millis(500));

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = spawn_opslens(&x, &data, &["serve"], "127.0.0.1:0", "serve");
    let addr = xvfb::wait_server(&data, Duration::from_secs(30), &mut server.child);
    let (status, inc) = api(
        addr,
        &data,
        "POST",
        "/incidents",
        Some(json!({"title": "Grafana red"})),
    );
    assert_eq!(status, 201);
    let inc = inc["id"].as_i64().unwrap();

    // The monitor: the screen's size, with the block on it.
    let (status, ev) = api(
        addr,
        &data,
        "POST",
        "/capture",
        Some(json!({"target": "monitor"})),
    );
    assert_eq!(status, 201, "{ev}\n{}", server.log());
    assert_eq!(ev["incident_id"], inc);
    assert_eq!(
        (
            ev["image"]["width"].as_u64(),
            ev["image"]["height"].as_u64()
        ),
        (Some(1920), Some(1080))
    );
    let img = get_image(addr, &data, ev["id"].as_i64().unwrap());
    assert_eq!(img.dimensions(), (1920, 1080));
    img.save(xvfb::artifacts_dir().join("capture-monitor.png"))
        .unwrap();
    let (mut x0, mut y0, mut x1, mut y1, mut n) = (u32::MAX, u32::MAX, 0, 0, 0u64);
    for (px, py, p) in img.enumerate_pixels() {
        if is_block(p) {
            n += 1;
            x0 = x0.min(px);
            y0 = y0.min(py);
            x1 = x1.max(px);
            y1 = y1.max(py);
        }
    }
    assert!(
        n >= u64::from(BLOCK_W * BLOCK_H) * 95 / 100,
        "the block is not in the capture ({n} block pixels)"
    );
    assert_eq!((x1 - x0 + 1, y1 - y0 + 1), (BLOCK_W, BLOCK_H));

    // A region inside the block is all block.
    let region = json!({"x": x0 + 50, "y": y0 + 40, "width": 120, "height": 80});
    let (status, ev) = api(
        addr,
        &data,
        "POST",
        "/capture",
        Some(json!({"target": "region", "region": region, "incident_id": inc})),
    );
    assert_eq!(status, 201, "{ev}");
    let img = get_image(addr, &data, ev["id"].as_i64().unwrap());
    assert_eq!(img.dimensions(), (120, 80));
    assert!(
        img.pixels().all(is_block),
        "region capture is not the block"
    );

    // The window, by a part of its title.
    let (status, ev) = api(
        addr,
        &data,
        "POST",
        "/capture",
        Some(json!({"target": "window", "window": "opslens-block"})),
    );
    assert_eq!(status, 201, "{ev}");
    let img = get_image(addr, &data, ev["id"].as_i64().unwrap());
    let share =
        img.pixels().filter(|p| is_block(p)).count() as f64 / f64::from(img.width() * img.height());
    assert!(
        share > 0.8,
        "window capture is {}×{} with {share:.2} block",
        img.width(),
        img.height()
    );

    // Off-screen regions and unknown windows are refused clearly.
    let (status, e) = api(
        addr,
        &data,
        "POST",
        "/capture",
        Some(
            json!({"target": "region", "region": {"x": 1900, "y": 0, "width": 100, "height": 100}}),
        ),
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("invalid_target")),
        "{e}"
    );
    let (status, e) = api(
        addr,
        &data,
        "POST",
        "/capture",
        Some(json!({"target": "window", "window": "no-such-window-4711"})),
    );
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{e}"
    );

    let _ = viewer.kill();
    let _ = viewer.wait();
}

/// Where the block shows on the screen: its bounding box (left, top, right, bottom inclusive).
fn find_block(img: &image::RgbaImage) -> Option<(u32, u32, u32, u32)> {
    let mut bbox: Option<(u32, u32, u32, u32)> = None;
    for (px, py, p) in img.enumerate_pixels() {
        if is_block(p) {
            let b = bbox.get_or_insert((px, py, px, py));
            *b = (b.0.min(px), b.1.min(py), b.2.max(px), b.3.max(py));
        }
    }
    bbox
}

/// Drags with the left button from `from` to `to` in steps, as a hand would.
fn drag(x: &XSession, from: (u32, u32), to: (u32, u32)) {
    let at = |p: (u32, u32)| [p.0.to_string(), p.1.to_string()];
    let [fx, fy] = at(from);
    x.run("xdotool", &["mousemove", &fx, &fy]);
    std::thread::sleep(Duration::from_millis(150));
    x.run("xdotool", &["mousedown", "1"]);
    for i in 1..=5u32 {
        let p = (
            from.0 + (to.0 - from.0) * i / 5,
            from.1 + (to.1 - from.1) * i / 5,
        );
        let [px, py] = at(p);
        x.run("xdotool", &["mousemove", &px, &py]);
        std::thread::sleep(Duration::from_millis(60));
    }
    x.run("xdotool", &["mouseup", "1"]);
}

/// The block as the overlay shows it: the frozen frame under its shade, darker.
fn is_dimmed_block(p: &image::Rgba<u8>) -> bool {
    !is_block(p) && p.0[1] > 60 && p.0[1] < BLOCK[1] && p.0[1] > p.0[0] + 40
}

/// Presses the region shortcut and waits until the overlay shows the frozen frame: the
/// `ready`-th time the app logs the page drew the frame and had the overlay shown, then the
/// block at `probe` dimmed on the screen. Returns the window and that screen.
fn open_overlay(
    x: &XSession,
    app: &Proc,
    ready: usize,
    probe: (u32, u32),
) -> (u64, image::RgbaImage) {
    let pressed = Instant::now();
    x.run("xdotool", &["key", "--clearmodifiers", "ctrl+shift+r"]);
    let win = x.wait_window("^OpsLens region selection$", Duration::from_secs(30));
    assert!(win.is_some(), "no overlay window; log:\n{}", app.log());
    wait_for("the overlay's frame", Duration::from_secs(30), || {
        (app.log().matches("overlay shown").count() >= ready).then_some(())
    });
    let served = pressed.elapsed();
    let path = x.scratch().join("overlay.png");
    let screen = wait_for("the overlay to paint", Duration::from_secs(30), || {
        let s = x.screenshot(&path);
        is_dimmed_block(s.get_pixel(probe.0, probe.1)).then_some(s)
    });
    eprintln!(
        "overlay: drawn and shown {} ms, on the screen {} ms after the shortcut",
        served.as_millis(),
        pressed.elapsed().as_millis()
    );
    (win.unwrap(), screen)
}

fn captures(addr: std::net::SocketAddr, data: &Path, incident: i64) -> Vec<Value> {
    let (_, list) = api(
        addr,
        data,
        "GET",
        &format!("/evidence/incident/{incident}"),
        None,
    );
    list.as_array()
        .map(|l| {
            l.iter()
                .filter(|e| e["source"] == "capture")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn region_shortcut_overlay_captures_the_dragged_rectangle_and_esc_cancels() {
    if !xvfb::available("region_shortcut_overlay_captures_the_dragged_rectangle_and_esc_cancels") {
        return;
    }
    let x = XSession::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = format!("127.0.0.1:{}", xvfb::free_port());
    let mut app = spawn_opslens(&x, &data, &[], &addr, "region");
    let bound = xvfb::wait_server(&data, Duration::from_secs(60), &mut app.child);
    assert!(
        x.wait_window("^OpsLens", Duration::from_secs(60)).is_some(),
        "no OpsLens window; log:\n{}",
        app.log()
    );
    let (status, info) = api(bound, &data, "GET", "/info", None);
    assert_eq!(status, 200);
    assert_eq!(info["region_hotkey"], "Ctrl+Shift+R", "{info}");
    let (status, inc) = api(
        bound,
        &data,
        "POST",
        "/incidents",
        Some(json!({"title": "Region capture"})),
    );
    assert_eq!(status, 201);
    let inc = inc["id"].as_i64().unwrap();

    // Known content on top of the app's window.
    let mut viewer = show_block(&x, "+600+300");
    assert!(
        x.wait_window("opslens-block", Duration::from_secs(20))
            .is_some(),
        "the test image did not show"
    );
    std::thread::sleep(Duration::from_millis(700));
    let screen = x.screenshot(&x.scratch().join("before.png"));
    let (bx, by, bx1, by1) = find_block(&screen).expect("the block is on the screen");
    assert_eq!((bx1 - bx + 1, by1 - by + 1), (BLOCK_W, BLOCK_H));

    // A click without a drag asks again (the overlay stays), a right click cancels.
    let centre = (bx + BLOCK_W / 2, by + BLOCK_H / 2);
    let (overlay, shown) = open_overlay(&x, &app, 1, centre);
    shown
        .save(xvfb::artifacts_dir().join("desktop-region-overlay.png"))
        .unwrap();
    let (cx, cy) = ((bx + 20).to_string(), (by + 20).to_string());
    x.run("xdotool", &["mousemove", &cx, &cy, "click", "1"]);
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        x.windows("^OpsLens region selection$").contains(&overlay),
        "a click must not end the selection"
    );
    // The hint is drawn over the shade, the rest of the frame dimmed.
    assert!(
        distinct_colours(&shown) > 5,
        "the overlay shows no frame; log:\n{}",
        app.log()
    );
    x.run("xdotool", &["click", "3"]);
    wait_for("the overlay to close", Duration::from_secs(10), || {
        x.windows("^OpsLens region selection$")
            .is_empty()
            .then_some(())
    });

    // A drag over the block's top-left corner: the stored image is the dragged rectangle
    // of the frozen screen, with the block where it was.
    open_overlay(&x, &app, 2, centre);
    let (from, to) = ((bx - 50, by - 40), (bx + 250, by + 160));
    drag(&x, from, to);
    let ev = wait_for(
        "a capture from the region overlay",
        Duration::from_secs(30),
        || captures(bound, &data, inc).into_iter().next(),
    );
    let (w, h) = (
        ev["image"]["width"].as_u64().unwrap(),
        ev["image"]["height"].as_u64().unwrap(),
    );
    assert!(
        w.abs_diff(300) <= 2 && h.abs_diff(200) <= 2,
        "dragged 300×200, stored {w}×{h}"
    );
    let img = get_image(bound, &data, ev["id"].as_i64().unwrap());
    img.save(xvfb::artifacts_dir().join("desktop-region-capture.png"))
        .unwrap();
    let (ix, iy, ix1, iy1) = find_block(&img).expect("the block is in the region capture");
    assert!(
        ix.abs_diff(50) <= 2 && iy.abs_diff(40) <= 2,
        "block at ({ix}, {iy}) in the capture, dragged from 50, 40 before it"
    );
    assert_eq!(
        (ix1 + 1, iy1 + 1),
        img.dimensions(),
        "block runs to the end"
    );
    assert!(!is_block(img.get_pixel(10, 10)), "left of the block");
    let share = img.pixels().filter(|p| is_block(p)).count() as f64 / (w * h) as f64;
    assert!(share > 0.6, "only {share:.2} of the capture is the block");
    wait_for("the overlay to close", Duration::from_secs(10), || {
        x.windows("^OpsLens region selection$")
            .is_empty()
            .then_some(())
    });

    // Esc cancels: nothing more is stored.
    open_overlay(&x, &app, 3, centre);
    x.run("xdotool", &["key", "Escape"]);
    wait_for("Esc to close the overlay", Duration::from_secs(10), || {
        x.windows("^OpsLens region selection$")
            .is_empty()
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(captures(bound, &data, inc).len(), 1, "Esc stored something");
    assert_eq!(app.log().matches("region selection cancelled").count(), 2);
    assert!(
        app.child.try_wait().unwrap().is_none(),
        "the app died:\n{}",
        app.log()
    );
    let _ = viewer.kill();
    let _ = viewer.wait();
}
