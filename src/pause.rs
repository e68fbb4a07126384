//! Pausing and resuming monitors (`pause_monitor`, `resume_monitor`).
//!
//! A pause is stored in sled (the `pauses` tree), never only in memory, so
//! it survives reloads and restarts until resumed; [`Store::is_paused`] is
//! what every part asks (check tasks, and an alert engine).
//! - heartbeat: its status becomes `paused`; pings are still recorded (last
//!   ping, count, output) but change nothing and no deadline applies. Resume
//!   makes it `up` with deadlines counted from the resume (or `new` if never
//!   pinged). Goes through the heartbeat writer, so a pause is ordered with
//!   pings and on disk before the answer.
//! - endpoint and certificate: not checked at all while paused (no results recorded, so its
//!   uptime is not affected); it shows `paused`. Resume checks it again at
//!   its next interval, from the state it had.
//! - container (a Docker container or a pod, by the name `list_containers`
//!   shows): its container alerts raise nothing while paused (the active
//!   ones still resolve). The pause is kept by name, so it outlives a
//!   recreate of the container.
//!
//! [`Store::is_paused`]: crate::store::Store::is_paused

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::engine::App;
use crate::monitor::{MonitorKey, MonitorKind};
use crate::readmodel::{self, ReadError};

/// The kinds of monitor `pause_monitor` and `resume_monitor` act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MonitorType {
    Heartbeat,
    Endpoint,
    Certificate,
    Container,
}

impl MonitorType {
    fn kind(self) -> Result<MonitorKind, ReadError> {
        match self {
            MonitorType::Heartbeat => Ok(MonitorKind::Heartbeat),
            MonitorType::Endpoint => Ok(MonitorKind::Endpoint),
            MonitorType::Certificate => Ok(MonitorKind::Certificate),
            MonitorType::Container => Ok(MonitorKind::Container),
        }
    }
}

/// The answer of pause/resume: the monitor after.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PauseAnswer {
    pub id: String,
    pub monitor_type: MonitorType,
    pub paused: bool,
    /// False when it already was in the asked state (the call is idempotent).
    pub changed: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub paused_at: Option<OffsetDateTime>,
    /// The monitor's row after the change, as list_heartbeats / list_endpoints show it.
    pub monitor: serde_json::Value,
}

/// Pause (`pause = true`) or resume a monitor named by id or name.
pub async fn set_paused(
    app: &App,
    monitor_type: MonitorType,
    monitor_id: &str,
    pause: bool,
) -> Result<PauseAnswer, ReadError> {
    let kind = monitor_type.kind()?;
    let key = match kind {
        MonitorKind::Container => {
            MonitorKey::container(readmodel::containers::resolve_container(app, monitor_id)?.name)
        }
        _ => readmodel::resolve(&app.desired(), kind, monitor_id)?,
    };
    let was = app.store.is_paused(&key);
    match kind {
        MonitorKind::Heartbeat => {
            app.heartbeats
                .set_paused(&key, pause)
                .await
                .map_err(ReadError::Store)?;
        }
        MonitorKind::Endpoint | MonitorKind::Certificate | MonitorKind::Container => {
            if pause && !was {
                app.store.set_paused(&key, OffsetDateTime::now_utc())?;
            } else if !pause {
                app.store.clear_paused(&key)?;
            }
            app.store.flush()?;
        }
    }
    let paused_at = app.store.pause_record(&key)?.map(|p| p.at);
    Ok(PauseAnswer {
        id: key.id(),
        monitor_type,
        paused: paused_at.is_some(),
        changed: was != pause,
        paused_at,
        monitor: monitor_row(app, &key)?,
    })
}

pub(crate) fn monitor_row(app: &App, key: &MonitorKey) -> Result<serde_json::Value, ReadError> {
    let to_json = |v: Result<serde_json::Value, serde_json::Error>| {
        v.map_err(|e| ReadError::Store(e.to_string()))
    };
    match key.kind {
        MonitorKind::Heartbeat => to_json(serde_json::to_value(
            readmodel::heartbeats::heartbeat_row(app, key)?,
        )),
        MonitorKind::Endpoint => {
            let filter = readmodel::EndpointFilter {
                name: Some(key.name.to_string()),
                ..Default::default()
            };
            let page = readmodel::list_endpoints(app, &filter, Some(500), None)?;
            let row = page
                .items
                .into_iter()
                .find(|r| *r.name == *key.name)
                .ok_or_else(|| ReadError::NotFound(format!("{} is not declared", key.id())))?;
            to_json(serde_json::to_value(row))
        }
        MonitorKind::Certificate => to_json(serde_json::to_value(
            crate::views::certificates::certificate_row(app, key)?,
        )),
        MonitorKind::Container => to_json(serde_json::to_value(
            readmodel::containers::resolve_container(app, &key.name)?,
        )),
    }
}
