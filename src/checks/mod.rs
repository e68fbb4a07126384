//! Checks: run a monitor's probe when the [`Scheduler`] says it is due and
//! turn outcomes into observed state through the failure and recovery
//! thresholds. A check knows nothing of other monitors, alerts or MCP.

pub mod certificate;
pub mod heartbeat;
pub mod probe;
mod scheduler;
pub mod targets;

pub use scheduler::Scheduler;

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::task::JoinHandle;

use crate::config::model::{CertificateSpec, EndpointSpec, HeartbeatSpec};
use crate::monitor::{MonitorKey, MonitorSpec};
use crate::observed::{ObservedMap, PublicCheck};
use crate::store::{CheckRecord, ObservedState, Status, Store};
use probe::{HttpClients, ProbeOutcome};

/// Refused checks repeat every interval: one log line per interval for all.
static REFUSALS: std::sync::LazyLock<crate::repeated::Repeated> =
    std::sync::LazyLock::new(|| crate::repeated::Repeated::new(crate::repeated::INTERVAL));

/// What every check needs, shared.
#[derive(Clone)]
pub struct CheckContext {
    pub store: Store,
    pub clients: HttpClients,
    pub observed: ObservedMap,
    /// Where status transitions go (the alert engine).
    pub signals: crate::alerts::SignalSender,
    pub heartbeats: crate::heartbeat::HeartbeatHub,
    /// Where a check or heartbeat task that panicked is recorded (get_health).
    pub tasks: crate::supervise::Supervisor,
}

/// Start the task of one heartbeat. Endpoints and certificates are not
/// tasks: the [`Scheduler`] queues their checks.
pub fn spawn_heartbeat(
    key: MonitorKey,
    spec: &HeartbeatSpec,
    ctx: &CheckContext,
) -> JoinHandle<()> {
    // Registered before this returns, so pings work once the pass is
    // applied; a panic restarts the task (registered again) and shows in
    // get_health.
    let (spec, hub) = (Arc::new(spec.clone()), ctx.heartbeats.clone());
    let name = key.id();
    ctx.tasks.spawn_member(&name, move || {
        heartbeat::task(key.clone(), spec.clone(), hub.clone())
    })
}

/// One check of an endpoint or a certificate, its result stored and its
/// state moved on. Heartbeats are not checked: they are pinged.
/// `restricted`: held to the target policy (the monitor was declared by a
/// label, an annotation or a `Monitor` resource).
async fn check_once(key: &MonitorKey, spec: &MonitorSpec, restricted: bool, ctx: &CheckContext) {
    match spec {
        MonitorSpec::Endpoint(e) => {
            let outcome = probe::probe_as(e, &ctx.clients, restricted).await;
            record(key, e, ctx, outcome);
        }
        MonitorSpec::Certificate(c) => check_certificate(key, c, restricted, ctx).await,
        MonitorSpec::Heartbeat(_) => {}
    }
}

