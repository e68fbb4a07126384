//! Pods as containers: a kube-runtime watcher keeps a typed model of every
//! pod (phase, readiness, restarts, the workload that owns it as its group),
//! records state transitions as the watch stream reports them, and reads pod
//! logs. Each pod is also one row of the runtime-neutral registry
//! ([`Runtimes`], `runtime: "kubernetes"`), which the container tools
//! (`list_containers`, `get_container`, `get_container_logs`) and the
//! annotation source read beside Docker's containers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use serde::Serialize;
use time::OffsetDateTime;

use super::{Container, PodRef, RuntimeError, RuntimeStatus, Runtimes};
use crate::kubeclient::Namespaces;

/// The runtime's name in container rows and `get_health`.
pub const RUNTIME: &str = "kubernetes";

/// Transitions kept per pod (the oldest are dropped).
const TRANSITIONS_PER_POD: usize = 50;

/// The workload a pod belongs to: its group in container answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Workload {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `Job`, `ReplicaSet`, ...
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PodContainer {
    pub name: String,
    pub image: String,
    pub ready: bool,
    pub restarts: u32,
    /// `running`, `waiting`, `terminated` or `unknown`.
    pub state: String,
    /// Why it waits or terminated (`CrashLoopBackOff`, `OOMKilled`, ...).
    pub reason: Option<String>,
    /// How its previous run ended (`lastState.terminated`), when it restarted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_terminated: Option<Termination>,
}

/// A container run that ended.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Termination {
    /// `OOMKilled`, `Error`, `Completed`, ...
    pub reason: Option<String>,
    pub exit_code: i32,
    /// RFC 3339.
    pub finished_at: Option<String>,
}

/// One pod, as maintenant shows it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    pub phase: String,
    /// The pod's `Ready` condition.
    pub ready: bool,
    /// Restarts summed over its containers.
    pub restarts: u32,
    pub node: Option<String>,
    pub started_at: Option<String>,
    pub group: Option<Workload>,
    pub containers: Vec<PodContainer>,
    /// The pod's annotations (the annotation source reads `maintenant.*`).
    #[serde(skip)]
    pub annotations: BTreeMap<String, String>,
    /// The owning workload's own annotations (Deployment, StatefulSet,
    /// DaemonSet, Job); the pod's win over them.
    #[serde(skip)]
    pub workload_annotations: BTreeMap<String, String>,
}

