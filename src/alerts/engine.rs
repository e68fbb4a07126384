//! The engine task: signals in, decisions applied to the store, notifications
//! dispatched; plus a one-second tick that re-notifies active,
//! unacknowledged alerts every `alerting.repeat_interval`.

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use super::rules::{self, Active, Decision};
use super::store::{AlertStore, parse_id};
use super::{
    Alert, AlertEvent, AlertEventKind, AlertStatus, PausePredicate, Signal, SilencePredicate,
    nothing_silenced, notify,
};
use crate::config::model::AlertingSpec;
use crate::store::Result;

#[derive(Clone)]
pub struct AlertEngine {
    store: AlertStore,
    alerting: watch::Receiver<Arc<AlertingSpec>>,
    paused: PausePredicate,
    silenced: SilencePredicate,
    client: reqwest::Client,
}

/// Why an acknowledgement was refused.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    #[error("no alert with id {0:?}; call list_alerts (active_only: false for history) to see ids")]
    NotFound(String),
    #[error(
        "alert {id} was resolved at {at}: there is nothing to acknowledge (it is kept as history)"
    )]
    Resolved { id: String, at: String },
    #[error("database error: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Acknowledge an alert: who, when, note; it stays active until recovery and
/// is no longer re-notified. Acknowledging again changes nothing but the
/// note (when a new one is given).
pub fn acknowledge(
    store: &AlertStore,
    id: &str,
    by: &str,
    note: Option<String>,
) -> std::result::Result<Alert, AckError> {
    let n = parse_id(id).ok_or_else(|| AckError::NotFound(id.to_owned()))?;
    let current = store
        .get(n)?
        .ok_or_else(|| AckError::NotFound(id.to_owned()))?;
    if current.status == AlertStatus::Resolved {
        return Err(AckError::Resolved {
            id: current.id,
            at: current
                .resolved_at
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default(),
        });
    }
    let now = OffsetDateTime::now_utc();
    let updated = store.update(n, |a| {
        if a.acknowledged_at.is_none() {
            a.acknowledged_at = Some(now);
            a.acknowledged_by = Some(by.to_owned());
            a.updated_at = now;
            a.history.push(AlertEvent {
                at: now,
                event: AlertEventKind::Acknowledged,
                severity: a.severity,
                message: match &note {
                    Some(n) => format!("acknowledged by {by}: {n}"),
                    None => format!("acknowledged by {by}"),
                },
            });
        }
        if note.is_some() {
            a.note = note.clone();
        }
    })?;
    updated.ok_or_else(|| AckError::NotFound(id.to_owned()))
}

