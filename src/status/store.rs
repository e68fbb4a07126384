//! Incidents and maintenance windows in sled.
//!
//! - `incidents`:   `id (BE u64)` -> [`Incident`] (JSON), its updates inside.
//! - `maintenance`: `id (BE u64)` -> [`Maintenance`] (JSON).
//! - `status_meta`: `next_incident_id`, `next_maintenance_id` -> the last id
//!   given (BE u64): ids are 1, 2, 3... per kind.
//!
//! Both sets are small (people write them by hand), so reads scan.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::store::{Result, Store, StoreError};

/// Where an incident stands (the usual status page vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Investigating => "investigating",
            IncidentStatus::Identified => "identified",
            IncidentStatus::Monitoring => "monitoring",
            IncidentStatus::Resolved => "resolved",
        }
    }
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentUpdate {
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    pub status: IncidentStatus,
    pub message: String,
    /// Who wrote it: the authenticated MCP caller, else `mcp`.
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Incident {
    /// Pass to `update_incident`.
    pub id: String,
    pub title: String,
    /// The status of the newest update.
    pub status: IncidentStatus,
    /// Affected monitors, by id (`endpoint/api`).
    pub monitors: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
    /// When an update set it `resolved`.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub resolved_at: Option<OffsetDateTime>,
    /// The timeline, oldest first (the first entry is the creation).
    pub updates: Vec<IncidentUpdate>,
}

/// A maintenance window: alerts of the monitors in its scope are recorded
/// as silenced, not notified, between `start_time` and `end_time`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Maintenance {
    /// `maintenance/N`: what a silenced alert's `silenced_by` names.
    pub id: String,
    pub title: String,
    pub message: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub start_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub end_time: OffsetDateTime,
    /// Monitors in scope, by id.
    pub monitors: Vec<String>,
    /// Groups in scope: every monitor of these groups, declared now or later.
    pub groups: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub created_at: OffsetDateTime,
    pub created_by: String,
}

/// Where a window stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowState {
    Upcoming,
    Ongoing,
    Completed,
}

impl Maintenance {
    /// Start inclusive, end exclusive.
    pub fn state_at(&self, now: OffsetDateTime) -> WindowState {
        if now < self.start_time {
            WindowState::Upcoming
        } else if now < self.end_time {
            WindowState::Ongoing
        } else {
            WindowState::Completed
        }
    }
}

#[derive(Clone)]
pub struct StatusStore {
    incidents: sled::Tree,
    maintenance: sled::Tree,
    meta: sled::Tree,
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e)
}

pub fn parse_id(id: &str, prefix: &str) -> Option<u64> {
    let id = id.trim().trim_start_matches('#');
    id.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(id)
        .parse()
        .ok()
}

impl StatusStore {
    pub fn new(store: &Store) -> Result<StatusStore> {
        Ok(StatusStore {
            incidents: store.db().open_tree("incidents")?,
            maintenance: store.db().open_tree("maintenance")?,
            meta: store.db().open_tree("status_meta")?,
        })
    }

