//! Human durations as the monitors file writes them: `500ms`, `30s`, `5m`,
//! `1h`, `7d`, and sums such as `1h30m`.
//!
//! Every duration read from a file, label, annotation, resource, setting or
//! tool argument is at most [`MAX`]: no deadline, timer or date computed from
//! one can overflow (tokio's timer wheel alone panics past about 2 years).

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (write it like 500ms, 30s, 5m, 1h, 7d or 1h30m)")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

const TOO_LONG: &str = "it is longer than 366d, the longest accepted";

impl DurationError {
    /// Well formed, but longer than [`MAX`].
    pub fn is_too_long(&self) -> bool {
        self.reason == TOO_LONG
    }
}

/// The longest accepted duration: 366 days (a yearly job and its grace fit).
pub const MAX: Duration = Duration(std::time::Duration::from_secs(366 * 86_400));

impl Duration {
    /// Parse without the [`MAX`] bound, for values that are only compared,
    /// never added to a time (a condition's `[CERTIFICATE_EXPIRATION] > 800d`).
    pub fn parse_unbounded(input: &str) -> Result<Self, DurationError> {
        parse_millis(input).map(Duration::from_millis)
    }

    pub fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }
    pub fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }
    pub fn std(self) -> std::time::Duration {
        self.0
    }
}

impl FromStr for Duration {
    type Err = DurationError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let d = Duration::parse_unbounded(input)?;
        if d > MAX {
            return Err(DurationError {
                input: input.chars().take(40).collect(),
                reason: TOO_LONG,
            });
        }
        Ok(d)
    }
}

fn parse_millis(input: &str) -> Result<u64, DurationError> {
    // A rejected input is quoted in the error: only its start.
    let err = |reason| DurationError {
        input: input.chars().take(40).collect(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err("expected a number"));
        }
        let n: u128 = rest[..digits]
            .parse()
            .map_err(|_| err("number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms_per: u128 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(err("a unit is missing")),
            _ => return Err(err("unknown unit")),
        };
        total = n
            .checked_mul(ms_per)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| err("too large"))?;
    }
    u64::try_from(total).map_err(|_| err("too large"))
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, per) in [
            ("d", 86_400_000u128),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            if ms >= per {
                write!(f, "{}{}", ms / per, unit)?;
                ms %= per;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([0-9]+(ms|s|m|h|d))+$",
            "description": "A duration such as 500ms, 30s, 5m, 1h, 7d or 1h30m",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!("30s".parse::<Duration>().unwrap(), Duration::from_secs(30));
        assert_eq!("5m".parse::<Duration>().unwrap(), Duration::from_secs(300));
        assert_eq!(
            "1h30m".parse::<Duration>().unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            "7d".parse::<Duration>().unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert_eq!(
            "250ms".parse::<Duration>().unwrap(),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn rejects_with_reason() {
        for bad in ["", "30", "s", "5x", "1h-", "99999999999999999999d"] {
            assert!(
                bad.parse::<Duration>().is_err(),
                "{bad:?} should be rejected"
            );
        }
        let e = "5 minutes".parse::<Duration>().unwrap_err().to_string();
        assert!(e.contains("30s"), "{e}");
    }

    #[test]
    fn longer_than_the_maximum_is_refused_naming_it() {
        assert_eq!("366d".parse::<Duration>().unwrap(), MAX);
        for bad in [
            "367d",
            "3000000d",
            "5000000d",
            "8784h1ms",
            "18446744073709551615ms",
        ] {
            let e = bad.parse::<Duration>().unwrap_err().to_string();
            assert!(e.contains("366d"), "{bad}: {e}");
        }
        assert!(Duration::parse_unbounded("800d").is_ok());
        let long = "1".repeat(100_000) + "d";
        let e = long.parse::<Duration>().unwrap_err().to_string();
        assert!(
            e.len() < 200,
            "the error quotes only the start: {}",
            e.len()
        );
    }

    #[test]
    fn displays_round_trip() {
        for s in ["30s", "1h30m", "7d", "250ms", "1m5s"] {
            assert_eq!(s.parse::<Duration>().unwrap().to_string(), s);
        }
    }
}
