//! The vocabulary every layer shares: what a monitor is, how it is identified,
//! and where its declaration came from.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::model::{
    AlertDecl, CertificateSpec, EndpointSpec, HeartbeatSchedule, HeartbeatSpec,
};

/// The kinds of monitor. The first three are declared (the monitors file,
/// labels, resources); adding one of those means a variant here, a section
/// in `config::model::MonitorsFile` and a check in `checks/`. `Container` is
/// not declared: every container and pod is watched for the container
/// alerts (`alerts::containers`), named as `list_containers` names it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MonitorKind {
    Endpoint,
    Certificate,
    Heartbeat,
    Container,
}

impl MonitorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorKind::Endpoint => "endpoint",
            MonitorKind::Certificate => "certificate",
            MonitorKind::Heartbeat => "heartbeat",
            MonitorKind::Container => "container",
        }
    }
}

impl fmt::Display for MonitorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stable identity of a monitor: its kind and its name, unique within the kind.
/// Its string form `kind/name` is the `id` tools accept and return.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MonitorKey {
    pub kind: MonitorKind,
    /// Shared: a key is held by the desired state, the reconciler, the
    /// scheduler and the observed map, and each clone of 10k keys would
    /// otherwise copy 10k names.
    pub name: Arc<str>,
}

impl MonitorKey {
    pub fn new(kind: MonitorKind, name: impl Into<Arc<str>>) -> Self {
        MonitorKey {
            kind,
            name: name.into(),
        }
    }

    pub fn endpoint(name: impl Into<Arc<str>>) -> Self {
        MonitorKey::new(MonitorKind::Endpoint, name)
    }

    pub fn certificate(name: impl Into<Arc<str>>) -> Self {
        MonitorKey::new(MonitorKind::Certificate, name)
    }

    pub fn heartbeat(name: impl Into<Arc<str>>) -> Self {
        MonitorKey::new(MonitorKind::Heartbeat, name)
    }

    /// A container (Docker: its name) or a pod (`namespace/name`).
    pub fn container(name: impl Into<Arc<str>>) -> Self {
        MonitorKey::new(MonitorKind::Container, name)
    }

    /// The id shown to users and accepted by tools: `endpoint/api-health`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    /// Bytes used as the sled key prefix for this monitor. The kind and name are
    /// separated by `/`, and callers append `\0` before any suffix, so one
    /// monitor's range never contains another's.
    pub fn storage_key(&self) -> Vec<u8> {
        self.id().into_bytes()
    }
}

impl fmt::Display for MonitorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// Where a declaration came from, so an answer can tell a person which file
/// and line (or, later, which container label) to edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Origin {
    File {
        /// Shared by every monitor of the file (10k origins, one path).
        #[schemars(with = "PathBuf")]
        path: Arc<Path>,
        line: usize,
    },
    /// A Docker label (see [`DockerOrigin`]). Boxed like `Kubernetes`: every
    /// declared and desired monitor holds an origin, and a file origin is a
    /// path and a line.
    Docker(Box<DockerOrigin>),
    /// A Kubernetes object: a `Monitor` resource (`kind`), in `namespace`,
    /// at `generation` (its `metadata.generation`); or a `Pod` whose
    /// `annotation` declared the monitor.
    /// Boxed: file origins (10k of them) need not be as large as this one.
    Kubernetes(Box<KubernetesOrigin>),
}

/// The container's name (stable across a compose recreate, unlike its id)
/// and the label key that declared the monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DockerOrigin {
    pub container: String,
    pub label: String,
}

