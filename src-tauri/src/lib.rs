//! The `opslens` binary: CLI parsing and wiring, and the desktop shell (Tauri). The work lives
//! in the `crates/` libraries; this crate only connects them.

mod backup_cmd;
mod capture_cmd;
mod cli;
mod client;
mod command_cli;
pub mod config;
mod desktop;
mod dispatch;
mod mcp_cmd;
mod models_cmd;
mod report;
mod search_cli;
mod secrets_cli;
pub mod server;
mod users_cmd;
mod vlm_cmd;

use std::process::ExitCode;

use clap::Parser;

pub use cli::Cli;

/// Entry point of the binary: parses the command line and runs it.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    init_tracing();
    match dispatch::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", report::render(&e, verbose));
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("opslens=info,opslens_store=info,opslens_api=info,tower_http=warn")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