    fn next_id(&self, counter: &str) -> Result<u64> {
        let next = self.meta.update_and_fetch(counter, |old| {
            let n = old
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_be_bytes);
            Some((n + 1).to_be_bytes().to_vec())
        })?;
        Ok(next
            .and_then(|b| b.as_ref().try_into().ok())
            .map_or(1, u64::from_be_bytes))
    }

    pub fn next_incident_id(&self) -> Result<u64> {
        self.next_id("next_incident_id")
    }

    pub fn next_maintenance_id(&self) -> Result<u64> {
        self.next_id("next_maintenance_id")
    }

    pub fn put_incident(&self, n: u64, i: &Incident) -> Result<()> {
        let v = serde_json::to_vec(i).map_err(json_err)?;
        self.incidents.insert(n.to_be_bytes(), v)?;
        self.incidents.flush()?;
        Ok(())
    }

    pub fn incident(&self, n: u64) -> Result<Option<Incident>> {
        match self.incidents.get(n.to_be_bytes())? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(json_err)?)),
            None => Ok(None),
        }
    }

    /// Change an incident atomically (compare-and-swap), so two updates
    /// written at once both land in the timeline.
    pub fn update_incident(
        &self,
        n: u64,
        mut f: impl FnMut(&mut Incident),
    ) -> Result<Option<Incident>> {
        let mut out = None;
        let mut err = None;
        self.incidents.update_and_fetch(n.to_be_bytes(), |old| {
            let old = old?;
            match serde_json::from_slice::<Incident>(old) {
                Ok(mut i) => {
                    f(&mut i);
                    let bytes = serde_json::to_vec(&i).ok();
                    out = Some(i);
                    bytes.or_else(|| Some(old.to_vec()))
                }
                Err(e) => {
                    err = Some(e);
                    Some(old.to_vec())
                }
            }
        })?;
        if let Some(e) = err {
            return Err(json_err(e));
        }
        self.incidents.flush()?;
        Ok(out)
    }

    /// Newest first.
    pub fn incidents(&self) -> Result<Vec<Incident>> {
        self.incidents
            .iter()
            .rev()
            .map(|kv| {
                let (_, v) = kv?;
                serde_json::from_slice(&v).map_err(json_err)
            })
            .collect()
    }

    pub fn put_maintenance(&self, n: u64, m: &Maintenance) -> Result<()> {
        let v = serde_json::to_vec(m).map_err(json_err)?;
        self.maintenance.insert(n.to_be_bytes(), v)?;
        self.maintenance.flush()?;
        Ok(())
    }

    /// By start time.
    pub fn windows(&self) -> Result<Vec<Maintenance>> {
        let mut out: Vec<Maintenance> = self
            .maintenance
            .iter()
            .map(|kv| {
                let (_, v) = kv?;
                serde_json::from_slice(&v).map_err(json_err)
            })
            .collect::<Result<_>>()?;
        out.sort_by_key(|m| m.start_time);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incidents_and_windows_survive_reopening_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        {
            let store = Store::open(&dir.path().join("db")).unwrap();
            let s = StatusStore::new(&store).unwrap();
            let n = s.next_incident_id().unwrap();
            assert_eq!(n, 1);
            let i = Incident {
                id: n.to_string(),
                title: "API slow".into(),
                status: IncidentStatus::Investigating,
                monitors: vec!["endpoint/api".into()],
                created_at: now,
                updated_at: now,
                resolved_at: None,
                updates: vec![],
            };
            s.put_incident(n, &i).unwrap();
            s.update_incident(n, |i| i.status = IncidentStatus::Resolved)
                .unwrap()
                .unwrap();
            let m = s.next_maintenance_id().unwrap();
            s.put_maintenance(
                m,
                &Maintenance {
                    id: format!("maintenance/{m}"),
                    title: "db upgrade".into(),
                    message: None,
                    start_time: now,
                    end_time: now + time::Duration::hours(1),
                    monitors: vec![],
                    groups: vec!["db".into()],
                    created_at: now,
                    created_by: "mcp".into(),
                },
            )
            .unwrap();
        }
        let store = Store::open(&dir.path().join("db")).unwrap();
        let s = StatusStore::new(&store).unwrap();
        let all = s.incidents().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].status, IncidentStatus::Resolved);
        assert_eq!(s.next_incident_id().unwrap(), 2, "ids are never reused");
        let w = s.windows().unwrap();
        assert_eq!(w[0].state_at(now), WindowState::Ongoing);
        assert_eq!(
            w[0].state_at(now + time::Duration::hours(1)),
            WindowState::Completed
        );
        assert_eq!(
            w[0].state_at(now - time::Duration::seconds(1)),
            WindowState::Upcoming
        );
        assert_eq!(parse_id("maintenance/3", "maintenance"), Some(3));
        assert_eq!(parse_id("#7", "incident"), Some(7));
    }
}
