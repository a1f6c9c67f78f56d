//! A write transaction as a value: the SQL transaction plus the list of what it changed.
//!
//! Every write runs inside [`Store::write`](crate::Store), which hands its closure a
//! [`WriteTx`]. The row helpers record on it the objects they create, change or remove
//! ([`WriteTx::touched`]) and the facts people follow ([`WriteTx::record`]): an incident opened,
//! a status changed, a hypothesis proposed. The store does not word those facts: the
//! [`Narrator`] the core installs says what each one puts on the timeline and whether (and how)
//! it is announced, and the [`Notifier`] turns an announcement into outbox rows, all inside the
//! same transaction, so a change, its timeline entries and its messages commit together or not
//! at all. [`WriteTx::release`] returns the list of changes; the store hands it to the change
//! feed only after the commit, so nobody hears about a change that was rolled back.
//!
//! Each write is a savepoint inside a batch transaction of the group-committing writer (see
//! [`crate::writer`]): a write that fails rolls back to its savepoint alone.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use opslens_domain::{
    Action, Evidence, FeedChange, FeedKind, FeedOp, Hypothesis, Incident, IncidentSource,
    IncidentStatus, OccurredAtSource, Person, Role, Severity, StatusUpdate, TimelineKind,
    Timestamp,
};
use rusqlite::{params, Connection, OptionalExtension};

use crate::row::{get_in, now, ts};
use crate::{NewOutbox, Result};

/// Something that happened which people follow, described by its data alone; the
/// [`Narrator`] words it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Fact {
    /// An incident was opened, by hand or brought in from another system (then it has an
    /// `external_id`).
    IncidentOpened(Incident),
    /// An incident's title, severity or status really changed (`(from, to)` for each);
    /// `via`: the system that changed it (a sync or webhook), `None` for a person.
    IncidentChanged {
        /// The incident after the change.
        incident: Incident,
        /// Old and new title.
        title: Option<(String, String)>,
        /// Old and new severity.
        severity: Option<(Severity, Severity)>,
        /// Old and new status.
        status: Option<(IncidentStatus, IncidentStatus)>,
        /// The system that made the change.
        via: Option<IncidentSource>,
    },
    /// Evidence (text or a screenshot) was added.
    EvidenceAdded(Evidence),
    /// A hypothesis was proposed (by a person, the model or correlation).
    HypothesisProposed(Hypothesis),
    /// A hypothesis changed; `old` is how it was before.
    HypothesisChanged {
        /// Before.
        old: Hypothesis,
        /// After.
        new: Hypothesis,
    },
    /// An action item was added.
    ActionAdded(Action),
    /// An action item changed; `old` is how it was before.
    ActionChanged {
        /// Before.
        old: Action,
        /// After.
        new: Action,
    },
    /// A person took a role on an incident (`was`: who held it before).
    RoleAssigned {
        /// The incident.
        incident_id: i64,
        /// Which role.
        role: Role,
        /// Who has it now.
        person: Person,
        /// Who had it before, for single-holder roles.
        was: Option<Person>,
    },
    /// A person gave a role up.
    RoleReleased {
        /// The incident.
        incident_id: i64,
        /// Which role.
        role: Role,
        /// Who had it.
        person: Person,
    },
    /// A status update for stakeholders was posted.
    StatusUpdatePosted(StatusUpdate),
    /// Incident `from` was merged into `into`; recorded once on each (`on_target` says which
    /// timeline this one is for).
    IncidentMerged {
        /// The incident merged away.
        from: Incident,
        /// The incident that received everything.
        into: Incident,
        /// For the target's timeline (else the merged one's).
        on_target: bool,
        /// Evidence, timeline entries, hypotheses and actions moved.
        moved: [i64; 4],
    },
}

impl Fact {
    /// The incident the fact belongs to.
    pub fn incident_id(&self) -> i64 {
        match self {
            Fact::IncidentOpened(i) | Fact::IncidentChanged { incident: i, .. } => i.id,
            Fact::EvidenceAdded(e) => e.incident_id,
            Fact::HypothesisProposed(h) | Fact::HypothesisChanged { new: h, .. } => h.incident_id,
            Fact::ActionAdded(a) | Fact::ActionChanged { new: a, .. } => a.incident_id,
            Fact::RoleAssigned { incident_id, .. } | Fact::RoleReleased { incident_id, .. } => {
                *incident_id
            }
            Fact::StatusUpdatePosted(u) => u.incident_id,
            Fact::IncidentMerged {
                from,
                into,
                on_target,
                ..
            } => {
                if *on_target {
                    into.id
                } else {
                    from.id
                }
            }
        }
    }
}

