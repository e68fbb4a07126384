//! One endpoint check, performed once: an HTTP(S) request with reqwest on
//! rustls, or a TCP connect. Knows nothing of thresholds, storage or alerts.
//!
//! Choices worth knowing:
//! - Proxies from the environment (`HTTP_PROXY`, `HTTPS_PROXY`, ...) are
//!   ignored: a check measures the endpoint itself, not a proxy in front of
//!   it, and a sidecar's environment often carries a proxy meant for other
//!   traffic.
//! - The response time is the time to the response headers, plus the body
//!   read when a condition needs the body.
//! - The body is read only when a condition needs it, and at most 1 MiB of it
//!   (the rest is ignored).
//! - A restricted monitor (one declared by a label, an annotation or a
//!   `Monitor` resource, see `targets`) uses its own clients, whose resolver
//!   filters addresses by the target policy, and follows redirects here, hop
//!   by hop, so every address it connects to is checked (reqwest does not
//!   call the resolver for an IP-literal URL).

use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::targets::{PolicyResolver, Refusal, ResolveError, TargetPolicy};
use crate::condition::CheckFacts;
use crate::config::model::{EndpointSpec, HttpMethod, StatusPattern, StatusPatternRepr, Target};

/// At most this much of a body is read for conditions.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

const USER_AGENT: &str = concat!("maintenant/", env!("CARGO_PKG_VERSION"));

/// Shared HTTP clients. reqwest fixes redirect policy and certificate
/// verification per client, so one client is kept per (tls_verify,
/// max_redirects) pair and shared by every check that uses it.
///
/// Restricted monitors have their own clients (they must never share a
/// pooled connection with an unrestricted one), one per (tls_verify, "the
/// port is maintenant's own"): reqwest's resolver is not told the port, so
/// the own-address rule is decided by which client is used.
#[derive(Clone)]
pub struct HttpClients {
    clients: Arc<Mutex<HashMap<(bool, u32), reqwest::Client>>>,
    restricted: Arc<Mutex<HashMap<(bool, bool), reqwest::Client>>>,
    policy: Arc<TargetPolicy>,
}

impl HttpClients {
    pub fn new() -> Self {
        HttpClients::with_policy(TargetPolicy::default())
    }

    /// Clients whose restricted checks follow `policy`.
    pub fn with_policy(policy: TargetPolicy) -> Self {
        HttpClients {
            clients: Arc::new(Mutex::new(HashMap::new())),
            restricted: Arc::new(Mutex::new(HashMap::new())),
            policy: Arc::new(policy),
        }
    }

    pub fn policy(&self) -> &Arc<TargetPolicy> {
        &self.policy
    }

    /// The restricted client for this pair: no redirects (followed by
    /// [`send_restricted`]), the policy's resolver.
    fn restricted(&self, tls_verify: bool, own_port: bool) -> Result<reqwest::Client, String> {
        let mut map = self.restricted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(&(tls_verify, own_port)) {
            return Ok(c.clone());
        }
        let resolver = PolicyResolver {
            policy: self.policy.clone(),
            port: if own_port {
                self.policy.own_port().unwrap_or(0)
            } else {
                0
            },
        };
        let client = builder(tls_verify, reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(resolver))
            .build()
            .map_err(|e| format!("could not build the HTTP client: {}", innermost(&e)))?;
        map.insert((tls_verify, own_port), client.clone());
        Ok(client)
    }

    /// The client for this pair, built on first use.
    fn get(&self, tls_verify: bool, max_redirects: u32) -> Result<reqwest::Client, String> {
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(&(tls_verify, max_redirects)) {
            return Ok(c.clone());
        }
        let client = build_client(tls_verify, max_redirects)?;
        map.insert((tls_verify, max_redirects), client.clone());
        Ok(client)
    }

