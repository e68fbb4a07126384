//! Endpoint monitoring end to end: the real binary checks real HTTP and TCP
//! servers on 127.0.0.1, and a real MCP client (rmcp, Streamable HTTP) reads
//! what it saw.

mod common;

use std::time::Duration;

use common::{Daemon, Target, free_port};
use serde_json::json;

const T: Duration = Duration::from_secs(20);

#[tokio::test]
async fn http_endpoint_goes_down_after_threshold_and_recovers() {
    let target = Target::start().await;
    let d = Daemon::start(&format!(
        "endpoints:\n  - name: api\n    group: core\n    url: {}\n    interval: 1s\n    timeout: 1s\n    failure_threshold: 2\n    recovery_threshold: 2\n",
        target.url("/health")
    ))
    .await;
    let mcp = d.mcp().await;

    let up = mcp.wait_status("api", "up", T).await;
    assert_eq!(up["id"], "endpoint/api");
    assert_eq!(up["type"], "http");
    assert_eq!(up["group"], "core");
    assert_eq!(up["desired"]["origin"]["source"], "file");
    assert_eq!(
        up["desired"]["origin"]["line"], 2,
        "origin points at the list item"
    );
    assert_eq!(up["desired"]["spec"]["failure_threshold"], 2);
    assert_eq!(up["observed"]["last_check"]["status_code"], 200);
    assert_eq!(up["uptime_24h"], 100.0);

    target.set_status(503);
    // One failure is below the threshold: still up.
    let one_failure = common::wait_for("a first failure", T, async || {
        mcp.endpoint("api")
            .await
            .filter(|r| r["observed"]["consecutive_failures"].as_u64() >= Some(1))
    })
    .await;
    assert_eq!(
        one_failure["observed"]["status"], "up",
        "one failure does not cross failure_threshold 2"
    );
    let down = mcp.wait_status("api", "down", T).await;
    assert!(
        down["observed"]["error"].as_str().unwrap().contains("503"),
        "{down}"
    );
    assert!(down["observed"]["consecutive_failures"].as_u64().unwrap() >= 2);

    target.set_status(200);
    let back = mcp.wait_status("api", "up", T).await;
    assert!(back["uptime_24h"].as_f64().unwrap() < 100.0);

    let h = mcp
        .ok(
            "get_endpoint_history",
            json!({"endpoint_id": "api", "limit": 100}),
        )
        .await;
    let checks = h["checks"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["up"] == false) && checks.iter().any(|c| c["up"] == true));
    assert!(
        checks
            .windows(2)
            .all(|w| w[0]["at"].as_str() >= w[1]["at"].as_str()),
        "newest first"
    );
    assert!(h["summary"]["p50_response_ms"].as_f64().is_some());
    assert_eq!(h["summary"]["checks"], checks.len());
    // `total` counts every page (a check may land between the read and the
    // count: the daemon checks every second).
    assert!(h["next_cursor"].is_null(), "fewer than 100 checks so far");
    let total = h["total"].as_u64().unwrap();
    assert!(
        total == checks.len() as u64 || total == checks.len() as u64 + 1,
        "total {total}, {} checks",
        checks.len()
    );

    // Paging through history with the cursor returns older checks, no overlap.
    let p1 = mcp
        .ok(
            "get_endpoint_history",
            json!({"endpoint_id": "endpoint/api", "limit": 2}),
        )
        .await;
    let cursor = p1["next_cursor"].as_str().expect("more history exists");
    let p2 = mcp
        .ok(
            "get_endpoint_history",
            json!({"endpoint_id": "api", "limit": 2, "cursor": cursor}),
        )
        .await;
    assert!(p2["checks"][0]["at"].as_str() < p1["checks"][1]["at"].as_str());
    assert!(
        p1["total"].as_u64().unwrap() >= total,
        "the total of every page, not of one"
    );
    assert!(p2["total"].as_u64().unwrap() >= p1["total"].as_u64().unwrap());
    // `since` narrows the total too.
    let recent = mcp
        .ok(
            "get_endpoint_history",
            json!({"endpoint_id": "api", "since": "2s", "limit": 1}),
        )
        .await;
    assert!(recent["total"].as_u64().unwrap() < p2["total"].as_u64().unwrap());
}

