//! The scanner: every `MAINTENANT_UPDATES_INTERVAL`, for each running Docker
//! container, the digest its tag has now in its registry against the
//! digests of the image it runs (RepoDigests), and newer version tags.
//! Results go to sled (`image_updates`, by container name); `get_updates`
//! reads them. A registry that fails is reported per image and backed off
//! (doubling from 1 minute to 6 hours, or its `Retry-After`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::reference::ImageRef;
use super::registry::{Platform, RegistryClient, RegistryError};
use super::version::{Change, newer_tags};
use crate::runtime::{Container, Runtimes};
use crate::store::{Result as StoreResult, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpdateStatus {
    /// The tag points where the container's image came from.
    UpToDate,
    /// The tag points to another image now (`latest_digest`).
    UpdateAvailable,
    /// The registry could not be asked (`error`).
    Error,
    /// The image has no registry digest (built or imported locally, never pushed or pulled).
    Local,
    /// `maintenant.update.enabled=false`.
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NewerTag {
    /// major, minor or patch.
    pub change: Change,
    pub tag: String,
}

/// One container's answer (`get_updates`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ImageUpdate {
    pub container: String,
    /// The reference the container was started from (`nginx:1.27`).
    pub image: String,
    pub registry: String,
    pub repository: String,
    pub tag: String,
    pub status: UpdateStatus,
    /// The registry digests of the image the container runs (RepoDigests).
    pub current_digests: Vec<String>,
    /// What the tag points to now (for a multi-arch tag: its index).
    pub latest_digest: Option<String>,
    /// For a multi-arch tag: the manifest of the container's platform.
    pub platform_digest: Option<String>,
    /// `os/architecture[/variant]` of the running image.
    pub platform: Option<String>,
    /// Newest newer version tag per change (none with `pin`).
    pub newer_tags: Vec<NewerTag>,
    /// The labels in force: `track` (major, minor, patch, digest), `pin`, `include`, `exclude`.
    pub policy: Policy,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub checked_at: OffsetDateTime,
}

/// `maintenant.update.*` labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Policy {
    pub enabled: bool,
    /// Only the tag's digest is watched; newer tags are not looked for.
    pub pin: bool,
    /// The largest change reported: major (default), minor, patch; `digest` = no tags.
    pub track: String,
    /// Tags considered (glob, `*` any run of characters), comma-separated; empty: all.
    pub include: Vec<String>,
    /// Tags ignored (glob), comma-separated.
    pub exclude: Vec<String>,
}

