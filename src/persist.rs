//! On-disk device state (`--state-dir`): each CPE's `CpeState` (delta, events with CommandKeys,
//! bootstrapped flag, retry count) survives a restart of the simulator.
//!
//! The store is one append-only log, `DIR/cpe-sim-state.log`: a text header line naming the
//! format and its version, the profile and its fingerprint, then records `len: u32 LE | crc32:
//! u32 LE | JSON CpeState`. The last record of a CPE wins. Owners send snapshots to a writer
//! thread, which appends them in batches with one `fdatasync` per batch (`FLUSH_EVERY`), so a
//! million CPEs cost a few syncs a second, not a million.
//!
//! - **One process per directory:** an exclusive `flock` on `DIR/cpe-sim-state.lock` (which names
//!   the holder's pid) keeps a second simulator out with a clear error.
//! - **Versioned:** a header of another format version is refused, never misread.
//! - **Torn tail vs damage:** a `kill -9` can only truncate the last record (a torn tail, dropped
//!   and counted). A bad record followed by good ones (a bad checksum or JSON, a bad length) is
//!   damage: it is counted with its offset, skipped, and the records after it are kept; the
//!   damaged log is copied aside before it is compacted.
//! - **Bounded:** opening compacts (the live records into a new file, synced, renamed over the old
//!   one, the directory synced), and so does the writer while running, whenever the log grows past
//!   `COMPACT_FACTOR` × its live size: a steady fleet's log stays bounded for weeks. A crash
//!   mid-compaction loses nothing, the old log is complete until the rename. The writer keeps only
//!   an index (CPE → offset, length) in memory and copies the live records from the old log.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::cpe::CpeState;
use crate::model::Model;

/// How often the writer syncs a batch.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// The writer compacts the log when it is larger than this many times its live records…
pub const COMPACT_FACTOR: u64 = 4;
/// …and larger than this (small stores are not rewritten for a few records).
pub const COMPACT_MIN_BYTES: u64 = 4 << 20;
const FILE: &str = "cpe-sim-state.log";
const LOCK_FILE: &str = "cpe-sim-state.lock";
const MAGIC: &str = "cpe-sim-state/";
/// The version of the log format (header and records) this build reads and writes.
pub const VERSION: u32 = 1;
/// Largest record accepted on load (a longer length means a torn or foreign file).
const MAX_RECORD: usize = 16 << 20;
/// Record prefix: length and CRC-32.
const PREFIX: usize = 8;

/// Why a store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("--state-dir {dir}: {source}")]
    Io { dir: PathBuf, source: std::io::Error },
    #[error("--state-dir {dir} holds state of {found}; this run is {expected}: use another directory, or delete {file} to start over")]
    Mismatch { dir: PathBuf, found: String, expected: String, file: PathBuf },
    #[error("--state-dir {dir} is in use by another cpe-sim (pid {pid}): stop it, or use another directory")]
    Locked { dir: PathBuf, pid: String },
    #[error("--state-dir {dir}: {file} is in state format version {found}, and this cpe-sim reads only version {VERSION}: run the cpe-sim that wrote it, or use another directory (the file is left as it is)")]
    Version { dir: PathBuf, found: String, file: PathBuf },
}

/// What identifies the data a store may be loaded into: the format and its version, the profile's
/// name and a hash of its tree (node ids in the records are only meaningful for the same tree).
pub fn fingerprint(model: &Model) -> String {
    let mut h = crate::model::identity::fnv1a(&model.name);
    for id in model.tree.ids() {
        let node = model.tree.node(id);
        h = crate::model::identity::mix64(h ^ crate::model::identity::fnv1a(&node.name) ^ u64::from(id.0) << 40);
        if let Some(p) = node.param() {
            h = crate::model::identity::mix64(h ^ crate::model::identity::fnv1a(p.ty.xsi_type()));
        }
    }
    format!("{MAGIC}{VERSION} profile={} tree={h:016x}", model.name)
}

/// A record that could not be read, followed by readable ones (or complete but unreadable at the
/// end): skipped, and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// Where it starts in the log, in bytes.
    pub offset: u64,
    /// How many bytes were skipped.
    pub bytes: u64,
}

