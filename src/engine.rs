//! Wiring of the monitoring pipeline, shared by the daemon and by a
//! standalone `--mcp-stdio`: store, sources, desired state, reconciler,
//! retention. Returns the [`App`] handle the read model and HTTP use.

use std::sync::{Arc, RwLock};

use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use crate::checks::CheckContext;
use crate::checks::probe::HttpClients;
use crate::desired::{self, DesiredState, SourceUpdate};
use crate::heartbeat::HeartbeatHub;
use crate::observed::ObservedMap;
use crate::reconcile::{ReconcileStatus, Reconciler, RunningIndex};
use crate::resources::{HostSampler, HostView};
use crate::runtime::Runtimes;
use crate::runtime::docker::DockerRuntime;
use crate::runtime::history::History;
use crate::settings::{DockerEndpoint, Settings};
use crate::sources::docker::{DockerLabelSource, LabelProblems};
use crate::sources::file::FileSource;
use crate::store::{Store, StoreError};
use crate::supervise::Supervisor;

/// How this process serves: the daemon, or a stdio MCP server that found no
/// daemon and runs the pipeline itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Daemon,
    StdioStandalone,
}

/// Everything the read side needs, cheap to share.
pub struct App {
    pub settings: Settings,
    pub role: Role,
    pub store: Store,
    pub desired: watch::Receiver<Arc<DesiredState>>,
    pub observed: ObservedMap,
    pub reconcile: Arc<RwLock<ReconcileStatus>>,
    pub running: RunningIndex,
    /// Live heartbeat states, ping routes and the transition channel.
    pub heartbeats: HeartbeatHub,
    pub started_at: OffsetDateTime,
    /// Container runtimes, their containers and usage.
    pub runtimes: Runtimes,
    /// Container transitions and usage rollups.
    pub history: History,
    /// Bad Docker labels by container name.
    pub label_problems: LabelProblems,
    /// The latest host resources sample.
    pub host: HostView,
    /// Alerts (raised by the engine, read and acknowledged by tools).
    pub alerts: crate::alerts::AlertStore,
    /// The notification channels in force (hot-reloaded with the monitors file).
    pub alerting: watch::Receiver<Arc<crate::config::model::AlertingSpec>>,
    /// The Kubernetes runtime (pods and their logs), when connected. Its pods
    /// are also rows of `runtimes` (runtime `kubernetes`); the container tools
    /// read their transitions and logs here.
    pub kubernetes: Option<KubeRuntime>,
    /// Incidents and maintenance windows (the status page).
    pub status: crate::status::StatusStore,
    /// Image update scan results.
    pub updates: crate::updates::scan::UpdateStore,
    /// Panics of the long-lived tasks (restarted, and shown in get_health).
    pub tasks: Supervisor,
    /// `MAINTENANT_PING_KEY`, validated once at start (every ping asks).
    pub ping_key: Option<crate::pingkey::PingKey>,
}

/// A connected Kubernetes API: the client (for pod logs) and the pod model
/// its watcher keeps.
#[derive(Clone)]
pub struct KubeRuntime {
    pub client: kube::Client,
    pub pods: crate::runtime::kubernetes::Pods,
}

impl App {
    pub fn desired(&self) -> Arc<DesiredState> {
        self.desired.borrow().clone()
    }
}

