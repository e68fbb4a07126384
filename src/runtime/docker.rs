//! The Docker runtime (bollard): containers, transitions from the event
//! stream, logs, and CPU/memory samples.
//!
//! One session = connect, subscribe to events, then list (so nothing that
//! happens between the list and the subscription is missed), then apply
//! events until the stream ends. A full re-list every [`RESYNC`] heals a
//! missed event. When the engine goes away the session ends, the runtime is
//! reported disconnected with the error (containers keep their last known
//! state, marked `stale` with the time it was lost, so they stay listed and
//! their label monitors are not dropped while the engine restarts; only a
//! 404 from the engine removes a container outside a full list), and
//! we reconnect with a backoff from 1s doubling to 30s.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerInspectResponse, ContainerStatsResponse, EventMessage};
use bollard::query_parameters::{
    EventsOptions, InspectContainerOptions, ListContainersOptions, LogsOptions, StatsOptions,
};
use futures::StreamExt;
use time::OffsetDateTime;

use super::history::{History, USAGE_KEEP};
use super::{
    Compose, Container, LogLine, LogQuery, RuntimeError, RuntimeStatus, Runtimes, Transition, Usage,
};
use crate::settings::DockerEndpoint;

pub const RUNTIME: &str = "docker";
const RESYNC: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Per-request timeout (bollard's default is 2 minutes; a sidecar should notice sooner).
const REQUEST_TIMEOUT_SECS: u64 = 20;
/// Events that change what a container is; each is recorded as a transition.
/// (`rename`: compose v2 creates a recreated container under a temporary
/// name and renames it.)
const RECORDED: [&str; 10] = [
    "rename",
    "create",
    "start",
    "restart",
    "die",
    "oom",
    "pause",
    "unpause",
    "health_status",
    "destroy",
];

#[derive(Clone)]
pub struct DockerRuntime {
    pub endpoint: DockerEndpoint,
    pub runtimes: Runtimes,
    pub history: History,
    pub stats_interval: Duration,
}

fn connect(endpoint: &DockerEndpoint) -> Result<Docker, String> {
    let v = bollard::API_DEFAULT_VERSION;
    match endpoint {
        DockerEndpoint::Unix(p) => {
            Docker::connect_with_unix(&p.to_string_lossy(), REQUEST_TIMEOUT_SECS, v)
                .map_err(|e| e.to_string())
        }
        DockerEndpoint::Http(a) => {
            Docker::connect_with_http(a, REQUEST_TIMEOUT_SECS, v).map_err(|e| e.to_string())
        }
        DockerEndpoint::Disabled => Err("Docker is disabled (MAINTENANT_DOCKER=false)".into()),
    }
}

impl DockerRuntime {
    /// Run until the process ends: sessions with reconnects, and the sampler.
    pub async fn run(self) {
        let now = OffsetDateTime::now_utc();
        self.runtimes.set_status(RuntimeStatus {
            name: RUNTIME.into(),
            endpoint: self.endpoint.display(),
            connected: false,
            version: None,
            since: Some(now),
            last_error: None,
            failed_attempts: 0,
            containers: 0,
        });
        tokio::spawn(sample_loop(
            self.runtimes.clone(),
            self.history.clone(),
            self.stats_interval,
        ));
        let mut backoff = Duration::from_secs(1);
        loop {
            let began = std::time::Instant::now();
            let error = match self.session().await {
                Ok(()) => "the event stream ended".to_owned(),
                Err(e) => e,
            };
            *self.runtimes.docker.write().expect("docker lock") = None;
            // The containers stay as last seen, marked not current, until the
            // next session's list replaces them.
            self.runtimes.mark_stale(RUNTIME, OffsetDateTime::now_utc());
            let was_connected = self
                .runtimes
                .statuses()
                .iter()
                .any(|s| s.name == RUNTIME && s.connected);
            self.runtimes.update_status(RUNTIME, |s| {
                if s.connected {
                    s.since = Some(OffsetDateTime::now_utc());
                }
                s.connected = false;
                s.last_error = Some(error.clone());
                s.failed_attempts += 1;
            });
            if was_connected {
                tracing::warn!(endpoint = %self.endpoint.display(), %error, "lost the Docker engine; reconnecting");
            } else {
                tracing::debug!(endpoint = %self.endpoint.display(), %error, "Docker engine not reachable");
            }
            // A session that lasted a while was a working connection: start over.
            if began.elapsed() > Duration::from_secs(60) {
                backoff = Duration::from_secs(1);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn session(&self) -> Result<(), String> {
        let docker = connect(&self.endpoint)?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| format!("cannot reach the Docker engine: {e}"))?;
        let version = docker
            .version()
            .await
            .map_err(|e| format!("cannot reach the Docker engine: {e}"))?;
        let mut filters = HashMap::new();
        filters.insert("type".to_owned(), vec!["container".to_owned()]);
        // The stream's request goes out when it is first polled, after the
        // resync: an event during the resync (a health check failing while
        // 100 containers are inspected) would be lost, and nothing lists
        // again until a reconnect. `since` (now, to the nanosecond: nothing
        // an earlier session already recorded) replays what the resync missed.
        let now = OffsetDateTime::now_utc();
        let since = format!("{}.{:09}", now.unix_timestamp(), now.nanosecond());
        let mut events = Box::pin(docker.events(Some(EventsOptions {
            filters: Some(filters),
            since: Some(since),
            ..Default::default()
        })));
        self.resync(&docker).await?;
        *self.runtimes.docker.write().expect("docker lock") = Some(docker.clone());
        let now = OffsetDateTime::now_utc();
        self.runtimes.update_status(RUNTIME, |s| {
            s.connected = true;
            s.since = Some(now);
            s.version = version.version.clone();
            s.last_error = None;
            s.failed_attempts = 0;
        });
        tracing::info!(endpoint = %self.endpoint.display(), version = ?version.version, "connected to the Docker engine");

        let mut tick = tokio::time::interval(RESYNC);
        tick.tick().await;
        loop {
            tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(ev)) => self.on_event(&docker, ev).await,
                    Some(Err(e)) => return Err(format!("Docker event stream failed: {e}")),
                    None => return Err("the Docker engine closed the event stream".into()),
                },
                _ = tick.tick() => self.resync(&docker).await?,
            }
        }
    }

    /// List every container (running or not) and replace the known set.
    async fn resync(&self, docker: &Docker) -> Result<(), String> {
        let list = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                ..Default::default()
            }))
            .await
            .map_err(|e| format!("cannot list containers: {e}"))?;
        let known = self.runtimes.containers();
        let mut out = Vec::with_capacity(list.len());
        for summary in list {
            let Some(id) = summary.id else { continue };
            match docker
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
            {
                Ok(i) => out.extend(container_from_inspect(i)),
                // Removed between the list and the inspect.
                Err(e) if is_not_found(&e) => {
                    tracing::debug!(%id, "container removed during resync");
                }
                // Listed, so it exists: keep what we knew of it (an engine
                // shutting down fails inspects before it stops listing).
                Err(e) => {
                    tracing::debug!(%id, error = %e, "inspect failed during resync; keeping the last known row");
                    out.extend(known.get(&id).cloned());
                }
            }
        }
        self.runtimes.replace(RUNTIME, out);
        Ok(())
    }

    async fn on_event(&self, docker: &Docker, ev: EventMessage) {
        let action = ev.action.clone().unwrap_or_default();
        // `health_status: healthy`, `exec_start: sh`: the event is the part before `:`.
        let (event, detail) = match action.split_once(':') {
            Some((a, d)) => (a.trim().to_owned(), Some(d.trim().to_owned())),
            None => (action.trim().to_owned(), None),
        };
        if !RECORDED.contains(&event.as_str()) {
            return;
        }
        let Some(actor) = ev.actor else { return };
        let Some(id) = actor.id else { return };
        let attrs = actor.attributes.unwrap_or_default();
        let at = ev
            .time_nano
            .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).ok())
            .unwrap_or_else(OffsetDateTime::now_utc);
        let name = attrs.get("name").cloned().unwrap_or_else(|| id.clone());

        let current = if event == "destroy" {
            self.runtimes.remove(RUNTIME, &id);
            None
        } else {
            match docker
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
            {
                Ok(i) => container_from_inspect(i).inspect(|c| self.runtimes.upsert(c.clone())),
                Err(e) if is_not_found(&e) => {
                    self.runtimes.remove(RUNTIME, &id);
                    None
                }
                // Not an answer about the container: the engine is failing
                // (it stops containers, then its API, when it shuts down).
                // The row stays as last known; the session's end marks it
                // stale and the next list corrects it.
                Err(e) => {
                    tracing::debug!(%id, error = %e, "inspect failed after an event; keeping the last known row");
                    None
                }
            }
        };
        let transition = Transition {
            at,
            container: name,
            container_id: id,
            state: current.as_ref().map(|c| c.state.clone()),
            exit_code: attrs.get("exitCode").and_then(|c| c.parse().ok()),
            health: if event == "health_status" {
                detail
            } else {
                None
            },
            reason: None,
            event,
        };
        tracing::debug!(container = %transition.container, event = %transition.event, "container transition");
        if let Err(e) = self.history.record(&transition) {
            tracing::warn!(error = %e, "cannot store a container transition");
        }
    }
}

