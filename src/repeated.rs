//! Rate limit for log lines that repeat: one line per kind and interval,
//! with how many it stands for.
//!
//! A full disk fails every check and every ping batch: logged one by one,
//! 200 endpoints at 1 s wrote 21,110 ERROR lines (5.6 MB) in 100 s, which
//! buried the one line that mattered and filled the log volume too. Here the
//! first occurrence of a kind is logged at once; the next ones within
//! [`INTERVAL`] are only counted, and the first after it is logged with the
//! count ("x1234 in the last 10s"). The store's health ([`crate::store::health`])
//! holds the cause meanwhile.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// At most one line per kind this often.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Errors of the store (failed writes, flushes), by kind.
pub static STORE_ERRORS: LazyLock<Repeated> = LazyLock::new(|| Repeated::new(INTERVAL));

struct Window {
    logged_at: Instant,
    /// Occurrences since the last logged line.
    suppressed: u64,
}

/// Counts occurrences by kind; says which to log.
pub struct Repeated {
    interval: Duration,
    kinds: Mutex<HashMap<&'static str, Window>>,
}

impl Repeated {
    pub fn new(interval: Duration) -> Repeated {
        Repeated {
            interval,
            kinds: Mutex::default(),
        }
    }

    /// One occurrence of `kind`: `Some(n)` when it is to be logged, `n` being
    /// the occurrences it stands for (itself and those counted since the
    /// last line), `None` when it is only counted.
    pub fn hit(&self, kind: &'static str) -> Option<u64> {
        self.hit_at(kind, Instant::now())
    }

    fn hit_at(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        match kinds.get_mut(kind) {
            Some(w) if now.duration_since(w.logged_at) < self.interval => {
                w.suppressed += 1;
                None
            }
            Some(w) => {
                let n = w.suppressed + 1;
                *w = Window {
                    logged_at: now,
                    suppressed: 0,
                };
                Some(n)
            }
            None => {
                kinds.insert(
                    kind,
                    Window {
                        logged_at: now,
                        suppressed: 0,
                    },
                );
                Some(1)
            }
        }
    }

    /// Forget the counts of `kind` (the condition is over: its next
    /// occurrence is news and is logged at once). Returns the occurrences
    /// counted and never logged.
    pub fn reset(&self, kind: &'static str) -> u64 {
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        kinds.remove(kind).map_or(0, |w| w.suppressed)
    }
}

impl Repeated {
    /// [`Repeated::reset`] of every kind; the occurrences never logged.
    pub fn reset_all(&self) -> u64 {
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        kinds.drain().map(|(_, w)| w.suppressed).sum()
    }
}

/// The suffix of a line that stands for `n` occurrences: empty for one,
/// ` (x1234 in the last 10s)` for more.
pub fn times(n: u64) -> String {
    if n <= 1 {
        String::new()
    } else {
        format!(" (x{n} in the last {}s)", INTERVAL.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count() {
        let r = Repeated::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(r.hit_at("a", t0), Some(1));
        for i in 1..=1234 {
            assert_eq!(r.hit_at("a", t0 + Duration::from_millis(i)), None);
        }
        // Another kind has its own window.
        assert_eq!(r.hit_at("b", t0 + Duration::from_secs(1)), Some(1));
        assert_eq!(r.hit_at("a", t0 + Duration::from_secs(10)), Some(1235));
        assert_eq!(r.hit_at("a", t0 + Duration::from_secs(11)), None);
        assert_eq!(r.reset("a"), 1);
        assert_eq!(r.hit_at("a", t0 + Duration::from_secs(12)), Some(1));
        assert_eq!(times(1), "");
        assert_eq!(times(1235), " (x1235 in the last 10s)");
    }
}
