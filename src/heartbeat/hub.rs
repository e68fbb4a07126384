//! The heartbeat hub: the live state of every heartbeat, the ping routes,
//! and the single writer that changes states.
//!
//! **Durability with group commit.** A ping is answered 2xx only once its
//! effect is on disk (sled `flush`, then `fdatasync` of its log file: see
//! [`Store::sync_to_disk`]). Flushing per ping would
//! cap throughput at the disk's fsync rate, so every change goes through one
//! writer thread: it takes the first waiting command, drains every other
//! command queued meanwhile (a batch), applies them in order, writes each
//! touched state once, flushes once, and only then completes each waiter.
//! Under load a batch holds every ping that arrived during the previous
//! flush, so many pings share one fsync; alone, a ping waits for one flush.
//!
//! **Order.** Within a batch, deadline ticks are applied after every ping
//! and pause, whatever their arrival order: a deadline is judged against the
//! pings already received. (The heartbeat's task also waits, after a stall,
//! for the pings the kernel queued meanwhile: see `checks::heartbeat`.)
//!
//! **Transitions.** After a batch is on disk the writer publishes each status
//! change as a [`HeartbeatTransition`] on one broadcast channel
//! ([`HeartbeatHub::subscribe`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use time::OffsetDateTime;
use tokio::sync::{Notify, broadcast, mpsc, oneshot};

use super::{HeartbeatState, HeartbeatStatus, HeartbeatTransition, Ping};
use crate::config::model::HeartbeatSpec;
use crate::monitor::MonitorKey;
use crate::store::{Store, StoreError};

/// Commands applied per flush, at most (bounds the latency of a batch).
const MAX_BATCH: usize = 4096;
/// Transitions a slow subscriber may fall behind before it misses some (it
/// can then re-read every state: they are level, not edges).
const TRANSITION_BUFFER: usize = 4096;

/// Why a ping was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PingError {
    #[error("no heartbeat answers to this ping URL")]
    NotFound,
    #[error("the ping could not be stored: {0}")]
    Storage(String),
}

/// What a recorded ping answers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PingAck {
    pub id: String,
    pub status: HeartbeatStatus,
}

enum Command {
    Ping {
        key: MonitorKey,
        ping: Ping,
        done: oneshot::Sender<Result<PingAck, PingError>>,
    },
    /// Re-evaluate deadlines now (sent by the heartbeat's task at a deadline).
    Tick {
        key: MonitorKey,
        /// `false` when the batch could not be written.
        done: oneshot::Sender<bool>,
    },
    Pause {
        key: MonitorKey,
        pause: bool,
        done: oneshot::Sender<Result<HeartbeatState, String>>,
    },
}

struct Registration {
    id: u64,
    spec: Arc<HeartbeatSpec>,
    notify: Arc<Notify>,
}

/// What the writer and the readers share.
struct Shared {
    store: Store,
    states: RwLock<HashMap<MonitorKey, HeartbeatState>>,
    specs: RwLock<HashMap<MonitorKey, Registration>>,
    /// Ping path segment (name, or token when one is declared) -> heartbeat.
    routes: RwLock<HashMap<String, MonitorKey>>,
    transitions: broadcast::Sender<HeartbeatTransition>,
    next_registration: AtomicU64,
}

/// Cheap to clone; every clone talks to the same writer.
#[derive(Clone)]
pub struct HeartbeatHub {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
}

/// Keeps a heartbeat registered while its task runs; dropping it (the task
/// ended or was aborted) removes the registration unless a newer one for the
/// same heartbeat replaced it.
pub struct RegistrationGuard {
    shared: Arc<Shared>,
    key: MonitorKey,
    id: u64,
    pub notify: Arc<Notify>,
}

impl Drop for RegistrationGuard {
    fn drop(&mut self) {
        let mut specs = self.shared.specs.write().expect("heartbeat specs lock");
        if specs.get(&self.key).is_some_and(|r| r.id == self.id) {
            specs.remove(&self.key);
            self.shared
                .routes
                .write()
                .expect("heartbeat routes lock")
                .retain(|_, k| *k != self.key);
        }
    }
}

impl HeartbeatHub {
    /// Load stored states and start the writer thread.
    pub fn start(store: Store) -> Result<HeartbeatHub, StoreError> {
        Self::start_supervised(store, crate::supervise::Supervisor::default())
    }

