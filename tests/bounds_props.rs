//! Issue 18 §3/§4, as properties: every duration- or number-bearing field of
//! the monitors file, the Docker/Kubernetes labels and every tool argument,
//! driven with extreme values (0, the type's maximum, past it, huge strings),
//! never panics and ends in an error or a valid answer.
//!
//! In process, with real parts: the parsers the daemon uses, the engine
//! started on a real sled database in a temp dir, and the MCP tool layer
//! served over an in-memory pipe to rmcp's real client. A tool call that
//! never answers (what a panicking handler does) fails the property by its
//! timeout.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::Parser;
use maintenant::config::model::HeartbeatSchedule;
use maintenant::engine::{self, App, Role};
use maintenant::heartbeat::{HeartbeatState, HeartbeatStatus};
use maintenant::monitor::MonitorSpec;
use proptest::prelude::*;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// A tool call answers within this, or it counts as never answered.
const ANSWER: Duration = Duration::from_secs(20);

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    settings: maintenant::settings::Settings,
}

/// Durations as they would be written, from nothing to absurd.
const DURATIONS: &[&str] = &[
    "0s",
    "0ms",
    "1ms",
    "1s",
    "366d",
    "367d",
    "3000000d",
    "5000000d",
    "8784h1ms",
    "18446744073709551615ms",
    "18446744073709551616ms",
    "340282366920938463463374607431768211456d",
    "1h30m",
    "-1s",
    "1.5s",
    "",
    "d",
];

/// Numbers as they would be written.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-1",
    "1e309",
    "0x10",
    "\"12\"",
];

fn value_strategy(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(pool).prop_map(str::to_owned),
        1 => (1usize..100_000).prop_map(|n| "9".repeat(n) + "d"),
        1 => "[0-9a-z.:-]{0,40}",
    ]
}

/// Every place of the monitors file that holds a duration or a number.
const FILE_FIELDS: &[(&str, bool)] = &[
    ("endpoints.0.interval", true),
    ("endpoints.0.timeout", true),
    ("endpoints.0.failure_threshold", false),
    ("endpoints.0.recovery_threshold", false),
    ("endpoints.0.max_redirects", false),
    ("endpoints.0.expected_status", false),
    ("endpoints.0.conditions", false),
    ("endpoints.0.alert.restart_threshold", false),
    ("defaults.endpoint.interval", true),
    ("defaults.endpoint.timeout", true),
    ("defaults.endpoint.failure_threshold", false),
    ("defaults.endpoint.recovery_threshold", false),
    ("heartbeats.0.period", true),
    ("heartbeats.0.grace", true),
    ("certificates.0.port", false),
    ("certificates.0.interval", true),
    ("certificates.0.warn_days", false),
    ("alerting.repeat_interval", true),
    ("alerting.channels.0.retries", false),
    ("alerting.channels.0.retry_backoff", true),
    ("alerting.channels.0.timeout", true),
];

/// A valid file with one field replaced by `value`.
fn monitors_file(field: &str, value: &str) -> String {
    let v = |f: &str, default: &str| -> String {
        if f == field {
            match f {
                "endpoints.0.expected_status" | "certificates.0.warn_days" => format!("[{value}]"),
                "endpoints.0.conditions" => format!("['[RESPONSE_TIME] < {value}']"),
                _ => value.to_owned(),
            }
        } else {
            default.to_owned()
        }
    };
    format!(
        "defaults:
  endpoint:
    interval: {}
    timeout: {}
    failure_threshold: {}
    recovery_threshold: {}
alerting:
  repeat_interval: {}
  channels:
    - name: ops
      type: webhook
      url: http://127.0.0.1:9/hook
      retries: {}
      retry_backoff: {}
      timeout: {}
endpoints:
  - name: api
    url: http://127.0.0.1:9/
    interval: {}
    timeout: {}
    failure_threshold: {}
    recovery_threshold: {}
    max_redirects: {}
    expected_status: {}
    conditions: {}
    alert:
      restart_threshold: {}
heartbeats:
  - name: backup
    period: {}
    grace: {}
certificates:
  - name: tls
    host: 127.0.0.1
    port: {}
    interval: {}
    warn_days: {}
",
        v("defaults.endpoint.interval", "30s"),
        v("defaults.endpoint.timeout", "5s"),
        v("defaults.endpoint.failure_threshold", "3"),
        v("defaults.endpoint.recovery_threshold", "2"),
        v("alerting.repeat_interval", "1h"),
        v("alerting.channels.0.retries", "3"),
        v("alerting.channels.0.retry_backoff", "1s"),
        v("alerting.channels.0.timeout", "10s"),
        v("endpoints.0.interval", "30s"),
        v("endpoints.0.timeout", "5s"),
        v("endpoints.0.failure_threshold", "3"),
        v("endpoints.0.recovery_threshold", "2"),
        v("endpoints.0.max_redirects", "5"),
        v("endpoints.0.expected_status", "[200]"),
        v("endpoints.0.conditions", "['[STATUS] < 300']"),
        v("endpoints.0.alert.restart_threshold", "3"),
        v("heartbeats.0.period", "1h"),
        v("heartbeats.0.grace", "5m"),
        v("certificates.0.port", "443"),
        v("certificates.0.interval", "12h"),
        v("certificates.0.warn_days", "[30, 7]"),
    )
}

