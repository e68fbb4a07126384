//! Host resources (CONTRACT: get_resources): CPU, load, memory, swap,
//! per-mount disk and network rates, sampled every few seconds so rates and
//! CPU usage are measured over an interval rather than guessed.
//!
//! By default everything comes from sysinfo, i.e. from the `/proc` and mounts
//! maintenant itself sees. Inside a container that is the container's view of
//! network and disks (CPU, load and memory are the host's anyway, except
//! that the memory limit is not applied). With `MAINTENANT_HOST_PROC` (the
//! host's `/proc` mounted, e.g. `-v /proc:/host/proc:ro`), CPU, load, memory,
//! swap and network are read from that directory instead: network from
//! `HOST_PROC/1/net/dev`, the network namespace of the host's init. Disks are
//! always the filesystems mounted into maintenant (mount host paths
//! read-only to see them).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;
use time::OffsetDateTime;

/// Time between samples.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HostResources {
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub sampled_at: OffsetDateTime,
    /// `sysinfo`, or `host_proc:PATH` when read from a mounted host /proc.
    pub source: String,
    pub cpu: CpuInfo,
    pub load: LoadInfo,
    pub memory: MemoryInfo,
    pub swap: SwapInfo,
    pub disks: Vec<DiskInfo>,
    pub network: Vec<NetworkInfo>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CpuInfo {
    pub cores: usize,
    /// Busy percent over all cores (100 = every core busy), over the last sample interval.
    pub usage_percent: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LoadInfo {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MemoryInfo {
    pub total_bytes: u64,
    /// Total minus available (page cache that can be freed is not "used").
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub used_percent: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SwapInfo {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub used_percent: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DiskInfo {
    pub mount: String,
    pub filesystem: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub used_percent: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NetworkInfo {
    pub interface: String,
    pub rx_bytes_per_sec: f64,
    pub tx_bytes_per_sec: f64,
    pub rx_total_bytes: u64,
    pub tx_total_bytes: u64,
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 10000.0 / whole as f64).round() / 100.0
    }
}

/// The latest sample, shared with the read model.
pub type HostView = Arc<RwLock<Option<HostResources>>>;

/// Raw counters of one reading, to compute rates between two readings.
struct Reading {
    at: Instant,
    /// (busy, total) jiffies, when read from a host /proc.
    cpu: Option<(u64, u64)>,
    net: Vec<(String, u64, u64)>,
}

#[derive(Clone)]
pub struct HostSampler {
    pub host_proc: Option<PathBuf>,
    pub view: HostView,
}

impl HostSampler {
    pub async fn run(self) {
        let (mut sys, mut disks) = match (sysinfo::System::new(), sysinfo::Disks::new()) {
            (Ok(s), Ok(d)) => (s, d),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "host resources are not available on this system");
                return;
            }
        };
        let mut prev: Option<Reading> = None;
        // sysinfo needs two CPU readings; the first sample comes after ~1s.
        sys.refresh_cpu_usage();
        let mut wait = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(Duration::from_millis(500));
        loop {
            // A reading before the first wait, so the first sample has rates.
            if prev.is_none() {
                prev = Some(self.reading());
            }
            tokio::time::sleep(wait).await;
            wait = SAMPLE_EVERY;
            let host_proc = self.host_proc.clone();
            let before = prev.take();
            let (sample, reading, s, d) = tokio::task::spawn_blocking(move || {
                let mut sys = sys;
                let mut disks = disks;
                let r = sample(&mut sys, &mut disks, host_proc.as_deref(), before.as_ref());
                (r.0, r.1, sys, disks)
            })
            .await
            .expect("host sampling does not panic");
            sys = s;
            disks = d;
            prev = Some(reading);
            *self.view.write().expect("host view lock") = Some(sample);
        }
    }

    fn reading(&self) -> Reading {
        read_counters(self.host_proc.as_deref())
    }
}

fn read_counters(host_proc: Option<&Path>) -> Reading {
    match host_proc {
        Some(p) => Reading {
            at: Instant::now(),
            cpu: proc_cpu(p),
            net: proc_net(p),
        },
        None => {
            let nets = sysinfo::Networks::new_with_refreshed_list().ok();
            Reading {
                at: Instant::now(),
                cpu: None,
                net: nets
                    .iter()
                    .flat_map(|n| n.iter())
                    .map(|(n, d)| {
                        (
                            n.to_string_lossy().into_owned(),
                            d.total_received(),
                            d.total_transmitted(),
                        )
                    })
                    .collect(),
            }
        }
    }
}

fn sample(
    sys: &mut sysinfo::System,
    disks: &mut sysinfo::Disks,
    host_proc: Option<&Path>,
    before: Option<&Reading>,
) -> (HostResources, Reading) {
    let now = read_counters(host_proc);
    let secs = before.map_or(0.0, |b| (now.at - b.at).as_secs_f64());
    let rate = |cur: u64, old: Option<u64>| match old {
        Some(o) if secs > 0.0 => (cur.saturating_sub(o) as f64 / secs * 10.0).round() / 10.0,
        _ => 0.0,
    };
    let network = now
        .net
        .iter()
        .map(|(name, rx, tx)| {
            let old = before.and_then(|b| b.net.iter().find(|(n, _, _)| n == name));
            NetworkInfo {
                interface: name.clone(),
                rx_bytes_per_sec: rate(*rx, old.map(|o| o.1)),
                tx_bytes_per_sec: rate(*tx, old.map(|o| o.2)),
                rx_total_bytes: *rx,
                tx_total_bytes: *tx,
            }
        })
        .collect();

    sys.refresh_cpu_usage();
    sys.refresh_memory();
    let cores = sys.cpus().len();
    let (source, cpu_usage, load, mem, swap) = match host_proc {
        Some(p) => {
            let usage = match (now.cpu, before.and_then(|b| b.cpu)) {
                (Some((busy, total)), Some((b0, t0))) if total > t0 => {
                    percent(busy.saturating_sub(b0), total - t0)
                }
                _ => 0.0,
            };
            let m = proc_meminfo(p);
            let get = |k: &str| m.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
            let (total, avail) = (get("MemTotal"), get("MemAvailable"));
            let (swap_total, swap_free) = (get("SwapTotal"), get("SwapFree"));
            (
                format!("host_proc:{}", p.display()),
                usage,
                proc_loadavg(p),
                (total, avail),
                (swap_total, swap_total.saturating_sub(swap_free)),
            )
        }
        None => {
            let l = sysinfo::System::load_average().unwrap_or(sysinfo::LoadAvg {
                one: 0.0,
                five: 0.0,
                fifteen: 0.0,
            });
            (
                "sysinfo".to_owned(),
                (f64::from(sys.global_cpu_usage()) * 100.0).round() / 100.0,
                LoadInfo {
                    one: l.one,
                    five: l.five,
                    fifteen: l.fifteen,
                },
                (sys.total_memory(), sys.available_memory()),
                (sys.total_swap(), sys.used_swap()),
            )
        }
    };

    disks.refresh(true);
    let mut seen = std::collections::BTreeSet::new();
    let disks = disks
        .iter()
        .filter(|d| d.total_space() > 0)
        .filter(|d| seen.insert(d.mount_point().to_path_buf()))
        .map(|d| {
            let used = d.total_space().saturating_sub(d.available_space());
            DiskInfo {
                mount: d.mount_point().display().to_string(),
                filesystem: d.file_system().to_string_lossy().into_owned(),
                total_bytes: d.total_space(),
                used_bytes: used,
                available_bytes: d.available_space(),
                used_percent: percent(used, d.total_space()),
            }
        })
        .collect();

    let (total, avail) = mem;
    let used = total.saturating_sub(avail);
    let r = HostResources {
        sampled_at: OffsetDateTime::now_utc(),
        source,
        cpu: CpuInfo {
            cores: if cores == 0 {
                std::thread::available_parallelism().map_or(1, |n| n.get())
            } else {
                cores
            },
            usage_percent: cpu_usage,
        },
        load,
        memory: MemoryInfo {
            total_bytes: total,
            used_bytes: used,
            available_bytes: avail,
            used_percent: percent(used, total),
        },
        swap: SwapInfo {
            total_bytes: swap.0,
            used_bytes: swap.1,
            used_percent: percent(swap.1, swap.0),
        },
        disks,
        network,
    };
    (r, now)
}

/// `cpu` line of `/proc/stat`: (busy, total) jiffies; idle and iowait are not busy.
fn proc_cpu(proc: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(proc.join("stat")).ok()?;
    parse_proc_stat(&text)
}

fn parse_proc_stat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// `/proc/meminfo` values in bytes.
fn proc_meminfo(proc: &Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(proc.join("meminfo"))
        .map(|t| parse_meminfo(&t))
        .unwrap_or_default()
}

fn parse_meminfo(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let (k, rest) = l.split_once(':')?;
            let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
            Some((k.to_owned(), kb * 1024))
        })
        .collect()
}

