//! The pod model (`runtime::kubernetes`) against the fake API server with
//! kube's real client: phase, readiness, restarts, the owning workload,
//! transitions from the watch stream (also across a cut watch), and logs.

mod common;

use std::time::Duration;

use common::fake_kube::{FakeKube, PODS};
use common::wait_for;
use maintenant::kubeclient::Namespaces;
use maintenant::runtime::kubernetes::{self, LogRequest, Pods};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(10);

fn pod(
    ns: &str,
    name: &str,
    phase: &str,
    ready: bool,
    restarts: u32,
    waiting: Option<&str>,
) -> Value {
    let state = match waiting {
        Some(reason) => json!({"waiting": {"reason": reason}}),
        None => json!({"running": {"startedAt": "2026-11-25T10:00:00Z"}}),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {"app": "web", "pod-template-hash": "7d4b9c8f5"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c8f5",
                "uid": "11111111-2222-3333-4444-555555555555", "controller": true
            }]
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "registry.local/web:1.2"}]},
        "status": {
            "phase": phase,
            "startTime": "2026-11-25T10:00:00Z",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            "containerStatuses": [{
                "name": "app", "image": "registry.local/web:1.2", "imageID": "", "ready": ready,
                "restartCount": restarts, "state": state
            }]
        }
    })
}

