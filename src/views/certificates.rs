//! `list_certificates` rows: desired (spec, origin, generation) + observed
//! (the last check: status, since, chain, names, expiry).

use schemars::JsonSchema;
use serde::Serialize;

use crate::checks::certificate::{self, CertStatus, CertificateCheck};
use crate::config::model::CertificateSpec;
use crate::desired::{DesiredMonitor, DesiredState};
use crate::engine::App;
use crate::monitor::{MonitorKey, MonitorSpec};
use crate::observed::TaskInfo;
use crate::readmodel::listing::{Facts, Listing, brief, natural_cmp, state_name};
use crate::readmodel::{DesiredView, Page, ReadError, desired_view, paginate};

#[derive(Debug, Serialize, JsonSchema)]
pub struct CertificateObserved {
    /// `pending` (not yet checked), `valid`, `expiring`, `expired`, `invalid`, `error`, or
    /// `paused` (by pause_monitor; `last_check` keeps what was seen before).
    pub status: CertStatus,
    /// Since when the status holds (for `paused`, when it was paused).
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub since: Option<time::OffsetDateTime>,
    /// The last check, with subject, issuer, SANs, validity, chain and host name verdicts.
    pub last_check: Option<CertificateCheck>,
    pub error: Option<String>,
    pub task: Option<TaskInfo>,
    /// When `pause_monitor` paused it: not checked until `resume_monitor`.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub paused_at: Option<time::OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CertificateRow {
    /// `certificate/NAME`.
    pub id: String,
    pub name: String,
    pub group: Option<String>,
    /// `host:port`.
    pub target: String,
    pub status: CertStatus,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub not_after: Option<time::OffsetDateTime>,
    pub days_left: Option<i64>,
    pub issuer: Option<String>,
    pub sans: Vec<String>,
    pub chain_valid: Option<bool>,
    pub hostname_match: Option<bool>,
    pub desired: DesiredView<CertificateSpec>,
    pub observed: CertificateObserved,
}

pub fn list_certificates(
    app: &App,
    expiring_within_days: Option<i64>,
    status: Option<CertStatus>,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Page<CertificateRow>, ReadError> {
    let state = app.desired();
    let page = paginate(
        matching(app, &state, expiring_within_days, status)?,
        limit,
        cursor,
    )?;
    let mut items = Vec::with_capacity(page.items.len());
    for (k, d, spec, last) in page.items {
        items.push(row(app, k, d, spec, last)?);
    }
    Ok(Page {
        items,
        total: page.total,
        next_cursor: page.next_cursor,
    })
}

type Matching<'a> = Vec<(
    &'a MonitorKey,
    &'a DesiredMonitor,
    &'a CertificateSpec,
    Option<CertificateCheck>,
)>;

/// The certificate monitors the filters keep, with their last checks, in
/// natural name order.
fn matching<'a>(
    app: &App,
    state: &'a DesiredState,
    expiring_within_days: Option<i64>,
    status: Option<CertStatus>,
) -> Result<Matching<'a>, ReadError> {
    let mut rows = Vec::new();
    for (k, d) in state.monitors.iter() {
        let MonitorSpec::Certificate(spec) = &*d.spec else {
            continue;
        };
        let last = certificate::load(&app.store, k)?;
        let paused = app.store.pause_record(k)?.is_some();
        let current = current_status(last.as_ref(), paused);
        if status.is_some_and(|want| want != current) {
            continue;
        }
        // "Expiring within N days" includes expired ones (days_left < 0).
        if let Some(n) = expiring_within_days
            && last
                .as_ref()
                .and_then(|c| c.days_left)
                .is_none_or(|left| left > n)
        {
            continue;
        }
        rows.push((k, d, spec, last));
    }
    rows.sort_by(|a, b| natural_cmp(&a.2.name, &b.2.name));
    Ok(rows)
}

/// A certificate in a brief list: when it expires and what is wrong.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CertificateBrief {
    pub name: String,
    /// `pending`, `valid`, `expiring`, `expired`, `invalid`, `error` or `paused`.
    pub status: CertStatus,
    /// `host:port`.
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    #[schemars(with = "Option<String>")]
    pub not_after: Option<time::OffsetDateTime>,
    /// Why it is invalid, or why no certificate was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `list_certificates` in brief: counts by status; expiring, expired,
