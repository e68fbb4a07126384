//! What containers did, kept in sled: transitions and per-minute usage rollups.
//!
//! Layout (one tree each, keyed by container *name*, which survives a compose
//! recreate where the id does not):
//! - `container_transitions`: `name \0 at_micros(BE u64) seq(BE u32)` -> [`Transition`] (JSON)
//! - `container_usage`: `name \0 minute(BE u64)` -> samples(u32) cpu_sum(f64) mem_sum(f64)
//! - `pod_transitions`: `namespace/pod \0 at_micros(BE u64) seq(BE u32)` -> a pod's
//!   transition (JSON), so `get_container` on a pod keeps its history across a restart
//!
//! `get_top_consumers` for `1h`/`24h` averages the minute buckets in range;
//! buckets older than [`USAGE_KEEP`] and transitions beyond [`TRANSITIONS_KEPT`]
//! per container are pruned.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use time::OffsetDateTime;

use super::Transition;
use crate::store::{Result, Store};

/// Minute buckets older than this are pruned (24h answers need 24h).
pub const USAGE_KEEP: time::Duration = time::Duration::hours(25);
/// Transitions kept per container.
pub const TRANSITIONS_KEPT: usize = 500;

#[derive(Clone)]
pub struct History {
    transitions: sled::Tree,
    usage: sled::Tree,
    pod_transitions: sled::Tree,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn key(name: &str, n: u64, seq: Option<u32>) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&n.to_be_bytes());
    if let Some(s) = seq {
        k.extend_from_slice(&s.to_be_bytes());
    }
    k
}

fn prefix(name: &str) -> Vec<u8> {
    let mut k = name.as_bytes().to_vec();
    k.push(0);
    k
}

fn micros(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(0)
}

fn minute(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp() / 60).unwrap_or(0)
}

/// Average usage of one container over a period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsageAverage {
    pub samples: u64,
    pub cpu_percent: f64,
    pub memory_bytes: f64,
}

impl History {
    pub fn open(store: &Store) -> Result<History> {
        Ok(History {
            transitions: store.tree("container_transitions")?,
            usage: store.tree("container_usage")?,
            pod_transitions: store.tree("pod_transitions")?,
        })
    }

    /// Keep one transition of a pod (`namespace/name`), and at most `keep`
    /// of it. Generic so this module needs nothing of the pod model.
    pub fn record_pod<T: serde::Serialize>(
        &self,
        pod: &str,
        at: OffsetDateTime,
        t: &T,
        keep: usize,
    ) -> Result<()> {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        self.pod_transitions
            .insert(key(pod, micros(at), Some(seq)), serde_json::to_vec(t)?)?;
        let old: Vec<sled::IVec> = self
            .pod_transitions
            .scan_prefix(prefix(pod))
            .rev()
            .skip(keep)
            .filter_map(|r| r.ok().map(|(k, _)| k))
            .collect();
        for k in old {
            self.pod_transitions.remove(k)?;
        }
        Ok(())
    }

    /// A pod's newest `limit` transitions, oldest first. One that no longer
    /// parses (written by another version) is skipped, not an error.
    pub fn pod_transitions<T: serde::de::DeserializeOwned>(
        &self,
        pod: &str,
        limit: usize,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for r in self
            .pod_transitions
            .scan_prefix(prefix(pod))
            .rev()
            .take(limit)
        {
            let (_, v) = r?;
            if let Ok(t) = serde_json::from_slice(&v) {
                out.push(t);
            }
        }
        out.reverse();
        Ok(out)
    }

    pub fn record(&self, t: &Transition) -> Result<()> {
        // The sequence keeps two events of the same microsecond apart.
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        self.transitions.insert(
            key(&t.container, micros(t.at), Some(seq)),
            serde_json::to_vec(t)?,
        )?;
        // Keep the newest TRANSITIONS_KEPT of this container.
        let old: Vec<sled::IVec> = self
            .transitions
            .scan_prefix(prefix(&t.container))
            .rev()
            .skip(TRANSITIONS_KEPT)
            .filter_map(|r| r.ok().map(|(k, _)| k))
            .collect();
        for k in old {
            self.transitions.remove(k)?;
        }
        Ok(())
    }

    /// The newest `limit` transitions of a container, newest first.
    pub fn transitions(&self, name: &str, limit: usize) -> Result<Vec<Transition>> {
        let mut out = Vec::new();
        for r in self.transitions.scan_prefix(prefix(name)).rev().take(limit) {
            let (_, v) = r?;
            out.push(serde_json::from_slice(&v)?);
        }
        Ok(out)
    }

