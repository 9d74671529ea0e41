//! `report merge`: interval logs (`--hdr-log`) and JSON reports (`--report-json`) from several
//! processes or machines, merged into one report that says how many CPEs it really covers.
//!
//! Every output of a run carries its run id ([`super::run_id`]); the interval log's header says
//! it with the CPE slice and shards (`#cpe-sim run id=… cpes=… first_index=… shards=…`). A run
//! may come as a log, a JSON report or both: the log gives exact latency histograms, the JSON the
//! session counts by outcome and cause. The same run given twice as the same kind is refused
//! (its sessions would count twice); a file without a run id (older versions) is keyed by its
//! content, so the same file twice is refused too.
//!
//! The CPE count is the union of the runs' slices (`first_index..first_index+cpes`): two runs
//! of the same slice are the same CPEs, counted once. Shards add up; the duration is the longest
//! run's (slices run side by side). No I/O but reading the named files.
//!
//! Counts from outside add up saturating (a report claiming `u64::MAX` sessions merges, it does
//! not overflow); a run whose `first_index + cpes` passes `u32::MAX` or whose shards pass
//! `u16::MAX` (neither a run can have) is refused, naming the file. The merged run's interval
//! multiplier is the runs' own when they agree (`None`: they differ, or none said it) and its
//! first index the smallest of the runs' slices.
//!
//! USP runs' JSON reports are merged by `mtp::merge` with this module's rules ([`check_run`],
//! [`cover`]); [`check_schema`] tells the two kinds apart, and a mix is refused
//! ([`mixed_protocols`]).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::interval::RUN_COMMENT;
use super::{Cause, Recorder, Tally};
use crate::cwmp::rpc::inform::EventCode;

/// What one run contributed.
#[derive(Debug, Clone, Default)]
pub struct RunPart {
    /// The run id as written (16 hex digits), or `file:<hash>` for a file without one.
    pub id: String,
    pub log: Option<PathBuf>,
    pub json: Option<PathBuf>,
    /// The run's CPE slice and shards, when a header or report said them.
    pub slice: Option<(u64, u64)>,
    pub shards: u32,
    pub duration: Duration,
    /// The run's interval multiplier, when its JSON report or log header said it.
    pub multiplier: Option<f64>,
}

/// The merged report's inputs and result.
#[derive(Debug, Clone)]
pub struct Merged {
    pub total: Recorder,
    pub runs: Vec<RunPart>,
    /// CPEs covered, each counted once (the union of the runs' slices).
    pub cpes: u64,
    /// Whether some runs' slices overlapped (the same CPEs simulated twice).
    pub overlapping: bool,
    pub shards: u32,
    /// The longest run's duration.
    pub duration: Duration,
    /// The smallest first CPE index of the runs' slices (0 when none said one).
    pub first_index: u32,
    /// The runs' interval multiplier: `Some` when every run that said one said the same.
    pub multiplier: Multiplier,
}

pub use super::report::Multiplier;

/// Most shards a run can have (`--shards` is at most this).
const MAX_RUN_SHARDS: u64 = u16::MAX as u64;

