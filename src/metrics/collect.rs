//! What a scrape reports, read from the read side (desired state, observed
//! map, heartbeat hub, certificate results, runtimes, alerts, reconciler,
//! store, `/proc/self`) and written family by family.
//!
//! Each shared map is read once, under its own lock, into a flat snapshot
//! of the monitors (labels borrowed from the desired state, no per-monitor
//! allocation); the families are written from the snapshot with no lock
//! held, so a slow scraper never holds up a check.
//!
//! Label values are names people declared (monitor, group, container): no
//! URL, no error text, no response body reaches a label.

use crate::checks::certificate::{self, CertStatus};
use crate::desired::{DesiredState, SourceKind};
use crate::engine::App;
use crate::heartbeat::HeartbeatStatus;
use crate::metrics::exposition::{Kind, Sink, Writer};
use crate::metrics::histogram::{CheckStats, LE};
use crate::monitor::{MonitorKey, MonitorKind, Origin};
use crate::readmodel::ReadError;
use crate::store::Status;

/// Status values of endpoints and certificates (an enum-style gauge: one
/// series per value, 1 for the current one).
const CHECK_STATUSES: [Status; 4] = [Status::Pending, Status::Up, Status::Down, Status::Paused];
const HEARTBEAT_STATUSES: [HeartbeatStatus; 6] = [
    HeartbeatStatus::New,
    HeartbeatStatus::Up,
    HeartbeatStatus::Started,
    HeartbeatStatus::Late,
    HeartbeatStatus::Down,
    HeartbeatStatus::Paused,
];
const CERT_STATUSES: [CertStatus; 7] = [
    CertStatus::Pending,
    CertStatus::Valid,
    CertStatus::Expiring,
    CertStatus::Expired,
    CertStatus::Invalid,
    CertStatus::Error,
    CertStatus::Paused,
];
/// Docker's container states; a runtime's other state (a pod phase) is
/// written as one more series.
const CONTAINER_STATES: [&str; 7] = [
    "created",
    "running",
    "paused",
    "restarting",
    "removing",
    "exited",
    "dead",
];
const HEALTH_STATES: [&str; 3] = ["healthy", "unhealthy", "starting"];

#[derive(Debug, Clone, Copy, PartialEq)]
enum MonitorStatus {
    Check(Status),
    Heartbeat(HeartbeatStatus),
}

impl MonitorStatus {
    fn up(self) -> bool {
        match self {
            MonitorStatus::Check(s) => s == Status::Up,
            // Late is inside the grace period: not down yet.
            MonitorStatus::Heartbeat(h) => matches!(
                h,
                HeartbeatStatus::Up | HeartbeatStatus::Started | HeartbeatStatus::Late
            ),
        }
    }
}

/// One monitor, as a scrape sees it.
struct Row<'a> {
    key: &'a MonitorKey,
    group: &'a str,
    origin: &'static str,
    status: MonitorStatus,
    last_check: Option<f64>,
    consecutive_failures: u32,
    checks: CheckStats,
    last_ping: Option<f64>,
    pings_total: u64,
    cert: Option<CertRow>,
}

struct CertRow {
    status: CertStatus,
    not_after: Option<f64>,
    days_left: Option<i64>,
}

impl<'a> Row<'a> {
    fn labels(&self) -> [(&'a str, &'a str); 4] {
        [
            ("monitor", &self.key.name),
            ("kind", self.key.kind.as_str()),
            ("group", self.group),
            ("origin", self.origin),
        ]
    }

    fn is_checked(&self) -> bool {
        self.key.kind != MonitorKind::Heartbeat
    }
}

/// The kind of source, not where it is: a path or a container name would
/// make one series per file or container.
fn origin_kind(o: &Origin) -> &'static str {
    match o {
        Origin::File { .. } => "file",
        Origin::Docker(_) => "docker",
        Origin::Kubernetes(_) => "kubernetes",
    }
}

fn unix_seconds(t: time::OffsetDateTime) -> f64 {
    t.unix_timestamp_nanos() as f64 / 1e9
}

