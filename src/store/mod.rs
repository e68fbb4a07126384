//! The sled database: check results (with retention), the current observed
//! state of each monitor, and hourly rollups that answer uptime over 24h and
//! 7d without scanning history.
//!
//! Layout (one tree each):
//! - `results`: `monitor-id \0 at_micros(BE u64)` -> [`CheckRecord`] (binary, [`codec`])
//! - `state`:   `monitor-id` -> [`ObservedState`] (binary, [`codec`])
//! - `rollups`: `monitor-id \0 hour(BE u64)` -> [`Rollup`] (16 bytes)
//! - `heartbeats`: `heartbeat/NAME` -> [`HeartbeatState`] (JSON)
//! - `pauses`: `monitor-id` -> [`PauseRecord`] (JSON): monitors paused by
//!   `pause_monitor`, of every kind; kept until `resume_monitor`.
//!
//! Big-endian timestamps make each monitor's keys sort by time, so history and
//! uptime are range scans over one monitor's prefix.

use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::heartbeat::HeartbeatState;
use crate::monitor::MonitorKey;

mod codec;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the database {path} is in use by another process (only one process can open a sled database; \
         start `maintenant --mcp-stdio` with the same MAINTENANT_DB while the daemon runs and it will attach to it)"
    )]
    Locked { path: String },
    #[error("database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record in the database: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("corrupt record in the database: {0}")]
    Undecodable(#[from] codec::DecodeError),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One check as stored and as `get_endpoint_history` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckRecord {
    /// When the check finished (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    pub up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub response_time_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the monitor's status is, after thresholds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Declared, not yet decided (no check yet, or fewer failures than the threshold).
    #[default]
    Pending,
    Up,
    Down,
    /// Paused by `pause_monitor`: not checked until `resume_monitor`.
    Paused,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Up => "up",
            Status::Down => "down",
            Status::Paused => "paused",
        }
    }
}

/// The observed state of one monitor, kept across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ObservedState {
    pub status: Status,
    /// When `status` last changed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    pub last_check: Option<CheckRecord>,
    pub consecutive_failures: u32,
    pub consecutive_successes: u32,
    pub checks_total: u64,
}

/// Counts for one monitor over one hour.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rollup {
    pub checks: u32,
    pub up: u32,
    pub response_ms_sum: f64,
}

impl Rollup {
    fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.checks.to_le_bytes());
        b[4..8].copy_from_slice(&self.up.to_le_bytes());
        b[8..16].copy_from_slice(&self.response_ms_sum.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Rollup {
        if b.len() != 16 {
            return Rollup::default();
        }
        Rollup {
            checks: u32::from_le_bytes(b[0..4].try_into().expect("4 bytes")),
            up: u32::from_le_bytes(b[4..8].try_into().expect("4 bytes")),
            response_ms_sum: f64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
        }
    }
}

/// Uptime over a window, from rollups.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uptime {
    pub checks: u64,
    pub up: u64,
}

impl Uptime {
    /// Percentage of checks that were up, or `None` when nothing was checked.
    pub fn percent(&self) -> Option<f64> {
        (self.checks > 0).then(|| (self.up as f64 * 10000.0 / self.checks as f64).round() / 100.0)
    }
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    results: sled::Tree,
    state: sled::Tree,
    rollups: sled::Tree,
    heartbeats: sled::Tree,
    pauses: sled::Tree,
    /// sled's log file (`<db>/db`), for [`Store::sync_to_disk`].
    log_file: std::sync::Arc<std::fs::File>,
}

/// A monitor paused by `pause_monitor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseRecord {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

fn prefixed(key: &MonitorKey, suffix: u64) -> Vec<u8> {
    let mut k = key.storage_key();
    k.push(0);
    k.extend_from_slice(&suffix.to_be_bytes());
    k
}

fn micros(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(0)
}

fn hour_of(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp() / 3600).unwrap_or(0)
}

impl Store {
    /// Another tree of the same database, for a part that keeps its own
    /// records (e.g. container transitions and usage in `runtime::history`).
    pub fn tree(&self, name: &str) -> Result<sled::Tree> {
        Ok(self.db.open_tree(name)?)
    }

