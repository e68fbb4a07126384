//! MCP resources: the live state an assistant can attach and watch.
//!
//! `maintenant://status` is the whole picture (counts by state per kind, the
//! monitors and containers that need attention); `maintenant://monitor/{kind}/{name}`
//! is one monitor's row, `desired` and `observed`, as the list tools' full
//! rows show it. A session that subscribes to a URI gets
//! `notifications/resources/updated` when what it shows changes state, and
//! every session gets `notifications/resources/list_changed` when the
//! reconciler adds or removes monitors.
//!
//! The watch is a poll, once a second per session, of the subscribed URIs'
//! states (cheap reads of memory and one sled key each), not a hook in the
//! checks: the check loop stays free of MCP, and a session that goes away
//! ends its watch at the next tick.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{Resource, ResourceContents, ResourceTemplate};
use rmcp::service::Peer;
use rmcp::{ErrorData, RoleServer};
use serde::Serialize;

use crate::engine::App;
use crate::monitor::{MonitorKey, MonitorKind};
use crate::readmodel::listing::{ListRow, Listing};
use crate::readmodel::{self, ReadError};

pub const STATUS_URI: &str = "maintenant://status";
pub const MONITOR_TEMPLATE: &str = "maintenant://monitor/{kind}/{name}";
const MONITOR_PREFIX: &str = "maintenant://monitor/";
/// Monitors listed per `resources/list` page (the template names the rest).
const PAGE: usize = 100;
/// Attention rows the status resource names per kind (the counts cover all).
const ATTENTION_SHOWN: u32 = 20;
/// URIs one session may watch at once.
pub const MAX_SUBSCRIPTIONS: usize = 1_000;
const TICK: Duration = Duration::from_secs(1);

pub fn monitor_uri(key: &MonitorKey) -> String {
    format!("{MONITOR_PREFIX}{}/{}", key.kind, key.name)
}

/// What a resource URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Status,
    Monitor(MonitorKey),
}

impl Uri {
    pub fn parse(app: &App, uri: &str) -> Result<Uri, ReadError> {
        if uri == STATUS_URI {
            return Ok(Uri::Status);
        }
        let rest = uri.strip_prefix(MONITOR_PREFIX).ok_or_else(|| {
            ReadError::NotFound(format!(
                "no resource {uri:?}: use {STATUS_URI} or {MONITOR_TEMPLATE}"
            ))
        })?;
        let (kind, name) = rest.split_once('/').ok_or_else(|| {
            ReadError::NotFound(format!("no resource {uri:?}: use {MONITOR_TEMPLATE}"))
        })?;
        let kind = match kind {
            "endpoint" => MonitorKind::Endpoint,
            "heartbeat" => MonitorKind::Heartbeat,
            "certificate" => MonitorKind::Certificate,
            other => {
                return Err(ReadError::NotFound(format!(
                    "no monitor kind {other:?}: endpoint, heartbeat or certificate"
                )));
            }
        };
        readmodel::resolve(&app.desired(), kind, name).map(Uri::Monitor)
    }
}

/// The overall status: counts by state per kind, and who needs attention.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The desired-state generation (changes when monitors are added, changed or removed).
    pub generation: u64,
    pub endpoints: KindStatus,
    pub heartbeats: KindStatus,
    pub certificates: KindStatus,
    pub containers: KindStatus,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct KindStatus {
    pub total: usize,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_state: BTreeMap<String, usize>,
    /// Names (resource URIs for monitors) of the first that need attention.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attention: Vec<String>,
}

fn kind_status<B: Serialize, F>(
    l: Listing<B, F>,
    uri: impl Fn(&str) -> String,
) -> Result<KindStatus, ReadError> {
    let n = l.attention.unwrap_or(0);
    let attention = l
        .items
        .iter()
        .take(n)
        .filter_map(|r| match r {
            ListRow::Brief(b) => serde_json::to_value(b).ok(),
            ListRow::Full(_) => None,
        })
        .filter_map(|v| v.get("name").and_then(|n| n.as_str()).map(&uri))
        .collect();
    Ok(KindStatus {
        total: l.total,
        by_state: l.by_state.unwrap_or_default(),
        attention,
    })
}

pub fn status(app: &App) -> Result<Status, ReadError> {
    let limit = Some(ATTENTION_SHOWN);
    let uri = |kind: MonitorKind| move |n: &str| monitor_uri(&MonitorKey::new(kind, n));
    Ok(Status {
        generation: app.desired().generation,
        endpoints: kind_status(
            readmodel::brief_endpoints(app, &Default::default(), limit, None)?,
            uri(MonitorKind::Endpoint),
        )?,
        heartbeats: kind_status(
            readmodel::heartbeats::brief_heartbeats(app, &Default::default(), limit, None)?,
            uri(MonitorKind::Heartbeat),
        )?,
        certificates: kind_status(
            crate::views::certificates::brief_certificates(app, None, None, limit, None)?,
            uri(MonitorKind::Certificate),
        )?,
        containers: kind_status(
            readmodel::containers::brief_containers(app, &Default::default(), limit, None)?,
            str::to_owned,
        )?,
    })
}

/// A resource's JSON.
pub fn read(app: &App, uri: &Uri) -> Result<serde_json::Value, ReadError> {
    let json = |v: Result<serde_json::Value, serde_json::Error>| {
        v.map_err(|e| ReadError::Store(e.to_string()))
    };
    match uri {
        Uri::Status => json(serde_json::to_value(status(app)?)),
        Uri::Monitor(key) => crate::pause::monitor_row(app, key),
    }
}

