//! `/evidence`: the seed's text evidence, screenshot upload and read, plus lists and images.

use std::sync::Arc;

use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opslens_core::EvidenceService;
use opslens_domain::{Evidence, NewEvidence};
use utoipa::ToSchema;

use super::{team, ApiResult};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path};

/// Attach text evidence (log, metric, deployment, alert, note).
#[utoipa::path(post, path = "/evidence/incident/{incident_id}", tag = "evidence",
    params(("incident_id" = i64, Path)), request_body = NewEvidence,
    responses((status = 201, body = Evidence), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(s): State<Arc<EvidenceService>>,
    Path(incident_id): Path<i64>,
    Json(body): Json<NewEvidence>,
) -> ApiResult<(StatusCode, Json<Evidence>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.add_text(incident_id, body).await?),
    ))
}

/// Multipart form of the screenshot upload. Other fields are refused (the multipart parser
/// cannot read every part name a client may send, so the spec allows none).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ScreenshotForm {
    /// The image (PNG, JPEG or WebP, at most 25 MiB); its type is read from the bytes.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Findings made on another machine, as JSON text in the `MadeElsewhere` shape: recorded
    /// as that machine's analysis instead of queueing one here.
    #[schema(value_type = Option<String>, content_media_type = "application/json")]
    analysis: Option<opslens_core::filing::MadeElsewhere>,
}

/// Upload a screenshot; it is stored at once and analysed in the background (unless
/// `analysis` brings findings made elsewhere). With `Idempotency-Key`, a repeat returns the
/// first evidence with 200 and adds nothing.
#[utoipa::path(post, path = "/evidence/incident/{incident_id}/upload-screenshot", tag = "evidence",
    params(("incident_id" = i64, Path),
        ("Idempotency-Key" = Option<String>, Header,
            description = "1 to 200 visible ASCII characters naming this upload; a repeat returns the first result")),
    request_body(content = ScreenshotForm, content_type = "multipart/form-data"),
    responses((status = 201, body = Evidence),
        (status = 200, body = Evidence, description = "A repeat of the key: the first upload's evidence"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The key was used for another image"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upload(
    State(s): State<Arc<EvidenceService>>,
    Path(incident_id): Path<i64>,
    headers: HeaderMap,
    form: Multipart,
) -> ApiResult<(StatusCode, Json<Evidence>)> {
    let mut parts = team::read_upload(form, &["analysis"]).await?;
    let filing = team::filing(&headers, &parts)?;
    let (bytes, name) = team::image_part(&mut parts)?;
    let (ev, created) = s
        .file_screenshot(incident_id, bytes, name, "upload", filing)
        .await?;
    Ok((team::created_or_repeat(created), Json(ev)))
}

/// One piece of evidence; for screenshots `content` fills in when the analysis is done.
#[utoipa::path(get, path = "/evidence/{id}", tag = "evidence", params(("id" = i64, Path)),
    responses((status = 200, body = Evidence), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(s): State<Arc<EvidenceService>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Evidence>> {
    Ok(Json(s.get(id).await?))
}

/// Evidence of an incident, oldest first.
#[utoipa::path(get, path = "/evidence/incident/{incident_id}", tag = "evidence",
    params(("incident_id" = i64, Path)),
    responses((status = 200, body = Vec<Evidence>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(s): State<Arc<EvidenceService>>,
    Path(incident_id): Path<i64>,
) -> ApiResult<Json<Vec<Evidence>>> {
    Ok(Json(s.of_incident(incident_id).await?))
}

/// Which copy of a screenshot to serve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImageVariant {
    /// The image as stored (what the viewer shows; never exported once redacted).
    #[default]
    Original,
    /// The redacted copy (404 when there is none).
    Redacted,
    /// What exports send: the redacted copy when there is one, else the original.
    Shared,
}

/// Query of the image route.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImageQuery {
    /// `original` (default), `redacted` or `shared`.
    #[param(inline)]
    pub variant: Option<ImageVariant>,
}

/// The stored image of a screenshot, or its redacted copy (`variant`).
#[utoipa::path(get, path = "/evidence/{id}/image", tag = "evidence", params(("id" = i64, Path), ImageQuery),
    responses((status = 200, content_type = "image/*", body = Vec<u8>), (status = 404, body = ErrorBody),
        (status = 400, body = ErrorBody)))]
pub async fn image(
    State(s): State<Arc<EvidenceService>>,
    Path(id): Path<i64>,
    crate::extract::Query(q): crate::extract::Query<ImageQuery>,
) -> ApiResult<Response> {
    let variant = q.variant.unwrap_or_default();
    if variant != ImageVariant::Original && s.get(id).await?.image.is_none() {
        // Text evidence has no image in any variant: the same 404 as for the original.
        return Err(
            opslens_core::CoreError::NotFound(format!("evidence {id} has no image")).into(),
        );
    }
    let (bytes, mime) = match variant {
        ImageVariant::Original => s.image(id).await?,
        ImageVariant::Redacted => (s.redacted_image(id).await?, "image/png".to_string()),
        ImageVariant::Shared => s.shared_image(id).await?,
    };
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&mime).map_err(|e| ApiError::bad_request(e.to_string()))?,
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        // The original never changes; a redaction can be redone.
        HeaderValue::from_static(if variant == ImageVariant::Original {
            "private, max-age=31536000, immutable"
        } else {
            "private, no-cache"
        }),
    );
    Ok(res)
}
