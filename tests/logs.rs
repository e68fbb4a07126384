//! Log output as an operator's pipeline meets it: plain text when written to
//! a file, JSON lines on request, and the usual `RUST_LOG` fallback.

mod common;

use std::time::Duration;

use common::{BIN, Daemon, wait_for};

const MONITORS: &str = "endpoints: []\n";

/// Wait until the daemon's log holds a line for which `f` holds.
async fn wait_for_line(d: &Daemon, what: &str, f: impl Fn(&str) -> bool) -> String {
    wait_for(what, Duration::from_secs(10), async || {
        let log = d.log();
        log.lines().any(&f).then_some(log)
    })
    .await
}

#[tokio::test]
async fn text_logs_written_to_a_file_carry_no_colour_codes() {
    let d = Daemon::start_with(MONITORS, &[("MAINTENANT_LOG", "info")]).await;
    let log = wait_for_line(&d, "the listening line", |l| {
        l.contains("maintenant listening")
    })
    .await;
    assert!(
        !log.contains('\x1b'),
        "stderr is a file, so no ANSI escape may be written: {log:?}"
    );
    assert!(log.contains("INFO"), "{log}");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let d = Daemon::start_with(
        MONITORS,
        &[
            ("MAINTENANT_LOG", "info"),
            ("MAINTENANT_LOG_FORMAT", "json"),
        ],
    )
    .await;
    let log = wait_for_line(&d, "the listening line", |l| {
        l.contains("maintenant listening")
    })
    .await;
    let mut listening = None;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(v.get(key).is_some(), "{key} missing in {line}");
        }
        if v["fields"]["message"] == "maintenant listening" {
            listening = Some(v);
        }
    }
    let v = listening.expect("the listening line is in the log");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["addr"], format!("127.0.0.1:{}", d.port));
}

#[tokio::test]
async fn rust_log_is_honoured_when_maintenant_log_is_unset() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("monitors.yaml");
    // One monitor, so the reconciler logs its start at debug level.
    std::fs::write(
        &config,
        "endpoints:\n  - name: a\n    url: tcp://127.0.0.1:9\n    interval: 1h\n",
    )
    .unwrap();
    let log_path = dir.path().join("daemon.log");
    let port = common::free_port();
    let mut child = tokio::process::Command::new(BIN)
        .env_remove("MAINTENANT_LOG")
        .env("RUST_LOG", "maintenant=debug")
        .env("MAINTENANT_DB", dir.path().join("db"))
        .env("MAINTENANT_CONFIG", &config)
        .env("MAINTENANT_ADDR", format!("127.0.0.1:{port}"))
        .env("MAINTENANT_DOCKER", "false")
        .env("MAINTENANT_KUBERNETES", "false")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log = wait_for("a DEBUG line", Duration::from_secs(10), async || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        log.lines().any(|l| l.contains("DEBUG")).then_some(log)
    })
    .await;
    assert!(log.contains("maintenant"), "{log}");
    child.kill().await.ok();
}

#[test]
fn an_unknown_log_format_is_refused_with_the_variable_named() {
    let out = std::process::Command::new(BIN)
        .env("MAINTENANT_LOG_FORMAT", "xml")
        .arg("schema")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MAINTENANT_LOG_FORMAT"), "{err}");
}
