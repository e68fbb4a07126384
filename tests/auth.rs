//! `/mcp` as an OAuth 2.1 resource server, against the real binary: keys made
//! at test time (RSA and P-256), the issuer's metadata and JWKS served by the
//! test on 127.0.0.1, a real rmcp client sending the Bearer token.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use common::{Daemon, wait_for};

const WRITE_SCOPE: &str = "maintenant:write";

/// A signing key and its public JWK.
struct Key {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Jwk,
    /// The public key as PEM (what a key-confusion attacker would HMAC with).
    public_pem: String,
}

fn rsa_key(kid: &str) -> Key {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let pem = private.to_pkcs1_pem(LineEnding::LF).unwrap();
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    key(kid, Algorithm::RS256, encoding, public_pem)
}

fn ec_key(kid: &str) -> Key {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
    let public_pem = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    key(kid, Algorithm::ES256, encoding, public_pem)
}

fn key(kid: &str, alg: Algorithm, encoding: EncodingKey, public_pem: String) -> Key {
    let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    Key {
        kid: kid.to_owned(),
        alg,
        encoding,
        jwk,
        public_pem,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Key {
    fn sign(&self, claims: &Value) -> String {
        let mut h = Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        encode(&h, claims, &self.encoding).unwrap()
    }
}

/// An identity provider on 127.0.0.1: OIDC discovery and a JWKS the test
/// can rotate, counting JWKS fetches.
#[derive(Clone)]
struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<Jwk>>>,
    jwks_hits: Arc<AtomicU64>,
}

impl Issuer {
    async fn start(keys: &[&Key]) -> Issuer {
        Self::serve(keys, Some("/.well-known/openid-configuration"), None).await
    }

    /// Serve the metadata at `metadata_path` (none: JWKS only), naming
    /// `claimed_issuer` (default: its own URL) as the issuer.
    async fn serve(
        keys: &[&Key],
        metadata_path: Option<&str>,
        claimed_issuer: Option<&str>,
    ) -> Issuer {
        common::init();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let issuer = Issuer {
            url: url.clone(),
            keys: Arc::new(Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect())),
            jwks_hits: Arc::default(),
        };
        let i = issuer.clone();
        let mut app = axum::Router::new();
        if let Some(path) = metadata_path {
            let claimed = claimed_issuer.unwrap_or(&url).to_owned();
            app = app.route(
                path,
                axum::routing::get({
                    let url = url.clone();
                    move || async move {
                        axum::Json(json!({
                            "issuer": claimed,
                            "jwks_uri": format!("{url}/keys"),
                            "authorization_endpoint": format!("{url}/authorize"),
                            "token_endpoint": format!("{url}/token"),
                        }))
                    }
                }),
            );
        }
        let app = app.route(
            "/keys",
            axum::routing::get(move || async move {
                i.jwks_hits.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({ "keys": *i.keys.lock().unwrap() }))
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        issuer
    }

    fn add(&self, key: &Key) {
        self.keys.lock().unwrap().push(key.jwk.clone());
    }
}

/// A daemon that requires tokens from `issuer`.
async fn daemon(issuer: &Issuer, extra: &[(&str, &str)]) -> Daemon {
    let mut env = vec![
        (
            "MAINTENANT_MCP_ALLOWED_EMAIL",
            "Alice@Example.com, ops-bot@clients",
        ),
        ("MAINTENANT_MCP_ISSUER", issuer.url.as_str()),
        ("MAINTENANT_MCP_WRITE_SCOPE", WRITE_SCOPE),
        ("MAINTENANT_MCP_ALLOWED_ORIGINS", "https://claude.ai"),
        ("MAINTENANT_RATE_LIMIT_PER_MINUTE", "0"),
    ];
    env.extend_from_slice(extra);
    Daemon::start_with("endpoints: []\n", &env).await
}

/// Claims of a good token for this daemon.
fn claims(d: &Daemon, issuer: &Issuer) -> Value {
    json!({
        "iss": issuer.url,
        "aud": d.url("/mcp"),
        "email": "alice@example.com",
        "sub": "user-123",
        "iat": now(),
        "exp": now() + 600,
    })
}

fn initialize(version: &str) -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "auth-test", "version": "1"}
        }
    })
}

/// POST a JSON-RPC message to /mcp as a Streamable HTTP client would.
async fn post(
    d: &Daemon,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &Value,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(d.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn www_authenticate(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The JSON-RPC answer in a JSON or SSE response body.
fn jsonrpc(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("result").is_some() || v.get("error").is_some())
            .unwrap_or_else(|| panic!("no JSON-RPC answer in {body:?}"))
    })
}

