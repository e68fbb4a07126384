//! The certificate check: TCP connect, TLS handshake with SNI (rustls, ring),
//! then the chain parsed with x509-parser.
//!
//! The handshake uses a verifier that accepts any chain, so an expired,
//! self-signed or misnamed certificate is still read and reported; the real
//! verdicts (chain against the trust roots, host name) are computed on the
//! side and recorded. A failure to connect or to shake hands is `error`,
//! never `expired`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::targets::{Refusal, ResolveError, TargetPolicy};
use crate::config::model::CertificateSpec;

/// Extra trusted roots (PEM file), added to the system roots: a private CA,
/// or a test CA.
pub const EXTRA_CA_ENV: &str = "MAINTENANT_EXTRA_CA_FILE";

/// What a certificate check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertStatus {
    /// Declared, not yet checked.
    Pending,
    Valid,
    /// Valid, with `days_left` at or under the largest `warn_days` threshold.
    Expiring,
    Expired,
    /// The chain does not verify against the trust roots, or the host name does not match.
    Invalid,
    /// No certificate was read: connection refused, timeout, handshake failure.
    Error,
    /// Paused by `pause_monitor`: not checked until `resume_monitor`, as paused
    /// endpoints and heartbeats show. Only the read side says it; a check
    /// never stores it.
    Paused,
}

impl CertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Pending => "pending",
            CertStatus::Valid => "valid",
            CertStatus::Expiring => "expiring",
            CertStatus::Expired => "expired",
            CertStatus::Invalid => "invalid",
            CertStatus::Error => "error",
            CertStatus::Paused => "paused",
        }
    }
}

/// One certificate check, as stored and shown by `list_certificates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CertificateCheck {
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    pub status: CertStatus,
    /// When `status` last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub since: OffsetDateTime,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    /// DNS names and IP addresses the leaf certificate is valid for.
    pub sans: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub not_before: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub not_after: Option<OffsetDateTime>,
    /// Whole days until `not_after` (negative once expired).
    pub days_left: Option<i64>,
    /// The chain verifies against the system roots (plus MAINTENANT_EXTRA_CA_FILE).
    pub chain_valid: Option<bool>,
    /// Why the chain does not verify.
    pub chain_error: Option<String>,
    /// The certificate is valid for the host name checked.
    pub hostname_match: Option<bool>,
    /// The smallest `warn_days` threshold crossed (`days_left <= threshold`).
    pub threshold_days: Option<u32>,
    /// Certificates the server sent (leaf first).
    pub chain_length: usize,
    /// Connection or handshake failure (status `error`), or what made it invalid.
    pub error: Option<String>,
    pub duration_ms: f64,
}

/// What the verifier saw during the handshake.
#[derive(Default)]
struct Seen {
    chain: Vec<CertificateDer<'static>>,
    chain_error: Option<String>,
    hostname_error: Option<String>,
    handshake_error: Option<String>,
}

/// Accepts any certificate (so the check can read bad ones) and records the
/// real verdicts. Handshake signatures are still verified: a server must
/// hold the key of the certificate it shows.
#[derive(Debug)]
struct Recorder {
    roots: Arc<RootCertStore>,
    algs: WebPkiSupportedAlgorithms,
    seen: Arc<Mutex<Option<SeenBox>>>,
}

#[derive(Debug)]
struct SeenBox(Seen);

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seen")
            .field("certs", &self.chain.len())
            .finish()
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut seen = Seen {
            chain: std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect(),
            ..Seen::default()
        };
        match rustls::server::ParsedCertificate::try_from(end_entity) {
            Ok(parsed) => {
                if let Err(e) = rustls::client::verify_server_cert_signed_by_trust_anchor(
                    &parsed,
                    &self.roots,
                    intermediates,
                    now,
                    self.algs.all,
                ) {
                    seen.chain_error = Some(describe(&e));
                }
                if let Err(e) = rustls::client::verify_server_name(&parsed, server_name) {
                    seen.hostname_error = Some(describe(&e));
                }
            }
            Err(e) => seen.chain_error = Some(describe(&e)),
        }
        *self.seen.lock().expect("verifier lock") = Some(SeenBox(seen));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

