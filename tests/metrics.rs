//! `/metrics` against real consumers: Debian's `promtool check metrics` on a
//! real scrape, and a real Prometheus on 127.0.0.1 that scrapes the daemon
//! every second and answers PromQL about it. Both come from Debian's
//! `prometheus` package (`.ci/run` installs it); without it the tests say
//! so and fail in CI.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Daemon, Target, free_port, wait_for};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn tool(name: &str) -> Option<String> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is missing: .ci/run installs Debian's prometheus package"
        );
        eprintln!("skipped: {name} not installed (apt-get install prometheus)");
    }
    found
}

fn monitors(target: &Target) -> String {
    // Nothing listens on this port: connection refused, down.
    let closed = free_port();
    format!(
        "endpoints:\n  - name: api\n    group: prod\n    url: {}\n    interval: 1s\n  - name: broken\n    url: http://127.0.0.1:{closed}/\n    interval: 1s\n    failure_threshold: 1\nheartbeats:\n  - name: backup\n    period: 1h\n",
        target.url("/ok"),
    )
}

async fn scrape(d: &Daemon, accept: Option<&str>) -> (String, String) {
    let mut req = reqwest::Client::new().get(d.url("/metrics"));
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    (ct, r.text().await.unwrap())
}

/// The line of `name{...labels...} value` whose labels contain `has`.
fn sample(text: &str, name: &str, has: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(has))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn a_real_scrape_passes_promtool_and_says_what_is_up() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let target = Target::start().await;
    let d = Daemon::start(&monitors(&target)).await;
    let mcp = d.mcp().await;
    mcp.wait_status("api", "up", T).await;
    mcp.wait_status("broken", "down", T).await;
    let c = reqwest::Client::new();
    assert_eq!(
        c.get(d.url("/ping/backup")).send().await.unwrap().status(),
        200
    );

    let (ct, text) = scrape(&d, None).await;
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(
        sample(&text, "maintenant_monitor_up", "monitor=\"api\""),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "maintenant_monitor_up", "monitor=\"broken\""),
        Some(0.0)
    );
    let api_line = text
        .lines()
        .find(|l| l.starts_with("maintenant_monitor_up{") && l.contains("monitor=\"api\""))
        .unwrap();
    assert!(api_line.contains("group=\"prod\""), "{api_line}");
    assert!(api_line.contains("kind=\"endpoint\""), "{api_line}");
    assert!(
        !text.contains("127.0.0.1"),
        "no URL (or any target) in a label or value"
    );
    assert!(
        sample(
            &text,
            "maintenant_heartbeat_pings_total",
            "monitor=\"backup\""
        ) == Some(1.0),
        "the ping is counted"
    );
    assert!(text.contains("maintenant_monitor_check_duration_seconds_bucket{"));
    assert!(text.contains("process_resident_memory_bytes "));
    assert!(text.contains("process_open_fds "));

    // OpenMetrics when the scraper asks for it, ending with # EOF.
    let (ct, om) = scrape(
        &d,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    )
    .await;
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(om.trim_end().ends_with("# EOF"));
}

/// Ask Prometheus an instant query; the first result's value.
async fn query(prom: &str, q: &str) -> Option<f64> {
    let mut url = reqwest::Url::parse(&format!("{prom}/api/v1/query")).unwrap();
    url.query_pairs_mut().append_pair("query", q);
    let r: Value = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    r["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_daemon_and_answers_promql() {
    let Some(prometheus) = tool("prometheus") else {
        return;
    };
    let target = Target::start().await;
    let d = Daemon::start(&monitors(&target)).await;
    let mcp = d.mcp().await;
    mcp.wait_status("api", "up", T).await;
    mcp.wait_status("broken", "down", T).await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: maintenant\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            d.port
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let mut prom = tokio::process::Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");

    let up = wait_for("Prometheus to have scraped maintenant", T, async || {
        query(&url, "up{job=\"maintenant\"}")
            .await
            .filter(|v| *v == 1.0)
    })
    .await;
    assert_eq!(up, 1.0);
    let api = wait_for("maintenant_monitor_up of api", T, async || {
        query(&url, "maintenant_monitor_up{monitor=\"api\"}").await
    })
    .await;
    assert_eq!(api, 1.0);
    let broken = query(&url, "maintenant_monitor_up{monitor=\"broken\"}").await;
    assert_eq!(broken, Some(0.0));
    // What an alerting rule asks: how many monitors are down.
    let count = query(&url, "count(maintenant_monitor_up{kind=\"endpoint\"} == 0)").await;
    assert_eq!(count, Some(1.0));
    prom.start_kill().unwrap();
}