async fn client(d: &Daemon, token: &str) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    let config = StreamableHttpClientTransportConfig::with_uri(d.url("/mcp")).auth_header(token);
    let transport = StreamableHttpClientTransport::from_config(config);
    ().serve(transport)
        .await
        .expect("MCP over HTTP with a token connects")
}

/// Every token that must not get in gets 401 with `error="invalid_token"`
/// and the resource metadata URL; no token at all gets 401 without `error`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_the_right_challenge() {
    let rsa = rsa_key("rsa-1");
    let issuer = Issuer::start(&[&rsa]).await;
    let d = daemon(&issuer, &[]).await;
    let metadata = d.url("/.well-known/oauth-protected-resource/mcp");
    let good = claims(&d, &issuer);
    let init = initialize("2025-06-18");

    // No token: 401, the challenge names the metadata and no error (RFC 6750 §3.1).
    let r = post(&d, None, &[], &init).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        www_authenticate(&r),
        format!("Bearer resource_metadata=\"{metadata}\"")
    );
    // Another scheme is no Bearer token either.
    let r = reqwest::Client::new()
        .post(d.url("/mcp"))
        .header("authorization", "Basic YWxpY2U6c2VjcmV0")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(!www_authenticate(&r).contains("error="));

    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let other_rsa = rsa_key("rsa-1");
    let stranger = rsa_key("not-published");
    let alg_none = format!(
        "{}.{}.",
        B64.encode(json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).to_string()),
        B64.encode(good.to_string())
    );
    // Key confusion: HS256 "signed" with the RSA public key as the secret.
    let confused = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("rsa-1".into());
        encode(
            &h,
            &good,
            &EncodingKey::from_secret(rsa.public_pem.as_bytes()),
        )
        .unwrap()
    };
    let cases: Vec<(&str, String)> = vec![
        ("alg none", alg_none),
        ("HS256 with the RSA public key", confused),
        ("unknown kid", stranger.sign(&good)),
        (
            "signed by another key with a known kid",
            other_rsa.sign(&good),
        ),
        (
            "expired",
            rsa.sign(&with(json!({"exp": now() - 3600, "iat": now() - 7200}))),
        ),
        (
            "not yet valid",
            rsa.sign(&with(json!({"nbf": now() + 3600}))),
        ),
        ("no exp", rsa.sign(&with(json!({"exp": null})))),
        (
            "wrong audience",
            rsa.sign(&with(json!({"aud": "https://other.example/mcp"}))),
        ),
        (
            "wrong issuer",
            rsa.sign(&with(json!({"iss": "https://evil.example"}))),
        ),
        ("garbage", "not.a.jwt".into()),
    ];
    for (what, token) in &cases {
        let r = post(&d, Some(token), &[], &init).await;
        assert_eq!(r.status(), 401, "{what}: status");
        let www = www_authenticate(&r);
        assert!(
            www.starts_with(&format!("Bearer resource_metadata=\"{metadata}\"")),
            "{what}: {www}"
        );
        assert!(www.contains("error=\"invalid_token\""), "{what}: {www}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token", "{what}");
    }

    // A valid token for someone who is not allowed: 403.
    let r = post(
        &d,
        Some(&rsa.sign(&with(json!({"email": "mallory@example.com"})))),
        &[],
        &init,
    )
    .await;
    assert_eq!(r.status(), 403);
    // An email the issuer has not verified does not count; the sub is not allowed.
    let r = post(
        &d,
        Some(&rsa.sign(&with(json!({"email_verified": false})))),
        &[],
        &init,
    )
    .await;
    assert_eq!(r.status(), 403);

    // Skew within the 60 s leeway is tolerated.
    let r = post(
        &d,
        Some(&rsa.sign(&with(json!({"exp": now() - 20})))),
        &[],
        &init,
    )
    .await;
    assert_eq!(r.status(), 200, "expired 20 s ago is within the leeway");
}

