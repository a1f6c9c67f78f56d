//! People, the local user, roles on incidents, and who wrote each entry.
//!
//! Entries written without an author are the local user's (a trigger fills them in, see
//! `0007_people.sql`): the only token there is belongs to them. What integrations and the
//! analysis write names them instead, through [`set_author`].

use opslens_domain::{FeedKind, FeedOp, IncidentRoles, Person, Role, Timestamp};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::incidents::ensure_exists;
use crate::row::{now, ts};
use crate::tx::{Fact, WriteTx};
use crate::{Result, SqliteStore, StoreError};

/// Tables whose rows have an author.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Authored {
    Timeline,
    Evidence,
    Hypothesis,
}

/// Names the author of a row just written (an integration, `analysis`, `correlation`).
pub(crate) fn set_author(tx: &Connection, what: Authored, id: i64, author: &str) -> Result<()> {
    let table = match what {
        Authored::Timeline => "timeline_event",
        Authored::Evidence => "evidence",
        Authored::Hypothesis => "hypothesis",
    };
    tx.execute(
        &format!("UPDATE {table} SET author = ?1 WHERE id = ?2"),
        params![author, id],
    )?;
    Ok(())
}

const COLUMNS: &str = "id, name, handle, email, is_local_user";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Person> {
    Ok(Person {
        id: r.get("id")?,
        name: r.get("name")?,
        handle: r.get("handle")?,
        email: r.get("email")?,
        local_user: r.get::<_, i64>("is_local_user")? != 0,
    })
}

pub(crate) fn person_in(c: &Connection, id: i64) -> Result<Person> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM person WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound { what: "person", id })
}

