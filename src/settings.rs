//! Settings: environment variables (CONTRACT.md), mirrored by flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;

use crate::duration::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// sled database directory.
    #[arg(long, env = "MAINTENANT_DB", default_value = "./maintenant.db")]
    pub db: PathBuf,

    /// Monitors file, or a directory of *.yaml files (default: ./maintenant.yaml if present).
    #[arg(long, env = "MAINTENANT_CONFIG")]
    pub config: Option<PathBuf>,

    /// Quiet time an in-place write to the monitors file must leave before
    /// the file is read, so a half-written file is never applied (a file
    /// replaced by a rename is read at once). A file written without pause
    /// is still read 8x this (at least 2s) after the first write. 0s: off.
    #[arg(long, env = "MAINTENANT_CONFIG_SETTLE", default_value = "250ms")]
    pub config_settle: Duration,

    /// HTTP listen address.
    #[arg(long, env = "MAINTENANT_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Public URL of this instance (default: http:// + the listen address).
    #[arg(long, env = "MAINTENANT_BASE_URL")]
    pub base_url: Option<String>,

    /// Serve MCP over Streamable HTTP on /mcp.
    #[arg(long, env = "MAINTENANT_MCP", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub mcp: bool,

    /// Serve Prometheus metrics on /metrics (unauthenticated, like /healthz).
    #[arg(long, env = "MAINTENANT_METRICS", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub metrics: bool,

    /// Extra Host names accepted on /mcp, comma-separated (the base URL's host,
    /// loopback names, `maintenant` and this machine's hostname always are).
    #[arg(long, env = "MAINTENANT_MCP_ALLOWED_HOSTS", value_delimiter = ',')]
    pub mcp_allowed_hosts: Vec<String>,

    /// Require a verified Bearer JWT on /mcp whose `email` (else `sub`) is one of
    /// these addresses (comma-separated, case-insensitive). Unset: /mcp is open.
    #[arg(long, env = "MAINTENANT_MCP_ALLOWED_EMAIL", value_delimiter = ',')]
    pub mcp_allowed_email: Vec<String>,

    /// Issuer (`iss`) tokens must carry; also the authorization server named in
    /// the RFC 9728 metadata, and where the JWKS is discovered when
    /// MAINTENANT_MCP_JWKS_URL is unset. Required with MAINTENANT_MCP_ALLOWED_EMAIL.
    #[arg(long, env = "MAINTENANT_MCP_ISSUER")]
    pub mcp_issuer: Option<String>,

    /// URL of the issuer's signing keys (JWKS). Default: `jwks_uri` from the
    /// issuer's `/.well-known/openid-configuration` (or `oauth-authorization-server`).
    #[arg(long, env = "MAINTENANT_MCP_JWKS_URL")]
    pub mcp_jwks_url: Option<String>,

    /// Audience (`aud`) tokens must carry (default: the base URL + `/mcp`).
    #[arg(long, env = "MAINTENANT_MCP_AUDIENCE")]
    pub mcp_audience: Option<String>,

    /// Scope the write tools (acknowledge_alert, create_incident, ...) need,
    /// e.g. `maintenant:write`. Unset: any allowed caller may use every tool.
    #[arg(long, env = "MAINTENANT_MCP_WRITE_SCOPE")]
    pub mcp_write_scope: Option<String>,

    /// Serve only the read tools: the write tools (acknowledge_alert,
    /// create_incident, update_incident, create_maintenance, pause_monitor,
    /// resume_monitor) leave `tools/list` and a call to one is refused, on
    /// every transport (HTTP, stdio, the attach socket).
    #[arg(long, env = "MAINTENANT_MCP_READ_ONLY", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub mcp_read_only: bool,

    /// Browser origins allowed on /mcp, comma-separated, with scheme (and `:*`
    /// for any port). The base URL's origin always is; requests with no
    /// Origin header (non-browser clients) pass.
    #[arg(long, env = "MAINTENANT_MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub mcp_allowed_origins: Vec<String>,

    /// Largest accepted /mcp request body, in bytes.
    #[arg(long, env = "MAINTENANT_MCP_MAX_BODY", default_value = "1048576")]
    pub mcp_max_body: usize,

    /// Most MCP sessions open at once on /mcp (and, separately, on the
    /// attach socket). Past it, the session idle the longest is closed; when
    /// all are busy, a new one is refused with 503.
    #[arg(long, env = "MAINTENANT_MCP_MAX_SESSIONS", default_value = "256", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub mcp_max_sessions: u32,

    /// Most MCP sessions one client IP may hold open; past it, that client's
    /// own session idle the longest is closed first.
    #[arg(long, env = "MAINTENANT_MCP_MAX_SESSIONS_PER_CLIENT", default_value = "32", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub mcp_max_sessions_per_client: u32,

    /// Most HTTP connections open at once (TCP and the unix socket together).
    /// Narrowed at start so a quarter of the open-file limit (at least 64)
    /// stays free for the daemon's own files and checks. At the cap, a new
    /// connection closes the one idle the longest.
    #[arg(long, env = "MAINTENANT_HTTP_MAX_CONNECTIONS", default_value = "1024", value_parser = clap::value_parser!(u32).range(1..))]
    pub http_max_connections: u32,

    /// Time a connection has to send complete request headers: from when it
    /// is accepted for its first request, from its first byte for later ones.
    #[arg(long, env = "MAINTENANT_HTTP_HEADER_TIMEOUT", default_value = "10s")]
    pub http_header_timeout: Duration,

    /// Time a keep-alive connection may stay open with no request in flight.
    #[arg(long, env = "MAINTENANT_HTTP_IDLE_TIMEOUT", default_value = "60s")]
    pub http_idle_timeout: Duration,

    /// Requests per minute per client IP on /mcp (and /ping), with bursts of
    /// up to MAINTENANT_RATE_LIMIT_BURST. 0 disables the limit.
    #[arg(long, env = "MAINTENANT_RATE_LIMIT_PER_MINUTE", default_value = "1200")]
    pub rate_limit_per_minute: u32,

    /// Largest burst a client IP may send before being limited.
    #[arg(long, env = "MAINTENANT_RATE_LIMIT_BURST", default_value = "200")]
    pub rate_limit_burst: u32,

    /// Global ping key: when set, a heartbeat without its own token is pinged
    /// at `/ping/KEY/NAME` and `/ping/NAME` answers 404 (16 to 128 letters,
    /// digits, `-` or `_`). Unset: `/ping/NAME` works, as anyone reaching the
    /// port can call it.
    #[arg(long, env = "MAINTENANT_PING_KEY", hide_env_values = true)]
    pub ping_key: Option<String>,

    /// Take the client IP for the rate limit from the last `X-Forwarded-For`
    /// entry (set this only behind a reverse proxy that writes that header).
    #[arg(long, env = "MAINTENANT_TRUST_FORWARDED_FOR", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,

    /// How long check results are kept (whole history segments, so up to an
    /// hour more). Hourly rollups are kept 8 days, for uptime_7d.
    #[arg(long, env = "MAINTENANT_RETENTION", default_value = "7d")]
    pub retention: Duration,

    /// Once the database has failed to write for this long (a disk that stays
    /// full), the daemon exits with code 75 so its supervisor restarts it,
    /// even while the disk is still full; `0` waits for space however long it
    /// takes. The daemon exits at once, whatever this is, when space is back
    /// but sled still refuses to write (docs/storage.md, When the disk fills).
    #[arg(long, env = "MAINTENANT_STORE_EXIT_AFTER", default_value = "5m")]
    pub store_exit_after: Duration,

    /// Docker endpoint: a unix socket path, `unix://PATH`, `tcp://HOST:PORT`
    /// or `http://HOST:PORT`; `false` disables Docker. Default: /var/run/docker.sock if it exists.
    #[arg(long, env = "MAINTENANT_DOCKER")]
    pub docker: Option<String>,

    /// How long a container's label monitors outlive the container (stopped or
    /// removed), so a `docker compose up` recreate does not remove and re-add them.
    #[arg(long, env = "MAINTENANT_DOCKER_GRACE", default_value = "10s")]
    pub docker_grace: Duration,

    /// Time between CPU/memory samples of running containers.
    #[arg(long, env = "MAINTENANT_DOCKER_STATS_INTERVAL", default_value = "15s")]
    pub docker_stats_interval: Duration,

    /// The host's /proc mounted into maintenant's container (e.g. `-v /proc:/host/proc:ro`
    /// and `/host/proc`): CPU, load, memory, swap and network are then read from
    /// it, so get_resources describes the host rather than the container.
    #[arg(long, env = "MAINTENANT_HOST_PROC")]
    pub host_proc: Option<PathBuf>,

    /// PEM file of CA certificates that certificate checks trust besides the
    /// system roots (a private CA).
    #[arg(long, env = "MAINTENANT_EXTRA_CA_FILE")]
    pub extra_ca_file: Option<PathBuf>,

    /// Kubernetes: `auto` (the kubeconfig named by KUBECONFIG, else the
    /// in-cluster service account, else off), `true` (required), `false`.
    #[arg(long, env = "MAINTENANT_KUBERNETES", default_value = "auto")]
    pub kubernetes: KubernetesMode,

    /// Namespaces to watch, comma-separated (default: all).
    #[arg(long, env = "MAINTENANT_KUBERNETES_NAMESPACES", value_delimiter = ',')]
    pub kubernetes_namespaces: Vec<String>,

    /// Namespaces never watched, comma-separated.
    #[arg(
        long,
        env = "MAINTENANT_KUBERNETES_EXCLUDE_NAMESPACES",
        value_delimiter = ','
    )]
    pub kubernetes_exclude_namespaces: Vec<String>,

    /// Least time between two status writes to one `Monitor` resource.
    #[arg(
        long,
        env = "MAINTENANT_KUBERNETES_STATUS_INTERVAL",
        default_value = "10s"
    )]
    pub kubernetes_status_interval: Duration,

    /// How often the annotations of the workloads that own pods (Deployment,
    /// StatefulSet, DaemonSet, Job) are read again, so an edit to them is
    /// applied without waiting for one of the pods to change.
    #[arg(
        long,
        env = "MAINTENANT_KUBERNETES_WORKLOAD_INTERVAL",
        default_value = "30s"
    )]
    pub kubernetes_workload_interval: Duration,

    /// Read pod logs for get_container_logs. `false` when maintenant is not
    /// granted `pods/log` (the Helm chart's `kubernetes.podLogs: false`): the
    /// tool then answers that logs are disabled instead of asking the API.
    #[arg(long, env = "MAINTENANT_KUBERNETES_LOGS", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub kubernetes_logs: bool,

    /// Time between image update scans (get_updates).
    #[arg(long, env = "MAINTENANT_UPDATES_INTERVAL", default_value = "6h")]
    pub updates_interval: Duration,

    /// Docker config whose `auths` hold registry credentials for update scans
    /// (default: $DOCKER_CONFIG/config.json, else ~/.docker/config.json).
    #[arg(long, env = "MAINTENANT_DOCKER_CONFIG")]
    pub docker_config: Option<PathBuf>,

    /// Networks (CIDRs, comma-separated) that monitors declared by Docker
    /// labels, pod annotations and `Monitor` resources may not connect to,
    /// besides the built-in 169.254.0.0/16, fe80::/10, fd00:ec2::254 and the
    /// listen address. The most specific rule of DENY and ALLOW wins.
    #[arg(long, env = "MAINTENANT_TARGET_DENY", value_delimiter = ',')]
    pub target_deny: Vec<String>,

    /// Networks (CIDRs, comma-separated) those monitors may connect to even
    /// inside a denied one (e.g. 169.254.10.0/24 out of the link-local default).
    #[arg(long, env = "MAINTENANT_TARGET_ALLOW", value_delimiter = ',')]
    pub target_allow: Vec<String>,

    /// Hold the monitors file to the target policy too (by default it is the
    /// operator's own and unrestricted).
    #[arg(long, env = "MAINTENANT_TARGET_POLICY_FILE", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub target_policy_file: bool,

    /// Token realms (`host` or `host:port`, comma-separated, `*` for any) that
    /// may receive a registry's Docker-config credentials although they are on
    /// another host than the registry. Docker Hub's auth.docker.io always may.
    #[arg(
        long,
        env = "MAINTENANT_REGISTRY_ALLOW_CROSS_HOST_REALM",
        value_delimiter = ','
    )]
    pub registry_allow_cross_host_realm: Vec<String>,

    /// Registries (`host:port`) spoken to over plain HTTP, comma-separated
    /// (loopback registries always are).
    #[arg(long, env = "MAINTENANT_INSECURE_REGISTRIES", value_delimiter = ',')]
    pub insecure_registries: Vec<String>,
}

