//! Heartbeats end to end: the real binary, real HTTP pings (reqwest), a real
//! MCP client reading what it recorded, restarts on the same sled database
//! and a kill -9 under load.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Daemon, Mcp, Target, wait_for};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(20);
const TOKEN: &str = "s3cr3t-t0ken-0123456789";

/// The list_heartbeats row of `name` (waiting for the first load after a start).
async fn heartbeat(mcp: &Mcp, name: &str) -> Value {
    wait_for(&format!("heartbeat {name} to be listed"), T, async || {
        let page = mcp
            .ok("list_heartbeats", json!({"detail": "full", "limit": 500}))
            .await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
    })
    .await
}

/// Wait until the reconciler has applied the file (`n` heartbeats declared,
/// every task running): from then on their ping URLs answer.
async fn ready(mcp: &Mcp, n: u64) {
    wait_for("the monitors to be running", T, async || {
        let h = mcp.ok("get_health", json!({})).await;
        (h["desired"]["monitors"]["heartbeat"] == n && h["drift"]["in_sync"] == true).then_some(())
    })
    .await
}

async fn wait_hb(mcp: &Mcp, name: &str, status: &str) -> Value {
    wait_for(&format!("heartbeat {name} to be {status}"), T, async || {
        let row = heartbeat(mcp, name).await;
        (row["observed"]["status"] == status).then_some(row)
    })
    .await
}

/// Send a ping; answer (status code, JSON body).
async fn ping(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let mut req = client.request(method.clone(), url);
    if let Some(b) = body {
        req = req.body(b.to_owned());
    }
    let r = req.send().await.expect("ping answered");
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = if method == reqwest::Method::HEAD {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body, got {text:?}"))
    };
    (code, v)
}

/// Kill the daemon with SIGKILL and start it again on the same database.
async fn kill_and_restart(d: Daemon, env: &[(&str, &str)]) -> Daemon {
    let Daemon {
        dir,
        mut child,
        config,
        db,
        ..
    } = d;
    child.start_kill().expect("SIGKILL");
    child.wait().await.unwrap();
    Daemon::spawn(dir, config, db, env).await
}

/// Clients pinging heartbeats `a` and `b` in turn, each until stopped or
/// until its daemon goes away; counts the pings answered 2xx, by name.
struct PingLoad {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<HashMap<&'static str, u64>>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl PingLoad {
    const CLIENTS: u64 = 8;

