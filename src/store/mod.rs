//! The database: check results (with retention), the current observed
//! state of each monitor, and hourly rollups that answer uptime over 24h and
//! 7d without scanning history.
//!
//! sled trees:
//! - `state`:   `monitor-id` -> [`ObservedState`] (binary, [`codec`])
//! - `uptime_hour`: `monitor-id` -> the monitor's [`HourEntry`]: the rollup
//!   of its current hour and its slot in the day files (20 bytes, so sled
//!   keeps it inline rather than in an allocation)
//! - `heartbeats`: `heartbeat/NAME` -> [`HeartbeatState`] (JSON)
//! - `pauses`: `monitor-id` -> [`PauseRecord`] (JSON): monitors paused by
//!   `pause_monitor`, of every kind; kept until `resume_monitor`.
//!
//! Check results ([`history`]) and the day rollups ([`days`]) are not in
//! sled but in files beside it: sled's memory grows with what it holds. A
//! key per check made the daemon's memory grow with its history, and a day
//! of rollups per monitor (384 bytes) in sled cost a restarted daemon about
//! as much memory as the days it held (README, Benchmark). What is left in
//! sled is a bounded, small value per monitor, rewritten by every check.
//!
//! A monitor's hour is folded into its day file when its next check falls in
//! another hour (once an hour per monitor). Reading a monitor's week is one
//! sled lookup and at most 8 positioned reads.

use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::heartbeat::HeartbeatState;
use crate::monitor::MonitorKey;

mod codec;
pub mod days;
pub mod health;
pub mod history;
pub mod watchdog;

use days::{DAY_BYTES, DayFiles, day_slot};
use health::{StoreHealth, StorePart};
use history::HistoryLog;

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
    #[error("check history files: {0}")]
    History(#[from] std::io::Error),
    #[error("uptime day files: {0}")]
    Days(std::io::Error),
}

impl StoreError {
    /// The part of the database a failed write was in, or `None` for an
    /// error that is not a failed write (a corrupt record, the lock).
    fn part(&self) -> Option<StorePart> {
        match self {
            StoreError::Sled(_) => Some(StorePart::Sled),
            StoreError::History(_) => Some(StorePart::History),
            StoreError::Days(_) => Some(StorePart::Days),
            StoreError::Locked { .. } | StoreError::Corrupt(_) | StoreError::Undecodable(_) => None,
        }
    }
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
    history: HistoryLog,
    days: DayFiles,
    state: sled::Tree,
    uptime_hour: sled::Tree,
    heartbeats: sled::Tree,
    pauses: sled::Tree,
    /// Free day-file slots, read from `uptime_hour` at the first allocation
    /// (a read-only `--mcp-stdio` never allocates, so never reads them).
    slots: std::sync::Arc<std::sync::Mutex<Option<Slots>>>,
    /// Held for reading by each check's read-modify-write of its entry, for
    /// writing by [`Store::prune_stale_hours`]: an entry it removes (and a
    /// slot it frees) cannot be written back by a check that read it before.
    entries: std::sync::Arc<std::sync::RwLock<()>>,
    /// sled's log file (`<db>/db`), for [`Store::sync_to_disk`].
    log_file: std::sync::Arc<std::fs::File>,
    /// Whether writes succeed: every failed write and flush reports here.
    health: StoreHealth,
    /// The database directory (the watchdog's probe file goes there).
    path: std::path::PathBuf,
}

/// A monitor paused by `pause_monitor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseRecord {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

fn micros(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(0)
}

fn hour_of(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp() / 3600).unwrap_or(0)
}

/// The `hour` of an entry that has no current hour yet (hour 0 is in 1970).
const NO_HOUR: u64 = 0;

/// A monitor's value in `uptime_hour`: `hour u32 | checks u32 | up u32 |
/// response_ms_sum f32 | slot u32`. The entry outlives the monitor's
/// removal, so a monitor declared again finds its slot and its past; it goes
/// with the last of its days ([`Store::prune_stale_hours`]).
#[derive(Debug, Clone, Copy, PartialEq)]
struct HourEntry {
    hour: u64,
    rollup: Rollup,
    /// Where the monitor's days are in the day files.
    slot: u32,
}

