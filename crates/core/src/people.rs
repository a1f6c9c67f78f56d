//! People and incident roles: the local user (default author of what this install writes),
//! the people roles are given to, and who holds which role on an incident.

use opslens_domain::{IncidentRoles, NewPerson, Person, Role, RoleAssignment};
use opslens_store::{PersonRow, Store};

use crate::command::CommandService;
use crate::validate::required;
use crate::CoreError;

const MAX_NAME: usize = 200;

/// Checks and tidies a person: a name, a handle of letters, digits, `.`, `_`, `-` (no `@`),
/// an email with an `@`. Errors name the field.
fn person_row(p: NewPerson) -> Result<PersonRow, CoreError> {
    let name = required("name", &p.name, MAX_NAME)?;
    let handle = match p
        .handle
        .as_deref()
        .map(|h| h.trim().trim_start_matches('@'))
    {
        None | Some("") => None,
        Some(h)
            if h.len() <= 64
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
        {
            Some(h.to_string())
        }
        Some(h) => {
            return Err(CoreError::Invalid(format!(
                "handle: {h:?} may hold only letters, digits, '.', '_' and '-' (at most 64)"
            )))
        }
    };
    let email = match p.email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(e) if e.contains('@') && !e.contains(char::is_whitespace) && e.len() <= 254 => {
            Some(e.to_string())
        }
        Some(e) => {
            return Err(CoreError::Invalid(format!(
                "email: {e:?} is not an address"
            )))
        }
    };
    Ok(PersonRow {
        name,
        handle,
        email,
    })
}

fn role(s: &str) -> Result<Role, CoreError> {
    s.parse::<Role>()
        .map_err(|e| CoreError::Invalid(e.to_string()))
}

/// Makes sure there is a local user, so entries have an author from the first one: named
/// after the OS account until the user picks a name (`opslens config set name`, Settings).
pub(crate) fn ensure_local_user(store: &Store) -> Result<(), CoreError> {
    if store.local_user()?.is_some() {
        return Ok(());
    }
    let name = ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "me".into());
    store.set_local_user(&PersonRow {
        name,
        handle: None,
        email: None,
    })?;
    Ok(())
}

impl CommandService {
    /// Everyone known, the local user first.
    pub async fn people(&self) -> Result<Vec<Person>, CoreError> {
        self.db.run(|s| s.people()).await
    }

    /// Adds a person roles can be given to.
    pub async fn add_person(&self, p: NewPerson) -> Result<Person, CoreError> {
        let row = person_row(p)?;
        self.db.run(move |s| s.add_person(&row)).await
    }

    /// The local user.
    pub async fn me(&self) -> Result<Person, CoreError> {
        self.db
            .run(|s| s.local_user())
            .await?
            .ok_or_else(|| CoreError::NotFound("no local user yet: PUT /api/v1/me".into()))
    }

    /// One person.
    pub async fn person(&self, id: i64) -> Result<Person, CoreError> {
        self.db.run(move |s| s.person(id)).await
    }

    /// Changes a person's name, handle or email (a person's own token does this through
    /// `PUT /me`).
    pub async fn set_person(&self, id: i64, p: NewPerson) -> Result<Person, CoreError> {
        let row = person_row(p)?;
        self.db.run(move |s| s.set_person(id, &row)).await
    }

    /// Names the local user (the author of what is written from now on).
    pub async fn set_me(&self, p: NewPerson) -> Result<Person, CoreError> {
        let row = person_row(p)?;
        self.db.run(move |s| s.set_local_user(&row)).await
    }

    /// Who holds which role on an incident.
    pub async fn roles(&self, incident_id: i64) -> Result<IncidentRoles, CoreError> {
        self.db.run(move |s| s.roles(incident_id)).await
    }

    /// Gives a role to a person (by id, handle or name); the timeline records it.
    pub async fn assign_role(
        &self,
        incident_id: i64,
        role_name: &str,
        body: RoleAssignment,
    ) -> Result<IncidentRoles, CoreError> {
        let role = role(role_name)?;
        let who = required("person", &body.person, MAX_NAME)?;
        let asked = who.clone();
        self.db.run(move |s| s.assign_role(incident_id, role, &who))
            .await?
            .ok_or_else(|| {
                CoreError::NotFound(format!(
                    "person: nobody called {asked:?} (by id, handle or name); add them with POST /api/v1/people"
                ))
            })
    }

    /// Takes a role from a person; the timeline records it.
    pub async fn unassign_role(
        &self,
        incident_id: i64,
        role_name: &str,
        person_id: i64,
    ) -> Result<IncidentRoles, CoreError> {
        let role = role(role_name)?;
        self.db
            .run(move |s| s.unassign_role(incident_id, role, person_id))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, handle: Option<&str>, email: Option<&str>) -> NewPerson {
        NewPerson {
            name: name.into(),
            handle: handle.map(Into::into),
            email: email.map(Into::into),
        }
    }

    #[test]
    fn people_are_checked_field_by_field() {
        let ok = person_row(p(" Ana Lima ", Some("@ana"), Some("ana@example.com"))).unwrap();
        assert_eq!(
            (ok.name.as_str(), ok.handle.as_deref()),
            ("Ana Lima", Some("ana"))
        );
        for (bad, field) in [
            (p("", None, None), "name"),
            (p("a", Some("a b"), None), "handle"),
            (p("a", None, Some("nope")), "email"),
        ] {
            let e = person_row(bad).unwrap_err().to_string();
            assert!(e.starts_with(field), "{e}");
        }
        assert!(role("captain")
            .unwrap_err()
            .to_string()
            .starts_with("role must be one of"));
    }
}
