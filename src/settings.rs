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

    /// HTTP listen address.
    #[arg(long, env = "MAINTENANT_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Public URL of this instance (default: http:// + the listen address).
    #[arg(long, env = "MAINTENANT_BASE_URL")]
    pub base_url: Option<String>,

    /// Serve MCP over Streamable HTTP on /mcp.
    #[arg(long, env = "MAINTENANT_MCP", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub mcp: bool,

    /// Extra Host names accepted on /mcp, comma-separated (the base URL's host,
    /// loopback names, `maintenant` and this machine's hostname always are).
    #[arg(long, env = "MAINTENANT_MCP_ALLOWED_HOSTS", value_delimiter = ',')]
    pub mcp_allowed_hosts: Vec<String>,

    /// How long check results are kept. Hourly rollups are kept 5x longer
    /// (at least 7 days, for uptime_7d).
    #[arg(long, env = "MAINTENANT_RETENTION", default_value = "7d")]
    pub retention: Duration,

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
}

/// Whether to talk to a Kubernetes API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KubernetesMode {
    Auto,
    True,
    False,
}

impl Settings {
    /// The monitors file to use: the setting, else `./maintenant.yaml` if it exists.
    pub fn config_path(&self) -> Option<PathBuf> {
        self.config.clone().or_else(|| {
            let default = PathBuf::from("maintenant.yaml");
            default.exists().then_some(default)
        })
    }

    pub fn base_url(&self) -> String {
        match &self.base_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.addr),
        }
    }

    /// The unix socket where the process that owns the database serves MCP, so
    /// `--mcp-stdio` started beside it can attach instead of opening sled.
    pub fn socket_path(&self) -> PathBuf {
        self.db.join("mcp.sock")
    }
}