fn describe(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "unknown issuer: the chain does not lead to a trusted root (self-signed or private CA?)"
                .into()
        }
        rustls::Error::InvalidCertificate(C::Expired) => "certificate expired".into(),
        rustls::Error::InvalidCertificate(C::NotValidYet) => "certificate not valid yet".into(),
        rustls::Error::InvalidCertificate(C::NotValidForName) => {
            "certificate is not valid for this host name".into()
        }
        other => other.to_string(),
    }
}

static EXTRA_CA: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Set the extra CA file once at start-up (from the settings); without a
/// call, `MAINTENANT_EXTRA_CA_FILE` is read.
pub fn set_extra_ca_file(path: Option<PathBuf>) {
    let _ = EXTRA_CA.set(path);
}

/// The trust roots: the system's (rustls-native-certs; Mozilla's bundled
/// roots when the system has none) plus the PEM file named by
/// `MAINTENANT_EXTRA_CA_FILE`. Loaded once per process.
fn roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(native.certs);
            if added == 0 {
                store.add_parsable_certificates(
                    webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned(),
                );
            }
            let extra = EXTRA_CA
                .get()
                .cloned()
                .unwrap_or_else(|| std::env::var_os(EXTRA_CA_ENV).map(PathBuf::from));
            if let Some(path) = extra {
                match load_pem(&path) {
                    Ok(certs) => {
                        let (ok, bad) = store.add_parsable_certificates(certs);
                        tracing::info!(file = %path.display(), added = ok, ignored = bad, "extra trusted CAs loaded");
                    }
                    Err(e) => {
                        tracing::error!(file = %path.display(), error = %e, "cannot read {EXTRA_CA_ENV}")
                    }
                }
            }
            Arc::new(store)
        })
        .clone()
}

fn load_pem(path: &std::path::Path) -> std::io::Result<Vec<CertificateDer<'static>>> {
    let data = std::fs::read(path)?;
    rustls_pemfile::certs(&mut data.as_slice()).collect()
}

fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// Check one certificate. `prev` carries `since` over when the status did
/// not change. With a `policy` (a restricted monitor), the addresses
/// connected to are the host's addresses the policy allows; the refusal
/// is returned when it allows none (no packet was sent).
pub async fn check(
    spec: &CertificateSpec,
    timeout: Duration,
    prev: Option<&CertificateCheck>,
    policy: Option<&TargetPolicy>,
) -> (CertificateCheck, Option<Refusal>) {
    let began = std::time::Instant::now();
    let now = OffsetDateTime::now_utc();
    let mut refused = None;
    let outcome = tokio::time::timeout(timeout, async {
        let addrs = match policy {
            None => None,
            Some(p) => match p.resolve(&spec.host, spec.port).await {
                Ok(a) => Some(a),
                Err(ResolveError::Refused(r)) => {
                    let e = r.to_string();
                    refused = Some(r);
                    return Err(e);
                }
                Err(e) => return Err(e.to_string()),
            },
        };
        handshake(spec, addrs).await
    })
    .await;
    let mut c = CertificateCheck {
        at: now,
        status: CertStatus::Error,
        since: now,
        subject: None,
        issuer: None,
        sans: vec![],
        not_before: None,
        not_after: None,
        days_left: None,
        chain_valid: None,
        chain_error: None,
        hostname_match: None,
        threshold_days: None,
        chain_length: 0,
        error: None,
        duration_ms: 0.0,
    };
    match outcome {
        Err(_) => {
            c.error = Some(format!(
                "timeout: no TLS handshake with {}:{} within {timeout:?}",
                spec.host, spec.port
            ))
        }
        Ok(Err(e)) => c.error = Some(e),
        Ok(Ok(seen)) => {
            fill(&mut c, &seen, spec, now);
            if let Some(e) = seen.handshake_error {
                c.status = CertStatus::Error;
                c.error = Some(e);
            }
        }
    }
    c.duration_ms = (began.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
    if let Some(p) = prev
        && p.status == c.status
    {
        c.since = p.since;
    }
    (c, refused)
}

/// `addrs`: the addresses to connect to, already resolved (and allowed by
/// the target policy); `None` resolves the host here.
async fn handshake(spec: &CertificateSpec, addrs: Option<Vec<SocketAddr>>) -> Result<Seen, String> {
    let target = format!("{}:{}", spec.host, spec.port);
    let connected = match addrs {
        Some(a) => tokio::net::TcpStream::connect(&a[..]).await,
        None => tokio::net::TcpStream::connect((spec.host.as_str(), spec.port)).await,
    };
    let tcp = connected.map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => format!("connection refused by {target}"),
        _ => format!("cannot connect to {target}: {e}"),
    })?;
    let provider = provider();
    let seen = Arc::new(Mutex::new(None));
    let verifier = Recorder {
        roots: roots(),
        algs: provider.signature_verification_algorithms,
        seen: seen.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let name = ServerName::try_from(spec.host.clone())
        .map_err(|e| format!("invalid host name {:?}: {e}", spec.host))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let result = connector.connect(name, tcp).await;
    let recorded = seen.lock().expect("verifier lock").take();
    match (result, recorded) {
        (Ok(_), Some(SeenBox(seen))) => Ok(seen),
        // The certificate was read, then the handshake failed (e.g. the
        // server does not hold the key): report the facts, status error.
        (Err(e), Some(SeenBox(mut seen))) => {
            seen.handshake_error = Some(format!(
                "TLS handshake with {target} failed after the certificate was read: {e}"
            ));
            Ok(seen)
        }
        (Err(e), None) => Err(format!("TLS handshake with {target} failed: {e}")),
        (Ok(_), None) => Err(format!("{target} sent no certificate")),
    }
}

