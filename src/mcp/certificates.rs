//! `list_certificates`.

use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Maintenant, tool_error};
use crate::checks::certificate::CertStatus;
use crate::readmodel::listing::{Detail, Listing};
use crate::views::certificates::{self, CertificateBrief, CertificateRow};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListCertificatesParams {
    /// Only certificates with at most this many days left (expired ones included).
    pub expiring_within_days: Option<i64>,
    /// Only certificates in this status: pending, valid, expiring, expired, invalid, error or paused.
    pub status: Option<CertStatus>,
    /// `brief` (default): counts by state, then the rows needing attention, then the others,
    /// a few fields each, about 4 KB in all. `full`: every field (desired and observed), `limit`
    /// (default 50) rows a page.
    pub detail: Option<Detail>,
    /// Rows a page (max 500); without it a brief holds what fits in about 4 KB, a full page 50.
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

impl Maintenant {
    /// This family's routes, with the definitions of `tools.json` (see [`super::catalog`]).
    pub(super) fn certificate_routes(defs: &super::catalog::Definitions) -> [ToolRoute<Self>; 1] {
        [defs.route("list_certificates", Self::list_certificates)]
    }
}

#[tool_router(router = certificate_tools, vis = "pub(super)")]
impl Maintenant {
    /// List TLS certificate monitors (declared under `certificates:`, and one per HTTPS endpoint
    /// host:port) with their last check: status (valid, expiring, expired, invalid, error),
    /// not_after, days_left, issuer, SANs, whether the chain verifies against the system roots
    /// and whether the host name matches. `error` means no certificate was read (refused,
    /// timeout, handshake failure), not that it expired. Filter by expiring_within_days; paged.
    #[tool(
        name = "list_certificates",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_certificates(
        &self,
        Parameters(p): Parameters<ListCertificatesParams>,
    ) -> Result<Json<Listing<CertificateBrief, CertificateRow>>, String> {
        let (within, status, cursor) = (p.expiring_within_days, p.status, p.cursor.as_deref());
        match p.detail.unwrap_or_default() {
            Detail::Brief => {
                certificates::brief_certificates(&self.app, within, status, p.limit, cursor)
            }
            Detail::Full => {
                certificates::list_certificates(&self.app, within, status, p.limit, cursor)
                    .map(Listing::full)
            }
        }
        .map(Json)
        .map_err(tool_error)
    }
}
