//! What a signal means for a monitor's alerts: a pure function of the signal
//! and the monitor's active alerts, so every rule is unit-tested without I/O.
//!
//! - A signal names the alert it wants active (type, severity, level) and
//!   which of the monitor's types it clears.
//! - No active alert of that type: raise. Active, and the severity rose or
//!   (certificates) a lower `warn_days` threshold was crossed: escalate.
//!   Otherwise nothing (de-duplicated).
//! - A paused monitor raises and escalates nothing; its alerts still resolve.

use std::collections::BTreeMap;

use super::{AlertType, Event, HeartbeatEvent, Signal};
use crate::checks::certificate::CertStatus;
use crate::config::model::Severity;

/// The state of one active alert that the rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Active {
    pub severity: Severity,
    pub threshold_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Raise {
        alert_type: AlertType,
        severity: Severity,
        threshold_days: Option<u32>,
        message: String,
    },
    Escalate {
        alert_type: AlertType,
        severity: Severity,
        threshold_days: Option<u32>,
        message: String,
    },
    Resolve {
        alert_type: AlertType,
        message: String,
    },
}

struct Want {
    alert_type: AlertType,
    severity: Severity,
    threshold_days: Option<u32>,
    message: String,
}

const CERT_TYPES: [AlertType; 3] = [
    AlertType::CertificateExpiring,
    AlertType::CertificateExpired,
    AlertType::CertificateInvalid,
];

pub fn decide(
    signal: &Signal,
    active: &BTreeMap<AlertType, Active>,
    paused: bool,
) -> Vec<Decision> {
    let configured = signal
        .alert
        .as_ref()
        .map_or(Severity::Critical, |a| a.severity);
    let id = signal.monitor.id();
    // (what should be active, the types this signal clears, why they clear)
    let (want, clears, why): (Option<Want>, &[AlertType], String) = match &signal.event {
        Event::EndpointDown { error } => (
            Some(Want {
                alert_type: AlertType::EndpointDown,
                severity: configured,
                threshold_days: None,
                message: match error {
                    Some(e) => format!("{id} is down: {e}"),
                    None => format!("{id} is down"),
                },
            }),
            &[],
            String::new(),
        ),
        Event::EndpointUp => (
            None,
            &[AlertType::EndpointDown],
            format!("{id} is up again"),
        ),
        Event::Certificate {
            status,
            days_left,
            threshold_days,
            last_threshold,
            detail,
        } => {
            let detail = detail.clone().unwrap_or_default();
            match status {
                // A failed check says nothing about the certificate: keep what is active.
                CertStatus::Error | CertStatus::Pending | CertStatus::Paused => return Vec::new(),
                CertStatus::Valid => (None, &CERT_TYPES, format!("{id}: certificate valid")),
                CertStatus::Expiring => {
                    let t = threshold_days.unwrap_or(*last_threshold);
                    (
                        Some(Want {
                            alert_type: AlertType::CertificateExpiring,
                            // The last threshold is the monitor's own severity; earlier ones warn.
                            severity: if t <= *last_threshold {
                                configured
                            } else {
                                Severity::Warning.min(configured)
                            },
                            threshold_days: Some(t),
                            message: format!(
                                "{id}: certificate expires in {} days (under the {t}-day threshold)",
                                days_left.unwrap_or(0)
                            ),
                        }),
                        &CERT_TYPES,
                        format!("{id}: certificate replaced or renewed"),
                    )
                }
                CertStatus::Expired => (
                    Some(Want {
                        alert_type: AlertType::CertificateExpired,
                        severity: configured,
                        threshold_days: None,
                        message: format!("{id}: certificate expired ({detail})"),
                    }),
                    &CERT_TYPES,
                    format!("{id}: superseded"),
                ),
                CertStatus::Invalid => (
                    Some(Want {
                        alert_type: AlertType::CertificateInvalid,
                        severity: configured,
                        threshold_days: None,
                        message: format!("{id}: certificate invalid: {detail}"),
                    }),
                    &CERT_TYPES,
                    format!("{id}: superseded"),
                ),
            }
        }
        Event::Container(conditions) => return container(&id, conditions, active, paused),
        Event::Removed => {
            return active
                .keys()
                .map(|t| Decision::Resolve {
                    alert_type: *t,
                    message: if signal.monitor.kind == crate::monitor::MonitorKind::Container {
                        format!("{id} is gone")
                    } else {
                        format!("{id} is no longer declared")
                    },
                })
                .collect();
        }
        Event::Heartbeat(h) => match h {
            HeartbeatEvent::Late => (
                Some(Want {
                    alert_type: AlertType::HeartbeatDown,
                    severity: Severity::Warning.min(configured),
                    threshold_days: None,
                    message: format!("{id} is late"),
                }),
                &[],
                String::new(),
            ),
            HeartbeatEvent::Down => (
                Some(Want {
                    alert_type: AlertType::HeartbeatDown,
                    severity: configured,
                    threshold_days: None,
                    message: format!("{id} is down: no ping within period and grace"),
                }),
                &[],
                String::new(),
            ),
            HeartbeatEvent::Failed { exit_code } => (
                Some(Want {
                    alert_type: AlertType::HeartbeatFailed,
                    severity: configured,
                    threshold_days: None,
                    message: match exit_code {
                        Some(c) => format!("{id}: the job failed with exit code {c}"),
                        None => format!("{id}: the job reported a failure"),
                    },
                }),
                &[AlertType::HeartbeatDown],
                format!("{id} pinged (with a failure)"),
            ),
            HeartbeatEvent::Recovered => (
                None,
                &[AlertType::HeartbeatDown, AlertType::HeartbeatFailed],
                format!("{id} is up again"),
            ),
        },
    };

    let mut out = Vec::new();
    for t in clears {
        if active.contains_key(t) && want.as_ref().is_none_or(|w| w.alert_type != *t) {
            out.push(Decision::Resolve {
                alert_type: *t,
                message: why.clone(),
            });
        }
    }
    if let Some(w) = want
        && !paused
    {
        match active.get(&w.alert_type) {
            None => out.push(Decision::Raise {
                alert_type: w.alert_type,
                severity: w.severity,
                threshold_days: w.threshold_days,
                message: w.message,
            }),
            Some(a) => {
                let lower_threshold = matches!(
                    (w.threshold_days, a.threshold_days),
                    (Some(new), Some(old)) if new < old
                );
                if w.severity > a.severity || lower_threshold {
                    out.push(Decision::Escalate {
                        alert_type: w.alert_type,
                        severity: w.severity.max(a.severity),
                        threshold_days: w.threshold_days,
                        message: w.message,
                    });
                }
            }
        }
    }
    out
}

