//! `list_containers`, `get_container`, `get_container_logs`.

use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::endpoints::parse_since;
use super::{Maintenant, tool_error};
use crate::readmodel::containers::{
    self, ContainerBrief, ContainerDetail, ContainerFilter, ContainerLogs,
};
use crate::readmodel::listing::{Detail, Listing};
use crate::runtime::Container;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListContainersParams {
    /// Only containers in this state: `running`, `exited`, `paused`, `restarting`, `created`,
    /// `dead` (Docker); `pending`, `running`, `succeeded`, `failed`, `unknown` (pods).
    pub state: Option<String>,
    /// Only containers of this group (`maintenant.group` label, else the compose project; for a
    /// pod, its workload's name).
    pub group: Option<String>,
    /// Only containers whose name or image contains this text (case-insensitive).
    pub name: Option<String>,
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
pub struct GetContainerParams {
    /// The container's name, id, or an id prefix of at least 4 characters; a pod as
    /// `namespace/pod`, or its name alone when no other namespace has it.
    pub container_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ContainerLogsParams {
    /// The container's name, id, or an id prefix of at least 4 characters; a pod as
    /// `namespace/pod`, or its name alone when no other namespace has it.
    pub container_id: String,
    /// Lines to return, the most recent (default 100, max 1000).
    pub lines: Option<u32>,
    /// Only lines at or after this time: RFC 3339 or an age (`10m`, `1h`).
    pub since: Option<String>,
    /// Add each line's time (RFC 3339) (default false).
    pub timestamps: Option<bool>,
}

impl Maintenant {
    /// This family's routes, with the definitions of `tools.json` (see [`super::catalog`]).
    pub(super) fn container_routes(defs: &super::catalog::Definitions) -> [ToolRoute<Self>; 3] {
        [
            defs.route("list_containers", Self::list_containers),
            defs.route("get_container", Self::get_container),
            defs.route("get_container_logs", Self::get_container_logs),
        ]
    }
}

#[tool_router(router = container_tools, vis = "pub(super)")]
impl Maintenant {
    /// List containers (Docker) and pods (Kubernetes, one row per pod named `namespace/pod`) with
    /// id, name, image, state, health, runtime, group (label `maintenant.group` or compose project;
    /// a pod's owning workload), restarts and started_at. Filter by state, group or name; paged.
    /// Containers labelled (pods annotated) `maintenant.ignore=true` are left out.
    #[tool(
        name = "list_containers",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_containers(
        &self,
        Parameters(p): Parameters<ListContainersParams>,
    ) -> Result<Json<Listing<ContainerBrief, Container>>, String> {
        let filter = ContainerFilter {
            state: p.state,
            group: p.group,
            name: p.name,
        };
        let cursor = p.cursor.as_deref();
        match p.detail.unwrap_or_default() {
            Detail::Brief => containers::brief_containers(&self.app, &filter, p.limit, cursor),
            Detail::Full => {
                containers::list_containers(&self.app, &filter, p.limit, cursor).map(Listing::full)
            }
        }
        .map(Json)
        .map_err(tool_error)
    }

    /// One container: its row, latest CPU/memory sample, recent transitions (start, die with
    /// exit code, oom, health changes), the monitors its labels declare (desired + observed),
    /// and any label that could not be used. Name it by name or id.
    #[tool(
        name = "get_container",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_container(
        &self,
        Parameters(p): Parameters<GetContainerParams>,
    ) -> Result<Json<ContainerDetail>, String> {
        containers::container_detail(&self.app, &p.container_id)
            .map(Json)
            .map_err(tool_error)
    }

    /// Recent log lines of a container, oldest first, each marked stdout or stderr. A pod's lines
    /// are `combined` (Kubernetes does not separate the streams) and name their container. `lines`
    /// (default 100, max 1000) counts from the end; `since` limits by time.
    #[tool(
        name = "get_container_logs",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_container_logs(
        &self,
        Parameters(p): Parameters<ContainerLogsParams>,
    ) -> Result<Json<ContainerLogs>, String> {
        let since = p
            .since
            .as_deref()
            .map(parse_since)
            .transpose()
            .map_err(tool_error)?;
        containers::container_logs(
            &self.app,
            &p.container_id,
            p.lines,
            since,
            p.timestamps.unwrap_or(false),
        )
        .await
        .map(Json)
        .map_err(tool_error)
    }
}
