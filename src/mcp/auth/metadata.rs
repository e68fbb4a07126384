//! RFC 9728 protected resource metadata, and the `WWW-Authenticate`
//! challenge (RFC 6750) that points clients to it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::{Auth, AuthConfig};

/// The metadata document: what `/mcp` is and who issues tokens for it.
pub fn document(config: &AuthConfig) -> serde_json::Value {
    let scopes: Vec<&str> = config.write_scope.iter().map(String::as_str).collect();
    serde_json::json!({
        "resource": config.resource,
        "authorization_servers": [config.issuer],
        "bearer_methods_supported": ["header"],
        "scopes_supported": scopes,
        "resource_name": "maintenant",
    })
}

async fn protected_resource(State(auth): State<Arc<Auth>>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "max-age=300")],
        Json(document(&auth.config)),
    )
}

/// `/.well-known/oauth-protected-resource` and its `/mcp`-suffixed form
/// (RFC 9728 §3.1 inserts the well-known segment before the resource path).
pub fn routes<S: Clone + Send + Sync + 'static>(auth: Arc<Auth>) -> axum::Router<S> {
    axum::Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(protected_resource),
        )
        .with_state(auth)
}

/// An RFC 6750 error code for the challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeError {
    InvalidToken,
    InsufficientScope,
}

/// `Bearer resource_metadata="…"[, error="…", error_description="…"][, scope="…"]`.
pub fn challenge(
    config: &AuthConfig,
    error: Option<(ChallengeError, &str)>,
    scope: Option<&str>,
) -> HeaderValue {
    let mut v = format!(
        "Bearer resource_metadata=\"{}\"",
        quoted(&config.metadata_url)
    );
    if let Some((code, description)) = error {
        let code = match code {
            ChallengeError::InvalidToken => "invalid_token",
            ChallengeError::InsufficientScope => "insufficient_scope",
        };
        v.push_str(&format!(
            ", error=\"{code}\", error_description=\"{}\"",
            quoted(description)
        ));
    }
    if let Some(scope) = scope {
        v.push_str(&format!(", scope=\"{}\"", quoted(scope)));
    }
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// RFC 6750 values are quoted strings of printable ASCII without `"` or `\`.
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AuthConfig {
        AuthConfig {
            issuer: "https://id.example".into(),
            jwks_url: None,
            audience: "https://m.example/mcp".into(),
            allowed: vec!["a@example.com".into()],
            write_scope: Some("maintenant:write".into()),
            resource: "https://m.example/mcp".into(),
            metadata_url: "https://m.example/.well-known/oauth-protected-resource/mcp".into(),
            max_body: 1024,
        }
    }

    #[test]
    fn challenge_without_token_has_no_error() {
        assert_eq!(
            challenge(&config(), None, None),
            "Bearer resource_metadata=\"https://m.example/.well-known/oauth-protected-resource/mcp\""
        );
    }

    #[test]
    fn challenge_quotes_are_stripped_from_descriptions() {
        let v = challenge(
            &config(),
            Some((ChallengeError::InvalidToken, "bad \"kid\"\n")),
            None,
        );
        assert!(
            v.to_str()
                .unwrap()
                .ends_with("error=\"invalid_token\", error_description=\"bad kid\""),
            "{v:?}"
        );
    }

    #[test]
    fn document_names_the_issuer_and_scopes() {
        let d = document(&config());
        assert_eq!(d["resource"], "https://m.example/mcp");
        assert_eq!(d["authorization_servers"][0], "https://id.example");
        assert_eq!(d["bearer_methods_supported"][0], "header");
        assert_eq!(d["scopes_supported"][0], "maintenant:write");
    }
}