/// Checks a run's slice and shards as read from `path`.
///
/// # Errors
/// A slice past the 32-bit CPE indices or more shards than a run can have, naming `path`.
pub fn check_run(path: &Path, slice: Option<(u64, u64)>, shards: u64) -> Result<(), String> {
    if let Some((first, cpes)) = slice {
        if first.checked_add(cpes).is_none_or(|end| end > u64::from(u32::MAX)) {
            return Err(format!(
                "{}: first_index {first} + cpes {cpes} passes {} (CPE indices are 32-bit): not a report a run wrote",
                path.display(),
                u32::MAX
            ));
        }
    }
    if shards > MAX_RUN_SHARDS {
        return Err(format!("{}: shards {shards} is more than {MAX_RUN_SHARDS}: not a report a run wrote", path.display()));
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The run header of an interval log: (id, cpes, first_index, shards, multiplier if said).
fn log_header(bytes: &[u8]) -> Option<(String, u64, u64, u64, Option<f64>)> {
    let text = std::str::from_utf8(bytes.get(..bytes.len().min(4096))?).ok().or_else(|| {
        // A cut in the middle of a UTF-8 sequence: the header lines are ASCII and come first.
        std::str::from_utf8(&bytes[..bytes.iter().take(4096).position(|b| *b >= 0x80).unwrap_or(0)]).ok()
    })?;
    let line = text.lines().find_map(|l| l.strip_prefix('#')?.strip_prefix(RUN_COMMENT))?;
    let field = |k: &str| line.split_whitespace().find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='));
    let multiplier = field("multiplier").and_then(|m| m.parse::<f64>().ok()).filter(|m| m.is_finite());
    Some((
        field("id")?.to_string(),
        field("cpes")?.parse().ok()?,
        field("first_index")?.parse().ok()?,
        field("shards")?.parse().ok()?,
        multiplier,
    ))
}

fn content_key(bytes: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    format!("file:{:016x}", h.finish())
}

/// Adds a JSON report's session counts to `o`.
fn add_counts(o: &mut super::Outcomes, j: &Value) {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let s = &j["sessions"];
    let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
    add(&mut o.started, n(&s["started"]));
    add(&mut o.completed, n(&s["completed"]));
    add(&mut o.interrupted, n(&s["interrupted"]));
    add(&mut o.failed[Cause::Late as usize], n(&s["late"]));
    for c in Cause::ALL {
        add(&mut o.failed[c as usize], n(&j["failures"][c.name()]));
    }
    for (status, count) in j["failures"]["http_status_codes"].as_object().into_iter().flatten() {
        if let Ok(st) = status.parse::<u16>() {
            match o.http_status.iter_mut().find(|(x, _)| *x == st) {
                Some((_, m)) => add(m, n(count)),
                None => o.http_status.push((st, n(count))),
            }
        }
    }
    for code in EventCode::ALL {
        let e = &j["events"][code.as_str()];
        let t = &mut o.by_event[code as usize];
        add(&mut t.completed, n(&e["completed"]));
        add(&mut t.failed, n(&e["failed"]));
    }
    for e in j["endpoints"].as_array().into_iter().flatten() {
        let i = usize::try_from(n(&e["index"])).unwrap_or(usize::MAX);
        if i < 1 << 16 {
            if o.by_endpoint.len() <= i {
                o.by_endpoint.resize(i + 1, Tally::default());
            }
            add(&mut o.by_endpoint[i].completed, n(&e["completed"]));
            add(&mut o.by_endpoint[i].failed, n(&e["failed"]));
        }
    }
}

/// Which protocol's run a JSON report describes: their reports merge only with their own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// A CWMP run's (`cpe-sim/report/v1`, merged here).
    Cwmp,
    /// A USP run's (`cpe-sim/usp-report/v1`, merged by [`crate::mtp::merge`]).
    Usp,
}

/// Whether `j` is a JSON report `report merge` takes (a CWMP or a USP run's, not a sweep's or
/// anything else's), and which; else why not. The one rule for `merge` and for what `report merge
/// DIR` picks up.
///
/// # Errors
/// The reason, worded to follow a file name.
pub fn check_schema(j: &Value) -> Result<ReportKind, String> {
    match j["schema"].as_str() {
        Some(super::report::SCHEMA) => Ok(ReportKind::Cwmp),
        Some(super::report::USP_SCHEMA) => Ok(ReportKind::Usp),
        Some(s) => Err(format!("not a cpe-sim report (schema {s}): so not a cpe-sim JSON report of a run")),
        None => Err("JSON but not a cpe-sim JSON report".into()),
    }
}

/// The refusal of a mix of CWMP and USP inputs, naming one file of each.
pub fn mixed_protocols(cwmp: &Path, usp: &Path) -> String {
    format!(
        "{} is a USP run's report and {} a CWMP run's: reports merge only with reports of the same protocol (merge each protocol's runs on their own)",
        usp.display(),
        cwmp.display()
    )
}

/// The CPEs the runs' slices cover, each counted once (the union of `first_index..first_index+cpes`),
/// whether some slices overlapped, and the smallest first index (0 when none said one).
pub fn cover(runs: &[RunPart]) -> (u64, bool, u32) {
    let mut slices: Vec<(u64, u64)> = runs.iter().filter_map(|r| r.slice).map(|(f, n)| (f, f.saturating_add(n))).collect();
    slices.sort_unstable();
    let (mut cpes, mut overlapping, mut end) = (0u64, false, 0u64);
    for (i, (a, b)) in slices.iter().enumerate() {
        if i > 0 && *a < end {
            overlapping = true;
        }
        let from = if i == 0 { *a } else { (*a).max(end) };
        cpes = cpes.saturating_add(b.saturating_sub(from));
        end = if i == 0 { *b } else { end.max(*b) };
    }
    // Checked by `check_run`: every slice's first index fits in a u32.
    let first_index = slices.first().map_or(0, |s| u32::try_from(s.0).unwrap_or(u32::MAX));
    (cpes, overlapping, first_index)
}

/// Merges `files` (each an interval log or a JSON report, told apart by content).
///
/// # Errors
/// A file that cannot be read or is neither; the same run twice (naming both files); a run whose
/// slice passes the 32-bit CPE indices or whose shards pass `u16::MAX`.
pub fn merge(files: &[PathBuf]) -> Result<Merged, String> {
    let mut runs: BTreeMap<String, RunPart> = BTreeMap::new();
    let mut total = Recorder::new();
    // Sessions completed per run as its log saw them, for runs without a JSON report.
    let mut log_completed: BTreeMap<String, u64> = BTreeMap::new();
    for path in files {
        let bytes = read(path)?;
        let is_json = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if is_json {
            let j: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{}: not a cpe-sim JSON report ({e})", path.display()))?;
            if check_schema(&j).map_err(|why| format!("{}: {why}", path.display()))? == ReportKind::Usp {
                // `report merge` sends USP reports to `mtp::merge`; here among CWMP inputs.
                return Err(format!(
                    "{}: a USP run's report among CWMP inputs: reports merge only with reports of the same protocol",
                    path.display()
                ));
            }
            let id = j["run"]["id"].as_str().map_or_else(|| content_key(&bytes), str::to_string);
            let part = runs.entry(id.clone()).or_insert_with(|| RunPart { id: id.clone(), ..RunPart::default() });
            if let Some(other) = &part.json {
                return Err(format!(
                    "the same run twice: run {id} is in {} and {} (each run counts once)",
                    other.display(),
                    path.display()
                ));
            }
            part.json = Some(path.clone());
            let r = &j["run"];
            let slice = r["cpes"].as_u64().zip(r["first_index"].as_u64()).map(|(cpes, first)| (first, cpes));
            let shards = r["shards"].as_u64().unwrap_or(0);
            check_run(path, slice, shards)?;
            if slice.is_some() {
                part.slice = slice;
            }
            part.shards = u32::try_from(shards).unwrap_or(u32::MAX);
            if let Some(m) = r["multiplier"].as_f64().filter(|m| m.is_finite()) {
                part.multiplier = Some(m);
            }
            part.duration = part.duration.max(Duration::from_secs_f64(r["duration_s"].as_f64().unwrap_or(0.0).clamp(0.0, 1e9)));
            add_counts(&mut total.outcomes, &j);
        } else {
            let header = log_header(&bytes);
            let id = header.as_ref().map_or_else(|| content_key(&bytes), |h| h.0.clone());
            let part = runs.entry(id.clone()).or_insert_with(|| RunPart { id: id.clone(), ..RunPart::default() });
            if let Some(other) = &part.log {
                return Err(format!(
                    "the same run twice: run {id} is in {} and {} (each run counts once)",
                    other.display(),
                    path.display()
                ));
            }
            part.log = Some(path.clone());
            let (log, span) = super::interval::merge(std::slice::from_ref(path))?;
            if let Some((_, cpes, first, shards, multiplier)) = header {
                check_run(path, Some((first, cpes)), shards)?;
                part.slice = Some((first, cpes));
                part.shards = u32::try_from(shards).unwrap_or(u32::MAX);
                part.multiplier = part.multiplier.or(multiplier);
            }
            part.duration = part.duration.max(span);
            log_completed.insert(id, log.outcomes.completed);
            let outcomes = std::mem::take(&mut total.outcomes);
            total.add(&Recorder { outcomes: super::Outcomes::default(), ..log });
            total.outcomes = outcomes;
        }
    }
    for (id, n) in &log_completed {
        if runs.get(id).is_some_and(|r| r.json.is_none()) {
            total.outcomes.completed = total.outcomes.completed.saturating_add(*n);
        }
    }
    let runs: Vec<RunPart> = runs.into_values().collect();
    let (cpes, overlapping, first_index) = cover(&runs);
    let mut said = runs.iter().filter_map(|r| r.multiplier);
    let multiplier = match said.next() {
        None => Multiplier::Unknown,
        Some(m) if said.all(|o| o == m) => Multiplier::Same(m),
        Some(_) => Multiplier::Mixed,
    };
    Ok(Merged {
        total,
        shards: runs.iter().fold(0u32, |a, r| a.saturating_add(r.shards)),
        first_index,
        multiplier,
        duration: runs.iter().map(|r| r.duration).max().unwrap_or_default(),
        runs,
        cpes,
        overlapping,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_headers_are_read_back() {
        let h = b"#cpe-sim latency log\n#cpe-sim run id=00000000000000ab cpes=500 first_index=1000 shards=2\n#[StartTime: 1 ]\n";
        assert_eq!(log_header(h), Some(("00000000000000ab".into(), 500, 1000, 2, None)));
        let h = b"#cpe-sim run id=00000000000000ab cpes=500 first_index=1000 shards=2 multiplier=0.5\n";
        assert_eq!(log_header(h), Some(("00000000000000ab".into(), 500, 1000, 2, Some(0.5))));
        assert_eq!(log_header(b"#[StartTime: 1 ]\n"), None);
    }

    #[test]
    fn overlapping_slices_count_their_cpes_once() {
        let dir = std::env::temp_dir().join(format!("cpe-sim-merge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut files = Vec::new();
        for (i, (first, cpes)) in [(0u64, 100u64), (50, 100), (500, 10)].iter().enumerate() {
            let j = serde_json::json!({"schema": "cpe-sim/report/v1",
                "run": {"id": format!("{i:016x}"), "cpes": cpes, "first_index": first, "shards": 2, "duration_s": 10.0 * (i + 1) as f64},
                "sessions": {"completed": 7, "late": 1}, "failures": {"timeout": 2, "http_status_codes": {"503": 1}}});
            let p = dir.join(format!("{i}.json"));
            std::fs::write(&p, j.to_string()).unwrap();
            files.push(p);
        }
        let m = merge(&files).unwrap();
        assert_eq!(m.cpes, 160, "0..150 and 500..510");
        assert!(m.overlapping);
        assert_eq!((m.shards, m.duration), (6, Duration::from_secs(30)));
        assert_eq!(m.total.outcomes.completed, 21);
        assert_eq!(m.total.outcomes.failed[Cause::Timeout as usize], 6);
        assert_eq!(m.total.outcomes.late(), 3);
        assert_eq!(m.total.outcomes.http_status, vec![(503, 3)]);
        std::fs::write(&files[2], "{\"schema\": \"other\"}").unwrap();
        assert!(merge(&files).unwrap_err().contains("not a cpe-sim JSON report"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
