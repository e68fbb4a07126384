//! `/mcp` as an OAuth 2.1 resource server.
//!
//! rmcp has no server-side auth, so this is axum middleware in front of the
//! Streamable HTTP service: [`middleware::require_bearer`] verifies the Bearer
//! JWT ([`verify`]) against the issuer's keys ([`jwks`]), refuses with the
//! RFC 6750 / RFC 9728 challenge ([`metadata`]), and puts the caller's
//! [`Identity`] in the request extensions, where a tool finds it through
//! [`caller`] (rmcp hands tools the request's `http::request::Parts`).

pub mod jwks;
pub mod metadata;
pub mod middleware;
pub mod verify;

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::service::RequestContext;

use crate::settings::Settings;

pub use jwks::JwksCache;
pub use middleware::require_bearer;
pub use verify::{AuthError, Verifier};

/// Tools that change state. With `MAINTENANT_MCP_WRITE_SCOPE` set, a
/// `tools/call` of one of these needs that scope in the token. Keyed by name
/// so the rule holds whether or not a tool is compiled in yet.
pub const WRITE_TOOLS: [&str; 6] = [
    "acknowledge_alert",
    "create_incident",
    "update_incident",
    "create_maintenance",
    "pause_monitor",
    "resume_monitor",
];

pub fn is_write_tool(name: &str) -> bool {
    WRITE_TOOLS.contains(&name)
}

/// Who is calling, as verified from the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The `email` claim, else `sub` (as the token spells it).
    pub subject: String,
    /// Scopes from `scope` (space-separated) or `scp`.
    pub scopes: Vec<String>,
}

impl Identity {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// The verified caller of a tool over authenticated HTTP; `None` over stdio,
/// the unix socket, or when `/mcp` is open.
pub fn caller(ctx: &RequestContext<RoleServer>) -> Option<Identity> {
    ctx.extensions
        .get::<axum::http::request::Parts>()?
        .extensions
        .get::<Identity>()
        .cloned()
}

/// A setting that makes authentication impossible to run as asked.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "MAINTENANT_MCP_ALLOWED_EMAIL is set but MAINTENANT_MCP_ISSUER is not: set it to your \
         identity provider's issuer URL (the `iss` of its tokens)"
    )]
    NoIssuer,
    #[error("{setting}={value:?} is not a URL: {reason}")]
    BadUrl {
        setting: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot build the HTTP client for the JWKS: {0}")]
    Client(String),
}

/// What authentication checks, resolved from the settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub issuer: String,
    pub jwks_url: Option<String>,
    pub audience: String,
    /// Lowercased allowed addresses (`email`, else `sub`).
    pub allowed: Vec<String>,
    pub write_scope: Option<String>,
    /// The RFC 9728 `resource`: the public `/mcp` URL.
    pub resource: String,
    /// Where the RFC 9728 document for `/mcp` is served.
    pub metadata_url: String,
    pub max_body: usize,
}

impl AuthConfig {
    /// `None` when `MAINTENANT_MCP_ALLOWED_EMAIL` is unset (the endpoint is open).
    pub fn from_settings(s: &Settings) -> Result<Option<AuthConfig>, ConfigError> {
        let allowed: Vec<String> = s
            .mcp_allowed_email
            .iter()
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        if allowed.is_empty() {
            return Ok(None);
        }
        let issuer = s
            .mcp_issuer
            .as_deref()
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .ok_or(ConfigError::NoIssuer)?
            .to_owned();
        check_url("MAINTENANT_MCP_ISSUER", &issuer)?;
        if let Some(u) = &s.mcp_jwks_url {
            check_url("MAINTENANT_MCP_JWKS_URL", u)?;
        }
        let base = s.base_url();
        Ok(Some(AuthConfig {
            issuer,
            jwks_url: s.mcp_jwks_url.clone().filter(|u| !u.trim().is_empty()),
            audience: s.mcp_audience.clone().unwrap_or_else(|| s.mcp_url()),
            allowed,
            write_scope: s.mcp_write_scope.clone().filter(|w| !w.trim().is_empty()),
            resource: s.mcp_url(),
            metadata_url: format!("{base}/.well-known/oauth-protected-resource/mcp"),
            max_body: s.mcp_max_body,
        }))
    }
}

fn check_url(setting: &'static str, value: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        Ok(u) => Err(ConfigError::BadUrl {
            setting,
            value: value.to_owned(),
            reason: format!("scheme {} is not http or https", u.scheme()),
        }),
        Err(e) => Err(ConfigError::BadUrl {
            setting,
            value: value.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// Everything the middleware needs, shared by every request.
pub struct Auth {
    pub config: AuthConfig,
    pub verifier: Verifier,
}

impl Auth {
    /// `Ok(None)` when authentication is off.
    pub fn from_settings(s: &Settings) -> Result<Option<Arc<Auth>>, ConfigError> {
        let Some(config) = AuthConfig::from_settings(s)? else {
            return Ok(None);
        };
        let keys = JwksCache::new(config.issuer.clone(), config.jwks_url.clone())?;
        let verifier = Verifier::new(&config, keys);
        Ok(Some(Arc::new(Auth { config, verifier })))
    }
}
