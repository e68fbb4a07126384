//! The read model: desired and observed state joined into the rows tools and
//! HTTP answer. Pure reads; no monitoring logic lives here or in tools.

use std::collections::BTreeMap;

use base64::Engine as _;
use schemars::JsonSchema;
use serde::Serialize;
use time::OffsetDateTime;

use crate::config::model::EndpointSpec;
use crate::desired::{Conflict, DesiredMonitor, DesiredState, SourceStatus};
use crate::engine::{App, Role};
use crate::monitor::{MonitorKey, MonitorKind, MonitorSpec, Origin};
use crate::observed::{Observed, TaskInfo};
use crate::reconcile::ReconcileStatus;
use crate::store::{CheckRecord, Status};

pub mod alerting;
pub mod containers;
pub mod heartbeats;
pub mod listing;
pub mod suggest;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;
/// Largest list offset a cursor may carry: far past any list maintenant keeps
/// (10k monitors is the tested scale), so `offset + limit` never overflows.
pub const MAX_OFFSET: usize = 10_000_000;
/// Longest monitor id a lookup accepts: `certificate/` and a name of
/// [`crate::config::validate::MAX_NAME_CHARS`].
pub const MAX_MONITOR_ID_CHARS: usize = crate::config::validate::MAX_NAME_CHARS + 12;
/// Longest cursor accepted (ours are under 40 characters).
const MAX_CURSOR_CHARS: usize = 100;

/// A bounded page of a list.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Items matching the filters, over all pages.
    pub total: usize,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Problems with a read request, phrased for the person or assistant who made it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadArgument(String),
    #[error("database error: {0}")]
    Store(String),
}

impl From<crate::store::StoreError> for ReadError {
    fn from(e: crate::store::StoreError) -> Self {
        ReadError::Store(e.to_string())
    }
}

/// Cursors are opaque to clients: base64 of `o:<offset>` (lists) or
/// `t:<micros>` (history). The prefix catches a cursor from another tool.
pub(crate) fn encode_cursor(kind: char, n: i128) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{n}"))
}

fn decode_cursor(kind: char, cursor: &str) -> Result<i128, ReadError> {
    let bad = || {
        ReadError::BadArgument(format!(
            "invalid cursor {:?}: pass the next_cursor of the previous answer unchanged",
            cursor.chars().take(MAX_CURSOR_CHARS).collect::<String>()
        ))
    };
    if cursor.len() > MAX_CURSOR_CHARS {
        return Err(bad());
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (k, n) = text.split_once(':').ok_or_else(bad)?;
    if k.len() != 1 || !k.starts_with(kind) {
        return Err(bad());
    }
    n.parse().map_err(|_| bad())
}

pub fn clamp_limit(limit: Option<u32>) -> usize {
    limit.map_or(DEFAULT_LIMIT, |l| (l as usize).clamp(1, MAX_LIMIT))
}

/// The offset a list cursor carries (0 without one).
pub(crate) fn decode_offset(cursor: Option<&str>) -> Result<usize, ReadError> {
    match cursor {
        Some(c) if !c.is_empty() => {
            let n = decode_cursor('o', c)?;
            usize::try_from(n)
                .ok()
                .filter(|&o| o <= MAX_OFFSET)
                .ok_or_else(|| {
                    ReadError::BadArgument(format!(
                        "invalid cursor: offset {n} is outside 0..={MAX_OFFSET}; pass the next_cursor of the previous answer unchanged"
                    ))
                })
        }
        _ => Ok(0),
    }
}

pub fn paginate<T>(
    items: Vec<T>,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Page<T>, ReadError> {
    let limit = clamp_limit(limit);
    let offset = decode_offset(cursor)?;
    let total = items.len();
    let end = offset.saturating_add(limit);
    let next_cursor = (end < total).then(|| encode_cursor('o', end as i128));
    let items = items.into_iter().skip(offset).take(limit).collect();
    Ok(Page {
        items,
        total,
        next_cursor,
    })
}

/// What was declared, as every monitor row shows it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DesiredView<S> {
    pub spec: S,
    pub origin: Origin,
    /// The desired-state generation in which this spec last changed.
    pub generation: u64,
    pub spec_hash: String,
}

/// What was seen, as every monitor row shows it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ObservedView {
    /// `pending` (declared, not yet decided), `up` or `down`.
    pub status: Status,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub since: Option<OffsetDateTime>,
    pub last_check: Option<CheckRecord>,
    /// The last check's error, if it failed.
    pub error: Option<String>,
    pub consecutive_failures: u32,
    pub checks_total: u64,
    /// The check task running this monitor (its id changes only on restart).
    pub task: Option<TaskInfo>,
    /// Set when the row needs explaining, e.g. "declared, not yet checked".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When `pause_monitor` paused it (status is then `paused`).
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    #[schemars(with = "Option<String>")]
    pub paused_at: Option<OffsetDateTime>,
}

