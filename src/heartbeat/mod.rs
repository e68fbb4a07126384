//! Heartbeats: jobs that check in by pinging `/ping/...`. This module holds
//! the state machine (pure functions over [`HeartbeatState`]); `hub` owns the
//! live states, persists every ping durably with group commit and publishes
//! every transition; `schedule` computes when the next ping is due.
//!
//! States: `new` (declared, never pinged), `up`, `started` (a `/start` ping,
//! no finish yet), `late` (past the expected time, inside `grace`), `down`
//! (past grace, or a failure ping), `paused` (by `pause_monitor`, until
//! `resume_monitor`; pings are still recorded but change nothing).

pub mod hub;
pub mod schedule;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::model::HeartbeatSpec;
use crate::monitor::MonitorKey;

pub use hub::{HeartbeatHub, PingError};

/// Most bytes of a ping's body kept as the run's output (10 KB). Bodies up
/// to [`PING_BODY_MAX`] are accepted and cut to this; larger ones get 413.
pub const PING_BODY_KEEP: usize = 10_000;
/// Largest ping body read at all (1 MiB).
pub const PING_BODY_MAX: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeartbeatStatus {
    /// Declared, never pinged.
    #[default]
    New,
    Up,
    /// A `/start` ping arrived and no finish ping yet.
    Started,
    /// Past the expected time, inside the grace period.
    Late,
    /// Past the grace period, or the last run failed.
    Down,
    /// Paused by `pause_monitor`; stays so across pings, reloads and restarts.
    Paused,
}

impl HeartbeatStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HeartbeatStatus::New => "new",
            HeartbeatStatus::Up => "up",
            HeartbeatStatus::Started => "started",
            HeartbeatStatus::Late => "late",
            HeartbeatStatus::Down => "down",
            HeartbeatStatus::Paused => "paused",
        }
    }
}

/// What a ping says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PingKind {
    /// `/ping/ID` or `/ping/ID/0`: a run finished well.
    Success,
    /// `/ping/ID/start`: a run began (its duration is measured to the next finish ping).
    Start,
    /// `/ping/ID/fail` or `/ping/ID/N` with N in 1..=255: a run failed.
    Fail,
}

/// One ping as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Ping {
    pub at: OffsetDateTime,
    pub kind: PingKind,
    /// Set by `/ping/ID/N`.
    pub exit_code: Option<u8>,
    /// The first [`PING_BODY_KEEP`] bytes of a POST body, as text.
    pub body: Option<String>,
}

/// The last ping, as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PingRecord {
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    pub kind: PingKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<u8>,
    /// Run time from the `/start` ping, for a finish ping that followed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// Bytes of body kept (0 without a body).
    #[serde(default)]
    pub body_bytes: usize,
}

/// The observed state of one heartbeat, kept in sled across restarts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HeartbeatState {
    pub status: HeartbeatStatus,
    /// When `status` last changed.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub since: Option<OffsetDateTime>,
    /// Why it is in this status ("exit code 3", "no ping since ...").
    #[serde(default)]
    pub message: Option<String>,
    /// Pings received (every kind).
    #[serde(default)]
    pub pings_total: u64,
    #[serde(default)]
    pub last_ping: Option<PingRecord>,
    /// Deadlines count from here: the last finish ping, or the resume time.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub anchor: Option<OffsetDateTime>,
    /// The `/start` ping of the run in progress.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub last_exit_code: Option<u8>,
    #[serde(default)]
    pub last_duration_ms: Option<f64>,
    /// The last finished run's output (POST body), at most [`PING_BODY_KEEP`] bytes.
    #[serde(default)]
    pub last_output: Option<String>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub paused_at: Option<OffsetDateTime>,
}

