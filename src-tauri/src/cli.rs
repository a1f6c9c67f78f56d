//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::client::Remote;
use opslens_domain::{EvidenceType, IncidentStatus, Severity};

/// OpsLens: a local-first incident workspace. Without a subcommand it opens the desktop app
/// (the server plus its window); `opslens serve` runs the server alone.
#[derive(Debug, Parser)]
#[command(
    name = "opslens",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("OPSLENS_GIT_COMMIT"), ")"),
    about
)]
pub struct Cli {
    /// Data directory (database, images, API token).
    #[arg(long, global = true, env = "OPSLENS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// On failure, print every cause on its own line and the backtrace when one was captured
    /// (RUST_BACKTRACE=1); without it an error is one line.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Model selection and location (for the app; `serve` and `models` take them too).
    #[command(flatten)]
    pub model: crate::models_cmd::ModelArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the headless server (REST API on loopback, docs at /docs; beyond loopback with TLS
    /// or behind a named reverse proxy).
    Serve(ServeArgs),
    /// Print the API token (creating it if needed).
    Token,
    /// Create, list, show and update incidents through a running server.
    #[command(subcommand)]
    Incident(IncidentCmd),
    /// Add, upload and show evidence through a running server.
    #[command(subcommand)]
    Evidence(EvidenceCmd),
    /// Print the OpenAPI spec of the API.
    Openapi,
    /// List, pull, verify and remove the models that analyse screenshots.
    Models(crate::models_cmd::ModelsArgs),
    /// Run the local vision-language model directly (scripts, checks, benchmarks).
    #[command(subcommand)]
    Vlm(VlmCmd),
    /// Sync PagerDuty incidents and GitHub changes now, through a running server.
    Sync {
        /// `pagerduty` or `github`; both when omitted.
        name: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Open the web UI of a running server in the browser, signed in by a one-time link.
    Open(OpenArgs),
    /// Store, list and delete integration keys (OS keychain, else DATA_DIR/secrets.env).
    #[command(subcommand)]
    Secrets(crate::secrets_cli::SecretsCmd),
    /// Capture the screen (monitor, window or region) onto an incident, through a running
    /// server that has a display (the desktop app, or `serve` inside a desktop session).
    Capture(crate::capture_cmd::CaptureArgs),
    #[command(flatten)]
    Backup(crate::backup_cmd::BackupCmd),
    /// Write a note on the timeline of the active incident (or --incident N), at --at.
    Note(crate::command_cli::NoteArgs),
    /// Give a role on the active incident (or --incident N): commander, communications,
    /// scribe, participant.
    Role(crate::command_cli::RoleArgs),
    /// Post a status update on the active incident (or --incident N) to its stakeholders.
    Update(crate::command_cli::UpdateArgs),
    /// Propose a hypothesis on the active incident (or --incident N).
    Hypothesis(crate::command_cli::ItemArgs),
    /// Add an action item on the active incident (or --incident N).
    Action(crate::command_cli::ItemArgs),
    /// Export the postmortem of the active incident (or --incident N).
    Postmortem(crate::command_cli::PostmortemArgs),
    /// Past incidents like this one (default: the active one), best first, with why.
    Similar(crate::command_cli::SimilarArgs),
    /// Search everything written on incidents (titles, evidence, findings, hypotheses,
    /// actions, notes, status updates, postmortems), through a running server.
    Search(crate::search_cli::SearchArgs),
    /// Your name (the author of what you write), handle and email.
    #[command(subcommand)]
    Config(crate::command_cli::ConfigCmd),
    /// People's own API tokens on a shared server: add (prints the token once), list, revoke.
    #[command(subcommand)]
    Users(crate::users_cmd::UsersCmd),
    /// MCP server on stdin/stdout for an AI agent (Claude Desktop, Claude Code…): relays to
    /// the running server, else opens the data dir itself.
    Mcp(crate::mcp_cmd::McpArgs),
    /// Run only the analysis loop against the data dir of a running app (its SQLite queue),
    /// taking screenshots one at a time with a lease, so several machines or processes share
    /// the queue. Model, device and remote backend as for the app (OPSLENS_DEVICE,
    /// OPSLENS_ANALYSIS_URL, …). Stops on Ctrl-C / SIGTERM.
    Worker(WorkerArgs),
}

/// Options of `worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Name of this worker on the queue (recorded on every job it runs); default
    /// `worker@<host>:<pid>`.
    #[arg(long, env = "OPSLENS_WORKER_ID")]
    pub id: Option<String>,
}

/// Options of `open`.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// Only print the link (it works once, for two minutes).
    #[arg(long)]
    pub no_browser: bool,
    /// Server address; default: the one a running `serve` recorded, else 127.0.0.1:8000.
    #[arg(long, env = "OPSLENS_ADDR")]
    pub addr: Option<String>,
}

/// `opslens vlm …`
#[derive(Debug, Subcommand)]
pub enum VlmCmd {
    /// Answer a prompt about an image with a local model folder.
    Run(crate::vlm_cmd::RunArgs),
}

