//! Container runtimes: what runs, how it changes, what it logs and consumes.
//!
//! The types here are runtime-neutral (a Kubernetes runtime fills the same
//! [`Container`] rows beside Docker's); each runtime module only translates
//! its API into them. Runtimes write into the shared [`Runtimes`] registry;
//! the label source and the read model only read it.

pub mod docker;
pub mod history;
pub mod kubernetes;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::watch;

/// One container as every runtime reports it (CONTRACT: list_containers).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Container {
    /// The runtime's id (Docker: the 64-hex id).
    pub id: String,
    /// The name people use (Docker: without the leading `/`).
    pub name: String,
    pub image: String,
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`.
    pub state: String,
    /// `healthy`, `unhealthy` or `starting`; null when the container has no health check.
    pub health: Option<String>,
    /// `docker` or `kubernetes`.
    pub runtime: String,
    /// Docker: `maintenant.group`, else the compose project. Kubernetes: the
    /// workload that owns the pod (`web` for Deployment `web`).
    pub group: Option<String>,
    /// Restarts counted by the runtime (Docker: RestartCount).
    pub restarts: u64,
    /// RFC 3339; null when it never started.
    pub started_at: Option<String>,
    /// Exit code of the last run, when not running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// The last run was killed for lack of memory.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub oom_killed: bool,
    /// When the last run ended (RFC 3339), when it has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Compose project and service, when started by docker compose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compose: Option<Compose>,
    /// Kubernetes only: the pod behind this row (one row per pod).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodRef>,
    /// `maintenant.ignore=true`: no monitors from its labels, hidden from lists.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ignored: bool,
    /// The runtime is disconnected: this row is the last state seen, kept so
    /// an engine restart drops nothing, and is not current. Cleared by the
    /// fresh list taken on reconnecting.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
    /// With `stale`: when the connection was lost, the last time this row was
    /// known to be current (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// Every label (the label source reads `maintenant.*`); for a pod, its
    /// annotations over its workload's. Not shown in lists.
    #[serde(skip)]
    pub labels: BTreeMap<String, String>,
}

impl Container {
    pub fn is_running(&self) -> bool {
        matches!(self.state.as_str(), "running" | "restarting" | "paused")
    }
}

/// The Kubernetes side of a pod row: where it runs, what owns it, and each
/// of its containers (state and reason, e.g. `waiting` + `CrashLoopBackOff`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    pub phase: String,
    /// The pod's `Ready` condition.
    pub ready: bool,
    pub node: Option<String>,
    /// The owning workload (`Deployment`, `StatefulSet`, ...), when there is one.
    pub workload: Option<kubernetes::Workload>,
    pub containers: Vec<kubernetes::PodContainer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Compose {
    pub project: String,
    pub service: Option<String>,
}

/// A change of a container's life, kept in the store (`transitions` tree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Transition {
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    pub container: String,
    pub container_id: String,
    /// `create`, `start`, `restart`, `die`, `oom`, `pause`, `unpause`,
    /// `health_status`, `destroy`.
    pub event: String,
    /// The state after the event (`running`, `exited`, ...), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// For health events: `healthy`, `unhealthy`, `starting`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// Kubernetes: why a container waits or terminated (`CrashLoopBackOff`, `OOMKilled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The latest CPU/memory sample of one container.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Usage {
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    /// Percent of one CPU (200 = two CPUs busy).
    pub cpu_percent: f64,
    /// Resident memory without the page cache, in bytes.
    pub memory_bytes: u64,
    /// The container's memory limit (the host's memory when unlimited).
    pub memory_limit_bytes: Option<u64>,
}

/// A runtime's connection, as `get_health` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct RuntimeStatus {
    /// `docker` or `kubernetes`.
    pub name: String,
    pub endpoint: String,
    pub connected: bool,
    /// Engine version, once connected.
    pub version: Option<String>,
    /// Since when `connected` has its current value.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub since: Option<OffsetDateTime>,
    /// Why it is not connected; kept while retrying.
    pub last_error: Option<String>,
    /// Connection attempts that failed in a row (reconnects back off up to 30s).
    pub failed_attempts: u32,
    pub containers: usize,
}

/// Containers by id.
pub type ContainerSet = BTreeMap<String, Container>;

/// Shared registry of runtimes, their containers and usage. Runtimes write;
/// the label source subscribes to [`Runtimes::subscribe`]; the read model reads.
#[derive(Clone)]
pub struct Runtimes {
    containers: watch::Sender<Arc<ContainerSet>>,
    status: Arc<RwLock<BTreeMap<String, RuntimeStatus>>>,
    usage: Arc<RwLock<BTreeMap<String, Usage>>>,
    pub docker: Arc<RwLock<Option<bollard::Docker>>>,
    /// Held while one sampling of usage runs (the periodic one or one on
    /// demand), so two never overlap.
    sampling: Arc<tokio::sync::Mutex<()>>,
}

