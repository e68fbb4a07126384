//! The task of one heartbeat: it does not probe anything (the job pings
//! us); it wakes at the heartbeat's next deadline and asks the hub to
//! re-evaluate, so `up` becomes `late` and then `down` without a ping. A ping
//! (or a pause) moves the deadline and wakes the task to recompute it.
//!
//! A timer that fires well after its deadline (the process was stopped, or
//! the wall clock jumped) does not judge at once: pings the kernel queued in
//! the meantime are read first (see [`SETTLE`]), so no transition is invented.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::model::HeartbeatSpec;
use crate::heartbeat::HeartbeatHub;
use crate::heartbeat::hub::RegistrationGuard;
use crate::monitor::MonitorKey;

/// Longest sleep without a deadline; a spurious wake only recomputes.
const IDLE: std::time::Duration = std::time::Duration::from_secs(3600);
/// A deadline timer that fires this much after the deadline means the
/// process did not run for a while (SIGSTOP, a frozen cgroup, a debugger, a
/// suspended VM) or the wall clock jumped forward.
const STALL: time::Duration = time::Duration::milliseconds(500);
/// After a stall, how long pings get to arrive before the deadline is
/// judged. The pings jobs sent meanwhile wait in the kernel (accepted
/// connections, request bytes); they are read as soon as the process runs
/// again, and must be applied first, or the heartbeat would go down and back
/// up within a millisecond, raising and resolving an alert for nothing.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(2);
/// Wait after a deadline evaluation that could not be written.
const TICK_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Register the heartbeat now (so pings are accepted as soon as the
/// reconciler has applied it) and return the task's future.
pub fn task(
    key: MonitorKey,
    spec: Arc<HeartbeatSpec>,
    hub: HeartbeatHub,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let guard = hub.register(&key, spec);
    run(key, hub, guard)
}

async fn run(key: MonitorKey, hub: HeartbeatHub, guard: RegistrationGuard) {
    // The guard lives as long as this future: dropping it (on abort)
    // unregisters the heartbeat unless a newer task replaced it.
    let notify = guard.notify.clone();
    loop {
        let wake = hub.next_wake(&key);
        let sleep = match wake {
            Some(at) => {
                let left = at - OffsetDateTime::now_utc();
                // A millisecond past the deadline, so the evaluation sees it passed.
                std::time::Duration::try_from(left)
                    .unwrap_or_default()
                    .saturating_add(std::time::Duration::from_millis(1))
            }
            None => IDLE,
        };
        tokio::select! {
            _ = notify.notified() => continue,
            _ = tokio::time::sleep(sleep) => {}
        }
        if let Some(at) = wake
            && OffsetDateTime::now_utc() - at > STALL
        {
            tracing::debug!(monitor = %key, late_ms = (OffsetDateTime::now_utc() - at).whole_milliseconds(), "deadline timer fired late (stalled process or clock jump): waiting for queued pings first");
            // A ping meanwhile moves the deadline: start over from it.
            tokio::select! {
                _ = notify.notified() => continue,
                _ = tokio::time::sleep(SETTLE) => {}
            }
        }
        if !hub.tick(&key).await {
            // Not written (the store is failing): the deadline is still
            // passed; evaluate again in a while rather than at once.
            tokio::time::sleep(TICK_RETRY).await;
        }
    }
}
