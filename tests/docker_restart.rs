//! The Docker engine goes away and comes back: maintenant keeps running,
//! reports the runtime disconnected with the error, keeps the label monitors
//! declared, and reconnects. Its own test binary: it stops the shared engine,
//! and cargo runs test binaries one after another.

mod common;
#[path = "support/engine.rs"]
mod engine;

use std::time::Duration;

use common::{Daemon, free_port, wait_for};
use engine::{Cleanup, engine};

use serde_json::json;

#[tokio::test]
async fn an_engine_restart_is_survived() {
    let Some(e) = engine() else { return };
    if e.dir().is_none() {
        eprintln!(
            "SKIPPED: the engine at {} was not started by tests/support/dockerd.sh, so it is not ours to restart",
            e.host
        );
        return;
    }
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
    assert_eq!(row["desired"]["origin"]["container"], name.as_str());
    assert!(d.log().contains("lost the Docker engine"));
}
