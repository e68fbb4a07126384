//! Docker labels (`maintenant.*`) to typed monitor declarations.
//!
//! One small function per monitor kind ([`parse_endpoint`],
//! [`parse_certificates`], [`parse_heartbeat`]) plus the container-wide keys
//! ([`parse_common`]). Each monitor is validated on its own: a bad label
//! skips that one monitor and is reported as a [`LabelProblem`] naming the
//! label key, and the container's other monitors still run.
//!
//! Names: the simple form `maintenant.endpoint.http` declares the endpoint
//! named after the container; the indexed form `maintenant.endpoint.N.http`
//! declares `CONTAINER-N`. `maintenant.endpoint[.N].name` overrides either.

use std::collections::BTreeMap;

use crate::alerts::AlertType;
use crate::config::model::{AlertDecl, EndpointSpec, HttpMethod, Severity, StatusPattern};
use crate::config::validate::{MAX_REDIRECTS, MAX_THRESHOLD, check_name, classify_url};
use crate::duration::Duration;

pub const PREFIX: &str = "maintenant.";

/// A label that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct LabelProblem {
    pub label: String,
    pub message: String,
}

/// An endpoint declared by labels; `label` is the key holding its URL.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointLabel {
    pub label: String,
    pub spec: EndpointSpec,
}

/// `maintenant.tls.certificates=host1,host2:8443`, one per host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateLabel {
    pub label: String,
    pub host: String,
    pub port: u16,
}

/// `maintenant.heartbeat.NAME.period|grace|schedule|timezone`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatLabel {
    /// `maintenant.heartbeat.NAME`.
    pub label: String,
    pub name: String,
    pub period: Option<Duration>,
    pub grace: Option<Duration>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
}

/// `maintenant.alert.*`: applies to every monitor of the container, and to
/// the container's own alerts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertLabels {
    pub severity: Option<Severity>,
    /// Restarts within `restart_window` that raise `container_restart_loop`.
    pub restart_threshold: Option<u32>,
    pub restart_window: Option<Duration>,
    /// How long a pod may stay not Ready before `container_not_ready`.
    pub not_ready_after: Option<Duration>,
    /// Container alerts switched off (`maintenant.alert.disable`).
    pub disabled: Vec<AlertType>,
    pub channels: Vec<String>,
}

/// The container alerts' settings of one container or pod, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerAlertSettings {
    pub severity: Option<Severity>,
    pub channels: Vec<String>,
    pub restart_threshold: u32,
    pub restart_window: std::time::Duration,
    pub not_ready_after: std::time::Duration,
    pub disabled: Vec<AlertType>,
}

pub const DEFAULT_RESTART_THRESHOLD: u32 = 3;
pub const DEFAULT_RESTART_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);
pub const DEFAULT_NOT_READY_AFTER: std::time::Duration = std::time::Duration::from_secs(300);
/// The longest `restart_window` and `not_ready_after`: the restart times
/// kept per container are bounded by the threshold, and a day covers any
/// loop worth an alert.
const MAX_ALERT_DURATION: std::time::Duration = std::time::Duration::from_secs(86_400);

impl ContainerAlertSettings {
    /// Read from a container's labels (a pod's annotations). A bad value
    /// falls back to its default here; the label source reports it.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> ContainerAlertSettings {
        let mut out = ContainerLabels::default();
        for (key, value) in labels.range(format!("{PREFIX}alert.")..) {
            let Some(rest) = key.strip_prefix(PREFIX) else {
                break;
            };
            if !rest.starts_with("alert.") {
                break;
            }
            let _ = parse_common(&mut out, key, rest, value);
        }
        let a = out.alert;
        ContainerAlertSettings {
            severity: a.severity,
            channels: a.channels,
            restart_threshold: a.restart_threshold.unwrap_or(DEFAULT_RESTART_THRESHOLD),
            restart_window: a.restart_window.map_or(DEFAULT_RESTART_WINDOW, |d| d.std()),
            not_ready_after: a
                .not_ready_after
                .map_or(DEFAULT_NOT_READY_AFTER, |d| d.std()),
            disabled: a.disabled,
        }
    }

    pub fn enabled(&self, t: AlertType) -> bool {
        !self.disabled.contains(&t)
    }
}

fn parse_alert_duration(label: &str, v: &str) -> Result<Duration, LabelProblem> {
    let d = parse_duration(label, v)?;
    if d.0 < std::time::Duration::from_secs(1) || d.0 > MAX_ALERT_DURATION {
        return Err(problem(
            label,
            format!("{d} is out of range: from 1s to 24h"),
        ));
    }
    Ok(d)
}

