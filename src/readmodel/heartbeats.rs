//! Heartbeat rows for `list_heartbeats` (and the answers of pause/resume):
//! what was declared, the ping URL, and what the hub holds now.

use schemars::JsonSchema;
use serde::Serialize;
use time::OffsetDateTime;

use super::listing::{Facts, Listing, brief, natural_cmp, state_name};
use super::{DesiredView, Page, ReadError, desired_view, paginate};
use crate::config::model::{HeartbeatSchedule, HeartbeatSpec};
use crate::desired::{DesiredMonitor, DesiredState};
use crate::duration::Duration;
use crate::engine::App;
use crate::heartbeat::{self, HeartbeatState, HeartbeatStatus, PingRecord};
use crate::monitor::{MonitorKey, MonitorSpec};
use crate::observed::TaskInfo;
use crate::pingkey::PingKey;

/// Characters of the last output shown in a row (the full 10 KB is kept).
pub const OUTPUT_PREVIEW_CHARS: usize = 500;

#[derive(Debug, Serialize, JsonSchema)]
pub struct HeartbeatRow {
    /// `heartbeat/NAME`: accepted wherever a heartbeat is asked for.
    pub id: String,
    pub name: String,
    pub group: Option<String>,
    /// The URL the job pings (`/start`, `/fail` and `/{exit_code}` are appended for those).
    pub ping_url: String,
    /// `period`, or `cron` with its expression and time zone.
    pub schedule: HeartbeatSchedule,
    pub grace: Duration,
    pub last_ping: Option<PingRecord>,
    /// When the next ping is due; `late` after it, `down` after `down_at`.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub next_deadline: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub down_at: Option<OffsetDateTime>,
    pub last_exit_code: Option<u8>,
    /// Run time of the last run that sent `/start` first.
    pub last_duration_ms: Option<f64>,
    /// The last run's output (POST body), first 500 characters.
    pub last_output: Option<String>,
    pub desired: DesiredView<HeartbeatSpec>,
    pub observed: HeartbeatObserved,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HeartbeatObserved {
    /// `new`, `up`, `started`, `late`, `down` or `paused`.
    pub status: HeartbeatStatus,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub since: Option<OffsetDateTime>,
    /// Why it is in this status.
    pub message: Option<String>,
    /// Pings received since the heartbeat was first declared (kept across restarts).
    pub pings_total: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub paused_at: Option<OffsetDateTime>,
    /// The task that moves it to late/down at its deadlines.
    pub task: Option<TaskInfo>,
}

#[derive(Debug, Default, Clone)]
pub struct HeartbeatFilter {
    pub status: Option<HeartbeatStatus>,
    pub group: Option<String>,
}

fn heartbeats(
    state: &DesiredState,
) -> impl Iterator<Item = (&MonitorKey, &DesiredMonitor, &HeartbeatSpec)> {
    state.monitors.iter().filter_map(|(k, d)| match &*d.spec {
        MonitorSpec::Heartbeat(h) => Some((k, d, h)),
        _ => None,
    })
}

/// The ping URL: base URL + `/ping/` + the token, else the global ping key
/// and the name, else the name (names percent-encoded).
pub fn ping_url(base: &str, spec: &HeartbeatSpec, ping_key: Option<&PingKey>) -> String {
    let segment = match (&spec.token, ping_key) {
        (Some(t), _) => t.clone(),
        (None, Some(k)) => format!("{}/{}", k.as_str(), encode_segment(&spec.name)),
        (None, None) => encode_segment(&spec.name),
    };
    format!("{}/ping/{segment}", base.trim_end_matches('/'))
}

fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn row(
    app: &App,
    key: &MonitorKey,
    d: &DesiredMonitor,
    spec: &HeartbeatSpec,
    s: HeartbeatState,
) -> HeartbeatRow {
    let dl = heartbeat::deadlines(&s, spec);
    HeartbeatRow {
        id: key.id(),
        name: spec.name.clone(),
        group: spec.group.clone(),
        ping_url: ping_url(&app.settings.base_url(), spec, app.ping_key.as_ref()),
        schedule: spec.schedule.clone(),
        grace: spec.grace,
        last_ping: s.last_ping.clone(),
        next_deadline: dl.due,
        down_at: dl.down_at,
        last_exit_code: s.last_exit_code,
        last_duration_ms: s.last_duration_ms,
        last_output: s
            .last_output
            .as_deref()
            .map(|o| o.chars().take(OUTPUT_PREVIEW_CHARS).collect()),
        desired: desired_view(d, spec.clone()),
        observed: HeartbeatObserved {
            status: s.status,
            since: s.since,
            message: s.message.clone(),
            pings_total: s.pings_total,
            started_at: s.started_at,
            paused_at: s.paused_at,
            task: app.observed.get(key).and_then(|o| o.task),
        },
    }
}

pub fn list_heartbeats(
    app: &App,
    filter: &HeartbeatFilter,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Page<HeartbeatRow>, ReadError> {
    let state = app.desired();
    let page = paginate(matching(app, &state, filter)?, limit, cursor)?;
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(|(k, d, h, s)| row(app, k, d, h, s))
            .collect(),
        total: page.total,
        next_cursor: page.next_cursor,
    })
}

