//! `Monitor` custom resources as a source (kube-runtime watcher).
//!
//! Like the file source, it sends its whole declared set on every change. It
//! watches the resources untyped (`DynamicObject`) and resolves each spec
//! itself: a typed watch fails the whole list on one object it cannot
//! deserialize, while here a bad object is reported on that object (its
//! status gets `Ready=False, reason InvalidSpec`) and skipped, and every other
//! monitor keeps running.
//!
//! Besides the declared set, it publishes every resource it sees with the
//! result of resolving it ([`Resources`]), for the status writer
//! (`sources::kubernetes_status`).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use crate::crd::{self, InvalidSpec, Monitor, MonitorStatus};
use crate::desired::{SourceError, SourceKind, SourceStatus, SourceUpdate};
use crate::kubeclient::Namespaces;
use crate::monitor::{DeclaredMonitor, KubernetesOrigin, MonitorSpec, Origin};

/// `namespace/name` of a resource.
pub type ObjectKey = (String, String);

/// One `Monitor` resource as last seen, and what its spec resolved to.
#[derive(Debug, Clone)]
pub struct Resource {
    pub namespace: String,
    pub name: String,
    pub generation: Option<i64>,
    pub spec: Result<Arc<MonitorSpec>, InvalidSpec>,
    /// The status stored on the server (what maintenant last wrote).
    pub status: Option<MonitorStatus>,
}

/// Every `Monitor` resource seen, keyed by namespace and name.
pub type Resources = BTreeMap<ObjectKey, Resource>;

#[derive(Clone)]
pub struct KubernetesSource {
    pub client: Client,
    pub namespaces: Namespaces,
}

