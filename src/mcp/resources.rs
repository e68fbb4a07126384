//! `get_resources` and `get_top_consumers`.

use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Maintenant, tool_error};
use crate::readmodel::containers::{self, ConsumerMetric, ConsumerPeriod, TopConsumers};
use crate::resources::HostResources;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TopConsumersParams {
    /// `cpu` (default) or `memory`.
    pub metric: Option<ConsumerMetric>,
    /// `current` (default: the latest sample), `1h` or `24h` (averages).
    pub period: Option<ConsumerPeriod>,
    /// How many to return (default 10).
    pub limit: Option<u32>,
}

impl Maintenant {
    /// This family's routes, with the definitions of `tools.json` (see [`super::catalog`]).
    pub(super) fn resource_routes(defs: &super::catalog::Definitions) -> [ToolRoute<Self>; 2] {
        [
            defs.route("get_resources", Self::get_resources),
            defs.route("get_top_consumers", Self::get_top_consumers),
        ]
    }
}

#[tool_router(router = resource_tools, vis = "pub(super)")]
impl Maintenant {
    /// Host resources: CPU usage and cores, load average, memory, swap, disk usage per mount,
    /// and network rates per interface (bytes/s over the last few seconds).
    #[tool(
        name = "get_resources",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_resources(&self) -> Result<Json<HostResources>, String> {
        containers::resources(&self.app)
            .map(Json)
            .map_err(tool_error)
    }

    /// Containers ranked by CPU (percent of one CPU) or memory (bytes), for the latest sample
    /// (`current`) or averaged over `1h` or `24h`; each with rank, value and percent of the host.
    /// Right after start, `current` samples first (a few seconds at most).
    #[tool(
        name = "get_top_consumers",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_top_consumers(
        &self,
        Parameters(p): Parameters<TopConsumersParams>,
    ) -> Result<Json<TopConsumers>, String> {
        containers::top_consumers_now(
            &self.app,
            p.metric.unwrap_or_default(),
            p.period.unwrap_or_default(),
            p.limit,
        )
        .await
        .map(Json)
        .map_err(tool_error)
    }
}
