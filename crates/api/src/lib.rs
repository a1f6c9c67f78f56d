//! The OpsLens REST API (`/api/v1`), its guards, its OpenAPI 3.1 spec at `/openapi.json` and the
//! interactive docs at `/docs`, all served from the binary (no CDN: laptops are offline at times).

pub mod auth;
pub mod error;
pub mod exposure;
mod extract;
mod fallback;
pub mod handlers;
pub mod spec;
pub mod state;
pub mod tls;
pub mod ui;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use axum::extract::DefaultBodyLimit;
use axum::Router;
use opslens_core::token::ApiToken;
use tokio::net::TcpListener;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use opslens_core::Services;
use opslens_mcp::CancellationToken;

use crate::handlers::{
    analysis, capture, command, events, evidence, incidents, integrations, postmortem, session,
    similar, system, team, users, webhooks, work,
};
use crate::state::AppState;

/// JSON bodies above this are refused with 413 (pasted logs fit comfortably).
const JSON_BODY_LIMIT: usize = 8 * 1024 * 1024;
/// Upload requests: the 25 MiB file plus multipart framing.
const UPLOAD_BODY_LIMIT: usize = opslens_core::upload::MAX_UPLOAD_BYTES + 64 * 1024;
/// Webhook deliveries: GitHub's documented maximum (25 MB); the others send far less.
const WEBHOOK_BODY_LIMIT: usize = 25 * 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    // Path parameters name these; no body does, so they are listed here.
    components(schemas(opslens_domain::Role, opslens_core::filing::MadeElsewhere)),
    info(
        title = "OpsLens API",
        description = "Local REST API of OpsLens, the local-first incident workspace. \
            Every route except /api/v1/health, /api/v1/auth/exchange, /api/v1/webhooks/*, \
            /openapi.json, /docs and the web UI's files (/, /assets/) needs \
            `Authorization: Bearer <token>`; `opslens token` prints the token. Webhook routes \
            authenticate by the sender's signature instead."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "incidents", description = "Incidents and their lifecycle"),
        (name = "evidence", description = "Logs, notes, deployments, alerts and screenshots"),
        (name = "timeline", description = "What happened when"),
        (name = "hypotheses", description = "The hypotheses board"),
        (name = "actions", description = "Action items"),
        (name = "people", description = "People, the local user, and incident roles"),
        (name = "postmortem", description = "The postmortem document and its exports"),
        (name = "system", description = "Health, search, model status"),
        (name = "models", description = "Supported models, their install state and pulls"),
        (name = "integrations", description = "Integration status, syncs, outgoing posts (outbox)"),
        (name = "webhooks", description = "Signed incoming webhooks (no API token; signature instead)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let comps = doc.components.get_or_insert_with(Default::default);
        comps.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The `/api/v1` routes with their OpenAPI description.
fn api_routes() -> OpenApiRouter<AppState> {
    let upload = OpenApiRouter::new()
        .routes(routes!(evidence::upload))
        .routes(routes!(team::file_capture))
        .layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT));
    let hooks = OpenApiRouter::new()
        .routes(routes!(webhooks::receive))
        .layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT));
    OpenApiRouter::new()
        .routes(routes!(system::health))
        .routes(routes!(incidents::create, incidents::list))
        .routes(routes!(incidents::export))
        .routes(routes!(
            incidents::get,
            incidents::update,
            incidents::delete
        ))
        .routes(routes!(similar::similar))
        .routes(routes!(similar::merge))
        .routes(routes!(similar::redact))
        .routes(routes!(similar::suggestions))
        .routes(routes!(work::timeline, work::add_event))
        .routes(routes!(work::hypotheses, work::add_hypothesis))
        .routes(routes!(work::update_hypothesis))
        .routes(routes!(work::actions, work::add_action))
        .routes(routes!(work::update_action))
        .routes(routes!(evidence::create, evidence::list))
        .routes(routes!(evidence::get, command::update_evidence))
        .routes(routes!(evidence::image))
        .routes(routes!(system::search))
        .routes(routes!(system::vlm_status))
        .routes(routes!(analysis::analyze))
        .routes(routes!(analysis::compare))
        .routes(routes!(analysis::jobs_of))
        .routes(routes!(analysis::progress))
        .routes(routes!(analysis::job))
        .routes(routes!(analysis::list))
        .routes(routes!(analysis::get))
        .routes(routes!(analysis::pull, analysis::cancel_pull))
        .routes(routes!(analysis::pull_events))
        .routes(routes!(system::info))
        .routes(routes!(session::issue_code))
        .routes(routes!(session::exchange))
        .routes(routes!(integrations::test_all))
        .routes(routes!(integrations::overview))
        .routes(routes!(integrations::set_key))
        .routes(routes!(integrations::test_one))
        .routes(routes!(integrations::sync))
        .routes(routes!(integrations::outbox))
        .routes(routes!(integrations::retry))
        .routes(routes!(integrations::notify))
        .routes(routes!(integrations::grafana))
        .routes(routes!(integrations::datadog))
        .routes(routes!(capture::capture))
        .routes(routes!(capture::focus, capture::set_focus))
        .routes(routes!(team::status, team::save, team::forget))
        .routes(routes!(events::events))
        .routes(routes!(command::people, command::add_person))
        .routes(routes!(command::me, command::set_me))
        .routes(routes!(users::add_user, users::users))
        .routes(routes!(users::revoke_user))
        .routes(routes!(command::roles))
        .routes(routes!(command::assign_role))
        .routes(routes!(command::unassign_role))
        .routes(routes!(
            command::status_updates,
            command::post_status_update
        ))
        .routes(routes!(postmortem::get, postmortem::save))
        .routes(routes!(postmortem::export))
        .routes(routes!(postmortem::draft_summary))
        .routes(routes!(postmortem::edit_event, postmortem::delete_event))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .merge(upload)
        .merge(hooks)
}