/// Open the database and start the pipeline on the current runtime.
pub async fn start(settings: Settings, role: Role) -> Result<Arc<App>, StoreError> {
    let store = Store::open(&settings.db)?;
    let tasks = Supervisor::default();
    crate::checks::certificate::set_extra_ca_file(settings.extra_ca_file.clone());
    let observed = ObservedMap::default();
    let alerts = crate::alerts::AlertStore::new(&store)?;
    let (alerting_tx, alerting_rx) =
        watch::channel(Arc::new(crate::config::model::AlertingSpec::default()));
    let (signals_tx, signals_rx) = mpsc::unbounded_channel();
    // A paused monitor raises nothing: the pause tools store pauses in sled.
    let pauses = store.clone();
    let status = crate::status::StatusStore::new(&store)?;
    let engine = crate::alerts::AlertEngine::new(
        alerts.clone(),
        alerting_rx.clone(),
        Arc::new(move |key: &crate::monitor::MonitorKey| pauses.is_paused(key)),
    )
    // A running maintenance window silences the alerts in its scope.
    .with_silence(crate::status::silence::silence_predicate(status.clone()));
    // The receiver outlives a panicking engine, so a restart loses no signal.
    let signals_rx = Arc::new(tokio::sync::Mutex::new(signals_rx));
    tasks.spawn("alert-engine", move || {
        let (engine, rx) = (engine.clone(), signals_rx.clone());
        async move { engine.run_from(&mut *rx.lock().await).await }
    });
    tasks.spawn("memory-trim", || {
        crate::memory::trim_periodically(std::time::Duration::from_secs(30))
    });
    let heartbeats = HeartbeatHub::start_supervised(store.clone(), tasks.clone())?;
    let ctx = CheckContext {
        store: store.clone(),
        // main refused a policy that does not parse before starting; a
        // library caller gets the defaults rather than no restriction.
        clients: HttpClients::with_policy(
            crate::checks::targets::TargetPolicy::from_settings(&settings).unwrap_or_else(|e| {
                tracing::error!(error = %e, "target policy: using the defaults");
                crate::checks::targets::TargetPolicy::default()
            }),
        ),
        observed: observed.clone(),
        signals: crate::alerts::SignalSender::new(signals_tx.clone()),
        heartbeats: heartbeats.clone(),
        tasks: tasks.clone(),
    };

    let (updates_tx, updates_rx) = mpsc::channel(16);
    let (desired_tx, desired_rx) = watch::channel(Arc::new(DesiredState::default()));
    // The desired store and the reconciler own state a fresh start would not
    // have (the sources' last sets, the running checks): not restarted.
    tasks.spawn_once("desired-state", desired::run(updates_rx, desired_tx));

    {
        let (hub, desired, signals) = (heartbeats.clone(), desired_rx.clone(), signals_tx.clone());
        tasks.spawn("heartbeat-alerts", move || {
            crate::alerts::heartbeats::forward(
                hub.subscribe(),
                desired.clone(),
                crate::alerts::SignalSender::new(signals.clone()),
            )
        });
    }

    let reconciler = Reconciler::new(ctx);
    let reconcile = reconciler.status();
    let running = reconciler.index();
    tasks.spawn_once("reconciler", reconciler.run(desired_rx.clone()));

    let runtimes = Runtimes::default();
    {
        let (runtimes, alerts, signals) = (runtimes.clone(), alerts.clone(), signals_tx.clone());
        tasks.spawn("container-alerts", move || {
            crate::alerts::containers::ContainerAlerts {
                runtimes: runtimes.clone(),
                alerts: alerts.clone(),
                signals: crate::alerts::SignalSender::new(signals.clone()),
            }
            .run()
        });
    }
    let history = History::open(&store)?;
    let label_problems = LabelProblems::default();
    let docker = settings.docker_endpoint();
    if docker == DockerEndpoint::Disabled {
        tracing::info!("Docker disabled (MAINTENANT_DOCKER=false, or no /var/run/docker.sock)");
    } else {
        let runtime = DockerRuntime {
            endpoint: docker.clone(),
            runtimes: runtimes.clone(),
            history: history.clone(),
            stats_interval: settings.docker_stats_interval.std(),
        };
        tasks.spawn("docker-runtime", move || runtime.clone().run());
        let source = DockerLabelSource {
            flavor: crate::sources::docker::Flavor::Docker,
            runtimes: runtimes.clone(),
            grace: settings.docker_grace.std(),
            location: docker.display(),
            problems: label_problems.clone(),
        };
        let tx = updates_tx.clone();
        tasks.spawn("docker-labels", move || source.clone().run(tx.clone()));
    }
    let updates = crate::updates::scan::UpdateStore::new(&store)?;
    if docker != DockerEndpoint::Disabled {
        start_update_scans(&settings, runtimes.clone(), updates.clone(), &tasks);
    }
    let host = HostView::default();
    let sampler = HostSampler {
        host_proc: settings.host_proc.clone(),
        view: host.clone(),
    };
    tasks.spawn("host-sampler", move || sampler.clone().run());

    match settings.config_path() {
        Some(path) => {
            let mut source = FileSource::new(path);
            source.settle = settings.config_settle.std();
            source.alerting = Some(alerting_tx);
            let tx = updates_tx.clone();
            tasks.spawn("file-source", move || source.clone().run(tx.clone()));
        }
        None => {
            tracing::warn!("no monitors file: set MAINTENANT_CONFIG or create ./maintenant.yaml")
        }
    }

    let kubernetes = start_kubernetes(
        &settings,
        heartbeats.clone(),
        &runtimes,
        &label_problems,
        Pipeline {
            updates: updates_tx.clone(),
            desired: desired_rx.clone(),
            observed: observed.clone(),
        },
        &tasks,
        &history,
    )
    .await;

    {
        // Its state is the store's health, which outlives it: a fresh start
        // after a panic picks the failure up where it was.
        let (s, exit_after) = (store.clone(), settings.store_exit_after());
        tasks.spawn("store-watchdog", move || {
            crate::store::watchdog::run(s.clone(), exit_after)
        });
    }
    {
        let (s, a, keep) = (store.clone(), alerts.clone(), settings.retention.std());
        tasks.spawn("retention", move || retention(s.clone(), keep));
        tasks.spawn("alert-retention", move || alert_retention(a.clone(), keep));
    }

    // The daemon refuses a bad key before it starts (main.rs); elsewhere a
    // bad one counts as none, as it always did.
    let ping_key = settings.ping_key().ok().flatten();
    Ok(Arc::new(App {
        settings,
        role,
        store,
        desired: desired_rx,
        observed,
        reconcile,
        running,
        heartbeats,
        started_at: OffsetDateTime::now_utc(),
        runtimes,
        history,
        label_problems,
        host,
        alerts,
        alerting: alerting_rx,
        kubernetes,
        status,
        updates,
        tasks,
        ping_key,
    }))
}

