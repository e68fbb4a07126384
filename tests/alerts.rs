//! Alerts end to end: the real binary checks a real HTTP target, raises an
//! alert when it goes down, notifies a real webhook receiver (which checks
//! the HMAC signature), re-notifies until acknowledged, resolves on
//! recovery; a receiver that answers 500 shows retries and a recorded
//! failed delivery. Everything read through a real MCP client.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{Daemon, Target, wait_for};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);
const SECRET: &str = "s3cret-key";

/// What a receiver got: (signature verified, body).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(bool, Value)>>>,
    hits: Arc<Mutex<u32>>,
}

impl Receiver {
    /// A webhook receiver on 127.0.0.1 answering `status`; returns its URL.
    async fn start(status: u16) -> (Receiver, String) {
        common::init();
        let r = Receiver::default();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(
                    async move |State(r): State<Receiver>, headers: HeaderMap, body: Bytes| {
                        *r.hits.lock().unwrap() += 1;
                        let verified = headers
                            .get("x-maintenant-signature")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("sha256="))
                            .and_then(|hex_sig| hex::decode(hex_sig).ok())
                            .is_some_and(|sig| {
                                let mut mac =
                                    hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes())
                                        .unwrap();
                                mac.update(&body);
                                mac.verify_slice(&sig).is_ok()
                            });
                        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        r.got.lock().unwrap().push((verified, v));
                        StatusCode::from_u16(status).unwrap()
                    },
                ),
            )
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/hook",
            listener.local_addr().unwrap().port()
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, url)
    }

    fn events(&self) -> Vec<(bool, Value)> {
        self.got.lock().unwrap().clone()
    }

    fn count(&self, event: &str) -> usize {
        self.events()
            .iter()
            .filter(|(_, v)| v["event"] == event)
            .count()
    }

    fn hits(&self) -> u32 {
        *self.hits.lock().unwrap()
    }
}

fn config(target: &Target, ok_url: &str, bad_url: &str, extra_channel: &str) -> String {
    format!(
        "alerting:
  repeat_interval: 1s
  channels:
    - name: ops
      type: webhook
      url: {ok_url}
      secret: {SECRET}
      groups: [core]
    - name: broken
      type: webhook
      url: {bad_url}
      retries: 2
      retry_backoff: 100ms
      severities: [critical]
{extra_channel}endpoints:
  - name: api
    group: core
    url: {}
    interval: 1s
    timeout: 1s
    failure_threshold: 2
    recovery_threshold: 1
",
        target.url("/health")
    )
}

