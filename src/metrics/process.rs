//! The process's own resources, read from `/proc/self` under the names
//! Prometheus client libraries use (`process_*`), so stock dashboards work.

/// What one read of `/proc/self` found; `None` where a file was unreadable
/// (not Linux, or a restricted `/proc`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessSample {
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
}

pub fn sample() -> ProcessSample {
    let ticks = clock_ticks();
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let fields = stat.as_deref().and_then(stat_fields);
    let field = |i: usize| -> Option<u64> { fields.as_ref()?.get(i)?.parse().ok() };
    // Fields after the command name, from 0: state is 0, utime 11, stime 12,
    // starttime 19, vsize 20, rss (pages) 21 (proc(5) numbers them 3..).
    let cpu_seconds = match (field(11), field(12)) {
        (Some(u), Some(s)) => Some((u + s) as f64 / ticks),
        _ => None,
    };
    let start_time_seconds = field(19).and_then(|t| Some(boot_time()? + t as f64 / ticks));
    let page = page_size();
    ProcessSample {
        resident_bytes: field(21).map(|p| p * page),
        virtual_bytes: field(20),
        cpu_seconds,
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64),
        max_fds: std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| max_open_files(&l)),
        start_time_seconds,
    }
}

/// The fields of `/proc/self/stat` after `(comm)`, which may itself hold
/// spaces and parentheses: split after the last `)`.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    // "Max open files  1024  4096  files": the soft limit.
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf reads a constant of the system; no memory is passed.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: as above.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_tricky_command_name_and_limits() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 12345 1000000 300 18446744073709551615";
        let f = stat_fields(stat).unwrap();
        assert_eq!(
            (f[0], f[11], f[12], f[19], f[20], f[21]),
            ("S", "250", "50", "12345", "1000000", "300")
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
    }

    #[test]
    fn this_process_has_memory_cpu_and_files() {
        let s = sample();
        assert!(s.resident_bytes.unwrap() > 1 << 20);
        assert!(s.open_fds.unwrap() >= 3);
        assert!(s.max_fds.unwrap() >= s.open_fds.unwrap());
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
        let start = s.start_time_seconds.unwrap();
        assert!(start <= now + 1.0 && start > now - 86_400.0 * 365.0);
        assert!(s.cpu_seconds.unwrap() >= 0.0);
    }
}
