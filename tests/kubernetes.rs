//! `Monitor` custom resources end to end: the real binary, pointed by a
//! kubeconfig at the fake API server (tests/common/fake_kube.rs), reads the
//! resources with kube's real client, checks real HTTP targets on 127.0.0.1,
//! answers a real MCP client, and writes each resource's status.

mod common;

use std::time::Duration;

use common::fake_kube::{FakeKube, MONITORS, Patch};
use common::{Daemon, Mcp, Target, wait_for};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(20);

async fn start() -> (FakeKube, Target, Daemon, Mcp) {
    let fake = FakeKube::start().await;
    let target = Target::start().await;
    let d = fake
        .daemon(
            "endpoints: []\n",
            &[("MAINTENANT_KUBERNETES_STATUS_INTERVAL", "200ms")],
        )
        .await;
    let mcp = d.mcp().await;
    (fake, target, d, mcp)
}

/// The last status PATCH of `namespace/name` that satisfies `f`.
async fn wait_patch(
    fake: &FakeKube,
    namespace: &str,
    name: &str,
    what: &str,
    f: impl Fn(&Value) -> bool,
) -> Patch {
    let path = format!("{MONITORS}/{namespace}/{name}/status");
    wait_for(what, T, async || {
        fake.patches()
            .into_iter()
            .rev()
            .find(|p| p.path == path && f(&p.body))
    })
    .await
}

