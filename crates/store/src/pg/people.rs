//! People, the local user and roles on incidents on PostgreSQL (as `crate::people`).

use opslens_domain::{FeedKind, FeedOp, IncidentRoles, Person, Role, Timestamp};
use postgres::{GenericClient, Row};

use super::{PgStore, PgTx};
use crate::row::{now, ts};
use crate::tx::Fact;
use crate::{PersonRow, Result, StoreError};

const COLUMNS: &str = "id, name, handle, email, is_local_user";

fn from_row(r: &Row) -> Result<Person> {
    Ok(Person {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        handle: r.try_get("handle")?,
        email: r.try_get("email")?,
        local_user: r.try_get("is_local_user")?,
    })
}

pub(crate) fn person_in(c: &mut impl GenericClient, id: i64) -> Result<Person> {
    match c.query_opt(
        &format!("SELECT {COLUMNS} FROM person WHERE id = $1"),
        &[&id],
    )? {
        Some(r) => from_row(&r),
        None => Err(StoreError::NotFound { what: "person", id }),
    }
}

fn handle_taken(
    c: &mut impl GenericClient,
    handle: Option<&str>,
    except: Option<i64>,
) -> Result<()> {
    let Some(h) = handle else { return Ok(()) };
    let other: Option<i64> = c
        .query_opt(
            "SELECT id FROM person WHERE lower(handle) = lower($1)",
            &[&h],
        )?
        .map(|r| r.get(0));
    match other {
        Some(id) if Some(id) != except => Err(StoreError::Conflict(format!(
            "handle: @{h} belongs to person {id} already"
        ))),
        _ => Ok(()),
    }
}

impl PgStore {
    pub(crate) fn people_pg(&self) -> Result<Vec<Person>> {
        self.read(|c| {
            c.query(
                &format!(
                    "SELECT {COLUMNS} FROM person ORDER BY is_local_user DESC, lower(name), id"
                ),
                &[],
            )?
            .iter()
            .map(from_row)
            .collect()
        })
    }

    pub(crate) fn add_person_pg(&self, p: &PersonRow) -> Result<Person> {
        self.write(|tx| {
            handle_taken(&mut tx.c, p.handle.as_deref(), None)?;
            let id: i64 =
                tx.c.query_one(
                    "INSERT INTO person(name, handle, email, created_at) VALUES ($1, $2, $3, $4)
                     RETURNING id",
                    &[&p.name, &p.handle, &p.email, &ts(&now())],
                )?
                .get(0);
            person_in(&mut tx.c, id)
        })
    }

    pub(crate) fn set_person_pg(&self, id: i64, p: &PersonRow) -> Result<Person> {
        self.write(|tx| {
            person_in(&mut tx.c, id)?;
            handle_taken(&mut tx.c, p.handle.as_deref(), Some(id))?;
            tx.c.execute(
                "UPDATE person SET name = $1, handle = $2, email = $3 WHERE id = $4",
                &[&p.name, &p.handle, &p.email, &id],
            )?;
            person_in(&mut tx.c, id)
        })
    }

    pub(crate) fn local_user_pg(&self) -> Result<Option<Person>> {
        self.read(|c| {
            c.query_opt(
                &format!("SELECT {COLUMNS} FROM person WHERE is_local_user"),
                &[],
            )?
            .map(|r| from_row(&r))
            .transpose()
        })
    }

    pub(crate) fn set_local_user_pg(&self, p: &PersonRow) -> Result<Person> {
        self.write(|tx| {
            let id: Option<i64> =
                tx.c.query_opt("SELECT id FROM person WHERE is_local_user", &[])?
                    .map(|r| r.get(0));
            handle_taken(&mut tx.c, p.handle.as_deref(), id)?;
            let id = match id {
                Some(id) => {
                    tx.c.execute(
                        "UPDATE person SET name = $1, handle = $2, email = $3 WHERE id = $4",
                        &[&p.name, &p.handle, &p.email, &id],
                    )?;
                    id
                }
                None => {
                    tx.c.query_one(
                        "INSERT INTO person(name, handle, email, is_local_user, created_at)
                         VALUES ($1, $2, $3, TRUE, $4) RETURNING id",
                        &[&p.name, &p.handle, &p.email, &ts(&now())],
                    )?
                    .get(0)
                }
            };
            person_in(&mut tx.c, id)
        })
    }
}