/// Whether to talk to a Kubernetes API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KubernetesMode {
    Auto,
    True,
    False,
}

/// Where to reach Docker, from `MAINTENANT_DOCKER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerEndpoint {
    Disabled,
    Unix(PathBuf),
    /// `tcp://` or `http://` (plain HTTP; no TLS client certificates).
    Http(String),
}

impl DockerEndpoint {
    pub fn display(&self) -> String {
        match self {
            DockerEndpoint::Disabled => "disabled".into(),
            DockerEndpoint::Unix(p) => format!("unix://{}", p.display()),
            DockerEndpoint::Http(a) => a.clone(),
        }
    }
}

impl Settings {
    /// [`Settings::store_exit_after`], `None` when it is `0` (never).
    pub fn store_exit_after(&self) -> Option<std::time::Duration> {
        Some(self.store_exit_after.std()).filter(|d| !d.is_zero())
    }

    /// The monitors file to use: the setting, else `./maintenant.yaml` if it exists.
    pub fn config_path(&self) -> Option<PathBuf> {
        self.config.clone().or_else(|| {
            let default = PathBuf::from("maintenant.yaml");
            default.exists().then_some(default)
        })
    }

    /// The Docker endpoint: the setting, else the default socket when it exists.
    /// An unset setting with no socket disables Docker quietly; an explicit
    /// endpoint that does not answer is reported (and retried) instead.
    pub fn docker_endpoint(&self) -> DockerEndpoint {
        const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
        let Some(v) = self
            .docker
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
        else {
            return if std::path::Path::new(DEFAULT_SOCKET).exists() {
                DockerEndpoint::Unix(DEFAULT_SOCKET.into())
            } else {
                DockerEndpoint::Disabled
            };
        };
        match v.to_ascii_lowercase().as_str() {
            "false" | "0" | "no" | "off" | "disabled" => return DockerEndpoint::Disabled,
            "true" | "1" | "yes" | "on" | "auto" => {
                return DockerEndpoint::Unix(DEFAULT_SOCKET.into());
            }
            _ => {}
        }
        if let Some(p) = v.strip_prefix("unix://") {
            DockerEndpoint::Unix(p.into())
        } else if v.starts_with("tcp://") || v.starts_with("http://") {
            DockerEndpoint::Http(v.to_owned())
        } else {
            DockerEndpoint::Unix(v.into())
        }
    }

