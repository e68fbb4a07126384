//! Secure defaults (issue 18 §1 and §9), against the real binary: read-only
//! mode over HTTP and stdio (alone and as a proxy to a daemon), `DELETE /mcp`
//! answering 204, the public pages' CSP and nosniff headers, and the compose
//! example (no unauthenticated `/mcp` on the network; the authenticated
//! override works with a real token from an issuer on 127.0.0.1).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::{BIN, Daemon, Mcp, Target};
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use sha2::Digest as _;

const WRITE_TOOLS: [&str; 6] = [
    "acknowledge_alert",
    "create_incident",
    "update_incident",
    "create_maintenance",
    "pause_monitor",
    "resume_monitor",
];

async fn tool_names(mcp: &Mcp) -> Vec<String> {
    let mut names: Vec<String> = mcp
        .0
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}

/// Read-only `mcp`: no write tool listed, each refused with a reason naming
/// the setting, and a refused `create_incident` changes nothing.
async fn assert_read_only(mcp: &Mcp, status_json: Option<String>) {
    let names = tool_names(mcp).await;
    assert_eq!(names.len(), 12, "{names:?}");
    for w in WRITE_TOOLS {
        assert!(!names.iter().any(|n| n == w), "{w} listed: {names:?}");
    }
    assert!(names.iter().any(|n| n == "get_health"), "{names:?}");
    let args = |tool: &str| match tool {
        "acknowledge_alert" => json!({"alert_id": "1"}),
        "create_incident" => json!({"title": "t", "message": "m", "monitors": ["solo"]}),
        "update_incident" => json!({"incident_id": "1", "message": "m"}),
        "create_maintenance" => json!({"title": "w", "start_time": "2030-01-01T00:00:00Z",
            "end_time": "2030-01-01T01:00:00Z", "monitors": ["solo"]}),
        _ => json!({"monitor_type": "endpoint", "monitor_id": "solo"}),
    };
    for w in WRITE_TOOLS {
        let a = mcp.call(w, args(w)).await;
        assert!(a.is_error, "{w} was not refused: {}", a.text);
        assert!(
            a.text.contains(&format!("{w} is disabled"))
                && a.text.contains("MAINTENANT_MCP_READ_ONLY=true"),
            "{w}: {}",
            a.text
        );
    }
    mcp.ok("get_health", json!({})).await;
    if let Some(url) = status_json {
        let page: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        assert_eq!(page["active_incidents"], json!([]), "{page}");
    }
}

fn solo(target: &Target) -> String {
    format!(
        "endpoints:\n  - name: solo\n    url: {}\n    interval: 1s\n",
        target.url("/")
    )
}

fn stdio_cmd(db: &std::path::Path, config: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--mcp-stdio")
        .env("MAINTENANT_DB", db)
        .env("MAINTENANT_CONFIG", config)
        .env("MAINTENANT_LOG", "warn")
        .env("MAINTENANT_DOCKER", "false")
        .env("MAINTENANT_KUBERNETES", "false")
        .env("MAINTENANT_ADDR", "127.0.0.1:1");
    cmd
}

async fn stdio(cmd: tokio::process::Command) -> Mcp {
    Mcp(
        ().serve(TokioChildProcess::new(cmd).unwrap())
            .await
            .expect("stdio MCP starts"),
    )
}

#[tokio::test]
async fn read_only_over_http_lists_and_serves_only_the_read_tools() {
    let target = Target::start().await;
    let d = Daemon::start_with(&solo(&target), &[("MAINTENANT_MCP_READ_ONLY", "true")]).await;
    let mcp = d.mcp().await;
    assert_read_only(&mcp, Some(d.url("/status.json"))).await;

    // The default is every tool.
    let full = Daemon::start(&solo(&target)).await;
    assert_eq!(tool_names(&full.mcp().await).await.len(), 18);
}

#[tokio::test]
async fn read_only_over_stdio_alone_and_as_a_proxy() {
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("m.yaml");
    std::fs::write(&config, solo(&target)).unwrap();
    let mut cmd = stdio_cmd(&dir.path().join("db"), &config);
    cmd.env("MAINTENANT_MCP_READ_ONLY", "true");
    let alone = stdio(cmd).await;
    assert_eq!(
        alone.ok("get_health", json!({})).await["role"],
        "stdio_standalone"
    );
    assert_read_only(&alone, None).await;
    let _ = alone.0.cancel().await;

    // A read-only stdio session attached to a daemon that serves every tool:
    // the session still lists and runs only the read tools.
    let d = Daemon::start(&solo(&target)).await;
    let mut cmd = stdio_cmd(&d.db, &d.config);
    cmd.env("MAINTENANT_MCP_READ_ONLY", "true");
    let proxy = stdio(cmd).await;
    assert_eq!(proxy.ok("get_health", json!({})).await["role"], "daemon");
    assert_read_only(&proxy, Some(d.url("/status.json"))).await;
    assert_eq!(tool_names(&d.mcp().await).await.len(), 18);
}

async fn post_mcp(d: &Daemon, session: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(d.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string());
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    req.send().await.unwrap()
}