/// How the store is run (the defaults, or shorter intervals in tests).
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    pub flush_every: Duration,
    pub compact_factor: u64,
    pub compact_min_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { flush_every: FLUSH_EVERY, compact_factor: COMPACT_FACTOR, compact_min_bytes: COMPACT_MIN_BYTES }
    }
}

/// A store opened for a run: the CPEs it held, and the writer for new snapshots. Dropping it
/// closes it (the last batch is written); `close` says how that went.
pub struct Store {
    pub loaded: HashMap<u32, CpeState>,
    /// Bytes dropped from a torn last record, if any.
    pub torn_bytes: u64,
    /// Damaged records skipped on load (the records after them were kept).
    pub damaged: Vec<Damage>,
    /// Where the damaged log was copied before it was compacted.
    pub damaged_copy: Option<PathBuf>,
    pub sink: StateSink,
    writer: Option<std::thread::JoinHandle<std::io::Result<WriterStats>>>,
    /// The exclusive lock on the directory, released after the writer's last batch.
    _lock: File,
}

/// What the writer did over a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriterStats {
    /// Batches written, each with one `fdatasync`.
    pub batches: u64,
    /// CPE snapshots written.
    pub records: u64,
    /// Compactions while running.
    pub compactions: u64,
}

/// CPE states handed to a run: the saved CPEs (each shard takes its own as it starts; they power
/// on again) and, with a store, the sink for new snapshots.
#[derive(Debug)]
pub struct Resume {
    pub saved: std::sync::Mutex<HashMap<u32, CpeState>>,
    pub sink: Option<StateSink>,
}

impl Resume {
    /// Queues a snapshot of `cpe` when there is a store.
    pub fn save(&self, cpe: &CpeState) {
        if let Some(s) = &self.sink {
            s.save(cpe);
        }
    }
}

enum Msg {
    Save(Box<CpeState>),
    /// Write the batch now, then answer.
    Flush(mpsc::Sender<()>),
    /// Write the last batch and stop, whoever still holds a sink.
    Close,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Save(_) => "Save",
            Msg::Flush(_) => "Flush",
            Msg::Close => "Close",
        })
    }
}

/// Where owners send snapshots (cheap to clone, one per shard).
#[derive(Clone, Debug)]
pub struct StateSink(mpsc::Sender<Msg>);

impl StateSink {
    /// Queues a snapshot of `cpe` for the next batch.
    pub fn save(&self, cpe: &CpeState) {
        let _ = self.0.send(Msg::Save(Box::new(cpe.clone())));
    }

    /// Writes what is queued now (one batch, synced) and waits for it; `false` when the writer
    /// has stopped.
    pub fn flush(&self) -> bool {
        let (tx, rx) = mpsc::channel();
        self.0.send(Msg::Flush(tx)).is_ok() && rx.recv().is_ok()
    }
}

impl Store {
    /// Opens (creating) the store in `dir` for `model`: locks, loads, compacts, starts the writer.
    ///
    /// # Errors
    /// The directory is unusable, in use by another process, or holds another profile's state or
    /// another format version.
    pub fn open(dir: &Path, model: &Model) -> Result<Store, StoreError> {
        Store::open_with(dir, model, StoreOptions::default())
    }

