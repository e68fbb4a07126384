//! The MCP server: 18 tools (CONTRACT.md) over stdio and Streamable HTTP.
//!
//! Each tool family lives in its own file as a `#[tool_router]` impl block on
//! [`Maintenant`], with its routes beside it; [`catalog`] puts them together
//! with the definitions of `tools.json`. Handlers are thin: they parse
//! arguments, call the read model, and wrap the answer.

pub mod alerts;
pub mod auth;
pub mod catalog;
mod certificates;
mod containers;
mod endpoints;
mod health;
mod heartbeats;
pub mod read_only;
mod resources;
pub mod sessions;
mod status;
pub mod stdio;
mod updates;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::engine::App;
use crate::readmodel::ReadError;

/// The order `tools/list` answers in: the contract's, so assistants and
/// humans see read tools first, the same way every time.
pub const TOOL_ORDER: [&str; 18] = [
    "list_containers",
    "get_container",
    "get_container_logs",
    "list_endpoints",
    "get_endpoint_history",
    "list_heartbeats",
    "list_certificates",
    "list_alerts",
    "get_resources",
    "get_top_consumers",
    "get_updates",
    "get_health",
    "acknowledge_alert",
    "create_incident",
    "update_incident",
    "create_maintenance",
    "pause_monitor",
    "resume_monitor",
];

pub const INSTRUCTIONS: &str = "maintenant monitors containers, HTTP/TCP endpoints, heartbeats and TLS \
certificates. Every monitor row shows `desired` (what was declared, and where: file and line) and \
`observed` (status, since, last check, error). Lists are paged: pass `next_cursor` back as `cursor`. \
Monitors are named by id (`endpoint/NAME`) or plain name. Start with get_health when answers look \
stale: it reports config errors and drift between declared and running checks.";

#[derive(Clone)]
pub struct Maintenant {
    app: Arc<App>,
    tool_router: Arc<ToolRouter<Self>>,
}

impl Maintenant {
    /// One per MCP session, and one per request on the stateless HTTP path:
    /// the tool router is built once per process and shared.
    pub fn new(app: Arc<App>) -> Self {
        static ROUTER: std::sync::OnceLock<Arc<ToolRouter<Maintenant>>> =
            std::sync::OnceLock::new();
        let tool_router = ROUTER.get_or_init(|| Arc::new(catalog::router())).clone();
        Maintenant { app, tool_router }
    }
}

/// An error answer longer than any of ours, with what it quotes cut short.
fn short_error(r: CallToolResult) -> CallToolResult {
    let text: String = r
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect();
    if text.len() <= 1_000 || r.structured_content.is_some() {
        return r;
    }
    CallToolResult::error(vec![ContentBlock::text(crate::config::shorten_quoted(
        &text,
    ))])
}

/// A read error becomes a tool error (`isError: true`) whose text tells the
/// assistant what to do next.
fn tool_error(e: ReadError) -> String {
    e.to_string()
}

pub fn server_info() -> ServerConfig {
    ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
        .with_server_info(
            Implementation::new("maintenant", env!("CARGO_PKG_VERSION"))
                .with_title("maintenant monitoring"),
        )
        .with_instructions(INSTRUCTIONS)
}

/// Sort tools by [`TOOL_ORDER`] (unknown names last, by name).
pub fn order_tools(mut tools: Vec<Tool>) -> Vec<Tool> {
    tools.sort_by_key(|t| {
        (
            TOOL_ORDER
                .iter()
                .position(|n| *n == t.name)
                .unwrap_or(TOOL_ORDER.len()),
            t.name.to_string(),
        )
    });
    tools
}

impl ServerHandler for Maintenant {
    fn get_info(&self) -> ServerConfig {
        server_info()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(read_only::listed(
            catalog::listing(),
            self.app.settings.mcp_read_only,
        )))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Audit trail: who called what, when /mcp is authenticated.
        if let Some(who) = auth::caller(&context) {
            tracing::info!(tool = %request.name, caller = %who.subject, "MCP tool call");
        }
        if let Some(refused) = read_only::refusal(&request.name, self.app.settings.mcp_read_only) {
            return Ok(refused.into());
        }
        let tcc = ToolCallContext::new(self, request, context);
        // rmcp's "failed to deserialize parameters" quotes the bad value in
        // full (serde's "unknown variant `...`"): a 100 kB argument would
        // come back as a 100 kB error.
        match self.tool_router.call(tcc).await {
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
                Ok(CallToolResponse::Complete(short_error(r)))
            }
            Ok(other) => Ok(other),
            Err(mut e) => {
                e.message = crate::config::shorten_quoted(&e.message).into();
                Err(e)
            }
        }
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        if read_only::refusal(name, self.app.settings.mcp_read_only).is_some() {
            return None;
        }
        self.tool_router.get(name).cloned()
    }
}
