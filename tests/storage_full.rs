//! A full disk, for real: the database on an 8 MiB tmpfs, endpoints checked
//! every second against a real HTTP server on 127.0.0.1, a heartbeat pinged
//! in a loop, then a filler file takes the last byte (issue 25 §1, issue 18
//! §8). Health must say so at once, the logs must not drown, the live state
//! must follow only what was written, and the daemon must come back (exit 75
//! for its supervisor, see docs/storage.md) with every acknowledged ping.
//!
//! Mounting needs root: without it each test prints why and skips (CI runs
//! as root).

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Daemon, Mcp, Target, wait_for};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);
/// What the watchdog's exit code is (`EX_TEMPFAIL`).
const EXIT_TEMPFAIL: i32 = 75;
const ENDPOINTS: usize = 40;

/// An 8 MiB tmpfs in a directory of its own, unmounted on drop (lazily: a
/// killed daemon may still hold a file for a moment).
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount() -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("small-disk");
        std::fs::create_dir_all(&at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(&at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                path: at,
                _dir: dir,
            }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount an 8 MiB tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    /// Take every free byte with a filler file; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.path.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        // 8 MiB in 64 KiB chunks is 128 of them; the bound is a safety net.
        for _ in 0..1024 {
            match f.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        // Whatever is left is smaller than a chunk: take it byte by byte.
        for _ in 0..64 * 1024 {
            if f.write_all(&[0]).is_err() {
                break;
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

fn monitors(target: &Target) -> String {
    let mut y = String::from("endpoints:\n");
    for i in 0..ENDPOINTS {
        y += &format!(
            "  - name: e{i}\n    url: {}\n    interval: 1s\n    timeout: 1s\n",
            target.url("/ok")
        );
    }
    y += "heartbeats:\n  - name: job\n    period: 1h\n    grace: 1h\n";
    y
}

/// Pings `/ping/job` one after the other until stopped, counting answers.
struct Pinger {
    acked: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Pinger {
    fn start(url: String) -> Pinger {
        let (acked, refused, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let task = tokio::spawn({
            let (acked, refused, stop) = (acked.clone(), refused.clone(), stop.clone());
            async move {
                let c = reqwest::Client::new();
                let started = Instant::now();
                // Bounded in time as well as by the flag.
                while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(120) {
                    let r = c.post(&url).send().await.expect("the ping is answered");
                    match r.status().as_u16() {
                        200 => acked.fetch_add(1, Ordering::SeqCst),
                        503 => refused.fetch_add(1, Ordering::SeqCst),
                        other => panic!("ping answered {other}: {}", r.text().await.unwrap()),
                    };
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        Pinger {
            acked,
            refused,
            stop,
            task,
        }
    }

    fn acked(&self) -> u64 {
        self.acked.load(Ordering::SeqCst)
    }

    fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// Stop after the ping in flight; (acknowledged, refused).
    async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        let counts = (self.acked.clone(), self.refused.clone());
        self.task.await.unwrap();
        (
            counts.0.load(Ordering::SeqCst),
            counts.1.load(Ordering::SeqCst),
        )
    }
}

async fn job(mcp: &Mcp) -> Value {
    wait_for("heartbeat job to be listed", T, async || {
        let page = mcp.ok("list_heartbeats", json!({"detail": "full"})).await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "job")
            .cloned()
    })
    .await
}

async fn ready(mcp: &Mcp) {
    wait_for("every monitor to run", T, async || {
        let h = mcp.ok("get_health", json!({})).await;
        (h["desired"]["monitors"]["endpoint"] == ENDPOINTS as u64 && h["drift"]["in_sync"] == true)
            .then_some(())
    })
    .await;
}

async fn healthz(d: &Daemon) -> (u16, Value) {
    let r = reqwest::get(d.url("/healthz"))
        .await
        .expect("/healthz answers");
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Fill the disk under a running daemon and wait until it says so, on
/// every surface: a ping answered 503, `/healthz` 503, get_health degraded.
/// Returns the filler file (remove it to free the space).
async fn fill_and_see_it(d: &Daemon, mcp: &Mcp, disk: &Tmpfs, pinger: &Pinger) -> PathBuf {
    let filler = disk.fill();
    wait_for("a ping answered 503", T, async || {
        (pinger.refused() > 0).then_some(())
    })
    .await;
    let (code, body) = wait_for("/healthz to answer 503", T, async || {
        Some(healthz(d).await).filter(|(code, _)| *code == 503)
    })
    .await;
    assert_eq!(body["writable"], false, "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert!(
        body["store_failure"]["error"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "/healthz names the cause: {code} {body}"
    );
    let h = mcp.ok("get_health", json!({})).await;
    assert_eq!(h["status"], "degraded", "{h}");
    let db = &h["database"];
    assert_eq!(db["writable"], false, "{db}");
    assert!(
        db["failure"]["error"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "{db}"
    );
    assert!(
        ["sled", "history", "days"].contains(&db["failure"]["part"].as_str().unwrap()),
        "{db}"
    );
    assert!(db["failure"]["since"].is_string(), "{db}");
    assert!(
        db["failure"]["action"].as_str().unwrap().contains("75"),
        "{db}"
    );
    filler
}

fn lines_with(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// Wait for the daemon's exit, at most `timeout`; its exit code.
async fn exit_code(d: &mut Daemon, timeout: Duration) -> Option<i32> {
    let status = tokio::time::timeout(timeout, d.child.wait())
        .await
        .unwrap_or_else(|_| panic!("the daemon still runs after {timeout:?}:\n{}", d.log()))
        .unwrap();
    status.code()
}

/// The daemon with its database on the tmpfs (its monitors file and log in
/// a temporary folder on the real disk), checking `target`.
async fn start_on(disk: &Tmpfs, target: &Target, env: &[(&str, &str)]) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let config = conf.join("monitors.yaml");
    std::fs::write(&config, monitors(target)).unwrap();
    Daemon::spawn(dir, config, disk.path.join("db"), env).await
}

async fn restart(d: Daemon) -> Daemon {
    let Daemon {
        dir, config, db, ..
    } = d;
    Daemon::spawn(dir, config, db, &[]).await
}

#[tokio::test]
async fn a_full_disk_degrades_health_at_once_and_the_restart_keeps_every_acknowledged_ping() {
    let Some(disk) = Tmpfs::mount() else {
        return;
    };
    let target = Target::start().await;
    // Long enough that only "space is back" makes it exit.
    let mut d = start_on(&disk, &target, &[("MAINTENANT_STORE_EXIT_AFTER", "10m")]).await;
    let mcp = d.mcp().await;
    ready(&mcp).await;
    mcp.wait_status("e0", "up", T).await;

    let pinger = Pinger::start(d.url("/ping/job"));
    wait_for("a few acknowledged pings", T, async || {
        (pinger.acked() >= 5).then_some(())
    })
    .await;
    let filler = fill_and_see_it(&d, &mcp, &disk, &pinger).await;
    let failing_from = Instant::now();

    // Checks keep running; what they found is not applied (not written).
    let frozen = mcp.endpoint("e0").await.unwrap()["observed"]["checks_total"].clone();
    let hits = target.hits("/ok");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        target.hits("/ok") >= hits + ENDPOINTS as u64,
        "checks kept running"
    );
    assert_eq!(
        mcp.endpoint("e0").await.unwrap()["observed"]["checks_total"],
        frozen,
        "a check result that could not be written changes no live state"
    );

    // Logs: one line per interval and kind, the next one with its count.
    let counted = wait_for("a store error line with a count", T, async || {
        lines_with(&d.log(), "could not store a check result")
            .into_iter()
            .find(|l| l.contains("could not store a check result (x"))
    })
    .await;
    let h = mcp.ok("get_health", json!({})).await;
    let failed_writes = h["database"]["failure"]["failed_writes"].as_u64().unwrap();
    let log = d.log();
    let lines = lines_with(&log, "could not store a check result").len() as u64;
    let failing_secs = failing_from.elapsed().as_secs() + 1;
    assert!(
        lines <= failing_secs / 10 + 2,
        "{lines} lines in {failing_secs}s (one per 10s expected):\n{log}"
    );
    assert!(
        failed_writes >= 10 * lines,
        "{failed_writes} failed writes, {lines} lines: not one line per failure"
    );
    assert!(counted.contains("in the last 10s"), "{counted}");

    // The heartbeat's live state holds only the pings answered 200.
    let (acked, refused) = pinger.stop().await;
    assert!(refused > 0);
    let row = job(&mcp).await;
    assert_eq!(
        row["observed"]["pings_total"].as_u64(),
        Some(acked),
        "pings_total follows the acknowledged pings only ({refused} refused): {row}"
    );
    assert_eq!(row["observed"]["status"], "up");

    // Space back: sled still refuses (it keeps its first I/O error), so the
    // daemon exits with 75 for its supervisor.
    std::fs::remove_file(&filler).unwrap();
    let code = exit_code(&mut d, T).await;
    let log = d.log();
    assert_eq!(code, Some(EXIT_TEMPFAIL), "{log}");
    assert!(
        log.contains("exiting for the supervisor to restart maintenant"),
        "{log}"
    );
    assert!(
        !log.contains("failed to flush data to disk"),
        "no flush error per sled tree on the way out:\n{log}"
    );

    // The supervisor's restart, on the same database: every acknowledged
    // ping is there, and the store writes again.
    drop(mcp);
    let d = restart(d).await;
    let mcp = d.mcp().await;
    let row = job(&mcp).await;
    assert_eq!(
        row["observed"]["pings_total"].as_u64(),
        Some(acked),
        "every acknowledged ping survived: {row}"
    );
    let (code, body) = healthz(&d).await;
    assert_eq!((code, &body["writable"]), (200, &json!(true)), "{body}");
    let r = reqwest::Client::new()
        .post(d.url("/ping/job"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        job(&mcp).await["observed"]["pings_total"].as_u64(),
        Some(acked + 1)
    );
    let h = mcp.ok("get_health", json!({})).await;
    assert_eq!(h["database"]["writable"], true, "{h}");
    assert!(h["database"].get("failure").is_none(), "{h}");
    drop(mcp);
    drop(d);
    drop(disk);
}

#[tokio::test]
async fn sigterm_on_a_full_disk_exits_cleanly_and_says_why() {
    let Some(disk) = Tmpfs::mount() else {
        return;
    };
    let target = Target::start().await;
    let mut d = start_on(&disk, &target, &[]).await;
    let mcp = d.mcp().await;
    ready(&mcp).await;

    let pinger = Pinger::start(d.url("/ping/job"));
    wait_for("a few acknowledged pings", T, async || {
        (pinger.acked() >= 3).then_some(())
    })
    .await;
    let filler = fill_and_see_it(&d, &mcp, &disk, &pinger).await;
    let (acked, _) = pinger.stop().await;
    drop(mcp);

    d.sigterm();
    let code = exit_code(&mut d, T).await;
    let log = d.log();
    assert_eq!(code, Some(0), "a clean exit:\n{log}");
    assert!(
        log.contains("shutting down with a database that cannot write"),
        "{log}"
    );
    assert!(!log.contains("failed to flush data to disk"), "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("maintenant: ")),
        "no error on the way out:\n{log}"
    );

    std::fs::remove_file(&filler).unwrap();
    let d = restart(d).await;
    let mcp = d.mcp().await;
    assert_eq!(
        job(&mcp).await["observed"]["pings_total"].as_u64(),
        Some(acked),
        "every acknowledged ping survived"
    );
    drop(mcp);
    drop(d);
    drop(disk);
}

/// A disk that stays full: the daemon gives up after
/// MAINTENANT_STORE_EXIT_AFTER, for a supervisor without a liveness probe.
#[tokio::test]
async fn a_disk_that_stays_full_exits_75_after_store_exit_after() {
    let Some(disk) = Tmpfs::mount() else {
        return;
    };
    let target = Target::start().await;
    let mut d = start_on(&disk, &target, &[("MAINTENANT_STORE_EXIT_AFTER", "5s")]).await;
    let mcp = d.mcp().await;
    ready(&mcp).await;
    let pinger = Pinger::start(d.url("/ping/job"));
    wait_for("an acknowledged ping", T, async || {
        (pinger.acked() >= 1).then_some(())
    })
    .await;
    let filler = fill_and_see_it(&d, &mcp, &disk, &pinger).await;
    let (acked, _) = pinger.stop().await;
    drop(mcp);
    let code = exit_code(&mut d, T).await;
    let log = d.log();
    assert_eq!(code, Some(EXIT_TEMPFAIL), "{log}");
    assert!(log.contains("MAINTENANT_STORE_EXIT_AFTER is 5s"), "{log}");
    assert!(!log.contains("failed to flush data to disk"), "{log}");

    // The supervisor's restart once space is back.
    std::fs::remove_file(&filler).unwrap();
    let d = restart(d).await;
    let mcp = d.mcp().await;
    assert_eq!(
        job(&mcp).await["observed"]["pings_total"].as_u64(),
        Some(acked)
    );
    drop(mcp);
    drop(d);
    drop(disk);
}
