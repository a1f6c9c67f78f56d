//! Integration tests: the real server on a real loopback socket with a temp SQLite file,
//! driven over HTTP (and the real `opslens` binary for the CLI).

#[path = "integration/app.rs"]
mod app;
#[path = "integration/cli.rs"]
mod cli;
#[path = "integration/evidence.rs"]
mod evidence;
#[path = "integration/incidents.rs"]
mod incidents;
#[path = "integration/security.rs"]
mod security;
#[path = "integration/ui.rs"]
mod ui;
#[path = "integration/work.rs"]
mod work;
