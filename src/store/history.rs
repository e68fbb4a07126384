//! Check results on disk, in segment files beside sled rather than in it.
//!
//! sled keeps a few hundred bytes of memory for every page of a tree, and a
//! leaf page holds at most 16 keys, so a key per check made the daemon's
//! memory grow with its history: 10k monitors checked every 30 s reached
//! 135 MB of RSS (and 1.1 GB on disk) after two hours of results, on the way
//! to 20 million keys at the 7-day retention. Here history costs no memory
//! between queries, whatever its size, and retention deletes whole files.
//!
//! Layout, in `<db>/history/`:
//! - `open.log`: the segment being written. Records are appended in arrival
//!   order: `key_len u16 | key | at_micros u64 | len u32 | record`, where
//!   `record` is [`super::codec::encode_check`]. Written through a buffer
//!   flushed every 500 ms (like sled's log), so a killed process loses at
//!   most that much history; its state and uptime are in sled.
//! - `FIRST.pending`: a full segment, renamed from `open.log` once it holds
//!   [`SEAL_RECORDS`] records or is an hour old, waiting to be sorted.
//! - `FIRST-LAST.seg`: a sealed segment (FIRST and LAST are the oldest and
//!   newest `at_micros`, zero-padded so names sort by time). Sorted by monitor
//!   then time: a header, an index of `(hash of key, offset, len, count)`
//!   sorted by hash, then one block per monitor (`key_len u16 | key` then its
//!   records `at_micros u64 | len u32 | record`, oldest first). A query reads
//!   a few index entries and one block per segment.
//!
//! A background thread flushes the open segment and seals pending ones, so
//! a check never waits for a sort. Every step that replaces a file writes a
//! temporary file and renames it, and startup finishes what a crash left.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// Records in a segment before it is sealed: at 10k monitors every 30 s,
/// a segment every 3.3 minutes of about 2.5 MB.
pub const SEAL_RECORDS: u32 = 65_536;
/// A segment is also sealed once its first record is this old, so a small
/// install's open segment (scanned whole by every query) stays small.
const SEAL_AGE: Duration = Duration::from_secs(3600);
const FLUSH_EVERY: Duration = Duration::from_millis(500);
const MAGIC: &[u8; 8] = b"MNTHSEG1";
const INDEX_ENTRY: usize = 24;
const OPEN: &str = "open.log";

/// One stored check: when, and its encoded [`super::CheckRecord`].
pub type Entry = (u64, Vec<u8>);

/// The segment files of one database.
#[derive(Clone)]
pub struct HistoryLog {
    shared: Arc<Shared>,
}

struct Shared {
    dir: PathBuf,
    open: Mutex<OpenSegment>,
    /// Where the background thread reports a flush or seal that failed.
    health: super::health::StoreHealth,
}

#[derive(Default)]
struct OpenSegment {
    writer: Option<BufWriter<File>>,
    first: u64,
    last: u64,
    records: u32,
    opened: Option<Instant>,
}

fn lock(m: &Mutex<OpenSegment>) -> MutexGuard<'_, OpenSegment> {
    // A panic while holding the lock leaves a consistent segment (appends
    // are single writes into the buffer), so keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// FNV-1a: stable across builds and platforms, which a hash written to disk must be.
pub(super) fn hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Open,
    Pending { first: u64 },
    Sealed { first: u64, last: u64 },
}

fn classify(name: &str) -> Option<FileKind> {
    if name == OPEN {
        return Some(FileKind::Open);
    }
    if let Some(first) = name.strip_suffix(".pending") {
        return first.parse().ok().map(|first| FileKind::Pending { first });
    }
    let (first, last) = name.strip_suffix(".seg")?.split_once('-')?;
    Some(FileKind::Sealed {
        first: first.parse().ok()?,
        last: last.parse().ok()?,
    })
}

/// Whether the pending segment starting at `first` was already sealed (a
/// crash, or the background thread, between writing the sealed file and
/// removing the pending one leaves both; the sealed one is complete).
/// Run a read of the segment files again when a file it listed is gone:
/// the background thread may seal a pending file between listing and
/// reading it, and the listing after that finds its sealed file.
fn retry_sealed<T>(mut read: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut tries = 0;
    loop {
        match read() {
            Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 3 => tries += 1,
            other => return other,
        }
    }
}