fn ready(body: &Value) -> &Value {
    body["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .unwrap_or(&Value::Null)
}

async fn task_id(mcp: &Mcp, name: &str) -> u64 {
    mcp.endpoint(name).await.unwrap()["observed"]["task"]["task_id"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn monitor_resources_are_checked_and_their_status_written() {
    let (fake, target, d, mcp) = start().await;

    // Created -> declared (name defaults to namespace.name), checked, up.
    fake.apply_monitor(
        "shop",
        "api",
        json!({"endpoint": {"url": target.url("/api"), "interval": "1s"}}),
    );
    let row = mcp.wait_status("shop.api", "up", T).await;
    assert_eq!(row["id"], "endpoint/shop.api");
    assert_eq!(
        row["desired"]["origin"],
        json!({"source": "kubernetes", "kind": "Monitor", "namespace": "shop", "name": "api", "generation": 1})
    );
    assert!(target.hits("/api") >= 1);

    // Its status is written with a merge patch: Ready True at generation 1.
    let p = wait_patch(&fake, "shop", "api", "status up, Ready True", |b| {
        b["status"]["state"] == "up" && ready(b)["status"] == "True"
    })
    .await;
    assert_eq!(p.content_type, "application/merge-patch+json");
    let st = &p.body["status"];
    assert_eq!(st["observedGeneration"], 1);
    assert_eq!(st["id"], "endpoint/shop.api");
    assert_eq!(st["type"], "endpoint/http");
    assert_eq!(st["target"], target.url("/api"));
    assert!(st["lastCheck"].as_str().is_some_and(|t| t.contains('T')));
    assert_eq!(ready(&p.body)["reason"], "Monitoring");
    assert_eq!(ready(&p.body)["observedGeneration"], 1);
    // ... and stored on the object (what `kubectl get monitors` shows).
    let obj = fake.get(MONITORS, "shop", "api").unwrap();
    assert_eq!(obj["status"]["state"], "up");

    // Not one write per check: checked every second, written on change only.
    let checks_before = mcp.endpoint("shop.api").await.unwrap()["observed"]["checks_total"]
        .as_u64()
        .unwrap();
    let writes_before = fake.patches().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let checks_after = mcp.endpoint("shop.api").await.unwrap()["observed"]["checks_total"]
        .as_u64()
        .unwrap();
    assert!(checks_after >= checks_before + 2, "checks go on");
    assert_eq!(
        fake.patches().len(),
        writes_before,
        "an unchanged status is not written again"
    );

    // Down is written too, with the error as the message.
    target.set_status(500);
    let p = wait_patch(&fake, "shop", "api", "status down", |b| {
        b["status"]["state"] == "down"
    })
    .await;
    assert!(
        p.body["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("500")),
        "{:?}",
        p.body
    );
    assert_eq!(
        ready(&p.body)["status"],
        "True",
        "Ready means monitored, not up"
    );
    target.set_status(200);
    mcp.wait_status("shop.api", "up", T).await;

    // A second resource; editing the first restarts only the first.
    fake.apply_monitor(
        "shop",
        "web",
        json!({"endpoint": {"name": "web", "url": target.url("/web"), "interval": "1s"}}),
    );
    mcp.wait_status("web", "up", T).await;
    let web_task = task_id(&mcp, "web").await;
    let api_task = task_id(&mcp, "shop.api").await;
    fake.apply_monitor(
        "shop",
        "api",
        json!({"endpoint": {"url": target.url("/api2"), "interval": "1s"}}),
    );
    wait_patch(&fake, "shop", "api", "observedGeneration 2", |b| {
        b["status"]["observedGeneration"] == 2 && ready(b)["status"] == "True"
    })
    .await;
    wait_for("api checked at its new URL", T, async || {
        (target.hits("/api2") > 0).then_some(())
    })
    .await;
    assert_ne!(
        task_id(&mcp, "shop.api").await,
        api_task,
        "the edited monitor restarted"
    );
    assert_eq!(
        task_id(&mcp, "web").await,
        web_task,
        "the other monitor kept its task"
    );

    // An invalid spec: Ready False with the reason; the others keep running.
    fake.apply_monitor(
        "shop",
        "bad",
        json!({"endpoint": {"url": "ftp://127.0.0.1/x", "failure_threshold": 0}}),
    );
    let p = wait_patch(&fake, "shop", "bad", "Ready False", |b| {
        ready(b)["status"] == "False"
    })
    .await;
    let cond = ready(&p.body);
    assert_eq!(cond["reason"], "InvalidSpec");
    let msg = cond["message"].as_str().unwrap();
    assert!(
        msg.contains("url") && msg.contains("failure_threshold must be at least 1"),
        "{msg}"
    );
    assert_eq!(p.body["status"]["state"], "invalid");
    assert_eq!(p.body["status"]["observedGeneration"], 1);
    assert!(
        mcp.endpoint("shop.bad").await.is_none(),
        "an invalid resource declares nothing"
    );
    let health = mcp.ok("get_health", json!({})).await;
    let src = health["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "kubernetes")
        .cloned()
        .unwrap();
    assert_eq!(src["monitors"], 2, "{src}");
    let problems = src["last_error"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{src}");
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .starts_with("Monitor shop/bad: spec.endpoint: url"),
        "{src}"
    );
    assert_eq!(task_id(&mcp, "web").await, web_task);

    // Deleted -> removed.
    fake.delete(MONITORS, "shop", "web");
    wait_for("web removed", T, async || {
        mcp.endpoint("web").await.is_none().then_some(())
    })
    .await;
    mcp.wait_status("shop.api", "up", T).await;
    drop(d);
}

#[tokio::test]
async fn a_cut_watch_resumes_and_a_gone_one_relists() {
    let (fake, target, d, mcp) = start().await;
    fake.apply_monitor(
        "a",
        "one",
        json!({"endpoint": {"url": target.url("/one"), "interval": "1s"}}),
    );
    mcp.wait_status("a.one", "up", T).await;
    let watches = |fake: &FakeKube| {
        fake.requests()
            .into_iter()
            .filter(|r| {
                r.starts_with("GET /apis/maintenant.dev/v1alpha1/monitors?")
                    && r.contains("watch=true")
            })
            .collect::<Vec<_>>()
    };
    let lists = |fake: &FakeKube| {
        fake.requests()
            .into_iter()
            .filter(|r| {
                r.starts_with("GET /apis/maintenant.dev/v1alpha1/monitors")
                    && !r.contains("watch=true")
            })
            .count()
    };
    let lists_before = lists(&fake);
    let watches_before = watches(&fake).len();

    // Cut: the client resumes from its last resourceVersion (no re-list),
    // and what happened meanwhile arrives through the resumed watch.
    fake.cut_watches();
    fake.apply_monitor(
        "a",
        "two",
        json!({"endpoint": {"url": target.url("/two"), "interval": "1s"}}),
    );
    mcp.wait_status("a.two", "up", T).await;
    let w = watches(&fake);
    assert!(w.len() > watches_before, "a new watch was opened: {w:?}");
    let resumed = w.last().unwrap();
    assert!(
        !resumed.contains("resourceVersion=0&") && resumed.contains("resourceVersion="),
        "{resumed}"
    );
    assert_eq!(
        lists(&fake),
        lists_before,
        "a resumable watch does not re-list"
    );

    // Compacted + cut: the resume gets 410 Gone, the client re-lists, and a
    // change made while it was away is seen; a deletion too.
    // (Refused while it happens, so the client cannot resume in between.)
    fake.set_available(false);
    fake.cut_watches();
    fake.delete(MONITORS, "a", "one");
    fake.apply_monitor(
        "a",
        "three",
        json!({"endpoint": {"url": target.url("/three"), "interval": "1s"}}),
    );
    fake.compact();
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.set_available(true);
    mcp.wait_status("a.three", "up", T).await;
    wait_for("a.one removed", T, async || {
        mcp.endpoint("a.one").await.is_none().then_some(())
    })
    .await;
    assert!(fake.gone_count() >= 1, "the resume was answered 410 Gone");
    assert!(
        lists(&fake) > lists_before,
        "410 Gone made the client list again"
    );
    mcp.wait_status("a.two", "up", T).await;
    drop(d);
}

#[tokio::test]
async fn namespace_filters_and_file_precedence() {
    let fake = FakeKube::start().await;
    let target = Target::start().await;
    // A file monitor named like a resource's: the file wins, the resource says so.
    let file = format!(
        "endpoints:\n  - name: dup\n    url: {}\n    interval: 1s\n",
        target.url("/file")
    );
    let d = fake
        .daemon(
            &file,
            &[
                // auto: no in-cluster service account here, so KUBECONFIG is used.
                ("MAINTENANT_KUBERNETES", "auto"),
                ("MAINTENANT_KUBERNETES_NAMESPACES", "prod,staging"),
                ("MAINTENANT_KUBERNETES_EXCLUDE_NAMESPACES", "staging"),
                ("MAINTENANT_KUBERNETES_STATUS_INTERVAL", "200ms"),
            ],
        )
        .await;
    let mcp = d.mcp().await;
    fake.apply_monitor(
        "prod",
        "x",
        json!({"endpoint": {"url": target.url("/x"), "interval": "1s"}}),
    );
    fake.apply_monitor(
        "staging",
        "y",
        json!({"endpoint": {"url": target.url("/y"), "interval": "1s"}}),
    );
    fake.apply_monitor(
        "dev",
        "z",
        json!({"endpoint": {"url": target.url("/z"), "interval": "1s"}}),
    );
    fake.apply_monitor(
        "prod",
        "dup",
        json!({"endpoint": {"name": "dup", "url": target.url("/dup"), "interval": "1s"}}),
    );
    mcp.wait_status("prod.x", "up", T).await;
    let p = wait_patch(&fake, "prod", "dup", "conflict", |b| {
        ready(b)["reason"] == "Conflict"
    })
    .await;
    assert!(
        ready(&p.body)["message"]
            .as_str()
            .unwrap()
            .contains("monitors.yaml"),
        "{:?}",
        p.body
    );
    let dup = mcp.endpoint("dup").await.unwrap();
    assert_eq!(dup["desired"]["origin"]["source"], "file");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        mcp.endpoint("staging.y").await.is_none(),
        "excluded namespace"
    );
    assert!(
        mcp.endpoint("dev.z").await.is_none(),
        "namespace not included"
    );
    // One namespaced watch (a Role is enough), never a cluster-wide one.
    let reqs = fake.requests();
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("GET /apis/maintenant.dev/v1alpha1/namespaces/prod/monitors"))
    );
    assert!(
        !reqs
            .iter()
            .any(|r| r.starts_with("GET /apis/maintenant.dev/v1alpha1/monitors")),
        "{reqs:?}"
    );
    assert!(!reqs.iter().any(|r| r.contains("/namespaces/staging/")));
    // Pods are watched in the same scope (the pod model for the container tools).
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces/prod/pods")),
        "{reqs:?}"
    );
    assert!(!reqs.iter().any(|r| r.starts_with("GET /api/v1/pods")));
    drop(d);
}

#[tokio::test]
async fn a_broken_kubeconfig_is_reported_by_get_health() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-kubeconfig");
    let d = Daemon::start_with(
        "endpoints: []\n",
        &[
            ("KUBECONFIG", missing.to_str().unwrap()),
            ("MAINTENANT_KUBERNETES", "true"),
        ],
    )
    .await;
    let mcp = d.mcp().await;
    let health = mcp.ok("get_health", json!({})).await;
    let src = health["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "kubernetes")
        .cloned()
        .unwrap_or_else(|| panic!("no kubernetes source in {health}"));
    let msg = src["last_error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("kubeconfig") && msg.contains("no-such-kubeconfig"),
        "{msg}"
    );
    // The runtime (pods) says the same, beside docker's.
    let rt = health["runtimes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "kubernetes")
        .cloned()
        .unwrap_or_else(|| panic!("no kubernetes runtime in {health}"));
    assert_eq!(rt["connected"], false);
    assert!(
        rt["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no-such-kubeconfig")),
        "{rt}"
    );
    assert_eq!(health["status"], "degraded");
}

#[test]
fn the_chart_crd_is_what_maintenant_crd_prints() {
    let out = std::process::Command::new(common::BIN)
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("charts/maintenant/crds/monitors.maintenant.dev.yaml");
    let shipped = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        printed == shipped,
        "{} differs from `maintenant crd`; regenerate it with `cargo run -- crd > {}`",
        path.display(),
        path.display()
    );
}