/// The latest instant `time` represents (year 9999), and the earliest.
fn extreme_times() -> [OffsetDateTime; 3] {
    let max = OffsetDateTime::new_utc(
        time::Date::from_calendar_date(9999, time::Month::December, 31).unwrap(),
        time::Time::from_hms(23, 59, 59).unwrap(),
    );
    let min = OffsetDateTime::new_utc(
        time::Date::from_calendar_date(-9999, time::Month::January, 1).unwrap(),
        time::Time::MIDNIGHT,
    );
    [max, min, OffsetDateTime::now_utc()]
}

/// What an accepted monitor may then compute: deadlines from any anchor.
fn exercise(spec: &MonitorSpec) {
    match spec {
        MonitorSpec::Heartbeat(h) => {
            assert!(h.grace <= maintenant::duration::MAX, "grace {}", h.grace);
            if let HeartbeatSchedule::Period { period } = &h.schedule {
                assert!(*period <= maintenant::duration::MAX, "period {period}");
            }
            for t in extreme_times() {
                for status in [
                    HeartbeatStatus::Up,
                    HeartbeatStatus::Late,
                    HeartbeatStatus::Started,
                ] {
                    let state = HeartbeatState {
                        status,
                        anchor: Some(t),
                        started_at: Some(t),
                        ..Default::default()
                    };
                    let _ = maintenant::heartbeat::deadlines(&state, h);
                    let _ = maintenant::heartbeat::next_wake(&state, h);
                    let _ = maintenant::heartbeat::evaluate(&state, h, t);
                }
            }
        }
        MonitorSpec::Endpoint(e) => {
            for d in [e.interval, e.timeout] {
                assert!(d <= maintenant::duration::MAX, "{d}");
            }
        }
        MonitorSpec::Certificate(c) => {
            assert!(c.interval <= maintenant::duration::MAX);
            assert!(c.warn_days.iter().all(|d| *d <= 366), "{:?}", c.warn_days);
        }
    }
}

/// Label keys that hold a duration or a number, on a container that
/// declares an endpoint and a heartbeat.
const LABEL_FIELDS: &[(&str, bool)] = &[
    ("maintenant.endpoint.interval", true),
    ("maintenant.endpoint.timeout", true),
    ("maintenant.endpoint.failure-threshold", false),
    ("maintenant.endpoint.recovery-threshold", false),
    ("maintenant.endpoint.http.max-redirects", false),
    ("maintenant.endpoint.http.expected-status", false),
    ("maintenant.endpoint.0.interval", true),
    ("maintenant.alert.restart_threshold", false),
    ("maintenant.heartbeat.nightly.period", true),
    ("maintenant.heartbeat.nightly.grace", true),
    ("maintenant.tls.certificates", false),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_file_field_takes_any_value_without_panicking(
        field in proptest::sample::select(FILE_FIELDS),
        dur in value_strategy(DURATIONS),
        num in value_strategy(NUMBERS),
    ) {
        let (field, is_duration) = field;
        let value = if is_duration { dur } else { num };
        let text = monitors_file(field, &value);
        let path = std::path::Path::new("/tmp/props/monitors.yaml");
        match maintenant::config::parse_str(&text, path, &|_| None) {
            Ok(monitors) => {
                for m in &monitors {
                    exercise(&m.spec);
                }
            }
            Err(errors) => {
                // The error says where and stays readable.
                let text = errors.to_string();
                prop_assert!(!text.is_empty());
                prop_assert!(text.len() < 4_000, "{} bytes", text.len());
            }
        }
    }

    #[test]
    fn every_label_takes_any_value_without_panicking(
        field in proptest::sample::select(LABEL_FIELDS),
        dur in value_strategy(DURATIONS),
        num in value_strategy(NUMBERS),
    ) {
        let (key, is_duration) = field;
        let value = if is_duration { dur } else { num };
        let value = if key == "maintenant.tls.certificates" {
            format!("127.0.0.1:{value}")
        } else {
            value
        };
        let mut labels = BTreeMap::new();
        labels.insert("maintenant.endpoint.http".to_owned(), "http://127.0.0.1:9/".to_owned());
        labels.insert("maintenant.endpoint.0.http".to_owned(), "http://127.0.0.1:9/x".to_owned());
        labels.insert("maintenant.heartbeat.nightly.period".to_owned(), "1d".to_owned());
        labels.insert(key.to_owned(), value);
        let parsed = maintenant::sources::labels::parse("app", &labels);
        for p in &parsed.problems {
            prop_assert!(p.message.len() < 1_000, "{}", p.message);
        }
        let (specs, problems) = maintenant::sources::labels::monitors(parsed);
        for (spec, _) in &specs {
            exercise(spec);
        }
        for p in &problems {
            prop_assert!(p.message.len() < 1_000, "{}", p.message);
        }
    }
}