impl PodInfo {
    pub fn from_pod(pod: &Pod) -> PodInfo {
        let status = pod.status.as_ref();
        let containers: Vec<PodContainer> = pod
            .spec
            .as_ref()
            .map(|s| s.containers.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let st = status
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|all| all.iter().find(|cs| cs.name == c.name));
                let (state, reason) = match st.and_then(|s| s.state.as_ref()) {
                    Some(s) if s.running.is_some() => ("running", None),
                    Some(s) if s.waiting.is_some() => {
                        ("waiting", s.waiting.as_ref().and_then(|w| w.reason.clone()))
                    }
                    Some(s) if s.terminated.is_some() => (
                        "terminated",
                        s.terminated.as_ref().and_then(|t| t.reason.clone()),
                    ),
                    _ => ("unknown", None),
                };
                PodContainer {
                    name: c.name.clone(),
                    image: c.image.clone().unwrap_or_default(),
                    ready: st.is_some_and(|s| s.ready),
                    restarts: st.map_or(0, |s| u32::try_from(s.restart_count).unwrap_or(0)),
                    state: state.into(),
                    reason,
                    last_terminated: st
                        .and_then(|s| s.last_state.as_ref())
                        .and_then(|l| l.terminated.as_ref())
                        .map(|t| Termination {
                            reason: t.reason.clone(),
                            exit_code: t.exit_code,
                            finished_at: t.finished_at.as_ref().map(|f| f.0.to_string()),
                        }),
                }
            })
            .collect();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
        PodInfo {
            namespace: pod.namespace().unwrap_or_default(),
            name: pod.name_any(),
            uid: pod.uid().unwrap_or_default(),
            phase: status
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Unknown".into()),
            ready,
            restarts: containers.iter().map(|c| c.restarts).sum(),
            node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            started_at: status
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0.to_string()),
            group: workload(pod),
            containers,
            annotations: pod.annotations().clone(),
            workload_annotations: BTreeMap::new(),
        }
    }

    /// The pod as one row of the container tools. `state` is the phase in
    /// lower case; `health` comes from readiness (`healthy` when Ready,
    /// `unhealthy` when running but not Ready, `starting` while pending).
    pub fn container(&self) -> Container {
        let images: Vec<&str> = self.containers.iter().map(|c| c.image.as_str()).collect();
        let phase = self.phase.to_ascii_lowercase();
        let health = match (self.ready, phase.as_str()) {
            (true, _) => Some("healthy"),
            (false, "running") => Some("unhealthy"),
            (false, "pending") => Some("starting"),
            _ => None,
        };
        let mut annotations = self.workload_annotations.clone();
        annotations.extend(self.annotations.clone());
        let ignored = annotations.get("maintenant.ignore").is_some_and(|v| {
            matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
        });
        Container {
            id: self.row_id(),
            name: format!("{}/{}", self.namespace, self.name),
            image: images.join(", "),
            state: phase,
            health: health.map(str::to_owned),
            runtime: RUNTIME.into(),
            group: self.group.as_ref().map(|w| w.name.clone()),
            restarts: u64::from(self.restarts),
            started_at: self.started_at.clone(),
            exit_code: None,
            oom_killed: self
                .containers
                .iter()
                .any(|c| c.reason.as_deref() == Some("OOMKilled")),
            finished_at: None,
            compose: None,
            pod: Some(PodRef {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                phase: self.phase.clone(),
                ready: self.ready,
                node: self.node.clone(),
                workload: self.group.clone(),
                containers: self.containers.clone(),
            }),
            ignored,
            stale: false,
            as_of: None,
            labels: annotations,
        }
    }

    /// The row id: the pod's uid (a pod without one, which only a broken API
    /// answer has, is keyed by `namespace/name`).
    pub fn row_id(&self) -> String {
        if self.uid.is_empty() {
            format!("{}/{}", self.namespace, self.name)
        } else {
            self.uid.clone()
        }
    }

    /// The one-word state transitions are recorded between: the phase, with
    /// a running pod split by readiness.
    pub fn state(&self) -> &'static str {
        match self.phase.as_str() {
            "Pending" => "pending",
            "Running" if self.ready => "running",
            "Running" => "not_ready",
            "Succeeded" => "succeeded",
            "Failed" => "failed",
            _ => "unknown",
        }
    }
}

/// The controlling owner, resolved to the workload a person names: a
/// ReplicaSet created by a Deployment (`web-7d4b9c8f5` with the pod label
/// `pod-template-hash=7d4b9c8f5`) is shown as `Deployment web`, without
/// reading ReplicaSets (no RBAC for them needed).
fn workload(pod: &Pod) -> Option<Workload> {
    let owners = pod.metadata.owner_references.as_ref()?;
    let owner = owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first())?;
    if owner.kind == "ReplicaSet"
        && let Some(hash) = pod.labels().get("pod-template-hash")
        && let Some(deployment) = owner.name.strip_suffix(&format!("-{hash}"))
    {
        return Some(Workload {
            kind: "Deployment".into(),
            name: deployment.into(),
        });
    }
    Some(Workload {
        kind: owner.kind.clone(),
        name: owner.name.clone(),
    })
}

/// A change of a pod's state seen on the watch stream.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Transition {
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    /// The previous state (see [`PodInfo::state`]).
    pub from: String,
    /// The new state, `restarted` (a container restarted) or `deleted`.
    pub to: String,
    pub restarts: u32,
    /// The waiting/terminated reason of a container, when there is one.
    pub reason: Option<String>,
}

#[derive(Default)]
struct Inner {
    pods: BTreeMap<(String, String), PodInfo>,
    transitions: BTreeMap<(String, String), VecDeque<Transition>>,
    /// Whether the first list finished (until then the model is incomplete).
    synced: bool,
}

/// The pod model, shared with the readers (cheap to clone). With
/// [`Pods::feeding`], every change is mirrored into the container registry;
/// with [`Pods::keeping`], transitions are also written to the store, so
/// they outlive a restart as container transitions do.
#[derive(Clone, Default)]
pub struct Pods(
    Arc<RwLock<Inner>>,
    Option<Runtimes>,
    Option<super::history::History>,
);