#[tokio::test]
async fn endpoint_down_alerts_notifies_acknowledges_and_resolves() {
    let target = Target::start().await;
    let (ok, ok_url) = Receiver::start(200).await;
    let (bad, bad_url) = Receiver::start(500).await;
    let d = Daemon::start(&config(&target, &ok_url, &bad_url, "")).await;
    let mcp = d.mcp().await;
    mcp.wait_status("api", "up", T).await;
    assert_eq!(
        mcp.ok("list_alerts", json!({"detail": "full"})).await["total"],
        0
    );
    let typo = mcp
        .call(
            "list_alerts",
            json!({"detail": "full", "source": "endpoints"}),
        )
        .await;
    assert!(
        typo.is_error && typo.text.contains("did you mean endpoint"),
        "{}",
        typo.text
    );
    assert_eq!(
        mcp.ok("list_alerts", json!({"detail": "full", "source": "api"}))
            .await["total"],
        0,
        "a declared monitor without alerts is a valid source"
    );

    target.set_status(503);
    let raised = wait_for("a signed `raised` webhook", T, async || {
        ok.events()
            .into_iter()
            .find(|(_, v)| v["event"] == "raised")
    })
    .await;
    assert!(raised.0, "the HMAC signature verifies: {:#}", raised.1);
    let alert = &raised.1["alert"];
    assert_eq!(alert["type"], "endpoint_down");
    assert_eq!(alert["entity"], "endpoint/api");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["group"], "core");
    assert!(
        alert["message"].as_str().unwrap().contains("503"),
        "{alert}"
    );
    let id = alert["id"].as_str().unwrap().to_owned();

    let active = mcp.ok("list_alerts", json!({"detail": "full"})).await;
    assert_eq!(active["total"], 1, "{active:#}");
    let row = &active["items"][0];
    assert_eq!(
        (row["id"].as_str(), row["status"].as_str()),
        (Some(id.as_str()), Some("active"))
    );
    assert!(row["fired_at"].is_string() && row["acknowledged_at"].is_null());

    // Unacknowledged: re-notified every repeat_interval (1s).
    wait_for("a reminder", T, async || {
        (ok.count("reminder") >= 1).then_some(())
    })
    .await;
    assert_eq!(
        ok.count("raised"),
        1,
        "de-duplicated: raised once while down"
    );

    // The failing receiver: 1 attempt + 2 retries, then a recorded failed delivery.
    let failed = wait_for("a failed delivery in list_alerts", T, async || {
        let page = mcp
            .ok(
                "list_alerts",
                json!({"detail": "full", "source": "endpoint/api"}),
            )
            .await;
        page["items"][0]["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["channel"] == "broken" && d["event"] == "raised")
            .cloned()
    })
    .await;
    assert_eq!(failed["ok"], false);
    assert_eq!(failed["attempts"], 3);
    assert_eq!(failed["status_code"], 500);
    assert!(
        bad.hits() >= 3,
        "the receiver saw every attempt: {}",
        bad.hits()
    );
    let health = mcp.ok("get_health", json!({})).await;
    assert!(
        health["alerting"]["failed_deliveries"].as_u64().unwrap() >= 1,
        "{health:#}"
    );
    assert_eq!(
        health["alerting"]["last_failed_delivery"]["channel"],
        "broken"
    );
    assert_eq!(health["alerting"]["active_alerts"], 1);
    let delivered =
        mcp.ok("list_alerts", json!({"detail": "full"})).await["items"][0]["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["channel"] == "ops" && d["ok"] == true);
    assert!(delivered, "successful deliveries are recorded too");

    // Acknowledge: who, when, note; stays active; no more reminders.
    let acked = mcp
        .ok(
            "acknowledge_alert",
            json!({"alert_id": id, "note": "looking into it"}),
        )
        .await;
    assert_eq!(acked["acknowledged_by"], "mcp");
    assert_eq!(acked["note"], "looking into it");
    assert_eq!(acked["status"], "active");
    assert!(acked["acknowledged_at"].is_string());
    let again = mcp.ok("acknowledge_alert", json!({"alert_id": id})).await;
    assert_eq!(
        again["acknowledged_at"], acked["acknowledged_at"],
        "idempotent"
    );
    // A reminder sent just before the acknowledgement may still be in flight.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reminders = ok.count("reminder");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        ok.count("reminder"),
        reminders,
        "acknowledged: no re-notification"
    );
    assert_eq!(
        mcp.ok("list_alerts", json!({"detail": "full"})).await["total"],
        1,
        "still active"
    );

    // Recovery resolves it, with a `resolved` notification.
    target.set_status(200);
    let resolved = wait_for("a `resolved` webhook", T, async || {
        ok.events()
            .into_iter()
            .find(|(_, v)| v["event"] == "resolved")
    })
    .await;
    assert!(resolved.0);
    assert_eq!(resolved.1["alert"]["id"], id.as_str());
    assert!(resolved.1["alert"]["resolved_at"].is_string());
    assert_eq!(
        mcp.ok("list_alerts", json!({"detail": "full"})).await["total"],
        0
    );
    let history = mcp
        .ok(
            "list_alerts",
            json!({"detail": "full", "active_only": false}),
        )
        .await;
    assert_eq!(history["total"], 1, "{history:#}");
    let h = &history["items"][0];
    assert_eq!(h["status"], "resolved");
    assert_eq!(h["acknowledged_by"], "mcp");
    let kinds: Vec<&str> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["raised", "acknowledged", "resolved"]);
    let err = mcp.call("acknowledge_alert", json!({"alert_id": id})).await;
    assert!(
        err.is_error && err.text.contains("resolved"),
        "{}",
        err.text
    );
    assert_eq!(
        mcp.ok(
            "list_alerts",
            json!({"detail": "full", "active_only": false, "severity": "info"})
        )
        .await["total"],
        0
    );

    // Channels hot-reload with the file; a bad channel is a located error
    // and the good configuration keeps running.
    d.write_atomic(&config(
        &target,
        &ok_url,
        &bad_url,
        "    - name: chat\n      type: slack\n      url: http://127.0.0.1:9/slack\n",
    ));
    wait_for("the new channel", T, async || {
        let h = mcp.ok("get_health", json!({})).await;
        (h["alerting"]["channels"] == json!(["ops", "broken", "chat"])).then_some(())
    })
    .await;
    d.write_atomic(&config(
        &target,
        &ok_url,
        &bad_url,
        "    - name: chat\n      type: slack\n      url: not-a-url\n      secret: x\n",
    ));
    let err = wait_for("the located channel error", T, async || {
        let h = mcp.ok("get_health", json!({})).await;
        h["sources"][0]["last_error"]["problems"]
            .as_array()
            .cloned()
    })
    .await;
    let problems: Vec<&str> = err.iter().map(|p| p.as_str().unwrap()).collect();
    assert!(
        problems.iter().any(|p| p.ends_with(
            "monitors.yaml:17:12: invalid channel url \"not-a-url\": relative URL without a base"
        )),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("monitors.yaml:18:15: `secret` applies to `type: webhook` only")),
        "{problems:#?}"
    );
    let h = mcp.ok("get_health", json!({})).await;
    assert_eq!(
        h["alerting"]["channels"],
        json!(["ops", "broken", "chat"]),
        "the last good channels stay"
    );
}