/// invalid and unreadable ones first.
pub fn brief_certificates(
    app: &App,
    expiring_within_days: Option<i64>,
    status: Option<CertStatus>,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Listing<CertificateBrief, CertificateRow>, ReadError> {
    let state = app.desired();
    let rows = matching(app, &state, expiring_within_days, status)?;
    // Paused as in the full rows (a pause record read per row, like them).
    let status_of = |k: &MonitorKey, last: &Option<CertificateCheck>| {
        let paused = app.store.pause_record(k).ok().flatten().is_some();
        current_status(last.as_ref(), paused)
    };
    brief(
        rows,
        |(k, _, _, last)| {
            let s = status_of(k, last);
            Facts {
                state: state_name(&s).into(),
                attention: !matches!(
                    s,
                    CertStatus::Pending | CertStatus::Valid | CertStatus::Paused
                ),
            }
        },
        |(k, _, spec, last)| CertificateBrief {
            name: spec.name.clone(),
            status: status_of(k, last),
            target: target(spec),
            days_left: last.as_ref().and_then(|c| c.days_left),
            not_after: last.as_ref().and_then(|c| c.not_after),
            error: last.as_ref().and_then(|c| c.error.clone()),
        },
        limit,
        cursor,
    )
}

fn target(spec: &CertificateSpec) -> String {
    if spec.host.contains(':') {
        format!("[{}]:{}", spec.host, spec.port)
    } else {
        format!("{}:{}", spec.host, spec.port)
    }
}

/// A paused certificate shows `paused`, as paused endpoints and heartbeats
/// do, whatever its last check found.
fn current_status(last: Option<&CertificateCheck>, paused: bool) -> CertStatus {
    if paused {
        CertStatus::Paused
    } else {
        last.map_or(CertStatus::Pending, |c| c.status)
    }
}

/// One certificate's row.
fn row(
    app: &App,
    k: &MonitorKey,
    d: &DesiredMonitor,
    spec: &CertificateSpec,
    last: Option<CertificateCheck>,
) -> Result<CertificateRow, ReadError> {
    let paused_at = app.store.pause_record(k)?.map(|p| p.at);
    let current = current_status(last.as_ref(), paused_at.is_some());
    let since = paused_at.or_else(|| last.as_ref().map(|c| c.since));
    let task = app.observed.get(k).and_then(|o| o.task);
    let target = target(spec);
    Ok(CertificateRow {
        id: k.id(),
        name: spec.name.clone(),
        group: spec.group.clone(),
        target,
        status: current,
        not_after: last.as_ref().and_then(|c| c.not_after),
        days_left: last.as_ref().and_then(|c| c.days_left),
        issuer: last.as_ref().and_then(|c| c.issuer.clone()),
        sans: last.as_ref().map(|c| c.sans.clone()).unwrap_or_default(),
        chain_valid: last.as_ref().and_then(|c| c.chain_valid),
        hostname_match: last.as_ref().and_then(|c| c.hostname_match),
        desired: desired_view(d, spec.clone()),
        observed: CertificateObserved {
            status: current,
            since,
            error: last.as_ref().and_then(|c| c.error.clone()),
            note: if paused_at.is_some() {
                Some("paused by pause_monitor: not checked until resume_monitor".to_owned())
            } else {
                last.is_none()
                    .then(|| "declared, not yet checked".to_owned())
            },
            paused_at,
            last_check: last,
            task,
        },
    })
}

/// The row of one declared certificate monitor (what `pause_monitor` answers).
pub fn certificate_row(app: &App, key: &MonitorKey) -> Result<CertificateRow, ReadError> {
    let state = app.desired();
    let d = state
        .monitors
        .get(key)
        .ok_or_else(|| ReadError::NotFound(format!("{} is not declared", key.id())))?;
    let MonitorSpec::Certificate(spec) = &*d.spec else {
        return Err(ReadError::NotFound(format!(
            "{} is not a certificate",
            key.id()
        )));
    };
    row(app, key, d, spec, certificate::load(&app.store, key)?)
}
