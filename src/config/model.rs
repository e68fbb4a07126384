//! The monitors file as typed data: what a person writes (`*Decl`, with
//! optional fields) and what a check runs (`*Spec`, every default applied).
//!
//! These types are the single source of truth for parsing (serde, strict:
//! unknown keys are errors) and for `maintenant schema` (schemars).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::duration::Duration;

/// The whole monitors file. Each kind of monitor has its own top-level list.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorsFile {
    /// Values applied to every monitor that does not set them itself.
    #[serde(default)]
    pub defaults: Defaults,
    /// HTTP(S) and TCP endpoints checked on an interval.
    #[serde(default)]
    pub endpoints: Vec<EndpointDecl>,
    /// Jobs that check in: `period` + `grace`, or `schedule` (cron) + `timezone` + `grace`.
    #[serde(default)]
    pub heartbeats: Vec<HeartbeatDecl>,
    /// TLS certificates checked for expiry, chain validity and host name.
    /// HTTPS endpoints get one automatically (see the README).
    #[serde(default)]
    pub certificates: Vec<CertificateDecl>,
    /// Where alerts are sent.
    #[serde(default)]
    pub alerting: AlertingDecl,
}

/// Defaults for monitors that leave a setting out.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Defaults for every endpoint.
    #[serde(default)]
    pub endpoint: EndpointDefaults,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointDefaults {
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub failure_threshold: Option<u32>,
    pub recovery_threshold: Option<u32>,
}

/// How bad an alert about this monitor is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// Alert routing for one monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertDecl {
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// Names of channels under `alerting.channels`; empty means all channels.
    #[serde(default)]
    pub channels: Vec<String>,
}

fn default_severity() -> Severity {
    Severity::Critical
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

/// An expected HTTP status: an exact code (`200`) or a class/range as a
/// string (`"2xx"`, `"200-299"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "StatusPatternRepr", into = "StatusPatternRepr")]
#[schemars(with = "StatusPatternRepr")]
pub struct StatusPattern {
    pub min: u16,
    pub max: u16,
}

impl StatusPattern {
    pub fn matches(&self, status: u16) -> bool {
        (self.min..=self.max).contains(&status)
    }
}

/// The written form of a [`StatusPattern`].
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StatusPatternRepr {
    Code(u16),
    /// `"2xx"` or `"200-299"` or `"204"`
    Text(String),
}

impl TryFrom<StatusPatternRepr> for StatusPattern {
    type Error = String;
    fn try_from(repr: StatusPatternRepr) -> Result<Self, String> {
        let bad = |s: &str| {
            format!(
                "invalid expected_status {s:?}: use a code like 200, a class like \"2xx\" or a range like \"200-299\""
            )
        };
        let check = |min: u16, max: u16, s: &str| {
            if (100..=599).contains(&min) && (100..=599).contains(&max) && min <= max {
                Ok(StatusPattern { min, max })
            } else {
                Err(bad(s))
            }
        };
        match repr {
            StatusPatternRepr::Code(c) => check(c, c, &c.to_string()),
            StatusPatternRepr::Text(s) => {
                let t = s.trim();
                if let Some(class) = t.strip_suffix("xx").or_else(|| t.strip_suffix("XX")) {
                    let d: u16 = class.parse().map_err(|_| bad(&s))?;
                    if class.len() != 1 {
                        return Err(bad(&s));
                    }
                    check(d * 100, d * 100 + 99, &s)
                } else if let Some((a, b)) = t.split_once('-') {
                    let a: u16 = a.trim().parse().map_err(|_| bad(&s))?;
                    let b: u16 = b.trim().parse().map_err(|_| bad(&s))?;
                    check(a, b, &s)
                } else {
                    let c: u16 = t.parse().map_err(|_| bad(&s))?;
                    check(c, c, &s)
                }
            }
        }
    }
}

impl From<StatusPattern> for StatusPatternRepr {
    fn from(p: StatusPattern) -> Self {
        if p.min == p.max {
            StatusPatternRepr::Code(p.min)
        } else if p.min.is_multiple_of(100) && p.max == p.min + 99 {
            StatusPatternRepr::Text(format!("{}xx", p.min / 100))
        } else {
            StatusPatternRepr::Text(format!("{}-{}", p.min, p.max))
        }
    }
}

/// An endpoint as written in the monitors file.
// Serialize: the Kubernetes `Monitor` resource embeds this type (kube needs it).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointDecl {
    /// Unique among endpoints; the stable id (`endpoint/NAME`).
    pub name: String,
    /// Groups monitors on the status page and in filters.
    pub group: Option<String>,
    /// `http://...`, `https://...` or `tcp://host:port`.
    pub url: String,
    /// HTTP method (GET).
    pub method: Option<HttpMethod>,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    pub body: Option<String>,
    /// Statuses counted as up (default: `["2xx"]`).
    pub expected_status: Option<Vec<StatusPattern>>,
    /// Gatus-style conditions, all of which must hold:
    /// `[STATUS] < 300`, `[RESPONSE_TIME] < 500`, `[BODY].status == UP`, `[CONNECTED] == true`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Verify the server's certificate (true).
    pub tls_verify: Option<bool>,
    /// Redirects followed before the answer counts (10; 0 disables).
    pub max_redirects: Option<u32>,
    /// Time between checks (30s).
    pub interval: Option<Duration>,
    /// Time a check may take (10s).
    pub timeout: Option<Duration>,
    /// Consecutive failures before the endpoint is down (3).
    pub failure_threshold: Option<u32>,
    /// Consecutive successes before a down endpoint is up again (2).
    pub recovery_threshold: Option<u32>,
    /// Alert routing.
    pub alert: Option<AlertDecl>,
}