fn record(key: &MonitorKey, spec: &EndpointSpec, ctx: &CheckContext, outcome: ProbeOutcome) {
    let rec = CheckRecord {
        at: OffsetDateTime::now_utc(),
        up: outcome.up,
        status_code: outcome.status,
        response_time_ms: (outcome.response_time.as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
        error: outcome.error,
    };
    let public = PublicCheck {
        at: rec.at,
        error: outcome.public_error,
        refused: outcome.refused,
    };
    if let Some(r) = &public.refused
        && let Some(n) = REFUSALS.hit("target-refused")
    {
        tracing::warn!(monitor = %key, refusal = %r, "check not made{}", crate::repeated::times(n));
    }
    let prev = ctx.observed.get(key).map(|o| o.state).unwrap_or_default();
    let next = next_state(
        &prev,
        rec.clone(),
        spec.failure_threshold,
        spec.recovery_threshold,
    );
    if let Err(e) = ctx.store.record_check(key, &rec, &next) {
        // The store's health holds the cause (get_health, /healthz); the log
        // gets one line per interval, not one per check.
        if let Some(n) = crate::repeated::STORE_ERRORS.hit("check-result") {
            tracing::error!(monitor = %key, error = %e, "could not store a check result{}", crate::repeated::times(n));
        }
        // The live state follows only what was written: a transition the
        // alert engine hears of must still be there after a restart.
        return;
    }
    if next.status != prev.status {
        tracing::info!(monitor = %key, from = prev.status.as_str(), to = next.status.as_str(), error = ?rec.error, "status changed");
        // The state machine has decided: tell the alert engine. Pending -> up
        // is sent too, so an alert left active before a restart resolves.
        let event = match next.status {
            Status::Down => Some(crate::alerts::Event::EndpointDown {
                error: rec.error.clone(),
            }),
            Status::Up => Some(crate::alerts::Event::EndpointUp),
            Status::Pending | Status::Paused => None,
        };
        if let Some(event) = event {
            ctx.signals.send(crate::alerts::Signal {
                monitor: key.clone(),
                group: spec.group.clone(),
                alert: spec.alert.clone(),
                at: rec.at,
                event,
            });
        }
    }
    ctx.observed.set_checked(key, next, public);
}

/// A certificate check. The result is stored (latest per monitor), mirrored
/// in the observed map (`up` while the certificate is valid or expiring,
/// `down` otherwise) and sent to the alert engine.
async fn check_certificate(
    key: &MonitorKey,
    spec: &CertificateSpec,
    restricted: bool,
    ctx: &CheckContext,
) {
    // A handshake that takes longer than this is an error, not a slow success.
    let timeout = spec.interval.std().min(std::time::Duration::from_secs(10));
    // The previous result decides what changed (and what to log).
    let prev = certificate::load(&ctx.store, key).ok().flatten();
    let policy = restricted.then(|| ctx.clients.policy().as_ref());
    let (c, refused) = certificate::check(spec, timeout, prev.as_ref(), policy).await;
    if let Some(r) = &refused
        && let Some(n) = REFUSALS.hit("target-refused")
    {
        tracing::warn!(monitor = %key, refusal = %r, "check not made{}", crate::repeated::times(n));
    }
    if let Err(e) = certificate::save(&ctx.store, key, &c)
        && let Some(n) = crate::repeated::STORE_ERRORS.hit("certificate-result")
    {
        tracing::error!(monitor = %key, error = %e, "could not store a certificate result{}", crate::repeated::times(n));
    }
    if prev.as_ref().is_none_or(|p| p.status != c.status) {
        tracing::info!(monitor = %key, status = c.status.as_str(), days_left = ?c.days_left, error = ?c.error, "certificate status");
    }
    let up = matches!(
        c.status,
        certificate::CertStatus::Valid | certificate::CertStatus::Expiring
    );
    let rec = CheckRecord {
        at: c.at,
        up,
        status_code: None,
        response_time_ms: c.duration_ms,
        error: c.error.clone(),
    };
    // A certificate's error never quotes a response body.
    let public = PublicCheck {
        at: rec.at,
        error: rec.error.clone(),
        refused,
    };
    let old = ctx.observed.get(key).map(|o| o.state).unwrap_or_default();
    ctx.observed
        .set_checked(key, next_state(&old, rec, 1, 1), public);
    ctx.signals.send(crate::alerts::Signal {
        monitor: key.clone(),
        group: spec.group.clone(),
        alert: spec.alert.clone(),
        at: c.at,
        event: crate::alerts::Event::Certificate {
            status: c.status,
            days_left: c.days_left,
            threshold_days: c.threshold_days,
            last_threshold: spec.warn_days.last().copied().unwrap_or(1),
            detail: c.error,
        },
    });
}

/// The threshold state machine.
/// - `pending` becomes `up` at the first success, `down` after `failure_threshold` failures;
/// - `up` becomes `down` after `failure_threshold` consecutive failures;
/// - `down` becomes `up` after `recovery_threshold` consecutive successes.
pub fn next_state(
    prev: &ObservedState,
    rec: CheckRecord,
    failure_threshold: u32,
    recovery_threshold: u32,
) -> ObservedState {
    let mut s = prev.clone();
    s.checks_total += 1;
    if rec.up {
        s.consecutive_successes += 1;
        s.consecutive_failures = 0;
    } else {
        s.consecutive_failures += 1;
        s.consecutive_successes = 0;
    }
    let new_status = match (prev.status, rec.up) {
        (Status::Pending, true) => Status::Up,
        (Status::Down, true) if s.consecutive_successes >= recovery_threshold.max(1) => Status::Up,
        (Status::Pending | Status::Up, false)
            if s.consecutive_failures >= failure_threshold.max(1) =>
        {
            Status::Down
        }
        (status, _) => status,
    };
    if new_status != prev.status || s.since.is_none() {
        s.since = Some(rec.at);
    }
    s.status = new_status;
    s.last_check = Some(rec);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(results: &[bool], fail: u32, recover: u32) -> Vec<Status> {
        let mut s = ObservedState::default();
        results
            .iter()
            .map(|&up| {
                let rec = CheckRecord {
                    at: OffsetDateTime::now_utc(),
                    up,
                    status_code: None,
                    response_time_ms: 1.0,
                    error: None,
                };
                s = next_state(&s, rec, fail, recover);
                s.status
            })
            .collect()
    }

    #[test]
    fn thresholds_gate_transitions() {
        use Status::*;
        assert_eq!(
            run(&[true, false, false, false, true, true], 3, 2),
            [Up, Up, Up, Down, Down, Up]
        );
        assert_eq!(run(&[false, false], 3, 2), [Pending, Pending]);
        assert_eq!(
            run(&[false, true, false, false, true], 2, 1),
            [Pending, Up, Up, Down, Up]
        );
        assert_eq!(run(&[false], 1, 1), [Down]);
    }

    #[test]
    fn since_moves_only_on_status_change() {
        let mut s = ObservedState::default();
        let t1 = OffsetDateTime::now_utc();
        let rec = |at, up| CheckRecord {
            at,
            up,
            status_code: None,
            response_time_ms: 1.0,
            error: None,
        };
        s = next_state(&s, rec(t1, true), 1, 1);
        assert_eq!(s.since, Some(t1));
        let t2 = t1 + time::Duration::seconds(5);
        s = next_state(&s, rec(t2, true), 1, 1);
        assert_eq!(s.since, Some(t1), "still up: since unchanged");
        assert_eq!(s.checks_total, 2);
        let t3 = t2 + time::Duration::seconds(5);
        s = next_state(&s, rec(t3, false), 1, 1);
        assert_eq!((s.status, s.since), (Status::Down, Some(t3)));
    }
}
