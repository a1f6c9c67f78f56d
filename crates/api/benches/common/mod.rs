//! What the load benchmarks share: the real server as `opslens serve` starts it, the distinct
//! PNGs they upload, latency percentiles and the machine's load average. Included by each
//! bench with `mod common;` (a bench is its own crate), so an item one bench does not use is
//! not dead code for the other.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use opslens_core::analysis::AnalysisConfig;
use opslens_core::token::ApiToken;
use opslens_core::{Services, ServicesConfig};

/// The real server on a loopback port, as `opslens serve` starts it (no model, no screen).
/// Its store is the data dir's SQLite file, or the PostgreSQL database routed to the data dir
/// with `opslens_store::use_database_for` before [`Server::start`].
pub struct Server {
    pub addr: SocketAddr,
    pub token: ApiToken,
    pub services: Services,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub async fn start(data_dir: &std::path::Path) -> Server {
        std::fs::create_dir_all(data_dir).unwrap();
        let token = ApiToken::load_or_create(data_dir).unwrap();
        let services = Services::open(ServicesConfig {
            data_dir: data_dir.to_path_buf(),
            secrets_from_env: false,
            analysis: AnalysisConfig::isolated(data_dir),
            blobs: Default::default(),
        })
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(opslens_api::serve_with(
            listener,
            services.clone(),
            token.clone(),
            opslens_api::Extras::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            token,
            services,
            stop,
            task,
        }
    }

    pub fn api_url(&self) -> String {
        format!("http://{}/api/v1", self.addr)
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// A distinct small PNG for each `n` (so no two uploads share a blob).
pub fn png(n: u64) -> Vec<u8> {
    let img = image::RgbImage::from_fn(16, 16, |x, y| {
        let b = n.to_le_bytes();
        image::Rgb([b[(x as usize) % 8], b[(y as usize) % 8], (x * 16 + y) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The `p` quantile (0..=1) of `sorted` (ascending, not empty).
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`): the cores are shared, so every
/// figure is printed with what else was running.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// How many cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
