//! Per-person API tokens: kept as SHA-256 digests, one live token per person, revocation kept
//! on record. The token is high-entropy random, so a fast digest is the right hash (nothing to
//! brute-force), and lookups by digest are one index probe per request.

use opslens_domain::{User, UserRole};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::people::{find_in, person_in};
use crate::row::{now, ts, Ts};
use crate::{Result, SqliteStore, StoreError};

/// A token row before its person is joined in.
type Raw = (i64, i64, String, Ts, Option<Ts>, Option<Ts>);

fn raw(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        r.get("id")?,
        r.get("person_id")?,
        r.get("role")?,
        r.get("created_at")?,
        r.get("revoked_at")?,
        r.get("last_used_at")?,
    ))
}

fn assemble(c: &Connection, (id, person_id, role, created, revoked, used): Raw) -> Result<User> {
    Ok(User {
        id,
        person: person_in(c, person_id)?,
        role: role
            .parse::<UserRole>()
            .map_err(|e| StoreError::Conflict(e.to_string()))?,
        created_at: created.0,
        revoked_at: revoked.map(|t| t.0),
        last_used_at: used.map(|t| t.0),
    })
}

const COLUMNS: &str = "id, person_id, role, created_at, revoked_at, last_used_at";

impl SqliteStore {
    /// Gives `name` (an existing person of that name or handle, else a new person) a token of
    /// `role` whose digest is `sha256`. A person who already holds a live token is a conflict:
    /// revoke it first, so an old token never stays valid by accident.
    pub fn add_user_token(&self, name: &str, role: UserRole, sha256: &str) -> Result<User> {
        self.write(|tx| {
            let name = name.trim();
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT id FROM person WHERE lower(name) = lower(?1)
                     UNION ALL SELECT id FROM person WHERE lower(handle) = lower(?2)
                     LIMIT 1",
                    params![name, name.trim_start_matches('@')],
                    |r| r.get(0),
                )
                .optional()?;
            let person = match existing {
                Some(id) => person_in(tx, id)?,
                None => {
                    tx.execute(
                        "INSERT INTO person(name, handle, email, created_at) VALUES (?1, NULL, NULL, ?2)",
                        params![name, ts(&now())],
                    )?;
                    person_in(tx, tx.last_insert_rowid())?
                }
            };
            let live: Option<i64> = tx
                .query_row(
                    "SELECT id FROM api_token WHERE person_id = ?1 AND revoked_at IS NULL",
                    [person.id],
                    |r| r.get(0),
                )
                .optional()?;
            if live.is_some() {
                return Err(StoreError::Conflict(format!(
                    "{} already has a live token: revoke it first (opslens users revoke {:?})",
                    person.name, person.name
                )));
            }
            tx.execute(
                "INSERT INTO api_token(person_id, role, token_sha256, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![person.id, role.as_str(), sha256, ts(&now())],
            )?;
            let id = tx.last_insert_rowid();
            let raw = tx.query_row(
                &format!("SELECT {COLUMNS} FROM api_token WHERE id = ?1"),
                [id],
                raw,
            )?;
            assemble(tx, raw)
        })
    }

    /// Every token ever made, live ones first, newest first.
    pub fn users(&self) -> Result<Vec<User>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLUMNS} FROM api_token ORDER BY revoked_at IS NOT NULL, id DESC"
            ))?;
            let raws = st
                .query_map([], raw)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            raws.into_iter().map(|raw| assemble(c, raw)).collect()
        })
    }

    /// Revokes the live token of `who` (token id, person name or handle); `None` when there is
    /// no such live token.
    pub fn revoke_user(&self, who: &str) -> Result<Option<User>> {
        self.write(|tx| {
            let by_token: Option<i64> = match who.trim().parse::<i64>() {
                Ok(id) => tx
                    .query_row(
                        "SELECT id FROM api_token WHERE id = ?1 AND revoked_at IS NULL",
                        [id],
                        |r| r.get(0),
                    )
                    .optional()?,
                Err(_) => None,
            };
            let id = match by_token {
                Some(id) => id,
                None => {
                    let Some(person) = find_in(tx, who)? else {
                        return Ok(None);
                    };
                    let live: Option<i64> = tx
                        .query_row(
                            "SELECT id FROM api_token WHERE person_id = ?1 AND revoked_at IS NULL",
                            [person.id],
                            |r| r.get(0),
                        )
                        .optional()?;
                    let Some(id) = live else { return Ok(None) };
                    id
                }
            };
            tx.execute(
                "UPDATE api_token SET revoked_at = ?1 WHERE id = ?2",
                params![ts(&now()), id],
            )?;
            let raw = tx.query_row(
                &format!("SELECT {COLUMNS} FROM api_token WHERE id = ?1"),
                [id],
                raw,
            )?;
            assemble(tx, raw).map(Some)
        })
    }

    /// The live token whose digest is `sha256`, if any (revoked ones are not found).
    pub fn user_by_token(&self, sha256: &str) -> Result<Option<User>> {
        self.read(|c| {
            let raw = c
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM api_token WHERE token_sha256 = ?1 AND revoked_at IS NULL"
                ))?
                .query_row([sha256], raw)
                .optional()?;
            raw.map(|raw| assemble(c, raw)).transpose()
        })
    }

    /// Notes that token `id` was used now (the caller rate-limits this to once a minute).
    pub fn touch_user_token(&self, id: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE api_token SET last_used_at = ?1 WHERE id = ?2",
                params![ts(&now()), id],
            )?;
            Ok(())
        })
    }
}