    /// [`Store::open`] with other batch and compaction settings.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with(dir: &Path, model: &Model, opts: StoreOptions) -> Result<Store, StoreError> {
        let io = |source| StoreError::Io { dir: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = lock(dir)?;
        let path = dir.join(FILE);
        let expected = fingerprint(model);
        let loaded = match File::open(&path) {
            Ok(f) => load(f, &expected).map_err(|e| match e {
                LoadError::Io(e) => io(e),
                LoadError::Mismatch(found) => {
                    StoreError::Mismatch { dir: dir.to_path_buf(), found, expected: expected.clone(), file: path.clone() }
                }
                LoadError::Version(found) => StoreError::Version { dir: dir.to_path_buf(), found, file: path.clone() },
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Loaded::default(),
            Err(e) => return Err(io(e)),
        };
        // Damage is kept for a look before the compaction drops it.
        let damaged_copy = match loaded.damaged.is_empty() {
            true => None,
            false => {
                let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let copy = dir.join(format!("{FILE}.damaged-{secs}"));
                std::fs::copy(&path, &copy).map_err(io)?;
                Some(copy)
            }
        };
        // Compact: the live records into a new file, synced, renamed over the old one.
        let (file, size, index) = write_log(dir, &expected, loaded.records.into_iter().map(Ok)).map_err(io)?;
        let (tx, rx) = mpsc::channel();
        let live = index.values().map(|(_, len)| u64::from(*len)).sum();
        let w =
            Writer { dir: dir.to_path_buf(), header: expected, file, size, index, live, opts, stats: WriterStats::default(), retry_at: 0 };
        let writer = std::thread::Builder::new().name("state-writer".into()).spawn(move || w.run(rx)).map_err(io)?;
        Ok(Store {
            loaded: loaded.states,
            torn_bytes: loaded.torn,
            damaged: loaded.damaged,
            damaged_copy,
            sink: StateSink(tx),
            writer: Some(writer),
            _lock: lock,
        })
    }

    /// The CPE's saved state, powered on again at `now` (`1 BOOT`, pending M-events kept), or
    /// `None` when the store does not hold it.
    pub fn resume(&mut self, index: u32, now: crate::time::UnixMillis) -> Option<CpeState> {
        let mut cpe = self.loaded.remove(&index)?;
        cpe.restart(now);
        Some(cpe)
    }

    /// Stops taking snapshots, writes the last batch and waits for it, even if a sink is still
    /// held somewhere (a shard left behind at the end of a run): what it sends later is not saved.
    ///
    /// # Errors
    /// The last batch could not be written.
    pub fn close(mut self) -> std::io::Result<WriterStats> {
        self.finish()
    }

    fn finish(&mut self) -> std::io::Result<WriterStats> {
        let Some(writer) = self.writer.take() else { return Ok(WriterStats::default()) };
        let _ = self.sink.0.send(Msg::Close);
        writer.join().unwrap_or_else(|_| Err(std::io::Error::other("the state writer panicked")))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::error!("--state-dir: the last batch was not saved: {e}");
        }
    }
}

/// The pid a lock file names ("unknown" when it names none yet).
fn holder(f: &File) -> String {
    let mut buf = [0u8; 32];
    let n = f.read_at(&mut buf, 0).unwrap_or(0);
    Some(String::from_utf8_lossy(&buf[..n]).trim().to_string()).filter(|p| !p.is_empty()).unwrap_or_else(|| "unknown".into())
}

/// Takes the directory's exclusive lock, writing our pid into the lock file.
fn lock(dir: &Path) -> Result<File, StoreError> {
    let io = |source| StoreError::Io { dir: dir.to_path_buf(), source };
    let path = dir.join(LOCK_FILE);
    let f = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
    // This process may hold it for a moment after closing a store: a child forked meanwhile holds
    // the descriptor until it execs. Only then is waiting worth it.
    let patience = std::time::Instant::now() + Duration::from_secs(2);
    // SAFETY: flock on a descriptor we own; the lock goes with the descriptor.
    while unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(io(e));
        }
        let pid = holder(&f);
        if pid != std::process::id().to_string() || std::time::Instant::now() > patience {
            return Err(StoreError::Locked { dir: dir.to_path_buf(), pid });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f.set_len(0).map_err(io)?;
    f.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0).map_err(io)?;
    Ok(f)
}

enum LoadError {
    Io(std::io::Error),
    Mismatch(String),
    Version(String),
}

#[derive(Default)]
struct Loaded {
    states: HashMap<u32, CpeState>,
    /// Each CPE's last record, as written (prefix and payload).
    records: HashMap<u32, Vec<u8>>,
    torn: u64,
    damaged: Vec<Damage>,
}

/// The record at `at`, and where it ends, if it is whole and sound.
fn record_at(bytes: &[u8], at: usize) -> Option<(CpeState, usize)> {
    let prefix = bytes.get(at..at + PREFIX)?;
    let len = u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(prefix[4..].try_into().expect("4 bytes"));
    if len > MAX_RECORD {
        return None;
    }
    let payload = bytes.get(at + PREFIX..at + PREFIX + len)?;
    if payload.first() != Some(&b'{') || crc32fast::hash(payload) != crc {
        return None;
    }
    let cpe = serde_json::from_slice::<CpeState>(payload).ok()?;
    Some((cpe, at + PREFIX + len))
}

