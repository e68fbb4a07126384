//! The parts of the monitors file beside endpoints: `certificates:` and
//! `alerting:`. Resolved (defaults applied) and validated like endpoints,
//! every problem located at the offending value.

use std::collections::{HashMap, HashSet};

use reqwest::Url;

use super::locate::{LazyIndex, Pos, Seg, key};
use super::model::{AlertingSpec, CertificateSpec, ChannelSpec, ChannelType, MonitorsFile, Target};
use super::validate::{Problem, check_name};
use crate::duration::Duration;
use crate::monitor::{DeclaredMonitor, MonitorSpec, Origin};

pub(crate) const DEFAULT_CERT_PORT: u16 = 443;
pub(crate) const DEFAULT_CERT_INTERVAL: Duration =
    Duration(std::time::Duration::from_secs(12 * 3600));
pub(crate) const DEFAULT_WARN_DAYS: [u32; 5] = [30, 14, 7, 3, 1];
const DEFAULT_RETRIES: u32 = 3;
const MAX_RETRIES: u32 = 10;
/// A warning more than a year ahead is noise (public certificates live at most 398 days).
pub(crate) const MAX_WARN_DAYS: u32 = 366;
const MAX_WARN_DAYS_ENTRIES: usize = 20;
const DEFAULT_BACKOFF: Duration = Duration(std::time::Duration::from_secs(1));
const DEFAULT_CHANNEL_TIMEOUT: Duration = Duration(std::time::Duration::from_secs(10));

/// A certificate monitor with where its list item is.
pub(crate) struct ResolvedCert {
    pub spec: CertificateSpec,
    pub item: Pos,
}

/// The `alerting:` section of one file; `repeat_interval` only when set.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileAlerting {
    pub channels: Vec<ChannelSpec>,
    pub repeat_interval: Option<Duration>,
    /// Position of `alerting.repeat_interval`, for a conflict between files.
    pub repeat_at: Option<Pos>,
    /// Position of each channel's name, for a duplicate between files.
    pub channel_at: Vec<Pos>,
}

struct Loc<'a> {
    index: &'a LazyIndex<'a>,
    map: &'a dyn Fn(Pos) -> Pos,
}

const START: Pos = Pos { line: 1, col: 1 };

impl Loc<'_> {
    fn value(&self, path: &[Seg]) -> Pos {
        // Fall back to shorter paths (the item, the section) when the node is absent.
        for n in (1..=path.len()).rev() {
            if let Some(p) = self.index.get().value(&path[..n]) {
                return (self.map)(p);
            }
        }
        START
    }
}

fn at(section: &str, i: usize, field: &[&str]) -> Vec<Seg> {
    let mut p = vec![key(section), Seg::Index(i)];
    p.extend(field.iter().map(|f| key(f)));
    p
}

