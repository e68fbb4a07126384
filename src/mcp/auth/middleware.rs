//! The axum middleware in front of `/mcp`: Bearer token in, [`Identity`] in
//! the request extensions out, or a refusal with the right status and
//! `WWW-Authenticate` challenge.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::metadata::{ChallengeError, challenge};
use super::{Auth, AuthError, Identity, is_write_tool};

pub async fn require_bearer(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let identity = match bearer(&req) {
        None => Err(AuthError::Missing),
        Some(token) => auth.verifier.verify(token).await,
    };
    let identity = match identity {
        Ok(i) => i,
        Err(e) => return refuse(&auth, e),
    };
    let mut req = req;
    if let Some(scope) = auth.config.write_scope.as_deref()
        && !identity.has_scope(scope)
        && req.method() == Method::POST
    {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, auth.config.max_body).await {
            Ok(b) => b,
            Err(_) => {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "request body over {} bytes (MAINTENANT_MCP_MAX_BODY)",
                        auth.config.max_body
                    ),
                )
                    .into_response();
            }
        };
        if let Some(tool) = called_write_tool(&bytes) {
            return refuse(
                &auth,
                AuthError::InsufficientScope {
                    tool,
                    scope: scope.to_owned(),
                },
            );
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    tracing::debug!(subject = %identity.subject, "MCP request authenticated");
    req.extensions_mut().insert::<Identity>(identity);
    next.run(req).await
}

/// The token of an `Authorization: Bearer` header (scheme case-insensitive).
fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The first write tool a JSON-RPC message (or batch) calls, if any. A body
/// that is not JSON passes on to rmcp, which answers it properly.
fn called_write_tool(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let messages = match &value {
        serde_json::Value::Array(a) => a.iter().collect::<Vec<_>>(),
        one => vec![one],
    };
    messages.into_iter().find_map(|m| {
        if m.get("method")?.as_str()? != "tools/call" {
            return None;
        }
        let name = m.get("params")?.get("name")?.as_str()?;
        is_write_tool(name).then(|| name.to_owned())
    })
}

fn refuse(auth: &Auth, e: AuthError) -> Response {
    let config = &auth.config;
    let (status, code, www) = match &e {
        AuthError::Missing => (
            StatusCode::UNAUTHORIZED,
            None,
            challenge(config, None, None),
        ),
        AuthError::InvalidToken(why) => (
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            challenge(config, Some((ChallengeError::InvalidToken, why)), None),
        ),
        AuthError::NotAllowed(_) => (
            StatusCode::FORBIDDEN,
            Some("access_denied"),
            challenge(config, None, None),
        ),
        AuthError::InsufficientScope { scope, .. } => (
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            challenge(
                config,
                Some((ChallengeError::InsufficientScope, &e.to_string())),
                Some(scope),
            ),
        ),
        AuthError::KeysUnavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("temporarily_unavailable"),
            challenge(config, None, None),
        ),
    };
    tracing::info!(status = status.as_u16(), reason = %e, "MCP request refused");
    let body = serde_json::json!({
        "error": code.unwrap_or("unauthorized"),
        "error_description": e.to_string(),
    });
    (status, [(header::WWW_AUTHENTICATE, www)], axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_tools_are_found_in_single_and_batch_messages() {
        let one = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pause_monitor","arguments":{}}}"#;
        assert_eq!(called_write_tool(one).as_deref(), Some("pause_monitor"));
        let read =
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_endpoints"}}"#;
        assert_eq!(called_write_tool(read), None);
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"create_incident"}}]"#;
        assert_eq!(called_write_tool(batch).as_deref(), Some("create_incident"));
        assert_eq!(called_write_tool(b"not json"), None);
    }
}