impl Policy {
    /// Read the labels; a bad value is an error naming the label.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Result<Policy, String> {
        let get = |k: &str| {
            labels
                .get(&format!("maintenant.update.{k}"))
                .map(|v| v.trim())
        };
        let boolean = |k: &str, d: bool| match get(k) {
            None => Ok(d),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(format!(
                "label maintenant.update.{k}: {v:?} is not true or false"
            )),
        };
        let list = |k: &str| -> Vec<String> {
            get(k)
                .map(|v| {
                    v.split(',')
                        .map(|p| p.trim().to_owned())
                        .filter(|p| !p.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        for k in labels.keys() {
            if let Some(rest) = k.strip_prefix("maintenant.update.")
                && !["enabled", "pin", "track", "include", "exclude"].contains(&rest)
            {
                return Err(format!(
                    "unknown label {k} (maintenant.update.* takes enabled, pin, track, include, exclude)"
                ));
            }
        }
        let track = match get("track").unwrap_or("major") {
            t @ ("major" | "minor" | "patch" | "digest") => t.to_owned(),
            t => {
                return Err(format!(
                    "label maintenant.update.track: {t:?} is not major, minor, patch or digest"
                ));
            }
        };
        Ok(Policy {
            enabled: boolean("enabled", true)?,
            pin: boolean("pin", false)?,
            track,
            include: list("include"),
            exclude: list("exclude"),
        })
    }

    fn change_limit(&self) -> Option<Change> {
        if self.pin {
            return None;
        }
        match self.track.as_str() {
            "major" => Some(Change::Major),
            "minor" => Some(Change::Minor),
            "patch" => Some(Change::Patch),
            _ => None,
        }
    }

    fn wants(&self, tag: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| glob(p, tag)))
            && !self.exclude.iter().any(|p| glob(p, tag))
    }
}

/// `*` matches any run of characters; everything else literally.
pub fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || !s[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// Per-registry backoff after failures.
#[derive(Default)]
struct Backoff(Mutex<HashMap<String, (u32, Instant, String)>>);

impl Backoff {
    fn blocked(&self, registry: &str) -> Option<String> {
        let b = self.0.lock().unwrap();
        b.get(registry)
            .filter(|(_, until, _)| *until > Instant::now())
            .map(|(_, _, e)| e.clone())
    }

    fn failed(&self, registry: &str, e: &RegistryError) {
        let mut b = self.0.lock().unwrap();
        let n = b.get(registry).map_or(0, |(n, _, _)| *n) + 1;
        let wait = e.retry_after().unwrap_or_else(|| {
            Duration::from_secs(60)
                .saturating_mul(1 << (n - 1).min(9))
                .min(Duration::from_secs(6 * 3600))
        });
        b.insert(
            registry.to_owned(),
            (
                n,
                Instant::now() + wait,
                format!("{e} (next try in {} s)", wait.as_secs()),
            ),
        );
    }

    fn ok(&self, registry: &str) {
        self.0.lock().unwrap().remove(registry);
    }
}

#[derive(Clone)]
pub struct UpdateStore {
    tree: sled::Tree,
    meta: sled::Tree,
}

impl UpdateStore {
    pub fn new(store: &Store) -> StoreResult<UpdateStore> {
        Ok(UpdateStore {
            tree: store.db().open_tree("image_updates")?,
            meta: store.db().open_tree("image_updates_meta")?,
        })
    }

    /// Replace every row with one scan's results.
    pub fn replace(&self, rows: &[ImageUpdate], at: OffsetDateTime) -> StoreResult<()> {
        let mut batch = sled::Batch::default();
        for k in self.tree.iter().keys() {
            batch.remove(k?);
        }
        for r in rows {
            batch.insert(
                r.container.as_bytes(),
                serde_json::to_vec(r).map_err(StoreError::Corrupt)?,
            );
        }
        self.tree.apply_batch(batch)?;
        self.meta.insert(
            "last_scan",
            serde_json::to_vec(&at.unix_timestamp()).map_err(StoreError::Corrupt)?,
        )?;
        Ok(())
    }

    pub fn rows(&self) -> StoreResult<Vec<ImageUpdate>> {
        self.tree
            .iter()
            .values()
            .map(|v| Ok(serde_json::from_slice(&v?)?))
            .collect()
    }

    pub fn last_scan(&self) -> StoreResult<Option<OffsetDateTime>> {
        Ok(self
            .meta
            .get("last_scan")?
            .and_then(|v| serde_json::from_slice::<i64>(&v).ok())
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()))
    }
}

#[derive(Clone)]
pub struct Scanner {
    pub runtimes: Runtimes,
    pub client: RegistryClient,
    pub store: UpdateStore,
    pub interval: Duration,
    backoff: Arc<Backoff>,
}

/// What the registry says about a tag.
#[derive(Clone)]
struct Found {
    /// What the tag points to now.
    latest: String,
    /// In a multi-arch index, the container's platform's manifest.
    platform_digest: Option<String>,
    newer: Vec<NewerTag>,
}

/// What bollard tells about the image a container runs.
struct Running {
    reference: String,
    repo_digests: Vec<String>,
    platform: Option<Platform>,
}

impl Scanner {
    pub fn new(
        runtimes: Runtimes,
        client: RegistryClient,
        store: UpdateStore,
        interval: Duration,
    ) -> Self {
        Scanner {
            runtimes,
            client,
            store,
            interval,
            backoff: Arc::default(),
        }
    }

    async fn inspect(docker: &bollard::Docker, c: &Container) -> Result<Running, String> {
        let ci = docker
            .inspect_container(&c.id, None)
            .await
            .map_err(|e| format!("inspect {}: {e}", c.name))?;
        let reference = ci
            .config
            .and_then(|cfg| cfg.image)
            .unwrap_or_else(|| c.image.clone());
        let image_id = ci.image.unwrap_or_default();
        let img = docker
            .inspect_image(&image_id)
            .await
            .map_err(|e| format!("inspect image {image_id}: {e}"))?;
        Ok(Running {
            reference,
            repo_digests: img.repo_digests.unwrap_or_default(),
            platform: match (img.os, img.architecture) {
                (Some(os), Some(architecture)) => Some(Platform {
                    os,
                    architecture,
                    variant: img.variant,
                }),
                _ => None,
            },
        })
    }

