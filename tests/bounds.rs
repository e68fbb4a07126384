//! Issue 18 §3, §4 and §7 against the real binary: inputs that panicked a
//! task or a handler, names that held a worker, and write tools without
//! limits. Each is answered now, with an error that names the bound.

mod common;

use std::time::Duration;

use common::{Daemon, Target, wait_for};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const T: Duration = Duration::from_secs(30);

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

async fn status_json(d: &Daemon) -> Value {
    reqwest::get(d.url("/status.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn ping(d: &Daemon, name: &str) -> u16 {
    reqwest::get(d.url(&format!("/ping/{name}")))
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A tool call that must be answered: a handler that panics never answers
/// (the old `since` overflow), and the test then fails here, not at the
/// session timeout.
async fn answered(mcp: &common::Mcp, tool: &str, args: Value) -> common::Answer {
    tokio::time::timeout(T, mcp.call(tool, args))
        .await
        .unwrap_or_else(|_| panic!("{tool} was not answered within {T:?}"))
}

fn heartbeat_file(target: &Target, grace: &str) -> String {
    format!(
        "endpoints:
  - name: api
    url: {}
    interval: 1s
heartbeats:
  - name: yearly
    period: 366d
    grace: {grace}
",
        target.url("/")
    )
}

/// The reported panic: `grace: 3000000d` passed validation, then `due +
/// grace` overflowed on the first ping and the heartbeat task died.
#[tokio::test]
async fn a_grace_of_3000000d_is_refused_at_validation_and_the_longest_accepted_works() {
    let target = Target::start().await;
    // check-config (GitOps CI) refuses it, naming the bound.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yaml");
    std::fs::write(&file, heartbeat_file(&target, "3000000d")).unwrap();
    let out = std::process::Command::new(common::BIN)
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("grace") && text.contains("366d"), "{text}");

    // The longest accepted period and grace: pings, lists and the page work.
    let d = Daemon::start(&heartbeat_file(&target, "366d")).await;
    let mcp = d.mcp().await;
    wait_for("yearly declared", T, async || {
        (ping(&d, "yearly").await == 200).then_some(())
    })
    .await;
    let list = mcp.ok("list_heartbeats", json!({"detail": "full"})).await;
    let row = &list["items"][0];
    assert_eq!(row["name"], "yearly");
    assert_eq!(row["observed"]["status"], "up", "{row}");
    assert_eq!(ping(&d, "yearly").await, 200, "the task is still there");
    let page = reqwest::get(d.url("/status")).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);

    // The same change applied to the running daemon is refused with the
    // bound, and the running monitors keep running.
    d.write_atomic(&heartbeat_file(&target, "3000000d"));
    let health = wait_for("the refused change in get_health", T, async || {
        let h = mcp.ok("get_health", json!({})).await;
        let refused = h["sources"].as_array().unwrap().iter().any(|s| {
            let e = s["last_error"].to_string();
            e.contains("grace: invalid duration") && e.contains("366d")
        });
        refused.then_some(h)
    })
    .await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(ping(&d, "yearly").await, 200);
    assert_eq!(
        mcp.ok("list_heartbeats", json!({"detail": "full"})).await["total"],
        1
    );

    // The engine's tasks run under the supervisor that get_health reads.
    let supervised: Vec<&str> = health["tasks"]["supervised"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for t in [
        "alert-engine",
        "heartbeat-writer",
        "heartbeat-alerts",
        "reconciler",
        "desired-state",
        "file-source",
        "retention",
    ] {
        assert!(supervised.contains(&t), "{t} in {supervised:?}");
    }
    assert_eq!(health["tasks"]["panicked"], json!([]));
}

/// The reported handler panics: `since: "5000000d"` overflowed a date
/// subtraction (the request was never answered); an offset cursor near
/// `u64::MAX` wrapped around.
#[tokio::test]
async fn since_and_cursors_out_of_range_get_a_clear_tool_error() {
    let target = Target::start().await;
    let d = Daemon::start(&heartbeat_file(&target, "1h")).await;
    let mcp = d.mcp().await;
    mcp.wait_status("api", "up", T).await;

    for (tool, id_arg, id) in [
        ("get_endpoint_history", "endpoint_id", "api"),
        ("get_container_logs", "container_id", "postgres"),
    ] {
        let a = answered(&mcp, tool, json!({id_arg: id, "since": "5000000d"})).await;
        assert!(a.is_error, "{tool}: {}", a.text);
        assert!(
            a.text.contains("since") && a.text.contains("366d"),
            "{tool}: {}",
            a.text
        );
    }
    // An age within the bound still works.
    let h = mcp
        .ok(
            "get_endpoint_history",
            json!({"endpoint_id": "api", "since": "366d"}),
        )
        .await;
    assert!(h["summary"]["checks"].as_u64().unwrap() >= 1, "{h}");

    let huge = b64("o:18446744073709551615");
    for tool in [
        "list_endpoints",
        "list_heartbeats",
        "list_alerts",
        "list_certificates",
    ] {
        let a = answered(&mcp, tool, json!({"cursor": huge})).await;
        assert!(a.is_error, "{tool}: {}", a.text);
        assert!(
            a.text.contains("invalid cursor") && a.text.contains("offset"),
            "{tool}: {}",
            a.text
        );
    }
    let a = mcp
        .call(
            "get_endpoint_history",
            json!({"endpoint_id": "api", "cursor": b64("t:170141183460469231731687303715884105727")}),
        )
        .await;
    assert!(a.is_error && a.text.contains("out of range"), "{}", a.text);
    // And the daemon answers as before.
    let health = mcp.ok("get_health", json!({})).await;
    assert_eq!(health["tasks"]["panicked"], json!([]), "{health}");
}

/// §4: a 100k-character name against a few hundred declared ones used to
/// run an edit distance against each, on an async worker. It is refused
/// before any matching, with the bound.
#[tokio::test]
async fn a_name_longer_than_any_valid_one_is_refused_before_matching() {
    let target = Target::start().await;
    let mut file = String::from("endpoints:\n");
    for i in 0..300 {
        file.push_str(&format!(
            "  - name: service-{i:03}-{}\n    group: g{}\n    url: {}\n    interval: 1h\n",
            "x".repeat(100),
            i % 10,
            target.url("/")
        ));
    }
    let d = Daemon::start(&file).await;
    let mcp = d.mcp().await;
    wait_for("300 endpoints declared", T, async || {
        let l = mcp
            .ok("list_endpoints", json!({"detail": "full", "limit": 1}))
            .await;
        (l["total"] == 300).then_some(())
    })
    .await;
    let long = "a".repeat(100_000);
    let calls = [
        ("get_endpoint_history", json!({"endpoint_id": long}), "140"),
        (
            "pause_monitor",
            json!({"monitor_type": "endpoint", "monitor_id": long}),
            "140",
        ),
        ("get_container", json!({"container_id": long}), "512"),
        (
            "list_alerts",
            json!({"detail": "full", "source": long}),
            "140",
        ),
        (
            "create_incident",
            json!({"title": "t", "message": "m", "monitors": [long]}),
            "140",
        ),
        (
            "create_maintenance",
            json!({"title": "t", "start_time": "2030-01-01T00:00:00Z",
                   "end_time": "2030-01-01T01:00:00Z", "groups": [long]}),
            "512",
        ),
        (
            "list_endpoints",
            json!({"detail": "full", "name": long}),
            "512",
        ),
        (
            "list_heartbeats",
            json!({"detail": "full", "group": long}),
            "512",
        ),
        ("acknowledge_alert", json!({"alert_id": long}), "32"),
    ];
    for (tool, args, bound) in calls {
        let a = mcp.call(tool, args).await;
        assert!(a.is_error, "{tool}: {}", a.text);
        assert!(
            a.text.contains("100000 characters") && a.text.contains(&format!("at most {bound}")),
            "{tool}: {}",
            a.text
        );
        assert!(
            a.text.len() < 500,
            "{tool}: the error quotes only the start"
        );
    }
    let a = mcp
        .call(
            "acknowledge_alert",
            json!({"alert_id": "1", "note": "n".repeat(2_001)}),
        )
        .await;
    assert!(
        a.is_error
            && a.text
                .contains("note is 2001 characters long: at most 2000"),
        "{}",
        a.text
    );
    // A near miss still gets its suggestion.
    let a = mcp
        .call(
            "get_endpoint_history",
            json!({"endpoint_id": format!("service-007-{}y", "x".repeat(99))}),
        )
        .await;
    assert!(
        a.is_error && a.text.contains("did you mean 'service-007-"),
        "{}",
        a.text
    );
    assert_eq!(ping(&d, "nothing").await, 404);
}

/// §7: lengths and counts of what the write tools keep, and what the
/// public page carries of it.
#[tokio::test]
async fn write_tools_have_length_and_count_limits_and_the_page_is_capped() {
    let target = Target::start().await;
    let d = Daemon::start(&format!(
        "endpoints:
  - name: api
    group: core
    url: {}
    interval: 1h
",
        target.url("/")
    ))
    .await;
    let mcp = d.mcp().await;

    // Lengths.
    let a = mcp
        .call(
            "create_incident",
            json!({"title": "t".repeat(201), "message": "m"}),
        )
        .await;
    assert!(
        a.is_error && a.text.contains("title is 201 characters long: at most 200"),
        "{}",
        a.text
    );
    let a = mcp
        .call(
            "create_incident",
            json!({"title": "t", "message": "m".repeat(2_001)}),
        )
        .await;
    assert!(
        a.is_error
            && a.text
                .contains("message is 2001 characters long: at most 2000"),
        "{}",
        a.text
    );
    let a = mcp
        .call(
            "create_incident",
            json!({"title": "t", "message": "m", "monitors": vec!["api"; 101]}),
        )
        .await;
    assert!(
        a.is_error && a.text.contains("monitors has 101 entries: at most 100"),
        "{}",
        a.text
    );
    let first = mcp
        .ok(
            "create_incident",
            json!({"title": "t".repeat(200), "message": "m".repeat(2_000), "monitors": ["api"]}),
        )
        .await;
    let id = first["id"].as_str().unwrap().to_owned();

    // Updates per incident: 50 with the creation, then refused.
    for i in 1..50 {
        mcp.ok(
            "update_incident",
            json!({"incident_id": id, "status": "identified", "message": format!("update {i}")}),
        )
        .await;
    }
    let a = mcp
        .call(
            "update_incident",
            json!({"incident_id": id, "status": "monitoring", "message": "one more"}),
        )
        .await;
    assert!(
        a.is_error && a.text.contains("has 50 updates"),
        "{}",
        a.text
    );
    let page = status_json(&d).await;
    let shown = &page["active_incidents"][0];
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(
        shown["status"], "identified",
        "the refused update changed nothing"
    );
    let updates = shown["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 5, "the newest five");
    assert_eq!(updates[4]["message"], "update 49");
    assert_eq!(page["truncated"]["updates"], true);
    assert_eq!(page["truncated"]["active_incidents"], false);

    // Incidents: 200 kept. All open: the next is refused.
    for i in 1..200 {
        mcp.ok(
            "create_incident",
            json!({"title": format!("incident {i}"), "message": "m"}),
        )
        .await;
    }
    let a = mcp
        .call(
            "create_incident",
            json!({"title": "one more", "message": "m"}),
        )
        .await;
    assert!(
        a.is_error && a.text.contains("200 incidents are open"),
        "{}",
        a.text
    );
    let page = status_json(&d).await;
    assert_eq!(page["active_incidents"].as_array().unwrap().len(), 10);
    assert_eq!(
        page["active_incidents"][0]["title"], "incident 199",
        "newest first"
    );
    assert_eq!(page["truncated"]["active_incidents"], true);
    // One resolved: the next incident replaces it, the oldest resolved goes.
    mcp.ok(
        "update_incident",
        json!({"incident_id": "2", "status": "resolved", "message": "fixed"}),
    )
    .await;
    mcp.ok(
        "create_incident",
        json!({"title": "one more", "message": "m"}),
    )
    .await;
    let a = mcp
        .call(
            "update_incident",
            json!({"incident_id": "2", "status": "resolved", "message": "again"}),
        )
        .await;
    assert!(a.is_error && a.text.contains("no incident"), "{}", a.text);

    // Maintenance windows: lengths, duration, scope.
    let now = OffsetDateTime::now_utc();
    let (start, end) = (
        rfc3339(now + time::Duration::days(1)),
        rfc3339(now + time::Duration::days(1) + time::Duration::hours(1)),
    );
    let a = mcp
        .call(
            "create_maintenance",
            json!({"title": "w", "start_time": start, "end_time": end, "groups": ["core"],
                   "message": "m".repeat(2_001)}),
        )
        .await;
    assert!(
        a.is_error
            && a.text
                .contains("message is 2001 characters long: at most 2000"),
        "{}",
        a.text
    );
    let a = mcp
        .call(
            "create_maintenance",
            json!({"title": "w", "start_time": start, "groups": ["core"],
                   "end_time": rfc3339(now + time::Duration::days(369))}),
        )
        .await;
    assert!(
        a.is_error && a.text.contains("at most 366 days"),
        "{}",
        a.text
    );

    // 200 windows kept: one that ended and 199 to come.
    mcp.ok(
        "create_maintenance",
        json!({"title": "past", "groups": ["core"],
               "start_time": rfc3339(now - time::Duration::hours(2)),
               "end_time": rfc3339(now - time::Duration::hours(1))}),
    )
    .await;
    for i in 1..200 {
        let s = now + time::Duration::days(1) + time::Duration::minutes(i);
        mcp.ok(
            "create_maintenance",
            json!({"title": format!("window {i}"), "groups": ["core"],
                   "start_time": rfc3339(s), "end_time": rfc3339(s + time::Duration::minutes(30))}),
        )
        .await;
    }
    // The 201st replaces the one that ended; the 202nd finds none ended.
    let late = now + time::Duration::days(30);
    let window = |title: &str| {
        json!({"title": title, "groups": ["core"], "start_time": rfc3339(late),
               "end_time": rfc3339(late + time::Duration::hours(1))})
    };
    mcp.ok("create_maintenance", window("window 200")).await;
    let a = mcp.call("create_maintenance", window("window 201")).await;
    assert!(
        a.is_error
            && a.text
                .contains("200 maintenance windows are upcoming or ongoing"),
        "{}",
        a.text
    );
    let page = status_json(&d).await;
    let upcoming = page["upcoming_maintenance"].as_array().unwrap();
    assert_eq!(upcoming.len(), 10);
    assert_eq!(upcoming[0]["title"], "window 1", "soonest first");
    assert_eq!(page["truncated"]["upcoming_maintenance"], true);

    // The feed carries the newest incidents only, and the page says it cut.
    let feed = reqwest::get(d.url("/status/feed.atom"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(feed.matches("<entry>").count(), 20);
    let html = reqwest::get(d.url("/status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"truncated\""));

    // Windows are kept in memory and in sled: a restart finds them all.
    let Daemon {
        dir,
        config,
        db,
        mut child,
        ..
    } = d;
    child.kill().await.unwrap();
    let _ = child.wait().await;
    let d = Daemon::spawn(dir, config, db, &[]).await;
    let page = status_json(&d).await;
    assert_eq!(page["upcoming_maintenance"][0]["title"], "window 1");
    let mcp = d.mcp().await;
    let a = mcp.call("create_maintenance", window("window 201")).await;
    assert!(a.is_error, "still 200 kept after a restart: {}", a.text);
}
