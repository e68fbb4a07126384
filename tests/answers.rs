//! Answers sized for a model (issue 24): every list answers a brief by
//! default (counts by state, the rows needing attention first, short ids,
//! natural name order, at most 4 KB) and the full rows on request. Against
//! the real binary, a real Docker engine running 100 busybox containers, and
//! 1,000 endpoints, heartbeats and certificates declared in a file.

mod common;
#[path = "support/engine.rs"]
mod engine;

use std::time::Duration;

use common::{Daemon, Mcp, Target, free_port, wait_for};
use engine::{Cleanup, IMAGE, engine};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);
/// The bounds: list_containers at 100 containers, every other list at 1,000 monitors.
const CONTAINERS_MAX: usize = 4 * 1024;
const LISTS_MAX: usize = 8 * 1024;

/// A tool's answer and its size in bytes (the JSON text an assistant reads;
/// `structuredContent` holds the same JSON).
async fn sized(mcp: &Mcp, tool: &str, args: Value) -> (Value, usize) {
    let a = mcp.call(tool, args.clone()).await;
    assert!(!a.is_error, "{tool} {args}: {}", a.text);
    assert_eq!(
        serde_json::to_string(&a.structured).unwrap().len(),
        a.text.len()
    );
    (a.structured, a.text.len())
}

fn names(answer: &Value) -> Vec<String> {
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// No field of a brief row is null, an empty string, an empty list or an empty object.
fn assert_no_empty_fields(answer: &Value) {
    for row in answer["items"].as_array().unwrap() {
        for (k, v) in row.as_object().unwrap() {
            let empty = match v {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => false,
            };
            assert!(!empty, "{k} is empty in {row}");
        }
    }
}

/// Every row of a list, following `next_cursor` (bounded: at most 200 pages).
async fn all_pages(mcp: &Mcp, tool: &str, args: Value) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut args = args;
    for _ in 0..200 {
        let (page, _) = sized(mcp, tool, args.clone()).await;
        rows.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => args["cursor"] = json!(c),
            None => return rows,
        }
    }
    panic!("{tool}: more than 200 pages");
}