/// What an endpoint check runs: an [`EndpointDecl`] with every default applied
/// and its URL classified.
///
/// Serialized (in every answer's `desired.spec`) without the optional parts
/// that are not set: 50 rows of `"alert":null,"body":null,...` cost an
/// assistant tokens and say nothing.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct EndpointSpec {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub target: Target,
    pub method: HttpMethod,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub expected_status: Vec<StatusPattern>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    pub tls_verify: bool,
    pub max_redirects: u32,
    pub interval: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
    pub recovery_threshold: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertDecl>,
}

/// Where an endpoint check goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    /// An `http://` or `https://` URL.
    Http { url: String },
    /// A `tcp://host:port` address: up when a connection opens.
    Tcp { host: String, port: u16 },
}

impl Target {
    pub fn type_name(&self) -> &'static str {
        match self {
            Target::Http { url } if url.starts_with("https://") => "https",
            Target::Http { .. } => "http",
            Target::Tcp { .. } => "tcp",
        }
    }

    pub fn display(&self) -> String {
        match self {
            Target::Http { url } => url.clone(),
            // An IPv6 host is bracketed: tcp://[::1]:80
            Target::Tcp { host, port } if host.contains(':') => format!("tcp://[{host}]:{port}"),
            Target::Tcp { host, port } => format!("tcp://{host}:{port}"),
        }
    }
}

/// A heartbeat as written in the monitors file: a job (cron, backup, batch)
/// that pings `BASE/ping/{name-or-token}` when it runs.
// Serialize: the Kubernetes `Monitor` resource embeds this type (kube needs it).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatDecl {
    /// Unique among heartbeats; the stable id (`heartbeat/NAME`) and, without a token, the ping path.
    pub name: String,
    /// Groups monitors on the status page and in filters.
    pub group: Option<String>,
    /// A secret ping path (`/ping/TOKEN`, letters, digits, `-` and `_`, at least 16 characters).
    /// When set, `/ping/NAME` does not work for this heartbeat.
    pub token: Option<String>,
    /// Expected time between pings (`1h`, `1d`). Use this or `schedule`.
    pub period: Option<Duration>,
    /// A cron expression (`0 3 * * *`, five fields, or six with seconds first) giving
    /// when the job runs. Use this or `period`.
    pub schedule: Option<String>,
    /// IANA time zone of `schedule` (`Europe/Paris`); default `UTC`.
    pub timezone: Option<String>,
    /// How long after the expected time a ping may still arrive before the
    /// heartbeat is down (1h). Between the two it is `late`.
    pub grace: Option<Duration>,
    pub alert: Option<AlertDecl>,
}