/// The engine answered that the container does not exist (404).
fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// A container row from `docker inspect`. Docker reports "never started" as
/// year 1; that becomes null.
pub fn container_from_inspect(i: ContainerInspectResponse) -> Option<Container> {
    let id = i.id?;
    let name = i
        .name
        .as_deref()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_owned();
    let config = i.config.unwrap_or_default();
    let labels: BTreeMap<String, String> = config.labels.unwrap_or_default().into_iter().collect();
    let state = i.state.unwrap_or_default();
    let started_at = state
        .started_at
        .as_deref()
        .and_then(parse_time)
        .filter(|t| t.year() > 1)
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    // Docker reports "never finished" as year 1 too.
    let finished_at = state
        .finished_at
        .as_deref()
        .and_then(parse_time)
        .filter(|t| t.year() > 1)
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    let status = state.status.map(|s| s.to_string()).unwrap_or_default();
    let running = state.running.unwrap_or(false);
    let health = state
        .health
        .and_then(|h| h.status)
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty() && s != "none");
    let compose = labels.get("com.docker.compose.project").map(|p| Compose {
        project: p.clone(),
        service: labels.get("com.docker.compose.service").cloned(),
    });
    let group = labels
        .get("maintenant.group")
        .cloned()
        .or_else(|| compose.as_ref().map(|c| c.project.clone()));
    let ignored = labels
        .get("maintenant.ignore")
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    Some(Container {
        id,
        name,
        image: config.image.or(i.image).unwrap_or_default(),
        state: status,
        health,
        runtime: RUNTIME.into(),
        group,
        restarts: i.restart_count.unwrap_or(0).max(0) as u64,
        started_at,
        // Only a run that finished has an exit code (a created container reports 0).
        exit_code: state
            .exit_code
            .filter(|_| !running)
            .filter(|_| finished_at.is_some()),
        oom_killed: state.oom_killed.unwrap_or(false),
        finished_at,
        compose,
        pod: None,
        ignored,
        stale: false,
        as_of: None,
        labels,
    })
}

