//! Serving a [`Router`] on a listener with bounded connections.
//!
//! `axum::serve` keeps every accepted socket for as long as the peer keeps it
//! open, with no timeout before the first request: with `nofile=256`, a few
//! hundred sockets that never send a byte used every descriptor, so
//! `/healthz` and `/ping` timed out and a hot reload failed with "Too many
//! open files". This accept loop drives hyper itself and bounds that:
//!
//! - **Header timeout**: a connection must complete its first request's
//!   headers within [`Limits::header_timeout`] of being accepted, and later
//!   ones within that time of their first byte. This is measured here, not
//!   by hyper's `header_read_timeout`, because hyper's protocol detection
//!   (HTTP/1 or h2c) waits for bytes before any hyper timer runs.
//! - **Idle timeout**: a keep-alive connection with no request in flight is
//!   closed after [`Limits::idle_timeout`].
//! - **Connection cap**: at most [`Limits::max_connections`] at once, a
//!   number derived from `RLIMIT_NOFILE` so the daemon keeps descriptors for
//!   its own files and checks ([`connection_cap`]). At the cap, a new
//!   connection makes the connection idle the longest (no request in flight)
//!   close; if every connection is busy, the new one waits up to
//!   [`ADMIT_WAIT`] for a slot and is then closed. A request in flight is
//!   never cut to make room.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::settings::Settings;

/// How long a new connection at the cap waits for a slot when no idle
/// connection can be closed for it.
pub const ADMIT_WAIT: Duration = Duration::from_secs(1);
/// How long shutdown waits for requests in flight to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Descriptors always left to the daemon's own files, sockets to Docker and
/// the API server, and its checks' connections.
pub const MIN_RESERVE: u64 = 64;
/// The cap never goes below this, however low the open-file limit.
pub const MIN_CAP: usize = 8;
/// Longest accepted header timeout.
pub const MAX_HEADER_TIMEOUT: Duration = Duration::from_secs(3600);
/// Longest accepted idle timeout.
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(86_400);

/// A connection setting out of its bounds.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("{setting}={value} is out of bounds: it must be more than 0 and at most {max}")]
    OutOfBounds {
        setting: &'static str,
        value: String,
        max: String,
    },
}

/// The bounds every served connection lives within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Limits {
    /// From the settings, with the cap narrowed to what `nofile` (the soft
    /// open-file limit, `None` if unknown) leaves room for.
    pub fn from_settings(s: &Settings, nofile: Option<u64>) -> Result<Limits, LimitError> {
        let bounded = |setting, d: Duration, max: Duration| {
            if d.is_zero() || d > max {
                Err(LimitError::OutOfBounds {
                    setting,
                    value: humantime::format_duration(d).to_string(),
                    max: humantime::format_duration(max).to_string(),
                })
            } else {
                Ok(d)
            }
        };
        Ok(Limits {
            max_connections: connection_cap(s.http_max_connections as usize, nofile),
            header_timeout: bounded(
                "MAINTENANT_HTTP_HEADER_TIMEOUT",
                s.http_header_timeout.std(),
                MAX_HEADER_TIMEOUT,
            )?,
            idle_timeout: bounded(
                "MAINTENANT_HTTP_IDLE_TIMEOUT",
                s.http_idle_timeout.std(),
                MAX_IDLE_TIMEOUT,
            )?,
        })
    }
}

/// The connection cap: the setting, narrowed so that at least a quarter of
/// the open-file limit (and never fewer than [`MIN_RESERVE`]) stays free for
/// everything else the daemon opens.
pub fn connection_cap(setting: usize, nofile: Option<u64>) -> usize {
    let Some(nofile) = nofile else {
        return setting.max(1);
    };
    let reserve = (nofile / 4).max(MIN_RESERVE);
    let room = usize::try_from(nofile.saturating_sub(reserve)).unwrap_or(usize::MAX);
    setting.min(room.max(MIN_CAP)).max(1)
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit, and return the soft
/// limit in force afterwards (`None` if it cannot be read). A sidecar's
/// default soft limit is often 1024 while the hard one is far higher.
pub fn raise_nofile_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        } else {
            tracing::warn!(
                soft = lim.rlim_cur,
                hard = lim.rlim_max,
                error = %io::Error::last_os_error(),
                "cannot raise the open-file limit"
            );
        }
    }
    if lim.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some(lim.rlim_cur)
}

