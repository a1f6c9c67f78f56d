//! The postmortem of an incident (versioned document, exports) and the timeline edits it uses.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use opslens_core::analysis::summary::{DraftError, SummaryDraft};
use opslens_core::postmortem::SaveError;
use opslens_core::{AnalysisService, CommandService};
use opslens_domain::{Postmortem, PostmortemSave, TimelineEvent, TimelinePatch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiResult;
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::extract::{Json, Path, Query};

/// The postmortem; before the first save, the template pre-filled from the incident
/// (`version` 0, `draft` true).
#[utoipa::path(get, path = "/incidents/{id}/postmortem", tag = "postmortem", params(("id" = i64, Path)),
    responses((status = 200, body = Postmortem), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<Arc<CommandService>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Postmortem>> {
    Ok(Json(s.postmortem(id).await?))
}

/// Answer of a save that lost a race: the error, and the postmortem as it is now.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaleSave {
    /// `stale_version`, naming the current version.
    pub error: ErrorDetail,
    /// The postmortem as saved by the other writer (nothing was overwritten).
    pub current: Postmortem,
}

/// Save the postmortem. `version` must be the one the edit started from; if another save came
/// first the answer is 409 with the current postmortem and nothing is overwritten.
#[utoipa::path(put, path = "/incidents/{id}/postmortem", tag = "postmortem", params(("id" = i64, Path)),
    request_body = PostmortemSave,
    responses((status = 200, body = Postmortem), (status = 404, body = ErrorBody),
        (status = 409, body = StaleSave), (status = 422, body = ErrorBody)))]
pub async fn save(
    State(s): State<Arc<CommandService>>,
    Path(id): Path<i64>,
    Json(body): Json<PostmortemSave>,
) -> ApiResult<Response> {
    let asked = body.version;
    match s.save_postmortem(id, body).await {
        Ok(p) => Ok(Json(p).into_response()),
        Err(SaveError::Stale(current)) => {
            let stale = StaleSave {
                error: ErrorDetail {
                    code: "stale_version".into(),
                    message: format!(
                        "version: the postmortem is at version {}, not {asked}; nothing was saved (merge and send version {})",
                        current.version, current.version
                    ),
                },
                current: *current,
            };
            Ok((StatusCode::CONFLICT, Json(stale)).into_response())
        }
        Err(SaveError::Core(e)) => Err(e.into()),
    }
}

/// Query of the postmortem export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PmExportQuery {
    /// `html` (one file, screenshots inside), `zip` (Markdown and the screenshots as files) or
    /// `markdown`.
    #[param(inline)]
    pub format: PmFormat,
}

/// What the postmortem is exported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PmFormat {
    /// One self-contained HTML file, screenshots embedded.
    Html,
    /// Markdown with the screenshots as files beside it, zipped.
    Zip,
    /// Markdown alone.
    Markdown,
    /// Same as `markdown`.
    Md,
}

/// Export the postmortem as self-contained HTML, a Markdown+screenshots zip, or Markdown.
#[utoipa::path(get, path = "/incidents/{id}/postmortem/export", tag = "postmortem",
    params(("id" = i64, Path), PmExportQuery),
    responses((status = 200, description = "The postmortem as HTML, a zip or Markdown (`format`)",
            content((String = "text/html"), (Vec<u8> = "application/zip"), (String = "text/markdown"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn export(
    State(s): State<Arc<CommandService>>,
    Path(id): Path<i64>,
    Query(q): Query<PmExportQuery>,
) -> ApiResult<Response> {
    let (mime, ext) = match q.format {
        PmFormat::Html => ("text/html; charset=utf-8", "html"),
        PmFormat::Zip => ("application/zip", "zip"),
        PmFormat::Markdown | PmFormat::Md => ("text/markdown; charset=utf-8", "md"),
    };
    let b = s.postmortem_bundle(id).await?;
    let body = match ext {
        "html" => b.to_html().into_bytes(),
        "zip" => b.to_zip(),
        _ => b.to_markdown().into_bytes(),
    };
    let disposition = format!("attachment; filename=\"postmortem-incident-{id}.{ext}\"");
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// Pin an entry to the postmortem's timeline (any entry), or reword or move a note or
/// observation. Other kinds are OpsLens's own record: 409.
#[utoipa::path(patch, path = "/timeline/{id}", tag = "timeline", params(("id" = i64, Path)),
    request_body = TimelinePatch,
    responses((status = 200, body = TimelineEvent), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn edit_event(
    State(s): State<Arc<CommandService>>,
    Path(id): Path<i64>,
    Json(body): Json<TimelinePatch>,
) -> ApiResult<Json<TimelineEvent>> {
    Ok(Json(s.edit_timeline_event(id, body).await?))
}

/// Delete a timeline entry (an "evidence added" entry stays while its evidence does: 409).
#[utoipa::path(delete, path = "/timeline/{id}", tag = "timeline", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_event(
    State(s): State<Arc<CommandService>>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    s.delete_timeline_event(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ask the local analysis model (text only) for a summary of the incident's timeline and
/// findings. Nothing is saved: the answer's `block` starts with the label "Drafted by the
/// local model — review before sharing" and is for the page to insert where the user asks.
/// 503 when no model can write it (`model_missing`, `model_loading` — loading starts then —,
/// `model_failed`), the message saying what to do.
#[utoipa::path(post, path = "/incidents/{id}/postmortem/summary-draft", tag = "postmortem",
    params(("id" = i64, Path)),
    responses((status = 200, body = SummaryDraft), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "No model can write it now (`model_missing`, `model_loading`, `model_failed`)")))]
pub async fn draft_summary(
    State(s): State<Arc<CommandService>>,
    State(a): State<Arc<AnalysisService>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<SummaryDraft>> {
    let facts = s.postmortem_facts(id).await?;
    match a.draft_summary(&facts).await {
        Ok(d) => Ok(Json(d)),
        Err(DraftError::Unavailable { code, message }) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            message,
        )),
        Err(DraftError::Core(e)) => Err(e.into()),
    }
}
