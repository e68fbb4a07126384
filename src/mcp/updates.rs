//! `get_updates`.

use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Maintenant, tool_error};
use crate::readmodel::updates::{self, UpdatesPage};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetUpdatesParams {
    /// Only this container (name, id or id prefix, as list_containers shows it).
    pub container: Option<String>,
    /// Only containers with an update (a new digest for their tag, or a newer version tag).
    pub only_available: Option<bool>,
    /// Page size (default 50, max 500).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

impl Maintenant {
    /// This family's routes, with the definitions of `tools.json` (see [`super::catalog`]).
    pub(super) fn update_routes(defs: &super::catalog::Definitions) -> [ToolRoute<Self>; 1] {
        [defs.route("get_updates", Self::get_updates)]
    }
}

#[tool_router(router = update_tools, vis = "pub(super)")]
impl Maintenant {
    /// Image updates of running Docker containers: for each, whether its tag now points to
    /// another image in its registry (status update_available, with current_digests and
    /// latest_digest; multi-arch tags resolved to the container's platform), newer version
    /// tags (major/minor/patch, per the maintenant.update.* labels), or why the registry could
    /// not be asked (status error). Results of the last scan, by container name; paged.
    /// `notes` says what is not covered (Kubernetes pods are not scanned).
    #[tool(
        name = "get_updates",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_updates(
        &self,
        Parameters(p): Parameters<GetUpdatesParams>,
    ) -> Result<Json<UpdatesPage>, String> {
        updates::get_updates(
            &self.app,
            p.container.as_deref(),
            p.only_available.unwrap_or(false),
            p.limit,
            p.cursor.as_deref(),
        )
        .map(Json)
        .map_err(tool_error)
    }
}
