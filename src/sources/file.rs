//! The monitors file (or directory) as a source, hot-reloaded.
//!
//! We watch the *folder*, not the file: editors and GitOps tools replace a
//! file by renaming a new one over it, and a Kubernetes ConfigMap mount swaps
//! a `..data` symlink; a watch on the file itself would be left on the old
//! inode. Events are debounced (bursts become one reload), and a slow poll
//! backs the watcher up on filesystems where inotify says nothing.
//! A file written in place is read once it has settled (no event for
//! `settle`), so the empty or half-written middle of a non-atomic rewrite is
//! never applied; a file replaced by a rename is complete, and is read after
//! the short `debounce` only, so the usual GitOps write stays fast.
//! An invalid reload changes nothing that runs: the last good set stays and
//! the error is reported in the source status (and so in `get_health`).
//! A valid reload that stops most of the file's monitors is applied, and
//! reported as the source's warning.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::ModifyKind;
use notify::{EventKind, RecursiveMode, Watcher};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::config;
use crate::desired::{SourceError, SourceKind, SourceStatus, SourceUpdate, SourceWarning};
use crate::monitor::DeclaredMonitor;

/// A reload that stops more than this many of the file's monitors, and more
/// than half of them, is reported (it is still applied: it is valid).
const MASS_STOP_MIN: usize = 5;

#[derive(Clone)]
pub struct FileSource {
    pub path: PathBuf,
    /// Quiet time after events that replace or remove a file (a rename, a
    /// symlink swap): the new content is already complete.
    pub debounce: Duration,
    /// Quiet time after an in-place write to a monitors file, which may be
    /// half-done (`MAINTENANT_CONFIG_SETTLE`). Zero: `debounce` only.
    pub settle: Duration,
    /// Reload this often even without events (0 disables).
    pub poll: Duration,
    /// Where the `alerting:` section of each valid load is published (hot
    /// reload of notification channels).
    pub alerting: Option<tokio::sync::watch::Sender<Arc<config::model::AlertingSpec>>>,
}

struct State {
    status: SourceStatus,
    /// Parsed items of the last load, so a reload parses only what changed.
    cache: config::LoadCache,
    last_good: Option<Arc<Vec<DeclaredMonitor>>>,
    /// What the last load read; a reload that would read the same bytes is
    /// skipped (the 30 s poll, a `touch`), so it costs a read and a hash, not
    /// a parse of 10k monitors and the memory churn that comes with it.
    last_read: Option<u64>,
}

impl FileSource {
    pub fn new(path: PathBuf) -> Self {
        FileSource {
            path,
            debounce: Duration::from_millis(10),
            settle: Duration::from_millis(250),
            poll: Duration::from_secs(30),
            alerting: None,
        }
    }

