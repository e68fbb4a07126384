//! `get_health`.

use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::{Json, tool, tool_router};

use super::Maintenant;
use crate::readmodel::{self, Health};

impl Maintenant {
    /// This family's routes, with the definitions of `tools.json` (see [`super::catalog`]).
    pub(super) fn health_routes(defs: &super::catalog::Definitions) -> [ToolRoute<Self>; 1] {
        [defs.route("get_health", Self::get_health)]
    }
}

#[tool_router(router = health_tools, vis = "pub(super)")]
impl Maintenant {
    /// maintenant's own health: version, uptime, database, config sources with their
    /// generation and last error (an invalid monitors file shows here with file:line:col),
    /// the reconciler's last pass, and drift between declared monitors and running checks.
    #[tool(
        name = "get_health",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_health(&self) -> Json<Health> {
        Json(readmodel::health(&self.app))
    }
}
