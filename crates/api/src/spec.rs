//! Completes the generated OpenAPI document so it describes the wire as the server behaves:
//! the error answers that the guards, the extractors and the store produce on every route
//! (each with the one JSON error body), and the character rules of the text fields.
//!
//! These are added here, from facts the document already holds (security, path and query
//! parameters, request bodies), rather than in each handler's annotation: they come from layers
//! every route shares, so a new route gets them right without anyone remembering to list them.

use utoipa::openapi::content::Content;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{KnownFormat, Object, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{OpenApi, Ref, RefOr, Required};
use utoipa::Number;

/// Text that may not hold C0 control characters other than tab, LF and CR (see
/// `opslens_core::validate`).
pub const TEXT_PATTERN: &str = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F]*$";

/// [`TEXT_PATTERN`] that also holds at least one character that is not whitespace (the
/// server trims required text and refuses it when nothing is left; whitespace as Rust's
/// `char::is_whitespace`, listed so every regex dialect reads it the same).
pub const NONBLANK_TEXT_PATTERN: &str = concat!(
    r"^[^\x00-\x08\x0B\x0C\x0E-\x1F]*",
    r"[^\x00-\x20\x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
    r"[^\x00-\x08\x0B\x0C\x0E-\x1F]*$"
);

/// Request bodies whose every text field goes through `opslens_core::validate`.
const VALIDATED_BODIES: &[&str] = &[
    "NewIncident",
    "IncidentPatch",
    "NewEvidence",
    "NewTimelineEvent",
    "NewHypothesis",
    "HypothesisPatch",
    "NewAction",
    "ActionPatch",
    "AnalyzeRequest",
    "NotifyBody",
    "EvidencePatch",
    "NewPerson",
    "NewUser",
    "RoleAssignment",
    "NewStatusUpdate",
    "TimelinePatch",
];

/// Routes that read their body as raw bytes (no JSON extractor: no 415, their own 400/422).
const RAW_BODY_PATHS: &[&str] = &[
    "/api/v1/webhooks/{provider}",
    "/api/v1/evidence/{id}/analyze",
];

/// Routes that never touch the database (no 503 busy, no 507).
fn without_database(path: &str) -> bool {
    path == "/api/v1/health"
        || path == "/api/v1/info"
        || path.starts_with("/api/v1/auth/")
        || path.starts_with("/api/v1/models")
}

/// The finished document: the generated one plus the shared error answers and text rules.
pub fn complete(mut doc: OpenApi) -> OpenApi {
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("patch", &mut item.patch),
            ("put", &mut item.put),
            ("delete", &mut item.delete),
        ];
        for (method, op) in ops {
            if let Some(op) = op.as_mut() {
                add_errors(path, method, op);
                optional_body_is_not_null(op);
                for p in op.parameters.iter_mut().flatten() {
                    if let Some(RefOr::T(Schema::Object(o))) = p.schema.as_mut() {
                        widen_unsigned(o);
                    }
                }
            }
        }
    }
    unique_operation_ids(&mut doc);
    if let Some(components) = doc.components.as_mut() {
        for schema in components.schemas.values_mut() {
            if let RefOr::T(Schema::Object(o)) = schema {
                for prop in o.properties.values_mut() {
                    if let RefOr::T(Schema::Object(p)) = prop {
                        widen_unsigned(p);
                    }
                }
            }
        }
        for name in VALIDATED_BODIES {
            if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(*name) {
                add_text_patterns(o);
            }
        }
    }
    doc
}

fn add_errors(path: &str, method: &str, op: &mut Operation) {
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_path = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path));
    let has_query = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query));
    let body = op.request_body.as_ref();
    let has_body = body.is_some();
    let raw = RAW_BODY_PATHS.contains(&path);
    let json_body = !raw && body.is_some_and(|b| b.content.contains_key("application/json"));
    let multipart = body.is_some_and(|b| b.content.contains_key("multipart/form-data"));
    let public = op.security.as_ref().is_some_and(|reqs| {
        reqs.iter()
            .all(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
    });
    let database = !without_database(path);
    let writes = database && method != "get";

    let mut add = |status: u16, when: bool| {
        if when {
            ensure(op, status);
        }
    };
    add(400, has_path || has_query || json_body || multipart);
    add(401, !public);
    add(403, true);
    add(404, has_path);
    add(413, has_body);
    add(415, json_body);
    add(422, json_body);
    add(429, !public);
    add(500, path != "/api/v1/health");
    add(503, database);
    add(507, writes);
    // Whatever the handler listed itself: make sure each error carries the error body.
    let listed: Vec<u16> = op
        .responses
        .responses
        .keys()
        .filter_map(|k| k.parse().ok())
        .filter(|s| *s >= 400)
        .collect();
    for status in listed {
        ensure(op, status);
    }
}

/// Adds (or completes) the `status` answer of `op` with the JSON error body.
fn ensure(op: &mut Operation, status: u16) {
    let entry = op
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| RefOr::T(Response::new(describe(status))));
    let RefOr::T(res) = entry else { return };
    if res.description.is_empty() {
        res.description = describe(status).into();
    }
    res.content.insert(
        "application/json".into(),
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    );
    match status {
        401 => {
            res.headers
                .entry("WWW-Authenticate".into())
                .or_insert_with(|| header("`Bearer`: send the API token as a bearer token"));
        }
        429 => {
            res.headers.entry("Retry-After".into()).or_insert_with(|| {
                header("Seconds until this client's (or token's) failed authentications fall out of the window")
            });
        }
        503 => {
            res.headers.entry("Retry-After".into()).or_insert_with(|| {
                header("Seconds to wait before retrying, when the database was busy")
            });
        }
        _ => {}
    }
}