/// The official Python SDK logs "Session termination failed: 202" on every
/// close unless `DELETE /mcp` answers 200 or 204.
#[tokio::test]
async fn delete_mcp_ends_the_session_with_204() {
    let d = Daemon::start("endpoints: []\n").await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "delete-test", "version": "1"}}});
    let r = post_mcp(&d, None, init).await;
    assert_eq!(r.status(), 200);
    let session = r
        .headers()
        .get("mcp-session-id")
        .expect("a session id")
        .to_str()
        .unwrap()
        .to_owned();
    let _ = r.text().await;
    let r = post_mcp(
        &d,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert!(r.status().is_success(), "{}", r.status());

    let r = reqwest::Client::new()
        .delete(d.url("/mcp"))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers().get("content-type").is_none());
    assert_eq!(r.text().await.unwrap(), "");

    // The session is gone.
    let r = post_mcp(
        &d,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert!(r.status().is_client_error(), "{}", r.status());
}

/// `/status`, `/status.json` and the feed: nosniff, and a CSP that lets the
/// HTML page's one inline `<style>` apply (by its hash) and nothing else.
#[tokio::test]
async fn public_pages_send_csp_and_nosniff() {
    let target = Target::start().await;
    let d = Daemon::start(&format!(
        "endpoints:\n  - name: api\n    group: core\n    url: {}\n    interval: 1s\n",
        target.url("/")
    ))
    .await;
    let mcp = d.mcp().await;
    mcp.wait_status("api", "up", Duration::from_secs(20)).await;
    mcp.ok(
        "create_incident",
        json!({"title": "<b>slow</b>", "message": "looking", "monitors": ["api"]}),
    )
    .await;

    for path in ["/status", "/status.json", "/status/feed.atom"] {
        let r = reqwest::get(d.url(path)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("script-src"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        let body = r.text().await.unwrap();
        if path == "/status" {
            // The hash in the policy is the page's own style block, so a
            // browser applies it; the page has no `style=` attribute (which
            // no hash can allow) and no script.
            let style = body
                .split_once("<style>")
                .and_then(|(_, rest)| rest.split_once("</style>"))
                .map(|(css, _)| css)
                .expect("an inline style block");
            let hash = base64::engine::general_purpose::STANDARD
                .encode(sha2::Sha256::digest(style.as_bytes()));
            assert!(
                csp.contains(&format!("style-src 'sha256-{hash}'")),
                "{csp} vs {hash}"
            );
            assert_eq!(body.matches("<style>").count(), 1);
            assert!(!body.contains(" style="), "an inline style attribute");
            assert!(!body.contains("<script"));
            assert!(body.contains("&lt;b&gt;slow"), "escaped incident title");
        }
    }
}

// ---- The compose example (deploy/) ----

fn compose(file: &str) -> serde_yaml::Value {
    let path = format!("{}/deploy/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Compose's interpolation of `${VAR}`, `${VAR:-default}` and
/// `${VAR:?message}` (the forms deploy/ uses). Err: the message compose would
/// stop with.
fn interpolate(text: &str, vars: &HashMap<&str, &str>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closing brace") + start;
        let expr = &rest[start + 2..end];
        let (name, op) = match expr.find(':') {
            Some(i) => (&expr[..i], Some(&expr[i..])),
            None => (expr, None),
        };
        let value = vars.get(name).copied().filter(|v| !v.is_empty());
        match (value, op) {
            (Some(v), _) => out.push_str(v),
            (None, Some(op)) if op.starts_with(":-") => out.push_str(&op[2..]),
            (None, Some(op)) if op.starts_with(":?") => {
                return Err(format!(
                    "required variable {name} is missing a value: {}",
                    &op[2..]
                ));
            }
            (None, _) => {}
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `maintenant` service's environment with `files` merged in order (a
/// later file's keys win, as with `docker compose -f a -f b`), interpolated.
fn compose_env(
    files: &[&str],
    vars: &HashMap<&str, &str>,
) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    for f in files {
        let doc = compose(f);
        let map = doc["services"]["maintenant"]["environment"]
            .as_mapping()
            .unwrap_or_else(|| panic!("{f}: services.maintenant.environment is a map"));
        for (k, v) in map {
            let v = match v {
                serde_yaml::Value::String(s) => s.clone(),
                other => panic!("{f}: {k:?} is not a quoted string: {other:?}"),
            };
            env.insert(k.as_str().unwrap().to_owned(), interpolate(&v, vars)?);
        }
    }
    Ok(env)
}

/// `docker compose config` when compose is installed: Ok(its JSON) or the
/// error it stopped with; None without compose.
fn docker_compose_config(
    files: &[&str],
    vars: &HashMap<&str, &str>,
) -> Option<Result<Value, String>> {
    let ok = std::process::Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return None;
    }
    let mut cmd = std::process::Command::new("docker");
    cmd.arg("compose");
    for f in files {
        cmd.arg("-f")
            .arg(format!("{}/deploy/{f}", env!("CARGO_MANIFEST_DIR")));
    }
    cmd.args(["config", "--format", "json"]);
    for k in [
        "MAINTENANT_MCP_ISSUER",
        "MAINTENANT_MCP_ALLOWED_EMAIL",
        "MAINTENANT_BASE_URL",
    ] {
        cmd.env_remove(k);
    }
    cmd.envs(vars.iter());
    let out = cmd.output().unwrap();
    Some(if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

/// The compose environment as the binary gets it here: the paths that only
/// exist in the container are left out (the harness sets its own).
fn runnable(env: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    env.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "MAINTENANT_CONFIG" | "MAINTENANT_HOST_PROC"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The base compose file serves no HTTP MCP (every container on the compose
/// network reaches port 8080) and publishes the port on loopback only; an
/// assistant uses `--mcp-stdio` through the daemon's socket instead.
#[tokio::test]
async fn compose_example_serves_no_mcp_over_the_network() {
    let base = compose("docker-compose.yml");
    let svc = &base["services"]["maintenant"];
    assert!(svc["network_mode"].is_null(), "no host networking");
    for p in svc["ports"].as_sequence().unwrap() {
        assert!(p.as_str().unwrap().starts_with("127.0.0.1:"), "{p:?}");
    }
    let vars = HashMap::from([("DOCKER_GID", "998")]);
    if let Some(cfg) = docker_compose_config(&["docker-compose.yml"], &vars) {
        let cfg = cfg.expect("docker compose config accepts the example");
        assert_eq!(
            cfg["services"]["maintenant"]["environment"]["MAINTENANT_MCP"],
            "false"
        );
    }
    let env = compose_env(&["docker-compose.yml"], &vars).unwrap();
    assert_eq!(env["MAINTENANT_MCP"], "false");

    // The daemon as compose configures it: /mcp is not there at all.
    let d = Daemon::start_with("endpoints: []\n", &runnable(&env)).await;
    let r = post_mcp(
        &d,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    assert_eq!(r.status(), 404);
    // What the file tells an assistant to run: stdio, through the socket.
    let mcp = stdio(stdio_cmd(&d.db, &d.config)).await;
    assert_eq!(mcp.ok("get_health", json!({})).await["role"], "daemon");
    assert_eq!(tool_names(&mcp).await.len(), 18);
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// deploy/docker-compose.mcp-auth.yml: compose refuses to start without the
/// issuer, the allowed address and the base URL; with them, `/mcp` answers
/// 401 to a request without a token and serves a real client whose token the
/// issuer signed.
#[tokio::test]
async fn compose_auth_override_requires_and_checks_tokens() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let files = ["docker-compose.yml", "docker-compose.mcp-auth.yml"];
    let err = compose_env(&files, &HashMap::new()).unwrap_err();
    assert!(err.contains("MAINTENANT_MCP_ISSUER"), "{err}");
    if let Some(cfg) = docker_compose_config(&files, &HashMap::new()) {
        assert!(cfg.is_err(), "compose started without an issuer");
    }

    // An issuer on 127.0.0.1: OIDC discovery and a JWKS with one P-256 key.
    common::init();
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
    let key = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("k1".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let meta = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys")});
    let keys = json!({"keys": [jwk]});
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(meta) }),
        )
        .route(
            "/keys",
            axum::routing::get(move || async move { axum::Json(keys) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let base_url = "https://maintenant.example.com";
    let vars = HashMap::from([
        ("MAINTENANT_MCP_ISSUER", issuer.as_str()),
        ("MAINTENANT_MCP_ALLOWED_EMAIL", "ops@example.com"),
        ("MAINTENANT_BASE_URL", base_url),
    ]);
    if let Some(cfg) = docker_compose_config(&files, &vars) {
        let cfg = cfg.expect("docker compose config accepts the override");
        assert_eq!(
            cfg["services"]["maintenant"]["environment"]["MAINTENANT_MCP"],
            "true"
        );
    }
    let env = compose_env(&files, &vars).unwrap();
    assert_eq!(env["MAINTENANT_MCP"], "true");
    assert_eq!(env["MAINTENANT_MCP_READ_ONLY"], "false");
    let d = Daemon::start_with("endpoints: []\n", &runnable(&env)).await;

    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "compose-test", "version": "1"}}});
    let r = post_mcp(&d, None, init).await;
    assert_eq!(r.status(), 401);

    let sign = |email: &str| {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some("k1".into());
        let claims = json!({"iss": issuer, "aud": format!("{base_url}/mcp"), "email": email,
            "sub": "u1", "iat": now(), "exp": now() + 600});
        jsonwebtoken::encode(&h, &claims, &key).unwrap()
    };
    let connect = async |token: String| {
        let config =
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                d.url("/mcp"),
            )
            .auth_header(token);
        ().serve(rmcp::transport::StreamableHttpClientTransport::from_config(
            config,
        ))
        .await
    };
    assert!(
        connect(sign("mallory@example.com")).await.is_err(),
        "a token for an address not allowed"
    );
    let mcp = Mcp(connect(sign("ops@example.com"))
        .await
        .expect("an allowed token connects"));
    assert_eq!(tool_names(&mcp).await.len(), 18);
    mcp.ok("get_health", json!({})).await;
}
