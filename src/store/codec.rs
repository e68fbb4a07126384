//! The binary encoding of check results and observed states in sled.
//!
//! Every check writes one result and one state, and sled keeps the hot
//! leaves of both trees in memory: at 10k monitors the JSON encoding (about
//! 110 bytes a result, 300 a state, mostly RFC 3339 timestamps and field
//! names) was megabytes of RSS and most of a check's CPU. This encoding is
//! about 20 and 45 bytes.
//!
//! A record starts with a format byte. JSON records written by earlier
//! versions start with `{` and are still read, so an existing database needs
//! no migration; every write uses the binary form.

use time::OffsetDateTime;

use super::{CheckRecord, ObservedState, Status};

const FORMAT_V1: u8 = 1;

/// A stored record that is neither JSON nor a known binary form.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct DecodeError {
    what: &'static str,
    reason: &'static str,
}

fn err(what: &'static str, reason: &'static str) -> DecodeError {
    DecodeError { what, reason }
}

pub fn encode_check(rec: &CheckRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + rec.error.as_ref().map_or(0, String::len));
    out.push(FORMAT_V1);
    put_check(&mut out, rec);
    out
}

pub fn decode_check(b: &[u8]) -> Result<CheckRecord, super::StoreError> {
    decode(b, "check result", |r| r.check())
}

pub fn encode_state(s: &ObservedState) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT_V1);
    out.push(match s.status {
        Status::Pending => 0,
        Status::Up => 1,
        Status::Down => 2,
        Status::Paused => 3,
    });
    out.extend_from_slice(&s.consecutive_failures.to_le_bytes());
    out.extend_from_slice(&s.consecutive_successes.to_le_bytes());
    out.extend_from_slice(&s.checks_total.to_le_bytes());
    match s.since {
        Some(t) => {
            out.push(1);
            out.extend_from_slice(&nanos(t).to_le_bytes());
        }
        None => out.push(0),
    }
    // The last check goes last: its error text runs to the end.
    if let Some(rec) = &s.last_check {
        put_check(&mut out, rec);
    }
    out
}

pub fn decode_state(b: &[u8]) -> Result<ObservedState, super::StoreError> {
    decode(b, "monitor state", |r| {
        let status = match r.u8()? {
            0 => Status::Pending,
            1 => Status::Up,
            2 => Status::Down,
            3 => Status::Paused,
            _ => return Err(err(r.what, "unknown status")),
        };
        let consecutive_failures = r.u32()?;
        let consecutive_successes = r.u32()?;
        let checks_total = r.u64()?;
        let since = match r.u8()? {
            0 => None,
            _ => Some(r.time()?),
        };
        let last_check = if r.b.is_empty() {
            None
        } else {
            Some(r.check()?)
        };
        Ok(ObservedState {
            status,
            since,
            last_check,
            consecutive_failures,
            consecutive_successes,
            checks_total,
        })
    })
}

