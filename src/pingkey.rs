//! The global ping key (`MAINTENANT_PING_KEY`), as Healthchecks has: when it
//! is set, a heartbeat without its own token is pinged at
//! `/ping/{key}/{name}` only, and `/ping/{name}` answers 404, so reaching the
//! port (and reading heartbeat names off `/status.json`) is not enough to keep
//! a broken job "up". Unset (the default), pings work as before.

/// Fewest characters a key may have: it is the one secret of every keyed URL.
pub const MIN_CHARS: usize = 16;
/// Most characters (a URL path segment, and a bound on what is compared).
pub const MAX_CHARS: usize = 128;

/// A validated ping key. Its `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct PingKey(String);

impl std::fmt::Debug for PingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PingKey(***)")
    }
}

/// Why `MAINTENANT_PING_KEY` was refused (the value itself is never echoed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PingKeyError {
    #[error(
        "MAINTENANT_PING_KEY is {0} characters long: use {MIN_CHARS} to {MAX_CHARS} (e.g. the output of `openssl rand -hex 16`) so keyed ping URLs cannot be guessed"
    )]
    Length(usize),
    #[error(
        "MAINTENANT_PING_KEY may only contain letters, digits, `-` and `_` (it is a URL path segment)"
    )]
    Characters,
}

impl PingKey {
    /// `None` for an unset or blank setting.
    pub fn parse(raw: Option<&str>) -> Result<Option<PingKey>, PingKeyError> {
        let Some(key) = raw.map(str::trim).filter(|k| !k.is_empty()) else {
            return Ok(None);
        };
        let n = key.chars().count();
        if !(MIN_CHARS..=MAX_CHARS).contains(&n) {
            return Err(PingKeyError::Length(n));
        }
        if !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(PingKeyError::Characters);
        }
        Ok(Some(PingKey(key.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a path segment is the key, in time that does not depend on
    /// where they differ (only on the segment's length).
    pub fn matches(&self, segment: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), segment.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_characters_and_matching() {
        assert_eq!(PingKey::parse(None), Ok(None));
        assert_eq!(PingKey::parse(Some("  ")), Ok(None));
        assert_eq!(PingKey::parse(Some("short")), Err(PingKeyError::Length(5)));
        let long = "a".repeat(MAX_CHARS + 1);
        assert_eq!(
            PingKey::parse(Some(&long)),
            Err(PingKeyError::Length(MAX_CHARS + 1))
        );
        assert_eq!(
            PingKey::parse(Some("0123456789abcdef/x")),
            Err(PingKeyError::Characters)
        );
        let k = PingKey::parse(Some("0123456789abcdef")).unwrap().unwrap();
        assert!(k.matches("0123456789abcdef"));
        assert!(!k.matches("0123456789abcdeF"));
        assert!(!k.matches("0123456789abcde"));
        assert_eq!(format!("{k:?}"), "PingKey(***)");
        let e = PingKeyError::Length(5).to_string();
        assert!(e.contains("MAINTENANT_PING_KEY") && e.contains("16"), "{e}");
    }
}