fn proc_loadavg(proc: &Path) -> LoadInfo {
    let t = std::fs::read_to_string(proc.join("loadavg")).unwrap_or_default();
    let v: Vec<f64> = t
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    LoadInfo {
        one: v.first().copied().unwrap_or(0.0),
        five: v.get(1).copied().unwrap_or(0.0),
        fifteen: v.get(2).copied().unwrap_or(0.0),
    }
}

/// Interfaces of the host's init network namespace: (name, rx bytes, tx bytes).
fn proc_net(proc: &Path) -> Vec<(String, u64, u64)> {
    std::fs::read_to_string(proc.join("1/net/dev"))
        .or_else(|_| std::fs::read_to_string(proc.join("net/dev")))
        .map(|t| parse_net_dev(&t))
        .unwrap_or_default()
}

fn parse_net_dev(text: &str) -> Vec<(String, u64, u64)> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let v: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            Some((name.trim().to_owned(), *v.first()?, *v.get(8)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n";
        assert_eq!(parse_proc_stat(stat), Some((150, 1000)));
        let mem = parse_meminfo("MemTotal:       16000 kB\nMemAvailable:    4000 kB\n");
        assert_eq!(mem[1], ("MemAvailable".into(), 4000 * 1024));
        let net = "Inter-|   Receive  |  Transmit\n face |bytes packets\n  lo: 10 1 0 0 0 0 0 0 20 2 0 0 0 0 0 0\neth0: 5 0 0 0 0 0 0 0 7 0 0 0 0 0 0 0\n";
        assert_eq!(
            parse_net_dev(net),
            vec![("lo".into(), 10, 20), ("eth0".into(), 5, 7)]
        );
    }

    #[test]
    fn a_host_proc_is_read_instead_of_our_own() {
        // A fake host /proc: the sample must carry its numbers, not this machine's.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("stat"), "cpu  100 0 100 800 0 0 0 0\n").unwrap();
        std::fs::write(
            p.join("meminfo"),
            "MemTotal: 1000 kB\nMemAvailable: 250 kB\nSwapTotal: 100 kB\nSwapFree: 100 kB\n",
        )
        .unwrap();
        std::fs::write(p.join("loadavg"), "1.50 0.75 0.25 1/100 42\n").unwrap();
        std::fs::create_dir(p.join("1/net").parent().unwrap()).ok();
        std::fs::create_dir_all(p.join("1/net")).unwrap();
        std::fs::write(
            p.join("1/net/dev"),
            "h\nh\nhost0: 1000 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
        )
        .unwrap();
        let before = read_counters(Some(p));
        std::fs::write(p.join("stat"), "cpu  150 0 150 900 0 0 0 0\n").unwrap();
        std::fs::write(
            p.join("1/net/dev"),
            "h\nh\nhost0: 3000 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut sys = sysinfo::System::new().unwrap();
        let mut disks = sysinfo::Disks::new().unwrap();
        let (r, _) = sample(&mut sys, &mut disks, Some(p), Some(&before));
        assert_eq!(r.memory.total_bytes, 1000 * 1024);
        assert_eq!(r.memory.used_percent, 75.0);
        assert_eq!(r.load.one, 1.5);
        assert_eq!(r.cpu.usage_percent, 50.0, "100 busy of 200 jiffies");
        assert_eq!(r.network[0].interface, "host0");
        assert!(r.network[0].rx_bytes_per_sec > 0.0);
        assert!(r.source.starts_with("host_proc:"));
    }
}
