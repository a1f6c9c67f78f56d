//! People's own tokens on a shared server (`opslens users …`): only an admin (the install
//! token, or a person's admin token) may add, list or revoke them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use opslens_core::access::Identity;
use opslens_core::AccessService;
use opslens_domain::{NewUser, NewUserToken, User, UserRole};

use super::ApiResult;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path};

fn admin_only(who: &Identity) -> Result<(), ApiError> {
    if who.role == UserRole::Admin {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden_role",
        format!(
            "only an admin manages users; {} is a {}",
            who.author().unwrap_or("this token"),
            who.role
        ),
    ))
}

/// Give a person their own token (shown once in the answer; stored only as a hash). An
/// existing person of that name or handle gets it, else one is added.
#[utoipa::path(post, path = "/users", tag = "people", request_body = NewUser,
    responses((status = 201, body = NewUserToken), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_user(
    State(s): State<Arc<AccessService>>,
    Extension(who): Extension<Identity>,
    Json(body): Json<NewUser>,
) -> ApiResult<(StatusCode, Json<NewUserToken>)> {
    admin_only(&who)?;
    Ok((StatusCode::CREATED, Json(s.add(body).await?)))
}

/// Every token ever made, live ones first (never the tokens themselves).
#[utoipa::path(get, path = "/users", tag = "people",
    responses((status = 200, body = Vec<User>), (status = 403, body = ErrorBody)))]
pub async fn users(
    State(s): State<Arc<AccessService>>,
    Extension(who): Extension<Identity>,
) -> ApiResult<Json<Vec<User>>> {
    admin_only(&who)?;
    Ok(Json(s.list().await?))
}

/// Revoke a person's live token (by token id, name or handle): it answers 401 from then on.
#[utoipa::path(delete, path = "/users/{who}", tag = "people", params(("who" = String, Path)),
    responses((status = 200, body = User), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn revoke_user(
    State(s): State<Arc<AccessService>>,
    Extension(who): Extension<Identity>,
    Path(target): Path<String>,
) -> ApiResult<Json<User>> {
    admin_only(&who)?;
    Ok(Json(s.revoke(target).await?))
}