/// A time and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// When it happened.
    pub time: Timestamp,
    /// Who says so.
    pub source: OccurredAtSource,
}

impl At {
    /// A time recorded by OpsLens itself (now, or when it wrote the row).
    pub fn recorded(time: Timestamp) -> Self {
        At {
            time,
            source: OccurredAtSource::Recorded,
        }
    }
}

/// One timeline entry a fact puts on its incident's timeline.
#[derive(Debug, Clone)]
pub struct TimelineLine {
    /// Its kind.
    pub kind: TimelineKind,
    /// Its text.
    pub message: String,
    /// The evidence it is about.
    pub evidence_id: Option<i64>,
}

/// What a fact means to the people following the incident: its timeline entries and the
/// announcement for Slack, Teams and webhooks, if any.
#[derive(Debug, Clone, Default)]
pub struct Narration {
    /// Entries for the timeline, in order.
    pub timeline: Vec<TimelineLine>,
    /// The announcement: its kind, one readable line per thing that changed, structured data.
    pub announce: Option<(
        ChangeKind,
        String,
        serde_json::Map<String, serde_json::Value>,
    )>,
}

/// Words facts. The core implements it: wording and the choice of what is news belong to the
/// use-cases, not to storage. Called inside the write transaction, so it must only format.
pub trait Narrator: Send + Sync {
    /// What `fact` puts on the timeline and announces.
    fn narrate(&self, fact: &Fact) -> Narration;
}

/// What kind of change is announced; its spelling is the event type consumers filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// An incident was opened (by hand, or brought in open from PagerDuty or an alert).
    IncidentCreated,
    /// An incident's status, severity or title changed.
    IncidentUpdated,
    /// A hypothesis was proposed (by a person, the model or change correlation).
    HypothesisCreated,
    /// A hypothesis was supported, refuted or reopened.
    HypothesisUpdated,
    /// An action item was added.
    ActionCreated,
    /// An action item's status, owner, title or due date changed.
    ActionUpdated,
    /// A status update for stakeholders (status, impact, text, next update due).
    StatusUpdate,
}

impl ChangeKind {
    /// The event type (`incident.created`, …), as in Standard Webhooks payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::IncidentCreated => "incident.created",
            ChangeKind::IncidentUpdated => "incident.updated",
            ChangeKind::HypothesisCreated => "hypothesis.created",
            ChangeKind::HypothesisUpdated => "hypothesis.updated",
            ChangeKind::ActionCreated => "action.created",
            ChangeKind::ActionUpdated => "action.updated",
            ChangeKind::StatusUpdate => "incident.status_update",
        }
    }
}

/// One announced change, as the notifier formats it.
#[derive(Debug, Clone)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The incident as it is after the change (every message names its incident).
    pub incident: Incident,
    /// One readable line per thing that changed (`Status: triggered → investigating`).
    pub text: String,
    /// Structured detail for machine consumers.
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// Turns an announced change into outbox rows, one per configured destination, in that
/// destination's format. Called inside the write transaction, so it must only format.
pub trait Notifier: Send + Sync {
    /// The rows to queue for `change` (empty when nothing is configured).
    fn rows(&self, change: &Change) -> Vec<NewOutbox>;
    /// Whether any destination is configured at all: when none is, a write skips reading the
    /// incident back for a message nobody would receive (most writes of a laptop install).
    fn wants(&self) -> bool {
        true
    }
    /// Called after a transaction that queued rows has committed (wakes the sender).
    fn queued(&self) {}
}

/// Receives the changes of each committed write transaction. Called on the writing thread
/// right after the commit, so it must only hand them on (never block).
pub trait FeedSink: Send + Sync {
    /// The changes of one transaction, in the order they were made, each once.
    fn committed(&self, changes: Vec<FeedChange>);
}

