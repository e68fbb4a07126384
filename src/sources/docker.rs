//! Docker labels as a source: the monitors declared by the labels of running
//! containers, sent as whole sets to the desired state (like the file source).
//!
//! Monitors follow their container: declared while it runs, and kept for a
//! grace period after it stops or disappears, so a `docker compose up`
//! recreate (remove, create, start under the same name) does not remove and
//! re-add them. Containers are keyed by name for that reason. While the
//! engine is disconnected the runtime keeps the last known containers and the
//! grace is held, so an engine restart (which stops containers, then
//! restarts those with a restart policy) does not drop monitors either.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::labels::{self, LabelProblem};
use crate::desired::{SourceError, SourceKind, SourceStatus, SourceUpdate};
use crate::monitor::{DeclaredMonitor, MonitorSpec, Origin};
use crate::runtime::{ContainerSet, Runtimes, docker::RUNTIME};

/// Bad labels by container name, for `get_container` (and `get_health` via the source status).
pub type LabelProblems = Arc<RwLock<BTreeMap<String, Vec<LabelProblem>>>>;

pub struct DockerLabelSource {
    pub runtimes: Runtimes,
    pub grace: Duration,
    /// The Docker endpoint, shown as the source's location.
    pub location: String,
    pub problems: LabelProblems,
}

/// The monitors of one running container, with its label problems.
fn declare(
    name: &str,
    labels: &BTreeMap<String, String>,
) -> (Vec<DeclaredMonitor>, Vec<LabelProblem>) {
    let parsed = labels::parse(name, labels);
    // Certificates (`parsed.certificates`) and heartbeats (`parsed.heartbeats`)
    // are parsed and validated here; they become DeclaredMonitors once their
    // MonitorKind exists (map them beside the endpoints below).
    let monitors = parsed
        .endpoints
        .into_iter()
        .map(|e| DeclaredMonitor {
            spec: MonitorSpec::Endpoint(e.spec),
            origin: Origin::Docker {
                container: name.to_owned(),
                label: e.label,
            },
        })
        .collect();
    (monitors, parsed.problems)
}

impl DockerLabelSource {
    pub async fn run(self, updates: mpsc::Sender<SourceUpdate>) {
        let mut rx = self.runtimes.subscribe();
        let mut status = SourceStatus {
            kind: SourceKind::Docker,
            location: self.location.clone(),
            generation: 0,
            loaded_at: None,
            monitors: 0,
            last_error: None,
        };
        let mut live: BTreeMap<String, Vec<DeclaredMonitor>> = BTreeMap::new();
        // Containers that stopped or went away: when, and what they declared.
        let mut gone: BTreeMap<String, (Instant, Vec<DeclaredMonitor>)> = BTreeMap::new();
        let mut published: Option<Vec<DeclaredMonitor>> = None;
        let mut published_problems: BTreeMap<String, Vec<LabelProblem>> = BTreeMap::new();
        loop {
            let set: Arc<ContainerSet> = rx.borrow_and_update().clone();
            let now = Instant::now();
            let mut next_live = BTreeMap::new();
            let mut problems = BTreeMap::new();
            for c in set
                .values()
                .filter(|c| c.runtime == RUNTIME && c.is_running())
            {
                let (monitors, p) = declare(&c.name, &c.labels);
                if !p.is_empty() {
                    problems.insert(c.name.clone(), p);
                }
                next_live.insert(c.name.clone(), monitors);
            }
            for (name, monitors) in std::mem::take(&mut live) {
                if !next_live.contains_key(&name) {
                    gone.entry(name).or_insert((now, monitors));
                }
            }
            // While the engine is away nobody can tell a stopped container
            // from one the engine will restart: the grace waits for it.
            let connected = self
                .runtimes
                .statuses()
                .iter()
                .any(|s| s.name == RUNTIME && s.connected);
            if !connected {
                for (at, _) in gone.values_mut() {
                    *at = now;
                }
            }
            gone.retain(|name, (at, _)| !next_live.contains_key(name) && now - *at < self.grace);
            live = next_live;

            let mut declared: Vec<DeclaredMonitor> = live
                .values()
                .chain(gone.values().map(|(_, m)| m))
                .flatten()
                .cloned()
                .collect();
            declared.sort_by_key(DeclaredMonitor::key);
            let changed = published.as_ref() != Some(&declared);
            let problems_changed = problems != published_problems;
            if changed || problems_changed {
                if changed {
                    status.generation += 1;
                    status.loaded_at = Some(OffsetDateTime::now_utc());
                    status.monitors = declared.len();
                }
                status.last_error = source_error(&problems);
                *self.problems.write().expect("label problems lock") = problems.clone();
                let update = SourceUpdate {
                    status: status.clone(),
                    monitors: changed.then(|| Arc::new(declared.clone())),
                };
                if changed {
                    tracing::info!(
                        monitors = declared.len(),
                        generation = status.generation,
                        lingering = gone.len(),
                        "docker labels declare"
                    );
                }
                if updates.send(update).await.is_err() {
                    return;
                }
                published = Some(declared);
                published_problems = problems;
            }

            let next_expiry = gone.values().map(|(at, _)| *at + self.grace).min();
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = async {
                    match next_expiry {
                        Some(t) => tokio::time::sleep_until(t.into()).await,
                        None => std::future::pending().await,
                    }
                } => {}
                _ = updates.closed() => return,
            }
        }
    }
}

fn source_error(problems: &BTreeMap<String, Vec<LabelProblem>>) -> Option<SourceError> {
    if problems.is_empty() {
        return None;
    }
    let list: Vec<String> = problems
        .iter()
        .flat_map(|(c, ps)| {
            ps.iter()
                .map(move |p| format!("container {c}: label {}: {}", p.label, p.message))
        })
        .collect();
    Some(SourceError {
        at: OffsetDateTime::now_utc(),
        message: format!(
            "{} bad label(s): the monitors they declare are skipped, the others run",
            list.len()
        ),
        problems: list,
    })
}
