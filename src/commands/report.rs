//! `cpe-sim report merge`: interval logs and JSON reports from several runs or machines merged
//! into one report ([`crate::stats::merge`]): the real CPE count, shards and duration first, the
//! same run twice refused (exit 2). The merged report's interval multiplier is the runs' own
//! (`mixed` when they differ, `unknown` when no input said it) and its first index the smallest of their slices'. A directory
//! given stands for the interval logs and cpe-sim JSON reports in it, told apart by content
//! whatever their names; anything else there is skipped with a line naming it and why. USP runs'
//! JSON reports merge into a USP report ([`crate::mtp::merge`]); a mix of USP and CWMP inputs is
//! refused (exit 2).

use std::fmt::Write;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;

use crate::console;
use crate::stats::merge::{Merged, Multiplier, ReportKind};
use crate::stats::report::{self, ProcessFigures, RunFacts};
use crate::stats::run_id::RunId;

/// The lines above the merged report: what was merged and what it covers.
fn header(m: &Merged) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "merged {} run(s):", m.runs.len());
    for r in &m.runs {
        let what = match (&r.log, &r.json) {
            (Some(l), Some(j)) => format!("{} + {}", l.display(), j.display()),
            (Some(l), None) => format!("{} (latencies; counts: completed sessions only)", l.display()),
            (None, Some(j)) => format!("{} (counts; its latencies are not in the merged histograms)", j.display()),
            (None, None) => String::new(),
        };
        run_line(&mut out, &r.id, r.slice, "CPEs", r.shards, r.duration, &what);
    }
    if m.multiplier == Multiplier::Mixed {
        let mut said: Vec<f64> = m.runs.iter().filter_map(|r| r.multiplier).collect();
        said.sort_by(f64::total_cmp);
        said.dedup();
        let said: Vec<String> = said.iter().map(f64::to_string).collect();
        let _ = writeln!(out, "interval multiplier: mixed (the runs ran at {})", said.join(", "));
    }
    covers_line(&mut out, m.cpes, "CPEs", m.overlapping, m.shards, m.duration);
    out
}

/// One merged run's line: its id, the devices it covered (`noun`: CPEs or agents), shards,
/// length and files.
fn run_line(
    out: &mut String,
    id: &impl std::fmt::Display,
    slice: Option<(u64, u64)>,
    noun: &str,
    shards: u32,
    duration: std::time::Duration,
    what: &str,
) {
    let slice = slice.map_or(format!("{noun} unknown"), |(f, n)| format!("{n} {noun} (cpe-{f} … cpe-{})", (f + n).saturating_sub(1)));
    let _ = writeln!(out, "  run {id}: {slice}, {shards} shard(s), {:.1}s: {what}", duration.as_secs_f64());
}

/// The merged header's last line: how many devices (`noun`) the runs covered in all.
fn covers_line(out: &mut String, devices: u64, noun: &str, overlapping: bool, shards: u32, duration: std::time::Duration) {
    let overlap = if overlapping { format!(" (some runs simulated the same {noun}: each counted once)") } else { String::new() };
    let _ = writeln!(out, "covers {devices} {noun}{overlap} on {shards} shard(s) in all, {:.1}s (the longest run)", duration.as_secs_f64());
}

