//! The HTTP surface: `/healthz`, `/metrics` (Prometheus), `/ping/...` (heartbeats), and `/mcp` (Streamable HTTP)
//! when enabled, behind the rate limit, the proxy-buffering header and (when configured)
//! JWT authentication with its RFC 9728 metadata routes.
//! Also the same MCP service on a unix socket beside the database, where a
//! `maintenant --mcp-stdio` started later attaches.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::engine::App;
use crate::mcp::Maintenant;
use crate::mcp::auth::{self, Auth};
use crate::mcp::sessions::{self, SessionLimits, Sessions};
use crate::ratelimit::{self, RateLimiter};
use crate::serve::Connections;

/// SSE keep-alive: a comment line this often keeps proxies and load
/// balancers (idle timeouts of 30-60 s are common) from cutting a stream.
pub const SSE_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// Origins a browser may call `/mcp` from: the base URL's, plus the
/// configured ones. Requests without `Origin` (non-browser clients) pass.
pub fn allowed_origins(app: &App) -> Vec<String> {
    let mut origins = Vec::new();
    if let Ok(url) = reqwest::Url::parse(&app.settings.base_url()) {
        let origin = url.origin().ascii_serialization();
        if origin != "null" {
            // An explicit port (`:80` implied for http) so rmcp matches
            // only that port.
            match url.port_or_known_default() {
                Some(p) if url.port().is_none() => origins.push(format!("{origin}:{p}")),
                _ => origins.push(origin),
            }
        }
    }
    origins.extend(
        app.settings
            .mcp_allowed_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty()),
    );
    origins
}

/// Host names `/mcp` accepts. rmcp accepts only loopback names by default
/// (DNS-rebinding protection); a sidecar is reached by its service name, so
/// we add `maintenant`, this machine's hostname, the base URL's host and the
/// configured extras. A rebinding attack needs an attacker-controlled public
/// name, which none of these is.
pub fn allowed_hosts(app: &App) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1", "[::1]", "maintenant"]
        .map(String::from)
        .to_vec();
    if let Ok(url) = reqwest::Url::parse(&app.settings.base_url())
        && let Some(h) = url.host_str()
    {
        hosts.push(h.to_owned());
    }
    if !app.settings.addr.ip().is_unspecified() {
        hosts.push(app.settings.addr.ip().to_string());
    }
    if let Ok(h) = std::env::var("HOSTNAME").or_else(|_| std::fs::read_to_string("/etc/hostname")) {
        let h = h.trim();
        if !h.is_empty() {
            hosts.push(h.to_owned());
        }
    }
    hosts.extend(
        app.settings
            .mcp_allowed_hosts
            .iter()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty()),
    );
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The MCP service and the bound on its sessions, which the router must
/// layer around it ([`sessions::bound`]).
pub fn mcp_service(
    app: Arc<App>,
    hosts: Vec<String>,
    cancel: CancellationToken,
) -> (
    StreamableHttpService<Maintenant, LocalSessionManager>,
    Arc<Sessions>,
) {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(allowed_origins(&app))
        .enforce_origin_validation()
        .with_max_request_body_bytes(app.settings.mcp_max_body)
        .with_sse_keep_alive(Some(SSE_KEEP_ALIVE))
        // A tool answer is one message: on the stateless (2026-07-28) path it
        // goes back as plain JSON, not as an SSE stream the client must parse.
        // rmcp falls back to SSE by itself when a handler sends anything first.
        .with_json_response(true)
        .with_cancellation_token(cancel);
    let manager = Arc::new(LocalSessionManager::default());
    let sessions = Sessions::new(
        manager.clone(),
        SessionLimits {
            total: app.settings.mcp_max_sessions as usize,
            per_client: app.settings.mcp_max_sessions_per_client as usize,
        },
        app.settings.trust_forwarded_for,
    );
    let service =
        StreamableHttpService::new(move || Ok(Maintenant::new(app.clone())), manager, config);
    (service, sessions)
}

/// Liveness: 503 while the database cannot write (a full disk), so a
/// probe sees a daemon that answers every ping 503; otherwise 200, `status`
/// saying `degraded` for what a restart would not fix (a source's error, a
/// disconnected runtime).
async fn healthz(State(app): State<Arc<App>>) -> Response {
    let live = crate::readmodel::liveness(&app);
    let code = if live.writable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(live)).into_response()
}

fn status_routes() -> Router<Arc<App>> {
    Router::new()
        .route("/status", get(status_page))
        .route("/status.json", get(status_json))
        .route("/status/feed.atom", get(status_feed))
        .layer(middleware::from_fn(status_headers))
}

/// Defence in depth for the public pages (their text is escaped already):
/// a browser must not sniff another type out of them, and nothing but the
/// HTML page's own inline style may load or run. The JSON and the feed load
/// nothing at all.
async fn status_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    res
}

fn status_error(e: crate::readmodel::ReadError) -> Response {
    tracing::error!(error = %e, "status page");
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "the status page cannot be built right now\n",
    )
        .into_response()
}

