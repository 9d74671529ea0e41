//! On-disk device state (`--state-dir`): each CPE's `CpeState` (delta, events with CommandKeys,
//! bootstrapped flag, retry count) survives a restart of the simulator.
//!
//! The store is one append-only log, `DIR/cpe-sim-state.log`: a text header line naming the
//! format, the profile and its fingerprint, then records `len: u32 LE | crc32: u32 LE | JSON
//! CpeState`. The last record of a CPE wins. Owners send snapshots to a writer thread, which
//! appends them in batches with one `fdatasync` per batch (`FLUSH_EVERY`), so a million CPEs
//! cost a few syncs a second, not a million. A `kill -9` can tear only the last record: loading
//! stops at the first record whose length or checksum is wrong and says how much it dropped.
//! Opening compacts: the live records are written to a new file, synced and renamed over the old
//! one, so the log never grows past one run's changes.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::cpe::CpeState;
use crate::model::Model;

/// How often the writer syncs a batch.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);
const FILE: &str = "cpe-sim-state.log";
const FORMAT: &str = "cpe-sim-state/1";
/// Largest record accepted on load (a longer length means a torn or foreign file).
const MAX_RECORD: usize = 16 << 20;

/// Why a store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("--state-dir {dir}: {source}")]
    Io { dir: PathBuf, source: std::io::Error },
    #[error("--state-dir {dir} holds state of {found}; this run is {expected}: use another directory, or delete {file} to start over")]
    Mismatch { dir: PathBuf, found: String, expected: String, file: PathBuf },
}

/// What identifies the data a store may be loaded into: the format, the profile's name and a hash
/// of its tree (node ids in the records are only meaningful for the same tree).
pub fn fingerprint(model: &Model) -> String {
    let mut h = crate::model::identity::fnv1a(&model.name);
    for id in model.tree.ids() {
        let node = model.tree.node(id);
        h = crate::model::identity::mix64(h ^ crate::model::identity::fnv1a(&node.name) ^ u64::from(id.0) << 40);
        if let Some(p) = node.param() {
            h = crate::model::identity::mix64(h ^ crate::model::identity::fnv1a(p.ty.xsi_type()));
        }
    }
    format!("{FORMAT} profile={} tree={h:016x}", model.name)
}

/// A store opened for a run: the CPEs it held, and the writer for new snapshots.
pub struct Store {
    pub loaded: HashMap<u32, CpeState>,
    /// Bytes dropped from a torn last batch, if any.
    pub torn_bytes: u64,
    pub sink: StateSink,
    writer: std::thread::JoinHandle<std::io::Result<WriterStats>>,
}

/// What the writer did over a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriterStats {
    /// Batches written, each with one `fdatasync`.
    pub batches: u64,
    /// CPE snapshots written.
    pub records: u64,
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

/// Where owners send snapshots (cheap to clone, one per shard).
#[derive(Clone, Debug)]
pub struct StateSink(mpsc::Sender<CpeState>);

impl StateSink {
    /// Queues a snapshot of `cpe` for the next batch.
    pub fn save(&self, cpe: &CpeState) {
        let _ = self.0.send(cpe.clone());
    }
}

