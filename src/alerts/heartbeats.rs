//! Heartbeat transitions, as the heartbeat writer publishes them once they are
//! on disk, turned into alert signals.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use super::{Event, HeartbeatEvent, Signal, SignalSender};
use crate::desired::DesiredState;
use crate::heartbeat::{HeartbeatStatus, HeartbeatTransition};

/// What a transition means for alerts; `None` when it means nothing (a run
/// started, a pause: a paused monitor raises nothing anyway).
pub fn event_of(t: &HeartbeatTransition) -> Option<HeartbeatEvent> {
    match t.to {
        HeartbeatStatus::Late => Some(HeartbeatEvent::Late),
        HeartbeatStatus::Down if t.failed_run => Some(HeartbeatEvent::Failed {
            exit_code: t.exit_code,
        }),
        HeartbeatStatus::Down => Some(HeartbeatEvent::Down),
        HeartbeatStatus::Up => Some(HeartbeatEvent::Recovered),
        HeartbeatStatus::New | HeartbeatStatus::Started | HeartbeatStatus::Paused => None,
    }
}

/// Forward every transition until the heartbeat writer goes away. A
/// subscriber that fell behind (more than the channel holds) logs how many it
/// missed; the next transition of each heartbeat still raises or resolves.
pub async fn forward(
    mut transitions: broadcast::Receiver<HeartbeatTransition>,
    desired: watch::Receiver<Arc<DesiredState>>,
    signals: SignalSender,
) {
    loop {
        let t = match transitions.recv().await {
            Ok(t) => t,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "alert engine fell behind heartbeat transitions");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(event) = event_of(&t) else { continue };
        let spec = desired
            .borrow()
            .monitors
            .get(&t.key)
            .map(|d| d.spec.clone());
        signals.send(Signal {
            group: spec.as_ref().and_then(|s| s.group().map(str::to_owned)),
            alert: spec.as_ref().and_then(|s| s.alert().cloned()),
            monitor: t.key,
            at: t.at,
            event: Event::Heartbeat(event),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::MonitorKey;

    fn t(
        from: HeartbeatStatus,
        to: HeartbeatStatus,
        exit: Option<u8>,
        failed: bool,
    ) -> HeartbeatTransition {
        HeartbeatTransition {
            key: MonitorKey::heartbeat("backup"),
            from,
            to,
            exit_code: exit,
            failed_run: failed,
            at: time::OffsetDateTime::now_utc(),
            message: None,
        }
    }

    #[test]
    fn transitions_map_to_heartbeat_events() {
        use HeartbeatStatus::*;
        assert_eq!(
            event_of(&t(Up, Late, None, false)),
            Some(HeartbeatEvent::Late)
        );
        // A missed deadline after a successful run (exit 0) is `down`, not a failed run.
        assert_eq!(
            event_of(&t(Late, Down, Some(0), false)),
            Some(HeartbeatEvent::Down)
        );
        assert_eq!(
            event_of(&t(Started, Down, Some(3), true)),
            Some(HeartbeatEvent::Failed { exit_code: Some(3) })
        );
        assert_eq!(
            event_of(&t(Up, Down, None, true)),
            Some(HeartbeatEvent::Failed { exit_code: None })
        );
        assert_eq!(
            event_of(&t(Down, Up, Some(0), false)),
            Some(HeartbeatEvent::Recovered)
        );
        assert_eq!(event_of(&t(Up, Started, None, false)), None);
        assert_eq!(event_of(&t(Up, Paused, None, false)), None);
    }
}
