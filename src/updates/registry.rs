//! A small OCI distribution client: what a tag points to now (HEAD of its
//! manifest), the platform's manifest inside a multi-arch index, and the
//! repository's tags.
//!
//! Auth follows the registry's challenge: `WWW-Authenticate: Bearer
//! realm=...,service=...,scope=...` gets a token from the realm (with the
//! Docker config's credentials for that registry when there are some, else
//! anonymously), `Basic` gets those credentials. Tokens are cached per
//! (registry, scope) until they expire.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};

use super::reference::{DOCKER_HUB, ImageRef};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Every manifest kind we understand, index kinds first: a registry then
/// answers a multi-arch tag with its index (whose digest is what `docker
/// pull` records) rather than converting it.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.oci.image.manifest.v1+json";

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("registry {registry} unreachable: {error}")]
    Unreachable { registry: String, error: String },
    #[error("registry {registry} refused access to {repository} (HTTP {status}){hint}")]
    Denied {
        registry: String,
        repository: String,
        status: u16,
        hint: String,
    },
    #[error("{what} not found in registry {registry}")]
    NotFound { registry: String, what: String },
    #[error("registry {registry} rate-limited us; retry after {retry_after_s} s")]
    RateLimited {
        registry: String,
        retry_after_s: u64,
    },
    #[error("registry {registry} answered {detail}")]
    Protocol { registry: String, detail: String },
    /// The registry's token realm may not receive its credentials.
    #[error(
        "registry {registry} asks for a token from {realm}, {rule}: its Docker-config credentials were not sent"
    )]
    RealmRefused {
        registry: String,
        realm: String,
        rule: String,
    },
}

impl RegistryError {
    /// How long to wait before asking this registry again, when it said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RegistryError::RateLimited { retry_after_s, .. } => {
                Some(Duration::from_secs(*retry_after_s))
            }
            _ => None,
        }
    }
}

/// Credentials per registry host, from a Docker `config.json` (`auths`).
#[derive(Debug, Clone, Default)]
pub struct Credentials(HashMap<String, (String, String)>);

impl Credentials {
    /// Read `auths` (`auth` = base64 of `user:password`, or `username` +
    /// `password`). A missing file is no credentials; a broken one is an error.
    pub fn from_docker_config(path: &Path) -> Result<Credentials, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Credentials::default()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut out = HashMap::new();
        if let Some(auths) = v.get("auths").and_then(|a| a.as_object()) {
            for (key, entry) in auths {
                let pair = if let Some(a) = entry.get("auth").and_then(|a| a.as_str()) {
                    base64::engine::general_purpose::STANDARD
                        .decode(a.trim())
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok())
                        .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())))
                } else {
                    match (
                        entry.get("username").and_then(|u| u.as_str()),
                        entry.get("password").and_then(|p| p.as_str()),
                    ) {
                        (Some(u), Some(p)) => Some((u.to_owned(), p.to_owned())),
                        _ => None,
                    }
                };
                let Some(pair) = pair else {
                    return Err(format!(
                        "{}: auths.{key}: needs `auth` (base64 of user:password) or `username` and `password`",
                        path.display()
                    ));
                };
                out.insert(registry_host(key), pair);
            }
        }
        Ok(Credentials(out))
    }

    pub fn for_registry(&self, registry: &str) -> Option<&(String, String)> {
        self.0.get(registry)
    }
}

/// `https://index.docker.io/v1/` -> `registry-1.docker.io`; `host:port/x` -> `host:port`.
fn registry_host(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        h => h.to_owned(),
    }
}

/// `Bearer realm="...",service="...",scope="..."` -> (scheme, params).
pub fn parse_challenge(h: &str) -> Option<(String, HashMap<String, String>)> {
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    let mut params = HashMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (k, after) = s.split_once('=')?;
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (q[..end].to_owned(), &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.insert(k, v);
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some((scheme.to_ascii_lowercase(), params))
}

/// The platform a container runs on (from its image's config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// What a tag points to now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub digest: String,
    pub media_type: String,
}