/// Where a Kubernetes declaration came from (see [`Origin::Kubernetes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct KubernetesOrigin {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub generation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation: Option<String>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{}", path.display(), line),
            Origin::Docker(d) => {
                write!(f, "docker container {} label {}", d.container, d.label)
            }
            Origin::Kubernetes(k) => {
                write!(f, "{} {}/{}", k.kind, k.namespace, k.name)?;
                match &k.annotation {
                    Some(a) => write!(f, " annotation {a}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// A fully resolved monitor specification (defaults applied), one variant per kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MonitorSpec {
    Endpoint(EndpointSpec),
    Certificate(CertificateSpec),
    Heartbeat(HeartbeatSpec),
}

impl MonitorSpec {
    pub fn kind(&self) -> MonitorKind {
        match self {
            MonitorSpec::Endpoint(_) => MonitorKind::Endpoint,
            MonitorSpec::Certificate(_) => MonitorKind::Certificate,
            MonitorSpec::Heartbeat(_) => MonitorKind::Heartbeat,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            MonitorSpec::Endpoint(e) => &e.name,
            MonitorSpec::Certificate(c) => &c.name,
            MonitorSpec::Heartbeat(h) => &h.name,
        }
    }

    pub fn group(&self) -> Option<&str> {
        match self {
            MonitorSpec::Endpoint(e) => e.group.as_deref(),
            MonitorSpec::Certificate(c) => c.group.as_deref(),
            MonitorSpec::Heartbeat(h) => h.group.as_deref(),
        }
    }

    /// The monitor's alert routing, if it declares one.
    pub fn alert(&self) -> Option<&AlertDecl> {
        match self {
            MonitorSpec::Endpoint(e) => e.alert.as_ref(),
            MonitorSpec::Certificate(c) => c.alert.as_ref(),
            MonitorSpec::Heartbeat(h) => h.alert.as_ref(),
        }
    }

    pub fn key(&self) -> MonitorKey {
        MonitorKey::new(self.kind(), self.name())
    }

    /// A hash of the whole spec. The reconciler restarts a check only when this
    /// changes, so it must cover every field that affects how the check runs.
    /// The JSON form is canonical: struct fields serialize in declaration order
    /// and maps are `BTreeMap`s.
    pub fn spec_hash(&self) -> u64 {
        let json = serde_json::to_vec(self).expect("a monitor spec always serializes");
        let mut h = std::collections::hash_map::DefaultHasher::new();
        json.hash(&mut h);
        h.finish()
    }
}

/// One declared monitor with its origin: what sources produce and the
/// reconciler consumes.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredMonitor {
    /// Shared with the desired state, so 10k declared monitors are held once.
    pub spec: std::sync::Arc<MonitorSpec>,
    pub origin: Origin,
}

impl DeclaredMonitor {
    pub fn key(&self) -> MonitorKey {
        self.spec.key()
    }

    /// `==`, but a shared spec is equal without comparing it field by field
    /// (a reload of 10k monitors shares the specs of the unchanged ones).
    pub fn same_as(&self, other: &DeclaredMonitor) -> bool {
        (std::sync::Arc::ptr_eq(&self.spec, &other.spec) || self.spec == other.spec)
            && self.origin == other.origin
    }
}

/// [`DeclaredMonitor::same_as`] over two whole declared sets, in order.
pub fn same_declarations(a: &[DeclaredMonitor], b: &[DeclaredMonitor]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y))
}

impl MonitorSpec {
    /// Time between checks (for a heartbeat: its period, or a day for a cron
    /// schedule; only used to spread first checks).
    pub fn interval(&self) -> std::time::Duration {
        match self {
            MonitorSpec::Endpoint(e) => e.interval.std(),
            MonitorSpec::Certificate(c) => c.interval.std(),
            MonitorSpec::Heartbeat(h) => match &h.schedule {
                HeartbeatSchedule::Period { period } => period.std(),
                HeartbeatSchedule::Cron { .. } => std::time::Duration::from_secs(86_400),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every declared and desired monitor holds an origin: the rare kinds
    /// (Docker, Kubernetes) are boxed so a file origin, the common case at
    /// scale, stays a path and a line.
    #[test]
    fn an_origin_is_no_larger_than_a_file_origin_needs() {
        assert!(std::mem::size_of::<Origin>() <= 32);
        assert!(std::mem::size_of::<DeclaredMonitor>() <= 40);
    }

    #[test]
    fn a_docker_origin_serializes_flat_with_its_source() {
        let o = Origin::Docker(Box::new(DockerOrigin {
            container: "web".into(),
            label: "maintenant.endpoint.web.url".into(),
        }));
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({"source": "docker", "container": "web", "label": "maintenant.endpoint.web.url"})
        );
        assert_eq!(
            o.to_string(),
            "docker container web label maintenant.endpoint.web.url"
        );
    }
}
