//! `create_incident`, `update_incident` and `create_maintenance`.

use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{Json, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Maintenant, tool_error};
use crate::status::tools::{self, MaintenanceAnswer, NewWindow};
use crate::status::{Incident, IncidentStatus};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateIncidentParams {
    /// Short public title, e.g. "API errors".
    pub title: String,
    /// investigating (default), identified, monitoring or resolved.
    pub status: Option<IncidentStatus>,
    /// The first update of the timeline: what is known, for the public status page.
    pub message: String,
    /// Affected monitors, by id (`endpoint/api`) or name.
    #[serde(default)]
    pub monitors: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateIncidentParams {
    /// The incident's `id` (from create_incident or /status.json).
    pub incident_id: String,
    /// The status from now on: investigating, identified, monitoring or resolved.
    pub status: IncidentStatus,
    /// What changed, appended to the timeline.
    pub message: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateMaintenanceParams {
    pub title: String,
    /// RFC 3339, e.g. 2026-11-25T22:00:00Z.
    pub start_time: String,
    /// RFC 3339, after start_time.
    pub end_time: String,
    /// Shown on the status page.
    pub message: Option<String>,
    /// Monitors in scope, by id (`endpoint/api`) or name.
    #[serde(default)]
    pub monitors: Vec<String>,
    /// Groups in scope: every monitor of these groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

fn caller(ctx: &RequestContext<RoleServer>) -> String {
    crate::mcp::auth::caller(ctx).map_or_else(|| "mcp".to_owned(), |id| id.subject)
}

impl Maintenant {
    /// This family's routes, with the definitions of `tools.json` (see [`super::catalog`]).
    pub(super) fn status_routes(defs: &super::catalog::Definitions) -> [ToolRoute<Self>; 3] {
        [
            defs.route("create_incident", Self::create_incident),
            defs.route("update_incident", Self::update_incident),
            defs.route("create_maintenance", Self::create_maintenance),
        ]
    }
}

#[tool_router(router = status_tools, vis = "pub(super)")]
impl Maintenant {
    /// Open an incident on the public status page (/status): title, status (investigating,
    /// identified, monitoring, resolved), a first message, and the affected monitors (ids or
    /// names; a typo gets "did you mean"). Returns the incident with its `id` and timeline.
    #[tool(
        name = "create_incident",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn create_incident(
        &self,
        Parameters(p): Parameters<CreateIncidentParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Incident>, String> {
        tools::create_incident(
            &self.app,
            &p.title,
            p.status,
            &p.message,
            &p.monitors,
            &caller(&ctx),
        )
        .map(Json)
        .map_err(tool_error)
    }

    /// Add an update to an incident's timeline and set its status (resolved closes it; another
    /// status reopens it). Returns the incident with every update, oldest first.
    #[tool(
        name = "update_incident",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn update_incident(
        &self,
        Parameters(p): Parameters<UpdateIncidentParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Incident>, String> {
        tools::update_incident(
            &self.app,
            &p.incident_id,
            p.status,
            &p.message,
            &caller(&ctx),
        )
        .map(Json)
        .map_err(tool_error)
    }

    /// Schedule a maintenance window (start_time, end_time in RFC 3339) for monitors (ids or
    /// names) and/or groups. While it runs, alerts of monitors in scope are recorded as silenced
    /// (list_alerts shows `silenced: true`, `silenced_by`) and no notification is sent; the window
    /// shows on /status. Returns the window, its state and the monitors it covers now.
    #[tool(
        name = "create_maintenance",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn create_maintenance(
        &self,
        Parameters(p): Parameters<CreateMaintenanceParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<MaintenanceAnswer>, String> {
        tools::create_maintenance(
            &self.app,
            NewWindow {
                title: &p.title,
                start_time: &p.start_time,
                end_time: &p.end_time,
                message: p.message.as_deref(),
                monitors: &p.monitors,
                groups: &p.groups,
                by: &caller(&ctx),
            },
        )
        .map(Json)
        .map_err(tool_error)
    }
}