impl Manifest {
    pub fn is_index(&self) -> bool {
        self.media_type.starts_with(OCI_INDEX) || self.media_type.starts_with(DOCKER_LIST)
    }
}

/// Bearer tokens by (registry, scope), with when they stop being used.
type TokenCache = HashMap<(String, String), (String, Instant)>;

#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    creds: Arc<Credentials>,
    /// Registries spoken to over plain HTTP (loopback ones always are).
    insecure: Arc<Vec<String>>,
    /// Token realms (`host`, `host:port`, `*`) on another host than their
    /// registry that may receive its credentials
    /// (MAINTENANT_REGISTRY_ALLOW_CROSS_HOST_REALM).
    cross_host_realms: Arc<Vec<String>>,
    tokens: Arc<Mutex<TokenCache>>,
}

/// Docker Hub's registry sends its clients to this realm.
const DOCKER_HUB_REALM: &str = "auth.docker.io";

fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

impl RegistryClient {
    pub fn new(creds: Credentials, insecure: Vec<String>) -> RegistryClient {
        let _ = rustls::crypto::ring::default_provider().install_default();
        RegistryClient {
            http: reqwest::Client::builder()
                .user_agent(concat!("maintenant/", env!("CARGO_PKG_VERSION")))
                .timeout(Duration::from_secs(30))
                .build()
                .expect("reqwest client"),
            creds: Arc::new(creds),
            insecure: Arc::new(insecure),
            cross_host_realms: Arc::default(),
            tokens: Arc::default(),
        }
    }

    /// Realms on another host than their registry that may receive its
    /// credentials (`host`, `host:port`, or `*` for any).
    pub fn allow_cross_host_realms(mut self, realms: Vec<String>) -> RegistryClient {
        self.cross_host_realms = Arc::new(
            realms
                .into_iter()
                .map(|r| r.trim().to_ascii_lowercase())
                .filter(|r| !r.is_empty())
                .collect(),
        );
        self
    }

