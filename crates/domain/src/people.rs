//! People and their roles on an incident. A person is a name with an optional handle and
//! email; the local user (whoever holds this install's token) is one of them and the default
//! author of what is written through that token. Kept small on purpose: per-user tokens will
//! hang off the same rows.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Someone who takes part in incidents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Person {
    /// Stable numeric id.
    pub id: i64,
    /// How they are shown (`Ana Lima`).
    pub name: String,
    /// Chat handle (`ana`), unique when set; matches in role assignments.
    pub handle: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Whether this is the local user (the author of writes through this install's token).
    pub local_user: bool,
}

/// Body of `POST /people` and `PUT /me`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    /// How they are shown (1 to 200 characters).
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Chat handle, unique (a leading `@` is dropped).
    #[serde(default)]
    #[schema(pattern = r"^@*[A-Za-z0-9._-]{0,64}$")]
    pub handle: Option<String>,
    /// Email address.
    #[serde(default)]
    #[schema(max_length = 254, pattern = r"^([\x21-\x7E]*@[\x21-\x7E]*)?$")]
    pub email: Option<String>,
}

/// Body of `PUT /incidents/{id}/roles/{role}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleAssignment {
    /// Who: a person's id, handle (`ana`, `@ana`) or exact name.
    #[schema(min_length = 1, max_length = 200)]
    pub person: String,
}

/// Who holds which role on an incident.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IncidentRoles {
    /// Runs the response and decides.
    pub commander: Option<Person>,
    /// Writes the status updates to stakeholders.
    pub communications: Option<Person>,
    /// Keeps the timeline.
    pub scribe: Option<Person>,
    /// Everyone else working on it.
    pub participants: Vec<Person>,
}

/// A person with their own API token (`opslens users add`); the token itself is shown once,
/// on creation, and stored only as a hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// Id of the token (a person may get a new one after a revocation).
    pub id: i64,
    /// The person it belongs to; their name is the author of what they write.
    pub person: Person,
    /// What the token may do.
    pub role: crate::UserRole,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was revoked; revoked tokens answer 401.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was last presented (to the minute).
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Body of `POST /users`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The person's name; an existing person of that name gets the token.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// What the token may do (default `member`).
    pub role: Option<crate::UserRole>,
}

/// Answer of `POST /users`: the user and their token, which is never shown again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewUserToken {
    /// The user.
    pub user: User,
    /// The bearer token to hand to them.
    pub token: String,
}
