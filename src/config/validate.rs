//! From a parsed [`MonitorsFile`] to resolved specs: defaults applied, URLs
//! classified, and every semantic problem found (not just the first), each at
//! the position of the offending key or value.

use std::collections::HashMap;

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};

use super::locate::{Pos, Seg, key};
use super::model::{
    EndpointDecl, EndpointSpec, HeartbeatSchedule, HeartbeatSpec, HttpMethod, MonitorsFile,
    StatusPattern, Target,
};
use crate::duration::Duration;

/// Built-in defaults, used when neither the endpoint nor `defaults.endpoint` sets a value.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration(std::time::Duration::from_secs(30));
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration(std::time::Duration::from_secs(10));
pub(crate) const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
pub(crate) const DEFAULT_RECOVERY_THRESHOLD: u32 = 2;
pub(crate) const DEFAULT_MAX_REDIRECTS: u32 = 10;
pub(crate) const MAX_NAME_CHARS: usize = 128;
/// Largest failure, recovery or restart threshold: a check that must fail
/// more often than this before it is down is never down in practice.
pub(crate) const MAX_THRESHOLD: u32 = 1000;
/// Largest `max_redirects` (browsers stop at about 20).
pub(crate) const MAX_REDIRECTS: u32 = 50;

/// `field` must be within `min..=max` (the bound named in the error).
pub(crate) fn check_count(field: &str, v: u32, min: u32, max: u32) -> Result<(), String> {
    if v < min {
        Err(format!("{field} must be at least {min}"))
    } else if v > max {
        Err(format!("{field} is {v}: at most {max}"))
    } else {
        Ok(())
    }
}

/// A problem, at a position of the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub pos: Pos,
    pub message: String,
}

/// One endpoint, resolved, with where it was declared.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub spec: EndpointSpec,
    /// The list item (`- name: ...`).
    pub item: Pos,
}

/// Finds positions of nodes in the original text; falls back to coarser
/// positions (the list item, then 1:1) when the index has nothing.
pub(crate) struct Locator<'a> {
    /// Built on first use: a valid file whose items were found by
    /// [`super::locate::fast_item_positions`] never needs it.
    pub index: &'a super::locate::LazyIndex<'a>,
    /// Positions of `endpoints[i]`, when the fast scan found them all.
    pub items: Option<&'a [Pos]>,
    /// Maps a position of the parsed (expanded) text to the original text.
    pub map: &'a dyn Fn(Pos) -> Pos,
}

const START: Pos = Pos { line: 1, col: 1 };

impl Locator<'_> {
    fn item(&self, i: usize) -> Pos {
        if let Some(p) = self.items.and_then(|items| items.get(i)) {
            return (self.map)(*p);
        }
        self.index
            .get()
            .value(&[key("endpoints"), Seg::Index(i)])
            .map_or(START, |p| (self.map)(p))
    }

    fn field_path(i: usize, field: &str) -> Vec<Seg> {
        vec![key("endpoints"), Seg::Index(i), key(field)]
    }

    /// The value of `endpoints[i].<rest...>`.
    fn value(&self, i: usize, rest: &[Seg]) -> Pos {
        let mut path = vec![key("endpoints"), Seg::Index(i)];
        path.extend_from_slice(rest);
        self.index
            .get()
            .value(&path)
            .map_or_else(|| self.item(i), |p| (self.map)(p))
    }

    fn field_value(&self, i: usize, field: &str) -> Pos {
        self.value(i, &[key(field)])
    }

    fn field_key(&self, i: usize, field: &str) -> Pos {
        self.index
            .get()
            .key(&Self::field_path(i, field))
            .map_or_else(|| self.item(i), |p| (self.map)(p))
    }

    fn default_value(&self, field: &str) -> Pos {
        let path = [key("defaults"), key("endpoint"), key(field)];
        self.index
            .get()
            .value(&path)
            .map_or(START, |p| (self.map)(p))
    }
}