/// What a subscription compares between ticks: the states, not the times
/// of the last check (which change every interval).
fn fingerprint(app: &App, uri: &Uri) -> Option<String> {
    match uri {
        Uri::Status => {
            let s = status(app).ok()?;
            serde_json::to_string(&(&s.endpoints, &s.heartbeats, &s.certificates, &s.containers))
                .ok()
        }
        Uri::Monitor(key) => {
            let row = crate::pause::monitor_row(app, key).ok()?;
            let o = &row["observed"];
            Some(format!("{}|{}", o["status"], row["status"]))
        }
    }
}

pub fn contents(app: &App, uri: &str) -> Result<ResourceContents, ReadError> {
    let parsed = Uri::parse(app, uri)?;
    let v = read(app, &parsed)?;
    let text = serde_json::to_string_pretty(&v).map_err(|e| ReadError::Store(e.to_string()))?;
    Ok(ResourceContents::text(text, uri).with_mime_type("application/json"))
}

pub fn template() -> ResourceTemplate {
    ResourceTemplate::new(MONITOR_TEMPLATE, "monitor")
        .with_title("One monitor")
        .with_description(
            "One monitor's row: desired (spec, origin file:line, generation) and observed \
             (status, since, last check, error). kind is endpoint, heartbeat or certificate.",
        )
        .with_mime_type("application/json")
}

/// `resources/list`: the status, then the declared monitors, `PAGE` at a time.
pub fn list(app: &App, cursor: Option<&str>) -> Result<(Vec<Resource>, Option<String>), ReadError> {
    let offset = readmodel::decode_offset(cursor)?;
    let state = app.desired();
    let mut out = Vec::new();
    if offset == 0 {
        out.push(
            Resource::new(STATUS_URI, "status")
                .with_title("maintenant status")
                .with_description(
                    "Counts by state of endpoints, heartbeats, certificates and containers, and \
                     the ones that need attention.",
                )
                .with_mime_type("application/json"),
        );
    }
    let total = state.monitors.len();
    for key in state.monitors.keys().skip(offset).take(PAGE) {
        out.push(
            Resource::new(monitor_uri(key), key.id())
                .with_description(format!(
                    "The {} {}: desired and observed.",
                    key.kind, key.name
                ))
                .with_mime_type("application/json"),
        );
    }
    let end = offset.saturating_add(PAGE);
    Ok((
        out,
        (end < total).then(|| readmodel::encode_cursor('o', end as i128)),
    ))
}

/// One session's subscriptions: URI -> the last state it was told about.
#[derive(Default)]
pub struct Subscriptions(Mutex<HashMap<String, (Uri, Option<String>)>>);

impl Subscriptions {
    pub fn subscribe(&self, app: &App, uri: &str) -> Result<(), ReadError> {
        let parsed = Uri::parse(app, uri)?;
        let mut subs = self.0.lock().expect("subscriptions lock");
        if subs.len() >= MAX_SUBSCRIPTIONS && !subs.contains_key(uri) {
            return Err(ReadError::BadArgument(format!(
                "at most {MAX_SUBSCRIPTIONS} subscriptions per session: unsubscribe from some first"
            )));
        }
        let fp = fingerprint(app, &parsed);
        subs.insert(uri.to_owned(), (parsed, fp));
        Ok(())
    }

    pub fn unsubscribe(&self, uri: &str) {
        self.0.lock().expect("subscriptions lock").remove(uri);
    }

    /// The URIs whose state changed since the last call.
    fn changed(&self, app: &App) -> Vec<String> {
        let snapshot: Vec<(String, Uri, Option<String>)> = self
            .0
            .lock()
            .expect("subscriptions lock")
            .iter()
            .map(|(k, (u, f))| (k.clone(), u.clone(), f.clone()))
            .collect();
        let mut out = Vec::new();
        for (uri, parsed, before) in snapshot {
            let now = fingerprint(app, &parsed);
            if now != before {
                if let Some(e) = self.0.lock().expect("subscriptions lock").get_mut(&uri) {
                    e.1 = now;
                }
                out.push(uri);
            }
        }
        out
    }
}

fn keys_hash(app: &App) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for k in app.desired().monitors.keys() {
        k.hash(&mut h);
    }
    h.finish()
}

/// The watch of one session: until its transport closes.
pub async fn watch(app: Arc<App>, subs: Arc<Subscriptions>, peer: Peer<RoleServer>) {
    let mut generation = app.desired().generation;
    let mut keys = keys_hash(&app);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if peer.is_transport_closed() {
            return;
        }
        let g = app.desired().generation;
        if g != generation {
            generation = g;
            let now = keys_hash(&app);
            if now != keys {
                keys = now;
                if peer.notify_resource_list_changed().await.is_err() {
                    return;
                }
            }
        }
        let (app2, subs2) = (app.clone(), subs.clone());
        let changed = tokio::task::spawn_blocking(move || subs2.changed(&app2))
            .await
            .unwrap_or_default();
        for uri in changed {
            let param = rmcp::model::ResourceUpdatedNotificationParam::new(uri);
            if peer.notify_resource_updated(param).await.is_err() {
                return;
            }
        }
    }
}

pub fn to_error(e: ReadError) -> ErrorData {
    match e {
        ReadError::NotFound(m) => ErrorData::resource_not_found(m, None),
        ReadError::BadArgument(m) => ErrorData::invalid_params(m, None),
        ReadError::Store(m) => ErrorData::internal_error(m, None),
    }
}
