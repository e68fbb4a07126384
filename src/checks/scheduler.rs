//! One timer queue for every endpoint and certificate check.
//!
//! 10k monitors used to be 10k tokio tasks, each holding its future and an
//! interval timer while it slept: about 500 bytes a monitor, most of the
//! memory of a large deployment. Here a sleeping monitor is one slot (about
//! 80 bytes with its id) and one entry in a [`DelayQueue`]; a task exists
//! only while a check runs. A monitor's checks never overlap: the next one is
//! queued when the previous one has finished.
//!
//! The reconciler talks to the queue through [`Scheduler`]: `schedule` and
//! `cancel` by task id. Ids are never reused, so a message about a task that
//! was cancelled (a check finishing after a restart) finds no slot and is
//! dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::time::{DelayQueue, delay_queue};

use super::CheckContext;
use crate::monitor::{MonitorKey, MonitorSpec};

/// No monitor is checked more often than this, whatever its interval.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

enum Command {
    Schedule {
        id: u64,
        key: MonitorKey,
        spec: Arc<MonitorSpec>,
        restricted: bool,
        first_delay: Duration,
    },
    Cancel {
        id: u64,
    },
    /// A check of this task has finished: queue its next one.
    Finished {
        id: u64,
    },
}

/// The handle the reconciler holds. Dropping it stops the queue and aborts
/// the checks in flight.
pub struct Scheduler {
    tx: mpsc::UnboundedSender<Command>,
}

impl Scheduler {
    /// Start the queue's task (in the current tokio runtime).
    pub fn start(ctx: Arc<CheckContext>) -> Scheduler {
        let (tx, rx) = mpsc::unbounded_channel();
        // Check tasks hold the sender only while they run, through a weak
        // reference: when the reconciler drops its handle the queue ends.
        tokio::spawn(run(ctx, rx, tx.downgrade()));
        Scheduler { tx }
    }

    /// Check this monitor after `first_delay`, then every interval, under
    /// task id `id`, until [`Scheduler::cancel`]. `restricted`: its checks
    /// are held to the target policy (see `checks::targets`).
    pub fn schedule(
        &self,
        id: u64,
        key: MonitorKey,
        spec: Arc<MonitorSpec>,
        restricted: bool,
        first_delay: Duration,
    ) {
        let _ = self.tx.send(Command::Schedule {
            id,
            key,
            spec,
            restricted,
            first_delay,
        });
    }

    /// Stop task `id`: its queued check is removed, a check in flight aborted.
    pub fn cancel(&self, id: u64) {
        let _ = self.tx.send(Command::Cancel { id });
    }
}

/// Where a task is: waiting in the queue, or checking.
enum Phase {
    Queued(delay_queue::Key),
    Checking(AbortHandle),
}

struct Slot {
    key: MonitorKey,
    spec: Arc<MonitorSpec>,
    restricted: bool,
    phase: Phase,
    /// When the current check was due: the next one is due an interval later.
    due: Instant,
}

fn interval(spec: &MonitorSpec) -> Duration {
    spec.interval().max(MIN_INTERVAL)
}

async fn run(
    ctx: Arc<CheckContext>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    tx: mpsc::WeakUnboundedSender<Command>,
) {
    let mut queue: DelayQueue<u64> = DelayQueue::new();
    let mut slots: HashMap<u64, Slot> = HashMap::new();
    loop {
        tokio::select! {
            // Commands first: a cancel must win over the timer of the same task.
            biased;
            cmd = rx.recv() => match cmd {
                None => break,
                Some(Command::Schedule { id, key, spec, restricted, first_delay }) => {
                    let due = Instant::now() + first_delay;
                    let phase = Phase::Queued(queue.insert_at(id, due));
                    slots.insert(id, Slot { key, spec, restricted, phase, due });
                }
                Some(Command::Cancel { id }) => {
                    if let Some(slot) = slots.remove(&id) {
                        match slot.phase {
                            Phase::Queued(k) => {
                                queue.try_remove(&k);
                            }
                            Phase::Checking(h) => h.abort(),
                        }
                    }
                }
                Some(Command::Finished { id }) => {
                    if let Some(slot) = slots.get_mut(&id) {
                        queue_next(&mut queue, id, slot);
                    }
                }
            },
            Some(expired) = queue.next() => {
                let id = expired.into_inner();
                let Some(slot) = slots.get_mut(&id) else { continue };
                // A paused monitor is not checked at all (no result, no state
                // change) until `resume_monitor`; the pause is read from sled.
                if ctx.store.is_paused(&slot.key) {
                    queue_next(&mut queue, id, slot);
                    continue;
                }
                let Some(done) = tx.upgrade() else { break };
                let (key, spec, ctx) = (slot.key.clone(), slot.spec.clone(), ctx.clone());
                let restricted = slot.restricted;
                let task = tokio::spawn(async move {
                    use futures::FutureExt as _;
                    let check = std::panic::AssertUnwindSafe(super::check_once(&key, &spec, restricted, &ctx));
                    if let Err(payload) = check.catch_unwind().await {
                        // The next check is queued all the same: one bad
                        // answer must not stop a monitor for good.
                        ctx.tasks.record(
                            &format!("check {}", key.id()),
                            crate::supervise::panic_message(payload),
                            crate::supervise::TaskState::Running,
                        );
                    }
                    let _ = done.send(Command::Finished { id });
                });
                slot.phase = Phase::Checking(task.abort_handle());
            }
        }
    }
    for slot in slots.into_values() {
        if let Phase::Checking(h) = slot.phase {
            h.abort();
        }
    }
}

