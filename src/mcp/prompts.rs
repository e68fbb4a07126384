//! MCP prompts: runbooks an assistant starts from (clients show them as
//! slash commands), each built from live data when it is asked for, and
//! completions for their monitor arguments.
//!
//! A prompt is one user message: what is true now (the same briefs the
//! tools answer, so it stays small) and the steps to take with the tools.

use rmcp::ErrorData;
use rmcp::model::{CompletionInfo, GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::engine::App;
use crate::monitor::MonitorKind;
use crate::readmodel::{self, ReadError};

pub const TRIAGE: &str = "triage";
pub const WHAT_CHANGED: &str = "what_changed";
pub const CERTIFICATES: &str = "certificates_to_renew";
pub const MAINTENANCE: &str = "prepare_maintenance";
/// Longest look back `what_changed` takes.
const MAX_HOURS: u64 = 24 * 31;
/// Alerts a prompt quotes (the counts cover all).
const ALERTS_SHOWN: u32 = 20;

pub fn list() -> Vec<Prompt> {
    vec![
        Prompt::new(
            TRIAGE,
            Some("Triage what is wrong now: every monitor and container needing attention, the active alerts, and how to find each cause."),
            None,
        ),
        Prompt::new(
            WHAT_CHANGED,
            Some("What changed in the last N hours: alerts fired and resolved, config reloads, containers (re)started."),
            Some(vec![PromptArgument::new("hours")
                .with_description("How far back, in hours (default 24, max 744).")
                .with_required(false)]),
        ),
        Prompt::new(
            CERTIFICATES,
            Some("Certificates to renew: expired, expiring within N days, invalid or unreadable ones, soonest first."),
            Some(vec![PromptArgument::new("days")
                .with_description("Within how many days (default 30).")
                .with_required(false)]),
        ),
        Prompt::new(
            MAINTENANCE,
            Some("Prepare a maintenance window for a monitor or group: what it covers now, and the create_maintenance call to make."),
            Some(vec![
                PromptArgument::new("monitor")
                    .with_description("A monitor (id like endpoint/api, or name) or a group.")
                    .with_required(true),
                PromptArgument::new("when")
                    .with_description("When, in words (\"tonight 22:00-23:00 UTC\"); the assistant turns it into start_time and end_time.")
                    .with_required(false),
            ]),
        ),
    ]
}

fn arg<'a>(args: &'a Option<Map<String, Value>>, name: &str) -> Option<&'a str> {
    args.as_ref()?
        .get(name)?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn number(
    args: &Option<Map<String, Value>>,
    name: &str,
    default: u64,
    max: u64,
) -> Result<u64, ReadError> {
    let Some(v) = args.as_ref().and_then(|a| a.get(name)) else {
        return Ok(default);
    };
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.filter(|n| (1..=max).contains(n)).ok_or_else(|| {
        ReadError::BadArgument(format!("{name} must be a whole number from 1 to {max}"))
    })
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub fn get(
    app: &App,
    name: &str,
    args: &Option<Map<String, Value>>,
) -> Result<GetPromptResult, ReadError> {
    let (description, text) = match name {
        TRIAGE => ("Triage what is wrong now", triage(app)?),
        WHAT_CHANGED => {
            let hours = number(args, "hours", 24, MAX_HOURS)?;
            ("What changed", what_changed(app, hours)?)
        }
        CERTIFICATES => {
            let days = number(args, "days", 30, 3_650)?;
            ("Certificates to renew", certificates(app, days as i64)?)
        }
        MAINTENANCE => {
            let monitor = arg(args, "monitor").ok_or_else(|| {
                ReadError::BadArgument(
                    "monitor is required: a monitor id or name, or a group".into(),
                )
            })?;
            (
                "Prepare a maintenance window",
                maintenance(app, monitor, arg(args, "when"))?,
            )
        }
        other => {
            return Err(ReadError::NotFound(format!(
                "no prompt named {other:?}: {TRIAGE}, {WHAT_CHANGED}, {CERTIFICATES} or {MAINTENANCE}"
            )));
        }
    };
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(description),
    )
}

