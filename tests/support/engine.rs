//! A real Docker engine for the tests: the one `MAINTENANT_TEST_DOCKER` names
//! (set by `.ci/run` after `tests/support/dockerd.sh`), else one started here
//! with that script. Without an engine a test prints why and skips, except
//! under CI (`CI=true`), where it fails.
#![allow(dead_code)]

use std::process::Command;
use std::sync::OnceLock;

pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/dockerd.sh");
pub const IMAGE: &str = "test/busybox:local";

#[derive(Clone)]
pub struct Engine {
    /// `unix:///.../docker.sock`
    pub host: String,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The engine, or `None` (with the reason printed) when it cannot start.
pub fn engine() -> Option<Engine> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    let r = ENGINE.get_or_init(|| {
        // The script is idempotent: it only starts the engine (on the
        // socket's folder) when it does not answer, e.g. after a test that
        // stopped it failed half-way.
        let host = match std::env::var("MAINTENANT_TEST_DOCKER") {
            Ok(h) if !h.is_empty() => match h
                .strip_prefix("unix://")
                .and_then(|s| s.strip_suffix("/docker.sock"))
            {
                Some(dir) => start(Some(dir))?,
                None => h,
            },
            _ => start(None)?,
        };
        let e = Engine { host };
        e.try_docker(&["version", "--format", "{{.Server.Version}}"])
            .map_err(|err| format!("the engine at {} does not answer: {err}", e.host))?;
        Ok(e)
    });
    match r {
        Ok(e) => Some(e.clone()),
        Err(why) if in_ci() => panic!("CI=true and no Docker engine: {why}"),
        Err(why) => {
            eprintln!(
                "SKIPPED: no Docker engine ({why}). Install docker.io and busybox-static (Debian) and run as root, or set MAINTENANT_TEST_DOCKER."
            );
            None
        }
    }
}

