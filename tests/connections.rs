//! Bounded HTTP connections, against the real binary on 127.0.0.1: sockets
//! that never send a byte cannot starve `/healthz` and `/ping`, and are
//! closed after the header timeout.

mod common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{BIN, Daemon, free_port, wait_for};

const MONITORS: &str = "heartbeats:\n  - name: job\n    period: 1h\n    grace: 10m\n";

/// Room for a few hundred test sockets in this process.
fn raise_own_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

async fn idle_sockets(port: u16, n: usize) -> Vec<TcpStream> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    v
}

/// `/healthz` and a ping answer (fresh connections each, like a probe).
async fn probes_answer(healthz: &str, ping: &str) {
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = c.get(healthz).send().await.expect("/healthz answers");
    assert_eq!(r.status(), 200);
    let r = c.get(ping).send().await.expect("/ping answers");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

/// Whether the server closed this socket (EOF or reset) within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    match tokio::time::timeout(within, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_beyond_the_cap_do_not_starve_probes() {
    raise_own_nofile();
    let d = Daemon::start_with(
        MONITORS,
        &[
            ("MAINTENANT_HTTP_MAX_CONNECTIONS", "20"),
            // Long enough that the header timeout does not free the slots.
            ("MAINTENANT_HTTP_HEADER_TIMEOUT", "5m"),
        ],
    )
    .await;
    let held = idle_sockets(d.port, 60).await;
    probes_answer(&d.url("/healthz"), &d.url("/ping/job")).await;
    // A request in flight is never cut for a new connection: a real MCP
    // client keeps working while more idle sockets arrive.
    let mcp = d.mcp().await;
    let more = idle_sockets(d.port, 40).await;
    mcp.call("get_health", serde_json::json!({})).await;
    probes_answer(&d.url("/healthz"), &d.url("/ping/job")).await;
    drop((held, more));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_without_complete_headers_is_closed_after_the_header_timeout() {
    let d = Daemon::start_with(
        MONITORS,
        &[
            ("MAINTENANT_HTTP_HEADER_TIMEOUT", "1s"),
            ("MAINTENANT_HTTP_IDLE_TIMEOUT", "2s"),
        ],
    )
    .await;
    // Never a byte.
    let mut silent = TcpStream::connect(("127.0.0.1", d.port)).await.unwrap();
    // Half a request line (slowloris).
    let mut partial = TcpStream::connect(("127.0.0.1", d.port)).await.unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(15)).await);
    assert!(closed_within(&mut partial, Duration::from_secs(15)).await);

    // A keep-alive connection that answered a request is closed once idle.
    let mut kept = TcpStream::connect(("127.0.0.1", d.port)).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut kept, Duration::from_secs(15)).await);
}

/// The failure as reported: `nofile=256`, 366 idle sockets. The daemon
/// caps itself below the limit, so probes answer and a hot reload can still
/// open the monitors file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nofile_256_three_hundred_idle_sockets_leave_probes_and_reload_working() {
    common::init();
    raise_own_nofile();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("monitors.yaml");
    std::fs::write(&config, MONITORS).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let _child = tokio::process::Command::new("prlimit")
        .arg("--nofile=256:256")
        .arg("--")
        .arg(BIN)
        .env("MAINTENANT_DB", dir.path().join("db"))
        .env("MAINTENANT_CONFIG", &config)
        .env("MAINTENANT_ADDR", format!("127.0.0.1:{port}"))
        .env("MAINTENANT_RATE_LIMIT_PER_MINUTE", "0")
        .env("MAINTENANT_DOCKER", "false")
        .env("MAINTENANT_KUBERNETES", "false")
        .env("MAINTENANT_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_for(
        "the daemon's /healthz",
        Duration::from_secs(20),
        async || {
            reqwest::get(format!("{base}/healthz"))
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        },
    )
    .await;
    let held = idle_sockets(port, 366).await;
    probes_answer(&format!("{base}/healthz"), &format!("{base}/ping/job")).await;
    // Hot reload: a heartbeat added to the file starts answering.
    std::fs::write(
        &config,
        format!("{MONITORS}  - name: added\n    period: 1h\n    grace: 10m\n"),
    )
    .unwrap();
    let c = reqwest::Client::new();
    wait_for(
        "the reloaded heartbeat",
        Duration::from_secs(20),
        async || {
            let r = c.get(format!("{base}/ping/added")).send().await.ok()?;
            (r.status() == 200).then_some(())
        },
    )
    .await;
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap();
    assert!(!log.contains("Too many open files"), "{log}");
    // The cap derived from nofile=256 (a quarter kept for the daemon).
    let plain: String = log
        .replace("\u{1b}[3m", "")
        .replace("\u{1b}[0m", "")
        .replace("\u{1b}[2m", "");
    assert!(plain.contains("max_connections=192"), "{plain}");
    drop(held);
}