    /// Load, publish, then watch and publish every change until `updates` closes.
    pub async fn run(self, updates: mpsc::Sender<SourceUpdate>) {
        let mut state = State {
            status: SourceStatus {
                kind: SourceKind::File,
                location: self.path.display().to_string(),
                generation: 0,
                loaded_at: None,
                monitors: 0,
                last_error: None,
                warning: None,
            },
            last_good: None,
            cache: config::LoadCache::default(),
            last_read: None,
        };
        if let Some(first) = self.reload(&mut state)
            && updates.send(first).await.is_err()
        {
            return;
        }

        let (tx, mut events) = mpsc::unbounded_channel();
        // Held here, so the channel stays open (and the poll keeps running)
        // when no watcher could be set up.
        let _open = tx.clone();
        let watched = watch_dir(&self.path);
        let relevant = Relevant::of(&self.path);
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res
                && !matches!(ev.kind, EventKind::Access(_))
            {
                let _ = tx.send(relevant.classify(&ev));
            }
        })
        .and_then(|mut w| w.watch(&watched, RecursiveMode::NonRecursive).map(|_| w));
        let _watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(dir = %watched.display(), error = %e, "cannot watch the config folder; falling back to polling");
                None
            }
        };

        let poll = if self.poll.is_zero() {
            Duration::from_secs(3600 * 24 * 365)
        } else {
            self.poll
        };
        loop {
            let writing = tokio::select! {
                ev = events.recv() => match ev {
                    Some(change) => change == Change::Write,
                    None => return,
                },
                _ = tokio::time::sleep(poll) => {
                    if fingerprint(&self.path).is_some_and(|f| Some(f) == state.last_read) {
                        continue;
                    }
                    // Changed with no event: it may be a write in progress.
                    true
                }
                _ = updates.closed() => return,
            };
            self.coalesce(&mut events, writing).await;
            if let Some(update) = self.reload(&mut state)
                && updates.send(update).await.is_err()
            {
                return;
            }
        }
    }

    /// Wait until the folder has been quiet for `debounce`, or for `settle`
    /// once an in-place write is among the events, but no longer than
    /// [`Self::max_wait`] in all: a file written without pause is read anyway.
    async fn coalesce(&self, events: &mut mpsc::UnboundedReceiver<Change>, mut writing: bool) {
        let deadline = tokio::time::Instant::now() + self.max_wait();
        loop {
            let quiet = if writing {
                self.settle.max(self.debounce)
            } else {
                self.debounce
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            match tokio::time::timeout(quiet.min(left), events.recv()).await {
                Ok(Some(change)) => writing |= change == Change::Write,
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// The longest a burst of events delays a reload: 8 settles, at least 2 s.
    pub fn max_wait(&self) -> Duration {
        (self.settle * 8).max(Duration::from_secs(2))
    }

    /// Read the file once. Returns what to publish, if anything: `monitors` is
    /// `Some` only when a valid load differs from the last good one; a
    /// status-only update reports an error that appeared, changed or cleared.
    fn reload(&self, state: &mut State) -> Option<SourceUpdate> {
        let read = fingerprint(&self.path);
        if read.is_some() && read == state.last_read {
            return None;
        }
        state.last_read = read;
        let update = self.load(state);
        // The previous declared set and the parse's temporaries are freed now;
        // hand their pages back instead of keeping the peak resident.
        tokio::task::spawn_blocking(crate::memory::release_free_pages);
        update
    }

    fn load(&self, state: &mut State) -> Option<SourceUpdate> {
        let now = OffsetDateTime::now_utc();
        let began = std::time::Instant::now();
        let loaded = config::load_with(&self.path, &mut state.cache);
        let load_ms = began.elapsed().as_secs_f64() * 1000.0;
        match loaded {
            Ok(loaded) => {
                if let Some(tx) = &self.alerting {
                    tx.send_if_modified(|cur| {
                        let changed = **cur != loaded.alerting;
                        if changed {
                            tracing::info!(
                                channels = loaded.alerting.channels.len(),
                                "alerting channels loaded"
                            );
                            *cur = Arc::new(loaded.alerting.clone());
                        }
                        changed
                    });
                }
                let was_error = state.status.last_error.take().is_some();
                let changed = !state
                    .last_good
                    .as_deref()
                    .is_some_and(|last| crate::monitor::same_declarations(last, &loaded.monitors));
                if changed {
                    state.status.generation += 1;
                    state.status.loaded_at = Some(now);
                    state.status.monitors = loaded.monitors.len();
                    tracing::info!(path = %self.path.display(), monitors = loaded.monitors.len(), generation = state.status.generation, load_ms, "monitors file loaded");
                    let previous = state.last_good.as_deref().map_or(&[][..], Vec::as_slice);
                    state.status.warning =
                        mass_stop(previous, &loaded.monitors).map(|message| {
                            tracing::warn!(path = %self.path.display(), "{message}; it is valid and applied (declare them again to bring them back)");
                            SourceWarning { at: now, message }
                        });
                    state.last_good = Some(Arc::new(loaded.monitors));
                } else if was_error {
                    tracing::info!(path = %self.path.display(), "monitors file is valid again; nothing changed");
                }
                (changed || was_error).then(|| SourceUpdate {
                    status: state.status.clone(),
                    monitors: if changed {
                        state.last_good.clone()
                    } else {
                        None
                    },
                })
            }
            Err(errors) => {
                let message = errors.to_string();
                if state
                    .status
                    .last_error
                    .as_ref()
                    .is_some_and(|e| e.message == message)
                {
                    return None;
                }
                tracing::error!(path = %self.path.display(), "invalid monitors file, the last good one keeps running:\n{message}");
                state.status.last_error = Some(SourceError {
                    at: now,
                    message,
                    problems: errors.0.iter().map(ToString::to_string).collect(),
                });
                Some(SourceUpdate {
                    status: state.status.clone(),
                    // Nothing good was ever loaded: declare an empty set so the
                    // desired state still lists this source and its error.
                    monitors: state.last_good.is_none().then(Arc::default),
                })
            }
        }
    }
}

/// The warning for a reload that stops most of the monitors `previous`
/// declared (more than [`MASS_STOP_MIN`] and more than half), if it does.
fn mass_stop(previous: &[DeclaredMonitor], next: &[DeclaredMonitor]) -> Option<String> {
    if previous.len() <= MASS_STOP_MIN {
        return None;
    }
    let kept: std::collections::HashSet<_> = next
        .iter()
        .map(|m| (m.spec.kind(), m.spec.name()))
        .collect();
    let stopped = previous
        .iter()
        .filter(|m| !kept.contains(&(m.spec.kind(), m.spec.name())))
        .count();
    (stopped > MASS_STOP_MIN && stopped * 2 > previous.len()).then(|| {
        format!(
            "the last reload stopped {stopped} of {} monitors",
            previous.len()
        )
    })
}

/// What one watcher event says about the files a load reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Bytes written into a monitors file in place, or one created: it may
    /// be half-written, so it must settle before it is read.
    Write,
    /// A rename over it, a symlink swap, a removal, another file: what the
    /// load would read is already complete.
    Other,
}

/// Which names in the watched folder are monitors files.
enum Relevant {
    /// The config is this one file (by name, in its folder).
    File(Option<std::ffi::OsString>),
    /// The config is a directory: its `*.yaml` / `*.yml` entries.
    Dir,
}

impl Relevant {
    fn of(path: &Path) -> Self {
        if path.is_dir() {
            Relevant::Dir
        } else {
            Relevant::File(path.file_name().map(ToOwned::to_owned))
        }
    }

    fn is_relevant(&self, path: &Path) -> bool {
        let Some(name) = path.file_name() else {
            return false;
        };
        match self {
            Relevant::File(file) => file.as_deref() == Some(name),
            Relevant::Dir => name.to_str().is_some_and(config::is_monitors_file_name),
        }
    }

    fn classify(&self, ev: &notify::Event) -> Change {
        let writes = match ev.kind {
            EventKind::Create(_)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any | ModifyKind::Other) => true,
            // An event the backend could not name: assume the worst.
            EventKind::Any | EventKind::Other => true,
            _ => false,
        };
        if writes && (ev.paths.is_empty() || ev.paths.iter().any(|p| self.is_relevant(p))) {
            Change::Write
        } else {
            Change::Other
        }
    }
}

/// A hash of every name and byte the load would read: the file, or each entry
/// of the directory (symlinks followed, so a ConfigMap `..data` swap counts).
/// `None` when something cannot be read (a monitors file that is not a
/// readable file, such as a dangling link): then the load runs and reports it.
fn fingerprint(path: &Path) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if path.is_dir() {
        let mut names: Vec<PathBuf> = std::fs::read_dir(path)
            .ok()?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .ok()?;
        names.sort();
        for name in names {
            name.hash(&mut h);
            if name.is_file() {
                std::fs::read(&name).ok()?.hash(&mut h);
            } else if name
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(config::is_monitors_file_name)
            {
                return None;
            }
        }
    } else if path.is_file() {
        std::fs::read(path).ok()?.hash(&mut h);
    } else {
        return None;
    }
    Some(h.finish())
}

