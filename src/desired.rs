//! The desired state: every source's latest declared set, merged into one
//! keyed set with a generation number. Sources push whole sets (never diffs),
//! so a merge is level-triggered and a missed update heals at the next one.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use crate::monitor::{DeclaredMonitor, MonitorKey, MonitorSpec, Origin};

/// Which source a declared set came from. Declaration order is precedence:
/// when two sources declare the same monitor, the earlier variant wins: the
/// monitors file beats a Docker label (the file is what an operator reviewed
/// in git; a label is whatever an image or compose file carries). The loser
/// is listed in `conflicts` (and so in `get_health`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    File,
    Docker,
    /// `Monitor` custom resources (see `sources::kubernetes`).
    Kubernetes,
    /// Pod annotations (`maintenant.*`, see `sources::docker::Flavor::Pods`).
    KubernetesAnnotations,
}

/// How a source is doing, as `get_health` reports it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SourceStatus {
    pub kind: SourceKind,
    /// The file or directory (or endpoint) read.
    pub location: String,
    /// Count of successful loads that changed what this source declares.
    pub generation: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub loaded_at: Option<OffsetDateTime>,
    /// Monitors the source declares now.
    pub monitors: usize,
    /// The last load's problems. While set, the previous good declaration keeps running.
    pub last_error: Option<SourceError>,
    /// Something to look at in the last load that changed the set, though it
    /// was valid and applied (e.g. it stopped most of this source's
    /// monitors). Kept until the next load that changes the set.
    pub warning: Option<SourceWarning>,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SourceWarning {
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    /// E.g. `the last reload stopped 95 of 102 monitors`.
    pub message: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SourceError {
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    pub message: String,
    /// Located problems (`file:line:col: message`), when the source is a file.
    pub problems: Vec<String>,
}

/// One source's full declared set, replacing its previous one.
#[derive(Debug, Clone)]
pub struct SourceUpdate {
    pub status: SourceStatus,
    /// `None` when the update only reports status (e.g. an invalid reload):
    /// the source's previous set stays.
    pub monitors: Option<Arc<Vec<DeclaredMonitor>>>,
}

/// One monitor of the desired state.
#[derive(Debug, Clone)]
pub struct DesiredMonitor {
    pub spec: Arc<MonitorSpec>,
    pub origin: Origin,
    pub source: SourceKind,
    pub spec_hash: u64,
    /// The desired-state generation in which this monitor's spec last changed.
    pub generation: u64,
}

/// Two sources declared the same monitor; the one with precedence won.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Conflict {
    pub monitor: String,
    pub kept: String,
    pub ignored: String,
}

#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    pub generation: u64,
    /// Shared, so publishing a state or a status-only change copies nothing.
    pub monitors: Arc<BTreeMap<MonitorKey, DesiredMonitor>>,
    pub sources: Vec<SourceStatus>,
    pub conflicts: Vec<Conflict>,
}

/// Merges source updates into the desired state and publishes it.
pub struct DesiredStore {
    by_source: BTreeMap<SourceKind, (SourceStatus, Arc<Vec<DeclaredMonitor>>)>,
    current: DesiredState,
}

impl DesiredStore {
    pub fn new() -> Self {
        DesiredStore {
            by_source: BTreeMap::new(),
            current: DesiredState::default(),
        }
    }

