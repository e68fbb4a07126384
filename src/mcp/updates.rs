//! `get_updates`.

use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Maintenant;
use crate::updates::scan::{ImageUpdate, UpdateStatus};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetUpdatesParams {
    /// Only this container (name).
    pub container: Option<String>,
    /// Only containers with an update (a new digest for their tag, or a newer version tag).
    pub only_available: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct UpdatesAnswer {
    /// When the results below were gathered; null before the first scan.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub last_scan: Option<time::OffsetDateTime>,
    /// Seconds between scans (MAINTENANT_UPDATES_INTERVAL).
    pub interval_s: u64,
    pub items: Vec<ImageUpdate>,
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
        let rows = self.app.updates.rows().map_err(|e| e.to_string())?;
        let items = rows
            .into_iter()
            .filter(|r| p.container.as_ref().is_none_or(|c| *c == r.container))
            .filter(|r| {
                !p.only_available.unwrap_or(false)
                    || r.status == UpdateStatus::UpdateAvailable
                    || !r.newer_tags.is_empty()
            })
            .collect();
        Ok(Json(UpdatesAnswer {
            last_scan: self.app.updates.last_scan().map_err(|e| e.to_string())?,
            interval_s: self.app.settings.updates_interval.std().as_secs(),
            items,
        }))
    }
}