    /// Why the token realm `realm` of `registry` may not receive the
    /// registry's credentials, or `None` when it may. The registry names
    /// the realm: whoever runs it (or sits on a plain-HTTP path to it) would
    /// otherwise collect the password.
    fn realm_refusal(&self, registry: &str, realm: &reqwest::Url) -> Option<String> {
        let realm_host = realm.host_str().unwrap_or_default().to_ascii_lowercase();
        if realm.scheme() != "https" && !is_loopback_host(&realm_host) {
            return Some(format!(
                "which is plain {}: credentials go over HTTPS only (plain HTTP to a loopback realm only)",
                realm.scheme()
            ));
        }
        let registry_host = registry
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(registry, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let realm_bare = realm_host.trim_start_matches('[').trim_end_matches(']');
        if realm_bare == registry_host || (registry == DOCKER_HUB && realm_bare == DOCKER_HUB_REALM)
        {
            return None;
        }
        let with_port = realm
            .port_or_known_default()
            .map(|p| format!("{realm_host}:{p}"));
        let allowed = self.cross_host_realms.iter().any(|a| {
            a == "*" || *a == realm_host || *a == realm_bare || Some(a) == with_port.as_ref()
        });
        (!allowed).then(|| {
            format!(
                "on another host than the registry (allow it with MAINTENANT_REGISTRY_ALLOW_CROSS_HOST_REALM={realm_bare})"
            )
        })
    }

    fn base(&self, registry: &str) -> String {
        let host = registry.rsplit_once(':').map_or(registry, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                registry
            }
        });
        let loopback =
            host == "localhost" || host.starts_with("127.") || host == "[::1]" || host == "::1";
        if loopback || self.insecure.iter().any(|r| r == registry) {
            format!("http://{registry}")
        } else {
            format!("https://{registry}")
        }
    }

    /// One request with the auth dance; returns status, headers, body.
    async fn send(
        &self,
        method: Method,
        r: &ImageRef,
        path: &str,
        accept: Option<&str>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), RegistryError> {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}/v2/{}/{path}", self.base(&r.registry), r.repository)
        };
        let scope = format!("repository:{}:pull", r.repository);
        let cached = {
            let t = self.tokens.lock().unwrap();
            t.get(&(r.registry.clone(), scope.clone()))
                .filter(|(_, until)| *until > Instant::now())
                .map(|(tok, _)| tok.clone())
        };
        let mut auth = cached.map(|t| format!("Bearer {t}"));
        for attempt in 0..2 {
            let mut req = self.http.request(method.clone(), &url);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(a) = &auth {
                req = req.header(AUTHORIZATION, a);
            }
            let res = req.send().await.map_err(|e| RegistryError::Unreachable {
                registry: r.registry.clone(),
                error: e.to_string(),
            })?;
            let status = res.status();
            let headers = res.headers().clone();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                let challenge = headers
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                auth = Some(self.authorize(r, &scope, challenge).await?);
                continue;
            }
            let body =
                res.bytes()
                    .await
                    .map(|b| b.to_vec())
                    .map_err(|e| RegistryError::Unreachable {
                        registry: r.registry.clone(),
                        error: e.to_string(),
                    })?;
            return match status {
                s if s.is_success() => Ok((s, headers, body)),
                StatusCode::TOO_MANY_REQUESTS => Err(RegistryError::RateLimited {
                    registry: r.registry.clone(),
                    retry_after_s: headers
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(600),
                }),
                StatusCode::NOT_FOUND => Err(RegistryError::NotFound {
                    registry: r.registry.clone(),
                    what: format!("{}:{}", r.repository, r.tag),
                }),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(self.denied(r, status)),
                s => Err(RegistryError::Protocol {
                    registry: r.registry.clone(),
                    detail: format!("HTTP {} for {url}", s.as_u16()),
                }),
            };
        }
        Err(self.denied(r, StatusCode::UNAUTHORIZED))
    }

    fn denied(&self, r: &ImageRef, status: StatusCode) -> RegistryError {
        RegistryError::Denied {
            registry: r.registry.clone(),
            repository: r.repository.clone(),
            status: status.as_u16(),
            hint: if self.creds.for_registry(&r.registry).is_some() {
                " with the credentials of the Docker config".into()
            } else {
                "; add credentials for it to the Docker config (MAINTENANT_DOCKER_CONFIG)".into()
            },
        }
    }

    /// The Authorization header value a challenge asks for.
    async fn authorize(
        &self,
        r: &ImageRef,
        scope: &str,
        challenge: Option<(String, HashMap<String, String>)>,
    ) -> Result<String, RegistryError> {
        let creds = self.creds.for_registry(&r.registry);
        let basic = |(u, p): &(String, String)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        match challenge {
            Some((scheme, params)) if scheme == "bearer" => {
                let realm = params.get("realm").ok_or_else(|| RegistryError::Protocol {
                    registry: r.registry.clone(),
                    detail: "a Bearer challenge without realm".into(),
                })?;
                let mut url = reqwest::Url::parse(realm).map_err(|e| RegistryError::Protocol {
                    registry: r.registry.clone(),
                    detail: format!("a Bearer realm that is not a URL ({realm}): {e}"),
                })?;
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair("scope", params.get("scope").map_or(scope, String::as_str));
                    if let Some(s) = params.get("service") {
                        q.append_pair("service", s);
                    }
                }
                if creds.is_some()
                    && let Some(rule) = self.realm_refusal(&r.registry, &url)
                {
                    return Err(RegistryError::RealmRefused {
                        registry: r.registry.clone(),
                        realm: realm.clone(),
                        rule,
                    });
                }
                // A redirect of the realm to another host or port loses the
                // Authorization header (reqwest drops it).
                let mut req = self.http.get(url);
                if let Some(c) = creds {
                    req = req.header(AUTHORIZATION, basic(c));
                }
                let res = req.send().await.map_err(|e| RegistryError::Unreachable {
                    registry: r.registry.clone(),
                    error: format!("token service {realm}: {e}"),
                })?;
                if !res.status().is_success() {
                    return Err(self.denied(r, res.status()));
                }
                let v: serde_json::Value =
                    res.json().await.map_err(|e| RegistryError::Protocol {
                        registry: r.registry.clone(),
                        detail: format!("a token that is not JSON: {e}"),
                    })?;
                let token = v
                    .get("token")
                    .or_else(|| v.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| RegistryError::Protocol {
                        registry: r.registry.clone(),
                        detail: "a token answer without token".into(),
                    })?
                    .to_owned();
                // Refresh a little before the end (default lifetime 60 s).
                let life = v.get("expires_in").and_then(|e| e.as_u64()).unwrap_or(60);
                let until = Instant::now() + Duration::from_secs(life.saturating_sub(10).max(1));
                self.tokens.lock().unwrap().insert(
                    (r.registry.clone(), scope.to_owned()),
                    (token.clone(), until),
                );
                Ok(format!("Bearer {token}"))
            }
            _ => creds
                .map(basic)
                .ok_or_else(|| self.denied(r, StatusCode::UNAUTHORIZED)),
        }
    }

    /// HEAD the tag's manifest: its digest and media type (what `docker
    /// pull` of the tag would get now).
    pub async fn head(&self, r: &ImageRef) -> Result<Manifest, RegistryError> {
        let (_, h, _) = self
            .send(
                Method::HEAD,
                r,
                &format!("manifests/{}", r.tag),
                Some(ACCEPT_MANIFESTS),
            )
            .await?;
        let digest = h
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Protocol {
                registry: r.registry.clone(),
                detail: "a manifest without Docker-Content-Digest".into(),
            })?
            .to_owned();
        let media_type = h
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(DOCKER_MANIFEST)
            .to_owned();
        Ok(Manifest { digest, media_type })
    }

    /// In a multi-arch index, the digest of the platform's manifest.
    pub async fn platform_digest(
        &self,
        r: &ImageRef,
        index_digest: &str,
        p: &Platform,
    ) -> Result<Option<String>, RegistryError> {
        let (_, _, body) = self
            .send(
                Method::GET,
                r,
                &format!("manifests/{index_digest}"),
                Some(ACCEPT_MANIFESTS),
            )
            .await?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                registry: r.registry.clone(),
                detail: format!("an index that is not JSON: {e}"),
            })?;
        Ok(select_platform(&v, p))
    }

    /// Every tag of the repository (following `Link` pages, at most 50).
    pub async fn tags(&self, r: &ImageRef) -> Result<Vec<String>, RegistryError> {
        let mut out = Vec::new();
        let mut path = "tags/list?n=1000".to_owned();
        for _ in 0..50 {
            let (_, h, body) = self.send(Method::GET, r, &path, None).await?;
            let v: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                    registry: r.registry.clone(),
                    detail: format!("a tag list that is not JSON: {e}"),
                })?;
            if let Some(tags) = v.get("tags").and_then(|t| t.as_array()) {
                out.extend(tags.iter().filter_map(|t| t.as_str().map(str::to_owned)));
            }
            // `Link: </v2/app/tags/list?n=1000&last=x>; rel="next"`
            let next = h
                .get("link")
                .and_then(|l| l.to_str().ok())
                .and_then(|l| l.split_once('<'))
                .and_then(|(_, rest)| rest.split_once('>'))
                .map(|(u, _)| u.to_owned());
            match next {
                Some(u) if u.starts_with("http") => path = u,
                Some(u) => path = format!("{}{u}", self.base(&r.registry)),
                None => return Ok(out),
            }
        }
        Ok(out)
    }
}

