//! A bound on Streamable HTTP sessions, overall and per client.
//!
//! rmcp keeps every session until it is deleted or idle for its keep-alive
//! (5 minutes), about 50 KB each: a client that only sends `initialize`
//! could grow the daemon by megabytes a second. This middleware watches the
//! sessions rmcp creates (the `Mcp-Session-Id` of a response to a request
//! that had none) and, past a limit, closes the session idle the longest
//! (no request in flight, least recently used); the client's own first, then
//! anyone's. When every session is busy, the new one is closed at once and
//! the client gets 503 with a JSON-RPC error that says why.
//!
//! The stateless path (protocol 2026-07-28) creates no session and is not
//! counted. A client is its IP address, taken as the rate limit takes it
//! (`MAINTENANT_TRUST_FORWARDED_FOR`); the attach socket has one client.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

/// The header rmcp names a session with.
const SESSION_HEADER: &str = "mcp-session-id";

/// How many sessions may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub total: usize,
    pub per_client: usize,
}

/// The sessions of one MCP service (the TCP one or the attach socket's).
pub struct Sessions {
    manager: Arc<LocalSessionManager>,
    limits: SessionLimits,
    trust_forwarded_for: bool,
    book: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    client: Option<IpAddr>,
    last_used: Instant,
    in_flight: u32,
}

/// What to do after a session was created.
#[derive(Debug, PartialEq, Eq)]
enum Admit {
    /// Keep it; close these idle ones to make room.
    Keep { evict: Vec<String> },
    /// Every session that could make room is busy: close the new one.
    Refuse { reason: String },
}

impl Sessions {
    pub fn new(
        manager: Arc<LocalSessionManager>,
        limits: SessionLimits,
        trust_forwarded_for: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            manager,
            limits,
            trust_forwarded_for,
            book: Mutex::new(HashMap::new()),
        })
    }

    /// Sessions open now (as far as this book knows).
    pub fn len(&self) -> usize {
        self.book.lock().expect("sessions lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn begin(&self, id: &str) {
        if let Some(e) = self.book.lock().expect("sessions lock").get_mut(id) {
            e.in_flight = e.in_flight.saturating_add(1);
            e.last_used = Instant::now();
        }
    }

    fn end(&self, id: &str, gone: bool) {
        let mut book = self.book.lock().expect("sessions lock");
        if gone {
            book.remove(id);
        } else if let Some(e) = book.get_mut(id) {
            e.in_flight = e.in_flight.saturating_sub(1);
            e.last_used = Instant::now();
        }
    }

    /// Forget sessions rmcp closed by itself (keep-alive, init timeout).
    async fn prune(&self) {
        let live = self.manager.sessions.read().await;
        self.book
            .lock()
            .expect("sessions lock")
            .retain(|id, _| live.contains_key(id.as_str()));
    }

    /// Record a new session and decide what makes room for it.
    fn admit(&self, id: &str, client: Option<IpAddr>) -> Admit {
        let mut book = self.book.lock().expect("sessions lock");
        book.insert(
            id.to_owned(),
            Entry {
                client,
                last_used: Instant::now(),
                in_flight: 0,
            },
        );
        let decision = plan(&book, id, client, self.limits);
        match &decision {
            Admit::Keep { evict } => {
                for e in evict {
                    book.remove(e);
                }
            }
            Admit::Refuse { .. } => {
                book.remove(id);
            }
        }
        decision
    }
}

/// Which idle sessions to close so `new` fits, or why it cannot.
fn plan(
    book: &HashMap<String, Entry>,
    new: &str,
    client: Option<IpAddr>,
    limits: SessionLimits,
) -> Admit {
    let mut evict: Vec<String> = Vec::new();
    // Oldest idle first, never the new session itself.
    let mut idle: Vec<(&String, &Entry)> = book
        .iter()
        .filter(|(id, e)| id.as_str() != new && e.in_flight == 0)
        .collect();
    idle.sort_by_key(|(_, e)| e.last_used);

    let own = book.values().filter(|e| e.client == client).count();
    if own > limits.per_client {
        let over = own - limits.per_client;
        let mine: Vec<String> = idle
            .iter()
            .filter(|(_, e)| e.client == client)
            .take(over)
            .map(|(id, _)| (*id).clone())
            .collect();
        if mine.len() < over {
            return Admit::Refuse {
                reason: format!(
                    "this client has {own} MCP sessions open, all busy (limit {} per client, MAINTENANT_MCP_MAX_SESSIONS_PER_CLIENT); close one with DELETE /mcp or retry later",
                    limits.per_client
                ),
            };
        }
        evict = mine;
    }
    let total = book.len() - evict.len();
    if total > limits.total {
        let over = total - limits.total;
        let more: Vec<String> = idle
            .iter()
            .filter(|(id, _)| !evict.contains(id))
            .take(over)
            .map(|(id, _)| (*id).clone())
            .collect();
        if more.len() < over {
            return Admit::Refuse {
                reason: format!(
                    "{} MCP sessions are open, all busy (limit {}, MAINTENANT_MCP_MAX_SESSIONS); retry later",
                    book.len() - 1,
                    limits.total
                ),
            };
        }
        evict.extend(more);
    }
    Admit::Keep { evict }
}