    /// The validated `MAINTENANT_PING_KEY`, if set.
    pub fn ping_key(
        &self,
    ) -> Result<Option<crate::pingkey::PingKey>, crate::pingkey::PingKeyError> {
        crate::pingkey::PingKey::parse(self.ping_key.as_deref())
    }

    pub fn base_url(&self) -> String {
        match &self.base_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.addr),
        }
    }

    /// The public URL of the MCP endpoint: the RFC 9728 `resource` and the
    /// default token audience.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url())
    }

    /// The unix socket where the process that owns the database serves MCP, so
    /// `--mcp-stdio` started beside it can attach instead of opening sled.
    pub fn socket_path(&self) -> PathBuf {
        self.db.join("mcp.sock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        s: Settings,
    }

    fn docker(v: &str) -> DockerEndpoint {
        Cli::parse_from(["m", "--docker", v]).s.docker_endpoint()
    }

    #[test]
    fn docker_endpoint_forms() {
        assert_eq!(docker("false"), DockerEndpoint::Disabled);
        assert_eq!(
            docker("/run/d.sock"),
            DockerEndpoint::Unix("/run/d.sock".into())
        );
        assert_eq!(
            docker("unix:///run/d.sock"),
            DockerEndpoint::Unix("/run/d.sock".into())
        );
        assert_eq!(
            docker("tcp://127.0.0.1:2375"),
            DockerEndpoint::Http("tcp://127.0.0.1:2375".into())
        );
        assert_eq!(
            docker("true"),
            DockerEndpoint::Unix("/var/run/docker.sock".into())
        );
    }
}
