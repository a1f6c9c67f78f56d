//! Analysis of screenshots and the models behind it: re-analysis and questions, jobs, the
//! model list and pulls with live progress.

use std::sync::Arc;

use opslens_core::AnalysisService;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use opslens_core::analysis::{AnalysisProgress, ModelInfo, PullProgress};
use opslens_domain::{AnalysisJob, AnalyzeRequest};

use super::ApiResult;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path};

/// Analyse a screenshot again, or ask a question about it ("what happened at 14:05?"). The
/// answer arrives in the job (`GET /analysis/jobs/{id}`) and in the evidence's
/// `findings.questions`. The body may be empty.
#[utoipa::path(post, path = "/evidence/{id}/analyze", tag = "evidence",
    params(("id" = i64, Path)), request_body(content = Option<AnalyzeRequest>),
    responses((status = 202, body = AnalysisJob), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn analyze(
    State(s): State<Arc<AnalysisService>>,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<AnalysisJob>)> {
    let req: AnalyzeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        AnalyzeRequest::default()
    } else {
        crate::extract::parse_object(&body)?
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(s.analyze(id, req.question).await?),
    ))
}

/// The analysis runs of a screenshot, oldest first.
#[utoipa::path(get, path = "/evidence/{id}/analyses", tag = "evidence",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<AnalysisJob>), (status = 404, body = ErrorBody)))]
pub async fn jobs_of(
    State(s): State<Arc<AnalysisService>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<AnalysisJob>>> {
    Ok(Json(s.jobs_of(id).await?))
}

/// One analysis run: state, answer or error, timings.
#[utoipa::path(get, path = "/analysis/jobs/{id}", tag = "evidence",
    params(("id" = i64, Path)),
    responses((status = 200, body = AnalysisJob), (status = 404, body = ErrorBody)))]
pub async fn job(
    State(s): State<Arc<AnalysisService>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<AnalysisJob>> {
    Ok(Json(s.job(id).await?))
}

/// Supported models (pinned revision, files, licence) and whether each is installed here.
#[utoipa::path(get, path = "/models", tag = "models",
    responses((status = 200, body = Vec<ModelInfo>)))]
pub async fn list(State(s): State<Arc<AnalysisService>>) -> ApiResult<Json<Vec<ModelInfo>>> {
    let s2 = s.clone();
    let v = tokio::task::spawn_blocking(move || s2.models())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(Json(v))
}

/// One model.
#[utoipa::path(get, path = "/models/{id}", tag = "models",
    params(("id" = String, Path)),
    responses((status = 200, body = ModelInfo), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<Arc<AnalysisService>>,
    Path(id): Path<String>,
) -> ApiResult<Json<ModelInfo>> {
    Ok(Json(s.model(&id)?))
}

/// Start downloading a model from the Hugging Face hub into the standard cache (resumes a
/// partial download; a pull already running is joined). Follow it with
/// `GET /models/{id}/pull/events` or by polling `GET /models/{id}`.
///
/// Refused with 507 `insufficient_storage`, naming the bytes needed and free, when the disk of
/// the model cache cannot hold what is left to download (keeping `OPSLENS_LOW_DISK_MB` free).
#[utoipa::path(post, path = "/models/{id}/pull", tag = "models",
    params(("id" = String, Path, example = "qwen3-vl-2b-instruct")),
    responses((status = 202, body = PullProgress), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 507, body = ErrorBody)))]
pub async fn pull(
    State(s): State<Arc<AnalysisService>>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<PullProgress>)> {
    let rx = s.pull_model(&id)?;
    let now = rx.borrow().clone();
    Ok((StatusCode::ACCEPTED, Json(now)))
}

/// Stop the running pull of a model. What arrived stays on disk and the next
/// `POST /models/{id}/pull` resumes from it; answers once the download has stopped, with
/// state `cancelled`. 409 when no pull of the model runs.
#[utoipa::path(delete, path = "/models/{id}/pull", tag = "models",
    params(("id" = String, Path, example = "qwen3-vl-2b-instruct")),
    responses((status = 200, body = PullProgress), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel_pull(
    State(s): State<Arc<AnalysisService>>,
    Path(id): Path<String>,
) -> ApiResult<Json<PullProgress>> {
    Ok(Json(s.cancel_pull(&id).await?))
}

/// Server-sent events with the progress of a model's pull (`event: progress`, then one
/// `event: done`, `event: failed` or `event: cancelled`). Starts the pull when none runs (so
/// it is refused with 507 like `POST /models/{id}/pull` when the disk cannot hold it).
#[utoipa::path(get, path = "/models/{id}/pull/events", tag = "models",
    params(("id" = String, Path)),
    responses((status = 200, description = "text/event-stream of PullProgress objects"),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 507, body = ErrorBody)))]
