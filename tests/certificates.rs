//! Certificate monitoring end to end: real rustls TLS servers on 127.0.0.1
//! serving certificates made now with rcgen (a test CA trusted through
//! MAINTENANT_EXTRA_CA_FILE, self-signed, expired, wrong name, expiring
//! soon), the real binary checking them, and a real MCP client reading
//! list_certificates and the alerts they raised.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Daemon, free_port, wait_for};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use time::OffsetDateTime;

const T: Duration = Duration::from_secs(30);

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
        .distinguished_name
        .push(DnType::CommonName, "maintenant test CA");
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf for `names`, valid from `from` to `to`, signed by `ca` (self-signed when `None`).
fn leaf(
    names: &[&str],
    from: OffsetDateTime,
    to: OffsetDateTime,
    ca: Option<&Ca>,
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.not_before = from;
    params.not_after = to;
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let key = KeyPair::generate().unwrap();
    let cert = match ca {
        Some(ca) => params.signed_by(&key, &ca.issuer).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    (
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

/// A real TLS server on 127.0.0.1 that completes handshakes with `chain`.
async fn tls_server(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> u16 {
    common::init();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    use tokio::io::AsyncWriteExt;
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    port
}

async fn certificate(mcp: &common::Mcp, name: &str) -> Option<Value> {
    let page = mcp
        .ok("list_certificates", json!({"detail": "full", "limit": 500}))
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .cloned()
}

async fn checked(mcp: &common::Mcp, name: &str) -> Value {
    wait_for(
        &format!("certificate {name} to be checked"),
        T,
        async || {
            certificate(mcp, name)
                .await
                .filter(|r| r["status"] != "pending")
        },
    )
    .await
}

#[tokio::test]
async fn certificates_are_read_judged_and_alerted_on() {
    let ca = ca();
    let now = OffsetDateTime::now_utc();
    let year = time::Duration::days(365);
    let (c, k) = leaf(
        &["localhost"],
        now - time::Duration::days(1),
        now + year,
        Some(&ca),
    );
    let valid = tls_server(c, k).await;
    let (c, k) = leaf(
        &["localhost"],
        now - time::Duration::days(1),
        now + year,
        None,
    );
    let self_signed = tls_server(c, k).await;
    let (c, k) = leaf(
        &["localhost"],
        now - time::Duration::days(30),
        now - time::Duration::days(2),
        Some(&ca),
    );
    let expired = tls_server(c, k).await;
    let (c, k) = leaf(
        &["other.example"],
        now - time::Duration::days(1),
        now + year,
        Some(&ca),
    );
    let wrong_name = tls_server(c, k).await;
    let (c, k) = leaf(
        &["localhost"],
        now - time::Duration::days(80),
        now + time::Duration::days(5) + time::Duration::hours(2),
        Some(&ca),
    );
    let expiring = tls_server(c, k).await;
    let (c, k) = leaf(
        &["localhost"],
        now - time::Duration::days(1),
        now + year,
        Some(&ca),
    );
    let behind_endpoint = tls_server(c, k).await;
    let refused = free_port();

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let cert = |name: &str, port: u16, extra: &str| {
        format!(
            "  - name: {name}\n    host: localhost\n    port: {port}\n    interval: 1h\n{extra}"
        )
    };
    let config = format!(
        "certificates:\n{}{}{}{}{}{}endpoints:\n  - name: web\n    group: front\n    url: https://localhost:{behind_endpoint}/\n    interval: 1h\n  - name: same\n    url: https://localhost:{valid}/x\n    interval: 1h\n",
        cert("valid", valid, "    group: edge\n"),
        cert("self-signed", self_signed, ""),
        cert("expired", expired, ""),
        cert("wrong-name", wrong_name, ""),
        cert("expiring", expiring, "    warn_days: [7]\n"),
        cert("refused", refused, ""),
    );
    let d = Daemon::start_with(
        &config,
        &[("MAINTENANT_EXTRA_CA_FILE", ca_file.to_str().unwrap())],
    )
    .await;
    let mcp = d.mcp().await;

    let v = checked(&mcp, "valid").await;
    assert_eq!(v["status"], "valid", "{v:#}");
    assert_eq!(v["id"], "certificate/valid");
    assert_eq!(v["group"], "edge");
    assert_eq!(v["chain_valid"], true);
    assert_eq!(v["hostname_match"], true);
    assert_eq!(v["sans"], json!(["localhost"]));
    assert!(
        v["issuer"].as_str().unwrap().contains("maintenant test CA"),
        "{v}"
    );
    let days = v["days_left"].as_i64().unwrap();
    assert!((363..=365).contains(&days), "{days}");
    assert_eq!(v["desired"]["spec"]["port"], valid);
    assert_eq!(v["desired"]["spec"]["warn_days"], json!([30, 14, 7, 3, 1]));
    assert_eq!(v["desired"]["origin"]["line"], 2);
    assert!(
        v["observed"]["last_check"]["subject"]
            .as_str()
            .unwrap()
            .contains("localhost")
    );

    let s = checked(&mcp, "self-signed").await;
    assert_eq!(s["status"], "invalid", "{s:#}");
    assert_eq!(s["chain_valid"], false);
    assert_eq!(s["hostname_match"], true);
    assert!(
        s["observed"]["error"]
            .as_str()
            .unwrap()
            .starts_with("self-signed certificate"),
        "{s}"
    );

    let e = checked(&mcp, "expired").await;
    assert_eq!(e["status"], "expired", "{e:#}");
    assert!(e["days_left"].as_i64().unwrap() < 0);

    let w = checked(&mcp, "wrong-name").await;
    assert_eq!(w["status"], "invalid", "{w:#}");
    assert_eq!(w["hostname_match"], false);
    assert_eq!(w["chain_valid"], true, "the chain itself is fine");

    let x = checked(&mcp, "expiring").await;
    assert_eq!(x["status"], "expiring", "{x:#}");
    assert_eq!(x["days_left"], 5);
    assert_eq!(x["observed"]["last_check"]["threshold_days"], 7);

    let r = checked(&mcp, "refused").await;
    assert_eq!(
        r["status"], "error",
        "a refused port is an error, not expired: {r:#}"
    );
    assert!(
        r["observed"]["error"].as_str().unwrap().contains("refused"),
        "{r}"
    );
    assert!(r["days_left"].is_null());

    // HTTPS endpoints get their certificate watched; an explicit monitor
    // of the same host:port wins (none is derived for `same`).
    let derived_name = format!("localhost:{behind_endpoint}");
    let derived = checked(&mcp, &derived_name).await;
    assert_eq!(derived["status"], "valid", "{derived:#}");
    assert_eq!(derived["group"], "front");
    assert_eq!(derived["desired"]["spec"]["derived_from"], "endpoint/web");
    assert_eq!(
        derived["desired"]["origin"]["line"], 29,
        "the endpoint's line"
    );
    let all = mcp
        .ok("list_certificates", json!({"detail": "full", "limit": 500}))
        .await;
    assert_eq!(all["total"], 7, "six declared + one derived: {all:#}");

    // Filters and paging.
    let soon = mcp
        .ok(
            "list_certificates",
            json!({"detail": "full", "expiring_within_days": 10}),
        )
        .await;
    let mut names: Vec<&str> = soon["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["expired", "expiring"]);
    let p1 = mcp
        .ok("list_certificates", json!({"detail": "full", "limit": 4}))
        .await;
    assert_eq!(
        (p1["items"].as_array().unwrap().len(), p1["total"].as_u64()),
        (4, Some(7))
    );
    let p2 = mcp
        .ok(
            "list_certificates",
            json!({"detail": "full", "limit": 4, "cursor": p1["next_cursor"]}),
        )
        .await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 3);
    assert!(p2.get("next_cursor").is_none());

    // Alerts: expiring (threshold 7), expired, invalid x2; nothing for the refused port.
    let alerts = wait_for("four certificate alerts", T, async || {
        let a = mcp
            .ok(
                "list_alerts",
                json!({"detail": "full", "source": "certificate"}),
            )
            .await;
        (a["total"] == 4).then_some(a)
    })
    .await;
    let by_entity = |id: &str| -> Value {
        alerts["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["entity"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no alert for {id}: {alerts:#}"))
    };
    let a = by_entity("certificate/expiring");
    assert_eq!(
        (a["type"].as_str(), a["threshold_days"].as_u64()),
        (Some("certificate_expiring"), Some(7))
    );
    assert_eq!(
        a["severity"], "critical",
        "7 is the smallest threshold: the monitor's severity"
    );
    assert_eq!(
        by_entity("certificate/expired")["type"],
        "certificate_expired"
    );
    assert_eq!(
        by_entity("certificate/self-signed")["type"],
        "certificate_invalid"
    );
    assert_eq!(
        by_entity("certificate/wrong-name")["type"],
        "certificate_invalid"
    );
    let crit = mcp
        .ok(
            "list_alerts",
            json!({"detail": "full", "severity": "warning", "source": "certificate"}),
        )
        .await;
    assert_eq!(crit["total"], 0);

    // The reconciler restarts a changed certificate monitor and stops a
    // removed one; a removed monitor's alerts resolve.
    let task = |row: &Value| row["observed"]["task"]["task_id"].as_u64().unwrap();
    let before_valid = task(&v);
    let before_wrong = task(&w);
    let changed = config
        .replace(&cert("expiring", expiring, "    warn_days: [7]\n"), "")
        .replace(
            &cert("wrong-name", wrong_name, ""),
            &cert("wrong-name", wrong_name, "    warn_days: [10]\n"),
        );
    d.write_atomic(&changed);
    wait_for("the removed monitor's alert to resolve", T, async || {
        let a = mcp
            .ok(
                "list_alerts",
                json!({"detail": "full", "source": "certificate/expiring", "active_only": false}),
            )
            .await;
        (a["items"][0]["status"] == "resolved").then_some(())
    })
    .await;
    let all = mcp
        .ok("list_certificates", json!({"detail": "full", "limit": 500}))
        .await;
    assert_eq!(all["total"], 6);
    let w2 = certificate(&mcp, "wrong-name").await.unwrap();
    assert_ne!(task(&w2), before_wrong, "changed spec: restarted");
    assert_eq!(w2["desired"]["spec"]["warn_days"], json!([10]));
    let v2 = certificate(&mcp, "valid").await.unwrap();
    assert_eq!(task(&v2), before_valid, "unchanged: same task");
}

#[tokio::test]
async fn invalid_certificate_config_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.yaml");
    std::fs::write(
        &f,
        "certificates:\n  - name: a\n    host: https://example.com\n    warn_days: [7, 0]\n  - name: b\n    host: example.com\n    porte: 443\n",
    )
    .unwrap();
    let out = std::process::Command::new(common::BIN)
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("m.yaml:7:5: certificates[1]: unknown field `porte`"),
        "{text}"
    );
    assert!(text.contains("did you mean `port`?"), "{text}");
    std::fs::write(
        &f,
        "certificates:\n  - name: a\n    host: https://example.com\n    warn_days: [7, 0]\n",
    )
    .unwrap();
    let out = std::process::Command::new(common::BIN)
        .arg("check-config")
        .arg(&f)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("m.yaml:3:11: host \"https://example.com\" must be a bare host name"),
        "{text}"
    );
    assert!(
        text.contains("m.yaml:4:16: warn_days must be at least 1"),
        "{text}"
    );
}

