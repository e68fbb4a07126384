//! Container alerts: every Docker container and Kubernetes pod is watched,
//! with nothing to declare, for the conditions an operator wants to hear
//! about (restart loop, OOM kill, failing health check, unexpected exit;
//! CrashLoopBackOff, image pull failures, not Ready for too long).
//!
//! - [`ContainerWatch::evaluate`] is the pure part: one container row (as the
//!   runtimes report it), what this watcher remembers of it (when it
//!   restarted, when it was last OOM-killed) and its settings (labels or
//!   annotations, see [`ContainerAlertSettings`]) in; the conditions that
//!   hold now out. Level-triggered like the reconciler: the whole set is
//!   sent, and the rules resolve every container alert not in it, so a missed
//!   change heals at the next pass.
//! - [`ContainerAlerts::run`] re-evaluates on every change of the container
//!   set and every second (windows expire with time), and sends a signal when
//!   a container's set changed, and every [`RESEND`] regardless (a pause that
//!   ended, a database error: the engine decides again).
//!
//! Rows of a disconnected runtime are left alone (their alerts neither raise
//! nor resolve until the runtime is back); a container that is gone resolves.
//!
//! The monitor key is `container/NAME` with the name `list_containers`
//! shows: a Docker container's name (stable across a compose recreate), a
//! pod's `namespace/name`.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

use super::{AlertType, ContainerCondition, Event, Signal, SignalSender};
use crate::config::model::{AlertDecl, Severity};
use crate::monitor::{MonitorKey, MonitorKind};
use crate::runtime::{Container, ContainerSet, Runtimes};
use crate::sources::labels::ContainerAlertSettings;

/// A container's conditions are sent again after this long even when
/// unchanged.
pub const RESEND: Duration = Duration::from_secs(30);
/// An exit or OOM kill that ended longer ago than this, found at start-up,
/// keeps an alert that is already active but raises none.
const FRESH: time::Duration = time::Duration::hours(24);
/// Exit codes of a stop someone asked for: SIGINT, SIGKILL (`docker stop`
/// after its timeout, `docker kill`), SIGTERM (`docker stop`).
const STOP_CODES: [i64; 3] = [130, 137, 143];
/// Waiting reasons of a pod's container whose image cannot be pulled.
const IMAGE_PULL: [&str; 4] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
];