/// Container conditions are a whole set: each one raises (when it may) or
/// escalates, and every active container alert not in the set resolves.
fn container(
    id: &str,
    conditions: &[super::ContainerCondition],
    active: &BTreeMap<AlertType, Active>,
    paused: bool,
) -> Vec<Decision> {
    let mut out = Vec::new();
    for t in AlertType::CONTAINER {
        if active.contains_key(&t) && !conditions.iter().any(|c| c.alert_type == t) {
            out.push(Decision::Resolve {
                alert_type: t,
                message: format!("{id}: {}", cleared(t)),
            });
        }
    }
    if paused {
        return out;
    }
    for c in conditions {
        match active.get(&c.alert_type) {
            None if c.may_raise => out.push(Decision::Raise {
                alert_type: c.alert_type,
                severity: c.severity,
                threshold_days: None,
                message: c.message.clone(),
            }),
            Some(a) if c.severity > a.severity => out.push(Decision::Escalate {
                alert_type: c.alert_type,
                severity: c.severity,
                threshold_days: None,
                message: c.message.clone(),
            }),
            _ => {}
        }
    }
    out
}

fn cleared(t: AlertType) -> &'static str {
    match t {
        AlertType::ContainerRestartLoop => "no longer restarting in a loop",
        AlertType::ContainerOomKilled => "no OOM kill within the restart window",
        AlertType::ContainerUnhealthy => "the health check passes again",
        AlertType::ContainerUnexpectedExit => "running again",
        AlertType::ContainerCrashLoop => "out of CrashLoopBackOff for the restart window",
        AlertType::ContainerImagePull => "the image was pulled",
        AlertType::ContainerNotReady => "ready again",
        _ => "cleared",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::AlertDecl;
    use crate::monitor::MonitorKey;

    fn sig(event: Event) -> Signal {
        Signal {
            monitor: MonitorKey::endpoint("api"),
            group: None,
            alert: None,
            at: time::OffsetDateTime::now_utc(),
            event,
        }
    }

    fn cert(status: CertStatus, days: i64, t: Option<u32>) -> Event {
        Event::Certificate {
            status,
            days_left: Some(days),
            threshold_days: t,
            last_threshold: 1,
            detail: None,
        }
    }

    fn apply(active: &mut BTreeMap<AlertType, Active>, ds: &[Decision]) {
        for d in ds {
            match d {
                Decision::Raise {
                    alert_type,
                    severity,
                    threshold_days,
                    ..
                }
                | Decision::Escalate {
                    alert_type,
                    severity,
                    threshold_days,
                    ..
                } => {
                    active.insert(
                        *alert_type,
                        Active {
                            severity: *severity,
                            threshold_days: *threshold_days,
                        },
                    );
                }
                Decision::Resolve { alert_type, .. } => {
                    active.remove(alert_type);
                }
            }
        }
    }

    #[test]
    fn endpoint_down_is_raised_once_and_resolved_on_up() {
        let mut active = BTreeMap::new();
        let d = decide(
            &sig(Event::EndpointDown {
                error: Some("503".into()),
            }),
            &active,
            false,
        );
        assert!(
            matches!(
                &d[..],
                [Decision::Raise {
                    alert_type: AlertType::EndpointDown,
                    severity: Severity::Critical,
                    ..
                }]
            ),
            "{d:?}"
        );
        apply(&mut active, &d);
        assert!(
            decide(&sig(Event::EndpointDown { error: None }), &active, false).is_empty(),
            "de-duplicated"
        );
        let d = decide(&sig(Event::EndpointUp), &active, false);
        assert!(matches!(
            &d[..],
            [Decision::Resolve {
                alert_type: AlertType::EndpointDown,
                ..
            }]
        ));
        apply(&mut active, &d);
        assert!(
            decide(&sig(Event::EndpointUp), &active, false).is_empty(),
            "nothing to resolve"
        );
    }

    #[test]
    fn configured_severity_is_used() {
        let mut s = sig(Event::EndpointDown { error: None });
        s.alert = Some(AlertDecl {
            severity: Severity::Info,
            channels: vec![],
        });
        let d = decide(&s, &BTreeMap::new(), false);
        assert!(matches!(
            &d[..],
            [Decision::Raise {
                severity: Severity::Info,
                ..
            }]
        ));
    }

    #[test]
    fn certificate_escalates_through_thresholds_then_expires_then_resolves() {
        let mut active = BTreeMap::new();
        let d = decide(
            &sig(cert(CertStatus::Expiring, 20, Some(30))),
            &active,
            false,
        );
        assert!(
            matches!(
                &d[..],
                [Decision::Raise {
                    alert_type: AlertType::CertificateExpiring,
                    severity: Severity::Warning,
                    threshold_days: Some(30),
                    ..
                }]
            ),
            "{d:?}"
        );
        apply(&mut active, &d);
        assert!(
            decide(
                &sig(cert(CertStatus::Expiring, 19, Some(30))),
                &active,
                false
            )
            .is_empty(),
            "same threshold: nothing new"
        );
        let d = decide(&sig(cert(CertStatus::Expiring, 6, Some(7))), &active, false);
        assert!(
            matches!(
                &d[..],
                [Decision::Escalate {
                    threshold_days: Some(7),
                    severity: Severity::Warning,
                    ..
                }]
            ),
            "{d:?}"
        );
        apply(&mut active, &d);
        let d = decide(&sig(cert(CertStatus::Expiring, 0, Some(1))), &active, false);
        assert!(
            matches!(
                &d[..],
                [Decision::Escalate {
                    threshold_days: Some(1),
                    severity: Severity::Critical,
                    ..
                }]
            ),
            "{d:?}"
        );
        apply(&mut active, &d);
        let d = decide(&sig(cert(CertStatus::Expired, -1, Some(1))), &active, false);
        assert!(
            matches!(
                &d[..],
                [
                    Decision::Resolve {
                        alert_type: AlertType::CertificateExpiring,
                        ..
                    },
                    Decision::Raise {
                        alert_type: AlertType::CertificateExpired,
                        ..
                    }
                ]
            ),
            "{d:?}"
        );
        apply(&mut active, &d);
        // A failed check (refused, timeout) changes nothing: it is not "expired" nor "fixed".
        assert!(decide(&sig(cert(CertStatus::Error, 0, None)), &active, false).is_empty());
        let d = decide(&sig(cert(CertStatus::Valid, 300, None)), &active, false);
        assert!(
            matches!(
                &d[..],
                [Decision::Resolve {
                    alert_type: AlertType::CertificateExpired,
                    ..
                }]
            ),
            "{d:?}"
        );
    }

    #[test]
    fn heartbeat_late_escalates_to_down_and_failure_keeps_exit_code() {
        let mut active = BTreeMap::new();
        let d = decide(&sig(Event::Heartbeat(HeartbeatEvent::Late)), &active, false);
        assert!(matches!(
            &d[..],
            [Decision::Raise {
                alert_type: AlertType::HeartbeatDown,
                severity: Severity::Warning,
                ..
            }]
        ));
        apply(&mut active, &d);
        let d = decide(&sig(Event::Heartbeat(HeartbeatEvent::Down)), &active, false);
        assert!(
            matches!(
                &d[..],
                [Decision::Escalate {
                    severity: Severity::Critical,
                    ..
                }]
            ),
            "{d:?}"
        );
        apply(&mut active, &d);
        // Late again after down does not lower the severity.
        assert!(decide(&sig(Event::Heartbeat(HeartbeatEvent::Late)), &active, false).is_empty());
        let d = decide(
            &sig(Event::Heartbeat(HeartbeatEvent::Failed {
                exit_code: Some(3),
            })),
            &active,
            false,
        );
        match &d[..] {
            [
                Decision::Resolve {
                    alert_type: AlertType::HeartbeatDown,
                    ..
                },
                Decision::Raise {
                    alert_type: AlertType::HeartbeatFailed,
                    message,
                    ..
                },
            ] => {
                assert!(message.contains("exit code 3"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        apply(&mut active, &d);
        let d = decide(
            &sig(Event::Heartbeat(HeartbeatEvent::Recovered)),
            &active,
            false,
        );
        assert!(matches!(
            &d[..],
            [Decision::Resolve {
                alert_type: AlertType::HeartbeatFailed,
                ..
            }]
        ));
    }

    #[test]
    fn removing_a_monitor_resolves_all_its_alerts() {
        let mut active = BTreeMap::new();
        for t in [AlertType::CertificateExpiring, AlertType::EndpointDown] {
            active.insert(
                t,
                Active {
                    severity: Severity::Warning,
                    threshold_days: None,
                },
            );
        }
        let d = decide(&sig(Event::Removed), &active, true);
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|d| matches!(d, Decision::Resolve { .. })));
    }

    #[test]
    fn a_paused_monitor_raises_nothing_but_still_resolves() {
        let mut active = BTreeMap::new();
        assert!(decide(&sig(Event::EndpointDown { error: None }), &active, true).is_empty());
        active.insert(
            AlertType::EndpointDown,
            Active {
                severity: Severity::Critical,
                threshold_days: None,
            },
        );
        let d = decide(&sig(Event::EndpointUp), &active, true);
        assert!(matches!(&d[..], [Decision::Resolve { .. }]));
    }

    #[test]
    fn container_conditions_are_a_level_set() {
        use crate::alerts::ContainerCondition;
        let cond = |t, may_raise| ContainerCondition {
            alert_type: t,
            severity: Severity::Critical,
            message: "web restarted 3 times".into(),
            may_raise,
        };
        let mut active = BTreeMap::new();
        let d = decide(
            &sig(Event::Container(vec![cond(
                AlertType::ContainerRestartLoop,
                true,
            )])),
            &active,
            false,
        );
        assert!(
            matches!(
                &d[..],
                [Decision::Raise {
                    alert_type: AlertType::ContainerRestartLoop,
                    ..
                }]
            ),
            "{d:?}"
        );
        apply(&mut active, &d);
        // Still looping: nothing new. An old exit found at start raises nothing.
        let d = decide(
            &sig(Event::Container(vec![
                cond(AlertType::ContainerRestartLoop, true),
                cond(AlertType::ContainerUnexpectedExit, false),
            ])),
            &active,
            false,
        );
        assert!(d.is_empty(), "{d:?}");
        // Paused: a new condition raises nothing, the cleared one still resolves.
        let d = decide(
            &sig(Event::Container(vec![cond(
                AlertType::ContainerUnhealthy,
                true,
            )])),
            &active,
            true,
        );
        assert!(
            matches!(
                &d[..],
                [Decision::Resolve {
                    alert_type: AlertType::ContainerRestartLoop,
                    ..
                }]
            ),
            "{d:?}"
        );
        apply(&mut active, &d);
        assert!(decide(&sig(Event::Container(vec![])), &active, false).is_empty());
    }
}
