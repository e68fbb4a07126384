//! A per-client-IP token bucket, as axum middleware that any route can wear
//! (`/mcp` today; `/ping/...` takes the same layer): each IP may send
//! `burst` requests at once, refilled at `per_minute`; over that it gets
//! `429 Too Many Requests` with `Retry-After`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::settings::Settings;

/// Past this many tracked IPs, buckets that are full again are forgotten:
/// memory stays bounded by the number of IPs active within one refill.
const PRUNE_ABOVE: usize = 4096;

#[derive(Clone)]
pub struct RateLimiter(Arc<Inner>);

struct Inner {
    per_sec: f64,
    burst: f64,
    trust_forwarded_for: bool,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `None` when the limit is off (`per_minute` 0).
    pub fn new(per_minute: u32, burst: u32, trust_forwarded_for: bool) -> Option<Self> {
        (per_minute > 0).then(|| {
            RateLimiter(Arc::new(Inner {
                per_sec: f64::from(per_minute) / 60.0,
                burst: f64::from(burst.max(1)),
                trust_forwarded_for,
                buckets: Mutex::default(),
            }))
        })
    }

    pub fn from_settings(s: &Settings) -> Option<Self> {
        Self::new(
            s.rate_limit_per_minute,
            s.rate_limit_burst,
            s.trust_forwarded_for,
        )
    }

    /// Take one token for `ip` at `now`, or say how long until one is there.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let inner = &self.0;
        let mut buckets = inner.buckets.lock().expect("rate limit lock");
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * inner.per_sec
                    < inner.burst
            });
        }
        let b = buckets.entry(ip).or_insert(Bucket {
            tokens: inner.burst,
            at: now,
        });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * inner.per_sec;
        b.tokens = (b.tokens + refill).min(inner.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / inner.per_sec))
        }
    }

    fn client_ip(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
        client_ip(headers, peer, self.0.trust_forwarded_for)
    }
}

/// Who a request comes from: the peer address, or with `trust_forwarded_for`
/// the last `X-Forwarded-For` entry. Shared with the MCP session bound.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    if trust_forwarded_for {
        // The last entry is the one our own proxy appended; earlier ones
        // are whatever the client claimed, so never fall back to them.
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|s| s.trim().parse::<IpAddr>().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|p| p.ip())
}

/// The middleware: `axum::middleware::from_fn_with_state(limiter, ratelimit::limit)`.
/// Needs `ConnectInfo<SocketAddr>` in the request extensions (`serve::Connections` puts it there).
pub async fn limit(State(limiter): State<RateLimiter>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let Some(ip) = limiter.client_ip(req.headers(), peer) else {
        return next.run(req).await;
    };
    match limiter.check(ip, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let secs = wait.as_secs().max(1);
            tracing::info!(%ip, retry_after = secs, "rate limited");
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, secs.to_string())],
                format!("too many requests from {ip}; retry in {secs}s"),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_per_ip() {
        let l = RateLimiter::new(60, 3, false).unwrap();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "::1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check(a, t0).is_ok());
        }
        let wait = l.check(a, t0).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        // Another client is not affected.
        assert!(l.check(b, t0).is_ok());
        // One token per second comes back.
        assert!(l.check(a, t0 + Duration::from_millis(1010)).is_ok());
        assert!(l.check(a, t0 + Duration::from_millis(1020)).is_err());
    }

    #[test]
    fn zero_disables() {
        assert!(RateLimiter::new(0, 10, false).is_none());
    }

    #[test]
    fn forwarded_for_is_used_only_when_trusted() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.7".parse().unwrap());
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let trusted = RateLimiter::new(60, 1, true).unwrap();
        let untrusted = RateLimiter::new(60, 1, false).unwrap();
        assert_eq!(
            trusted.client_ip(&h, Some(peer)),
            Some("10.0.0.7".parse().unwrap())
        );
        assert_eq!(untrusted.client_ip(&h, Some(peer)), Some(peer.ip()));
    }
}
