//! A fake Kubernetes API server for tests: an axum server on 127.0.0.1 that
//! speaks the real HTTP API, so kube's real `Client` (and maintenant, pointed
//! at it by a kubeconfig written at test time) runs unchanged. No real
//! kube-apiserver can run on the test machines (see README, "Kubernetes").
//!
//! What it implements, the way the API server does:
//! - LIST of `pods` and `monitors.maintenant.dev/v1alpha1`, cluster-wide and
//!   per namespace, answering the current `metadata.resourceVersion`;
//! - WATCH (`?watch=1|true&resourceVersion=N`): a chunked stream of JSON
//!   lines (`ADDED`/`MODIFIED`/`DELETED`), replaying every event after `N`
//!   from its event log, then live ones. A test can cut every open watch
//!   ([`FakeKube::cut_watches`]) so clients resume from their last
//!   resourceVersion, and compact the log ([`FakeKube::compact`]) so a
//!   resume from an older version gets the API server's `ERROR` event with a
//!   `410 Gone` Status, after which a client must re-list;
//! - GET of one object, PATCH of `/status` (JSON merge patch, RFC 7386):
//!   only `status` changes, `resourceVersion` moves, `generation` does not,
//!   and watchers see `MODIFIED`; every PATCH is recorded for assertions;
//! - `metadata.generation` moves when a spec changes (as with the status
//!   subresource enabled), `uid` and `creationTimestamp` are set on create;
//! - pod logs (`/log?tailLines=&sinceSeconds=&timestamps=&container=`);
//! - GET of Deployments, StatefulSets, DaemonSets and Jobs (a pod owner's
//!   annotations).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

pub const MONITORS: &str = "monitors";
pub const PODS: &str = "pods";
/// Workloads (`apps/v1` and `batch/v1`): stored and served by GET/LIST, for
/// the annotations of a pod's owner.
pub const DEPLOYMENTS: &str = "deployments";
pub const STATEFULSETS: &str = "statefulsets";
pub const DAEMONSETS: &str = "daemonsets";
pub const JOBS: &str = "jobs";

#[derive(Debug, Clone)]
struct Event {
    rv: u64,
    resource: &'static str,
    namespace: String,
    kind: &'static str,
    object: Value,
}

/// One recorded PATCH.
#[derive(Debug, Clone)]
pub struct Patch {
    pub path: String,
    pub content_type: String,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    /// Events at or below this version are forgotten (410 Gone on resume).
    compacted: u64,
    uid: u64,
    objects: BTreeMap<(&'static str, String, String), Value>,
    log: Vec<Event>,
    patches: Vec<Patch>,
    requests: Vec<String>,
    /// While set, every LIST and WATCH is refused with 503 (an API server restarting).
    unavailable: bool,
    /// How many watches were answered `410 Gone`.
    gone: u32,
    /// (namespace, pod) -> (RFC 3339 time, line)
    logs: HashMap<(String, String), Vec<(time::OffsetDateTime, String)>>,
}

#[derive(Clone)]
pub struct FakeKube {
    pub port: u16,
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<Event>,
    cut: Arc<watch::Sender<u64>>,
}

impl FakeKube {
    /// The real binary pointed at this fake through a kubeconfig, with
    /// Kubernetes on; `env` comes after, so a test can override anything.
    #[allow(dead_code)] // not every test binary that includes `common` starts one
    pub async fn daemon(&self, monitors: &str, env: &[(&str, &str)]) -> super::Daemon {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = self.kubeconfig(dir.path());
        let mut all = vec![
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("MAINTENANT_KUBERNETES", "true"),
        ];
        all.extend_from_slice(env);
        // The kubeconfig is read at start-up only.
        super::Daemon::start_with(monitors, &all).await
    }