/// Heartbeats raise alerts through the same engine: a missed deadline is
/// `heartbeat_down` (warning while late, escalated once down), a failed run is
/// `heartbeat_failed` with its exit code, a good ping resolves both, and a
/// paused heartbeat raises nothing.
#[tokio::test]
async fn heartbeat_transitions_raise_escalate_and_resolve_alerts() {
    let (ok, ok_url) = Receiver::start(200).await;
    let d = Daemon::start(&format!(
        "alerting:
  channels:
    - name: ops
      type: webhook
      url: {ok_url}
      secret: {SECRET}
heartbeats:
  - name: backup
    period: 1s
    grace: 1s
    alert: {{ severity: critical, channels: [ops] }}
  - name: quiet
    period: 1s
    grace: 1s
"
    ))
    .await;
    let mcp = d.mcp().await;
    let http = reqwest::Client::new();
    let ping = async |path: &str| {
        let r = http.get(d.url(path)).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    };
    // The routes exist once the reconciler has started the heartbeats.
    wait_for("the ping routes", T, async || {
        let r = http.head(d.url("/ping/quiet")).send().await.ok()?;
        (r.status() != 404).then_some(())
    })
    .await;
    // `quiet` is paused before it ever runs late: it must raise nothing.
    mcp.ok(
        "pause_monitor",
        json!({"monitor_type": "heartbeat", "monitor_id": "quiet"}),
    )
    .await;
    ping("/ping/quiet").await;
    ping("/ping/backup").await;

    // No ping: late (warning), then down (escalated to the monitor's severity).
    let escalated = wait_for("heartbeat_down escalated", T, async || {
        let page = mcp
            .ok(
                "list_alerts",
                json!({"detail": "full", "source": "heartbeat/backup"}),
            )
            .await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "heartbeat_down" && a["severity"] == "critical")
            .cloned()
    })
    .await;
    assert_eq!(escalated["status"], "active");
    wait_for("raised and escalated webhooks", T, async || {
        (ok.count("raised") >= 1 && ok.count("escalated") >= 1).then_some(())
    })
    .await;

    // A good ping resolves it.
    ping("/ping/backup").await;
    wait_for("heartbeat_down resolved", T, async || {
        let page = mcp
            .ok(
                "list_alerts",
                json!({"detail": "full", "source": "heartbeat/backup"}),
            )
            .await;
        (page["total"] == 0).then_some(())
    })
    .await;

    // A failed run (exit code 3) is its own alert type, with the code.
    ping("/ping/backup/3").await;
    let failed = wait_for("heartbeat_failed", T, async || {
        let page = mcp
            .ok(
                "list_alerts",
                json!({"detail": "full", "source": "heartbeat/backup"}),
            )
            .await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "heartbeat_failed")
            .cloned()
    })
    .await;
    assert!(
        failed["message"].as_str().unwrap_or_default().contains('3'),
        "{failed:#}"
    );
    ping("/ping/backup/0").await;
    wait_for("heartbeat_failed resolved", T, async || {
        let page = mcp
            .ok(
                "list_alerts",
                json!({"detail": "full", "source": "heartbeat/backup"}),
            )
            .await;
        (page["total"] == 0).then_some(())
    })
    .await;

    let history = mcp
        .ok(
            "list_alerts",
            json!({"detail": "full", "active_only": false, "source": "heartbeat"}),
        )
        .await;
    let entities: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["entity"].as_str().unwrap())
        .collect();
    assert!(entities.len() >= 2, "{history:#}");
    assert!(
        !entities.contains(&"heartbeat/quiet"),
        "a paused heartbeat raised nothing: {history:#}"
    );
    assert!(ok.events().iter().all(|(verified, _)| *verified));
}
