//! Image references as Docker writes them: `nginx`, `nginx:1.27`,
//! `ghcr.io/org/app:2.0`, `127.0.0.1:5000/app:1.0.0`, with or without
//! `@sha256:...`.

use std::fmt;

pub const DOCKER_HUB: &str = "registry-1.docker.io";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry host (`registry-1.docker.io` for Docker Hub).
    pub registry: String,
    /// The repository (`library/nginx` for `nginx` on Docker Hub).
    pub repository: String,
    /// `latest` when none is written.
    pub tag: String,
    pub digest: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid image reference {0:?}")]
pub struct BadReference(pub String);

impl ImageRef {
    pub fn parse(s: &str) -> Result<ImageRef, BadReference> {
        let bad = || BadReference(s.to_owned());
        let s = s.trim();
        if s.is_empty() || s.contains(char::is_whitespace) {
            return Err(bad());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) if d.contains(':') => (r, Some(d.to_owned())),
            Some(_) => return Err(bad()),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], rest[slash + i + 1..].to_owned()),
            None => (rest, "latest".to_owned()),
        };
        if name.is_empty() || tag.is_empty() {
            return Err(bad());
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, repo))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), repo.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.is_empty() || repository.ends_with('/') {
            return Err(bad());
        }
        Ok(ImageRef {
            registry: if registry == "docker.io" || registry == "index.docker.io" {
                DOCKER_HUB.to_owned()
            } else {
                registry
            },
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository` as RepoDigests write it (`nginx` on Docker Hub).
    pub fn repo_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_owned()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repo_name(), self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> (String, String, String) {
        let r = ImageRef::parse(s).unwrap();
        (r.registry, r.repository, r.tag)
    }

    #[test]
    fn docker_reference_forms() {
        let hub = DOCKER_HUB.to_owned();
        assert_eq!(
            p("nginx"),
            (hub.clone(), "library/nginx".into(), "latest".into())
        );
        assert_eq!(
            p("nginx:1.27"),
            (hub.clone(), "library/nginx".into(), "1.27".into())
        );
        assert_eq!(
            p("docker.io/grafana/grafana:11"),
            (hub, "grafana/grafana".into(), "11".into())
        );
        assert_eq!(
            p("127.0.0.1:5000/app:1.0.0"),
            ("127.0.0.1:5000".into(), "app".into(), "1.0.0".into())
        );
        assert_eq!(
            p("ghcr.io/org/sub/app"),
            ("ghcr.io".into(), "org/sub/app".into(), "latest".into())
        );
        assert_eq!(
            p("localhost/app:v2"),
            ("localhost".into(), "app".into(), "v2".into())
        );
        let d = ImageRef::parse("nginx:1@sha256:abc").unwrap();
        assert_eq!(d.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(d.repo_name(), "nginx");
        assert_eq!(
            ImageRef::parse("127.0.0.1:5000/app:1.0.0")
                .unwrap()
                .repo_name(),
            "127.0.0.1:5000/app"
        );
        for bad in ["", "a b", "app:", "app@nodigest", ":tag"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
