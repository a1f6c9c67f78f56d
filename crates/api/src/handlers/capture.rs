//! `POST /capture`: grab the screen of the machine the server runs on and file it as
//! screenshot evidence, through the same use-case as an upload (so it is analysed the same way).

use opslens_core::{EvidenceService, IncidentService};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use opslens_core::capture::CaptureFailure;
use opslens_domain::{CaptureError, CaptureTarget, Evidence, Region, ScreenSource, WindowSelector};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::team::Team;
use super::ApiResult;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use axum::response::{IntoResponse, Response};
use opslens_core::uplink::QueuedCapture;

/// The screen this server may capture; `None` where the embedding process gave it none.
#[derive(Debug, Clone, Default)]
pub struct Screen(pub Option<Arc<dyn ScreenSource>>);

/// What to capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// The monitor under the mouse pointer (else the primary one).
    #[default]
    Monitor,
    /// One window, named by `window`.
    Window,
    /// A rectangle, given by `region`.
    Region,
}

/// Body of `POST /capture`. `{}` captures the monitor under the pointer onto the active
/// incident.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// Incident to attach to; default: the open incident changed most recently, else a new
    /// "Untriaged capture" incident.
    #[serde(default)]
    pub incident_id: Option<i64>,
    /// `monitor` (default), `window` or `region`.
    #[serde(default)]
    pub target: TargetKind,
    /// For `window`: the window id (number) or a part of its title (string).
    #[serde(default)]
    pub window: Option<WindowSelector>,
    /// For `region`: `{"x", "y", "width", "height"}` in screen pixels, on one monitor.
    #[serde(default)]
    pub region: Option<Region>,
}

impl CaptureRequest {
    /// The capture target, or why the body does not name one coherently.
    pub fn to_target(&self) -> Result<CaptureTarget, ApiError> {
        let invalid =
            |m: &str| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_target", m);
        match self.target {
            TargetKind::Monitor if self.window.is_some() || self.region.is_some() => Err(invalid(
                "`window` and `region` go with target `window` or `region`, not `monitor`",
            )),
            TargetKind::Monitor => Ok(CaptureTarget::Monitor),
            TargetKind::Window if self.region.is_some() => {
                Err(invalid("`region` does not go with target `window`"))
            }
            TargetKind::Window => match &self.window {
                Some(w) => Ok(CaptureTarget::Window(w.clone())),
                None => Err(invalid(
                    "target `window` needs `window`: its id (number) or a part of its title",
                )),
            },
            TargetKind::Region if self.window.is_some() => {
                Err(invalid("`window` does not go with target `region`"))
            }
            TargetKind::Region => {
                let r = self.region.ok_or_else(|| {
                    invalid("target `region` needs `region`: {\"x\", \"y\", \"width\", \"height\"}")
                })?;
                r.validate().map_err(capture_error)?;
                Ok(CaptureTarget::Region(r))
            }
        }
    }
}

/// Capture the screen of this machine and attach it as screenshot evidence. Where this app
/// files its captures on a team server, the capture is written to the local spool (fsynced)
/// and the answer is 202 with its place in the queue; it is uploaded in order (`GET /team`).
#[utoipa::path(post, path = "/capture", tag = "evidence", request_body = CaptureRequest,
    responses((status = 201, body = Evidence, description = "The stored screenshot; its analysis is queued like an upload's"),
        (status = 202, body = QueuedCapture, description = "Spooled for the team server (this app is pointed at one)"),
        (status = 404, body = ErrorBody, description = "No such incident or window"),
        (status = 422, body = ErrorBody, description = "Bad target, or a region off the monitors"),
        (status = 503, body = ErrorBody, description = "No display to capture (headless server)")))]
pub async fn capture(
    State(s): State<Arc<EvidenceService>>,
    State(screen): State<Screen>,
    State(team): State<Team>,
    Json(body): Json<CaptureRequest>,
) -> ApiResult<Response> {
    let target = body.to_target()?;
    let Some(source) = screen.0 else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "capture_unavailable",
            "this server was started without screen capture",
        ));
    };
    if let Some(up) = team.0 {
        return match up.capture(source, body.incident_id, target).await {
            Ok(q) => Ok((StatusCode::ACCEPTED, Json(q)).into_response()),
            Err(CaptureFailure::Capture(e)) => Err(capture_error(e)),
            Err(CaptureFailure::Core(e)) => Err(e.into()),
        };
    }
    match s.capture(source, body.incident_id, target).await {
        Ok(c) => Ok((StatusCode::CREATED, Json(c.evidence)).into_response()),
        Err(CaptureFailure::Capture(e)) => Err(capture_error(e)),
        Err(CaptureFailure::Core(e)) => Err(e.into()),
    }
}

