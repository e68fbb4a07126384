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
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
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
        wait_for("the registry to answer", T, async || {
            reqwest::get(r.url("/v2/"))
                .await
                .ok()
                .filter(|x| x.status().is_success())
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
    mcp.ok("get_updates", json!({})).await["items"]
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
            json!({"container": name("plain"), "only_available": true}),
        )
        .await;
    assert_eq!(only["items"].as_array().unwrap().len(), 1);
    assert!(only["last_scan"].is_string());

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
