//! The alert engine: observations in, alerts (raised, escalated, resolved,
//! acknowledged, with history) and notifications out.
//!
//! - [`Signal`]s are what checks observed (an endpoint went down, a
//!   certificate result, a heartbeat event); they arrive on one channel.
//! - [`rules`] decides, as a pure function, what a signal means for the
//!   monitor's active alerts.
//! - [`store`] keeps alerts, their history and delivery attempts in sled.
//! - [`engine`] applies decisions, and hands notifications to [`notify`].

pub mod containers;
pub mod engine;
pub mod heartbeats;
pub mod notify;
pub mod rules;
pub mod store;

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::checks::certificate::CertStatus;
use crate::config::model::{AlertDecl, Severity};
use crate::monitor::{MonitorKey, MonitorKind};

pub use engine::AlertEngine;
pub use store::AlertStore;

/// One observation the engine may turn into alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub monitor: MonitorKey,
    pub group: Option<String>,
    /// The monitor's alert routing (severity, channels).
    pub alert: Option<AlertDecl>,
    pub at: OffsetDateTime,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The endpoint crossed its failure threshold.
    EndpointDown {
        error: Option<String>,
    },
    /// The endpoint is up (after its recovery threshold, or its first success).
    EndpointUp,
    /// A certificate check's result.
    Certificate {
        status: CertStatus,
        days_left: Option<i64>,
        /// The smallest `warn_days` threshold crossed.
        threshold_days: Option<u32>,
        /// The smallest `warn_days` value: crossing it raises the monitor's own severity.
        last_threshold: u32,
        detail: Option<String>,
    },
    Heartbeat(HeartbeatEvent),
    /// Every container condition that holds now (level-triggered: a
    /// container alert not in the list resolves). See [`containers`].
    Container(Vec<ContainerCondition>),
    /// The monitor is no longer declared (a container: it is gone, ignored,
    /// or its alerts are switched off): its active alerts resolve.
    Removed,
}

/// One container condition that holds (see [`containers::evaluate`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerCondition {
    pub alert_type: AlertType,
    pub severity: Severity,
    pub message: String,
    /// False for a condition that may keep an active alert but not raise a
    /// new one (an exit older than a day, found at start-up).
    pub may_raise: bool,
}

/// What the heartbeat monitors report.
#[derive(Debug, Clone, PartialEq)]
pub enum HeartbeatEvent {
    /// Past the period, inside grace.
    Late,
    /// Past the grace.
    Down,
    /// The job pinged `/fail` or a non-zero exit code.
    Failed { exit_code: Option<u8> },
    /// A successful ping after late, down or failed.
    Recovered,
}

/// The kinds of alert; one active alert at most per (monitor, type).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertType {
    EndpointDown,
    CertificateExpiring,
    CertificateExpired,
    CertificateInvalid,
    /// Late (warning), escalated when the heartbeat is down.
    HeartbeatDown,
    HeartbeatFailed,
    /// Docker: `restart_threshold` restarts within `restart_window`.
    ContainerRestartLoop,
    /// Killed by the OOM killer (Docker, or a pod's container `OOMKilled`).
    ContainerOomKilled,
    /// Docker: the health check says unhealthy.
    ContainerUnhealthy,
    /// Docker: exited non-zero, not stopped on purpose nor restarted.
    ContainerUnexpectedExit,
    /// A pod's container in `CrashLoopBackOff`.
    ContainerCrashLoop,
    /// A pod's image cannot be pulled (`ErrImagePull`, `ImagePullBackOff`, ...).
    ContainerImagePull,
    /// A pod not Ready for longer than `not_ready_after`.
    ContainerNotReady,
}

