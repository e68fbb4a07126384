//! Shared test harness: the real `maintenant` binary, a real MCP client
//! (rmcp), and real HTTP/TCP servers on 127.0.0.1.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;

pub mod fake_kube;

pub const BIN: &str = env!("CARGO_BIN_EXE_maintenant");

/// Install the crypto provider the binary also uses (reqwest is built without one).
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A free TCP port on 127.0.0.1 (bound and released; fine for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Poll `f` until it returns `Some`, at most `timeout`.
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running daemon in its own temp dir, killed on drop.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub child: tokio::process::Child,
    pub config: PathBuf,
    pub db: PathBuf,
}

impl Daemon {
    /// Start the daemon with `monitors` as `conf/monitors.yaml`.
    pub async fn start(monitors: &str) -> Daemon {
        Self::start_with(monitors, &[]).await
    }

    pub async fn start_with(monitors: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf");
        std::fs::create_dir_all(&conf).unwrap();
        let config = conf.join("monitors.yaml");
        std::fs::write(&config, monitors).unwrap();
        let db = dir.path().join("db");
        Self::spawn(dir, config, db, env).await
    }

    pub async fn spawn(
        dir: tempfile::TempDir,
        config: PathBuf,
        db: PathBuf,
        env: &[(&str, &str)],
    ) -> Daemon {
        init();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.env("MAINTENANT_DB", &db)
            .env("MAINTENANT_CONFIG", &config)
            .env("MAINTENANT_ADDR", format!("127.0.0.1:{port}"))
            .env("MAINTENANT_MCP", "true")
            .env("MAINTENANT_LOG", "info,maintenant=debug")
            // Tests poll fast from one IP; tests/auth.rs turns the limit on.
            .env("MAINTENANT_RATE_LIMIT_PER_MINUTE", "0")
            // No Docker unless a test asks (a host socket would change get_health).
            .env("MAINTENANT_DOCKER", "false")
            // Never a developer's cluster (KUBECONFIG): Kubernetes tests turn it on.
            .env("MAINTENANT_KUBERNETES", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start maintenant");
        let d = Daemon {
            dir,
            port,
            child,
            config,
            db,
        };
        let url = format!("http://127.0.0.1:{port}/healthz");
        wait_for(
            "the daemon's /healthz",
            Duration::from_secs(20),
            async || {
                reqwest::get(&url)
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            },
        )
        .await;
        d
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What Kubernetes and Compose send to stop it.
    pub fn sigterm(&self) {
        let pid = self.child.id().expect("the daemon runs") as libc::pid_t;
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "SIGTERM sent");
    }

    pub async fn mcp(&self) -> Mcp {
        let transport = StreamableHttpClientTransport::from_uri(self.url("/mcp"));
        Mcp(().serve(transport).await.expect("MCP over HTTP connects"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Replace the monitors file in place (same inode).
    pub fn write_in_place(&self, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&self.config)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f.sync_all().unwrap();
    }

    /// Replace the monitors file by writing a temp file and renaming it over
    /// (what editors and GitOps tools do).
    pub fn write_atomic(&self, text: &str) {
        let tmp = self.config.with_extension("yaml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.config).unwrap();
    }
}

/// An MCP client session.
pub struct Mcp(pub RunningService<RoleClient, ()>);

/// A tool's answer.
#[derive(Debug)]
pub struct Answer {
    pub is_error: bool,
    pub structured: Value,
    pub text: String,
}

impl Mcp {
    pub async fn call(&self, tool: &str, args: Value) -> Answer {
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let Value::Object(map) = args {
            params = params.with_arguments(map);
        }
        let r = self
            .0
            .call_tool(params)
            .await
            .unwrap_or_else(|e| panic!("{tool} failed at the protocol level: {e}"));
        let text = r
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect::<Vec<_>>()
            .join("\n");
        Answer {
            is_error: r.is_error.unwrap_or(false),
            structured: r.structured_content.clone().unwrap_or(Value::Null),
            text,
        }
    }

    /// Call a tool that must succeed; return its structured content.
    pub async fn ok(&self, tool: &str, args: Value) -> Value {
        let a = self.call(tool, args).await;
        assert!(!a.is_error, "{tool} returned an error: {}", a.text);
        assert_eq!(
            serde_json::from_str::<Value>(&a.text).unwrap(),
            a.structured,
            "text and structuredContent agree"
        );
        a.structured
    }

    /// The list_endpoints row of `name`.
    pub async fn endpoint(&self, name: &str) -> Option<Value> {
        let page = self
            .ok(
                "list_endpoints",
                serde_json::json!({"detail": "full", "name": name, "limit": 500}),
            )
            .await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
    }

    /// Wait until endpoint `name` shows `status`.
    pub async fn wait_status(&self, name: &str, status: &str, timeout: Duration) -> Value {
        wait_for(&format!("{name} to be {status}"), timeout, async || {
            self.endpoint(name)
                .await
                .filter(|r| r["observed"]["status"] == status)
        })
        .await
    }
}

/// A real HTTP server on 127.0.0.1 whose answers a test controls.
#[derive(Clone)]
pub struct Target {
    pub port: u16,
    pub status: Arc<AtomicU16>,
    pub body: Arc<Mutex<String>>,
    pub delay_ms: Arc<AtomicU64>,
    hits: Arc<Mutex<HashMap<String, u64>>>,
}

impl Target {
    pub async fn start() -> Target {
        init();
        use axum::extract::State;
        use axum::http::{StatusCode, Uri};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let t = Target {
            port: listener.local_addr().unwrap().port(),
            status: Arc::new(AtomicU16::new(200)),
            body: Arc::new(Mutex::new("{\"status\":\"UP\"}".into())),
            delay_ms: Arc::new(AtomicU64::new(0)),
            hits: Arc::default(),
        };
        let app = axum::Router::new().fallback(async |State(t): State<Target>, uri: Uri| {
            *t.hits
                .lock()
                .unwrap()
                .entry(uri.path().to_owned())
                .or_insert(0) += 1;
            let delay = t.delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let status = StatusCode::from_u16(t.status.load(Ordering::Relaxed)).unwrap();
            (status, t.body.lock().unwrap().clone())
        });
        let app = app.with_state(t.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        t
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn set_status(&self, s: u16) {
        self.status.store(s, Ordering::Relaxed);
    }

    pub fn set_body(&self, b: &str) {
        *self.body.lock().unwrap() = b.to_owned();
    }

    pub fn hits(&self, path: &str) -> u64 {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}