    /// How many distinct clients have been built.
    pub fn len(&self) -> usize {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for HttpClients {
    fn default() -> Self {
        Self::new()
    }
}

fn build_client(tls_verify: bool, max_redirects: u32) -> Result<reqwest::Client, String> {
    let redirect = if max_redirects == 0 {
        reqwest::redirect::Policy::none()
    } else {
        reqwest::redirect::Policy::limited(max_redirects as usize)
    };
    builder(tls_verify, redirect)
        .build()
        .map_err(|e| format!("could not build the HTTP client: {}", innermost(&e)))
}

fn builder(tls_verify: bool, redirect: reqwest::redirect::Policy) -> reqwest::ClientBuilder {
    // reqwest panics when no rustls provider is installed; the process
    // installs ring at start, this makes sure of it (a no-op when done).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_info(true)
        .danger_accept_invalid_certs(!tls_verify)
        .redirect(redirect)
        .pool_max_idle_per_host(2)
        .user_agent(USER_AGENT)
        .no_proxy()
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutcome {
    /// Whether the check passed: expected status (HTTP) or connected (TCP),
    /// and every condition held.
    pub up: bool,
    pub status: Option<u16>,
    pub response_time: std::time::Duration,
    /// Why it failed, for a person: "connection refused", "timed out after 10s",
    /// "status 503 not in [2xx]", "[BODY].status == UP failed: [BODY].status was DOWN".
    pub error: Option<String>,
    /// When the served certificate expires (https only).
    pub certificate_not_after: Option<time::OffsetDateTime>,
    /// `error` without the values conditions read from the body: what may be
    /// shown to whoever declared the monitor (a `Monitor` resource's status).
    pub public_error: Option<String>,
    /// The target policy refused the connection (no packet was sent to it).
    pub refused: Option<Refusal>,
}

impl ProbeOutcome {
    fn failed(error: String, response_time: Duration) -> Self {
        ProbeOutcome {
            up: false,
            status: None,
            response_time,
            public_error: Some(error.clone()),
            error: Some(error),
            certificate_not_after: None,
            refused: None,
        }
    }

    fn refused(r: Refusal, response_time: Duration) -> Self {
        ProbeOutcome {
            refused: Some(r.clone()),
            ..ProbeOutcome::failed(r.to_string(), response_time)
        }
    }
}

/// One check of a monitor the target policy does not apply to.
pub async fn probe(spec: &EndpointSpec, clients: &HttpClients) -> ProbeOutcome {
    probe_as(spec, clients, false).await
}

/// One check; `restricted`: held to the clients' target policy.
pub async fn probe_as(
    spec: &EndpointSpec,
    clients: &HttpClients,
    restricted: bool,
) -> ProbeOutcome {
    let policy = restricted.then(|| clients.policy.as_ref());
    match &spec.target {
        Target::Http { url } => probe_http(spec, url, clients, restricted).await,
        Target::Tcp { host, port } => probe_tcp(spec, host, *port, policy).await,
    }
}

/// Why a request got no response.
enum SendError {
    Refused(Refusal),
    Failed(String),
}

fn timed_out(spec: &EndpointSpec) -> String {
    format!("timed out after {}", spec.timeout)
}

// ---------------------------------------------------------------- HTTP

fn header_map(spec: &EndpointSpec) -> Result<reqwest::header::HeaderMap, String> {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &spec.headers {
        let Ok(name) = reqwest::header::HeaderName::from_bytes(name.as_bytes()) else {
            return Err(format!("invalid header name {name:?}"));
        };
        let Ok(value) = reqwest::header::HeaderValue::from_str(value) else {
            return Err(format!("invalid value for header {name}"));
        };
        headers.append(name, value);
    }
    Ok(headers)
}

/// One request on the shared clients; reqwest follows the redirects.
async fn send_pooled(
    spec: &EndpointSpec,
    url: &str,
    headers: reqwest::header::HeaderMap,
    clients: &HttpClients,
) -> Result<reqwest::Response, SendError> {
    let client = clients
        .get(spec.tls_verify, spec.max_redirects)
        .map_err(SendError::Failed)?;
    let mut request = client
        .request(method(spec.method), url)
        .headers(headers)
        .timeout(spec.timeout.std());
    if let Some(body) = &spec.body {
        request = request.body(body.clone());
    }
    request
        .send()
        .await
        .map_err(|e| SendError::Failed(describe_error(&e, spec, url)))
}

/// One request held to the target policy, redirects followed here so each
/// hop's address is checked: an IP literal before connecting, a host name
/// by the client's resolver. Redirects behave as reqwest's: 301/302/303
/// turn into a GET without body, 307/308 keep both, and credentials
/// (Authorization, Cookie) are dropped when the origin changes.
async fn send_restricted(
    spec: &EndpointSpec,
    url: &str,
    mut headers: reqwest::header::HeaderMap,
    clients: &HttpClients,
) -> Result<reqwest::Response, SendError> {
    use reqwest::header;
    let policy = clients.policy.clone();
    let mut url =
        reqwest::Url::parse(url).map_err(|e| SendError::Failed(format!("invalid request: {e}")))?;
    let mut method = method(spec.method);
    let mut body = spec.body.clone();
    let mut hops = 0u32;
    loop {
        let port = url.port_or_known_default().unwrap_or(0);
        let host = url.host_str().unwrap_or_default();
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            policy
                .decide(SocketAddr::new(ip, port))
                .map_err(SendError::Refused)?;
        }
        let client = clients
            .restricted(spec.tls_verify, policy.own_port() == Some(port))
            .map_err(SendError::Failed)?;
        let mut request = client
            .request(method.clone(), url.clone())
            .headers(headers.clone())
            .timeout(spec.timeout.std());
        if let Some(b) = &body {
            request = request.body(b.clone());
        }
        let response = request.send().await.map_err(|e| match resolve_error(&e) {
            Some(ResolveError::Refused(r)) => SendError::Refused(r.clone()),
            Some(other) => SendError::Failed(other.to_string()),
            None => SendError::Failed(describe_error(&e, spec, url.as_str())),
        })?;
        let code = response.status().as_u16();
        let next = matches!(code, 301 | 302 | 303 | 307 | 308)
            .then(|| response.headers().get(header::LOCATION))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|loc| url.join(loc).ok())
            .filter(|n| matches!(n.scheme(), "http" | "https"));
        let Some(next) = next else {
            return Ok(response);
        };
        if spec.max_redirects == 0 {
            return Ok(response);
        }
        if hops >= spec.max_redirects {
            return Err(SendError::Failed(format!(
                "too many redirects (more than max_redirects = {})",
                spec.max_redirects
            )));
        }
        hops += 1;
        if matches!(code, 301..=303) {
            body = None;
            for h in [
                header::TRANSFER_ENCODING,
                header::CONTENT_ENCODING,
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
            ] {
                headers.remove(h);
            }
            if method != reqwest::Method::GET && method != reqwest::Method::HEAD {
                method = reqwest::Method::GET;
            }
        }
        let same_origin = next.scheme() == url.scheme()
            && next.host_str() == url.host_str()
            && next.port_or_known_default() == url.port_or_known_default();
        if !same_origin {
            for h in [
                header::AUTHORIZATION,
                header::COOKIE,
                header::PROXY_AUTHORIZATION,
                header::WWW_AUTHENTICATE,
            ] {
                headers.remove(h);
            }
            headers.remove("cookie2");
        }
        url = next;
    }
}

/// The policy resolver's error inside a reqwest error.
fn resolve_error(e: &reqwest::Error) -> Option<&ResolveError> {
    chain(e)
        .into_iter()
        .find_map(|e| e.downcast_ref::<ResolveError>())
}

async fn probe_http(
    spec: &EndpointSpec,
    url: &str,
    clients: &HttpClients,
    restricted: bool,
) -> ProbeOutcome {
    let headers = match header_map(spec) {
        Ok(h) => h,
        Err(e) => return ProbeOutcome::failed(e, Duration::ZERO),
    };
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + spec.timeout.std();
    // reqwest enforces the timeout; the outer one is a backstop.
    let sent = async {
        if restricted {
            send_restricted(spec, url, headers, clients).await
        } else {
            send_pooled(spec, url, headers, clients).await
        }
    };
    let response = match tokio::time::timeout_at(deadline, sent).await {
        Err(_) => return ProbeOutcome::failed(timed_out(spec), start.elapsed()),
        Ok(Err(SendError::Refused(r))) => return ProbeOutcome::refused(r, start.elapsed()),
        Ok(Err(SendError::Failed(e))) => return ProbeOutcome::failed(e, start.elapsed()),
        Ok(Ok(r)) => r,
    };
    let status = response.status().as_u16();
    let certificate_not_after = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .and_then(not_after);
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);