/// CPU percent of one CPU and memory without page cache, from one stats answer.
pub fn usage_from_stats(s: &ContainerStatsResponse) -> Option<(f64, u64, Option<u64>)> {
    let cpu = s.cpu_stats.as_ref()?;
    let pre = s.precpu_stats.as_ref();
    let total = cpu.cpu_usage.as_ref()?.total_usage?;
    let pre_total = pre
        .and_then(|p| p.cpu_usage.as_ref())
        .and_then(|u| u.total_usage)
        .unwrap_or(0);
    let system = cpu.system_cpu_usage.unwrap_or(0);
    let pre_system = pre.and_then(|p| p.system_cpu_usage).unwrap_or(0);
    let cpus = cpu
        .online_cpus
        .map(u64::from)
        .or_else(|| {
            cpu.cpu_usage
                .as_ref()
                .and_then(|u| u.percpu_usage.as_ref())
                .map(|v| v.len() as u64)
        })
        .unwrap_or(1)
        .max(1);
    let cpu_delta = total.saturating_sub(pre_total) as f64;
    let system_delta = system.saturating_sub(pre_system) as f64;
    let cpu_percent = if system_delta > 0.0 && pre_system > 0 {
        cpu_delta / system_delta * cpus as f64 * 100.0
    } else {
        0.0
    };
    let mem = s.memory_stats.as_ref()?;
    let usage = mem.usage?;
    // `docker stats` subtracts the page cache: inactive_file (cgroup v2) or
    // total_inactive_file (v1).
    let cache = mem
        .stats
        .as_ref()
        .and_then(|st| {
            st.get("inactive_file")
                .or_else(|| st.get("total_inactive_file"))
                .copied()
        })
        .unwrap_or(0);
    Some((
        (cpu_percent * 100.0).round() / 100.0,
        usage.saturating_sub(cache),
        mem.limit,
    ))
}