    pub async fn start() -> FakeKube {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (events, _) = broadcast::channel(4096);
        let fake = FakeKube {
            port: listener.local_addr().unwrap().port(),
            inner: Arc::default(),
            events,
            cut: Arc::new(watch::channel(0).0),
        };
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Write a kubeconfig that points at this server; returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: not-checked\n",
            self.url()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Create or replace a `Monitor` (`spec` is the object's spec).
    pub fn apply_monitor(&self, namespace: &str, name: &str, spec: Value) -> Value {
        self.apply(
            MONITORS,
            json!({
                "apiVersion": "maintenant.dev/v1alpha1",
                "kind": "Monitor",
                "metadata": { "name": name, "namespace": namespace },
                "spec": spec,
            }),
        )
    }

    /// Create or replace an object (a `Monitor` or a `Pod`): what `kubectl
    /// apply` amounts to. The server-owned fields are set here; an existing
    /// object keeps its `status` unless the new one brings one (pods do).
    pub fn apply(&self, resource: &'static str, mut obj: Value) -> Value {
        let mut inner = self.inner.lock().unwrap();
        let ns = obj["metadata"]["namespace"].as_str().unwrap().to_owned();
        let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
        let key = (resource, ns.clone(), name);
        inner.rv += 1;
        let rv = inner.rv;
        let kind = match inner.objects.get(&key) {
            Some(old) => {
                let old = old.clone();
                let spec_changed = old["spec"] != obj["spec"];
                let generation =
                    old["metadata"]["generation"].as_i64().unwrap_or(1) + i64::from(spec_changed);
                let meta = obj["metadata"].as_object_mut().unwrap();
                meta.insert("uid".into(), old["metadata"]["uid"].clone());
                meta.insert(
                    "creationTimestamp".into(),
                    old["metadata"]["creationTimestamp"].clone(),
                );
                meta.insert("generation".into(), generation.into());
                if obj.get("status").is_none() && old.get("status").is_some() {
                    obj["status"] = old["status"].clone();
                }
                "MODIFIED"
            }
            None => {
                inner.uid += 1;
                let uid = format!("00000000-0000-0000-0000-{:012}", inner.uid);
                let meta = obj["metadata"].as_object_mut().unwrap();
                meta.insert("uid".into(), uid.into());
                meta.insert("creationTimestamp".into(), now_rfc3339().into());
                meta.insert("generation".into(), 1.into());
                "ADDED"
            }
        };
        obj["metadata"]["resourceVersion"] = rv.to_string().into();
        inner.objects.insert(key, obj.clone());
        self.emit(&mut inner, resource, &ns, kind, obj.clone());
        obj
    }

    pub fn delete(&self, resource: &'static str, namespace: &str, name: &str) {
        let mut inner = self.inner.lock().unwrap();
        let key = (resource, namespace.to_owned(), name.to_owned());
        if let Some(mut obj) = inner.objects.remove(&key) {
            inner.rv += 1;
            obj["metadata"]["resourceVersion"] = inner.rv.to_string().into();
            self.emit(&mut inner, resource, namespace, "DELETED", obj);
        }
    }

    pub fn get(&self, resource: &'static str, namespace: &str, name: &str) -> Option<Value> {
        let key = (resource, namespace.to_owned(), name.to_owned());
        self.inner.lock().unwrap().objects.get(&key).cloned()
    }

    /// Every PATCH received so far.
    pub fn patches(&self) -> Vec<Patch> {
        self.inner.lock().unwrap().patches.clone()
    }

    /// Every request received so far (`METHOD /path?query`).
    pub fn requests(&self) -> Vec<String> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// End every open watch stream (as a load balancer or an API server
    /// restart does); clients must resume from their last resourceVersion.
    pub fn cut_watches(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// How many watches were answered `410 Gone`.
    pub fn gone_count(&self) -> u32 {
        self.inner.lock().unwrap().gone
    }

    /// Refuse (503) or serve again every LIST and WATCH.
    pub fn set_available(&self, available: bool) {
        self.inner.lock().unwrap().unavailable = !available;
    }

    /// Forget the event log: resuming from any version seen so far is now
    /// `410 Gone`, and a client must re-list.
    pub fn compact(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.compacted = inner.rv;
        inner.log.clear();
    }

    pub fn set_logs(&self, namespace: &str, pod: &str, lines: Vec<(time::OffsetDateTime, String)>) {
        self.inner
            .lock()
            .unwrap()
            .logs
            .insert((namespace.to_owned(), pod.to_owned()), lines);
    }

    /// The log of one container of a pod (`?container=NAME`).
    pub fn set_container_logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        lines: Vec<(time::OffsetDateTime, String)>,
    ) {
        self.set_logs(namespace, &format!("{pod}/{container}"), lines);
    }

    fn emit(
        &self,
        inner: &mut Inner,
        resource: &'static str,
        ns: &str,
        kind: &'static str,
        object: Value,
    ) {
        let ev = Event {
            rv: inner.rv,
            resource,
            namespace: ns.to_owned(),
            kind,
            object,
        };
        inner.log.push(ev.clone());
        let _ = self.events.send(ev);
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    (
        StatusCode::from_u16(code).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The routes we serve, parsed from the path.
enum Route {
    Version,
    /// Legacy discovery documents (what kubectl reads before a request).
    Discovery(Value),
    Collection {
        resource: &'static str,
        namespace: Option<String>,
    },
    Object {
        resource: &'static str,
        namespace: String,
        name: String,
        sub: Option<String>,
    },
}

fn route(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (resource, rest): (&'static str, &[&str]) = match segs.as_slice() {
        ["version"] => return Some(Route::Version),
        ["api"] => {
            return Some(Route::Discovery(json!({
                "kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]
            })));
        }
        ["apis"] => {
            let gv = json!({"groupVersion": "maintenant.dev/v1alpha1", "version": "v1alpha1"});
            return Some(Route::Discovery(json!({
                "kind": "APIGroupList", "apiVersion": "v1",
                "groups": [{"name": "maintenant.dev", "versions": [gv], "preferredVersion": gv}]
            })));
        }
        ["api", "v1"] => {
            let verbs = json!(["get", "list", "watch"]);
            return Some(Route::Discovery(json!({
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1",
                "resources": [
                    {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": verbs, "shortNames": ["po"]},
                    {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}
                ]
            })));
        }
        ["apis", "maintenant.dev", "v1alpha1"] => {
            let crd = maintenant::crd::crd();
            return Some(Route::Discovery(json!({
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "maintenant.dev/v1alpha1",
                "resources": [
                    {"name": crd.spec.names.plural, "singularName": crd.spec.names.singular, "namespaced": true,
                     "kind": crd.spec.names.kind, "verbs": ["get", "list", "watch", "patch"],
                     "shortNames": crd.spec.names.short_names, "categories": crd.spec.names.categories},
                    {"name": "monitors/status", "singularName": "", "namespaced": true, "kind": "Monitor", "verbs": ["get", "patch"]}
                ]
            })));
        }
        ["api", "v1", rest @ ..] => (PODS, rest),
        ["apis", "apps" | "batch", "v1", rest @ ..] => {
            let plural = if rest.len() == 1 {
                rest[0]
            } else {
                *rest.get(2)?
            };
            let resource = match plural {
                "deployments" => DEPLOYMENTS,
                "statefulsets" => STATEFULSETS,
                "daemonsets" => DAEMONSETS,
                "jobs" => JOBS,
                _ => return None,
            };
            (resource, rest)
        }
        ["apis", "maintenant.dev", "v1alpha1", rest @ ..] => (MONITORS, rest),
        _ => return None,
    };
    let ok = |r: &str| r == resource;
    match rest {
        [r] if ok(r) => Some(Route::Collection {
            resource,
            namespace: None,
        }),
        ["namespaces", ns, r] if ok(r) => Some(Route::Collection {
            resource,
            namespace: Some((*ns).to_owned()),
        }),
        ["namespaces", ns, r, name] if ok(r) => Some(Route::Object {
            resource,
            namespace: (*ns).to_owned(),
            name: (*name).to_owned(),
            sub: None,
        }),
        ["namespaces", ns, r, name, sub] if ok(r) => Some(Route::Object {
            resource,
            namespace: (*ns).to_owned(),
            name: (*name).to_owned(),
            sub: Some((*sub).to_owned()),
        }),
        _ => None,
    }
}

async fn handle(
    State(fake): State<FakeKube>,
    method: Method,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    fake.inner.lock().unwrap().requests.push(format!(
        "{method} {}",
        uri.path_and_query().map_or("", |p| p.as_str())
    ));
    let Some(r) = route(uri.path()) else {
        return status(
            404,
            "NotFound",
            &format!(
                "the server could not find the requested resource ({})",
                uri.path()
            ),
        );
    };
    match (method, r) {
        (Method::GET, Route::Version) => axum::Json(json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "platform": "linux/amd64"
        }))
        .into_response(),
        (Method::GET, Route::Discovery(doc)) => axum::Json(doc).into_response(),
        (Method::GET, Route::Collection { .. }) if fake.inner.lock().unwrap().unavailable => {
            status(
                503,
                "ServiceUnavailable",
                "the fake API server is refusing requests",
            )
        }
        (
            Method::GET,
            Route::Collection {
                resource,
                namespace,
            },
        ) => {
            let watching = matches!(q.get("watch").map(String::as_str), Some("1" | "true"));
            let table = headers
                .get("accept")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("as=Table"));
            if watching {
                watch_stream(&fake, resource, namespace, &q)
            } else if table && resource == MONITORS {
                monitor_table(&fake, namespace.as_deref())
            } else {
                list(&fake, resource, namespace.as_deref())
            }
        }
        (
            Method::GET,
            Route::Object {
                resource,
                namespace,
                name,
                sub: None | Some(_),
            },
        ) if resource == PODS && uri.path().ends_with("/log") => {
            pod_log(&fake, &namespace, &name, &q)
        }
        (
            Method::GET,
            Route::Object {
                resource,
                namespace,
                name,
                ..
            },
        ) => match fake.get(resource, &namespace, &name) {
            Some(o) => axum::Json(o).into_response(),
            None => status(404, "NotFound", &format!("{resource} \"{name}\" not found")),
        },
        (
            Method::PATCH,
            Route::Object {
                resource,
                namespace,
                name,
                sub,
            },
        ) => {
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            patch(
                &fake,
                resource,
                &namespace,
                &name,
                sub.as_deref(),
                &content_type,
                &body,
            )
        }
        (m, _) => status(
            405,
            "MethodNotAllowed",
            &format!("{m} is not supported by this fake"),
        ),
    }
}

fn list(fake: &FakeKube, resource: &'static str, namespace: Option<&str>) -> Response {
    let inner = fake.inner.lock().unwrap();
    let items: Vec<Value> = inner
        .objects
        .iter()
        .filter(|((r, ns, _), _)| *r == resource && namespace.is_none_or(|n| n == ns))
        .map(|(_, o)| o.clone())
        .collect();
    let (api_version, kind) = match resource {
        PODS => ("v1", "PodList"),
        _ => ("maintenant.dev/v1alpha1", "MonitorList"),
    };
    axum::Json(json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": { "resourceVersion": inner.rv.to_string() },
        "items": items,
    }))
    .into_response()
}

/// What `kubectl get monitors` asks for: a `Table` whose columns are the
/// CRD's printer columns (evaluated the way the API server does: simple
/// JSON paths; dates shown as ages).
fn monitor_table(fake: &FakeKube, namespace: Option<&str>) -> Response {
    let crd = maintenant::crd::crd();
    let columns = crd.spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap_or_default();
    let inner = fake.inner.lock().unwrap();
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}),
    ];
    defs.extend(columns.iter().map(|c| {
        json!({"name": c.name, "type": c.type_, "format": c.format.clone().unwrap_or_default(),
               "description": c.description.clone().unwrap_or_default(), "priority": c.priority.unwrap_or(0)})
    }));
    let rows: Vec<Value> = inner
        .objects
        .iter()
        .filter(|((r, ns, _), _)| *r == MONITORS && namespace.is_none_or(|n| n == ns))
        .map(|(_, o)| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for c in &columns {
                let v = c
                    .json_path
                    .trim_start_matches('.')
                    .split('.')
                    .fold(o, |v, k| &v[k]);
                cells.push(match (c.type_.as_str(), v.as_str()) {
                    ("date", Some(t)) => age(t).into(),
                    _ => v.clone(),
                });
            }
            json!({"cells": cells, "object": {
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]
            }})
        })
        .collect();
    axum::Json(json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": inner.rv.to_string()},
        "columnDefinitions": defs, "rows": rows,
    }))
    .into_response()
}

