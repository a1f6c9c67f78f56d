//! Working against a team server. On the team server: `POST /captures`, a screen capture made
//! on someone's laptop, with its idempotency key, capture time and the findings the laptop's
//! model made. On the laptop: `GET /team`, where its link to the team server stands (the
//! captures waiting in its spool). The upload helpers here are shared with the screenshot
//! upload, which takes the same key and findings.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use opslens_core::filing::{check_key, Filing, MadeElsewhere, MAX_ANALYSIS_BYTES};
use opslens_core::uplink::{TeamStatus, Uplink};
use opslens_core::upload::MAX_UPLOAD_BYTES;
use opslens_core::EvidenceService;
use opslens_domain::Evidence;
use utoipa::ToSchema;

use super::ApiResult;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;

/// The laptop's link to a team server; `None` where captures stay on this server.
#[derive(Debug, Clone, Default)]
pub struct Team(pub Option<Arc<Uplink>>);

/// Name of the idempotency header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m)
}

/// The parts of a multipart upload: the image and the named text fields.
#[derive(Debug, Default)]
pub(crate) struct UploadParts {
    /// The `file` part and its file name.
    pub file: Option<(Vec<u8>, Option<String>)>,
    /// Every other allowed part, as text.
    pub fields: BTreeMap<String, String>,
}

/// Reads a multipart upload: `file` (the image, at most 25 MiB) and the text fields named in
/// `allowed` (each at most 256 KiB, once). Anything else is refused by name.
pub(crate) async fn read_upload(mut form: Multipart, allowed: &[&str]) -> ApiResult<UploadParts> {
    let mut out = UploadParts::default();
    while let Some(mut field) = form.next_field().await? {
        let name = field.name().unwrap_or("").to_string();
        let is_file = name == "file";
        if !is_file && !allowed.contains(&name.as_str()) {
            let mut known = vec!["file"];
            known.extend_from_slice(allowed);
            return Err(invalid(format!(
                "unexpected multipart field {name:?}: this upload takes {}",
                known.join(", ")
            )));
        }
        if (is_file && out.file.is_some()) || out.fields.contains_key(&name) {
            return Err(invalid(format!("send one `{name}` field per upload")));
        }
        let limit = if is_file {
            MAX_UPLOAD_BYTES
        } else {
            MAX_ANALYSIS_BYTES
        };
        let file_name = field.file_name().map(str::to_string);
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await? {
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("field `{name}` exceeds its limit of {limit} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        if is_file {
            out.file = Some((bytes, file_name));
        } else {
            let text = String::from_utf8(bytes)
                .map_err(|_| invalid(format!("field `{name}` must be UTF-8 text")))?;
            out.fields.insert(name, text);
        }
    }
    Ok(out)
}

/// The `Idempotency-Key` header, checked.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let k = v
        .to_str()
        .map_err(|_| invalid("Idempotency-Key must be visible ASCII"))?;
    check_key(k)?;
    Ok(Some(k.to_string()))
}

/// The filing an upload describes: its key, and the `analysis` and `captured_at` fields.
pub(crate) fn filing(headers: &HeaderMap, parts: &UploadParts) -> ApiResult<Filing> {
    let analysis = match parts.fields.get("analysis") {
        None => None,
        Some(text) => {
            let a: MadeElsewhere =
                serde_json::from_str(text).map_err(|e| invalid(format!("analysis: {e}")))?;
            Some(a)
        }
    };
    let captured_at = match parts.fields.get("captured_at") {
        None => None,
        Some(t) => {
            let at = DateTime::parse_from_rfc3339(t.trim())
                .map_err(|e| {
                    invalid(format!(
                        "captured_at: {e}; give an RFC 3339 time such as 2026-11-30T14:05:00Z"
                    ))
                })?
                .with_timezone(&Utc);
            if at > Utc::now() + chrono::Duration::days(1) {
                return Err(invalid("captured_at is more than a day in the future"));
            }
            Some(at)
        }
    };
    Ok(Filing {
        key: idempotency_key(headers)?,
        captured_at,
        analysis,
    })
}

/// The image part, or the error naming it.
pub(crate) fn image_part(parts: &mut UploadParts) -> ApiResult<(Vec<u8>, Option<String>)> {
    parts
        .file
        .take()
        .ok_or_else(|| invalid("multipart field `file` is missing: send the image as `file`"))
}

