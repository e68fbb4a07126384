//! The HTTP surface: `/healthz`, `/ping/...` (heartbeats), and `/mcp` (Streamable HTTP) when enabled.
//! Also the same MCP service on a unix socket beside the database, where a
//! `maintenant --mcp-stdio` started later attaches.

use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::engine::App;
use crate::mcp::Maintenant;

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

pub fn mcp_service(
    app: Arc<App>,
    hosts: Vec<String>,
    cancel: CancellationToken,
) -> StreamableHttpService<Maintenant, LocalSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_cancellation_token(cancel);
    StreamableHttpService::new(
        move || Ok(Maintenant::new(app.clone())),
        Default::default(),
        config,
    )
}

async fn healthz(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let h = crate::readmodel::health(&app);
    Json(serde_json::json!({
        "status": h.status,
        "version": h.version,
        "generation": h.desired.generation,
        "applied_generation": h.reconciler.generation,
    }))
}

/// The public router.
pub fn router(app: Arc<App>, cancel: CancellationToken) -> Router {
    let mut r = Router::new()
        .route("/healthz", get(healthz))
        .merge(crate::ping::routes());
    if app.settings.mcp {
        r = r.nest_service(
            "/mcp",
            mcp_service(app.clone(), allowed_hosts(&app), cancel),
        );
    }
    r.with_state(app)
}

/// Serve MCP on a unix socket (owner-only permissions: the socket gives the
/// same access as the database file).
pub async fn serve_unix(
    app: Arc<App>,
    path: &Path,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // A socket left by a process that died is in the way; a live one was
    // checked by the caller (we own the database, so nobody else serves it).
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let service = mcp_service(app, vec!["localhost".into()], cancel.clone());
    let router = Router::new().nest_service("/mcp", service);
    let path = path.to_path_buf();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
        let _ = std::fs::remove_file(path);
    });
    Ok(())
}
