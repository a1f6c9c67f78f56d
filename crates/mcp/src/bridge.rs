//! `opslens mcp` while a server runs: the stdio MCP server relays every request to that
//! server's `/mcp` endpoint with the user's token, so the one process holding the data dir does
//! the work (its change feed updates the open UI, its model answers questions).

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ServerConfig,
};
use rmcp::service::{RequestContext, RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ErrorData, RoleClient, RoleServer, ServerHandler, ServiceExt};

/// Relays stdio to the MCP endpoint at `url` (e.g. `http://127.0.0.1:8000/mcp`) until stdin
/// closes.
pub async fn bridge_stdio(url: &str, token: &str) -> anyhow::Result<()> {
    // Loopback only: a proxy from the environment must not see the token.
    let http = reqwest::Client::builder()
        .no_proxy()
        // As the SDK's own client: no idle pooling (delayed-ACK stalls on reused connections).
        .pool_max_idle_per_host(0)
        .build()?;
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string()).auth_header(token);
    let client = ()
        .serve(StreamableHttpClientTransport::with_client(http, config))
        .await
        .map_err(|e| anyhow::anyhow!("cannot open an MCP session at {url}: {e}"))?;
    let peer = client
        .peer_info()
        .ok_or_else(|| anyhow::anyhow!("{url} did not say who it is"))?;
    // The server's capabilities, name and instructions; the protocol version is negotiated
    // with our own client.
    let mut info = ServerConfig::new(peer.capabilities.clone());
    if let Some(i) = &peer.server_info {
        info = info.with_server_info(i.clone());
    }
    if let Some(text) = &peer.instructions {
        info = info.with_instructions(text.clone());
    }
    let bridge = Bridge {
        upstream: Arc::new(client),
        info,
    };
    crate::serve_stdio(bridge).await
}

#[derive(Clone)]
struct Bridge {
    upstream: Arc<RunningService<RoleClient, ()>>,
    info: ServerConfig,
}

fn relay(e: ServiceError) -> ErrorData {
    match e {
        ServiceError::McpError(e) => e,
        e => ErrorData::internal_error(format!("the OpsLens server did not answer: {e}"), None),
    }
}

impl ServerHandler for Bridge {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.upstream.list_tools(request).await.map_err(relay)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        Ok(self
            .upstream
            .call_tool(request)
            .await
            .map_err(relay)?
            .into())
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.upstream.list_resources(request).await.map_err(relay)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.upstream
            .list_resource_templates(request)
            .await
            .map_err(relay)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        Ok(self
            .upstream
            .read_resource(request)
            .await
            .map_err(relay)?
            .into())
    }
}