/// Resolve `certificates:` and `alerting:` of one parsed file.
pub(crate) fn resolve(
    file: &MonitorsFile,
    index: &LazyIndex<'_>,
    map: &dyn Fn(Pos) -> Pos,
) -> (Vec<ResolvedCert>, FileAlerting, Vec<Problem>) {
    let loc = Loc { index, map };
    let mut problems = Vec::new();
    let mut push = |pos: Pos, message: String| problems.push(Problem { pos, message });

    let mut certs = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, c) in file.certificates.iter().enumerate() {
        let item = loc.value(&[key("certificates"), Seg::Index(i)]);
        if let Err(m) = check_name(&c.name) {
            push(loc.value(&at("certificates", i, &["name"])), m);
        }
        if let Some(&first) = seen.get(c.name.as_str()) {
            push(
                loc.value(&at("certificates", i, &["name"])),
                format!(
                    "duplicate certificate name {:?}: already declared at line {}",
                    c.name,
                    loc.value(&at("certificates", first, &["name"])).line
                ),
            );
        } else {
            seen.insert(&c.name, i);
        }
        if let Err(m) = check_host(&c.host) {
            push(loc.value(&at("certificates", i, &["host"])), m);
        }
        if c.port == Some(0) {
            push(
                loc.value(&at("certificates", i, &["port"])),
                "port must be between 1 and 65535".into(),
            );
        }
        let interval = c.interval.unwrap_or(DEFAULT_CERT_INTERVAL);
        if interval.0 < std::time::Duration::from_secs(1) {
            push(
                loc.value(&at("certificates", i, &["interval"])),
                format!("interval {interval} is too short: at least 1s"),
            );
        }
        let mut warn_days = c
            .warn_days
            .clone()
            .unwrap_or_else(|| DEFAULT_WARN_DAYS.to_vec());
        if c.warn_days.as_ref().is_some_and(Vec::is_empty) {
            push(
                loc.value(&at("certificates", i, &["warn_days"])),
                "warn_days is empty: give at least one number of days, like [30, 7]".into(),
            );
        }
        if warn_days.len() > MAX_WARN_DAYS_ENTRIES {
            push(
                loc.value(&at("certificates", i, &["warn_days"])),
                format!(
                    "warn_days has {} entries: at most {MAX_WARN_DAYS_ENTRIES}",
                    warn_days.len()
                ),
            );
        }
        if let Some(d) = warn_days.iter().find(|&&d| d > MAX_WARN_DAYS) {
            push(
                loc.value(&at("certificates", i, &["warn_days"])),
                format!("warn_days {d} is too large: at most {MAX_WARN_DAYS} days"),
            );
        }
        if warn_days.contains(&0) {
            push(
                loc.value(&at("certificates", i, &["warn_days"])),
                "warn_days must be at least 1 (an expired certificate always alerts)".into(),
            );
        }
        warn_days.sort_unstable_by(|a, b| b.cmp(a));
        warn_days.dedup();
        certs.push(ResolvedCert {
            spec: CertificateSpec {
                name: c.name.clone(),
                group: c.group.clone(),
                host: c.host.clone(),
                port: c.port.unwrap_or(DEFAULT_CERT_PORT),
                interval,
                warn_days,
                alert: c.alert.clone(),
                derived_from: None,
            },
            item,
        });
    }

    let a = &file.alerting;
    let mut alerting = FileAlerting {
        repeat_interval: a.repeat_interval,
        repeat_at: a
            .repeat_interval
            .map(|_| loc.value(&[key("alerting"), key("repeat_interval")])),
        ..Default::default()
    };
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, ch) in a.channels.iter().enumerate() {
        let path = |f: &str| vec![key("alerting"), key("channels"), Seg::Index(i), key(f)];
        if let Err(m) = check_name(&ch.name) {
            push(loc.value(&path("name")), m.replace("endpoint", "channel"));
        }
        if let Some(&first) = names.get(ch.name.as_str()) {
            push(
                loc.value(&path("name")),
                format!(
                    "duplicate channel name {:?}: already declared at line {}",
                    ch.name,
                    loc.value(&[
                        key("alerting"),
                        key("channels"),
                        Seg::Index(first),
                        key("name")
                    ])
                    .line
                ),
            );
        } else {
            names.insert(&ch.name, i);
        }
        match Url::parse(&ch.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            Ok(_) => push(
                loc.value(&path("url")),
                format!(
                    "channel url {:?} must be an http:// or https:// URL",
                    ch.url
                ),
            ),
            Err(e) => push(
                loc.value(&path("url")),
                format!("invalid channel url {:?}: {e}", ch.url),
            ),
        }
        if ch.secret.is_some() && ch.kind != ChannelType::Webhook {
            push(
                loc.value(&path("secret")),
                "`secret` applies to `type: webhook` only (Slack, Discord and ntfy do not check signatures)".into(),
            );
        }
        if ch.secret.as_deref() == Some("") {
            push(
                loc.value(&path("secret")),
                "secret is empty: remove it or set a value (e.g. ${WEBHOOK_SECRET})".into(),
            );
        }
        for (h, v) in &ch.headers {
            if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(v).is_err()
            {
                push(
                    loc.value(&[
                        key("alerting"),
                        key("channels"),
                        Seg::Index(i),
                        key("headers"),
                        key(h),
                    ]),
                    format!("invalid header {h:?}"),
                );
            }
        }
        let retries = ch.retries.unwrap_or(DEFAULT_RETRIES);
        if retries > MAX_RETRIES {
            push(
                loc.value(&path("retries")),
                format!("retries {retries} is too many: at most {MAX_RETRIES}"),
            );
        }
        let timeout = ch.timeout.unwrap_or(DEFAULT_CHANNEL_TIMEOUT);
        if timeout.0.is_zero() {
            push(
                loc.value(&path("timeout")),
                "timeout must be more than 0s".into(),
            );
        }
        alerting.channel_at.push(loc.value(&path("name")));
        alerting.channels.push(ChannelSpec {
            name: ch.name.clone(),
            kind: ch.kind,
            url: ch.url.clone(),
            secret: ch.secret.clone(),
            headers: ch.headers.clone(),
            severities: ch.severities.clone(),
            groups: ch.groups.clone(),
            retries,
            retry_backoff: ch.retry_backoff.unwrap_or(DEFAULT_BACKOFF),
            timeout,
        });
    }
    (certs, alerting, problems)
}

