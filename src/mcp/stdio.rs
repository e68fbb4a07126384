//! `maintenant --mcp-stdio`.
//!
//! sled lets one process open a database. So whoever owns `MAINTENANT_DB`
//! (the daemon, or the first stdio process) also serves MCP on a unix socket
//! inside it (`$MAINTENANT_DB/mcp.sock`), and a stdio process:
//! 1. attaches to that socket when something answers there, and forwards
//!    `tools/list` and `tools/call` to it: answers come from the daemon's live
//!    data and write tools act on the daemon's state;
//! 2. otherwise opens the database itself and runs the whole pipeline
//!    (monitors file, checks, store) for as long as the session lasts, serving
//!    the socket in turn so later stdio processes attach to it.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ServerConfig,
};
use rmcp::service::{Peer, RequestContext, RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, UnixSocketHttpClient};
use rmcp::{ErrorData, RoleClient, RoleServer, ServerHandler, ServiceExt};
use tokio_util::sync::CancellationToken;

use crate::engine::{self, Role};
use crate::mcp::{Maintenant, order_tools, proxy_info, read_only};
use crate::settings::Settings;
use crate::store::StoreError;

const SOCKET_URI: &str = "http://localhost/mcp";

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let socket = settings.socket_path();
    if let Some(daemon) = attach(&socket).await {
        tracing::info!(socket = %socket.display(), "attached to the running maintenant");
        return proxy(daemon, &socket, settings.mcp_read_only).await;
    }
    let app = match engine::start(settings.clone(), Role::StdioStandalone).await {
        Ok(app) => app,
        Err(StoreError::Locked { path }) => {
            // The owner may still be starting: give its socket a moment.
            for _ in 0..20 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if let Some(daemon) = attach(&socket).await {
                    return proxy(daemon, &socket, settings.mcp_read_only).await;
                }
            }
            anyhow::bail!(
                "the database {path} is locked by another process that does not answer on {}; \
                 is an older maintenant running there?",
                socket.display()
            );
        }
        Err(e) => return Err(e).context("cannot open the database"),
    };
    tracing::info!("no running maintenant found: serving from this process");
    let cancel = CancellationToken::new();
    let limits =
        crate::serve::Limits::from_settings(&app.settings, crate::serve::raise_nofile_limit())?;
    let connections = crate::serve::Connections::new(limits);
    if let Err(e) = crate::http::serve_unix(app.clone(), &socket, cancel.clone(), connections).await
    {
        tracing::warn!(socket = %socket.display(), error = %e, "cannot serve the attach socket");
    }
    let service = Maintenant::new(app.clone())
        .serve(rmcp::transport::stdio())
        .await?;
    service.waiting().await?;
    cancel.cancel();
    app.store.flush_at_exit()?;
    Ok(())
}

/// Connect to the owner's socket, if one answers.
async fn attach(socket: &Path) -> Option<RunningService<RoleClient, ()>> {
    if tokio::net::UnixStream::connect(socket).await.is_err() {
        return None;
    }
    let client = UnixSocketHttpClient::new(&socket.to_string_lossy(), SOCKET_URI);
    let transport = StreamableHttpClientTransport::with_client(
        client,
        StreamableHttpClientTransportConfig::with_uri(SOCKET_URI),
    );
    match tokio::time::timeout(Duration::from_secs(5), ().serve(transport)).await {
        Ok(Ok(service)) => Some(service),
        Ok(Err(e)) => {
            tracing::warn!(socket = %socket.display(), error = %e, "the attach socket answered but MCP failed");
            None
        }
        Err(_) => None,
    }
}

async fn proxy(
    daemon: RunningService<RoleClient, ()>,
    socket: &Path,
    read_only: bool,
) -> anyhow::Result<()> {
    let handler = Proxy {
        peer: daemon.peer().clone(),
        info: proxy_info(),
        socket: socket.display().to_string(),
        read_only,
    };
    let service = handler.serve(rmcp::transport::stdio()).await?;
    service.waiting().await?;
    let _ = daemon.cancel().await;
    Ok(())
}

/// Forwards tool calls to the process that owns the database.
struct Proxy {
    peer: Peer<RoleClient>,
    info: ServerConfig,
    socket: String,
    /// This process's MAINTENANT_MCP_READ_ONLY: the daemon may serve the
    /// write tools, this session still does not.
    read_only: bool,
}

impl Proxy {
    fn error(&self, e: ServiceError) -> ErrorData {
        match e {
            ServiceError::McpError(e) => e,
            other => ErrorData::internal_error(
                format!(
                    "the maintenant daemon on {} did not answer: {other}; is it still running?",
                    self.socket
                ),
                None,
            ),
        }
    }
}

impl ServerHandler for Proxy {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut result = self
            .peer
            .list_tools(request)
            .await
            .map_err(|e| self.error(e))?;
        result.tools = read_only::listed(
            order_tools(std::mem::take(&mut result.tools)),
            self.read_only,
        );
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if let Some(refused) = read_only::refusal(&request.name, self.read_only) {
            return Ok(refused.into());
        }
        self.peer
            .call_tool(request)
            .await
            .map(Into::into)
            .map_err(|e| self.error(e))
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.peer
            .list_resources(request)
            .await
            .map_err(|e| self.error(e))
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.peer
            .list_resource_templates(request)
            .await
            .map_err(|e| self.error(e))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.peer
            .read_resource(request)
            .await
            .map(Into::into)
            .map_err(|e| self.error(e))
    }
}