    let body = if spec.conditions.iter().any(|c| c.needs_body()) {
        match tokio::time::timeout_at(deadline, read_body(response)).await {
            Err(_) => return failed_after_status(status, timed_out(spec), start),
            Ok(Err(e)) => {
                let e = if e.is_timeout() {
                    timed_out(spec)
                } else {
                    format!("could not read the body: {}", innermost(&e))
                };
                return failed_after_status(status, e, start);
            }
            Ok(Ok(b)) => Some(b),
        }
    } else {
        drop(response);
        None
    };
    let response_time = start.elapsed();

    // (error, the same without what was read from the body)
    let mut errors: Vec<(String, String)> = Vec::new();
    if !spec.expected_status.iter().any(|p| p.matches(status)) {
        let mut e = format!(
            "status {status} not in {}",
            expected_text(&spec.expected_status)
        );
        if (300..400).contains(&status)
            && let Some(loc) = location
        {
            e.push_str(&format!(" (redirects to {loc})"));
        }
        errors.push((e.clone(), e));
    }
    let facts = CheckFacts {
        status: Some(status),
        response_time,
        body: body.as_deref(),
        connected: true,
        certificate_expiration: certificate_not_after.map(|t| {
            let left = t - time::OffsetDateTime::now_utc();
            left.try_into().unwrap_or(Duration::ZERO)
        }),
    };
    errors.extend(spec.conditions.iter().filter_map(|c| {
        c.evaluate(&facts).err().map(|e| {
            let public = if c.needs_body() {
                format!("{c} failed")
            } else {
                e.clone()
            };
            (e, public)
        })
    }));
    let (error, public_error) = join_errors(errors);
    ProbeOutcome {
        up: error.is_none(),
        status: Some(status),
        response_time,
        error,
        public_error,
        certificate_not_after,
        refused: None,
    }
}

/// The errors and their public forms, each joined with `; `.
fn join_errors(errors: Vec<(String, String)>) -> (Option<String>, Option<String>) {
    if errors.is_empty() {
        return (None, None);
    }
    let (full, public): (Vec<String>, Vec<String>) = errors.into_iter().unzip();
    (Some(full.join("; ")), Some(public.join("; ")))
}

fn failed_after_status(status: u16, error: String, start: Instant) -> ProbeOutcome {
    ProbeOutcome {
        status: Some(status),
        ..ProbeOutcome::failed(error, start.elapsed())
    }
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut buf = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY_BYTES - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= MAX_BODY_BYTES {
            break;
        }
    }
    Ok(buf)
}

fn method(m: HttpMethod) -> reqwest::Method {
    match m {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Head => reqwest::Method::HEAD,
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Patch => reqwest::Method::PATCH,
        HttpMethod::Delete => reqwest::Method::DELETE,
        HttpMethod::Options => reqwest::Method::OPTIONS,
    }
}

/// `[200, 3xx]`
fn expected_text(patterns: &[StatusPattern]) -> String {
    let parts: Vec<String> = patterns
        .iter()
        .map(|p| match StatusPatternRepr::from(*p) {
            StatusPatternRepr::Code(c) => c.to_string(),
            StatusPatternRepr::Text(t) => t,
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// notAfter of a DER certificate.
fn not_after(der: &[u8]) -> Option<time::OffsetDateTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.to_datetime())
}

/// The error and its sources, most general first. An `io::Error` wrapping a
/// custom error hides it from `source()`; it is unwrapped here.
fn chain<'a>(e: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = vec![e];
    let mut cur = e;
    while out.len() < 32 {
        let next = match cur.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn StdError + 'static)),
                None => io.source(),
            },
            None => cur.source(),
        };
        match next {
            Some(n) => {
                out.push(n);
                cur = n;
            }
            None => break,
        }
    }
    out
}

