//! The command line: check-config (for GitOps CI) and schema.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_maintenant");

#[test]
fn check_config_prints_located_problems_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.yaml");
    std::fs::write(
        &f,
        "endpoints:\n  - name: a\n    url: http://127.0.0.1:1/\n    interval: soon\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let prefix = format!("{}:4:", f.display());
    assert!(
        stdout.lines().any(|l| l.starts_with(&prefix)),
        "a line starting with {prefix}: {stdout}"
    );

    std::fs::write(
        &f,
        "endpoints:\n  - name: a\n    url: ftp://x/\n  - name: a\n    url: tcp://127.0.0.1\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 3, "every problem is reported: {stdout}");
    for (line, _) in [(3, "url"), (4, "duplicate"), (5, "port")] {
        let p = format!("{}:{line}:", f.display());
        assert!(
            lines.iter().any(|l| l.starts_with(&p)),
            "a problem on line {line}: {stdout}"
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