    /// [`Self::start`], the writer's panics recorded in `tasks` (get_health).
    pub fn start_supervised(
        store: Store,
        tasks: crate::supervise::Supervisor,
    ) -> Result<HeartbeatHub, StoreError> {
        let mut states = HashMap::new();
        for (key, mut state) in store.load_heartbeats()? {
            // The pause record is the truth `is_paused` answers from.
            if store.is_paused(&key) && state.status != HeartbeatStatus::Paused {
                state = super::pause(&state, OffsetDateTime::now_utc());
            }
            states.insert(key, state);
        }
        let (transitions, _) = broadcast::channel(TRANSITION_BUFFER);
        let shared = Arc::new(Shared {
            store,
            states: RwLock::new(states),
            specs: RwLock::default(),
            routes: RwLock::default(),
            transitions,
            next_registration: AtomicU64::new(1),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let writer_shared = shared.clone();
        tasks.register(WRITER_TASK);
        std::thread::Builder::new()
            .name("heartbeat-writer".into())
            .spawn(move || supervised_writer(&writer_shared, rx, &tasks))
            .expect("start the heartbeat writer thread");
        Ok(HeartbeatHub {
            shared,
            commands: tx,
        })
    }

    /// Every heartbeat status change, after it is on disk. See [`HeartbeatTransition`].
    pub fn subscribe(&self) -> broadcast::Receiver<HeartbeatTransition> {
        self.shared.transitions.subscribe()
    }

    /// Declare (or re-declare with a new spec) a heartbeat; its ping route
    /// is its token when it has one, else its name.
    pub fn register(&self, key: &MonitorKey, spec: Arc<HeartbeatSpec>) -> RegistrationGuard {
        let id = self
            .shared
            .next_registration
            .fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        let route = spec.token.clone().unwrap_or_else(|| spec.name.clone());
        {
            let mut specs = self.shared.specs.write().expect("heartbeat specs lock");
            let mut routes = self.shared.routes.write().expect("heartbeat routes lock");
            routes.retain(|_, k| k != key);
            routes.insert(route, key.clone());
            specs.insert(
                key.clone(),
                Registration {
                    id,
                    spec,
                    notify: notify.clone(),
                },
            );
        }
        self.shared
            .states
            .write()
            .expect("heartbeat states lock")
            .entry(key.clone())
            .or_default();
        RegistrationGuard {
            shared: self.shared.clone(),
            key: key.clone(),
            id,
            notify,
        }
    }

    /// The heartbeat a ping path segment names, if any.
    pub fn route(&self, segment: &str) -> Option<MonitorKey> {
        self.shared
            .routes
            .read()
            .expect("heartbeat routes lock")
            .get(segment)
            .cloned()
    }

    /// The heartbeat whose own token is `segment` (never a name).
    pub fn route_token(&self, segment: &str) -> Option<MonitorKey> {
        let key = self.route(segment)?;
        let specs = self.shared.specs.read().expect("heartbeat specs lock");
        specs
            .get(&key)
            .is_some_and(|r| r.spec.token.as_deref() == Some(segment))
            .then_some(key)
    }

    /// The heartbeat named `name`, token or not (for `/ping/KEY/NAME`, where
    /// the global ping key is the secret).
    pub fn route_name(&self, name: &str) -> Option<MonitorKey> {
        let key = MonitorKey::heartbeat(name);
        self.shared
            .specs
            .read()
            .expect("heartbeat specs lock")
            .contains_key(&key)
            .then_some(key)
    }

    /// Record a ping; returns once it is on disk.
    pub async fn ping(&self, key: MonitorKey, ping: Ping) -> Result<PingAck, PingError> {
        let (done, rx) = oneshot::channel();
        self.commands
            .send(Command::Ping { key, ping, done })
            .map_err(|_| PingError::Storage("the heartbeat writer stopped".into()))?;
        rx.await
            .map_err(|_| PingError::Storage("the heartbeat writer stopped".into()))?
    }

    /// Re-evaluate deadlines at the current time; returns once applied,
    /// `false` if it could not be written (the state is then unchanged).
    pub async fn tick(&self, key: &MonitorKey) -> bool {
        let (done, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Tick {
                key: key.clone(),
                done,
            })
            .is_ok()
        {
            rx.await.unwrap_or(false)
        } else {
            false
        }
    }

    /// Pause (`true`) or resume (`false`); returns the state once it is on disk.
    pub async fn set_paused(
        &self,
        key: &MonitorKey,
        pause: bool,
    ) -> Result<HeartbeatState, String> {
        let (done, rx) = oneshot::channel();
        self.commands
            .send(Command::Pause {
                key: key.clone(),
                pause,
                done,
            })
            .map_err(|_| "the heartbeat writer stopped".to_owned())?;
        rx.await
            .map_err(|_| "the heartbeat writer stopped".to_owned())?
    }

    /// The current state of a heartbeat (default `new` if never seen).
    pub fn state(&self, key: &MonitorKey) -> HeartbeatState {
        self.shared
            .states
            .read()
            .expect("heartbeat states lock")
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// Read many states under one lock.
    pub fn with_states<R>(&self, f: impl FnOnce(&HashMap<MonitorKey, HeartbeatState>) -> R) -> R {
        f(&self.shared.states.read().expect("heartbeat states lock"))
    }

    /// When the heartbeat's task must wake without a ping.
    pub fn next_wake(&self, key: &MonitorKey) -> Option<OffsetDateTime> {
        let spec = self
            .shared
            .specs
            .read()
            .expect("heartbeat specs lock")
            .get(key)
            .map(|r| r.spec.clone())?;
        super::next_wake(&self.state(key), &spec)
    }
}

/// Run [`writer`] again after a panic (the commands of the batch it was
/// applying are answered with an error as their reply channels drop): one
/// bad heartbeat must not stop every ping. The panic shows in get_health.
fn supervised_writer(
    shared: &Shared,
    mut rx: mpsc::UnboundedReceiver<Command>,
    tasks: &crate::supervise::Supervisor,
) {
    let mut backoff = crate::supervise::FIRST_BACKOFF;
    loop {
        let run =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| writer(shared, &mut rx)));
        let Err(payload) = run else { return };
        tasks.record(
            WRITER_TASK,
            crate::supervise::panic_message(payload),
            crate::supervise::TaskState::Running,
        );
        // States are whole values replaced in one assignment: a lock poisoned
        // by the panic guards nothing half-written.
        shared.states.clear_poison();
        shared.specs.clear_poison();
        shared.routes.clear_poison();
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(crate::supervise::MAX_BACKOFF);
    }
}

/// The writer thread's name in get_health.
pub const WRITER_TASK: &str = "heartbeat-writer";

/// The writer loop: batch, apply, write, flush once, then answer.
///
/// A batch's new states are computed beside the live ones and become live
/// only once written and flushed: a batch that fails to write changes
/// nothing (its pings answer 503, its transitions are dropped, a deadline
/// is evaluated again at the next tick), so what readers see and what the
/// alert engine hears is what a restart would find.
fn writer(shared: &Shared, rx: &mut mpsc::UnboundedReceiver<Command>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        ticks_last(&mut batch);
        // The batch's states, by heartbeat: the live one updated by each
        // command in order; written, then made live.
        let mut next_states: HashMap<MonitorKey, HeartbeatState> = HashMap::new();
        let mut transitions = Vec::new();
        let mut ping_replies = Vec::new();
        let mut pause_replies = Vec::new();
        let mut tick_replies = Vec::new();
        let mut pause_errors = Vec::new();
        {
            let specs = shared.specs.read().expect("heartbeat specs lock");
            let states = shared.states.read().expect("heartbeat states lock");
            // A heartbeat's state as the batch left it so far.
            let current = |next: &HashMap<MonitorKey, HeartbeatState>, key: &MonitorKey| {
                next.get(key)
                    .or_else(|| states.get(key))
                    .cloned()
                    .unwrap_or_default()
            };
            for cmd in batch.drain(..) {
                match cmd {
                    Command::Ping { key, ping, done } => {
                        if !specs.contains_key(&key) {
                            let _ = done.send(Err(PingError::NotFound));
                            continue;
                        }
                        let prev = current(&next_states, &key);
                        let next = super::apply_ping(&prev, &ping);
                        note_transition(&key, &prev, &next, ping.at, &mut transitions);
                        ping_replies.push((done, key.clone(), next.status));
                        next_states.insert(key, next);
                    }
                    Command::Tick { key, done } => {
                        if let Some(reg) = specs.get(&key) {
                            let now = OffsetDateTime::now_utc();
                            let prev = current(&next_states, &key);
                            let next = super::evaluate(&prev, &reg.spec, now);
                            if next != prev {
                                note_transition(&key, &prev, &next, now, &mut transitions);
                                next_states.insert(key, next);
                            }
                        }
                        tick_replies.push(done);
                    }
                    Command::Pause { key, pause, done } => {
                        let now = OffsetDateTime::now_utc();
                        let stored = if pause {
                            shared.store.set_paused(&key, now)
                        } else {
                            shared.store.clear_paused(&key).map(|_| ())
                        };
                        if let Err(e) = stored {
                            pause_errors.push((done, e.to_string()));
                            continue;
                        }
                        let prev = current(&next_states, &key);
                        let next = if pause {
                            super::pause(&prev, now)
                        } else {
                            super::resume(&prev, now)
                        };
                        note_transition(&key, &prev, &next, now, &mut transitions);
                        pause_replies.push((done, next.clone()));
                        next_states.insert(key, next);
                    }
                }
            }
        }
        let result = persist(shared, &next_states);
        if result.is_ok() {
            let mut states = shared.states.write().expect("heartbeat states lock");
            for (key, state) in &next_states {
                states.insert(key.clone(), state.clone());
            }
        }
        for (done, key, status) in ping_replies {
            let _ = done.send(match &result {
                Ok(()) => Ok(PingAck {
                    id: key.id(),
                    status,
                }),
                Err(e) => Err(PingError::Storage(e.clone())),
            });
        }
        for (done, state) in pause_replies {
            let _ = done.send(result.clone().map(|()| state));
        }
        for (done, e) in pause_errors {
            let _ = done.send(Err(e));
        }
        for done in tick_replies {
            let _ = done.send(result.is_ok());
        }
        if result.is_ok() {
            for t in transitions {
                tracing::info!(monitor = %t.key, from = t.from.as_str(), to = t.to.as_str(), exit_code = ?t.exit_code, "heartbeat status changed");
                let _ = shared.transitions.send(t);
            }
        }
        // Wake the tasks whose deadlines moved.
        let specs = shared.specs.read().expect("heartbeat specs lock");
        for key in next_states.keys() {
            if let Some(r) = specs.get(key) {
                r.notify.notify_one();
            }
        }
    }
}

