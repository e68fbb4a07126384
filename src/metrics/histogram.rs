//! Per-monitor check counts and a fixed-bucket duration histogram, kept in
//! memory beside the observed state (since the process started; a
//! Prometheus counter may reset). Fixed size: 64 bytes per monitor.

/// Upper bounds of the duration buckets, in seconds: HTTP latencies from
/// 10 ms to the 10 s a slow check is allowed; slower lands in `+Inf` only.
pub const BOUNDS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The same bounds as `le` label values (OpenMetrics' canonical spelling,
/// which the classic format reads too).
pub const LE: [&str; 10] = [
    "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0",
];

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CheckStats {
    /// Observations in each bucket alone (not cumulative). u32: four
    /// billion checks of one monitor in one bucket is 136 years at 1 s.
    buckets: [u32; BOUNDS.len()],
    sum_seconds: f64,
    pub up: u64,
    pub down: u64,
}

impl CheckStats {
    /// Count one finished check that took `seconds`.
    pub fn observe(&mut self, seconds: f64, up: bool) {
        let s = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        if let Some(i) = BOUNDS.iter().position(|b| s <= *b) {
            self.buckets[i] = self.buckets[i].saturating_add(1);
        }
        self.sum_seconds += s;
        if up {
            self.up += 1;
        } else {
            self.down += 1;
        }
    }

    pub fn count(&self) -> u64 {
        self.up + self.down
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_seconds
    }

    /// Per-bucket counts, widened for the writer.
    pub fn buckets(&self) -> [u64; BOUNDS.len()] {
        self.buckets.map(u64::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let mut s = CheckStats::default();
        s.observe(0.01, true); // on a bound: that bucket (le is <=)
        s.observe(0.3, true);
        s.observe(42.0, false); // past the last bound: +Inf only
        s.observe(f64::NAN, false);
        let b = s.buckets();
        assert_eq!(b[0], 2, "0.01 and NaN (as 0)");
        assert_eq!(b[5], 1, "0.3 is under 0.5");
        assert_eq!(b.iter().sum::<u64>(), 3);
        assert_eq!((s.up, s.down, s.count()), (2, 2, 4));
        assert!((s.sum_seconds() - 42.31).abs() < 1e-9);
        assert!(std::mem::size_of::<CheckStats>() <= 64);
    }
}