fn header(description: &str) -> Header {
    let mut h = Header::new(Object::with_type(Type::String));
    h.description = Some(description.into());
    h
}

/// What an added error answer means on any route.
fn describe(status: u16) -> &'static str {
    match status {
        400 => "Unreadable request: malformed JSON, path or query parameter (`invalid_json`, `invalid_path`, `invalid_query`, `bad_request`)",
        401 => "Missing or invalid API token (`unauthorized`)",
        403 => "Host, Origin or connecting peer not allowed (`forbidden_host`, `forbidden_origin`, `forbidden_peer` behind a reverse proxy), or a viewer's token on a write / a non-admin managing users (`forbidden_role`)",
        404 => "No such object (`not_found`)",
        409 => "The request contradicts stored data or a missing configuration (`conflict`, `not_configured`)",
        413 => "Body over the size limit (`payload_too_large`)",
        415 => "Body not sent as `application/json` (`unsupported_media_type`)",
        422 => "A value is not acceptable; the message names the field (`invalid`, `invalid_body`)",
        429 => "Too many failed authentications from this client, or refused requests with this token, within the window, on a server others can reach; retry after `Retry-After` seconds (`rate_limited`)",
        500 => "Failure on the server's side; details in the OpsLens log (`internal`)",
        502 => "The other service failed (`upstream`)",
        503 => "The database stayed locked by another process; retry after `Retry-After` seconds (`busy`)",
        507 => "The disk holding the data dir is full; the message names the dir and its free space (`insufficient_storage`)",
        _ => "Error",
    }
}

/// Sets the text pattern on every plain string property of a request body.
fn add_text_patterns(o: &mut Object) {
    for prop in o.properties.values_mut() {
        let RefOr::T(Schema::Object(p)) = prop else {
            continue;
        };
        if !is_string(&p.schema_type)
            || p.format.is_some()
            || p.enum_values.is_some()
            || p.pattern.is_some()
        {
            continue;
        }
        let nonblank = p.min_length.is_some_and(|m| m >= 1);
        p.pattern = Some(
            if nonblank {
                NONBLANK_TEXT_PATTERN
            } else {
                TEXT_PATTERN
            }
            .into(),
        );
    }
}

fn is_string(t: &SchemaType) -> bool {
    match t {
        SchemaType::Type(t) => *t == Type::String,
        SchemaType::Array(ts) => ts.contains(&Type::String),
        SchemaType::AnyValue => false,
    }
}

/// utoipa writes a `u32` as `format: int32, minimum: 0`, which caps it at 2^31 - 1 while the
/// server takes up to 2^32 - 1: state the real range.
fn widen_unsigned(o: &mut Object) {
    let int32 = matches!(
        o.format,
        Some(SchemaFormat::KnownFormat(KnownFormat::Int32))
    );
    let from_zero = match o.minimum {
        Some(Number::Int(n)) => n == 0,
        Some(Number::UInt(n)) => n == 0,
        Some(Number::Float(n)) => n == 0.0,
        None => false,
    };
    if int32 && from_zero && o.maximum.is_none() {
        o.format = Some(SchemaFormat::KnownFormat(KnownFormat::Int64));
        o.maximum = Some(Number::UInt(u32::MAX as usize));
    }
}

/// An optional body is written `oneOf: [null, X]`; the server takes no body or an `X`, and a
/// JSON `null` is not an `X`: the schema is `X` with the body not required.
fn optional_body_is_not_null(op: &mut Operation) {
    let Some(body) = op.request_body.as_mut() else {
        return;
    };
    if matches!(body.required, Some(Required::True)) {
        return;
    }
    for content in body.content.values_mut() {
        let Some(RefOr::T(Schema::OneOf(one))) = content.schema.as_ref() else {
            continue;
        };
        let is_null = |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
        let rest: Vec<&RefOr<Schema>> = one.items.iter().filter(|s| !is_null(s)).collect();
        if let [only] = rest[..] {
            content.schema = Some(only.clone());
        }
    }
    body.required = Some(Required::False);
}

/// utoipa names an operation after its handler, and handlers in different modules share names
/// (`get`, `list`, `create`); OpenAPI wants them unique (generators key on them). A shared
/// name gets its tag in front: `incidents_get`, `evidence_get`, `models_get`.
fn unique_operation_ids(doc: &mut OpenApi) {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for item in doc.paths.paths.values() {
        for op in [&item.get, &item.post, &item.patch, &item.put, &item.delete]
            .into_iter()
            .flatten()
        {
            if let Some(id) = &op.operation_id {
                *seen.entry(id.clone()).or_default() += 1;
            }
        }
    }
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.patch,
            &mut item.put,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            let Some(id) = op.operation_id.as_mut() else {
                continue;
            };
            if seen.get(id.as_str()).is_some_and(|n| *n > 1) {
                let tag = op.tags.as_ref().and_then(|t| t.first()).cloned();
                if let Some(tag) = tag {
                    *id = format!("{tag}_{id}");
                }
            }
        }
    }
}