fn check_host(host: &str) -> Result<(), String> {
    if host.trim().is_empty() {
        return Err("host is empty: write a host name like example.com".into());
    }
    if host.contains("://") || host.contains('/') {
        return Err(format!(
            "host {host:?} must be a bare host name (no scheme or path): write example.com and set `port` if it is not 443"
        ));
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("host {host:?} contains spaces"));
    }
    Ok(())
}

/// Merge the `alerting:` sections of several files (a directory). Channel
/// names must be unique across files.
pub(crate) fn merge_alerting(
    parts: Vec<(std::path::PathBuf, FileAlerting)>,
    errors: &mut Vec<super::ConfigError>,
) -> AlertingSpec {
    let mut spec = AlertingSpec::default();
    let mut seen: HashMap<String, std::path::PathBuf> = HashMap::new();
    let mut repeat_from: Option<std::path::PathBuf> = None;
    for (file, part) in parts {
        if let Some(r) = part.repeat_interval {
            if let Some(first) = &repeat_from {
                let at = part.repeat_at.unwrap_or(START);
                errors.push(super::ConfigError {
                    file: file.clone(),
                    line: at.line,
                    column: at.col,
                    message: format!(
                        "alerting.repeat_interval is already set in {}: set it in one file",
                        first.display()
                    ),
                });
            } else {
                spec.repeat_interval = r;
                repeat_from = Some(file.clone());
            }
        }
        for (i, ch) in part.channels.into_iter().enumerate() {
            if let Some(first) = seen.get(&ch.name) {
                let at = part.channel_at.get(i).copied().unwrap_or(START);
                errors.push(super::ConfigError {
                    file: file.clone(),
                    line: at.line,
                    column: at.col,
                    message: format!(
                        "duplicate channel name {:?}: already declared in {}",
                        ch.name,
                        first.display()
                    ),
                });
                continue;
            }
            seen.insert(ch.name.clone(), file.clone());
            spec.channels.push(ch);
        }
    }
    spec
}