// ---- the tool layer -------------------------------------------------------

struct World {
    rt: tokio::runtime::Runtime,
    app: Arc<App>,
    client: RunningService<RoleClient, ()>,
    /// Each tool's argument names, from `tools/list`.
    tools: Vec<(String, Vec<String>)>,
    _dir: tempfile::TempDir,
}

/// One engine and one MCP session for every case (starting them per case
/// would test start-up, not the tools).
fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("monitors.yaml");
        std::fs::write(
            &config,
            "endpoints:
  - name: api
    group: core
    url: http://127.0.0.1:9/
    interval: 1s
    timeout: 500ms
heartbeats:
  - name: backup
    group: jobs
    period: 366d
    grace: 366d
",
        )
        .unwrap();
        let db = dir.path().join("db");
        let settings = Cli::try_parse_from([
            "maintenant",
            "--db",
            db.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--docker",
            "false",
            "--kubernetes",
            "false",
            "--addr",
            "127.0.0.1:9",
        ])
        .unwrap()
        .settings;
        let (app, client, tools) = rt.block_on(async {
            let app = engine::start(settings, Role::Daemon).await.unwrap();
            let (server_io, client_io) = tokio::io::duplex(1 << 20);
            let server = maintenant::mcp::Maintenant::new(app.clone());
            tokio::spawn(async move {
                let running = server.serve(tokio::io::split(server_io)).await.unwrap();
                let _ = running.waiting().await;
            });
            let client = ().serve(tokio::io::split(client_io)).await.unwrap();
            let listed = client.list_all_tools().await.unwrap();
            let tools = listed
                .into_iter()
                .map(|t| {
                    let args = t
                        .input_schema
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|p| p.keys().cloned().collect())
                        .unwrap_or_default();
                    (t.name.to_string(), args)
                })
                .collect();
            // The declared monitors are there before the first case.
            for _ in 0..100 {
                if app.desired().monitors.len() == 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (app, client, tools)
        });
        World {
            rt,
            app,
            client,
            tools,
            _dir: dir,
        }
    })
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// Argument values: valid ones (so calls get past the first check) and
/// extreme ones of every JSON type.
fn arg_value() -> impl Strategy<Value = Value> {
    let strings: Vec<String> = [
        "api",
        "endpoint/api",
        "backup",
        "heartbeat/backup",
        "core",
        "endpoint",
        "heartbeat",
        "certificate",
        "resolved",
        "investigating",
        "cpu",
        "memory",
        "24h",
        "current",
        "critical",
        "1",
        "maintenance/1",
        "",
        "0s",
        "366d",
        "367d",
        "5000000d",
        "18446744073709551616ms",
        "2026-11-25T10:00:00Z",
        "9999-12-31T23:59:59Z",
        "-9999-01-01T00:00:00Z",
        "0000-01-01T00:00:00+23:59",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        b64("o:18446744073709551615"),
        b64("o:-1"),
        b64("o:10000000"),
        b64("t:170141183460469231731687303715884105727"),
        b64("t:-170141183460469231731687303715884105728"),
        b64("t:9223372036854775807"),
        "x".repeat(100_000),
        "é".repeat(513),
    ])
    .collect();
    let string = proptest::sample::select(strings).prop_map(Value::String);
    prop_oneof![
        6 => string.clone(),
        3 => proptest::sample::select(vec![
            json!(0),
            json!(1),
            json!(-1),
            json!(500),
            json!(501),
            json!(u32::MAX),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1e300),
            json!(true),
            json!(null),
        ]),
        1 => proptest::collection::vec(string, 0..4).prop_map(Value::Array),
        1 => (0usize..2_000).prop_map(|n| Value::Array(vec![json!("api"); n])),
    ]
}