/// Move the deadline ticks after every other command, keeping each group's
/// order: deadlines are judged against the state after every ping of the
/// batch, so a tick that came first (its timer fired while the pings queued
/// during a stall were being read) cannot invent a down that the next ping
/// resolves a moment later.
fn ticks_last(batch: &mut Vec<Command>) {
    let (ticks, mut others): (Vec<Command>, Vec<Command>) = batch
        .drain(..)
        .partition(|c| matches!(c, Command::Tick { .. }));
    others.extend(ticks);
    *batch = others;
}

fn note_transition(
    key: &MonitorKey,
    prev: &HeartbeatState,
    next: &HeartbeatState,
    at: OffsetDateTime,
    out: &mut Vec<HeartbeatTransition>,
) {
    if prev.status != next.status {
        out.push(HeartbeatTransition {
            key: key.clone(),
            from: prev.status,
            to: next.status,
            exit_code: (next.status == HeartbeatStatus::Down)
                .then_some(next.last_exit_code)
                .flatten(),
            failed_run: next.status == HeartbeatStatus::Down
                && next
                    .last_ping
                    .as_ref()
                    .is_some_and(|p| p.kind == super::PingKind::Fail && Some(p.at) == next.since),
            at: next.since.unwrap_or(at),
            message: next.message.clone(),
        });
    }
}

