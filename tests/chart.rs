//! The Helm chart and the plain manifests: `charts/check.sh` runs `helm lint`
//! and `helm template` with every values file in `charts/maintenant/ci/`,
//! validates what they render with kubernetes-validate (strict) and checks
//! the CRD, the Monitor examples and every rendered monitors file with
//! `charts/validate.py` (which runs `maintenant check-config`).

mod common;

use std::process::Command;

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn helm_chart_lints_renders_and_validates() {
    let root = env!("CARGO_MANIFEST_DIR");
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let missing: Vec<&str> = [
        ("helm or npm", have("helm") || have("npm")),
        ("python3", have("python3")),
    ]
    .into_iter()
    .filter(|(_, ok)| !ok)
    .map(|(n, _)| n)
    .collect();
    if !missing.is_empty() && !in_ci {
        println!(
            "SKIPPED: the chart check needs {} (CI installs them)",
            missing.join(", ")
        );
        return;
    }
    let out = Command::new("bash")
        .arg(format!("{root}/charts/check.sh"))
        .arg(common::BIN)
        .output()
        .expect("run charts/check.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "charts/check.sh failed:\n{text}");
    assert!(text.contains("rendered mcp-auth-ingress"), "{text}");
    assert!(text.contains("0 problem(s)"), "{text}");
}