/// Resolve and validate every endpoint of `file`.
pub(crate) fn resolve(file: &MonitorsFile, loc: &Locator<'_>) -> (Vec<Resolved>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut push = |pos: Pos, message: String| problems.push(Problem { pos, message });
    let d = &file.defaults.endpoint;

    // The defaults themselves.
    let d_interval = d.interval.unwrap_or(DEFAULT_INTERVAL);
    let d_timeout = d.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let mut defaults_ok = true;
    if let Some(v) = d.interval
        && let Err(m) = check_interval(v)
    {
        push(loc.default_value("interval"), m);
        defaults_ok = false;
    }
    if let Some(v) = d.timeout
        && let Err(m) = check_timeout(v)
    {
        push(loc.default_value("timeout"), m);
        defaults_ok = false;
    }
    if defaults_ok && d_timeout > d_interval {
        let at = if d.timeout.is_some() {
            "timeout"
        } else {
            "interval"
        };
        push(
            loc.default_value(at),
            format!("default timeout {d_timeout} is longer than the default interval {d_interval}"),
        );
    }
    for (field, v) in [
        ("failure_threshold", d.failure_threshold),
        ("recovery_threshold", d.recovery_threshold),
    ] {
        if let Some(Err(m)) = v.map(|v| check_count(field, v, 1, MAX_THRESHOLD)) {
            push(loc.default_value(field), m);
        }
    }

    let mut resolved = Vec::new();
    // Item indexes by name; positions are looked up only to report a problem.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, decl) in file.endpoints.iter().enumerate() {
        let item = loc.item(i);
        if let Err(m) = check_name(&decl.name) {
            push(loc.field_value(i, "name"), m);
        }
        if let Some(&first) = seen.get(decl.name.as_str()) {
            push(
                loc.field_value(i, "name"),
                format!(
                    "duplicate endpoint name {:?}: already declared at line {}",
                    decl.name,
                    loc.field_value(first, "name").line
                ),
            );
        } else {
            seen.insert(&decl.name, i);
        }

        let target = match classify_url(&decl.url) {
            Ok(t) => Some(t),
            Err(m) => {
                push(loc.field_value(i, "url"), m);
                None
            }
        };

        check_endpoint_fields(i, decl, target.as_ref(), loc, &mut push);

        // Durations, with defaults.
        let interval = decl.interval.unwrap_or(d_interval);
        // An inherited timeout longer than this endpoint's interval is cut to
        // the interval: `interval: 1s` alone must not be an error.
        let timeout = decl.timeout.unwrap_or(d_timeout.min(interval));
        let mut durations_ok = true;
        if let Some(v) = decl.interval
            && let Err(m) = check_interval(v)
        {
            push(loc.field_value(i, "interval"), m);
            durations_ok = false;
        }
        if let Some(v) = decl.timeout
            && let Err(m) = check_timeout(v)
        {
            push(loc.field_value(i, "timeout"), m);
            durations_ok = false;
        }
        if durations_ok && timeout > interval {
            // Only an explicit timeout can exceed the interval (inherited ones are cut).
            if decl.timeout.is_some() {
                push(
                    loc.field_value(i, "timeout"),
                    format!(
                        "timeout {timeout} is longer than the interval {interval}: make it at most {interval}"
                    ),
                );
            }
        }
        for (field, v) in [
            ("failure_threshold", decl.failure_threshold),
            ("recovery_threshold", decl.recovery_threshold),
        ] {
            if let Some(Err(m)) = v.map(|v| check_count(field, v, 1, MAX_THRESHOLD)) {
                push(loc.field_value(i, field), m);
            }
        }

        if let Some(target) = target {
            let spec = EndpointSpec {
                name: decl.name.clone(),
                group: decl.group.clone(),
                target,
                method: decl.method.unwrap_or(HttpMethod::Get),
                headers: decl.headers.clone(),
                body: decl.body.clone(),
                expected_status: decl
                    .expected_status
                    .clone()
                    .unwrap_or_else(|| vec![StatusPattern { min: 200, max: 299 }]),
                conditions: decl.conditions.clone(),
                tls_verify: decl.tls_verify.unwrap_or(true),
                max_redirects: decl.max_redirects.unwrap_or(DEFAULT_MAX_REDIRECTS),
                interval,
                timeout,
                failure_threshold: decl
                    .failure_threshold
                    .or(d.failure_threshold)
                    .unwrap_or(DEFAULT_FAILURE_THRESHOLD),
                recovery_threshold: decl
                    .recovery_threshold
                    .or(d.recovery_threshold)
                    .unwrap_or(DEFAULT_RECOVERY_THRESHOLD),
                alert: decl.alert.clone(),
            };
            resolved.push(Resolved { spec, item });
        }
    }
    (resolved, problems)
}