/// What a listener's peer address gives the router: the client IP for the
/// rate limit on TCP, nothing on a unix socket.
pub trait Peer {
    fn connect_info(&self) -> Option<SocketAddr>;
}

impl Peer for SocketAddr {
    fn connect_info(&self) -> Option<SocketAddr> {
        Some(*self)
    }
}

impl Peer for tokio::net::unix::SocketAddr {
    fn connect_info(&self) -> Option<SocketAddr> {
        None
    }
}

/// Every connection being served, across listeners; shared by the TCP and the
/// unix-socket server so both draw on one descriptor budget.
pub struct Connections {
    limits: Limits,
    slots: Arc<Semaphore>,
    live: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    base: Instant,
    /// When the cap was last reported (ms since `base`), so a flood logs
    /// once a minute rather than once per connection.
    last_warned: AtomicU64,
}

/// One connection's state, shared by its task, its requests and its socket.
struct Conn {
    accepted: Instant,
    in_flight: AtomicUsize,
    served: AtomicU64,
    /// When the connection last became idle (ms since `base`).
    idle_since: AtomicU64,
    /// The first byte read since it became idle (ms since `base` + 1; 0 = none).
    first_byte: AtomicU64,
    evict: AtomicBool,
    /// Wakes the connection's task: busy/idle changed, a first byte, eviction.
    changed: Notify,
}

impl Connections {
    pub fn new(limits: Limits) -> Arc<Connections> {
        Arc::new(Connections {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            live: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            base: Instant::now(),
            last_warned: AtomicU64::new(0),
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.live.lock().expect("connections lock").len()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms)
    }

    /// Serve `router` on `listener` until `shutdown`, then let requests in
    /// flight finish (at most [`SHUTDOWN_GRACE`]).
    pub async fn serve<L>(
        self: Arc<Self>,
        mut listener: L,
        router: Router,
        shutdown: CancellationToken,
    ) where
        L: Listener,
        L::Addr: Peer,
    {
        let tracker = TaskTracker::new();
        loop {
            let (io, addr) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let Some(permit) = self.admit().await else {
                // Closed at once: the client sees the connection end, and
                // the descriptor is free for the next one.
                drop(io);
                continue;
            };
            let this = self.clone();
            let router = router.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                this.serve_connection(io, addr.connect_info(), router, shutdown)
                    .await;
                drop(permit);
            });
        }
        tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.open(),
                "connections still open after the shutdown grace"
            );
        }
    }

    /// A slot for a new connection: free, or made by closing the connection
    /// idle the longest, or freed by a busy one within [`ADMIT_WAIT`].
    async fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Some(p);
        }
        let evicted = self.evict_longest_idle();
        let permit = tokio::time::timeout(ADMIT_WAIT, self.slots.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok);
        let now = self.now_ms();
        let last = self.last_warned.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= 60_000)
            && self
                .last_warned
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                cap = self.limits.max_connections,
                evicted_idle = evicted,
                admitted = permit.is_some(),
                "HTTP connection cap reached (MAINTENANT_HTTP_MAX_CONNECTIONS and the open-file limit)"
            );
        }
        permit
    }

    /// Mark the connection without a request in flight that has been idle
    /// the longest for closing. Returns whether there was one.
    fn evict_longest_idle(&self) -> bool {
        let live = self.live.lock().expect("connections lock");
        let victim = live
            .values()
            .filter(|c| c.in_flight.load(Ordering::SeqCst) == 0 && !c.evict.load(Ordering::SeqCst))
            .min_by_key(|c| c.idle_since.load(Ordering::SeqCst));
        match victim {
            Some(c) => {
                c.evict.store(true, Ordering::SeqCst);
                c.changed.notify_one();
                true
            }
            None => false,
        }
    }

    /// When an idle connection must close; `None` while a request is in flight.
    fn deadline(&self, c: &Conn) -> Option<Instant> {
        if c.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let first_byte = c.first_byte.load(Ordering::SeqCst);
        Some(if c.served.load(Ordering::SeqCst) == 0 {
            c.accepted + self.limits.header_timeout
        } else if first_byte > 0 {
            self.at(first_byte - 1) + self.limits.header_timeout
        } else {
            self.at(c.idle_since.load(Ordering::SeqCst)) + self.limits.idle_timeout
        })
    }

    async fn serve_connection<I>(
        self: Arc<Self>,
        io: I,
        peer: Option<SocketAddr>,
        router: Router,
        shutdown: CancellationToken,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            first_byte: AtomicU64::new(0),
            evict: AtomicBool::new(false),
            changed: Notify::new(),
        });
        self.live
            .lock()
            .expect("connections lock")
            .insert(id, conn.clone());

        let service = {
            let (this, conn) = (self.clone(), conn.clone());
            hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                let busy = Busy::start(this.clone(), conn.clone());
                if let Some(addr) = peer {
                    req.extensions_mut().insert(ConnectInfo(addr));
                }
                let response = router.clone().oneshot(req.map(Body::new));
                async move {
                    let response = response.await.unwrap_or_else(|e| match e {});
                    // The connection stays busy until the body is sent (an
                    // SSE stream is a request in flight).
                    Ok::<_, Infallible>(response.map(|body| {
                        Body::new(BusyBody {
                            inner: body,
                            _busy: busy,
                        })
                    }))
                }
            })
        };
        let io = TokioIo::new(Watched {
            inner: io,
            conn: conn.clone(),
            connections: self.clone(),
        });
        let builder = Builder::new(TokioExecutor::new());
        let mut served = pin!(builder.serve_connection(io, service));
        let mut shutting_down = false;
        loop {
            let deadline = if shutting_down {
                None
            } else {
                self.deadline(&conn)
            };
            tokio::select! {
                result = served.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "connection ended");
                    }
                    break;
                }
                _ = shutdown.cancelled(), if !shutting_down => {
                    shutting_down = true;
                    served.as_mut().graceful_shutdown();
                }
                _ = conn.changed.notified() => {}
                _ = sleep_until(deadline), if deadline.is_some() => {}
            }
            // Re-checked here, where hyper is not being polled: a connection
            // found idle has no request that could start meanwhile.
            let idle = conn.in_flight.load(Ordering::SeqCst) == 0;
            if idle && conn.evict.load(Ordering::SeqCst) {
                tracing::debug!("idle connection closed for a new one (connection cap)");
                break;
            }
            if idle && !shutting_down && self.deadline(&conn).is_some_and(|d| d <= Instant::now()) {
                tracing::debug!(
                    served = conn.served.load(Ordering::SeqCst),
                    "connection closed: no complete request headers in time, or idle too long"
                );
                break;
            }
            // A connection picked for eviction that became busy stays.
            conn.evict.store(false, Ordering::SeqCst);
        }
        self.live.lock().expect("connections lock").remove(&id);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// One request in flight on a connection, from its headers to the end of its
