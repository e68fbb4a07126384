//! When a heartbeat's next ping is due: `period` after the last one, or the
//! first cron occurrence after it, in the schedule's time zone.
//!
//! Cron expressions are parsed by `croner` (POSIX/Vixie cron plus `L`, `#`,
//! `W`, `@daily` aliases and an optional seconds field) and evaluated in an
//! IANA zone from `chrono-tz` (the tz database compiled in, so a container
//! without `/usr/share/zoneinfo` still knows `Europe/Paris`). Daylight-saving
//! gaps and repeats are handled by croner on the zoned time.

use std::str::FromStr;

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use time::OffsetDateTime;

use crate::config::model::HeartbeatSchedule;

/// Parse a cron expression, with a message a person can act on.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    if expr.trim().is_empty() {
        return Err(
            "schedule is empty: write a cron expression like \"0 3 * * *\" (minute hour day month weekday)"
                .into(),
        );
    }
    Cron::from_str(expr.trim()).map_err(|e| {
        format!(
            "invalid cron expression {expr:?}: {e} (write five fields, minute hour day-of-month month day-of-week, like \"0 3 * * *\", or an alias like @daily)"
        )
    })
}

/// Parse an IANA time zone name.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    Tz::from_str(name.trim()).map_err(|_| {
        let hint = suggest_zone(name)
            .map(|z| format!("; did you mean {z:?}?"))
            .unwrap_or_default();
        format!("unknown time zone {name:?}: use an IANA name like \"UTC\", \"Europe/Paris\" or \"America/New_York\"{hint}")
    })
}

/// The closest IANA name ignoring case, for a typo like `europe/paris`.
fn suggest_zone(name: &str) -> Option<&'static str> {
    let lc = name.trim().to_lowercase();
    chrono_tz::TZ_VARIANTS
        .iter()
        .map(|z| z.name())
        .find(|z| z.to_lowercase() == lc)
}

/// The first time strictly after `after` at which a ping is due, or `None`
/// when the cron expression never matches again.
pub fn next_due(schedule: &HeartbeatSchedule, after: OffsetDateTime) -> Option<OffsetDateTime> {
    match schedule {
        HeartbeatSchedule::Period { period } => {
            let d = time::Duration::try_from(period.std()).ok()?;
            after.checked_add(d)
        }
        HeartbeatSchedule::Cron {
            expression,
            timezone,
        } => {
            let cron = parse_cron(expression).ok()?;
            let tz = parse_timezone(timezone).ok()?;
            let nanos = after.unix_timestamp_nanos();
            let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
            let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
            let start = Utc.timestamp_opt(secs, sub).single()?.with_timezone(&tz);
            let next = cron.find_next_occurrence(&start, false).ok()?;
            OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(next.timestamp()) * 1_000_000_000
                    + i128::from(next.timestamp_subsec_nanos()),
            )
            .ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::Duration;
    use time::macros::datetime;

    fn cron(expr: &str, tz: &str) -> HeartbeatSchedule {
        HeartbeatSchedule::Cron {
            expression: expr.into(),
            timezone: tz.into(),
        }
    }

    #[test]
    fn period_adds_to_the_last_ping() {
        let s = HeartbeatSchedule::Period {
            period: Duration::from_secs(90),
        };
        assert_eq!(
            next_due(&s, datetime!(2026-11-25 10:00:00 UTC)),
            Some(datetime!(2026-11-25 10:01:30 UTC))
        );
    }

    #[test]
    fn daily_cron_in_utc() {
        let s = cron("0 3 * * *", "UTC");
        assert_eq!(
            next_due(&s, datetime!(2026-11-25 02:59:59 UTC)),
            Some(datetime!(2026-11-25 03:00:00 UTC))
        );
        // Strictly after: a ping at 03:00 exactly is due again the next day.
        assert_eq!(
            next_due(&s, datetime!(2026-11-25 03:00:00 UTC)),
            Some(datetime!(2026-11-26 03:00:00 UTC))
        );
        assert_eq!(
            next_due(&s, datetime!(2026-12-31 04:00:00 UTC)),
            Some(datetime!(2027-01-01 03:00:00 UTC))
        );
    }

    #[test]
    fn cron_follows_the_time_zone_and_daylight_saving() {
        // 03:00 in Paris is 02:00 UTC in winter (CET, +1) and 01:00 UTC in summer (CEST, +2).
        let s = cron("0 3 * * *", "Europe/Paris");
        assert_eq!(
            next_due(&s, datetime!(2026-11-25 00:00:00 UTC)),
            Some(datetime!(2026-11-25 02:00:00 UTC))
        );
        assert_eq!(
            next_due(&s, datetime!(2026-07-01 00:00:00 UTC)),
            Some(datetime!(2026-07-01 01:00:00 UTC))
        );
        // Weekdays at 09:30 in New York; 2026-11-28 is a Saturday.
        let s = cron("30 9 * * 1-5", "America/New_York");
        assert_eq!(
            next_due(&s, datetime!(2026-11-27 15:00:00 UTC)),
            Some(datetime!(2026-11-30 14:30:00 UTC))
        );
    }

    #[test]
    fn aliases_and_steps() {
        assert_eq!(
            next_due(&cron("@hourly", "UTC"), datetime!(2026-11-25 10:20:00 UTC)),
            Some(datetime!(2026-11-25 11:00:00 UTC))
        );
        assert_eq!(
            next_due(
                &cron("*/15 * * * *", "UTC"),
                datetime!(2026-11-25 10:20:00 UTC)
            ),
            Some(datetime!(2026-11-25 10:30:00 UTC))
        );
    }

    #[test]
    fn bad_cron_and_zone_say_what_to_write() {
        for bad in ["", "61 * * * *", "* * *", "0 3 * * mon-xyz", "every day"] {
            let e = parse_cron(bad).unwrap_err();
            assert!(e.contains("cron") || e.contains("empty"), "{bad:?}: {e}");
        }
        assert!(parse_cron("0 3 * * *").is_ok());
        assert!(
            parse_cron("0 0 3 * * *").is_ok(),
            "six fields: seconds first"
        );
        let e = parse_timezone("Mars/Olympus").unwrap_err();
        assert!(e.contains("unknown time zone \"Mars/Olympus\""), "{e}");
        let e = parse_timezone("europe/paris").unwrap_err();
        assert!(e.contains("did you mean \"Europe/Paris\""), "{e}");
        assert!(parse_timezone("America/New_York").is_ok());
    }
}