fn sealed_exists(files: &[(FileKind, PathBuf)], first: u64) -> bool {
    files
        .iter()
        .any(|(k, _)| matches!(k, FileKind::Sealed { first: f, .. } if *f == first))
}

fn sealed_name(first: u64, last: u64) -> String {
    format!("{first:020}-{last:020}.seg")
}

impl HistoryLog {
    /// Open the segments in `dir` (created if missing), finish what a crash
    /// left half done, and start the flushing and sealing thread.
    pub fn open(dir: &Path) -> io::Result<HistoryLog> {
        Self::open_reporting(dir, super::health::StoreHealth::default())
    }

    /// [`HistoryLog::open`], reporting the background thread's failures to `health`.
    pub fn open_reporting(
        dir: &Path,
        health: super::health::StoreHealth,
    ) -> io::Result<HistoryLog> {
        fs::create_dir_all(dir)?;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                fs::remove_file(&path)?;
            }
        }
        // A leftover open segment is sealed like a full one; its last record
        // may be cut short by the crash, which sealing drops.
        let open = dir.join(OPEN);
        if let Some(first) = first_at(&open)? {
            fs::rename(&open, dir.join(format!("{first:020}.pending")))?;
        } else if open.exists() {
            fs::remove_file(&open)?;
        }
        let log = HistoryLog {
            shared: Arc::new(Shared {
                dir: dir.to_owned(),
                open: Mutex::new(OpenSegment::default()),
                health,
            }),
        };
        log.seal_pending()?;
        let weak = Arc::downgrade(&log.shared);
        std::thread::Builder::new()
            .name("history".into())
            .spawn(move || background(weak))?;
        Ok(log)
    }

    /// Append one check of the monitor `key`.
    pub fn append(&self, key: &[u8], at: u64, record: &[u8]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(2 + key.len() + 12 + record.len());
        put_entry_head(&mut buf, key);
        put_record(&mut buf, at, record);
        let mut open = lock(&self.shared.open);
        if open.writer.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.shared.dir.join(OPEN))?;
            *open = OpenSegment {
                writer: Some(BufWriter::with_capacity(64 * 1024, file)),
                first: at,
                last: at,
                records: 0,
                opened: Some(Instant::now()),
            };
        }
        open.writer
            .as_mut()
            .expect("opened above")
            .write_all(&buf)?;
        open.first = open.first.min(at);
        open.last = open.last.max(at);
        open.records += 1;
        if open.records >= SEAL_RECORDS {
            self.rotate(&mut open)?;
        }
        Ok(())
    }

    /// Add checks written elsewhere (a migration) as one segment, all or
    /// nothing: they go to a temporary file that becomes a pending segment
    /// only once complete, so an import cut short by a crash leaves nothing
    /// behind (startup removes temporary files) and can simply run again.
    pub fn import<E>(
        &self,
        checks: impl IntoIterator<Item = Result<(Vec<u8>, u64, Vec<u8>), E>>,
    ) -> Result<usize, E>
    where
        E: From<io::Error>,
    {
        let tmp = self.shared.dir.join("import.tmp");
        let mut out = BufWriter::with_capacity(64 * 1024, File::create(&tmp)?);
        let (mut first, mut n) = (u64::MAX, 0usize);
        let mut buf = Vec::new();
        for check in checks {
            let (key, at, record) = check?;
            buf.clear();
            put_entry_head(&mut buf, &key);
            put_record(&mut buf, at, &record);
            out.write_all(&buf)?;
            first = first.min(at);
            n += 1;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_data()?;
        if n == 0 {
            fs::remove_file(&tmp)?;
            return Ok(0);
        }
        fs::rename(&tmp, self.shared.dir.join(format!("{first:020}.pending")))?;
        self.seal_pending()?;
        Ok(n)
    }

    /// Write buffered appends to the file (not fsynced).
    pub fn flush(&self) -> io::Result<()> {
        match lock(&self.shared.open).writer.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }

    /// Close the open segment and seal it now (tests; the background
    /// thread does this when a segment is full or old).
    pub fn seal_now(&self) -> io::Result<()> {
        self.rotate(&mut lock(&self.shared.open))?;
        self.seal_pending()
    }

    fn rotate(&self, open: &mut OpenSegment) -> io::Result<()> {
        let Some(mut w) = open.writer.take() else {
            return Ok(());
        };
        w.flush()?;
        drop(w);
        let pending = self.shared.dir.join(format!("{:020}.pending", open.first));
        fs::rename(self.shared.dir.join(OPEN), pending)?;
        *open = OpenSegment::default();
        Ok(())
    }

    fn files(&self) -> io::Result<Vec<(FileKind, PathBuf)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.shared.dir)? {
            let entry = entry?;
            if let Some(kind) = entry.file_name().to_str().and_then(classify) {
                out.push((kind, entry.path()));
            }
        }
        Ok(out)
    }

    /// Sort every pending segment into a sealed one.
    fn seal_pending(&self) -> io::Result<()> {
        let files = self.files()?;
        for (kind, path) in &files {
            let FileKind::Pending { first } = *kind else {
                continue;
            };
            if !sealed_exists(&files, first) {
                match seal(&self.shared.dir, path) {
                    // Sealed meanwhile by another handle on the same files
                    // (a store reopened in the same process).
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    other => other?,
                }
            }
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// The checks of `key` with `since <= at < before`, newest first, at
    /// most `limit`.
    pub fn read(
        &self,
        key: &[u8],
        since: u64,
        before: u64,
        limit: usize,
    ) -> io::Result<Vec<Entry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.flush()?;
        retry_sealed(|| self.read_once(key, since, before, limit))
    }

    fn read_once(
        &self,
        key: &[u8],
        since: u64,
        before: u64,
        limit: usize,
    ) -> io::Result<Vec<Entry>> {
        let in_range = |at: u64| at >= since && at < before;
        let mut found: Vec<Entry> = Vec::new();
        let mut sealed = Vec::new();
        let files = self.files()?;
        for (kind, path) in &files {
            match *kind {
                FileKind::Sealed { first, last } => {
                    if last >= since && first < before {
                        sealed.push((last, path));
                    }
                }
                FileKind::Pending { first } => {
                    if !sealed_exists(&files, first) {
                        scan_unsorted(path, |k, at, rec| {
                            if k == key && in_range(at) {
                                found.push((at, rec.to_vec()));
                            }
                        })?;
                    }
                }
                FileKind::Open => scan_unsorted(path, |k, at, rec| {
                    if k == key && in_range(at) {
                        found.push((at, rec.to_vec()));
                    }
                })?,
            }
        }
        // Newest segments first; stop once `limit` records are newer than
        // anything the remaining segments hold.
        sealed.sort_by_key(|s| std::cmp::Reverse(s.0));
        for (last, path) in sealed {
            if found.len() >= limit {
                found.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
                if found[limit - 1].0 > last {
                    break;
                }
            }
            for (at, rec) in read_block(path, key)? {
                if in_range(at) {
                    found.push((at, rec));
                }
            }
        }
        found.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
        found.truncate(limit);
        Ok(found)
    }

    /// How many checks of `key` have `since <= at`: a segment that lies
    /// wholly in the range is counted from its index (no record is read), so
    /// a week of history costs one index lookup per segment.
    pub fn count(&self, key: &[u8], since: u64) -> io::Result<u64> {
        self.flush()?;
        retry_sealed(|| self.count_once(key, since))
    }

    fn count_once(&self, key: &[u8], since: u64) -> io::Result<u64> {
        let mut n = 0u64;
        let files = self.files()?;
        for (kind, path) in &files {
            match *kind {
                FileKind::Sealed { first, last } if last >= since => {
                    n += if first >= since {
                        count_block(path, key)?
                    } else {
                        read_block(path, key)?
                            .iter()
                            .filter(|(at, _)| *at >= since)
                            .count() as u64
                    };
                }
                FileKind::Sealed { .. } => {}
                FileKind::Pending { first } if sealed_exists(&files, first) => {}
                FileKind::Pending { .. } | FileKind::Open => scan_unsorted(path, |k, at, _| {
                    if k == key && at >= since {
                        n += 1;
                    }
                })?,
            }
        }
        Ok(n)
    }

    /// Delete sealed segments whose newest record is older than `cutoff`.
    /// Returns how many records went with them. (A segment spans at most an
    /// hour, so a record outlives the retention by at most that.)
    pub fn prune(&self, cutoff: u64) -> io::Result<usize> {
        let mut removed = 0;
        for (kind, path) in self.files()? {
            if let FileKind::Sealed { last, .. } = kind
                && last < cutoff
            {
                removed += record_count(&path)?;
                fs::remove_file(&path)?;
            }
        }
        Ok(removed)
    }

    /// Bytes of every segment file.
    pub fn size_on_disk(&self) -> u64 {
        self.files()
            .map(|files| {
                files
                    .iter()
                    .filter_map(|(_, p)| fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

fn background(shared: Weak<Shared>) {
    loop {
        std::thread::sleep(FLUSH_EVERY);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let log = HistoryLog { shared };
        let result = (|| {
            let mut open = lock(&log.shared.open);
            if let Some(w) = open.writer.as_mut() {
                w.flush()?;
            }
            if open.opened.is_some_and(|t| t.elapsed() >= SEAL_AGE) {
                log.rotate(&mut open)?;
            }
            drop(open);
            log.seal_pending()
        })();
        if let Err(e) = result {
            log.shared
                .health
                .failed(super::health::StorePart::History, &e);
            if let Some(n) = crate::repeated::STORE_ERRORS.hit("history-flush") {
                tracing::warn!(error = %e, dir = %log.shared.dir.display(), "check history: flushing or sealing a segment failed{}", crate::repeated::times(n));
            }
        }
    }
}

fn put_entry_head(buf: &mut Vec<u8>, key: &[u8]) {
    let len = u16::try_from(key.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&key[..usize::from(len)]);
}

fn put_record(buf: &mut Vec<u8>, at: u64, record: &[u8]) {
    buf.extend_from_slice(&at.to_le_bytes());
    buf.extend_from_slice(&(record.len() as u32).to_le_bytes());
    buf.extend_from_slice(record);
}

/// `key_len u16 | key` at `pos`: the key's bytes, or `None` past the end.
fn key_at(data: &[u8], pos: usize) -> Option<Range<usize>> {
    let head = data.get(pos..pos + 2)?;
    let key = pos + 2..pos + 2 + usize::from(u16::from_le_bytes([head[0], head[1]]));
    data.get(key.clone())?;
    Some(key)
}

/// `at u64 | len u32 | record` at `pos`: when, and the record's bytes, or
/// `None` past the end (a check cut short by a crash).
fn record_at(data: &[u8], pos: usize) -> Option<(u64, Range<usize>)> {
    let meta = data.get(pos..pos + 12)?;
    let at = u64::from_le_bytes(meta[0..8].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(meta[8..12].try_into().expect("4 bytes")) as usize;
    let rec = pos + 12..pos + 12 + len;
    data.get(rec.clone())?;
    Some((at, rec))
}

/// The complete checks of an unsorted segment's bytes, in file order, as
/// (key, at, record) positions. A check cut short at the end ends them.
fn unsorted(data: &[u8]) -> impl Iterator<Item = (Range<usize>, u64, Range<usize>)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let key = key_at(data, pos)?;
        let (at, rec) = record_at(data, key.end)?;
        pos = rec.end;
        Some((key, at, rec))
    })
}

/// Every complete check of an unsorted segment file, in file order.
fn scan_unsorted(path: &Path, mut f: impl FnMut(&[u8], u64, &[u8])) -> io::Result<()> {
    // At most one segment (about 2.5 MB at 10k monitors), in one allocation
    // that glibc maps and unmaps whole.
    let data = fs::read(path)?;
    for (key, at, rec) in unsorted(&data) {
        f(&data[key], at, &data[rec]);
    }
    Ok(())
}

fn first_at(path: &Path) -> io::Result<Option<u64>> {
    if !path.exists() {
        return Ok(None);
    }
    let mut first = None;
    scan_unsorted(path, |_, at, _| {
        first = Some(first.map_or(at, |f: u64| f.min(at)));
    })?;
    Ok(first)
}

/// Sort the unsorted segment at `path` into a sealed file beside it.
///
/// Memory: the segment's bytes (at most [`SEAL_RECORDS`] checks, about
/// 2.5 MB) and 32 bytes a check to sort them, each one allocation, which
/// glibc maps and unmaps whole rather than leaving holes in the heap.
fn seal(dir: &Path, path: &Path) -> io::Result<()> {
    /// One check, as offsets into the segment's bytes.
    struct Rec {
        hash: u64,
        at: u64,
        key: u32,
        rec: u32,
        rec_len: u32,
        key_len: u16,
    }
    let data = fs::read(path)?;
    let mut recs: Vec<Rec> = unsorted(&data)
        .map(|(key, at, rec)| Rec {
            hash: hash(&data[key.clone()]),
            at,
            key: key.start as u32,
            rec: rec.start as u32,
            rec_len: rec.len() as u32,
            key_len: key.len() as u16,
        })
        .collect();
    if recs.is_empty() {
        return Ok(());
    }
    let key_of = |r: &Rec| &data[r.key as usize..r.key as usize + usize::from(r.key_len)];
    recs.sort_unstable_by(|a, b| (a.hash, key_of(a), a.at).cmp(&(b.hash, key_of(b), b.at)));
    let first = recs.iter().map(|r| r.at).min().expect("not empty");
    let last = recs.iter().map(|r| r.at).max().expect("not empty");

    // The blocks: (first check, checks, bytes) per monitor, in sorted order.
    let mut blocks: Vec<(usize, u32, usize)> = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        let size = 12 + r.rec_len as usize;
        match blocks.last_mut() {
            Some((start, count, len)) if key_of(&recs[*start]) == key_of(r) => {
                *count += 1;
                *len += size;
            }
            _ => blocks.push((i, 1, 2 + usize::from(r.key_len) + size)),
        }
    }
    let tmp = {
        static TMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = TMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        dir.join(format!("{first:020}.{n}.tmp"))
    };
    let mut out = BufWriter::with_capacity(64 * 1024, File::create(&tmp)?);
    out.write_all(MAGIC)?;
    out.write_all(&(blocks.len() as u32).to_le_bytes())?;
    let mut offset = (MAGIC.len() + 4 + blocks.len() * INDEX_ENTRY) as u64;
    for &(start, count, len) in &blocks {
        out.write_all(&recs[start].hash.to_le_bytes())?;
        out.write_all(&offset.to_le_bytes())?;
        out.write_all(&(len as u32).to_le_bytes())?;
        out.write_all(&count.to_le_bytes())?;
        offset += len as u64;
    }
    for &(start, count, _) in &blocks {
        let mut head = Vec::with_capacity(2 + 256);
        put_entry_head(&mut head, key_of(&recs[start]));
        out.write_all(&head)?;
        for r in &recs[start..start + count as usize] {
            out.write_all(&r.at.to_le_bytes())?;
            out.write_all(&r.rec_len.to_le_bytes())?;
            out.write_all(&data[r.rec as usize..r.rec as usize + r.rec_len as usize])?;
        }
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_data()?;
    fs::rename(&tmp, dir.join(sealed_name(first, last)))
}

struct IndexEntry {
    hash: u64,
    offset: u64,
    len: u32,
    count: u32,
}

fn index_len(file: &File) -> io::Result<u32> {
    let mut head = [0u8; 12];
    file.read_exact_at(&mut head, 0)?;
    if &head[..8] != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a check history segment",
        ));
    }
    Ok(u32::from_le_bytes(head[8..12].try_into().expect("4 bytes")))
}