/// A heartbeat's grace when it sets none: the job may be an hour late
/// before it is down (Healthchecks.io's default too).
pub(crate) const DEFAULT_GRACE: Duration = Duration(std::time::Duration::from_secs(3600));
/// Shortest accepted token: a ping URL with a token must not be guessable.
pub(crate) const MIN_TOKEN_CHARS: usize = 16;

/// One heartbeat, resolved, with where it was declared.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedHeartbeat {
    pub spec: HeartbeatSpec,
    pub item: Pos,
}

/// Resolve and validate every heartbeat of `file`. Positions come from the
/// full index (heartbeat lists are small; the endpoint fast path is not needed).
pub(crate) fn resolve_heartbeats(
    file: &MonitorsFile,
    loc: &Locator<'_>,
) -> (Vec<ResolvedHeartbeat>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut push = |pos: Pos, message: String| problems.push(Problem { pos, message });
    let item = |i: usize| {
        loc.index
            .get()
            .value(&[key("heartbeats"), Seg::Index(i)])
            .map_or(START, |p| (loc.map)(p))
    };
    let value = |i: usize, field: &str| {
        loc.index
            .get()
            .value(&[key("heartbeats"), Seg::Index(i), key(field)])
            .map_or_else(|| item(i), |p| (loc.map)(p))
    };
    let field_key = |i: usize, field: &str| {
        loc.index
            .get()
            .key(&[key("heartbeats"), Seg::Index(i), key(field)])
            .map_or_else(|| item(i), |p| (loc.map)(p))
    };
    let mut resolved = Vec::new();
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut tokens: HashMap<&str, usize> = HashMap::new();
    for (i, decl) in file.heartbeats.iter().enumerate() {
        if let Err(m) = check_name(&decl.name) {
            push(
                value(i, "name"),
                m.replace("every endpoint", "every heartbeat"),
            );
        }
        if let Some(&first) = names.get(decl.name.as_str()) {
            push(
                value(i, "name"),
                format!(
                    "duplicate heartbeat name {:?}: already declared at line {}",
                    decl.name,
                    value(first, "name").line
                ),
            );
        } else {
            names.insert(&decl.name, i);
        }
        if let Some(token) = &decl.token {
            if let Err(m) = check_token(token) {
                push(value(i, "token"), m);
            } else if let Some(&first) = tokens.get(token.as_str()) {
                push(
                    value(i, "token"),
                    format!(
                        "this token is already used by heartbeat {:?}: each heartbeat needs its own",
                        file.heartbeats[first].name
                    ),
                );
            } else {
                tokens.insert(token, i);
            }
        }

        let schedule = match (&decl.period, &decl.schedule) {
            (Some(_), Some(_)) => {
                push(
                    field_key(i, "schedule"),
                    "set either `period` or `schedule`, not both: `period` expects a ping every period, `schedule` at each cron time".into(),
                );
                None
            }
            (None, None) => {
                push(
                    item(i),
                    format!(
                        "heartbeat {:?} needs `period` (like 1h) or `schedule` (a cron expression like \"0 3 * * *\")",
                        decl.name
                    ),
                );
                None
            }
            (Some(period), None) => {
                if decl.timezone.is_some() {
                    push(
                        field_key(i, "timezone"),
                        "`timezone` only applies to `schedule` (cron); remove it or use `schedule`"
                            .into(),
                    );
                }
                if period.0 < std::time::Duration::from_secs(1) {
                    push(
                        value(i, "period"),
                        format!("period {period} is too short: at least 1s"),
                    );
                    None
                } else {
                    Some(HeartbeatSchedule::Period { period: *period })
                }
            }
            (None, Some(expr)) => {
                let cron = crate::heartbeat::schedule::parse_cron(expr)
                    .map_err(|m| push(value(i, "schedule"), m))
                    .ok();
                let tz_name = decl.timezone.clone().unwrap_or_else(|| "UTC".to_owned());
                let tz = crate::heartbeat::schedule::parse_timezone(&tz_name)
                    .map_err(|m| push(value(i, "timezone"), m))
                    .ok();
                match (cron, tz) {
                    (Some(_), Some(tz)) => Some(HeartbeatSchedule::Cron {
                        expression: expr.trim().to_owned(),
                        timezone: tz.name().to_owned(),
                    }),
                    _ => None,
                }
            }
        };
        let grace = decl.grace.unwrap_or(DEFAULT_GRACE);
        if grace.0 < std::time::Duration::from_secs(1) {
            push(
                value(i, "grace"),
                format!("grace {grace} is too short: at least 1s"),
            );
            continue;
        }
        if let Some(schedule) = schedule {
            resolved.push(ResolvedHeartbeat {
                spec: HeartbeatSpec {
                    name: decl.name.clone(),
                    group: decl.group.clone(),
                    token: decl.token.clone(),
                    schedule,
                    grace,
                    alert: decl.alert.clone(),
                },
                item: item(i),
            });
        }
    }
    // A token equal to another heartbeat's name would make `/ping/X` ambiguous.
    for (i, decl) in file.heartbeats.iter().enumerate() {
        if let Some(t) = &decl.token
            && let Some(&j) = names.get(t.as_str())
            && j != i
        {
            push(
                value(i, "token"),
                format!(
                    "token is the name of heartbeat {:?}: the ping URL would be ambiguous; pick another token",
                    file.heartbeats[j].name
                ),
            );
        }
    }
    (resolved, problems)
}