impl KubernetesSource {
    /// Watch until `updates` closes. Publishes the declared set to `updates`
    /// and every resource to `resources`.
    pub async fn run(
        self,
        updates: mpsc::Sender<SourceUpdate>,
        resources: watch::Sender<Arc<Resources>>,
    ) {
        let ar = ApiResource::erase::<Monitor>(&());
        let scopes = self.namespaces.scopes();
        let streams = scopes.iter().enumerate().map(|(i, scope)| {
            let api: Api<DynamicObject> = match scope {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
                None => Api::all_with(self.client.clone(), &ar),
            };
            watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .map(move |ev| (i, ev))
                .boxed()
        });
        let mut events = futures::stream::select_all(streams);

        let mut status = SourceStatus {
            kind: SourceKind::Kubernetes,
            location: format!(
                "{}.{}/{} in {}",
                crd::PLURAL,
                crd::GROUP,
                crd::VERSION,
                self.namespaces.describe()
            ),
            generation: 0,
            loaded_at: None,
            monitors: 0,
            last_error: None,
            warning: None,
        };
        // Per watch (one per namespace scope): its objects, and the objects of
        // a re-list in progress (swapped in at `InitDone`, so a re-list after a
        // cut watch never shows a half-empty set).
        let mut seen: Vec<Resources> = vec![Resources::new(); scopes.len()];
        let mut relisting: Vec<Option<Resources>> = vec![None; scopes.len()];
        let mut last_declared: Option<Arc<Vec<DeclaredMonitor>>> = None;

        loop {
            let next = tokio::select! {
                ev = events.next() => ev,
                _ = updates.closed() => return,
            };
            let Some((i, ev)) = next else { return };
            let changed = match ev {
                Ok(Event::Init) => {
                    relisting[i] = Some(Resources::new());
                    false
                }
                Ok(Event::InitApply(obj)) => {
                    if let Some(r) = self.resource(&obj)
                        && let Some(buf) = relisting[i].as_mut()
                    {
                        buf.insert((r.namespace.clone(), r.name.clone()), r);
                    }
                    false
                }
                Ok(Event::InitDone) => {
                    seen[i] = relisting[i].take().unwrap_or_default();
                    true
                }
                Ok(Event::Apply(obj)) => {
                    if let Some(r) = self.resource(&obj) {
                        seen[i].insert((r.namespace.clone(), r.name.clone()), r);
                    }
                    true
                }
                Ok(Event::Delete(obj)) => {
                    let key = (
                        obj.metadata.namespace.clone().unwrap_or_default(),
                        obj.metadata.name.clone().unwrap_or_default(),
                    );
                    seen[i].remove(&key);
                    true
                }
                Err(e) => {
                    let message = format!("watching Monitor resources: {e}");
                    tracing::warn!("{message}; retrying");
                    if status.last_error.as_ref().map(|e| &e.message) != Some(&message) {
                        status.last_error = Some(SourceError {
                            at: OffsetDateTime::now_utc(),
                            message,
                            problems: vec![],
                        });
                        let update = SourceUpdate {
                            status: status.clone(),
                            monitors: last_declared.is_none().then(Arc::default),
                        };
                        if updates.send(update).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
            };
            if !changed {
                continue;
            }

            let all: Resources = seen.iter().flat_map(|m| m.clone()).collect();
            let declared: Vec<DeclaredMonitor> = all
                .values()
                .filter_map(|r| {
                    let spec = r.spec.as_ref().ok()?;
                    Some(DeclaredMonitor {
                        spec: spec.clone(),
                        origin: Origin::Kubernetes(Box::new(KubernetesOrigin {
                            kind: crd::KIND.to_owned(),
                            namespace: r.namespace.clone(),
                            name: r.name.clone(),
                            generation: r.generation,
                            annotation: None,
                        })),
                    })
                })
                .collect();
            // Invalid resources are the source's problems (get_health shows
            // them), though unlike a bad file they block nothing else.
            let problems: Vec<String> = all
                .values()
                .filter_map(|r| {
                    let e = r.spec.as_ref().err()?;
                    Some(format!("{} {}/{}: {e}", crd::KIND, r.namespace, r.name))
                })
                .collect();
            let invalid = problems.len();
            resources.send_replace(Arc::new(all));

            let error = (!problems.is_empty()).then(|| SourceError {
                at: OffsetDateTime::now_utc(),
                message: format!(
                    "{invalid} invalid Monitor resource(s) skipped; the others run (each one's status says why)"
                ),
                problems,
            });
            let same_error = |a: &Option<SourceError>, b: &Option<SourceError>| {
                a.as_ref().map(|e| (&e.message, &e.problems))
                    == b.as_ref().map(|e| (&e.message, &e.problems))
            };
            let error_changed = !same_error(&status.last_error, &error);
            if error_changed {
                status.last_error = error;
            }
            let set_changed = last_declared.as_deref() != Some(&declared);
            if !set_changed && !error_changed {
                continue;
            }
            if set_changed {
                status.generation += 1;
                status.loaded_at = Some(OffsetDateTime::now_utc());
                status.monitors = declared.len();
                tracing::info!(
                    monitors = declared.len(),
                    invalid,
                    generation = status.generation,
                    "Monitor resources changed"
                );
                last_declared = Some(Arc::new(declared));
            }
            let update = SourceUpdate {
                status: status.clone(),
                monitors: if set_changed {
                    last_declared.clone()
                } else {
                    None
                },
            };
            if updates.send(update).await.is_err() {
                return;
            }
        }
    }

    /// Resolve one object; `None` for an object outside the namespace filter.
    fn resource(&self, obj: &DynamicObject) -> Option<Resource> {
        let namespace = obj.metadata.namespace.clone().unwrap_or_default();
        let name = obj.metadata.name.clone().unwrap_or_default();
        if !self.namespaces.allows(&namespace) {
            return None;
        }
        let spec = crd::resolve(&namespace, &name, obj.data.get("spec")).map(Arc::new);
        if let Err(e) = &spec {
            tracing::warn!(%namespace, %name, error = %e, "invalid Monitor resource skipped");
        }
        let status = obj
            .data
            .get("status")
            .and_then(|s| serde_json::from_value(s.clone()).ok());
        Some(Resource {
            namespace,
            name,
            generation: obj.metadata.generation,
            spec,
            status,
        })
    }
}