fn default_severity(t: AlertType) -> Severity {
    match t {
        AlertType::ContainerUnhealthy
        | AlertType::ContainerNotReady
        | AlertType::ContainerImagePull => Severity::Warning,
        _ => Severity::Critical,
    }
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

fn human(d: Duration) -> String {
    crate::duration::Duration(d).to_string()
}

/// What the watcher remembers of one container (by name).
#[derive(Debug, Default)]
struct Memory {
    id: String,
    restarts: Option<u64>,
    /// When restarts were seen, the newest `restart_threshold` only.
    restart_times: VecDeque<OffsetDateTime>,
    /// The last OOM kill: when, and the run it ended (so one kill counts once).
    oom_at: Option<OffsetDateTime>,
    oom_run: Option<String>,
    crash_loop_at: Option<OffsetDateTime>,
    not_ready_since: Option<OffsetDateTime>,
}

/// The pure half: container rows in, conditions out.
#[derive(Debug, Default)]
pub struct ContainerWatch {
    memory: HashMap<String, Memory>,
}

impl ContainerWatch {
    pub fn forget(&mut self, name: &str) {
        self.memory.remove(name);
    }

    /// The conditions that hold for `c` at `now`, in [`AlertType::CONTAINER`] order.
    pub fn evaluate(
        &mut self,
        c: &Container,
        s: &ContainerAlertSettings,
        now: OffsetDateTime,
    ) -> Vec<ContainerCondition> {
        let m = self.memory.entry(c.name.clone()).or_default();
        let mut out = Vec::new();
        let make = |t: AlertType, message: String, may_raise: bool| {
            s.enabled(t).then(|| ContainerCondition {
                alert_type: t,
                severity: s.severity.unwrap_or_else(|| default_severity(t)),
                message,
                may_raise,
            })
        };
        let window = time::Duration::try_from(s.restart_window).unwrap_or(time::Duration::MAX);
        let name = &c.name;
        match &c.pod {
            None => {
                // A recreated container (same name, new id) counts from its own start.
                if m.id != c.id {
                    m.id = c.id.clone();
                    m.restarts = None;
                }
                let threshold = s.restart_threshold.max(1) as usize;
                if let Some(before) = m.restarts
                    && c.restarts > before
                {
                    let n = usize::try_from(c.restarts - before).unwrap_or(threshold);
                    for _ in 0..n.min(threshold) {
                        m.restart_times.push_back(now);
                    }
                }
                m.restarts = Some(c.restarts);
                while m.restart_times.len() > threshold {
                    m.restart_times.pop_front();
                }
                while m.restart_times.front().is_some_and(|t| now - *t >= window) {
                    m.restart_times.pop_front();
                }
                if m.restart_times.len() >= threshold {
                    out.extend(make(
                        AlertType::ContainerRestartLoop,
                        format!(
                            "container {name} restarted {} times within {} (threshold {})",
                            m.restart_times.len(),
                            human(s.restart_window),
                            s.restart_threshold
                        ),
                        true,
                    ));
                }

                let ended = c.finished_at.as_deref().and_then(parse_time);
                if c.oom_killed
                    && m.oom_run.as_deref() != Some(c.finished_at.as_deref().unwrap_or(""))
                {
                    m.oom_run = Some(c.finished_at.clone().unwrap_or_default());
                    m.oom_at = Some(ended.unwrap_or(now));
                }
                let stopped = matches!(c.state.as_str(), "exited" | "dead");
                let oom_recent = m.oom_at.is_some_and(|t| now - t < window);
                if oom_recent || (c.oom_killed && stopped) {
                    out.extend(make(
                        AlertType::ContainerOomKilled,
                        format!(
                            "container {name} was killed by the OOM killer (out of memory){}",
                            if stopped { "; it is stopped" } else { "" }
                        ),
                        m.oom_at.is_some_and(|t| now - t < FRESH),
                    ));
                }

                if c.state == "running" && c.health.as_deref() == Some("unhealthy") {
                    out.extend(make(
                        AlertType::ContainerUnhealthy,
                        format!("container {name} is unhealthy: its health check fails"),
                        true,
                    ));
                }

                if stopped
                    && !c.oom_killed
                    && let Some(code) = c.exit_code
                    && code != 0
                    && !STOP_CODES.contains(&code)
                {
                    out.extend(make(
                        AlertType::ContainerUnexpectedExit,
                        format!("container {name} exited with code {code} and was not restarted"),
                        ended.is_none_or(|t| now - t < FRESH),
                    ));
                }
            }
            Some(pod) => {
                let waiting = |reasons: &[&str]| {
                    pod.containers
                        .iter()
                        .filter(|x| x.state == "waiting")
                        .find(|x| x.reason.as_deref().is_some_and(|r| reasons.contains(&r)))
                };
                if let Some(x) = waiting(&["CrashLoopBackOff"]) {
                    m.crash_loop_at = Some(now);
                    let msg = format!(
                        "pod {name}: container {} is in CrashLoopBackOff ({} restarts)",
                        x.name, x.restarts
                    );
                    out.extend(make(AlertType::ContainerCrashLoop, msg, true));
                } else if m.crash_loop_at.is_some_and(|t| now - t < window) {
                    // Between two back-offs the container runs for a moment:
                    // held for the window, as the kubelet holds its back-off.
                    out.extend(make(
                        AlertType::ContainerCrashLoop,
                        format!("pod {name} was in CrashLoopBackOff"),
                        true,
                    ));
                }

                // The newest OOM kill of any of its containers, now or as the
                // previous run's end.
                let oom = pod
                    .containers
                    .iter()
                    .filter_map(|x| {
                        let now_oom =
                            x.state == "terminated" && x.reason.as_deref() == Some("OOMKilled");
                        let last = x
                            .last_terminated
                            .as_ref()
                            .filter(|t| t.reason.as_deref() == Some("OOMKilled"));
                        if !now_oom && last.is_none() {
                            return None;
                        }
                        let finished = last.and_then(|t| t.finished_at.clone());
                        Some((
                            format!(
                                "{}@{}@{}",
                                x.name,
                                x.restarts,
                                finished.as_deref().unwrap_or("")
                            ),
                            x.name.clone(),
                            finished.as_deref().and_then(parse_time),
                        ))
                    })
                    .max_by_key(|(_, _, at)| *at);
                if let Some((run, _, at)) = &oom
                    && m.oom_run.as_deref() != Some(run.as_str())
                {
                    m.oom_run = Some(run.clone());
                    m.oom_at = Some(at.unwrap_or(now));
                }
                if let Some(at) = m.oom_at
                    && now - at < window
                {
                    let who = oom.as_ref().map_or("a container", |(_, n, _)| n.as_str());
                    out.extend(make(
                        AlertType::ContainerOomKilled,
                        format!("pod {name}: container {who} was OOMKilled (out of memory)"),
                        now - at < FRESH,
                    ));
                }

                if let Some(x) = waiting(&IMAGE_PULL) {
                    out.extend(make(
                        AlertType::ContainerImagePull,
                        format!(
                            "pod {name}: container {} cannot pull its image {} ({})",
                            x.name,
                            x.image,
                            x.reason.as_deref().unwrap_or("")
                        ),
                        true,
                    ));
                }

                // Not Ready, unless a crash loop or a pull failure already says why.
                let explained = out.iter().any(|c| {
                    matches!(
                        c.alert_type,
                        AlertType::ContainerCrashLoop | AlertType::ContainerImagePull
                    )
                });
                let waits = !pod.ready && matches!(pod.phase.as_str(), "Running" | "Pending");
                if !waits {
                    m.not_ready_since = None;
                } else {
                    let since = *m.not_ready_since.get_or_insert(now);
                    let after =
                        time::Duration::try_from(s.not_ready_after).unwrap_or(time::Duration::MAX);
                    if !explained && now - since >= after {
                        out.extend(make(
                            AlertType::ContainerNotReady,
                            format!(
                                "pod {name} has not been Ready for {} (phase {})",
                                human(s.not_ready_after),
                                pod.phase
                            ),
                            true,
                        ));
                    }
                }
            }
        }
        out
    }
}

/// The task: container rows in, container signals out.
pub struct ContainerAlerts {
    pub runtimes: Runtimes,
    pub alerts: super::AlertStore,
    pub signals: SignalSender,
}

/// What was last sent for one container.
struct Sent {
    at: std::time::Instant,
    set: Vec<(AlertType, Severity)>,
}

impl ContainerAlerts {
    pub async fn run(self) {
        let mut rx: watch::Receiver<std::sync::Arc<ContainerSet>> = self.runtimes.subscribe();
        let mut watch = ContainerWatch::default();
        let mut sent: HashMap<String, Sent> = HashMap::new();
        let mut swept: HashSet<String> = HashSet::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = tick.tick() => {}
            }
            self.pass(&mut watch, &mut sent, &mut swept, OffsetDateTime::now_utc());
        }
    }

    fn pass(
        &self,
        watch: &mut ContainerWatch,
        sent: &mut HashMap<String, Sent>,
        swept: &mut HashSet<String>,
        now: OffsetDateTime,
    ) {
        let set = self.runtimes.containers();
        let statuses = self.runtimes.statuses();
        let connected: BTreeSet<&str> = statuses
            .iter()
            .filter(|s| s.connected)
            .map(|s| s.name.as_str())
            .collect();
        // A runtime that is configured but not connected: leave its alerts be.
        let away = |runtime: &str| statuses.iter().any(|s| s.name == runtime && !s.connected);
        let mut seen: HashSet<&str> = HashSet::new();
        for c in set.values() {
            seen.insert(&c.name);
            if c.stale || !connected.contains(c.runtime.as_str()) {
                continue;
            }
            let settings = ContainerAlertSettings::from_labels(&c.labels);
            let conditions = if c.ignored {
                watch.forget(&c.name);
                Vec::new()
            } else {
                watch.evaluate(c, &settings, now)
            };
            let key: Vec<(AlertType, Severity)> = conditions
                .iter()
                .map(|c| (c.alert_type, c.severity))
                .collect();
            if sent
                .get(&c.name)
                .is_some_and(|s| s.set == key && s.at.elapsed() < RESEND)
            {
                continue;
            }
            self.signals.send(Signal {
                monitor: MonitorKey::container(c.name.as_str()),
                group: c.group.clone(),
                alert: Some(AlertDecl {
                    severity: settings.severity.unwrap_or(Severity::Critical),
                    channels: settings.channels,
                }),
                at: now,
                event: Event::Container(conditions),
            });
            sent.insert(
                c.name.clone(),
                Sent {
                    at: std::time::Instant::now(),
                    set: key,
                },
            );
        }
        let gone: Vec<String> = sent
            .keys()
            .filter(|n| !seen.contains(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            sent.remove(&name);
            watch.forget(&name);
            self.removed(&name, now);
        }
        // Alerts left active by an earlier run, of containers gone since.
        let active = match self.alerts.all_active() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "container alerts: cannot read active alerts");
                return;
            }
        };
        let mut still: HashSet<String> = HashSet::new();
        for a in active {
            let Some(key) = a.monitor_key().filter(|k| k.kind == MonitorKind::Container) else {
                continue;
            };
            let name = key.name.to_string();
            let runtime = if name.contains('/') {
                crate::runtime::kubernetes::RUNTIME
            } else {
                crate::runtime::docker::RUNTIME
            };
            if seen.contains(name.as_str()) || sent.contains_key(&name) || away(runtime) {
                continue;
            }
            still.insert(name.clone());
            if swept.insert(name.clone()) {
                self.removed(&name, now);
            }
        }
        swept.retain(|n| still.contains(n));
    }

    fn removed(&self, name: &str, now: OffsetDateTime) {
        self.signals.send(Signal {
            monitor: MonitorKey::container(name),
            group: None,
            alert: None,
            at: now,
            event: Event::Removed,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::PodRef;
    use crate::runtime::kubernetes::{PodContainer, Termination};
    use std::collections::BTreeMap;

    fn docker(state: &str, restarts: u64) -> Container {
        Container {
            id: "abc".into(),
            name: "web".into(),
            image: "busybox".into(),
            state: state.into(),
            health: None,
            runtime: "docker".into(),
            group: None,
            restarts,
            started_at: None,
            exit_code: None,
            oom_killed: false,
            finished_at: None,
            compose: None,
            pod: None,
            ignored: false,
            stale: false,
            as_of: None,
            labels: BTreeMap::new(),
        }
    }

    fn pod(phase: &str, ready: bool, state: &str, reason: Option<&str>) -> Container {
        let mut c = docker(&phase.to_ascii_lowercase(), 0);
        c.name = "shop/web-1".into();
        c.runtime = "kubernetes".into();
        c.pod = Some(PodRef {
            namespace: "shop".into(),
            name: "web-1".into(),
            phase: phase.into(),
            ready,
            node: None,
            workload: None,
            containers: vec![PodContainer {
                name: "app".into(),
                image: "registry.local/web:1".into(),
                ready,
                restarts: 4,
                state: state.into(),
                reason: reason.map(str::to_owned),
                last_terminated: None,
            }],
        });
        c
    }

    fn settings(labels: &[(&str, &str)]) -> ContainerAlertSettings {
        ContainerAlertSettings::from_labels(
            &labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn types(c: &[ContainerCondition]) -> Vec<AlertType> {
        c.iter().map(|c| c.alert_type).collect()
    }

    #[test]
    fn restarts_within_the_window_make_a_loop_that_ends_with_the_window() {
        let s = settings(&[("maintenant.alert.restart_window", "60s")]);
        let mut w = ContainerWatch::default();
        let t0 = OffsetDateTime::now_utc();
        let sec = time::Duration::seconds;
        // Restarts counted before we looked are not a loop.
        assert!(w.evaluate(&docker("running", 7), &s, t0).is_empty());
        assert!(
            w.evaluate(&docker("running", 8), &s, t0 + sec(1))
                .is_empty()
        );
        assert!(
            w.evaluate(&docker("restarting", 9), &s, t0 + sec(2))
                .is_empty()
        );
        let c = w.evaluate(&docker("running", 10), &s, t0 + sec(3));
        assert_eq!(types(&c), [AlertType::ContainerRestartLoop]);
        assert!(
            c[0].message.contains("3 times within 1m"),
            "{}",
            c[0].message
        );
        assert_eq!(c[0].severity, Severity::Critical);
        // No restart for the window: over.
        assert_eq!(
            w.evaluate(&docker("running", 10), &s, t0 + sec(60)).len(),
            1
        );
        assert!(
            w.evaluate(&docker("running", 10), &s, t0 + sec(62))
                .is_empty()
        );
        // Off switch.
        let off = settings(&[("maintenant.alert.disable", "restart_loop")]);
        let mut w = ContainerWatch::default();
        for n in 0..6 {
            assert!(w.evaluate(&docker("running", n), &off, t0).is_empty());
        }
    }

    #[test]
    fn exits_oom_kills_and_health() {
        let s = settings(&[]);
        let now = OffsetDateTime::now_utc();
        let mut w = ContainerWatch::default();
        let mut c = docker("exited", 0);
        c.exit_code = Some(1);
        c.finished_at = Some("2020-01-01T00:00:00Z".into());
        let got = w.evaluate(&c, &s, now);
        assert_eq!(types(&got), [AlertType::ContainerUnexpectedExit]);
        assert!(!got[0].may_raise, "an exit of long ago, found at start");
        c.finished_at = None;
        assert!(w.evaluate(&c, &s, now)[0].may_raise);
        for code in [0, 137, 143] {
            c.exit_code = Some(code);
            assert!(w.evaluate(&c, &s, now).is_empty(), "exit {code} is a stop");
        }
        // OOM: stopped by it, then restarted: held for the window only.
        c.exit_code = Some(137);
        c.oom_killed = true;
        c.finished_at = Some(
            now.format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
        );
        assert_eq!(
            types(&w.evaluate(&c, &s, now)),
            [AlertType::ContainerOomKilled]
        );
        c.state = "running".into();
        c.exit_code = None;
        assert_eq!(
            types(&w.evaluate(&c, &s, now)),
            [AlertType::ContainerOomKilled]
        );
        assert!(
            w.evaluate(&c, &s, now + time::Duration::minutes(11))
                .is_empty(),
            "the flag stays on a running container; the kill is over"
        );
        c.oom_killed = false;
        c.health = Some("unhealthy".into());
        let later = now + time::Duration::minutes(12);
        let got = w.evaluate(&c, &s, later);
        assert_eq!(types(&got), [AlertType::ContainerUnhealthy]);
        assert_eq!(got[0].severity, Severity::Warning);
        let loud = settings(&[("maintenant.alert.severity", "critical")]);
        assert_eq!(w.evaluate(&c, &loud, later)[0].severity, Severity::Critical);
    }

    #[test]
    fn pods_crash_loop_is_held_between_back_offs_and_not_ready_waits_its_threshold() {
        let s = settings(&[
            ("maintenant.alert.restart_window", "30s"),
            ("maintenant.alert.not_ready_after", "10s"),
        ]);
        let t0 = OffsetDateTime::now_utc();
        let sec = time::Duration::seconds;
        let mut w = ContainerWatch::default();
        let crash = pod("Running", false, "waiting", Some("CrashLoopBackOff"));
        let got = w.evaluate(&crash, &s, t0);
        assert_eq!(types(&got), [AlertType::ContainerCrashLoop]);
        assert!(
            got[0].message.contains("container app"),
            "{}",
            got[0].message
        );
        // Running for a moment between two back-offs: still a crash loop, and
        // not "not ready" on top of it.
        let up = pod("Running", false, "running", None);
        assert_eq!(
            types(&w.evaluate(&up, &s, t0 + sec(15))),
            [AlertType::ContainerCrashLoop]
        );
        let ready = pod("Running", true, "running", None);
        assert!(w.evaluate(&ready, &s, t0 + sec(31)).is_empty());

        let pull = pod("Pending", false, "waiting", Some("ImagePullBackOff"));
        let got = ContainerWatch::default().evaluate(&pull, &s, t0);
        assert_eq!(types(&got), [AlertType::ContainerImagePull]);
        assert!(got[0].message.contains("registry.local/web:1"));

        let mut w = ContainerWatch::default();
        let not_ready = pod("Running", false, "running", None);
        assert!(w.evaluate(&not_ready, &s, t0).is_empty());
        assert!(w.evaluate(&not_ready, &s, t0 + sec(9)).is_empty());
        assert_eq!(
            types(&w.evaluate(&not_ready, &s, t0 + sec(10))),
            [AlertType::ContainerNotReady]
        );
        assert!(w.evaluate(&ready, &s, t0 + sec(11)).is_empty());
        assert!(
            w.evaluate(&not_ready, &s, t0 + sec(12)).is_empty(),
            "the wait starts over"
        );

        let mut oom = pod("Running", true, "running", None);
        if let Some(p) = &mut oom.pod {
            p.containers[0].last_terminated = Some(Termination {
                reason: Some("OOMKilled".into()),
                exit_code: 137,
                finished_at: Some(
                    (t0 - sec(5))
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap(),
                ),
            });
        }
        let mut w = ContainerWatch::default();
        assert_eq!(
            types(&w.evaluate(&oom, &s, t0)),
            [AlertType::ContainerOomKilled]
        );
        assert!(w.evaluate(&oom, &s, t0 + sec(26)).is_empty(), "window over");
    }
}
