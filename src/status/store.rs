//! Incidents and maintenance windows in sled.
//!
//! - `incidents`:   `id (BE u64)` -> [`Incident`] (JSON), its updates inside.
//! - `maintenance`: `id (BE u64)` -> [`Maintenance`] (JSON).
//! - `status_meta`: `next_incident_id`, `next_maintenance_id` -> the last id
//!   given (BE u64): ids are 1, 2, 3... per kind.
//!
//! Both sets are small (people write them by hand) and bounded
//! ([`super::limits`]), so reads scan. Windows are also kept in memory: the
//! alert engine asks on every signal whether one silences it, and a sled read
//! and JSON decode per signal would cost more than the signal.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use std::sync::{Arc, Mutex, RwLock};

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
    /// Every window, by start time: the same as the `maintenance` tree, which
    /// only this process writes (sled has one opener), changed after sled.
    windows: Arc<RwLock<Vec<Maintenance>>>,
    /// Held while a record is added, so the count checked is the count kept.
    adding: Arc<Mutex<()>>,
}

/// Adding a record would pass a count limit and nothing may be pruned.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("{0}")]
    Full(String),
    #[error(transparent)]
    Store(#[from] StoreError),
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
        let maintenance = store.db().open_tree("maintenance")?;
        let windows = read_windows(&maintenance)?;
        Ok(StatusStore {
            incidents: store.db().open_tree("incidents")?,
            maintenance,
            meta: store.db().open_tree("status_meta")?,
            windows: Arc::new(RwLock::new(windows)),
            adding: Arc::new(Mutex::new(())),
        })
    }

    fn adding(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guard protects no data, only the order of adds.
        self.adding.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add incident `n`, keeping at most `max`: past it the oldest resolved
    /// incident is deleted; when every kept incident is open, refuse.
    pub fn add_incident(
        &self,
        n: u64,
        i: &Incident,
        max: usize,
    ) -> std::result::Result<Option<Incident>, AddError> {
        let _adding = self.adding();
        let mut pruned = None;
        if self.incidents.len() >= max {
            let oldest_resolved = self.incidents.iter().find_map(|kv| {
                let (k, v) = kv.ok()?;
                let old: Incident = serde_json::from_slice(&v).ok()?;
                (old.status == IncidentStatus::Resolved).then_some((k, old))
            });
            let Some((k, old)) = oldest_resolved else {
                return Err(AddError::Full(format!(
                    "{max} incidents are open, the most kept: resolve one with update_incident                      (status resolved) before opening another"
                )));
            };
            self.incidents.remove(k).map_err(StoreError::from)?;
            pruned = Some(old);
        }
        self.put_incident(n, i)?;
        Ok(pruned)
    }

    /// Add window `n`, keeping at most `max`: past it the window that ended
    /// first is deleted; when none has ended at `now`, refuse.
    pub fn add_maintenance(
        &self,
        n: u64,
        m: &Maintenance,
        max: usize,
        now: OffsetDateTime,
    ) -> std::result::Result<Option<Maintenance>, AddError> {
        let _adding = self.adding();
        let mut pruned = None;
        if self.maintenance.len() >= max {
            let ended = self
                .windows()
                .into_iter()
                .filter(|w| w.state_at(now) == WindowState::Completed)
                .min_by_key(|w| w.end_time);
            let Some(old) = ended else {
                return Err(AddError::Full(format!(
                    "{max} maintenance windows are upcoming or ongoing, the most kept:                      wait for one to end before scheduling another"
                )));
            };
            if let Some(k) = parse_id(&old.id, "maintenance") {
                self.maintenance
                    .remove(k.to_be_bytes())
                    .map_err(StoreError::from)?;
            }
            self.write_windows().retain(|w| w.id != old.id);
            pruned = Some(old);
        }
        self.put_maintenance(n, m)?;
        Ok(pruned)
    }

    fn write_windows(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Maintenance>> {
        // Windows are whole values pushed or removed in one step.
        self.windows.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Look at the windows in place (the alert engine's path: no copy).
    pub fn with_windows<R>(&self, f: impl FnOnce(&[Maintenance]) -> R) -> R {
        f(&self.windows.read().unwrap_or_else(|p| p.into_inner()))
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
        self.newest_incidents().collect()
    }

    /// Newest first, read as the caller goes: the public page stops once it
    /// has what it shows.
    pub fn newest_incidents(&self) -> impl Iterator<Item = Result<Incident>> + '_ {
        self.incidents.iter().rev().map(|kv| {
            let (_, v) = kv?;
            serde_json::from_slice(&v).map_err(json_err)
        })
    }

    pub fn put_maintenance(&self, n: u64, m: &Maintenance) -> Result<()> {
        let v = serde_json::to_vec(m).map_err(json_err)?;
        self.maintenance.insert(n.to_be_bytes(), v)?;
        self.maintenance.flush()?;
        let mut windows = self.write_windows();
        windows.retain(|w| w.id != m.id);
        let at = windows.partition_point(|w| w.start_time <= m.start_time);
        windows.insert(at, m.clone());
        Ok(())
    }

    /// By start time.
    pub fn windows(&self) -> Vec<Maintenance> {
        self.with_windows(<[Maintenance]>::to_vec)
    }
}

fn read_windows(tree: &sled::Tree) -> Result<Vec<Maintenance>> {
    let mut out: Vec<Maintenance> = tree
        .iter()
        .map(|kv| {
            let (_, v) = kv?;
            serde_json::from_slice(&v).map_err(json_err)
        })
        .collect::<Result<_>>()?;
    out.sort_by_key(|m| m.start_time);
    Ok(out)
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
        let w = s.windows();
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

    #[test]
    fn counts_are_kept_by_pruning_what_ended_or_refusing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let s = StatusStore::new(&store).unwrap();
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let h = time::Duration::hours;
        let window = |n: u64, start: time::Duration| Maintenance {
            id: format!("maintenance/{n}"),
            title: format!("w{n}"),
            message: None,
            start_time: now + start,
            end_time: now + start + h(1),
            monitors: vec![],
            groups: vec!["db".into()],
            created_at: now,
            created_by: "mcp".into(),
        };
        // Two ended (the first to end is 2), one to come.
        s.add_maintenance(1, &window(1, h(-2)), 3, now).unwrap();
        s.add_maintenance(2, &window(2, h(-5)), 3, now).unwrap();
        s.add_maintenance(3, &window(3, h(5)), 3, now).unwrap();
        let order: Vec<String> = s.windows().into_iter().map(|w| w.title).collect();
        assert_eq!(order, ["w2", "w1", "w3"], "in memory, by start time");
        let pruned = s.add_maintenance(4, &window(4, h(6)), 3, now).unwrap();
        assert_eq!(
            pruned.unwrap().id,
            "maintenance/2",
            "the one that ended first"
        );
        s.add_maintenance(5, &window(5, h(7)), 3, now).unwrap();
        let full = s.add_maintenance(6, &window(6, h(8)), 3, now).unwrap_err();
        assert!(full.to_string().contains("3 maintenance windows"), "{full}");
        // What memory holds is what sled holds.
        let reopened: Vec<String> = read_windows(&s.maintenance)
            .unwrap()
            .into_iter()
            .map(|w| w.id)
            .collect();
        let in_memory: Vec<String> = s.windows().into_iter().map(|w| w.id).collect();
        assert_eq!(reopened, in_memory);

        let incident = |n: u64, status| Incident {
            id: n.to_string(),
            title: "t".into(),
            status,
            monitors: vec![],
            created_at: now,
            updated_at: now,
            resolved_at: None,
            updates: vec![],
        };
        s.add_incident(1, &incident(1, IncidentStatus::Investigating), 2)
            .unwrap();
        s.add_incident(2, &incident(2, IncidentStatus::Resolved), 2)
            .unwrap();
        let pruned = s
            .add_incident(3, &incident(3, IncidentStatus::Investigating), 2)
            .unwrap();
        assert_eq!(
            pruned.unwrap().id,
            "2",
            "the oldest resolved, not the oldest"
        );
        let full = s
            .add_incident(4, &incident(4, IncidentStatus::Investigating), 2)
            .unwrap_err();
        assert!(full.to_string().contains("2 incidents are open"), "{full}");
    }
}
