//! `list_heartbeats`, `pause_monitor` and `resume_monitor`.

use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Maintenant, tool_error};
use crate::heartbeat::HeartbeatStatus;
use crate::pause::{self, MonitorType, PauseAnswer};
use crate::readmodel::heartbeats::{self, HeartbeatBrief, HeartbeatFilter, HeartbeatRow};
use crate::readmodel::listing::{Detail, Listing};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListHeartbeatsParams {
    /// Only heartbeats in this status: `new` (never pinged), `up`, `started`, `late`, `down` or `paused`.
    pub status: Option<HeartbeatStatus>,
    /// Only heartbeats of this group (case-insensitive).
    pub group: Option<String>,
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
pub struct PauseParams {
    /// The kind of monitor: `heartbeat`, `endpoint`, `certificate`, or `container` (a container
    /// or pod: its container alerts).
    pub monitor_type: MonitorType,
    /// The monitor's id (`heartbeat/backup`) or name (`backup`); a container's name or id.
    pub monitor_id: String,
}

impl Maintenant {
    /// This family's routes, with the definitions of `tools.json` (see [`super::catalog`]).
    pub(super) fn heartbeat_routes(defs: &super::catalog::Definitions) -> [ToolRoute<Self>; 3] {
        [
            defs.route("list_heartbeats", Self::list_heartbeats),
            defs.route("pause_monitor", Self::pause_monitor),
            defs.route("resume_monitor", Self::resume_monitor),
        ]
    }
}

#[tool_router(router = heartbeat_tools, vis = "pub(super)")]
impl Maintenant {
    /// List heartbeat monitors (jobs that ping maintenant): the ping URL to call, the schedule
    /// (period or cron + time zone), grace, last ping, next deadline, last exit code, run
    /// duration and output, with what was declared and what was observed. Filter by status; paged.
    #[tool(
        name = "list_heartbeats",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_heartbeats(
        &self,
        Parameters(p): Parameters<ListHeartbeatsParams>,
    ) -> Result<Json<Listing<HeartbeatBrief, HeartbeatRow>>, String> {
        let filter = HeartbeatFilter {
            status: p.status,
            group: p.group,
        };
        let cursor = p.cursor.as_deref();
        match p.detail.unwrap_or_default() {
            Detail::Brief => heartbeats::brief_heartbeats(&self.app, &filter, p.limit, cursor),
            Detail::Full => {
                heartbeats::list_heartbeats(&self.app, &filter, p.limit, cursor).map(Listing::full)
            }
        }
        .map(Json)
        .map_err(tool_error)
    }

    /// Pause a monitor: a paused heartbeat stays `paused` (pings are recorded but change
    /// nothing), a paused endpoint is not checked, a paused container raises no container
    /// alerts, until resume_monitor. The pause is stored: it survives config reloads and
    /// restarts. Answers the monitor after.
    #[tool(
        name = "pause_monitor",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn pause_monitor(
        &self,
        Parameters(p): Parameters<PauseParams>,
    ) -> Result<Json<PauseAnswer>, String> {
        pause::set_paused(&self.app, p.monitor_type, &p.monitor_id, true)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    /// Resume a paused monitor: a heartbeat becomes `up` with its deadline counted from now
    /// (or `new` if never pinged); an endpoint is checked again. Answers the monitor after.
    #[tool(
        name = "resume_monitor",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn resume_monitor(
        &self,
        Parameters(p): Parameters<PauseParams>,
    ) -> Result<Json<PauseAnswer>, String> {
        pause::set_paused(&self.app, p.monitor_type, &p.monitor_id, false)
            .await
            .map(Json)
            .map_err(tool_error)
    }
}