impl AlertEngine {
    pub fn new(
        store: AlertStore,
        alerting: watch::Receiver<Arc<AlertingSpec>>,
        paused: PausePredicate,
    ) -> Self {
        // reqwest panics when no rustls provider is installed (the binary
        // installs ring at start; this covers library users and tests).
        let _ = rustls::crypto::ring::default_provider().install_default();
        AlertEngine {
            store,
            alerting,
            paused,
            silenced: nothing_silenced(),
            client: reqwest::Client::builder()
                .user_agent(concat!("maintenant/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("reqwest client"),
        }
    }

    /// Maintenance windows: an alert of a monitor a running window covers is
    /// recorded as silenced and not notified (see [`SilencePredicate`]).
    pub fn with_silence(mut self, silenced: SilencePredicate) -> Self {
        self.silenced = silenced;
        self
    }

    /// Apply one signal; returns the notifications to send.
    pub fn apply(&self, s: &Signal) -> Result<Vec<(Alert, AlertEventKind)>> {
        let current = self.store.active_of(&s.monitor)?;
        let active: BTreeMap<_, _> = current
            .iter()
            .map(|(t, a)| {
                (
                    *t,
                    Active {
                        severity: a.severity,
                        threshold_days: a.threshold_days,
                    },
                )
            })
            .collect();
        let paused = (self.paused)(&s.monitor);
        // Decided once per signal: every decision below sees the same answer.
        let window = (self.silenced)(&s.monitor, s.group.as_deref(), s.at);
        let mut out = Vec::new();
        for d in rules::decide(s, &active, paused) {
            match d {
                Decision::Raise {
                    alert_type,
                    severity,
                    threshold_days,
                    message,
                } => {
                    let id = self.store.next_id()?;
                    let message = match &window {
                        Some(w) => format!("{message} (silenced: {w} is running)"),
                        None => message,
                    };
                    let alert = Alert {
                        id: id.to_string(),
                        alert_type,
                        severity,
                        status: AlertStatus::Active,
                        entity: s.monitor.id(),
                        source: s.monitor.kind,
                        group: s.group.clone(),
                        message: message.clone(),
                        threshold_days,
                        fired_at: s.at,
                        updated_at: s.at,
                        resolved_at: None,
                        acknowledged_at: None,
                        acknowledged_by: None,
                        note: None,
                        channels: s
                            .alert
                            .as_ref()
                            .map(|a| a.channels.clone())
                            .unwrap_or_default(),
                        last_notified_at: window.is_none().then_some(s.at),
                        silenced: window.is_some(),
                        silenced_by: window.clone(),
                        history: vec![AlertEvent {
                            at: s.at,
                            event: AlertEventKind::Raised,
                            severity,
                            message,
                        }],
                    };
                    self.store.insert_active(&s.monitor, &alert)?;
                    if let Some(w) = &window {
                        tracing::info!(alert = %alert.id, monitor = %alert.entity, r#type = alert_type.as_str(), window = %w, "alert raised, silenced by maintenance");
                        continue;
                    }
                    tracing::warn!(alert = %alert.id, monitor = %alert.entity, r#type = alert_type.as_str(), "alert raised");
                    out.push((alert, AlertEventKind::Raised));
                }
                Decision::Escalate {
                    alert_type,
                    severity,
                    threshold_days,
                    message,
                } => {
                    let Some(a) = current.get(&alert_type) else {
                        continue;
                    };
                    let id = parse_id(&a.id).unwrap_or(0);
                    if let Some(after) = self.store.update(id, |a| {
                        a.severity = severity;
                        a.threshold_days = threshold_days;
                        a.message = message.clone();
                        a.updated_at = s.at;
                        if window.is_none() {
                            a.last_notified_at = Some(s.at);
                        }
                        a.history.push(AlertEvent {
                            at: s.at,
                            event: AlertEventKind::Escalated,
                            severity,
                            message: message.clone(),
                        });
                    })? && window.is_none()
                    {
                        tracing::warn!(alert = %after.id, monitor = %after.entity, "alert escalated");
                        out.push((after, AlertEventKind::Escalated));
                    }
                }
                Decision::Resolve {
                    alert_type,
                    message,
                } => {
                    let Some(a) = current.get(&alert_type) else {
                        continue;
                    };
                    let id = parse_id(&a.id).unwrap_or(0);
                    self.store.clear_active(&s.monitor, alert_type)?;
                    if let Some(after) = self.store.update(id, |a| {
                        a.status = AlertStatus::Resolved;
                        a.resolved_at = Some(s.at);
                        a.updated_at = s.at;
                        a.history.push(AlertEvent {
                            at: s.at,
                            event: AlertEventKind::Resolved,
                            severity: a.severity,
                            message: message.clone(),
                        });
                    })? {
                        tracing::info!(alert = %after.id, monitor = %after.entity, "alert resolved");
                        // Nobody was told it was raised (silenced, never
                        // reminded), or a window runs now: no resolved notice.
                        let never_told = after.silenced && after.last_notified_at.is_none();
                        if window.is_none() && !never_told {
                            out.push((after, AlertEventKind::Resolved));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Active, unacknowledged alerts whose last notification is older than
    /// the repeat interval: marked notified now, returned to send.
    pub fn reminders(&self, now: OffsetDateTime) -> Result<Vec<(Alert, AlertEventKind)>> {
        let repeat = self.alerting.borrow().repeat_interval.std();
        if repeat.is_zero() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for a in self.store.all_active()? {
            if a.acknowledged_at.is_some() || a.monitor_key().is_some_and(|k| (self.paused)(&k)) {
                continue;
            }
            if a.monitor_key()
                .and_then(|k| (self.silenced)(&k, a.group.as_deref(), now))
                .is_some()
            {
                continue;
            }
            let last = a.last_notified_at.unwrap_or(a.fired_at);
            if now - last < repeat {
                continue;
            }
            let id = parse_id(&a.id).unwrap_or(0);
            // Re-checked inside the swap: an acknowledgement that landed
            // meanwhile wins.
            let mut due = false;
            let after = self.store.update(id, |a| {
                due = a.acknowledged_at.is_none() && a.status == AlertStatus::Active;
                if due {
                    a.last_notified_at = Some(now);
                }
            })?;
            if due && let Some(after) = after {
                out.push((after, AlertEventKind::Reminder));
            }
        }
        Ok(out)
    }

    /// Send to every routed channel, in the background; each outcome (after
    /// retries) is recorded with the alert.
    pub fn dispatch(&self, alert: Alert, event: AlertEventKind) {
        let spec = self.alerting.borrow().clone();
        let id = parse_id(&alert.id).unwrap_or(0);
        for ch in notify::routes(&alert, &spec.channels) {
            let ch = ch.clone();
            let alert = alert.clone();
            let client = self.client.clone();
            let store = self.store.clone();
            tokio::spawn(async move {
                let d = notify::deliver(&client, &ch, &alert, event).await;
                if !d.ok {
                    tracing::error!(alert = %alert.id, channel = %ch.name, attempts = d.attempts, error = ?d.error, "notification failed after retries");
                }
                if let Err(e) = store.record_delivery(id, &d) {
                    tracing::error!(alert = %alert.id, error = %e, "cannot record a delivery");
                }
            });
        }
    }

    pub async fn run(self, mut signals: mpsc::UnboundedReceiver<Signal>) {
        self.run_from(&mut signals).await
    }

    /// [`Self::run`] on a borrowed receiver, so a supervisor that restarts the
    /// engine after a panic keeps the channel and what is queued in it.
    pub async fn run_from(self, signals: &mut mpsc::UnboundedReceiver<Signal>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let batch = tokio::select! {
                s = signals.recv() => match s {
                    Some(s) => self.apply(&s),
                    None => return,
                },
                _ = tick.tick() => self.reminders(OffsetDateTime::now_utc()),
            };
            match batch {
                Ok(list) => {
                    for (alert, event) in list {
                        self.dispatch(alert, event);
                    }
                }
                Err(e) => tracing::error!(error = %e, "alert engine: database error"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{Event, HeartbeatEvent};
    use crate::config::model::Severity;
    use crate::monitor::{MonitorKey, MonitorKind};

    fn engine(dir: &std::path::Path, paused: PausePredicate) -> (AlertEngine, AlertStore) {
        let store = crate::store::Store::open(&dir.join("db")).unwrap();
        let alerts = AlertStore::new(&store).unwrap();
        let (_tx, rx) = watch::channel(Arc::new(AlertingSpec {
            channels: vec![],
            repeat_interval: crate::duration::Duration(std::time::Duration::from_secs(60)),
        }));
        std::mem::forget(_tx);
        (AlertEngine::new(alerts.clone(), rx, paused), alerts)
    }

    fn hb(event: HeartbeatEvent) -> Signal {
        Signal {
            monitor: MonitorKey {
                kind: MonitorKind::Endpoint,
                name: "backup".into(),
            },
            group: Some("jobs".into()),
            alert: None,
            at: OffsetDateTime::now_utc(),
            event: Event::Heartbeat(event),
        }
    }

    #[test]
    fn heartbeat_events_raise_escalate_resolve_with_history() {
        let dir = tempfile::tempdir().unwrap();
        let (e, store) = engine(dir.path(), super::super::nothing_paused());
        let n = e.apply(&hb(HeartbeatEvent::Late)).unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].1, AlertEventKind::Raised);
        assert_eq!(n[0].0.severity, Severity::Warning);
        assert!(
            e.apply(&hb(HeartbeatEvent::Late)).unwrap().is_empty(),
            "de-duplicated"
        );
        let n = e.apply(&hb(HeartbeatEvent::Down)).unwrap();
        assert_eq!(
            (n[0].1, n[0].0.severity),
            (AlertEventKind::Escalated, Severity::Critical)
        );
        let n = e
            .apply(&hb(HeartbeatEvent::Failed { exit_code: Some(2) }))
            .unwrap();
        assert_eq!(n.len(), 2, "{n:?}");
        let n = e.apply(&hb(HeartbeatEvent::Recovered)).unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].0.status, AlertStatus::Resolved);
        assert!(store.all_active().unwrap().is_empty());
        let all = store.list(|_| true).unwrap();
        assert_eq!(all.len(), 2, "history keeps resolved alerts");
        let down = all
            .iter()
            .find(|a| a.alert_type == super::super::AlertType::HeartbeatDown)
            .unwrap();
        let kinds: Vec<_> = down.history.iter().map(|h| h.event).collect();
        assert_eq!(
            kinds,
            [
                AlertEventKind::Raised,
                AlertEventKind::Escalated,
                AlertEventKind::Resolved
            ]
        );
        let failed = all
            .iter()
            .find(|a| a.alert_type == super::super::AlertType::HeartbeatFailed)
            .unwrap();
        assert!(failed.message.contains("exit code 2"));
    }

    #[test]
    fn a_silenced_monitor_records_alerts_without_notifying() {
        let dir = tempfile::tempdir().unwrap();
        let (e, store) = engine(dir.path(), super::super::nothing_paused());
        let window = Arc::new(std::sync::Mutex::new(Some("maintenance/1".to_owned())));
        let w = window.clone();
        let e = e.with_silence(Arc::new(move |_: &MonitorKey, g: Option<&str>, _| {
            assert_eq!(g, Some("jobs"), "the signal's group is passed");
            w.lock().unwrap().clone()
        }));
        assert!(e.apply(&hb(HeartbeatEvent::Late)).unwrap().is_empty());
        assert!(
            e.apply(&hb(HeartbeatEvent::Down)).unwrap().is_empty(),
            "no escalation notice"
        );
        let active = store.all_active().unwrap();
        assert_eq!(active.len(), 1, "recorded");
        assert!(active[0].silenced);
        assert_eq!(active[0].silenced_by.as_deref(), Some("maintenance/1"));
        assert_eq!(active[0].last_notified_at, None);
        let later = OffsetDateTime::now_utc() + time::Duration::hours(2);
        assert!(
            e.reminders(later).unwrap().is_empty(),
            "no reminder while silenced"
        );
        // The window ends: a still-active alert is reminded after the repeat interval.
        *window.lock().unwrap() = None;
        let r = e.reminders(later).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].1, AlertEventKind::Reminder);
        // Told once, so its resolution is announced.
        let n = e.apply(&hb(HeartbeatEvent::Recovered)).unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].1, AlertEventKind::Resolved);
        // Raised and resolved inside a window: never announced at all.
        *window.lock().unwrap() = Some("maintenance/1".to_owned());
        assert!(e.apply(&hb(HeartbeatEvent::Late)).unwrap().is_empty());
        *window.lock().unwrap() = None;
        assert!(e.apply(&hb(HeartbeatEvent::Recovered)).unwrap().is_empty());
    }

    #[test]
    fn acknowledged_alerts_are_not_reminded_and_stay_active() {
        let dir = tempfile::tempdir().unwrap();
        let (e, store) = engine(dir.path(), super::super::nothing_paused());
        let raised = e.apply(&hb(HeartbeatEvent::Down)).unwrap().remove(0).0;
        let later = OffsetDateTime::now_utc() + time::Duration::minutes(2);
        assert_eq!(
            e.reminders(later).unwrap().len(),
            1,
            "due after repeat_interval"
        );
        assert!(e.reminders(later).unwrap().is_empty(), "not twice at once");
        let acked = acknowledge(
            &store,
            &raised.id,
            "alice@example.com",
            Some("on it".into()),
        )
        .unwrap();
        assert_eq!(acked.acknowledged_by.as_deref(), Some("alice@example.com"));
        assert_eq!(acked.status, AlertStatus::Active);
        let again = acknowledge(&store, &raised.id, "bob", None).unwrap();
        assert_eq!(
            again.acknowledged_by.as_deref(),
            Some("alice@example.com"),
            "idempotent"
        );
        assert_eq!(again.acknowledged_at, acked.acknowledged_at);
        assert!(
            e.reminders(later + time::Duration::hours(5))
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            acknowledge(&store, "999", "x", None),
            Err(AckError::NotFound(_))
        ));
        e.apply(&hb(HeartbeatEvent::Recovered)).unwrap();
        assert!(matches!(
            acknowledge(&store, &raised.id, "x", None),
            Err(AckError::Resolved { .. })
        ));
    }

    #[test]
    fn old_resolved_alerts_are_pruned_active_ones_never() {
        let dir = tempfile::tempdir().unwrap();
        let (e, store) = engine(dir.path(), super::super::nothing_paused());
        let mut old = hb(HeartbeatEvent::Down);
        old.at -= time::Duration::days(60);
        e.apply(&old).unwrap();
        let mut rec = hb(HeartbeatEvent::Recovered);
        rec.at -= time::Duration::days(59);
        e.apply(&rec).unwrap();
        store
            .record_delivery(
                1,
                &super::super::store::Delivery {
                    channel: "x".into(),
                    event: AlertEventKind::Raised,
                    at: old.at,
                    attempts: 1,
                    ok: false,
                    status_code: None,
                    error: None,
                },
            )
            .unwrap();
        assert_eq!(store.failed_deliveries().0, 1);
        assert_eq!(store.failed_deliveries().1.unwrap().0, "1");
        e.apply(&hb(HeartbeatEvent::Down)).unwrap();
        let cutoff = OffsetDateTime::now_utc() - time::Duration::days(30);
        assert_eq!(store.prune_resolved(cutoff).unwrap(), 1);
        assert!(store.deliveries(1).unwrap().is_empty());
        assert_eq!(
            store.failed_deliveries(),
            (0, None),
            "the pruned delivery is no longer counted"
        );
        let left = store.list(|_| true).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].status, AlertStatus::Active);
        assert_eq!(left[0].id, "2", "ids keep growing");
    }

    /// The count `get_health` shows is kept in memory; a reopened store
    /// counts what is on disk.
    #[test]
    fn failed_deliveries_are_counted_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let delivery = |ok: bool, minutes: i64| super::super::store::Delivery {
            channel: "x".into(),
            event: AlertEventKind::Raised,
            at: OffsetDateTime::now_utc() - time::Duration::minutes(minutes),
            attempts: 3,
            ok,
            status_code: Some(500),
            error: None,
        };
        {
            let store = crate::store::Store::open(&dir.path().join("db")).unwrap();
            let alerts = AlertStore::new(&store).unwrap();
            assert_eq!(alerts.failed_deliveries(), (0, None));
            alerts.record_delivery(7, &delivery(false, 1)).unwrap();
            alerts.record_delivery(3, &delivery(false, 5)).unwrap();
            alerts.record_delivery(9, &delivery(true, 0)).unwrap();
            let (n, last) = alerts.failed_deliveries();
            assert_eq!(
                (n, last.unwrap().0.as_str()),
                (2, "7"),
                "the most recent failure"
            );
            store.flush().unwrap();
        }
        let store = crate::store::Store::open(&dir.path().join("db")).unwrap();
        let (n, last) = AlertStore::new(&store).unwrap().failed_deliveries();
        assert_eq!((n, last.unwrap().0.as_str()), (2, "7"));
    }

    /// Heartbeat signals fed straight to the engine reach real Slack- and
    /// Discord-style receivers on 127.0.0.1: raised, escalated, resolved.
    #[tokio::test]
    async fn heartbeat_signals_notify_slack_and_discord_receivers() {
        use crate::config::model::{ChannelSpec, ChannelType};
        let got: Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
        let g = got.clone();
        let app = axum::Router::new().route(
            "/{kind}",
            axum::routing::post(
                async move |axum::extract::Path(kind): axum::extract::Path<String>,
                            axum::Json(v): axum::Json<serde_json::Value>| {
                    g.lock().unwrap().push((kind, v));
                    "ok"
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let channel = |name: &str, kind| ChannelSpec {
            name: name.into(),
            kind,
            url: format!("{base}/{name}"),
            secret: None,
            headers: Default::default(),
            severities: vec![],
            groups: vec!["jobs".into()],
            retries: 1,
            retry_backoff: crate::duration::Duration::from_millis(10),
            timeout: crate::duration::Duration::from_millis(2000),
        };
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("db")).unwrap();
        let alerts = AlertStore::new(&store).unwrap();
        let (_tx, rx) = watch::channel(Arc::new(AlertingSpec {
            channels: vec![
                channel("slack", ChannelType::Slack),
                channel("discord", ChannelType::Discord),
            ],
            repeat_interval: crate::duration::Duration(std::time::Duration::ZERO),
        }));
        let e = AlertEngine::new(alerts.clone(), rx, super::super::nothing_paused());
        let (tx, signals) = mpsc::unbounded_channel();
        tokio::spawn(e.run(signals));
        for ev in [
            HeartbeatEvent::Late,
            HeartbeatEvent::Down,
            HeartbeatEvent::Recovered,
        ] {
            tx.send(hb(ev)).unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while got.lock().unwrap().len() < 6 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let got = got.lock().unwrap().clone();
        let texts = |kind: &str, field: &str| -> Vec<String> {
            let mut v: Vec<String> = got
                .iter()
                .filter(|(k, _)| k == kind)
                .map(|(_, b)| b[field].as_str().unwrap().to_owned())
                .collect();
            v.sort();
            v
        };
        let slack = texts("slack", "text");
        assert_eq!(slack.len(), 3, "{got:?}");
        assert!(
            slack[0].starts_with("[ALERT] [warning] heartbeat_down: endpoint/backup is late"),
            "{slack:?}"
        );
        assert!(
            slack[1].starts_with("[ESCALATED] [critical] heartbeat_down"),
            "{slack:?}"
        );
        assert!(slack[2].starts_with("[RESOLVED]"), "{slack:?}");
        assert_eq!(texts("discord", "content").len(), 3);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while alerts.deliveries(1).unwrap().len() < 6 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let d = alerts.deliveries(1).unwrap();
        assert_eq!(d.len(), 6, "every delivery recorded: {d:?}");
        assert!(d.iter().all(|d| d.ok && d.attempts == 1));
    }

    #[test]
    fn paused_monitors_raise_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (e, store) = engine(dir.path(), Arc::new(|k: &MonitorKey| &*k.name == "backup"));
        assert!(e.apply(&hb(HeartbeatEvent::Down)).unwrap().is_empty());
        assert!(store.list(|_| true).unwrap().is_empty());
    }
}
