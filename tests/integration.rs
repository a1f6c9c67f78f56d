//! Integration tests: the real server on a real loopback socket with a temp SQLite file,
//! driven over HTTP (and the real `opslens` binary for the CLI).

#[path = "integration/analysis.rs"]
mod analysis;
#[path = "integration/app.rs"]
mod app;
#[path = "integration/backup.rs"]
mod backup;
#[path = "integration/capture.rs"]
mod capture;
#[path = "integration/cli.rs"]
mod cli;
#[path = "integration/command_cli.rs"]
mod command_cli;
#[path = "integration/compare.rs"]
mod compare;
#[path = "integration/dedupe.rs"]
mod dedupe;
#[path = "integration/desktop.rs"]
mod desktop;
#[path = "integration/desktop_pixels.rs"]
mod desktop_pixels;
#[path = "integration/durability.rs"]
mod durability;
#[path = "integration/event_time.rs"]
mod event_time;
#[path = "integration/events.rs"]
mod events;
#[path = "integration/evidence.rs"]
mod evidence;
#[path = "integration/exposure.rs"]
mod exposure;
#[path = "integration/fakes.rs"]
mod fakes;
#[path = "integration/faults.rs"]
mod faults;
#[path = "integration/first_run.rs"]
mod first_run;
#[path = "integration/incidents.rs"]
mod incidents;
#[path = "integration/lifecycle.rs"]
mod lifecycle;
#[path = "integration/mcp.rs"]
mod mcp;
#[path = "integration/notifications.rs"]
mod notifications;
#[path = "integration/objects.rs"]
mod objects;
#[path = "integration/outbox.rs"]
mod outbox;
#[path = "integration/people.rs"]
mod people;
#[path = "integration/pg_backend.rs"]
mod pg_backend;
#[path = "integration/postmortem.rs"]
mod postmortem;
#[path = "integration/search.rs"]
mod search;
#[path = "integration/secrets.rs"]
mod secrets;
#[path = "integration/security.rs"]
mod security;
#[path = "integration/similar.rs"]
mod similar;
#[path = "integration/snapshots.rs"]
mod snapshots;
#[path = "integration/status_updates.rs"]
mod status_updates;
#[path = "integration/summary_draft.rs"]
mod summary_draft;
#[path = "integration/sync.rs"]
mod sync;
#[path = "integration/team.rs"]
mod team;
#[path = "integration/ui.rs"]
mod ui;
#[path = "integration/users.rs"]
mod users;
#[path = "integration/vlm.rs"]
mod vlm;
#[path = "integration/webhooks.rs"]
mod webhooks;
#[path = "integration/work.rs"]
mod work;
#[path = "integration/workers.rs"]
mod workers;
#[path = "integration/xvfb.rs"]
mod xvfb;
