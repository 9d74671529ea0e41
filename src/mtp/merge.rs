//! `report merge` of USP runs: JSON reports of several USP runs (slices of one fleet, `--slice
//! K/N`, or runs on several machines) read back into one [`AgentFigures`] (and the embedded
//! Controllers' [`ControllerFigures`]), so the merged report is a USP report like a run's.
//!
//! Counts add up saturating; histograms merge exactly from the report's `"hdr"` encodings
//! ([`super::report::encode`]); connections held and peak add up (the slices held them side by
//! side); the CPE count is the union of the runs' slices and the same run twice is refused, by the
//! rules of [`crate::stats::merge`]. A report without a run id (none is written without one) is
//! keyed by its content. Names the report does not know (a notification, a message type, a cause)
//! and a histogram that cannot be read or whose values pass 1 h are refused, naming the file: a
//! report a run wrote has none of them. No I/O but reading the named files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::Value;

use super::report::{AgentFigures, ConnFailure, ControllerFigures, Timed, NOTIFY_NAMES};
use crate::stats::merge::{check_run, check_schema, cover, ReportKind, RunPart};
use crate::usp::record::Dropped;
use crate::usp::MsgKind;

/// The merged USP runs.
#[derive(Debug, Default)]
pub struct Merged {
    pub agents: AgentFigures,
    /// The embedded Controllers' figures, when some run had one.
    pub controller: Option<ControllerFigures>,
    pub runs: Vec<RunPart>,
    /// Agents covered, each counted once (the union of the runs' slices).
    pub cpes: u64,
    pub overlapping: bool,
    pub first_index: u32,
    pub shards: u32,
    /// The longest run's.
    pub duration: Duration,
    /// Whether every run's report said it was complete (no shard panicked).
    pub complete: bool,
}

fn add(a: &mut u64, b: u64) {
    *a = a.saturating_add(b);
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The histogram a latency object (`{"p50_ms": …, "hdr": "…"}`) keeps, added to `into`.
fn add_hdr(into: &mut Histogram<u64>, latency: &Value, what: &str) -> Result<(), String> {
    let h = read_hdr(latency, what)?;
    add_histogram(into, &h, what)
}

fn add_histogram(into: &mut Histogram<u64>, h: &Histogram<u64>, what: &str) -> Result<(), String> {
    into.add(h).map_err(|e| format!("{what}: a latency past the report's 1 h range ({e:?})"))
}

/// A latency's whole histogram, as the report carries it (`"hdr"`).
fn read_hdr(latency: &Value, what: &str) -> Result<Histogram<u64>, String> {
    use base64::Engine as _;
    let Some(b64) = latency["hdr"].as_str().filter(|s| !s.is_empty()) else {
        return Err(format!("{what}: no \"hdr\" histogram (a report of an older cpe-sim: its latencies cannot be merged exactly)"));
    };
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| format!("{what}: \"hdr\" is not base64 ({e})"))?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(raw))
        .map_err(|e| format!("{what}: \"hdr\" is not an HdrHistogram ({e:?})"))
}

fn add_timed(into: &mut Timed, v: &Value, what: &str) -> Result<(), String> {
    add(&mut into.count, n(&v["count"]));
    add_hdr(&mut into.latency, &v["latency"], what)
}