fn index_entry(file: &File, i: u32) -> io::Result<IndexEntry> {
    let mut b = [0u8; INDEX_ENTRY];
    file.read_exact_at(&mut b, 12 + u64::from(i) * INDEX_ENTRY as u64)?;
    Ok(IndexEntry {
        hash: u64::from_le_bytes(b[0..8].try_into().expect("8 bytes")),
        offset: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
        len: u32::from_le_bytes(b[16..20].try_into().expect("4 bytes")),
        count: u32::from_le_bytes(b[20..24].try_into().expect("4 bytes")),
    })
}

fn record_count(path: &Path) -> io::Result<usize> {
    let file = File::open(path)?;
    let n = index_len(&file)? as usize;
    let mut index = vec![0u8; n * INDEX_ENTRY];
    file.read_exact_at(&mut index, 12)?;
    Ok(index
        .chunks_exact(INDEX_ENTRY)
        .map(|e| u32::from_le_bytes(e[20..24].try_into().expect("4 bytes")) as usize)
        .sum())
}

/// The records of `key` in a sealed segment, oldest first: a binary search
/// of the index by hash, then one read per block with that hash.
/// The first index entry whose hash is `h` or more (entries are sorted by
/// hash): where a key's blocks start.
fn first_entry(file: &File, n: u32, h: u64) -> io::Result<u32> {
    let (mut lo, mut hi) = (0u32, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if index_entry(file, mid)?.hash < h {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// The number of records `key` has in a sealed segment, from the index
/// (only the start of a block is read, to tell apart keys of one hash).
fn count_block(path: &Path, key: &[u8]) -> io::Result<u64> {
    let file = File::open(path)?;
    let n = index_len(&file)?;
    let h = hash(key);
    let mut count = 0u64;
    let mut i = first_entry(&file, n, h)?;
    while i < n {
        let e = index_entry(&file, i)?;
        if e.hash != h {
            break;
        }
        let mut head = vec![0u8; (2 + key.len()).min(e.len as usize)];
        file.read_exact_at(&mut head, e.offset)?;
        if key_at(&head, 0).is_some_and(|k| &head[k] == key) {
            count += u64::from(e.count);
        }
        i += 1;
    }
    Ok(count)
}

fn read_block(path: &Path, key: &[u8]) -> io::Result<Vec<Entry>> {
    let file = File::open(path)?;
    let n = index_len(&file)?;
    let h = hash(key);
    let mut out = Vec::new();
    let mut i = first_entry(&file, n, h)?;
    while i < n {
        let e = index_entry(&file, i)?;
        if e.hash != h {
            break;
        }
        let mut block = vec![0u8; e.len as usize];
        file.read_exact_at(&mut block, e.offset)?;
        // Another key with the same hash has a block of its own.
        if let Some(k) = key_at(&block, 0).filter(|k| &block[k.clone()] == key) {
            let mut pos = k.end;
            for _ in 0..e.count {
                let Some((at, rec)) = record_at(&block, pos) else {
                    break;
                };
                pos = rec.end;
                out.push((at, block[rec].to_vec()));
            }
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(entries: &[Entry]) -> Vec<u64> {
        entries.iter().map(|e| e.0).collect()
    }

    #[test]
    fn reads_across_open_pending_and_sealed_segments_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let log = HistoryLog::open(dir.path()).unwrap();
        for at in 1..=5 {
            log.append(b"endpoint/a", at, &[at as u8]).unwrap();
            log.append(b"endpoint/ab", at, b"other").unwrap();
        }
        log.seal_now().unwrap();
        for at in 6..=8 {
            log.append(b"endpoint/a", at, &[at as u8]).unwrap();
        }
        let got = log.read(b"endpoint/a", 0, u64::MAX, 100).unwrap();
        assert_eq!(keys(&got), [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(got[0].1, [8]);
        assert_eq!(got[7].1, [1], "the sealed block's records are intact");
        assert_eq!(
            keys(&log.read(b"endpoint/a", 3, 7, 100).unwrap()),
            [6, 5, 4, 3]
        );
        assert_eq!(
            keys(&log.read(b"endpoint/a", 0, u64::MAX, 2).unwrap()),
            [8, 7]
        );
        assert_eq!(log.read(b"endpoint/ab", 0, u64::MAX, 100).unwrap().len(), 5);
        assert!(
            log.read(b"endpoint/none", 0, u64::MAX, 100)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn count_matches_what_read_returns_across_segments_and_since() {
        let dir = tempfile::tempdir().unwrap();
        let log = HistoryLog::open(dir.path()).unwrap();
        for at in 1..=5 {
            log.append(b"endpoint/a", at, &[at as u8]).unwrap();
            log.append(b"endpoint/ab", at, b"other").unwrap();
        }
        log.seal_now().unwrap();
        for at in 6..=8 {
            log.append(b"endpoint/a", at, &[at as u8]).unwrap();
        }
        for since in 0..=9 {
            let read = log
                .read(b"endpoint/a", since, u64::MAX, usize::MAX)
                .unwrap();
            assert_eq!(
                log.count(b"endpoint/a", since).unwrap(),
                read.len() as u64,
                "since {since}"
            );
        }
        assert_eq!(log.count(b"endpoint/ab", 0).unwrap(), 5);
        assert_eq!(log.count(b"endpoint/none", 0).unwrap(), 0);
    }

    #[test]
    fn a_full_segment_is_sealed_and_sorted_by_monitor() {
        let dir = tempfile::tempdir().unwrap();
        let log = HistoryLog::open(dir.path()).unwrap();
        let monitors = 50u64;
        let total = u64::from(SEAL_RECORDS) + 10;
        for i in 0..total {
            let key = format!("endpoint/m{}", i % monitors);
            log.append(key.as_bytes(), 1000 + i, &i.to_le_bytes())
                .unwrap();
        }
        log.seal_pending().unwrap();
        let sealed: Vec<_> = log
            .files()
            .unwrap()
            .into_iter()
            .filter(|(k, _)| matches!(k, FileKind::Sealed { .. }))
            .collect();
        assert_eq!(sealed.len(), 1, "{sealed:?}");
        assert_eq!(
            sealed[0].0,
            FileKind::Sealed {
                first: 1000,
                last: 1000 + u64::from(SEAL_RECORDS) - 1
            }
        );
        assert_eq!(record_count(&sealed[0].1).unwrap(), SEAL_RECORDS as usize);
        let got = log.read(b"endpoint/m7", 0, u64::MAX, usize::MAX).unwrap();
        let expected: Vec<u64> = (0..total)
            .rev()
            .filter(|i| i % monitors == 7)
            .map(|i| 1000 + i)
            .collect();
        assert_eq!(keys(&got), expected);
        assert!(
            got.iter()
                .all(|(at, rec)| rec == &(at - 1000).to_le_bytes())
        );
    }

    #[test]
    fn prune_deletes_only_segments_entirely_older_than_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let log = HistoryLog::open(dir.path()).unwrap();
        log.append(b"k", 10, b"old").unwrap();
        log.append(b"k", 20, b"old").unwrap();
        log.seal_now().unwrap();
        log.append(b"k", 30, b"mid").unwrap();
        log.append(b"k", 100, b"new").unwrap();
        log.seal_now().unwrap();
        log.append(b"k", 200, b"open").unwrap();
        assert_eq!(log.prune(50).unwrap(), 2);
        assert_eq!(
            keys(&log.read(b"k", 0, u64::MAX, 10).unwrap()),
            [200, 100, 30]
        );
        assert_eq!(log.prune(50).unwrap(), 0);
    }

    #[test]
    fn a_crash_leaves_nothing_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = HistoryLog::open(dir.path()).unwrap();
            log.append(b"k", 1, b"one").unwrap();
            log.append(b"k", 2, b"two").unwrap();
            log.flush().unwrap();
        }
        // A record cut short by a kill mid-write, and a sort that never
        // finished its temporary file.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(OPEN))
            .unwrap();
        f.write_all(&[1, 0, b'k', 3, 0]).unwrap();
        fs::write(dir.path().join("00000000000000000001.1.tmp"), b"half").unwrap();
        let log = HistoryLog::open(dir.path()).unwrap();
        let got = log.read(b"k", 0, u64::MAX, 10).unwrap();
        assert_eq!(keys(&got), [2, 1]);
        assert_eq!(got[0].1, b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            [sealed_name(1, 2)],
            "recovered into one sealed segment"
        );
    }

    #[test]
    fn an_import_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = HistoryLog::open(dir.path()).unwrap();
        let checks = |fail: bool| {
            (1..=3u64).map(move |at| {
                if fail && at == 3 {
                    Err(io::Error::other("the source failed"))
                } else {
                    Ok((b"k".to_vec(), at, vec![at as u8]))
                }
            })
        };
        assert!(log.import(checks(true)).is_err());
        assert!(
            log.read(b"k", 0, u64::MAX, 10).unwrap().is_empty(),
            "nothing half imported"
        );
        drop(log);
        let log = HistoryLog::open(dir.path()).unwrap();
        assert_eq!(log.import(checks(false)).unwrap(), 3);
        assert_eq!(keys(&log.read(b"k", 0, u64::MAX, 10).unwrap()), [3, 2, 1]);
    }

    #[test]
    fn the_hash_is_stable() {
        // Written to disk: changing it would orphan every sealed block.
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"endpoint/web"), hash(b"endpoint/web"));
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