/// response body.
struct Busy {
    connections: Arc<Connections>,
    conn: Arc<Conn>,
}

impl Busy {
    fn start(connections: Arc<Connections>, conn: Arc<Conn>) -> Busy {
        conn.served.fetch_add(1, Ordering::SeqCst);
        if conn.in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            conn.first_byte.store(0, Ordering::SeqCst);
            conn.changed.notify_one();
        }
        Busy { connections, conn }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.conn.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.conn.first_byte.store(0, Ordering::SeqCst);
            self.conn
                .idle_since
                .store(self.connections.now_ms(), Ordering::SeqCst);
            self.conn.changed.notify_one();
        }
    }
}

/// A response body that keeps its request counted as in flight.
struct BusyBody {
    inner: Body,
    _busy: Busy,
}

impl HttpBody for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, noting the first byte that arrives while the connection is
/// idle: from then on the header timeout runs.
struct Watched<I> {
    inner: I,
    conn: Arc<Conn>,
    connections: Arc<Connections>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before
            && self.conn.in_flight.load(Ordering::SeqCst) == 0
            && self.conn.first_byte.load(Ordering::SeqCst) == 0
        {
            let at = self.connections.now_ms() + 1;
            self.conn.first_byte.store(at, Ordering::SeqCst);
            self.conn.changed.notify_one();
        }
        poll
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_the_daemons_own_files() {
        assert_eq!(connection_cap(1024, Some(256)), 192);
        assert_eq!(connection_cap(1024, Some(1024)), 768);
        assert_eq!(connection_cap(1024, Some(1_048_576)), 1024);
        assert_eq!(connection_cap(100, Some(1_048_576)), 100);
        assert_eq!(connection_cap(1024, Some(32)), MIN_CAP);
        assert_eq!(connection_cap(1024, None), 1024);
    }
}
