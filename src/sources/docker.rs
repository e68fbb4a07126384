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
//!
//! The same source reads Kubernetes pods' annotations ([`Flavor::Pods`]):
//! the same keys and parser, one declaring unit per workload (every replica
//! carries the same annotations, so they declare once, named after
//! `<namespace>.<workload>`), and the grace covers a rollout replacing pods.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::labels::{self, LabelProblem};
use crate::desired::{SourceError, SourceKind, SourceStatus, SourceUpdate};
use crate::monitor::{DeclaredMonitor, DockerOrigin, KubernetesOrigin, Origin};
use crate::runtime::{Container, ContainerSet, Runtimes, docker::RUNTIME};

/// Bad labels by container name, for `get_container` (and `get_health` via the source status).
pub type LabelProblems = Arc<RwLock<BTreeMap<String, Vec<LabelProblem>>>>;

/// Which containers the source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Docker containers' labels.
    Docker,
    /// Kubernetes pods' annotations.
    Pods,
}

impl Flavor {
    fn runtime(self) -> &'static str {
        match self {
            Flavor::Docker => RUNTIME,
            Flavor::Pods => crate::runtime::kubernetes::RUNTIME,
        }
    }

    fn kind(self) -> SourceKind {
        match self {
            Flavor::Docker => SourceKind::Docker,
            Flavor::Pods => SourceKind::KubernetesAnnotations,
        }
    }
}

/// The unit that declares monitors and is kept for the grace: a Docker
/// container's name, or a pod's `<namespace>.<workload>` (the pod's own name
/// when no workload owns it). Also the name simple monitors are given.
pub fn declaring_unit(c: &Container) -> String {
    match &c.pod {
        Some(p) => format!(
            "{}.{}",
            p.namespace,
            p.workload
                .as_ref()
                .map_or(p.name.as_str(), |w| w.name.as_str())
        ),
        None => c.name.clone(),
    }
}

#[derive(Clone)]
pub struct DockerLabelSource {
    pub flavor: Flavor,
    pub runtimes: Runtimes,
    pub grace: Duration,
    /// The Docker endpoint, shown as the source's location.
    pub location: String,
    pub problems: LabelProblems,
}

/// The monitors one pod's annotations declare, origin the pod and annotation key.
fn declare_pod(unit: &str, c: &Container) -> (Vec<DeclaredMonitor>, Vec<LabelProblem>) {
    let (specs, problems) = labels::monitors(labels::parse(unit, &c.labels));
    let pod = c.pod.as_ref();
    let monitors = specs
        .into_iter()
        .map(|(spec, annotation)| DeclaredMonitor {
            spec: spec.into(),
            origin: Origin::Kubernetes(Box::new(KubernetesOrigin {
                kind: "Pod".into(),
                namespace: pod.map(|p| p.namespace.clone()).unwrap_or_default(),
                name: pod.map(|p| p.name.clone()).unwrap_or_default(),
                generation: None,
                annotation: Some(annotation),
            })),
        })
        .collect();
    (monitors, problems)
}

/// The monitors of one running container, with its label problems.
fn declare(
    name: &str,
    labels: &BTreeMap<String, String>,
) -> (Vec<DeclaredMonitor>, Vec<LabelProblem>) {
    let (specs, problems) = labels::monitors(labels::parse(name, labels));
    let monitors = specs
        .into_iter()
        .map(|(spec, label)| DeclaredMonitor {
            spec: spec.into(),
            origin: Origin::Docker(Box::new(DockerOrigin {
                container: name.to_owned(),
                label,
            })),
        })
        .collect();
    (monitors, problems)
}