/// kubectl (from charts/tools.sh), or `None` with the reason.
fn kubectl() -> Result<std::path::PathBuf, String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let tools = std::path::Path::new(root).join("target/tools");
    let out = std::process::Command::new("bash")
        .arg(format!("{root}/charts/tools.sh"))
        .arg(&tools)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(tools.join("kubectl"))
}

#[tokio::test]
async fn kubectl_get_monitors_shows_what_maintenant_sees() {
    let kubectl = match kubectl() {
        Ok(k) => k,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("no kubectl: {e}"),
        Err(e) => {
            println!("SKIPPED: cannot fetch kubectl (npm): {e}");
            return;
        }
    };
    let (fake, target, d, mcp) = start().await;
    fake.apply_monitor(
        "shop",
        "api",
        json!({"endpoint": {"url": target.url("/api"), "interval": "1s"}}),
    );
    fake.apply_monitor(
        "shop",
        "broken",
        json!({"endpoint": {"url": "ftp://127.0.0.1/"}}),
    );
    mcp.wait_status("shop.api", "up", T).await;
    wait_patch(&fake, "shop", "api", "api up", |b| {
        b["status"]["state"] == "up"
    })
    .await;
    wait_patch(&fake, "shop", "broken", "broken invalid", |b| {
        b["status"]["state"] == "invalid"
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake.kubeconfig(dir.path());
    let out = tokio::process::Command::new(&kubectl)
        .args(["--kubeconfig", kubeconfig.to_str().unwrap(), "--cache-dir"])
        .arg(dir.path().join("cache"))
        .args(["get", "monitors", "-A"])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAMESPACE",
            "NAME",
            "TYPE",
            "TARGET",
            "STATUS",
            "LAST",
            "CHECK",
            "AGE"
        ]
    );
    let api: Vec<&str> = lines
        .iter()
        .find(|l| l.contains(" api "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        &api[..5],
        ["shop", "api", "endpoint/http", &target.url("/api"), "up"]
    );
    assert!(api[5].ends_with('s'), "last check is an age: {api:?}");
    let broken: Vec<&str> = lines
        .iter()
        .find(|l| l.contains("broken"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&broken[..3], ["shop", "broken", "invalid"]);
    // The short name works too.
    let short = tokio::process::Command::new(&kubectl)
        .args(["--kubeconfig", kubeconfig.to_str().unwrap(), "--cache-dir"])
        .arg(dir.path().join("cache"))
        .args([
            "get",
            "mon",
            "-n",
            "shop",
            "api",
            "-o",
            "jsonpath={.status.conditions[0].reason}",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&short.stdout),
        "Monitoring",
        "{}",
        String::from_utf8_lossy(&short.stderr)
    );
    drop(d);
}

#[tokio::test]
async fn heartbeat_and_certificate_resources_are_monitors_with_a_status() {
    let (fake, _target, d, mcp) = start().await;
    fake.apply_monitor(
        "ops",
        "nightly",
        json!({"heartbeat": {"period": "1h", "grace": "5m"}}),
    );
    fake.apply_monitor(
        "shop",
        "site",
        json!({"certificate": {"host": "localhost", "port": common::free_port(), "interval": "1h"}}),
    );
    fake.apply_monitor(
        "ops",
        "badcron",
        json!({"heartbeat": {"schedule": "61 * * * *"}}),
    );

    let row = wait_for("the heartbeat resource", T, async || {
        let page = mcp.ok("list_heartbeats", json!({"detail": "full"})).await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["id"] == "heartbeat/ops.nightly")
            .cloned()
    })
    .await;
    assert_eq!(row["desired"]["origin"]["source"], "kubernetes");
    assert_eq!(row["desired"]["origin"]["kind"], "Monitor");
    assert_eq!(row["grace"], "5m", "{row}");
    // Its ping URL works (once the reconciler registered it).
    wait_for("a ping accepted", T, async || {
        let r = reqwest::get(d.url("/ping/ops.nightly")).await.unwrap();
        r.status().is_success().then_some(())
    })
    .await;
    let up = wait_patch(&fake, "ops", "nightly", "heartbeat up", |b| {
        b["status"]["state"] == "up"
    })
    .await;
    assert_eq!(up.body["status"]["type"], "heartbeat");
    assert_eq!(up.body["status"]["target"], "/ping/ops.nightly");
    assert_eq!(ready(&up.body)["status"], "True");

    let certs = wait_for("the certificate resource", T, async || {
        let page = mcp.ok("list_certificates", json!({"detail": "full"})).await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "certificate/shop.site")
            .cloned()
    })
    .await;
    assert_eq!(certs["desired"]["origin"]["name"], "site");
    let c = wait_patch(&fake, "shop", "site", "certificate status", |b| {
        b["status"]["type"] == "certificate"
    })
    .await;
    assert!(
        c.body["status"]["target"]
            .as_str()
            .unwrap()
            .starts_with("localhost:"),
        "{:?}",
        c.body
    );

    let bad = wait_patch(&fake, "ops", "badcron", "invalid heartbeat", |b| {
        b["status"]["state"] == "invalid"
    })
    .await;
    assert_eq!(ready(&bad.body)["reason"], "InvalidSpec");
    let msg = bad.body["status"]["message"].as_str().unwrap();
    assert!(msg.starts_with("spec.heartbeat: "), "{msg}");
}
