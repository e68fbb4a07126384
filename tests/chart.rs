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

/// `helm`, from PATH or fetched by charts/tools.sh into target/tools; `None`
/// (the test skips) when neither works outside CI.
fn helm() -> Option<String> {
    if have("helm") {
        return Some("helm".into());
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let tools =
        std::env::var("MAINTENANT_TOOLS").unwrap_or_else(|_| format!("{root}/target/tools"));
    let fetched = have("npm")
        && Command::new("bash")
            .arg(format!("{root}/charts/tools.sh"))
            .arg(&tools)
            .status()
            .is_ok_and(|s| s.success());
    if fetched {
        return Some(format!("{tools}/helm"));
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(!in_ci, "no helm and charts/tools.sh failed");
    println!("SKIPPED: no helm (and no npm to fetch it)");
    None
}

/// `helm template` (or, with `notes`, `helm install --dry-run=client`, which
/// also prints NOTES.txt) of the chart with `values` (a values file's text).
/// Ok: the rendered objects and the whole output; Err: helm's error.
fn render(
    helm: &str,
    values: &str,
    notes: bool,
) -> Result<(Vec<serde_yaml::Value>, String), String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, values).unwrap();
    let chart = format!("{root}/charts/maintenant");
    let mut cmd = Command::new(helm);
    if notes {
        cmd.args(["install", "--dry-run=client", "maintenant", &chart]);
    } else {
        cmd.args(["template", "maintenant", &chart]);
    }
    let out = cmd
        .args(["--namespace", "monitoring", "-f"])
        .arg(&file)
        .output()
        .expect("run helm");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
    }
    // `helm install --dry-run` prints a header, then MANIFEST:, then NOTES:.
    let manifests = match (stdout.find("MANIFEST:"), stdout.find("NOTES:")) {
        (Some(m), Some(n)) => &stdout[m + "MANIFEST:".len()..n],
        _ => &stdout[..],
    };
    let docs = serde_yaml::Deserializer::from_str(manifests)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &serde_yaml::Value| !v.is_null())
        .collect();
    Ok((docs, stdout))
}

