//! Container alerts of pods: the real binary watching the fake API server
//! (tests/common/fake_kube.rs) with kube's real client. CrashLoopBackOff,
//! OOMKilled, an image that cannot be pulled, and a pod not Ready for longer
//! than its annotation allows each raise one alert named after the pod;
//! the pod recovering (or being deleted) resolves it.

mod common;

use std::time::Duration;

use common::fake_kube::{FakeKube, PODS};
use common::{Mcp, wait_for};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);

fn pod(name: &str, ready: bool, state: Value, last: Option<Value>) -> Value {
    let mut status = json!({
        "name": "app", "image": "registry.local/web:1.2", "imageID": "", "ready": ready,
        "restartCount": 4, "state": state
    });
    if let Some(l) = last {
        status["lastState"] = l;
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "annotations": {
                "maintenant.alert.restart_window": "2s",
                "maintenant.alert.not_ready_after": "2s"
            }
        },
        "spec": {"containers": [{"name": "app", "image": "registry.local/web:1.2"}]},
        "status": {
            "phase": if ready { "Running" } else { "Pending" },
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            "containerStatuses": [status]
        }
    })
}

fn running() -> Value {
    json!({"running": {"startedAt": "2026-11-25T10:00:00Z"}})
}

fn waiting(reason: &str) -> Value {
    json!({"waiting": {"reason": reason}})
}

async fn alert(mcp: &Mcp, entity: &str, kind: &str, status: &str) -> Value {
    wait_for(&format!("{kind} {status} for {entity}"), T, async || {
        let page = mcp
            .ok(
                "list_alerts",
                json!({"active_only": false, "source": "container", "limit": 500, "detail": "full"}),
            )
            .await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["entity"] == entity && a["type"] == kind && a["status"] == status)
            .cloned()
    })
    .await
}

#[tokio::test]
async fn pod_conditions_raise_and_resolve() {
    let fake = FakeKube::start().await;
    let d = fake
        .daemon("endpoints: []\n", &[("MAINTENANT_DOCKER", "false")])
        .await;
    let mcp = d.mcp().await;
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();

    fake.apply(PODS, pod("crash", false, waiting("CrashLoopBackOff"), None));
    fake.apply(PODS, pod("pull", false, waiting("ImagePullBackOff"), None));
    fake.apply(PODS, pod("slow", false, waiting("ContainerCreating"), None));
    fake.apply(
        PODS,
        pod(
            "oom",
            true,
            running(),
            Some(
                json!({"terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": now}}),
            ),
        ),
    );

    let crash = alert(
        &mcp,
        "container/shop/crash",
        "container_crash_loop",
        "active",
    )
    .await;
    assert!(
        crash["message"]
            .as_str()
            .unwrap()
            .contains("container app is in CrashLoopBackOff"),
        "{crash}"
    );
    assert_eq!(crash["severity"], "critical");
    let pull = alert(
        &mcp,
        "container/shop/pull",
        "container_image_pull",
        "active",
    )
    .await;
    assert!(
        pull["message"]
            .as_str()
            .unwrap()
            .contains("registry.local/web:1.2"),
        "{pull}"
    );
    alert(&mcp, "container/shop/oom", "container_oom_killed", "active").await;
    let slow = alert(&mcp, "container/shop/slow", "container_not_ready", "active").await;
    assert_eq!(slow["severity"], "warning");
    // Each pod has its own alert; a crash loop is not also "not ready".
    let page = mcp
        .ok("list_alerts", json!({"source": "container/shop/crash"}))
        .await;
    assert_eq!(page["total"], 1, "{page}");

    // Recovered: ready, and the back-off window (2s) over. The OOM kill ages out.
    fake.apply(PODS, pod("crash", true, running(), None));
    fake.apply(PODS, pod("slow", true, running(), None));
    fake.delete(PODS, "shop", "pull");
    alert(
        &mcp,
        "container/shop/crash",
        "container_crash_loop",
        "resolved",
    )
    .await;
    alert(
        &mcp,
        "container/shop/slow",
        "container_not_ready",
        "resolved",
    )
    .await;
    let gone = alert(
        &mcp,
        "container/shop/pull",
        "container_image_pull",
        "resolved",
    )
    .await;
    assert!(gone["history"].to_string().contains("is gone"), "{gone}");
    alert(
        &mcp,
        "container/shop/oom",
        "container_oom_killed",
        "resolved",
    )
    .await;
}