async fn status_page(State(app): State<Arc<App>>) -> Response {
    match crate::status::page::status_data(&app) {
        Ok(d) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    crate::status::page::html_csp(),
                ),
            ],
            crate::status::page::render_html(&d),
        )
            .into_response(),
        Err(e) => status_error(e),
    }
}

async fn status_json(State(app): State<Arc<App>>) -> Response {
    match crate::status::page::status_data(&app) {
        Ok(d) => ([(header::CACHE_CONTROL, "no-cache")], Json(d)).into_response(),
        Err(e) => status_error(e),
    }
}

async fn status_feed(State(app): State<Arc<App>>) -> Response {
    match crate::status::page::feed_incidents(&app) {
        Ok(list) => (
            [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
            crate::status::page::render_atom(
                &list,
                &app.settings.base_url(),
                time::OffsetDateTime::now_utc(),
            ),
        )
            .into_response(),
        Err(e) => status_error(e),
    }
}

/// nginx (and proxies that honour it) must not buffer an SSE stream: the
/// client would see nothing until the buffer fills.
async fn no_proxy_buffering(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let is_sse = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if is_sse {
        res.headers_mut()
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    res
}

/// `DELETE /mcp` ends a session; rmcp answers 202 Accepted, which clients
/// such as the official Python SDK take for a failure (they expect 200 or
/// 204). The session is gone when rmcp answers, so 204 No Content is true.
async fn delete_answers_no_content(req: Request, next: Next) -> Response {
    let delete = req.method() == axum::http::Method::DELETE;
    let res = next.run(req).await;
    if delete && res.status() == axum::http::StatusCode::ACCEPTED {
        let (mut parts, _) = res.into_parts();
        parts.status = axum::http::StatusCode::NO_CONTENT;
        parts.headers.remove(header::CONTENT_TYPE);
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, axum::body::Body::empty());
    }
    res
}

/// Put the per-IP rate limit on a router (a no-op when the limit is off).
pub fn rate_limited<S: Clone + Send + Sync + 'static>(
    r: Router<S>,
    limiter: Option<&RateLimiter>,
) -> Router<S> {
    match limiter {
        Some(l) => r.layer(middleware::from_fn_with_state(l.clone(), ratelimit::limit)),
        None => r,
    }
}

/// The public router. `auth` is `Some` when `MAINTENANT_MCP_ALLOWED_EMAIL` is
/// set ([`Auth::from_settings`]).
pub fn router(app: Arc<App>, cancel: CancellationToken, auth: Option<Arc<Auth>>) -> Router {
    let mut r = Router::new().route("/healthz", get(healthz));
    // One limiter shared by every rate-limited route (/mcp, /ping/...).
    let limiter = RateLimiter::from_settings(&app.settings);
    // Prometheus metrics: unauthenticated like /healthz (names and numbers,
    // no targets, errors or bodies); MAINTENANT_METRICS=false turns it off.
    if app.settings.metrics {
        r = r.merge(rate_limited(
            Router::new().route("/metrics", get(crate::metrics::serve)),
            limiter.as_ref(),
        ));
    }
    r = r.merge(rate_limited(crate::ping::routes(), limiter.as_ref()));
    // The public status page: read-only, rate limited like the rest.
    r = r.merge(rate_limited(status_routes(), limiter.as_ref()));
    if app.settings.mcp {
        let (service, sessions) = mcp_service(app.clone(), allowed_hosts(&app), cancel);
        // Inside authentication: a caller without a valid token opens no
        // session, so it cannot push out anyone's.
        let mut mcp = Router::new()
            .nest_service("/mcp", service)
            .layer(middleware::from_fn_with_state(sessions, sessions::bound));
        if let Some(auth) = auth {
            mcp = mcp.layer(middleware::from_fn_with_state(
                auth.clone(),
                auth::require_bearer,
            ));
            r = r.merge(auth::metadata::routes(auth));
        }
        let mcp = mcp
            .layer(middleware::from_fn(no_proxy_buffering))
            .layer(middleware::from_fn(delete_answers_no_content));
        r = r.merge(rate_limited(mcp, limiter.as_ref()));
    }
    r.with_state(app)
}

/// Serve MCP on a unix socket (owner-only permissions: the socket gives the
/// same access as the database file), within the same connection bounds as
/// the TCP server.
pub async fn serve_unix(
    app: Arc<App>,
    path: &Path,
    cancel: CancellationToken,
    connections: Arc<Connections>,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // A socket left by a process that died is in the way; a live one was
    // checked by the caller (we own the database, so nobody else serves it).
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let (service, sessions) = mcp_service(app, vec!["localhost".into()], cancel.clone());
    let router = Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(sessions, sessions::bound))
        .layer(middleware::from_fn(delete_answers_no_content));
    let path = path.to_path_buf();
    tokio::spawn(async move {
        connections.serve(listener, router, cancel).await;
        let _ = std::fs::remove_file(path);
    });
    Ok(())
}