/// A paused monitor shows `paused`, whatever its last checks said.
pub(crate) fn with_pause(app: &App, key: &MonitorKey, mut view: ObservedView) -> ObservedView {
    if let Ok(Some(p)) = app.store.pause_record(key) {
        mark_paused(&mut view, p.at);
    }
    view
}

fn mark_paused(view: &mut ObservedView, at: OffsetDateTime) {
    view.status = Status::Paused;
    view.paused_at = Some(at);
    view.note = Some("paused by pause_monitor: not checked until resume_monitor".into());
}

pub(crate) fn observed_view(o: Option<&Observed>) -> ObservedView {
    let Some(o) = o else {
        return ObservedView {
            status: Status::Pending,
            since: None,
            last_check: None,
            error: None,
            consecutive_failures: 0,
            checks_total: 0,
            task: None,
            note: Some(
                "declared, no check task yet (the reconciler has not applied this generation)"
                    .into(),
            ),
            paused_at: None,
        };
    };
    let s = &o.state;
    let note = s
        .last_check
        .is_none()
        .then(|| "declared, not yet checked".to_owned());
    ObservedView {
        status: s.status,
        since: s.since,
        error: s.last_check.as_ref().and_then(|c| c.error.clone()),
        last_check: s.last_check.clone(),
        consecutive_failures: s.consecutive_failures,
        checks_total: s.checks_total,
        task: o.task.clone(),
        note,
        paused_at: None,
    }
}