fn rows<'a>(app: &App, state: &'a DesiredState) -> Result<Vec<Row<'a>>, ReadError> {
    let mut rows: Vec<Row<'a>> = state
        .monitors
        .iter()
        .map(|(key, d)| Row {
            key,
            group: d.spec.group().unwrap_or(""),
            origin: origin_kind(&d.origin),
            status: match key.kind {
                MonitorKind::Heartbeat => MonitorStatus::Heartbeat(HeartbeatStatus::New),
                _ => MonitorStatus::Check(Status::Pending),
            },
            last_check: None,
            consecutive_failures: 0,
            checks: CheckStats::default(),
            last_ping: None,
            pings_total: 0,
            cert: None,
        })
        .collect();
    app.observed.with(|obs| {
        for r in rows.iter_mut().filter(|r| r.is_checked()) {
            if let Some(o) = obs.get(r.key) {
                r.status = MonitorStatus::Check(o.state.status);
                r.last_check = o.state.last_check.as_ref().map(|c| unix_seconds(c.at));
                r.consecutive_failures = o.state.consecutive_failures;
                r.checks = o.checks;
            }
        }
    });
    app.heartbeats.with_states(|states| {
        for r in rows.iter_mut().filter(|r| !r.is_checked()) {
            if let Some(s) = states.get(r.key) {
                r.status = MonitorStatus::Heartbeat(s.status);
                r.last_ping = s.last_ping.as_ref().map(|p| unix_seconds(p.at));
                r.pings_total = s.pings_total;
            }
        }
    });
    // Pauses of endpoints and certificates live in the store (heartbeats
    // carry theirs in their status). Most deployments pause nothing.
    let pauses = app.store.pauses()?;
    if !pauses.is_empty() {
        let mut id = String::new();
        for r in rows.iter_mut().filter(|r| r.is_checked()) {
            id.clear();
            use std::fmt::Write as _;
            let _ = write!(id, "{}", r.key);
            if pauses.contains_key(&id) {
                r.status = MonitorStatus::Check(Status::Paused);
            }
        }
    }
    for r in rows
        .iter_mut()
        .filter(|r| r.key.kind == MonitorKind::Certificate)
    {
        let last = certificate::load(&app.store, r.key)?;
        r.cert = Some(CertRow {
            status: last.as_ref().map_or(CertStatus::Pending, |c| c.status),
            not_after: last.as_ref().and_then(|c| c.not_after).map(unix_seconds),
            days_left: last.as_ref().and_then(|c| c.days_left),
        });
    }
    Ok(rows)
}

/// Write every family. Returns early (Ok) when the reader hung up.
pub fn write_all<S: Sink>(app: &App, w: &mut Writer<S>) -> Result<(), ReadError> {
    let state = app.desired();
    let rows = rows(app, &state)?;
    write_monitors(w, &rows);
    if w.is_closed() {
        return Ok(());
    }
    write_certificates(w, &rows);
    write_heartbeats(w, &rows);
    drop(rows);
    write_containers(app, w);
    write_alerts(app, w)?;
    write_pipeline(app, &state, w);
    write_store(app, w);
    write_process(w);
    Ok(())
}