/// Kubernetes' human durations (`4s`, `3m20s`, `5h`, `3d`).
fn age(t: &str) -> String {
    let Ok(t) = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
    else {
        return "<invalid>".into();
    };
    let s = (time::OffsetDateTime::now_utc() - t).whole_seconds().max(0);
    match s {
        0..120 => format!("{s}s"),
        120..600 => format!("{}m{}s", s / 60, s % 60),
        600..10800 => format!("{}m", s / 60),
        10800..28800 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        28800..172800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn watch_stream(
    fake: &FakeKube,
    resource: &'static str,
    namespace: Option<String>,
    q: &HashMap<String, String>,
) -> Response {
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut inner = fake.inner.lock().unwrap();
    // Subscribe under the lock: no event falls between the replay and the live feed.
    let live = fake.events.subscribe();
    let wanted = move |e: &Event| {
        e.resource == resource && namespace.as_ref().is_none_or(|n| *n == e.namespace)
    };
    if from < inner.compacted {
        inner.gone += 1;
        let gone = json!({
            "type": "ERROR",
            "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {from} ({})", inner.compacted),
                "reason": "Expired", "code": 410,
            }
        });
        return ([("content-type", "application/json")], format!("{gone}\n")).into_response();
    }
    let replay: VecDeque<Event> = inner
        .log
        .iter()
        .filter(|e| e.rv > from && wanted(e))
        .cloned()
        .collect();
    let last = replay
        .back()
        .map_or(from.max(inner.rv), |e| e.rv.max(inner.rv));
    drop(inner);
    let mut cut = fake.cut.subscribe();
    cut.mark_unchanged();
    struct S {
        replay: VecDeque<Event>,
        live: broadcast::Receiver<Event>,
        cut: watch::Receiver<u64>,
        after: u64,
    }
    let state = S {
        replay,
        live,
        cut,
        after: last,
    };
    let stream = futures::stream::unfold((state, wanted), |(mut s, wanted)| async move {
        let ev = if let Some(e) = s.replay.pop_front() {
            e
        } else {
            loop {
                tokio::select! {
                    // A cut wins over events ready at the same time: nothing
                    // emitted after `cut_watches` goes out on a cut stream.
                    biased;
                    _ = s.cut.changed() => return None,
                    ev = s.live.recv() => match ev {
                        Ok(e) if e.rv > s.after && wanted(&e) => break e,
                        Ok(_) => continue,
                        Err(_) => return None,
                    },
                }
            }
        };
        let line = format!("{}\n", json!({ "type": ev.kind, "object": ev.object }));
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from(line)),
            (s, wanted),
        ))
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn patch(
    fake: &FakeKube,
    resource: &'static str,
    namespace: &str,
    name: &str,
    sub: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> Response {
    let Ok(patch) = serde_json::from_slice::<Value>(body) else {
        return status(400, "BadRequest", "the patch is not JSON");
    };
    let path = format!(
        "{resource}/{namespace}/{name}{}",
        sub.map(|s| format!("/{s}")).unwrap_or_default()
    );
    let mut inner = fake.inner.lock().unwrap();
    inner.patches.push(Patch {
        path,
        content_type: content_type.to_owned(),
        body: patch.clone(),
    });
    if content_type != "application/merge-patch+json" {
        return status(
            415,
            "UnsupportedMediaType",
            &format!("this fake supports merge patches only, not {content_type}"),
        );
    }
    let key = (resource, namespace.to_owned(), name.to_owned());
    let Some(mut obj) = inner.objects.get(&key).cloned() else {
        return status(404, "NotFound", &format!("{resource} \"{name}\" not found"));
    };
    match sub {
        // The status subresource ignores everything but `status`.
        Some("status") => {
            let mut st = obj.get("status").cloned().unwrap_or(Value::Null);
            merge(&mut st, &patch["status"]);
            obj["status"] = st;
        }
        None => {
            let old_spec = obj["spec"].clone();
            let mut p = patch.clone();
            if let Some(m) = p.as_object_mut() {
                m.remove("status");
            }
            merge(&mut obj, &p);
            if obj["spec"] != old_spec {
                let g = obj["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                obj["metadata"]["generation"] = g.into();
            }
        }
        Some(other) => return status(404, "NotFound", &format!("no subresource {other}")),
    }
    inner.rv += 1;
    obj["metadata"]["resourceVersion"] = inner.rv.to_string().into();
    inner.objects.insert(key, obj.clone());
    fake.emit(&mut inner, resource, namespace, "MODIFIED", obj.clone());
    axum::Json(obj).into_response()
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let t = target.as_object_mut().unwrap();
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn pod_log(fake: &FakeKube, namespace: &str, name: &str, q: &HashMap<String, String>) -> Response {
    let inner = fake.inner.lock().unwrap();
    if !inner
        .objects
        .contains_key(&(PODS, namespace.to_owned(), name.to_owned()))
    {
        return status(404, "NotFound", &format!("pods \"{name}\" not found"));
    }
    // A container's own log (set_container_logs) when one is asked for and set.
    let by_container = q
        .get("container")
        .map(|c| (namespace.to_owned(), format!("{name}/{c}")))
        .filter(|k| inner.logs.contains_key(k));
    let mut lines: Vec<&(time::OffsetDateTime, String)> = inner
        .logs
        .get(&by_container.unwrap_or((namespace.to_owned(), name.to_owned())))
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    if let Some(s) = q.get("sinceSeconds").and_then(|s| s.parse::<i64>().ok()) {
        let cutoff = time::OffsetDateTime::now_utc() - time::Duration::seconds(s);
        lines.retain(|(t, _)| *t >= cutoff);
    }
    if let Some(n) = q.get("tailLines").and_then(|s| s.parse::<usize>().ok()) {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    let timestamps = q.get("timestamps").is_some_and(|v| v == "true");
    let mut text = String::new();
    for (t, l) in lines {
        if timestamps {
            text.push_str(
                &t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap(),
            );
            text.push(' ');
        }
        text.push_str(l);
        text.push('\n');
    }
    ([("content-type", "text/plain")], text).into_response()
}