/// The client a request counts against: the rate limit's notion of it.
fn client(req: &Request, trust_forwarded_for: bool) -> Option<IpAddr> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    crate::ratelimit::client_ip(req.headers(), peer, trust_forwarded_for)
}

/// The middleware: `axum::middleware::from_fn_with_state(sessions, sessions::bound)`.
pub async fn bound(State(sessions): State<Arc<Sessions>>, req: Request, next: Next) -> Response {
    let existing = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = existing {
        let delete = req.method() == Method::DELETE;
        sessions.begin(&id);
        let res = next.run(req).await;
        sessions.end(&id, delete || res.status() == StatusCode::NOT_FOUND);
        return res;
    }
    let who = client(&req, sessions.trust_forwarded_for);
    let res = next.run(req).await;
    let Some(id) = res
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return res;
    };
    sessions.prune().await;
    match sessions.admit(&id, who) {
        Admit::Keep { evict } => {
            for old in evict {
                tracing::info!(session = %old, "closed the MCP session idle the longest to make room for a new one");
                let _ = sessions.manager.close_session(&old.as_str().into()).await;
            }
            res
        }
        Admit::Refuse { reason } => {
            tracing::warn!(client = ?who, "{reason}");
            let _ = sessions.manager.close_session(&id.as_str().into()).await;
            refuse(&reason)
        }
    }
}

fn refuse(reason: &str) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": -32000, "message": reason },
    });
    let mut res = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(client: u8, age_s: u64, in_flight: u32, now: Instant) -> Entry {
        Entry {
            client: Some(IpAddr::from([127, 0, 0, client])),
            last_used: now - Duration::from_secs(age_s),
            in_flight,
        }
    }

    const LIMITS: SessionLimits = SessionLimits {
        total: 3,
        per_client: 2,
    };

    #[test]
    fn under_the_limits_nothing_is_closed() {
        let now = Instant::now();
        let book = HashMap::from([
            ("a".into(), entry(1, 10, 0, now)),
            ("new".into(), entry(1, 0, 0, now)),
        ]);
        assert_eq!(
            plan(&book, "new", Some(IpAddr::from([127, 0, 0, 1])), LIMITS),
            Admit::Keep { evict: vec![] }
        );
    }

    #[test]
    fn a_client_past_its_limit_loses_its_own_oldest_idle_session() {
        let now = Instant::now();
        let book = HashMap::from([
            ("old".into(), entry(1, 30, 0, now)),
            ("busy".into(), entry(1, 60, 1, now)),
            ("other".into(), entry(2, 90, 0, now)),
            ("new".into(), entry(1, 0, 0, now)),
        ]);
        // Client 1 has 3 (limit 2): its idle "old" goes, not the busy one nor
        // client 2's older session. Total is then 3: within the limit.
        assert_eq!(
            plan(&book, "new", Some(IpAddr::from([127, 0, 0, 1])), LIMITS),
            Admit::Keep {
                evict: vec!["old".into()]
            }
        );
    }

    #[test]
    fn past_the_total_the_oldest_idle_session_of_anyone_goes() {
        let now = Instant::now();
        let book = HashMap::from([
            ("a".into(), entry(1, 30, 0, now)),
            ("b".into(), entry(2, 90, 0, now)),
            ("c".into(), entry(3, 60, 0, now)),
            ("new".into(), entry(4, 0, 0, now)),
        ]);
        assert_eq!(
            plan(&book, "new", Some(IpAddr::from([127, 0, 0, 4])), LIMITS),
            Admit::Keep {
                evict: vec!["b".into()]
            }
        );
    }

    #[test]
    fn when_every_session_is_busy_the_new_one_is_refused_with_the_limit_named() {
        let now = Instant::now();
        let book = HashMap::from([
            ("a".into(), entry(1, 30, 1, now)),
            ("b".into(), entry(2, 90, 2, now)),
            ("c".into(), entry(3, 60, 1, now)),
            ("new".into(), entry(4, 0, 0, now)),
        ]);
        match plan(&book, "new", Some(IpAddr::from([127, 0, 0, 4])), LIMITS) {
            Admit::Refuse { reason } => {
                assert!(reason.contains("limit 3"), "{reason}");
                assert!(reason.contains("MAINTENANT_MCP_MAX_SESSIONS"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
