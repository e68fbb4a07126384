//! The reconciler: the only place that starts, stops or restarts check tasks.
//!
//! Like a Kubernetes controller it is level-triggered: each pass compares the
//! whole desired state with the running tasks by monitor key and spec hash,
//! starts what is missing, stops what is no longer declared, restarts what
//! changed, and leaves everything else alone (same task, same history).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::checks::{self, CheckContext, Scheduler};
use crate::desired::DesiredState;
use crate::monitor::{MonitorKey, MonitorSpec};

/// When one pass starts at least this many tasks, their first checks are
/// spread over their interval so 10k monitors declared at once do not fire
/// at once. Fewer new tasks check right away (a person who just added a
/// monitor wants to see it checked).
const SPREAD_THRESHOLD: usize = 20;

/// What the last pass did, for `get_health`.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct ReconcileStatus {
    /// The desired-state generation the running tasks match.
    pub generation: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub applied_at: Option<OffsetDateTime>,
    /// Passes since the process started.
    pub passes: u64,
    pub last_pass: PassReport,
    /// Check tasks running now.
    pub running: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PassReport {
    pub started: usize,
    pub stopped: usize,
    pub restarted: usize,
    pub unchanged: usize,
    /// Wall time of the pass, in milliseconds.
    pub duration_ms: f64,
}

/// What is running, by key. Sorted like the desired state, so a pass is one
/// walk over both. Shared (read-only outside this module) so `get_health`
/// can compute drift between desired and observed.
pub type RunningIndex = Arc<RwLock<BTreeMap<MonitorKey, Running>>>;

/// One running monitor: its task id (in the observed state too) and the hash
/// of the spec it runs.
pub struct Running {
    pub task_id: u64,
    pub spec_hash: u64,
    /// Held to the target policy (decided by the origin, which the spec
    /// hash does not cover: a monitor moved from a label to the file
    /// restarts).
    restricted: bool,
    /// Heartbeats are tasks; endpoints and certificates are queued in the
    /// scheduler under `task_id`.
    heartbeat: Option<JoinHandle<()>>,
}

pub struct Reconciler {
    ctx: Arc<CheckContext>,
    scheduler: Scheduler,
    running: RunningIndex,
    next_task_id: u64,
    status: Arc<RwLock<ReconcileStatus>>,
}

impl Reconciler {
    /// Create the reconciler and start its check scheduler (in the current
    /// tokio runtime).
    pub fn new(ctx: CheckContext) -> Self {
        let ctx = Arc::new(ctx);
        Reconciler {
            scheduler: Scheduler::start(ctx.clone()),
            ctx,
            running: Arc::default(),
            next_task_id: 1,
            status: Arc::default(),
        }
    }

    pub fn status(&self) -> Arc<RwLock<ReconcileStatus>> {
        self.status.clone()
    }

    pub fn index(&self) -> RunningIndex {
        self.running.clone()
    }