/// The core's hooks into every write; none set (store unit tests): facts are recorded but
/// put nothing on the timeline, and nobody hears of commits.
#[derive(Default, Clone)]
pub(crate) struct Hooks {
    pub(crate) narrator: Option<Arc<dyn Narrator>>,
    pub(crate) notifier: Option<Arc<dyn Notifier>>,
    pub(crate) feed: Option<Arc<dyn FeedSink>>,
}

impl Hooks {
    /// Hands a committed transaction's list on: to the feed, and to the notifier's bell.
    pub(crate) fn committed(&self, done: Committed) {
        if let (Some(sink), false) = (&self.feed, done.changes.is_empty()) {
            sink.committed(done.changes);
        }
        if done.queued_outbox {
            if let Some(n) = &self.notifier {
                n.queued();
            }
        }
    }
}

/// What a committed transaction changed.
#[derive(Debug, Default)]
pub struct Committed {
    /// Objects created, changed or removed, each once, in order.
    pub changes: Vec<FeedChange>,
    /// Whether it queued outgoing messages.
    pub queued_outbox: bool,
}

/// One write: a savepoint in the writer's open transaction and the list of what it changed
/// so far. Derefs to the connection for the row helpers.
pub struct WriteTx<'c> {
    sql: &'c Connection,
    hooks: &'c Hooks,
    changes: RefCell<Vec<FeedChange>>,
    queued: Cell<bool>,
    /// Who the timeline entries of this write are by, when not the local user (an
    /// integration, `analysis`, `correlation`).
    author: RefCell<Option<String>>,
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.sql
    }
}

impl<'c> WriteTx<'c> {
    /// Runs one statement through the writer's statement cache. It shadows
    /// `Connection::execute`, which compiles its SQL afresh on every call: an `INSERT` on a
    /// table with triggers (the search index's) compiles every trigger program with it, which
    /// cost more than the write itself. Writes repeat the same few statements, so each is
    /// compiled once per connection.
    pub(crate) fn execute<P: rusqlite::Params>(&self, sql: &str, params: P) -> Result<usize> {
        Ok(self.sql.prepare_cached(sql)?.execute(params)?)
    }

    /// Starts a write as a savepoint of the transaction open on `conn`.
    pub(crate) fn savepoint(conn: &'c Connection, hooks: &'c Hooks) -> Result<Self> {
        // Cached like [`WriteTx::execute`]: `execute_batch` would compile it on every write.
        conn.prepare_cached("SAVEPOINT write")?.execute([])?;
        Ok(WriteTx {
            sql: conn,
            hooks,
            changes: RefCell::new(Vec::new()),
            queued: Cell::new(false),
            author: RefCell::new(REQUEST_AUTHOR.with(|a| a.borrow().clone())),
        })
    }

    /// Records that this transaction touched an object.
    pub(crate) fn touched(&self, kind: FeedKind, op: FeedOp, incident_id: i64, id: i64) {
        self.changes.borrow_mut().push(FeedChange {
            kind,
            op,
            incident_id,
            id,
        });
    }

    /// Records an evidence row as updated, looking up its incident.
    pub(crate) fn evidence_updated(&self, evidence_id: i64) -> Result<()> {
        let incident: Option<i64> = self
            .prepare_cached("SELECT incident_id FROM evidence WHERE id = ?1")?
            .query_row([evidence_id], |r| r.get(0))
            .optional()?;
        if let Some(incident_id) = incident {
            self.touched(
                FeedKind::Evidence,
                FeedOp::Updated,
                incident_id,
                evidence_id,
            );
        }
        Ok(())
    }

    /// Names who the timeline entries written from now on in this write are by (an
    /// integration, `analysis`, `correlation`); unnamed, the database's trigger names the
    /// local user.
    pub(crate) fn as_author(&self, who: &str) {
        *self.author.borrow_mut() = Some(who.to_string());
    }

    /// Who this write's rows are by: a name given with [`WriteTx::as_author`], else the person
    /// of the request's token ([`with_author`]), else `None` — the database then names the
    /// local user.
    pub(crate) fn author(&self) -> Option<String> {
        self.author.borrow().clone()
    }

