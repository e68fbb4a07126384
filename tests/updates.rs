//! Image updates against a real OCI registry (Debian's `docker-registry` on
//! 127.0.0.1) and the real Docker engine (tests/support/dockerd.sh): push an
//! image, run containers from it, push a new image under the same tag and
//! see the update reported; version tags, labels, a multi-arch index
//! resolved to the platform, and a registry that is down.

mod common;
#[path = "support/engine.rs"]
mod engine;

use std::time::Duration;

use common::{Daemon, free_port, wait_for};
use engine::{Cleanup, IMAGE, engine};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);

/// `docker-registry serve` on 127.0.0.1 with storage in a temporary folder.
struct Registry {
    child: tokio::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    async fn start() -> Option<Registry> {
        Registry::start_with("").await
    }

    /// `extra`: more YAML at the top level of the registry's config (`auth:`).
    async fn start_with(extra: &str) -> Option<Registry> {
        common::init();
        let bin = ["docker-registry", "/usr/bin/docker-registry"]
            .into_iter()
            .find(|b| {
                std::process::Command::new(b)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            });
        let Some(bin) = bin else {
            assert!(
                std::env::var("CI").is_err(),
                "docker-registry is required in CI (.ci/run installs it)"
            );
            println!("SKIPPED: no docker-registry (apt-get install docker-registry)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = tokio::process::Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let r = Registry {
            child,
            port,
            _dir: dir,
        };
        // 200, or 401 with a challenge when it requires auth.
        wait_for("the registry to answer", T, async || {
            reqwest::get(r.url("/v2/"))
                .await
                .ok()
                .filter(|x| x.status().is_success() || x.status() == 401)
                .map(|_| ())
        })
        .await;
        Some(r)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Digest, media type and size of a tag's manifest.
    async fn manifest(&self, tag: &str) -> (String, String, u64) {
        let r = reqwest::Client::new()
            .head(self.url(&format!("/v2/app/manifests/{tag}")))
            .header(
                "accept",
                "application/vnd.docker.distribution.manifest.v2+json",
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{tag}: {}", r.status());
        let h = |n: &str| r.headers()[n].to_str().unwrap().to_owned();
        (
            h("docker-content-digest"),
            h("content-type"),
            h("content-length").parse().unwrap(),
        )
    }
}

async fn updates(mcp: &common::Mcp) -> Vec<Value> {
    mcp.ok("get_updates", json!({"detail": "full"})).await["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn row_where(
    mcp: &common::Mcp,
    what: &str,
    container: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(what, T, async || {
        updates(mcp)
            .await
            .into_iter()
            .find(|r| r["container"] == container && ok(r))
    })
    .await
}

#[tokio::test]
async fn updates_are_found_in_a_real_registry_for_running_containers() {
    let Some(engine) = engine() else { return };
    let Some(mut registry) = Registry::start().await else {
        return;
    };
    let reg = registry.host();
    let image = |tag: &str| format!("{reg}/app:{tag}");
    // Names carry the registry port: other test runs may share the engine.
    let name = |s: &str| format!("upd-{}-{s}", registry.port);
    let _cleanup = Cleanup(
        engine.clone(),
        ["plain", "patch", "off", "bad", "multi", "build"]
            .iter()
            .map(|s| name(s))
            .collect(),
    );
    for tag in ["1.0.0", "1.0.2", "1.1.0", "2.0.0", "2.1.0-rc1"] {
        engine.docker(&["tag", IMAGE, &image(tag)]);
        engine.docker(&["push", "-q", &image(tag)]);
    }
    let run = |n: &str, img: &str, labels: &[&str]| {
        let mut args = vec!["run", "-d", "--network", "host", "--name"];
        let n = name(n);
        args.push(&n);
        let labels: Vec<String> = labels.iter().map(|l| format!("--label={l}")).collect();
        args.extend(labels.iter().map(String::as_str));
        args.extend([img, "sleep", "600"]);
        engine.docker(&args);
    };
    run(
        "plain",
        &image("1.0.0"),
        &["maintenant.update.exclude=*-rc*"],
    );
    run("patch", &image("1.0.0"), &["maintenant.update.track=patch"]);
    run("off", &image("1.0.0"), &["maintenant.update.enabled=false"]);
    run("bad", &image("1.0.0"), &["maintenant.update.track=newest"]);

    let d = Daemon::start_with(
        "endpoints: []\n",
        &[
            ("MAINTENANT_DOCKER", engine.host.as_str()),
            ("MAINTENANT_UPDATES_INTERVAL", "1s"),
        ],
    )
    .await;
    let mcp = d.mcp().await;
    let (first, _, _) = registry.manifest("1.0.0").await;

    let plain = row_where(&mcp, "plain to be scanned", &name("plain"), |r| {
        r["status"] == "up_to_date"
    })
    .await;
    assert_eq!(plain["registry"], reg);
    assert_eq!(plain["repository"], "app");
    assert_eq!(plain["tag"], "1.0.0");
    assert_eq!(plain["latest_digest"], first);
    assert_eq!(plain["current_digests"], json!([first]));
    assert_eq!(plain["platform"], "linux/amd64");
    assert_eq!(
        plain["newer_tags"],
        json!([{"change": "major", "tag": "2.0.0"}, {"change": "minor", "tag": "1.1.0"},
               {"change": "patch", "tag": "1.0.2"}]),
        "2.1.0-rc1 is excluded by the label"
    );
    let all = updates(&mcp).await;
    let by = |n: &str| {
        all.iter()
            .find(|r| r["container"] == name(n))
            .unwrap()
            .clone()
    };
    assert_eq!(
        by("patch")["newer_tags"],
        json!([{"change": "patch", "tag": "1.0.2"}])
    );
    assert_eq!(by("off")["status"], "disabled");
    let bad = by("bad");
    assert_eq!(bad["status"], "error");
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .contains("maintenant.update.track"),
        "{bad}"
    );

    // A new image under the same tag.
    engine.docker(&[
        "run",
        "--name",
        &name("build"),
        IMAGE,
        "sh",
        "-c",
        "echo 2 > /version",
    ]);
    engine.docker(&["commit", &name("build"), &image("1.0.0")]);
    engine.docker(&["push", "-q", &image("1.0.0")]);
    let (second, media_type, size) = registry.manifest("1.0.0").await;
    assert_ne!(first, second);
    let plain = row_where(&mcp, "the update to be seen", &name("plain"), |r| {
        r["status"] == "update_available"
    })
    .await;
    assert_eq!(plain["latest_digest"], second);
    assert_eq!(
        plain["current_digests"],
        json!([first]),
        "it still runs the first"
    );
    let only = mcp
        .ok(
            "get_updates",
            json!({"detail": "full", "container": name("plain"), "only_available": true}),
        )
        .await;
    assert_eq!(only["items"].as_array().unwrap().len(), 1);
    assert!(only["last_scan"].is_string());
    assert_eq!(only["total"], 1);

    // Paged like every list, by container name.
    let all = mcp.ok("get_updates", json!({})).await;
    let n = all["total"].as_u64().unwrap();
    assert!(n >= 2, "{all:#}");
    let p1 = mcp.ok("get_updates", json!({"limit": 1})).await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 1);
    assert_eq!(p1["total"], n);
    let p2 = mcp
        .ok(
            "get_updates",
            json!({"limit": 1, "cursor": p1["next_cursor"]}),
        )
        .await;
    assert!(
        p1["items"][0]["container"].as_str() < p2["items"][0]["container"].as_str(),
        "sorted by name, no overlap: {p1:#} {p2:#}"
    );
    // A container it does not know is an error with a hint, not an empty list.
    let typo = mcp
        .call(
            "get_updates",
            json!({"container": format!("{}x", name("plain"))}),
        )
        .await;
    assert!(typo.is_error, "{:?}", typo.text);
    assert!(typo.text.contains("did you mean"), "{}", typo.text);
    assert!(typo.text.contains(&name("plain")), "{}", typo.text);

    // A multi-arch index: amd64 is the new image, arm64 the first one.
    let (_, old_type, old_size) = registry.manifest("2.0.0").await;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": media_type, "digest": second, "size": size,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": old_type, "digest": first, "size": old_size,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ]
    });
    let put = reqwest::Client::new()
        .put(registry.url("/v2/app/manifests/multi"))
        .header("content-type", "application/vnd.oci.image.index.v1+json")
        .body(serde_json::to_vec(&index).unwrap())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "PUT index: {}", put.status());
    let index_digest = put.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();
    engine.docker(&["pull", "-q", &image("multi")]);
    run(
        "multi",
        &image("multi"),
        &["maintenant.update.track=digest"],
    );
    let multi = row_where(&mcp, "the multi-arch container", &name("multi"), |r| {
        r["status"] == "up_to_date"
    })
    .await;
    assert_eq!(multi["latest_digest"], index_digest);
    assert_eq!(multi["platform_digest"], second, "the amd64 entry");
    assert_eq!(multi["newer_tags"], json!([]), "track: digest");

    // The registry goes away: reported per image.
    registry.child.kill().await.unwrap();
    let down = row_where(&mcp, "the registry failure", &name("plain"), |r| {
        r["status"] == "error"
    })
    .await;
    let err = down["error"].as_str().unwrap();
    assert!(err.contains(&reg) && err.contains("unreachable"), "{err}");
}

