//! Container alerts on a real Docker engine (tests/support/dockerd.sh), with
//! nothing declared: a busybox in a restart loop, one whose health check
//! fails, one that exits non-zero, one the OOM killer kills (this machine's
//! cgroup v1 memory controller allows it). Read through the real MCP client,
//! delivered to a webhook receiver on 127.0.0.1, counted in `/metrics`,
//! acknowledged, silenced by a maintenance window and a pause, resolved when
//! the container goes; and `get_top_consumers` answering right after start.

mod common;
#[path = "support/engine.rs"]
mod engine;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use common::{Daemon, Mcp, wait_for};
use engine::{Cleanup, IMAGE, engine};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);

fn unique(name: &str) -> String {
    format!("ca{}-{name}", std::process::id())
}

/// Webhook bodies received on 127.0.0.1.
#[derive(Clone, Default)]
struct Hooks(Arc<Mutex<Vec<Value>>>);

impl Hooks {
    async fn start() -> (Hooks, String) {
        common::init();
        let h = Hooks::default();
        let got = h.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(async move |body: Bytes| {
                got.0
                    .lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                "ok"
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (h, url)
    }

    fn got(&self, event: &str, entity: &str, kind: &str) -> bool {
        self.0.lock().unwrap().iter().any(|v| {
            v["event"] == event && v["alert"]["entity"] == entity && v["alert"]["type"] == kind
        })
    }

    fn about(&self, entity: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["alert"]["entity"] == entity)
            .count()
    }
}

async fn daemon(host: &str, hook: &str) -> Daemon {
    Daemon::start_with(
        &format!(
            "alerting:\n  repeat_interval: 0s\n  channels:\n    - name: ops\n      type: webhook\n      url: {hook}\n      retries: 0\n"
        ),
        &[
            ("MAINTENANT_DOCKER", host),
            ("MAINTENANT_DOCKER_STATS_INTERVAL", "1h"),
        ],
    )
    .await
}

/// The alerts of one container (active and resolved), newest first.
async fn alerts_of(mcp: &Mcp, name: &str) -> Vec<Value> {
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
        .filter(|a| a["entity"] == format!("container/{name}"))
        .cloned()
        .collect()
}

async fn wait_alert(mcp: &Mcp, name: &str, kind: &str, status: &str) -> Value {
    wait_for(&format!("{kind} {status} for {name}"), T, async || {
        alerts_of(mcp, name)
            .await
            .into_iter()
            .find(|a| a["type"] == kind && a["status"] == status)
    })
    .await
}

fn run(e: &engine::Engine, name: &str, args: &[&str], cmd: &str) {
    let mut a = vec!["run", "-d", "--name", name, "--network", "host"];
    a.extend_from_slice(args);
    a.extend_from_slice(&[IMAGE, "sh", "-c", cmd]);
    e.docker(&a);
}

async fn firing(d: &Daemon, severity: &str) -> u64 {
    let text = reqwest::get(d.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!("maintenant_alerts_firing{{severity=\"{severity}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line} in /metrics"))
}

#[tokio::test]
async fn restart_loops_unhealthy_checks_exits_and_oom_kills_raise_alerts() {
    let Some(e) = engine() else { return };
    let (looping, sick, failed, oom, stopped) = (
        unique("loop"),
        unique("sick"),
        unique("failed"),
        unique("oom"),
        unique("stopped"),
    );
    let _cleanup = Cleanup(
        e.clone(),
        vec![
            looping.clone(),
            sick.clone(),
            failed.clone(),
            oom.clone(),
            stopped.clone(),
        ],
    );
    let (hooks, hook) = Hooks::start().await;
    let d = daemon(&e.host, &hook).await;
    let mcp = d.mcp().await;
    // Connected before the containers start, so their restarts are seen.
    wait_for("the Docker runtime", T, async || {
        let h = mcp.ok("get_health", json!({})).await;
        h.to_string().contains("\"connected\":true").then_some(())
    })
    .await;
    let before = firing(&d, "critical").await;

    run(&e, &looping, &["--restart", "always"], "exit 1");
    run(
        &e,
        &sick,
        &[
            "--health-cmd",
            "false",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ],
        "sleep 300",
    );
    run(&e, &failed, &[], "sleep 1; exit 3");
    // Killed by a signal on purpose (`docker stop`): no alert.
    run(&e, &stopped, &[], "trap 'exit 143' TERM; sleep 300 & wait");
    run(
        &e,
        &oom,
        &["--memory", "8m", "--memory-swap", "8m"],
        "x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while :; do x=$x$x; done",
    );

    let a = wait_alert(&mcp, &looping, "container_restart_loop", "active").await;
    assert_eq!(a["source"], "container");
    assert_eq!(a["severity"], "critical");
    assert!(a["message"].as_str().unwrap().contains("within 10m"), "{a}");
    let sick_alert = wait_alert(&mcp, &sick, "container_unhealthy", "active").await;
    assert_eq!(sick_alert["severity"], "warning");
    let exit = wait_alert(&mcp, &failed, "container_unexpected_exit", "active").await;
    assert!(
        exit["message"].as_str().unwrap().contains("code 3"),
        "{exit}"
    );
    let killed = wait_alert(&mcp, &oom, "container_oom_killed", "active").await;
    assert!(
        alerts_of(&mcp, &oom)
            .await
            .iter()
            .all(|a| a["type"] != "container_unexpected_exit"),
        "an OOM kill is not also an unexpected exit"
    );
    assert!(killed["message"].as_str().unwrap().contains("OOM"));

    // Delivered, counted, acknowledged.
    let entity = format!("container/{looping}");
    wait_for("the raised webhook", T, async || {
        hooks
            .got("raised", &entity, "container_restart_loop")
            .then_some(())
    })
    .await;
    assert!(firing(&d, "critical").await >= before + 3);
    let acked = mcp
        .ok(
            "acknowledge_alert",
            json!({"alert_id": a["id"], "note": "looking"}),
        )
        .await;
    assert_eq!(acked["status"], "active");
    assert!(acked["acknowledged_at"].is_string());

    // A deliberate stop is no unexpected exit.
    e.docker(&["stop", "-t", "5", &stopped]);
    let state = wait_for("the stopped container exited", T, async || {
        let c = mcp
            .ok("get_container", json!({"container_id": stopped}))
            .await;
        (c["container"]["state"] == "exited").then_some(c)
    })
    .await;
    assert_eq!(state["container"]["exit_code"], 143);

    // Gone: its alerts resolve, and the receiver hears it.
    e.docker(&["rm", "-f", &looping, &failed]);
    wait_alert(&mcp, &looping, "container_restart_loop", "resolved").await;
    wait_alert(&mcp, &failed, "container_unexpected_exit", "resolved").await;
    wait_for("the resolved webhook", T, async || {
        hooks
            .got("resolved", &entity, "container_restart_loop")
            .then_some(())
    })
    .await;
    assert!(
        alerts_of(&mcp, &stopped).await.is_empty(),
        "{:?}",
        alerts_of(&mcp, &stopped).await
    );
}

#[tokio::test]
async fn maintenance_pauses_and_labels_silence_container_alerts() {
    let Some(e) = engine() else { return };
    let (quiet, paused, off) = (unique("quiet"), unique("paused"), unique("off"));
    let _cleanup = Cleanup(e.clone(), vec![quiet.clone(), paused.clone(), off.clone()]);
    let (hooks, hook) = Hooks::start().await;
    let d = daemon(&e.host, &hook).await;
    let mcp = d.mcp().await;
    // Each exits 1 a few seconds after it starts: time to set the window
    // (a group must exist to be named) and the pause up first.
    run(
        &e,
        &quiet,
        &["--label", "maintenant.group=quiet-group"],
        "sleep 6; exit 1",
    );
    run(&e, &paused, &[], "sleep 6; exit 1");
    run(
        &e,
        &off,
        &["--label", "maintenant.alert.disable=unexpected_exit"],
        "sleep 1; exit 1",
    );
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let window = wait_for("the window over the container's group", T, async || {
        let now = time::OffsetDateTime::now_utc();
        let r = mcp
            .call(
                "create_maintenance",
                json!({"title": "deploy", "start_time": fmt(now - time::Duration::minutes(1)),
                       "end_time": fmt(now + time::Duration::hours(1)), "groups": ["quiet-group"]}),
            )
            .await;
        (!r.is_error).then_some(r.structured)
    })
    .await;
    assert!(
        window["covered_monitors"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("container/{quiet}"))),
        "{window}"
    );
    let p = wait_for("the container to pause", T, async || {
        let r = mcp
            .call(
                "pause_monitor",
                json!({"monitor_type": "container", "monitor_id": paused}),
            )
            .await;
        (!r.is_error).then_some(r.structured)
    })
    .await;
    assert_eq!(p["id"], format!("container/{paused}"));
    assert_eq!(p["paused"], true);

