//! Day rollups on disk, one file per day, beside sled rather than in it.
//!
//! Each monitor keeps 24 hourly rollups per day for the week `uptime_7d`
//! covers: 384 bytes a monitor and day, 3.8 MB a day at 10k monitors. In
//! sled, those values cost the daemon their size again in memory after a
//! restart: sled's segment cleaning reads every page it moves and keeps it
//! (the idle daemon on a 12-hour database: 9.8 MB of RssAnon against 3-4 MB on
//! a fresh one; README, Benchmark). Here they cost nothing between reads.
//!
//! Layout, in `<db>/uptime/`: `DAY.days`, DAY being days since 1970-01-01.
//! A file is an array of fixed-size slots, one per monitor, at
//! `slot * SLOT_BYTES`: the FNV-1a hash of the monitor's id (8 bytes, so a
//! slot read for the wrong monitor counts as empty rather than as someone
//! else's uptime) then 24 rollups of 16 bytes. Slots are numbers the store
//! gives each monitor (kept in sled with its current hour, see
//! [`super::Store`]); files are sparse where slots were never written.
//! Retention deletes whole files.
//!
//! Writes are positioned writes (`pwrite`) of one slot, which a killed
//! process cannot leave half done at this size; [`DayFiles::sync`] makes
//! them durable against a power cut, as sled's flush does for its log.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::Rollup;

/// Bytes of a day's rollups: 24 hours of [`Rollup::encode`].
pub const DAY_BYTES: usize = 24 * 16;
/// Bytes of one slot: the id's hash, then the day.
const SLOT_BYTES: u64 = 8 + DAY_BYTES as u64;
/// Day files kept open: a week and a day for `uptime_7d`, and the one being
/// written at midnight.
const OPEN_FILES: usize = 10;
const SUFFIX: &str = ".days";

/// The day files of one database.
#[derive(Clone)]
pub struct DayFiles {
    shared: Arc<Shared>,
}

struct Shared {
    dir: PathBuf,
    files: Mutex<Files>,
}

#[derive(Default)]
struct Files {
    /// The days that have a file, read once at open: a read of a day
    /// without one (every day of a new database, or of a new monitor's week)
    /// then costs no failed `open`, which for a 50-row `list_endpoints` page
    /// was 400 system calls.
    existing: BTreeSet<u64>,
    open: BTreeMap<u64, Arc<File>>,
    /// Days written since the last [`DayFiles::sync`].
    dirty: BTreeSet<u64>,
}

fn lock(m: &Mutex<Files>) -> MutexGuard<'_, Files> {
    // The map is only a cache of open files: consistent at every step.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn day_of_name(name: &str) -> Option<u64> {
    name.strip_suffix(SUFFIX)?.parse().ok()
}

impl DayFiles {
    /// Open the day files in `dir`, creating it if missing.
    pub fn open(dir: &Path) -> io::Result<DayFiles> {
        fs::create_dir_all(dir)?;
        let mut existing = BTreeSet::new();
        for entry in fs::read_dir(dir)? {
            if let Some(day) = entry?.file_name().to_str().and_then(day_of_name) {
                existing.insert(day);
            }
        }
        Ok(DayFiles {
            shared: Arc::new(Shared {
                dir: dir.to_owned(),
                files: Mutex::new(Files {
                    existing,
                    ..Files::default()
                }),
            }),
        })
    }

    fn path(&self, day: u64) -> PathBuf {
        self.shared.dir.join(format!("{day}{SUFFIX}"))
    }