/// `pause_monitor` works on certificates too: a paused one is not checked
/// (its last check stops moving) and says so, until `resume_monitor`.
#[tokio::test]
async fn a_paused_certificate_is_not_checked_until_resumed() {
    let now = OffsetDateTime::now_utc();
    let (chain, key) = leaf(
        &["localhost"],
        now - time::Duration::days(1),
        now + time::Duration::days(90),
        None,
    );
    let port = tls_server(chain, key).await;
    let d = Daemon::start(&format!(
        "certificates:\n  - name: local\n    host: localhost\n    port: {port}\n    interval: 1s\n"
    ))
    .await;
    let mcp = d.mcp().await;
    checked(&mcp, "local").await;

    let paused = mcp
        .ok(
            "pause_monitor",
            json!({"monitor_type": "certificate", "monitor_id": "certificate/local"}),
        )
        .await;
    assert_eq!(paused["paused"], true, "{paused:#}");
    assert!(
        paused["monitor"]["observed"]["paused_at"].is_string(),
        "{paused:#}"
    );
    // A check already in flight may still land; after that, nothing moves.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let frozen = certificate(&mcp, "local").await.unwrap()["observed"]["last_check"]["at"].clone();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let row = certificate(&mcp, "local").await.unwrap();
    assert_eq!(
        row["observed"]["last_check"]["at"], frozen,
        "not checked while paused: {row:#}"
    );
    assert!(
        row["observed"]["note"].as_str().unwrap().contains("paused"),
        "{row:#}"
    );
    // Paused, as paused endpoints and heartbeats say it: the status, since
    // when, and the status filter finds it.
    assert_eq!(row["status"], "paused", "{row:#}");
    assert_eq!(row["observed"]["status"], "paused", "{row:#}");
    assert_eq!(
        row["observed"]["since"], row["observed"]["paused_at"],
        "{row:#}"
    );
    // The last check keeps its own verdict (`invalid` here: the test CA is
    // not trusted), and the filter on that verdict no longer finds it.
    let verdict = row["observed"]["last_check"]["status"].clone();
    assert_eq!(verdict, "invalid", "the last check stays: {row:#}");
    let found = mcp
        .ok("list_certificates", json!({"status": "paused"}))
        .await;
    assert_eq!(found["items"][0]["name"], "local", "{found:#}");
    assert_eq!(
        found["items"][0]["status"], "paused",
        "brief rows too: {found:#}"
    );
    let before = mcp
        .ok("list_certificates", json!({"status": verdict}))
        .await;
    assert_eq!(before["total"], 0, "{before:#}");

    let resumed = mcp
        .ok(
            "resume_monitor",
            json!({"monitor_type": "certificate", "monitor_id": "local"}),
        )
        .await;
    assert_eq!(resumed["paused"], false, "{resumed:#}");
    wait_for("a check after resume", T, async || {
        let row = certificate(&mcp, "local").await?;
        (row["observed"]["last_check"]["at"] != frozen).then_some(())
    })
    .await;
    let row = certificate(&mcp, "local").await.unwrap();
    assert_eq!(row["observed"]["status"], "invalid", "{row:#}");
    assert!(row["observed"]["since"].is_string(), "{row:#}");
}