impl Default for Runtimes {
    fn default() -> Self {
        Runtimes {
            containers: watch::channel(Arc::default()).0,
            status: Arc::default(),
            usage: Arc::default(),
            docker: Arc::default(),
            sampling: Arc::default(),
        }
    }
}

impl Runtimes {
    pub fn containers(&self) -> Arc<ContainerSet> {
        self.containers.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<ContainerSet>> {
        self.containers.subscribe()
    }

    /// Replace one runtime's containers (a full list after (re)connecting).
    pub fn replace(&self, runtime: &str, list: Vec<Container>) {
        self.containers.send_modify(|set| {
            let mut next: ContainerSet = set
                .iter()
                .filter(|(_, c)| c.runtime != runtime)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            next.extend(list.into_iter().map(|c| (c.id.clone(), c)));
            *set = Arc::new(next);
        });
        self.count(runtime);
    }

    /// Insert or update one container; a no-op change wakes nobody.
    pub fn upsert(&self, c: Container) {
        let runtime = c.runtime.clone();
        self.containers.send_if_modified(|set| {
            if set.get(&c.id) == Some(&c) {
                return false;
            }
            Arc::make_mut(set).insert(c.id.clone(), c);
            true
        });
        self.count(&runtime);
    }

    /// Mark every container of `runtime` as last known at `as_of`, not current
    /// (the runtime was lost). They stay listed, and their label monitors
    /// declared, until [`Runtimes::replace`] brings a fresh list.
    pub fn mark_stale(&self, runtime: &str, as_of: OffsetDateTime) {
        let as_of = as_of
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| as_of.to_string());
        self.containers.send_if_modified(|set| {
            let stale: Vec<String> = set
                .values()
                .filter(|c| c.runtime == runtime && !c.stale)
                .map(|c| c.id.clone())
                .collect();
            if stale.is_empty() {
                return false;
            }
            let set = Arc::make_mut(set);
            for id in stale {
                if let Some(c) = set.get_mut(&id) {
                    c.stale = true;
                    c.as_of = Some(as_of.clone());
                }
            }
            true
        });
    }

    pub fn remove(&self, runtime: &str, id: &str) {
        self.containers.send_if_modified(|set| {
            if !set.contains_key(id) {
                return false;
            }
            Arc::make_mut(set).remove(id);
            true
        });
        self.usage.write().expect("usage lock").remove(id);
        self.count(runtime);
    }

    fn count(&self, runtime: &str) {
        let n = self
            .containers()
            .values()
            .filter(|c| c.runtime == runtime)
            .count();
        if let Some(s) = self.status.write().expect("status lock").get_mut(runtime) {
            s.containers = n;
        }
    }

    pub fn set_status(&self, status: RuntimeStatus) {
        self.status
            .write()
            .expect("status lock")
            .insert(status.name.clone(), status);
    }

    pub fn update_status(&self, runtime: &str, f: impl FnOnce(&mut RuntimeStatus)) {
        if let Some(s) = self.status.write().expect("status lock").get_mut(runtime) {
            f(s);
        }
    }

    pub fn statuses(&self) -> Vec<RuntimeStatus> {
        self.status
            .read()
            .expect("status lock")
            .values()
            .cloned()
            .collect()
    }

    pub fn set_usage(&self, id: &str, usage: Usage) {
        self.usage
            .write()
            .expect("usage lock")
            .insert(id.to_owned(), usage);
    }

    pub fn usage(&self) -> BTreeMap<String, Usage> {
        self.usage.read().expect("usage lock").clone()
    }

    /// The lock one usage sampling holds (see [`docker::sample_on_demand`]).
    pub(crate) fn sampling(&self) -> &tokio::sync::Mutex<()> {
        &self.sampling
    }

    pub fn docker_client(&self) -> Option<bollard::Docker> {
        self.docker.read().expect("docker lock").clone()
    }
}

/// One log line (CONTRACT: get_container_logs).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct LogLine {
    /// `stdout` or `stderr` (`console` for a container with a TTY, where both are
    /// mixed); `combined` for a pod: the Kubernetes API merges both streams and
    /// cannot tell them apart.
    pub stream: String,
    /// Kubernetes: the pod's container the line comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// RFC 3339 with nanoseconds, when `timestamps` was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    pub text: String,
}

/// What a log request asks for.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub lines: usize,
    pub since: Option<OffsetDateTime>,
    pub timestamps: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("the {0} runtime is not connected: {1}")]
    Disconnected(String, String),
    #[error("{runtime} error: {message}")]
    Api { runtime: String, message: String },
}
