//! `list_endpoints` and `get_endpoint_history`.

use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{Maintenant, tool_error};
use crate::readmodel::listing::{Detail, Listing};
use crate::readmodel::{
    self, EndpointBrief, EndpointFilter, EndpointHistory, EndpointRow, ReadError,
};
use crate::store::Status;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListEndpointsParams {
    /// Only endpoints in this status: `up`, `down`, `pending` (declared, not yet decided) or
    /// `paused` (by pause_monitor).
    pub status: Option<Status>,
    /// Only endpoints of this group (case-insensitive).
    pub group: Option<String>,
    /// Only endpoints whose name or target contains this text (case-insensitive).
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
pub struct EndpointHistoryParams {
    /// The endpoint's id (`endpoint/NAME`) or name.
    pub endpoint_id: String,
    /// Checks to return, newest first (default 50, max 500).
    pub limit: Option<u32>,
    /// Only checks at or after this time: RFC 3339 (`2026-11-25T10:00:00Z`) or an age (`1h`, `7d`).
    pub since: Option<String>,
    /// `next_cursor` from the previous answer, for older checks.
    pub cursor: Option<String>,
}

/// `since` as an absolute time: RFC 3339, or a duration back from now.
pub(super) fn parse_since(s: &str) -> Result<OffsetDateTime, ReadError> {
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    match s.parse::<crate::duration::Duration>() {
        // Durations are at most 366d (crate::duration::MAX): this cannot overflow.
        Ok(d) => OffsetDateTime::now_utc()
            .checked_sub(time::Duration::try_from(d.std()).unwrap_or(time::Duration::ZERO))
            .ok_or_else(|| ReadError::BadArgument(format!("since {s:?} is too far back"))),
        Err(e) if e.is_too_long() => Err(ReadError::BadArgument(format!(
            "since: {e}; for older checks give an RFC 3339 time"
        ))),
        Err(_) => Err(ReadError::BadArgument(format!(
            "invalid since {:?}: use an RFC 3339 time like 2026-11-25T10:00:00Z or an age like 1h or 7d",
            s.chars().take(40).collect::<String>()
        ))),
    }
}

impl Maintenant {
    /// This family's routes, with the definitions of `tools.json` (see [`super::catalog`]).
    pub(super) fn endpoint_routes(defs: &super::catalog::Definitions) -> [ToolRoute<Self>; 2] {
        [
            defs.route("list_endpoints", Self::list_endpoints),
            defs.route("get_endpoint_history", Self::get_endpoint_history),
        ]
    }
}

#[tool_router(router = endpoint_tools, vis = "pub(super)")]
impl Maintenant {
    /// List HTTP(S) and TCP endpoint monitors with what was declared (spec, origin file:line,
    /// generation) and what was observed (status, since, last check, error), plus uptime over
    /// 24h and 7d. Filter by status, group or name; paged.
    #[tool(
        name = "list_endpoints",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_endpoints(
        &self,
        Parameters(p): Parameters<ListEndpointsParams>,
    ) -> Result<Json<Listing<EndpointBrief, EndpointRow>>, String> {
        let filter = EndpointFilter {
            status: p.status,
            group: p.group,
            name: p.name,
        };
        let cursor = p.cursor.as_deref();
        match p.detail.unwrap_or_default() {
            Detail::Brief => readmodel::brief_endpoints(&self.app, &filter, p.limit, cursor),
            Detail::Full => {
                readmodel::list_endpoints(&self.app, &filter, p.limit, cursor).map(Listing::full)
            }
        }
        .map(Json)
        .map_err(tool_error)
    }

    /// Check history of one endpoint, newest first, with a summary (uptime, p50/p95 response
    /// time of the returned checks, uptime over 24h and 7d). Name the endpoint by id or name.
    #[tool(
        name = "get_endpoint_history",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_endpoint_history(
        &self,
        Parameters(p): Parameters<EndpointHistoryParams>,
    ) -> Result<Json<EndpointHistory>, String> {
        let since = p
            .since
            .as_deref()
            .map(parse_since)
            .transpose()
            .map_err(tool_error)?;
        readmodel::endpoint_history(
            &self.app,
            &p.endpoint_id,
            p.limit,
            since,
            p.cursor.as_deref(),
        )
        .map(Json)
        .map_err(tool_error)
    }
}
