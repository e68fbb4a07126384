//! Writes what maintenant observed into each `Monitor` resource's status
//! subresource (a JSON merge patch of `/status`).
//!
//! Level-triggered, like a kube-runtime controller: each pass computes the
//! status every resource should show from the whole picture (the resource,
//! the desired state, the observed state) and patches only the ones whose
//! meaningful part (state, message, generation, `Ready`) differs from what
//! was last written. One resource is patched at most once per
//! `min_gap` (`MAINTENANT_KUBERNETES_STATUS_INTERVAL`), and a status that
//! only differs by its `lastCheck` time is refreshed every `refresh`: a
//! monitor checked every 5 s is not one API write every 5 s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

use crate::crd::{Monitor, MonitorCondition, MonitorStatus};
use crate::desired::DesiredState;
use crate::monitor::{MonitorSpec, Origin};
use crate::observed::ObservedMap;
use crate::sources::kubernetes::{ObjectKey, Resource, Resources};
use crate::store::Status;

#[derive(Clone)]
pub struct StatusWriter {
    pub client: Client,
    pub min_gap: Duration,
    pub refresh: Duration,
    /// Heartbeats are observed by the hub (pings), not by check results.
    pub heartbeats: Option<crate::heartbeat::HeartbeatHub>,
}

/// A running heartbeat's status comes from its pings: `new`, `up`,
/// `started`, `late`, `down` or `paused`, the last ping as `lastCheck`.
fn heartbeat_status(s: &mut MonitorStatus, r: &Resource, hub: &crate::heartbeat::HeartbeatHub) {
    let Ok(spec) = &r.spec else { return };
    if !matches!(**spec, MonitorSpec::Heartbeat(_)) {
        return;
    }
    let Some(ready) = s.conditions.iter_mut().find(|c| c.type_ == "Ready") else {
        return;
    };
    if ready.reason != "Monitoring" {
        return;
    }
    let key = spec.key();
    let state = hub.state(&key);
    let status = state.status.as_str();
    s.state = Some(status.into());
    s.message = state.message.clone();
    s.last_check = state
        .last_ping
        .as_ref()
        .and_then(|p| p.at.format(&Rfc3339).ok());
    ready.message = format!("{} is {status}", key.id());
}

/// What was last written to one resource, and when.
struct Written {
    status: MonitorStatus,
    at: Instant,
}

impl StatusWriter {
    pub async fn run(
        self,
        mut resources: watch::Receiver<Arc<Resources>>,
        mut desired: watch::Receiver<Arc<DesiredState>>,
        observed: ObservedMap,
    ) {
        let ar = ApiResource::erase::<Monitor>(&());
        let mut written: HashMap<ObjectKey, Written> = HashMap::new();
        // Checks change the observed state without a signal: look again this often.
        let tick = self
            .min_gap
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        loop {
            tokio::select! {
                r = resources.changed() => if r.is_err() { return },
                r = desired.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(tick) => {}
            }
            let res = resources.borrow_and_update().clone();
            let state = desired.borrow_and_update().clone();
            written.retain(|k, _| res.contains_key(k));
            let now = Instant::now();
            for (key, r) in res.iter() {
                let previous = written.get(key).map(|w| &w.status).or(r.status.as_ref());
                let mut next = status_for(r, &state, &observed, previous);
                if let Some(hub) = &self.heartbeats {
                    heartbeat_status(&mut next, r, hub);
                }
                let last = written
                    .get(key)
                    .map(|w| (&w.status, now.duration_since(w.at)));
                if !self.due(last, r.status.as_ref(), &next) {
                    continue;
                }
                let api: Api<DynamicObject> =
                    Api::namespaced_with(self.client.clone(), &r.namespace, &ar);
                let patch = serde_json::json!({ "status": next });
                match api
                    .patch_status(&r.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {
                        tracing::debug!(namespace = %r.namespace, name = %r.name, state = ?next.state, "Monitor status written");
                    }
                    Err(e) => {
                        tracing::warn!(namespace = %r.namespace, name = %r.name, error = %e, "cannot write Monitor status");
                    }
                }
                // Also on error: retry after min_gap, not in a tight loop.
                written.insert(
                    key.clone(),
                    Written {
                        status: next,
                        at: now,
                    },
                );
            }
        }
    }
}

