//! Scale benchmark: declares 1k and 10k endpoints against a local target
//! server and measures the real binary (release build).
//!
//!     cargo bench --profile dist --bench scale            # 1k and 10k
//!     SCALE_SIZES=1000 cargo bench --profile dist --bench scale
//!     SCALE_SOAK_SECS=900 cargo bench --profile dist --bench scale   # then RSS over 15 min
//!     SCALE_HISTORY_HOURS=24 cargo bench --profile dist --bench scale # start with a day of history
//!
//! Prints, per size: RSS, CPU seconds per 1,000 checks, the time from saving
//! a file that changes one monitor to that monitor's first check at its new
//! URL (and proof that the other tasks were untouched), and list_endpoints
//! latency: as raw HTTP on a kept-alive connection (the server's time) and
//! through rmcp's MCP client (which adds its own parsing). With
//! `SCALE_SOAK_SECS`, the daemon then keeps checking for that long and the
//! RSS is sampled every 30 s: the first sample is one point early in a
//! long-running process, this shows where it goes. With
//! `SCALE_HISTORY_HOURS`, the database starts with that many hours of
//! results for every monitor (a check every 30 s, written through the same
//! store the daemon uses), as a daemon that has been running that long would.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_maintenant");

#[derive(Clone, Default)]
struct Target {
    total: Arc<AtomicU64>,
    first_hit: Arc<Mutex<HashMap<String, Instant>>>,
}

async fn start_target() -> (u16, Target) {
    let t = Target::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = t.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let t = state.clone();
        async move {
            t.total.fetch_add(1, Ordering::Relaxed);
            if uri.path().starts_with("/changed") {
                t.first_hit
                    .lock()
                    .unwrap()
                    .entry(uri.path().to_owned())
                    .or_insert_with(Instant::now);
            }
            "ok"
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, t)
}

fn monitors(n: usize, port: u16, changed: Option<(usize, &str)>) -> String {
    let mut s = String::with_capacity(n * 80);
    s.push_str("endpoints:\n");
    for i in 0..n {
        let path = match changed {
            Some((j, p)) if j == i => p.to_owned(),
            _ => format!("/m/{i}"),
        };
        s.push_str(&format!("  - name: m{i}\n    url: http://127.0.0.1:{port}{path}\n    interval: 30s\n    timeout: 5s\n"));
    }
    s
}

fn proc_stat(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    (rss_kb, ticks / 100.0)
}

fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn run(n: usize) {
    let (port, target) = start_target().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("monitors.yaml");
    std::fs::write(&config, monitors(n, port, None)).unwrap();
    prefill_history(&dir.path().join("db"), n);
    let addr_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(BIN)
        .env("MAINTENANT_DB", dir.path().join("db"))
        .env("MAINTENANT_CONFIG", &config)
        .env("MAINTENANT_ADDR", format!("127.0.0.1:{addr_port}"))
        .env("MAINTENANT_MCP", "true")
        .env("MAINTENANT_LOG", "warn")
        // The latency loop calls list_endpoints back to back from one address.
        .env("MAINTENANT_RATE_LIMIT_PER_MINUTE", "0")
        .env("MAINTENANT_DOCKER", "false")
        .env("MAINTENANT_KUBERNETES", "false")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let base = format!("http://127.0.0.1:{addr_port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "daemon did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mcp = ()
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "{base}/mcp"
        )))
        .await
        .unwrap();
    let call = async |tool: &str, args: Value| -> Value {
        let p = CallToolRequestParams::new(tool.to_owned())
            .with_arguments(args.as_object().unwrap().clone());
        mcp.call_tool(p).await.unwrap().structured_content.unwrap()
    };

    // First full cycle: every monitor checked once (first checks are spread over 30s).
    let t0 = Instant::now();
    while target.total.load(Ordering::Relaxed) < n as u64 {
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "first cycle too slow"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // CPU per 1,000 checks over a steady 30s window.
    let (_, cpu0) = proc_stat(pid);
    let c0 = target.total.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let (rss_kb, cpu1) = proc_stat(pid);
    let checks = target.total.load(Ordering::Relaxed) - c0;
    let cpu_per_1k = (cpu1 - cpu0) / (checks as f64 / 1000.0);

    // Reload latency: change one monitor's URL, time save -> first check there.
    let mut reload_ms = Vec::new();
    let mut untouched = true;
    for k in 0..5 {
        let path = format!("/changed-{k}");
        let text = monitors(n, port, Some((n / 2, &path)));
        let saved = Instant::now();
        write_atomic(&config, &text);
        loop {
            if let Some(t) = target.first_hit.lock().unwrap().get(&path) {
                reload_ms.push(t.duration_since(saved).as_secs_f64() * 1000.0);
                break;
            }
            assert!(
                saved.elapsed() < Duration::from_secs(10),
                "reload not applied"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let h = call("get_health", json!({})).await;
        let pass = &h["reconciler"]["last_pass"];
        untouched &= pass["restarted"] == 1 && pass["unchanged"] == (n - 1) && pass["started"] == 0;
    }

    // list_endpoints: a full page (50 rows, `detail: full`, the default
    // before issue 24, so figures compare across sessions) and a 500-row page.
    let mut page = Vec::new();
    let mut big = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let v = call("list_endpoints", json!({"detail": "full"})).await;
        page.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(v["total"], n);
    }
    for _ in 0..20 {
        let t = Instant::now();
        call("list_endpoints", json!({"detail": "full", "limit": 500})).await;
        big.push(t.elapsed().as_secs_f64() * 1000.0);
    }

    // The same page as raw HTTP on a kept-alive connection: the server's
    // latency (request sent -> last byte of the answer), without the rmcp
    // client's parsing of ~90 KB of JSON into its model types.
    let http = reqwest::Client::new();
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "list_endpoints", "arguments": {"detail": "full"}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "scale-bench", "version": "1"},
        }},
    })
    .to_string();
    let mut raw = Vec::new();
    let mut raw_bytes = 0;
    for _ in 0..200 {
        let t = Instant::now();
        let resp = http
            .post(format!("{base}/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "list_endpoints")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        let bytes = resp.bytes().await.unwrap();
        raw.push(t.elapsed().as_secs_f64() * 1000.0);
        raw_bytes = bytes.len();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["result"]["structuredContent"]["total"], n);
    }

    // A Prometheus scrape of every monitor: request sent -> last byte.
    let mut scrape = Vec::new();
    let mut scrape_bytes = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let resp = http.get(format!("{base}/metrics")).send().await.unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        let bytes = resp.bytes().await.unwrap();
        scrape.push(t.elapsed().as_secs_f64() * 1000.0);
        scrape_bytes = bytes.len();
    }

    println!(
        "| {n} endpoints | RSS {:.1} MB | {cpu_per_1k:.3} CPU s / 1k checks ({checks} checks in 30 s) | reload median {:.1} ms (max {:.1}), others untouched: {untouched} | list_endpoints 50 rows: server {:.2} ms ({} KB), rmcp client {:.2} ms; 500 rows: rmcp client {:.2} ms | /metrics scrape median {:.1} ms, {:.1} MB |",
        rss_kb as f64 / 1024.0,
        median(&mut reload_ms.clone()),
        reload_ms.iter().cloned().fold(0.0, f64::max),
        median(&mut raw),
        raw_bytes / 1024,
        median(&mut page),
        median(&mut big),
        median(&mut scrape),
        scrape_bytes as f64 / 1e6,
    );
    let _ = mcp.cancel().await;
    soak(pid, n).await;
    let _ = child.kill().await;
}

