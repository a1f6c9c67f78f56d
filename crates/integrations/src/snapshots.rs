//! Dashboard images as screenshot evidence: a Grafana panel through the image renderer
//! (`/render/d-solo/…`), or a Datadog graph snapshot (`/api/v1/graph/snapshot`, then the PNG
//! once it is ready).

use std::time::Duration;

use serde::Deserialize;

use crate::config::{DatadogConfig, GrafanaConfig};
use crate::http::{get_json, without_url, ClientError, HttpPolicy, RateStyle};

/// Which Grafana panel, over which time range (epoch milliseconds).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct PanelRequest {
    /// Dashboard UID.
    pub dashboard_uid: String,
    /// Dashboard slug (any value works; Grafana resolves by UID).
    #[serde(default)]
    pub slug: Option<String>,
    /// Panel id.
    pub panel_id: i64,
    /// Organisation (default 1).
    #[serde(default)]
    pub org_id: Option<i64>,
    /// Start, epoch ms.
    pub from: i64,
    /// End, epoch ms.
    pub to: i64,
    /// Pixels (default 1000, at most 3000).
    #[serde(default)]
    pub width: Option<u32>,
    /// Pixels (default 500, at most 3000).
    #[serde(default)]
    pub height: Option<u32>,
}

/// Which Datadog graph.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct SnapshotRequest {
    /// Metric query, e.g. `avg:system.load.1{*}`.
    pub metric_query: String,
    /// Start, unix seconds.
    pub start: i64,
    /// End, unix seconds.
    pub end: i64,
    /// Graph title.
    #[serde(default)]
    pub title: Option<String>,
}

async fn png(
    service: &'static str,
    req: reqwest::RequestBuilder,
) -> Result<Option<Vec<u8>>, ClientError> {
    let res = req.send().await.map_err(|e| ClientError::Transport {
        service,
        message: without_url(&e),
    })?;
    let status = res.status();
    if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::ACCEPTED {
        return Ok(None); // not rendered yet
    }
    if !status.is_success() {
        return Err(ClientError::Status {
            service,
            status: status.as_u16(),
            message: crate::http::body_excerpt(res).await,
        });
    }
    let bytes = res.bytes().await.map_err(|e| ClientError::Transport {
        service,
        message: without_url(&e),
    })?;
    Ok(Some(bytes.to_vec()))
}

/// Renders one Grafana panel to PNG bytes (needs the image-renderer plugin or service).
pub async fn render_grafana_panel(
    http: &reqwest::Client,
    cfg: &GrafanaConfig,
    r: &PanelRequest,
) -> Result<Vec<u8>, ClientError> {
    let url = format!(
        "{}/render/d-solo/{}/{}",
        cfg.url,
        r.dashboard_uid,
        r.slug.as_deref().unwrap_or("panel")
    );
    let q = [
        ("orgId", r.org_id.unwrap_or(1).to_string()),
        ("panelId", r.panel_id.to_string()),
        ("from", r.from.to_string()),
        ("to", r.to.to_string()),
        ("width", r.width.unwrap_or(1000).min(3000).to_string()),
        ("height", r.height.unwrap_or(500).min(3000).to_string()),
        ("tz", "UTC".to_string()),
    ];
    let req = http
        .get(url)
        .query(&q)
        .bearer_auth(cfg.token.expose())
        .timeout(Duration::from_secs(60));
    png("grafana", req).await?.ok_or(ClientError::Status {
        service: "grafana",
        status: 404,
        message: "panel not found".into(),
    })
}

#[derive(Deserialize)]
struct Snapshot {
    snapshot_url: String,
}

/// Asks Datadog for a graph snapshot and fetches its PNG, polling while it is not ready yet
/// (`tries` times, `pause` apart).
pub async fn datadog_snapshot(
    http: &reqwest::Client,
    cfg: &DatadogConfig,
    r: &SnapshotRequest,
    tries: u32,
    pause: Duration,
) -> Result<Vec<u8>, ClientError> {
    let url = format!("{}/api/v1/graph/snapshot", cfg.api_url);
    let mut q = vec![
        ("metric_query", r.metric_query.clone()),
        ("start", r.start.to_string()),
        ("end", r.end.to_string()),
    ];
    if let Some(t) = &r.title {
        q.push(("title", t.clone()));
    }
    let (snap, _): (Snapshot, _) =
        get_json("datadog", RateStyle::GitHub, &HttpPolicy::default(), || {
            http.get(&url)
                .query(&q)
                .header("DD-API-KEY", cfg.api_key.expose())
                .header("DD-APPLICATION-KEY", cfg.app_key.expose())
        })
        .await?;
    for _ in 0..tries.max(1) {
        // The snapshot URL is public by design: no keys travel to it.
        if let Some(bytes) = png("datadog", http.get(&snap.snapshot_url)).await? {
            return Ok(bytes);
        }
        tokio::time::sleep(pause).await;
    }
    Err(ClientError::Status {
        service: "datadog",
        status: 404,
        message: "snapshot not ready in time; try again".into(),
    })
}