async fn client(fake: &FakeKube) -> kube::Client {
    common::init();
    let config = kube::Config::new(fake.url().parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn pods_their_workload_and_transitions() {
    let fake = FakeKube::start().await;
    fake.apply(
        PODS,
        pod(
            "shop",
            "web-7d4b9c8f5-abcde",
            "Pending",
            false,
            0,
            Some("ContainerCreating"),
        ),
    );
    fake.apply(PODS, pod("other", "skipped", "Running", true, 0, None));
    let pods = Pods::default();
    let ns = Namespaces {
        include: vec!["shop".into()],
        exclude: vec![],
    };
    tokio::spawn(kubernetes::watch(
        client(&fake).await,
        ns,
        pods.clone(),
        kubernetes::WORKLOAD_TTL,
    ));

    let p = wait_for("the pod listed", T, async || {
        pods.get("shop", "web-7d4b9c8f5-abcde")
    })
    .await;
    assert!(pods.synced());
    assert_eq!(p.phase, "Pending");
    assert!(!p.ready);
    assert_eq!(p.node.as_deref(), Some("node-1"));
    let g = p.group.clone().unwrap();
    assert_eq!(
        (g.kind.as_str(), g.name.as_str()),
        ("Deployment", "web"),
        "ReplicaSet resolved to its Deployment"
    );
    assert_eq!(p.containers[0].image, "registry.local/web:1.2");
    assert_eq!(p.containers[0].state, "waiting");
    assert_eq!(p.containers[0].reason.as_deref(), Some("ContainerCreating"));
    assert!(pods.get("other", "skipped").is_none(), "namespace filter");
    assert!(
        pods.transitions("shop", "web-7d4b9c8f5-abcde").is_empty(),
        "first sight is not a transition"
    );

    // Running and ready: one transition.
    fake.apply(
        PODS,
        pod("shop", "web-7d4b9c8f5-abcde", "Running", true, 0, None),
    );
    wait_for("running", T, async || {
        pods.get("shop", "web-7d4b9c8f5-abcde").filter(|p| p.ready)
    })
    .await;
    let t = pods.transitions("shop", "web-7d4b9c8f5-abcde");
    assert_eq!(
        t.iter()
            .map(|t| (t.from.as_str(), t.to.as_str()))
            .collect::<Vec<_>>(),
        [("pending", "running")]
    );

    // A crash: restarted, then not ready, with the reason.
    fake.apply(
        PODS,
        pod(
            "shop",
            "web-7d4b9c8f5-abcde",
            "Running",
            false,
            1,
            Some("CrashLoopBackOff"),
        ),
    );
    wait_for("restarted", T, async || {
        pods.get("shop", "web-7d4b9c8f5-abcde")
            .filter(|p| p.restarts == 1)
    })
    .await;
    let t = pods.transitions("shop", "web-7d4b9c8f5-abcde");
    let pairs: Vec<_> = t.iter().map(|t| (t.from.as_str(), t.to.as_str())).collect();
    assert_eq!(
        pairs,
        [
            ("pending", "running"),
            ("running", "restarted"),
            ("running", "not_ready")
        ]
    );
    assert_eq!(t[2].reason.as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(t[2].restarts, 1);

    // A cut watch resumes; a change made while the server refused arrives.
    fake.set_available(false);
    fake.cut_watches();
    fake.apply(
        PODS,
        pod("shop", "web-7d4b9c8f5-abcde", "Running", true, 1, None),
    );
    fake.apply(
        PODS,
        pod(
            "shop",
            "web-7d4b9c8f5-fghij",
            "Pending",
            false,
            0,
            Some("ContainerCreating"),
        ),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.set_available(true);
    wait_for("ready again", T, async || {
        pods.get("shop", "web-7d4b9c8f5-abcde").filter(|p| p.ready)
    })
    .await;
    wait_for("the new pod", T, async || {
        pods.get("shop", "web-7d4b9c8f5-fghij")
    })
    .await;
    assert_eq!(
        pods.transitions("shop", "web-7d4b9c8f5-abcde")
            .last()
            .unwrap()
            .to,
        "running"
    );

    // Deleted: gone from the list, the transition kept.
    fake.delete(PODS, "shop", "web-7d4b9c8f5-abcde");
    wait_for("deleted", T, async || {
        pods.get("shop", "web-7d4b9c8f5-abcde")
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(
        pods.transitions("shop", "web-7d4b9c8f5-abcde")
            .last()
            .unwrap()
            .to,
        "deleted"
    );
    assert_eq!(pods.list().len(), 1);
}

#[tokio::test]
async fn pod_logs_lines_since_and_timestamps() {
    let fake = FakeKube::start().await;
    fake.apply(PODS, pod("shop", "api", "Running", true, 0, None));
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    fake.set_logs(
        "shop",
        "api",
        vec![
            (now - time::Duration::hours(2), "old line".into()),
            (now - time::Duration::seconds(30), "starting".into()),
            (
                now - time::Duration::seconds(20),
                "listening on :8080".into(),
            ),
            (now - time::Duration::seconds(10), "GET /health 200".into()),
        ],
    );
    let c = client(&fake).await;

    let all = kubernetes::logs(c.clone(), "shop", "api", &LogRequest::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].text, "old line");
    assert!(all[0].at.is_none());

    let tail = kubernetes::logs(
        c.clone(),
        "shop",
        "api",
        &LogRequest {
            lines: Some(2),
            timestamps: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        tail.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
        ["listening on :8080", "GET /health 200"]
    );
    let at = time::OffsetDateTime::parse(
        tail[1].at.as_deref().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(at, now - time::Duration::seconds(10));

    let recent = kubernetes::logs(
        c.clone(),
        "shop",
        "api",
        &LogRequest {
            since: Some(Duration::from_secs(3600)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(recent.len(), 3, "the line from two hours ago is left out");

    let missing = kubernetes::logs(c, "shop", "nope", &LogRequest::default())
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("not found"), "{missing}");
    let reqs = fake.requests();
    assert!(
        reqs.iter()
            .any(|r| r.contains("/api/v1/namespaces/shop/pods/api/log?")
                && r.contains("tailLines=2")
                && r.contains("timestamps=true")),
        "{reqs:?}"
    );
}

/// Pods in the container tools: the real binary pointed at the fake API
/// server by a kubeconfig, asked by a real MCP client.
#[tokio::test]
async fn pods_are_rows_of_the_container_tools_with_transitions_and_logs() {
    let fake = FakeKube::start().await;
    let web = "web-7d4b9c8f5-abcde";
    fake.apply(PODS, pod("shop", web, "Running", true, 2, None));
    let mut worker = pod(
        "shop",
        "worker",
        "Pending",
        false,
        0,
        Some("ContainerCreating"),
    );
    worker["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    worker["spec"]["containers"] = json!([
        {"name": "app", "image": "registry.local/worker:3"},
        {"name": "proxy", "image": "registry.local/proxy:1"}
    ]);
    fake.apply(PODS, worker);
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let ago = |s: i64| now - time::Duration::seconds(s);
    fake.set_logs(
        "shop",
        web,
        vec![
            (ago(7200), "old line".into()),
            (ago(30), "starting".into()),
            (ago(20), "listening on :8080".into()),
            (ago(10), "GET /health 200".into()),
        ],
    );
    fake.set_container_logs(
        "shop",
        "worker",
        "app",
        vec![(ago(30), "app 1".into()), (ago(10), "app 2".into())],
    );
    fake.set_container_logs("shop", "worker", "proxy", vec![(ago(20), "proxy 1".into())]);
    let d = fake
        .daemon("endpoints: []\n", &[("MAINTENANT_DOCKER", "false")])
        .await;
    let mcp = d.mcp().await;

    let page = wait_for("both pods listed", T, async || {
        let p = mcp.ok("list_containers", json!({"detail": "full"})).await;
        (p["total"] == 2).then_some(p)
    })
    .await;
    let row = &page["items"][0];
    assert_eq!(row["name"], format!("shop/{web}"));
    assert_eq!(row["runtime"], "kubernetes");
    assert_eq!(row["state"], "running");
    assert_eq!(row["health"], "healthy");
    assert_eq!(row["group"], "web", "the Deployment owning the ReplicaSet");
    assert_eq!(row["restarts"], 2);
    assert_eq!(row["started_at"], "2026-11-25T10:00:00Z");
    assert_eq!(row["image"], "registry.local/web:1.2");
    assert_eq!(row["pod"]["workload"]["kind"], "Deployment");
    assert_eq!(row["pod"]["node"], "node-1");
    let w = &page["items"][1];
    assert_eq!(
        (
            w["name"].as_str(),
            w["state"].as_str(),
            w["health"].as_str()
        ),
        (Some("shop/worker"), Some("pending"), Some("starting"))
    );
    assert_eq!(w["group"], Value::Null, "no owner, no group");
    assert_eq!(w["pod"]["containers"][0]["reason"], "ContainerCreating");
    let only = mcp
        .ok("list_containers", json!({"detail": "full", "group": "web"}))
        .await;
    assert_eq!(only["total"], 1);
    let pending = mcp
        .ok(
            "list_containers",
            json!({"detail": "full", "state": "pending"}),
        )
        .await;
    assert_eq!(pending["items"][0]["name"], "shop/worker");

    // get_updates says it does not scan pods, instead of an empty silence,
    // and asked about a pod, answers why.
    let up = mcp.ok("get_updates", json!({})).await;
    assert_eq!(up["total"], 0);
    assert!(
        up["notes"][0]
            .as_str()
            .unwrap()
            .contains("pods are not scanned"),
        "{up:#}"
    );
    let asked = mcp
        .call("get_updates", json!({"container": "shop/worker"}))
        .await;
    assert!(asked.is_error, "{}", asked.text);
    assert!(
        asked.text.contains("'shop/worker' is a pod"),
        "{}",
        asked.text
    );

    // get_health lists the runtime, connected, with its pod count.
    let health = mcp.ok("get_health", json!({})).await;
    let rt = health["runtimes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "kubernetes")
        .cloned()
        .unwrap_or_else(|| panic!("no kubernetes runtime in {health}"));
    assert_eq!(rt["connected"], true, "{rt}");
    assert_eq!(rt["containers"], 2);
    assert!(rt["version"].is_string(), "{rt}");

    // A crash: the row follows, get_container shows the transitions.
    fake.apply(
        PODS,
        pod("shop", web, "Running", false, 3, Some("CrashLoopBackOff")),
    );
    wait_for("restarts 3", T, async || {
        let p = mcp
            .ok("list_containers", json!({"detail": "full", "group": "web"}))
            .await;
        (p["items"][0]["restarts"] == 3 && p["items"][0]["health"] == "unhealthy").then_some(())
    })
    .await;
    // By the pod's name alone, as a person would say it.
    let detail = mcp.ok("get_container", json!({"container_id": web})).await;
    assert_eq!(detail["container"]["name"], format!("shop/{web}"));
    let events: Vec<(&str, &str)> = detail["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["event"].as_str().unwrap(),
                t["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("not_ready", "CrashLoopBackOff"),
            ("restarted", "CrashLoopBackOff")
        ],
        "newest first"
    );
    assert_eq!(detail["transitions"][0]["state"], "not_ready");

    // Pod transitions are kept in the database, as container transitions
    // are: a restart of the daemon keeps them.
    let kubeconfig = fake.kubeconfig(d.dir.path());
    d.sigterm();
    let common::Daemon {
        dir,
        mut child,
        config,
        db,
        ..
    } = d;
    child.wait().await.unwrap();
    let d = common::Daemon::spawn(
        dir,
        config,
        db,
        &[
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("MAINTENANT_KUBERNETES", "true"),
            ("MAINTENANT_DOCKER", "false"),
        ],
    )
    .await;
    let mcp = d.mcp().await;
    let again = wait_for("the pod after the restart", T, async || {
        mcp.call("get_container", json!({"container_id": web}))
            .await
            .structured
            .get("transitions")
            .cloned()
    })
    .await;
    let kept: Vec<(&str, &str)> = again
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["event"].as_str().unwrap(),
                t["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            ("not_ready", "CrashLoopBackOff"),
            ("restarted", "CrashLoopBackOff")
        ],
        "kept across the restart"
    );

    // Logs: tail with timestamps, since, one stream (combined), the note.
    let logs = mcp
        .ok(
            "get_container_logs",
            json!({"container_id": format!("shop/{web}"), "lines": 2, "timestamps": true}),
        )
        .await;
    let texts: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["listening on :8080", "GET /health 200"]);
    assert_eq!(logs["lines"][0]["stream"], "combined");
    assert_eq!(logs["lines"][0]["container"], "app");
    assert_eq!(
        logs["lines"][1]["time"],
        ago(10)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    assert!(
        logs["note"].as_str().unwrap().contains("stdout and stderr"),
        "{logs}"
    );
    let recent = mcp
        .ok(
            "get_container_logs",
            json!({"container_id": web, "since": "1h"}),
        )
        .await;
    assert_eq!(recent["count"], 3, "the two-hour-old line is left out");
    assert!(recent["lines"][0]["time"].is_null(), "no timestamps asked");
    // Two containers: merged by time, each line naming its container.
    let merged = mcp
        .ok("get_container_logs", json!({"container_id": "worker"}))
        .await;
    let lines: Vec<(&str, &str)> = merged["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["container"].as_str().unwrap(),
                l["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [("app", "app 1"), ("proxy", "proxy 1"), ("app", "app 2")]
    );

    // Deleted: the row goes; naming it is an error with a suggestion.
    fake.delete(PODS, "shop", "worker");
    wait_for("worker gone", T, async || {
        let p = mcp.ok("list_containers", json!({"detail": "full"})).await;
        (p["total"] == 1).then_some(())
    })
    .await;
    let gone = mcp
        .call("get_container", json!({"container_id": "shop/worker"}))
        .await;
    assert!(
        gone.is_error && gone.text.contains("no container named"),
        "{}",
        gone.text
    );
}

/// Pod annotations declare monitors: once per workload, following its pods
/// (a rollout keeps the check), a bad annotation skipped and reported.
#[tokio::test]
async fn pod_annotations_declare_monitors_that_follow_the_workload() {
    use common::Target;
    let fake = FakeKube::start().await;
    let target = Target::start().await;
    let annotated = |name: &str| {
        let mut p = pod("shop", name, "Running", true, 0, None);
        p["metadata"]["annotations"] = json!({
            "maintenant.endpoint.http": target.url("/health"),
            "maintenant.endpoint.interval": "1s",
            "maintenant.endpoint.1.http": "ftp://127.0.0.1/",
            "maintenant.heartbeat.nightly.schedule": "0 3 * * *",
        });
        p
    };
    // The Deployment's own annotations count too; the pod's win over them.
    fake.apply(
        common::fake_kube::DEPLOYMENTS,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "annotations": {
                "maintenant.endpoint.2.http": target.url("/workload"),
                "maintenant.endpoint.2.interval": "1s",
                "maintenant.endpoint.interval": "5s",
            }},
            "spec": {}
        }),
    );
    fake.apply(PODS, annotated("web-7d4b9c8f5-aaaaa"));
    fake.apply(PODS, annotated("web-7d4b9c8f5-bbbbb"));
    let d = fake
        .daemon(
            "endpoints: []\n",
            &[
                ("MAINTENANT_DOCKER", "false"),
                ("MAINTENANT_DOCKER_GRACE", "2s"),
                ("MAINTENANT_KUBERNETES_WORKLOAD_INTERVAL", "1s"),
            ],
        )
        .await;
    let mcp = d.mcp().await;

    let row = mcp.wait_status("shop.web", "up", T).await;
    let origin = &row["desired"]["origin"];
    assert_eq!(origin["source"], "kubernetes", "{row}");
    assert_eq!(origin["kind"], "Pod");
    assert_eq!(origin["namespace"], "shop");
    assert_eq!(origin["annotation"], "maintenant.endpoint.http");
    let task = row["observed"]["task"]["task_id"].clone();
    assert_eq!(
        row["desired"]["spec"]["interval"], "1s",
        "the pod's annotation wins"
    );
    let from_workload = mcp.wait_status("shop.web-2", "up", T).await;
    assert_eq!(
        from_workload["desired"]["origin"]["annotation"],
        "maintenant.endpoint.2.http"
    );
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.starts_with("GET /apis/apps/v1/namespaces/shop/deployments/web")),
        "the Deployment is read"
    );
    let heartbeats = mcp.ok("list_heartbeats", json!({"detail": "full"})).await;
    assert_eq!(heartbeats["items"][0]["id"], "heartbeat/nightly");
    assert_eq!(
        heartbeats["items"][0]["desired"]["origin"]["annotation"],
        "maintenant.heartbeat.nightly"
    );

    // Both replicas show the workload's monitors and the bad annotation.
    for pod in ["web-7d4b9c8f5-aaaaa", "web-7d4b9c8f5-bbbbb"] {
        let detail = mcp.ok("get_container", json!({"container_id": pod})).await;
        let ids: Vec<&str> = detail["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "endpoint/shop.web",
                "endpoint/shop.web-2",
                "heartbeat/nightly"
            ],
            "{detail}"
        );
        assert_eq!(
            detail["label_problems"][0]["label"],
            "maintenant.endpoint.1.http"
        );
    }
    let health = mcp.ok("get_health", json!({})).await;
    let src = health["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "kubernetes_annotations")
        .cloned()
        .unwrap_or_else(|| panic!("no annotation source in {health}"));
    let problems = src["last_error"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "once per workload: {src}");
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .contains("shop.web: annotation maintenant.endpoint.1.http"),
        "{src}"
    );

    // An edit to the Deployment's own annotations, with no pod changing:
    // the monitor it declares follows (read again every second here).
    fake.apply(
        common::fake_kube::DEPLOYMENTS,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "annotations": {
                "maintenant.endpoint.2.http": target.url("/workload-moved"),
                "maintenant.endpoint.2.interval": "1s",
                "maintenant.endpoint.interval": "5s",
            }},
            "spec": {}
        }),
    );
    wait_for(
        "the workload's edited monitor to check its new URL",
        T,
        async || (target.hits("/workload-moved") > 0).then_some(()),
    )
    .await;
    let moved = mcp.endpoint("shop.web-2").await.unwrap();
    assert!(
        moved["target"]
            .as_str()
            .unwrap()
            .ends_with("/workload-moved"),
        "{moved}"
    );
    assert_eq!(
        mcp.endpoint("shop.web").await.unwrap()["observed"]["task"]["task_id"],
        task,
        "the pod's own monitor is untouched"
    );

    // A rollout: old pods go, a new one comes; the check is the same task.
    fake.delete(PODS, "shop", "web-7d4b9c8f5-aaaaa");
    fake.delete(PODS, "shop", "web-7d4b9c8f5-bbbbb");
    fake.apply(PODS, annotated("web-7d4b9c8f5-ccccc"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let row = mcp
        .endpoint("shop.web")
        .await
        .expect("kept across the rollout");
    assert_eq!(row["observed"]["task"]["task_id"], task, "not restarted");

    // All pods gone: after the grace, the monitors go.
    fake.delete(PODS, "shop", "web-7d4b9c8f5-ccccc");
    wait_for("the monitor removed", T, async || {
        mcp.endpoint("shop.web").await.is_none().then_some(())
    })
    .await;
}

/// `MAINTENANT_KUBERNETES_LOGS=false` (the chart's `kubernetes.podLogs:
/// false`, which also drops the `pods/log` grant): get_container_logs says
/// logs are off, and no log request reaches the API server.
#[tokio::test]
async fn pod_logs_off_answers_why_and_never_asks_the_api() {
    let fake = FakeKube::start().await;
    let web = "web-7d4b9c8f5-abcde";
    fake.apply(PODS, pod("shop", web, "Running", true, 0, None));
    let now = time::OffsetDateTime::now_utc();
    fake.set_logs("shop", web, vec![(now, "secret line".into())]);
    let d = fake
        .daemon(
            "endpoints: []\n",
            &[
                ("MAINTENANT_DOCKER", "false"),
                ("MAINTENANT_KUBERNETES_LOGS", "false"),
            ],
        )
        .await;
    let mcp = d.mcp().await;
    wait_for("the pod listed", T, async || {
        let p = mcp.ok("list_containers", json!({"detail": "full"})).await;
        (p["total"] == 1).then_some(())
    })
    .await;
    let a = mcp
        .call(
            "get_container_logs",
            json!({"container_id": format!("shop/{web}")}),
        )
        .await;
    assert!(a.is_error, "{}", a.text);
    assert!(
        a.text.contains("disabled by configuration")
            && a.text.contains("MAINTENANT_KUBERNETES_LOGS=false"),
        "{}",
        a.text
    );
    assert!(!a.text.contains("secret line"));
    let asked: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.contains("/log"))
        .collect();
    assert!(asked.is_empty(), "{asked:?}");
    // The rest of the pod is still there.
    mcp.ok("get_container", json!({"container_id": web})).await;
}