/// Queue the check after the one that was due at `slot.due`. A check that
/// overran its interval is followed at once by the next, then the rhythm
/// resumes from there (no burst of catch-up checks).
fn queue_next(queue: &mut DelayQueue<u64>, id: u64, slot: &mut Slot) {
    slot.due = (slot.due + interval(&slot.spec)).max(Instant::now());
    slot.phase = Phase::Queued(queue.insert_at(id, slot.due));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a sleeping monitor costs: paid 10k times at 10k monitors.
    #[test]
    fn a_sleeping_monitor_is_small() {
        let size = std::mem::size_of::<(u64, Slot)>();
        assert!(size <= 80, "a slot is {size} bytes");
    }

    async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ok() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A real HTTP target on 127.0.0.1 that counts its requests.
    async fn target() -> (u16, Arc<std::sync::atomic::AtomicU64>) {
        use std::sync::atomic::{AtomicU64, Ordering};
        let hits = Arc::new(AtomicU64::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let h = hits.clone();
        let app = axum::Router::new().fallback(move || {
            h.fetch_add(1, Ordering::SeqCst);
            async { "ok" }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (port, hits)
    }

    #[tokio::test]
    async fn checks_repeat_skip_while_paused_and_stop_when_cancelled() {
        use std::sync::atomic::Ordering::SeqCst;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("db")).unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let ctx = Arc::new(CheckContext {
            store: store.clone(),
            clients: super::super::probe::HttpClients::new(),
            observed: crate::observed::ObservedMap::default(),
            signals: crate::alerts::SignalSender::new(tx),
            heartbeats: crate::heartbeat::HeartbeatHub::start(store.clone()).unwrap(),
            tasks: crate::supervise::Supervisor::default(),
        });
        let (port, hits) = target().await;
        let m = crate::desired::tests::endpoint("a", &format!("http://127.0.0.1:{port}/"));
        let MonitorSpec::Endpoint(mut e) = (*m.spec).clone() else {
            unreachable!()
        };
        e.interval = crate::duration::Duration::from_millis(100);
        let key = m.key();
        let sched = Scheduler::start(ctx.clone());
        sched.schedule(
            7,
            key.clone(),
            Arc::new(MonitorSpec::Endpoint(e)),
            false,
            Duration::ZERO,
        );

        wait_for("three checks", || hits.load(SeqCst) >= 3).await;
        let checks = || ctx.observed.get(&key).map_or(0, |o| o.state.checks_total);
        wait_for("the results recorded", || checks() >= 3).await;
        assert_eq!(
            store.history(&key, None, None, 100).unwrap().len() as u64,
            checks()
        );

        // Paused: no request at all (one already in flight may land).
        store
            .set_paused(&key, time::OffsetDateTime::now_utc())
            .unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let at_pause = hits.load(SeqCst);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(hits.load(SeqCst), at_pause, "checked while paused");

        store.clear_paused(&key).unwrap();
        wait_for("checks after resume", || hits.load(SeqCst) >= at_pause + 2).await;

        sched.cancel(7);
        tokio::time::sleep(Duration::from_millis(150)).await;
        let at_cancel = hits.load(SeqCst);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(hits.load(SeqCst), at_cancel, "checked after cancel");

        // A finished check of a cancelled id queues nothing; a new id runs.
        sched.schedule(8, key.clone(), m.spec.clone(), false, Duration::ZERO);
        wait_for("the new task's first check", || {
            hits.load(SeqCst) > at_cancel
        })
        .await;
    }
}