/// The pipeline ends a source and a status writer are wired to.
struct Pipeline {
    updates: mpsc::Sender<SourceUpdate>,
    desired: watch::Receiver<Arc<DesiredState>>,
    observed: ObservedMap,
}

/// `Monitor` resources as a source, and the status writer, when a Kubernetes
/// API server is configured (`MAINTENANT_KUBERNETES`). A connection problem
/// is reported as the source's error (`get_health`), not a failed start.
#[allow(clippy::too_many_arguments)] // the wiring's handles; issue 19 regroups them
async fn start_kubernetes(
    settings: &Settings,
    heartbeats: HeartbeatHub,
    runtimes: &Runtimes,
    pod_problems: &LabelProblems,
    pipeline: Pipeline,
    tasks: &Supervisor,
    history: &History,
) -> Option<KubeRuntime> {
    let Pipeline {
        updates,
        desired,
        observed,
    } = pipeline;
    use crate::kubeclient::{self, Namespaces};
    use crate::sources::kubernetes::KubernetesSource;
    use crate::sources::kubernetes_status::StatusWriter;
    let client = match kubeclient::connect(settings).await {
        Ok(Some(c)) => c,
        Ok(None) => return None,
        Err(e) => {
            tracing::error!(error = %e, "Kubernetes is not available");
            runtimes.set_status(crate::runtime::RuntimeStatus {
                name: crate::runtime::kubernetes::RUNTIME.into(),
                endpoint: "Kubernetes API".into(),
                connected: false,
                version: None,
                since: Some(OffsetDateTime::now_utc()),
                last_error: Some(e.to_string()),
                failed_attempts: 1,
                containers: 0,
            });
            let status = desired::SourceStatus {
                kind: desired::SourceKind::Kubernetes,
                location: "kubernetes".into(),
                generation: 0,
                loaded_at: None,
                monitors: 0,
                last_error: Some(desired::SourceError {
                    at: OffsetDateTime::now_utc(),
                    message: e.to_string(),
                    problems: vec![],
                }),
                warning: None,
            };
            let _ = updates
                .send(SourceUpdate {
                    status,
                    monitors: Some(Arc::default()),
                })
                .await;
            return None;
        }
    };
    let namespaces = Namespaces::from_settings(settings);
    tracing::info!(namespaces = %namespaces.describe(), "watching Monitor resources");
    let (resources_tx, resources_rx) = watch::channel(Arc::default());
    let source = KubernetesSource {
        client: client.clone(),
        namespaces: namespaces.clone(),
    };
    let tx = updates.clone();
    tasks.spawn("kubernetes-source", move || {
        source.clone().run(tx.clone(), resources_tx.clone())
    });
    let pods = crate::runtime::kubernetes::Pods::feeding(runtimes.clone()).keeping(history.clone());
    let source = DockerLabelSource {
        flavor: crate::sources::docker::Flavor::Pods,
        runtimes: runtimes.clone(),
        grace: settings.docker_grace.std(),
        location: format!("pod annotations in {}", namespaces.describe()),
        problems: pod_problems.clone(),
    };
    let tx = updates.clone();
    tasks.spawn("pod-annotations", move || source.clone().run(tx.clone()));
    {
        let (c, ns, p) = (client.clone(), namespaces.clone(), pods.clone());
        let workload_interval = settings.kubernetes_workload_interval.std();
        tasks.spawn("kubernetes-pods", move || {
            crate::runtime::kubernetes::watch(c.clone(), ns.clone(), p.clone(), workload_interval)
        });
    }
    let writer = StatusWriter {
        client: client.clone(),
        min_gap: settings.kubernetes_status_interval.std(),
        refresh: std::time::Duration::from_secs(300).max(settings.kubernetes_status_interval.std()),
        heartbeats: Some(heartbeats),
    };
    tasks.spawn("kubernetes-status", move || {
        writer
            .clone()
            .run(resources_rx.clone(), desired.clone(), observed.clone())
    });
    Some(KubeRuntime { client, pods })
}