/// A token service as Docker Hub and GHCR run one: Basic credentials in,
/// an ES256 JWT out (its certificate in `x5c`, which the registry checks
/// against its `rootcertbundle`). Records each request's scope and whether
/// the credentials were right.
#[derive(Clone, Default)]
struct TokenService {
    seen: std::sync::Arc<std::sync::Mutex<Vec<(bool, String)>>>,
}

const SERVICE: &str = "test-registry";
const ISSUER: &str = "test-issuer";

impl TokenService {
    /// Start on 127.0.0.1; returns its URL and the root certificate (PEM).
    async fn start(&self) -> (String, String) {
        use base64::Engine;
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["token-signer".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "token-signer");
        let cert = params.self_signed(&key).unwrap();
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
        let signing =
            jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
        let me = self.clone();
        let app = axum::Router::new().route(
            "/token",
            axum::routing::get(
                async move |headers: axum::http::HeaderMap,
                            axum::extract::RawQuery(q): axum::extract::RawQuery| {
                    let good = format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode("robot:s3cret")
                    );
                    let ok = headers
                        .get("authorization")
                        .is_some_and(|v| v.to_str().unwrap() == good);
                    let q = q.unwrap_or_default();
                    me.seen.lock().unwrap().push((ok, q.clone()));
                    if !ok {
                        return (axum::http::StatusCode::UNAUTHORIZED, "bad credentials".to_owned());
                    }
                    let now = time::OffsetDateTime::now_utc().unix_timestamp();
                    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
                    header.x5c = Some(vec![x5c.clone()]);
                    let claims = json!({
                        "iss": ISSUER, "sub": "robot", "aud": SERVICE,
                        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", q.len()),
                        "access": [{"type": "repository", "name": "app", "actions": ["pull", "push"]}],
                    });
                    let token = jsonwebtoken::encode(&header, &claims, &signing).unwrap();
                    (
                        axum::http::StatusCode::OK,
                        json!({"token": token, "expires_in": 300}).to_string(),
                    )
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/token",
            listener.local_addr().unwrap().port()
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, cert.pem())
    }
}

// Multi-threaded: the docker CLI blocks a thread while dockerd asks the
// token service, which runs on this runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_auth_with_docker_config_credentials() {
    let Some(engine) = engine() else { return };
    let tokens = TokenService::default();
    let (realm, root_pem) = tokens.start().await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("root.pem");
    std::fs::write(&bundle, root_pem).unwrap();
    let auth = format!(
        "auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
        bundle.display()
    );
    let Some(registry) = Registry::start_with(&auth).await else {
        return;
    };
    let reg = registry.host();
    let image = format!("{reg}/app:1.0.0");
    let name = format!("upd-{}-token", registry.port);
    let _cleanup = Cleanup(engine.clone(), vec![name.clone()]);
    // One Docker config for the docker CLI (push) and for maintenant.
    let config_dir = dir.path().join("docker");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.json"),
        json!({"auths": {reg.clone(): {"auth": "cm9ib3Q6czNjcmV0"}}}).to_string(),
    )
    .unwrap();
    let docker = |args: &[&str]| {
        let out = std::process::Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", &engine.host)
            .env("DOCKER_CONFIG", &config_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    docker(&["tag", IMAGE, &image]);
    docker(&["push", "-q", &image]);
    docker(&[
        "run",
        "-d",
        "--network",
        "host",
        "--name",
        &name,
        &image,
        "sleep",
        "600",
    ]);
    let anonymous = reqwest::get(registry.url("/v2/app/tags/list"))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "the registry does require a token");

    let config_file = config_dir.join("config.json");
    let d = Daemon::start_with(
        "endpoints: []\n",
        &[
            ("MAINTENANT_DOCKER", engine.host.as_str()),
            ("MAINTENANT_UPDATES_INTERVAL", "1s"),
            ("MAINTENANT_DOCKER_CONFIG", config_file.to_str().unwrap()),
        ],
    )
    .await;
    let mcp = d.mcp().await;
    let row = row_where(&mcp, "the token-authenticated scan", &name, |r| {
        r["status"] == "up_to_date"
    })
    .await;
    assert_eq!(row["tag"], "1.0.0");
    assert!(
        tokens.seen.lock().unwrap().iter().any(|(ok, q)| *ok
            && q.contains("scope=repository%3Aapp%3Apull")
            && q.contains("service=test-registry")),
        "maintenant asked for a pull token with the Docker config's credentials: {:?}",
        tokens.seen.lock().unwrap()
    );
    drop(mcp);
    drop(d);

    // Without credentials the token service refuses: reported, with what to do.
    let d = Daemon::start_with(
        "endpoints: []\n",
        &[
            ("MAINTENANT_DOCKER", engine.host.as_str()),
            ("MAINTENANT_UPDATES_INTERVAL", "1s"),
            (
                "MAINTENANT_DOCKER_CONFIG",
                dir.path().join("none.json").to_str().unwrap(),
            ),
        ],
    )
    .await;
    let mcp = d.mcp().await;
    let row = row_where(&mcp, "the refused scan", &name, |r| r["status"] == "error").await;
    let err = row["error"].as_str().unwrap();
    assert!(
        err.contains("refused access") && err.contains("MAINTENANT_DOCKER_CONFIG"),
        "{err}"
    );
}
