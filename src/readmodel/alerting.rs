//! Alerting as `get_health` shows it: channels, active alerts, failed
//! deliveries. Part of the health answer, so it lives with the read model
//! (`views/alerts.rs` builds the `list_alerts` rows on top of it).

use schemars::JsonSchema;
use serde::Serialize;

use crate::alerts::store::Delivery;
use crate::engine::App;

/// Alerting as `get_health` shows it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AlertingHealth {
    /// Notification channels in force (from `alerting.channels`).
    pub channels: Vec<String>,
    pub active_alerts: usize,
    /// Notifications that still failed after their retries (see `deliveries` in list_alerts).
    pub failed_deliveries: u64,
    /// The most recent failed delivery, with its alert id.
    pub last_failed_delivery: Option<FailedDelivery>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FailedDelivery {
    pub alert_id: String,
    #[serde(flatten)]
    pub delivery: Delivery,
}

pub fn alerting_health(app: &App) -> AlertingHealth {
    let (failed, last) = app.alerts.failed_deliveries();
    AlertingHealth {
        channels: app
            .alerting
            .borrow()
            .channels
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        active_alerts: app.alerts.all_active().map_or(0, |v| v.len()),
        failed_deliveries: failed,
        last_failed_delivery: last
            .map(|(alert_id, delivery)| FailedDelivery { alert_id, delivery }),
    }
}
