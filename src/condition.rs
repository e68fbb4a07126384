//! Gatus-style conditions on an endpoint check (`[STATUS] < 300`,
//! `[RESPONSE_TIME] < 500`, `[BODY].status == UP`, `[CONNECTED] == true`,
//! `[CERTIFICATE_EXPIRATION] > 72h`): parsed once when the monitors file is
//! loaded, evaluated against the facts of each check.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A parsed condition. Its string form is canonical and round-trips.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    // HELPER B: fields of your choosing (placeholder, operator, right-hand side).
    source: String,
}

/// What one check observed, for conditions to judge.
#[derive(Debug, Clone, Default)]
pub struct CheckFacts<'a> {
    pub status: Option<u16>,
    pub response_time: std::time::Duration,
    pub body: Option<&'a [u8]>,
    pub connected: bool,
    /// Time left until the served certificate expires (https only).
    pub certificate_expiration: Option<std::time::Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid condition {input:?}: {reason}")]
pub struct ConditionError {
    pub input: String,
    pub reason: String,
}

impl Condition {
    /// Whether this condition needs the response body (so the check reads it).
    pub fn needs_body(&self) -> bool {
        todo!("helper B")
    }

    /// Judge the facts. `Err` says, for a person, what failed and what was seen:
    /// `[STATUS] < 300 failed: [STATUS] was 503`.
    pub fn evaluate(&self, _facts: &CheckFacts<'_>) -> Result<(), String> {
        todo!("helper B")
    }
}

impl FromStr for Condition {
    type Err = ConditionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Condition {
            source: s.to_owned(),
        })
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Condition {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Condition".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A condition such as `[STATUS] == 200`, `[RESPONSE_TIME] < 500`, `[BODY].status == UP`, `[CONNECTED] == true`",
        })
    }
}