/// A TLS certificate monitor as written in the monitors file.
// Serialize: the Kubernetes `Monitor` resource embeds this type (kube needs it).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateDecl {
    /// Unique among certificates; the stable id (`certificate/NAME`).
    pub name: String,
    pub group: Option<String>,
    /// Host name to connect to and to send as SNI (the certificate must be valid for it).
    pub host: String,
    /// TCP port (443).
    pub port: Option<u16>,
    /// Time between checks (12h).
    pub interval: Option<Duration>,
    /// Days-left thresholds; crossing one raises or escalates an alert ([30, 14, 7, 3, 1]).
    pub warn_days: Option<Vec<u32>>,
    /// Alert routing.
    pub alert: Option<AlertDecl>,
}

/// When a heartbeat's pings are expected.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HeartbeatSchedule {
    /// A ping is due `period` after the last one.
    Period { period: Duration },
    /// A ping is due at the first cron occurrence after the last one.
    Cron {
        expression: String,
        timezone: String,
    },
}

/// What a heartbeat monitor runs: a [`HeartbeatDecl`] with defaults applied
/// and its schedule checked.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct HeartbeatSpec {
    pub name: String,
    pub group: Option<String>,
    pub token: Option<String>,
    pub schedule: HeartbeatSchedule,
    pub grace: Duration,
    pub alert: Option<AlertDecl>,
}

/// What a certificate check runs: a [`CertificateDecl`] with defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CertificateSpec {
    pub name: String,
    pub group: Option<String>,
    pub host: String,
    pub port: u16,
    pub interval: Duration,
    /// Sorted, largest first, without duplicates.
    pub warn_days: Vec<u32>,
    pub alert: Option<AlertDecl>,
    /// Set when this monitor was derived from an HTTPS endpoint (`endpoint/NAME`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derived_from: Option<String>,
}

/// `alerting:` in the monitors file.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertingDecl {
    /// Notification channels; see the README for the routing rule.
    #[serde(default)]
    pub channels: Vec<ChannelDecl>,
    /// Re-send a notification for an active, unacknowledged alert this often (1h; `0s` never).
    pub repeat_interval: Option<Duration>,
}

/// The format a channel speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelType {
    /// A JSON body (the alert and the event), signed when `secret` is set.
    Webhook,
    /// A Slack incoming webhook (`{"text": ...}`).
    Slack,
    /// A Discord webhook (`{"content": ...}`).
    Discord,
    /// An ntfy topic URL (plain text body, Title/Priority/Tags headers).
    Ntfy,
}

/// One notification channel as written in the monitors file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelDecl {
    /// Unique among channels; monitors name it in `alert.channels`.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// Where to POST (`http://` or `https://`).
    pub url: String,
    /// HMAC-SHA256 key: a webhook then carries `X-Maintenant-Signature: sha256=<hex>`.
    pub secret: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Only alerts of these severities (default: all).
    #[serde(default)]
    pub severities: Vec<Severity>,
    /// Only alerts of monitors in these groups (default: all).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Attempts after the first failed one (3).
    pub retries: Option<u32>,
    /// Wait before the first retry; doubled each time (1s).
    pub retry_backoff: Option<Duration>,
    /// Time one attempt may take (10s).
    pub timeout: Option<Duration>,
}

/// A resolved channel, defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ChannelSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ChannelType,
    pub url: String,
    /// Never shown: only whether one is set.
    #[serde(skip)]
    pub secret: Option<String>,
    #[serde(skip)]
    pub headers: BTreeMap<String, String>,
    pub severities: Vec<Severity>,
    pub groups: Vec<String>,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub timeout: Duration,
}

/// The resolved `alerting:` section.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AlertingSpec {
    pub channels: Vec<ChannelSpec>,
    pub repeat_interval: Duration,
}

impl Default for AlertingSpec {
    fn default() -> Self {
        AlertingSpec {
            channels: Vec::new(),
            repeat_interval: Duration(std::time::Duration::from_secs(3600)),
        }
    }
}
