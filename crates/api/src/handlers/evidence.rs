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
///
/// The original is streamed from its file (constant memory whatever its size), with its SHA-256 as a strong
/// `ETag` so a client that has it gets a bodiless 304.
#[utoipa::path(get, path = "/evidence/{id}/image", tag = "evidence", params(("id" = i64, Path), ImageQuery),
    responses((status = 200, content_type = "image/*", body = Vec<u8>,
            headers(("ETag" = String, description = "The original's SHA-256, quoted"))),
        (status = 304, description = "The client's copy (If-None-Match) is current: no body"),
        (status = 404, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn image(
    State(s): State<Arc<EvidenceService>>,
    Path(id): Path<i64>,
    crate::extract::Query(q): crate::extract::Query<ImageQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let variant = q.variant.unwrap_or_default();
    if variant != ImageVariant::Original && s.get(id).await?.image.is_none() {
        // Text evidence has no image in any variant: the same 404 as for the original.
        return Err(
            opslens_core::CoreError::NotFound(format!("evidence {id} has no image")).into(),
        );
    }
    let (mut res, mime) = match variant {
        ImageVariant::Original => {
            let (path, mime) = s.image_file(id).await?;
            (original_image(&path, &headers).await?, mime)
        }
        ImageVariant::Redacted => (
            s.redacted_image(id).await?.into_response(),
            "image/png".to_string(),
        ),
        ImageVariant::Shared => {
            let (bytes, mime) = s.shared_image(id).await?;
            (bytes.into_response(), mime)
        }
    };
    let has_body = res.status() != StatusCode::NOT_MODIFIED;
    let h = res.headers_mut();
    if has_body {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&mime).map_err(|e| ApiError::bad_request(e.to_string()))?,
        );
    }
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

/// The original image's response: 304 when `If-None-Match` names its hash, else its file as
/// a stream with its length.
async fn original_image(path: &std::path::Path, headers: &HeaderMap) -> ApiResult<Response> {
    // Content-addressed: the file stem is the SHA-256 of the bytes.
    let hash = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let etag = HeaderValue::from_str(&format!("\"{hash}\""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .any(|v| if_none_match_names(v, hash))
    {
        let mut res = StatusCode::NOT_MODIFIED.into_response();
        res.headers_mut().insert(header::ETAG, etag);
        return Ok(res);
    }
    let unreadable = |e: std::io::Error| {
        ApiError::from(opslens_core::CoreError::internal(
            format!("image file {} unreadable", path.display()),
            e,
        ))
    };
    let file = tokio::fs::File::open(path).await.map_err(unreadable)?;
    let len = file.metadata().await.map_err(unreadable)?.len();
    let mut res =
        axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ETAG, etag);
    Ok(res)
}

/// Whether an `If-None-Match` value (`*`, or a list of quoted, possibly weak, tags) names
/// `hash`: the weak comparison RFC 9110 asks of If-None-Match.
fn if_none_match_names(value: &HeaderValue, hash: &str) -> bool {
    let Ok(v) = value.to_str() else { return false };
    v.split(',').map(str::trim).any(|tag| {
        tag == "*" || (!hash.is_empty() && tag.trim_start_matches("W/").trim_matches('"') == hash)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_star() {
        let h = "ab12";
        let names = |v: &'static str| if_none_match_names(&HeaderValue::from_static(v), h);
        assert!(names("\"ab12\""));
        assert!(names("W/\"ab12\""));
        assert!(names("\"x\", \"ab12\""));
        assert!(names("*"));
        assert!(!names("\"ab1\""));
        assert!(!names("\"ab12x\""));
        assert!(!if_none_match_names(&HeaderValue::from_static("\"\""), ""));
    }
}