impl StatusWriter {
    /// Whether to write `next`, given what this process last wrote and how
    /// long ago, and what the server shows.
    fn due(
        &self,
        last: Option<(&MonitorStatus, Duration)>,
        on_server: Option<&MonitorStatus>,
        next: &MonitorStatus,
    ) -> bool {
        match last {
            // Nothing written by this process yet (a restart): write unless
            // the server already shows exactly this.
            None => on_server.is_none_or(|s| !same(s, next)),
            Some((_, ago)) if ago < self.min_gap => false,
            Some((w, ago)) => {
                !same(w, next) || (w.last_check != next.last_check && ago >= self.refresh)
            }
        }
    }
}

/// Equal in everything but the time of the last check and of transitions.
fn same(a: &MonitorStatus, b: &MonitorStatus) -> bool {
    let strip = |s: &MonitorStatus| {
        let mut s = s.clone();
        s.last_check = None;
        for c in &mut s.conditions {
            c.last_transition_time.clear();
        }
        s
    };
    strip(a) == strip(b)
}

/// The status a resource should show now.
pub fn status_for(
    r: &Resource,
    desired: &DesiredState,
    observed: &ObservedMap,
    previous: Option<&MonitorStatus>,
) -> MonitorStatus {
    let mut s = MonitorStatus::default();
    let (ready, reason, message) = match &r.spec {
        Err(e) => {
            s.state = Some("invalid".into());
            s.message = Some(e.0.clone());
            s.observed_generation = r.generation;
            (false, "InvalidSpec", e.0.clone())
        }
        Ok(spec) => {
            let key = spec.key();
            s.id = Some(key.id());
            let (kind, target) = type_and_target(spec);
            s.monitor_type = Some(kind);
            s.target = Some(target);
            match desired.monitors.get(&key) {
                Some(d) if !is_this(&d.origin, r) => {
                    s.state = Some("conflict".into());
                    let m = format!(
                        "{} is already declared by {}, which takes precedence",
                        key.id(),
                        d.origin
                    );
                    s.message = Some(m.clone());
                    s.observed_generation = r.generation;
                    (false, "Conflict", m)
                }
                Some(d) => {
                    let origin_generation = match &d.origin {
                        Origin::Kubernetes(k) => k.generation,
                        _ => None,
                    };
                    let obs = observed.get(&key);
                    let running = obs
                        .as_ref()
                        .and_then(|o| o.task.as_ref())
                        .is_some_and(|t| t.generation == d.generation);
                    let state = obs.as_ref().map(|o| o.state.clone()).unwrap_or_default();
                    s.state = Some(state.status.as_str().into());
                    s.last_check = state
                        .last_check
                        .as_ref()
                        .and_then(|c| c.at.format(&Rfc3339).ok());
                    // Whoever created the resource reads its status: never
                    // a value the check read from a response body.
                    let public = obs.as_ref().and_then(|o| o.public());
                    s.message = match public {
                        Some(p) => p.error.clone(),
                        None => state
                            .last_check
                            .as_ref()
                            .and_then(|c| c.error.as_deref())
                            .map(|e| withheld(spec, e)),
                    };
                    let refused = public.and_then(|p| p.refused.as_ref());
                    if running && let Some(r) = refused {
                        s.observed_generation = origin_generation;
                        s.state = Some("refused".into());
                        (false, "TargetRefused", r.to_string())
                    } else if running {
                        s.observed_generation = origin_generation;
                        let m = match state.status {
                            Status::Pending => format!("{} is checked; not decided yet", key.id()),
                            st => format!("{} is {}", key.id(), st.as_str()),
                        };
                        (true, "Monitoring", m)
                    } else {
                        s.observed_generation = previous.and_then(|p| p.observed_generation);
                        (
                            false,
                            "Starting",
                            format!("the check of {} is starting", key.id()),
                        )
                    }
                }
                None => {
                    s.state = Some("pending".into());
                    (
                        false,
                        "Starting",
                        format!("{} is not scheduled yet", key.id()),
                    )
                }
            }
        }
    };
    let status = if ready { "True" } else { "False" };
    // Kubernetes convention: the transition time moves only when `status` does.
    let last_transition_time = previous
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == "Ready"))
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default()
        });
    s.conditions = vec![MonitorCondition {
        type_: "Ready".into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time,
        observed_generation: s.observed_generation,
    }];
    s
}