impl Pods {
    /// A model that also keeps one container row per pod in `runtimes`.
    pub fn feeding(runtimes: Runtimes) -> Pods {
        Pods(Arc::default(), Some(runtimes), None)
    }

    /// Also keep transitions in `history` (and read them from there).
    pub fn keeping(mut self, history: super::history::History) -> Pods {
        self.2 = Some(history);
        self
    }

    /// Write transitions to the store, outside the model's lock.
    fn persist(&self, pod: &str, ts: &[Transition]) {
        let Some(h) = &self.2 else { return };
        for t in ts {
            if let Err(e) = h.record_pod(pod, t.at, t, TRANSITIONS_PER_POD) {
                tracing::warn!(%pod, error = %e, "could not store a pod transition");
            }
        }
    }

    pub fn list(&self) -> Vec<PodInfo> {
        self.0
            .read()
            .expect("pods lock")
            .pods
            .values()
            .cloned()
            .collect()
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<PodInfo> {
        let key = (namespace.to_owned(), name.to_owned());
        self.0.read().expect("pods lock").pods.get(&key).cloned()
    }

    /// Transitions of one pod, oldest first (kept after it is deleted, and
    /// across restarts when the model keeps them in the store).
    pub fn transitions(&self, namespace: &str, name: &str) -> Vec<Transition> {
        if let Some(h) = &self.2 {
            match h.pod_transitions(&format!("{namespace}/{name}"), TRANSITIONS_PER_POD) {
                Ok(t) => return t,
                Err(e) => {
                    tracing::warn!(pod = %format!("{namespace}/{name}"), error = %e, "could not read pod transitions; answering the ones in memory")
                }
            }
        }
        let key = (namespace.to_owned(), name.to_owned());
        self.0
            .read()
            .expect("pods lock")
            .transitions
            .get(&key)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn synced(&self) -> bool {
        self.0.read().expect("pods lock").synced
    }

    /// A pod seen by the watch (added or modified).
    fn apply(&self, info: PodInfo) {
        if let Some(r) = &self.1 {
            r.upsert(info.container());
        }
        let mut new = Vec::new();
        {
            let mut inner = self.0.write().expect("pods lock");
            let key = (info.namespace.clone(), info.name.clone());
            let previous = inner.pods.insert(key.clone(), info.clone());
            let Some(previous) = previous else { return };
            let reason = info.containers.iter().find_map(|c| c.reason.clone());
            let mut record = |from: &str, to: &str| {
                let t = inner.transitions.entry(key.clone()).or_default();
                if t.len() == TRANSITIONS_PER_POD {
                    t.pop_front();
                }
                let tr = Transition {
                    at: OffsetDateTime::now_utc(),
                    from: from.into(),
                    to: to.into(),
                    restarts: info.restarts,
                    reason: reason.clone(),
                };
                t.push_back(tr.clone());
                new.push(tr);
            };
            if info.restarts > previous.restarts {
                record(previous.state(), "restarted");
            }
            if info.state() != previous.state() {
                record(previous.state(), info.state());
            }
        }
        self.persist(&format!("{}/{}", info.namespace, info.name), &new);
    }

    fn delete(&self, namespace: &str, name: &str) {
        let mut inner = self.0.write().expect("pods lock");
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(p) = inner.pods.remove(&key) {
            if let Some(r) = &self.1 {
                r.remove(RUNTIME, &p.row_id());
            }
            let t = inner.transitions.entry(key).or_default();
            if t.len() == TRANSITIONS_PER_POD {
                t.pop_front();
            }
            let tr = Transition {
                at: OffsetDateTime::now_utc(),
                from: p.state().into(),
                to: "deleted".into(),
                restarts: p.restarts,
                reason: None,
            };
            t.push_back(tr.clone());
            drop(inner);
            self.persist(&format!("{namespace}/{name}"), &[tr]);
        }
    }

    /// A re-list finished: it is the whole truth. Pods that vanished while
    /// the watch was away are deleted; the others are applied as changes.
    fn replace(&self, listed: Vec<PodInfo>, scope: Option<&str>) {
        let keep: std::collections::BTreeSet<(String, String)> = listed
            .iter()
            .map(|p| (p.namespace.clone(), p.name.clone()))
            .collect();
        let gone: Vec<(String, String)> = self
            .0
            .read()
            .expect("pods lock")
            .pods
            .keys()
            .filter(|k| scope.is_none_or(|s| s == k.0) && !keep.contains(*k))
            .cloned()
            .collect();
        for (ns, name) in gone {
            self.delete(&ns, &name);
        }
        for p in listed {
            self.apply(p);
        }
        self.0.write().expect("pods lock").synced = true;
    }
}

/// How long a workload's annotations are reused before they are read again,
/// unless [`watch`] is given another interval.
pub const WORKLOAD_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// The owning workloads' annotations, read with one GET per workload and
/// kept for [`WORKLOAD_TTL`] (pods of one workload share the answer). Only
/// `get` on the four workload kinds is needed (the chart's RBAC grants it);
/// a refused or failed read counts as no annotations and is logged.
struct WorkloadAnnotations {
    /// (namespace, kind, name) -> when read, and the annotations.
    cache: BTreeMap<(String, String, String), (std::time::Instant, Annotations)>,
    ttl: std::time::Duration,
}

type Annotations = BTreeMap<String, String>;

impl WorkloadAnnotations {
    async fn fill(&mut self, client: &Client, info: &mut PodInfo) {
        use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch};
        use kube::api::{ApiResource, DynamicObject};
        let Some(w) = &info.group else { return };
        let resource = match w.kind.as_str() {
            "Deployment" => ApiResource::erase::<apps::Deployment>(&()),
            "StatefulSet" => ApiResource::erase::<apps::StatefulSet>(&()),
            "DaemonSet" => ApiResource::erase::<apps::DaemonSet>(&()),
            "Job" => ApiResource::erase::<batch::Job>(&()),
            _ => return,
        };
        let key = (info.namespace.clone(), w.kind.clone(), w.name.clone());
        if let Some((at, a)) = self.cache.get(&key)
            && at.elapsed() < self.ttl
        {
            info.workload_annotations = a.clone();
            return;
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &info.namespace, &resource);
        let annotations = match api.get_opt(&w.name).await {
            Ok(Some(o)) => o.metadata.annotations.unwrap_or_default(),
            Ok(None) => BTreeMap::new(),
            Err(e) => {
                tracing::warn!(namespace = %info.namespace, workload = %w.name, error = %e, "cannot read a workload's annotations");
                BTreeMap::new()
            }
        };
        self.cache
            .insert(key, (std::time::Instant::now(), annotations.clone()));
        info.workload_annotations = annotations;
    }
}

/// A workload's own annotations can change while none of its pods does
/// (pods carry only their own): read them again and re-apply the pods whose
/// workload annotations moved, so the monitors they declare follow. One GET
/// per workload (the cache is shared by its pods); only `get` is granted.
async fn refresh_workloads(client: &Client, pods: &Pods, workloads: &mut WorkloadAnnotations) {
    for info in pods.list() {
        if info.group.is_none() {
            continue;
        }
        let mut fresh = info.clone();
        workloads.fill(client, &mut fresh).await;
        if fresh.workload_annotations != info.workload_annotations {
            tracing::info!(namespace = %info.namespace, pod = %info.name, "the owning workload's annotations changed");
            pods.apply(fresh);
        }
    }
}

/// Watch pods until the stream ends (never, with its backoff), keeping
/// `pods`; the owning workloads' annotations are read again every
/// `workload_interval` ([`WORKLOAD_TTL`] by default).
pub async fn watch(
    client: Client,
    namespaces: Namespaces,
    pods: Pods,
    workload_interval: std::time::Duration,
) {
    let status = |f: &dyn Fn(&mut RuntimeStatus)| {
        if let Some(r) = &pods.1 {
            r.update_status(RUNTIME, |s| f(s));
        }
    };
    if let Some(r) = &pods.1 {
        r.set_status(RuntimeStatus {
            name: RUNTIME.into(),
            endpoint: format!("Kubernetes API, pods in {}", namespaces.describe()),
            connected: false,
            version: None,
            since: Some(OffsetDateTime::now_utc()),
            last_error: None,
            failed_attempts: 0,
            containers: 0,
        });
        match client.apiserver_version().await {
            Ok(v) => status(&|s| s.version = Some(v.git_version.clone())),
            Err(e) => {
                status(&|s| s.last_error = Some(format!("cannot read the API server version: {e}")))
            }
        }
    }
    let scopes = namespaces.scopes();
    let streams = scopes.into_iter().map(|scope| {
        let api: Api<Pod> = match &scope {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .map(move |ev| (scope.clone(), ev))
            .boxed()
    });
    let mut events = futures::stream::select_all(streams);
    let mut relisting: BTreeMap<Option<String>, Vec<PodInfo>> = BTreeMap::new();
    let workload_interval = workload_interval.max(std::time::Duration::from_secs(1));
    let mut workloads = WorkloadAnnotations {
        cache: BTreeMap::new(),
        ttl: workload_interval,
    };
    let mut refresh = tokio::time::interval_at(
        tokio::time::Instant::now() + workload_interval,
        workload_interval,
    );
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (scope, ev) = tokio::select! {
            next = events.next() => match next {
                Some(e) => e,
                None => break,
            },
            _ = refresh.tick() => {
                refresh_workloads(&client, &pods, &mut workloads).await;
                continue;
            }
        };
        let allowed = |p: &Pod| namespaces.allows(&p.namespace().unwrap_or_default());
        match ev {
            Ok(Event::Init) => {
                relisting.insert(scope, Vec::new());
            }
            Ok(Event::InitApply(p)) if allowed(&p) => {
                let mut info = PodInfo::from_pod(&p);
                workloads.fill(&client, &mut info).await;
                relisting.entry(scope).or_default().push(info);
            }
            Ok(Event::InitDone) => {
                let listed = relisting.remove(&scope).unwrap_or_default();
                pods.replace(listed, scope.as_deref());
                status(&|s| {
                    if !s.connected {
                        s.since = Some(OffsetDateTime::now_utc());
                    }
                    s.connected = true;
                    s.last_error = None;
                    s.failed_attempts = 0;
                });
            }
            Ok(Event::Apply(p)) if allowed(&p) => {
                let mut info = PodInfo::from_pod(&p);
                workloads.fill(&client, &mut info).await;
                pods.apply(info)
            }
            Ok(Event::Delete(p)) if allowed(&p) => {
                pods.delete(&p.namespace().unwrap_or_default(), &p.name_any())
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "watching pods; retrying");
                // Pods keep their last known state meanwhile (as Docker's do).
                let message = format!("watching pods: {e}");
                status(&|s| {
                    if s.connected {
                        s.since = Some(OffsetDateTime::now_utc());
                    }
                    s.connected = false;
                    s.last_error = Some(message.clone());
                    s.failed_attempts += 1;
                });
            }
        }
    }
}