/// Image update scans of the Docker containers, with the Docker config's
/// registry credentials (a broken config is logged and scans go anonymous).
fn start_update_scans(
    settings: &Settings,
    runtimes: Runtimes,
    store: crate::updates::scan::UpdateStore,
    tasks: &Supervisor,
) {
    use crate::updates::registry::{Credentials, RegistryClient};
    let path = settings.docker_config.clone().unwrap_or_else(|| {
        std::env::var_os("DOCKER_CONFIG")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))
            .unwrap_or_default()
            .join("config.json")
    });
    let creds = Credentials::from_docker_config(&path).unwrap_or_else(|e| {
        tracing::error!(error = %e, "Docker config unreadable: image update scans are anonymous");
        Credentials::default()
    });
    let client = RegistryClient::new(creds, settings.insecure_registries.clone())
        .allow_cross_host_realms(settings.registry_allow_cross_host_realm.clone());
    let scanner = crate::updates::scan::Scanner::new(
        runtimes,
        client,
        store,
        settings
            .updates_interval
            .std()
            .max(std::time::Duration::from_secs(1)),
    );
    tasks.spawn("update-scans", move || scanner.clone().run());
}

/// Prune old results every ten minutes.
async fn retention(store: Store, keep: std::time::Duration) {
    let keep = time::Duration::try_from(keep).unwrap_or(time::Duration::days(7));
    // Rollups answer uptime_24h and uptime_7d and nothing older; a day more
    // so the oldest hour of the week is still whole.
    let keep_rollups = time::Duration::days(8);
    const EVERY: u64 = 600;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(EVERY));
    for pass in 0u64.. {
        tick.tick().await;
        let now = OffsetDateTime::now_utc();
        let s = store.clone();
        // The scan for stale current hours reads every monitor's entry: once
        // a day, the first an hour after start-up, away from the start-up's
        // own allocations.
        let stale_hours = pass % (86_400 / EVERY) == 3_600 / EVERY;
        let pruned = tokio::task::spawn_blocking(move || {
            let mut n = s.prune(now - keep, now - keep_rollups)?;
            if stale_hours {
                n += s.prune_stale_hours(now - keep_rollups)?;
            }
            Ok::<_, crate::store::StoreError>(n)
        })
        .await;
        match pruned {
            Ok(Ok(n)) if n > 0 => {
                tracing::info!(removed = n, "retention: pruned old check results")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "retention failed"),
            _ => {}
        }
    }
}

/// Resolved alerts are history worth keeping longer than check results:
/// they go after 5x the retention (at least 30 days), checked hourly.
async fn alert_retention(alerts: crate::alerts::AlertStore, keep: std::time::Duration) {
    let keep = time::Duration::try_from(keep)
        .ok()
        .and_then(|k| k.checked_mul(5))
        .unwrap_or(time::Duration::days(35))
        .max(time::Duration::days(30));
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let cutoff = OffsetDateTime::now_utc() - keep;
        let a = alerts.clone();
        match tokio::task::spawn_blocking(move || a.prune_resolved(cutoff)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(removed = n, "retention: pruned resolved alerts"),
            Ok(Err(e)) => tracing::warn!(error = %e, "alert retention failed"),
            _ => {}
        }
    }
}
