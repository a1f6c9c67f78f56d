//! `opslens capture`: asks the running server (desktop app or `serve` inside a desktop session)
//! to capture the screen, so the CLI and the hotkey file screenshots the same way.

use std::path::Path;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::Client;
use crate::client::Remote;

/// Options of `capture`.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Incident to attach to; default: the open incident changed most recently, else a new
    /// "Untriaged capture" incident.
    #[arg(long)]
    pub incident: Option<i64>,
    /// What to capture; implied by --window or --region when left out.
    #[arg(long, value_enum)]
    pub target: Option<TargetArg>,
    /// For a window: its id (as `xdotool search` prints it) or a part of its title.
    #[arg(long, value_name = "ID|TITLE")]
    pub window: Option<String>,
    /// For a region: X,Y,WIDTH,HEIGHT in screen pixels, e.g. 0,0,800,600.
    #[arg(long, value_name = "X,Y,W,H")]
    pub region: Option<String>,
    #[command(flatten)]
    pub remote: Remote,
}

/// `--target` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    /// The monitor under the mouse pointer.
    Monitor,
    /// One window (--window).
    Window,
    /// A rectangle (--region).
    Region,
}

/// The JSON body of `POST /api/v1/capture` for these options.
pub fn body(args: &CaptureArgs) -> anyhow::Result<Value> {
    let target = args.target.unwrap_or(if args.region.is_some() {
        TargetArg::Region
    } else if args.window.is_some() {
        TargetArg::Window
    } else {
        TargetArg::Monitor
    });
    let mut body = json!({ "target": match target {
        TargetArg::Monitor => "monitor",
        TargetArg::Window => "window",
        TargetArg::Region => "region",
    }});
    if let Some(id) = args.incident {
        body["incident_id"] = json!(id);
    }
    if let Some(w) = &args.window {
        body["window"] = match w.trim().parse::<u32>() {
            Ok(id) => json!(id),
            Err(_) => json!(w),
        };
    }
    if let Some(r) = &args.region {
        let parts = r
            .split(',')
            .map(|p| p.trim().parse::<i64>())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("--region {r:?}: expected X,Y,WIDTH,HEIGHT (integers)"))?;
        let [x, y, width, height] = parts[..] else {
            bail!("--region {r:?}: expected four numbers X,Y,WIDTH,HEIGHT");
        };
        body["region"] = json!({ "x": x, "y": y, "width": width, "height": height });
    }
    Ok(body)
}

/// Runs `opslens capture`.
pub async fn run(data_dir: &Path, args: CaptureArgs) -> anyhow::Result<()> {
    let body = body(&args)?;
    let c = Client::new(data_dir, args.remote.addr.as_deref())?;
    let v = c
        .send(c.request(Method::POST, "/capture").json(&body))
        .await?;
    if args.remote.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if let Some(key) = v["capture_id"].as_str() {
        // The app is pointed at a team server: the capture waits in its spool.
        println!(
            "captured {}×{}; saved as {key} and uploading to {} ({} waiting)",
            v["width"],
            v["height"],
            v["server_url"].as_str().unwrap_or("the team server"),
            v["waiting"]
        );
    } else {
        println!(
            "captured {}×{} as evidence #{} on incident #{} (analysis: {})",
            v["image"]["width"],
            v["image"]["height"],
            v["id"],
            v["incident_id"],
            v["analysis_state"].as_str().unwrap_or("-")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: CaptureArgs,
    }

    fn body_of(args: &[&str]) -> anyhow::Result<Value> {
        let t = T::try_parse_from(std::iter::once("capture").chain(args.iter().copied()))?;
        body(&t.a)
    }

    #[test]
    fn flags_become_the_api_body() {
        assert_eq!(body_of(&[]).unwrap(), json!({"target": "monitor"}));
        assert_eq!(
            body_of(&["--incident", "4", "--window", "Grafana"]).unwrap(),
            json!({"target": "window", "incident_id": 4, "window": "Grafana"})
        );
        assert_eq!(
            body_of(&["--window", "4194305"]).unwrap()["window"],
            json!(4_194_305)
        );
        assert_eq!(
            body_of(&["--region", "10, 20,300,200"]).unwrap(),
            json!({"target": "region", "region": {"x": 10, "y": 20, "width": 300, "height": 200}})
        );
        assert!(body_of(&["--region", "1,2,3"]).is_err());
        assert!(body_of(&["--region", "a,b,c,d"]).is_err());
    }
}
