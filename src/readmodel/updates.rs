//! `get_updates`: the last image-update scan, filtered and paged like every
//! list, with an error (and a hint) for a container it does not know, and a
//! note for what the scan does not cover.

use schemars::JsonSchema;
use serde::Serialize;
use time::OffsetDateTime;

use super::{ReadError, paginate};
use crate::engine::App;
use crate::updates::scan::{ImageUpdate, UpdateStatus};

#[derive(Debug, Serialize, JsonSchema)]
pub struct UpdatesPage {
    /// When the results below were gathered; null before the first scan.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub last_scan: Option<OffsetDateTime>,
    /// Seconds between scans (MAINTENANT_UPDATES_INTERVAL).
    pub interval_s: u64,
    pub items: Vec<ImageUpdate>,
    /// Containers matching the filters, over all pages.
    pub total: usize,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// What this answer does not cover, and why (e.g. pods, which are not scanned).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Pods are listed by the Kubernetes runtime but the scan compares the
/// digests Docker records for a container's image; a pod's image is not
/// compared with its registry.
const PODS_NOT_SCANNED: &str = "Kubernetes pods are not scanned for image updates: only Docker containers are (the scan compares the image digests the Docker engine records with the registry)";

pub fn get_updates(
    app: &App,
    container: Option<&str>,
    only_available: bool,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<UpdatesPage, ReadError> {
    let rows = app.updates.rows()?;
    let last_scan = app.updates.last_scan()?;
    let mut notes = Vec::new();
    let kubernetes = app
        .runtimes
        .statuses()
        .iter()
        .any(|r| r.name == "kubernetes");
    if kubernetes {
        notes.push(PODS_NOT_SCANNED.to_owned());
    }
    let wanted = match container {
        Some(q) if !q.trim().is_empty() => {
            let q = q.trim().trim_start_matches('/');
            if rows.iter().any(|r| r.container == q) {
                Some(q.to_owned())
            } else {
                // A name, id or prefix the runtime knows (with "did you
                // mean" when it knows none): say why it has no row.
                let c = super::containers::resolve_container(app, q)?;
                if c.pod.is_some() {
                    return Err(ReadError::NotFound(format!(
                        "'{}' is a pod: {PODS_NOT_SCANNED}",
                        c.name
                    )));
                }
                if !rows.iter().any(|r| r.container == c.name) {
                    notes.push(match last_scan {
                        None => format!(
                            "container '{}' has no result yet: the first scan has not finished",
                            c.name
                        ),
                        Some(at) => format!(
                            "container '{}' was not running at the last scan ({at}); the next scan includes it",
                            c.name
                        ),
                    });
                }
                Some(c.name)
            }
        }
        _ => None,
    };
    let mut items: Vec<ImageUpdate> = rows
        .into_iter()
        .filter(|r| wanted.as_ref().is_none_or(|c| *c == r.container))
        .filter(|r| {
            !only_available || r.status == UpdateStatus::UpdateAvailable || !r.newer_tags.is_empty()
        })
        .collect();
    items.sort_by(|a, b| a.container.cmp(&b.container));
    let page = paginate(items, limit, cursor)?;
    Ok(UpdatesPage {
        last_scan,
        interval_s: app.settings.updates_interval.std().as_secs(),
        items: page.items,
        total: page.total,
        next_cursor: page.next_cursor,
        notes,
    })
}