/// The OpenAPI document, e.g. for writing it to a file or checking it in tests.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, doc) = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api_routes())
        .split_for_parts();
    spec::complete(doc)
}

/// What the process embedding the server adds to it beyond the services: the screen it may
/// capture and the desktop facts the UI shows. `serve` (headless) and tests use the default.
#[derive(Debug, Clone)]
pub struct Extras {
    /// The screen `POST /capture` grabs; `None` answers 503.
    pub screen: Option<std::sync::Arc<dyn opslens_domain::ScreenSource>>,
    /// The global capture shortcut, as the settings screen shows it.
    pub hotkey: String,
    /// The global shortcut that opens the region selection overlay, likewise.
    pub region_hotkey: String,
    /// Whether the server runs inside the desktop app.
    pub desktop: bool,
    /// Free bytes under which `/info` and the UI warn that the disk is filling
    /// (`OPSLENS_LOW_DISK_MB`, default 1 GiB).
    pub low_disk_bytes: u64,
    /// Public URL, trusted proxies, TLS and failure limit of a server others can reach.
    pub exposure: exposure::Exposure,
    /// The team server captures go to (the desktop pointed at one): `POST /capture` then
    /// spools the capture for it and answers 202.
    pub uplink: Option<std::sync::Arc<opslens_core::uplink::Uplink>>,
}

impl Default for Extras {
    fn default() -> Self {
        Extras {
            screen: None,
            hotkey: DEFAULT_HOTKEY.into(),
            region_hotkey: DEFAULT_REGION_HOTKEY.into(),
            desktop: false,
            low_disk_bytes: opslens_core::storage::low_disk_threshold_from_env(),
            exposure: exposure::Exposure::default(),
            uplink: None,
        }
    }
}

/// The global capture shortcut unless the user picks another (`OPSLENS_HOTKEY`).
pub const DEFAULT_HOTKEY: &str = "Ctrl+Shift+O";

