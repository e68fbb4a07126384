//! `list_alerts` rows (the alert, its delivery attempts) and acknowledgement.

use schemars::JsonSchema;
use serde::Serialize;

use crate::alerts::engine::{AckError, acknowledge};
use crate::alerts::store::{Delivery, parse_id};
use crate::alerts::{Alert, AlertStatus, AlertType};
use crate::config::model::Severity;
use crate::engine::App;
use crate::readmodel::listing::{Facts, Listing, brief, state_name};
use crate::readmodel::{Page, ReadError, paginate};

#[derive(Debug, Serialize, JsonSchema)]
pub struct AlertRow {
    #[serde(flatten)]
    pub alert: Alert,
    /// Notifications sent for this alert, oldest first; `ok: false` is a
    /// delivery that still failed after its retries.
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Default, Clone)]
pub struct AlertFilter {
    pub active_only: bool,
    pub severity: Option<Severity>,
    /// A monitor kind (`endpoint`, `certificate`, `heartbeat`, `container`) or a monitor id / name.
    pub source: Option<String>,
}

fn source_matches(a: &Alert, source: &str) -> bool {
    let s = source.trim();
    if s.eq_ignore_ascii_case(a.source.as_str()) {
        return true;
    }
    let name = a.entity.split_once('/').map_or("", |(_, n)| n);
    a.entity.eq_ignore_ascii_case(s) || name.eq_ignore_ascii_case(s)
}

pub fn list_alerts(
    app: &App,
    filter: &AlertFilter,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Page<AlertRow>, ReadError> {
    let page = paginate(matching(app, filter)?, limit, cursor)?;
    let mut items = Vec::with_capacity(page.items.len());
    for alert in page.items {
        let deliveries = app.alerts.deliveries(parse_id(&alert.id).unwrap_or(0))?;
        items.push(AlertRow { alert, deliveries });
    }
    Ok(Page {
        items,
        total: page.total,
        next_cursor: page.next_cursor,
    })
}

/// The alerts the filter keeps, newest first.
fn matching(app: &App, filter: &AlertFilter) -> Result<Vec<Alert>, ReadError> {
    if let Some(s) = &filter.source
        && s.trim().is_empty()
    {
        return Err(ReadError::BadArgument(
            "source is empty: give a monitor kind (endpoint, certificate, heartbeat, container) or a monitor id".into(),
        ));
    }
    if let Some(s) = &filter.source {
        check_source(app, s)?;
    }
    Ok(app.alerts.list(|a| {
        (!filter.active_only || a.status == AlertStatus::Active)
            && filter.severity.is_none_or(|s| a.severity == s)
            && filter
                .source
                .as_deref()
                .is_none_or(|s| source_matches(a, s))
    })?)
}

/// An alert in a brief list: what fired, when, and whether someone is on it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AlertBrief {
    /// Pass to `acknowledge_alert`.
    pub id: String,
    #[serde(rename = "type")]
    pub alert_type: AlertType,
    pub severity: Severity,
    pub status: AlertStatus,
    /// The monitor's id (`endpoint/api`).
    pub entity: String,
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub fired_at: time::OffsetDateTime,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    #[schemars(with = "Option<String>")]
    pub resolved_at: Option<time::OffsetDateTime>,
    /// Who acknowledged it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// Raised during a maintenance window: recorded, not notified.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub silenced: bool,
}

/// `list_alerts` in brief: counts by status; active, unacknowledged ones
/// first, newest first within each part.
pub fn brief_alerts(
    app: &App,
    filter: &AlertFilter,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Listing<AlertBrief, AlertRow>, ReadError> {
    let needs = |a: &Alert| a.status == AlertStatus::Active && a.acknowledged_at.is_none();
    brief(
        matching(app, filter)?,
        |a| Facts {
            state: state_name(&a.status).into(),
            attention: needs(a),
        },
        |a| AlertBrief {
            id: a.id.clone(),
            alert_type: a.alert_type,
            severity: a.severity,
            status: a.status,
            entity: a.entity.clone(),
            message: a.message.clone(),
            fired_at: a.fired_at,
            resolved_at: a.resolved_at,
            acknowledged_by: a.acknowledged_by.clone(),
            silenced: a.silenced,
        },
        limit,
        cursor,
    )
}

/// Kinds an alert can come from (heartbeats included: their alerts are fed
/// to the same engine).
const SOURCE_KINDS: [&str; 4] = ["endpoint", "certificate", "heartbeat", "container"];

/// A source must be a kind, a declared monitor, or a monitor that has
/// alerts; anything else is a typo that would silently match nothing.
fn check_source(app: &App, source: &str) -> Result<(), ReadError> {
    let s = source.trim();
    crate::readmodel::suggest::check_query("source", s, crate::readmodel::MAX_MONITOR_ID_CHARS)?;
    if SOURCE_KINDS.iter().any(|k| k.eq_ignore_ascii_case(s)) {
        return Ok(());
    }
    let state = app.desired();
    let declared = state
        .monitors
        .keys()
        .any(|k| k.id().eq_ignore_ascii_case(s) || k.name.eq_ignore_ascii_case(s))
        || app.runtimes.containers().values().any(|c| {
            c.name
                .eq_ignore_ascii_case(s.strip_prefix("container/").unwrap_or(s))
        });
    if declared || !app.alerts.list(|a| source_matches(a, s))?.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = state.monitors.keys().map(|k| k.id()).collect();
    let close: Vec<&str> = crate::readmodel::suggest::closest(
        s,
        SOURCE_KINDS
            .iter()
            .copied()
            .chain(ids.iter().map(String::as_str)),
        3,
    );
    let hint = if close.is_empty() {
        "use endpoint, certificate, heartbeat or container, or a monitor id like endpoint/api"
            .to_owned()
    } else {
        format!("did you mean {}?", close.join(" or "))
    };
    Err(ReadError::NotFound(format!(
        "no monitor or source kind named '{s}'; {hint}"
    )))
}

/// Longest alert id accepted (a 64-bit number, with room for `#` and blanks).
const MAX_ALERT_ID_CHARS: usize = 32;

pub fn acknowledge_alert(
    app: &App,
    id: &str,
    by: &str,
    note: Option<String>,
) -> Result<AlertRow, ReadError> {
    // Alert ids are numbers; a note is kept with the alert.
    crate::readmodel::suggest::check_query("alert_id", id.trim(), MAX_ALERT_ID_CHARS)?;
    if let Some(n) = &note {
        crate::status::limits::check_chars("note", n, crate::status::limits::MAX_MESSAGE_CHARS)
            .map_err(ReadError::BadArgument)?;
    }
    let alert = acknowledge(&app.alerts, id, by, note).map_err(|e| match e {
        AckError::Store(e) => ReadError::Store(e.to_string()),
        other => ReadError::NotFound(other.to_string()),
    })?;
    let deliveries = app.alerts.deliveries(parse_id(&alert.id).unwrap_or(0))?;
    Ok(AlertRow { alert, deliveries })
}