/// A change of a heartbeat's status, published on the hub's transition
/// channel ([`HeartbeatHub::subscribe`]) after it is on disk. This is the one
/// place heartbeat state changes are announced: an alert engine subscribes to
/// it (late, down, failed with `exit_code`, recovered), and a pause or resume
/// is a transition too (`to: paused`, or `from: paused`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeartbeatTransition {
    pub key: MonitorKey,
    pub from: HeartbeatStatus,
    pub to: HeartbeatStatus,
    /// The exit code of the failure ping that caused it, if any.
    pub exit_code: Option<u8>,
    /// The job itself reported failure (`/fail` or a non-zero exit code), as
    /// opposed to missing its deadline.
    pub failed_run: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Human explanation ("no ping since 10:00:00Z; expected by 10:01:00Z").
    pub message: Option<String>,
}

/// When the next ping is due (late after it) and when the heartbeat goes down without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deadlines {
    pub due: Option<OffsetDateTime>,
    pub down_at: Option<OffsetDateTime>,
}

fn grace(spec: &HeartbeatSpec) -> time::Duration {
    time::Duration::try_from(spec.grace.std()).unwrap_or(time::Duration::HOUR)
}

/// The deadlines of `state` under `spec`. A `new`, `paused` or `down`
/// heartbeat has no down deadline (nothing more can happen without a ping).
pub fn deadlines(state: &HeartbeatState, spec: &HeartbeatSpec) -> Deadlines {
    let due = state
        .anchor
        .and_then(|a| schedule::next_due(&spec.schedule, a));
    let down_at = match state.status {
        HeartbeatStatus::Up | HeartbeatStatus::Late => due.and_then(|d| d.checked_add(grace(spec))),
        // A run that started must finish within grace.
        HeartbeatStatus::Started => state.started_at.and_then(|s| s.checked_add(grace(spec))),
        _ => None,
    };
    Deadlines { due, down_at }
}

/// When the heartbeat's task must look again without a ping, if ever.
pub fn next_wake(state: &HeartbeatState, spec: &HeartbeatSpec) -> Option<OffsetDateTime> {
    let d = deadlines(state, spec);
    match state.status {
        HeartbeatStatus::Up => d.due,
        HeartbeatStatus::Late | HeartbeatStatus::Started => d.down_at,
        _ => None,
    }
}