/// The global region-selection shortcut unless the user picks another
/// (`OPSLENS_REGION_HOTKEY`): `R` for region, beside the capture shortcut's modifiers.
pub const DEFAULT_REGION_HOTKEY: &str = "Ctrl+Shift+R";

/// The whole HTTP application: guards, API, spec and docs, with one error shape.
pub fn router(services: Services, token: ApiToken, port: u16) -> Router {
    router_with(services, token, port, Extras::default())
}

/// [`router`] with a screen to capture and the desktop's facts.
pub fn router_with(services: Services, token: ApiToken, port: u16, extras: Extras) -> Router {
    build(
        services,
        token,
        port,
        extras,
        None,
        CancellationToken::new(),
        None,
    )
}

/// The router; `closing` ends the open event streams (`GET /events`) when the server stops;
/// `bind` is the address listened on, when there is a socket.
fn build(
    services: Services,
    token: ApiToken,
    port: u16,
    extras: Extras,
    closing: Option<events::Closing>,
    mcp_stop: CancellationToken,
    bind: Option<IpAddr>,
) -> Router {
    let (api, spec) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api_routes())
        .split_for_parts();
    let access = services.access.clone();
    // The MCP endpoint: behind the same guards (token, Host, Origin) as /api/v1.
    let public_hosts = extras
        .exposure
        .public_url
        .as_ref()
        .map(|p| {
            let mut h = p.hosts.clone();
            h.push(p.host().to_string());
            h
        })
        .unwrap_or_default();
    let mcp = opslens_mcp::http_service(
        services.clone(),
        extras.screen.clone(),
        port,
        public_hosts,
        mcp_stop,
    );
    let guard = auth::Guard::exposed(token.clone(), port, access, &extras.exposure, bind);
    let state = AppState::new(services, token, port, extras, closing);
    let api = api.with_state(state);
    let app = Router::new()
        .merge(api)
        .nest_service("/mcp", mcp)
        .merge(ui::routes())
        .merge(SwaggerUi::new("/docs").url("/openapi.json", crate::spec::complete(spec)))
        .fallback(fallback::not_found)
        // Shared, not cloned per request: the guard holds lists of hosts and origins.
        .layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(guard),
            auth::guard,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    // A router's layers wrap each route, inside the part that answers a wrong method: a 405
    // gets its `Allow` header only after them. Around the whole router, as the fallback of an
    // empty one, the error bodies are written from the finished answer and can name the methods.
    Router::new()
        .fallback_service(app)
        .layer(axum::middleware::map_response(fallback::json_errors))
}

/// Serves the app on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    services: Services,
    token: ApiToken,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, services, token, Extras::default(), shutdown).await
}

/// [`serve`] with a screen to capture, the desktop's facts and, for a server others can reach,
/// its exposure (TLS when `extras.exposure.tls` is set).
pub async fn serve_with(
    listener: TcpListener,
    services: Services,
    token: ApiToken,
    extras: Extras,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let (closing, closed) = tokio::sync::watch::channel(false);
    let mcp_stop = CancellationToken::new();
    let tls = extras.exposure.tls.clone();
    let app = build(
        services,
        token,
        local.port(),
        extras,
        Some(events::Closing(closed)),
        mcp_stop.clone(),
        Some(local.ip()),
    );
    let shutdown = async move {
        shutdown.await;
        // Event streams never end by themselves; the graceful shutdown waits for them.
        let _ = closing.send(true);
        mcp_stop.cancel();
    };
    match tls {
        Some(config) => run(tls::TlsListener::new(listener, config)?, app, shutdown).await,
        None => run(listener, app, shutdown).await,
    }
}

/// Serves `app` on `listener` (plain or TLS), telling the guards each connection's peer.
async fn run<L>(
    listener: L,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    axum::serve(
        fallback::JsonErrorListener(listener),
        app.into_make_service_with_connect_info::<exposure::PeerAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