/// The most specific message in the chain.
fn innermost(e: &(dyn StdError + 'static)) -> String {
    chain(e).last().map(|e| e.to_string()).unwrap_or_default()
}

/// A failed request, for a person.
fn describe_error(e: &reqwest::Error, spec: &EndpointSpec, url: &str) -> String {
    if e.is_timeout() {
        return timed_out(spec);
    }
    if e.is_redirect() {
        return format!(
            "too many redirects (more than max_redirects = {})",
            spec.max_redirects
        );
    }
    if e.is_builder() {
        return format!("invalid request: {}", innermost(e));
    }
    let errs = chain(e);
    for err in &errs {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return tls_message(tls);
        }
    }
    for err in &errs {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => return "connection reset by peer".into(),
                std::io::ErrorKind::TimedOut => return timed_out(spec),
                _ => {}
            }
        }
    }
    let last = innermost(e);
    if errs.iter().any(|e| e.to_string() == "dns error") {
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        return format!("DNS lookup failed for {host}: {last}");
    }
    last
}

fn tls_message(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => {
            let why = match c {
                C::UnknownIssuer => {
                    "unknown issuer (self-signed, or not signed by a trusted CA; tls_verify: false accepts it)"
                        .to_owned()
                }
                C::Expired => "certificate expired".to_owned(),
                C::NotValidYet => "certificate not valid yet".to_owned(),
                C::NotValidForName => "certificate not valid for this host name".to_owned(),
                C::Revoked => "certificate revoked".to_owned(),
                C::BadSignature => "bad signature".to_owned(),
                C::BadEncoding => "badly encoded certificate".to_owned(),
                C::Other(o) => o.to_string(),
                other => other.to_string(),
            };
            format!("certificate verify failed: {why}")
        }
        other => format!("TLS handshake failed: {other}"),
    }
}

// ---------------------------------------------------------------- TCP

