//! The HdrHistogram interval log (`--hdr-log FILE`, the standard V2 format with one tagged
//! histogram per metric and interval), and merging such logs from several runs or machines
//! exactly (`cpe-sim report merge FILES…`).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use super::report::RunFacts;
use super::{Recorder, METRICS};

/// Tag suffix of from-scheduled histograms (`Inform.scheduled`), and the lag's tag.
const SCHEDULED: &str = ".scheduled";
const LAG: &str = "SchedulerLag";
/// The header comment that names the run a log belongs to.
pub const RUN_COMMENT: &str = "cpe-sim run";

/// An open interval log.
pub struct HdrLog {
    file: std::io::BufWriter<std::fs::File>,
    serializer: V2DeflateSerializer,
}

impl HdrLog {
    /// Creates `path` and writes the header: a comment naming the run ([`RUN_COMMENT`] `id=…
    /// cpes=… first_index=… shards=… multiplier=…`, which `report merge` reads back), then the
    /// standard lines.
    ///
    /// # Errors
    /// The file cannot be created or written.
    pub fn create(path: &Path, facts: &RunFacts) -> std::io::Result<HdrLog> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut serializer = V2DeflateSerializer::new();
        let started = SystemTime::now();
        IntervalLogWriterBuilder::new()
            .add_comment(
                "cpe-sim latency log (microseconds); tags: <Rpc> (service time), <Rpc>.scheduled (from the scheduled start), SchedulerLag",
            )
            .add_comment(&format!(
                "{RUN_COMMENT} id={} cpes={} first_index={} shards={} multiplier={}",
                facts.run_id, facts.cpes, facts.first_index, facts.shards, facts.multiplier
            ))
            .with_start_time(started)
            .with_base_time(started)
            .begin_log_with(&mut file, &mut serializer)?;
        Ok(HdrLog { file, serializer })
    }

    /// Appends one interval of `r` that began `start` after the log started.
    ///
    /// # Errors
    /// Write or serialization failures, as text.
    pub fn write(&mut self, r: &Recorder, start: Duration, length: Duration) -> Result<(), String> {
        let mut w = IntervalLogWriterBuilder::new().begin_log_with(&mut self.file, &mut self.serializer).map_err(|e| e.to_string())?;
        let mut put = |h: &hdrhistogram::Histogram<u64>, tag: &str| {
            if h.is_empty() {
                return Ok(());
            }
            w.write_histogram(h, start, length, Tag::new(tag)).map_err(|e| format!("{e:?}"))
        };
        for (i, name) in METRICS.iter().enumerate() {
            put(&r.service[i], name)?;
            put(&r.from_scheduled[i], &format!("{name}{SCHEDULED}"))?;
        }
        put(&r.lag, LAG)?;
        self.file.flush().map_err(|e| e.to_string())
    }
}

/// Merges interval logs into one recorder (latencies only; outcome counts are not in the logs).
///
/// # Errors
/// A file that cannot be read or an entry that does not decode, named.
pub fn merge(paths: &[std::path::PathBuf]) -> Result<(Recorder, Duration), String> {
    let mut total = Recorder::new();
    let mut span = Duration::ZERO;
    let mut de = Deserializer::new();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for entry in IntervalLogIterator::new(&bytes) {
            let entry = entry.map_err(|e| format!("{}: not an HdrHistogram interval log ({e:?})", path.display()))?;
            let LogEntry::Interval(ilh) = entry else { continue };
            span = span.max(ilh.start_timestamp() + ilh.duration());
            let raw = base64::engine::general_purpose::STANDARD
                .decode(ilh.encoded_histogram())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let h: hdrhistogram::Histogram<u64> =
                de.deserialize(&mut std::io::Cursor::new(raw)).map_err(|e| format!("{}: {e:?}", path.display()))?;
            let target = match ilh.tag().map(|t| t.as_str()) {
                Some(LAG) => &mut total.lag,
                Some(tag) => match tag.strip_suffix(SCHEDULED) {
                    Some(name) => match super::metric(name) {
                        Some(i) => &mut total.from_scheduled[i],
                        None => continue,
                    },
                    None => match super::metric(tag) {
                        Some(i) => &mut total.service[i],
                        None => continue,
                    },
                },
                None => continue,
            };
            target.add(&h).map_err(|e| format!("{}: {e:?}", path.display()))?;
        }
    }
    total.outcomes.completed = total.service[super::m::SESSION].len();
    Ok((total, span))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::m;

    #[test]
    fn logs_round_trip_and_merge_exactly() {
        let dir = std::env::temp_dir().join(format!("cpe-sim-hlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.hlog"), dir.join("b.hlog"));
        for (path, base) in [(&a, 1u64), (&b, 1000)] {
            let mut log = HdrLog::create(path, &RunFacts::default()).unwrap();
            let mut r = Recorder::new();
            for i in 0..100 {
                r.record(m::INFORM, Duration::from_micros(base + i));
            }
            r.record_session(Duration::from_millis(3), Duration::from_millis(2));
            log.write(&r, Duration::ZERO, Duration::from_secs(5)).unwrap();
        }
        let (merged, span) = merge(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(merged.service[m::INFORM].len(), 200);
        assert_eq!(merged.service[m::INFORM].min(), 1);
        assert!(merged.service[m::INFORM].max() >= 1099);
        assert_eq!(merged.outcomes.completed, 2);
        assert_eq!(span, Duration::from_secs(5));
        std::fs::write(&a, "garbage\n1,2,3,zzz\n").unwrap();
        assert!(merge(&[a]).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
