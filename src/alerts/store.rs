//! Alerts in sled.
//!
//! - `alerts`:     `id (BE u64)` -> [`Alert`] (JSON); ids grow, so a reverse
//!   scan is newest first and resolved alerts stay as history.
//! - `alerts_active`: `monitor-id \0 type` -> id, at most one per (monitor, type).
//! - `alert_deliveries`: `id (BE u64) seq (BE u64)` -> [`Delivery`] (JSON).
//! - `alerts_meta`: `next_alert_id` -> the last alert id given (BE u64).
//!
//! Every change to an alert is a compare-and-swap of its record, so the
//! engine, an acknowledgement and a delivery never overwrite each other.
//!
//! The failed deliveries `get_health` shows are counted in memory (one scan
//! at open, then kept by [`AlertStore::record_delivery`] and
//! [`AlertStore::prune_resolved`]): health was a scan of every delivery per
//! call, and a liveness probe calls it every few seconds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Alert, AlertEventKind, AlertType};
use crate::monitor::MonitorKey;
use crate::store::{Result, Store, StoreError};

/// One attempt to notify a channel (after its retries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Delivery {
    pub channel: String,
    pub event: AlertEventKind,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    /// Attempts made (1 + retries used).
    pub attempts: u32,
    pub ok: bool,
    /// The last HTTP status received.
    pub status_code: Option<u16>,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

#[derive(Clone)]
pub struct AlertStore {
    db: sled::Db,
    alerts: sled::Tree,
    active: sled::Tree,
    deliveries: sled::Tree,
    meta: sled::Tree,
    failed: Arc<Mutex<FailedCount>>,
}

/// Failed deliveries over every alert: how many, and the most recent.
#[derive(Debug, Clone, Default)]
struct FailedCount {
    n: u64,
    last: Option<(String, Delivery)>,
}

impl FailedCount {
    fn add(&mut self, id: u64, d: &Delivery) {
        if d.ok {
            return;
        }
        self.n += 1;
        if self.last.as_ref().is_none_or(|(_, l)| l.at <= d.at) {
            self.last = Some((id.to_string(), d.clone()));
        }
    }
}

fn active_key(monitor: &MonitorKey, t: AlertType) -> Vec<u8> {
    let mut k = monitor.storage_key();
    k.push(0);
    k.extend_from_slice(t.as_str().as_bytes());
    k
}

pub fn parse_id(id: &str) -> Option<u64> {
    id.trim().trim_start_matches('#').parse().ok()
}

impl AlertStore {
    pub fn new(store: &Store) -> Result<AlertStore> {
        let s = AlertStore {
            db: store.db().clone(),
            alerts: store.db().open_tree("alerts")?,
            active: store.db().open_tree("alerts_active")?,
            deliveries: store.db().open_tree("alert_deliveries")?,
            meta: store.db().open_tree("alerts_meta")?,
            failed: Arc::default(),
        };
        *s.lock_failed() = s.count_failed()?;
        Ok(s)
    }

    fn lock_failed(&self) -> std::sync::MutexGuard<'_, FailedCount> {
        // Plain numbers, consistent at every step.
        self.failed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count the failed deliveries on disk (at open, and after a prune).
    fn count_failed(&self) -> Result<FailedCount> {
        let mut c = FailedCount::default();
        for item in self.deliveries.iter() {
            let (k, v) = item?;
            let d: Delivery = serde_json::from_slice(&v)?;
            c.add(u64::from_be_bytes(k[..8].try_into().unwrap_or([0; 8])), &d);
        }
        Ok(c)
    }