fn of_kind<'a>(docs: &'a [serde_yaml::Value], kind: &str) -> Vec<&'a serde_yaml::Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The maintenant container's environment variable `name`.
fn env_var(docs: &[serde_yaml::Value], name: &str) -> Option<String> {
    let dep = of_kind(docs, "Deployment")[0];
    dep["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(String::from))
}

/// Every `resources` entry of every (Cluster)Role's rules.
fn granted(docs: &[serde_yaml::Value]) -> Vec<String> {
    docs.iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
        .flat_map(|r| r["rules"].as_sequence().cloned().unwrap_or_default())
        .flat_map(|rule| rule["resources"].as_sequence().cloned().unwrap_or_default())
        .filter_map(|r| r.as_str().map(String::from))
        .collect()
}

/// The default install serves no MCP (it used to serve every tool, without
/// a token, to every pod in the cluster), and turning MCP on without
/// authentication or the explicit opt-in is refused with a reason.
#[test]
fn chart_default_install_serves_no_unauthenticated_mcp() {
    let Some(helm) = helm() else { return };
    let (docs, _) = render(&helm, "{}", false).unwrap();
    assert_eq!(env_var(&docs, "MAINTENANT_MCP").as_deref(), Some("false"));
    assert_eq!(env_var(&docs, "MAINTENANT_MCP_ALLOWED_EMAIL"), None);
    assert!(of_kind(&docs, "NetworkPolicy").is_empty());
    let (_, out) = render(&helm, "{}", true).unwrap();
    assert!(out.contains("/mcp: not served"), "{out}");

    let err = render(&helm, "mcp: {enabled: true}", false).unwrap_err();
    assert!(
        err.contains("without authentication") && err.contains("mcp.unauthenticated.enabled"),
        "{err}"
    );
    // With authentication it is served, and says to whom.
    let auth =
        "mcp: {enabled: true, allowedEmail: ops@example.com, issuer: 'https://auth.example.com/'}";
    let (docs, out) = render(&helm, auth, true).unwrap();
    assert_eq!(env_var(&docs, "MAINTENANT_MCP").as_deref(), Some("true"));
    assert_eq!(
        env_var(&docs, "MAINTENANT_MCP_ISSUER").as_deref(),
        Some("https://auth.example.com/")
    );
    assert!(of_kind(&docs, "NetworkPolicy").is_empty());
    assert!(out.contains("whose email is\n  ops@example.com"), "{out}");
}

/// `allowedEmail` without `issuer` used to render and then crash-loop (the
/// daemon refuses it at start): the values schema refuses it.
#[test]
fn chart_schema_rejects_allowed_email_without_issuer() {
    let Some(helm) = helm() else { return };
    let err = render(
        &helm,
        "mcp: {enabled: true, allowedEmail: ops@example.com}",
        false,
    )
    .unwrap_err();
    assert!(err.contains("/mcp/issuer"), "{err}");
    // The opt-in needs at least one admitted peer, and no Ingress.
    let err = render(
        &helm,
        "mcp: {enabled: true, unauthenticated: {enabled: true}}",
        false,
    )
    .unwrap_err();
    assert!(err.contains("allowFrom"), "{err}");
    let err = render(
        &helm,
        "mcp: {enabled: true, unauthenticated: {enabled: true, allowFrom: [{podSelector: {}}]}}\n\
         ingress: {enabled: true, host: m.example.com}",
        false,
    )
    .unwrap_err();
    assert!(err.contains("publish unauthenticated MCP"), "{err}");
}

/// Least privilege: no `events` (nothing reads them), `pods/log` only while
/// pod logs are on, and a Role per namespace when namespaces are listed.
#[test]
fn chart_rbac_grants_no_events_and_pod_logs_only_when_on() {
    let Some(helm) = helm() else { return };
    let (docs, _) = render(&helm, "{}", false).unwrap();
    let rules = granted(&docs);
    assert!(!rules.iter().any(|r| r == "events"), "{rules:?}");
    assert!(rules.iter().any(|r| r == "pods/log"), "{rules:?}");
    assert_eq!(of_kind(&docs, "ClusterRole").len(), 1);
    assert_eq!(
        env_var(&docs, "MAINTENANT_KUBERNETES_LOGS").as_deref(),
        Some("true")
    );

    let (docs, _) = render(&helm, "kubernetes: {podLogs: false}", false).unwrap();
    let rules = granted(&docs);
    assert!(!rules.iter().any(|r| r == "pods/log"), "{rules:?}");
    assert!(rules.iter().any(|r| r == "pods"), "{rules:?}");
    assert_eq!(
        env_var(&docs, "MAINTENANT_KUBERNETES_LOGS").as_deref(),
        Some("false")
    );

    let (docs, out) = render(
        &helm,
        "kubernetes: {namespaces: [shop, payments], excludeNamespaces: [kube-system]}",
        false,
    )
    .unwrap();
    assert!(of_kind(&docs, "ClusterRole").is_empty(), "{out}");
    assert!(of_kind(&docs, "ClusterRoleBinding").is_empty(), "{out}");
    let ns = |kind: &str| -> Vec<String> {
        of_kind(&docs, kind)
            .iter()
            .map(|r| r["metadata"]["namespace"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ns("Role"), ["shop", "payments"]);
    assert_eq!(ns("RoleBinding"), ["shop", "payments"]);
    assert!(!granted(&docs).iter().any(|r| r == "events"));
}

/// Unauthenticated MCP, opted in: a NetworkPolicy admits exactly the named
/// peers to the pod's port, and NOTES.txt says what is open.
#[test]
fn chart_unauthenticated_mcp_is_fenced_by_a_network_policy() {
    let Some(helm) = helm() else { return };
    let values = "mcp:\n  enabled: true\n  unauthenticated:\n    enabled: true\n    allowFrom:\n\
        \x20     - podSelector: {matchLabels: {app.kubernetes.io/name: assistant}}\n\
        \x20     - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ops}}\n";
    let (docs, out) = render(&helm, values, true).unwrap();
    assert_eq!(env_var(&docs, "MAINTENANT_MCP").as_deref(), Some("true"));
    let np = of_kind(&docs, "NetworkPolicy");
    assert_eq!(np.len(), 1, "{out}");
    let spec = &np[0]["spec"];
    assert_eq!(
        spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "maintenant"
    );
    assert_eq!(spec["policyTypes"][0], "Ingress");
    let rule = &spec["ingress"][0];
    assert_eq!(spec["ingress"].as_sequence().unwrap().len(), 1);
    let from = rule["from"].as_sequence().unwrap();
    assert_eq!(from.len(), 2);
    assert_eq!(
        from[0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "assistant"
    );
    assert_eq!(
        from[1]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "ops"
    );
    assert_eq!(rule["ports"][0]["port"], "http");
    assert!(out.contains("WITHOUT AUTHENTICATION"), "{out}");
    assert!(out.contains("pause monitors"), "{out}");
    // Read-only narrows what NOTES says is open, and reaches the daemon.
    let (docs, out) = render(&helm, &format!("{values}  readOnly: true\n"), true).unwrap();
    assert_eq!(
        env_var(&docs, "MAINTENANT_MCP_READ_ONLY").as_deref(),
        Some("true")
    );
    assert!(out.contains("the write tools are off"), "{out}");
}