async fn probe_tcp(
    spec: &EndpointSpec,
    host: &str,
    port: u16,
    policy: Option<&TargetPolicy>,
) -> ProbeOutcome {
    let start = Instant::now();
    let connect = async {
        let addrs: Vec<std::net::SocketAddr> = match policy {
            // Resolved once: the addresses checked are the ones connected to.
            Some(p) => p.resolve(host, port).await.map_err(|e| match e {
                ResolveError::Refused(r) => SendError::Refused(r),
                other => SendError::Failed(other.to_string()),
            })?,
            None => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| SendError::Failed(format!("DNS lookup failed for {host}: {e}")))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(SendError::Failed(format!(
                "DNS lookup failed for {host}: no addresses"
            )));
        }
        tokio::net::TcpStream::connect(&addrs[..])
            .await
            .map_err(|e| {
                SendError::Failed(match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
                    std::io::ErrorKind::ConnectionReset => "connection reset by peer".to_owned(),
                    std::io::ErrorKind::TimedOut => timed_out(spec),
                    _ => e.to_string(),
                })
            })
    };
    let result = tokio::time::timeout(spec.timeout.std(), connect).await;
    let response_time = start.elapsed();
    match result {
        Err(_) => ProbeOutcome::failed(timed_out(spec), response_time),
        Ok(Err(SendError::Refused(r))) => ProbeOutcome::refused(r, response_time),
        Ok(Err(SendError::Failed(e))) => ProbeOutcome::failed(e, response_time),
        Ok(Ok(stream)) => {
            drop(stream);
            let facts = CheckFacts {
                response_time,
                connected: true,
                ..Default::default()
            };
            let errors: Vec<(String, String)> = spec
                .conditions
                .iter()
                .filter_map(|c| c.evaluate(&facts).err())
                .map(|e| (e.clone(), e))
                .collect();
            let (error, public_error) = join_errors(errors);
            ProbeOutcome {
                up: error.is_none(),
                status: None,
                response_time,
                error,
                public_error,
                certificate_not_after: None,
                refused: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::Condition;
    use axum::Router;
    use axum::http::{HeaderMap, Method, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::{any, get};
    use std::collections::BTreeMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn init() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }

    fn spec(target: Target) -> EndpointSpec {
        EndpointSpec {
            name: "t".into(),
            group: None,
            target,
            method: HttpMethod::Get,
            headers: BTreeMap::new(),
            body: None,
            expected_status: vec![StatusPattern { min: 200, max: 299 }],
            conditions: vec![],
            tls_verify: true,
            max_redirects: 10,
            interval: crate::duration::Duration::from_secs(30),
            timeout: crate::duration::Duration::from_secs(5),
            failure_threshold: 3,
            recovery_threshold: 2,
            alert: None,
        }
    }

    fn http_spec(url: String) -> EndpointSpec {
        spec(Target::Http { url })
    }

    fn conds(list: &[&str]) -> Vec<Condition> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    /// An axum test server on 127.0.0.1; returns its base URL.
    async fn server() -> String {
        async fn echo(method: Method, headers: HeaderMap, body: String) -> String {
            let x = headers
                .get("x-test")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            let ua = headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            format!("{method} {x} {body} {ua}")
        }
        let app = Router::new()
            .route("/ok", get(|| async { "pong\n" }))
            .route(
                "/json",
                get(|| async {
                    (
                        [("content-type", "application/json")],
                        r#"{"status":"UP","items":[1,2,3]}"#,
                    )
                }),
            )
            .route(
                "/status/{code}",
                get(
                    |axum::extract::Path(code): axum::extract::Path<u16>| async move {
                        StatusCode::from_u16(code).unwrap().into_response()
                    },
                ),
            )
            .route(
                "/loop",
                get(|| async { (StatusCode::FOUND, [("location", "/loop")]) }),
            )
            .route(
                "/once",
                get(|| async { (StatusCode::FOUND, [("location", "/ok")]) }),
            )
            .route("/big", get(|| async { "x".repeat(2 * MAX_BODY_BYTES) }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    "late"
                }),
            )
            .route("/echo", any(echo));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }

    /// A port on 127.0.0.1 with nothing listening.
    async fn closed_port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn http_up_with_conditions() {
        init();
        let base = server().await;
        let clients = HttpClients::new();
        let mut s = http_spec(format!("{base}/json"));
        s.conditions = conds(&[
            "[STATUS] == 200",
            "[BODY].status == UP",
            "len([BODY].items) == 3",
            "[RESPONSE_TIME] < 5s",
            "[CONNECTED] == true",
        ]);
        let o = probe(&s, &clients).await;
        assert_eq!(o.error, None);
        assert!(o.up);
        assert_eq!(o.status, Some(200));
        assert_eq!(o.certificate_not_after, None);
        assert!(o.response_time > Duration::ZERO && o.response_time < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn http_condition_failures_are_reported() {
        init();
        let base = server().await;
        let mut s = http_spec(format!("{base}/json"));
        s.conditions = conds(&[
            "[BODY].status == DOWN",
            "[BODY].missing == 1",
            "[STATUS] < 300",
        ]);
        let o = probe(&s, &HttpClients::new()).await;
        assert!(!o.up);
        assert_eq!(o.status, Some(200));
        assert_eq!(
            o.error.as_deref(),
            Some(
                "[BODY].status == DOWN failed: [BODY].status was UP; \
                 [BODY].missing == 1 failed: [BODY].missing not found"
            )
        );
        let mut s = http_spec(format!("{base}/ok"));
        s.conditions = conds(&["[BODY].status == UP", "[CERTIFICATE_EXPIRATION] > 72h"]);
        let o = probe(&s, &HttpClients::new()).await;
        assert_eq!(
            o.error.as_deref(),
            Some(
                "[BODY].status == UP failed: [BODY] is not JSON; \
                 [CERTIFICATE_EXPIRATION] > 72h failed: no certificate (not https)"
            )
        );
        s.conditions = conds(&["[BODY] == pong"]);
        assert_eq!(probe(&s, &HttpClients::new()).await.error, None);
    }

    #[tokio::test]
    async fn http_unexpected_status() {
        init();
        let base = server().await;
        let clients = HttpClients::new();
        let mut s = http_spec(format!("{base}/status/503"));
        let o = probe(&s, &clients).await;
        assert!(!o.up);
        assert_eq!(o.status, Some(503));
        assert_eq!(o.error.as_deref(), Some("status 503 not in [2xx]"));
        s.expected_status = vec![
            StatusPattern { min: 200, max: 200 },
            StatusPattern { min: 500, max: 599 },
        ];
        let o = probe(&s, &clients).await;
        assert!(o.up, "{:?}", o.error);
        set_url(&mut s, format!("{base}/status/404"));
        let o = probe(&s, &clients).await;
        assert_eq!(o.error.as_deref(), Some("status 404 not in [200, 5xx]"));
    }

    fn set_url(s: &mut EndpointSpec, url: String) {
        s.target = Target::Http { url };
    }

    #[tokio::test]
    async fn http_method_headers_body_and_user_agent() {
        init();
        let base = server().await;
        let mut s = http_spec(format!("{base}/echo"));
        s.method = HttpMethod::Post;
        s.headers.insert("X-Test".into(), "abc".into());
        s.body = Some("hello".into());
        s.conditions = conds(&[&format!(
            "[BODY] == \"POST abc hello maintenant/{}\"",
            env!("CARGO_PKG_VERSION")
        )]);
        let o = probe(&s, &HttpClients::new()).await;
        assert!(o.up, "{:?}", o.error);
    }

    #[tokio::test]
    async fn http_invalid_header_is_an_error_not_a_panic() {
        init();
        let base = server().await;
        let mut s = http_spec(format!("{base}/ok"));
        s.headers.insert("bad header".into(), "x".into());
        let o = probe(&s, &HttpClients::new()).await;
        assert!(!o.up);
        assert!(o.error.unwrap().contains("invalid header name"));
        let mut s = http_spec(format!("{base}/ok"));
        s.headers.insert("x-ok".into(), "line\nbreak".into());
        let o = probe(&s, &HttpClients::new()).await;
        assert!(o.error.unwrap().contains("invalid value for header x-ok"));
        let s = http_spec("http://[::1".into());
        let o = probe(&s, &HttpClients::new()).await;
        assert!(o.error.unwrap().starts_with("invalid request"));
    }

    #[tokio::test]
    async fn http_redirects() {
        init();
        let base = server().await;
        let clients = HttpClients::new();
        let mut s = http_spec(format!("{base}/once"));
        s.conditions = conds(&["[BODY] == pong"]);
        let o = probe(&s, &clients).await;
        assert!(o.up, "{:?}", o.error);
        assert_eq!(o.status, Some(200));

        s.max_redirects = 0;
        s.conditions.clear();
        let o = probe(&s, &clients).await;
        assert_eq!(o.status, Some(302));
        assert_eq!(
            o.error.as_deref(),
            Some("status 302 not in [2xx] (redirects to /ok)")
        );

        let mut s = http_spec(format!("{base}/loop"));
        s.max_redirects = 3;
        let o = probe(&s, &clients).await;
        assert!(!o.up);
        assert_eq!(
            o.error.as_deref(),
            Some("too many redirects (more than max_redirects = 3)")
        );
        assert_eq!(
            clients.len(),
            3,
            "one client per (tls_verify, max_redirects)"
        );
    }

    #[tokio::test]
    async fn http_body_is_capped() {
        init();
        let base = server().await;
        let mut s = http_spec(format!("{base}/big"));
        s.conditions = conds(&[&format!("len([BODY]) == {MAX_BODY_BYTES}")]);
        let o = probe(&s, &HttpClients::new()).await;
        assert!(o.up, "{:?}", o.error);
    }

    #[tokio::test]
    async fn http_connection_refused() {
        init();
        let port = closed_port().await;
        let o = probe(
            &http_spec(format!("http://127.0.0.1:{port}/")),
            &HttpClients::new(),
        )
        .await;
        assert!(!o.up);
        assert_eq!(o.status, None);
        assert_eq!(o.error.as_deref(), Some("connection refused"));
    }

    #[tokio::test]
    async fn http_timeout_when_server_never_answers() {
        init();
        // Accepts connections and never answers.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = l.accept().await {
                held.push(sock);
            }
        });
        let mut s = http_spec(format!("http://{addr}/"));
        s.timeout = crate::duration::Duration::from_millis(300);
        let started = Instant::now();
        let o = probe(&s, &HttpClients::new()).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(!o.up);
        assert_eq!(o.error.as_deref(), Some("timed out after 300ms"));
        hold.abort();
    }

    #[tokio::test]
    async fn http_timeout_on_slow_handler() {
        init();
        let base = server().await;
        let mut s = http_spec(format!("{base}/slow"));
        s.timeout = crate::duration::Duration::from_millis(300);
        let o = probe(&s, &HttpClients::new()).await;
        assert_eq!(o.error.as_deref(), Some("timed out after 300ms"));
    }

    /// Headers at once, then a body that takes long: without body conditions
    /// the check does not wait for it; with one it does (and times out).
    #[tokio::test]
    async fn http_body_read_only_when_needed() {
        init();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            while let Ok((mut sock, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let _ = sock
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
                        .await;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    let _ = sock.write_all(b"defghij").await;
                });
            }
        });
        let clients = HttpClients::new();
        let mut s = http_spec(format!("http://{addr}/"));
        s.timeout = crate::duration::Duration::from_millis(400);
        let o = probe(&s, &clients).await;
        assert!(o.up, "{:?}", o.error);
        assert!(o.response_time < Duration::from_millis(400));
        s.conditions = conds(&["[BODY] == abcdefghij"]);
        let o = probe(&s, &clients).await;
        assert!(!o.up);
        assert_eq!(o.status, Some(200));
        assert_eq!(o.error.as_deref(), Some("timed out after 400ms"));
        server.abort();
    }

    #[tokio::test]
    async fn tcp_connected() {
        init();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let mut s = spec(Target::Tcp {
            host: "127.0.0.1".into(),
            port,
        });
        s.conditions = conds(&["[CONNECTED] == true", "[RESPONSE_TIME] < 5000"]);
        let o = probe(&s, &HttpClients::new()).await;
        assert!(o.up, "{:?}", o.error);
        assert_eq!(o.status, None);
        s.conditions = conds(&["[RESPONSE_TIME] < 0"]);
        let o = probe(&s, &HttpClients::new()).await;
        assert!(!o.up);
        assert!(
            o.error
                .unwrap()
                .starts_with("[RESPONSE_TIME] < 0 failed: [RESPONSE_TIME] was")
        );
        drop(l);
    }

    #[tokio::test]
    async fn tcp_refused() {
        init();
        let port = closed_port().await;
        let s = spec(Target::Tcp {
            host: "127.0.0.1".into(),
            port,
        });
        let o = probe(&s, &HttpClients::new()).await;
        assert!(!o.up);
        assert_eq!(o.error.as_deref(), Some("connection refused"));
    }

    #[tokio::test]
    async fn tcp_timeout_when_backlog_is_full() {
        init();
        // A listener that never accepts, with its backlog filled: further
        // SYNs are dropped and the connect hangs.
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let l = sock.listen(0).unwrap();
        let addr = l.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..4 {
            if let Ok(Ok(c)) = tokio::time::timeout(
                Duration::from_millis(200),
                tokio::net::TcpStream::connect(addr),
            )
            .await
            {
                fillers.push(c);
            } else {
                break;
            }
        }
        let mut s = spec(Target::Tcp {
            host: "127.0.0.1".into(),
            port: addr.port(),
        });
        s.timeout = crate::duration::Duration::from_millis(300);
        let o = probe(&s, &HttpClients::new()).await;
        assert!(!o.up);
        assert_eq!(o.error.as_deref(), Some("timed out after 300ms"));
        assert!(o.response_time >= Duration::from_millis(300));
        drop(l);
    }

    /// A self-signed certificate for 127.0.0.1 and localhost, made now with
    /// rcgen, valid until 2126-11-01 07:43:19 UTC.
    fn self_signed() -> (Vec<u8>, Vec<u8>) {
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap();
        params.not_after = time::macros::datetime!(2126-11-01 07:43:19 UTC);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.der().to_vec(), key.serialize_der())
    }

    /// A TLS server on 127.0.0.1 (blocking rustls in a thread) answering
    /// every request with 200 "secure". Returns its port.
    fn tls_server() -> u16 {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        use std::io::{Read, Write};
        let (cert, key) = self_signed();
        let cert = CertificateDer::from(cert);
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
        let config = Arc::new(
            rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { continue };
                let config = config.clone();
                std::thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let mut tls = rustls::StreamOwned::new(conn, tcp);
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tls.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nsecure",
                    );
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn https_certificate_facts_and_verification() {
        init();
        let port = tls_server();
        let clients = HttpClients::new();
        let mut s = http_spec(format!("https://127.0.0.1:{port}/"));
        s.tls_verify = false;
        s.conditions = conds(&["[CERTIFICATE_EXPIRATION] > 72h", "[BODY] == secure"]);
        let o = probe(&s, &clients).await;
        assert!(o.up, "{:?}", o.error);
        assert_eq!(
            o.certificate_not_after,
            Some(time::macros::datetime!(2126-11-01 07:43:19 UTC))
        );

        s.conditions = conds(&["[CERTIFICATE_EXPIRATION] > 36500d"]);
        let o = probe(&s, &clients).await;
        assert!(!o.up);
        assert!(
            o.error.as_deref().unwrap().starts_with(
                "[CERTIFICATE_EXPIRATION] > 36500d failed: [CERTIFICATE_EXPIRATION] was"
            ),
            "{:?}",
            o.error
        );

        s.tls_verify = true;
        s.conditions.clear();
        let o = probe(&s, &clients).await;
        assert!(!o.up);
        let e = o.error.unwrap();
        assert!(
            e.starts_with("certificate verify failed: unknown issuer"),
            "{e}"
        );
    }

    // ------------------------------------------------ the target policy

    use crate::checks::targets::{StaticLookup, TargetPolicy};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A raw listener on `ip` that counts the connections it accepts and
    /// answers each with `200 ok`: a policy that works sees zero accepts.
    async fn counting_listener(ip: &str) -> (u16, Arc<AtomicUsize>) {
        let l = TcpListener::bind((ip, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let accepts = Arc::new(AtomicUsize::new(0));
        let a = accepts.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
        (port, accepts)
    }

    /// 127.0.0.2 denied; `meta.test` resolves there, `ok.test` to 127.0.0.1
    /// (a table, not DNS: deterministic, and nothing leaves loopback).
    fn deny_127_0_0_2(own: Option<SocketAddr>) -> HttpClients {
        let lookup = StaticLookup(vec![
            ("meta.test".into(), "127.0.0.2".parse().unwrap()),
            ("ok.test".into(), "127.0.0.1".parse().unwrap()),
        ]);
        HttpClients::with_policy(
            TargetPolicy::new(&["127.0.0.2/32".into()], &[], own, false)
                .unwrap()
                .with_lookup(Arc::new(lookup)),
        )
    }

    /// A 127.0.0.1 server whose `/to?u=URL` answers `CODE` to URL.
    async fn redirector() -> String {
        #[derive(serde::Deserialize)]
        struct Q {
            u: String,
            code: Option<u16>,
        }
        let app = Router::new()
            .route(
                "/to",
                any(
                    |axum::extract::Query(q): axum::extract::Query<Q>| async move {
                        (
                            StatusCode::from_u16(q.code.unwrap_or(302)).unwrap(),
                            [("location", q.u)],
                        )
                    },
                ),
            )
            .route(
                "/seen",
                any(
                    |method: Method, headers: HeaderMap, body: String| async move {
                        let auth = headers.contains_key("authorization");
                        format!("{method} auth={auth} body={body}")
                    },
                ),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }

    fn enc(u: &str) -> String {
        u.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_denied_address_is_refused_before_any_connection() {
        init();
        let (port, accepts) = counting_listener("127.0.0.2").await;
        let clients = deny_127_0_0_2(None);
        let s = http_spec(format!("http://127.0.0.2:{port}/"));

        let o = probe_as(&s, &clients, true).await;
        let r = o.refused.as_ref().expect("refused");
        assert_eq!(r.target, "127.0.0.2");
        assert_eq!(r.rule, "is in 127.0.0.2/32 (MAINTENANT_TARGET_DENY)");
        assert!(!o.up);
        assert_eq!(o.error.as_deref(), Some(r.to_string().as_str()));
        assert_eq!(o.status, None);

        // A name that resolves there, over HTTP and TCP.
        let o = probe_as(
            &http_spec(format!("http://meta.test:{port}/")),
            &clients,
            true,
        )
        .await;
        assert_eq!(
            o.error.as_deref(),
            Some(
                "refused by target policy: 127.0.0.2 (resolved from meta.test) is in 127.0.0.2/32 (MAINTENANT_TARGET_DENY)"
            )
        );
        for host in ["127.0.0.2", "meta.test", "::ffff:127.0.0.2"] {
            let t = spec(Target::Tcp {
                host: host.into(),
                port,
            });
            let o = probe_as(&t, &clients, true).await;
            assert!(o.refused.is_some(), "tcp {host}: {o:?}");
        }
        assert_eq!(accepts.load(Ordering::SeqCst), 0, "no connection was made");

        // The listener is real: an unrestricted check of the same URL gets there.
        let o = probe_as(&s, &clients, false).await;
        assert!(o.up, "{o:?}");
        assert_eq!(accepts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn allowed_names_and_addresses_are_checked_as_usual() {
        init();
        let base = server().await;
        let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
        let clients = deny_127_0_0_2(None);
        for url in [
            format!("{base}/json"),
            format!("http://ok.test:{port}/json"),
        ] {
            let mut s = http_spec(url.clone());
            s.conditions = conds(&["[BODY].status == UP"]);
            let o = probe_as(&s, &clients, true).await;
            assert!(o.up && o.refused.is_none(), "{url}: {o:?}");
        }
        let o = probe_as(
            &spec(Target::Tcp {
                host: "ok.test".into(),
                port,
            }),
            &clients,
            true,
        )
        .await;
        assert!(o.up, "{o:?}");
    }

    #[tokio::test]
    async fn every_redirect_hop_is_held_to_the_policy() {
        init();
        let (port, accepts) = counting_listener("127.0.0.2").await;
        let base = redirector().await;
        let clients = deny_127_0_0_2(None);
        for (code, to) in [
            (302, format!("http://127.0.0.2:{port}/x")),
            (307, format!("http://meta.test:{port}/x")),
            (301, format!("http://[::ffff:127.0.0.2]:{port}/x")),
        ] {
            let s = http_spec(format!("{base}/to?code={code}&u={}", enc(&to)));
            let o = probe_as(&s, &clients, true).await;
            assert!(o.refused.is_some(), "{code} to {to}: {o:?}");
        }
        // Two hops: allowed, allowed, then refused.
        let last = format!("http://127.0.0.2:{port}/x");
        let second = format!("{base}/to?u={}", enc(&last));
        let s = http_spec(format!("{base}/to?u={}", enc(&second)));
        assert!(probe_as(&s, &clients, true).await.refused.is_some());
        assert_eq!(
            accepts.load(Ordering::SeqCst),
            0,
            "no hop reached 127.0.0.2"
        );

        // Unrestricted, the same redirect is followed (by reqwest).
        let s = http_spec(format!("{base}/to?u={}", enc(&last)));
        assert!(probe_as(&s, &clients, false).await.up);
        assert_eq!(accepts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn restricted_redirects_behave_like_reqwest() {
        init();
        let base = redirector().await;
        let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
        let clients = deny_127_0_0_2(None);
        let post = |url: String| {
            let mut s = http_spec(url);
            s.method = HttpMethod::Post;
            s.body = Some("b".into());
            s.headers.insert("authorization".into(), "Bearer t".into());
            s.conditions = conds(&["[STATUS] == 200"]);
            s
        };
        // (code, target, what /seen must have received)
        let same = format!("{base}/seen");
        let other = format!("http://ok.test:{port}/seen");
        for (code, to, want) in [
            (303, &same, "GET auth=true body="),
            (307, &same, "POST auth=true body=b"),
            (308, &other, "POST auth=false body=b"),
        ] {
            let mut s = post(format!("{base}/to?code={code}&u={}", enc(to)));
            s.conditions = conds(&[&format!("[BODY] == {want}")]);
            let o = probe_as(&s, &clients, true).await;
            assert!(o.up, "{code} to {to}: {o:?}");
        }
        // The limit counts hops.
        let mut s = http_spec(format!("{base}/to?u=%2Fto%3Fu%3D%252Fseen"));
        s.max_redirects = 1;
        let o = probe_as(&s, &clients, true).await;
        assert_eq!(
            o.error.as_deref(),
            Some("too many redirects (more than max_redirects = 1)")
        );
        s.max_redirects = 2;
        assert!(probe_as(&s, &clients, true).await.up);
        // Not followed at all: the redirect is the answer.
        s.max_redirects = 0;
        assert_eq!(probe_as(&s, &clients, true).await.status, Some(302));
    }

    #[tokio::test]
    async fn maintenant_s_own_address_is_refused_by_name_too() {
        init();
        let base = server().await;
        let own: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
        let clients = deny_127_0_0_2(Some(own));
        for url in [
            format!("{base}/ok"),
            format!("http://ok.test:{}/ok", own.port()),
        ] {
            let o = probe_as(&http_spec(url.clone()), &clients, true).await;
            let r = o.refused.unwrap_or_else(|| panic!("{url}: not refused"));
            assert!(r.rule.contains("own listen address"), "{r}");
        }
        // Another port of the same host is not maintenant.
        let other = server().await;
        assert!(
            probe_as(&http_spec(format!("{other}/ok")), &clients, true)
                .await
                .up
        );
    }

    #[tokio::test]
    async fn the_public_error_quotes_nothing_from_the_body() {
        init();
        let base = server().await;
        let clients = HttpClients::new();
        let mut s = http_spec(format!("{base}/json"));
        s.conditions = conds(&["[STATUS] == 201", "[BODY].status == DOWN"]);
        let o = probe(&s, &clients).await;
        let full = o.error.unwrap();
        let public = o.public_error.unwrap();
        assert!(full.contains("UP"), "{full}");
        assert!(!public.contains("UP"), "{public}");
        assert_eq!(
            public,
            "[STATUS] == 201 failed: [STATUS] was 200; [BODY].status == DOWN failed"
        );
    }
}
