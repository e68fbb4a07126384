//! The write operations behind `create_incident`, `update_incident` and
//! `create_maintenance`: input checks with errors that say what to send
//! instead, then one record in sled.

use schemars::JsonSchema;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::limits::{
    MAX_INCIDENTS, MAX_MESSAGE_CHARS, MAX_SCOPE_ITEMS, MAX_TITLE_CHARS, MAX_UPDATES, MAX_WINDOW,
    MAX_WINDOWS, check_chars, check_items,
};
use super::scope;
use super::store::{
    AddError, Incident, IncidentStatus, IncidentUpdate, Maintenance, WindowState, parse_id,
};
use crate::engine::App;
use crate::readmodel::{ReadError, suggest};

/// A text field: not empty, at most `max` characters.
fn required(field: &str, v: &str, max: usize) -> Result<String, ReadError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(ReadError::BadArgument(format!("{field} must not be empty")));
    }
    check_chars(field, v, max).map_err(ReadError::BadArgument)?;
    Ok(v.to_owned())
}

fn bad(m: String) -> ReadError {
    ReadError::BadArgument(m)
}

impl From<AddError> for ReadError {
    fn from(e: AddError) -> Self {
        match e {
            AddError::Full(m) => ReadError::BadArgument(m),
            AddError::Store(e) => e.into(),
        }
    }
}

pub fn create_incident(
    app: &App,
    title: &str,
    status: Option<IncidentStatus>,
    message: &str,
    monitors: &[String],
    by: &str,
) -> Result<Incident, ReadError> {
    let title = required("title", title, MAX_TITLE_CHARS)?;
    let message = required("message", message, MAX_MESSAGE_CHARS)?;
    check_items("monitors", monitors, MAX_SCOPE_ITEMS).map_err(bad)?;
    let monitors = scope::resolve_all(&app.desired(), monitors)?;
    let status = status.unwrap_or(IncidentStatus::Investigating);
    let now = OffsetDateTime::now_utc();
    let n = app.status.next_incident_id()?;
    let incident = Incident {
        id: n.to_string(),
        title,
        status,
        monitors,
        created_at: now,
        updated_at: now,
        resolved_at: (status == IncidentStatus::Resolved).then_some(now),
        updates: vec![IncidentUpdate {
            at: now,
            status,
            message,
            by: by.to_owned(),
        }],
    };
    if let Some(old) = app.status.add_incident(n, &incident, MAX_INCIDENTS)? {
        tracing::info!(incident = %old.id, "deleted the oldest resolved incident: {MAX_INCIDENTS} are kept");
    }
    Ok(incident)
}

pub fn update_incident(
    app: &App,
    incident_id: &str,
    status: IncidentStatus,
    message: &str,
    by: &str,
) -> Result<Incident, ReadError> {
    let message = required("message", message, MAX_MESSAGE_CHARS)?;
    let not_found = || {
        ReadError::NotFound(format!(
            "no incident with id {:?}; the ids are on /status.json (incidents[].id) \
             or in create_incident's answer",
            incident_id.chars().take(40).collect::<String>()
        ))
    };
    let n = parse_id(incident_id, "incident").ok_or_else(not_found)?;
    let now = OffsetDateTime::now_utc();
    let mut full = false;
    let updated = app
        .status
        .update_incident(n, |i| {
            // Called again when another update won the race: decide afresh.
            full = i.updates.len() >= MAX_UPDATES;
            if full {
                return;
            }
            i.status = status;
            i.updated_at = now;
            i.resolved_at = match status {
                IncidentStatus::Resolved => i.resolved_at.or(Some(now)),
                // Reopened.
                _ => None,
            };
            i.updates.push(IncidentUpdate {
                at: now,
                status,
                message: message.clone(),
                by: by.to_owned(),
            });
        })?
        .ok_or_else(not_found)?;
    if full {
        return Err(bad(format!(
            "incident {} has {MAX_UPDATES} updates, the most kept: resolve it and open a new \
             incident for what follows",
            updated.id
        )));
    }
    Ok(updated)
}

/// `create_maintenance`'s answer: the window, where it stands now, and the
/// monitors its groups cover today.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MaintenanceAnswer {
    #[serde(flatten)]
    pub window: Maintenance,
    /// upcoming, ongoing or completed.
    pub state: WindowState,
    /// Every monitor in scope now (named ones, and the members of its groups).
    pub covered_monitors: Vec<String>,
}