    /// Open (or create) the database. sled takes an exclusive lock on the
    /// directory; a second process gets [`StoreError::Locked`].
    pub fn open(path: &Path) -> Result<Store> {
        let db = sled::Config::new()
            .path(path)
            // sled's default cache is 1 GiB; monitoring data is written far more
            // than it is read, so a small cache keeps the sidecar small. 1 MiB
            // rather than 4: about 3 MB less RSS at 10k monitors and the same
            // CPU per check (README, Benchmark); pages it evicts are read back
            // from the OS page cache.
            .cache_capacity(1024 * 1024)
            .flush_every_ms(Some(500))
            .open()
            .map_err(|e| match e {
                sled::Error::Io(ref io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    StoreError::Locked {
                        path: path.display().to_string(),
                    }
                }
                other => StoreError::Sled(other),
            })?;
        Ok(Store {
            results: db.open_tree("results")?,
            state: db.open_tree("state")?,
            rollups: db.open_tree("rollups")?,
            heartbeats: db.open_tree("heartbeats")?,
            pauses: db.open_tree("pauses")?,
            log_file: std::sync::Arc::new(
                std::fs::File::open(path.join("db")).map_err(sled::Error::Io)?,
            ),
            db,
        })
    }

    /// Record one check: the result, the monitor's new state and its hour's rollup.
    pub fn record_check(
        &self,
        key: &MonitorKey,
        rec: &CheckRecord,
        state: &ObservedState,
    ) -> Result<()> {
        self.results
            .insert(prefixed(key, micros(rec.at)), codec::encode_check(rec))?;
        self.save_state(key, state)?;
        let (up, ms) = (u32::from(rec.up), rec.response_time_ms);
        self.rollups
            .update_and_fetch(prefixed(key, hour_of(rec.at)), |old| {
                let mut r = old.map(Rollup::decode).unwrap_or_default();
                r.checks += 1;
                r.up += up;
                r.response_ms_sum += ms;
                Some(r.encode().to_vec())
            })?;
        Ok(())
    }

    pub fn save_state(&self, key: &MonitorKey, state: &ObservedState) -> Result<()> {
        self.state
            .insert(key.storage_key(), codec::encode_state(state))?;
        Ok(())
    }

    pub fn load_state(&self, key: &MonitorKey) -> Result<Option<ObservedState>> {
        match self.state.get(key.storage_key())? {
            Some(v) => Ok(Some(codec::decode_state(&v)?)),
            None => Ok(None),
        }
    }

    /// Checks of one monitor, newest first, at or after `since`, strictly
    /// before `before` (for paging), at most `limit`.
    pub fn history(
        &self,
        key: &MonitorKey,
        since: Option<OffsetDateTime>,
        before: Option<OffsetDateTime>,
        limit: usize,
    ) -> Result<Vec<CheckRecord>> {
        let lo = prefixed(key, since.map(micros).unwrap_or(0));
        let hi = prefixed(key, before.map(micros).unwrap_or(u64::MAX));
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in self.results.range(lo..hi).rev().take(limit) {
            let (_, v) = item?;
            out.push(codec::decode_check(&v)?);
        }
        Ok(out)
    }

    /// Uptime over the last 24 hours and the last 7 days (the current hour
    /// included), summed from hourly rollups: one scan of at most 168
    /// entries, whatever the history size.
    pub fn uptime_day_week(
        &self,
        key: &MonitorKey,
        now: OffsetDateTime,
    ) -> Result<(Uptime, Uptime)> {
        let end = hour_of(now);
        let week_start = end.saturating_sub(24 * 7 - 1);
        let day_start = end.saturating_sub(24 - 1);
        let mut day = Uptime { checks: 0, up: 0 };
        let mut week = Uptime { checks: 0, up: 0 };
        let prefix_len = key.storage_key().len() + 1;
        for item in self
            .rollups
            .range(prefixed(key, week_start)..=prefixed(key, end))
        {
            let (k, v) = item?;
            let r = Rollup::decode(&v);
            week.checks += u64::from(r.checks);
            week.up += u64::from(r.up);
            let hour = k
                .get(prefix_len..)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            if hour >= day_start {
                day.checks += u64::from(r.checks);
                day.up += u64::from(r.up);
            }
        }
        Ok((day, week))
    }

