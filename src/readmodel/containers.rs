//! Containers, their logs and usage, and the host's resources, as the tools
//! answer them. Reads the runtime registry, the history trees and the
//! desired/observed state; no runtime logic lives here.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::listing::{Detail, Facts, Listing, brief, natural_cmp, short_id, state_name};
use super::{DesiredView, ObservedView, Page, ReadError, desired_view, observed_view, paginate};
use crate::desired::Conflict;
use crate::engine::App;
use crate::monitor::Origin;
use crate::resources::HostResources;
use crate::runtime::{Container, LogLine, LogQuery, RuntimeError, Transition, Usage};
use crate::sources::labels::LabelProblem;
use crate::updates::scan::{ImageUpdate, UpdateStatus};

pub const DEFAULT_LOG_LINES: usize = 100;
pub const MAX_LOG_LINES: usize = 1000;
/// Transitions shown by get_container.
pub const TRANSITIONS_SHOWN: usize = 20;

#[derive(Debug, Default, Clone)]
pub struct ContainerFilter {
    /// `running`, `exited`, ... (exact, case-insensitive).
    pub state: Option<String>,
    pub group: Option<String>,
    /// Case-insensitive substring of the name or image.
    pub name: Option<String>,
}

/// Containers (not `maintenant.ignore`d), in natural name order.
pub fn list_containers(
    app: &App,
    filter: &ContainerFilter,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Page<Container>, ReadError> {
    paginate(matching_containers(app, filter)?, limit, cursor)
}

/// Every container the filter keeps, in natural name order.
fn matching_containers(app: &App, filter: &ContainerFilter) -> Result<Vec<Container>, ReadError> {
    super::suggest::check_filters([
        ("state", filter.state.as_deref()),
        ("group", filter.group.as_deref()),
        ("name", filter.name.as_deref()),
    ])?;
    let set = app.runtimes.containers();
    let mut rows: Vec<Container> = set
        .values()
        .filter(|c| !c.ignored)
        .filter(|c| {
            filter
                .state
                .as_deref()
                .is_none_or(|s| c.state.eq_ignore_ascii_case(s))
        })
        .filter(|c| {
            filter.group.as_deref().is_none_or(|g| {
                c.group
                    .as_deref()
                    .is_some_and(|cg| cg.eq_ignore_ascii_case(g))
            })
        })
        .filter(|c| {
            filter.name.as_deref().is_none_or(|n| {
                let n = n.to_lowercase();
                c.name.to_lowercase().contains(&n) || c.image.to_lowercase().contains(&n)
            })
        })
        .cloned()
        .collect();
    rows.sort_by(|a, b| natural_cmp(&a.name, &b.name).then(a.id.cmp(&b.id)));
    Ok(rows)
}

/// A container in a brief list: the fields `docker ps` shows, and what is
/// wrong with it; nothing empty.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ContainerBrief {
    /// 12 characters of a Docker id (every tool accepts it); a pod's as is.
    pub id: String,
    pub name: String,
    pub image: String,
    pub state: String,
    /// `healthy`, `unhealthy` or `starting`, when it has a health check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Restarts counted by the runtime, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u64>,
    /// The last run's exit code, when not running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub oom_killed: bool,
    /// The runtime is disconnected: the last state seen.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

/// A container needs attention when it is unhealthy, restarting, dead,
/// killed for memory, exited with a failure, or a pod that failed.
pub fn needs_attention(c: &Container) -> bool {
    c.health.as_deref() == Some("unhealthy")
        || c.oom_killed
        || matches!(
            c.state.as_str(),
            "restarting" | "dead" | "failed" | "unknown"
        )
        || (c.state == "exited" && c.exit_code.is_some_and(|e| e != 0))
}

fn container_brief(c: &Container) -> ContainerBrief {
    ContainerBrief {
        id: short_id(&c.id).to_owned(),
        name: c.name.clone(),
        image: c.image.clone(),
        state: c.state.clone(),
        health: c.health.clone(),
        group: c.group.clone(),
        restarts: (c.restarts > 0).then_some(c.restarts),
        exit_code: c.exit_code.filter(|_| c.state != "running"),
        oom_killed: c.oom_killed,
        stale: c.stale,
    }
}

/// `list_containers` in brief: counts by state, the ones needing attention first.
pub fn brief_containers(
    app: &App,
    filter: &ContainerFilter,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Listing<ContainerBrief, Container>, ReadError> {
    brief(
        matching_containers(app, filter)?,
        |c| Facts {
            state: c.state.as_str().into(),
            attention: needs_attention(c),
        },
        container_brief,
        limit,
        cursor,
    )
}

/// A container by name (exact, then case-insensitive), id or id prefix
/// (at least 4 characters). The error names the closest names.
pub fn resolve_container(app: &App, query: &str) -> Result<Container, ReadError> {
    let q = query.trim().trim_start_matches('/');
    super::suggest::check_query("container_id", q, super::suggest::MAX_QUERY_CHARS)?;
    let set = app.runtimes.containers();
    if let Some(c) = set.get(q) {
        return Ok(c.clone());
    }
    if let Some(c) = set.values().find(|c| c.name == q) {
        return Ok(c.clone());
    }
    let ci: Vec<&Container> = set
        .values()
        .filter(|c| c.name.eq_ignore_ascii_case(q))
        .collect();
    if let [one] = ci.as_slice() {
        return Ok((*one).clone());
    }
    // A pod by its name alone (rows are `namespace/pod`), when only one namespace has it.
    let pods: Vec<&Container> = set
        .values()
        .filter(|c| c.pod.as_ref().is_some_and(|p| p.name == q))
        .collect();
    if let [one] = pods.as_slice() {
        return Ok((*one).clone());
    }
    if q.len() >= 4 && q.chars().all(|c| c.is_ascii_hexdigit()) {
        let by_id: Vec<&Container> = set.values().filter(|c| c.id.starts_with(q)).collect();
        match by_id.as_slice() {
            [one] => return Ok((*one).clone()),
            [] => {}
            many => {
                return Err(ReadError::NotFound(format!(
                    "container id prefix '{q}' matches {} containers; give more characters",
                    many.len()
                )));
            }
        }
    }
    let scored = super::suggest::closest(q, set.values().map(|c| c.name.as_str()), 3);
    let hint = match scored.as_slice() {
        [] if set.is_empty() => {
            let connected = app.runtimes.statuses().iter().any(|s| s.connected);
            if connected {
                "no containers are known".to_owned()
            } else {
                "no container runtime is connected (see get_health)".to_owned()
            }
        }
        [] => format!("call list_containers to see the {} known", set.len()),
        s => {
            let alts: Vec<String> = s.iter().map(|n| format!("'{n}'")).collect();
            format!("did you mean {}?", alts.join(" or "))
        }
    };
    Err(ReadError::NotFound(format!(
        "no container named '{q}'; {hint}"
    )))
}

/// A monitor declared by a container's labels.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ContainerMonitor {
    /// `endpoint/NAME`.
    pub id: String,
    /// The label key that declared it.
    pub label: String,
    pub desired: DesiredView<serde_json::Value>,
    pub observed: ObservedView,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ContainerDetail {
    pub container: Container,
    /// `maintenant.*` labels as written.
    pub maintenant_labels: BTreeMap<String, String>,
    /// The latest CPU/memory sample, while running.
    pub usage: Option<Usage>,
    /// Recent state changes, newest first (start, die with exit code, oom, health...).
    pub transitions: Vec<Transition>,
    /// Monitors its labels declare (they outlive the container for the grace period).
    pub monitors: Vec<ContainerMonitor>,
    /// Labels that could not be used; each skipped one monitor.
    pub label_problems: Vec<LabelProblem>,
    /// Its label monitors that lost to another declaration of the same name
    /// (the monitors file wins over labels).
    pub conflicts: Vec<Conflict>,
}

pub fn container_detail(app: &App, query: &str) -> Result<ContainerDetail, ReadError> {
    let container = resolve_container(app, query)?;
    let transitions = match (&container.pod, &app.kubernetes) {
        (Some(pod), Some(k)) => pod_transitions(&container, &k.pods, pod),
        _ => app
            .history
            .transitions(&container.name, TRANSITIONS_SHOWN)?,
    };
    let state = app.desired();
    // A pod's monitors are declared once per workload, by whichever replica
    // came first: every pod of the unit shows them.
    let unit = crate::sources::docker::declaring_unit(&container);
    let rows = app.runtimes.containers();
    let same_unit = |ns: &str, pod: &str| {
        container.pod.as_ref().is_some_and(|p| {
            p.namespace == ns
                && (p.name == pod
                    || rows
                        .values()
                        .find(|c| {
                            c.pod
                                .as_ref()
                                .is_some_and(|o| o.namespace == ns && o.name == pod)
                        })
                        .is_some_and(|c| crate::sources::docker::declaring_unit(c) == unit))
        })
    };
    let monitors = app.observed.with(|obs| {
        state
            .monitors
            .iter()
            .filter_map(|(k, d)| match &d.origin {
                Origin::Kubernetes(o)
                    if same_unit(&o.namespace, &o.name) && o.annotation.is_some() =>
                {
                    Some(ContainerMonitor {
                        id: k.id(),
                        label: o.annotation.clone().unwrap_or_default(),
                        desired: desired_view(
                            d,
                            serde_json::to_value(&*d.spec).unwrap_or_default(),
                        ),
                        observed: observed_view(obs.get(k)),
                    })
                }
                Origin::Docker(o) if o.container == container.name => Some(ContainerMonitor {
                    id: k.id(),
                    label: o.label.clone(),
                    desired: desired_view(d, serde_json::to_value(&*d.spec).unwrap_or_default()),
                    observed: observed_view(obs.get(k)),
                }),
                _ => None,
            })
            .collect()
    });
    let ours = match &container.pod {
        Some(p) => format!("Pod {}/{} annotation ", p.namespace, p.name),
        None => format!("docker container {} label ", container.name),
    };
    let conflicts = state
        .conflicts
        .iter()
        .filter(|c| c.ignored.starts_with(&ours))
        .cloned()
        .collect();
    let label_problems = app
        .label_problems
        .read()
        .expect("label problems lock")
        .get(&unit)
        .cloned()
        .unwrap_or_default();
    Ok(ContainerDetail {
        maintenant_labels: container
            .labels
            .iter()
            .filter(|(k, _)| k.starts_with(crate::sources::labels::PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        usage: app.runtimes.usage().get(&container.id).cloned(),
        transitions,
        monitors,
        label_problems,
        conflicts,
        container,
    })
}

/// A pod's transitions from the pod model (kept in memory, newest first):
/// `event` is the state it moved to (`running`, `not_ready`, `restarted`,
/// `deleted`, ...), with the container reason when there is one.
fn pod_transitions(
    c: &Container,
    pods: &crate::runtime::kubernetes::Pods,
    pod: &crate::runtime::PodRef,
) -> Vec<Transition> {
    pods.transitions(&pod.namespace, &pod.name)
        .into_iter()
        .rev()
        .take(TRANSITIONS_SHOWN)
        .map(|t| Transition {
            at: t.at,
            container: c.name.clone(),
            container_id: c.id.clone(),
            state: Some(if t.to == "restarted" {
                t.from
            } else {
                t.to.clone()
            }),
            event: t.to,
            exit_code: None,
            health: None,
            reason: t.reason,
        })
        .collect()
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ContainerLogs {
    pub container: String,
    pub container_id: String,
    /// Oldest first; each line marked `stdout` or `stderr` (Docker) or
    /// `combined` with its container (Kubernetes).
    pub lines: Vec<LogLine>,
    pub count: usize,
    /// What the lines cannot say (a pod's log does not tell stdout from stderr).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub async fn container_logs(
    app: &App,
    query: &str,
    lines: Option<u32>,
    since: Option<OffsetDateTime>,
    timestamps: bool,
) -> Result<ContainerLogs, ReadError> {
    let c = resolve_container(app, query)?;
    // Without the `pods/log` grant the API would answer 403: say why instead.
    if c.runtime == crate::runtime::kubernetes::RUNTIME && !app.settings.kubernetes_logs {
        return Err(ReadError::BadArgument(format!(
            "logs of pod {} are disabled by configuration (MAINTENANT_KUBERNETES_LOGS=false, \
             the Helm chart's kubernetes.podLogs: false): maintenant does not read pod logs; \
             use get_container for its state and transitions",
            c.name
        )));
    }
    let lines = lines.map_or(DEFAULT_LOG_LINES, |l| (l as usize).clamp(1, MAX_LOG_LINES));
    let q = LogQuery {
        lines,
        since,
        timestamps,
    };
    let result = match c.runtime.as_str() {
        crate::runtime::docker::RUNTIME => match app.runtimes.docker_client() {
            Some(d) => crate::runtime::docker::logs(&d, &c.id, &q).await,
            None => Err(RuntimeError::Disconnected(
                c.runtime.clone(),
                "see get_health for the error; logs are read from the engine".into(),
            )),
        },
        crate::runtime::kubernetes::RUNTIME => match (&app.kubernetes, &c.pod) {
            (Some(k), Some(pod)) => {
                crate::runtime::kubernetes::pod_logs(k.client.clone(), pod, &q).await
            }
            _ => Err(RuntimeError::Disconnected(
                c.runtime.clone(),
                "see get_health for the error".into(),
            )),
        },
        other => Err(RuntimeError::Api {
            runtime: other.to_owned(),
            message: "logs are not supported for this runtime".into(),
        }),
    };
    let note = (c.runtime == crate::runtime::kubernetes::RUNTIME).then(|| {
        "Kubernetes merges a container's stdout and stderr into one log: lines are `combined`, \
         marked with the pod's container they come from"
            .to_owned()
    });
    let lines = result.map_err(|e| ReadError::BadArgument(e.to_string()))?;
    Ok(ContainerLogs {
        container: c.name,
        container_id: c.id,
        count: lines.len(),
        lines,
        note,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConsumerMetric {
    #[default]
    Cpu,
    Memory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema, Default)]
pub enum ConsumerPeriod {
    /// The latest sample of each running container.
    #[default]
    #[serde(rename = "current")]
    Current,
    /// Averages over the last hour (per-minute rollups).
    #[serde(rename = "1h")]
    Hour,
    /// Averages over the last 24 hours.
    #[serde(rename = "24h")]
    Day,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Consumer {
    pub rank: usize,
    pub container: String,
    /// Null for a container that no longer exists (1h/24h).
    pub container_id: Option<String>,
    /// cpu: percent of one CPU (200 = two CPUs); memory: bytes.
    pub value: f64,
    /// Share of the host: cpu over all cores, memory of host memory.
    pub percent: Option<f64>,
    /// Samples behind the value.
    pub samples: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TopConsumers {
    pub metric: ConsumerMetric,
    pub period: ConsumerPeriod,
    /// `percent_of_one_cpu` or `bytes`.
    pub unit: String,
    pub items: Vec<Consumer>,
    /// Containers ranked, before the limit.
    pub total: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// [`top_consumers`], sampling first when the latest sample is asked for
/// and none exists yet (bounded by [`docker::ON_DEMAND_TIMEOUT`]).
///
/// [`docker::ON_DEMAND_TIMEOUT`]: crate::runtime::docker::ON_DEMAND_TIMEOUT
pub async fn top_consumers_now(
    app: &App,
    metric: ConsumerMetric,
    period: ConsumerPeriod,
    limit: Option<u32>,
) -> Result<TopConsumers, ReadError> {
    if period == ConsumerPeriod::Current {
        crate::runtime::docker::sample_on_demand(
            &app.runtimes,
            &app.history,
            crate::runtime::docker::ON_DEMAND_TIMEOUT,
        )
        .await;
    }
    top_consumers(app, metric, period, limit)
}

pub fn top_consumers(
    app: &App,
    metric: ConsumerMetric,
    period: ConsumerPeriod,
    limit: Option<u32>,
) -> Result<TopConsumers, ReadError> {
    let limit = limit.map_or(10, |l| (l as usize).clamp(1, 500));
    let set = app.runtimes.containers();
    let host = app.host.read().expect("host view lock").clone();
    let cores = host.as_ref().map_or(
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        |h| h.cpu.cores.max(1),
    ) as f64;
    let host_mem = host
        .as_ref()
        .map(|h| h.memory.total_bytes)
        .filter(|m| *m > 0);
    // (name, id, cpu, mem, samples)
    let mut rows: Vec<(String, Option<String>, f64, f64, u64)> = match period {
        ConsumerPeriod::Current => app
            .runtimes
            .usage()
            .into_iter()
            .filter_map(|(id, u)| {
                let c = set
                    .get(&id)
                    .filter(|c| c.state == "running" && !c.ignored)?;
                Some((
                    c.name.clone(),
                    Some(id),
                    u.cpu_percent,
                    u.memory_bytes as f64,
                    1,
                ))
            })
            .collect(),
        ConsumerPeriod::Hour | ConsumerPeriod::Day => {
            let back = if period == ConsumerPeriod::Hour {
                time::Duration::hours(1)
            } else {
                time::Duration::hours(24)
            };
            app.history
                .averages(OffsetDateTime::now_utc() - back)?
                .into_iter()
                .map(|(name, a)| {
                    let id = set.values().find(|c| c.name == name).map(|c| c.id.clone());
                    (name, id, a.cpu_percent, a.memory_bytes, a.samples)
                })
                .collect()
        }
    };
    let value = |r: &(String, Option<String>, f64, f64, u64)| match metric {
        ConsumerMetric::Cpu => r.2,
        ConsumerMetric::Memory => r.3,
    };
    rows.sort_by(|a, b| value(b).total_cmp(&value(a)).then(a.0.cmp(&b.0)));
    let total = rows.len();
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    let items = rows
        .iter()
        .take(limit)
        .enumerate()
        .map(|(i, r)| {
            let v = value(r);
            Consumer {
                rank: i + 1,
                container: r.0.clone(),
                container_id: r.1.clone(),
                value: if metric == ConsumerMetric::Cpu {
                    round2(v)
                } else {
                    v.round()
                },
                percent: match metric {
                    ConsumerMetric::Cpu => Some(round2(v / cores)),
                    // Four decimals: a small container is a tiny share of a big host.
                    ConsumerMetric::Memory => {
                        host_mem.map(|m| (v * 1_000_000.0 / m as f64).round() / 10_000.0)
                    }
                },
                samples: r.4,
            }
        })
        .collect();
    let note = (total == 0).then(|| {
        if app.runtimes.statuses().is_empty() {
            "no container runtime is enabled (MAINTENANT_DOCKER)".to_owned()
        } else if period == ConsumerPeriod::Current {
            "no usage sample yet: running containers are sampled every MAINTENANT_DOCKER_STATS_INTERVAL (15s)".to_owned()
        } else {
            "no usage samples in this period yet".to_owned()
        }
    });
    Ok(TopConsumers {
        metric,
        period,
        unit: match metric {
            ConsumerMetric::Cpu => "percent_of_one_cpu",
            ConsumerMetric::Memory => "bytes",
        }
        .into(),
        items,
        total,
        note,
    })
}

pub fn resources(app: &App) -> Result<HostResources, ReadError> {
    app.host
        .read()
        .expect("host view lock")
        .clone()
        .ok_or_else(|| {
            ReadError::NotFound(
                "host resources are not sampled yet (the first sample comes about a second after start); try again".into(),
            )
        })
}

#[derive(Debug, Default, Clone)]
pub struct UpdatesFilter {
    /// A container's name, id or id prefix.
    pub container: Option<String>,
    /// Only rows with a new digest or a newer version tag.
    pub only_available: bool,
}

/// `get_updates`: the last scan's rows, listed like every list.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UpdatesAnswer {
    /// When the results were gathered; absent before the first scan.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none",
        default
    )]
    #[schemars(with = "Option<String>")]
    pub last_scan: Option<OffsetDateTime>,
    /// Seconds between scans (MAINTENANT_UPDATES_INTERVAL).
    pub interval_s: u64,
    #[serde(flatten)]
    pub listing: Listing<UpdateBrief, ImageUpdate>,
    /// What this answer does not cover, and why (e.g. pods, which are not scanned).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notes: Vec<String>,
}

/// Pods are listed by the Kubernetes runtime but the scan compares the
/// digests Docker records for a container's image; a pod's image is not
/// compared with its registry.
const PODS_NOT_SCANNED: &str = "Kubernetes pods are not scanned for image updates: only Docker containers are (the scan compares the image digests the Docker engine records with the registry)";

/// A container in a brief `get_updates`: is there something newer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UpdateBrief {
    pub container: String,
    /// The reference it was started from (`nginx:1.27`).
    pub image: String,
    /// `up_to_date`, `update_available`, `error`, `local` or `disabled`.
    pub status: UpdateStatus,
    /// Newer version tags (the newest per major/minor/patch change).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub newer_tags: Vec<String>,
    /// Why the registry could not be asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn has_update(r: &ImageUpdate) -> bool {
    r.status == UpdateStatus::UpdateAvailable || !r.newer_tags.is_empty()
}

pub fn updates(
    app: &App,
    filter: &UpdatesFilter,
    detail: Detail,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<UpdatesAnswer, ReadError> {
    let all = app.updates.rows()?;
    let last_scan = app.updates.last_scan()?;
    let mut notes = Vec::new();
    if app
        .runtimes
        .statuses()
        .iter()
        .any(|r| r.name == "kubernetes")
    {
        notes.push(PODS_NOT_SCANNED.to_owned());
    }
    // Rows are by name; a container that is gone keeps its row until the
    // next scan, so a name with a row filters even when nothing runs by it.
    // Any other name must be a container the runtime knows: an unknown one
    // is an error with "did you mean", not an empty success.
    let name = match filter.container.as_deref().map(str::trim) {
        Some(q) if !q.is_empty() => {
            let q = q.trim_start_matches('/');
            if all.iter().any(|r| r.container == q) {
                Some(q.to_owned())
            } else {
                let c = resolve_container(app, q)?;
                if c.pod.is_some() {
                    return Err(ReadError::NotFound(format!(
                        "'{}' is a pod: {PODS_NOT_SCANNED}",
                        c.name
                    )));
                }
                if !all.iter().any(|r| r.container == c.name) {
                    notes.push(match last_scan {
                        None => format!(
                            "container '{}' has no result yet: the first scan has not finished",
                            c.name
                        ),
                        Some(at) => format!(
                            "container '{}' was not running at the last scan ({at}); the next scan includes it",
                            c.name
                        ),
                    });
                }
                Some(c.name)
            }
        }
        _ => None,
    };
    let mut rows: Vec<ImageUpdate> = all
        .into_iter()
        .filter(|r| name.as_ref().is_none_or(|n| *n == r.container))
        .filter(|r| !filter.only_available || has_update(r))
        .collect();
    rows.sort_by(|a, b| natural_cmp(&a.container, &b.container));
    let listing = match detail {
        Detail::Full => Listing::full(paginate(rows, limit, cursor)?),
        Detail::Brief => brief(
            rows,
            |r| Facts {
                state: state_name(&r.status).into(),
                attention: has_update(r) || r.status == UpdateStatus::Error,
            },
            |r| UpdateBrief {
                container: r.container.clone(),
                image: r.image.clone(),
                status: r.status,
                newer_tags: r.newer_tags.iter().map(|t| t.tag.clone()).collect(),
                error: r.error.clone(),
            },
            limit,
            cursor,
        )?,
    };
    Ok(UpdatesAnswer {
        last_scan,
        interval_s: app.settings.updates_interval.std().as_secs(),
        listing,
        notes,
    })
}
