//! What the daemon does once a write has failed: probe the disk every
//! second, recover in place when it can, exit for a restart when it cannot.
//!
//! **Why exit rather than reopen.** sled 0.34 keeps the first I/O error of
//! its log (a full disk, typically) and returns it from every later call,
//! for as long as the `Db` lives: the daemon answered 503 to every
//! ping for 40 s after space was back, and would have forever. Reopening in
//! the process would mean replacing every `sled::Tree` held by the alert
//! engine, the status page, the container history, the update scans and the
//! heartbeat hub while they run; a restart does exactly that, and sled's
//! recovery at open is the path its authors test. Nothing acknowledged is
//! lost by exiting: a ping is answered 2xx only after its batch was flushed
//! and fsynced, and once sled has met the error every later write fails
//! (its log reservations return it), so no tool reports a change it keeps
//! in memory only.
//!
//! So, once a write or flush fails (see [`super::health`]):
//! - every [`PROBE_EVERY`] the watchdog writes a key to sled and flushes it,
//!   and flushes the history and day files and writes, syncs and removes a
//!   [`PROBE_BYTES`] file beside them (is there space?);
//! - both pass: the failure was in the files (sled still writes), they write
//!   again, and health is `ok` again, in place;
//! - sled fails while the files pass: space is back but sled will never
//!   write again: exit with [`EXIT_CODE`] now, so the supervisor restarts
//!   the daemon within seconds of the space coming back;
//! - both fail (the disk is still full): stay up, degraded, `/healthz` 503,
//!   until space is back, or until the failure is `exit_after` old
//!   (`MAINTENANT_STORE_EXIT_AFTER`) so a supervisor without a liveness probe
//!   sees it too.
//!
//! Without a failure it only asks sled to flush every [`IDLE_CHECK`] (a
//! no-op when nothing is dirty), which returns sled's background flush
//! error, if any, when nothing else writes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::health::StoreFailure;
use super::{Store, StoreError};

/// How often the disk is probed while the store is failing.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How often sled is asked for a background error while all is well.
pub const IDLE_CHECK: Duration = Duration::from_secs(5);
/// The size of the probe file: more than sled's 512 KiB log segment, so
/// "there is space" means sled has room for a segment after a restart.
pub const PROBE_BYTES: usize = 1024 * 1024;
pub use super::health::EXIT_CODE;

/// The probe file, in the database directory (removed at open if left).
pub fn probe_path(db: &Path) -> PathBuf {
    db.join("space-probe.tmp")
}

/// A write that sled must make durable.
fn probe_sled(store: &Store) -> Result<(), StoreError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    store.db.insert(b"maintenant-probe", &now.to_le_bytes())?;
    store.db.flush()?;
    Ok(())
}

/// The files beside sled write, and the disk has room.
fn probe_files(store: &Store) -> Result<(), StoreError> {
    store.history.flush()?;
    store.days.sync().map_err(StoreError::Days)?;
    let path = probe_path(&store.path);
    let written = (|| {
        let mut f = std::fs::File::create(&path)?;
        f.write_all(&vec![0u8; PROBE_BYTES])?;
        f.sync_data()
    })();
    let _ = std::fs::remove_file(&path);
    written.map_err(StoreError::History)
}

/// What one probe says.
#[derive(Debug, PartialEq)]
enum Verdict {
    Recovered,
    StillFailing,
    GiveUp(String),
}

fn judge(
    sled: Result<(), StoreError>,
    files: Result<(), StoreError>,
    failure: Option<&StoreFailure>,
    exit_after: Option<Duration>,
) -> Verdict {
    match (sled, files) {
        (Ok(()), Ok(())) => Verdict::Recovered,
        (Err(e), Ok(())) => Verdict::GiveUp(format!(
            "sled cannot write although the disk can ({e}): sled refuses every call after an I/O error, until the process restarts"
        )),
        (_, Err(e)) => {
            let old = failure.map_or(Duration::ZERO, |f| {
                (time::OffsetDateTime::now_utc() - f.since)
                    .try_into()
                    .unwrap_or_default()
            });
            match exit_after {
                Some(limit) if old >= limit => Verdict::GiveUp(format!(
                    "the database has not written for {}s ({e}; MAINTENANT_STORE_EXIT_AFTER is {}s)",
                    old.as_secs(),
                    limit.as_secs()
                )),
                _ => Verdict::StillFailing,
            }
        }
    }
}

/// Watch the store until it gives up (see the module doc). `exit_after`
/// `None` waits for space however long it takes.
pub async fn run(store: Store, exit_after: Option<Duration>) {
    let health = store.health().clone();
    loop {
        if !health.is_failing() {
            health.wait_failure(IDLE_CHECK).await;
            if !health.is_failing() {
                let s = store.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    s.report(s.db.flush().map(|_| ()).map_err(StoreError::from))
                })
                .await;
                continue;
            }
        }
        tokio::time::sleep(PROBE_EVERY).await;
        let s = store.clone();
        let Ok((sled, files)) =
            tokio::task::spawn_blocking(move || (probe_sled(&s), probe_files(&s))).await
        else {
            continue;
        };
        match judge(sled, files, health.failure().as_ref(), exit_after) {
            Verdict::Recovered => {
                if let Some(f) = health.recovered() {
                    let unlogged = crate::repeated::STORE_ERRORS.reset_all();
                    tracing::info!(
                        part = f.part.as_str(),
                        since = %f.since,
                        failed_writes = f.failed_writes,
                        unlogged_errors = unlogged,
                        "the database writes again"
                    );
                }
            }
            Verdict::StillFailing => {}
            Verdict::GiveUp(reason) => {
                health.give_up(reason);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::health::{ACTION_WAIT, StorePart};

    fn io(msg: &str) -> StoreError {
        StoreError::History(std::io::Error::other(msg.to_owned()))
    }

    #[test]
    fn sled_failing_with_space_back_gives_up_and_a_full_disk_waits() {
        let failure = StoreFailure {
            part: StorePart::Sled,
            error: "No space left on device".into(),
            last_error: None,
            since: time::OffsetDateTime::now_utc() - time::Duration::seconds(20),
            failed_writes: 3,
            action: ACTION_WAIT.into(),
        };
        let f = Some(&failure);
        assert_eq!(judge(Ok(()), Ok(()), f, None), Verdict::Recovered);
        assert!(matches!(
            judge(Err(io("poisoned")), Ok(()), f, None),
            Verdict::GiveUp(r) if r.contains("sled cannot write")
        ));
        assert_eq!(
            judge(Err(io("full")), Err(io("full")), f, None),
            Verdict::StillFailing
        );
        assert_eq!(
            judge(
                Err(io("full")),
                Err(io("full")),
                f,
                Some(Duration::from_secs(60))
            ),
            Verdict::StillFailing
        );
        assert!(matches!(
            judge(Ok(()), Err(io("full")), f, Some(Duration::from_secs(10))),
            Verdict::GiveUp(r) if r.contains("MAINTENANT_STORE_EXIT_AFTER")
        ));
    }
}