    /// One reconcile pass. Idempotent: applying the same state twice changes nothing.
    pub fn apply(&mut self, desired: &DesiredState) -> PassReport {
        let began = std::time::Instant::now();
        let mut report = PassReport::default();
        // Held for the pass: `get_health` sees the running set before or
        // after it, never half-applied.
        let mut running_map = self.running.write().expect("running index lock");

        // One merge walk over the two sorted maps: what runs but is no longer
        // declared, and what is declared but not running with its spec hash.
        let mut gone: Vec<MonitorKey> = Vec::new();
        let mut to_start: Vec<&MonitorKey> = Vec::new();
        {
            let mut running = running_map.iter().peekable();
            for (k, d) in desired.monitors.iter() {
                while let Some((rk, _)) = running.next_if(|(rk, _)| *rk < k) {
                    gone.push(rk.clone());
                }
                match running.next_if(|(rk, _)| *rk == k) {
                    Some((_, r))
                        if r.spec_hash == d.spec_hash
                            && r.restricted == self.restricted(&d.origin) => {}
                    _ => to_start.push(k),
                }
            }
            gone.extend(running.map(|(rk, _)| rk.clone()));
        }
        for key in &gone {
            let key = key.clone();
            if let Some(r) = running_map.remove(&key) {
                self.stop(r);
            }
            self.ctx.observed.remove(&key);
            if let Err(e) = self.ctx.store.forget_state(&key) {
                tracing::warn!(monitor = %key, error = %e, "could not forget the state of a removed monitor");
            }
            // Alerts of a monitor that is gone would never resolve otherwise.
            self.ctx.signals.send(crate::alerts::Signal {
                monitor: key.clone(),
                group: None,
                alert: None,
                at: OffsetDateTime::now_utc(),
                event: crate::alerts::Event::Removed,
            });
            tracing::info!(monitor = %key, "stopped: no longer declared");
            report.stopped += 1;
        }

        report.unchanged = desired.monitors.len() - to_start.len();
        let spread = to_start.len() >= SPREAD_THRESHOLD;

        for key in to_start {
            let d = &desired.monitors[key];
            let restarted = match running_map.remove(key) {
                Some(old) => {
                    self.stop(old);
                    true
                }
                None => false,
            };
            let state = match self.ctx.observed.get(key) {
                Some(o) => o.state,
                None => self
                    .ctx
                    .store
                    .load_state(key)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            };
            let task_id = self.next_task_id;
            self.next_task_id += 1;
            self.ctx
                .observed
                .task_started(key, state, task_id, d.generation);
            let delay = if spread {
                spread_delay(key, d.spec.interval())
            } else {
                std::time::Duration::ZERO
            };
            let restricted = self.restricted(&d.origin);
            let heartbeat = match &*d.spec {
                MonitorSpec::Heartbeat(h) => {
                    Some(checks::spawn_heartbeat(key.clone(), h, &self.ctx))
                }
                _ => {
                    self.scheduler.schedule(
                        task_id,
                        key.clone(),
                        d.spec.clone(),
                        restricted,
                        delay,
                    );
                    None
                }
            };
            running_map.insert(
                key.clone(),
                Running {
                    task_id,
                    spec_hash: d.spec_hash,
                    restricted,
                    heartbeat,
                },
            );
            if restarted {
                tracing::info!(monitor = %key, task_id, "restarted: spec changed");
                report.restarted += 1;
            } else {
                tracing::debug!(monitor = %key, task_id, "started");
                report.started += 1;
            }
        }

        report.duration_ms = began.elapsed().as_secs_f64() * 1000.0;
        let mut st = self.status.write().expect("reconcile status lock");
        st.generation = desired.generation;
        st.applied_at = Some(OffsetDateTime::now_utc());
        st.passes += 1;
        st.running = running_map.len();
        st.last_pass = report.clone();
        report
    }

    /// Apply every desired state published, until the sender goes away; then
    /// stop every task.
    pub async fn run(mut self, mut desired: watch::Receiver<Arc<DesiredState>>) {
        loop {
            let state = desired.borrow_and_update().clone();
            let report = self.apply(&state);
            if report.started + report.stopped + report.restarted > 0 {
                tracing::info!(
                    generation = state.generation,
                    started = report.started,
                    stopped = report.stopped,
                    restarted = report.restarted,
                    unchanged = report.unchanged,
                    ms = report.duration_ms,
                    "reconciled"
                );
            }
            // Off the reconcile loop: the walk over free chunks is short but
            // not async.
            tokio::task::spawn_blocking(crate::memory::release_free_pages);
            if desired.changed().await.is_err() {
                break;
            }
        }
        let all = std::mem::take(&mut *self.running.write().expect("running index lock"));
        for (_, r) in all {
            self.stop(r);
        }
    }

    /// Whether checks of a monitor declared there are held to the target policy.
    fn restricted(&self, origin: &crate::monitor::Origin) -> bool {
        self.ctx.clients.policy().applies_to(origin)
    }

    /// Stop a monitor: a queued check is removed, a check in flight aborted
    /// at its next await point; a heartbeat's task is aborted and its drop
    /// guard (the registration) runs.
    fn stop(&self, r: Running) {
        match r.heartbeat {
            Some(task) => task.abort(),
            None => self.scheduler.cancel(r.task_id),
        }
    }
}

/// A stable delay in `[0, interval)` derived from the key, so restarts of the
/// process spread the same way.
fn spread_delay(key: &MonitorKey, interval: std::time::Duration) -> std::time::Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let ms = interval.as_millis().max(1) as u64;
    std::time::Duration::from_millis(h.finish() % ms)
}