impl DockerLabelSource {
    pub async fn run(self, updates: mpsc::Sender<SourceUpdate>) {
        let mut rx = self.runtimes.subscribe();
        let mut status = SourceStatus {
            kind: self.flavor.kind(),
            location: self.location.clone(),
            generation: 0,
            loaded_at: None,
            monitors: 0,
            last_error: None,
            warning: None,
        };
        // What each running container declares, and its label problems.
        type Declared = (Vec<DeclaredMonitor>, Vec<LabelProblem>);
        let mut live: BTreeMap<String, Declared> = BTreeMap::new();
        // Containers that stopped or went away: since when, and what they declared.
        let mut gone: BTreeMap<String, (Instant, Declared)> = BTreeMap::new();
        let mut published: Option<Vec<DeclaredMonitor>> = None;
        let mut published_problems: BTreeMap<String, Vec<LabelProblem>> = BTreeMap::new();
        loop {
            let set: Arc<ContainerSet> = rx.borrow_and_update().clone();
            let now = Instant::now();
            let mut next_live = BTreeMap::new();
            let runtime = self.flavor.runtime();
            for c in set
                .values()
                .filter(|c| c.runtime == runtime && c.is_running() && !c.ignored)
            {
                let unit = declaring_unit(c);
                if next_live.contains_key(&unit) {
                    // Another replica of the same workload declared it already.
                    continue;
                }
                let declared = match self.flavor {
                    Flavor::Docker => declare(&c.name, &c.labels),
                    Flavor::Pods => declare_pod(&unit, c),
                };
                next_live.insert(unit, declared);
            }
            for (name, declared) in std::mem::take(&mut live) {
                if !next_live.contains_key(&name) {
                    gone.entry(name).or_insert((now, declared));
                }
            }
            // While the engine is away nobody can tell a stopped container
            // from one the engine will restart: the grace waits for it.
            let connected = self
                .runtimes
                .statuses()
                .iter()
                .any(|s| s.name == runtime && s.connected);
            if !connected {
                for (at, _) in gone.values_mut() {
                    *at = now;
                }
            }
            gone.retain(|name, (at, _)| !next_live.contains_key(name) && now - *at < self.grace);
            live = next_live;

            // Lingering containers keep their problems too, so a recreate
            // changes nothing that is reported.
            let all = || live.iter().chain(gone.iter().map(|(n, (_, d))| (n, d)));
            let problems: BTreeMap<String, Vec<LabelProblem>> = all()
                .filter(|(_, (_, p))| !p.is_empty())
                .map(|(n, (_, p))| (n.clone(), p.clone()))
                .collect();
            let mut declared: Vec<DeclaredMonitor> =
                all().flat_map(|(_, (m, _))| m).cloned().collect();
            declared.sort_by_key(DeclaredMonitor::key);
            let changed = published.as_ref() != Some(&declared);
            let problems_changed = problems != published_problems;
            if changed || problems_changed {
                if changed {
                    status.generation += 1;
                    status.loaded_at = Some(OffsetDateTime::now_utc());
                    status.monitors = declared.len();
                }
                status.last_error = source_error(self.flavor, &problems);
                {
                    // The map is shared with the other flavour: replace only ours.
                    let mut shared = self.problems.write().expect("label problems lock");
                    shared.retain(|k, _| !published_problems.contains_key(k));
                    shared.extend(problems.clone());
                }
                let update = SourceUpdate {
                    status: status.clone(),
                    monitors: changed.then(|| Arc::new(declared.clone())),
                };
                if changed {
                    tracing::info!(
                        monitors = declared.len(),
                        generation = status.generation,
                        lingering = gone.len(),
                        source = ?self.flavor,
                        "labels/annotations declare"
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

fn source_error(
    flavor: Flavor,
    problems: &BTreeMap<String, Vec<LabelProblem>>,
) -> Option<SourceError> {
    if problems.is_empty() {
        return None;
    }
    let (unit, key) = match flavor {
        Flavor::Docker => ("container", "label"),
        Flavor::Pods => ("pods of", "annotation"),
    };
    let list: Vec<String> = problems
        .iter()
        .flat_map(|(c, ps)| {
            ps.iter()
                .map(move |p| format!("{unit} {c}: {key} {}: {}", p.label, p.message))
        })
        .collect();
    Some(SourceError {
        at: OffsetDateTime::now_utc(),
        message: format!(
            "{} bad {key}(s): the monitors they declare are skipped, the others run",
            list.len()
        ),
        problems: list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Container, RuntimeStatus};

    fn web(id: &str, state: &str) -> Container {
        Container {
            id: id.into(),
            name: "web".into(),
            image: "img".into(),
            state: state.into(),
            health: None,
            runtime: RUNTIME.into(),
            group: None,
            restarts: 0,
            started_at: None,
            exit_code: None,
            oom_killed: false,
            finished_at: None,
            compose: None,
            pod: None,
            ignored: false,
            stale: false,
            as_of: None,
            labels: [
                (
                    "maintenant.endpoint.http".to_owned(),
                    "http://127.0.0.1:1/".to_owned(),
                ),
                ("maintenant.endpoint.1.interval".to_owned(), "1s".to_owned()),
            ]
            .into(),
        }
    }

    fn connected(r: &Runtimes, yes: bool) {
        r.set_status(RuntimeStatus {
            name: RUNTIME.into(),
            endpoint: "test".into(),
            connected: yes,
            version: None,
            since: None,
            last_error: None,
            failed_attempts: 0,
            containers: 0,
        });
    }

    async fn next(rx: &mut mpsc::Receiver<SourceUpdate>) -> SourceUpdate {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an update within 5s")
            .expect("the source runs")
    }

    #[tokio::test]
    async fn monitors_follow_the_container_with_a_grace_held_while_disconnected() {
        let runtimes = Runtimes::default();
        connected(&runtimes, true);
        let grace = Duration::from_millis(300);
        let problems = LabelProblems::default();
        let (tx, mut rx) = mpsc::channel(16);
        tokio::spawn(
            DockerLabelSource {
                flavor: Flavor::Docker,
                runtimes: runtimes.clone(),
                grace,
                location: "test".into(),
                problems: problems.clone(),
            }
            .run(tx),
        );
        assert_eq!(next(&mut rx).await.monitors.unwrap().len(), 0);

        runtimes.upsert(web("a", "running"));
        let u = next(&mut rx).await;
        let m = u.monitors.unwrap();
        assert_eq!(m.len(), 1, "the good endpoint");
        assert_eq!(m[0].key().id(), "endpoint/web");
        // The indexed endpoint without a target is reported, on the container and in the status.
        assert_eq!(
            problems.read().unwrap()["web"][0].label,
            "maintenant.endpoint.1.interval"
        );
        assert_eq!(u.status.last_error.unwrap().problems.len(), 1);

        // Recreated under the same name within the grace: nothing is published.
        runtimes.remove(RUNTIME, "a");
        tokio::time::sleep(grace / 3).await;
        runtimes.upsert(web("b", "running"));
        assert!(
            tokio::time::timeout(grace * 2, rx.recv()).await.is_err(),
            "no change published for a recreate"
        );

        // Stopped: kept during the grace, then removed.
        let stopped_at = std::time::Instant::now();
        runtimes.upsert(web("b", "exited"));
        let u = next(&mut rx).await;
        assert!(
            stopped_at.elapsed() >= grace,
            "removed only after the grace"
        );
        assert_eq!(u.monitors.unwrap().len(), 0);

        // Disconnected: a stopped container keeps its monitors past the grace.
        runtimes.upsert(web("b", "running"));
        assert_eq!(next(&mut rx).await.monitors.unwrap().len(), 1);
        connected(&runtimes, false);
        runtimes.upsert(web("b", "exited"));
        assert!(
            tokio::time::timeout(grace * 3, rx.recv()).await.is_err(),
            "held while the engine is away"
        );
        connected(&runtimes, true);
        assert_eq!(
            next(&mut rx).await.monitors.unwrap().len(),
            0,
            "expires once back"
        );
    }
}