/// Parse the chain and decide the status.
fn fill(c: &mut CertificateCheck, seen: &Seen, spec: &CertificateSpec, now: OffsetDateTime) {
    c.chain_length = seen.chain.len();
    let Some(leaf) = seen.chain.first() else {
        c.error = Some("the server sent no certificate".into());
        return;
    };
    let parsed = match x509_parser::parse_x509_certificate(leaf.as_ref()) {
        Ok((_, cert)) => cert,
        Err(e) => {
            c.error = Some(format!("cannot parse the server's certificate: {e}"));
            return;
        }
    };
    c.subject = Some(parsed.subject().to_string());
    c.issuer = Some(parsed.issuer().to_string());
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        use x509_parser::extensions::GeneralName;
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => c.sans.push((*d).to_owned()),
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        c.sans.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let not_before = parsed.validity().not_before.to_datetime();
    let not_after = parsed.validity().not_after.to_datetime();
    c.not_before = Some(not_before);
    c.not_after = Some(not_after);
    let days_left = (not_after - now).whole_seconds().div_euclid(86_400);
    c.days_left = Some(days_left);
    c.chain_error = seen.chain_error.clone();
    c.chain_valid = Some(seen.chain_error.is_none());
    c.hostname_match = Some(seen.hostname_error.is_none());
    c.threshold_days = crossed_threshold(&spec.warn_days, days_left);
    c.status = if now > not_after {
        c.error = Some(format!("expired {} days ago", -days_left));
        CertStatus::Expired
    } else if now < not_before {
        c.error = Some("not valid yet".into());
        CertStatus::Invalid
    } else if let Some(e) = &seen.hostname_error {
        c.error = Some(format!(
            "{e}: {} is not among the names {:?}",
            spec.host, c.sans
        ));
        CertStatus::Invalid
    } else if let Some(e) = &seen.chain_error {
        c.error = Some(if parsed.subject() == parsed.issuer() {
            format!("self-signed certificate, not issued by a trusted CA ({e})")
        } else {
            e.clone()
        });
        CertStatus::Invalid
    } else if c.threshold_days.is_some() {
        CertStatus::Expiring
    } else {
        CertStatus::Valid
    };
}

/// The smallest threshold `t` of `warn_days` with `days_left <= t`.
pub fn crossed_threshold(warn_days: &[u32], days_left: i64) -> Option<u32> {
    warn_days
        .iter()
        .copied()
        .filter(|&t| days_left <= i64::from(t))
        .min()
}

/// The sled tree of latest certificate results: `monitor-id` -> [`CertificateCheck`].
const TREE: &str = "certificates";