/// A valid token (email, case-insensitive) and the `sub` fallback (with an
/// EC key) let a real rmcp client list and call tools.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_tokens_let_a_real_client_list_and_call_tools() {
    let rsa = rsa_key("rsa-1");
    let ec = ec_key("ec-1");
    let issuer = Issuer::start(&[&rsa, &ec]).await;
    let d = daemon(&issuer, &[]).await;

    let token = rsa.sign(&claims(&d, &issuer));
    let c = client(&d, &token).await;
    let tools = c.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "get_health"), "{tools:?}");
    let r = c
        .call_tool(CallToolRequestParams::new("get_health"))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true));
    assert_eq!(r.structured_content.unwrap()["status"], "ok");
    c.cancel().await.unwrap();
    // The tool saw who called (the identity the middleware put in the
    // request, read through rmcp's request parts): the audit log names them.
    let log = d.log();
    assert!(
        log.lines().any(|l| l.contains("MCP tool call")
            && l.contains("get_health")
            && l.contains("alice@example.com")),
        "no audit line for alice's get_health in:\n{log}"
    );

    // No email: `sub` is matched instead (here a client-credentials style id).
    let mut sub_only = claims(&d, &issuer);
    sub_only.as_object_mut().unwrap().remove("email");
    sub_only["sub"] = json!("OPS-BOT@clients");
    let c = client(&d, &ec.sign(&sub_only)).await;
    let tools = c.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "list_endpoints"));
    let r = c
        .call_tool(CallToolRequestParams::new("list_endpoints"))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true));
    c.cancel().await.unwrap();

    // Without email and with a sub that is not allowed: refused.
    sub_only["sub"] = json!("someone-else");
    let r = post(
        &d,
        Some(&ec.sign(&sub_only)),
        &[],
        &initialize("2025-06-18"),
    )
    .await;
    assert_eq!(r.status(), 403);
}

/// A key that appears in the JWKS after start (rotation) is picked up on its
/// first unknown `kid`; made-up `kid`s do not make us hammer the issuer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_rotation_is_picked_up_and_refreshes_are_rate_limited() {
    let old = rsa_key("2026-01");
    let issuer = Issuer::start(&[&old]).await;
    let d = daemon(&issuer, &[]).await;
    let init = initialize("2025-06-18");

    let r = post(&d, Some(&old.sign(&claims(&d, &issuer))), &[], &init).await;
    assert_eq!(r.status(), 200);
    assert_eq!(issuer.jwks_hits.load(Ordering::SeqCst), 1);

    // A flood of unknown kids: at most one refetch (within the 5 s minimum).
    let before = issuer.jwks_hits.load(Ordering::SeqCst);
    for i in 0..20 {
        let k = ec_key(&format!("made-up-{i}"));
        let r = post(&d, Some(&k.sign(&claims(&d, &issuer))), &[], &init).await;
        assert_eq!(r.status(), 401);
    }
    let fetched = issuer.jwks_hits.load(Ordering::SeqCst) - before;
    assert!(
        fetched <= 1,
        "20 unknown kids caused {fetched} JWKS fetches"
    );

    // The issuer rotates: a new key is published and tokens are signed with it.
    let new = ec_key("2026-02");
    issuer.add(&new);
    let token = new.sign(&claims(&d, &issuer));
    wait_for(
        "the new key to be accepted",
        Duration::from_secs(15),
        async || (post(&d, Some(&token), &[], &init).await.status() == 200).then_some(()),
    )
    .await;
    // The old key still works while it is published.
    let r = post(&d, Some(&old.sign(&claims(&d, &issuer))), &[], &init).await;
    assert_eq!(r.status(), 200);
    // A real client with the rotated key.
    let c = client(&d, &token).await;
    assert!(!c.list_all_tools().await.unwrap().is_empty());
    c.cancel().await.unwrap();
}

/// The JWKS found through RFC 8414 metadata, or given directly; metadata
/// naming another issuer is not trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_discovery_variants() {
    let rsa = rsa_key("rsa-1");
    let init = initialize("2025-06-18");

    let oauth = Issuer::serve(
        &[&rsa],
        Some("/.well-known/oauth-authorization-server"),
        None,
    )
    .await;
    let d = daemon(&oauth, &[]).await;
    let r = post(&d, Some(&rsa.sign(&claims(&d, &oauth))), &[], &init).await;
    assert_eq!(r.status(), 200, "RFC 8414 discovery");

    let bare = Issuer::serve(&[&rsa], None, None).await;
    let jwks = format!("{}/keys", bare.url);
    let d = daemon(&bare, &[("MAINTENANT_MCP_JWKS_URL", &jwks)]).await;
    let r = post(&d, Some(&rsa.sign(&claims(&d, &bare))), &[], &init).await;
    assert_eq!(r.status(), 200, "explicit MAINTENANT_MCP_JWKS_URL");

    let mixed_up = Issuer::serve(
        &[&rsa],
        Some("/.well-known/openid-configuration"),
        Some("https://someone-else.example"),
    )
    .await;
    let d = daemon(&mixed_up, &[]).await;
    let r = post(&d, Some(&rsa.sign(&claims(&d, &mixed_up))), &[], &init).await;
    assert_eq!(
        r.status(),
        503,
        "metadata for another issuer yields no keys"
    );
    assert_eq!(mixed_up.jwks_hits.load(Ordering::SeqCst), 0);
}

