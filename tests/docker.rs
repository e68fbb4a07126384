//! Docker against a real engine (tests/support/dockerd.sh): labelled busybox
//! httpd containers on 127.0.0.1 with host networking, the real binary, and
//! the real rmcp client.

mod common;
#[path = "support/engine.rs"]
mod engine;

use std::time::Duration;

use common::{BIN, Daemon, Mcp, Target, free_port, wait_for};
use engine::{Cleanup, engine};
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);

fn unique(name: &str) -> String {
    format!("mt{}-{name}", std::process::id())
}

async fn daemon(host: &str, monitors: &str) -> Daemon {
    Daemon::start_with(
        monitors,
        &[
            ("MAINTENANT_DOCKER", host),
            ("MAINTENANT_DOCKER_GRACE", "6s"),
            ("MAINTENANT_DOCKER_STATS_INTERVAL", "1s"),
        ],
    )
    .await
}

async fn container(mcp: &Mcp, name: &str) -> Option<Value> {
    let page = mcp
        .ok(
            "list_containers",
            json!({"detail": "full", "name": name, "limit": 500}),
        )
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
}

fn events(detail: &Value) -> Vec<String> {
    detail["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["event"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn labelled_containers_declare_monitors_that_follow_them() {
    let Some(e) = engine() else { return };
    let name = unique("web");
    let _cleanup = Cleanup(e.clone(), vec![name.clone()]);
    let d = daemon(&e.host, "endpoints: []\n").await;
    let mcp = d.mcp().await;

    let port = free_port();
    let labels = [
        (
            "maintenant.endpoint.http",
            format!("http://127.0.0.1:{port}/"),
        ),
        ("maintenant.endpoint.interval", "1s".into()),
        ("maintenant.endpoint.1.tcp", format!("127.0.0.1:{port}")),
        ("maintenant.endpoint.1.interval", "1s".into()),
        ("maintenant.endpoint.2.http", "ftp://127.0.0.1/".into()),
        ("maintenant.group", "shop".into()),
    ];
    e.run_httpd(&name, port, &labels, &[]);

    // Monitors appear and go up; the bad one is skipped and reported.
    let row = mcp.wait_status(&name, "up", T).await;
    assert_eq!(row["desired"]["origin"]["source"], "docker");
    assert_eq!(row["desired"]["origin"]["container"], name.as_str());
    assert_eq!(
        row["desired"]["origin"]["label"],
        "maintenant.endpoint.http"
    );
    assert_eq!(row["group"], "shop");
    mcp.wait_status(&format!("{name}-1"), "up", T).await;
    assert!(mcp.endpoint(&format!("{name}-2")).await.is_none());

    let c = wait_for("the container row", T, async || {
        container(&mcp, &name).await
    })
    .await;
    assert_eq!(c["state"], "running");
    assert_eq!(c["runtime"], "docker");
    assert_eq!(c["image"], engine::IMAGE);
    assert_eq!(c["group"], "shop");
    assert_eq!(c["restarts"], 0);
    assert!(c["started_at"].is_string(), "{c}");
    assert_eq!(c["id"].as_str().unwrap().len(), 64);

    let detail = mcp.ok("get_container", json!({"container_id": name})).await;
    let monitors: Vec<&str> = detail["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        monitors,
        [format!("endpoint/{name}"), format!("endpoint/{name}-1")]
    );
    assert_eq!(detail["monitors"][0]["observed"]["status"], "up");
    assert_eq!(
        detail["label_problems"][0]["label"], "maintenant.endpoint.2.http",
        "{detail}"
    );
    let ev = events(&detail);
    assert!(ev.contains(&"start".to_owned()), "transitions: {ev:?}");
    // By id prefix, too.
    let by_id = mcp
        .ok(
            "get_container",
            json!({"container_id": &c["id"].as_str().unwrap()[..12]}),
        )
        .await;
    assert_eq!(by_id["container"]["name"], name.as_str());

    let health = mcp.ok("get_health", json!({})).await;
    let docker = &health["runtimes"][0];
    assert_eq!(docker["name"], "docker");
    assert_eq!(docker["connected"], true, "{health}");
    let src = health["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "docker")
        .unwrap();
    let problems = src["last_error"]["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| {
            let p = p.as_str().unwrap();
            p.contains(&name) && p.contains("maintenant.endpoint.2.http")
        }),
        "{src}"
    );

    // A did-you-mean error for a near miss.
    let miss = mcp
        .call("get_container", json!({"container_id": format!("{name}x")}))
        .await;
    assert!(miss.is_error);
    assert!(miss.text.contains("did you mean"), "{}", miss.text);

    // Logs, stdout and stderr marked.
    let logs = mcp
        .ok("get_container_logs", json!({"container_id": name}))
        .await;
    let lines = logs["lines"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l["stream"] == "stdout" && l["text"] == "hello-stdout"),
        "{logs}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["stream"] == "stderr" && l["text"] == "hello-stderr"),
        "{logs}"
    );
    assert!(lines[0].get("time").is_none());
    let one = mcp
        .ok(
            "get_container_logs",
            json!({"container_id": name, "lines": 1, "timestamps": true}),
        )
        .await;
    assert_eq!(one["count"], 1);
    assert!(one["lines"][0]["time"].as_str().unwrap().contains('T'));
    let future = mcp
        .ok(
            "get_container_logs",
            json!({"container_id": name, "since": "2100-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(future["count"], 0, "since filters: {future}");

    // Usage: current ranking has real numbers for this container.
    let top = wait_for("a usage sample", T, async || {
        let t = mcp
            .ok(
                "get_top_consumers",
                json!({"metric": "memory", "limit": 500}),
            )
            .await;
        t["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["container"] == name.as_str())
            .cloned()
    })
    .await;
    assert!(
        top["value"].as_f64().unwrap() > 0.0,
        "memory in bytes: {top}"
    );
    assert!(top["percent"].as_f64().unwrap() > 0.0);
    let cpu = mcp.ok("get_top_consumers", json!({})).await;
    assert_eq!(cpu["metric"], "cpu");
    assert_eq!(cpu["period"], "current");
    assert!(cpu["items"][0]["rank"] == 1 && cpu["items"][0]["value"].as_f64().unwrap() >= 0.0);
    let hour = mcp
        .ok(
            "get_top_consumers",
            json!({"period": "1h", "metric": "memory", "limit": 500}),
        )
        .await;
    assert!(
        hour["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["container"] == name.as_str() && i["samples"].as_u64().unwrap() >= 1),
        "{hour}"
    );

    // A compose-style recreate (same name, within the grace) keeps the same check task.
    let task = mcp.endpoint(&name).await.unwrap()["observed"]["task"]["task_id"].clone();
    e.docker(&["rm", "-f", &name]);
    e.run_httpd(&name, port, &labels, &[]);
    wait_for("the recreated container", T, async || {
        container(&mcp, &name)
            .await
            .filter(|c| c["state"] == "running" && c["id"] != detail["container"]["id"])
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = mcp
        .endpoint(&name)
        .await
        .expect("still declared after a recreate");
    assert_eq!(after["observed"]["task"]["task_id"], task, "not restarted");

    // Stopping it: a `die` transition with its exit code, then the monitors
    // go after the grace.
    e.docker(&["stop", "-t", "1", &name]);
    assert!(
        mcp.endpoint(&name).await.is_some(),
        "kept during the grace period"
    );
    let died = wait_for("a die transition", T, async || {
        let d = mcp.ok("get_container", json!({"container_id": name})).await;
        d["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["event"] == "die")
            .cloned()
    })
    .await;
    assert!(died["exit_code"].is_i64(), "{died}");
    wait_for("the label monitors to go", T, async || {
        (mcp.endpoint(&name).await.is_none() && mcp.endpoint(&format!("{name}-1")).await.is_none())
            .then_some(())
    })
    .await;
    let stopped = container(&mcp, &name).await.unwrap();
    assert_eq!(stopped["state"], "exited");
    assert_eq!(stopped["exit_code"], died["exit_code"], "{stopped}");
    let filtered = mcp
        .ok(
            "list_containers",
            json!({"detail": "full", "state": "running", "name": name}),
        )
        .await;
    assert_eq!(filtered["total"], 0);
}

#[tokio::test]
async fn a_file_monitor_wins_over_a_label_monitor_of_the_same_name() {
    let Some(e) = engine() else { return };
    let name = unique("dup");
    let _cleanup = Cleanup(e.clone(), vec![name.clone()]);
    let target = Target::start().await;
    let d = daemon(
        &e.host,
        &format!(
            "endpoints:\n  - name: {name}\n    url: {}\n    interval: 1s\n",
            target.url("/file")
        ),
    )
    .await;
    let mcp = d.mcp().await;
    let port = free_port();
    e.run_httpd(
        &name,
        port,
        &[(
            "maintenant.endpoint.http",
            format!("http://127.0.0.1:{port}/"),
        )],
        &[],
    );
    let conflict = wait_for("the conflict", T, async || {
        let h = mcp.ok("get_health", json!({})).await;
        h["desired"]["conflicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["monitor"] == format!("endpoint/{name}"))
            .cloned()
    })
    .await;
    assert!(
        conflict["kept"]
            .as_str()
            .unwrap()
            .ends_with("monitors.yaml:2"),
        "{conflict}"
    );
    assert!(
        conflict["ignored"]
            .as_str()
            .unwrap()
            .contains("maintenant.endpoint.http")
    );
    let row = mcp.wait_status(&name, "up", T).await;
    assert_eq!(row["desired"]["origin"]["source"], "file");
    assert!(target.hits("/file") > 0);
    let detail = mcp.ok("get_container", json!({"container_id": name})).await;
    assert_eq!(
        detail["conflicts"][0]["monitor"],
        format!("endpoint/{name}")
    );
    assert!(detail["monitors"].as_array().unwrap().is_empty());

    // maintenant.ignore: no monitors, not listed, still reachable by name.
    let ignored = unique("ignored");
    let _cleanup2 = Cleanup(e.clone(), vec![ignored.clone()]);
    let port2 = free_port();
    e.run_httpd(
        &ignored,
        port2,
        &[
            ("maintenant.ignore", "true".into()),
            (
                "maintenant.endpoint.http",
                format!("http://127.0.0.1:{port2}/"),
            ),
        ],
        &[],
    );
    let c = wait_for("the ignored container to be known", T, async || {
        let a = mcp
            .call("get_container", json!({"container_id": ignored}))
            .await;
        (!a.is_error).then_some(a.structured)
    })
    .await;
    assert_eq!(c["container"]["ignored"], true);
    // Labels are read as soon as the container is known; give them a moment.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(container(&mcp, &ignored).await.is_none(), "not listed");
    assert!(mcp.endpoint(&ignored).await.is_none(), "no monitor");
}

#[tokio::test]
async fn stdio_beside_the_daemon_serves_the_container_tools_and_resources_answer() {
    let Some(e) = engine() else { return };
    let name = unique("stdio");
    let _cleanup = Cleanup(e.clone(), vec![name.clone()]);
    let d = daemon(&e.host, "endpoints: []\n").await;
    let port = free_port();
    e.run_httpd(
        &name,
        port,
        &[],
        &["--health-cmd", "true", "--health-interval", "1s"],
    );

    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--mcp-stdio")
        .env("MAINTENANT_DB", &d.db)
        .env("MAINTENANT_CONFIG", &d.config)
        .env("MAINTENANT_LOG", "warn")
        .env("MAINTENANT_DOCKER", "false");
    let stdio = Mcp(
        ().serve(TokioChildProcess::new(cmd).unwrap())
            .await
            .unwrap(),
    );
    let tools = stdio.0.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for t in [
        "list_containers",
        "get_container",
        "get_container_logs",
        "get_resources",
        "get_top_consumers",
    ] {
        assert!(names.contains(&t), "{t} listed over stdio: {names:?}");
    }
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(
        pos("list_containers") < pos("get_container")
            && pos("get_resources") < pos("get_top_consumers")
    );
    let c = wait_for("the container over stdio", T, async || {
        container(&stdio, &name).await
    })
    .await;
    assert_eq!(c["state"], "running");
    // Health changes arrive as events and are kept as transitions.
    wait_for("healthy", T, async || {
        container(&stdio, &name)
            .await
            .filter(|c| c["health"] == "healthy")
    })
    .await;
    let detail = stdio
        .ok("get_container", json!({"container_id": name}))
        .await;
    assert!(
        detail["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["event"] == "health_status" && t["health"] == "healthy"),
        "{detail}"
    );
    let logs = stdio
        .ok("get_container_logs", json!({"container_id": name}))
        .await;
    assert!(logs["count"].as_u64().unwrap() >= 2, "{logs}");

    let r = wait_for("a host sample", T, async || {
        let a = stdio.call("get_resources", json!({})).await;
        (!a.is_error).then_some(a.structured)
    })
    .await;
    assert!(r["cpu"]["cores"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["memory"]["total_bytes"].as_u64().unwrap() > 0);
    assert!(r["memory"]["used_percent"].as_f64().unwrap() > 0.0);
    assert!(r["load"]["one"].is_number());
    assert!(!r["disks"].as_array().unwrap().is_empty(), "{r}");
    assert!(r["disks"][0]["total_bytes"].as_u64().unwrap() > 0);
    assert!(
        r["network"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["interface"] == "lo"),
        "{r}"
    );
    let _ = stdio.0.cancel().await;
}

#[tokio::test]
async fn labelled_certificates_and_heartbeats_are_monitors_too() {
    let Some(e) = engine() else { return };
    let name = unique("jobs");
    let _cleanup = Cleanup(e.clone(), vec![name.clone()]);
    let d = daemon(&e.host, "endpoints: []\n").await;
    let mcp = d.mcp().await;
    let port = free_port();
    let hb = format!("{name}-backup");
    let owned = [
        (
            "maintenant.tls.certificates".to_owned(),
            format!("localhost:{port}"),
        ),
        (format!("maintenant.heartbeat.{hb}.period"), "1h".to_owned()),
        (format!("maintenant.heartbeat.{hb}.grace"), "5m".to_owned()),
        // A cron expression the monitors file would refuse: skipped, reported.
        (
            format!("maintenant.heartbeat.{name}-bad.schedule"),
            "61 * * * *".to_owned(),
        ),
        ("maintenant.group".to_owned(), "jobs".to_owned()),
    ];
    let labels: Vec<(&str, String)> = owned.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    e.run_httpd(&name, port, &labels, &[]);

    let row = wait_for("the labelled heartbeat", T, async || {
        let page = mcp
            .ok(
                "list_heartbeats",
                json!({"detail": "full", "group": "jobs"}),
            )
            .await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == hb.as_str())
            .cloned()
    })
    .await;
    assert_eq!(row["desired"]["origin"]["source"], "docker", "{row}");
    assert_eq!(row["desired"]["origin"]["container"], name.as_str());
    assert_eq!(
        row["desired"]["origin"]["label"],
        format!("maintenant.heartbeat.{hb}")
    );
    // It runs: a ping makes it up.
    // (The route exists once the reconciler started the heartbeat.)
    wait_for("a ping accepted", T, async || {
        let ping = reqwest::get(d.url(&format!("/ping/{hb}"))).await.unwrap();
        ping.status().is_success().then_some(())
    })
    .await;
    wait_for("the heartbeat up", T, async || {
        let page = mcp
            .ok(
                "list_heartbeats",
                json!({"detail": "full", "group": "jobs"}),
            )
            .await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == hb.as_str() && h["observed"]["status"] == "up")
            .then_some(())
    })
    .await;

    let cert = wait_for("the labelled certificate", T, async || {
        let page = mcp.ok("list_certificates", json!({"detail": "full"})).await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["desired"]["origin"]["container"] == name.as_str())
            .cloned()
    })
    .await;
    assert_eq!(
        cert["id"],
        format!("certificate/localhost:{port}"),
        "{cert}"
    );
    assert_eq!(
        cert["desired"]["origin"]["label"],
        "maintenant.tls.certificates"
    );

    let detail = mcp.ok("get_container", json!({"container_id": name})).await;
    let problems = detail["label_problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{detail}");
    assert_eq!(
        problems[0]["label"],
        format!("maintenant.heartbeat.{name}-bad")
    );
    let ids: Vec<&str> = detail["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            format!("certificate/localhost:{port}"),
            format!("heartbeat/{hb}")
        ]
    );
}

/// Labels are written by whoever runs a container: their monitors may not
/// reach maintenant's own address (refused by default) or an address a deny
/// rule names; the container's other monitor and the operator's file keep
/// running. (That no connection is made is shown by tests/targets.rs, whose
/// API server is its own: every daemon on this shared engine sees these
/// labels, and the others have no deny rule.)
#[tokio::test]
async fn label_monitors_are_held_to_the_target_policy() {
    let Some(e) = engine() else { return };
    let name = unique("ssrf");
    let _cleanup = Cleanup(e.clone(), vec![name.clone()]);
    let trap_port = free_port();
    let target = Target::start().await;
    let d = Daemon::start_with(
        &format!(
            "endpoints:\n  - name: file-trap\n    url: http://127.0.0.2:{}/\n    interval: 1s\n",
            free_port()
        ),
        &[
            ("MAINTENANT_DOCKER", e.host.as_str()),
            ("MAINTENANT_TARGET_DENY", "127.0.0.2/32"),
        ],
    )
    .await;
    let mcp = d.mcp().await;
    let port = free_port();
    let labels = [
        ("maintenant.endpoint.http", target.url("/fine")),
        ("maintenant.endpoint.interval", "1s".into()),
        (
            "maintenant.endpoint.1.http",
            format!("http://127.0.0.2:{trap_port}/"),
        ),
        ("maintenant.endpoint.1.interval", "1s".into()),
        (
            "maintenant.endpoint.2.http",
            format!("http://127.0.0.1:{}/healthz", d.port),
        ),
        ("maintenant.endpoint.2.interval", "1s".into()),
    ];
    e.run_httpd(&name, port, &labels, &[]);

    mcp.wait_status(&name, "up", T).await;
    let refused = wait_for("both label monitors refused", T, async || {
        let h = mcp.ok("get_health", json!({})).await;
        let rows = h["refused"].as_array().cloned().unwrap_or_default();
        (rows.len() >= 2).then_some(rows)
    })
    .await;
    let rule = |id: String| {
        refused
            .iter()
            .find(|r| r["id"] == id.as_str())
            .map(|r| r["rule"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        rule(format!("endpoint/{name}-1")).as_deref(),
        Some("is in 127.0.0.2/32 (MAINTENANT_TARGET_DENY)"),
        "{refused:?}"
    );
    assert_eq!(
        rule(format!("endpoint/{name}-2")),
        Some(format!(
            "is maintenant's own listen address 127.0.0.1:{} (MAINTENANT_ADDR)",
            d.port
        )),
        "{refused:?}"
    );
    assert!(
        !refused.iter().any(|r| r["id"] == "endpoint/file-trap"),
        "the operator's file is not held to the policy: {refused:?}"
    );
    // The file's monitor to 127.0.0.2 is checked (a closed port: down);
    // the refused one reports the rule as its error.
    mcp.wait_status("file-trap", "down", T).await;
    let row = mcp.endpoint(&format!("{name}-1")).await.unwrap();
    let err = row["observed"]["error"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("refused by target policy: 127.0.0.2"),
        "{row}"
    );
    mcp.wait_status(&name, "up", T).await;
}