    /// Delete results older than `results_cutoff` and rollups older than
    /// `rollups_cutoff`, for every monitor that has state. Returns how many
    /// entries were removed.
    pub fn prune(
        &self,
        results_cutoff: OffsetDateTime,
        rollups_cutoff: OffsetDateTime,
    ) -> Result<usize> {
        let mut removed = 0;
        for item in self.state.iter().keys() {
            let id = item?;
            let mut lo = id.to_vec();
            lo.push(0);
            let mut hi_results = lo.clone();
            hi_results.extend_from_slice(&micros(results_cutoff).to_be_bytes());
            let mut hi_rollups = lo.clone();
            hi_rollups.extend_from_slice(&hour_of(rollups_cutoff).to_be_bytes());
            for (tree, hi) in [(&self.results, hi_results), (&self.rollups, hi_rollups)] {
                let mut batch = sled::Batch::default();
                for k in tree.range(lo.clone()..hi).keys() {
                    batch.remove(k?);
                    removed += 1;
                }
                tree.apply_batch(batch)?;
            }
        }
        Ok(removed)
    }

    /// Forget a monitor's current state (its history stays until retention
    /// removes it, so a monitor declared again finds its past).
    pub fn forget_state(&self, key: &MonitorKey) -> Result<()> {
        self.state.remove(key.storage_key())?;
        Ok(())
    }

    /// Store a heartbeat's state (made durable by the next [`Store::flush`]).
    pub fn save_heartbeat(&self, key: &MonitorKey, state: &HeartbeatState) -> Result<()> {
        self.heartbeats
            .insert(key.storage_key(), serde_json::to_vec(state)?)?;
        Ok(())
    }

    /// Every stored heartbeat state, by name.
    pub fn load_heartbeats(&self) -> Result<Vec<(MonitorKey, HeartbeatState)>> {
        let mut out = Vec::new();
        for item in self.heartbeats.iter() {
            let (k, v) = item?;
            let id = String::from_utf8_lossy(&k);
            if let Some(name) = id.strip_prefix("heartbeat/") {
                out.push((MonitorKey::heartbeat(name), serde_json::from_slice(&v)?));
            }
        }
        Ok(out)
    }

    /// Mark a monitor paused (durable after [`Store::flush`]). Any kind: the
    /// alert engine and the check tasks ask [`Store::is_paused`].
    pub fn set_paused(&self, key: &MonitorKey, at: OffsetDateTime) -> Result<()> {
        self.pauses
            .insert(key.storage_key(), serde_json::to_vec(&PauseRecord { at })?)?;
        Ok(())
    }

    /// Remove a pause; `true` if there was one.
    pub fn clear_paused(&self, key: &MonitorKey) -> Result<bool> {
        Ok(self.pauses.remove(key.storage_key())?.is_some())
    }

    /// Whether `pause_monitor` paused this monitor (and `resume_monitor` has not resumed it).
    pub fn is_paused(&self, key: &MonitorKey) -> bool {
        matches!(self.pauses.contains_key(key.storage_key()), Ok(true))
    }

    /// Every pause, by monitor id (`endpoint/web`): one scan of a tree that
    /// holds only paused monitors, for list pages.
    pub fn pauses(&self) -> Result<std::collections::HashMap<String, PauseRecord>> {
        let mut out = std::collections::HashMap::new();
        for item in self.pauses.iter() {
            let (k, v) = item?;
            out.insert(
                String::from_utf8_lossy(&k).into_owned(),
                serde_json::from_slice(&v)?,
            );
        }
        Ok(out)
    }

    /// The pause of a monitor, if paused.
    pub fn pause_record(&self, key: &MonitorKey) -> Result<Option<PauseRecord>> {
        match self.pauses.get(key.storage_key())? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// [`Store::flush`], then `fdatasync` of sled's log file. sled's own
    /// flush on Linux ends with `sync_file_range`, which survives a killed
    /// process but not a power cut (it does not flush the disk's write cache
    /// nor the file's size); this makes a write durable against both. Used
    /// once per batch by the heartbeat writer (group commit), so its cost
    /// (about 4 ms on this project's machine) is shared by every ping in it.
    pub fn sync_to_disk(&self) -> Result<()> {
        self.db.flush()?;
        self.log_file.sync_data().map_err(sled::Error::Io)?;
        Ok(())
    }

    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// The database, for modules that keep their own trees (alerts, certificates).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn rec(at: OffsetDateTime, up: bool) -> CheckRecord {
        CheckRecord {
            at,
            up,
            status_code: Some(200),
            response_time_ms: 5.0,
            error: None,
        }
    }