type Matching<'a> = Vec<(
    &'a MonitorKey,
    &'a DesiredMonitor,
    &'a HeartbeatSpec,
    HeartbeatState,
)>;

/// The heartbeats the filter keeps, with their states, in natural name order.
fn matching<'a>(
    app: &App,
    state: &'a DesiredState,
    filter: &HeartbeatFilter,
) -> Result<Matching<'a>, ReadError> {
    super::suggest::check_filters([("group", filter.group.as_deref())])?;
    let mut matching: Matching<'a> = app.heartbeats.with_states(|states| {
        heartbeats(state)
            .filter(|(_, _, h)| {
                filter.group.as_deref().is_none_or(|g| {
                    h.group
                        .as_deref()
                        .is_some_and(|hg| hg.eq_ignore_ascii_case(g))
                })
            })
            .map(|(k, d, h)| (k, d, h, states.get(k).cloned().unwrap_or_default()))
            .filter(|(_, _, _, s)| filter.status.is_none_or(|st| s.status == st))
            .collect()
    });
    matching.sort_by(|a, b| natural_cmp(&a.2.name, &b.2.name));
    Ok(matching)
}

/// A heartbeat in a brief list: did the job run, and when is it due.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HeartbeatBrief {
    pub name: String,
    /// `new`, `up`, `started`, `late`, `down` or `paused`.
    pub status: HeartbeatStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// When the last ping arrived.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    #[schemars(with = "Option<String>")]
    pub last_ping: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_exit_code: Option<u8>,
    /// When the next ping is due.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    #[schemars(with = "Option<String>")]
    pub next_deadline: Option<OffsetDateTime>,
    /// Why it is late or down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `list_heartbeats` in brief: counts by status, late and down ones first.
pub fn brief_heartbeats(
    app: &App,
    filter: &HeartbeatFilter,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Listing<HeartbeatBrief, HeartbeatRow>, ReadError> {
    let state = app.desired();
    let rows = matching(app, &state, filter)?;
    let attention = |s: HeartbeatStatus| matches!(s, HeartbeatStatus::Late | HeartbeatStatus::Down);
    brief(
        rows,
        |(_, _, _, s)| Facts {
            state: state_name(&s.status).into(),
            attention: attention(s.status),
        },
        |(_, _, h, s)| HeartbeatBrief {
            name: h.name.clone(),
            status: s.status,
            group: h.group.clone(),
            last_ping: s.last_ping.as_ref().map(|p| p.at),
            last_exit_code: s.last_exit_code,
            next_deadline: heartbeat::deadlines(s, h).due,
            message: s.message.clone().filter(|_| attention(s.status)),
        },
        limit,
        cursor,
    )
}

/// One heartbeat's row, by key.
pub fn heartbeat_row(app: &App, key: &MonitorKey) -> Result<HeartbeatRow, ReadError> {
    let state = app.desired();
    let d = state
        .monitors
        .get(key)
        .ok_or_else(|| ReadError::NotFound(format!("{} is not declared", key.id())))?;
    let MonitorSpec::Heartbeat(spec) = &*d.spec else {
        return Err(ReadError::NotFound(format!(
            "{} is not a heartbeat",
            key.id()
        )));
    };
    Ok(row(app, key, d, spec, app.heartbeats.state(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_urls_use_the_token_or_the_encoded_name() {
        let mut spec = HeartbeatSpec {
            name: "nightly backup".into(),
            group: None,
            token: None,
            schedule: HeartbeatSchedule::Period {
                period: Duration::from_secs(60),
            },
            grace: Duration::from_secs(60),
            alert: None,
        };
        assert_eq!(
            ping_url("https://mon.example.com/", &spec, None),
            "https://mon.example.com/ping/nightly%20backup"
        );
        let key = PingKey::parse(Some("k3y-k3y-k3y-k3y-k3y"))
            .unwrap()
            .unwrap();
        assert_eq!(
            ping_url("https://mon.example.com/", &spec, Some(&key)),
            "https://mon.example.com/ping/k3y-k3y-k3y-k3y-k3y/nightly%20backup"
        );
        spec.token = Some("0123456789abcdef".into());
        assert_eq!(
            ping_url("https://mon.example.com", &spec, None),
            "https://mon.example.com/ping/0123456789abcdef"
        );
        assert_eq!(
            ping_url("https://mon.example.com", &spec, Some(&key)),
            "https://mon.example.com/ping/0123456789abcdef",
            "a heartbeat's own token stays its URL"
        );
    }
}