fn call(w: &World, tool: &str, args: serde_json::Map<String, Value>) -> Result<(), String> {
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(args);
    w.rt.block_on(async {
        match tokio::time::timeout(ANSWER, w.client.call_tool(params)).await {
            Err(_) => Err(format!("{tool} was not answered within {ANSWER:?}")),
            // A tool error or an invalid-params error: both are answers,
            // and neither quotes a huge argument back.
            Ok(Ok(r)) if r.is_error == Some(true) => {
                let text: String = r
                    .content
                    .iter()
                    .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                    .collect();
                if text.len() > 4_000 {
                    return Err(format!(
                        "{tool}: a {} byte error: {}",
                        text.len(),
                        &text[..200]
                    ));
                }
                Ok(())
            }
            Ok(Ok(_)) => Ok(()),
            Ok(Err(rmcp::service::ServiceError::McpError(e))) => {
                if e.message.len() > 4_000 {
                    return Err(format!(
                        "{tool}: a {} byte error: {}",
                        e.message.len(),
                        &e.message[..200]
                    ));
                }
                Ok(())
            }
            Ok(Err(e)) => Err(format!("{tool}: {e}")),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn every_tool_answers_any_arguments(
        pick in any::<proptest::sample::Index>(),
        values in proptest::collection::vec(arg_value(), 8),
        present in proptest::collection::vec(any::<bool>(), 8),
    ) {
        let w = world();
        let (tool, names) = &w.tools[pick.index(w.tools.len())];
        let mut args = serde_json::Map::new();
        for (i, name) in names.iter().enumerate() {
            if present[i % 8] {
                args.insert(name.clone(), values[i % 8].clone());
            }
        }
        prop_assert_eq!(call(w, tool, args), Ok(()));
    }
}

/// After all that, the engine's tasks are all still there: no panic was
/// caught by the supervisor either.
#[test]
fn no_task_panicked_under_extreme_arguments() {
    let w = world();
    let mut args = serde_json::Map::new();
    args.insert("since".into(), json!("5000000d"));
    args.insert("endpoint_id".into(), json!("api"));
    call(w, "get_endpoint_history", args).unwrap();
    // The other test of this file makes one panic on purpose.
    let panics: Vec<_> = w
        .app
        .tasks
        .panics()
        .into_iter()
        .filter(|p| !p.name.starts_with("test-"))
        .collect();
    assert!(panics.is_empty(), "{panics:?}");
}

/// A task that panics is restarted, and get_health (the real tool, through
/// the real client) reports it and says degraded. The engine's own tasks are
/// listed as supervised, so this is the registry they report to.
#[test]
fn a_panicking_task_is_restarted_and_get_health_says_degraded() {
    let w = world();
    let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let r = runs.clone();
    w.rt.block_on(async {
        let handle = w.app.tasks.spawn("test-flaky", move || {
            let r = r.clone();
            async move {
                if r.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    panic!("boom from the test");
                }
                // The restarted task keeps running, as an engine task does.
                std::future::pending::<()>().await
            }
        });
        for _ in 0..100 {
            if runs.load(std::sync::atomic::Ordering::SeqCst) >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            runs.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "restarted once"
        );
        let health = w
            .client
            .call_tool(CallToolRequestParams::new("get_health"))
            .await
            .unwrap();
        let h = health.structured_content.unwrap();
        assert_eq!(h["status"], "degraded", "{h}");
        let panicked = h["tasks"]["panicked"].as_array().unwrap();
        let flaky = panicked
            .iter()
            .find(|p| p["name"] == "test-flaky")
            .unwrap_or_else(|| panic!("{h}"));
        assert_eq!(flaky["panics"], 1);
        assert_eq!(flaky["state"], "running");
        assert!(
            flaky["message"]
                .as_str()
                .unwrap()
                .contains("boom from the test")
        );
        let supervised: Vec<&str> = h["tasks"]["supervised"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for t in [
            "alert-engine",
            "heartbeat-writer",
            "reconciler",
            "file-source",
            "test-flaky",
        ] {
            assert!(supervised.contains(&t), "{t} in {supervised:?}");
        }
        handle.abort();
    });
}