/// The next sound record after a bad one at `at`: where its length says it ends first, else the
/// first sound record found further on.
fn resync(bytes: &[u8], at: usize) -> Option<usize> {
    if let Some(p) = bytes.get(at..at + 4).map(|l| at + PREFIX + u32::from_le_bytes(l.try_into().expect("4 bytes")) as usize) {
        if p < bytes.len() && record_at(bytes, p).is_some() {
            return Some(p);
        }
    }
    // A record's payload is a JSON object: only offsets 8 bytes before a `{` are candidates.
    let from = at + 1 + PREFIX;
    memchr::memchr_iter(b'{', bytes.get(from..)?).map(|i| from + i - PREFIX).find(|p| record_at(bytes, *p).is_some())
}

fn load(mut f: File, expected: &str) -> Result<Loaded, LoadError> {
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(LoadError::Io)?;
    let header_end = bytes.iter().position(|b| *b == b'\n').ok_or_else(|| LoadError::Mismatch("no header".into()))?;
    let header = String::from_utf8_lossy(&bytes[..header_end]).into_owned();
    if let Some(rest) = header.strip_prefix(MAGIC) {
        let version = rest.split(' ').next().unwrap_or_default();
        if version != VERSION.to_string() {
            return Err(LoadError::Version(version.to_string()));
        }
    }
    if header != expected {
        return Err(LoadError::Mismatch(header));
    }
    let mut out = Loaded::default();
    let mut at = header_end + 1;
    while at < bytes.len() {
        if let Some((cpe, end)) = record_at(&bytes, at) {
            out.records.insert(cpe.id.0, bytes[at..end].to_vec());
            out.states.insert(cpe.id.0, cpe);
            at = end;
            continue;
        }
        match resync(&bytes, at) {
            Some(next) => {
                out.damaged.push(Damage { offset: at as u64, bytes: (next - at) as u64 });
                at = next;
            }
            None => {
                // Nothing sound after it: a record cut short is the torn tail of a killed writer;
                // a whole one that does not read is damage.
                let len = bytes.get(at..at + 4).map(|l| u32::from_le_bytes(l.try_into().expect("4 bytes")) as usize);
                let cut_short = len.is_none_or(|len| len <= MAX_RECORD && at + PREFIX + len > bytes.len());
                let rest = (bytes.len() - at) as u64;
                match cut_short {
                    true => out.torn = rest,
                    false => out.damaged.push(Damage { offset: at as u64, bytes: rest }),
                }
                at = bytes.len();
            }
        }
    }
    Ok(out)
}

fn encode(cpe: &CpeState) -> std::io::Result<Vec<u8>> {
    let payload = serde_json::to_vec(cpe).map_err(std::io::Error::other)?;
    // The reader's limit, checked here too: a record it would refuse is never written.
    if payload.len() > MAX_RECORD {
        return Err(std::io::Error::other(format!("{} is {} bytes, over the {MAX_RECORD}-byte record limit", cpe.id, payload.len())));
    }
    let mut r = Vec::with_capacity(PREFIX + payload.len());
    r.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    r.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    r.extend_from_slice(&payload);
    Ok(r)
}

/// The index of a log: each CPE's last record, as (offset, length with its prefix).
type Index = HashMap<u32, (u64, u32)>;

/// Writes a new log of `records` beside the old one, syncs it, renames it over the old one and
/// syncs the directory. Until the rename the old log is whole; after it the new one is. Returns
/// the new log (read-write, positioned at its end), its size and its index.
fn write_log(
    dir: &Path,
    header: &str,
    records: impl Iterator<Item = std::io::Result<(u32, Vec<u8>)>>,
) -> std::io::Result<(File, u64, Index)> {
    let tmp = dir.join(format!("{FILE}.tmp"));
    let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&tmp)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    w.write_all(header.as_bytes())?;
    w.write_all(b"\n")?;
    let mut size = header.len() as u64 + 1;
    let mut index = Index::new();
    for r in records {
        let (id, r) = r?;
        w.write_all(&r)?;
        index.insert(id, (size, r.len() as u32));
        size += r.len() as u64;
    }
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(FILE))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok((f, size, index))
}