/// Write each touched state once, then one flush for the whole batch.
fn persist(shared: &Shared, states: &HashMap<MonitorKey, HeartbeatState>) -> Result<(), String> {
    let written = states
        .iter()
        .try_for_each(|(key, s)| shared.store.save_heartbeat(key, s))
        .and_then(|()| shared.store.sync_to_disk());
    written.map_err(|e| {
        // The store's health holds the cause; one line per interval here.
        if let Some(n) = crate::repeated::STORE_ERRORS.hit("heartbeat-flush") {
            tracing::error!(error = %e, "heartbeat write failed: pings are answered 503 and change nothing{}", crate::repeated::times(n));
        }
        e.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::HeartbeatSchedule;
    use crate::duration::Duration;
    use crate::heartbeat::PingKind;

    fn spec(name: &str, token: Option<&str>) -> Arc<HeartbeatSpec> {
        Arc::new(HeartbeatSpec {
            name: name.into(),
            group: None,
            token: token.map(Into::into),
            schedule: HeartbeatSchedule::Period {
                period: Duration::from_secs(60),
            },
            grace: Duration::from_secs(60),
            alert: None,
        })
    }

    fn ping(kind: PingKind) -> Ping {
        Ping {
            at: OffsetDateTime::now_utc(),
            kind,
            exit_code: None,
            body: None,
        }
    }

    #[test]
    fn ticks_are_applied_after_the_pings_of_their_batch() {
        let key = |n: &str| MonitorKey::heartbeat(n);
        let mut batch = vec![
            Command::Tick {
                key: key("a"),
                done: oneshot::channel().0,
            },
            Command::Ping {
                key: key("a"),
                ping: ping(PingKind::Success),
                done: oneshot::channel().0,
            },
            Command::Tick {
                key: key("b"),
                done: oneshot::channel().0,
            },
            Command::Pause {
                key: key("b"),
                pause: true,
                done: oneshot::channel().0,
            },
        ];
        ticks_last(&mut batch);
        let order: Vec<String> = batch
            .iter()
            .map(|c| match c {
                Command::Ping { key, .. } => format!("ping {key}"),
                Command::Tick { key, .. } => format!("tick {key}"),
                Command::Pause { key, .. } => format!("pause {key}"),
            })
            .collect();
        assert_eq!(
            order,
            [
                "ping heartbeat/a",
                "pause heartbeat/b",
                "tick heartbeat/a",
                "tick heartbeat/b"
            ]
        );
    }

    #[tokio::test]
    async fn pings_persist_routes_follow_tokens_and_transitions_are_published() {
        let dir = tempfile::tempdir().unwrap();
        let key = MonitorKey::heartbeat("backup");
        {
            let store = Store::open(dir.path()).unwrap();
            let hub = HeartbeatHub::start(store).unwrap();
            let mut sub = hub.subscribe();
            let guard = hub.register(&key, spec("backup", None));
            assert_eq!(hub.route("backup"), Some(key.clone()));
            assert_eq!(hub.route_token("backup"), None, "a name is not a token");
            assert_eq!(hub.route_name("backup"), Some(key.clone()));
            assert_eq!(hub.route_name("nope"), None);
            let acks = futures::future::join_all(
                (0..50).map(|_| hub.ping(key.clone(), ping(PingKind::Success))),
            )
            .await;
            assert!(
                acks.iter()
                    .all(|a| a.as_ref().unwrap().status == HeartbeatStatus::Up)
            );
            let t = sub.recv().await.unwrap();
            assert_eq!((t.from, t.to), (HeartbeatStatus::New, HeartbeatStatus::Up));

            // A token replaces the name as the route.
            let guard2 = hub.register(&key, spec("backup", Some("0123456789abcdef")));
            drop(guard); // the old registration's drop leaves the new one alone
            assert_eq!(hub.route("backup"), None);
            assert_eq!(hub.route("0123456789abcdef"), Some(key.clone()));
            assert_eq!(hub.route_token("0123456789abcdef"), Some(key.clone()));
            assert_eq!(hub.route_name("backup"), Some(key.clone()));
            hub.set_paused(&key, true).await.unwrap();
            let t = sub.recv().await.unwrap();
            assert_eq!(t.to, HeartbeatStatus::Paused);
            drop(guard2);
            assert_eq!(hub.route("0123456789abcdef"), None);
            assert_eq!(
                hub.ping(key.clone(), ping(PingKind::Success)).await,
                Err(PingError::NotFound)
            );
        }
        // Reopen: the count and the pause survived (the hub's thread may hold
        // the old database briefly).
        let mut reopened = None;
        for _ in 0..100 {
            match Store::open(dir.path()) {
                Ok(s) => {
                    reopened = Some(s);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
        let store = reopened.expect("the database reopens once the first hub is gone");
        assert!(store.is_paused(&key));
        let hub = HeartbeatHub::start(store).unwrap();
        let s = hub.state(&key);
        assert_eq!((s.pings_total, s.status), (50, HeartbeatStatus::Paused));
    }
}
