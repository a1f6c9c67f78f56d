//! OpsLens as a Model Context Protocol server, so an on-call engineer's agent (Claude Desktop,
//! Claude Code, Cursor…) works in the same incident workspace as the engineer: it reads
//! incidents, files evidence, proposes hypotheses and asks the local model about screenshots.
//!
//! One handler ([`OpsLensMcp`]) over the core services serves both transports: the local
//! server mounts it at `/mcp` (streamable HTTP, behind the API's token and Host/Origin guards,
//! see [`http_service`]), and `opslens mcp` runs it on stdin/stdout over a data dir no server
//! holds ([`serve_stdio`]) or relays stdio to a running server's `/mcp` ([`bridge_stdio`]).
//! Every write is attributed to [`AGENT_AUTHOR`] on the timeline.

mod bridge;
pub mod schema;
mod stdio;
mod tools;

use std::sync::Arc;

use opslens_core::Services;
use opslens_domain::ScreenSource;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};

pub use bridge::bridge_stdio;
pub use stdio::serve_stdio;
pub use tokio_util::sync::CancellationToken;

/// The author of everything an agent writes through MCP, as the timeline and the REST API show
/// it: the agent holds the user's token, but the record should say the agent did it.
pub const AGENT_AUTHOR: &str = "agent via MCP";

/// The MCP handler: tools and resources over the services of this process.
#[derive(Clone)]
pub struct OpsLensMcp {
    services: Services,
    screen: Option<Arc<dyn ScreenSource>>,
    tools: Arc<Vec<Tool>>,
}

impl std::fmt::Debug for OpsLensMcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsLensMcp")
            .field("data_dir", &self.services.data_dir)
            .field("screen", &self.screen.is_some())
            .finish()
    }
}

impl OpsLensMcp {
    /// A handler over `services`; `screen` is what `capture_screen` grabs (`None` on a
    /// headless server: the tool then says so).
    pub fn new(services: Services, screen: Option<Arc<dyn ScreenSource>>) -> Self {
        OpsLensMcp {
            services,
            screen,
            tools: Arc::new(tools::list()),
        }
    }
}

const INSTRUCTIONS: &str = "OpsLens is the user's local incident workspace. List or search \
incidents, read one with its timeline, evidence (including what the local vision model found in \
screenshots), hypotheses and actions; add notes, evidence, hypotheses and action items; upload \
or capture screenshots and ask the local model about them. Everything you write is shown as \
written by \"agent via MCP\". capture_screen grabs the user's screen: call it only when the user \
asked for it, with confirm: true.";

impl ServerHandler for OpsLensMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("opslens", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.to_vec()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let work = tools::call(self, &request.name, args);
        Ok(opslens_core::as_author(AGENT_AUTHOR, work).await?.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(
            tools::resources(self).await?,
        ))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            tools::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        Ok(tools::read(self, &request.uri).await?.into())
    }
}

/// The streamable-HTTP endpoint (mount it at `/mcp`); cancel the token when the server stops so
/// open streams end and the graceful shutdown does not wait for them. The caller guards it
/// (token, Host, Origin); the SDK's own Host check is told the loopback names too, and
/// `public_hosts`, the configured public URL's `Host` spellings on a server others reach.
pub fn http_service(
    services: Services,
    screen: Option<Arc<dyn ScreenSource>>,
    port: u16,
    public_hosts: Vec<String>,
    stop: CancellationToken,
) -> StreamableHttpService<OpsLensMcp, LocalSessionManager> {
    let handler = OpsLensMcp::new(services, screen);
    let hosts = ["127.0.0.1", "localhost", "::1", "[::1]"]
        .into_iter()
        .flat_map(|h| [h.to_string(), format!("{h}:{port}")])
        .chain(public_hosts);
    let mut config = StreamableHttpServerConfig::default().with_allowed_hosts(hosts);
    config.cancellation_token = stop;
    StreamableHttpService::new(move || Ok(handler.clone()), Default::default(), config)
}
