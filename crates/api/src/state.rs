//! The one state of the HTTP application: the services (one per use-case) plus what only the
//! server knows (its port, the screen it may capture, the desktop's facts, login codes, the
//! shutdown signal of event streams). A handler names the one part it uses, e.g.
//! `State(incidents): State<Arc<IncidentService>>`.

use std::sync::Arc;

use axum::extract::FromRef;
use opslens_core::feed::Feed;
use opslens_core::token::ApiToken;
use opslens_core::{
    AccessService, AnalysisService, CommandService, EvidenceService, IncidentService,
    IntegrationService, Services, WorkService,
};

use crate::handlers::capture::Screen;
use crate::handlers::events::Closing;
use crate::handlers::session::LoginCodes;
use crate::handlers::team::Team;
use crate::Extras;

/// Facts about the running server that only the router knows (for the UI's settings screen).
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Port the server listens on.
    pub port: u16,
    /// Where the database, images and token live.
    pub data_dir: String,
    /// Global capture shortcut of the desktop app.
    pub hotkey: String,
    /// Global shortcut of the region selection overlay.
    pub region_hotkey: String,
    /// Whether the server runs inside the desktop app.
    pub desktop: bool,
    /// Free bytes under which the disk counts as nearly full.
    pub low_disk_bytes: u64,
}

/// State shared by all handlers: the services of the process plus what only the server knows.
///
/// One pointer: axum clones the state for every request (and every `State` extractor), and a
/// clone of the parts themselves — a dozen shared counters touched by both cores — was about
/// 5 % of the server's time under load.
#[derive(Debug, Clone)]
pub struct AppState(Arc<StateParts>);

impl std::ops::Deref for AppState {
    type Target = StateParts;

    fn deref(&self) -> &StateParts {
        &self.0
    }
}

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct StateParts {
    /// One service per use-case, and the change feed.
    pub services: Services,
    /// Port, data dir, desktop facts.
    pub server: Arc<ServerInfo>,
    /// The screen `POST /capture` grabs.
    pub screen: Screen,
    /// One-time codes that log a browser in.
    pub login: LoginCodes,
    /// The team server captures go to, if any.
    pub team: Team,
    /// Ends open event streams when the server stops (none in router-only tests).
    pub closing: Option<Closing>,
}

impl AppState {
    /// Assembles the state of a server on `port`.
    pub fn new(
        services: Services,
        token: ApiToken,
        port: u16,
        extras: Extras,
        closing: Option<Closing>,
    ) -> Self {
        AppState(Arc::new(StateParts {
            server: Arc::new(ServerInfo {
                port,
                data_dir: services.data_dir.display().to_string(),
                hotkey: extras.hotkey,
                region_hotkey: extras.region_hotkey,
                desktop: extras.desktop,
                low_disk_bytes: extras.low_disk_bytes,
            }),
            screen: Screen(extras.screen),
            team: Team(extras.uplink),
            login: LoginCodes::new(token, port),
            closing,
            services,
        }))
    }
}

/// Hands a handler one part of the state, e.g. `State<Arc<IncidentService>>`.
macro_rules! parts {
    ($($($path:ident).+ => $ty:ty),* $(,)?) => {$(
        impl FromRef<AppState> for $ty {
            fn from_ref(s: &AppState) -> Self {
                s.$($path).+.clone()
            }
        }
    )*};
}

parts!(
    services.incidents => Arc<IncidentService>,
    services.evidence => Arc<EvidenceService>,
    services.work => Arc<WorkService>,
    services.analysis => Arc<AnalysisService>,
    services.integrations => Arc<IntegrationService>,
    services.command => Arc<CommandService>,
    services.access => Arc<AccessService>,
    services.feed => Feed,
    server => Arc<ServerInfo>,
    screen => Screen,
    team => Team,
    login => LoginCodes,
    closing => Option<Closing>,
);
