//! The observed side of every monitor, in memory: what its check task last
//! saw and which task is running it. Check tasks write; the read model reads.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use time::OffsetDateTime;

use crate::monitor::MonitorKey;
use crate::store::ObservedState;

/// The running check task of a monitor. `task_id` changes exactly when the
/// reconciler (re)starts the task, so an unchanged id proves the task was
/// left alone.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TaskInfo {
    pub task_id: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub started_at: OffsetDateTime,
    /// How many times this monitor's task was started since the process started.
    pub starts: u32,
    /// The desired-state generation the task was started for.
    pub generation: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub state: ObservedState,
    pub task: Option<TaskInfo>,
    /// Checks and their durations since the process started (`/metrics`).
    pub checks: crate::metrics::histogram::CheckStats,
    /// What the last check of this process may show to whoever declared the
    /// monitor (see [`Observed::public`]).
    public: Option<Box<PublicCheck>>,
}

/// The part of a check result that may be shown to the person who declared
/// the monitor (a `Monitor` resource's status), who may not own maintenant.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicCheck {
    /// `last_check.at` of the check this describes.
    pub at: OffsetDateTime,
    /// The error without the values conditions read from the response body.
    pub error: Option<String>,
    /// The target policy refused the connection (no packet was sent).
    pub refused: Option<crate::checks::targets::Refusal>,
}

impl Observed {
    /// The public side of the last check, when this process made it. A
    /// state loaded from the store (after a restart) has none: its error
    /// may quote a body.
    pub fn public(&self) -> Option<&PublicCheck> {
        let at = self.state.last_check.as_ref()?.at;
        self.public.as_deref().filter(|p| p.at == at)
    }
}

/// Shared map of observed state, cheap to clone.
///
/// Values are boxed: at 10k monitors the table has 16,384 slots, and an empty
/// slot of an unboxed `Observed` (136 bytes) costs as much as a full one.
/// Boxed: 16,384 slots of 32 bytes plus 10k boxes, about 0.6 MB less.
#[derive(Clone, Default)]
pub struct ObservedMap(Arc<RwLock<HashMap<MonitorKey, Box<Observed>>>>);

impl ObservedMap {
    pub fn get(&self, key: &MonitorKey) -> Option<Observed> {
        self.0
            .read()
            .expect("observed map lock")
            .get(key)
            .map(|o| Observed::clone(o))
    }

    pub fn set_state(&self, key: &MonitorKey, state: ObservedState) {
        let mut map = self.0.write().expect("observed map lock");
        map.entry(key.clone()).or_default().state = state;
    }

    /// The state after a finished check (`state.last_check`), counted in
    /// the monitor's check stats under the same lock, with its public side.
    pub fn set_checked(&self, key: &MonitorKey, state: ObservedState, public: PublicCheck) {
        let mut map = self.0.write().expect("observed map lock");
        let entry = map.entry(key.clone()).or_default();
        if let Some(c) = &state.last_check {
            entry.checks.observe(c.response_time_ms / 1000.0, c.up);
        }
        entry.state = state;
        // Nothing to keep for the common case (up, allowed): no allocation.
        entry.public =
            (public.error.is_some() || public.refused.is_some()).then(|| Box::new(public));
    }

    /// Record that a task started for `key`; returns the start count.
    pub fn task_started(
        &self,
        key: &MonitorKey,
        state: ObservedState,
        task_id: u64,
        generation: u64,
    ) -> TaskInfo {
        let mut map = self.0.write().expect("observed map lock");
        let entry = map.entry(key.clone()).or_default();
        let starts = entry.task.as_ref().map_or(0, |t| t.starts) + 1;
        let info = TaskInfo {
            task_id,
            started_at: OffsetDateTime::now_utc(),
            starts,
            generation,
        };
        entry.task = Some(info.clone());
        entry.state = state;
        info
    }

    /// The task stopped and the monitor is no longer declared.
    pub fn remove(&self, key: &MonitorKey) {
        self.0.write().expect("observed map lock").remove(key);
    }

    /// Read many at once under one lock (for list pages).
    pub fn with<R>(&self, f: impl FnOnce(&ObservedRead<'_>) -> R) -> R {
        f(&ObservedRead(&self.0.read().expect("observed map lock")))
    }
}

/// The map as [`ObservedMap::with`] lends it: lookups, not how values are stored.
pub struct ObservedRead<'a>(&'a HashMap<MonitorKey, Box<Observed>>);

impl ObservedRead<'_> {
    pub fn get(&self, key: &MonitorKey) -> Option<&Observed> {
        self.0.get(key).map(Box::as_ref)
    }
}