/// The manifest of `p` in an index (`variant` compared when both have one).
pub fn select_platform(index: &serde_json::Value, p: &Platform) -> Option<String> {
    index
        .get("manifests")?
        .as_array()?
        .iter()
        .find(|m| {
            let plat = &m["platform"];
            plat["os"] == p.os.as_str()
                && plat["architecture"] == p.architecture.as_str()
                && match (plat["variant"].as_str(), &p.variant) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
        })
        .and_then(|m| m["digest"].as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        )
        .unwrap();
        assert_eq!(s, "bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/nginx:pull");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(
            (s.as_str(), p["realm"].as_str()),
            ("basic", "Registry Realm")
        );
    }

    #[test]
    fn reads_docker_config_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
                          "ghcr.io": {"username": "me", "password": "tok"}}}"#,
        )
        .unwrap();
        let c = Credentials::from_docker_config(&path).unwrap();
        assert_eq!(
            c.for_registry(DOCKER_HUB),
            Some(&("user".into(), "pass".into()))
        );
        assert_eq!(
            c.for_registry("ghcr.io"),
            Some(&("me".into(), "tok".into()))
        );
        assert!(c.for_registry("quay.io").is_none());
        std::fs::write(&path, r#"{"auths": {"x.io": {}}}"#).unwrap();
        let e = Credentials::from_docker_config(&path).unwrap_err();
        assert!(e.contains("auths.x.io"), "{e}");
        assert!(Credentials::from_docker_config(&dir.path().join("none")).is_ok());
    }

    #[test]
    fn picks_the_platform_of_an_index() {
        let index = serde_json::json!({"manifests": [
            {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:v7", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
            {"digest": "sha256:v6", "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
        ]});
        let p = |a: &str, v: Option<&str>| Platform {
            os: "linux".into(),
            architecture: a.into(),
            variant: v.map(Into::into),
        };
        assert_eq!(
            select_platform(&index, &p("amd64", None)).as_deref(),
            Some("sha256:amd")
        );
        assert_eq!(
            select_platform(&index, &p("arm", Some("v6"))).as_deref(),
            Some("sha256:v6")
        );
        assert_eq!(select_platform(&index, &p("s390x", None)), None);
    }

    /// A registry on 127.0.0.1 that sends clients to the token realm
    /// `realm` (a path is appended), and a realm server on `realm_ip` that
    /// records the Authorization header of each token request.
    async fn registry_with_realm(
        realm_ip: &str,
        realm_scheme_host: impl Fn(u16) -> String,
    ) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
        use axum::http::{HeaderMap as AxHeaders, StatusCode as AxStatus};
        let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let realm_listener = tokio::net::TcpListener::bind((realm_ip, 0)).await.unwrap();
        let realm_port = realm_listener.local_addr().unwrap().port();
        let s = seen.clone();
        let realm_app = axum::Router::new().fallback(move |h: AxHeaders| {
            s.lock().unwrap().push(
                h.get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            );
            async { axum::Json(serde_json::json!({"token": "tok", "expires_in": 300})) }
        });
        tokio::spawn(async move { axum::serve(realm_listener, realm_app).await });
        let challenge = format!(
            r#"Bearer realm="{}/token",service="test""#,
            realm_scheme_host(realm_port)
        );
        let registry_app = axum::Router::new().fallback(move |h: AxHeaders| {
            let challenge = challenge.clone();
            async move {
                if h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer tok") {
                    (
                        AxStatus::OK,
                        [("docker-content-digest", "sha256:abc".to_owned())],
                    )
                } else {
                    (AxStatus::UNAUTHORIZED, [("www-authenticate", challenge)])
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let registry = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, registry_app).await });
        (registry, seen)
    }

    fn creds_for(registry: &str) -> Credentials {
        Credentials(HashMap::from([(
            registry.to_owned(),
            ("user".to_owned(), "secret".to_owned()),
        )]))
    }

    fn image(registry: &str) -> ImageRef {
        ImageRef::parse(&format!("{registry}/app:latest")).unwrap()
    }

    #[tokio::test]
    async fn credentials_go_to_a_realm_on_another_host_only_when_allowed() {
        let (registry, seen) =
            registry_with_realm("127.0.0.2", |p| format!("http://127.0.0.2:{p}")).await;
        let client = RegistryClient::new(creds_for(&registry), vec![]);
        let e = client.head(&image(&registry)).await.unwrap_err();
        assert!(matches!(e, RegistryError::RealmRefused { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("on another host than the registry")
                && msg.contains("MAINTENANT_REGISTRY_ALLOW_CROSS_HOST_REALM=127.0.0.2"),
            "{msg}"
        );
        assert!(seen.lock().unwrap().is_empty(), "the realm was not asked");

        // Without credentials nothing is at stake: the anonymous token is fetched.
        let anonymous = RegistryClient::new(Credentials::default(), vec![]);
        assert_eq!(
            anonymous.head(&image(&registry)).await.unwrap().digest,
            "sha256:abc"
        );
        assert_eq!(*seen.lock().unwrap(), vec![None]);

        // Allowed by name (with or without its port): the credentials go.
        for allow in ["127.0.0.2", "*"] {
            seen.lock().unwrap().clear();
            let client = RegistryClient::new(creds_for(&registry), vec![])
                .allow_cross_host_realms(vec![allow.into()]);
            assert_eq!(
                client.head(&image(&registry)).await.unwrap().digest,
                "sha256:abc"
            );
            let basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("user:secret")
            );
            assert_eq!(*seen.lock().unwrap(), vec![Some(basic)], "{allow}");
        }
    }

    #[tokio::test]
    async fn a_realm_on_the_registry_s_host_gets_the_credentials() {
        // Another port of the same host: the same machine, not another host.
        let (registry, seen) =
            registry_with_realm("127.0.0.1", |p| format!("http://127.0.0.1:{p}")).await;
        let client = RegistryClient::new(creds_for(&registry), vec![]);
        assert_eq!(
            client.head(&image(&registry)).await.unwrap().digest,
            "sha256:abc"
        );
        assert!(
            seen.lock().unwrap()[0]
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic "))
        );
    }

    #[test]
    fn plain_http_realms_are_refused_except_on_loopback() {
        let client = RegistryClient::new(Credentials::default(), vec![])
            .allow_cross_host_realms(vec!["*".into()]);
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        // Decided on the URL, before any connection: nothing is sent to these.
        let r = client
            .realm_refusal("registry.invalid", &url("http://registry.invalid/token"))
            .unwrap();
        assert!(r.contains("plain http"), "{r}");
        assert!(
            client
                .realm_refusal("registry.invalid", &url("http://auth.invalid/token"))
                .unwrap()
                .contains("plain http"),
            "allowing the host does not allow plain HTTP"
        );
        for ok in [
            "https://auth.invalid/token",
            "http://127.0.0.5:9/token",
            "http://[::1]:9/token",
            "http://localhost:9/token",
        ] {
            assert_eq!(
                client.realm_refusal("registry.invalid", &url(ok)),
                None,
                "{ok}"
            );
        }
        // Docker Hub's own realm needs no setting.
        let strict = RegistryClient::new(Credentials::default(), vec![]);
        assert_eq!(
            strict.realm_refusal(DOCKER_HUB, &url("https://auth.docker.io/token")),
            None
        );
        assert!(
            strict
                .realm_refusal("ghcr.io", &url("https://auth.docker.io/token"))
                .is_some()
        );
        assert_eq!(
            strict.realm_refusal("ghcr.io:443", &url("https://GHCR.io/token")),
            None
        );
    }
}