#[tokio::test]
async fn conditions_judge_body_and_status() {
    let target = Target::start().await;
    let d = Daemon::start(&format!(
        r#"endpoints:
  - name: body
    url: {}
    interval: 1s
    failure_threshold: 1
    conditions:
      - "[STATUS] == 200"
      - "[BODY].status == UP"
      - "[RESPONSE_TIME] < 5000"
"#,
        target.url("/status")
    ))
    .await;
    let mcp = d.mcp().await;
    mcp.wait_status("body", "up", T).await;
    target.set_body(r#"{"status":"DOWN"}"#);
    let down = mcp.wait_status("body", "down", T).await;
    let err = down["observed"]["error"].as_str().unwrap();
    assert!(
        err.contains("[BODY].status") && err.contains("DOWN"),
        "{err}"
    );
}

#[tokio::test]
async fn tcp_endpoints_connect_or_report_refused() {
    let target = Target::start().await;
    let closed = free_port();
    let d = Daemon::start(&format!(
        "endpoints:\n  - name: open\n    url: tcp://127.0.0.1:{}\n    interval: 1s\n  - name: closed\n    url: tcp://127.0.0.1:{closed}\n    interval: 1s\n    failure_threshold: 1\n",
        target.port
    ))
    .await;
    let mcp = d.mcp().await;
    let open = mcp.wait_status("open", "up", T).await;
    assert_eq!(open["type"], "tcp");
    let closed = mcp.wait_status("closed", "down", T).await;
    let err = closed["observed"]["error"].as_str().unwrap().to_lowercase();
    assert!(err.contains("refused"), "{err}");
}

#[tokio::test]
async fn lists_filter_page_and_unknown_names_get_actionable_errors() {
    let target = Target::start().await;
    let mut yaml = String::from("endpoints:\n");
    for (name, group) in [("web-1", "web"), ("web-2", "web"), ("db", "data")] {
        yaml += &format!(
            "  - name: {name}\n    group: {group}\n    url: {}\n    interval: 1s\n",
            target.url("/")
        );
    }
    yaml += "  - name: never-checked\n    url: http://127.0.0.1:9/\n    interval: 1h\n";
    let d = Daemon::start(&yaml).await;
    let mcp = d.mcp().await;
    mcp.wait_status("db", "up", T).await;

    let web = mcp
        .ok("list_endpoints", json!({"detail": "full", "group": "web"}))
        .await;
    assert_eq!(web["total"], 2);
    let page1 = mcp
        .ok("list_endpoints", json!({"detail": "full", "limit": 3}))
        .await;
    assert_eq!(
        (
            page1["total"].as_u64(),
            page1["items"].as_array().unwrap().len()
        ),
        (Some(4), 3)
    );
    let page2 = mcp
        .ok(
            "list_endpoints",
            json!({"detail": "full", "limit": 3, "cursor": page1["next_cursor"]}),
        )
        .await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert!(page2.get("next_cursor").is_none());

    let bad = mcp
        .call(
            "list_endpoints",
            json!({"detail": "full", "cursor": "nonsense"}),
        )
        .await;
    assert!(bad.is_error && bad.text.contains("cursor"), "{}", bad.text);

    let unknown = mcp
        .call("get_endpoint_history", json!({"endpoint_id": "web1"}))
        .await;
    assert!(unknown.is_error, "an unknown endpoint is a tool error");
    assert!(
        unknown.text.contains("did you mean") && unknown.text.contains("web-1"),
        "{}",
        unknown.text
    );

    let by_id = mcp
        .ok(
            "get_endpoint_history",
            json!({"endpoint_id": "endpoint/db", "since": "1h"}),
        )
        .await;
    assert_eq!(by_id["id"], "endpoint/db");
}

#[tokio::test]
async fn tools_are_listed_in_contract_order_with_schemas_and_hints() {
    let d = Daemon::start("endpoints: []\n").await;
    let mcp = d.mcp().await;
    let tools = mcp.0.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    // The contract's order, whichever tools exist so far.
    let expected: Vec<&str> = maintenant::mcp::TOOL_ORDER
        .iter()
        .copied()
        .filter(|n| names.contains(n))
        .collect();
    assert_eq!(names, expected, "contract order");
    for t in [
        "list_containers",
        "get_container",
        "get_container_logs",
        "list_endpoints",
        "get_endpoint_history",
        "get_resources",
        "get_top_consumers",
        "list_certificates",
        "list_alerts",
        "get_health",
        "list_heartbeats",
        "acknowledge_alert",
        "pause_monitor",
        "resume_monitor",
        "get_updates",
        "create_incident",
        "update_incident",
        "create_maintenance",
    ] {
        assert!(names.contains(&t), "{t} is listed: {names:?}");
    }
    for t in &tools {
        assert!(t.output_schema.is_some(), "{} has an outputSchema", t.name);
        let a = t.annotations.as_ref();
        if ["acknowledge_alert", "pause_monitor", "resume_monitor"].contains(&t.name.as_ref()) {
            assert_eq!(a.and_then(|a| a.read_only_hint), Some(false));
            assert_eq!(a.and_then(|a| a.destructive_hint), Some(false));
            assert_eq!(a.and_then(|a| a.idempotent_hint), Some(true));
            continue;
        }
        // Write tools that add a record each call.
        if ["create_incident", "update_incident", "create_maintenance"].contains(&t.name.as_ref()) {
            assert_eq!(a.and_then(|a| a.read_only_hint), Some(false), "{}", t.name);
            assert_eq!(
                a.and_then(|a| a.destructive_hint),
                Some(false),
                "{}",
                t.name
            );
            assert_eq!(a.and_then(|a| a.idempotent_hint), Some(false), "{}", t.name);
            continue;
        }
        assert_eq!(a.and_then(|a| a.read_only_hint), Some(true), "{}", t.name);
        assert!(
            t.description.as_ref().is_some_and(|d| d.len() > 40),
            "{} is described",
            t.name
        );
    }
    let health = mcp.ok("get_health", json!({})).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["role"], "daemon");
    assert_eq!(health["drift"]["in_sync"], true);
}

#[tokio::test]
async fn mcp_accepts_the_sidecar_host_name_and_refuses_others() {
    common::init();
    let d = Daemon::start("endpoints: []\n").await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let client = reqwest::Client::new();
    let post = |host: String| {
        client
            .post(d.url("/mcp"))
            .header("host", host)
            .header("accept", "application/json, text/event-stream")
            .json(&init)
            .send()
    };
    let sidecar = post(format!("maintenant:{}", d.port)).await.unwrap();
    assert!(
        sidecar.status().is_success(),
        "Host maintenant:PORT accepted, got {}",
        sidecar.status()
    );
    let evil = post("evil.example:80".into()).await.unwrap();
    assert_eq!(
        evil.status().as_u16(),
        403,
        "a foreign Host is refused (DNS rebinding)"
    );
}
