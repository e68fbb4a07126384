//! The issuer's signing keys: fetched from its JWKS (found through its
//! OIDC / OAuth metadata unless configured), cached, and fetched again when a
//! token names a key we don't have (key rotation), at most once per
//! [`MIN_REFRESH`] so a stream of made-up `kid`s cannot hammer the issuer.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::ConfigError;

/// Shortest time between two fetches of the JWKS.
pub const MIN_REFRESH: Duration = Duration::from_secs(5);
/// Keys older than this are fetched again at the next token, so a key the
/// issuer withdrew stops being accepted.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

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

struct Cached {
    set: Arc<KeySet>,
    fetched: Instant,
}

pub struct JwksCache {
    client: reqwest::Client,
    issuer: String,
    configured_url: Option<String>,
    discovered_url: tokio::sync::OnceCell<String>,
    cached: RwLock<Option<Cached>>,
    /// Serialises fetches and remembers when the last one started.
    refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksCache {
    pub fn new(issuer: String, configured_url: Option<String>) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .user_agent(concat!("maintenant/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(JwksCache {
            client,
            issuer,
            configured_url,
            discovered_url: tokio::sync::OnceCell::new(),
            cached: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(None),
        })
    }

    /// The key a token with this `kid` must be verified with.
    pub async fn key_for(&self, kid: Option<&str>) -> Result<Arc<VerifyKey>, KeyError> {
        let stale = {
            let cached = self.cached.read().expect("jwks lock");
            match cached.as_ref() {
                Some(c) if c.fetched.elapsed() < MAX_AGE => match c.set.find(kid) {
                    Some(k) => return Ok(k),
                    None => None,
                },
                Some(c) => Some(c.set.clone()),
                None => None,
            }
        };
        let set = self.refresh(stale).await?;
        set.find(kid).ok_or_else(|| match kid {
            Some(k) => KeyError::UnknownKid(k.to_owned()),
            None => KeyError::NoKid,
        })
    }

    /// Fetch the JWKS unless another request just did; return the newest set.
    async fn refresh(&self, stale: Option<Arc<KeySet>>) -> Result<Arc<KeySet>, KeyError> {
        let mut last = self.refresh.lock().await;
        let current = self
            .cached
            .read()
            .expect("jwks lock")
            .as_ref()
            .map(|c| c.set.clone());
        // Fetched (or tried) moments ago, by this request's neighbour or an
        // earlier flood of unknown kids: use what that gave.
        if let Some(at) = *last
            && at.elapsed() < MIN_REFRESH
        {
            return current.or(stale).ok_or_else(|| {
                KeyError::Unavailable("the last attempt failed moments ago".into())
            });
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(set) => {
                let set = Arc::new(set);
                *self.cached.write().expect("jwks lock") = Some(Cached {
                    set: set.clone(),
                    fetched: Instant::now(),
                });
                Ok(set)
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWKS fetch failed");
                // An issuer that is briefly down should not lock everyone
                // out: keep verifying with the keys we had.
                current.or(stale).ok_or(KeyError::Unavailable(e))
            }
        }
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
}