/// What to read from a pod's log.
#[derive(Debug, Clone, Default)]
pub struct LogRequest {
    /// A container of the pod (default: its only or first container).
    pub container: Option<String>,
    /// The last N lines.
    pub lines: Option<u32>,
    /// Only lines newer than this.
    pub since: Option<std::time::Duration>,
    /// Prefix each line with the time the runtime recorded it.
    pub timestamps: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LogLine {
    /// RFC 3339, when timestamps were asked for.
    pub at: Option<String>,
    pub text: String,
}

/// Read a pod's log. Kubernetes merges stdout and stderr into one stream, so
/// lines are not marked by stream (unlike Docker's).
pub async fn logs(
    client: Client,
    namespace: &str,
    name: &str,
    req: &LogRequest,
) -> Result<Vec<LogLine>, kube::Error> {
    let api: Api<Pod> = Api::namespaced(client, namespace);
    let params = LogParams {
        container: req.container.clone(),
        tail_lines: req.lines.map(i64::from),
        since_seconds: req
            .since
            .map(|d| i64::try_from(d.as_secs().max(1)).unwrap_or(i64::MAX)),
        timestamps: req.timestamps,
        ..LogParams::default()
    };
    let text = api.logs(name, &params).await?;
    Ok(text
        .lines()
        .map(|l| match l.split_once(' ') {
            Some((at, rest)) if req.timestamps => LogLine {
                at: Some(at.to_owned()),
                text: rest.to_owned(),
            },
            _ => LogLine {
                at: None,
                text: l.to_owned(),
            },
        })
        .collect())
}

/// The log of a pod row for `get_container_logs`: every container of the
/// pod, merged by time (one container: its log as is), the last `q.lines`.
/// Lines are `combined`: the Kubernetes API merges stdout and stderr.
pub async fn pod_logs(
    client: Client,
    pod: &PodRef,
    q: &super::LogQuery,
) -> Result<Vec<super::LogLine>, RuntimeError> {
    let since = q.since.map(|t| {
        let age = OffsetDateTime::now_utc() - t;
        // sinceSeconds has one-second precision: ask a little more, filter below.
        std::time::Duration::from_secs(age.whole_seconds().max(0) as u64 + 1)
    });
    let mut all: Vec<(Option<OffsetDateTime>, String, String, String)> = Vec::new();
    for c in &pod.containers {
        let req = LogRequest {
            container: Some(c.name.clone()),
            lines: Some(u32::try_from(q.lines).unwrap_or(u32::MAX)),
            since,
            // Always asked for: they order the merge; shown only when asked for.
            timestamps: true,
        };
        let lines = logs(client.clone(), &pod.namespace, &pod.name, &req)
            .await
            .map_err(|e| RuntimeError::Api {
                runtime: RUNTIME.into(),
                message: format!(
                    "pod {}/{} container {}: {e}",
                    pod.namespace, pod.name, c.name
                ),
            })?;
        for l in lines {
            let at = l.at.as_deref().and_then(|a| {
                OffsetDateTime::parse(a, &time::format_description::well_known::Rfc3339).ok()
            });
            if let (Some(since), Some(at)) = (q.since, at)
                && at < since
            {
                continue;
            }
            all.push((at, l.at.unwrap_or_default(), c.name.clone(), l.text));
        }
    }
    // A stable sort keeps each container's own order for equal times.
    all.sort_by_key(|l| l.0);
    if all.len() > q.lines {
        all.drain(..all.len() - q.lines);
    }
    Ok(all
        .into_iter()
        .map(|(_, raw_at, container, text)| super::LogLine {
            stream: "combined".into(),
            container: Some(container),
            time: q.timestamps.then_some(raw_at),
            text,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(labels: serde_json::Value, owners: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "n", "labels": labels, "ownerReferences": owners},
        }))
        .unwrap()
    }