/// A person by id, handle (with or without `@`) or exact name (case-insensitive).
pub(crate) fn find_in(c: &mut impl GenericClient, who: &str) -> Result<Option<Person>> {
    let who = who.trim();
    if let Ok(id) = who.parse::<i64>() {
        return match person_in(c, id) {
            Ok(p) => Ok(Some(p)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        };
    }
    let handle = who.trim_start_matches('@');
    c.query_opt(
        &format!(
            "(SELECT {COLUMNS} FROM person WHERE lower(handle) = lower($1))
             UNION ALL (SELECT {COLUMNS} FROM person WHERE lower(name) = lower($2))
             LIMIT 1"
        ),
        &[&handle, &who],
    )?
    .map(|r| from_row(&r))
    .transpose()
}

fn roles_in(c: &mut impl GenericClient, incident_id: i64) -> Result<IncidentRoles> {
    super::row::ensure_incident(c, incident_id)?;
    let cols = COLUMNS
        .split(", ")
        .map(|col| format!("p.{col}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = c.query(
        &format!(
            "SELECT r.role, {cols} FROM incident_role r JOIN person p ON p.id = r.person_id
             WHERE r.incident_id = $1 ORDER BY r.assigned_at, p.id"
        ),
        &[&incident_id],
    )?;
    let mut out = IncidentRoles::default();
    for r in &rows {
        let role: String = r.try_get("role")?;
        let p = from_row(r)?;
        match role.parse::<Role>() {
            Ok(Role::Commander) => out.commander = Some(p),
            Ok(Role::Communications) => out.communications = Some(p),
            Ok(Role::Scribe) => out.scribe = Some(p),
            Ok(Role::Participant) => out.participants.push(p),
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Records a role change and the incident as changed (as `crate::people::role_event`).
fn role_event(tx: &mut PgTx<'_, '_>, incident_id: i64, fact: Fact, at: &Timestamp) -> Result<()> {
    tx.record(at, fact)?;
    tx.c.execute(
        "UPDATE incident SET updated_at = $1 WHERE id = $2",
        &[&ts(at), &incident_id],
    )?;
    tx.touched(
        FeedKind::Incident,
        FeedOp::Updated,
        incident_id,
        incident_id,
    );
    Ok(())
}

impl PgStore {
    pub(crate) fn roles_pg(&self, incident_id: i64) -> Result<IncidentRoles> {
        self.read(|c| roles_in(c, incident_id))
    }

    pub(crate) fn assign_role_pg(
        &self,
        incident_id: i64,
        role: Role,
        who: &str,
    ) -> Result<Option<IncidentRoles>> {
        self.write(|tx| {
            super::row::ensure_incident(&mut tx.c, incident_id)?;
            let Some(p) = find_in(&mut tx.c, who)? else {
                return Ok(None);
            };
            let before = roles_in(&mut tx.c, incident_id)?;
            let holder = match role {
                Role::Commander => before.commander.as_ref(),
                Role::Communications => before.communications.as_ref(),
                Role::Scribe => before.scribe.as_ref(),
                Role::Participant => before.participants.iter().find(|x| x.id == p.id),
            };
            if holder.is_some_and(|h| h.id == p.id) {
                return Ok(Some(before));
            }
            let at = now();
            if role != Role::Participant {
                tx.c.execute(
                    "DELETE FROM incident_role WHERE incident_id = $1 AND role = $2",
                    &[&incident_id, &role.as_str()],
                )?;
            }
            tx.c.execute(
                "INSERT INTO incident_role(incident_id, role, person_id, assigned_at)
                 VALUES ($1, $2, $3, $4)",
                &[&incident_id, &role.as_str(), &p.id, &ts(&at)],
            )?;
            let was = holder.filter(|_| role != Role::Participant).cloned();
            role_event(
                tx,
                incident_id,
                Fact::RoleAssigned {
                    incident_id,
                    role,
                    person: p,
                    was,
                },
                &at,
            )?;
            Ok(Some(roles_in(&mut tx.c, incident_id)?))
        })
    }

    pub(crate) fn unassign_role_pg(
        &self,
        incident_id: i64,
        role: Role,
        person_id: i64,
    ) -> Result<IncidentRoles> {
        self.write(|tx| {
            super::row::ensure_incident(&mut tx.c, incident_id)?;
            let p = person_in(&mut tx.c, person_id)?;
            let gone = tx.c.execute(
                "DELETE FROM incident_role WHERE incident_id = $1 AND role = $2 AND person_id = $3",
                &[&incident_id, &role.as_str(), &person_id],
            )?;
            if gone == 0 {
                return Err(StoreError::NotFound {
                    what: "role holder",
                    id: person_id,
                });
            }
            let fact = Fact::RoleReleased {
                incident_id,
                role,
                person: p,
            };
            role_event(tx, incident_id, fact, &now())?;
            roles_in(&mut tx.c, incident_id)
        })
    }
}