/// `initialize` from `from` (a loopback source address): the session id.
async fn open_session(d: &Daemon, from: std::net::IpAddr) -> reqwest::Response {
    let c = reqwest::Client::builder()
        .local_address(from)
        .build()
        .unwrap();
    c.post(d.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .json(&serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "session-flood", "version": "1"}
            }
        }))
        .send()
        .await
        .unwrap()
}

fn session_id(r: &reqwest::Response) -> String {
    r.headers()
        .get("mcp-session-id")
        .unwrap_or_else(|| panic!("no session id: {}", r.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Whether the daemon still knows the session (a notification to it is
/// accepted; to a closed one, 404).
async fn session_alive(d: &Daemon, id: &str) -> bool {
    let r = reqwest::Client::new()
        .post(d.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-session-id", id)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .unwrap();
    match r.status().as_u16() {
        202 | 200 => true,
        404 => false,
        s => panic!("unexpected {s} for session {id}"),
    }
}

#[tokio::test]
async fn mcp_sessions_are_bounded_overall_and_per_client_the_oldest_idle_closed_first() {
    let d = Daemon::start_with(
        MONITORS,
        &[
            ("MAINTENANT_MCP_MAX_SESSIONS", "5"),
            ("MAINTENANT_MCP_MAX_SESSIONS_PER_CLIENT", "3"),
        ],
    )
    .await;
    let a: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let b: std::net::IpAddr = "127.0.0.2".parse().unwrap();

    // A flood of 40 initialize calls from one client: each one is answered,
    // and only its 3 newest sessions stay open.
    let mut flood = Vec::new();
    for _ in 0..40 {
        let r = open_session(&d, a).await;
        assert_eq!(r.status(), 200, "initialize is answered");
        flood.push(session_id(&r));
    }
    for id in &flood[..37] {
        assert!(!session_alive(&d, id).await, "old session {id} was closed");
    }
    for id in &flood[37..] {
        assert!(session_alive(&d, id).await, "newest session {id} stays");
    }

    // Another client gets its own sessions; past the total of 5, the oldest
    // idle session of anyone (the flooder's oldest left) goes first.
    let b1 = session_id(&open_session(&d, b).await);
    let b2 = session_id(&open_session(&d, b).await);
    assert!(session_alive(&d, &b1).await && session_alive(&d, &b2).await);
    // Touching flood[37] makes flood[38] the least recently used.
    assert!(session_alive(&d, &flood[37]).await);
    let b3 = session_id(&open_session(&d, b).await);
    assert!(session_alive(&d, &b3).await);
    assert!(
        !session_alive(&d, &flood[38]).await,
        "least recently used closed"
    );
    assert!(session_alive(&d, &flood[37]).await);
    assert!(session_alive(&d, &flood[39]).await);
    assert!(session_alive(&d, &b1).await);

    // A closed session's client can start again: sessions are not leaked.
    let again = open_session(&d, a).await;
    assert_eq!(again.status(), 200);
    assert!(session_alive(&d, &session_id(&again)).await);
    assert!(
        d.log().contains("closed the MCP session idle the longest"),
        "evictions are logged"
    );
}
