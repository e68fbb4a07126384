//! MCP resources through the official Python SDK (`pip install mcp`, which
//! `.ci/run` does): tests/resources/subscribe.py drives the real binary over
//! stdio: the status and monitor resources, the template, a subscription
//! that sees `notifications/resources/updated` after the endpoint goes down,
//! and `notifications/resources/list_changed` when the file declares one more;
//! then the four prompts, built from that state, and `completion/complete`
//! for their monitor argument.

mod common;

use std::path::Path;

#[tokio::test]
async fn a_python_sdk_subscription_sees_the_update_after_a_monitor_goes_down() {
    common::init();
    let has_sdk = std::process::Command::new("python3")
        .args(["-c", "import mcp"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_sdk {
        let why = "the Python MCP SDK is not installed (pip install mcp)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{why} (CI=true: it must be)");
        }
        eprintln!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resources/subscribe.py");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(180),
        tokio::process::Command::new("python3")
            .arg(&script)
            .arg(common::BIN)
            .arg(dir.path())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("subscribe.py finishes within 180 s")
    .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for step in [
        "initialized: resources with subscribe and listChanged",
        "web is up; status resource counts it",
        "updated notification after web went down; it reads down",
        "list_changed notification after api was declared",
        "unsubscribed",
        "prompts answer from live data",
        "completions for the monitor argument",
    ] {
        assert!(
            stdout.contains(step),
            "missing {step:?} in:\n{stdout}\n{stderr}"
        );
    }
}