/// The error of a check this process did not make (a state read back from
/// the store after a restart): kept when the monitor's conditions read
/// nothing from the body, else replaced, since it may quote the body.
fn withheld(spec: &MonitorSpec, error: &str) -> String {
    match spec {
        MonitorSpec::Endpoint(e) if e.conditions.iter().any(|c| c.needs_body()) => {
            "the last check failed; its message may quote the response body and is shown \
             by get_endpoint_status only"
                .to_owned()
        }
        _ => error.to_owned(),
    }
}

/// The Type and Target printer columns: `endpoint/https` and its URL.
fn type_and_target(spec: &MonitorSpec) -> (String, String) {
    match spec {
        MonitorSpec::Endpoint(e) => (
            format!("{}/{}", spec.kind(), e.target.type_name()),
            e.target.display(),
        ),
        MonitorSpec::Certificate(c) => (spec.kind().to_string(), format!("{}:{}", c.host, c.port)),
        MonitorSpec::Heartbeat(h) => (spec.kind().to_string(), format!("/ping/{}", h.name)),
    }
}

fn is_this(origin: &Origin, r: &Resource) -> bool {
    // A pod's annotation is not a Monitor resource, even under the same name.
    matches!(origin, Origin::Kubernetes(k) if k.annotation.is_none() && k.namespace == r.namespace && k.name == r.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(state: &str, last_check: &str) -> MonitorStatus {
        MonitorStatus {
            state: Some(state.into()),
            last_check: Some(last_check.into()),
            observed_generation: Some(1),
            conditions: vec![MonitorCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: "Monitoring".into(),
                message: format!("endpoint/x is {state}"),
                last_transition_time: "2026-11-25T10:00:00Z".into(),
                observed_generation: Some(1),
            }],
            ..Default::default()
        }
    }

    async fn writer() -> StatusWriter {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        StatusWriter {
            client: Client::try_from(config).unwrap(),
            min_gap: Duration::from_secs(10),
            refresh: Duration::from_secs(300),
            heartbeats: None,
        }
    }

    #[tokio::test]
    async fn writes_on_change_at_most_once_per_gap_and_refreshes_last_check_slowly() {
        let w = writer().await;
        let up = st("up", "2026-11-25T10:00:01Z");
        let s = Duration::from_secs;
        // First write after a start: unless the server already shows it.
        assert!(w.due(None, None, &up));
        assert!(
            !w.due(None, Some(&st("up", "2026-11-25T09:00:00Z")), &up),
            "only lastCheck differs"
        );
        assert!(w.due(None, Some(&st("down", "2026-11-25T10:00:01Z")), &up));
        // A newer check alone is not a write...
        let later = st("up", "2026-11-25T10:00:31Z");
        assert!(!w.due(Some((&up, s(30))), None, &later));
        // ... until the refresh period has passed.
        assert!(w.due(Some((&up, s(301))), None, &later));
        // A change is written, but not within the gap after the last write.
        let down = st("down", "2026-11-25T10:00:31Z");
        assert!(!w.due(Some((&up, s(3))), None, &down), "rate-limited");
        assert!(w.due(Some((&up, s(10))), None, &down));
        // The transition time alone is not a change.
        let mut moved = up.clone();
        moved.conditions[0].last_transition_time = "2026-11-25T11:00:00Z".into();
        assert!(!w.due(Some((&up, s(60))), None, &moved));
    }
}