/// RFC 9728 metadata at both well-known paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_resource_metadata() {
    let rsa = rsa_key("rsa-1");
    let issuer = Issuer::start(&[&rsa]).await;
    let d = daemon(&issuer, &[]).await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let r = reqwest::get(d.url(path)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let doc: Value = r.json().await.unwrap();
        assert_eq!(doc["resource"], d.url("/mcp"), "{path}");
        assert_eq!(doc["authorization_servers"], json!([issuer.url]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert_eq!(doc["scopes_supported"], json!([WRITE_SCOPE]));
    }
    // /healthz stays open for probes.
    assert_eq!(reqwest::get(d.url("/healthz")).await.unwrap().status(), 200);
}

/// With the write scope configured, write tools need it (403
/// insufficient_scope); read tools don't.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_tools_need_the_write_scope() {
    let rsa = rsa_key("rsa-1");
    let issuer = Issuer::start(&[&rsa]).await;
    let d = daemon(&issuer, &[]).await;
    let read_only = rsa.sign(&claims(&d, &issuer));
    let mut writer_claims = claims(&d, &issuer);
    writer_claims["scope"] = json!(format!("openid email {WRITE_SCOPE}"));
    let writer = rsa.sign(&writer_claims);

    for tool in [
        "acknowledge_alert",
        "create_incident",
        "update_incident",
        "create_maintenance",
        "pause_monitor",
        "resume_monitor",
    ] {
        let call = json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": tool, "arguments": {}}
        });
        let r = post(&d, Some(&read_only), &[], &call).await;
        assert_eq!(r.status(), 403, "{tool}");
        let www = www_authenticate(&r);
        assert!(
            www.contains("error=\"insufficient_scope\""),
            "{tool}: {www}"
        );
        assert!(www.contains(&format!("scope=\"{WRITE_SCOPE}\"")), "{www}");
        assert!(www.contains("resource_metadata=\""), "{www}");
        // With the scope, the call reaches the MCP server (which answers it,
        // whatever it is: not a 403 from the auth layer).
        let r = post(&d, Some(&writer), &[], &call).await;
        assert_ne!(r.status(), 403, "{tool} with the write scope");
    }

    // The read-only token still reads, through a real client.
    let c = client(&d, &read_only).await;
    let r = c
        .call_tool(CallToolRequestParams::new("get_health"))
        .await
        .unwrap();
    assert_ne!(r.is_error, Some(true));
    // ...and is refused a write tool at the HTTP layer.
    let err = c
        .call_tool(CallToolRequestParams::new("pause_monitor"))
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("403") || format!("{err:?}").to_lowercase().contains("scope"),
        "{err:?}"
    );
    c.cancel().await.ok();
    // The writer's call of the same tool gets past auth to the MCP server.
    let c = client(&d, &writer).await;
    match c
        .call_tool(CallToolRequestParams::new("pause_monitor"))
        .await
    {
        Ok(r) => assert!(
            r.content
                .iter()
                .all(|c| c.as_text().is_none_or(|t| !t.text.contains("scope")))
        ),
        Err(e) => {
            let e = format!("{e:?}");
            assert!(
                !e.contains("403") && !e.contains("insufficient_scope"),
                "{e}"
            );
        }
    }
    c.cancel().await.ok();
    // A `scp` list (Okta, Azure style) carries the scope too.
    let mut scp = claims(&d, &issuer);
    scp["scp"] = json!(["openid", WRITE_SCOPE]);
    let call = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "pause_monitor"}});
    assert_ne!(
        post(&d, Some(&rsa.sign(&scp)), &[], &call).await.status(),
        403
    );
}