/// `maintenant.alert.disable=oom_killed,unhealthy` (with or without the
/// `container_` prefix), or `all`.
fn parse_disabled(label: &str, v: &str) -> Result<Vec<AlertType>, LabelProblem> {
    if v.len() > 300 {
        return Err(problem(label, "too long: at most 300 characters"));
    }
    let known = || {
        AlertType::CONTAINER
            .iter()
            .map(|t| t.as_str().trim_start_matches("container_"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let item = item.to_ascii_lowercase();
        if item == "all" {
            return Ok(AlertType::CONTAINER.to_vec());
        }
        let name = item
            .strip_prefix("container_")
            .unwrap_or(&item)
            .replace('-', "_");
        match AlertType::CONTAINER
            .iter()
            .find(|t| t.as_str().trim_start_matches("container_") == name)
        {
            Some(t) if !out.contains(t) => out.push(*t),
            Some(_) => {}
            None => {
                return Err(problem(
                    label,
                    format!(
                        "unknown container alert {:?}: known are {}, or all",
                        item.chars().take(40).collect::<String>(),
                        known()
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// Everything one container's labels declare.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerLabels {
    pub ignore: bool,
    pub group: Option<String>,
    pub alert: AlertLabels,
    pub endpoints: Vec<EndpointLabel>,
    pub certificates: Vec<CertificateLabel>,
    pub heartbeats: Vec<HeartbeatLabel>,
    pub problems: Vec<LabelProblem>,
}

/// The value, or `None` with the problem recorded.
fn take<T>(problems: &mut Vec<LabelProblem>, r: Result<T, LabelProblem>) -> Option<T> {
    r.map_err(|p| problems.push(p)).ok()
}

fn problem(label: &str, message: impl Into<String>) -> LabelProblem {
    // Label keys and values are anyone's: keep what is quoted back short.
    LabelProblem {
        label: crate::config::shorten_quoted(label),
        message: crate::config::shorten_quoted(&message.into()),
    }
}

fn parse_bool(label: &str, v: &str) -> Result<bool, LabelProblem> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(problem(
            label,
            format!("{v:?} is not a boolean: write true or false"),
        )),
    }
}

fn parse_duration(label: &str, v: &str) -> Result<Duration, LabelProblem> {
    v.trim()
        .parse::<Duration>()
        .map_err(|e| problem(label, format!("{e} (write 30s, 5m, 1h)")))
}

fn parse_count(label: &str, v: &str, min: u32, max: u32) -> Result<u32, LabelProblem> {
    match v.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(problem(
            label,
            format!(
                "{:?} is not a whole number from {min} to {max}",
                v.chars().take(40).collect::<String>()
            ),
        )),
    }
}

/// Parse every `maintenant.*` label of one container.
pub fn parse(container: &str, labels: &BTreeMap<String, String>) -> ContainerLabels {
    let mut out = ContainerLabels::default();
    let mut endpoints: BTreeMap<Option<u32>, BTreeMap<String, (String, String)>> = BTreeMap::new();
    let mut heartbeats: BTreeMap<String, BTreeMap<String, (String, String)>> = BTreeMap::new();
    let mut certificates = None;
    for (key, value) in labels {
        let Some(rest) = key.strip_prefix(PREFIX) else {
            continue;
        };
        if let Some(field) = rest.strip_prefix("endpoint.") {
            // `N.http` (indexed) or `http` (simple).
            let (index, field) = match field.split_once('.') {
                Some((n, f)) if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => {
                    match n.parse::<u32>() {
                        Ok(n) => (Some(n), f),
                        Err(_) => {
                            out.problems.push(problem(key, "index too large"));
                            continue;
                        }
                    }
                }
                _ => (None, field),
            };
            endpoints
                .entry(index)
                .or_default()
                .insert(field.to_owned(), (key.clone(), value.clone()));
        } else if let Some(rest) = rest.strip_prefix("heartbeat.") {
            match rest.rsplit_once('.') {
                Some((name, field)) if !name.is_empty() => {
                    heartbeats
                        .entry(name.to_owned())
                        .or_default()
                        .insert(field.to_owned(), (key.clone(), value.clone()));
                }
                _ => out.problems.push(problem(
                    key,
                    "write maintenant.heartbeat.NAME.period (or .grace, .schedule, .timezone)",
                )),
            }
        } else if rest == "tls.certificates" {
            certificates = Some((key.clone(), value.clone()));
        } else if let Err(p) = parse_common(&mut out, key, rest, value) {
            out.problems.push(p);
        }
    }
    if out.ignore {
        return ContainerLabels {
            ignore: true,
            ..Default::default()
        };
    }
    for (index, fields) in &endpoints {
        match parse_endpoint(container, *index, fields, &out) {
            Ok(e) => out.endpoints.push(e),
            Err(mut p) => out.problems.append(&mut p),
        }
    }
    if let Some((key, value)) = certificates {
        let (certs, mut problems) = parse_certificates(&key, &value);
        out.certificates = certs;
        out.problems.append(&mut problems);
    }
    for (name, fields) in &heartbeats {
        match parse_heartbeat(name, fields) {
            Ok(h) => out.heartbeats.push(h),
            Err(mut p) => out.problems.append(&mut p),
        }
    }
    out
}

/// Container-wide keys: `ignore`, `group`, `alert.*`.
fn parse_common(
    out: &mut ContainerLabels,
    key: &str,
    rest: &str,
    value: &str,
) -> Result<(), LabelProblem> {
    match rest {
        "ignore" => out.ignore = parse_bool(key, value)?,
        "group" => {
            let g = value.trim();
            if g.is_empty() {
                return Err(problem(key, "group is empty"));
            }
            out.group = Some(g.to_owned());
        }
        "alert.severity" => {
            out.alert.severity = Some(match value.trim().to_ascii_lowercase().as_str() {
                "info" => Severity::Info,
                "warning" | "warn" => Severity::Warning,
                "critical" => Severity::Critical,
                _ => {
                    return Err(problem(
                        key,
                        format!("unknown severity {value:?}: use info, warning or critical"),
                    ));
                }
            })
        }
        "alert.restart_threshold" | "alert.restart-threshold" => {
            out.alert.restart_threshold = Some(parse_count(key, value, 1, MAX_THRESHOLD)?)
        }
        "alert.restart_window" | "alert.restart-window" => {
            out.alert.restart_window = Some(parse_alert_duration(key, value)?)
        }
        "alert.not_ready_after" | "alert.not-ready-after" => {
            out.alert.not_ready_after = Some(parse_alert_duration(key, value)?)
        }
        "alert.disable" => out.alert.disabled = parse_disabled(key, value)?,
        "alert.channels" => {
            out.alert.channels = value
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        }
        _ => {
            return Err(problem(
                key,
                "unknown maintenant label: known are maintenant.endpoint[.N].*, \
                 maintenant.tls.certificates, maintenant.heartbeat.NAME.*, maintenant.ignore, \
                 maintenant.group, maintenant.alert.severity|channels|restart_threshold|\
                 restart_window|not_ready_after|disable",
            ));
        }
    }
    Ok(())
}

const ENDPOINT_FIELDS: [&str; 13] = [
    "http",
    "tcp",
    "name",
    "interval",
    "timeout",
    "failure-threshold",
    "recovery-threshold",
    "http.method",
    "http.expected-status",
    "http.tls-verify",
    "http.headers",
    "http.max-redirects",
    "http.body",
];

/// One endpoint (simple when `index` is `None`, else `maintenant.endpoint.N.*`).
/// Every problem of this endpoint is returned, and the endpoint is skipped.
pub fn parse_endpoint(
    container: &str,
    index: Option<u32>,
    fields: &BTreeMap<String, (String, String)>,
    common: &ContainerLabels,
) -> Result<EndpointLabel, Vec<LabelProblem>> {
    let base = match index {
        Some(n) => format!("{PREFIX}endpoint.{n}"),
        None => format!("{PREFIX}endpoint"),
    };
    let mut problems = Vec::new();
    for (field, (key, _)) in fields {
        if !ENDPOINT_FIELDS.contains(&field.as_str()) {
            problems.push(problem(
                key,
                format!(
                    "unknown endpoint key {field:?}: known are {}",
                    ENDPOINT_FIELDS.join(", ")
                ),
            ));
        }
    }
    let get = |f: &str| fields.get(f).map(|(k, v)| (k.as_str(), v.as_str()));

    let (url_key, target) = match (get("http"), get("tcp")) {
        (Some((k, _)), Some(_)) => {
            problems.push(problem(
                k,
                format!("set either {base}.http or {base}.tcp, not both"),
            ));
            return Err(problems);
        }
        (Some((k, v)), None) => (k, classify_url(v.trim()).map(|t| (t, false))),
        (None, Some((k, v))) => {
            let v = v.trim();
            let url = if v.contains("://") {
                v.to_owned()
            } else {
                format!("tcp://{v}")
            };
            (k, classify_url(&url).map(|t| (t, true)))
        }
        (None, None) => {
            let (k, _) = fields
                .values()
                .next()
                .map_or((base.as_str(), ""), |(k, v)| (k.as_str(), v.as_str()));
            problems.push(problem(
                k,
                format!("{base} has no target: add {base}.http=URL or {base}.tcp=host:port"),
            ));
            return Err(problems);
        }
    };
    let target = match target {
        Ok((t, is_tcp)) => {
            let kind_ok = matches!(
                (&t, is_tcp),
                (crate::config::model::Target::Http { .. }, false)
                    | (crate::config::model::Target::Tcp { .. }, true)
            );
            if !kind_ok {
                problems.push(problem(
                    url_key,
                    "use .http for http(s):// URLs and .tcp for host:port",
                ));
            }
            Some(t)
        }
        Err(m) => {
            problems.push(problem(url_key, m));
            None
        }
    };

    let name = match get("name") {
        Some((_, v)) => v.trim().to_owned(),
        None => match index {
            Some(n) => format!("{container}-{n}"),
            None => container.to_owned(),
        },
    };
    if let Err(m) = check_name(&name) {
        problems.push(problem(get("name").map_or(url_key, |(k, _)| k), m));
    }

    let interval = get("interval").and_then(|(k, v)| {
        take(
            &mut problems,
            parse_duration(k, v).and_then(|d| {
                if d.0 < std::time::Duration::from_secs(1) {
                    Err(problem(
                        k,
                        format!("interval {d} is too short: at least 1s"),
                    ))
                } else {
                    Ok(d)
                }
            }),
        )
    });
    let timeout = get("timeout").and_then(|(k, v)| {
        take(
            &mut problems,
            parse_duration(k, v).and_then(|d| {
                if d.0.is_zero() {
                    Err(problem(k, "timeout must be more than 0s"))
                } else {
                    Ok(d)
                }
            }),
        )
    });
    let failure_threshold = get("failure-threshold")
        .and_then(|(k, v)| take(&mut problems, parse_count(k, v, 1, MAX_THRESHOLD)));
    let recovery_threshold = get("recovery-threshold")
        .and_then(|(k, v)| take(&mut problems, parse_count(k, v, 1, MAX_THRESHOLD)));
    let method = get("http.method").and_then(|(k, v)| {
        take(
            &mut problems,
            serde_json::from_value::<HttpMethod>(serde_json::Value::String(
                v.trim().to_ascii_uppercase(),
            ))
            .map_err(|_| {
                problem(
                    k,
                    format!("unknown method {v:?}: GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS"),
                )
            }),
        )
    });
    let expected_status = get("http.expected-status").and_then(|(k, v)| {
        take(
            &mut problems,
            v.split(',')
                .map(|s| {
                    crate::config::model::StatusPatternRepr::Text(s.trim().to_owned())
                        .try_into()
                        .map_err(|m: String| problem(k, m))
                })
                .collect::<Result<Vec<StatusPattern>, _>>(),
        )
    });
    let tls_verify =
        get("http.tls-verify").and_then(|(k, v)| take(&mut problems, parse_bool(k, v)));
    let max_redirects = get("http.max-redirects")
        .and_then(|(k, v)| take(&mut problems, parse_count(k, v, 0, MAX_REDIRECTS)));
    let headers = get("http.headers").and_then(|(k, v)| take(&mut problems, parse_headers(k, v)));
    let body = get("http.body").map(|(_, v)| v.to_owned());

    let interval = interval.unwrap_or(crate::config::validate::DEFAULT_INTERVAL);
    let timeout = match timeout {
        Some(t) if t > interval => {
            problems.push(problem(
                get("timeout").map_or(url_key, |(k, _)| k),
                format!("timeout {t} is longer than the interval {interval}"),
            ));
            t
        }
        Some(t) => t,
        None => crate::config::validate::DEFAULT_TIMEOUT.min(interval),
    };
    let is_tcp = matches!(target, Some(crate::config::model::Target::Tcp { .. }));
    if is_tcp {
        for (field, (key, _)) in fields {
            if field.starts_with("http.") {
                problems.push(problem(key, "HTTP settings do not apply to a tcp endpoint"));
            }
        }
    }
    let (Some(target), true) = (target, problems.is_empty()) else {
        return Err(problems);
    };
    let alert =
        (common.alert.severity.is_some() || !common.alert.channels.is_empty()).then(|| AlertDecl {
            severity: common.alert.severity.unwrap_or(Severity::Critical),
            channels: common.alert.channels.clone(),
        });
    Ok(EndpointLabel {
        label: url_key.to_owned(),
        spec: EndpointSpec {
            name,
            group: common.group.clone(),
            target,
            method: method.unwrap_or(HttpMethod::Get),
            headers: headers.unwrap_or_default(),
            body,
            expected_status: expected_status
                .unwrap_or_else(|| vec![StatusPattern { min: 200, max: 299 }]),
            conditions: vec![],
            tls_verify: tls_verify.unwrap_or(true),
            max_redirects: max_redirects.unwrap_or(crate::config::validate::DEFAULT_MAX_REDIRECTS),
            interval,
            timeout,
            failure_threshold: failure_threshold
                .unwrap_or(crate::config::validate::DEFAULT_FAILURE_THRESHOLD),
            recovery_threshold: recovery_threshold
                .unwrap_or(crate::config::validate::DEFAULT_RECOVERY_THRESHOLD),
            alert,
        },
    })
}

/// `Name: value` pairs separated by commas (`X-A: 1, Authorization: Bearer t`).
fn parse_headers(key: &str, v: &str) -> Result<BTreeMap<String, String>, LabelProblem> {
    let mut out = BTreeMap::new();
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = part.split_once(':').or_else(|| part.split_once('=')) else {
            return Err(problem(
                key,
                format!("header {part:?} has no value: write Name: value, Other: value"),
            ));
        };
        let name = name.trim();
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(problem(key, format!("invalid header name {name:?}")));
        }
        out.insert(name.to_owned(), value.trim().to_owned());
    }
    Ok(out)
}

/// `host1,host2:8443`: each host becomes one certificate monitor (port 443
/// unless given). A bad entry is reported; the others are kept.
pub fn parse_certificates(key: &str, value: &str) -> (Vec<CertificateLabel>, Vec<LabelProblem>) {
    let mut certs = Vec::new();
    let mut problems = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = match entry.rsplit_once(':') {
            // An IPv6 address without a port has more than one colon and no brackets.
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .map(|p| (h.trim_start_matches('[').trim_end_matches(']'), p)),
            _ => Some((entry, 443)),
        };
        match parsed {
            Some((host, port))
                if !host.is_empty()
                    && !host.contains('/')
                    && !host.contains(char::is_whitespace) =>
            {
                certs.push(CertificateLabel {
                    label: key.to_owned(),
                    host: host.to_owned(),
                    port,
                })
            }
            _ => problems.push(problem(
                key,
                format!("invalid certificate host {entry:?}: write host or host:port"),
            )),
        }
    }
    if certs.is_empty() && problems.is_empty() {
        problems.push(problem(key, "no hosts: write host1,host2:8443"));
    }
    (certs, problems)
}

/// One heartbeat: `period` (+ `grace`), or `schedule` (cron) + `timezone` (+ `grace`).
pub fn parse_heartbeat(
    name: &str,
    fields: &BTreeMap<String, (String, String)>,
) -> Result<HeartbeatLabel, Vec<LabelProblem>> {
    let label = format!("{PREFIX}heartbeat.{name}");
    let mut problems = Vec::new();
    if let Err(m) = check_name(name) {
        problems.push(problem(&label, m));
    }
    let mut hb = HeartbeatLabel {
        label: label.clone(),
        name: name.to_owned(),
        period: None,
        grace: None,
        schedule: None,
        timezone: None,
    };
    for (field, (key, value)) in fields {
        match field.as_str() {
            "period" => match parse_duration(key, value) {
                Ok(d) if d.0 >= std::time::Duration::from_secs(1) => hb.period = Some(d),
                Ok(d) => problems.push(problem(
                    key,
                    format!("period {d} is too short: at least 1s"),
                )),
                Err(p) => problems.push(p),
            },
            "grace" => match parse_duration(key, value) {
                Ok(d) => hb.grace = Some(d),
                Err(p) => problems.push(p),
            },
            "schedule" => {
                // Five cron fields; the heartbeat checker validates each field.
                if value.split_whitespace().count() == 5 {
                    hb.schedule = Some(value.trim().to_owned());
                } else {
                    problems.push(problem(
                        key,
                        format!("schedule {value:?} is not a cron expression of 5 fields (e.g. \"0 3 * * *\")"),
                    ));
                }
            }
            "timezone" => hb.timezone = Some(value.trim().to_owned()),
            _ => problems.push(problem(
                key,
                format!(
                    "unknown heartbeat key {field:?}: known are period, grace, schedule, timezone"
                ),
            )),
        }
    }
    // An invalid period or schedule was reported already: no "needs" on top.
    let given = |f: &str| fields.contains_key(f);
    match (given("period"), given("schedule")) {
        (false, false) => problems.push(problem(
            &label,
            format!("{label} needs .period or .schedule"),
        )),
        (true, true) => problems.push(problem(
            &label,
            format!("{label} has both .period and .schedule: keep one"),
        )),
        _ => {}
    }
    if hb.timezone.is_some() && !given("schedule") {
        problems.push(problem(
            &format!("{label}.timezone"),
            "timezone needs a schedule",
        ));
    }
    if problems.is_empty() {
        Ok(hb)
    } else {
        Err(problems)
    }
}

/// Every monitor one container (or pod) declares, as resolved specs with
/// the label key that declared each, and every problem. Certificates and
/// heartbeats go through the monitors file's own resolution
/// ([`crate::config::resolve_certificate`], [`crate::config::resolve_heartbeat`]):
/// the same defaults (12h, warn days; grace 1h) and the same checks (a cron
/// expression's fields, a time zone), so a label and a file entry agree.
pub fn monitors(
    parsed: ContainerLabels,
) -> (
    Vec<(crate::monitor::MonitorSpec, String)>,
    Vec<LabelProblem>,
) {
    use crate::config::model::{CertificateDecl, HeartbeatDecl};
    use crate::monitor::MonitorSpec;
    let mut problems = parsed.problems;
    let alert =
        (parsed.alert.severity.is_some() || !parsed.alert.channels.is_empty()).then(|| AlertDecl {
            severity: parsed.alert.severity.unwrap_or(Severity::Critical),
            channels: parsed.alert.channels.clone(),
        });
    let mut out: Vec<(MonitorSpec, String)> = parsed
        .endpoints
        .into_iter()
        .map(|e| (MonitorSpec::Endpoint(e.spec), e.label))
        .collect();
    for c in parsed.certificates {
        let decl = CertificateDecl {
            // As certificates derived from HTTPS endpoints are named.
            name: format!("{}:{}", c.host, c.port),
            group: parsed.group.clone(),
            host: c.host.clone(),
            port: Some(c.port),
            interval: None,
            warn_days: None,
            alert: alert.clone(),
        };
        match crate::config::resolve_certificate(&decl) {
            Ok(spec) => out.push((MonitorSpec::Certificate(spec), c.label)),
            Err(m) => problems.push(problem(&c.label, format!("{}: {}", c.host, m.join("; ")))),
        }
    }
    for h in parsed.heartbeats {
        let decl = HeartbeatDecl {
            name: h.name.clone(),
            group: parsed.group.clone(),
            token: None,
            period: h.period,
            schedule: h.schedule.clone(),
            timezone: h.timezone.clone(),
            grace: h.grace,
            alert: alert.clone(),
        };
        match crate::config::resolve_heartbeat(&decl) {
            Ok(spec) => out.push((MonitorSpec::Heartbeat(spec), h.label)),
            Err(m) => problems.push(problem(&h.label, m.join("; "))),
        }
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Target;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn simple_and_indexed_endpoints_with_their_keys() {
        let l = labels(&[
            ("maintenant.endpoint.http", "http://127.0.0.1:8080/health"),
            ("maintenant.endpoint.interval", "5s"),
            ("maintenant.endpoint.http.expected-status", "200,3xx"),
            (
                "maintenant.endpoint.http.headers",
                "X-A: 1, Authorization: Bearer t",
            ),
            ("maintenant.endpoint.0.tcp", "127.0.0.1:5432"),
            ("maintenant.endpoint.0.failure-threshold", "5"),
            ("maintenant.endpoint.1.http", "https://127.0.0.1:8443/"),
            ("maintenant.endpoint.1.http.tls-verify", "false"),
            ("maintenant.endpoint.1.http.method", "head"),
            ("maintenant.endpoint.1.http.max-redirects", "0"),
            ("maintenant.endpoint.1.name", "web-tls"),
            ("maintenant.group", "shop"),
            ("maintenant.alert.severity", "warning"),
            ("com.docker.compose.project", "ignored-by-the-parser"),
        ]);
        let c = parse("web", &l);
        assert_eq!(c.problems, vec![]);
        let by_name: BTreeMap<&str, &EndpointLabel> = c
            .endpoints
            .iter()
            .map(|e| (e.spec.name.as_str(), e))
            .collect();
        let simple = by_name["web"];
        assert_eq!(simple.label, "maintenant.endpoint.http");
        assert_eq!(simple.spec.interval, Duration::from_secs(5));
        assert_eq!(
            simple.spec.timeout,
            Duration::from_secs(5),
            "default timeout cut to the interval"
        );
        assert_eq!(simple.spec.expected_status.len(), 2);
        assert_eq!(simple.spec.headers["Authorization"], "Bearer t");
        assert_eq!(simple.spec.group.as_deref(), Some("shop"));
        assert_eq!(
            simple.spec.alert.as_ref().unwrap().severity,
            Severity::Warning
        );
        let tcp = by_name["web-0"];
        assert_eq!(
            tcp.spec.target,
            Target::Tcp {
                host: "127.0.0.1".into(),
                port: 5432
            }
        );
        assert_eq!(tcp.spec.failure_threshold, 5);
        let tls = by_name["web-tls"];
        assert!(!tls.spec.tls_verify);
        assert_eq!(tls.spec.method, HttpMethod::Head);
        assert_eq!(tls.spec.max_redirects, 0);
    }

    #[test]
    fn a_bad_label_skips_only_its_monitor_and_names_the_key() {
        let l = labels(&[
            ("maintenant.endpoint.0.http", "http://127.0.0.1:1/"),
            ("maintenant.endpoint.1.http", "ftp://nope"),
            ("maintenant.endpoint.2.http", "http://127.0.0.1:2/"),
            ("maintenant.endpoint.2.intervall", "5s"),
            ("maintenant.endpoint.3.tcp", "127.0.0.1:5"),
            ("maintenant.endpoint.3.http.method", "GET"),
            ("maintenant.endpoint.4.http", "http://127.0.0.1:4/"),
            ("maintenant.endpoint.4.timeout", "1m"),
            ("maintenant.endpoint.5.interval", "5s"),
            ("maintenant.colour", "blue"),
        ]);
        let c = parse("app", &l);
        let names: Vec<&str> = c.endpoints.iter().map(|e| e.spec.name.as_str()).collect();
        assert_eq!(names, ["app-0"]);
        let keys: Vec<&str> = c.problems.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(
            keys,
            [
                "maintenant.colour",
                "maintenant.endpoint.1.http",
                "maintenant.endpoint.2.intervall",
                "maintenant.endpoint.3.http.method",
                "maintenant.endpoint.4.timeout",
                "maintenant.endpoint.5.interval",
            ],
            "{:#?}",
            c.problems
        );
        assert!(c.problems[3].message.contains("tcp"));
        assert!(c.problems[5].message.contains("no target"));
    }

    #[test]
    fn ignore_declares_nothing() {
        let c = parse(
            "x",
            &labels(&[
                ("maintenant.ignore", "true"),
                ("maintenant.endpoint.http", "http://127.0.0.1/"),
            ]),
        );
        assert!(c.ignore);
        assert!(c.endpoints.is_empty() && c.problems.is_empty());
    }

    #[test]
    fn certificates_and_heartbeats_are_parsed_into_typed_declarations() {
        let c = parse(
            "x",
            &labels(&[
                (
                    "maintenant.tls.certificates",
                    "example.com, api.example.com:8443,bad host,",
                ),
                ("maintenant.heartbeat.backup.schedule", "0 3 * * *"),
                ("maintenant.heartbeat.backup.timezone", "Europe/Paris"),
                ("maintenant.heartbeat.backup.grace", "10m"),
                ("maintenant.heartbeat.sync.period", "5m"),
                ("maintenant.heartbeat.both.period", "5m"),
                ("maintenant.heartbeat.both.schedule", "* * * * *"),
                ("maintenant.heartbeat.cron.schedule", "every day"),
                ("maintenant.alert.restart_threshold", "3"),
                ("maintenant.alert.channels", "ops, pager"),
            ]),
        );
        assert_eq!(
            c.certificates,
            vec![
                CertificateLabel {
                    label: "maintenant.tls.certificates".into(),
                    host: "example.com".into(),
                    port: 443
                },
                CertificateLabel {
                    label: "maintenant.tls.certificates".into(),
                    host: "api.example.com".into(),
                    port: 8443
                },
            ]
        );
        let hb: Vec<&str> = c.heartbeats.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(hb, ["backup", "sync"]);
        assert_eq!(c.heartbeats[0].schedule.as_deref(), Some("0 3 * * *"));
        assert_eq!(c.heartbeats[0].grace, Some(Duration::from_secs(600)));
        assert_eq!(c.heartbeats[1].period, Some(Duration::from_secs(300)));
        let keys: Vec<&str> = c.problems.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(
            keys,
            [
                "maintenant.tls.certificates",
                "maintenant.heartbeat.both",
                "maintenant.heartbeat.cron.schedule",
            ],
            "{:#?}",
            c.problems
        );
        assert_eq!(c.alert.restart_threshold, Some(3));
        assert_eq!(c.alert.channels, ["ops", "pager"]);
    }

    #[test]
    fn container_alert_labels_are_bounded_and_fall_back_to_defaults() {
        let l = labels(&[
            ("maintenant.alert.restart_threshold", "5"),
            ("maintenant.alert.restart_window", "30s"),
            ("maintenant.alert.not_ready_after", "2d"),
            (
                "maintenant.alert.disable",
                "oom_killed, container_unhealthy",
            ),
            ("maintenant.alert.severity", "warning"),
        ]);
        let c = parse("x", &l);
        let keys: Vec<&str> = c.problems.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(
            keys,
            ["maintenant.alert.not_ready_after"],
            "{:?}",
            c.problems
        );
        assert!(c.problems[0].message.contains("1s to 24h"));
        let s = ContainerAlertSettings::from_labels(&l);
        assert_eq!(s.restart_threshold, 5);
        assert_eq!(s.restart_window, std::time::Duration::from_secs(30));
        assert_eq!(
            s.not_ready_after, DEFAULT_NOT_READY_AFTER,
            "bad value: default"
        );
        assert_eq!(s.severity, Some(Severity::Warning));
        assert!(!s.enabled(AlertType::ContainerOomKilled));
        assert!(!s.enabled(AlertType::ContainerUnhealthy));
        assert!(s.enabled(AlertType::ContainerRestartLoop));

        let all =
            ContainerAlertSettings::from_labels(&labels(&[("maintenant.alert.disable", "all")]));
        assert!(AlertType::CONTAINER.iter().all(|t| !all.enabled(*t)));
        let d = ContainerAlertSettings::from_labels(&BTreeMap::new());
        assert_eq!(
            (d.restart_threshold, d.restart_window, d.disabled.len()),
            (3, DEFAULT_RESTART_WINDOW, 0)
        );
        let bad = parse(
            "x",
            &labels(&[("maintenant.alert.disable", "oom,nonsense")]),
        );
        assert_eq!(bad.problems.len(), 1);
        assert!(
            bad.problems[0].message.contains("unknown container alert"),
            "{:?}",
            bad.problems
        );
    }
}

#[cfg(test)]
mod resolved {
    use super::*;
    use crate::config::model::HeartbeatSchedule;
    use crate::monitor::MonitorSpec;

    #[test]
    fn certificates_and_heartbeats_resolve_with_the_file_rules() {
        let l: BTreeMap<String, String> = [
            (
                "maintenant.tls.certificates",
                "example.com,api.example.com:8443",
            ),
            ("maintenant.heartbeat.backup.schedule", "0 3 * * *"),
            ("maintenant.heartbeat.backup.timezone", "Europe/Paris"),
            ("maintenant.heartbeat.sync.period", "5m"),
            ("maintenant.heartbeat.sync.grace", "1m"),
            // Five fields, but not a cron expression: the file's check says so.
            ("maintenant.heartbeat.bad.schedule", "61 * * * *"),
            ("maintenant.heartbeat.tz.schedule", "0 * * * *"),
            ("maintenant.heartbeat.tz.timezone", "Mars/Olympus"),
            ("maintenant.group", "shop"),
            ("maintenant.alert.severity", "warning"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let (specs, problems) = monitors(parse("app", &l));
        let ids: Vec<(String, &str)> = specs
            .iter()
            .map(|(s, l)| (s.key().id(), l.as_str()))
            .collect();
        assert_eq!(
            ids,
            [
                (
                    "certificate/example.com:443".to_owned(),
                    "maintenant.tls.certificates"
                ),
                (
                    "certificate/api.example.com:8443".to_owned(),
                    "maintenant.tls.certificates"
                ),
                ("heartbeat/backup".to_owned(), "maintenant.heartbeat.backup"),
                ("heartbeat/sync".to_owned(), "maintenant.heartbeat.sync"),
            ]
        );
        let MonitorSpec::Certificate(c) = &specs[1].0 else {
            panic!()
        };
        assert_eq!(
            (c.port, c.interval.std().as_secs()),
            (8443, 12 * 3600),
            "the file's default interval"
        );
        assert_eq!(c.warn_days, [30, 14, 7, 3, 1]);
        assert_eq!(c.group.as_deref(), Some("shop"));
        assert_eq!(c.alert.as_ref().unwrap().severity, Severity::Warning);
        let MonitorSpec::Heartbeat(b) = &specs[2].0 else {
            panic!()
        };
        assert_eq!(
            b.schedule,
            HeartbeatSchedule::Cron {
                expression: "0 3 * * *".into(),
                timezone: "Europe/Paris".into()
            }
        );
        assert_eq!(b.grace.std().as_secs(), 3600, "the file's default grace");
        let MonitorSpec::Heartbeat(s) = &specs[3].0 else {
            panic!()
        };
        assert_eq!(s.grace.std().as_secs(), 60);
        let keys: Vec<&str> = problems.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(
            keys,
            ["maintenant.heartbeat.bad", "maintenant.heartbeat.tz"],
            "{problems:#?}"
        );
        assert!(
            problems[1].message.contains("Mars/Olympus"),
            "{problems:#?}"
        );
    }
}

#[cfg(test)]
mod deploy_example {
    /// The labels of deploy/docker-compose.yml are valid as written.
    #[test]
    fn the_compose_example_labels_parse_without_problems() {
        let text = include_str!("../../deploy/docker-compose.yml");
        let doc: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        let services = doc["services"].as_mapping().unwrap();
        let mut endpoints = 0;
        for (name, svc) in services {
            let Some(labels) = svc["labels"].as_mapping() else {
                continue;
            };
            let labels = labels
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        serde_yaml::Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other).unwrap().trim().to_owned(),
                    };
                    (k.as_str().unwrap().to_owned(), v)
                })
                .collect();
            let c = super::parse(name.as_str().unwrap(), &labels);
            assert_eq!(c.problems, vec![], "service {name:?}");
            endpoints += c.endpoints.len();
        }
        assert_eq!(endpoints, 2);
    }
}