/// Every monitor's `alert.channels` must name a declared channel.
pub(crate) fn check_channel_names(
    monitors: &[DeclaredMonitor],
    alerting: &AlertingSpec,
    errors: &mut Vec<super::ConfigError>,
) {
    let names: HashSet<&str> = alerting.channels.iter().map(|c| c.name.as_str()).collect();
    for m in monitors {
        let Some(alert) = m.spec.alert() else {
            continue;
        };
        for ch in &alert.channels {
            if !names.contains(ch.as_str()) {
                // Only the file source calls this; other origins have no line to point at.
                let Origin::File { path, line } = &m.origin else {
                    continue;
                };
                let known = if names.is_empty() {
                    "no channels are declared under alerting.channels".to_owned()
                } else {
                    let mut n: Vec<&str> = names.iter().copied().collect();
                    n.sort_unstable();
                    format!("declared channels: {}", n.join(", "))
                };
                errors.push(super::ConfigError {
                    file: path.to_path_buf(),
                    line: *line,
                    column: 1,
                    message: format!(
                        "{}: alert.channels names {ch:?}, which is not a channel ({known})",
                        m.key()
                    ),
                });
            }
        }
    }
}

/// The certificate monitors HTTPS endpoints get automatically.
///
/// One per distinct `host:port` of an `https://` endpoint that verifies TLS
/// (`tls_verify: false` says the certificate is not expected to be valid),
/// named `HOST:PORT` (`certificate/example.com:443`), with the origin,
/// group and alert routing of the first endpoint that uses it. An explicit
/// certificate monitor of the same host and port wins (none is derived),
/// and so does an explicit one of the same name.
pub(crate) fn derive_certificates(monitors: &mut Vec<DeclaredMonitor>) {
    let mut explicit: HashSet<(String, u16)> = HashSet::new();
    let mut names: HashSet<String> = HashSet::new();
    for m in monitors.iter() {
        if let MonitorSpec::Certificate(c) = m.spec.as_ref() {
            explicit.insert((c.host.to_ascii_lowercase(), c.port));
            names.insert(c.name.clone());
        }
    }
    let mut derived = Vec::new();
    for m in monitors.iter() {
        let MonitorSpec::Endpoint(e) = m.spec.as_ref() else {
            continue;
        };
        let Target::Http { url } = &e.target else {
            continue;
        };
        // Most endpoints are not https: skip them before parsing a URL
        // (10k parses are most of a reload otherwise).
        let https = url
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"));
        if !e.tls_verify || !https {
            continue;
        }
        let Ok(u) = Url::parse(url) else { continue };
        if u.scheme() != "https" {
            continue;
        }
        let Some(host) = u.host_str() else { continue };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = u.port_or_known_default().unwrap_or(DEFAULT_CERT_PORT);
        let name = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        if !explicit.insert((host.to_ascii_lowercase(), port)) || !names.insert(name.clone()) {
            continue;
        }
        derived.push(DeclaredMonitor {
            spec: MonitorSpec::Certificate(CertificateSpec {
                name,
                group: e.group.clone(),
                host,
                port,
                interval: DEFAULT_CERT_INTERVAL,
                warn_days: DEFAULT_WARN_DAYS.to_vec(),
                alert: e.alert.clone(),
                derived_from: Some(format!("endpoint/{}", e.name)),
            })
            .into(),
            origin: m.origin.clone(),
        });
    }
    monitors.extend(derived);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::MonitorKey;

    fn load(text: &str) -> Result<super::super::LoadedConfig, super::super::ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.yaml");
        std::fs::write(&f, text).unwrap();
        super::super::load(&f)
    }

    fn cert(l: &super::super::LoadedConfig, name: &str) -> CertificateSpec {
        l.monitors
            .iter()
            .find(|m| m.key() == MonitorKey::certificate(name))
            .map(|m| match m.spec.as_ref() {
                MonitorSpec::Certificate(c) => c.clone(),
                other => panic!("{other:?}"),
            })
            .unwrap_or_else(|| panic!("no certificate/{name}"))
    }

    #[test]
    fn certificates_and_channels_get_defaults() {
        let l = load(
            "certificates:\n  - name: site\n    host: example.com\n    warn_days: [7, 30, 7]\n  - name: api\n    host: example.com\n    port: 8443\n    interval: 1h\nalerting:\n  channels:\n    - name: ops\n      type: webhook\n      url: https://hooks.example.com/x\n      secret: k\n",
        )
        .unwrap();
        let site = cert(&l, "site");
        assert_eq!((site.port, site.interval), (443, DEFAULT_CERT_INTERVAL));
        assert_eq!(
            site.warn_days,
            [30, 7],
            "sorted, largest first, deduplicated"
        );
        assert_eq!(cert(&l, "api").warn_days, DEFAULT_WARN_DAYS);
        let ch = &l.alerting.channels[0];
        assert_eq!((ch.retries, ch.secret.as_deref()), (3, Some("k")));
        assert_eq!(l.alerting.repeat_interval.std().as_secs(), 3600);
        assert!(
            !serde_json::to_string(ch).unwrap().contains("\"k\""),
            "the secret is never serialized"
        );
    }

    #[test]
    fn https_endpoints_derive_certificates_unless_declared() {
        let l = load(
            "endpoints:\n  - name: web\n    group: front\n    url: https://Example.com/a\n  - name: web2\n    url: https://example.com/b\n  - name: alt\n    url: https://example.com:8443/\n  - name: insecure\n    url: https://self.local/\n    tls_verify: false\n  - name: plain\n    url: http://plain.local/\n  - name: declared\n    url: https://declared.example/\ncertificates:\n  - name: mine\n    host: declared.example\n",
        )
        .unwrap();
        let names: Vec<String> = l
            .monitors
            .iter()
            .filter(|m| m.key().kind == crate::monitor::MonitorKind::Certificate)
            .map(|m| m.key().name.to_string())
            .collect();
        assert_eq!(names, ["mine", "example.com:443", "example.com:8443"]);
        let d = cert(&l, "example.com:443");
        assert_eq!(
            d.derived_from.as_deref(),
            Some("endpoint/web"),
            "first endpoint wins"
        );
        assert_eq!(d.group.as_deref(), Some("front"));
    }

    #[test]
    fn unknown_channel_names_and_duplicates_are_errors() {
        let errs = load(
            "alerting:\n  channels:\n    - name: ops\n      type: slack\n      url: https://h/x\n    - name: ops\n      type: discord\n      url: https://h/y\nendpoints:\n  - name: a\n    url: http://a/\n    alert:\n      channels: [pager]\n",
        )
        .unwrap_err()
        .0;
        let msgs: Vec<String> = errs
            .iter()
            .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
            .collect();
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("6:13: duplicate channel name \"ops\"")),
            "{msgs:#?}"
        );
        let errs = load(
            "alerting:\n  channels:\n    - name: ops\n      type: slack\n      url: https://h/x\nendpoints:\n  - name: a\n    url: http://a/\n    alert:\n      channels: [pager]\n",
        )
        .unwrap_err()
        .0;
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].line, 7);
        assert!(
            errs[0]
                .message
                .contains("names \"pager\", which is not a channel (declared channels: ops)"),
            "{}",
            errs[0].message
        );
        let errs = load(
            "alerting:\n  channels:\n    - name: x\n      type: teams\n      url: https://h/\n",
        )
        .unwrap_err()
        .0;
        assert!(
            errs[0].message.contains("unknown variant `teams`"),
            "{errs:?}"
        );
    }

    #[test]
    fn a_channel_declared_in_two_files_is_located_in_the_second() {
        let dir = tempfile::tempdir().unwrap();
        let one =
            "alerting:\n  channels:\n    - name: ops\n      type: slack\n      url: https://h/x\n";
        std::fs::write(dir.path().join("a.yaml"), one).unwrap();
        std::fs::write(dir.path().join("b.yaml"), format!("# b\n{one}")).unwrap();
        let errs = super::super::load(dir.path()).unwrap_err().0;
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].line, errs[0].column), (4, 13), "{errs:?}");
        assert!(errs[0].file.ends_with("b.yaml"));
        assert!(errs[0].message.contains("already declared in"), "{errs:?}");
    }
}