fn capture_error(e: CaptureError) -> ApiError {
    match e {
        CaptureError::NoDisplay(m) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_display", m)
        }
        CaptureError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
        CaptureError::InvalidTarget(m) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_target", m)
        }
        other => {
            tracing::error!(error = %other, "screen capture failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "capture_failed",
                other.to_string(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> CaptureRequest {
        serde_json::from_str(json).unwrap()
    }

    fn code(json: &str) -> String {
        let e = req(json).to_target().unwrap_err();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        format!("{e:?}")
    }

    #[test]
    fn bodies_map_to_targets() {
        assert_eq!(req("{}").to_target().unwrap(), CaptureTarget::Monitor);
        assert_eq!(
            req(r#"{"target":"window","window":"Grafana"}"#)
                .to_target()
                .unwrap(),
            CaptureTarget::Window(WindowSelector::Title("Grafana".into()))
        );
        assert_eq!(
            req(r#"{"target":"window","window":12}"#)
                .to_target()
                .unwrap(),
            CaptureTarget::Window(WindowSelector::Id(12))
        );
        assert_eq!(
            req(r#"{"target":"region","region":{"x":-5,"y":2,"width":3,"height":4}}"#)
                .to_target()
                .unwrap(),
            CaptureTarget::Region(Region {
                x: -5,
                y: 2,
                width: 3,
                height: 4
            })
        );
    }

    #[test]
    fn incoherent_bodies_are_refused() {
        assert!(code(r#"{"target":"window"}"#).contains("needs `window`"));
        assert!(code(r#"{"target":"region"}"#).contains("needs `region`"));
        assert!(code(r#"{"region":{"x":0,"y":0,"width":1,"height":1}}"#).contains("not `monitor`"));
        assert!(
            code(r#"{"target":"region","region":{"x":0,"y":0,"width":0,"height":1}}"#)
                .contains("at least 1")
        );
        assert!(code(
            r#"{"target":"window","window":"w","region":{"x":0,"y":0,"width":1,"height":1}}"#
        )
        .contains("does not go"));
    }

    #[test]
    fn unknown_targets_and_fields_do_not_parse() {
        assert!(serde_json::from_str::<CaptureRequest>(r#"{"target":"desktop"}"#).is_err());
        assert!(serde_json::from_str::<CaptureRequest>(r#"{"monitor":1}"#).is_err());
    }
}

/// The incident a window of the UI shows; `null` when it shows none (the list, settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Focus {
    /// The incident on screen, or `null`.
    #[schema(minimum = 1)]
    pub incident_id: Option<i64>,
}

/// The incident a window last said it shows: where the capture shortcut, the tray and a
/// `POST /capture` without `incident_id` file their screenshot.
#[utoipa::path(get, path = "/focus", tag = "evidence", responses((status = 200, body = Focus)))]
pub async fn focus(State(s): State<Arc<IncidentService>>) -> Json<Focus> {
    Json(Focus {
        incident_id: s.shown(),
    })
}

/// Say which incident a window shows (the UI does when an incident page opens, and sends
/// `null` when it leaves it), so a capture without a named incident goes there instead of
/// to the open incident changed most recently. The last window to say so wins.
#[utoipa::path(put, path = "/focus", tag = "evidence", request_body = Focus,
    responses((status = 200, body = Focus),
        (status = 404, body = ErrorBody, description = "No such incident; the previous focus stays"),
        (status = 422, body = ErrorBody)))]
pub async fn set_focus(
    State(s): State<Arc<IncidentService>>,
    Json(body): Json<Focus>,
) -> ApiResult<Json<Focus>> {
    Ok(Json(Focus {
        incident_id: s.set_shown(body.incident_id).await?,
    }))
}