/// A person by id, handle (with or without `@`) or exact name (case-insensitive).
pub(crate) fn find_in(c: &Connection, who: &str) -> Result<Option<Person>> {
    let who = who.trim();
    if let Ok(id) = who.parse::<i64>() {
        return match person_in(c, id) {
            Ok(p) => Ok(Some(p)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        };
    }
    let handle = who.trim_start_matches('@');
    Ok(c.query_row(
        &format!(
            "SELECT {COLUMNS} FROM person WHERE lower(handle) = lower(?1)
             UNION ALL SELECT {COLUMNS} FROM person WHERE lower(name) = lower(?2)
             LIMIT 1"
        ),
        params![handle, who],
        from_row,
    )
    .optional()?)
}

fn handle_taken(c: &Connection, handle: Option<&str>, except: Option<i64>) -> Result<()> {
    let Some(h) = handle else { return Ok(()) };
    let other: Option<i64> = c
        .query_row(
            "SELECT id FROM person WHERE lower(handle) = lower(?1)",
            [h],
            |r| r.get(0),
        )
        .optional()?;
    match other {
        Some(id) if Some(id) != except => Err(StoreError::Conflict(format!(
            "handle: @{h} belongs to person {id} already"
        ))),
        _ => Ok(()),
    }
}

/// A person as the store takes it: trimmed and validated by the caller.
#[derive(Debug, Clone)]
pub struct PersonRow {
    /// Name.
    pub name: String,
    /// Handle without `@`.
    pub handle: Option<String>,
    /// Email.
    pub email: Option<String>,
}

impl SqliteStore {
    /// Everyone known, the local user first, then by name.
    pub fn people(&self) -> Result<Vec<Person>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLUMNS} FROM person ORDER BY is_local_user DESC, lower(name), id"
            ))?;
            let rows = st
                .query_map([], from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Adds a person; a handle someone else has is a conflict.
    pub fn add_person(&self, p: &PersonRow) -> Result<Person> {
        self.write(|tx| {
            handle_taken(tx, p.handle.as_deref(), None)?;
            tx.execute(
                "INSERT INTO person(name, handle, email, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![p.name, p.handle, p.email, ts(&now())],
            )?;
            person_in(tx, tx.last_insert_rowid())
        })
    }

    /// One person.
    pub fn person(&self, id: i64) -> Result<Person> {
        self.read(|c| person_in(c, id))
    }

    /// Changes a person's name, handle and email; a handle someone else has is a conflict.
    pub fn set_person(&self, id: i64, p: &PersonRow) -> Result<Person> {
        self.write(|tx| {
            person_in(tx, id)?;
            handle_taken(tx, p.handle.as_deref(), Some(id))?;
            tx.execute(
                "UPDATE person SET name = ?1, handle = ?2, email = ?3 WHERE id = ?4",
                params![p.name, p.handle, p.email, id],
            )?;
            person_in(tx, id)
        })
    }

    /// The local user, if one was set.
    pub fn local_user(&self) -> Result<Option<Person>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {COLUMNS} FROM person WHERE is_local_user = 1"),
                [],
                from_row,
            )
            .optional()?)
        })
    }

    /// Sets the local user's name, handle and email (creating them the first time). Entries
    /// already written keep the name they were written under.
    pub fn set_local_user(&self, p: &PersonRow) -> Result<Person> {
        self.write(|tx| {
            let id: Option<i64> = tx
                .query_row("SELECT id FROM person WHERE is_local_user = 1", [], |r| {
                    r.get(0)
                })
                .optional()?;
            handle_taken(tx, p.handle.as_deref(), id)?;
            let id = match id {
                Some(id) => {
                    tx.execute(
                        "UPDATE person SET name = ?1, handle = ?2, email = ?3 WHERE id = ?4",
                        params![p.name, p.handle, p.email, id],
                    )?;
                    id
                }
                None => {
                    tx.execute(
                        "INSERT INTO person(name, handle, email, is_local_user, created_at)
                         VALUES (?1, ?2, ?3, 1, ?4)",
                        params![p.name, p.handle, p.email, ts(&now())],
                    )?;
                    tx.last_insert_rowid()
                }
            };
            person_in(tx, id)
        })
    }

    /// Who holds which role on an incident.
    pub fn roles(&self, incident_id: i64) -> Result<IncidentRoles> {
        self.read(|c| roles_in(c, incident_id))
    }

    /// Gives `role` to the person `who` names (id, handle or name): commander, communications
    /// and scribe change hands, participants are added. A timeline entry says so. `Ok(None)`
    /// when nobody matches `who`.
    pub fn assign_role(
        &self,
        incident_id: i64,
        role: Role,
        who: &str,
    ) -> Result<Option<IncidentRoles>> {
        self.write(|tx| {
            ensure_exists(tx, incident_id)?;
            let Some(p) = find_in(tx, who)? else {
                return Ok(None);
            };
            let before = roles_in(tx, incident_id)?;
            let holder = match role {
                Role::Commander => before.commander.as_ref(),
                Role::Communications => before.communications.as_ref(),
                Role::Scribe => before.scribe.as_ref(),
                Role::Participant => before.participants.iter().find(|x| x.id == p.id),
            };
            if holder.is_some_and(|h| h.id == p.id) {
                return Ok(Some(before));
            }
            let t = now();
            if role != Role::Participant {
                tx.execute(
                    "DELETE FROM incident_role WHERE incident_id = ?1 AND role = ?2",
                    params![incident_id, role.as_str()],
                )?;
            }
            tx.execute(
                "INSERT INTO incident_role(incident_id, role, person_id, assigned_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![incident_id, role.as_str(), p.id, ts(&t)],
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
                &t,
            )?;
            Ok(Some(roles_in(tx, incident_id)?))
        })
    }

    /// Takes `role` from a person; a timeline entry says so. `NotFound` when they do not
    /// hold it.
    pub fn unassign_role(
        &self,
        incident_id: i64,
        role: Role,
        person_id: i64,
    ) -> Result<IncidentRoles> {
        self.write(|tx| {
            ensure_exists(tx, incident_id)?;
            let p = person_in(tx, person_id)?;
            let gone = tx.execute(
                "DELETE FROM incident_role WHERE incident_id = ?1 AND role = ?2 AND person_id = ?3",
                params![incident_id, role.as_str(), person_id],
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
            roles_in(tx, incident_id)
        })
    }
}

/// Records a role change (the narrator words its timeline entry) and the incident as changed.
fn role_event(tx: &WriteTx<'_>, incident_id: i64, fact: Fact, t: &Timestamp) -> Result<()> {
    tx.record(t, fact)?;
    tx.execute(
        "UPDATE incident SET updated_at = ?1 WHERE id = ?2",
        params![ts(t), incident_id],
    )?;
    tx.touched(
        FeedKind::Incident,
        FeedOp::Updated,
        incident_id,
        incident_id,
    );
    Ok(())
}

fn roles_in(c: &Connection, incident_id: i64) -> Result<IncidentRoles> {
    ensure_exists(c, incident_id)?;
    let mut st = c.prepare(&format!(
        "SELECT r.role, {} FROM incident_role r JOIN person p ON p.id = r.person_id
         WHERE r.incident_id = ?1 ORDER BY r.assigned_at, p.id",
        COLUMNS
            .split(", ")
            .map(|col| format!("p.{col}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let rows = st
        .query_map([incident_id], |r| {
            Ok((r.get::<_, String>("role")?, from_row(r)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = IncidentRoles::default();
    for (role, p) in rows {
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