    /// Adds a timeline event at `at` (with where its time came from). Unnamed, the author is
    /// the local user, named in the insert itself: the schema's trigger that does the same
    /// would cost a second write of the row.
    pub(crate) fn add_event_at(
        &self,
        incident_id: i64,
        kind: TimelineKind,
        message: &str,
        at: At,
        evidence_id: Option<i64>,
    ) -> Result<i64> {
        self.prepare_cached(
            "INSERT INTO timeline_event(incident_id, kind, message, occurred_at, occurred_at_source,
                                        created_at, evidence_id, author)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
                     COALESCE(?8, (SELECT name FROM person WHERE is_local_user = 1)))",
        )?
        .execute(params![
            incident_id,
            kind.as_str(),
            message,
            ts(&at.time),
            at.source.as_str(),
            ts(&now()),
            evidence_id,
            self.author.borrow().as_deref()
        ])?;
        let id = self.last_insert_rowid();
        self.touched(FeedKind::Timeline, FeedOp::Created, incident_id, id);
        Ok(id)
    }

    /// Records a fact that happened at `at`: the narrator's timeline entries are added and
    /// its announcement queued in the outbox, both in this transaction.
    pub(crate) fn record(&self, at: &Timestamp, fact: Fact) -> Result<()> {
        self.record_at(At::recorded(*at), fact)
    }

    /// [`WriteTx::record`] at a time with its source (a person's or a derived time).
    pub(crate) fn record_at(&self, at: At, fact: Fact) -> Result<()> {
        let Some(narrator) = &self.hooks.narrator else {
            return Ok(());
        };
        let n = narrator.narrate(&fact);
        let incident_id = fact.incident_id();
        for line in &n.timeline {
            self.add_event_at(incident_id, line.kind, &line.message, at, line.evidence_id)?;
        }
        let (Some((kind, text, data)), Some(notifier)) = (n.announce, &self.hooks.notifier) else {
            return Ok(());
        };
        if !notifier.wants() {
            return Ok(());
        }
        let change = Change {
            kind,
            incident: get_in(self, incident_id)?,
            text,
            data,
        };
        let rows = notifier.rows(&change);
        let t = ts(&now());
        for row in &rows {
            self.queue_outbox(row, &t)?;
        }
        Ok(())
    }

    /// Queues one outgoing message, due at `t`; returns its id. The outbox worker is woken
    /// once the transaction commits.
    pub(crate) fn queue_outbox(&self, n: &NewOutbox, t: &str) -> Result<i64> {
        self.prepare_cached(
            "INSERT INTO outbox(message_id, target, event_type, incident_id, payload, status,
                                next_attempt_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6, ?6)",
        )?
        .execute(params![
            n.message_id,
            n.target,
            n.event_type,
            n.incident_id,
            n.payload.to_string(),
            t
        ])?;
        self.queued.set(true);
        Ok(self.last_insert_rowid())
    }

    /// Keeps this write in the batch; returns what it changed (each object once, first
    /// occurrence kept, in order). The batch's commit makes it durable.
    pub(crate) fn release(self) -> Result<Committed> {
        self.sql.prepare_cached("RELEASE write")?.execute([])?;
        let all = self.changes.into_inner();
        let mut seen = std::collections::HashSet::with_capacity(all.len());
        Ok(Committed {
            changes: all.into_iter().filter(|c| seen.insert(*c)).collect(),
            queued_outbox: self.queued.get(),
        })
    }

    /// Undoes this write alone (the rest of the batch stays) and forgets its list.
    pub(crate) fn rollback(self) -> Result<()> {
        Ok(self.sql.execute_batch("ROLLBACK TO write; RELEASE write")?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use opslens_domain::IncidentPatch;

    use super::*;
    use crate::{NewIncidentRow, Store};

    #[derive(Default)]
    struct Heard(Mutex<Vec<Vec<FeedChange>>>);
    impl FeedSink for Heard {
        fn committed(&self, changes: Vec<FeedChange>) {
            self.0.lock().unwrap().push(changes);
        }
    }

    use crate::test_narrator::Terse;

    #[test]
    fn a_commit_hands_on_its_changes_once_each_and_a_rollback_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let heard = Arc::new(Heard::default());
        s.set_feed(heard.clone());
        s.set_narrator(Arc::new(Terse));
        let inc = s.create_incident(NewIncidentRow::test("a")).unwrap();
        let got = heard.0.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "one transaction, one list");
        let kinds: Vec<_> = got[0].iter().map(|c| (c.kind, c.op)).collect();
        assert_eq!(
            kinds,
            [
                (FeedKind::Incident, FeedOp::Created),
                (FeedKind::Timeline, FeedOp::Created)
            ]
        );
        // The narrator's words are what the timeline holds.
        let tl = s.timeline(inc.id).unwrap();
        assert_eq!(tl[0].message, "IncidentOpened");
        // A patch that touches the incident twice is announced once.
        let patch = IncidentPatch {
            severity: Some(Severity::Low),
            status: Some(IncidentStatus::Investigating),
            ..Default::default()
        };
        s.update_incident(inc.id, &patch).unwrap();
        let last = heard.0.lock().unwrap().last().unwrap().clone();
        let incident_updates = last.iter().filter(|c| c.kind == FeedKind::Incident).count();
        assert_eq!(incident_updates, 1, "{last:?}");
        // A failed write (unknown incident) is rolled back and nobody hears of it.
        let before = heard.0.lock().unwrap().len();
        assert!(s.update_incident(999, &patch).is_err());
        assert_eq!(heard.0.lock().unwrap().len(), before);
    }

    #[test]
    fn without_a_narrator_facts_put_nothing_on_the_timeline() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let inc = s.create_incident(NewIncidentRow::test("quiet")).unwrap();
        assert!(s.timeline(inc.id).unwrap().is_empty());
    }
}

