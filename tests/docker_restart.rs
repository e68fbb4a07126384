//! The Docker engine goes away and comes back: maintenant keeps running,
//! reports the runtime disconnected with the error, keeps the last known
//! containers listed (marked `stale`) and their label monitors declared, and
//! reconnects. The engine is a private dockerd started for this test alone
//! (tests/support/dockerd.sh on its own folder), so it runs wherever dockerd
//! is installed and we are root, and never stops an engine others use.

mod common;
#[path = "support/engine.rs"]
mod engine;

use std::time::Duration;

use common::{Daemon, free_port, wait_for};
use engine::{Cleanup, private_engine};

use serde_json::{Value, json};

async fn listed(mcp: &common::Mcp, name: &str) -> Option<Value> {
    let page = mcp
        .ok("list_containers", json!({"detail": "full", "name": name}))
        .await;
    page["items"]
        .as_array()
        .and_then(|items| items.iter().find(|c| c["name"] == name).cloned())
}

#[tokio::test]
async fn an_engine_restart_is_survived() {
    let Some(private) = private_engine("restart") else {
        return;
    };
    let e = private.engine.clone();
    let name = format!("mt{}-restart", std::process::id());
    // Dropped in reverse order: the engine is back before the cleanup runs.
    let _cleanup = Cleanup(e.clone(), vec![name.clone()]);
    let _restart = engine::Restart(e.clone());
    let port = free_port();
    e.run_httpd(
        &name,
        port,
        &[
            (
                "maintenant.endpoint.http",
                format!("http://127.0.0.1:{port}/"),
            ),
            ("maintenant.endpoint.interval", "1s".into()),
            ("maintenant.endpoint.failure-threshold", "1".into()),
        ],
        &["--restart", "always", "--stop-timeout", "1"],
    );
    let d = Daemon::start_with(
        "endpoints: []\n",
        // The default grace (10s) covers the seconds between the engine
        // stopping the container and the engine being gone.
        &[("MAINTENANT_DOCKER", &e.host)],
    )
    .await;
    let mcp = d.mcp().await;
    mcp.wait_status(&name, "up", Duration::from_secs(30)).await;
    let before = listed(&mcp, &name).await.expect("listed while connected");
    assert!(before.get("stale").is_none(), "{before}");

    let stopper = e.clone();
    tokio::task::spawn_blocking(move || stopper.stop_engine())
        .await
        .unwrap();
    let health = wait_for(
        "docker reported disconnected",
        Duration::from_secs(30),
        async || {
            let h = mcp.ok("get_health", json!({})).await;
            (h["runtimes"][0]["connected"] == false && h["runtimes"][0]["last_error"].is_string())
                .then_some(h)
        },
    )
    .await;
    assert_eq!(health["status"], "degraded");
    // The daemon still answers, and the label monitor is still declared
    // (down, since its container went with the engine).
    mcp.wait_status(&name, "down", Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        mcp.endpoint(&name).await.is_some(),
        "not dropped while the engine is away"
    );
    // The container is still listed, as last seen and marked not current.
    let during = listed(&mcp, &name)
        .await
        .expect("the last known container is listed during the outage");
    assert_eq!(during["stale"], true, "{during}");
    assert!(during["as_of"].is_string(), "{during}");
    assert_eq!(during["id"], before["id"], "{during}");
    let health = mcp.ok("get_health", json!({})).await;
    assert_eq!(health["runtimes"][0]["containers"], 1, "{health}");

    let starter = e.clone();
    tokio::task::spawn_blocking(move || starter.start_engine())
        .await
        .unwrap();
    // Backoff is at most 30s between attempts.
    let h = wait_for("docker reconnected", Duration::from_secs(60), async || {
        let h = mcp.ok("get_health", json!({})).await;
        (h["runtimes"][0]["connected"] == true).then_some(h)
    })
    .await;
    assert!(h["runtimes"][0]["last_error"].is_null(), "{h}");
    let row = mcp.wait_status(&name, "up", Duration::from_secs(60)).await;
    // The fresh list replaced the stale rows.
    let after = listed(&mcp, &name)
        .await
        .expect("listed after reconnecting");
    assert!(after.get("stale").is_none(), "{after}");
    assert!(after.get("as_of").is_none(), "{after}");
    assert_eq!(row["desired"]["origin"]["container"], name.as_str());
    assert!(d.log().contains("lost the Docker engine"));
}