    #[test]
    fn pauses_are_per_monitor_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let web = MonitorKey::endpoint("web");
        let job = MonitorKey::heartbeat("web");
        let at = OffsetDateTime::now_utc();
        {
            let store = Store::open(&path).unwrap();
            assert!(!store.is_paused(&web));
            store.set_paused(&web, at).unwrap();
            assert!(store.is_paused(&web));
            assert!(!store.is_paused(&job), "same name, other kind");
            store.sync_to_disk().unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert!(store.is_paused(&web));
        let all = store.pauses().unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["endpoint/web"]);
        assert!(store.clear_paused(&web).unwrap());
        assert!(!store.clear_paused(&web).unwrap(), "already resumed");
        assert!(!store.is_paused(&web));
    }

    #[test]
    fn history_is_per_monitor_newest_first_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let a = MonitorKey::endpoint("a");
        let ab = MonitorKey::endpoint("a-b");
        let t0 = OffsetDateTime::now_utc() - Duration::minutes(10);
        for i in 0..5 {
            store
                .record_check(
                    &a,
                    &rec(t0 + Duration::seconds(i), true),
                    &ObservedState::default(),
                )
                .unwrap();
            store
                .record_check(
                    &ab,
                    &rec(t0 + Duration::seconds(i), false),
                    &ObservedState::default(),
                )
                .unwrap();
        }
        let h = store.history(&a, None, None, 3).unwrap();
        assert_eq!(h.len(), 3);
        assert!(h.iter().all(|r| r.up), "no record of a-b leaks into a");
        assert!(h[0].at > h[1].at);
        let since = store
            .history(&a, Some(t0 + Duration::seconds(3)), None, 10)
            .unwrap();
        assert_eq!(since.len(), 2);
        let before = store.history(&a, None, Some(h[2].at), 10).unwrap();
        assert_eq!(before.len(), 2);
    }

    #[test]
    fn uptime_comes_from_hourly_rollups_within_window() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let k = MonitorKey::endpoint("x");
        let now = OffsetDateTime::now_utc();
        store
            .record_check(
                &k,
                &rec(now - Duration::days(3), false),
                &ObservedState::default(),
            )
            .unwrap();
        for i in 0..3 {
            store
                .record_check(
                    &k,
                    &rec(now - Duration::minutes(i), true),
                    &ObservedState::default(),
                )
                .unwrap();
        }
        store
            .record_check(
                &k,
                &rec(now - Duration::hours(2), false),
                &ObservedState::default(),
            )
            .unwrap();
        let (day, week) = store.uptime_day_week(&k, now).unwrap();
        assert_eq!((day.checks, day.up), (4, 3));
        assert_eq!(day.percent(), Some(75.0));
        assert_eq!((week.checks, week.up), (5, 3));
        // Nothing of another monitor whose name extends this one's leaks in.
        let (d, w) = store
            .uptime_day_week(&MonitorKey::endpoint("x-other"), now)
            .unwrap();
        assert_eq!((d.checks, w.checks), (0, 0));
    }

    #[test]
    fn prune_removes_only_old_entries_and_state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let k = MonitorKey::endpoint("x");
        let now = OffsetDateTime::now_utc();
        {
            let store = Store::open(&path).unwrap();
            let st = ObservedState {
                status: Status::Up,
                checks_total: 2,
                ..Default::default()
            };
            store
                .record_check(&k, &rec(now - Duration::days(10), true), &st)
                .unwrap();
            store.record_check(&k, &rec(now, true), &st).unwrap();
            let removed = store
                .prune(now - Duration::days(7), now - Duration::days(30))
                .unwrap();
            assert_eq!(removed, 1);
            store.flush().unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.history(&k, None, None, 10).unwrap().len(), 1);
        assert_eq!(store.load_state(&k).unwrap().unwrap().status, Status::Up);
    }
}
