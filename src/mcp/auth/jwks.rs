//! The issuer's signing keys: fetched from its JWKS (found through its
//! OIDC / OAuth metadata unless configured), cached, and fetched again when a
//! token names a key we don't have (key rotation), at most once per
//! [`MIN_REFRESH`] so a stream of made-up `kid`s cannot hammer the issuer.
//!
//! Fetches are single-flight: one fetch at a time runs in its own task, and
//! every request that needs it waits for that same fetch's result. An issuer
//! that accepts connections and never answers therefore costs one fetch
//! timeout to everyone waiting, not one timeout per request in a queue. Keys
//! older than [`MAX_AGE`] keep verifying while a background fetch replaces
//! them, so an issuer that stops answering does not lock anyone out.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::watch;

use super::ConfigError;

/// Shortest time between the end of one fetch and the start of the next.
pub const MIN_REFRESH: Duration = Duration::from_secs(5);
/// Keys older than this are fetched again in the background at the next
/// token, so a key the issuer withdrew stops being accepted.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// Longest one fetch (discovery and the JWKS together) may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The cache's clocks; [`Timing::default`] is what the daemon uses.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub min_refresh: Duration,
    pub max_age: Duration,
    pub fetch_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            min_refresh: MIN_REFRESH,
            max_age: MAX_AGE,
            fetch_timeout: FETCH_TIMEOUT,
        }
    }
}

/// One public key and the algorithms it may verify. The algorithms come from
/// the key (its `alg`, else its type), never from the token: that is what
/// makes `alg: none` and HMAC-with-the-RSA-key tokens fail.
#[derive(Clone)]
pub struct VerifyKey {
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<VerifyKey>>,
    without_kid: Vec<Arc<VerifyKey>>,
}