/// Sample every running container's CPU and memory, forever: the first
/// time as soon as the engine is connected (not one interval after start, so
/// `get_top_consumers` has an answer at once), then every `every`.
async fn sample_loop(runtimes: Runtimes, history: History, every: Duration) {
    let every = every.max(Duration::from_secs(1));
    let mut last_prune = std::time::Instant::now();
    loop {
        if runtimes.docker_client().is_none() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        {
            let _one = runtimes.sampling().lock().await;
            sample(&runtimes, Some(&history)).await;
        }
        if last_prune.elapsed() > Duration::from_secs(600) {
            last_prune = std::time::Instant::now();
            let _ = history.prune_usage(OffsetDateTime::now_utc() - USAGE_KEEP);
        }
        tokio::time::sleep(every).await;
    }
}

/// How long [`sample_on_demand`] may take: a stats answer waits about a
/// second for its second CPU reading.
pub const ON_DEMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Take a sample now when there is none for any running container (right
/// after start, before the engine answered the first one). One sampling at
/// a time: a caller waits for the one in flight and uses its result. Bounded
/// by `timeout`; what was not sampled by then is simply absent. The sample
/// goes into the rollups too, so a `current` answer implies a `1h` one.
pub async fn sample_on_demand(runtimes: &Runtimes, history: &History, timeout: Duration) {
    let has_sample = |r: &Runtimes| {
        let usage = r.usage();
        r.containers()
            .values()
            .any(|c| c.runtime == RUNTIME && c.state == "running" && usage.contains_key(&c.id))
    };
    if has_sample(runtimes) || runtimes.docker_client().is_none() {
        return;
    }
    let _ = tokio::time::timeout(timeout, async {
        let _one = runtimes.sampling().lock().await;
        if !has_sample(runtimes) {
            sample(runtimes, Some(history)).await;
        }
    })
    .await;
}

/// One sample of every running Docker container, into the registry and,
/// when `history` is given, the rollups.
async fn sample(runtimes: &Runtimes, history: Option<&History>) {
    let Some(docker) = runtimes.docker_client() else {
        return;
    };
    let running: Vec<(String, String)> = runtimes
        .containers()
        .values()
        .filter(|c| c.runtime == RUNTIME && c.state == "running")
        .map(|c| (c.id.clone(), c.name.clone()))
        .collect();
    // Each non-one-shot stats call waits about a second for a second CPU
    // reading; run a few at once.
    let samples: Vec<_> = futures::stream::iter(running)
        .map(|(id, name)| {
            let docker = docker.clone();
            async move {
                let mut s = Box::pin(docker.stats(
                    &id,
                    Some(StatsOptions {
                        stream: false,
                        one_shot: false,
                    }),
                ));
                let r = s.next().await;
                (id, name, r)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let now = OffsetDateTime::now_utc();
    for (id, name, r) in samples {
        let Some(Ok(stats)) = r else { continue };
        let Some((cpu, mem, limit)) = usage_from_stats(&stats) else {
            continue;
        };
        runtimes.set_usage(
            &id,
            Usage {
                at: now,
                cpu_percent: cpu,
                memory_bytes: mem,
                memory_limit_bytes: limit,
            },
        );
        if let Some(history) = history
            && let Err(e) = history.add_usage(&name, now, cpu, mem)
        {
            tracing::warn!(error = %e, "cannot store a usage sample");
        }
    }
}

/// Log lines of a container, oldest first, stdout and stderr marked.
pub async fn logs(docker: &Docker, id: &str, q: &LogQuery) -> Result<Vec<LogLine>, RuntimeError> {
    let opts = LogsOptions {
        follow: false,
        stdout: true,
        stderr: true,
        since: q.since.map_or(0, |t| {
            t.unix_timestamp().clamp(0, i64::from(i32::MAX)) as i32
        }),
        until: 0,
        // Always ask for timestamps: they are split off and shown only when asked for.
        timestamps: true,
        tail: q.lines.to_string(),
    };
    let mut stream = Box::pin(docker.logs(id, Some(opts)));
    let mut lines = Vec::new();
    while let Some(item) = stream.next().await {
        let item = item.map_err(|e| RuntimeError::Api {
            runtime: RUNTIME.into(),
            message: e.to_string(),
        })?;
        let stream_name = match &item {
            LogOutput::StdOut { .. } => "stdout",
            LogOutput::StdErr { .. } => "stderr",
            LogOutput::StdIn { .. } => "stdin",
            LogOutput::Console { .. } => "console",
        };
        let text = String::from_utf8_lossy(item.as_ref()).into_owned();
        for raw in text.split_terminator('\n') {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let (time, text) = match raw.split_once(' ') {
                Some((t, rest)) if parse_time(t).is_some() => (Some(t.to_owned()), rest),
                _ => (None, raw),
            };
            // Docker's `since` has one-second precision: refine it here.
            if let (Some(since), Some(at)) = (q.since, time.as_deref().and_then(parse_time))
                && at < since
            {
                continue;
            }
            lines.push(LogLine {
                stream: stream_name.into(),
                container: None,
                time: if q.timestamps { time } else { None },
                text: text.to_owned(),
            });
        }
    }
    // Docker's tail counts per request; a TTY frame can hold several lines.
    if lines.len() > q.lines {
        lines.drain(..lines.len() - q.lines);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats};

    fn cpu(total: u64, system: u64) -> ContainerCpuStats {
        ContainerCpuStats {
            cpu_usage: Some(ContainerCpuUsage {
                total_usage: Some(total),
                ..Default::default()
            }),
            system_cpu_usage: Some(system),
            online_cpus: Some(4),
            ..Default::default()
        }
    }

    #[test]
    fn cpu_percent_is_of_one_cpu_and_memory_excludes_page_cache() {
        let s = ContainerStatsResponse {
            // 1e9 ns of container CPU while the 4-CPU system spent 4e9: one CPU busy.
            precpu_stats: Some(cpu(1_000_000_000, 10_000_000_000)),
            cpu_stats: Some(cpu(2_000_000_000, 14_000_000_000)),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(10_000),
                limit: Some(1_000_000),
                stats: Some([("inactive_file".to_owned(), 4_000u64)].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(usage_from_stats(&s), Some((100.0, 6_000, Some(1_000_000))));
    }
}