/// The writer thread's state: the log, its size, and where each CPE's last record is in it.
struct Writer {
    dir: PathBuf,
    header: String,
    file: File,
    size: u64,
    index: Index,
    /// Bytes of the records in the index (what a compacted log holds besides its header).
    live: u64,
    opts: StoreOptions,
    stats: WriterStats,
    /// After a failed compaction, the size at which to try again.
    retry_at: u64,
}

impl Writer {
    /// Collects snapshots (the latest per CPE) and appends them every `flush_every` with one
    /// sync; a failed write is reported once and the run goes on in memory.
    fn run(mut self, rx: mpsc::Receiver<Msg>) -> std::io::Result<WriterStats> {
        let mut batch: HashMap<u32, Box<CpeState>> = HashMap::new();
        let mut failed = false;
        loop {
            let deadline = std::time::Instant::now() + self.opts.flush_every;
            let mut open = true;
            let mut flushed = None;
            while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
                match rx.recv_timeout(left) {
                    Ok(Msg::Save(cpe)) => {
                        batch.insert(cpe.id.0, cpe);
                    }
                    Ok(Msg::Flush(reply)) => {
                        flushed = Some(reply);
                        break;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Ok(Msg::Close) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            if !batch.is_empty() && !failed {
                if let Err(e) = self.append(&batch) {
                    tracing::error!("writing the device state failed ({e}); the run goes on in memory and will not resume from this point");
                    failed = true;
                    if !open {
                        return Err(e);
                    }
                }
            }
            batch.clear();
            if let Some(reply) = flushed {
                let _ = reply.send(());
            }
            if !open {
                return Ok(self.stats);
            }
        }
    }

    /// Appends a batch with one sync, then compacts if the log has grown too far past its live
    /// records.
    fn append(&mut self, batch: &HashMap<u32, Box<CpeState>>) -> std::io::Result<()> {
        let mut w = BufWriter::with_capacity(1 << 20, &self.file);
        let mut at = self.size;
        let mut placed = Vec::with_capacity(batch.len());
        for cpe in batch.values() {
            let r = match encode(cpe) {
                Ok(r) => r,
                // That CPE keeps its last saved state; the others are saved.
                Err(e) => {
                    tracing::warn!("--state-dir: not saved: {e}");
                    continue;
                }
            };
            w.write_all(&r)?;
            placed.push((cpe.id.0, at, r.len() as u32));
            at += r.len() as u64;
        }
        w.flush()?;
        drop(w);
        self.file.sync_data()?;
        self.size = at;
        for (id, offset, len) in placed {
            if let Some((_, old)) = self.index.insert(id, (offset, len)) {
                self.live -= u64::from(old);
            }
            self.live += u64::from(len);
        }
        self.stats.batches += 1;
        self.stats.records += batch.len() as u64;
        let bound = (self.live + self.header.len() as u64 + 1).saturating_mul(self.opts.compact_factor);
        if self.size > bound && self.size > self.opts.compact_min_bytes && self.size >= self.retry_at {
            // A failed compaction leaves the old log whole: appending to it goes on, and the next
            // try waits for the log to double.
            match self.compact() {
                Ok(()) => {
                    self.stats.compactions += 1;
                    self.retry_at = 0;
                }
                Err(e) => {
                    self.retry_at = self.size.saturating_mul(2);
                    tracing::warn!("--state-dir: compacting the device state log failed ({e}); it goes on growing, whole");
                }
            }
        }
        Ok(())
    }

    /// Rewrites the log with only each CPE's last record, copied from the old log in file order.
    fn compact(&mut self) -> std::io::Result<()> {
        let before = self.size;
        let mut order: Vec<(u32, u64, u32)> = self.index.iter().map(|(id, (o, l))| (*id, *o, *l)).collect();
        order.sort_unstable_by_key(|(_, o, _)| *o);
        let old = &self.file;
        let records = order.into_iter().map(|(id, offset, len)| {
            let mut r = vec![0; len as usize];
            old.read_exact_at(&mut r, offset)?;
            Ok((id, r))
        });
        let (file, size, index) = write_log(&self.dir, &self.header, records)?;
        self.file = file;
        self.size = size;
        self.index = index;
        tracing::info!(before, after = size, "--state-dir: compacted the device state log");
        Ok(())
    }
}