impl KeySet {
    fn find(&self, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        match kid {
            Some(k) => self.by_kid.get(k).cloned(),
            // A token without `kid` is only unambiguous against a single key.
            None => {
                let mut all = self.by_kid.values().chain(self.without_kid.iter());
                match (all.next(), all.next()) {
                    (Some(only), None) => Some(only.clone()),
                    _ => None,
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the token's key id {0:?} is not in the issuer's JWKS")]
    UnknownKid(String),
    #[error("the token has no `kid` and the issuer's JWKS has several keys")]
    NoKid,
    #[error("the issuer's signing keys cannot be fetched: {0}")]
    Unavailable(String),
}

fn not_found(kid: Option<&str>) -> KeyError {
    match kid {
        Some(k) => KeyError::UnknownKid(k.to_owned()),
        None => KeyError::NoKid,
    }
}

struct Cached {
    set: Arc<KeySet>,
    fetched: Instant,
}

/// What one fetch gave, as every waiter sees it.
type FetchResult = Result<Arc<KeySet>, String>;

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    /// The fetch running now: its result appears in the channel.
    inflight: Option<watch::Receiver<Option<FetchResult>>>,
    /// When the last fetch ended, and whether it failed.
    last_done: Option<(Instant, bool)>,
}

struct Inner {
    client: reqwest::Client,
    issuer: String,
    configured_url: Option<String>,
    discovered_url: tokio::sync::OnceCell<String>,
    timing: Timing,
    /// Held only to read or change the state, never across an await.
    state: Mutex<State>,
}

pub struct JwksCache {
    inner: Arc<Inner>,
}

/// What `key_for` decided under the lock.
enum Plan {
    Found(Arc<VerifyKey>),
    Fail(KeyError),
    Wait {
        rx: watch::Receiver<Option<FetchResult>>,
        stale: Option<Arc<KeySet>>,
    },
}

impl JwksCache {
    pub fn new(issuer: String, configured_url: Option<String>) -> Result<Self, ConfigError> {
        Self::with_timing(issuer, configured_url, Timing::default())
    }

    pub fn with_timing(
        issuer: String,
        configured_url: Option<String>,
        timing: Timing,
    ) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .timeout(timing.fetch_timeout)
            .user_agent(concat!("maintenant/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(JwksCache {
            inner: Arc::new(Inner {
                client,
                issuer,
                configured_url,
                discovered_url: tokio::sync::OnceCell::new(),
                timing,
                state: Mutex::new(State::default()),
            }),
        })
    }

    /// The key a token with this `kid` must be verified with.
    pub async fn key_for(&self, kid: Option<&str>) -> Result<Arc<VerifyKey>, KeyError> {
        let plan = self.plan(kid);
        let (mut rx, stale) = match plan {
            Plan::Found(k) => return Ok(k),
            Plan::Fail(e) => return Err(e),
            Plan::Wait { rx, stale } => (rx, stale),
        };
        // The fetch task always sends before it ends; a closed channel would
        // mean it panicked, which counts as a failed fetch.
        let result = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().expect("waited for Some"),
            Err(_) => Err("the JWKS fetch stopped".into()),
        };
        match result {
            Ok(set) => set.find(kid).ok_or_else(|| not_found(kid)),
            // An issuer that is briefly down should not lock everyone out:
            // keep verifying with the keys we had.
            Err(e) => match stale {
                Some(set) => set.find(kid).ok_or_else(|| not_found(kid)),
                None => Err(KeyError::Unavailable(e)),
            },
        }
    }

    #[cfg(test)]
    fn fetch_in_flight(&self) -> bool {
        self.inner.state.lock().unwrap().inflight.is_some()
    }

    /// Under the lock: answer from the cache, or join (or start) the fetch.
    fn plan(&self, kid: Option<&str>) -> Plan {
        let inner = &self.inner;
        let mut st = inner.state.lock().expect("jwks lock");
        let may_start = match st.last_done {
            Some((at, _)) => at.elapsed() >= inner.timing.min_refresh,
            None => true,
        };
        let (fresh, found, current) = match &st.cached {
            Some(c) => (
                c.fetched.elapsed() < inner.timing.max_age,
                c.set.find(kid),
                Some(c.set.clone()),
            ),
            None => (false, None, None),
        };
        match (found, fresh) {
            (Some(k), true) => Plan::Found(k),
            // Aged: verify with what we have, refresh behind the request.
            (Some(k), false) => {
                if st.inflight.is_none() && may_start {
                    let _ = Inner::start_fetch(inner, &mut st);
                }
                Plan::Found(k)
            }
            // Not in the cache (or no cache): this request needs a fetch.
            (None, _) => {
                if let Some(rx) = &st.inflight {
                    return Plan::Wait {
                        rx: rx.clone(),
                        stale: current,
                    };
                }
                if !may_start {
                    // Fetched (or tried) moments ago, by this request's
                    // neighbour or an earlier flood of unknown kids.
                    return Plan::Fail(match (&current, st.last_done) {
                        (None, Some((_, true))) => {
                            KeyError::Unavailable("the last attempt failed moments ago".into())
                        }
                        _ => not_found(kid),
                    });
                }
                Plan::Wait {
                    rx: Inner::start_fetch(inner, &mut st),
                    stale: current,
                }
            }
        }
    }
}

impl Inner {
    /// Start the one fetch, in its own task so a request that gives up (its
    /// client went away) does not cancel it for the others.
    fn start_fetch(this: &Arc<Inner>, st: &mut State) -> watch::Receiver<Option<FetchResult>> {
        let (tx, rx) = watch::channel(None);
        st.inflight = Some(rx.clone());
        let inner = this.clone();
        tokio::spawn(async move {
            let result = match tokio::time::timeout(inner.timing.fetch_timeout, inner.fetch()).await
            {
                Ok(r) => r.map(Arc::new),
                Err(_) => Err(format!("no answer within {:?}", inner.timing.fetch_timeout)),
            };
            {
                let mut st = inner.state.lock().expect("jwks lock");
                st.inflight = None;
                st.last_done = Some((Instant::now(), result.is_err()));
                match &result {
                    Ok(set) => {
                        st.cached = Some(Cached {
                            set: set.clone(),
                            fetched: Instant::now(),
                        })
                    }
                    Err(e) => tracing::warn!(error = %e, "JWKS fetch failed"),
                }
            }
            let _ = tx.send(Some(result));
        });
        rx
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let url = match &self.configured_url {
            Some(u) => u.clone(),
            None => self
                .discovered_url
                .get_or_try_init(|| discover(&self.client, &self.issuer))
                .await?
                .clone(),
        };
        let body: serde_json::Value = get_json(&self.client, &url).await?;
        let keys = body
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| format!("{url}: no `keys` array"))?;
        let mut set = KeySet::default();
        for raw in keys {
            match serde_json::from_value::<Jwk>(raw.clone())
                .map_err(|e| e.to_string())
                .and_then(|jwk| verify_key(&jwk).map(|k| (jwk.common.key_id.clone(), k)))
            {
                Ok((Some(kid), key)) => {
                    set.by_kid.insert(kid, Arc::new(key));
                }
                Ok((None, key)) => set.without_kid.push(Arc::new(key)),
                Err(why) => tracing::debug!(%why, "JWKS: key skipped"),
            }
        }
        tracing::info!(
            %url,
            keys = set.by_kid.len() + set.without_kid.len(),
            "JWKS fetched"
        );
        Ok(set)
    }
}