/// A token is a URL path segment that must be hard to guess.
fn check_token(token: &str) -> Result<(), String> {
    if !token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(
            "token may only contain letters, digits, `-` and `_` (it is a URL path segment)".into(),
        );
    }
    let n = token.chars().count();
    if n < MIN_TOKEN_CHARS {
        return Err(format!(
            "token is {n} characters long: use at least {MIN_TOKEN_CHARS} (e.g. the output of `openssl rand -hex 16`) so the ping URL cannot be guessed"
        ));
    }
    Ok(())
}

/// Checks that depend on the kind of target: HTTP settings on a TCP check,
/// conditions the target cannot answer, header syntax.
fn check_endpoint_fields(
    i: usize,
    decl: &EndpointDecl,
    target: Option<&Target>,
    loc: &Locator<'_>,
    push: &mut impl FnMut(Pos, String),
) {
    if let Some(Err(m)) = decl
        .max_redirects
        .map(|v| check_count("max_redirects", v, 0, MAX_REDIRECTS))
    {
        push(loc.field_value(i, "max_redirects"), m);
    }
    if decl.expected_status.as_ref().is_some_and(Vec::is_empty) {
        push(
            loc.field_value(i, "expected_status"),
            "expected_status is empty: list at least one status, like [200] or [\"2xx\"]".into(),
        );
    }
    for (name, value) in &decl.headers {
        let path = [key("headers"), key(name)];
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            let mut full = vec![key("endpoints"), Seg::Index(i)];
            full.extend_from_slice(&path);
            let at = loc
                .index
                .get()
                .key(&full)
                .map_or_else(|| loc.item(i), |p| (loc.map)(p));
            push(at, format!("invalid header name {name:?}"));
        } else if HeaderValue::from_str(value).is_err() {
            push(
                loc.value(i, &path),
                format!("invalid value for header {name:?} (no line breaks or control characters)"),
            );
        }
    }
    let Some(target) = target else { return };
    let is_tcp = matches!(target, Target::Tcp { .. });
    if is_tcp {
        let http_only = [
            ("method", decl.method.is_some()),
            ("headers", !decl.headers.is_empty()),
            ("body", decl.body.is_some()),
            ("expected_status", decl.expected_status.is_some()),
            ("tls_verify", decl.tls_verify.is_some()),
            ("max_redirects", decl.max_redirects.is_some()),
        ];
        for (field, set) in http_only {
            if set {
                push(
                    loc.field_key(i, field),
                    format!(
                        "`{field}` does not apply to a tcp:// endpoint (it only opens a connection); remove it or use an http(s):// url"
                    ),
                );
            }
        }
    }
    for (j, cond) in decl.conditions.iter().enumerate() {
        let text = cond.to_string().to_ascii_uppercase();
        let at = || loc.value(i, &[key("conditions"), Seg::Index(j)]);
        if is_tcp && (text.contains("[STATUS]") || text.contains("[BODY]")) {
            push(
                at(),
                format!(
                    "condition `{cond}` needs an HTTP response; a tcp:// endpoint only has [CONNECTED] and [RESPONSE_TIME]"
                ),
            );
        } else if text.contains("[CERTIFICATE_EXPIRATION]") && target.type_name() != "https" {
            push(
                at(),
                format!("condition `{cond}` needs a certificate: only https:// endpoints have one"),
            );
        }
    }
}

fn check_interval(d: Duration) -> Result<(), String> {
    if d.0 < std::time::Duration::from_secs(1) {
        Err(format!("interval {d} is too short: at least 1s"))
    } else {
        Ok(())
    }
}