impl HourEntry {
    fn encode(&self) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[0..4].copy_from_slice(&u32::try_from(self.hour).unwrap_or(u32::MAX).to_le_bytes());
        b[4..8].copy_from_slice(&self.rollup.checks.to_le_bytes());
        b[8..12].copy_from_slice(&self.rollup.up.to_le_bytes());
        b[12..16].copy_from_slice(&(self.rollup.response_ms_sum as f32).to_le_bytes());
        b[16..20].copy_from_slice(&self.slot.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<HourEntry> {
        let b: &[u8; 20] = b.try_into().ok()?;
        let (hour, rollup) = decode_hour(&b[..16])?;
        Some(HourEntry {
            hour,
            rollup,
            slot: u32::from_le_bytes(b[16..20].try_into().expect("4 bytes")),
        })
    }

    /// The current hour and its rollup, if there is one.
    fn current(&self) -> Option<(u64, Rollup)> {
        (self.hour != NO_HOUR).then_some((self.hour, self.rollup))
    }
}

/// The first 16 bytes of an [`HourEntry`], the whole value before day
/// rollups left sled.
fn decode_hour(b: &[u8]) -> Option<(u64, Rollup)> {
    let b: &[u8; 16] = b.try_into().ok()?;
    let u = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    Some((
        u64::from(u(0)),
        Rollup {
            checks: u(4),
            up: u(8),
            response_ms_sum: f64::from(f32::from_le_bytes(b[12..16].try_into().expect("4 bytes"))),
        },
    ))
}

/// Day-file slots not held by any `uptime_hour` entry.
struct Slots {
    next: u32,
    /// Freed slots, highest first, so the lowest is reused first.
    free: Vec<u32>,
}

impl Slots {
    fn take(&mut self) -> u32 {
        self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        })
    }

    fn give_back(&mut self, slot: u32) {
        let at = self.free.partition_point(|s| *s > slot);
        self.free.insert(at, slot);
    }
}

/// Split a `monitor-id \0 u64` key (the layouts of earlier versions).
fn split_key(k: &[u8]) -> Option<(&[u8], u64)> {
    let (id, suffix) = k.split_at_checked(k.len().checked_sub(9)?)?;
    (suffix[0] == 0).then(|| {
        (
            id,
            u64::from_be_bytes(suffix[1..].try_into().expect("8 bytes")),
        )
    })
}

/// Trees of earlier versions that [`Store::migrate`] empties into the files
/// (`results` first: it is dropped as soon as its import is whole).
const OLD_TREES: [&str; 4] = ["results", "rollups", "uptime", "uptime_days"];

impl Store {
    /// Another tree of the same database, for a part that keeps its own
    /// records (e.g. container transitions and usage in `runtime::history`).
    pub fn tree(&self, name: &str) -> Result<sled::Tree> {
        Ok(self.db.open_tree(name)?)
    }

    /// Open (or create) the database. sled takes an exclusive lock on the
    /// directory; a second process gets [`StoreError::Locked`].
    pub fn open(path: &Path) -> Result<Store> {
        // The lock is released once the last owner's files are closed, which
        // for a store dropped in this same process (tests, a restart of the
        // engine) can trail its drop by a few milliseconds behind sled's own
        // threads: try again for up to half a second before saying Locked.
        let mut tries = 0;
        let db = loop {
            match Self::open_db(path) {
                Err(StoreError::Locked { .. }) if tries < 20 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                other => break other?,
            }
        };
        // The files beside sled are opened only once sled's lock is held:
        // one process at a time, like sled itself.
        let health = StoreHealth::default();
        let store = Store {
            history: HistoryLog::open_reporting(&path.join("history"), health.clone())?,
            days: DayFiles::open(&path.join("uptime"))?,
            state: db.open_tree("state")?,
            uptime_hour: db.open_tree("uptime_hour")?,
            heartbeats: db.open_tree("heartbeats")?,
            pauses: db.open_tree("pauses")?,
            slots: Default::default(),
            entries: Default::default(),
            log_file: std::sync::Arc::new(
                std::fs::File::open(path.join("db")).map_err(sled::Error::Io)?,
            ),
            db,
            health,
            path: path.to_owned(),
        };
        // A probe the watchdog could not remove (the process died mid-probe).
        let _ = std::fs::remove_file(watchdog::probe_path(path));
        store.migrate()?;
        Ok(store)
    }