/// 201 for a new row, 200 for a repeat of its idempotency key.
pub(crate) fn created_or_repeat(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// Multipart form of `POST /captures`.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CaptureUploadForm {
    /// The captured image (PNG, JPEG or WebP, at most 25 MiB).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Incident to file it on; default: the incident a window of this server shows, else the
    /// open incident changed most recently, else a new "Untriaged capture".
    #[schema(minimum = 1)]
    incident_id: Option<i64>,
    /// When it was captured (RFC 3339); it may have waited on the laptop. Default: now.
    #[schema(value_type = Option<String>, format = DateTime)]
    captured_at: Option<String>,
    /// What was captured (`monitor`, `region 640×480 at (0, 0)`), for its name.
    #[schema(max_length = 200)]
    label: Option<String>,
    /// Findings the laptop's model made, as JSON text in the `MadeElsewhere` shape
    /// (`{findings, model, machine, device, ms}`); without it this server's workers analyse it.
    #[schema(value_type = Option<String>, content_media_type = "application/json")]
    analysis: Option<MadeElsewhere>,
}

/// File a screen capture made on another machine (the desktop app pointed at this server).
/// With `Idempotency-Key`, a repeat (the laptop never saw the first answer) returns the first
/// evidence with 200 and adds nothing; the same key with another image is 409.
#[utoipa::path(post, path = "/captures", tag = "evidence",
    params(("Idempotency-Key" = Option<String>, Header,
        description = "1 to 200 visible ASCII characters naming this capture; a repeat returns the first result")),
    request_body(content = CaptureUploadForm, content_type = "multipart/form-data"),
    responses((status = 201, body = Evidence, description = "Stored; analysed here unless `analysis` came with it"),
        (status = 200, body = Evidence, description = "A repeat of the key: the first upload's evidence"),
        (status = 404, body = ErrorBody, description = "No such incident"),
        (status = 409, body = ErrorBody, description = "The key was used for another image"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "Bad field, key, time or findings")))]
pub async fn file_capture(
    State(s): State<Arc<EvidenceService>>,
    headers: HeaderMap,
    form: Multipart,
) -> ApiResult<(StatusCode, Json<Evidence>)> {
    let mut parts = read_upload(form, &["incident_id", "captured_at", "label", "analysis"]).await?;
    let filing = filing(&headers, &parts)?;
    let incident_id = match parts.fields.get("incident_id").map(|t| t.trim()) {
        None | Some("") => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| invalid(format!("incident_id: {t:?} is not an id")))?,
        ),
    };
    let label = parts
        .fields
        .get("label")
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "remote capture".into());
    opslens_core::validate::text("label", &label)?;
    opslens_core::validate::max_chars("label", &label, 200)?;
    let (bytes, _) = image_part(&mut parts)?;
    let (c, created) = s.file_capture(incident_id, bytes, label, filing).await?;
    Ok((created_or_repeat(created), Json(c.evidence)))
}

/// Where this app's link to a team server stands: whether it files captures there, how many
/// wait in its spool, whether the server answered last time.
#[utoipa::path(get, path = "/team", tag = "evidence",
    responses((status = 200, body = TeamStatus)))]
pub async fn status(State(team): State<Team>) -> Json<TeamStatus> {
    Json(team.0.map(|u| u.status()).unwrap_or_default())
}

/// Body of `PUT /team`.
#[derive(Debug, Clone, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamSettings {
    /// The team server's address (`https://opslens.example.com:8443`).
    #[schema(min_length = 1, max_length = 2000)]
    pub server_url: String,
    /// Your token on it (from `opslens users add NAME` there).
    #[schema(min_length = 1, max_length = 2000)]
    pub token: String,
}

/// Point this app at a team server (Settings): stores the address and token, in the OS
/// keychain in the desktop app (else the data dir's `secrets.env`), for the next start.
#[utoipa::path(put, path = "/team", tag = "evidence", request_body = TeamSettings,
    responses((status = 200, body = opslens_core::uplink::TeamSettingsSaved),
        (status = 422, body = ErrorBody, description = "Not an http(s) origin, or an empty token")))]
pub async fn save(
    State(server): State<Arc<crate::state::ServerInfo>>,
    Json(body): Json<TeamSettings>,
) -> ApiResult<Json<opslens_core::uplink::TeamSettingsSaved>> {
    let dir = std::path::PathBuf::from(&server.data_dir);
    let keychain = server.desktop;
    let saved = tokio::task::spawn_blocking(move || {
        opslens_core::uplink::save_settings(&dir, keychain, &body.server_url, &body.token)
    })
    .await
    .map_err(opslens_core::CoreError::from)??;
    Ok(Json(saved))
}

/// Stop filing captures on a team server from the next start: removes the stored address
/// and token (captures already waiting stay in the spool).
#[utoipa::path(delete, path = "/team", tag = "evidence", responses((status = 204)))]
pub async fn forget(State(server): State<Arc<crate::state::ServerInfo>>) -> ApiResult<StatusCode> {
    let dir = std::path::PathBuf::from(&server.data_dir);
    let keychain = server.desktop;
    tokio::task::spawn_blocking(move || opslens_core::uplink::forget_settings(&dir, keychain))
        .await
        .map_err(opslens_core::CoreError::from)??;
    Ok(StatusCode::NO_CONTENT)
}
