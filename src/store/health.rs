//! Whether the database can write, as every failed write or flush reports it.
//!
//! A write that fails (a full disk, an I/O error) marks the store failing at
//! once, with which part failed, the error and since when: `get_health` and
//! `/healthz` read this state (a lock and a copy, no disk access), so a
//! liveness probe sees the failure as soon as a check or a ping meets it.
//! Only a successful probe by the watchdog ([`super::watchdog`]) clears it:
//! a write that lands in a buffer says nothing about the disk.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use time::OffsetDateTime;

/// The daemon's exit code when the store cannot recover in the process
/// (`EX_TEMPFAIL` of sysexits.h: try again later). The watchdog decides when.
pub const EXIT_CODE: u8 = 75;

/// The part of the database a write failed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StorePart {
    /// sled (`<db>/db`, `<db>/conf`, `<db>/blobs`): states, heartbeats,
    /// alerts, pauses, incidents.
    Sled,
    /// The check history segments (`<db>/history/`).
    History,
    /// The uptime day files (`<db>/uptime/`).
    Days,
}

impl StorePart {
    pub fn as_str(self) -> &'static str {
        match self {
            StorePart::Sled => "sled",
            StorePart::History => "history",
            StorePart::Days => "days",
        }
    }
}

/// Why the store cannot write, as `get_health` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct StoreFailure {
    /// Where the first failed write was: `sled`, `history` or `days`.
    pub part: StorePart,
    /// The first error, e.g. `No space left on device (os error 28)`.
    pub error: String,
    /// The latest error, if it differs from the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the first write failed (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub since: OffsetDateTime,
    /// Failed writes and flushes since then.
    pub failed_writes: u64,
    /// What the daemon does about it (see docs/storage.md, When the disk fills).
    pub action: String,
}

#[derive(Default)]
struct Inner {
    failure: Option<StoreFailure>,
    /// Failures the watchdog has not looked at yet (wakes it early).
    unseen: bool,
}

/// Shared by every clone of the [`super::Store`]; cheap to read.
#[derive(Clone)]
pub struct StoreHealth {
    inner: Arc<Mutex<Inner>>,
    wake: Arc<tokio::sync::Notify>,
    /// Set once the watchdog decides the store cannot recover in this process.
    gave_up: Arc<tokio::sync::watch::Sender<Option<String>>>,
}

impl Default for StoreHealth {
    fn default() -> Self {
        StoreHealth {
            inner: Arc::default(),
            wake: Arc::default(),
            gave_up: Arc::new(tokio::sync::watch::channel(None).0),
        }
    }
}

/// What a caller does once it has reported a failure.
pub const ACTION_WAIT: &str = "pings are answered 503 and check results are not kept; the daemon \
     probes the disk every second and recovers, or exits with code 75 for its supervisor to \
     restart it, once space is back";

impl StoreHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Report a failed write or flush in `part`. The first one since the store
    /// last worked sets the cause and the time; later ones are counted.
    pub fn failed(&self, part: StorePart, error: &dyn std::fmt::Display) {
        let error = error.to_string();
        let mut inner = self.lock();
        match &mut inner.failure {
            Some(f) => {
                f.failed_writes += 1;
                if f.error != error {
                    f.last_error = Some(error);
                }
            }
            none => {
                *none = Some(StoreFailure {
                    part,
                    error,
                    last_error: None,
                    since: OffsetDateTime::now_utc(),
                    failed_writes: 1,
                    action: ACTION_WAIT.to_owned(),
                });
                inner.unseen = true;
                drop(inner);
                self.wake.notify_one();
            }
        }
    }

    /// Report `result`'s error, if any, as a failure of `part`; pass it on.
    pub fn check<T, E: std::fmt::Display>(
        &self,
        part: StorePart,
        result: Result<T, E>,
    ) -> Result<T, E> {
        if let Err(e) = &result {
            self.failed(part, e);
        }
        result
    }

    /// The current failure, if the store cannot write.
    pub fn failure(&self) -> Option<StoreFailure> {
        self.lock().failure.clone()
    }

    pub fn is_failing(&self) -> bool {
        self.lock().failure.is_some()
    }

    /// The store wrote again (the watchdog's probe passed): clear the failure
    /// and return it, for the recovery log line.
    pub fn recovered(&self) -> Option<StoreFailure> {
        let mut inner = self.lock();
        inner.unseen = false;
        inner.failure.take()
    }

    /// Say what the daemon is doing about the failure (shown in `get_health`).
    pub fn set_action(&self, action: impl Into<String>) {
        if let Some(f) = &mut self.lock().failure {
            f.action = action.into();
        }
    }

    /// The store cannot recover in this process: the daemon exits (see
    /// [`super::watchdog`]) with `reason` in its last log line.
    pub fn give_up(&self, reason: String) {
        self.set_action(format!(
            "the daemon is exiting with code {} for its supervisor to restart it",
            EXIT_CODE
        ));
        self.gave_up.send_replace(Some(reason));
    }

    /// Why the watchdog gave up, once it has.
    pub fn gave_up_reason(&self) -> Option<String> {
        self.gave_up.borrow().clone()
    }

    /// Resolves with the reason once [`StoreHealth::give_up`] was called.
    pub async fn given_up(&self) -> String {
        let mut rx = self.gave_up.subscribe();
        // The guard `wait_for` returns must not live across an await.
        let reason = rx
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|r| r.clone());
        match reason {
            Some(reason) => reason,
            // The sender lives as long as `self`.
            None => std::future::pending().await,
        }
    }

    /// Wait until a new failure is reported (or `timeout` passes).
    pub async fn wait_failure(&self, timeout: std::time::Duration) {
        if std::mem::take(&mut self.lock().unseen) {
            return;
        }
        let _ = tokio::time::timeout(timeout, self.wake.notified()).await;
        self.lock().unseen = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_the_cause_and_later_ones_are_counted() {
        let h = StoreHealth::default();
        assert!(h.failure().is_none());
        let r: Result<(), &str> = h.check(StorePart::Sled, Err("No space left on device"));
        assert!(r.is_err());
        h.failed(StorePart::History, &"disk on fire");
        h.failed(StorePart::Sled, &"No space left on device");
        let f = h.failure().unwrap();
        assert_eq!(f.part, StorePart::Sled);
        assert_eq!(f.error, "No space left on device");
        assert_eq!(f.failed_writes, 3);
        assert_eq!(f.last_error.as_deref(), Some("disk on fire"));
        assert!(h.recovered().is_some());
        assert!(!h.is_failing());
        let ok: Result<u8, &str> = h.check(StorePart::Days, Ok(1));
        assert_eq!(ok, Ok(1));
        assert!(!h.is_failing());
    }
}