fn triage(app: &App) -> Result<String, ReadError> {
    let status = super::live::status(app)?;
    let alerts = crate::views::alerts::brief_alerts(
        app,
        &crate::views::alerts::AlertFilter {
            active_only: true,
            ..Default::default()
        },
        Some(ALERTS_SHOWN),
        None,
    )?;
    Ok(format!(
        "Triage what is wrong in the systems maintenant monitors, right now.\n\n\
         Status (counts by state; `attention` names what needs it):\n{}\n\n\
         Active alerts, unacknowledged first:\n{}\n\n\
         For each problem: find its cause (get_endpoint_history for an endpoint, \
         get_container and get_container_logs for a container, list_heartbeats with \
         detail: full for a heartbeat, list_certificates for a certificate), say what is \
         wrong, since when, and what to do, most severe first. Call get_health if the \
         answers look stale. Do not acknowledge alerts or change anything unless asked.",
        json(&status),
        json(&alerts),
    ))
}

fn what_changed(app: &App, hours: u64) -> Result<String, ReadError> {
    let since = OffsetDateTime::now_utc() - time::Duration::hours(hours as i64);
    let all = crate::views::alerts::brief_alerts(
        app,
        &crate::views::alerts::AlertFilter {
            active_only: false,
            ..Default::default()
        },
        Some(crate::readmodel::MAX_LIMIT as u32),
        None,
    )?;
    let alerts: Vec<Value> = all
        .items
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .filter(|a| {
            let at = |k: &str| {
                a[k].as_str().and_then(|t| {
                    OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
                })
            };
            at("fired_at").is_some_and(|t| t >= since)
                || at("resolved_at").is_some_and(|t| t >= since)
        })
        .take(ALERTS_SHOWN as usize * 2)
        .collect();
    let health = readmodel::health(app);
    let reloads: Vec<Value> = health
        .sources
        .iter()
        .filter(|s| s.loaded_at.is_some_and(|t| t >= since) || s.last_error.is_some())
        .filter_map(|s| serde_json::to_value(s).ok())
        .collect();
    let started: Vec<String> = crate::readmodel::containers::list_containers(
        app,
        &Default::default(),
        Some(crate::readmodel::MAX_LIMIT as u32),
        None,
    )?
    .items
    .into_iter()
    .filter(|c| {
        c.started_at.as_deref().is_some_and(|t| {
            OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .is_ok_and(|t| t >= since)
        })
    })
    .map(|c| format!("{} ({}, restarts {})", c.name, c.state, c.restarts))
    .collect();
    Ok(format!(
        "Summarise what changed in the last {hours} hours (since {}).\n\n\
         Alerts fired or resolved in that time (active unacknowledged ones first, then \
         newest first; at most {}):\n{}\n\n\
         Config sources loaded in that time, or in error (a reload bumps `generation`):\n{}\n\n\
         Containers started in that time:\n{}\n\n\
         Put these in time order, group what belongs together (a deploy, an outage and its \
         recovery), and say what is still not back to normal. get_container shows a \
         container's transitions (start, die with exit code, oom, health); \
         get_endpoint_history an endpoint's checks.",
        since
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        ALERTS_SHOWN * 2,
        json(&alerts),
        json(&reloads),
        if started.is_empty() {
            "none".to_owned()
        } else {
            started.join(", ")
        },
    ))
}

fn certificates(app: &App, days: i64) -> Result<String, ReadError> {
    let mut rows = crate::views::certificates::brief_certificates(
        app,
        None,
        None,
        Some(crate::readmodel::MAX_LIMIT as u32),
        None,
    )?;
    let total = rows.total;
    rows.items.retain(|r| {
        let v = serde_json::to_value(r).unwrap_or_default();
        let expiring = v["days_left"].as_i64().is_some_and(|d| d <= days);
        let bad = matches!(v["status"].as_str(), Some("expired" | "invalid" | "error"));
        expiring || bad
    });
    rows.items.sort_by_key(|r| {
        serde_json::to_value(r)
            .ok()
            .and_then(|v| v["days_left"].as_i64())
            .unwrap_or(i64::MAX)
    });
    Ok(format!(
        "Which TLS certificates need renewing: expired, expiring within {days} days, or \
         invalid or unreadable (of {total} monitored).\n\n{}\n\n\
         List them soonest first with host, days left and issuer (list_certificates with \
         detail: full has the issuer, SANs and the chain verdict). For `error` say why no \
         certificate was read: that is not an expiry.",
        json(&rows.items),
    ))
}

