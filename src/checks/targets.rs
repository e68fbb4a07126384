//! Where a monitor may connect: the target policy for monitors declared by
//! people who may not own maintenant (Docker labels, pod annotations,
//! `Monitor` resources). By default they may not reach the link-local ranges
//! where cloud metadata services answer, nor maintenant's own listen address.
//!
//! The policy is decided on the address actually connected to: after DNS
//! resolution (see [`PolicyResolver`] for reqwest, [`TargetPolicy::resolve`]
//! for TCP and certificate checks) and on every redirect hop (see
//! `probe::send_restricted`). Nothing here sends a packet.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use crate::monitor::Origin;

/// An IP network, `addr/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `fe80::/10`, or a bare address (a single host).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not a CIDR (e.g. 10.0.0.0/8 or fd00::/8)"))?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { addr, len })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.len),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.len),
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], len: u8) -> bool {
    let (bytes, bits) = ((len / 8) as usize, len % 8);
    if a[..bytes] != b[..bytes] {
        return false;
    }
    bits == 0 || {
        let mask = 0xffu8 << (8 - bits);
        a[bytes] & mask == b[bytes] & mask
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:169.254.169.254`) is the IPv4
/// address it maps: connecting to one reaches the other.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The IPv4 address inside a NAT64 address (`64:ff9b::/96`): on an
/// IPv6-only network that prefix is routed to the IPv4 address it embeds.
fn nat64_embedded(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V6(v6) => {
            let o = v6.octets();
            (o[..12] == [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0])
                .then(|| IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15])))
        }
        IpAddr::V4(_) => None,
    }
}

/// Where a rule comes from, named in a refusal so a person knows what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleSource {
    /// Built in, with why.
    Default(&'static str),
    Deny,
    Allow,
}

#[derive(Debug, Clone)]
struct Rule {
    net: Cidr,
    allow: bool,
    source: RuleSource,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            RuleSource::Default(why) => write!(f, "{} ({why}, refused by default)", self.net),
            RuleSource::Deny => write!(f, "{} (MAINTENANT_TARGET_DENY)", self.net),
            RuleSource::Allow => write!(f, "{} (MAINTENANT_TARGET_ALLOW)", self.net),
        }
    }
}

/// Refused by default for declared monitors.
const DEFAULT_DENY: [(&str, &str); 3] = [
    (
        "169.254.0.0/16",
        "IPv4 link-local, where cloud metadata services answer",
    ),
    ("fe80::/10", "IPv6 link-local"),
    ("fd00:ec2::254/128", "the AWS metadata service over IPv6"),
];

/// Why a connection was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by target policy: {target}{via} {rule}")]
pub struct Refusal {
    /// The address refused (`ip` or `ip:port`).
    pub target: String,
    /// ` (resolved from NAME)` when a host name led there, else empty.
    via: String,
    /// The rule, for a person: `is in 169.254.0.0/16 (...)`.
    pub rule: String,
}

impl Refusal {
    /// `ip` or `ip (resolved from NAME)`.
    pub fn target_and_via(&self) -> String {
        format!("{}{}", self.target, self.via)
    }

    /// The same refusal, saying which host name resolved to the address.
    pub fn via(mut self, host: &str) -> Refusal {
        if host.parse::<IpAddr>().is_err() {
            self.via = format!(" (resolved from {host})");
        }
        self
    }
}

/// How a check finds the addresses of a host name. Injectable, so tests can
/// resolve a name to a loopback address without DNS.
pub trait Lookup: Send + Sync {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>>;
}

/// The system resolver (getaddrinfo, through tokio).
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// The policy, built once from the settings (see [`TargetPolicy::from_settings`]).
#[derive(Clone)]
pub struct TargetPolicy {
    rules: Vec<Rule>,
    /// maintenant's own listen address (MAINTENANT_ADDR).
    own: Option<SocketAddr>,
    /// Apply the policy to the monitors file too (MAINTENANT_TARGET_POLICY_FILE).
    pub apply_to_file: bool,
    lookup: Arc<dyn Lookup>,
}

impl fmt::Debug for TargetPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetPolicy")
            .field("rules", &self.rules)
            .field("own", &self.own)
            .field("apply_to_file", &self.apply_to_file)
            .finish()
    }
}

impl Default for TargetPolicy {
    fn default() -> Self {
        TargetPolicy::new(&[], &[], None, false).expect("the defaults parse")
    }
}

impl TargetPolicy {
    /// The defaults plus `deny` and `allow` (CIDRs). A network listed in both
    /// is an error: which one was meant cannot be guessed.
    pub fn new(
        deny: &[String],
        allow: &[String],
        own: Option<SocketAddr>,
        apply_to_file: bool,
    ) -> Result<TargetPolicy, String> {
        let mut rules: Vec<Rule> = DEFAULT_DENY
            .iter()
            .map(|(net, why)| Rule {
                net: Cidr::parse(net).expect("a valid default"),
                allow: false,
                source: RuleSource::Default(why),
            })
            .collect();
        let parse = |setting: &str, v: &[String]| -> Result<Vec<Cidr>, String> {
            v.iter()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .map(|s| Cidr::parse(s).map_err(|e| format!("{setting}: {e}")))
                .collect()
        };
        let deny = parse("MAINTENANT_TARGET_DENY", deny)?;
        let allow = parse("MAINTENANT_TARGET_ALLOW", allow)?;
        if let Some(both) = deny.iter().find(|d| allow.contains(d)) {
            return Err(format!(
                "{both} is in both MAINTENANT_TARGET_DENY and MAINTENANT_TARGET_ALLOW"
            ));
        }
        rules.extend(deny.into_iter().map(|net| Rule {
            net,
            allow: false,
            source: RuleSource::Deny,
        }));
        rules.extend(allow.into_iter().map(|net| Rule {
            net,
            allow: true,
            source: RuleSource::Allow,
        }));
        Ok(TargetPolicy {
            rules,
            own,
            apply_to_file,
            lookup: Arc::new(SystemLookup),
        })
    }

    pub fn from_settings(s: &crate::settings::Settings) -> Result<TargetPolicy, String> {
        TargetPolicy::new(
            &s.target_deny,
            &s.target_allow,
            Some(s.addr),
            s.target_policy_file,
        )
    }

    /// The same policy with another resolver (tests).
    pub fn with_lookup(mut self, lookup: Arc<dyn Lookup>) -> TargetPolicy {
        self.lookup = lookup;
        self
    }

    /// Whether monitors of this origin are held to the policy.
    pub fn applies_to(&self, origin: &Origin) -> bool {
        match origin {
            Origin::File { .. } => self.apply_to_file,
            Origin::Docker(_) | Origin::Kubernetes(_) => true,
        }
    }

    /// The port of maintenant's own listen address.
    pub fn own_port(&self) -> Option<u16> {
        self.own.map(|a| a.port())
    }

    /// May a restricted monitor connect to `addr`? The own listen address is
    /// refused whatever the CIDR rules say; otherwise the most specific rule
    /// (longest prefix) decides, an allow winning over a built-in deny of
    /// the same network; no rule is allowed.
    pub fn decide(&self, addr: SocketAddr) -> Result<(), Refusal> {
        let ip = canonical(addr.ip());
        if let Some(own) = self.own
            && addr.port() == own.port()
        {
            let own_ip = canonical(own.ip());
            let reaches_own = ip == own_ip
                || ip.is_unspecified()
                || (own_ip.is_unspecified() && ip.is_loopback());
            if reaches_own {
                return Err(Refusal {
                    target: SocketAddr::new(ip, addr.port()).to_string(),
                    via: String::new(),
                    rule: format!("is maintenant's own listen address {own} (MAINTENANT_ADDR)"),
                });
            }
        }
        self.decide_ip(ip)?;
        // A NAT64 address reaches the IPv4 address it embeds.
        match nat64_embedded(ip) {
            Some(v4) => self.decide_ip(v4).map_err(|mut r| {
                r.target = format!("{ip} (NAT64 for {v4})");
                r
            }),
            None => Ok(()),
        }
    }

    fn decide_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        let best = self
            .rules
            .iter()
            .filter(|r| r.net.contains(ip))
            // Longest prefix first; at equal length an allow wins (it can
            // only tie with a built-in deny: equal user entries are refused).
            .max_by_key(|r| (r.net.len, r.allow));
        match best {
            Some(r) if !r.allow => Err(Refusal {
                target: ip.to_string(),
                via: String::new(),
                rule: format!("is in {r}"),
            }),
            _ => Ok(()),
        }
    }

    /// The refusal of a monitor whose target is an address (not a host
    /// name) the policy refuses: what can be known without resolving
    /// (`check-config`).
    pub fn refuse_literal(&self, spec: &crate::monitor::MonitorSpec) -> Option<Refusal> {
        use crate::config::model::Target;
        use crate::monitor::MonitorSpec;
        let (host, port) = match spec {
            MonitorSpec::Endpoint(e) => match &e.target {
                Target::Http { url } => {
                    let u = reqwest::Url::parse(url).ok()?;
                    (u.host_str()?.to_owned(), u.port_or_known_default()?)
                }
                Target::Tcp { host, port } => (host.clone(), *port),
            },
            MonitorSpec::Certificate(c) => (c.host.clone(), c.port),
            MonitorSpec::Heartbeat(_) => return None,
        };
        let ip: IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        self.decide(SocketAddr::new(ip, port)).err()
    }

    /// The addresses of `host:port` this policy allows, or the refusal of
    /// the first one when none is. An IP literal is not looked up.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = match literal.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => self
                .lookup
                .lookup(host, port)
                .await
                .map_err(|e| ResolveError::Lookup(host.to_owned(), e.to_string()))?,
        };
        self.filter(host, addrs)
    }

    /// Keep the allowed addresses; none left is the first refusal.
    fn filter(&self, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, ResolveError> {
        if addrs.is_empty() {
            return Err(ResolveError::Lookup(host.to_owned(), "no addresses".into()));
        }
        let mut first_refusal = None;
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| match self.decide(*a) {
                Ok(()) => true,
                Err(r) => {
                    first_refusal.get_or_insert(r);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), first_refusal) {
            (true, Some(r)) => Err(ResolveError::Refused(r.via(host))),
            _ => Ok(allowed),
        }
    }
}

/// A host that could not be resolved, or whose every address is refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    #[error("DNS lookup failed for {0}: {1}")]
    Lookup(String, String),
    #[error(transparent)]
    Refused(Refusal),
}

/// reqwest's resolver for restricted clients: the addresses a host name
/// resolves to, filtered by the policy. reqwest does not call a resolver
/// for IP-literal URLs and does not tell it the port: the caller checks
/// literals itself, and uses one client per "port is maintenant's own
/// port" answer, so `port` here is that port or 0 (never own).
pub struct PolicyResolver {
    pub policy: Arc<TargetPolicy>,
    pub port: u16,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let port = self.port;
        Box::pin(async move {
            let addrs = policy
                .resolve(name.as_str(), port)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A [`Lookup`] from a fixed table (tests: a name that resolves to a
/// loopback address without DNS).
pub struct StaticLookup(pub Vec<(String, IpAddr)>);

impl Lookup for StaticLookup {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        Box::pin(async move {
            let found: Vec<SocketAddr> = self
                .0
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(host))
                .map(|(_, ip)| SocketAddr::new(*ip, port))
                .collect();
            if found.is_empty() {
                Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host} is not in the table"),
                ))
            } else {
                Ok(found)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn own(addr: &str) -> TargetPolicy {
        TargetPolicy::new(&[], &[], Some(sa(addr)), false).unwrap()
    }

    /// No connection is made: `decide` is a pure function of the address.
    #[test]
    fn the_default_policy_refuses_metadata_and_link_local_and_own_address() {
        let p = own("127.0.0.1:8080");
        let e = p.decide(sa("169.254.169.254:80")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "refused by target policy: 169.254.169.254 is in 169.254.0.0/16 \
             (IPv4 link-local, where cloud metadata services answer, refused by default)"
        );
        assert!(
            p.decide(sa("[fe80::1]:80"))
                .unwrap_err()
                .rule
                .contains("fe80::/10")
        );
        assert!(
            p.decide(sa("[fd00:ec2::254]:80"))
                .unwrap_err()
                .rule
                .contains("fd00:ec2::254/128")
        );
        // The same addresses in other spellings.
        assert!(
            p.decide(sa("[::ffff:169.254.169.254]:80")).is_err(),
            "IPv4-mapped"
        );
        let nat64 = p.decide(sa("[64:ff9b::a9fe:a9fe]:80")).unwrap_err();
        assert!(
            nat64.target.contains("NAT64 for 169.254.169.254"),
            "{nat64}"
        );
        // The own listen address, on its port only.
        let e = p.decide(sa("127.0.0.1:8080")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "refused by target policy: 127.0.0.1:8080 is maintenant's own listen address 127.0.0.1:8080 (MAINTENANT_ADDR)"
        );
        assert!(
            p.decide(sa("0.0.0.0:8080")).is_err(),
            "0.0.0.0 reaches the local listener"
        );
        assert!(p.decide(sa("127.0.0.1:8081")).is_ok());
        assert!(p.decide(sa("127.0.0.2:8080")).is_ok(), "another address");
        // Everything else is allowed by default.
        for ok in [
            "10.0.0.1:80",
            "192.168.1.1:443",
            "[::1]:80",
            "[fd00::1]:80",
            "1.1.1.1:53",
        ] {
            assert!(p.decide(sa(ok)).is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_wildcard_listen_address_means_loopback_and_that_port() {
        for listen in ["0.0.0.0:9000", "[::]:9000"] {
            let p = own(listen);
            for refused in [
                "127.0.0.1:9000",
                "127.9.9.9:9000",
                "[::1]:9000",
                "0.0.0.0:9000",
                "[::]:9000",
            ] {
                assert!(p.decide(sa(refused)).is_err(), "{listen}: {refused}");
            }
            assert!(p.decide(sa("127.0.0.1:9001")).is_ok());
            assert!(p.decide(sa("10.1.1.1:9000")).is_ok());
        }
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let p = TargetPolicy::new(
            &[
                "10.0.0.0/8".into(),
                "127.0.0.2/32".into(),
                "10.1.2.3".into(),
            ],
            &["10.1.0.0/16".into(), "169.254.10.0/24".into()],
            None,
            false,
        )
        .unwrap();
        assert!(
            p.decide(sa("10.9.9.9:80"))
                .unwrap_err()
                .rule
                .contains("MAINTENANT_TARGET_DENY")
        );
        assert!(
            p.decide(sa("10.1.9.9:80")).is_ok(),
            "the /16 allow beats the /8 deny"
        );
        assert!(
            p.decide(sa("10.1.2.3:80")).is_err(),
            "the /32 deny beats the /16 allow"
        );
        assert!(
            p.decide(sa("169.254.10.5:80")).is_ok(),
            "an allow lifts part of a default"
        );
        assert!(p.decide(sa("169.254.169.254:80")).is_err());
        assert!(p.decide(sa("127.0.0.2:80")).is_err());
        // An allow of the whole default network lifts it.
        let p = TargetPolicy::new(&[], &["169.254.0.0/16".into()], None, false).unwrap();
        assert!(p.decide(sa("169.254.169.254:80")).is_ok());
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let e = TargetPolicy::new(&["10.0.0.0/33".into()], &[], None, false).unwrap_err();
        assert_eq!(
            e,
            "MAINTENANT_TARGET_DENY: \"10.0.0.0/33\": the prefix length must be 0 to 32"
        );
        let e = TargetPolicy::new(&[], &["nope".into()], None, false).unwrap_err();
        assert!(
            e.starts_with("MAINTENANT_TARGET_ALLOW: \"nope\" is not a CIDR"),
            "{e}"
        );
        let e = TargetPolicy::new(&["10.0.0.0/8".into()], &["10.0.0.0/8".into()], None, false)
            .unwrap_err();
        assert!(e.contains("in both"), "{e}");
    }

    #[test]
    fn origins_held_to_the_policy() {
        let file = Origin::File {
            path: std::path::Path::new("m.yaml").into(),
            line: 1,
        };
        let docker = Origin::Docker(Box::new(crate::monitor::DockerOrigin {
            container: "c".into(),
            label: "l".into(),
        }));
        let p = TargetPolicy::default();
        assert!(!p.applies_to(&file));
        assert!(p.applies_to(&docker));
        let p = TargetPolicy::new(&[], &[], None, true).unwrap();
        assert!(p.applies_to(&file));
    }

    #[tokio::test]
    async fn resolve_keeps_allowed_addresses_and_names_the_host_when_all_are_refused() {
        let lookup = StaticLookup(vec![
            ("mixed.test".into(), "127.0.0.2".parse().unwrap()),
            ("mixed.test".into(), "127.0.0.1".parse().unwrap()),
            ("meta.test".into(), "127.0.0.2".parse().unwrap()),
        ]);
        let p = TargetPolicy::new(&["127.0.0.2/32".into()], &[], None, false)
            .unwrap()
            .with_lookup(Arc::new(lookup));
        assert_eq!(
            p.resolve("mixed.test", 80).await.unwrap(),
            vec![sa("127.0.0.1:80")]
        );
        let e = p.resolve("meta.test", 80).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "refused by target policy: 127.0.0.2 (resolved from meta.test) is in 127.0.0.2/32 (MAINTENANT_TARGET_DENY)"
        );
        let e = p.resolve("[::ffff:127.0.0.2]", 80).await.unwrap_err();
        assert!(matches!(e, ResolveError::Refused(_)), "{e}");
    }
}
