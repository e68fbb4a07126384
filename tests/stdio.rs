//! `maintenant --mcp-stdio`, driven by rmcp's child-process client: on its
//! own, and beside a daemon that owns the same database.

mod common;

use std::time::Duration;

use common::{BIN, Daemon, Mcp, Target, wait_for};
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::json;

const T: Duration = Duration::from_secs(20);

async fn stdio(db: &std::path::Path, config: &std::path::Path) -> Mcp {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--mcp-stdio")
        .env("MAINTENANT_DB", db)
        .env("MAINTENANT_CONFIG", config)
        .env("MAINTENANT_LOG", "warn")
        .env("MAINTENANT_ADDR", "127.0.0.1:1");
    Mcp(
        ().serve(TokioChildProcess::new(cmd).unwrap())
            .await
            .expect("stdio MCP starts"),
    )
}

#[tokio::test]
async fn stdio_alone_runs_the_pipeline_itself() {
    let target = Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("m.yaml");
    std::fs::write(
        &config,
        format!(
            "endpoints:\n  - name: solo\n    url: {}\n    interval: 1s\n",
            target.url("/")
        ),
    )
    .unwrap();
    let db = dir.path().join("db");
    let mcp = stdio(&db, &config).await;
    let row = mcp.wait_status("solo", "up", T).await;
    assert_eq!(row["desired"]["origin"]["line"], 2);
    let h = mcp.ok("get_health", json!({})).await;
    assert_eq!(h["role"], "stdio_standalone");
    let _ = mcp.0.cancel().await;

    // The database keeps what it saw: a second session finds the history.
    let again = stdio(&db, &config).await;
    // The new session loads the monitors file first: until then "solo" is not declared.
    again.wait_status("solo", "up", T).await;
    let h = again
        .ok("get_endpoint_history", json!({"endpoint_id": "solo"}))
        .await;
    assert!(
        !h["checks"].as_array().unwrap().is_empty(),
        "history survives the process"
    );
}

#[tokio::test]
async fn stdio_beside_a_daemon_answers_from_the_daemon() {
    let target = Target::start().await;
    let d = Daemon::start(&format!(
        "endpoints:\n  - name: shared\n    url: {}\n    interval: 1s\n",
        target.url("/")
    ))
    .await;
    let http = d.mcp().await;
    let via_http = http.wait_status("shared", "up", T).await;

    let mcp = stdio(&d.db, &d.config).await;
    let h = mcp.ok("get_health", json!({})).await;
    assert_eq!(
        h["role"], "daemon",
        "the stdio process forwards to the daemon"
    );
    let tools = mcp.0.list_all_tools().await.unwrap();
    let direct = http.0.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), direct.len(), "stdio lists the daemon's tools");
    let alerts = mcp
        .ok(
            "list_alerts",
            json!({"detail": "full", "active_only": false}),
        )
        .await;
    assert_eq!(alerts["total"], 0, "served by the daemon through the proxy");
    let err = mcp
        .call("acknowledge_alert", json!({"alert_id": "42"}))
        .await;
    assert!(
        err.is_error && err.text.contains("no alert with id"),
        "{}",
        err.text
    );
    let hb = mcp.ok("list_heartbeats", json!({"detail": "full"})).await;
    assert_eq!(
        hb["total"], 0,
        "list_heartbeats is served through the proxy"
    );
    // The status tools act on the daemon's state through the proxy.
    let inc = mcp
        .ok(
            "create_incident",
            json!({"title": "via stdio", "message": "checking", "monitors": ["shared"]}),
        )
        .await;
    assert_eq!(inc["monitors"], json!(["endpoint/shared"]));
    let page: serde_json::Value = reqwest::get(d.url("/status.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["active_incidents"][0]["title"], "via stdio");
    let w = mcp
        .call(
            "create_maintenance",
            json!({"title": "w", "start_time": "soon", "end_time": "later", "monitors": ["shared"]}),
        )
        .await;
    assert!(w.is_error && w.text.contains("RFC 3339"), "{}", w.text);
    let up = mcp.ok("get_updates", json!({})).await;
    assert_eq!(up["items"], json!([]), "Docker is off in this test");
    let err = mcp
        .call(
            "pause_monitor",
            json!({"monitor_type": "endpoint", "monitor_id": "sharde"}),
        )
        .await;
    assert!(err.text.contains("did you mean 'shared'"), "{}", err.text);
    let via_stdio = mcp.endpoint("shared").await.expect("the daemon's endpoint");
    assert_eq!(
        via_stdio["observed"]["task"]["task_id"], via_http["observed"]["task"]["task_id"],
        "the same running task"
    );
    let err = mcp
        .call("get_endpoint_history", json!({"endpoint_id": "nope"}))
        .await;
    assert!(err.is_error, "tool errors pass through the proxy");

    // A change made through the daemon is visible through stdio at once.
    target.set_status(500);
    wait_for("stdio to see the daemon's new observation", T, async || {
        mcp.endpoint("shared")
            .await
            .filter(|r| r["observed"]["consecutive_failures"].as_u64() >= Some(1))
    })
    .await;
}
