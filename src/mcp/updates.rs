//! `get_updates`.

use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Maintenant, tool_error};
use crate::readmodel::containers::{self, UpdatesAnswer, UpdatesFilter};
use crate::readmodel::listing::Detail;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetUpdatesParams {
    /// Only this container: its name, id or an id prefix of at least 4 characters.
    pub container: Option<String>,
    /// Only containers with an update (a new digest for their tag, or a newer version tag).
    pub only_available: Option<bool>,
    /// `brief` (default): counts by status, then the containers with an update or an error,
    /// then the others, a few fields each, about 4 KB in all. `full`: every field, `limit`
    /// (default 50) rows a page.
    pub detail: Option<Detail>,
    /// Rows a page (max 500); without it a brief holds what fits in about 4 KB, a full page 50.
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
    /// not be asked (status error). Results of the last scan.
    #[tool(
        name = "get_updates",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_updates(
        &self,
        Parameters(p): Parameters<GetUpdatesParams>,
    ) -> Result<Json<UpdatesAnswer>, String> {
        let filter = UpdatesFilter {
            container: p.container,
            only_available: p.only_available.unwrap_or(false),
        };
        containers::updates(
            &self.app,
            &filter,
            p.detail.unwrap_or_default(),
            p.limit,
            p.cursor.as_deref(),
        )
        .map(Json)
        .map_err(tool_error)
    }
}