#[tokio::test]
async fn list_containers_at_100_containers_is_small_ordered_and_short_ids_work() {
    let Some(e) = engine() else { return };
    let prefix = format!("ans{}", std::process::id());
    let name = |i: usize| format!("{prefix}-c{i}");
    let all: Vec<String> = (1..=100).map(name).collect();
    let _cleanup = Cleanup(e.clone(), all.clone());
    // c7 exits with a failure, c50 fails its health check: both need attention.
    std::thread::scope(|s| {
        for chunk in all.chunks(25) {
            let e = &e;
            s.spawn(move || {
                for n in chunk {
                    let mut args = vec!["run", "-d", "--name", n, "--network", "none"];
                    if n.ends_with("-c50") {
                        args.extend([
                            "--health-cmd",
                            "false",
                            "--health-interval",
                            "1s",
                            "--health-retries",
                            "1",
                        ]);
                    }
                    let cmd = if n.ends_with("-c7") {
                        "exit 3"
                    } else {
                        "exec sleep 600"
                    };
                    args.extend([IMAGE, "sh", "-c", cmd]);
                    e.docker(&args);
                }
            });
        }
    });
    let d = Daemon::start_with(
        "endpoints: []\n",
        &[
            ("MAINTENANT_DOCKER", e.host.as_str()),
            ("MAINTENANT_DOCKER_STATS_INTERVAL", "1s"),
        ],
    )
    .await;
    let mcp = d.mcp().await;
    let mine = json!({"name": prefix});
    let brief = wait_for("100 containers, c7 exited, c50 unhealthy", T, async || {
        let (b, _) = sized(&mcp, "list_containers", mine.clone()).await;
        (b["total"] == 100 && b["attention"] == 2).then_some(b)
    })
    .await;

    // Without arguments: at most 4 KB (whatever else the shared engine runs).
    let (default, bytes) = sized(&mcp, "list_containers", json!({})).await;
    assert!(bytes <= CONTAINERS_MAX, "{bytes} bytes: {default}");
    assert!(default["total"].as_u64().unwrap() >= 100);
    assert!(
        default["next_cursor"].is_string(),
        "100 rows do not fit in 4 KB"
    );
    assert_no_empty_fields(&default);

    // Counts first, over every page; the two that need attention lead.
    assert_eq!(brief["by_state"]["running"], 99, "{brief}");
    assert_eq!(brief["by_state"]["exited"], 1, "{brief}");
    let listed = names(&brief);
    let mut lead = listed[..2].to_vec();
    lead.sort();
    assert_eq!(lead, [name(50), name(7)], "{brief}");
    let c7 = &brief["items"][listed.iter().position(|n| *n == name(7)).unwrap()];
    assert_eq!(c7["exit_code"], 3);
    let c50 = &brief["items"][listed.iter().position(|n| *n == name(50)).unwrap()];
    assert_eq!(c50["health"], "unhealthy");
    // Then natural order: c1, c2, ..., c10, not c1, c10, c100.
    let expected: Vec<String> = (1..=100)
        .filter(|i| *i != 7 && *i != 50)
        .map(name)
        .collect();
    assert_eq!(listed[2..], expected[..listed.len() - 2], "{brief}");

    // Every page together holds each container once, in the same order.
    let rows = all_pages(&mcp, "list_containers", mine.clone()).await;
    let paged: Vec<String> = rows
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paged[2..], expected[..]);

    // Short ids as `docker ps` shows them, and every tool takes them.
    let full_id = e.docker(&["inspect", "--format", "{{.Id}}", &name(3)]);
    let row3 = rows.iter().find(|r| r["name"] == name(3)).unwrap();
    assert_eq!(row3["id"], full_id[..12], "{row3}");
    assert_eq!(
        e.docker(&[
            "ps",
            "--filter",
            &format!("name=^{}$", name(3)),
            "--format",
            "{{.ID}}"
        ]),
        full_id[..12]
    );
    for id in [&full_id[..12], full_id.as_str()] {
        let detail = mcp.ok("get_container", json!({"container_id": id})).await;
        assert_eq!(detail["container"]["name"], name(3), "{id}");
        let logs = mcp
            .ok("get_container_logs", json!({"container_id": id}))
            .await;
        assert!(logs["lines"].is_array(), "{logs}");
    }

    // The full rows on request: every field, the whole id.
    let (full, full_bytes) = sized(
        &mcp,
        "list_containers",
        json!({"name": prefix, "detail": "full"}),
    )
    .await;
    assert_eq!(full["items"].as_array().unwrap().len(), 50);
    assert_eq!(full["items"][0]["name"], name(1));
    assert_eq!(full["items"][9]["name"], name(10));
    assert_eq!(full["items"][0]["id"].as_str().unwrap().len(), 64);
    assert!(full["items"][0]["started_at"].is_string());
    assert!(full.get("by_state").is_none());
    eprintln!("ANSWER-BYTES list_containers(100) brief={bytes} full={full_bytes}");

    // "What uses the most memory?" once a stats sample is in.
    let (top, top_bytes) = wait_for("memory samples", T, async || {
        let (t, n) = sized(&mcp, "get_top_consumers", json!({"metric": "memory"})).await;
        (t["items"].as_array().is_some_and(|a| !a.is_empty())).then_some((t, n))
    })
    .await;
    assert!(top_bytes <= CONTAINERS_MAX, "{top}");
    eprintln!("ANSWER-BYTES get_top_consumers(memory) {top_bytes}");
    // "Are there image updates?": of the 99 running (local images: no
    // registry to ask, each row says so).
    let (updates, after) = wait_for("the first image scan", T, async || {
        let (u, n) = sized(&mcp, "get_updates", json!({})).await;
        (u["total"].as_u64().unwrap_or(0) >= 99).then_some((u, n))
    })
    .await;
    assert!(after <= CONTAINERS_MAX, "{after}: {updates}");
    assert_no_empty_fields(&updates);
    let (_, before) = sized(&mcp, "get_updates", json!({"detail": "full"})).await;
    eprintln!("ANSWER-BYTES get_updates before={before} after={after}");
}

fn monitors_file(target: &Target, closed_port: u16) -> String {
    let mut y = String::from("endpoints:\n");
    for i in 1..=1000 {
        // Ten answer a status they do not expect: down after one check.
        if i % 100 == 0 {
            y += &format!(
                "  - name: e{i}\n    url: {}\n    expected_status: [201]\n    interval: 1s\n    failure_threshold: 1\n",
                target.url(&format!("/e{i}"))
            );
        } else {
            y += &format!(
                "  - name: e{i}\n    url: {}\n    interval: 1h\n",
                target.url(&format!("/e{i}"))
            );
        }
    }
    // The api fails too, and the question is why.
    y += "  - name: api\n    group: db\n    expected_status: [201]\n";
    y += &format!(
        "    url: {}\n    interval: 1s\n    failure_threshold: 1\n",
        target.url("/api")
    );
    y += "heartbeats:\n";
    for i in 1..=1000 {
        y += &format!("  - name: hb{i}\n    period: 1h\n    grace: 1h\n");
    }
    y += "  - name: backup\n    period: 1d\n    grace: 1h\n";
    y += "certificates:\n";
    for i in 1..=1000 {
        y += &format!(
            "  - name: cert{i}\n    host: 127.0.0.1\n    port: {closed_port}\n    interval: 30s\n"
        );
    }
    y
}

