//! The MCP server: 18 tools (CONTRACT.md) over stdio and Streamable HTTP,
//! the live state as resources ([`live`]), and runbook prompts ([`prompts`]).
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
pub mod live;
pub mod prompts;
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
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    ContentBlock, GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Reference,
    ServerCapabilities, ServerConfig, SubscribeRequestParams, Tool, UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext};
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
    /// This session's resource subscriptions (see [`live`]).
    subscriptions: Arc<live::Subscriptions>,
}

impl Maintenant {
    /// One per MCP session, and one per request on the stateless HTTP path:
    /// the tool router is built once per process and shared.
    pub fn new(app: Arc<App>) -> Self {
        static ROUTER: std::sync::OnceLock<Arc<ToolRouter<Maintenant>>> =
            std::sync::OnceLock::new();
        let tool_router = ROUTER.get_or_init(|| Arc::new(catalog::router())).clone();
        Maintenant {
            app,
            tool_router,
            subscriptions: Arc::default(),
        }
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
    info(
        ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .enable_prompts()
            .enable_completions()
            .build(),
    )
}

/// What `--mcp-stdio` declares beside a daemon: it forwards tools and
/// resource reads, not the daemon's notifications.
pub fn proxy_info() -> ServerConfig {
    info(
        ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .build(),
    )
}

fn info(capabilities: ServerCapabilities) -> ServerConfig {
    ServerConfig::new(capabilities)
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

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let app = self.app.clone();
        tokio::task::spawn_blocking(move || prompts::get(&app, &request.name, &request.arguments))
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
            .map(Into::into)
            .map_err(prompts::to_error)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let completion = match &request.r#ref {
            Reference::Prompt(p) => prompts::complete(
                &self.app,
                &p.name,
                &request.argument.name,
                &request.argument.value,
            ),
            _ => Default::default(),
        };
        Ok(CompleteResult::new(completion))
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let cursor = request.and_then(|r| r.cursor);
        let (resources, next) = live::list(&self.app, cursor.as_deref()).map_err(live::to_error)?;
        let mut result = ListResourcesResult::with_all_items(resources);
        result.next_cursor = next;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            live::template(),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let app = self.app.clone();
        let contents = tokio::task::spawn_blocking(move || live::contents(&app, &request.uri))
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?
            .map_err(live::to_error)?;
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions
            .subscribe(&self.app, &request.uri)
            .map_err(live::to_error)
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions.unsubscribe(&request.uri);
        Ok(())
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // One watch per session, for its subscriptions and list changes; it
        // ends when the session's transport closes.
        tokio::spawn(live::watch(
            self.app.clone(),
            self.subscriptions.clone(),
            context.peer,
        ));
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        if read_only::refusal(name, self.app.settings.mcp_read_only).is_some() {
            return None;
        }
        self.tool_router.get(name).cloned()
    }
}
