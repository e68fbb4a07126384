//! Long-lived tasks that must not vanish silently: a panic is caught where
//! the task was spawned, recorded in a registry `get_health` reads, and the
//! task is started again after a backoff.
//!
//! Input is bounded at validation so nothing a client sends should panic; this
//! is the second line, for the bug nobody found yet. A task is restarted only
//! where a fresh start is meaningful (its inputs can be made again); the
//! others are spawned with [`Supervisor::spawn_once`], so their death at least
//! shows in health.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;
use time::OffsetDateTime;

/// First wait before a restart; doubled after each panic up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Longest panic message kept (a panic payload can be any size).
const MAX_MESSAGE_CHARS: usize = 500;

/// What health shows of one supervised task that panicked.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq)]
pub struct TaskPanics {
    pub name: String,
    pub panics: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub last_panic_at: OffsetDateTime,
    /// The last panic's message.
    pub message: String,
    /// `restarting` (waiting out the backoff), `running` (restarted) or
    /// `stopped` (a task that cannot be restarted: maintenant needs a restart).
    pub state: TaskState,
}

#[derive(Debug, Clone, Copy, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Restarting,
    Running,
    Stopped,
}

/// What get_health shows of the supervised tasks.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq, Eq)]
pub struct TasksHealth {
    /// Every long-lived task started under supervision, by name.
    pub supervised: Vec<String>,
    /// The ones that panicked since start (health is then `degraded`).
    pub panicked: Vec<TaskPanics>,
}

/// The registry of panics, shared by whoever spawns and whoever reports.
#[derive(Debug, Clone, Default)]
pub struct Supervisor {
    panics: Arc<Mutex<BTreeMap<String, TaskPanics>>>,
    names: Arc<Mutex<BTreeSet<String>>>,
}

impl Supervisor {
    /// Every task that panicked since start, by name.
    pub fn panics(&self) -> Vec<TaskPanics> {
        self.lock().values().cloned().collect()
    }

    /// Note a task (or thread) started under supervision.
    pub fn register(&self, name: &str) {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned());
    }

    pub fn health(&self) -> TasksHealth {
        TasksHealth {
            supervised: self
                .names
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned()
                .collect(),
            panicked: self.panics(),
        }
    }

    /// Record a panic of `name` (also for threads, which catch their own).
    pub fn record(&self, name: &str, message: String, state: TaskState) {
        let message: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        tracing::error!(task = name, panic = %message, ?state, "task panicked");
        let mut map = self.lock();
        let e = map.entry(name.to_owned()).or_insert_with(|| TaskPanics {
            name: name.to_owned(),
            panics: 0,
            last_panic_at: OffsetDateTime::now_utc(),
            message: String::new(),
            state,
        });
        e.panics = e.panics.saturating_add(1);
        e.last_panic_at = OffsetDateTime::now_utc();
        e.message = message;
        e.state = state;
    }

    fn set_state(&self, name: &str, state: TaskState) {
        if let Some(e) = self.lock().get_mut(name) {
            e.state = state;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, TaskPanics>> {
        // The registry is only written by `record`, which cannot panic midway.
        self.panics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `make()` as a task named `name`; when it panics, record it and run
    /// a fresh `make()` after a backoff. A task that returns is not restarted.
    pub fn spawn<F, Fut>(&self, name: &str, make: F) -> tokio::task::JoinHandle<()>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.register(name);
        self.spawn_member(name, make)
    }

    /// [`Self::spawn`] for one of many tasks of a kind (a monitor's), which
    /// `get_health` does not list by name unless it panics.
    ///
    /// The first `make()` is called before this returns, so what it does
    /// synchronously (a heartbeat registering its ping route) is done when
    /// the caller goes on. The task runs in place (not in a task of its own),
    /// so aborting the returned handle stops it and drops what it holds.
    pub fn spawn_member<F, Fut>(&self, name: &str, mut make: F) -> tokio::task::JoinHandle<()>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        use futures::FutureExt as _;
        let sup = self.clone();
        let name = name.to_owned();
        let first = make();
        tokio::spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            let mut next = Some(first);
            loop {
                let run = next.take().unwrap_or_else(&mut make);
                match std::panic::AssertUnwindSafe(run).catch_unwind().await {
                    Ok(()) => return,
                    Err(payload) => {
                        sup.record(&name, panic_message(payload), TaskState::Restarting);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        sup.set_state(&name, TaskState::Running);
                    }
                }
            }
        })
    }

    /// Run `fut` as a task named `name` that is not restarted (its input or
    /// state cannot be made again), but whose panic shows in health.
    pub fn spawn_once<Fut>(&self, name: &str, fut: Fut) -> tokio::task::JoinHandle<()>
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        use futures::FutureExt as _;
        self.register(name);
        let sup = self.clone();
        let name = name.to_owned();
        tokio::spawn(async move {
            if let Err(payload) = std::panic::AssertUnwindSafe(fut).catch_unwind().await {
                sup.record(&name, panic_message(payload), TaskState::Stopped);
            }
        })
    }
}

/// The text of a panic payload (`panic!` gives a `&str` or a `String`).
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p.downcast_ref::<&str>().map_or_else(
            || "panic with a non-text payload".to_owned(),
            |s| (*s).to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_restarted_and_recorded() {
        let sup = Supervisor::default();
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let handle = sup.spawn("flaky", move || {
            let r = r.clone();
            async move {
                // Panics on its first two runs, then finishes.
                if r.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("boom {}", r.load(Ordering::SeqCst));
                }
            }
        });
        handle.await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3, "restarted twice");
        let p = sup.panics();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].name, "flaky");
        assert_eq!(p[0].panics, 2);
        assert_eq!(p[0].message, "boom 2");
        assert_eq!(p[0].state, TaskState::Running);
    }

    #[tokio::test(start_paused = true)]
    async fn aborting_a_supervised_task_drops_what_it_holds() {
        let sup = Supervisor::default();
        let held = Arc::new(());
        let h = held.clone();
        let handle = sup.spawn_member("member", move || {
            let h = h.clone();
            async move {
                let _h = h;
                std::future::pending::<()>().await
            }
        });
        tokio::task::yield_now().await;
        assert_eq!(
            Arc::strong_count(&held),
            3,
            "the closure's copy and the running one"
        );
        handle.abort();
        let _ = handle.await;
        assert_eq!(Arc::strong_count(&held), 1, "both dropped with the task");
        assert!(sup.health().supervised.is_empty(), "members are not listed");
    }

    #[tokio::test]
    async fn a_task_spawned_once_is_reported_stopped() {
        let sup = Supervisor::default();
        sup.spawn_once("once", async { panic!("gone") })
            .await
            .unwrap();
        let p = sup.panics();
        assert_eq!(p[0].state, TaskState::Stopped);
        assert_eq!(p[0].message, "gone");
        // A task that returns records nothing.
        sup.spawn_once("fine", async {}).await.unwrap();
        assert_eq!(sup.panics().len(), 1);
    }
}