/// JSON (an earlier version's record) or the binary form read by `binary`,
/// which must consume every byte.
fn decode<T: serde::de::DeserializeOwned>(
    b: &[u8],
    what: &'static str,
    binary: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, super::StoreError> {
    match b.first() {
        Some(b'{') => Ok(serde_json::from_slice(b)?),
        Some(&FORMAT_V1) => {
            let mut r = Reader { b: &b[1..], what };
            let value = binary(&mut r)?;
            r.end()?;
            Ok(value)
        }
        _ => Err(err(what, "unknown format").into()),
    }
}

const UP: u8 = 1;
const HAS_STATUS: u8 = 2;
const HAS_ERROR: u8 = 4;

/// `at` (i64 ns), flags, [status u16], response time (f64 ms), [error to the end].
fn put_check(out: &mut Vec<u8>, rec: &CheckRecord) {
    out.extend_from_slice(&nanos(rec.at).to_le_bytes());
    let mut flags = 0;
    if rec.up {
        flags |= UP;
    }
    if rec.status_code.is_some() {
        flags |= HAS_STATUS;
    }
    if rec.error.is_some() {
        flags |= HAS_ERROR;
    }
    out.push(flags);
    if let Some(code) = rec.status_code {
        out.extend_from_slice(&code.to_le_bytes());
    }
    out.extend_from_slice(&rec.response_time_ms.to_le_bytes());
    if let Some(e) = &rec.error {
        out.extend_from_slice(e.as_bytes());
    }
}

/// Nanoseconds since the epoch: an i64 covers the years 1678 to 2262.
fn nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

struct Reader<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .b
            .split_first_chunk::<N>()
            .ok_or(err(self.what, "truncated"))?;
        self.b = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    fn time(&mut self) -> Result<OffsetDateTime, DecodeError> {
        let n = i64::from_le_bytes(self.take()?);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(n))
            .map_err(|_| err(self.what, "timestamp out of range"))
    }

    fn check(&mut self) -> Result<CheckRecord, DecodeError> {
        let at = self.time()?;
        let flags = self.u8()?;
        let status_code = if flags & HAS_STATUS != 0 {
            Some(u16::from_le_bytes(self.take()?))
        } else {
            None
        };
        let response_time_ms = f64::from_le_bytes(self.take()?);
        let error = if flags & HAS_ERROR != 0 {
            let text = std::str::from_utf8(self.b)
                .map_err(|_| err(self.what, "error text is not UTF-8"))?;
            self.b = &[];
            Some(text.to_owned())
        } else {
            None
        };
        Ok(CheckRecord {
            at,
            up: flags & UP != 0,
            status_code,
            response_time_ms,
            error,
        })
    }

    fn end(&self) -> Result<(), DecodeError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(err(self.what, "trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(
        at_ns: i64,
        up: bool,
        code: Option<u16>,
        ms: f64,
        error: Option<String>,
    ) -> CheckRecord {
        CheckRecord {
            at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ns)).unwrap(),
            up,
            status_code: code,
            response_time_ms: ms,
            error,
        }
    }

    fn any_check() -> impl Strategy<Value = CheckRecord> {
        (
            0i64..4_000_000_000_000_000_000,
            any::<bool>(),
            proptest::option::of(any::<u16>()),
            0.0f64..1e7,
            proptest::option::of(".{0,40}"),
        )
            .prop_map(|(t, up, code, ms, e)| check(t, up, code, ms, e))
    }

    proptest! {
        #[test]
        fn check_records_round_trip(rec in any_check()) {
            prop_assert_eq!(decode_check(&encode_check(&rec)).unwrap(), rec);
        }

        #[test]
        fn states_round_trip(
            status in 0u8..4,
            fails in any::<u32>(),
            oks in any::<u32>(),
            total in any::<u64>(),
            since in proptest::option::of(0i64..4_000_000_000_000_000_000),
            last in proptest::option::of(any_check()),
        ) {
            let s = ObservedState {
                status: [Status::Pending, Status::Up, Status::Down, Status::Paused][status as usize],
                since: since.map(|n| OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).unwrap()),
                last_check: last,
                consecutive_failures: fails,
                consecutive_successes: oks,
                checks_total: total,
            };
            prop_assert_eq!(decode_state(&encode_state(&s)).unwrap(), s);
        }

        /// Whatever is in the database, decoding returns a value or an error.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decode_check(&b);
            let _ = decode_state(&b);
        }
    }

    #[test]
    fn json_records_of_earlier_versions_are_still_read() {
        let rec = check(
            1_764_000_000_123_456_789,
            false,
            Some(503),
            12.5,
            Some("boom".into()),
        );
        let json = serde_json::to_vec(&rec).unwrap();
        assert_eq!(decode_check(&json).unwrap(), rec);
        let s = ObservedState {
            status: Status::Down,
            since: Some(rec.at),
            last_check: Some(rec.clone()),
            consecutive_failures: 3,
            consecutive_successes: 0,
            checks_total: 9,
        };
        assert_eq!(decode_state(&serde_json::to_vec(&s).unwrap()).unwrap(), s);
    }

    #[test]
    fn binary_records_are_small_and_bad_ones_are_errors() {
        let rec = check(1_764_000_000_123_456_789, true, Some(200), 0.85, None);
        let b = encode_check(&rec);
        assert_eq!(b.len(), 20);
        assert!(decode_check(&b[..b.len() - 1]).is_err(), "truncated");
        let mut long = b.clone();
        long.push(0);
        assert!(decode_check(&long).is_err(), "trailing byte");
        assert!(decode_check(&[9, 1, 2]).is_err(), "unknown format");
        assert!(decode_check(&[]).is_err(), "empty");
    }
}