    /// The file of `day`, opened once and kept among the [`OPEN_FILES`]
    /// newest; `None` if it does not exist and `create` is false.
    fn file(&self, day: u64, create: bool) -> io::Result<Option<Arc<File>>> {
        let mut files = lock(&self.shared.files);
        if let Some(f) = files.open.get(&day) {
            return Ok(Some(f.clone()));
        }
        if !create && !files.existing.contains(&day) {
            return Ok(None);
        }
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(self.path(day));
        let file = match opened {
            Ok(f) => Arc::new(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        files.existing.insert(day);
        files.open.insert(day, file.clone());
        while files.open.len() > OPEN_FILES {
            files.open.pop_first();
        }
        Ok(Some(file))
    }

    /// The 24 rollups of `id` (in `slot`) on `day`, or `None` when nothing
    /// of this monitor was written there.
    pub fn read(&self, day: u64, slot: u32, id: &[u8]) -> io::Result<Option<[u8; DAY_BYTES]>> {
        let Some(file) = self.file(day, false)? else {
            return Ok(None);
        };
        let mut buf = [0u8; SLOT_BYTES as usize];
        match file.read_exact_at(&mut buf, u64::from(slot) * SLOT_BYTES) {
            Ok(()) => {}
            // Past the end: a slot no one wrote that day.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        if buf[..8] != super::history::hash(id).to_le_bytes() {
            return Ok(None);
        }
        let mut day = [0u8; DAY_BYTES];
        day.copy_from_slice(&buf[8..]);
        Ok(Some(day))
    }

    /// The rollup of `hour` of `id`, empty if none was written.
    pub fn read_hour(&self, slot: u32, id: &[u8], hour: u64) -> io::Result<Rollup> {
        Ok(self
            .read(hour / 24, slot, id)?
            .map(|d| day_slot(&d, hour))
            .unwrap_or_default())
    }

    /// Set the rollup of `hour` of `id`. Setting, not adding: writing an
    /// hour twice (a crash between this and sled's record of the next hour)
    /// counts it once.
    pub fn set_hour(&self, slot: u32, id: &[u8], hour: u64, r: Rollup) -> io::Result<()> {
        let day = hour / 24;
        let mut value = self.read(day, slot, id)?.unwrap_or([0; DAY_BYTES]);
        value[(hour % 24) as usize * 16..][..16].copy_from_slice(&r.encode());
        self.write_day(day, slot, id, &value)
    }

    /// Write a whole day of `id` (a migration from sled).
    pub fn write_day(
        &self,
        day: u64,
        slot: u32,
        id: &[u8],
        value: &[u8; DAY_BYTES],
    ) -> io::Result<()> {
        let file = self.file(day, true)?.expect("created");
        let mut buf = [0u8; SLOT_BYTES as usize];
        buf[..8].copy_from_slice(&super::history::hash(id).to_le_bytes());
        buf[8..].copy_from_slice(value);
        file.write_all_at(&buf, u64::from(slot) * SLOT_BYTES)?;
        lock(&self.shared.files).dirty.insert(day);
        Ok(())
    }

    /// Delete the files of days before `keep_from`; how many were deleted.
    pub fn prune(&self, keep_from: u64) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.shared.dir)? {
            let entry = entry?;
            let Some(day) = entry.file_name().to_str().and_then(day_of_name) else {
                continue;
            };
            if day < keep_from {
                {
                    let mut files = lock(&self.shared.files);
                    files.existing.remove(&day);
                    files.open.remove(&day);
                    files.dirty.remove(&day);
                }
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(removed)
    }

    /// `fdatasync` the files written since the last call.
    pub fn sync(&self) -> io::Result<()> {
        let dirty = std::mem::take(&mut lock(&self.shared.files).dirty);
        for day in dirty {
            if let Some(file) = self.file(day, false)? {
                file.sync_data()?;
            }
        }
        Ok(())
    }

    /// Bytes of every day file (allocated, as they are sparse).
    pub fn size_on_disk(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        fs::read_dir(&self.shared.dir)
            .map(|dir| {
                dir.filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.blocks() * 512)
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// The rollup of `hour` in a day value.
pub fn day_slot(day: &[u8; DAY_BYTES], hour: u64) -> Rollup {
    Rollup::decode(&day[(hour % 24) as usize * 16..][..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(checks: u32, up: u32) -> Rollup {
        Rollup {
            checks,
            up,
            response_ms_sum: f64::from(checks) * 2.0,
        }
    }

    #[test]
    fn hours_are_set_per_slot_and_read_back_only_for_their_monitor() {
        let dir = tempfile::tempdir().unwrap();
        let days = DayFiles::open(dir.path()).unwrap();
        let day = 20_000;
        days.set_hour(3, b"endpoint/a", day * 24 + 5, r(4, 3))
            .unwrap();
        days.set_hour(3, b"endpoint/a", day * 24 + 6, r(2, 2))
            .unwrap();
        days.set_hour(0, b"endpoint/b", day * 24 + 5, r(1, 0))
            .unwrap();
        // Set, not added.
        days.set_hour(3, b"endpoint/a", day * 24 + 5, r(5, 3))
            .unwrap();
        assert_eq!(
            days.read_hour(3, b"endpoint/a", day * 24 + 5).unwrap(),
            r(5, 3)
        );
        assert_eq!(
            days.read_hour(3, b"endpoint/a", day * 24 + 6).unwrap(),
            r(2, 2)
        );
        assert_eq!(
            days.read_hour(0, b"endpoint/b", day * 24 + 5).unwrap(),
            r(1, 0)
        );
        // Another monitor's slot, a slot never written, a day without a file.
        assert_eq!(days.read(day, 3, b"endpoint/b").unwrap(), None);
        assert_eq!(days.read(day, 1, b"endpoint/a").unwrap(), None);
        assert_eq!(days.read(day, 9, b"endpoint/a").unwrap(), None);
        assert_eq!(days.read(day + 1, 3, b"endpoint/a").unwrap(), None);
        // The file is sparse-sized by its highest slot: four slots.
        let len = fs::metadata(dir.path().join(format!("{day}.days")))
            .unwrap()
            .len();
        assert_eq!(len, 4 * SLOT_BYTES);
    }

    #[test]
    fn a_slot_taken_over_by_another_monitor_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let days = DayFiles::open(dir.path()).unwrap();
        let hour = 20_000 * 24;
        days.set_hour(0, b"endpoint/old", hour, r(7, 7)).unwrap();
        days.set_hour(0, b"endpoint/new", hour + 1, r(1, 1))
            .unwrap();
        let day = days.read(hour / 24, 0, b"endpoint/new").unwrap().unwrap();
        assert_eq!(day_slot(&day, hour), Rollup::default(), "nothing of old's");
        assert_eq!(day_slot(&day, hour + 1), r(1, 1));
        assert_eq!(days.read(hour / 24, 0, b"endpoint/old").unwrap(), None);
    }

    #[test]
    fn prune_deletes_whole_days_before_the_cutoff_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let days = DayFiles::open(dir.path()).unwrap();
            for day in [10, 11, 12] {
                days.set_hour(0, b"k", day * 24, r(1, 1)).unwrap();
            }
            days.sync().unwrap();
            assert_eq!(days.prune(12).unwrap(), 2);
            assert_eq!(days.prune(12).unwrap(), 0);
            assert_eq!(days.read(11, 0, b"k").unwrap(), None);
        }
        fs::write(dir.path().join("notes.txt"), "not a day").unwrap();
        let days = DayFiles::open(dir.path()).unwrap();
        assert_eq!(days.read_hour(0, b"k", 12 * 24).unwrap(), r(1, 1));
        assert_eq!(days.prune(100).unwrap(), 1, "other files are left alone");
        assert!(dir.path().join("notes.txt").exists());
    }
}