pub(crate) fn desired_view<S>(d: &DesiredMonitor, spec: S) -> DesiredView<S> {
    DesiredView {
        spec,
        origin: d.origin.clone(),
        generation: d.generation,
        spec_hash: format!("{:016x}", d.spec_hash),
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EndpointRow {
    /// `endpoint/NAME`: accepted wherever an endpoint is asked for.
    pub id: String,
    pub name: String,
    pub group: Option<String>,
    pub target: String,
    /// `http`, `https` or `tcp`.
    #[serde(rename = "type")]
    pub target_type: String,
    pub desired: DesiredView<EndpointSpec>,
    pub observed: ObservedView,
    /// Percent of checks up over the last 24 hours (hourly rollups), null before the first check.
    pub uptime_24h: Option<f64>,
    pub uptime_7d: Option<f64>,
}

#[derive(Debug, Default, Clone)]
pub struct EndpointFilter {
    pub status: Option<Status>,
    pub group: Option<String>,
    /// Case-insensitive substring of the name or target.
    pub name: Option<String>,
}

fn endpoints(
    state: &DesiredState,
) -> impl Iterator<Item = (&MonitorKey, &DesiredMonitor, &EndpointSpec)> {
    state.monitors.iter().filter_map(|(k, d)| match &*d.spec {
        MonitorSpec::Endpoint(e) => Some((k, d, e)),
        _ => None,
    })
}

pub fn list_endpoints(
    app: &App,
    filter: &EndpointFilter,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Page<EndpointRow>, ReadError> {
    suggest::check_filters([
        ("group", filter.group.as_deref()),
        ("name", filter.name.as_deref()),
    ])?;
    let state = app.desired();
    let pauses = app.store.pauses()?;
    let paused_at = |k: &MonitorKey| {
        // Most deployments pause nothing: skip the id string per row then.
        (!pauses.is_empty())
            .then(|| pauses.get(&k.id()).map(|p| p.at))
            .flatten()
    };
    let name = filter.name.as_deref().map(str::to_lowercase);
    // Filter and paginate over references under one read lock on the
    // observed map, and clone the observed state of the page's rows only;
    // the uptime reads (sled) come after the lock is released. A page then
    // costs about the same with 100 or 10k monitors declared (but for the
    // filter's walk).
    let page = app.observed.with(|obs| {
        let matching: Vec<(&MonitorKey, &DesiredMonitor, &EndpointSpec)> = endpoints(&state)
            .filter(|(_, _, e)| {
                filter.group.as_deref().is_none_or(|g| {
                    e.group
                        .as_deref()
                        .is_some_and(|eg| eg.eq_ignore_ascii_case(g))
                })
            })
            .filter(|(_, _, e)| {
                name.as_deref().is_none_or(|n| {
                    e.name.to_lowercase().contains(n)
                        || e.target.display().to_lowercase().contains(n)
                })
            })
            .filter(|(k, _, _)| {
                filter.status.is_none_or(|want| {
                    let status = if paused_at(k).is_some() {
                        Status::Paused
                    } else {
                        obs.get(k).map_or(Status::Pending, |o| o.state.status)
                    };
                    status == want
                })
            })
            .collect();
        let mut matching = matching;
        matching.sort_by(|a, b| listing::natural_cmp(&a.2.name, &b.2.name));
        let page = paginate(matching, limit, cursor)?;
        let items: Vec<_> = page
            .items
            .into_iter()
            .map(|(k, d, e)| {
                let mut observed = observed_view(obs.get(k));
                if let Some(at) = paused_at(k) {
                    mark_paused(&mut observed, at);
                }
                (k, d, e, observed)
            })
            .collect();
        Ok::<_, ReadError>(Page {
            items,
            total: page.total,
            next_cursor: page.next_cursor,
        })
    })?;
    let now = OffsetDateTime::now_utc();
    let mut items = Vec::with_capacity(page.items.len());
    for (k, d, e, observed) in page.items {
        let (day, week) = app.store.uptime_day_week(k, now)?;
        items.push(EndpointRow {
            id: k.id(),
            name: e.name.clone(),
            group: e.group.clone(),
            target: e.target.display(),
            target_type: e.target.type_name().to_owned(),
            desired: desired_view(d, e.clone()),
            observed,
            uptime_24h: day.percent(),
            uptime_7d: week.percent(),
        });
    }
    Ok(Page {
        items,
        total: page.total,
        next_cursor: page.next_cursor,
    })
}

/// An endpoint in a brief list: what a person reads first.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EndpointBrief {
    pub name: String,
    /// `up`, `down`, `pending` or `paused`.
    pub status: Status,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// When it entered this status (shown unless up).
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    #[schemars(with = "Option<String>")]
    pub since: Option<OffsetDateTime>,
    /// The last check's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `list_endpoints` in brief: counts by status, down ones first.
pub fn brief_endpoints(
    app: &App,
    filter: &EndpointFilter,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<listing::Listing<EndpointBrief, EndpointRow>, ReadError> {
    suggest::check_filters([
        ("group", filter.group.as_deref()),
        ("name", filter.name.as_deref()),
    ])?;
    let state = app.desired();
    let pauses = app.store.pauses()?;
    let name = filter.name.as_deref().map(str::to_lowercase);
    let mut rows: Vec<EndpointBrief> = app.observed.with(|obs| {
        endpoints(&state)
            .filter(|(_, _, e)| {
                filter.group.as_deref().is_none_or(|g| {
                    e.group
                        .as_deref()
                        .is_some_and(|eg| eg.eq_ignore_ascii_case(g))
                })
            })
            .filter(|(_, _, e)| {
                name.as_deref().is_none_or(|n| {
                    e.name.to_lowercase().contains(n)
                        || e.target.display().to_lowercase().contains(n)
                })
            })
            .filter_map(|(k, _, e)| {
                let o = obs.get(k).map(|o| &o.state);
                let paused = !pauses.is_empty() && pauses.contains_key(&k.id());
                let status = if paused {
                    Status::Paused
                } else {
                    o.map_or(Status::Pending, |s| s.status)
                };
                if filter.status.is_some_and(|want| want != status) {
                    return None;
                }
                Some(EndpointBrief {
                    name: e.name.clone(),
                    status,
                    target: e.target.display(),
                    group: e.group.clone(),
                    since: o.and_then(|s| s.since).filter(|_| status != Status::Up),
                    error: o
                        .and_then(|s| s.last_check.as_ref())
                        .and_then(|c| c.error.clone()),
                })
            })
            .collect()
    });
    rows.sort_by(|a, b| listing::natural_cmp(&a.name, &b.name));
    listing::brief(
        rows,
        |r| listing::Facts {
            state: r.status.as_str().into(),
            attention: r.status == Status::Down,
        },
        EndpointBrief::clone,
        limit,
        cursor,
    )
}

/// Find a declared monitor of `kind` by id (`endpoint/NAME`) or name
/// (exact, then case-insensitive). The error names the closest matches.
pub fn resolve(
    state: &DesiredState,
    kind: MonitorKind,
    query: &str,
) -> Result<MonitorKey, ReadError> {
    let q = query.trim();
    suggest::check_query(&format!("the {kind} id"), q, MAX_MONITOR_ID_CHARS)?;
    let name = q.strip_prefix(&format!("{kind}/")).unwrap_or(q);
    let exact = MonitorKey::new(kind, name);
    if state.monitors.contains_key(&exact) {
        return Ok(exact);
    }
    let names: Vec<&str> = state
        .monitors
        .keys()
        .filter(|k| k.kind == kind)
        .map(|k| &*k.name)
        .collect();
    let ci: Vec<&&str> = names
        .iter()
        .filter(|n| n.eq_ignore_ascii_case(name))
        .collect();
    if let [one] = ci.as_slice() {
        return Ok(MonitorKey {
            kind,
            name: (**one).into(),
        });
    }
    let close = suggest::closest(name, names.iter().copied(), 3);
    let hint = match close.as_slice() {
        [] if names.is_empty() => format!("no {kind}s are declared yet"),
        [] => format!("call list_{kind}s to see the {} declared", names.len()),
        s => {
            let alts: Vec<String> = s.iter().map(|n| format!("'{n}'")).collect();
            format!("did you mean {}?", alts.join(" or "))
        }
    };
    Err(ReadError::NotFound(format!(
        "no {kind} named '{name}'; {hint}"
    )))
}

pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HistorySummary {
    /// Checks in this answer.
    pub checks: usize,
    pub up: usize,
    /// Percent up among the checks in this answer.
    pub uptime: Option<f64>,
    pub p50_response_ms: Option<f64>,
    pub p95_response_ms: Option<f64>,
    pub uptime_24h: Option<f64>,
    pub uptime_7d: Option<f64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EndpointHistory {
    pub id: String,
    pub target: String,
    pub observed: ObservedView,
    /// Newest first.
    pub checks: Vec<CheckRecord>,
    /// Checks kept in the whole range asked for (`since` to now), over every
    /// page.
    pub total: u64,
    pub summary: HistorySummary,
    /// Pass as `cursor` for older checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

pub fn endpoint_history(
    app: &App,
    query: &str,
    limit: Option<u32>,
    since: Option<OffsetDateTime>,
    cursor: Option<&str>,
) -> Result<EndpointHistory, ReadError> {
    let state = app.desired();
    let key = resolve(&state, MonitorKind::Endpoint, query)?;
    let d = &state.monitors[&key];
    let MonitorSpec::Endpoint(spec) = &*d.spec else {
        return Err(ReadError::NotFound(format!(
            "{} is not an endpoint",
            key.id()
        )));
    };
    let limit = clamp_limit(limit);
    let before = match cursor {
        Some(c) if !c.is_empty() => {
            let micros = decode_cursor('t', c)?;
            Some(
                micros
                    .checked_mul(1000)
                    .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(n).ok())
                    .ok_or_else(|| {
                        ReadError::BadArgument(format!(
                            "invalid cursor: time {micros} is out of range; pass the next_cursor of the previous answer unchanged"
                        ))
                    })?,
            )
        }
        _ => None,
    };
    // One extra to know whether an older page exists.
    let mut checks = app.store.history(&key, since, before, limit + 1)?;
    let total = app.store.history_count(&key, since)?;
    let more = checks.len() > limit;
    checks.truncate(limit);
    let next_cursor = more.then(|| {
        encode_cursor(
            't',
            checks
                .last()
                .map_or(0, |c| c.at.unix_timestamp_nanos() / 1000),
        )
    });

    let mut times: Vec<f64> = checks
        .iter()
        .filter(|c| c.up)
        .map(|c| c.response_time_ms)
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        (!times.is_empty()).then(|| times[((times.len() - 1) as f64 * p).round() as usize])
    };
    let up = checks.iter().filter(|c| c.up).count();
    let now = OffsetDateTime::now_utc();
    let (day, week) = app.store.uptime_day_week(&key, now)?;
    let summary = HistorySummary {
        checks: checks.len(),
        up,
        uptime: (!checks.is_empty())
            .then(|| (up as f64 * 10000.0 / checks.len() as f64).round() / 100.0),
        p50_response_ms: pct(0.5),
        p95_response_ms: pct(0.95),
        uptime_24h: day.percent(),
        uptime_7d: week.percent(),
    };
    Ok(EndpointHistory {
        id: key.id(),
        target: spec.target.display(),
        observed: with_pause(app, &key, observed_view(app.observed.get(&key).as_ref())),
        checks,
        total,
        summary,
        next_cursor,
    })
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Health {
    pub version: String,
    /// `daemon`, or `stdio_standalone` when a `--mcp-stdio` process found no daemon and runs checks itself.
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub started_at: OffsetDateTime,
    pub uptime_seconds: u64,
    pub database: DatabaseInfo,
    /// Container runtimes: endpoint, connected or not (with the error while it retries), containers.
    pub runtimes: Vec<crate::runtime::RuntimeStatus>,
    /// Where monitors are declared, each with its generation and last error.
    pub sources: Vec<SourceStatus>,
    pub desired: DesiredSummary,
    pub reconciler: ReconcileStatus,
    pub drift: Drift,
    /// Monitors whose last check the target policy refused (no connection
    /// was made), with the rule; they keep being retried and the others run.
    /// Does not make `status` degraded: the policy did its job.
    pub refused: Vec<RefusedMonitor>,
    /// `ok`, or `degraded` when the database cannot write (see `database.failure`), a source has an error, a runtime is disconnected, desired and running differ, or a task panicked (see `tasks`).
    pub status: String,
    /// maintenant's own long-lived tasks: a task that panics is restarted (or, for the few that
    /// cannot be, reported `stopped`) and listed under `panicked`.
    pub tasks: crate::supervise::TasksHealth,
    /// Notification channels, active alerts and failed deliveries.
    pub alerting: alerting::AlertingHealth,
}

/// A monitor the target policy refused to connect for (see `docs/security.md`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct RefusedMonitor {
    pub id: String,
    /// Where it was declared (a label, an annotation, a `Monitor` resource).
    pub origin: String,
    /// The address refused, and the host name that resolved to it if any.
    pub target: String,
    /// The rule that refused it, and the setting that changes it.
    pub rule: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DatabaseInfo {
    pub path: String,
    pub size_bytes: u64,
    /// `false` from the first failed write or flush (a full disk, an I/O
    /// error) until the daemon has checked that the disk writes again.
    pub writable: bool,
    /// Why the database cannot write, and what the daemon does about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<crate::store::health::StoreFailure>,
}

/// What `/healthz` answers: get_health's `status` and the database's
/// failure, from memory only (no disk access, no list built), since a
/// liveness probe calls it every few seconds.
#[derive(Debug, Serialize)]
pub struct Liveness {
    pub status: &'static str,
    pub version: &'static str,
    pub generation: u64,
    pub applied_generation: u64,
    pub writable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_failure: Option<crate::store::health::StoreFailure>,
}

/// Whether desired and running agree, without building the drift lists.
fn in_sync(app: &App, state: &crate::desired::DesiredState) -> bool {
    // Read in place; the reconciler waits for this walk.
    let running = app.running.read().expect("running index lock");
    running.len() == state.monitors.len()
        && state
            .monitors
            .iter()
            .all(|(k, d)| running.get(k).is_some_and(|r| r.spec_hash == d.spec_hash))
}

/// get_health's `status` rule, shared with `/healthz` and `/metrics`.
fn status_of(
    store_failing: bool,
    source_error: bool,
    runtime_down: bool,
    in_sync: bool,
    task_panicked: bool,
) -> &'static str {
    if store_failing || source_error || runtime_down || !in_sync || task_panicked {
        "degraded"
    } else {
        "ok"
    }
}

pub fn liveness(app: &App) -> Liveness {
    let state = app.desired();
    let store_failure = app.store.health().failure();
    let status = status_of(
        store_failure.is_some(),
        state.sources.iter().any(|s| s.last_error.is_some()),
        app.runtimes.statuses().iter().any(|r| !r.connected),
        in_sync(app, &state),
        !app.tasks.health().panicked.is_empty(),
    );
    Liveness {
        status,
        version: env!("CARGO_PKG_VERSION"),
        generation: state.generation,
        applied_generation: app
            .reconcile
            .read()
            .expect("reconcile status lock")
            .generation,
        writable: store_failure.is_none(),
        store_failure,
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DesiredSummary {
    pub generation: u64,
    /// Declared monitors by kind.
    pub monitors: BTreeMap<String, usize>,
    /// The same monitor declared by two sources.
    pub conflicts: Vec<Conflict>,
}

/// Differences between what is declared and what runs. Empty lists mean in sync.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Drift {
    pub in_sync: bool,
    /// Declared, no task running.
    pub missing: Vec<String>,
    /// Running, no longer declared.
    pub orphaned: Vec<String>,
    /// Running an older spec than declared.
    pub outdated: Vec<String>,
}

pub fn health(app: &App) -> Health {
    let state = app.desired();
    let mut drift = Drift {
        in_sync: true,
        missing: vec![],
        orphaned: vec![],
        outdated: vec![],
    };
    {
        // Read in place (no copy of 10k keys); the reconciler waits for this walk.
        let running = app.running.read().expect("running index lock");
        for (k, d) in state.monitors.iter() {
            match running.get(k) {
                None => drift.missing.push(k.id()),
                Some(r) if r.spec_hash != d.spec_hash => drift.outdated.push(k.id()),
                _ => {}
            }
        }
        drift.orphaned = running
            .keys()
            .filter(|k| !state.monitors.contains_key(*k))
            .map(MonitorKey::id)
            .collect();
    }
    drift.in_sync =
        drift.missing.is_empty() && drift.orphaned.is_empty() && drift.outdated.is_empty();
    let refused = app.observed.with(|obs| {
        state
            .monitors
            .iter()
            .filter_map(|(k, d)| {
                let r = obs.get(k)?.public()?.refused.as_ref()?;
                Some(RefusedMonitor {
                    id: k.id(),
                    origin: d.origin.to_string(),
                    target: r.target_and_via(),
                    rule: r.rule.clone(),
                })
            })
            .collect()
    });
    let mut monitors = BTreeMap::new();
    for k in state.monitors.keys() {
        *monitors.entry(k.kind.to_string()).or_insert(0) += 1;
    }
    let source_error = state.sources.iter().any(|s| s.last_error.is_some());
    let runtimes = app.runtimes.statuses();
    let runtime_down = runtimes.iter().any(|r| !r.connected);
    let now = OffsetDateTime::now_utc();
    let store_failure = app.store.health().failure();
    let tasks = app.tasks.health();
    Health {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        role: app.role,
        started_at: app.started_at,
        uptime_seconds: (now - app.started_at).whole_seconds().max(0) as u64,
        database: DatabaseInfo {
            path: app.settings.db.display().to_string(),
            size_bytes: app.store.size_on_disk(),
            writable: store_failure.is_none(),
            failure: store_failure.clone(),
        },
        runtimes,
        status: status_of(
            store_failure.is_some(),
            source_error,
            runtime_down,
            drift.in_sync,
            !tasks.panicked.is_empty(),
        )
        .to_owned(),
        sources: state.sources.clone(),
        desired: DesiredSummary {
            generation: state.generation,
            monitors,
            conflicts: state.conflicts.clone(),
        },
        reconciler: app.reconcile.read().expect("reconcile status lock").clone(),
        drift,
        refused,
        alerting: alerting::alerting_health(app),
        tasks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_the_whole_list_and_reject_foreign_cursors() {
        let items: Vec<u32> = (0..7).collect();
        let p1 = paginate(items.clone(), Some(3), None).unwrap();
        assert_eq!((p1.items.clone(), p1.total), (vec![0, 1, 2], 7));
        let p2 = paginate(items.clone(), Some(3), p1.next_cursor.as_deref()).unwrap();
        assert_eq!(p2.items, vec![3, 4, 5]);
        let p3 = paginate(items.clone(), Some(3), p2.next_cursor.as_deref()).unwrap();
        assert_eq!((p3.items, p3.next_cursor), (vec![6], None));
        assert!(paginate(items.clone(), None, Some("garbage")).is_err());
        assert!(paginate(items, None, Some(&encode_cursor('t', 5))).is_err());
        assert_eq!(clamp_limit(Some(10_000)), MAX_LIMIT);
    }

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("postgres", "postgres-1"), 2);
        assert_eq!(levenshtein("api", "apo"), 1);
    }
}