    /// One pass over the running containers; None while the engine is not
    /// connected (the last results are kept rather than emptied).
    pub async fn scan_once(&self) -> Option<Vec<ImageUpdate>> {
        let docker = self.runtimes.docker_client()?;
        let containers = self.runtimes.containers();
        let mut rows = Vec::new();
        // One registry lookup per image reference per scan.
        let mut seen: HashMap<String, Result<Found, RegistryError>> = HashMap::new();
        for c in containers
            .values()
            .filter(|c| c.runtime == "docker" && c.is_running() && !c.ignored)
        {
            let now = OffsetDateTime::now_utc();
            let running = match Self::inspect(&docker, c).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(container = %c.name, error = %e, "updates: cannot inspect");
                    continue;
                }
            };
            let policy = Policy::from_labels(&c.labels);
            let parsed = ImageRef::parse(&running.reference);
            let (policy, r) = match (policy, parsed) {
                (Ok(p), Ok(r)) => (p, r),
                (Err(e), Ok(r)) => {
                    rows.push(row(
                        c,
                        &r,
                        &running,
                        UpdateStatus::Error,
                        Policy::default_on(),
                        Some(e),
                        now,
                    ));
                    continue;
                }
                (_, Err(e)) => {
                    tracing::debug!(container = %c.name, error = %e, "updates: not a registry image");
                    continue;
                }
            };
            if !policy.enabled {
                rows.push(row(
                    c,
                    &r,
                    &running,
                    UpdateStatus::Disabled,
                    policy,
                    None,
                    now,
                ));
                continue;
            }
            let prefix = format!("{}@", r.repo_name());
            let current: Vec<String> = running
                .repo_digests
                .iter()
                .filter_map(|d| d.strip_prefix(&prefix).map(str::to_owned))
                .collect();
            if current.is_empty() {
                rows.push(row(c, &r, &running, UpdateStatus::Local, policy, None, now));
                continue;
            }
            let key = format!("{r}|{}|{:?}", policy.track, running.platform);
            let found = match seen.get(&key) {
                Some(v) => v.clone(),
                None => {
                    let v = self.lookup(&r, &policy, running.platform.as_ref()).await;
                    seen.insert(key, v.clone());
                    v
                }
            };
            let mut out = row(c, &r, &running, UpdateStatus::Error, policy, None, now);
            out.current_digests = current.clone();
            match found {
                Ok(f) => {
                    out.status = if current.contains(&f.latest) {
                        UpdateStatus::UpToDate
                    } else {
                        UpdateStatus::UpdateAvailable
                    };
                    out.latest_digest = Some(f.latest);
                    out.platform_digest = f.platform_digest;
                    out.newer_tags = f.newer;
                }
                Err(e) => out.error = Some(e.to_string()),
            }
            rows.push(out);
        }
        Some(rows)
    }

    /// What the registry says about a tag.
    async fn lookup(
        &self,
        r: &ImageRef,
        policy: &Policy,
        platform: Option<&Platform>,
    ) -> Result<Found, RegistryError> {
        if let Some(e) = self.backoff.blocked(&r.registry) {
            return Err(RegistryError::Unreachable {
                registry: r.registry.clone(),
                error: format!("backing off after failures: {e}"),
            });
        }
        let res = async {
            let m = self.client.head(r).await?;
            let platform_digest = match (m.is_index(), platform) {
                (true, Some(p)) => self.client.platform_digest(r, &m.digest, p).await?,
                _ => None,
            };
            let newer = match policy.change_limit() {
                Some(limit) => {
                    let tags = self.client.tags(r).await?;
                    newer_tags(
                        &r.tag,
                        tags.iter().map(String::as_str).filter(|t| policy.wants(t)),
                        limit,
                    )
                    .into_iter()
                    .map(|(change, tag)| NewerTag { change, tag })
                    .collect()
                }
                None => Vec::new(),
            };
            Ok::<_, RegistryError>(Found {
                latest: m.digest,
                platform_digest,
                newer,
            })
        }
        .await;
        match &res {
            Ok(_) => self.backoff.ok(&r.registry),
            // A missing tag says nothing about the registry's health.
            Err(RegistryError::NotFound { .. }) => {}
            Err(e) => self.backoff.failed(&r.registry, e),
        }
        res
    }

    pub async fn run(self) {
        // Give the Docker runtime a moment to list containers first.
        tokio::time::sleep(Duration::from_secs(1)).await;
        loop {
            let started = OffsetDateTime::now_utc();
            let Some(rows) = self.scan_once().await else {
                tokio::time::sleep(Duration::from_secs(1).min(self.interval)).await;
                continue;
            };
            let available = rows
                .iter()
                .filter(|r| r.status == UpdateStatus::UpdateAvailable)
                .count();
            tracing::info!(
                images = rows.len(),
                updates = available,
                "image update scan"
            );
            if let Err(e) = self.store.replace(&rows, started) {
                tracing::error!(error = %e, "cannot store image update results");
            }
            tokio::time::sleep(self.interval).await;
        }
    }
}