    /// Apply one source update; returns the new desired state.
    pub fn apply(&mut self, update: SourceUpdate) -> &DesiredState {
        let kind = update.status.kind;
        let entry = self
            .by_source
            .entry(kind)
            .or_insert_with(|| (update.status.clone(), Arc::default()));
        entry.0 = update.status;
        if let Some(monitors) = update.monitors {
            entry.1 = monitors;
        }

        // Every declaration, sorted by key and then by source precedence
        // (`by_source` iterates in precedence order and the sort is stable):
        // the first of a run of equal keys wins, the others are conflicts.
        let mut all: Vec<(MonitorKey, SourceKind, &DeclaredMonitor)> = self
            .by_source
            .iter()
            .flat_map(|(source, (_, monitors))| monitors.iter().map(|m| (m.key(), *source, m)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let mut conflicts = Vec::new();
        let mut merged: Vec<(MonitorKey, SourceKind, &DeclaredMonitor)> =
            Vec::with_capacity(all.len());
        for (key, source, m) in all {
            match merged.last() {
                Some((kept_key, _, kept)) if *kept_key == key => conflicts.push(Conflict {
                    monitor: key.id(),
                    kept: kept.origin.to_string(),
                    ignored: m.origin.to_string(),
                }),
                _ => merged.push((key, source, m)),
            }
        }

        // Walk the sorted declarations beside the current (sorted) map: no
        // lookups, and an unchanged monitor keeps its entry (and generation).
        let next_gen = self.current.generation + 1;
        let mut any_change = merged.len() != self.current.monitors.len();
        let mut previous = self.current.monitors.iter().peekable();
        let mut next: Vec<(MonitorKey, DesiredMonitor)> = Vec::with_capacity(merged.len());
        for (key, source, m) in merged {
            while previous.next_if(|(k, _)| **k < key).is_some() {
                any_change = true; // no longer declared
            }
            let kept = previous
                .next_if(|(k, _)| **k == key)
                .map(|(_, p)| p)
                .filter(|p| {
                    // Comparing specs is cheaper than hashing them: hash only what changed.
                    (Arc::ptr_eq(&p.spec, &m.spec) || p.spec == m.spec)
                        && p.origin == m.origin
                        && p.source == source
                });
            let entry = match kept {
                Some(p) => p.clone(),
                None => {
                    any_change = true;
                    DesiredMonitor {
                        spec: m.spec.clone(),
                        origin: m.origin.clone(),
                        source,
                        spec_hash: m.spec.spec_hash(),
                        generation: next_gen,
                    }
                }
            };
            next.push((key, entry));
        }
        any_change |= previous.next().is_some();
        // Built from sorted input: a bulk build, not 10k inserts.
        let monitors: BTreeMap<MonitorKey, DesiredMonitor> = next.into_iter().collect();

        if any_change {
            self.current.generation = next_gen;
            self.current.monitors = Arc::new(monitors);
        }
        self.current.sources = self.by_source.values().map(|(s, _)| s.clone()).collect();
        self.current.conflicts = conflicts;
        &self.current
    }
}

impl Default for DesiredStore {
    fn default() -> Self {
        Self::new()
    }
}

/// Run the merge loop: read source updates, publish each resulting desired state.
pub async fn run(
    mut updates: mpsc::Receiver<SourceUpdate>,
    publish: watch::Sender<Arc<DesiredState>>,
) {
    let mut store = DesiredStore::new();
    while let Some(update) = updates.recv().await {
        let state = Arc::new(store.apply(update).clone());
        publish.send_replace(state);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::model::{EndpointSpec, HttpMethod, StatusPattern, Target};
    use crate::duration::Duration;

    pub(crate) fn endpoint(name: &str, url: &str) -> DeclaredMonitor {
        DeclaredMonitor {
            spec: Arc::new(MonitorSpec::Endpoint(EndpointSpec {
                name: name.into(),
                group: None,
                target: Target::Http { url: url.into() },
                method: HttpMethod::Get,
                headers: Default::default(),
                body: None,
                expected_status: vec![StatusPattern { min: 200, max: 299 }],
                conditions: vec![],
                tls_verify: true,
                max_redirects: 10,
                interval: Duration::from_secs(30),
                timeout: Duration::from_secs(10),
                failure_threshold: 3,
                recovery_threshold: 2,
                alert: None,
            })),
            origin: Origin::File {
                path: std::path::Path::new("m.yaml").into(),
                line: 1,
            },
        }
    }

    fn update(monitors: Option<Vec<DeclaredMonitor>>) -> SourceUpdate {
        let monitors = monitors.map(Arc::new);
        SourceUpdate {
            status: SourceStatus {
                kind: SourceKind::File,
                location: "m.yaml".into(),
                generation: 1,
                loaded_at: None,
                monitors: monitors.as_ref().map_or(0, |m| m.len()),
                last_error: None,
                warning: None,
            },
            monitors,
        }
    }

    #[test]
    fn generation_moves_only_when_the_set_changes() {
        let mut s = DesiredStore::new();
        let g1 = s
            .apply(update(Some(vec![
                endpoint("a", "http://x"),
                endpoint("b", "http://y"),
            ])))
            .generation;
        assert_eq!(g1, 1);
        let same = s
            .apply(update(Some(vec![
                endpoint("a", "http://x"),
                endpoint("b", "http://y"),
            ])))
            .generation;
        assert_eq!(same, 1, "an identical set is not a new generation");
        let status_only = s.apply(update(None));
        assert_eq!(status_only.generation, 1);
        assert_eq!(
            status_only.monitors.len(),
            2,
            "a status-only update keeps the set"
        );
        let st = s.apply(update(Some(vec![
            endpoint("a", "http://x"),
            endpoint("b", "http://changed"),
        ])));
        assert_eq!(st.generation, 2);
        assert_eq!(
            st.monitors[&MonitorKey::endpoint("a")].generation,
            1,
            "unchanged keeps its generation"
        );
        assert_eq!(st.monitors[&MonitorKey::endpoint("b")].generation, 2);
        let removed = s.apply(update(Some(vec![endpoint("a", "http://x")])));
        assert_eq!(removed.generation, 3);
        assert_eq!(removed.monitors.len(), 1);
    }
}