impl Store {
    /// Opens (creating) the store in `dir` for `model`: loads, compacts, starts the writer.
    ///
    /// # Errors
    /// The directory is unusable, or it holds another profile's state.
    pub fn open(dir: &Path, model: &Model) -> Result<Store, StoreError> {
        let io = |source| StoreError::Io { dir: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(FILE);
        let expected = fingerprint(model);
        let (loaded, torn_bytes) = match File::open(&path) {
            Ok(f) => load(f, &expected).map_err(|e| match e {
                LoadError::Io(e) => io(e),
                LoadError::Mismatch(found) => {
                    StoreError::Mismatch { dir: dir.to_path_buf(), found, expected: expected.clone(), file: path.clone() }
                }
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (HashMap::new(), 0),
            Err(e) => return Err(io(e)),
        };
        // Compact: the live records into a new file, synced, renamed over the old one.
        let tmp = dir.join(format!("{FILE}.tmp"));
        {
            let mut w = BufWriter::new(File::create(&tmp).map_err(io)?);
            writeln!(w, "{expected}").map_err(io)?;
            for cpe in loaded.values() {
                write_record(&mut w, cpe).map_err(io)?;
            }
            let f = w.into_inner().map_err(|e| io(e.into_error()))?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        let file = OpenOptions::new().append(true).open(&path).map_err(io)?;
        let (tx, rx) = mpsc::channel();
        let writer = std::thread::Builder::new().name("state-writer".into()).spawn(move || write_batches(file, rx)).map_err(io)?;
        Ok(Store { loaded, torn_bytes, sink: StateSink(tx), writer })
    }

    /// The CPE's saved state, powered on again at `now` (`1 BOOT`, pending M-events kept), or
    /// `None` when the store does not hold it.
    pub fn resume(&mut self, index: u32, now: crate::time::UnixMillis) -> Option<CpeState> {
        let mut cpe = self.loaded.remove(&index)?;
        cpe.restart(now);
        Some(cpe)
    }

    /// Stops taking snapshots, writes the last batch and waits for it.
    ///
    /// # Errors
    /// The last batch could not be written.
    pub fn close(self) -> std::io::Result<WriterStats> {
        drop(self.sink);
        self.writer.join().unwrap_or_else(|_| Err(std::io::Error::other("the state writer panicked")))
    }
}

enum LoadError {
    Io(std::io::Error),
    Mismatch(String),
}

fn load(mut f: File, expected: &str) -> Result<(HashMap<u32, CpeState>, u64), LoadError> {
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(LoadError::Io)?;
    let header_end = bytes.iter().position(|b| *b == b'\n').ok_or_else(|| LoadError::Mismatch("no header".into()))?;
    let header = String::from_utf8_lossy(&bytes[..header_end]).into_owned();
    if header != expected {
        return Err(LoadError::Mismatch(header));
    }
    let mut states = HashMap::new();
    let mut at = header_end + 1;
    while bytes.len() - at >= 8 {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        let Some(payload) = bytes.get(at + 8..at + 8 + len).filter(|_| len <= MAX_RECORD) else { break };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Ok(cpe) = serde_json::from_slice::<CpeState>(payload) else { break };
        states.insert(cpe.id.0, cpe);
        at += 8 + len;
    }
    Ok((states, (bytes.len() - at) as u64))
}

fn write_record(w: &mut impl Write, cpe: &CpeState) -> std::io::Result<()> {
    let payload = serde_json::to_vec(cpe).map_err(std::io::Error::other)?;
    w.write_all(&(payload.len() as u32).to_le_bytes())?;
    w.write_all(&crc32fast::hash(&payload).to_le_bytes())?;
    w.write_all(&payload)
}

/// The writer thread: collects snapshots (the latest per CPE) and appends them every
/// `FLUSH_EVERY` with one sync; a failed write is reported once and the run goes on in memory.
fn write_batches(file: File, rx: mpsc::Receiver<CpeState>) -> std::io::Result<WriterStats> {
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut stats = WriterStats::default();
    let mut batch: HashMap<u32, CpeState> = HashMap::new();
    let mut failed = false;
    loop {
        let deadline = std::time::Instant::now() + FLUSH_EVERY;
        let mut open = true;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(cpe) => {
                    batch.insert(cpe.id.0, cpe);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if !batch.is_empty() && !failed {
            let result = batch
                .values()
                .try_for_each(|cpe| write_record(&mut w, cpe))
                .and_then(|()| w.flush())
                .and_then(|()| w.get_ref().sync_data());
            if result.is_ok() {
                stats.batches += 1;
                stats.records += batch.len() as u64;
            }
            if let Err(e) = result {
                tracing::error!("writing the device state failed ({e}); the run goes on in memory and will not resume from this point");
                failed = true;
                if !open {
                    return Err(e);
                }
            }
        }
        batch.clear();
        if !open {
            return Ok(stats);
        }
    }
}
