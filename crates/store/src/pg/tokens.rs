//! Per-person API tokens and status updates on PostgreSQL (as `crate::tokens` and
//! `crate::updates`).

use opslens_domain::{FeedKind, FeedOp, StatusUpdate, User, UserRole};
use postgres::{GenericClient, Row};

use super::people::{find_in, person_in};
use super::row::{en, ensure_incident, incident_in, ot, t};
use super::PgStore;
use crate::row::{now, ts};
use crate::tx::Fact;
use crate::{Result, StatusUpdateRow, StoreError};

const COLUMNS: &str = "id, person_id, role, created_at, revoked_at, last_used_at";

fn user_from_row(c: &mut impl GenericClient, r: &Row) -> Result<User> {
    let role: String = r.try_get("role")?;
    Ok(User {
        id: r.try_get("id")?,
        person: person_in(c, r.try_get("person_id")?)?,
        role: role
            .parse::<UserRole>()
            .map_err(|e| StoreError::Conflict(e.to_string()))?,
        created_at: t(r, "created_at")?,
        revoked_at: ot(r, "revoked_at")?,
        last_used_at: ot(r, "last_used_at")?,
    })
}

fn user_in(c: &mut impl GenericClient, id: i64) -> Result<User> {
    let r = c.query_one(
        &format!("SELECT {COLUMNS} FROM api_token WHERE id = $1"),
        &[&id],
    )?;
    user_from_row(c, &r)
}

fn update_from_row(r: &Row) -> Result<StatusUpdate> {
    Ok(StatusUpdate {
        id: r.try_get("id")?,
        incident_id: r.try_get("incident_id")?,
        status: en(r, "status")?,
        impact: r.try_get("impact")?,
        text: r.try_get("text")?,
        next_update_at: ot(r, "next_update_at")?,
        author: r.try_get("author")?,
        created_at: t(r, "created_at")?,
    })
}

impl PgStore {
    pub(crate) fn add_user_token_pg(
        &self,
        name: &str,
        role: UserRole,
        sha256: &str,
    ) -> Result<User> {
        self.write(|tx| {
            let name = name.trim();
            let existing: Option<i64> =
                tx.c.query_opt(
                    "SELECT id FROM person WHERE lower(name) = lower($1)
                     UNION ALL SELECT id FROM person WHERE lower(handle) = lower($2)
                     LIMIT 1",
                    &[&name, &name.trim_start_matches('@')],
                )?
                .map(|r| r.get(0));
            let person = match existing {
                Some(id) => person_in(&mut tx.c, id)?,
                None => {
                    let id: i64 =
                        tx.c.query_one(
                            "INSERT INTO person(name, handle, email, created_at)
                             VALUES ($1, NULL, NULL, $2) RETURNING id",
                            &[&name, &ts(&now())],
                        )?
                        .get(0);
                    person_in(&mut tx.c, id)?
                }
            };
            let live = tx.c.query_opt(
                "SELECT id FROM api_token WHERE person_id = $1 AND revoked_at IS NULL",
                &[&person.id],
            )?;
            if live.is_some() {
                return Err(StoreError::Conflict(format!(
                    "{} already has a live token: revoke it first (opslens users revoke {:?})",
                    person.name, person.name
                )));
            }
            let id: i64 =
                tx.c.query_one(
                    "INSERT INTO api_token(person_id, role, token_sha256, created_at)
                     VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&person.id, &role.as_str(), &sha256, &ts(&now())],
                )?
                .get(0);
            user_in(&mut tx.c, id)
        })
    }

    pub(crate) fn users_pg(&self) -> Result<Vec<User>> {
        self.read(|c| {
            let rows = c.query(
                &format!(
                    "SELECT {COLUMNS} FROM api_token ORDER BY revoked_at IS NOT NULL, id DESC"
                ),
                &[],
            )?;
            rows.iter().map(|r| user_from_row(c, r)).collect()
        })
    }

    pub(crate) fn revoke_user_pg(&self, who: &str) -> Result<Option<User>> {
        self.write(|tx| {
            let by_token: Option<i64> = match who.trim().parse::<i64>() {
                Ok(id) => {
                    tx.c.query_opt(
                        "SELECT id FROM api_token WHERE id = $1 AND revoked_at IS NULL",
                        &[&id],
                    )?
                    .map(|r| r.get(0))
                }
                Err(_) => None,
            };
            let id = match by_token {
                Some(id) => id,
                None => {
                    let Some(person) = find_in(&mut tx.c, who)? else {
                        return Ok(None);
                    };
                    let live: Option<i64> =
                        tx.c.query_opt(
                            "SELECT id FROM api_token WHERE person_id = $1 AND revoked_at IS NULL",
                            &[&person.id],
                        )?
                        .map(|r| r.get(0));
                    let Some(id) = live else { return Ok(None) };
                    id
                }
            };
            tx.c.execute(
                "UPDATE api_token SET revoked_at = $1 WHERE id = $2",
                &[&ts(&now()), &id],
            )?;
            user_in(&mut tx.c, id).map(Some)
        })
    }

    pub(crate) fn user_by_token_pg(&self, sha256: &str) -> Result<Option<User>> {
        self.read(|c| {
            let row = c.query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM api_token WHERE token_sha256 = $1 AND revoked_at IS NULL"
                ),
                &[&sha256],
            )?;
            row.map(|r| user_from_row(c, &r)).transpose()
        })
    }

    /// One row's last-use time: no need to wait for the other replicas' writes.
    pub(crate) fn touch_user_token_pg(&self, id: i64) -> Result<()> {
        self.write_queue(|tx| {
            tx.c.execute(
                "UPDATE api_token SET last_used_at = $1 WHERE id = $2",
                &[&ts(&now()), &id],
            )?;
            Ok(())
        })
    }

    pub(crate) fn status_updates_pg(&self, incident_id: i64) -> Result<Vec<StatusUpdate>> {
        self.read(|c| {
            ensure_incident(c, incident_id)?;
            c.query(
                "SELECT * FROM status_update WHERE incident_id = $1 ORDER BY id",
                &[&incident_id],
            )?
            .iter()
            .map(update_from_row)
            .collect()
        })
    }

    pub(crate) fn add_status_update_pg(
        &self,
        incident_id: i64,
        new: &StatusUpdateRow,
    ) -> Result<StatusUpdate> {
        self.write(|tx| {
            let inc = incident_in(&mut tx.c, incident_id)?;
            let at = now();
            let author = tx.author();
            let next = new.next_update_at.as_ref().map(ts);
            let r = tx.c.query_one(
                "INSERT INTO status_update(incident_id, status, impact, text, next_update_at, created_at, author)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
                &[
                    &incident_id,
                    &inc.status.as_str(),
                    &new.impact,
                    &new.text,
                    &next,
                    &ts(&at),
                    &author,
                ],
            )?;
            let u = update_from_row(&r)?;
            tx.c.execute(
                "UPDATE incident SET next_update_at = $1, updated_at = $2 WHERE id = $3",
                &[&next, &ts(&at), &incident_id],
            )?;
            tx.touched(FeedKind::Incident, FeedOp::Updated, incident_id, incident_id);
            tx.record(&at, Fact::StatusUpdatePosted(u.clone()))?;
            Ok(u)
        })
    }
}
