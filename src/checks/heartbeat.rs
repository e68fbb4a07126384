//! The task of one heartbeat: it does not probe anything (the job pings
//! us); it wakes at the heartbeat's next deadline and asks the hub to
//! re-evaluate, so `up` becomes `late` and then `down` without a ping. A ping
//! (or a pause) moves the deadline and wakes the task to recompute it.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::model::HeartbeatSpec;
use crate::heartbeat::HeartbeatHub;
use crate::heartbeat::hub::RegistrationGuard;
use crate::monitor::MonitorKey;

/// Longest sleep without a deadline; a spurious wake only recomputes.
const IDLE: std::time::Duration = std::time::Duration::from_secs(3600);

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
        let sleep = match hub.next_wake(&key) {
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
        hub.tick(&key).await;
    }
}
