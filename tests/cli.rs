//! The command line: check-config (for GitOps CI) and schema.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_maintenant");

/// Write `text` to a file, run `maintenant check-config` on it: (exit code, stdout, file).
fn check_config(dir: &std::path::Path, text: &str) -> (Option<i32>, String, String) {
    let f = dir.join("m.yaml");
    std::fs::write(&f, text).unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        f.display().to_string(),
    )
}

#[test]
fn check_config_prints_located_problems_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, f) = check_config(
        dir.path(),
        "endpoints:\n  - name: a\n    url: http://127.0.0.1:1/\n    interval: soon\n",
    );
    assert_eq!(code, Some(1));
    let prefix = format!("{f}:4:");
    assert!(
        stdout.lines().any(|l| l.starts_with(&prefix)),
        "a line starting with {prefix}: {stdout}"
    );

    let (code, stdout, f) = check_config(
        dir.path(),
        "endpoints:\n  - name: a\n    url: ftp://x/\n  - name: a\n    url: tcp://127.0.0.1\n",
    );
    assert_eq!(code, Some(1));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 3, "every problem is reported: {stdout}");
    for (line, word) in [(3, "ftp"), (4, "duplicate"), (5, "port")] {
        let p = format!("{f}:{line}:");
        assert!(
            lines.iter().any(|l| l.starts_with(&p) && l.contains(word)),
            "a problem on line {line} mentioning {word}: {stdout}"
        );
    }
}

#[test]
fn check_config_accepts_the_example_config() {
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn schema_describes_the_monitors_file() {
    let out = Command::new(BIN).arg("schema").output().unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(schema["properties"]["endpoints"].is_object(), "{schema}");
    let text = schema.to_string();
    assert!(text.contains("failure_threshold") && text.contains("additionalProperties"));
}

/// The commented examples of `config.example.yaml` (heartbeats, certificates,
/// alerting) are valid when uncommented: a user who copies them gets working
/// monitors. (The certificate's alert names the `ops` channel of the alerting
/// example, so they are checked together.)
#[test]
fn the_commented_examples_of_the_example_config_are_valid() {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"))
            .unwrap();
    let mut file = String::new();
    for key in ["heartbeats:", "certificates:", "alerting:"] {
        let start = example
            .find(&format!("\n# {key}"))
            .unwrap_or_else(|| panic!("config.example.yaml shows {key}"));
        let block: String = example[start + 1..]
            .lines()
            .take_while(|l| l.starts_with("# "))
            .map(|l| format!("{}\n", &l[2..]))
            .collect();
        file.push_str(&block);
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.yaml");
    std::fs::write(&f, &file).unwrap();
    // The webhook example signs with ${WEBHOOK_SECRET}, as a user would set it.
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&f)
        .env("WEBHOOK_SECRET", "s3cret")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the examples:\n{file}\n{stdout}"
    );
    assert!(stdout.contains("ok, 2 monitors"), "{stdout}");
}