    fn owner(kind: &str, name: &str, controller: bool) -> serde_json::Value {
        serde_json::json!({"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u", "controller": controller})
    }

    #[test]
    fn the_group_is_the_workload_a_person_names() {
        let w = |p: &Pod| workload(p).map(|w| format!("{}/{}", w.kind, w.name));
        let rs = owner("ReplicaSet", "web-5f7c9", true);
        assert_eq!(
            w(&pod(
                serde_json::json!({"pod-template-hash": "5f7c9"}),
                serde_json::json!([rs])
            ))
            .as_deref(),
            Some("Deployment/web")
        );
        // A ReplicaSet not made by a Deployment stays itself.
        assert_eq!(
            w(&pod(serde_json::json!({}), serde_json::json!([rs]))).as_deref(),
            Some("ReplicaSet/web-5f7c9")
        );
        assert_eq!(
            w(&pod(
                serde_json::json!({}),
                serde_json::json!([owner("StatefulSet", "db", true)])
            ))
            .as_deref(),
            Some("StatefulSet/db")
        );
        // The controlling owner wins over others.
        let owners = serde_json::json!([
            owner("ConfigMap", "x", false),
            owner("DaemonSet", "agent", true)
        ]);
        assert_eq!(
            w(&pod(serde_json::json!({}), owners)).as_deref(),
            Some("DaemonSet/agent")
        );
        assert_eq!(w(&pod(serde_json::json!({}), serde_json::json!([]))), None);
        let bare: Pod =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}})).unwrap();
        assert_eq!(w(&bare), None);
        let info = PodInfo::from_pod(&bare);
        assert_eq!(
            (info.phase.as_str(), info.state(), info.restarts),
            ("Unknown", "unknown", 0)
        );
    }
}