#[tokio::test]
async fn every_list_at_1000_monitors_answers_a_brief_that_hides_no_problem() {
    let target = Target::start().await;
    // Nothing listens here: every certificate check is an error (refused on
    // loopback: cheap, though 1,000 first checks are spread over 30 s).
    let closed = free_port();
    let d = Daemon::start(&monitors_file(&target, closed)).await;
    let mcp = d.mcp().await;
    let client = reqwest::Client::new();
    // The others are checked once an hour, spread over the hour: most stay
    // pending here, which changes nothing for the answer's shape.
    wait_for("1,001 endpoints declared, 11 down", T, async || {
        let (b, _) = sized(&mcp, "list_endpoints", json!({})).await;
        (b["total"] == 1001 && b["by_state"]["down"] == 11).then_some(())
    })
    .await;
    // A failed backup run and a good one.
    for (name, path) in [("hb5", "/1"), ("backup", "")] {
        let r = client
            .post(d.url(&format!("/ping/{name}{path}")))
            .body("done")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{name}: {}", r.status());
    }
    wait_for("1,000 certificates checked", T, async || {
        let (b, _) = sized(&mcp, "list_certificates", json!({})).await;
        (b["by_state"]["error"] == 1000).then_some(())
    })
    .await;

    // Every list's default answer: counts over all rows, attention first, small.
    let down: Vec<String> = ["api".to_owned()]
        .into_iter()
        .chain((1..=10).map(|i| format!("e{}", i * 100)))
        .collect();
    let (endpoints, bytes) = sized(&mcp, "list_endpoints", json!({})).await;
    assert!(bytes <= LISTS_MAX, "{bytes}");
    assert_eq!(endpoints["attention"], 11);
    assert_eq!(names(&endpoints)[..11], down[..], "{endpoints}");
    assert!(endpoints["items"][0]["error"].is_string(), "{endpoints}");
    assert_eq!(names(&endpoints)[11..13], ["e1", "e2"]);
    assert_no_empty_fields(&endpoints);
    let rows = all_pages(&mcp, "list_endpoints", json!({})).await;
    assert_eq!(rows.len(), 1001);
    let mut seen: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 1001, "every endpoint once over the pages");

    let (heartbeats, hb_bytes) = wait_for("hb5 down", T, async || {
        let (b, n) = sized(&mcp, "list_heartbeats", json!({})).await;
        (b["by_state"]["down"] == 1).then_some((b, n))
    })
    .await;
    assert!(hb_bytes <= LISTS_MAX, "{hb_bytes}");
    assert_eq!(heartbeats["total"], 1001);
    assert_eq!(heartbeats["attention"], 1);
    assert_eq!(heartbeats["items"][0]["name"], "hb5", "{heartbeats}");
    assert_eq!(heartbeats["items"][0]["last_exit_code"], 1, "{heartbeats}");
    assert_eq!(names(&heartbeats)[1..4], ["backup", "hb1", "hb2"]);
    assert_no_empty_fields(&heartbeats);

    let (certs, cert_bytes) = sized(&mcp, "list_certificates", json!({})).await;
    assert!(cert_bytes <= LISTS_MAX, "{cert_bytes}");
    assert_eq!(certs["attention"], 1000);
    assert_eq!(names(&certs)[..3], ["cert1", "cert2", "cert3"]);
    assert!(certs["next_cursor"].is_string());
    assert_no_empty_fields(&certs);

    let (alerts, alert_bytes) = sized(&mcp, "list_alerts", json!({"active_only": false})).await;
    assert!(alert_bytes <= LISTS_MAX, "{alert_bytes}");
    assert!(alerts["total"].as_u64().unwrap() >= 11, "{alerts}");
    assert_no_empty_fields(&alerts);

    // The full rows on request.
    let (full, _) = sized(
        &mcp,
        "list_endpoints",
        json!({"detail": "full", "limit": 3}),
    )
    .await;
    assert_eq!(names(&full), ["api", "e1", "e2"]);
    assert!(full["items"][0]["desired"]["origin"].is_object(), "{full}");
    assert!(full["items"][0]["observed"]["status"].is_string(), "{full}");

    // The seed's example questions, their answers' bytes before (the full
    // rows, the default until issue 24) and after (the brief).
    let questions: [(&str, &str, Value); 6] = [
        ("what is down right now?", "list_endpoints", json!({})),
        (
            "why did the api endpoint fail last night?",
            "list_alerts",
            json!({"source": "api", "active_only": false}),
        ),
        (
            "which certificates expire this month?",
            "list_certificates",
            json!({"expiring_within_days": 30}),
        ),
        ("did the backup job run?", "list_heartbeats", json!({})),
        ("(every certificate)", "list_certificates", json!({})),
        ("(alerts now)", "list_alerts", json!({})),
    ];
    for (q, tool, args) in questions {
        let (_, after) = sized(&mcp, tool, args.clone()).await;
        let mut full_args = args.clone();
        full_args["detail"] = json!("full");
        let (_, before) = sized(&mcp, tool, full_args).await;
        assert!(after <= LISTS_MAX, "{q}: {after}");
        eprintln!("ANSWER-BYTES {q:?} {tool} {args} before={before} after={after}");
    }
    let (_, history) = sized(
        &mcp,
        "get_endpoint_history",
        json!({"endpoint_id": "api", "since": "24h"}),
    )
    .await;
    eprintln!("ANSWER-BYTES get_endpoint_history(api, 24h) {history}");
    let (_, window) = sized(
        &mcp,
        "create_maintenance",
        json!({
            "title": "database upgrade",
            "start_time": "2030-01-01T22:00:00Z",
            "end_time": "2030-01-01T23:00:00Z",
            "groups": ["db"],
        }),
    )
    .await;
    eprintln!("ANSWER-BYTES create_maintenance(db) {window}");
}