fn start(dir: Option<&str>) -> Result<String, String> {
    let out = Command::new("bash")
        .arg(SCRIPT)
        .args(dir)
        .output()
        .map_err(|e| format!("cannot run {SCRIPT}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{SCRIPT} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("export MAINTENANT_TEST_DOCKER="))
        .map(str::to_owned)
        .ok_or_else(|| format!("{SCRIPT} printed no socket: {stdout}"))
}

impl Engine {
    pub fn try_docker(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .output()
            .map_err(|e| format!("cannot run docker: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Run a docker CLI command that must succeed.
    pub fn docker(&self, args: &[&str]) -> String {
        self.try_docker(args)
            .unwrap_or_else(|e| panic!("docker {args:?} failed: {e}"))
    }

    /// Start a busybox httpd on 127.0.0.1:`port` (host network) with `labels`,
    /// after printing a line to stdout and one to stderr. Returns the id.
    pub fn run_httpd(
        &self,
        name: &str,
        port: u16,
        labels: &[(&str, String)],
        extra: &[&str],
    ) -> String {
        let script = format!(
            "echo ok > /www/index.html; echo hello-stdout; echo hello-stderr >&2; exec httpd -f -p 127.0.0.1:{port} -h /www"
        );
        let mut args: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--name".into(),
            name.into(),
            "--network".into(),
            "host".into(),
        ];
        for (k, v) in labels {
            args.push("--label".into());
            args.push(format!("{k}={v}"));
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.extend([IMAGE.to_owned(), "sh".into(), "-c".into(), script]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.docker(&refs)
    }

    /// The folder of an engine started by dockerd.sh (socket, pidfile, data).
    pub fn dir(&self) -> Option<std::path::PathBuf> {
        let sock = self.host.strip_prefix("unix://")?;
        let dir = std::path::Path::new(sock).parent()?.to_path_buf();
        // dockerd removes its pidfile when it stops; the script's log stays.
        dir.join("dockerd.log").exists().then_some(dir)
    }

    /// Stop the engine (SIGTERM to the dockerd that dockerd.sh started) and
    /// wait until it no longer answers.
    pub fn stop_engine(&self) {
        let dir = self.dir().expect("an engine started by dockerd.sh");
        let pid = std::fs::read_to_string(dir.join("dockerd.pid")).unwrap();
        let st = Command::new("kill")
            .args(["-TERM", pid.trim()])
            .status()
            .unwrap();
        assert!(st.success(), "kill dockerd {pid}");
        for _ in 0..300 {
            if self.try_docker(&["version"]).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("dockerd still answers 30s after SIGTERM");
    }

    /// Start the engine again on the same folder.
    pub fn start_engine(&self) {
        let dir = self.dir().expect("an engine started by dockerd.sh");
        let out = Command::new("bash").arg(SCRIPT).arg(&dir).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn remove(&self, name: &str) {
        let _ = self.try_docker(&["rm", "-f", name]);
    }
}

/// Starts the engine again when dropped (a test that stops it may fail before it restarts it).
pub struct Restart(pub Engine);

impl Drop for Restart {
    fn drop(&mut self) {
        if self.0.try_docker(&["version"]).is_err() {
            self.0.start_engine();
        }
    }
}

/// Removes the named containers when dropped (also when a test fails).
pub struct Cleanup(pub Engine, pub Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for n in &self.1 {
            self.0.remove(n);
        }
    }
}

/// A Docker engine of this test's own (tests/support/dockerd.sh on a fresh
/// folder), for tests that stop and start it: never the engine that
/// `MAINTENANT_TEST_DOCKER` names, which other tests (and people) share.
/// Dropping it stops that dockerd (by its own pidfile) and removes its folder.
pub struct PrivateEngine {
    pub engine: Engine,
    dir: std::path::PathBuf,
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// Start a private engine in `/tmp/maintenant-dockerd-TAG-PID`, or say why not:
/// dockerd must be installed and we must be root. Under CI (`CI=true`) the
/// reason is a failure instead.
pub fn private_engine(tag: &str) -> Option<PrivateEngine> {
    let why = if !on_path("dockerd") {
        Some(
            "dockerd is not installed (Debian: apt-get install docker.io busybox-static)"
                .to_owned(),
        )
    } else if !on_path("docker") {
        Some("the docker CLI is not installed".to_owned())
    } else if unsafe { libc::geteuid() } != 0 {
        Some("a private dockerd needs root".to_owned())
    } else {
        None
    };
    if let Some(why) = why {
        if in_ci() {
            panic!("CI=true and no private Docker engine can be started: {why}");
        }
        eprintln!("SKIPPED: cannot start a private Docker engine: {why}");
        return None;
    }
    let dir = std::path::PathBuf::from(format!(
        "/tmp/maintenant-dockerd-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    // Short paths: dockerd's sockets live under this folder (108-byte limit).
    let guard = PrivateEngine {
        engine: Engine {
            host: format!("unix://{}/docker.sock", dir.display()),
        },
        dir,
    };
    match start(Some(guard.dir.to_str().expect("a UTF-8 path"))) {
        Ok(host) => assert_eq!(host, guard.engine.host),
        // dockerd is installed and we are root: not starting is a failure
        // (the guard stops whatever half-started).
        Err(e) => panic!("the private Docker engine did not start: {e}"),
    }
    Some(guard)
}

/// Mount points under `dir`, deepest first (from /proc/self/mountinfo).
fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    let mut out: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_owned)
        .collect();
    out.sort_by_key(|m| std::cmp::Reverse(m.len()));
    out
}

/// The process is gone (or a zombie nobody reaped yet).
fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `PID (comm) STATE ...`; comm may hold spaces, so split after `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        // Only the dockerd this folder's pidfile names: the one we started.
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("dockerd.pid"))
            && let Ok(pid) = pid.trim().parse::<i32>()
            && pid > 1
        {
            unsafe { libc::kill(pid, libc::SIGTERM) };
            for _ in 0..300 {
                if exited(pid) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        // Its data only once it is gone. dockerd leaves `exec/netns/default`
        // bind-mounted (nsfs): unmount what is under our folder first.
        if self.engine.try_docker(&["version"]).is_err() {
            for mount in mounts_under(&self.dir) {
                if let Ok(c) = std::ffi::CString::new(mount) {
                    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
                }
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