    /// The id for a new alert: a counter of its own (not sled's shared id
    /// generator, so alert ids are 1, 2, 3...), never reused after pruning.
    pub fn next_id(&self) -> Result<u64> {
        let next = self.meta.update_and_fetch("next_alert_id", |old| {
            let n = old
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_be_bytes);
            Some((n + 1).to_be_bytes().to_vec())
        })?;
        Ok(next
            .and_then(|b| b.as_ref().try_into().ok())
            .map_or(1, u64::from_be_bytes))
    }

    /// Store a new active alert.
    pub fn insert_active(&self, monitor: &MonitorKey, alert: &Alert) -> Result<()> {
        let id = parse_id(&alert.id).unwrap_or(0);
        self.alerts
            .insert(id.to_be_bytes(), serde_json::to_vec(alert)?)?;
        self.active
            .insert(active_key(monitor, alert.alert_type), &id.to_be_bytes())?;
        Ok(())
    }

    pub fn get(&self, id: u64) -> Result<Option<Alert>> {
        match self.alerts.get(id.to_be_bytes())? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// Change an alert atomically; `f` may run more than once. Returns the alert after.
    pub fn update(&self, id: u64, mut f: impl FnMut(&mut Alert)) -> Result<Option<Alert>> {
        let mut failure: Option<serde_json::Error> = None;
        let out = self.alerts.update_and_fetch(id.to_be_bytes(), |old| {
            let old = old?;
            match serde_json::from_slice::<Alert>(old) {
                Ok(mut a) => {
                    f(&mut a);
                    match serde_json::to_vec(&a) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            failure = Some(e);
                            Some(old.to_vec())
                        }
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    Some(old.to_vec())
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(StoreError::Corrupt(e));
        }
        match out {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// The active alerts of one monitor, by type.
    pub fn active_of(&self, monitor: &MonitorKey) -> Result<BTreeMap<AlertType, Alert>> {
        let mut prefix = monitor.storage_key();
        prefix.push(0);
        let mut out = BTreeMap::new();
        for item in self.active.scan_prefix(&prefix) {
            let (_, v) = item?;
            let id = u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8]));
            if let Some(a) = self.get(id)? {
                out.insert(a.alert_type, a);
            }
        }
        Ok(out)
    }

    /// Mark resolved: no longer active for its (monitor, type).
    pub fn clear_active(&self, monitor: &MonitorKey, t: AlertType) -> Result<()> {
        self.active.remove(active_key(monitor, t))?;
        Ok(())
    }

    /// Every active alert.
    pub fn all_active(&self) -> Result<Vec<Alert>> {
        let mut out = Vec::new();
        for item in self.active.iter().values() {
            let v = item?;
            let id = u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8]));
            if let Some(a) = self.get(id)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Alerts newest first, filtered by `keep`.
    pub fn list(&self, mut keep: impl FnMut(&Alert) -> bool) -> Result<Vec<Alert>> {
        let mut out = Vec::new();
        for item in self.alerts.iter().rev() {
            let (_, v) = item?;
            let a: Alert = serde_json::from_slice(&v)?;
            if keep(&a) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Delete resolved alerts resolved before `cutoff`, with their
    /// deliveries. Active alerts are never pruned. Returns how many went.
    pub fn prune_resolved(&self, cutoff: OffsetDateTime) -> Result<usize> {
        let mut gone = Vec::new();
        for item in self.alerts.iter() {
            let (k, v) = item?;
            let a: Alert = serde_json::from_slice(&v)?;
            if a.status == super::AlertStatus::Resolved && a.resolved_at.is_some_and(|t| t < cutoff)
            {
                gone.push(k);
            }
        }
        for k in &gone {
            self.alerts.remove(k)?;
            let mut batch = sled::Batch::default();
            for d in self.deliveries.scan_prefix(k).keys() {
                batch.remove(d?);
            }
            self.deliveries.apply_batch(batch)?;
        }
        if !gone.is_empty() {
            // Hourly at most, and only when something went.
            *self.lock_failed() = self.count_failed()?;
        }
        Ok(gone.len())
    }

    pub fn record_delivery(&self, id: u64, d: &Delivery) -> Result<()> {
        let seq = self.db.generate_id()?;
        let mut k = id.to_be_bytes().to_vec();
        k.extend_from_slice(&seq.to_be_bytes());
        self.deliveries.insert(k, serde_json::to_vec(d)?)?;
        self.lock_failed().add(id, d);
        Ok(())
    }

    /// Deliveries of one alert, oldest first.
    pub fn deliveries(&self, id: u64) -> Result<Vec<Delivery>> {
        let mut out = Vec::new();
        for item in self.deliveries.scan_prefix(id.to_be_bytes()) {
            let (_, v) = item?;
            out.push(serde_json::from_slice(&v)?);
        }
        Ok(out)
    }

    /// Failed deliveries (after retries) over every alert: their count and
    /// the most recent, with its alert id. From memory: no disk access.
    pub fn failed_deliveries(&self) -> (u64, Option<(String, Delivery)>) {
        let c = self.lock_failed().clone();
        (c.n, c.last)
    }
}
