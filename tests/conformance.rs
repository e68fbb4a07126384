//! The official MCP conformance suite against the real binary
//! (tests/conformance/run.sh). Every scenario passes except those listed in
//! tests/conformance/expected-failures.txt; a listed one that passes is an
//! error too (the list must shrink when the server grows).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::Daemon;

/// Scenarios maintenant must pass, whatever the list says.
const MUST_PASS: [&str; 8] = [
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "prompts-list",
    "completion-complete",
    "dns-rebinding-protection",
    "server-sse-multiple-streams",
];

/// `scenario -> passed` from the suite's summary lines (`✓ name: 1 passed, 0 failed`).
fn summary(output: &str) -> BTreeMap<String, bool> {
    let mut results = BTreeMap::new();
    let mut in_summary = false;
    for line in output.lines() {
        let line = line.trim();
        if line.contains("=== SUMMARY ===") {
            in_summary = true;
            continue;
        }
        if !in_summary {
            continue;
        }
        let Some(rest) = line
            .strip_prefix('✓')
            .or_else(|| line.strip_prefix('✗'))
            .map(str::trim)
        else {
            continue;
        };
        let Some((name, counts)) = rest.split_once(':') else {
            continue;
        };
        let failed = counts
            .split(',')
            .find_map(|c| c.trim().strip_suffix(" failed"))
            .and_then(|n| n.trim().parse::<u32>().ok());
        let passed = line.starts_with('✓') && failed == Some(0);
        results.insert(name.trim().to_owned(), passed);
    }
    results
}

fn expected_failures() -> BTreeMap<String, String> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/expected-failures.txt");
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("{}: `{l}` has no `: reason`", path.display()));
            assert!(!reason.trim().is_empty(), "no reason given for {name}");
            (name.trim().to_owned(), reason.trim().to_owned())
        })
        .collect()
}

#[test]
fn summary_lines_are_parsed() {
    let out = "noise\n✓ tools-list: 1 passed, 0 failed\n\n=== SUMMARY ===\n✓ ping: 1 passed, 0 failed\n✗ dns-rebinding-protection: 1 passed, 1 failed\n\nTotal: 2 passed, 1 failed\n";
    let s = summary(out);
    assert_eq!(s.len(), 2);
    assert!(s["ping"]);
    assert!(!s["dns-rebinding-protection"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_conformance_suite() {
    // The suite fires scenarios back to back from one IP: no rate limit here
    // (tests/auth.rs covers the limit).
    let daemon = Daemon::start_with(
        "endpoints: []\n",
        &[("MAINTENANT_RATE_LIMIT_PER_MINUTE", "0")],
    )
    .await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/run.sh");
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .arg(daemon.url("/mcp"))
        .output()
        .await
        .expect("run tests/conformance/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        let why = format!("the conformance suite cannot run here: {stderr}");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{why} (CI=true: it must)");
        }
        eprintln!("SKIPPED official_conformance_suite: {why}");
        return;
    }
    assert!(out.status.success(), "run.sh failed: {stderr}\n{stdout}");
    let results = summary(&stdout);
    assert!(
        !results.is_empty(),
        "no summary in the suite's output:\n{stdout}\n{stderr}"
    );
    println!("conformance: {} scenarios", results.len());
    for (name, passed) in &results {
        println!("  {} {name}", if *passed { "pass" } else { "FAIL" });
    }
    let expected = expected_failures();
    let mut problems = Vec::new();
    for name in MUST_PASS {
        match results.get(name) {
            Some(true) => {}
            Some(false) => problems.push(format!("{name} must pass and failed")),
            None => problems.push(format!("{name} did not run")),
        }
    }
    for (name, passed) in &results {
        match (passed, expected.get(name)) {
            (false, None) => problems.push(format!("{name} failed unexpectedly")),
            (true, Some(reason)) => problems.push(format!(
                "{name} passed but is listed as expected to fail ({reason}): remove it from expected-failures.txt"
            )),
            _ => {}
        }
    }
    for name in expected.keys() {
        if !results.contains_key(name) {
            problems.push(format!(
                "{name} is in expected-failures.txt but the suite has no such scenario"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "conformance:\n  {}\n\nsuite output:\n{stdout}\ndaemon log:\n{}",
        problems.join("\n  "),
        daemon.log()
    );
}