pub async fn pull_events(
    State(s): State<Arc<AnalysisService>>,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let rx = s.pull_model(&id)?;
    // One event per state, at most four a second while downloading; ends after done/failed.
    let stream = futures_util::stream::unfold(Some((rx, true)), |state| async move {
        let (mut rx, first) = state?;
        if !first {
            tokio::time::sleep(Duration::from_millis(250)).await;
            rx.changed().await.ok()?;
        }
        let p = rx.borrow_and_update().clone();
        let kind = match p.state.as_str() {
            "downloading" => "progress",
            other => other,
        };
        let ev = Event::default()
            .event(kind)
            .json_data(&p)
            .unwrap_or_default();
        let next = (kind == "progress").then_some((rx, false));
        Some((Ok::<_, Infallible>(ev), next))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Server-sent events with the text of a screenshot's running analysis (or question) as the
/// model writes it, local or remote: `event: progress` whose data is an [`AnalysisProgress`]
/// carrying the whole text so far, at most every 150 ms, then one last event with `state`
/// `done` or `failed` (the parsed findings are then on the evidence) and the stream ends. A
/// stream opened while nothing runs or waits for the screenshot sends one `idle` event and
/// ends. Jobs run by an `opslens worker` in another process are not streamed here (their
/// result shows on the evidence when done). Needs the token like every route.
#[utoipa::path(get, path = "/evidence/{id}/analysis/stream", tag = "evidence",
    params(("id" = i64, Path)),
    responses((status = 200, description = "text/event-stream; every `data:` line is an AnalysisProgress",
            content_type = "text/event-stream", body = AnalysisProgress),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn progress(
    State(s): State<Arc<AnalysisService>>,
    State(closing): State<Option<crate::handlers::events::Closing>>,
    Path(id): Path<i64>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let (first, rx) = s.progress_of(id).await?;
    let stop = closing.map(|c| c.0);
    let stream = futures_util::stream::unfold(Some((Some(first), rx, stop)), move |state| {
        async move {
            let (first, mut rx, mut stop) = state?;
            let p = match first {
                Some(p) => p,
                None => loop {
                    let closed = async {
                        match stop.as_mut() {
                            Some(c) => {
                                let _ = c.wait_for(|v| *v).await;
                            }
                            None => std::future::pending::<()>().await,
                        }
                    };
                    let got = tokio::select! {
                        () = closed => return None,
                        got = rx.recv() => got,
                    };
                    match got {
                        Ok(p) if p.evidence_id == id => break p,
                        Ok(_) => continue,
                        // Every event carries the whole text: a skipped one loses nothing.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                },
            };
            let last = !matches!(p.state.as_str(), "running" | "queued");
            let ev = Event::default()
                .event("progress")
                .json_data(&p)
                .unwrap_or_default();
            let next = (!last).then_some((None, rx, stop));
            Some((Ok::<_, Infallible>(ev), next))
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Body of `POST /evidence/{id}/compare`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    /// The later screenshot (picture 2); the path's screenshot is picture 1.
    pub with: i64,
    /// What to look at in particular (optional, at most 2,000 characters).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub question: Option<String>,
}

/// "What changed?": the local model compares this screenshot (before) with another (after)
/// in one prompt and answers in a few sentences, labelled as machine-written. Nothing is saved
/// and neither picture leaves the machine. 503 when no model can answer now (`model_missing`,
/// `model_loading` — loading starts then —, `model_failed`, `model_remote`).
#[utoipa::path(post, path = "/evidence/{id}/compare", tag = "evidence", params(("id" = i64, Path)),
    request_body = CompareRequest,
    responses((status = 200, body = opslens_core::analysis::compare::ScreenComparison),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "No model can answer now (`model_missing`, `model_loading`, `model_failed`, `model_remote`)")))]
pub async fn compare(
    State(s): State<Arc<opslens_core::EvidenceService>>,
    Path(id): Path<i64>,
    Json(body): Json<CompareRequest>,
) -> ApiResult<Json<opslens_core::analysis::compare::ScreenComparison>> {
    use opslens_core::analysis::summary::DraftError;
    match s.compare(id, body.with, body.question).await {
        Ok(c) => Ok(Json(c)),
        Err(DraftError::Unavailable { code, message }) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            message,
        )),
        Err(DraftError::Core(e)) => Err(e.into()),
    }
}