/// Merges the files and prints (and writes) the report.
///
/// # Errors
/// A file that cannot be read or is neither an interval log nor a JSON report, the same run
/// given twice, or output that cannot be written.
pub fn merge(files: &[std::path::PathBuf], json_path: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let files = match expand(files) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!("report merge: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let usp: Vec<_> = files.iter().filter(|f| matches!(json_kind(f), Some(ReportKind::Usp))).collect();
    if let Some(u) = usp.first() {
        if let Some(c) = files.iter().find(|f| !usp.contains(f)) {
            tracing::error!("report merge: {}", crate::stats::merge::mixed_protocols(c, u));
            return Ok(ExitCode::from(2));
        }
        return merge_usp(&files, json_path);
    }
    let m = match crate::stats::merge::merge(&files) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("report merge: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let facts = RunFacts {
        run_id: RunId::fresh(),
        duration: m.duration,
        cpes: m.cpes,
        first_index: m.first_index,
        shards: m.shards,
        multiplier: m.multiplier,
    };
    let process = ProcessFigures::default();
    let text = report::to_text(&m.total, &facts, &process);
    console::out(&format!("{}{text}", header(&m))).context("writing the report to stdout")?;
    if let Some(p) = json_path {
        let mut json = report::to_json(&m.total, &facts, &process);
        json["merged_from"] = json!(m
            .runs
            .iter()
            .map(|r| json!({
                "run_id": r.id,
                "log": r.log.as_ref().map(|p| p.display().to_string()),
                "report": r.json.as_ref().map(|p| p.display().to_string()),
                "first_index": r.slice.map(|s| s.0),
                "cpes": r.slice.map(|s| s.1),
                "shards": r.shards,
                "multiplier": r.multiplier,
            }))
            .collect::<Vec<_>>());
        json["run"]["overlapping_slices"] = json!(m.overlapping);
        std::fs::write(p, serde_json::to_vec_pretty(&json)?).with_context(|| format!("--report-json {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The merged header's lines for USP runs (the CWMP one's, without interval multipliers).
fn usp_header(m: &crate::mtp::merge::Merged) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "merged {} USP run(s):", m.runs.len());
    for r in &m.runs {
        let file = r.json.as_ref().map_or_else(String::new, |p| p.display().to_string());
        run_line(&mut out, &r.id, r.slice, "agents", r.shards, r.duration, &file);
    }
    covers_line(&mut out, m.cpes, "agents", m.overlapping, m.shards, m.duration);
    out
}

/// `report merge` of USP runs' JSON reports: the USP report of them all (text, and JSON with
/// `merged_from`), exit 2 when they cannot be merged.
fn merge_usp(files: &[std::path::PathBuf], json_path: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    use crate::mtp::report as usp;
    let m = match crate::mtp::merge::merge(files) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("report merge: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let run_id = RunId::fresh();
    let title = format!("USP run {run_id}: {} agents (cpe-{} …), merged", m.cpes, m.first_index);
    let mut text = usp::to_text(&title, &m.agents, m.controller.as_ref(), m.duration);
    if !m.complete {
        text.push_str("incomplete: some runs' shards panicked (see their reports)\n");
    }
    console::out(&format!("{}{text}", usp_header(&m))).context("writing the report to stdout")?;
    if let Some(p) = json_path {
        let mut json = usp::to_json(&m.agents, m.controller.as_ref(), m.duration);
        json["run"] = usp::run_json(&run_id.to_string(), m.cpes, m.first_index, m.shards);
        json["run"]["overlapping_slices"] = json!(m.overlapping);
        json["complete"] = json!(m.complete);
        json["merged_from"] = json!(m
            .runs
            .iter()
            .map(|r| json!({
                "run_id": r.id,
                "report": r.json.as_ref().map(|p| p.display().to_string()),
                "first_index": r.slice.map(|s| s.0),
                "cpes": r.slice.map(|s| s.1),
                "shards": r.shards,
            }))
            .collect::<Vec<_>>());
        std::fs::write(p, serde_json::to_vec_pretty(&json)?).with_context(|| format!("--report-json {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Which protocol's JSON report `path` is, when it is one (`None`: an interval log, or anything
/// the merge will name and refuse itself).
fn json_kind(path: &std::path::Path) -> Option<ReportKind> {
    use std::io::Read;
    let mut first = [0u8; 256];
    let got = std::fs::File::open(path).and_then(|mut f| f.read(&mut first)).ok()?;
    if first[..got].iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    crate::stats::merge::check_schema(&v).ok()
}

/// `paths` with each directory replaced by the interval logs and cpe-sim JSON reports in it, in
/// name order, so a container with no shell can merge a volume of slices. Files are told apart by
/// content, as [`crate::stats::merge`] does, whatever their names (`.hlog`, `.hdr`, `.json`).
/// Anything else there (a sweep's JSON, a stray text file) and a merged report (one with
/// `merged_from`, say the output of an earlier merge into the same directory: its runs are
/// already among the inputs) is skipped with a line on stderr naming it and why.
///
/// # Errors
/// A directory that cannot be read, or that holds nothing to merge.
fn expand(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut found: Vec<_> = std::fs::read_dir(p)
            .with_context(|| format!("{}: cannot list the directory", p.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|f| f.is_file())
            .collect();
        found.sort();
        found.retain(|f| match kind(f) {
            Ok(()) => true,
            Err(why) => {
                console::err_line(&format!("report merge: skipping {}: {why}", f.display()));
                false
            }
        });
        anyhow::ensure!(!found.is_empty(), "{}: no interval logs or cpe-sim JSON reports in this directory", p.display());
        out.extend(found);
    }
    Ok(out)
}

/// Most bytes read to tell a file's kind: an interval log's header comes first; a JSON report is
/// a few kilobytes (a bigger JSON file is read whole by the merge, which refuses what it is not).
const SNIFF_BYTES: u64 = 64 << 20;

/// `Ok` when `path` is an interval log or a cpe-sim JSON report that is not a merged one; else
/// why it is left out.
fn kind(path: &std::path::Path) -> Result<(), String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(SNIFF_BYTES).read_to_end(&mut bytes)).map_err(|e| format!("cannot be read ({e})"))?;
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| "JSON but not a cpe-sim report".to_string())?;
            crate::stats::merge::check_schema(&v)?;
            if v.get("merged_from").is_some() {
                return Err("a merged report (its runs are already among the inputs)".into());
            }
            Ok(())
        }
        Some(b'#') if is_interval_log(&bytes) => Ok(()),
        _ => Err("neither an interval log nor a cpe-sim JSON report".into()),
    }
}

/// Whether `bytes` begin like an HdrHistogram interval log: comment lines, then a
/// `#[StartTime:`/`#[BaseTime:` line or the `"StartTimestamp"` legend.
fn is_interval_log(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    text.lines().any(|l| l.starts_with("#[StartTime:") || l.starts_with("#[BaseTime:") || l.starts_with("\"StartTimestamp\""))
}