/// `SCALE_HISTORY_HOURS` (capped at the 7-day retention) of results for
/// monitors `m0`..`m{n-1}`, one every 30 s, all up.
fn prefill_history(db: &Path, n: usize) {
    use maintenant::monitor::MonitorKey;
    use maintenant::store::{CheckRecord, ObservedState, Status, Store};
    let hours: i64 = std::env::var("SCALE_HISTORY_HOURS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
        .clamp(0, 168);
    if hours == 0 {
        return;
    }
    let t = Instant::now();
    let store = Store::open(db).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let start = now - time::Duration::hours(hours);
    let keys: Vec<MonitorKey> = (0..n)
        .map(|i| MonitorKey::endpoint(format!("m{i}")))
        .collect();
    for step in 0..hours * 120 {
        let at = start + time::Duration::seconds(step * 30);
        for key in &keys {
            let rec = CheckRecord {
                at,
                up: true,
                status_code: Some(200),
                response_time_ms: 0.5,
                error: None,
            };
            let state = ObservedState {
                status: Status::Up,
                since: Some(start),
                last_check: Some(rec.clone()),
                consecutive_failures: 0,
                consecutive_successes: step as u32 + 1,
                checks_total: step as u64 + 1,
            };
            store.record_check(key, &rec, &state).unwrap();
        }
    }
    store.flush().unwrap();
    let bytes = store.size_on_disk();
    drop(store);
    println!(
        "| {n} endpoints | history prefilled: {hours} h, {} checks, {:.0} MB on disk, in {:.0} s |",
        n as i64 * hours * 120,
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
}

/// RSS every 30 s for `SCALE_SOAK_SECS` (capped at one hour), then min /
/// median / max and the last sample.
async fn soak(pid: u32, n: usize) {
    let secs: u64 = std::env::var("SCALE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
        .min(3600);
    if secs == 0 {
        return;
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_secs(30)).await;
        samples.push(proc_stat(pid).0 as f64 / 1024.0);
    }
    let last = *samples.last().expect("at least one sample");
    let max = samples.iter().cloned().fold(0.0, f64::max);
    let min = samples.iter().cloned().fold(f64::MAX, f64::min);
    println!(
        "| {n} endpoints, soak {secs} s | RSS every 30 s: min {min:.1} MB, median {:.1} MB, max {max:.1} MB, last {last:.1} MB ({} samples) |",
        median(&mut samples),
        samples.len(),
    );
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sizes: Vec<usize> = std::env::var("SCALE_SIZES")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for n in sizes {
        rt.block_on(run(n));
    }
}
