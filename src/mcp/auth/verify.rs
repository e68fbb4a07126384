//! Bearer token verification: signature with the issuer's key, then `exp`,
//! `nbf` (60 s leeway), `iss`, `aud`, then who it is (`email`, else `sub`)
//! against the allowed addresses.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use serde::Deserialize;

use super::jwks::{JwksCache, KeyError};
use super::{AuthConfig, Identity};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;

/// Why a request is refused. The middleware maps each to its HTTP status
/// and RFC 6750 error code.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No Bearer credentials at all (RFC 6750 §3.1: no error code).
    #[error("this endpoint needs an `Authorization: Bearer <token>` header")]
    Missing,
    /// The token is malformed, forged, expired or meant for someone else.
    #[error("{0}")]
    InvalidToken(String),
    /// A valid token for an account that is not allowed here.
    #[error("{0:?} is not allowed to use this server (MAINTENANT_MCP_ALLOWED_EMAIL)")]
    NotAllowed(String),
    /// A write tool called without the write scope.
    #[error("the tool {tool} changes state and needs the scope {scope:?}")]
    InsufficientScope { tool: String, scope: String },
    /// The issuer's keys could not be fetched and none are cached.
    #[error("{0}")]
    KeysUnavailable(String),
}

#[derive(Debug, Deserialize)]
struct Claims {
    email: Option<String>,
    email_verified: Option<bool>,
    sub: Option<String>,
    scope: Option<String>,
    scp: Option<Scp>,
}

/// `scp` is a list at some issuers and a space-separated string at others.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scp {
    List(Vec<String>),
    Text(String),
}

pub struct Verifier {
    keys: JwksCache,
    issuer: String,
    audience: String,
    allowed: Vec<String>,
}

impl Verifier {
    pub fn new(config: &AuthConfig, keys: JwksCache) -> Self {
        Verifier {
            keys,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            allowed: config.allowed.clone(),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        // Fails on `alg: none` and on anything that is not a JWS.
        let header = decode_header(token)
            .map_err(|e| AuthError::InvalidToken(format!("malformed token: {e}")))?;
        let key = self
            .keys
            .key_for(header.kid.as_deref())
            .await
            .map_err(|e| match e {
                KeyError::Unavailable(why) => AuthError::KeysUnavailable(why),
                other => AuthError::InvalidToken(other.to_string()),
            })?;
        if !key.algorithms.contains(&header.alg) {
            return Err(AuthError::InvalidToken(format!(
                "algorithm {:?} is not allowed for this key (allowed: {:?})",
                header.alg, key.algorithms
            )));
        }
        let mut v = Validation::new(header.alg);
        v.algorithms = key.algorithms.clone();
        v.leeway = LEEWAY_SECS;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.validate_aud = true;
        v.set_audience(&[&self.audience]);
        v.set_issuer(&[&self.issuer]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = decode::<Claims>(token, &key.key, &v).map_err(|e| {
            AuthError::InvalidToken(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
                ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
                ErrorKind::InvalidIssuer => format!("the token's issuer is not {}", self.issuer),
                ErrorKind::InvalidAudience => {
                    format!("the token's audience is not {}", self.audience)
                }
                ErrorKind::InvalidSignature => "the token's signature is invalid".to_owned(),
                ErrorKind::MissingRequiredClaim(c) => format!("the token has no `{c}` claim"),
                _ => format!("invalid token: {e}"),
            })
        })?;
        let claims = data.claims;
        // An address the issuer says it has not verified proves nothing.
        let email = claims
            .email
            .filter(|_| claims.email_verified != Some(false));
        let subject = email
            .or(claims.sub)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthError::InvalidToken("the token has no email or sub".into()))?;
        if !self.allowed.contains(&subject.to_lowercase()) {
            return Err(AuthError::NotAllowed(subject));
        }
        let mut scopes: Vec<String> = claims
            .scope
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .map(String::from)
            .collect();
        match claims.scp {
            Some(Scp::List(l)) => scopes.extend(l),
            Some(Scp::Text(t)) => scopes.extend(t.split_whitespace().map(String::from)),
            None => {}
        }
        Ok(Identity { subject, scopes })
    }
}