/// The folder to watch for a config path: the path itself when it is a
/// directory, else its parent.
fn watch_dir(path: &Path) -> PathBuf {
    if path.is_dir() {
        return path.to_path_buf();
    }
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::tests::endpoint;

    fn endpoints(names: impl IntoIterator<Item = usize>) -> Vec<DeclaredMonitor> {
        names
            .into_iter()
            .map(|i| endpoint(&format!("m{i}"), "http://127.0.0.1:1/"))
            .collect()
    }

    #[test]
    fn a_reload_that_stops_most_monitors_is_a_warning() {
        assert_eq!(
            mass_stop(&endpoints(0..102), &endpoints(95..102)).as_deref(),
            Some("the last reload stopped 95 of 102 monitors")
        );
        // Renamed: the old names stop, whatever the new count.
        assert_eq!(
            mass_stop(&endpoints(0..8), &endpoints(100..110)).as_deref(),
            Some("the last reload stopped 8 of 8 monitors")
        );
        // Half or less, or few: not worth a warning.
        assert_eq!(mass_stop(&endpoints(0..20), &endpoints(10..20)), None);
        assert_eq!(mass_stop(&endpoints(0..5), &[]), None);
        assert_eq!(mass_stop(&endpoints(0..9), &endpoints(0..4)), None);
        assert!(mass_stop(&endpoints(0..9), &endpoints(0..3)).is_some());
        assert_eq!(mass_stop(&[], &endpoints(0..100)), None);
    }

    fn event(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn only_in_place_writes_to_a_monitors_file_must_settle() {
        use notify::event::{CreateKind, DataChange, MetadataKind, RenameMode};
        let data = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        let file = Relevant::File(Some("monitors.yaml".into()));
        assert_eq!(
            file.classify(&event(data, "/c/monitors.yaml")),
            Change::Write
        );
        assert_eq!(
            file.classify(&event(
                EventKind::Create(CreateKind::File),
                "/c/monitors.yaml"
            )),
            Change::Write
        );
        // The temp file of an atomic write, then its rename: complete at once.
        assert_eq!(
            file.classify(&event(data, "/c/monitors.yaml.tmp")),
            Change::Other
        );
        assert_eq!(
            file.classify(&event(renamed, "/c/monitors.yaml")),
            Change::Other
        );
        assert_eq!(
            file.classify(&event(
                EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
                "/c/monitors.yaml"
            )),
            Change::Other
        );
        let dir = Relevant::Dir;
        assert_eq!(dir.classify(&event(data, "/c/b.yml")), Change::Write);
        assert_eq!(dir.classify(&event(data, "/c/.b.yaml.swp")), Change::Other);
        assert_eq!(dir.classify(&event(data, "/c/notes.txt")), Change::Other);
        assert_eq!(dir.classify(&event(renamed, "/c/..data")), Change::Other);
    }

    const THREE: &str = "endpoints:\n  - name: a\n    url: http://127.0.0.1:1/a\n  - name: b\n    url: http://127.0.0.1:1/b\n  - name: c\n    url: http://127.0.0.1:1/c\n";

    fn names(u: &SourceUpdate) -> Option<Vec<String>> {
        u.monitors
            .as_ref()
            .map(|m| m.iter().map(|m| m.spec.name().to_owned()).collect())
    }

    async fn next(rx: &mut mpsc::Receiver<SourceUpdate>) -> SourceUpdate {
        tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("an update within 30 s")
            .expect("the source is running")
    }

    fn write_in_place(path: &Path, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[tokio::test]
    async fn a_non_atomic_rewrite_is_read_once_settled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("monitors.yaml");
        std::fs::write(&path, THREE).unwrap();
        let mut source = FileSource::new(path.clone());
        // Far longer than the pauses below, so a slow machine cannot split them.
        source.settle = Duration::from_secs(2);
        let (tx, mut rx) = mpsc::channel(16);
        tokio::spawn(source.run(tx));
        assert_eq!(names(&next(&mut rx).await).unwrap(), ["a", "b", "c"]);

        // Truncate, pause, half the file (valid: a alone), pause, the rest.
        write_in_place(&path, "");
        tokio::time::sleep(Duration::from_millis(50)).await;
        write_in_place(&path, &THREE[..THREE.find("  - name: b").unwrap()]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let four = format!("{THREE}  - name: d\n    url: http://127.0.0.1:1/d\n");
        write_in_place(&path, &four);

        let u = next(&mut rx).await;
        assert!(u.status.last_error.is_none(), "{:?}", u.status.last_error);
        assert_eq!(
            names(&u).unwrap(),
            ["a", "b", "c", "d"],
            "neither the empty nor the half-written file was applied"
        );
        assert_eq!(u.status.generation, 2);
    }

    #[tokio::test]
    async fn a_file_written_without_pause_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("monitors.yaml");
        std::fs::write(&path, THREE).unwrap();
        let mut source = FileSource::new(path.clone());
        source.settle = Duration::from_millis(500);
        let max_wait = source.max_wait();
        let (tx, mut rx) = mpsc::channel(16);
        tokio::spawn(source.run(tx));
        next(&mut rx).await;

        // A write every 50 ms never leaves the 500 ms of quiet the settle
        // waits for; the reload comes after `max_wait` (4 s) all the same.
        let writer = tokio::spawn({
            let path = path.clone();
            async move {
                for i in 0..600 {
                    let text = format!(
                        "{THREE}  - name: d\n    url: http://127.0.0.1:1/d{}\n",
                        i % 2
                    );
                    write_in_place(&path, &text);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        let u = next(&mut rx).await;
        assert!(!writer.is_finished(), "read while still being written");
        writer.abort();
        assert_eq!(names(&u).unwrap().len(), 4);
        assert!(max_wait < Duration::from_secs(30));
    }

    #[test]
    fn dangling_monitors_files_have_no_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "endpoints: []\n").unwrap();
        std::os::unix::fs::symlink("nowhere", dir.path().join("notes.txt")).unwrap();
        assert!(fingerprint(dir.path()).is_some(), "not a monitors file");
        std::os::unix::fs::symlink("nowhere.yaml", dir.path().join("b.yaml")).unwrap();
        assert_eq!(fingerprint(dir.path()), None);
    }

    #[test]
    fn fingerprint_follows_bytes_names_and_symlink_swaps() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.yaml");
        std::fs::write(&file, "endpoints: []\n").unwrap();
        let a = fingerprint(&file).unwrap();
        // Same bytes written again (a `touch`, the poll): same fingerprint, no reload.
        std::fs::write(&file, "endpoints: []\n").unwrap();
        assert_eq!(fingerprint(&file), Some(a));
        std::fs::write(&file, "endpoints: [ ]\n").unwrap();
        assert_ne!(fingerprint(&file), Some(a));

        // A ConfigMap-style folder: swapping the `..data` link changes what is read.
        let cm = dir.path().join("cm");
        for (v, text) in [("v1", "endpoints: []\n"), ("v2", "heartbeats: []\n")] {
            std::fs::create_dir_all(cm.join(v)).unwrap();
            std::fs::write(cm.join(v).join("m.yaml"), text).unwrap();
        }
        std::os::unix::fs::symlink("v1", cm.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/m.yaml", cm.join("m.yaml")).unwrap();
        let before = fingerprint(&cm).unwrap();
        std::os::unix::fs::symlink("v2", cm.join("..tmp")).unwrap();
        std::fs::rename(cm.join("..tmp"), cm.join("..data")).unwrap();
        assert_ne!(fingerprint(&cm), Some(before));
        // An unreadable path is not "unchanged": the load runs and reports it.
        assert_eq!(fingerprint(&dir.path().join("missing.yaml")), None);
    }
}