impl Policy {
    fn default_on() -> Policy {
        Policy {
            enabled: true,
            pin: false,
            track: "major".into(),
            include: vec![],
            exclude: vec![],
        }
    }
}

fn row(
    c: &Container,
    r: &ImageRef,
    running: &Running,
    status: UpdateStatus,
    policy: Policy,
    error: Option<String>,
    now: OffsetDateTime,
) -> ImageUpdate {
    ImageUpdate {
        container: c.name.clone(),
        image: running.reference.clone(),
        registry: r.registry.clone(),
        repository: r.repository.clone(),
        tag: r.tag.clone(),
        status,
        current_digests: Vec::new(),
        latest_digest: None,
        platform_digest: None,
        platform: running.platform.as_ref().map(|p| match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        }),
        newer_tags: Vec::new(),
        policy,
        error,
        checked_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_registry_is_backed_off_and_a_rate_limit_is_honoured() {
        let b = Backoff::default();
        let down = RegistryError::Unreachable {
            registry: "r".into(),
            error: "refused".into(),
        };
        assert!(b.blocked("r").is_none());
        b.failed("r", &down);
        let why = b.blocked("r").unwrap();
        assert!(why.contains("next try in 60 s"), "{why}");
        b.failed("r", &down);
        assert!(
            b.blocked("r").unwrap().contains("next try in 120 s"),
            "doubles"
        );
        assert!(b.blocked("other").is_none(), "per registry");
        b.ok("r");
        assert!(b.blocked("r").is_none(), "a success clears it");
        let limited = RegistryError::RateLimited {
            registry: "r".into(),
            retry_after_s: 900,
        };
        b.failed("r", &limited);
        assert!(b.blocked("r").unwrap().contains("next try in 900 s"));
    }

    #[test]
    fn globs() {
        assert!(glob("1.*", "1.2.3"));
        assert!(!glob("1.*", "2.0"));
        assert!(glob("*-alpine", "1.2-alpine"));
        assert!(glob("*rc*", "1.0-rc1"));
        assert!(glob("latest", "latest"));
        assert!(!glob("latest", "latest2"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxc"));
    }

    #[test]
    fn labels_make_a_policy_and_bad_ones_say_which() {
        let l = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (format!("maintenant.update.{k}"), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        let p = Policy::from_labels(&l(&[("track", "minor"), ("exclude", "*-rc*, 9.*")])).unwrap();
        assert_eq!(p.change_limit(), Some(Change::Minor));
        assert!(p.wants("1.2.3") && !p.wants("1.3.0-rc1") && !p.wants("9.0.0"));
        let p = Policy::from_labels(&l(&[("pin", "true")])).unwrap();
        assert_eq!(p.change_limit(), None);
        assert!(
            !Policy::from_labels(&l(&[("enabled", "false")]))
                .unwrap()
                .enabled
        );
        let e = Policy::from_labels(&l(&[("track", "newest")])).unwrap_err();
        assert!(e.contains("maintenant.update.track"), "{e}");
        let e = Policy::from_labels(&l(&[("pinned", "true")])).unwrap_err();
        assert!(e.contains("unknown label maintenant.update.pinned"), "{e}");
    }
}