/// A usable signature key from a JWK, or why not.
fn verify_key(jwk: &Jwk) -> Result<VerifyKey, String> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("an encryption key".into());
    }
    let by_type: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return Err("an unsupported curve".into()),
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            vec![Algorithm::EdDSA]
        }
        // A shared secret published in a JWKS is no secret: never accept HMAC.
        AlgorithmParameters::OctetKey(_) => return Err("a symmetric key".into()),
        _ => return Err("an unsupported key type".into()),
    };
    let algorithms = match jwk.common.key_algorithm {
        Some(alg) => {
            let alg = Algorithm::from_str(&format!("{alg:?}"))
                .map_err(|_| format!("algorithm {alg:?} does not sign"))?;
            if !by_type.contains(&alg) {
                return Err(format!("algorithm {alg:?} does not fit the key type"));
            }
            vec![alg]
        }
        None => by_type,
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    Ok(VerifyKey { key, algorithms })
}

/// `jwks_uri` from the issuer's metadata: OpenID Connect discovery, then
/// RFC 8414 (the well-known segment goes before the issuer's path).
async fn discover(client: &reqwest::Client, issuer: &str) -> Result<String, String> {
    let issuer = issuer.trim_end_matches('/');
    let mut candidates = vec![format!("{issuer}/.well-known/openid-configuration")];
    if let Ok(u) = reqwest::Url::parse(issuer) {
        let path = u.path().trim_end_matches('/');
        let mut root = u.clone();
        root.set_path("");
        let root = root.as_str().trim_end_matches('/').to_owned();
        candidates.push(format!(
            "{root}/.well-known/oauth-authorization-server{path}"
        ));
        if !path.is_empty() {
            candidates.push(format!("{root}/.well-known/openid-configuration{path}"));
        }
    }
    let mut errors = Vec::new();
    for url in candidates {
        match get_json(client, &url).await {
            Ok(doc) => {
                if let Some(iss) = doc.get("issuer").and_then(|i| i.as_str())
                    && iss.trim_end_matches('/') != issuer
                {
                    errors.push(format!("{url}: issuer is {iss:?}, not {issuer:?}"));
                    continue;
                }
                match doc.get("jwks_uri").and_then(|j| j.as_str()) {
                    Some(j) => return Ok(j.to_owned()),
                    None => errors.push(format!("{url}: no jwks_uri")),
                }
            }
            Err(e) => errors.push(e),
        }
    }
    Err(format!(
        "no JWKS found for issuer {issuer} (set MAINTENANT_MCP_JWKS_URL): {}",
        errors.join("; ")
    ))
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<serde_json::Value, String> {
    let resp = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    resp.json().await.map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(v: serde_json::Value) -> Jwk {
        serde_json::from_value(v).unwrap()
    }

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    #[test]
    fn rsa_key_without_alg_verifies_rs_and_ps_only() {
        let k = verify_key(&jwk(
            serde_json::json!({"kty": "RSA", "kid": "a", "n": N, "e": "AQAB"}),
        ))
        .map_err(|e| e.to_string())
        .unwrap();
        assert!(k.algorithms.contains(&Algorithm::RS256));
        assert!(k.algorithms.contains(&Algorithm::PS512));
        assert!(
            !k.algorithms
                .iter()
                .any(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        );
    }

    #[test]
    fn a_key_alg_narrows_and_must_fit_the_key() {
        let k = verify_key(&jwk(
            serde_json::json!({"kty": "RSA", "alg": "RS384", "n": N, "e": "AQAB"}),
        ))
        .map_err(|e| e.to_string())
        .unwrap();
        assert_eq!(k.algorithms, vec![Algorithm::RS384]);
        // An RSA key labelled HS256 is refused, not turned into an HMAC secret.
        assert!(
            verify_key(&jwk(
                serde_json::json!({"kty": "RSA", "alg": "HS256", "n": N, "e": "AQAB"})
            ))
            .is_err()
        );
    }

    #[test]
    fn symmetric_and_encryption_keys_are_never_used() {
        assert!(verify_key(&jwk(serde_json::json!({"kty": "oct", "k": "c2VjcmV0"}))).is_err());
        assert!(
            verify_key(&jwk(
                serde_json::json!({"kty": "RSA", "use": "enc", "n": N, "e": "AQAB"})
            ))
            .is_err()
        );
    }

    #[test]
    fn a_token_without_kid_needs_a_single_key() {
        let key = Arc::new(
            verify_key(&jwk(serde_json::json!({"kty": "RSA", "n": N, "e": "AQAB"})))
                .map_err(|e| e.to_string())
                .unwrap(),
        );
        let mut set = KeySet::default();
        set.by_kid.insert("a".into(), key.clone());
        assert!(set.find(None).is_some());
        assert!(set.find(Some("a")).is_some());
        assert!(set.find(Some("b")).is_none());
        set.without_kid.push(key);
        assert!(set.find(None).is_none());
    }

    /// An issuer on 127.0.0.1 that counts connections and either serves
    /// `jwks` or accepts and never answers (`hang`).
    struct FakeIssuer {
        url: String,
        connections: Arc<std::sync::atomic::AtomicUsize>,
        hang: Arc<std::sync::atomic::AtomicBool>,
    }

    async fn fake_issuer(jwks: serde_json::Value) -> FakeIssuer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let hang = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, h) = (connections.clone(), hang.clone());
        let body = jwks.to_string();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut sock, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                if h.load(Ordering::SeqCst) {
                    held.push(sock);
                    continue;
                }
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        FakeIssuer {
            url,
            connections,
            hang,
        }
    }

    fn one_key_jwks() -> serde_json::Value {
        serde_json::json!({"keys": [{"kty": "RSA", "kid": "a", "n": N, "e": "AQAB"}]})
    }

    /// Four requests queued on an issuer that never answers: one fetch, one
    /// connection, and all four get their answer from it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_one_fetch_of_a_hung_issuer() {
        use std::sync::atomic::Ordering;
        let issuer = fake_issuer(one_key_jwks()).await;
        issuer.hang.store(true, Ordering::SeqCst);
        let timing = Timing {
            min_refresh: Duration::from_secs(30),
            max_age: MAX_AGE,
            fetch_timeout: Duration::from_millis(800),
        };
        let cache =
            JwksCache::with_timing("http://issuer".into(), Some(issuer.url.clone()), timing)
                .map_err(|e| e.to_string())
                .unwrap();
        let results = futures::future::join_all((0..4).map(|_| cache.key_for(Some("a")))).await;
        for r in &results {
            assert!(
                matches!(r, Err(KeyError::Unavailable(_))),
                "expected the fetch failure, got {:?}",
                r.as_ref().err()
            );
        }
        assert_eq!(issuer.connections.load(Ordering::SeqCst), 1);
        // Right after the failure, a fifth request does not fetch again.
        assert!(matches!(
            cache.key_for(Some("a")).await,
            Err(KeyError::Unavailable(_))
        ));
        assert_eq!(issuer.connections.load(Ordering::SeqCst), 1);
    }

    /// Keys older than their max age keep verifying while exactly one
    /// background refresh waits on a hung issuer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_aged_cache_verifies_while_one_background_refresh_runs() {
        use std::sync::atomic::Ordering;
        let issuer = fake_issuer(one_key_jwks()).await;
        let timing = Timing {
            min_refresh: Duration::from_secs(30),
            max_age: Duration::from_millis(200),
            fetch_timeout: Duration::from_secs(20),
        };
        let cache =
            JwksCache::with_timing("http://issuer".into(), Some(issuer.url.clone()), timing)
                .map_err(|e| e.to_string())
                .unwrap();
        assert!(cache.key_for(Some("a")).await.is_ok());
        assert_eq!(issuer.connections.load(Ordering::SeqCst), 1);

        issuer.hang.store(true, Ordering::SeqCst);
        // The 30 s minimum refresh interval would forbid a new fetch: age
        // the last fetch by hand instead of waiting for it.
        {
            let mut st = cache.inner.state.lock().unwrap();
            let old = Instant::now() - Duration::from_secs(60);
            st.last_done = Some((old, false));
            st.cached.as_mut().unwrap().fetched = old;
        }
        let results = futures::future::join_all((0..4).map(|_| cache.key_for(Some("a")))).await;
        assert!(results.iter().all(Result::is_ok));
        // They were answered while the refresh still waits on the issuer.
        assert!(cache.fetch_in_flight());
        for _ in 0..50 {
            if issuer.connections.load(Ordering::SeqCst) == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(issuer.connections.load(Ordering::SeqCst), 2);
        // More requests join nothing new: still one refresh, one connection.
        for _ in 0..4 {
            assert!(cache.key_for(Some("a")).await.is_ok());
        }
        assert!(cache.fetch_in_flight());
        assert_eq!(issuer.connections.load(Ordering::SeqCst), 2);
        // An unknown kid waits for that same refresh (it is not in the old
        // set), and still no second connection is made.
        let unknown =
            tokio::time::timeout(Duration::from_millis(300), cache.key_for(Some("b"))).await;
        assert!(unknown.is_err(), "an unknown kid must wait for the refresh");
        assert_eq!(issuer.connections.load(Ordering::SeqCst), 2);
    }
}
