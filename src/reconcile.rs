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

use crate::checks::{self, CheckContext};
use crate::desired::DesiredState;
use crate::monitor::MonitorKey;

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

/// What is running, by key: (task id, spec hash). Shared so `get_health` can
/// compute drift between desired and observed.
pub type RunningIndex = Arc<RwLock<BTreeMap<MonitorKey, (u64, u64)>>>;

struct Running {
    task_id: u64,
    spec_hash: u64,
    handle: JoinHandle<()>,
}

pub struct Reconciler {
    ctx: Arc<CheckContext>,
    /// Sorted like the desired state, so a pass is one walk over both.
    running: BTreeMap<MonitorKey, Running>,
    next_task_id: u64,
    status: Arc<RwLock<ReconcileStatus>>,
    index: RunningIndex,
}

impl Reconciler {
    pub fn new(ctx: CheckContext) -> Self {
        Reconciler {
            ctx: Arc::new(ctx),
            running: BTreeMap::new(),
            next_task_id: 1,
            status: Arc::default(),
            index: Arc::default(),
        }
    }

    pub fn status(&self) -> Arc<RwLock<ReconcileStatus>> {
        self.status.clone()
    }

    pub fn index(&self) -> RunningIndex {
        self.index.clone()
    }

    /// One reconcile pass. Idempotent: applying the same state twice changes nothing.
    pub fn apply(&mut self, desired: &DesiredState) -> PassReport {
        let began = std::time::Instant::now();
        let mut report = PassReport::default();

        // One merge walk over the two sorted maps: what runs but is no longer
        // declared, and what is declared but not running with its spec hash.
        let mut gone: Vec<MonitorKey> = Vec::new();
        let mut to_start: Vec<&MonitorKey> = Vec::new();
        {
            let mut running = self.running.iter().peekable();
            for (k, d) in desired.monitors.iter() {
                while let Some((rk, _)) = running.next_if(|(rk, _)| *rk < k) {
                    gone.push(rk.clone());
                }
                match running.next_if(|(rk, _)| *rk == k) {
                    Some((_, r)) if r.spec_hash == d.spec_hash => {}
                    _ => to_start.push(k),
                }
            }
            gone.extend(running.map(|(rk, _)| rk.clone()));
        }
        for key in &gone {
            let key = key.clone();
            if let Some(r) = self.running.remove(&key) {
                stop(r);
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

        let mut changed = Vec::with_capacity(to_start.len());
        for key in to_start {
            changed.push(key.clone());
            let d = &desired.monitors[key];
            let restarted = match self.running.remove(key) {
                Some(old) => {
                    stop(old);
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
            let handle = checks::spawn(key.clone(), d.spec.clone(), self.ctx.clone(), delay);
            self.running.insert(
                key.clone(),
                Running {
                    task_id,
                    spec_hash: d.spec_hash,
                    handle,
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
        {
            // Updated in place: a pass that restarts one task of 10k touches
            // one entry (and clones one key), not all of them.
            let mut index = self.index.write().expect("running index lock");
            for key in &gone {
                index.remove(key);
            }
            for key in changed {
                if let Some(r) = self.running.get(&key) {
                    index.insert(key, (r.task_id, r.spec_hash));
                }
            }
        }
        let mut st = self.status.write().expect("reconcile status lock");
        st.generation = desired.generation;
        st.applied_at = Some(OffsetDateTime::now_utc());
        st.passes += 1;
        st.running = self.running.len();
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
        for (_, r) in std::mem::take(&mut self.running) {
            stop(r);
        }
    }
}

/// Abort the task: at its next await point (a probe in flight included) it
/// is dropped, and its drop guards (a heartbeat's registration) run.
fn stop(r: Running) {
    r.handle.abort();
}

/// A stable delay in `[0, interval)` derived from the key, so restarts of the
/// process spread the same way.
fn spread_delay(key: &MonitorKey, interval: std::time::Duration) -> std::time::Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let ms = interval.as_millis().max(1) as u64;
    std::time::Duration::from_millis(h.finish() % ms)
}