fn parse_time(field: &str, v: &str) -> Result<OffsetDateTime, ReadError> {
    OffsetDateTime::parse(v.trim(), &Rfc3339).map_err(|e| {
        ReadError::BadArgument(format!(
            "{field} {:?} is not an RFC 3339 time ({e}); write it like 2026-11-25T22:00:00Z \
             or 2026-11-25T23:00:00+01:00",
            v.chars().take(40).collect::<String>()
        ))
    })
}

pub struct NewWindow<'a> {
    pub title: &'a str,
    pub start_time: &'a str,
    pub end_time: &'a str,
    pub message: Option<&'a str>,
    pub monitors: &'a [String],
    pub groups: &'a [String],
    pub by: &'a str,
}

pub fn create_maintenance(app: &App, w: NewWindow<'_>) -> Result<MaintenanceAnswer, ReadError> {
    let title = required("title", w.title, MAX_TITLE_CHARS)?;
    let message = match w.message.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => Some(required("message", m, MAX_MESSAGE_CHARS)?),
        None => None,
    };
    check_items("monitors", w.monitors, MAX_SCOPE_ITEMS).map_err(bad)?;
    check_items("groups", w.groups, MAX_SCOPE_ITEMS).map_err(bad)?;
    let start = parse_time("start_time", w.start_time)?;
    let end = parse_time("end_time", w.end_time)?;
    if end <= start {
        return Err(ReadError::BadArgument(format!(
            "end_time {} is not after start_time {}: a window must end after it starts",
            w.end_time.trim(),
            w.start_time.trim()
        )));
    }
    if end - start > MAX_WINDOW {
        return Err(bad(format!(
            "the window lasts {}: at most {} days",
            crate::duration::Duration((end - start).unsigned_abs()),
            MAX_WINDOW.as_secs() / 86_400
        )));
    }
    if w.monitors.is_empty() && w.groups.is_empty() {
        return Err(ReadError::BadArgument(
            "a window needs monitors (names or ids) or groups: which alerts should it silence?"
                .into(),
        ));
    }
    let desired = app.desired();
    let monitors = scope::resolve_all(&desired, w.monitors)?;
    // Containers have groups too (`maintenant.group`, the compose project,
    // the workload), and their alerts are silenced by them.
    let containers = app.runtimes.containers();
    let known: std::collections::BTreeSet<&str> = desired
        .monitors
        .values()
        .filter_map(|m| m.spec.group())
        .chain(containers.values().filter_map(|c| c.group.as_deref()))
        .collect();
    let mut groups: Vec<String> = Vec::new();
    for g in w.groups {
        let g = g.trim();
        suggest::check_query("group", g, suggest::MAX_QUERY_CHARS)?;
        if !known.contains(g) {
            let near = suggest::closest(g, known.iter().copied(), 1);
            let hint = match near.first() {
                Some(k) => format!("did you mean '{k}'?"),
                None if known.is_empty() => "no monitor declares a group yet".to_owned(),
                None => format!(
                    "declared groups: {}{}",
                    known
                        .iter()
                        .take(20)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", "),
                    if known.len() > 20 { ", ..." } else { "" }
                ),
            };
            return Err(ReadError::NotFound(format!("no group named '{g}'; {hint}")));
        }
        if !groups.iter().any(|x| x == g) {
            groups.push(g.to_owned());
        }
    }
    let n = app.status.next_maintenance_id()?;
    let now = OffsetDateTime::now_utc();
    let window = Maintenance {
        id: format!("maintenance/{n}"),
        title,
        message,
        start_time: start,
        end_time: end,
        monitors,
        groups,
        created_at: now,
        created_by: w.by.to_owned(),
    };
    if let Some(old) = app.status.add_maintenance(n, &window, MAX_WINDOWS, now)? {
        tracing::info!(window = %old.id, "deleted the window that ended first: {MAX_WINDOWS} are kept");
    }
    let covered_monitors = desired
        .monitors
        .iter()
        .filter(|(k, m)| super::silence::covers(&window, k, m.spec.group()))
        .map(|(k, _)| k.id())
        .chain(containers.values().filter_map(|c| {
            let key = crate::monitor::MonitorKey::container(c.name.as_str());
            super::silence::covers(&window, &key, c.group.as_deref()).then(|| key.id())
        }))
        .collect();
    Ok(MaintenanceAnswer {
        state: window.state_at(now),
        window,
        covered_monitors,
    })
}
