//! `list_alerts` and `acknowledge_alert`.

use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{Json, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Maintenant, tool_error};
use crate::config::model::Severity;
use crate::readmodel::listing::{Detail, Listing};
use crate::views::alerts::{self, AlertBrief, AlertFilter, AlertRow};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListAlertsParams {
    /// Only alerts still active (default true). false returns history too, resolved alerts included.
    pub active_only: Option<bool>,
    /// Only this severity: info, warning or critical.
    pub severity: Option<Severity>,
    /// Only alerts from this source: a monitor kind (endpoint, certificate, heartbeat, container)
    /// or a monitor id/name (a container's name: `web`, `container/web`).
    pub source: Option<String>,
    /// `brief` (default): counts by state, then the rows needing attention, then the others,
    /// a few fields each, about 4 KB in all. `full`: every field (desired and observed), `limit`
    /// (default 50) rows a page.
    pub detail: Option<Detail>,
    /// Rows a page (max 500); without it a brief holds what fits in about 4 KB, a full page 50.
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AcknowledgeParams {
    /// The alert's `id` from list_alerts.
    pub alert_id: String,
    /// Why, or what is being done about it.
    pub note: Option<String>,
}

impl Maintenant {
    /// This family's routes, with the definitions of `tools.json` (see [`super::catalog`]).
    pub(super) fn alert_routes(defs: &super::catalog::Definitions) -> [ToolRoute<Self>; 2] {
        [
            defs.route("list_alerts", Self::list_alerts),
            defs.route("acknowledge_alert", Self::acknowledge_alert),
        ]
    }
}

#[tool_router(router = alert_tools, vis = "pub(super)")]
impl Maintenant {
    /// List alerts, newest first: type (endpoint_down, certificate_expiring/expired/invalid,
    /// heartbeat_down/failed, container_restart_loop/oom_killed/unhealthy/unexpected_exit/
    /// crash_loop/image_pull/not_ready), severity, status (active/resolved), entity (monitor id), when it
    /// fired, was acknowledged and resolved, its history, and the notifications sent (deliveries,
    /// failed ones included). active_only defaults to true; pass false for history. Paged.
    #[tool(
        name = "list_alerts",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_alerts(
        &self,
        Parameters(p): Parameters<ListAlertsParams>,
    ) -> Result<Json<Listing<AlertBrief, AlertRow>>, String> {
        let filter = AlertFilter {
            active_only: p.active_only.unwrap_or(true),
            severity: p.severity,
            source: p.source,
        };
        let cursor = p.cursor.as_deref();
        match p.detail.unwrap_or_default() {
            Detail::Brief => alerts::brief_alerts(&self.app, &filter, p.limit, cursor),
            Detail::Full => {
                alerts::list_alerts(&self.app, &filter, p.limit, cursor).map(Listing::full)
            }
        }
        .map(Json)
        .map_err(tool_error)
    }

    /// Acknowledge an active alert: records who (the authenticated caller, else "mcp"), when and
    /// the note, and stops re-notification. The alert stays active until its monitor recovers.
    /// Acknowledging twice changes nothing (a new note replaces the old one).
    #[tool(
        name = "acknowledge_alert",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn acknowledge_alert(
        &self,
        Parameters(p): Parameters<AcknowledgeParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<AlertRow>, String> {
        // The verified token's subject when /mcp authentication is on.
        let by = crate::mcp::auth::caller(&ctx).map_or_else(|| "mcp".to_owned(), |id| id.subject);
        alerts::acknowledge_alert(&self.app, &p.alert_id, &by, p.note)
            .map(Json)
            .map_err(tool_error)
    }
}