impl AlertType {
    /// Every container alert type, in a fixed order.
    pub const CONTAINER: [AlertType; 7] = [
        AlertType::ContainerRestartLoop,
        AlertType::ContainerOomKilled,
        AlertType::ContainerUnhealthy,
        AlertType::ContainerUnexpectedExit,
        AlertType::ContainerCrashLoop,
        AlertType::ContainerImagePull,
        AlertType::ContainerNotReady,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertType::EndpointDown => "endpoint_down",
            AlertType::CertificateExpiring => "certificate_expiring",
            AlertType::CertificateExpired => "certificate_expired",
            AlertType::CertificateInvalid => "certificate_invalid",
            AlertType::HeartbeatDown => "heartbeat_down",
            AlertType::HeartbeatFailed => "heartbeat_failed",
            AlertType::ContainerRestartLoop => "container_restart_loop",
            AlertType::ContainerOomKilled => "container_oom_killed",
            AlertType::ContainerUnhealthy => "container_unhealthy",
            AlertType::ContainerUnexpectedExit => "container_unexpected_exit",
            AlertType::ContainerCrashLoop => "container_crash_loop",
            AlertType::ContainerImagePull => "container_image_pull",
            AlertType::ContainerNotReady => "container_not_ready",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Active,
    Resolved,
}

/// Something that happened to an alert; what notifications announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertEventKind {
    Raised,
    Escalated,
    /// Re-notification of an active, unacknowledged alert.
    Reminder,
    Acknowledged,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AlertEvent {
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    pub event: AlertEventKind,
    pub severity: Severity,
    pub message: String,
}

/// An alert, as stored and as `list_alerts` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Alert {
    /// Pass to `acknowledge_alert`.
    pub id: String,
    #[serde(rename = "type")]
    pub alert_type: AlertType,
    pub severity: Severity,
    pub status: AlertStatus,
    /// The monitor's id (`endpoint/api`; `container/web` for a Docker
    /// container, `container/NAMESPACE/POD` for a pod).
    pub entity: String,
    /// The monitor's kind: endpoint, certificate, heartbeat or container.
    pub source: MonitorKind,
    pub group: Option<String>,
    pub message: String,
    /// For certificate_expiring: the smallest warn_days threshold crossed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_days: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub fired_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub resolved_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub acknowledged_at: Option<OffsetDateTime>,
    pub acknowledged_by: Option<String>,
    pub note: Option<String>,
    /// The monitor's `alert.channels` (empty: every channel whose filters match).
    pub channels: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub last_notified_at: Option<OffsetDateTime>,
    /// Raised while a maintenance window covering its monitor ran: recorded,
    /// not notified.
    #[serde(default)]
    pub silenced: bool,
    /// The window that silenced it (`maintenance/N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced_by: Option<String>,
    /// Oldest first.
    pub history: Vec<AlertEvent>,
}

impl Alert {
    pub fn monitor_key(&self) -> Option<MonitorKey> {
        let (_, name) = self.entity.split_once('/')?;
        Some(MonitorKey::new(self.source, name))
    }
}

/// Where checks send signals. The default sends nowhere (benchmarks, unit tests).
#[derive(Clone, Default)]
pub struct SignalSender(Option<mpsc::UnboundedSender<Signal>>);

impl SignalSender {
    pub fn new(tx: mpsc::UnboundedSender<Signal>) -> Self {
        SignalSender(Some(tx))
    }

    /// Unbounded: a signal is never dropped because the engine is busy.
    pub fn send(&self, s: Signal) {
        if let Some(tx) = &self.0
            && tx.send(s).is_err()
        {
            tracing::warn!("the alert engine has stopped; a signal was not processed");
        }
    }
}

/// Whether a monitor is paused: a paused monitor raises nothing (its alerts
/// still resolve). Pauses are stored elsewhere; this is the hook.
pub type PausePredicate = Arc<dyn Fn(&MonitorKey) -> bool + Send + Sync>;

/// Whether a maintenance window silences a monitor's alerts at a time:
/// the id of the window (`maintenance/N`), or None. Arguments: the monitor,
/// its group, the time.
pub type SilencePredicate =
    Arc<dyn Fn(&MonitorKey, Option<&str>, OffsetDateTime) -> Option<String> + Send + Sync>;

/// Nothing silenced.
pub fn nothing_silenced() -> SilencePredicate {
    Arc::new(|_, _, _| None)
}

/// Nothing paused.
pub fn nothing_paused() -> PausePredicate {
    Arc::new(|_| false)
}
