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
    tokio::spawn(kubernetes::watch(client(&fake).await, ns, pods.clone()));

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