fn write_monitors<S: Sink>(w: &mut Writer<S>, rows: &[Row<'_>]) {
    const UP: &str = "maintenant_monitor_up";
    w.family(
        UP,
        Kind::Gauge,
        "1 when the monitor is up (a heartbeat: up, started or late), else 0.",
    );
    for r in rows {
        w.sample(UP, &r.labels(), &[], r.status.up());
    }

    const STATUS: &str = "maintenant_monitor_status";
    w.family(
        STATUS,
        Kind::Gauge,
        "The monitor's status: 1 for the current value of status, 0 for the others.",
    );
    for r in rows {
        let labels = r.labels();
        match r.status {
            MonitorStatus::Check(now) => {
                for s in CHECK_STATUSES {
                    w.sample(STATUS, &labels, &[("status", s.as_str())], s == now);
                }
            }
            MonitorStatus::Heartbeat(now) => {
                for s in HEARTBEAT_STATUSES {
                    w.sample(STATUS, &labels, &[("status", s.as_str())], s == now);
                }
            }
        }
    }

    const LAST: &str = "maintenant_monitor_last_check_timestamp_seconds";
    w.family(
        LAST,
        Kind::Gauge,
        "When the last check of an endpoint or certificate finished (unix seconds).",
    );
    for r in rows {
        if let Some(t) = r.last_check {
            w.sample(LAST, &r.labels(), &[], t);
        }
    }

    const FAILS: &str = "maintenant_monitor_consecutive_failures";
    w.family(
        FAILS,
        Kind::Gauge,
        "Failed checks in a row of an endpoint or certificate (0 after a success).",
    );
    for r in rows.iter().filter(|r| r.is_checked()) {
        w.sample(FAILS, &r.labels(), &[], r.consecutive_failures);
    }

    const CHECKS: &str = "maintenant_monitor_checks_total";
    w.family(
        CHECKS,
        Kind::Counter,
        "Checks of an endpoint or certificate since the process started, by result.",
    );
    for r in rows.iter().filter(|r| r.is_checked()) {
        let labels = r.labels();
        w.sample(CHECKS, &labels, &[("result", "up")], r.checks.up);
        w.sample(CHECKS, &labels, &[("result", "down")], r.checks.down);
    }

    const DURATION: &str = "maintenant_monitor_check_duration_seconds";
    w.family(
        DURATION,
        Kind::Histogram,
        "How long checks of an endpoint or certificate took, since the process started.",
    );
    for r in rows.iter().filter(|r| r.is_checked()) {
        w.histogram(
            DURATION,
            &r.labels(),
            &LE,
            &r.checks.buckets(),
            r.checks.sum_seconds(),
            r.checks.count(),
        );
    }
}

fn write_certificates<S: Sink>(w: &mut Writer<S>, rows: &[Row<'_>]) {
    let certs = || rows.iter().filter_map(|r| Some((r, r.cert.as_ref()?)));

    const EXPIRY: &str = "maintenant_certificate_expiry_timestamp_seconds";
    w.family(
        EXPIRY,
        Kind::Gauge,
        "When the certificate's leaf expires (notAfter, unix seconds).",
    );
    for (r, c) in certs() {
        if let Some(t) = c.not_after {
            w.sample(EXPIRY, &r.labels(), &[], t);
        }
    }

    const DAYS: &str = "maintenant_certificate_days_left";
    w.family(
        DAYS,
        Kind::Gauge,
        "Whole days until the certificate expires (negative once expired).",
    );
    for (r, c) in certs() {
        if let Some(d) = c.days_left {
            w.sample(DAYS, &r.labels(), &[], d);
        }
    }

    const STATUS: &str = "maintenant_certificate_status";
    w.family(
        STATUS,
        Kind::Gauge,
        "The certificate's last verdict: 1 for the current value of status.",
    );
    for (r, c) in certs() {
        let labels = r.labels();
        for s in CERT_STATUSES {
            w.sample(STATUS, &labels, &[("status", s.as_str())], s == c.status);
        }
    }
}

fn write_heartbeats<S: Sink>(w: &mut Writer<S>, rows: &[Row<'_>]) {
    let heartbeats = || rows.iter().filter(|r| !r.is_checked());

    const LAST: &str = "maintenant_heartbeat_last_ping_timestamp_seconds";
    w.family(
        LAST,
        Kind::Gauge,
        "When the heartbeat's last ping arrived (unix seconds).",
    );
    for r in heartbeats() {
        if let Some(t) = r.last_ping {
            w.sample(LAST, &r.labels(), &[], t);
        }
    }

    const PINGS: &str = "maintenant_heartbeat_pings_total";
    w.family(
        PINGS,
        Kind::Counter,
        "Pings the heartbeat received since it was first declared (kept across restarts).",
    );
    for r in heartbeats() {
        w.sample(PINGS, &r.labels(), &[], r.pings_total);
    }
}

fn write_containers<S: Sink>(app: &App, w: &mut Writer<S>) {
    let set = app.runtimes.containers();
    let mut list: Vec<_> = set.values().filter(|c| !c.ignored).collect();
    // One series per (runtime, name): a name seen twice (an old and a new
    // container in a recreate) is reported once.
    list.sort_by(|a, b| (&a.runtime, &a.name).cmp(&(&b.runtime, &b.name)));
    list.dedup_by(|a, b| a.runtime == b.runtime && a.name == b.name);
    fn labels(c: &crate::runtime::Container) -> [(&'static str, &str); 3] {
        [
            ("container", c.name.as_str()),
            ("runtime", c.runtime.as_str()),
            ("group", c.group.as_deref().unwrap_or("")),
        ]
    }

    const STATE: &str = "maintenant_container_state";
    w.family(
        STATE,
        Kind::Gauge,
        "The container's state: 1 for the current value of state.",
    );
    for c in &list {
        let l = labels(c);
        for s in CONTAINER_STATES {
            w.sample(STATE, &l, &[("state", s)], c.state == s);
        }
        if !CONTAINER_STATES.contains(&c.state.as_str()) && !c.state.is_empty() {
            let s: &str = &c.state[..c.state.floor_char_boundary(32)];
            w.sample(STATE, &l, &[("state", s)], 1u64);
        }
    }

    const RESTARTS: &str = "maintenant_container_restarts_total";
    w.family(
        RESTARTS,
        Kind::Counter,
        "Restarts of the container, as its runtime counts them.",
    );
    for c in &list {
        w.sample(RESTARTS, &labels(c), &[], c.restarts);
    }

    const HEALTH: &str = "maintenant_container_health";
    w.family(
        HEALTH,
        Kind::Gauge,
        "The health check's verdict of a container that has one: 1 for the current value.",
    );
    for c in &list {
        if let Some(h) = c.health.as_deref() {
            let l = labels(c);
            for s in HEALTH_STATES {
                w.sample(HEALTH, &l, &[("health", s)], h == s);
            }
        }
    }
}

fn write_alerts<S: Sink>(app: &App, w: &mut Writer<S>) -> Result<(), ReadError> {
    use crate::config::model::Severity;
    let mut counts = [0u64; 3];
    for a in app.alerts.all_active()? {
        counts[match a.severity {
            Severity::Info => 0,
            Severity::Warning => 1,
            Severity::Critical => 2,
        }] += 1;
    }
    const FIRING: &str = "maintenant_alerts_firing";
    w.family(FIRING, Kind::Gauge, "Active alerts, by severity.");
    for (sev, n) in ["info", "warning", "critical"].iter().zip(counts) {
        w.sample(FIRING, &[("severity", sev)], &[], n);
    }
    Ok(())
}

fn source_label(k: SourceKind) -> &'static str {
    match k {
        SourceKind::File => "file",
        SourceKind::Docker => "docker",
        SourceKind::Kubernetes => "kubernetes",
        SourceKind::KubernetesAnnotations => "kubernetes_annotations",
    }
}

/// Desired state, reconciler, drift, sources and runtimes: the pipeline's
/// health, with the same `degraded` rule as `get_health`.
fn write_pipeline<S: Sink>(app: &App, state: &DesiredState, w: &mut Writer<S>) {
    let (mut missing, mut outdated) = (0usize, 0usize);
    let orphaned = {
        // Counted in place, like get_health's drift (the reconciler waits
        // for this walk; no ids are built).
        let running = app.running.read().expect("running index lock");
        for (k, d) in state.monitors.iter() {
            match running.get(k) {
                None => missing += 1,
                Some(r) if r.spec_hash != d.spec_hash => outdated += 1,
                _ => {}
            }
        }
        running
            .keys()
            .filter(|k| !state.monitors.contains_key(*k))
            .count()
    };
    let rec = app.reconcile.read().expect("reconcile status lock").clone();

    let mut declared = [0usize; 4];
    for k in state.monitors.keys() {
        declared[k.kind as usize] += 1;
    }
    const DECLARED: &str = "maintenant_monitors_declared";
    w.family(
        DECLARED,
        Kind::Gauge,
        "Monitors in the desired state, by kind.",
    );
    for kind in [
        MonitorKind::Endpoint,
        MonitorKind::Certificate,
        MonitorKind::Heartbeat,
    ] {
        w.sample(
            DECLARED,
            &[("kind", kind.as_str())],
            &[],
            declared[kind as usize],
        );
    }

    let gauge = |w: &mut Writer<S>, name: &str, help: &str, v: crate::metrics::Value| {
        w.family(name, Kind::Gauge, help);
        w.sample(name, &[], &[], v);
    };
    gauge(
        w,
        "maintenant_desired_generation",
        "Generation of the desired state (bumped by each change a source makes).",
        state.generation.into(),
    );
    gauge(
        w,
        "maintenant_reconcile_generation",
        "Desired-state generation the running check tasks match.",
        rec.generation.into(),
    );
    gauge(
        w,
        "maintenant_reconcile_last_pass_duration_seconds",
        "Wall time of the reconciler's last pass.",
        (rec.last_pass.duration_ms / 1000.0).into(),
    );
    gauge(
        w,
        "maintenant_reconcile_running_tasks",
        "Monitors with a running check task.",
        rec.running.into(),
    );
    w.family(
        "maintenant_reconcile_passes_total",
        Kind::Counter,
        "Reconciler passes since the process started.",
    );
    w.sample("maintenant_reconcile_passes_total", &[], &[], rec.passes);

    const DRIFT: &str = "maintenant_reconcile_drift_monitors";
    w.family(
        DRIFT,
        Kind::Gauge,
        "Monitors where what runs differs from what is declared: missing (no task), outdated (older spec), orphaned (no longer declared).",
    );
    for (d, n) in [
        ("missing", missing),
        ("outdated", outdated),
        ("orphaned", orphaned),
    ] {
        w.sample(DRIFT, &[("drift", d)], &[], n);
    }

    const SOURCE_ERRORS: &str = "maintenant_source_errors";
    w.family(
        SOURCE_ERRORS,
        Kind::Gauge,
        "Sources of monitors whose last load failed, by kind of source (see get_health for the error).",
    );
    let mut by_kind: Vec<(&'static str, u64)> = Vec::with_capacity(4);
    for s in &state.sources {
        let label = source_label(s.kind);
        let n = u64::from(s.last_error.is_some());
        match by_kind.iter_mut().find(|(l, _)| *l == label) {
            Some((_, c)) => *c += n,
            None => by_kind.push((label, n)),
        }
    }
    for (label, n) in &by_kind {
        w.sample(SOURCE_ERRORS, &[("source", label)], &[], *n);
    }

    let runtimes = app.runtimes.statuses();
    const CONNECTED: &str = "maintenant_runtime_connected";
    w.family(
        CONNECTED,
        Kind::Gauge,
        "1 while the container runtime's API answers.",
    );
    for r in &runtimes {
        w.sample(CONNECTED, &[("runtime", r.name.as_str())], &[], r.connected);
    }

    let degraded = app.store.health().is_failing()
        || by_kind.iter().any(|(_, n)| *n > 0)
        || runtimes.iter().any(|r| !r.connected)
        || missing + outdated + orphaned > 0;
    gauge(
        w,
        "maintenant_degraded",
        "1 when get_health says degraded: the database cannot write, a source has an error, a runtime is disconnected, or desired and running differ.",
        degraded.into(),
    );
}

fn write_store<S: Sink>(app: &App, w: &mut Writer<S>) {
    const SIZE: &str = "maintenant_store_size_bytes";
    w.family(
        SIZE,
        Kind::Gauge,
        "Bytes on disk of the store: sled (database), check history files, day files.",
    );
    for (part, n) in app.store.sizes_on_disk() {
        w.sample(SIZE, &[("part", part)], &[], n);
    }
    const WRITABLE: &str = "maintenant_store_writable";
    w.family(
        WRITABLE,
        Kind::Gauge,
        "0 from a failed write or flush of the database (a full disk) until the disk writes again; see get_health.",
    );
    w.sample(WRITABLE, &[], &[], !app.store.health().is_failing());
}

fn write_process<S: Sink>(w: &mut Writer<S>) {
    let p = crate::metrics::process::sample();
    let one = |w: &mut Writer<S>,
               name: &str,
               kind: Kind,
               help: &str,
               v: Option<crate::metrics::Value>| {
        if let Some(v) = v {
            w.family(name, kind, help);
            w.sample(name, &[], &[], v);
        }
    };
    one(
        w,
        "process_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory size in bytes.",
        p.resident_bytes.map(Into::into),
    );
    one(
        w,
        "process_virtual_memory_bytes",
        Kind::Gauge,
        "Virtual memory size in bytes.",
        p.virtual_bytes.map(Into::into),
    );
    one(
        w,
        "process_cpu_seconds_total",
        Kind::Counter,
        "User and system CPU time spent, in seconds.",
        p.cpu_seconds.map(Into::into),
    );
    one(
        w,
        "process_open_fds",
        Kind::Gauge,
        "Open file descriptors.",
        p.open_fds.map(Into::into),
    );
    one(
        w,
        "process_max_fds",
        Kind::Gauge,
        "Most open file descriptors allowed (the soft limit).",
        p.max_fds.map(Into::into),
    );
    one(
        w,
        "process_start_time_seconds",
        Kind::Gauge,
        "When the process started (unix seconds).",
        p.start_time_seconds.map(Into::into),
    );
    const BUILD: &str = "maintenant_build_info";
    w.family(BUILD, Kind::Info, "The running build: its version.");
    w.sample(BUILD, &[("version", env!("CARGO_PKG_VERSION"))], &[], 1u64);
}