    /// Add one sample to its minute bucket. Called from the single sampler task.
    pub fn add_usage(
        &self,
        name: &str,
        at: OffsetDateTime,
        cpu_percent: f64,
        memory_bytes: u64,
    ) -> Result<()> {
        let k = key(name, minute(at), None);
        let (mut n, mut cpu, mut mem) = self
            .usage
            .get(&k)?
            .map_or((0, 0.0, 0.0), |v| decode_usage(&v));
        n += 1;
        cpu += cpu_percent;
        mem += memory_bytes as f64;
        self.usage.insert(k, encode_usage(n, cpu, mem).to_vec())?;
        Ok(())
    }

    /// Average usage per container name over buckets at or after `since`.
    pub fn averages(&self, since: OffsetDateTime) -> Result<BTreeMap<String, UsageAverage>> {
        let from = minute(since);
        let mut sums: BTreeMap<String, (u64, f64, f64)> = BTreeMap::new();
        for r in self.usage.iter() {
            let (k, v) = r?;
            let Some(split) = k.iter().position(|b| *b == 0) else {
                continue;
            };
            let Ok(bucket) = <[u8; 8]>::try_from(&k[split + 1..]) else {
                continue;
            };
            if u64::from_be_bytes(bucket) < from {
                continue;
            }
            let name = String::from_utf8_lossy(&k[..split]).into_owned();
            let (n, cpu, mem) = decode_usage(&v);
            let e = sums.entry(name).or_default();
            e.0 += u64::from(n);
            e.1 += cpu;
            e.2 += mem;
        }
        Ok(sums
            .into_iter()
            .filter(|(_, (n, _, _))| *n > 0)
            .map(|(name, (n, cpu, mem))| {
                (
                    name,
                    UsageAverage {
                        samples: n,
                        cpu_percent: cpu / n as f64,
                        memory_bytes: mem / n as f64,
                    },
                )
            })
            .collect())
    }

    /// Drop usage buckets older than `before`; returns how many.
    pub fn prune_usage(&self, before: OffsetDateTime) -> Result<usize> {
        let limit = minute(before);
        let mut old = Vec::new();
        for r in self.usage.iter() {
            let (k, _) = r?;
            let Some(split) = k.iter().position(|b| *b == 0) else {
                continue;
            };
            if let Ok(b) = <[u8; 8]>::try_from(&k[split + 1..])
                && u64::from_be_bytes(b) < limit
            {
                old.push(k);
            }
        }
        for k in &old {
            self.usage.remove(k)?;
        }
        Ok(old.len())
    }
}

fn encode_usage(n: u32, cpu: f64, mem: f64) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[0..4].copy_from_slice(&n.to_le_bytes());
    b[4..12].copy_from_slice(&cpu.to_le_bytes());
    b[12..20].copy_from_slice(&mem.to_le_bytes());
    b
}

fn decode_usage(b: &[u8]) -> (u32, f64, f64) {
    if b.len() != 20 {
        return (0, 0.0, 0.0);
    }
    (
        u32::from_le_bytes(b[0..4].try_into().expect("4 bytes")),
        f64::from_le_bytes(b[4..12].try_into().expect("8 bytes")),
        f64::from_le_bytes(b[12..20].try_into().expect("8 bytes")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, at: OffsetDateTime, event: &str) -> Transition {
        Transition {
            at,
            container: name.into(),
            container_id: "abc".into(),
            event: event.into(),
            state: None,
            exit_code: None,
            health: None,
            reason: None,
        }
    }

    #[test]
    fn transitions_newest_first_per_container_and_usage_averages_by_window() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let h = History::open(&store).unwrap();
        let now = OffsetDateTime::now_utc();
        h.record(&t("web", now - time::Duration::seconds(2), "start"))
            .unwrap();
        h.record(&t("web", now, "die")).unwrap();
        h.record(&t("web-2", now, "start")).unwrap();
        let got = h.transitions("web", 10).unwrap();
        assert_eq!(
            got.iter().map(|t| t.event.as_str()).collect::<Vec<_>>(),
            ["die", "start"],
            "newest first, and web-2 is not web's"
        );

        // Two hours ago: only in the 24h window.
        let old = now - time::Duration::hours(2);
        h.add_usage("web", old, 90.0, 1000).unwrap();
        h.add_usage("web", now, 10.0, 100).unwrap();
        h.add_usage("web", now, 30.0, 300).unwrap();
        let hour = h.averages(now - time::Duration::hours(1)).unwrap();
        assert_eq!(hour["web"].samples, 2);
        assert_eq!(hour["web"].cpu_percent, 20.0);
        assert_eq!(hour["web"].memory_bytes, 200.0);
        let day = h.averages(now - time::Duration::hours(24)).unwrap();
        assert_eq!(day["web"].samples, 3);
        assert!((day["web"].cpu_percent - 130.0 / 3.0).abs() < 1e-9);
        assert_eq!(h.prune_usage(now - time::Duration::hours(1)).unwrap(), 1);
        assert_eq!(
            h.averages(now - time::Duration::hours(24)).unwrap()["web"].samples,
            2
        );
    }
}