    let a = wait_alert(&mcp, &quiet, "container_unexpected_exit", "active").await;
    assert_eq!(a["silenced"], true, "{a}");
    assert!(
        a["silenced_by"]
            .as_str()
            .unwrap()
            .starts_with("maintenance/")
    );
    wait_for(
        "the paused and the switched-off containers exited",
        T,
        async || {
            let mut done = true;
            for n in [&paused, &off] {
                let c = mcp.ok("get_container", json!({"container_id": n})).await;
                done &= c["container"]["state"] == "exited";
            }
            done.then_some(())
        },
    )
    .await;
    // Several passes of the watcher (every second).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(alerts_of(&mcp, &paused).await.is_empty());
    assert!(alerts_of(&mcp, &off).await.is_empty());
    assert_eq!(hooks.about(&format!("container/{quiet}")), 0, "silenced");

    // Resumed: the exit it still shows is raised now.
    mcp.ok(
        "resume_monitor",
        json!({"monitor_type": "container", "monitor_id": paused}),
    )
    .await;
    wait_alert(&mcp, &paused, "container_unexpected_exit", "active").await;
}

#[tokio::test]
async fn top_consumers_answers_right_after_start() {
    let Some(e) = engine() else { return };
    let name = unique("busy");
    let _cleanup = Cleanup(e.clone(), vec![name.clone()]);
    run(&e, &name, &[], "sleep 300");
    let (_hooks, hook) = Hooks::start().await;
    // An hour between samples: only the one at start, or on demand, can answer.
    let d = daemon(&e.host, &hook).await;
    let mcp = d.mcp().await;
    wait_for("the container listed", T, async || {
        let page = mcp.ok("list_containers", json!({"name": name})).await;
        (page["total"] == 1).then_some(())
    })
    .await;
    let top = mcp
        .ok(
            "get_top_consumers",
            json!({"metric": "memory", "period": "current"}),
        )
        .await;
    let items = top["items"].as_array().unwrap();
    assert!(
        items.iter().any(|i| i["container"] == name.as_str()),
        "{top}"
    );
    // That sample counts in the rollups too.
    let hour = mcp
        .ok(
            "get_top_consumers",
            json!({"metric": "memory", "period": "1h"}),
        )
        .await;
    assert!(
        hour["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["container"] == name.as_str()),
        "{hour}"
    );
}