fn maintenance(app: &App, monitor: &str, when: Option<&str>) -> Result<String, ReadError> {
    let state = app.desired();
    let found = [
        MonitorKind::Endpoint,
        MonitorKind::Heartbeat,
        MonitorKind::Certificate,
    ]
    .into_iter()
    .find_map(|k| readmodel::resolve(&state, k, monitor).ok());
    let (scope, current) = match found {
        Some(key) => (
            format!("\"monitors\": [\"{}\"]", key.id()),
            json(&crate::pause::monitor_row(app, &key)?),
        ),
        None => {
            let in_group: Vec<String> = state
                .monitors
                .iter()
                .filter(|(_, d)| {
                    d.spec
                        .group()
                        .is_some_and(|g| g.eq_ignore_ascii_case(monitor))
                })
                .map(|(k, _)| k.id())
                .collect();
            if in_group.is_empty() {
                // The tools' own error, with its "did you mean".
                readmodel::resolve(&state, MonitorKind::Endpoint, monitor)?;
            }
            (format!("\"groups\": [\"{monitor}\"]"), json(&in_group))
        }
    };
    Ok(format!(
        "Prepare a maintenance window for {monitor}{}.\n\n\
         What it covers now:\n{current}\n\n\
         Confirm the times with me (RFC 3339, with a time zone), then call create_maintenance \
         with a title, start_time, end_time, a message for the status page, and {scope}. \
         Alerts in scope are silenced while it runs; say which monitors it covers \
         (covered_monitors in the answer).",
        when.map(|w| format!(", {w}")).unwrap_or_default(),
    ))
}

/// `completion/complete` for a prompt's argument: monitor ids and groups
/// for `monitor`, starting with (then containing) what was typed.
pub fn complete(app: &App, prompt: &str, argument: &str, typed: &str) -> CompletionInfo {
    let values: Vec<String> = match (prompt, argument) {
        (MAINTENANCE, "monitor") => {
            let state = app.desired();
            let mut all: Vec<String> = state.monitors.keys().map(|k| k.id()).collect();
            let mut groups: Vec<String> = state
                .monitors
                .values()
                .filter_map(|d| d.spec.group().map(str::to_owned))
                .collect();
            groups.sort();
            groups.dedup();
            all.extend(groups);
            let t = typed.to_lowercase();
            let matches = |s: &String| {
                let l = s.to_lowercase();
                l.starts_with(&t) || l.split_once('/').is_some_and(|(_, n)| n.starts_with(&t))
            };
            let mut first: Vec<String> = all.iter().filter(|s| matches(s)).cloned().collect();
            let mut then: Vec<String> = all
                .iter()
                .filter(|s| !matches(s) && s.to_lowercase().contains(&t))
                .cloned()
                .collect();
            first.sort_by(|a, b| readmodel::listing::natural_cmp(a, b));
            then.sort_by(|a, b| readmodel::listing::natural_cmp(a, b));
            first.append(&mut then);
            first
        }
        (WHAT_CHANGED, "hours") => ["1", "6", "12", "24", "72", "168"]
            .map(String::from)
            .to_vec(),
        (CERTIFICATES, "days") => ["7", "14", "30", "60", "90"].map(String::from).to_vec(),
        _ => Vec::new(),
    };
    let total = values.len();
    let shown: Vec<String> = values
        .into_iter()
        .take(CompletionInfo::MAX_VALUES)
        .collect();
    CompletionInfo::with_pagination(
        shown,
        Some(total as u32),
        total > CompletionInfo::MAX_VALUES,
    )
    .unwrap_or_default()
}

pub fn to_error(e: ReadError) -> ErrorData {
    match e {
        ReadError::NotFound(m) | ReadError::BadArgument(m) => ErrorData::invalid_params(m, None),
        ReadError::Store(m) => ErrorData::internal_error(m, None),
    }
}