    /// `strict`: an answer other than 2xx while the daemon runs fails the
    /// test (not strict: it ends that client, as a stop refuses pings).
    fn start(d: &Daemon, strict: bool) -> PingLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<HashMap<&'static str, u64>>> = Arc::default();
        let clients = (0..Self::CLIENTS as usize)
            .map(|n| {
                let (stop, acked) = (stop.clone(), acked.clone());
                let urls = [d.url("/ping/a"), d.url("/ping/b")];
                tokio::spawn(async move {
                    let c = reqwest::Client::builder()
                        .timeout(Duration::from_secs(10))
                        .build()
                        .unwrap();
                    for i in 0..50_000usize {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let which = (i + n) % 2;
                        match c.get(&urls[which]).send().await {
                            Ok(r) if r.status().is_success() => {
                                *acked.lock().unwrap().entry(["a", "b"][which]).or_default() += 1;
                            }
                            Ok(r) if strict => panic!("a ping before the stop got {}", r.status()),
                            // Stopped or killed: this ping was not acknowledged.
                            Ok(_) | Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        PingLoad {
            stop,
            acked,
            clients,
        }
    }

    /// Stop the clients; the acknowledged pings by name.
    async fn finish(self) -> HashMap<&'static str, u64> {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.clients {
            c.await.unwrap();
        }
        self.acked.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn pings_of_each_kind_token_urls_and_errors() {
    let env = [("MAINTENANT_BASE_URL", "https://mon.example.com/")];
    let d = Daemon::start_with(
        &format!(
            "heartbeats:\n  - name: job\n    group: batch\n    period: 1h\n    grace: 10m\n  - name: secret\n    period: 1h\n    token: {TOKEN}\n"
        ),
        &env,
    )
    .await;
    let mcp = d.mcp().await;
    ready(&mcp, 2).await;
    let c = reqwest::Client::new();
    use reqwest::Method;

    let row = heartbeat(&mcp, "job").await;
    assert_eq!(row["id"], "heartbeat/job");
    assert_eq!(row["observed"]["status"], "new");
    assert_eq!(row["ping_url"], "https://mon.example.com/ping/job");
    assert_eq!(row["schedule"], json!({"type": "period", "period": "1h"}));
    assert_eq!(row["grace"], "10m");
    assert_eq!(row["next_deadline"], Value::Null, "new: nothing is due yet");
    assert_eq!(row["desired"]["origin"]["line"], 2);
    assert_eq!(
        heartbeat(&mcp, "secret").await["ping_url"],
        format!("https://mon.example.com/ping/{TOKEN}")
    );

    // Success, start, finish with output and duration, failure with a code.
    let (code, body) = ping(&c, Method::GET, &d.url("/ping/job"), None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({"ok": true, "id": "heartbeat/job", "ping": "success", "status": "up"})
    );
    let (code, body) = ping(&c, Method::POST, &d.url("/ping/job/start"), None).await;
    assert_eq!((code, &body["status"]), (200, &json!("started")));
    assert_eq!(
        heartbeat(&mcp, "job").await["observed"]["status"],
        "started"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, body) = ping(
        &c,
        Method::POST,
        &d.url("/ping/job/0"),
        Some("backup ok: 42 files"),
    )
    .await;
    assert_eq!((code, &body["status"]), (200, &json!("up")));
    let row = heartbeat(&mcp, "job").await;
    assert_eq!(row["last_exit_code"], 0);
    assert_eq!(row["last_output"], "backup ok: 42 files");
    let ms = row["last_duration_ms"].as_f64().unwrap();
    assert!(
        (250.0..10_000.0).contains(&ms),
        "duration from /start: {ms}"
    );
    assert!(row["next_deadline"].is_string(), "{row}");

    let (code, body) = ping(&c, Method::GET, &d.url("/ping/job/3"), None).await;
    assert_eq!((code, &body["status"]), (200, &json!("down")));
    let row = heartbeat(&mcp, "job").await;
    assert_eq!(row["last_exit_code"], 3);
    assert!(
        row["observed"]["message"]
            .as_str()
            .unwrap()
            .contains("exit code 3"),
        "{row}"
    );
    let (code, _) = ping(&c, Method::GET, &d.url("/ping/job/fail"), None).await;
    assert_eq!(code, 200);
    assert_eq!(heartbeat(&mcp, "job").await["last_exit_code"], Value::Null);

    // HEAD is a ping too (success), without a body.
    let before = heartbeat(&mcp, "job").await["observed"]["pings_total"]
        .as_u64()
        .unwrap();
    let (code, _) = ping(&c, Method::HEAD, &d.url("/ping/job"), None).await;
    assert_eq!(code, 200);
    let row = heartbeat(&mcp, "job").await;
    assert_eq!(row["observed"]["pings_total"].as_u64().unwrap(), before + 1);
    assert_eq!(row["observed"]["status"], "up");

    // Bad exit codes and actions: 400 with a JSON reason.
    for bad in ["256", "-1", "abc", "1000"] {
        let (code, body) = ping(&c, Method::GET, &d.url(&format!("/ping/job/{bad}")), None).await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert_eq!(body["ok"], false);
        assert!(body["error"].as_str().unwrap().contains("0..255"), "{body}");
    }
    // Unknown ids: 404. A heartbeat with a token does not answer to its name.
    for url in [
        "/ping/nope",
        "/ping/secret",
        "/ping/nope/start",
        "/ping/secret/0",
    ] {
        let (code, body) = ping(&c, Method::GET, &d.url(url), None).await;
        assert_eq!(code, 404, "{url}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("no heartbeat"),
            "{body}"
        );
    }
    let (code, body) = ping(&c, Method::POST, &d.url(&format!("/ping/{TOKEN}")), None).await;
    assert_eq!((code, &body["id"]), (200, &json!("heartbeat/secret")));

    // A large body is kept to 10 KB.
    let big = "x".repeat(50_000);
    let (code, _) = ping(&c, Method::POST, &d.url("/ping/job"), Some(&big)).await;
    assert_eq!(code, 200);
    let row = heartbeat(&mcp, "job").await;
    assert_eq!(row["last_ping"]["body_bytes"], 10_000);
    assert_eq!(
        row["last_output"].as_str().unwrap().len(),
        500,
        "rows show a preview"
    );

    // Filters.
    let page = mcp
        .ok(
            "list_heartbeats",
            json!({"detail": "full", "status": "new"}),
        )
        .await;
    assert_eq!(page["total"], 0);
    let page = mcp
        .ok(
            "list_heartbeats",
            json!({"detail": "full", "status": "up", "limit": 1}),
        )
        .await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let next = mcp
        .ok(
            "list_heartbeats",
            json!({"detail": "full", "status": "up", "limit": 1, "cursor": page["next_cursor"]}),
        )
        .await;
    assert_ne!(next["items"][0]["name"], page["items"][0]["name"]);
    let page = mcp
        .ok(
            "list_heartbeats",
            json!({"detail": "full", "group": "BATCH"}),
        )
        .await;
    assert_eq!(page["total"], 1);

    // A heartbeat removed from the file stops answering pings.
    d.write_atomic(&format!(
        "heartbeats:\n  - name: secret\n    period: 1h\n    token: {TOKEN}\n"
    ));
    wait_for("the removed heartbeat to 404", T, async || {
        let r = c.get(d.url("/ping/job")).send().await.unwrap();
        (r.status() == 404).then_some(())
    })
    .await;
    let (code, _) = ping(&c, Method::GET, &d.url(&format!("/ping/{TOKEN}")), None).await;
    assert_eq!(code, 200, "the other one is untouched");
}

#[tokio::test]
async fn states_follow_the_deadlines_without_pings() {
    let d = Daemon::start(
        "heartbeats:\n  - name: fast\n    period: 1s\n    grace: 1s\n  - name: every-second\n    schedule: \"* * * * * *\"\n    timezone: Europe/Paris\n    grace: 1s\n",
    )
    .await;
    let mcp = d.mcp().await;
    ready(&mcp, 2).await;
    let c = reqwest::Client::new();
    assert_eq!(heartbeat(&mcp, "fast").await["observed"]["status"], "new");
    // new stays new: nothing is expected before the first ping.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(heartbeat(&mcp, "fast").await["observed"]["status"], "new");

    let (code, _) = ping(&c, reqwest::Method::GET, &d.url("/ping/fast"), None).await;
    assert_eq!(code, 200);
    let up = heartbeat(&mcp, "fast").await;
    assert_eq!(up["observed"]["status"], "up");
    assert!(up["down_at"].is_string(), "{up}");
    let late = wait_hb(&mcp, "fast", "late").await;
    assert!(
        late["observed"]["message"]
            .as_str()
            .unwrap()
            .contains("due by"),
        "{late}"
    );
    let down = wait_hb(&mcp, "fast", "down").await;
    assert!(
        down["observed"]["message"]
            .as_str()
            .unwrap()
            .contains("grace"),
        "{down}"
    );
    let page = mcp
        .ok(
            "list_heartbeats",
            json!({"detail": "full", "status": "down"}),
        )
        .await;
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "fast")
    );
    let (code, body) = ping(&c, reqwest::Method::GET, &d.url("/ping/fast"), None).await;
    assert_eq!((code, &body["status"]), (200, &json!("up")));

    // A cron schedule in a time zone: due at the next second, then late and down.
    let row = heartbeat(&mcp, "every-second").await;
    assert_eq!(
        row["schedule"],
        json!({"type": "cron", "expression": "* * * * * *", "timezone": "Europe/Paris"})
    );
    let (code, _) = ping(&c, reqwest::Method::GET, &d.url("/ping/every-second"), None).await;
    assert_eq!(code, 200);
    let row = heartbeat(&mcp, "every-second").await;
    assert!(row["next_deadline"].is_string(), "{row}");
    wait_hb(&mcp, "every-second", "down").await;
}

#[tokio::test]
async fn pause_survives_pings_reloads_and_restarts() {
    let target = Target::start().await;
    let monitors = |grace: &str| {
        format!(
            "endpoints:\n  - name: web\n    url: {}\n    interval: 1s\n    timeout: 1s\nheartbeats:\n  - name: nightly\n    period: 1s\n    grace: {grace}\n",
            target.url("/web")
        )
    };
    let d = Daemon::start(&monitors("1s")).await;
    let mcp = d.mcp().await;
    ready(&mcp, 1).await;
    let c = reqwest::Client::new();
    mcp.wait_status("web", "up", T).await;

    // Errors: unknown names suggest, certificates are not declared here.
    let e = mcp
        .call(
            "pause_monitor",
            json!({"monitor_type": "heartbeat", "monitor_id": "nightlly"}),
        )
        .await;
    assert!(
        e.is_error && e.text.contains("did you mean 'nightly'"),
        "{}",
        e.text
    );
    let e = mcp
        .call(
            "pause_monitor",
            json!({"monitor_type": "certificate", "monitor_id": "example.com"}),
        )
        .await;
    assert!(e.is_error && e.text.contains("certificate"), "{}", e.text);
    let e = mcp
        .call(
            "pause_monitor",
            json!({"monitor_type": "container", "monitor_id": "web"}),
        )
        .await;
    assert!(
        e.is_error || e.text.contains("unknown variant"),
        "{}",
        e.text
    );

    // Pause both.
    let p = mcp
        .ok(
            "pause_monitor",
            json!({"monitor_type": "heartbeat", "monitor_id": "heartbeat/nightly"}),
        )
        .await;
    assert_eq!(
        (p["paused"].clone(), p["changed"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(p["monitor"]["observed"]["status"], "paused");
    let again = mcp
        .ok(
            "pause_monitor",
            json!({"monitor_type": "heartbeat", "monitor_id": "nightly"}),
        )
        .await;
    assert_eq!(again["changed"], false, "idempotent");
    let p = mcp
        .ok(
            "pause_monitor",
            json!({"monitor_type": "endpoint", "monitor_id": "web"}),
        )
        .await;
    assert_eq!(p["monitor"]["observed"]["status"], "paused");
    assert!(p["monitor"]["observed"]["paused_at"].is_string());

    // A ping to a paused heartbeat is recorded but changes nothing.
    let (code, body) = ping(&c, reqwest::Method::GET, &d.url("/ping/nightly/7"), None).await;
    assert_eq!((code, &body["status"]), (200, &json!("paused")));
    // A paused endpoint is not checked.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hits = target.hits("/web");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        target.hits("/web") <= hits + 1,
        "a paused endpoint is not checked"
    );
    let row = heartbeat(&mcp, "nightly").await;
    assert_eq!(
        row["observed"]["status"], "paused",
        "past period and grace, still paused"
    );
    assert_eq!(row["observed"]["pings_total"], 1);
    assert_eq!(row["last_exit_code"], 7);
    let paused = mcp
        .ok(
            "list_endpoints",
            json!({"detail": "full", "status": "paused"}),
        )
        .await;
    assert_eq!(paused["total"], 1);

    // A reload that changes the heartbeat keeps the pause.
    d.write_atomic(&monitors("2s"));
    wait_for("the reload", T, async || {
        let row = heartbeat(&mcp, "nightly").await;
        (row["grace"] == "2s").then_some(())
    })
    .await;
    assert_eq!(
        heartbeat(&mcp, "nightly").await["observed"]["status"],
        "paused"
    );

    // So does a restart (kill -9: the pause was on disk before the answer).
    let d = kill_and_restart(d, &[]).await;
    let mcp = d.mcp().await;
    ready(&mcp, 1).await;
    assert_eq!(
        heartbeat(&mcp, "nightly").await["observed"]["status"],
        "paused"
    );
    assert_eq!(
        mcp.wait_status("web", "paused", T).await["observed"]["status"],
        "paused"
    );
    let hits = target.hits("/web");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        target.hits("/web"),
        hits,
        "still not checked after a restart"
    );

    // Resume: the heartbeat is up (it was pinged) with a fresh deadline; the endpoint is checked again.
    let r = mcp
        .ok(
            "resume_monitor",
            json!({"monitor_type": "heartbeat", "monitor_id": "nightly"}),
        )
        .await;
    assert_eq!(
        (
            r["paused"].clone(),
            r["monitor"]["observed"]["status"].clone()
        ),
        (json!(false), json!("up"))
    );
    let r = mcp
        .ok(
            "resume_monitor",
            json!({"monitor_type": "endpoint", "monitor_id": "endpoint/web"}),
        )
        .await;
    assert_eq!(r["paused"], false);
    wait_for("checks of the resumed endpoint", T, async || {
        (target.hits("/web") > hits).then_some(())
    })
    .await;
    mcp.wait_status("web", "up", T).await;
    // Resumed and not pinged: late, then down, as usual.
    wait_hb(&mcp, "nightly", "down").await;
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_ping() {
    let d =
        Daemon::start("heartbeats:\n  - name: a\n    period: 1h\n  - name: b\n    period: 1h\n")
            .await;
    ready(&d.mcp().await, 2).await;
    let load = PingLoad::start(&d, true);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Pings are in flight while the daemon dies.
    let d = kill_and_restart(d, &[]).await;
    let acked = load.finish().await;
    let total: u64 = acked.values().sum();
    assert!(
        total > 100,
        "the clients got pings through before the kill: {acked:?}"
    );
    let mcp = d.mcp().await;
    ready(&mcp, 2).await;
    for name in ["a", "b"] {
        let row = heartbeat(&mcp, name).await;
        let stored = row["observed"]["pings_total"].as_u64().unwrap();
        let ok = acked.get(name).copied().unwrap_or(0);
        assert!(
            stored >= ok,
            "heartbeat {name}: {ok} pings were acknowledged but only {stored} survived the kill"
        );
        assert_eq!(row["observed"]["status"], "up");
        eprintln!("{name}: {ok} acknowledged, {stored} stored");
    }
}

/// `/ping` wears the per-IP rate limit `/mcp` has: a burst beyond the bucket
/// gets 429 with `Retry-After`, and is not recorded as a ping.
#[tokio::test]
async fn a_ping_flood_from_one_address_is_rate_limited() {
    let d = Daemon::start_with(
        "heartbeats:\n  - name: cron\n    period: 1h\n",
        &[
            ("MAINTENANT_RATE_LIMIT_PER_MINUTE", "600"),
            ("MAINTENANT_RATE_LIMIT_BURST", "200"),
        ],
    )
    .await;
    let mcp = d.mcp().await;
    ready(&mcp, 1).await;
    let c = reqwest::Client::new();
    let mut ok = 0u64;
    let mut limited = None;
    // The bucket also pays for the MCP calls above; 400 pings are bounded and
    // well past a burst of 200.
    for _ in 0..400 {
        let r = c.get(d.url("/ping/cron")).send().await.unwrap();
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {
                limited = Some(r.headers().get("retry-after").cloned());
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let retry_after = limited.expect("a 429 within 400 pings");
    assert!(retry_after.is_some(), "429 carries Retry-After");
    assert!(ok >= 100, "the burst went through first: {ok}");
    // Only the accepted pings were recorded. /mcp shares the bucket: let it
    // refill (10 a second) before asking.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let hb = heartbeat(&mcp, "cron").await;
    assert_eq!(hb["observed"]["pings_total"].as_u64(), Some(ok), "{hb:#}");
}

/// Resumes a stopped daemon even when the test fails half-way.
struct Cont(i32);

impl Drop for Cont {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// SIGSTOP past a heartbeat's down deadline while its job pings, then
/// SIGCONT: the ping the kernel queued during the stop is applied before the
/// deadline is judged, so the heartbeat never goes late or down and no alert
/// is raised (it used to go up -> down -> up within a millisecond).
#[tokio::test]
async fn a_stalled_process_applies_queued_pings_before_judging_deadlines() {
    let d = Daemon::start("heartbeats:\n  - name: stalled\n    period: 2s\n    grace: 1s\n").await;
    let mcp = d.mcp().await;
    ready(&mcp, 1).await;
    let url = d.url("/ping/stalled");
    let c = reqwest::Client::new();
    assert_eq!(ping(&c, reqwest::Method::GET, &url, None).await.0, 200);
    let pid = i32::try_from(d.child.id().expect("the daemon runs")).unwrap();

    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let cont = Cont(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The job pings while the daemon is stopped; the kernel accepts the
    // connection and holds the request. Its client waits long enough.
    let job = tokio::spawn({
        let url = url.clone();
        async move {
            let c = reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap();
            c.get(&url).send().await.map(|r| r.status().as_u16())
        }
    });
    // Stopped 5 s in all: past the due time (2 s) and the down deadline (3 s).
    tokio::time::sleep(Duration::from_secs(4)).await;
    drop(cont);
    assert_eq!(
        job.await.unwrap().expect("the queued ping is answered"),
        200
    );
    // The job keeps its period afterwards; long enough for any deferred
    // evaluation of the missed deadlines to have run.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(ping(&c, reqwest::Method::GET, &url, None).await.0, 200);
    }
    let row = heartbeat(&mcp, "stalled").await;
    assert_eq!(row["observed"]["status"], "up", "{row}");
    let alerts = mcp
        .ok(
            "list_alerts",
            json!({"detail": "full", "source": "heartbeat/stalled", "active_only": false}),
        )
        .await;
    assert_eq!(alerts["total"], 0, "no alert raised or resolved: {alerts}");
    let log = d.log();
    let changes: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("heartbeat status changed") && l.contains("heartbeat/stalled"))
        .collect();
    assert!(
        !changes.is_empty()
            && changes
                .iter()
                .all(|l| !l.contains("down") && !l.contains("late")),
        "only new -> up: {changes:#?}"
    );
}

#[tokio::test]
async fn a_global_ping_key_makes_name_urls_refuse_and_keyed_urls_work() {
    const KEY: &str = "pk_0123456789abcdef";
    let env = [
        ("MAINTENANT_BASE_URL", "https://mon.example.com"),
        ("MAINTENANT_PING_KEY", KEY),
    ];
    let d = Daemon::start_with(
        &format!(
            "heartbeats:\n  - name: job\n    period: 1h\n  - name: secret\n    period: 1h\n    token: {TOKEN}\n"
        ),
        &env,
    )
    .await;
    let mcp = d.mcp().await;
    ready(&mcp, 2).await;
    let c = reqwest::Client::new();
    use reqwest::Method;

    // The ping URL an assistant is given is the keyed one; a token stays.
    assert_eq!(
        heartbeat(&mcp, "job").await["ping_url"],
        format!("https://mon.example.com/ping/{KEY}/job")
    );
    assert_eq!(
        heartbeat(&mcp, "secret").await["ping_url"],
        format!("https://mon.example.com/ping/{TOKEN}")
    );

    // A name alone, a wrong key or a key of another length: the same 404.
    for path in [
        "/ping/job".to_owned(),
        "/ping/job/start".to_owned(),
        "/ping/pk_0123456789abcdeX/job".to_owned(),
        "/ping/pk_0123456789abcdeX/job/fail".to_owned(),
        "/ping/short/job".to_owned(),
        // A token is not a key: it pings only its own heartbeat.
        format!("/ping/{TOKEN}/job"),
    ] {
        let (code, body) = ping(&c, Method::GET, &d.url(&path), None).await;
        assert_eq!(code, 404, "{path}: {body}");
        assert!(
            !body["error"].as_str().unwrap().contains("job"),
            "the answer does not confirm the name: {body}"
        );
    }
    assert_eq!(heartbeat(&mcp, "job").await["observed"]["status"], "new");

    // Keyed: success, start, exit code, fail.
    let (code, body) = ping(&c, Method::POST, &d.url(&format!("/ping/{KEY}/job")), None).await;
    assert_eq!((code, &body["status"]), (200, &json!("up")), "{body}");
    let (code, body) = ping(
        &c,
        Method::GET,
        &d.url(&format!("/ping/{KEY}/job/start")),
        None,
    )
    .await;
    assert_eq!((code, &body["status"]), (200, &json!("started")), "{body}");
    let (code, body) = ping(&c, Method::GET, &d.url(&format!("/ping/{KEY}/job/0")), None).await;
    assert_eq!((code, &body["status"]), (200, &json!("up")), "{body}");
    let (code, body) = ping(
        &c,
        Method::GET,
        &d.url(&format!("/ping/{KEY}/job/fail")),
        None,
    )
    .await;
    assert_eq!((code, &body["status"]), (200, &json!("down")), "{body}");
    let (code, _) = ping(&c, Method::GET, &d.url(&format!("/ping/{KEY}/nope")), None).await;
    assert_eq!(code, 404, "an unknown name under the key");
    let (code, body) = ping(&c, Method::GET, &d.url(&format!("/ping/{TOKEN}")), None).await;
    assert_eq!(
        (code, &body["id"]),
        (200, &json!("heartbeat/secret")),
        "{body}"
    );
    let row = heartbeat(&mcp, "job").await;
    assert_eq!(row["observed"]["pings_total"], 4, "{row}");
}

#[tokio::test]
async fn a_ping_key_too_short_or_with_odd_characters_stops_the_start() {
    for (key, says) in [
        ("short", "characters long"),
        ("has a space in it!!!!", "letters, digits"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(common::BIN)
            .env("MAINTENANT_DB", dir.path().join("db"))
            .env(
                "MAINTENANT_ADDR",
                format!("127.0.0.1:{}", common::free_port()),
            )
            .env("MAINTENANT_DOCKER", "false")
            .env("MAINTENANT_KUBERNETES", "false")
            .env("MAINTENANT_PING_KEY", key)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{key:?} refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("MAINTENANT_PING_KEY"), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(!err.contains(key), "the key is never echoed: {err}");
    }
}

/// What Kubernetes and Compose do: SIGTERM under ping load. The daemon stops
/// well within the default 30 s grace period, exits 0, and the next start
/// on the same database has every acknowledged ping and finished check and
/// nothing to warn about.
#[tokio::test]
async fn sigterm_under_ping_load_stops_in_time_and_loses_nothing() {
    let target = Target::start().await;
    let d = Daemon::start(&format!(
        "heartbeats:\n  - name: a\n    period: 1h\n  - name: b\n    period: 1h\nendpoints:\n  - name: api\n    url: {}\n    interval: 1s\n",
        target.url("/health")
    ))
    .await;
    let mcp = d.mcp().await;
    ready(&mcp, 2).await;
    mcp.wait_status("api", "up", T).await;
    let load = PingLoad::start(&d, false);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let checks_before = mcp.endpoint("api").await.unwrap()["observed"]["checks_total"]
        .as_u64()
        .unwrap();
    drop(mcp);

    let sent = std::time::Instant::now();
    d.sigterm();
    let Daemon {
        dir,
        mut child,
        config,
        db,
        ..
    } = d;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stopped within the 30 s grace period")
        .unwrap();
    let took = sent.elapsed();
    let acked = load.finish().await;
    assert!(status.success(), "SIGTERM exits 0: {status:?}");
    let log1 = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap();
    assert!(log1.contains("shutting down"), "{log1}");
    assert!(
        !log1.lines().any(|l| l.contains("ERROR")),
        "a clean stop logs no error:\n{log1}"
    );
    eprintln!("stopped {took:?} after SIGTERM");

    std::fs::rename(dir.path().join("daemon.log"), dir.path().join("first.log")).unwrap();
    let d = Daemon::spawn(dir, config, db, &[]).await;
    let mcp = d.mcp().await;
    ready(&mcp, 2).await;
    let total: u64 = acked.values().sum();
    assert!(total > 100, "pings got through before SIGTERM: {acked:?}");
    for name in ["a", "b"] {
        let row = heartbeat(&mcp, name).await;
        let stored = row["observed"]["pings_total"].as_u64().unwrap();
        let ok = acked.get(name).copied().unwrap_or(0);
        assert!(
            stored >= ok,
            "heartbeat {name}: {ok} pings acknowledged, {stored} kept"
        );
        // At most one unanswered ping per client was in flight at the end.
        assert!(
            stored <= ok + PingLoad::CLIENTS,
            "{name}: {stored} kept, {ok} acknowledged"
        );
    }
    let checks_after = mcp.endpoint("api").await.unwrap()["observed"]["checks_total"]
        .as_u64()
        .unwrap();
    assert!(
        checks_after >= checks_before,
        "finished checks kept: {checks_before} before, {checks_after} after"
    );
    let log2 = d.log();
    let complaints: Vec<&str> = log2
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    assert!(
        complaints.is_empty(),
        "the next start reports nothing to repair: {complaints:#?}"
    );
}
