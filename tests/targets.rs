//! The target policy end to end (issue 18 §2): monitors declared by others
//! (here `Monitor` resources, read from the fake API server by kube's real
//! client) may not reach maintenant's own listen address by default, nor an
//! address a deny rule names, whether by address, by host name or through a
//! redirect; the monitors file is the operator's and stays unrestricted.
//! Nothing is sent outside loopback: the denied address is 127.0.0.2, and a
//! listener there counts the connections it accepts (none).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::fake_kube::{FakeKube, MONITORS};
use common::{Mcp, Target, wait_for};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);

fn ready(body: &Value) -> &Value {
    body["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .unwrap_or(&Value::Null)
}

/// The last status PATCH of `namespace/name` that satisfies `f`.
async fn wait_patch(
    fake: &FakeKube,
    namespace: &str,
    name: &str,
    what: &str,
    f: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("{MONITORS}/{namespace}/{name}/status");
    wait_for(what, T, async || {
        fake.patches()
            .into_iter()
            .rev()
            .find(|p| p.path == path && f(&p.body))
            .map(|p| p.body)
    })
    .await
}

/// get_health's `refused` rows, by id.
async fn refused(mcp: &Mcp) -> Vec<Value> {
    mcp.ok("get_health", json!({})).await["refused"]
        .as_array()
        .unwrap()
        .clone()
}

async fn wait_refused(mcp: &Mcp, id: &str) -> Value {
    wait_for(&format!("{id} refused in get_health"), T, async || {
        refused(mcp).await.into_iter().find(|r| r["id"] == id)
    })
    .await
}

/// A listener on `ip` that counts accepted connections and answers 200.
async fn counting_listener(ip: &str) -> (u16, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    let accepts = Arc::new(AtomicUsize::new(0));
    let a = accepts.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (port, accepts)
}

/// A 127.0.0.1 server whose every answer is a 302 to `location`.
async fn redirect_to(location: String) -> String {
    let app = axum::Router::new().fallback(async move || {
        (
            axum::http::StatusCode::FOUND,
            [("location", location.clone())],
        )
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    format!("http://{addr}/")
}

const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";

#[tokio::test]
async fn declared_monitors_may_not_reach_maintenant_itself_the_file_may() {
    let fake = FakeKube::start().await;
    let target = Target::start().await;
    // What a cloud metadata service answers.
    target.set_body(&format!(r#"{{"SecretAccessKey":"{SECRET}"}}"#));
    let d = fake
        .daemon(
            "endpoints: []\n",
            &[("MAINTENANT_KUBERNETES_STATUS_INTERVAL", "200ms")],
        )
        .await;
    let mcp = d.mcp().await;
    let own = d.url("/healthz");
    let own_by_name = format!("http://localhost:{}/healthz", d.port);

    fake.apply_monitor(
        "shop",
        "self",
        json!({"endpoint": {"url": own, "interval": "1s"}}),
    );
    fake.apply_monitor(
        "shop",
        "self-name",
        json!({"endpoint": {"url": own_by_name, "interval": "1s"}}),
    );
    fake.apply_monitor(
        "shop",
        "ok",
        json!({"endpoint": {"url": target.url("/ok"), "interval": "1s"}}),
    );
    fake.apply_monitor(
        "shop",
        "secret",
        json!({"endpoint": {
            "url": target.url("/latest/meta-data"),
            "interval": "1s",
            "failure_threshold": 1,
            "conditions": ["[BODY].SecretAccessKey == x"],
        }}),
    );
    // The operator's file may check maintenant itself.
    d.write_atomic(&format!(
        "endpoints:\n  - name: file-self\n    url: {own}\n    interval: 1s\n"
    ));

    mcp.wait_status("file-self", "up", T).await;
    mcp.wait_status("shop.ok", "up", T).await;

    // Refused, with the rule, in get_health...
    let r = wait_refused(&mcp, "endpoint/shop.self").await;
    assert_eq!(r["origin"], "Monitor shop/self");
    assert_eq!(r["target"], format!("127.0.0.1:{}", d.port));
    assert_eq!(
        r["rule"],
        format!(
            "is maintenant's own listen address 127.0.0.1:{} (MAINTENANT_ADDR)",
            d.port
        )
    );
    // ... a host name that resolves there too (`localhost`, from /etc/hosts).
    let r = wait_refused(&mcp, "endpoint/shop.self-name").await;
    assert!(
        r["target"]
            .as_str()
            .unwrap()
            .ends_with("(resolved from localhost)"),
        "{r}"
    );
    let health = mcp.ok("get_health", json!({})).await;
    assert_eq!(
        health["refused"].as_array().unwrap().len(),
        2,
        "the file's monitor and the allowed ones are not refused: {}",
        health["refused"]
    );
    // ... in the monitor's own answer...
    let row = mcp.endpoint("shop.self").await.unwrap();
    assert!(
        row["observed"]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("refused by target policy: 127.0.0.1:")),
        "{row}"
    );
    // ... and in the resource's status: state refused, Ready False.
    let p = wait_patch(&fake, "shop", "self", "status refused", |b| {
        b["status"]["state"] == "refused"
    })
    .await;
    let cond = ready(&p);
    assert_eq!(cond["status"], "False");
    assert_eq!(cond["reason"], "TargetRefused");
    assert!(
        cond["message"]
            .as_str()
            .unwrap()
            .contains("own listen address"),
        "{p}"
    );

    // The body's value is in the operator's MCP answer, never in the status
    // that whoever created the resource can read.
    let row = wait_for("the secret check's error", T, async || {
        mcp.endpoint("shop.secret")
            .await
            .filter(|r| r["observed"]["status"] == "down")
    })
    .await;
    assert!(
        row["observed"]["error"].as_str().unwrap().contains(SECRET),
        "{row}"
    );
    let p = wait_patch(&fake, "shop", "secret", "status down", |b| {
        b["status"]["state"] == "down"
    })
    .await;
    assert_eq!(p["status"]["message"], "[BODY].SecretAccessKey == x failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
    for patch in fake.patches() {
        assert!(
            !patch.body.to_string().contains("wJalr"),
            "a status quotes the body: {}",
            patch.body
        );
    }
    let obj = fake.get(MONITORS, "shop", "secret").unwrap();
    assert!(!obj.to_string().contains("wJalr"));

    // The others kept running.
    mcp.wait_status("shop.ok", "up", T).await;
    mcp.wait_status("file-self", "up", T).await;
}

#[tokio::test]
async fn a_deny_rule_refuses_addresses_and_redirects_before_connecting() {
    let fake = FakeKube::start().await;
    let target = Target::start().await;
    let (denied, denied_accepts) = counting_listener("127.0.0.2").await;
    let (file_port, file_accepts) = counting_listener("127.0.0.2").await;
    let redirect = redirect_to(format!("http://127.0.0.2:{denied}/")).await;
    let d = fake
        .daemon(
            &format!(
                "endpoints:\n  - name: file-denied-net\n    url: http://127.0.0.2:{file_port}/\n    interval: 1s\n"
            ),
            &[
                ("MAINTENANT_KUBERNETES_STATUS_INTERVAL", "200ms"),
                ("MAINTENANT_TARGET_DENY", "127.0.0.2/32"),
            ],
        )
        .await;
    let mcp = d.mcp().await;
    fake.apply_monitor(
        "shop",
        "literal",
        json!({"endpoint": {"url": format!("http://127.0.0.2:{denied}/"), "interval": "1s"}}),
    );
    fake.apply_monitor(
        "shop",
        "tcp",
        json!({"endpoint": {"url": format!("tcp://127.0.0.2:{denied}"), "interval": "1s"}}),
    );
    fake.apply_monitor(
        "shop",
        "redirect",
        json!({"endpoint": {"url": redirect, "interval": "1s"}}),
    );
    fake.apply_monitor(
        "shop",
        "cert",
        json!({"certificate": {"host": "127.0.0.2", "port": denied, "interval": "1s"}}),
    );
    fake.apply_monitor(
        "shop",
        "ok",
        json!({"endpoint": {"url": target.url("/ok"), "interval": "1s"}}),
    );

    for id in [
        "endpoint/shop.literal",
        "endpoint/shop.tcp",
        "endpoint/shop.redirect",
        "certificate/shop.cert",
    ] {
        let r = wait_refused(&mcp, id).await;
        assert_eq!(r["target"], "127.0.0.2", "{r}");
        assert_eq!(r["rule"], "is in 127.0.0.2/32 (MAINTENANT_TARGET_DENY)");
    }
    let p = wait_patch(&fake, "shop", "redirect", "status refused", |b| {
        b["status"]["state"] == "refused"
    })
    .await;
    assert_eq!(
        ready(&p)["message"],
        "refused by target policy: 127.0.0.2 is in 127.0.0.2/32 (MAINTENANT_TARGET_DENY)"
    );
    mcp.wait_status("shop.ok", "up", T).await;
    // The file is not held to the rule unless MAINTENANT_TARGET_POLICY_FILE.
    mcp.wait_status("file-denied-net", "up", T).await;
    assert!(file_accepts.load(Ordering::SeqCst) > 0);
    // A few more rounds of checks: still not one connection to the denied port.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        denied_accepts.load(Ordering::SeqCst),
        0,
        "a refused check connected"
    );
}

/// `check-config` says which of the file's monitors the policy would refuse
/// when the file is held to it.
#[test]
fn check_config_reports_refused_addresses_when_the_file_is_held_to_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("monitors.yaml");
    std::fs::write(
        &file,
        "endpoints:\n  - name: meta\n    url: http://169.254.169.254/latest/meta-data\n  - name: db\n    url: tcp://127.0.0.2:5432\n  - name: web\n    url: http://127.0.0.1:8081/\n",
    )
    .unwrap();
    let run = |env: &[(&str, &str)]| {
        let mut c = std::process::Command::new(common::BIN);
        c.arg("check-config").arg(&file);
        for k in [
            "MAINTENANT_TARGET_DENY",
            "MAINTENANT_TARGET_ALLOW",
            "MAINTENANT_TARGET_POLICY_FILE",
        ] {
            c.env_remove(k);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    // The operator's own file: unrestricted by default.
    let (code, out) = run(&[("MAINTENANT_TARGET_DENY", "127.0.0.2/32")]);
    assert_eq!(code, Some(0), "{out}");

    let (code, out) = run(&[
        ("MAINTENANT_TARGET_DENY", "127.0.0.2/32"),
        ("MAINTENANT_TARGET_POLICY_FILE", "true"),
    ]);
    assert_eq!(code, Some(1), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let path = file.display();
    assert_eq!(
        lines,
        [
            format!(
                "{path}:2: endpoint/meta: refused by target policy: 169.254.169.254 is in 169.254.0.0/16 (IPv4 link-local, where cloud metadata services answer, refused by default)"
            ),
            format!(
                "{path}:4: endpoint/db: refused by target policy: 127.0.0.2 is in 127.0.0.2/32 (MAINTENANT_TARGET_DENY)"
            ),
        ],
        "{out}"
    );

    // An allow rule lifts part of a default.
    let (code, out) = run(&[
        ("MAINTENANT_TARGET_POLICY_FILE", "true"),
        ("MAINTENANT_TARGET_ALLOW", "169.254.169.254/32"),
    ]);
    assert_eq!(code, Some(0), "{out}");

    // A rule that does not parse names the setting.
    let (code, out) = run(&[("MAINTENANT_TARGET_DENY", "10.0.0.0/40")]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("MAINTENANT_TARGET_DENY: \"10.0.0.0/40\": the prefix length must be 0 to 32"),
        "{out}"
    );
}