pub fn save(
    store: &crate::store::Store,
    key: &crate::monitor::MonitorKey,
    c: &CertificateCheck,
) -> crate::store::Result<()> {
    store
        .db()
        .open_tree(TREE)?
        .insert(key.storage_key(), serde_json::to_vec(c)?)?;
    Ok(())
}

pub fn load(
    store: &crate::store::Store,
    key: &crate::monitor::MonitorKey,
) -> crate::store::Result<Option<CertificateCheck>> {
    match store.db().open_tree(TREE)?.get(key.storage_key())? {
        Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_pick_the_smallest_crossed() {
        let w = [30, 14, 7, 3, 1];
        assert_eq!(crossed_threshold(&w, 40), None);
        assert_eq!(crossed_threshold(&w, 30), Some(30));
        assert_eq!(crossed_threshold(&w, 20), Some(30));
        assert_eq!(crossed_threshold(&w, 5), Some(7));
        assert_eq!(crossed_threshold(&w, 0), Some(1));
        assert_eq!(crossed_threshold(&[7], 5), Some(7));
    }

    fn spec(port: u16) -> CertificateSpec {
        CertificateSpec {
            name: "t".into(),
            group: None,
            host: "127.0.0.1".into(),
            port,
            interval: crate::duration::Duration::from_millis(60_000),
            warn_days: vec![30, 7],
            alert: None,
            derived_from: None,
        }
    }

    #[tokio::test]
    async fn a_silent_server_is_a_timeout_error_not_expired() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts and never answers the ClientHello.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let c = check(&spec(port), Duration::from_millis(300), None, None)
            .await
            .0;
        assert_eq!(c.status, CertStatus::Error);
        assert!(c.error.as_deref().unwrap().starts_with("timeout"), "{c:?}");
        assert_eq!((c.days_left, c.not_after), (None, None));
    }

    #[tokio::test]
    async fn a_plain_http_server_is_a_handshake_error() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let c = check(&spec(port), Duration::from_secs(5), None, None)
            .await
            .0;
        assert_eq!(c.status, CertStatus::Error);
        assert!(
            c.error.as_deref().unwrap().contains("TLS handshake"),
            "{c:?}"
        );
    }

    #[tokio::test]
    async fn since_is_kept_while_the_status_stays() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let first = check(&spec(port), Duration::from_secs(2), None, None)
            .await
            .0;
        assert_eq!(first.status, CertStatus::Error);
        assert!(
            first.error.as_deref().unwrap().contains("refused"),
            "{first:?}"
        );
        let second = check(&spec(port), Duration::from_secs(2), Some(&first), None)
            .await
            .0;
        assert_eq!(second.since, first.since);
        assert!(second.at > first.at);
    }

    #[tokio::test]
    async fn a_restricted_check_connects_only_where_the_policy_allows() {
        use crate::checks::targets::StaticLookup;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepts = Arc::new(AtomicUsize::new(0));
        let a = accepts.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                drop(s);
            }
        });
        let policy = TargetPolicy::new(&["127.0.0.2/32".into()], &[], None, false)
            .unwrap()
            .with_lookup(Arc::new(StaticLookup(vec![(
                "meta.test".into(),
                "127.0.0.2".parse().unwrap(),
            )])));
        for host in ["127.0.0.2", "meta.test"] {
            let mut s = spec(port);
            s.host = host.into();
            let (c, refused) = check(&s, Duration::from_secs(2), None, Some(&policy)).await;
            let r = refused.unwrap_or_else(|| panic!("{host}: not refused: {c:?}"));
            assert_eq!(c.status, CertStatus::Error);
            assert_eq!(c.error.as_deref(), Some(r.to_string().as_str()));
            assert!(r.rule.contains("MAINTENANT_TARGET_DENY"), "{r}");
        }
        assert_eq!(accepts.load(Ordering::SeqCst), 0, "no connection was made");
        // Unrestricted, the same check connects (and fails the handshake).
        let mut s = spec(port);
        s.host = "127.0.0.2".into();
        let (c, refused) = check(&s, Duration::from_secs(2), None, None).await;
        assert!(refused.is_none() && c.error.is_some());
        assert_eq!(accepts.load(Ordering::SeqCst), 1);
    }
}