fn check_timeout(d: Duration) -> Result<(), String> {
    if d.0.is_zero() {
        Err("timeout must be more than 0s".into())
    } else {
        Ok(())
    }
}

/// A name is an id (`endpoint/NAME`): short, printable, no `/`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("name is empty: every endpoint needs a unique name".into());
    }
    if name.trim() != name {
        return Err(format!("name {name:?} has leading or trailing spaces"));
    }
    if name.contains('/') {
        return Err(format!(
            "name {name:?} contains `/`: names are ids (endpoint/NAME); use - or _ instead"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("name {name:?} contains a control character"));
    }
    let n = name.chars().count();
    if n > MAX_NAME_CHARS {
        return Err(format!(
            "name is {n} characters long: at most {MAX_NAME_CHARS}"
        ));
    }
    Ok(())
}

/// `http://...`, `https://...` (with a host) or `tcp://host:port`.
pub(crate) fn classify_url(url: &str) -> Result<Target, String> {
    const HINT: &str = "write http://..., https://... or tcp://host:port";
    if url.trim().is_empty() {
        return Err(format!("url is empty: {HINT}"));
    }
    if url.trim() != url {
        return Err(format!("url {url:?} has leading or trailing spaces"));
    }
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(format!("url {url:?} has no scheme: {HINT}"));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => {
            let parsed = Url::parse(url).map_err(|e| format!("invalid url {url:?}: {e}"))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(format!("url {url:?} has no host"));
            }
            let written_lowercase = url.starts_with("http://") || url.starts_with("https://");
            Ok(Target::Http {
                url: if written_lowercase {
                    url.to_owned()
                } else {
                    parsed.to_string()
                },
            })
        }
        "tcp" => {
            let parsed = Url::parse(url)
                .map_err(|e| format!("invalid tcp address {url:?}: {e} (write tcp://host:port)"))?;
            let host = parsed.host_str().unwrap_or_default();
            if host.is_empty() {
                return Err(format!(
                    "tcp address {url:?} has no host (write tcp://host:port)"
                ));
            }
            let Some(port) = parsed.port() else {
                return Err(format!(
                    "tcp address {url:?} needs a port (write tcp://host:port)"
                ));
            };
            if port == 0 {
                return Err(format!(
                    "tcp address {url:?}: port must be between 1 and 65535"
                ));
            }
            let extra = !matches!(parsed.path(), "" | "/")
                || parsed.query().is_some()
                || parsed.fragment().is_some()
                || !parsed.username().is_empty()
                || parsed.password().is_some();
            if extra {
                return Err(format!(
                    "tcp address {url:?} must be just tcp://host:port (no path, query or user)"
                ));
            }
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            Ok(Target::Tcp {
                host: host.to_owned(),
                port,
            })
        }
        _ => Err(format!(
            "unsupported url scheme {scheme:?} in {url:?}: {HINT}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_urls() {
        assert_eq!(
            classify_url("https://example.com/health").unwrap(),
            Target::Http {
                url: "https://example.com/health".into()
            }
        );
        assert_eq!(
            classify_url("HTTP://Example.com").unwrap(),
            Target::Http {
                url: "http://example.com/".into()
            }
        );
        assert_eq!(
            classify_url("tcp://db:5432").unwrap(),
            Target::Tcp {
                host: "db".into(),
                port: 5432
            }
        );
        assert_eq!(
            classify_url("tcp://[::1]:80").unwrap(),
            Target::Tcp {
                host: "::1".into(),
                port: 80
            }
        );
        for (bad, needle) in [
            ("", "empty"),
            ("example.com", "no scheme"),
            ("ftp://x", "unsupported url scheme"),
            ("http://", "invalid url"),
            ("tcp://db", "needs a port"),
            ("tcp://db:0", "between 1 and 65535"),
            ("tcp://db:70000", "invalid tcp address"),
            ("tcp://:80", "tcp"),
            ("tcp://db:80/x", "just tcp://host:port"),
            (" http://x", "spaces"),
        ] {
            let e = classify_url(bad).unwrap_err();
            assert!(e.contains(needle), "{bad:?}: {e}");
        }
    }

    #[test]
    fn checks_names() {
        assert!(check_name("api-health_1 (prod)").is_ok());
        assert!(check_name(&"x".repeat(128)).is_ok());
        for bad in ["", "  ", "a/b", "a\u{7}b", " a", &"x".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