    fn open_db(path: &Path) -> Result<sled::Db> {
        sled::Config::new()
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
            })
    }

    /// Move what earlier versions kept in sled to the files beside it, then
    /// drop the old trees: `results` (a key per check) to the history files;
    /// `rollups` (a key per hour), `uptime` (days keyed by monitor first) and
    /// `uptime_days` (days keyed by day first) to the day files, after
    /// giving every `uptime_hour` entry a slot. Each step writes what it
    /// moves by setting, not adding, so a crash before a tree is dropped
    /// runs it again without counting anything twice.
    fn migrate(&self) -> Result<()> {
        let names = self.db.tree_names();
        let has = |name: &str| names.iter().any(|n| n.as_ref() == name.as_bytes());
        if !OLD_TREES.iter().any(|t| has(t)) {
            return Ok(());
        }
        if has("results") {
            let old = self.db.open_tree("results")?;
            tracing::info!("moving check results from sled to the history files (once)");
            let moved = self
                .history
                .import(old.iter().filter_map(|item| match item {
                    Ok((k, v)) => split_key(&k).map(|(id, at)| Ok((id.to_vec(), at, v.to_vec()))),
                    Err(e) => Some(Err(StoreError::from(e))),
                }))?;
            drop(old);
            self.db.drop_tree("results")?;
            tracing::info!(moved, "check results moved from sled to the history files");
        }
        // Current hours of the versions before slots: 16 bytes, no slot.
        for item in self.uptime_hour.iter() {
            let (id, v) = item?;
            if let Some((hour, rollup)) = decode_hour(&v) {
                self.allocate(&id, hour, rollup)?;
            }
        }
        if has("rollups") {
            let old = self.db.open_tree("rollups")?;
            for item in old.iter() {
                let (k, v) = item?;
                if let Some((id, hour)) = split_key(&k) {
                    let r = Rollup::decode(&v);
                    let slot = self.entry(id)?.slot;
                    self.days.set_hour(slot, id, hour, r)?;
                    self.advance_entry(id, hour, r)?;
                }
            }
        }
        let day_trees = [
            // `monitor-id \0 day`
            ("uptime", split_key as fn(&[u8]) -> Option<(&[u8], u64)>),
            // `day(BE u64) monitor-id`
            ("uptime_days", |k: &[u8]| {
                let (day, id) = k.split_at_checked(8)?;
                Some((id, u64::from_be_bytes(day.try_into().expect("8 bytes"))))
            }),
        ];
        for (name, split) in day_trees {
            if !has(name) {
                continue;
            }
            tracing::info!(
                tree = name,
                "moving day rollups from sled to the day files (once)"
            );
            for item in self.db.open_tree(name)?.iter() {
                let (k, v) = item?;
                if let (Some((id, day)), Ok(value)) =
                    (split(&k), <&[u8; DAY_BYTES]>::try_from(&v[..]))
                {
                    let slot = self.entry(id)?.slot;
                    self.days.write_day(day, slot, id, value)?;
                    let last = day * 24 + 23;
                    self.advance_entry(id, last, day_slot(value, last))?;
                }
            }
        }
        // Durable before the trees that held them go (`results` went with
        // its import, above).
        self.days.sync()?;
        for name in &OLD_TREES[1..] {
            if has(name) {
                self.db.drop_tree(name)?;
            }
        }
        self.db.flush()?;
        Ok(())
    }

    /// Record one check: the result, the monitor's new state and its hour's rollup.
    pub fn record_check(
        &self,
        key: &MonitorKey,
        rec: &CheckRecord,
        state: &ObservedState,
    ) -> Result<()> {
        let id = key.storage_key();
        let result = (|| {
            self.history
                .append(&id, micros(rec.at), &codec::encode_check(rec))?;
            self.save_state(key, state)?;
            self.count_in_hour(id, hour_of(rec.at), rec)
        })();
        self.report(result)
    }

    /// Report a failed write to [`Store::health`]; pass the result on.
    fn report<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result
            && let Some(part) = e.part()
        {
            self.health.failed(part, e);
        }
        result
    }

    /// Whether the store can write, as its failed writes and flushes said.
    pub fn health(&self) -> &StoreHealth {
        &self.health
    }

    fn hour_entry(&self, id: &[u8]) -> Result<Option<HourEntry>> {
        Ok(self
            .uptime_hour
            .get(id)?
            .and_then(|v| HourEntry::decode(&v)))
    }

    /// The monitor's entry, given a slot (and no current hour) if it has none.
    fn entry(&self, id: &[u8]) -> Result<HourEntry> {
        match self.hour_entry(id)? {
            Some(e) => Ok(e),
            None => self.allocate(id, NO_HOUR, Rollup::default()),
        }
    }

    /// Make `hour` (whose rollup `r` is already in its day file) the
    /// entry's current hour if it has none or one of an earlier day, so the
    /// entry of a monitor migrated without one (removed before the upgrade)
    /// lasts as long as its newest day, as it would have in this version.
    fn advance_entry(&self, id: &[u8], hour: u64, r: Rollup) -> Result<()> {
        let entry = self.entry(id)?;
        if entry.current().is_some_and(|(h, _)| h / 24 >= hour / 24) {
            return Ok(());
        }
        self.fold_current(id, &entry)?;
        self.set_current(id, entry, hour, r)
    }

    /// Write the entry's current hour, if it has one, into its day file.
    fn fold_current(&self, id: &[u8], entry: &HourEntry) -> Result<()> {
        if let Some((h, r)) = entry.current() {
            self.days
                .set_hour(entry.slot, id, h, r)
                .map_err(StoreError::Days)?;
        }
        Ok(())
    }

    /// Make `hour`, with `rollup`, the current hour of `entry` (same slot).
    fn set_current(&self, id: &[u8], entry: HourEntry, hour: u64, rollup: Rollup) -> Result<()> {
        let entry = HourEntry {
            hour,
            rollup,
            ..entry
        };
        self.uptime_hour.insert(id, &entry.encode())?;
        Ok(())
    }

    /// Give `id` a slot and write its entry, unless it has one already.
    fn allocate(&self, id: &[u8], hour: u64, rollup: Rollup) -> Result<HourEntry> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = self.hour_entry(id)? {
            return Ok(e);
        }
        let slots = match &mut *slots {
            Some(s) => s,
            none => none.insert(self.free_slots()?),
        };
        let entry = HourEntry {
            hour,
            rollup,
            slot: slots.take(),
        };
        self.uptime_hour.insert(id, &entry.encode())?;
        Ok(entry)
    }

    /// The slots no entry holds: the gaps below the highest, and above it.
    fn free_slots(&self) -> Result<Slots> {
        let mut used = Vec::new();
        for v in self.uptime_hour.iter().values() {
            if let Some(e) = HourEntry::decode(&v?) {
                used.push(e.slot);
            }
        }
        used.sort_unstable();
        used.dedup();
        let next = used.last().map_or(0, |s| s + 1);
        let mut free: Vec<u32> = (0..next)
            .filter(|s| used.binary_search(s).is_err())
            .collect();
        free.reverse();
        Ok(Slots { next, free })
    }

    /// Add a check to its monitor's hourly rollup. The current hour's is in
    /// the monitor's `uptime_hour` entry, rewritten by every check; a check
    /// in another hour first folds it into its day file (once an hour per
    /// monitor).
    fn count_in_hour(&self, id: Vec<u8>, hour: u64, rec: &CheckRecord) -> Result<()> {
        let _entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let entry = self.entry(&id)?;
        let mut r = match entry.current() {
            Some((h, r)) if h == hour => r,
            _ => {
                self.fold_current(&id, &entry)?;
                // Normally empty; not after a check out of order, a migration
                // or a monitor declared again within an hour it was checked.
                self.days
                    .read_hour(entry.slot, &id, hour)
                    .map_err(StoreError::Days)?
            }
        };
        r.checks += 1;
        r.up += u32::from(rec.up);
        r.response_ms_sum += rec.response_time_ms;
        self.set_current(&id, entry, hour, r)
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
        let found = self.history.read(
            &key.storage_key(),
            since.map(micros).unwrap_or(0),
            before.map(micros).unwrap_or(u64::MAX),
            limit,
        )?;
        found
            .iter()
            .map(|(_, rec)| codec::decode_check(rec))
            .collect()
    }

    /// How many checks of `key` are kept from `since` on (all of them
    /// without it): the `total` of a history answer.
    pub fn history_count(&self, key: &MonitorKey, since: Option<OffsetDateTime>) -> Result<u64> {
        Ok(self
            .history
            .count(&key.storage_key(), since.map(micros).unwrap_or(0))?)
    }

    /// Uptime over the last 24 hours and the last 7 days (the current hour
    /// included), summed from hourly rollups: one sled lookup and at most 8
    /// day-file reads, whatever the history size.
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
        let id = key.storage_key();
        let Some(entry) = self.hour_entry(&id)? else {
            return Ok((day, week));
        };
        let mut add = |hour: u64, r: Rollup| {
            if hour < week_start || hour > end {
                return;
            }
            week.checks += u64::from(r.checks);
            week.up += u64::from(r.up);
            if hour >= day_start {
                day.checks += u64::from(r.checks);
                day.up += u64::from(r.up);
            }
        };
        // The current hour's rollup supersedes its slot in the day, which
        // holds it only if it was folded before (an out-of-order check).
        let current = entry.current();
        if let Some((hour, r)) = current {
            add(hour, r);
        }
        for d in week_start / 24..=end / 24 {
            let Some(v) = self.days.read(d, entry.slot, &id)? else {
                continue;
            };
            for slot in 0..24 {
                let hour = d * 24 + slot;
                if current.is_none_or(|(h, _)| h != hour) {
                    add(hour, day_slot(&v, hour));
                }
            }
        }
        Ok((day, week))
    }

    /// Delete check results older than `results_cutoff` (whole history
    /// segments, see [`history`]) and the day files of days that ended
    /// before `rollups_cutoff`. Reads only what it removes. Returns how many
    /// results and day files were removed.
    pub fn prune(
        &self,
        results_cutoff: OffsetDateTime,
        rollups_cutoff: OffsetDateTime,
    ) -> Result<usize> {
        let removed = self.history.prune(micros(results_cutoff))?;
        Ok(removed + self.days.prune(hour_of(rollups_cutoff) / 24)?)
    }

    /// Delete the `uptime_hour` entries of monitors not checked since before
    /// `rollups_cutoff` (removed from the config, or paused, for longer than
    /// rollups are kept), freeing their slots: every day they had is gone
    /// with [`Store::prune`]. This reads every monitor's entry, so the
    /// daemon runs it once a day, not with every [`Store::prune`].
    pub fn prune_stale_hours(&self, rollups_cutoff: OffsetDateTime) -> Result<usize> {
        let keep_from = hour_of(rollups_cutoff) / 24;
        // No check rewrites its entry, and no slot is handed out, while the
        // stale ones are removed and their slots collected.
        let _entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = sled::Batch::default();
        let mut freed = Vec::new();
        for item in self.uptime_hour.iter() {
            let (k, v) = item?;
            let entry = HourEntry::decode(&v);
            if entry.is_none_or(|e| e.hour / 24 < keep_from) {
                batch.remove(k);
                freed.extend(entry.map(|e| e.slot));
            }
        }
        self.uptime_hour.apply_batch(batch)?;
        if let Some(slots) = &mut *slots {
            for slot in &freed {
                slots.give_back(*slot);
            }
        }
        Ok(freed.len())
    }

    /// Forget a monitor's current state. Its `uptime_hour` entry stays, and
    /// with it its current hour and its days, until retention removes them:
    /// uptime still counts them, and a monitor declared again finds its past.
    pub fn forget_state(&self, key: &MonitorKey) -> Result<()> {
        self.state.remove(key.storage_key())?;
        Ok(())
    }

    /// Store a heartbeat's state (made durable by the next [`Store::flush`]).
    pub fn save_heartbeat(&self, key: &MonitorKey, state: &HeartbeatState) -> Result<()> {
        let value = serde_json::to_vec(state)?;
        self.report(
            self.heartbeats
                .insert(key.storage_key(), value)
                .map_err(StoreError::from),
        )?;
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
        self.report((|| {
            self.db.flush()?;
            self.days.sync().map_err(StoreError::Days)?;
            self.log_file.sync_data().map_err(sled::Error::Io)?;
            Ok(())
        })())
    }

    /// The last flush, at shutdown. A store that is already failing is not
    /// flushed (sled would only return its first error again): what it could
    /// not write was never acknowledged (pings were answered 503, check
    /// results were not applied), so the shutdown says so and succeeds.
    pub fn flush_at_exit(&self) -> Result<()> {
        if let Some(f) = self.health.failure() {
            tracing::warn!(
                part = f.part.as_str(),
                error = %f.error,
                since = %f.since,
                failed_writes = f.failed_writes,
                "shutting down with a database that cannot write: every acknowledged ping and change is on disk; what failed to write was answered as failed and is not kept"
            );
            return Ok(());
        }
        self.flush()
    }

    pub fn flush(&self) -> Result<()> {
        self.report((|| {
            self.history.flush()?;
            self.days.sync().map_err(StoreError::Days)?;
            self.db.flush()?;
            Ok(())
        })())
    }

    /// The database, for modules that keep their own trees (alerts, certificates).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Bytes on disk of each part: sled, the check history, the day files.
    pub fn sizes_on_disk(&self) -> [(&'static str, u64); 3] {
        [
            ("database", self.db.size_on_disk().unwrap_or(0)),
            ("history", self.history.size_on_disk()),
            ("days", self.days.size_on_disk()),
        ]
    }

    /// sled's files, the check history's and the day files'.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0) + self.history.size_on_disk() + self.days.size_on_disk()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    /// A key of the layout before check history left sled: `monitor-id \0 u64`.
    fn prefixed(key: &MonitorKey, suffix: u64) -> Vec<u8> {
        let mut k = key.storage_key();
        k.push(0);
        k.extend_from_slice(&suffix.to_be_bytes());
        k
    }

    /// A day value of the layouts before day files: 24 rollups, `r` at `hour`.
    fn day_value(hour: u64, r: Rollup) -> Vec<u8> {
        let mut day = vec![0; DAY_BYTES];
        day[(hour % 24) as usize * 16..][..16].copy_from_slice(&r.encode());
        day
    }

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
    fn each_hour_is_counted_once_as_checks_move_between_hours() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let k = MonitorKey::endpoint("x");
        let now = OffsetDateTime::now_utc();
        let hour = now.replace_minute(0).unwrap().replace_second(0).unwrap() - Duration::hours(2);
        let check = |at: OffsetDateTime, up: bool| {
            store
                .record_check(&k, &rec(at, up), &ObservedState::default())
                .unwrap();
            let (_, week) = store.uptime_day_week(&k, now).unwrap();
            (week.checks, week.up)
        };
        for m in 1..=3 {
            check(hour + Duration::minutes(m), true);
        }
        // The next hour folds the first into its day.
        assert_eq!(check(hour + Duration::minutes(61), false), (4, 3));
        assert_eq!(check(hour + Duration::minutes(62), false), (5, 3));
        // A late check of the first hour (a task restarted mid-check)
        // continues that hour's count from its day; nothing counted twice.
        assert_eq!(check(hour + Duration::minutes(4), true), (6, 4));
        assert_eq!(check(hour + Duration::minutes(63), true), (7, 5));
        let (day, _) = store.uptime_day_week(&k, now).unwrap();
        assert_eq!((day.checks, day.up), (7, 5));
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
            // Retention removes whole sealed segments.
            store.history.seal_now().unwrap();
            store.record_check(&k, &rec(now, true), &st).unwrap();
            let removed = store
                .prune(now - Duration::days(7), now - Duration::days(8))
                .unwrap();
            assert_eq!(removed, 2, "one result and its day file");
            let (_, week) = store.uptime_day_week(&k, now).unwrap();
            assert_eq!(week.checks, 1);
            store.flush().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let h = store.history(&k, None, None, 10).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].at.unix_timestamp(), now.unix_timestamp());
        assert_eq!(store.load_state(&k).unwrap().unwrap().status, Status::Up);
    }

    #[test]
    fn prune_removes_expired_days_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let now = OffsetDateTime::now_utc();
        // Ids that sort before and after each other and the day bytes.
        let keys = [
            MonitorKey::endpoint("a"),
            MonitorKey::endpoint("zz"),
            MonitorKey::heartbeat("\u{7f}"),
        ];
        for k in &keys {
            for age in [
                Duration::days(12),
                Duration::days(9),
                Duration::hours(30),
                Duration::ZERO,
            ] {
                store
                    .record_check(k, &rec(now - age, true), &ObservedState::default())
                    .unwrap();
            }
        }
        // Each monitor's first three checks were folded into their days; the
        // last is its current hour.
        let removed = store
            .prune(now - Duration::days(7), now - Duration::days(8))
            .unwrap();
        assert_eq!(removed, 2, "the files of the 12- and 9-day-old days");
        for k in &keys {
            let (day, week) = store.uptime_day_week(k, now).unwrap();
            assert_eq!((day.checks, week.checks), (1, 2), "{k:?}");
        }
        let files = std::fs::read_dir(dir.path().join("db/uptime"))
            .unwrap()
            .count();
        assert_eq!(files, 1, "the 30-hour-old day stays");
        assert_eq!(
            store
                .prune(now - Duration::days(7), now - Duration::days(8))
                .unwrap(),
            0
        );
    }

    #[test]
    fn stale_entries_are_pruned_their_slots_reused_and_a_removed_monitor_keeps_its_past() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let now = OffsetDateTime::now_utc();
        let (gone, live, removed, new) = (
            MonitorKey::endpoint("gone"),
            MonitorKey::endpoint("live"),
            MonitorKey::endpoint("removed"),
            MonitorKey::endpoint("new"),
        );
        let check = |k: &MonitorKey, at: OffsetDateTime, up: bool| {
            store
                .record_check(k, &rec(at, up), &ObservedState::default())
                .unwrap()
        };
        let slot = |k: &MonitorKey| store.hour_entry(&k.storage_key()).unwrap().map(|e| e.slot);
        // Last checked ten days ago (removed while the daemon was down).
        check(&gone, now - Duration::days(10), true);
        check(&live, now, true);
        assert_eq!((slot(&gone), slot(&live)), (Some(0), Some(1)));
        assert_eq!(store.prune_stale_hours(now - Duration::days(8)).unwrap(), 1);
        assert_eq!(slot(&gone), None);
        assert_eq!(slot(&live), Some(1));
        // The freed slot is the next one given.
        check(&new, now, false);
        assert_eq!(slot(&new), Some(0));
        let (day, _) = store.uptime_day_week(&new, now).unwrap();
        assert_eq!((day.checks, day.up), (1, 0), "nothing of gone's");

        // Removed while running: its state goes, its hour and days stay, so
        // uptime still counts them and a monitor declared again continues.
        check(&removed, now - Duration::hours(1), true);
        check(&removed, now, true);
        check(&removed, now, false);
        store.forget_state(&removed).unwrap();
        assert!(store.load_state(&removed).unwrap().is_none());
        let (day, _) = store.uptime_day_week(&removed, now).unwrap();
        assert_eq!((day.checks, day.up), (3, 2));
        check(&removed, now, true);
        let (day, _) = store.uptime_day_week(&removed, now).unwrap();
        assert_eq!((day.checks, day.up), (4, 3));
    }

    #[test]
    fn slots_are_read_from_the_database_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let now = OffsetDateTime::now_utc();
        let keys: Vec<_> = (0..4)
            .map(|i| MonitorKey::endpoint(format!("m{i}")))
            .collect();
        {
            let store = Store::open(&path).unwrap();
            // m1 last checked long ago: its slot (1) is freed below.
            for (i, k) in keys.iter().enumerate() {
                let at = if i == 1 {
                    now - Duration::days(10)
                } else {
                    now
                };
                store
                    .record_check(k, &rec(at, true), &ObservedState::default())
                    .unwrap();
            }
            store.prune_stale_hours(now - Duration::days(8)).unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let fresh = [MonitorKey::endpoint("a"), MonitorKey::endpoint("b")];
        for k in &fresh {
            store
                .record_check(
                    k,
                    &rec(now - Duration::hours(1), true),
                    &ObservedState::default(),
                )
                .unwrap();
            store
                .record_check(k, &rec(now, false), &ObservedState::default())
                .unwrap();
        }
        let slot = |k: &MonitorKey| store.hour_entry(&k.storage_key()).unwrap().unwrap().slot;
        assert_eq!(
            (slot(&fresh[0]), slot(&fresh[1])),
            (1, 4),
            "the gap, then past the end"
        );
        assert_eq!(slot(&keys[3]), 3);
        for k in fresh.iter().chain([&keys[0], &keys[2], &keys[3]]) {
            let (day, _) = store.uptime_day_week(k, now).unwrap();
            let want = if fresh.contains(k) { (2, 1) } else { (1, 1) };
            assert_eq!((day.checks, day.up), want, "{k:?}");
        }
    }

    #[test]
    fn rollups_keyed_by_monitor_first_are_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let k = MonitorKey::endpoint("web");
        let now = OffsetDateTime::now_utc();
        let hour = hour_of(now) - 5;
        {
            // The layout of the first version with history files: `uptime`,
            // `monitor-id \0 day` -> the day's 24 hourly rollups.
            let db = sled::open(&path).unwrap();
            let uptime = db.open_tree("uptime").unwrap();
            let r = Rollup {
                checks: 4,
                up: 3,
                response_ms_sum: 20.0,
            };
            uptime
                .insert(prefixed(&k, hour / 24), day_value(hour, r))
                .unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let (day, week) = store.uptime_day_week(&k, now).unwrap();
        assert_eq!((day.checks, day.up, week.checks), (4, 3, 4));
        assert!(
            !store
                .db
                .tree_names()
                .iter()
                .any(|n| n.as_ref() == b"uptime")
        );
        drop(store);
        // Once: a second open finds nothing to move and the same counts.
        let store = Store::open(&path).unwrap();
        let (day, _) = store.uptime_day_week(&k, now).unwrap();
        assert_eq!((day.checks, day.up), (4, 3));
    }

    #[test]
    fn a_database_of_an_earlier_version_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let k = MonitorKey::endpoint("web");
        let now = OffsetDateTime::now_utc();
        let checks = [rec(now - Duration::hours(3), false), rec(now, true)];
        {
            // The layout before check history moved out of sled: a key per
            // check in `results`, a key per hour in `rollups`, one result
            // still in the JSON form of the first versions.
            let db = sled::open(&path).unwrap();
            let results = db.open_tree("results").unwrap();
            let rollups = db.open_tree("rollups").unwrap();
            results
                .insert(
                    prefixed(&k, micros(checks[0].at)),
                    serde_json::to_vec(&checks[0]).unwrap(),
                )
                .unwrap();
            results
                .insert(
                    prefixed(&k, micros(checks[1].at)),
                    codec::encode_check(&checks[1]),
                )
                .unwrap();
            for (c, up) in [(&checks[0], 0), (&checks[1], 1)] {
                let r = Rollup {
                    checks: 1,
                    up,
                    response_ms_sum: 5.0,
                };
                rollups
                    .insert(prefixed(&k, hour_of(c.at)), &r.encode())
                    .unwrap();
            }
            db.flush().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let h = store.history(&k, None, None, 10).unwrap();
        assert_eq!(h.iter().map(|c| c.up).collect::<Vec<_>>(), [true, false]);
        assert_eq!(h[1].at.unix_timestamp(), checks[0].at.unix_timestamp());
        let (day, week) = store.uptime_day_week(&k, now).unwrap();
        assert_eq!((day.checks, day.up, week.checks), (2, 1, 2));
        let names = store.db.tree_names();
        assert!(
            !names
                .iter()
                .any(|n| n.as_ref() == b"results" || n.as_ref() == b"rollups")
        );
        // New checks land beside the migrated ones.
        store
            .record_check(
                &k,
                &rec(now + Duration::seconds(1), true),
                &ObservedState::default(),
            )
            .unwrap();
        assert_eq!(store.history(&k, None, None, 10).unwrap().len(), 3);
    }

    #[test]
    fn day_rollups_in_sled_are_moved_to_the_day_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let (web, gone) = (MonitorKey::endpoint("web"), MonitorKey::endpoint("gone"));
        let now = OffsetDateTime::now_utc();
        let end = hour_of(now);
        let r = |checks, up| Rollup {
            checks,
            up,
            response_ms_sum: 1.0,
        };
        {
            // The previous version: `uptime_days`, `day(BE u64) monitor-id`
            // -> 24 rollups, and a 16-byte current hour without a slot.
            let db = sled::open(&path).unwrap();
            let days = db.open_tree("uptime_days").unwrap();
            let hours = db.open_tree("uptime_hour").unwrap();
            for (k, hour, rollup) in [(&web, end - 30, r(4, 3)), (&gone, end - 2, r(2, 0))] {
                let mut key = (hour / 24).to_be_bytes().to_vec();
                key.extend_from_slice(&k.storage_key());
                days.insert(key, day_value(hour, rollup)).unwrap();
            }
            let mut current = [0u8; 16];
            current[0..4].copy_from_slice(&(end as u32).to_le_bytes());
            current[4..8].copy_from_slice(&5u32.to_le_bytes());
            current[8..12].copy_from_slice(&5u32.to_le_bytes());
            hours.insert(web.storage_key(), &current).unwrap();
            db.flush().unwrap();
        }
        for _ in 0..2 {
            // Twice: the second open finds nothing to move and the same counts.
            let store = Store::open(&path).unwrap();
            let (day, week) = store.uptime_day_week(&web, now).unwrap();
            assert_eq!((day.checks, day.up, week.checks, week.up), (5, 5, 9, 8));
            let (day, _) = store.uptime_day_week(&gone, now).unwrap();
            assert_eq!((day.checks, day.up), (2, 0), "a removed monitor's day too");
            // Its entry lasts as long as that day, not only until the next
            // daily pass (which would give its slot away).
            let kept = store.prune_stale_hours(now - Duration::days(8)).unwrap();
            assert_eq!(kept, 0);
            let entry = store.hour_entry(&gone.storage_key()).unwrap().unwrap();
            assert_eq!(entry.hour, (end - 2) / 24 * 24 + 23);
            assert!(
                !store
                    .db
                    .tree_names()
                    .iter()
                    .any(|n| n.as_ref() == b"uptime_days")
            );
        }
        // Checks continue web's current hour.
        let store = Store::open(&path).unwrap();
        let at = OffsetDateTime::from_unix_timestamp(end as i64 * 3600 + 60).unwrap();
        store
            .record_check(&web, &rec(at, false), &ObservedState::default())
            .unwrap();
        let (day, _) = store.uptime_day_week(&web, now).unwrap();
        assert_eq!((day.checks, day.up), (6, 5));
    }
}