/// Adds one USP JSON report's figures to `a` and `c`.
fn add_report(a: &mut AgentFigures, c: &mut Option<ControllerFigures>, j: &Value) -> Result<(), String> {
    a.agents = a.agents.saturating_add(u32::try_from(n(&j["agents"])).unwrap_or(u32::MAX));
    let conn = &j["connections"];
    add(&mut a.connected, n(&conn["held"]));
    add(&mut a.peak_connected, n(&conn["peak"]));
    add(&mut a.connects, n(&conn["connects"]));
    add(&mut a.connect_time.count, n(&conn["connects"]));
    add_hdr(&mut a.connect_time.latency, &conn["connect_time"], "connections.connect_time")?;
    add(&mut a.booted, n(&j["booted"]));
    for (name, v) in j["notify"].as_object().into_iter().flatten() {
        let what = NOTIFY_NAMES.iter().find(|k| **k == name).ok_or_else(|| format!("notify: unknown notification `{name}`"))?;
        let f = a.notify.entry(what).or_default();
        add(&mut f.sent, n(&v["sent"]));
        add(&mut f.answered, n(&v["answered"]));
        add(&mut f.retransmitted, n(&v["retransmitted"]));
        add(&mut f.unanswered, n(&v["unanswered"]));
        // One decode for the type's round trips and the all-types histogram.
        let what = format!("notify.{name}");
        let h = read_hdr(&v["round_trip"], &what)?;
        add_histogram(&mut f.rtt, &h, &what)?;
        add_histogram(&mut a.notify_rtt.latency, &h, &what)?;
    }
    let kind = |name: &str, section: &str| {
        MsgKind::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| format!("{section}: unknown USP message type `{name}`"))
    };
    for (name, v) in j["handled"].as_object().into_iter().flatten() {
        add_timed(a.handled.entry(kind(name, "handled")?).or_default(), v, &format!("handled.{name}"))?;
    }
    for (name, v) in j["failures"].as_object().into_iter().flatten() {
        let cause = ConnFailure::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| format!("failures: unknown cause `{name}`"))?;
        add(a.failures.entry(cause).or_default(), n(v));
    }
    for (name, v) in j["dropped"].as_object().into_iter().flatten() {
        let cause = Dropped::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| format!("dropped: unknown cause `{name}`"))?;
        add(a.dropped.entry(cause).or_default(), n(v));
    }
    for (code, v) in j["errors_answered"].as_object().into_iter().flatten() {
        let code: u32 = code.parse().map_err(|_| format!("errors_answered: `{code}` is not a USP error code"))?;
        add(a.refused.entry(code).or_default(), n(v));
    }
    add(&mut a.publish_failed, n(&j["publish_failed"]));
    add(&mut a.notify_no_route, n(&j["notify_no_route"]));
    let ctl = &j["controller"];
    if ctl.is_object() {
        let c = c.get_or_insert_with(ControllerFigures::default);
        add(&mut c.booted_merged, n(&ctl["booted_agents"]));
        for (name, v) in ctl["notifications"].as_object().into_iter().flatten() {
            let what = NOTIFY_NAMES
                .iter()
                .find(|k| **k == name)
                .ok_or_else(|| format!("controller.notifications: unknown notification `{name}`"))?;
            add(c.notifications.entry(what).or_default(), n(v));
        }
        for (name, v) in ctl["round_trips"].as_object().into_iter().flatten() {
            add_timed(
                c.round_trips.entry(kind(name, "controller.round_trips")?).or_default(),
                v,
                &format!("controller.round_trips.{name}"),
            )?;
        }
        add(&mut c.errors, n(&ctl["errors"]));
        add(&mut c.dropped, n(&ctl["dropped"]));
    }
    Ok(())
}

fn content_key(bytes: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    format!("file:{:016x}", h.finish())
}

/// Merges the USP JSON reports `files`.
///
/// # Errors
/// A file that cannot be read or is not a USP run's JSON report (a CWMP run's is refused as a mix
/// of protocols), the same run twice (naming both files), a slice past the 32-bit CPE indices, or
/// figures no run writes (see the module doc), each naming the file.
pub fn merge(files: &[PathBuf]) -> Result<Merged, String> {
    let mut m = Merged { complete: true, ..Merged::default() };
    let mut controller = None;
    for path in files {
        let at = |why: String| format!("{}: {why}", path.display());
        let bytes = std::fs::read(path).map_err(|e| at(e.to_string()))?;
        let j: Value = serde_json::from_slice(&bytes).map_err(|e| at(format!("not a cpe-sim USP JSON report ({e})")))?;
        if check_schema(&j).map_err(at)? != ReportKind::Usp {
            return Err(at("a CWMP run's report among USP inputs: reports merge only with reports of the same protocol".into()));
        }
        if j.get("merged_from").is_some() {
            return Err(at("a merged report (merge the runs' own reports)".into()));
        }
        let id = j["run"]["id"].as_str().map_or_else(|| content_key(&bytes), str::to_string);
        if let Some(other) = m.runs.iter().find(|r| r.id == id) {
            let first = other.json.as_deref().map_or_else(String::new, |p: &Path| p.display().to_string());
            return Err(format!("the same run twice: run {id} is in {first} and {} (each run counts once)", path.display()));
        }
        let r = &j["run"];
        let slice = r["cpes"].as_u64().zip(r["first_index"].as_u64()).map(|(cpes, first)| (first, cpes));
        let shards = n(&r["shards"]);
        check_run(path, slice, shards)?;
        let duration = Duration::from_secs_f64(j["elapsed_s"].as_f64().unwrap_or(0.0).clamp(0.0, 1e9));
        add_report(&mut m.agents, &mut controller, &j).map_err(at)?;
        m.complete &= j["complete"].as_bool().unwrap_or(true);
        m.runs.push(RunPart {
            id,
            log: None,
            json: Some(path.clone()),
            slice,
            shards: u32::try_from(shards).unwrap_or(u32::MAX),
            duration,
            multiplier: None,
        });
    }
    let (cpes, overlapping, first_index) = cover(&m.runs);
    m.cpes = cpes;
    m.overlapping = overlapping;
    m.first_index = first_index;
    // Overlapping slices are the same Agents: the merged run has the union's.
    if m.runs.iter().all(|r| r.slice.is_some()) {
        m.agents.agents = u32::try_from(cpes).unwrap_or(u32::MAX);
    }
    m.shards = m.runs.iter().fold(0u32, |a, r| a.saturating_add(r.shards));
    m.duration = m.runs.iter().map(|r| r.duration).max().unwrap_or_default();
    m.controller = controller;
    Ok(m)
}
