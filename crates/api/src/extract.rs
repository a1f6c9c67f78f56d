//! Extractors whose rejections use the API's error shape instead of axum's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `Json<T>` with JSON errors, reading the body as the OpenAPI spec describes it (see
/// [`parse_object`]).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            let status = r.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "payload_too_large"
            } else {
                "bad_request"
            };
            ApiError::new(status, code, r.body_text())
        })?;
        Ok(Json(parse_object(&bytes)?))
    }
}

/// Reads a JSON request body the way JSON Schema (and so the spec) reads it:
/// - only an object is a body: serde would also read a struct from an array (`["title"]`);
/// - a number with no fraction is an integer (`3.0` is a valid `integer` for JSON Schema,
///   while serde refuses it for an `i64`).
///
/// Unreadable JSON is 400 `invalid_json`; readable JSON of the wrong shape 422 `invalid_body`
/// naming the field.
pub(crate) fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("body: {e}"),
        )
    })?;
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", m);
    if !value.is_object() {
        return Err(invalid("the body must be a JSON object".into()));
    }
    integral_floats_to_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        match path.as_str() {
            "." => invalid(format!("body: {}", e.inner())),
            _ => invalid(format!("{path}: {}", e.inner())),
        }
    })
}

/// Rewrites every float with no fractional part that fits an `i64` as that integer.
fn integral_floats_to_integers(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // i64::MAX as f64 rounds up to 2^63, which no longer fits: keep the bound exclusive.
            if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// `application/json` or any `+json` type, as axum's own `Json` accepts.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some((ty, sub)) = essence.split_once('/') else {
        return false;
    };
    ty == "application" && (sub == "json" || sub.ends_with("+json"))
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `Path<T>` with JSON errors (e.g. a non-numeric id).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// `Query<T>` with JSON errors (e.g. an unknown status value).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        title: String,
        #[serde(default)]
        ids: Vec<i64>,
        #[serde(default)]
        width: Option<u32>,
    }

    #[test]
    fn only_objects_pass_as_bodies() {
        let b: Body = parse_object(br#" {"title": "x"}"#).unwrap();
        assert_eq!(b.title, "x");
        for body in [&b"[]"[..], b"[\"x\"]", b"null", b"\"x\"", b"12"] {
            let e = parse_object::<Body>(body).unwrap_err();
            assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body:?}");
        }
        let e = parse_object::<Body>(b"[1,").unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn integral_numbers_are_integers_and_errors_name_the_field() {
        let b: Body =
            parse_object(br#"{"title": "x", "ids": [3.0, -2e3], "width": 1201.0}"#).unwrap();
        assert_eq!(b.ids, [3, -2000]);
        assert_eq!(b.width, Some(1201));
        let e = parse_object::<Body>(br#"{"title": "x", "ids": [1.5]}"#).unwrap_err();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let msg = format!("{e:?}");
        assert!(msg.contains("ids[0]"), "{msg}");
        let e = parse_object::<Body>(br#"{"title": "x", "width": -1.0}"#).unwrap_err();
        assert!(format!("{e:?}").contains("width"), "{e:?}");
    }

    #[test]
    fn json_content_types() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::CONTENT_TYPE, v.parse().unwrap());
            is_json(&m)
        };
        assert!(h("application/json"));
        assert!(h("application/json; charset=utf-8"));
        assert!(h("application/merge-patch+json"));
        assert!(!h("text/plain"));
        assert!(!h("application/x-www-form-urlencoded"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