fn set_status(s: &mut HeartbeatState, to: HeartbeatStatus, at: OffsetDateTime) {
    if s.status != to || s.since.is_none() {
        s.since = Some(at);
    }
    s.status = to;
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// The state after a ping. A paused heartbeat records the ping and stays paused.
pub fn apply_ping(prev: &HeartbeatState, ping: &Ping) -> HeartbeatState {
    let mut s = prev.clone();
    s.pings_total += 1;
    let paused = prev.status == HeartbeatStatus::Paused;
    let mut record = PingRecord {
        at: ping.at,
        kind: ping.kind,
        exit_code: ping.exit_code,
        duration_ms: None,
        body_bytes: ping.body.as_ref().map_or(0, String::len),
    };
    match ping.kind {
        PingKind::Start => {
            s.started_at = Some(ping.at);
            if !paused {
                set_status(&mut s, HeartbeatStatus::Started, ping.at);
                s.message = Some(format!("run started at {}", fmt_time(ping.at)));
            }
        }
        PingKind::Success | PingKind::Fail => {
            let duration = s
                .started_at
                .take()
                .map(|start| ((ping.at - start).as_seconds_f64() * 1000.0).max(0.0));
            let duration = duration.map(|ms| (ms * 100.0).round() / 100.0);
            record.duration_ms = duration;
            s.last_duration_ms = duration;
            s.last_exit_code = ping.exit_code;
            s.last_output = ping.body.clone().filter(|b| !b.is_empty());
            s.anchor = Some(ping.at);
            if !paused {
                if ping.kind == PingKind::Success {
                    set_status(&mut s, HeartbeatStatus::Up, ping.at);
                    s.message = None;
                } else {
                    set_status(&mut s, HeartbeatStatus::Down, ping.at);
                    s.message = Some(match ping.exit_code {
                        Some(c) => format!("the run failed with exit code {c}"),
                        None => "the run reported failure (/fail)".to_owned(),
                    });
                }
            }
        }
    }
    s.last_ping = Some(record);
    s
}

/// The state at `now` without a new ping: `up` becomes `late` past the due
/// time and `down` past grace; a started run becomes `down` past grace.
pub fn evaluate(
    prev: &HeartbeatState,
    spec: &HeartbeatSpec,
    now: OffsetDateTime,
) -> HeartbeatState {
    let d = deadlines(prev, spec);
    let mut s = prev.clone();
    match prev.status {
        HeartbeatStatus::Up | HeartbeatStatus::Late => {
            if let Some(down_at) = d.down_at
                && now >= down_at
            {
                set_status(&mut s, HeartbeatStatus::Down, down_at);
                s.message = Some(format!(
                    "no ping since {}: it was due by {} and the grace of {} ran out",
                    prev.anchor.map(fmt_time).unwrap_or_default(),
                    d.due.map(fmt_time).unwrap_or_default(),
                    spec.grace
                ));
            } else if prev.status == HeartbeatStatus::Up
                && let Some(due) = d.due
                && now >= due
            {
                set_status(&mut s, HeartbeatStatus::Late, due);
                s.message = Some(format!(
                    "no ping since {}; it was due by {} (down after a grace of {})",
                    prev.anchor.map(fmt_time).unwrap_or_default(),
                    fmt_time(due),
                    spec.grace
                ));
            }
        }
        HeartbeatStatus::Started => {
            if let Some(down_at) = d.down_at
                && now >= down_at
            {
                set_status(&mut s, HeartbeatStatus::Down, down_at);
                s.message = Some(format!(
                    "the run started at {} did not finish within the grace of {}",
                    prev.started_at.map(fmt_time).unwrap_or_default(),
                    spec.grace
                ));
            }
        }
        _ => {}
    }
    s
}

/// Pause: the status becomes `paused` until [`resume`].
pub fn pause(prev: &HeartbeatState, now: OffsetDateTime) -> HeartbeatState {
    let mut s = prev.clone();
    if prev.status != HeartbeatStatus::Paused {
        set_status(&mut s, HeartbeatStatus::Paused, now);
        s.paused_at = Some(now);
        s.message = Some("paused by pause_monitor".into());
    }
    s
}

/// Resume: `new` if it was never pinged, else `up` with its deadlines
/// counted from now (the time paused is not held against the job).
pub fn resume(prev: &HeartbeatState, now: OffsetDateTime) -> HeartbeatState {
    let mut s = prev.clone();
    if prev.status == HeartbeatStatus::Paused {
        let to = if prev.last_ping.is_some() {
            s.anchor = Some(now);
            HeartbeatStatus::Up
        } else {
            HeartbeatStatus::New
        };
        set_status(&mut s, to, now);
        s.paused_at = None;
        s.started_at = None;
        s.message = None;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::HeartbeatSchedule;
    use crate::duration::Duration;
    use time::macros::datetime;

    fn spec() -> HeartbeatSpec {
        HeartbeatSpec {
            name: "backup".into(),
            group: None,
            token: None,
            schedule: HeartbeatSchedule::Period {
                period: Duration::from_secs(60),
            },
            grace: Duration::from_secs(30),
            alert: None,
        }
    }

    fn ping(at: OffsetDateTime, kind: PingKind, code: Option<u8>) -> Ping {
        Ping {
            at,
            kind,
            exit_code: code,
            body: None,
        }
    }

    #[test]
    fn new_up_late_down_up() {
        let t0 = datetime!(2026-11-25 10:00:00 UTC);
        let spec = spec();
        let s = HeartbeatState::default();
        assert_eq!(next_wake(&s, &spec), None, "new never goes late");
        let s = apply_ping(&s, &ping(t0, PingKind::Success, None));
        assert_eq!(s.status, HeartbeatStatus::Up);
        assert_eq!(
            next_wake(&s, &spec),
            Some(datetime!(2026-11-25 10:01:00 UTC))
        );
        let s1 = evaluate(&s, &spec, datetime!(2026-11-25 10:00:59 UTC));
        assert_eq!(s1.status, HeartbeatStatus::Up);
        let s = evaluate(&s, &spec, datetime!(2026-11-25 10:01:00 UTC));
        assert_eq!(s.status, HeartbeatStatus::Late);
        assert_eq!(s.since, Some(datetime!(2026-11-25 10:01:00 UTC)));
        assert_eq!(
            next_wake(&s, &spec),
            Some(datetime!(2026-11-25 10:01:30 UTC))
        );
        let s = evaluate(&s, &spec, datetime!(2026-11-25 10:01:31 UTC));
        assert_eq!(s.status, HeartbeatStatus::Down);
        assert!(s.message.as_deref().unwrap().contains("grace of 30s"));
        assert_eq!(next_wake(&s, &spec), None);
        let s = apply_ping(
            &s,
            &ping(
                datetime!(2026-11-25 10:05:00 UTC),
                PingKind::Success,
                Some(0),
            ),
        );
        assert_eq!((s.status, s.pings_total), (HeartbeatStatus::Up, 2));
        assert_eq!(s.last_exit_code, Some(0));
    }

    #[test]
    fn a_long_gap_goes_straight_to_down() {
        let t0 = datetime!(2026-11-25 10:00:00 UTC);
        let s = apply_ping(
            &HeartbeatState::default(),
            &ping(t0, PingKind::Success, None),
        );
        let s = evaluate(&s, &spec(), datetime!(2026-11-26 10:00:00 UTC));
        assert_eq!(s.status, HeartbeatStatus::Down);
        assert_eq!(
            s.since,
            Some(datetime!(2026-11-25 10:01:30 UTC)),
            "since the deadline"
        );
    }

    #[test]
    fn start_measures_duration_and_failure_is_down_with_the_code() {
        let t0 = datetime!(2026-11-25 10:00:00 UTC);
        let s = apply_ping(&HeartbeatState::default(), &ping(t0, PingKind::Start, None));
        assert_eq!(s.status, HeartbeatStatus::Started);
        assert_eq!(
            next_wake(&s, &spec()),
            Some(datetime!(2026-11-25 10:00:30 UTC))
        );
        let mut p = ping(
            datetime!(2026-11-25 10:00:02.5 UTC),
            PingKind::Fail,
            Some(3),
        );
        p.body = Some("disk full".into());
        let s = apply_ping(&s, &p);
        assert_eq!(s.status, HeartbeatStatus::Down);
        assert_eq!(s.last_exit_code, Some(3));
        assert_eq!(s.last_duration_ms, Some(2500.0));
        assert_eq!(s.last_output.as_deref(), Some("disk full"));
        assert!(s.message.unwrap().contains("exit code 3"));
        // A run that never finishes is down after grace.
        let s = apply_ping(&HeartbeatState::default(), &ping(t0, PingKind::Start, None));
        let s = evaluate(&s, &spec(), datetime!(2026-11-25 10:00:31 UTC));
        assert_eq!(s.status, HeartbeatStatus::Down);
    }

    #[test]
    fn paused_records_pings_but_stays_paused_until_resumed() {
        let t0 = datetime!(2026-11-25 10:00:00 UTC);
        let s = pause(&HeartbeatState::default(), t0);
        assert_eq!(s.status, HeartbeatStatus::Paused);
        let s = apply_ping(&s, &ping(t0, PingKind::Fail, Some(1)));
        let s = evaluate(&s, &spec(), datetime!(2026-11-30 00:00:00 UTC));
        assert_eq!((s.status, s.pings_total), (HeartbeatStatus::Paused, 1));
        let t1 = datetime!(2026-11-30 00:00:00 UTC);
        let s = resume(&s, t1);
        assert_eq!(s.status, HeartbeatStatus::Up, "it was pinged before");
        assert_eq!(
            next_wake(&s, &spec()),
            Some(t1 + time::Duration::minutes(1))
        );
        let s = resume(&pause(&HeartbeatState::default(), t0), t1);
        assert_eq!(s.status, HeartbeatStatus::New, "never pinged");
    }
}