/// A narrator for the store's own tests: each fact becomes one entry named after it (with its
/// evidence, if any), nothing is announced. The real wording lives in the core.
#[cfg(test)]
pub(crate) mod test_narrator {
    use super::*;

    /// See the module.
    pub(crate) struct Terse;

    impl Narrator for Terse {
        fn narrate(&self, fact: &Fact) -> Narration {
            let name = format!("{fact:?}");
            let (kind, evidence_id) = match fact {
                Fact::EvidenceAdded(e) => (TimelineKind::EvidenceAdded, Some(e.id)),
                _ => (TimelineKind::Observation, None),
            };
            Narration {
                timeline: vec![TimelineLine {
                    kind,
                    message: name.split(['(', ' ']).next().unwrap_or("").to_string(),
                    evidence_id,
                }],
                announce: None,
            }
        }
    }
}

thread_local! {
    /// The author of the writes the current thread makes for a request (see [`with_author`]).
    static REQUEST_AUTHOR: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f` with `author` as the author of every row its writes create (timeline entries,
/// evidence, hypotheses, actions, status updates), unless a write names another; `None` leaves
/// the local user as the author. Writes run on their caller's thread (see `writer`), so a
/// thread-local carries the name from the request into the transaction.
pub fn with_author<T>(author: Option<&str>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<String>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            REQUEST_AUTHOR.with(|a| *a.borrow_mut() = prev);
        }
    }
    struct Unmark;
    impl Drop for Unmark {
        fn drop(&mut self) {
            BLOCKING_CALL.with(|b| b.set(b.get().saturating_sub(1)));
        }
    }
    let prev = REQUEST_AUTHOR.with(|a| a.replace(author.map(str::to_owned)));
    let _restore = Restore(prev);
    BLOCKING_CALL.with(|b| b.set(b.get() + 1));
    let _unmark = Unmark;
    f()
}

thread_local! {
    /// Depth of [`with_author`] calls on this thread: the core makes every store call of a
    /// request through it on a blocking thread (`Db::run`).
    static BLOCKING_CALL: Cell<u32> = const { Cell::new(0) };
}

/// Whether this thread is inside [`with_author`], i.e. a blocking thread where a blocking
/// database client may run directly (the PostgreSQL client must not run inside an async
/// task: its own runtime would panic there).
pub(crate) fn on_blocking_call() -> bool {
    BLOCKING_CALL.with(|b| b.get() > 0)
}

/// The author [`with_author`] set for the current thread's writes (the PostgreSQL backend's
/// transactions start from it as SQLite's do).
pub(crate) fn request_author() -> Option<String> {
    REQUEST_AUTHOR.with(|a| a.borrow().clone())
}