/// Origin validation, SSE without proxy buffering, every protocol version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_sse_headers_and_protocol_versions() {
    let rsa = rsa_key("rsa-1");
    let issuer = Issuer::start(&[&rsa]).await;
    let d = daemon(&issuer, &[]).await;
    let token = rsa.sign(&claims(&d, &issuer));
    let init = initialize("2025-06-18");

    let r = post(
        &d,
        Some(&token),
        &[("origin", "https://evil.example")],
        &init,
    )
    .await;
    assert_eq!(r.status(), 403, "a foreign Origin is refused");
    for ok in ["https://claude.ai", &d.url("")] {
        let r = post(&d, Some(&token), &[("origin", ok)], &init).await;
        assert_eq!(r.status(), 200, "Origin {ok}");
    }
    let r = post(&d, Some(&token), &[("host", "evil.example")], &init).await;
    assert!(r.status().is_client_error(), "a foreign Host is refused");

    // The answer is an SSE stream, marked so nginx does not buffer it.
    let r = post(&d, Some(&token), &[], &init).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(r.headers()["x-accel-buffering"], "no");

    // Every version rmcp knows: the ones with `initialize` negotiate it...
    let stateless = "2026-07-28";
    for v in rmcp::model::ProtocolVersion::KNOWN_VERSIONS {
        if v.as_str() == stateless {
            continue;
        }
        let r = post(&d, Some(&token), &[], &initialize(v.as_str())).await;
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, 200, "{v}: {body}");
        let answer = jsonrpc(&body);
        assert_eq!(
            answer["result"]["protocolVersion"],
            v.as_str(),
            "{v}: {answer}"
        );
    }
    // ...and 2026-07-28 (no session, no initialize) discovers and calls
    // statelessly, through the same auth.
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": stateless,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "auth-test", "version": "1"}
    });
    let v2026 = [("mcp-protocol-version", stateless)];
    let discover =
        json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}});
    let headers = [v2026[0], ("mcp-method", "server/discover")];
    let r = post(&d, Some(&token), &headers, &discover).await;
    assert_eq!(r.status(), 200);
    let answer = jsonrpc(&r.text().await.unwrap());
    let supported = answer["result"]["supportedVersions"].as_array().unwrap();
    for v in rmcp::model::ProtocolVersion::KNOWN_VERSIONS {
        assert!(
            supported.contains(&json!(v.as_str())),
            "{v} in {supported:?}"
        );
    }
    assert_eq!(post(&d, None, &headers, &discover).await.status(), 401);
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "get_health", "_meta": meta}});
    let headers = [
        v2026[0],
        ("mcp-method", "tools/call"),
        ("mcp-name", "get_health"),
    ];
    let r = post(&d, Some(&token), &headers, &call).await;
    assert_eq!(r.status(), 200);
    let answer = jsonrpc(&r.text().await.unwrap());
    assert_eq!(
        answer["result"]["structuredContent"]["status"], "ok",
        "{answer}"
    );
}

/// Settings that cannot work stop the daemon at start with an actionable message.
#[tokio::test]
async fn allowed_email_without_issuer_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(common::BIN)
        .env("MAINTENANT_DB", dir.path().join("db"))
        .env(
            "MAINTENANT_ADDR",
            format!("127.0.0.1:{}", common::free_port()),
        )
        .env("MAINTENANT_MCP", "true")
        .env("MAINTENANT_MCP_ALLOWED_EMAIL", "alice@example.com")
        .env_remove("MAINTENANT_MCP_ISSUER")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MAINTENANT_MCP_ISSUER"), "{stderr}");
}

/// Per-IP rate limit (429 + Retry-After) and the body limit (413), with /mcp open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_and_body_limit() {
    let d = Daemon::start_with(
        "endpoints: []\n",
        &[
            ("MAINTENANT_RATE_LIMIT_PER_MINUTE", "6"),
            ("MAINTENANT_RATE_LIMIT_BURST", "4"),
            ("MAINTENANT_MCP_MAX_BODY", "2048"),
        ],
    )
    .await;
    // No auth configured: no metadata either.
    assert_eq!(
        reqwest::get(d.url("/.well-known/oauth-protected-resource"))
            .await
            .unwrap()
            .status(),
        404
    );
    let big =
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x".repeat(4096)}});
    let r = post(&d, None, &[], &big).await;
    assert_eq!(r.status(), 413, "a body over MAINTENANT_MCP_MAX_BODY");
    // A burst of 4, refilled at one per 10 s: a quick run of requests gets
    // a few through, then 429 with Retry-After.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            post(&d, None, &[], &initialize("2025-06-18"))
                .await
                .status()
                .as_u16(),
        );
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!((1..=4).contains(&ok), "{statuses:?}");
    let first_limited = statuses.iter().position(|s| *s == 429).expect("limited");
    assert!(
        statuses[first_limited..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
    let r = post(&d, None, &[], &initialize("2025-06-18")).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry), "Retry-After {retry}");
    // /healthz is not limited.
    assert_eq!(reqwest::get(d.url("/healthz")).await.unwrap().status(), 200);
}