/// Options of `serve`.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Listen address (`--listen` is the same). Anything but loopback needs --tls-cert and
    /// --tls-key, or --behind-proxy, and --public-url.
    #[arg(long, visible_alias = "listen", env = "OPSLENS_ADDR", default_value = crate::config::DEFAULT_ADDR)]
    pub addr: String,
    /// A shared PostgreSQL database (`postgres://user:pass@host:5432/opslens`, no TLS) instead
    /// of the SQLite file in the data dir: the team server. Images stay in the data dir, or
    /// in --blob-bucket, which several servers on one database must share.
    #[arg(long, env = "OPSLENS_DATABASE_URL", value_name = "URL")]
    pub database: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(
        long,
        env = "OPSLENS_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "OPSLENS_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// IP address of the reverse proxy in front (repeat or comma-separate for several): only
    /// it may connect, and its X-Forwarded-For / X-Forwarded-Proto are trusted.
    #[arg(
        long,
        env = "OPSLENS_BEHIND_PROXY",
        value_name = "ADDR",
        value_delimiter = ','
    )]
    pub behind_proxy: Vec<std::net::IpAddr>,
    /// The URL clients use, e.g. https://opslens.example.com: the Host and Origin checks accept
    /// it besides the loopback names.
    #[arg(long, env = "OPSLENS_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Failed authentications allowed per client (and per person's token) within a minute on
    /// a server others can reach, before it answers 429; 0 turns the limit off.
    #[arg(
        long,
        env = "OPSLENS_AUTH_FAILURE_LIMIT",
        value_name = "N",
        default_value_t = 20
    )]
    pub auth_failure_limit: u32,
    /// Keep image files in this S3-compatible bucket (shared by several servers), with
    /// DATA_DIR/blobs as a cache; credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
    /// (else AWS's usual sources).
    #[arg(long, env = "OPSLENS_BLOB_BUCKET", value_name = "BUCKET")]
    pub blob_bucket: Option<String>,
    /// Key prefix inside the bucket, e.g. `opslens/`.
    #[arg(
        long,
        env = "OPSLENS_BLOB_PREFIX",
        value_name = "PREFIX",
        default_value = ""
    )]
    pub blob_prefix: String,
    /// Endpoint of an S3-compatible service other than AWS, e.g. http://minio:9000.
    #[arg(long, env = "OPSLENS_BLOB_ENDPOINT", value_name = "URL")]
    pub blob_endpoint: Option<String>,
    /// The bucket's region (default: AWS_REGION, else us-east-1).
    #[arg(long, env = "OPSLENS_BLOB_REGION", value_name = "REGION")]
    pub blob_region: Option<String>,
    /// Model selection and location.
    #[command(flatten)]
    pub model: crate::models_cmd::ModelArgs,
}

/// `opslens incident …`
#[derive(Debug, Subcommand)]
pub enum IncidentCmd {
    /// Open an incident: `opslens incident create "Disk full on db-1"`.
    Create {
        /// One-line summary.
        #[arg(value_name = "TITLE", required_unless_present = "title_flag")]
        title: Option<String>,
        /// The summary as a flag, for scripts written before it was positional.
        #[arg(
            long = "title",
            id = "title_flag",
            value_name = "TITLE",
            conflicts_with = "title",
            hide = true
        )]
        title_flag: Option<String>,
        /// Longer context.
        #[arg(long)]
        description: Option<String>,
        /// critical, high, medium or low.
        #[arg(long, default_value = "medium")]
        severity: Severity,
        #[command(flatten)]
        remote: Remote,
    },
    /// List incidents, newest first.
    List {
        /// Only this status.
        #[arg(long)]
        status: Option<IncidentStatus>,
        /// Only this severity.
        #[arg(long)]
        severity: Option<Severity>,
        /// Full-text query.
        #[arg(long, short)]
        query: Option<String>,
        /// Page size.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Items to skip.
        #[arg(long, default_value_t = 0)]
        offset: u32,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show one incident with its timeline.
    Show {
        /// Incident id.
        id: i64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Change an incident.
    Update {
        /// Incident id.
        id: i64,
        /// New title.
        #[arg(long)]
        title: Option<String>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
        /// New severity.
        #[arg(long)]
        severity: Option<Severity>,
        /// New status (triggered, acknowledged, investigating, mitigated, resolved, closed).
        #[arg(long)]
        status: Option<IncidentStatus>,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `opslens evidence …`
#[derive(Debug, Subcommand)]
pub enum EvidenceCmd {
    /// Attach text evidence; the content comes from --content, --file or standard input.
    Add {
        /// Incident id.
        incident: i64,
        /// log, metric, deployment, alert or note.
        #[arg(long = "type", default_value = "log")]
        evidence_type: EvidenceType,
        /// Short label.
        #[arg(long)]
        title: String,
        /// The text.
        #[arg(long, conflicts_with = "file")]
        content: Option<String>,
        /// Read the text from this file ("-" for standard input).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Where it came from.
        #[arg(long)]
        source: Option<String>,
        /// When it happened (`07:13` UTC, `07:13:42Z`, ISO-8601 with offset); default: the
        /// earliest time stamp in the text, else now.
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Upload a screenshot (PNG, JPEG or WebP).
    Upload {
        /// Incident id.
        incident: i64,
        /// The image file.
        file: PathBuf,
        /// When it was on the screen (`07:13` UTC, `07:13:42Z`, ISO-8601 with offset);
        /// default: now.
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show one piece of evidence.
    Show {
        /// Evidence id.
        id: i64,
        #[command(flatten)]
        remote: Remote,
    },
}
