//! Connecting to a Kubernetes API server (`MAINTENANT_KUBERNETES`) and the
//! namespace include/exclude settings shared by every Kubernetes watcher.

use kube::Client;

use crate::settings::{KubernetesMode, Settings};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "MAINTENANT_KUBERNETES=true but there is no in-cluster service account and KUBECONFIG is not set"
    )]
    NoConfig,
    #[error("in-cluster Kubernetes config: {0}")]
    InCluster(#[from] kube::config::InClusterError),
    #[error("kubeconfig ({path}): {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// The client to use, or `None` when Kubernetes is off (`false`, or `auto`
/// with nothing to connect to). A kubeconfig named by `KUBECONFIG` wins (an
/// explicit choice, as with kubectl and kube's `Config::infer`), then the
/// in-cluster service account; `~/.kube/config` is never read on its own,
/// so a laptop's cluster is not watched by surprise.
pub async fn connect(settings: &Settings) -> Result<Option<Client>, ConnectError> {
    if settings.kubernetes == KubernetesMode::False {
        return Ok(None);
    }
    let config = if let Some(path) = std::env::var_os("KUBECONFIG") {
        kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions::default())
            .await
            .map_err(|source| ConnectError::Kubeconfig {
                path: path.to_string_lossy().into_owned(),
                source,
            })?
    } else if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        kube::Config::incluster()?
    } else if settings.kubernetes == KubernetesMode::True {
        return Err(ConnectError::NoConfig);
    } else {
        return Ok(None);
    };
    Ok(Some(Client::try_from(config)?))
}

/// Which namespaces to watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// Empty: all namespaces (one cluster-wide watch).
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl Namespaces {
    pub fn from_settings(settings: &Settings) -> Self {
        let clean = |v: &[String]| {
            v.iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        };
        Namespaces {
            include: clean(&settings.kubernetes_namespaces),
            exclude: clean(&settings.kubernetes_exclude_namespaces),
        }
    }

    /// The watches to open: `None` is one cluster-wide watch; else one
    /// namespaced watch each (works with a namespaced Role, no ClusterRole).
    pub fn scopes(&self) -> Vec<Option<String>> {
        if self.include.is_empty() {
            vec![None]
        } else {
            self.include
                .iter()
                .filter(|n| !self.exclude.contains(n))
                .map(|n| Some(n.clone()))
                .collect()
        }
    }

    pub fn allows(&self, namespace: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|n| n == namespace))
            && !self.exclude.iter().any(|n| n == namespace)
    }

    pub fn describe(&self) -> String {
        let mut s = if self.include.is_empty() {
            "all namespaces".to_owned()
        } else {
            format!("namespaces {}", self.include.join(","))
        };
        if !self.exclude.is_empty() {
            s.push_str(&format!(" except {}", self.exclude.join(",")));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_filters() {
        let all = Namespaces::default();
        assert_eq!(all.scopes(), vec![None]);
        assert!(all.allows("x"));
        let some = Namespaces {
            include: vec!["a".into(), "b".into()],
            exclude: vec!["b".into()],
        };
        assert_eq!(some.scopes(), vec![Some("a".to_owned())]);
        assert!(some.allows("a") && !some.allows("b") && !some.allows("c"));
        let except = Namespaces {
            include: vec![],
            exclude: vec!["kube-system".into()],
        };
        assert!(!except.allows("kube-system") && except.allows("default"));
        assert_eq!(except.describe(), "all namespaces except kube-system");
    }
}
