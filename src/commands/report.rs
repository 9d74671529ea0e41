//! `cpe-sim report merge`: interval logs and JSON reports from several runs or machines merged
//! into one report ([`crate::stats::merge`]): the real CPE count, shards and duration first, the
//! same run twice refused (exit 2).

use std::fmt::Write;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;

use crate::console;
use crate::stats::merge::Merged;
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
        let slice = r.slice.map_or("CPEs unknown".to_string(), |(f, n)| format!("{n} CPEs (cpe-{f} … cpe-{})", (f + n).saturating_sub(1)));
        let _ = writeln!(out, "  run {}: {slice}, {} shard(s), {:.1}s: {what}", r.id, r.shards, r.duration.as_secs_f64());
    }
    let _ = writeln!(
        out,
        "covers {} CPEs{} on {} shard(s) in all, {:.1}s (the longest run)",
        m.cpes,
        if m.overlapping { " (some runs simulated the same CPEs: each counted once)" } else { "" },
        m.shards,
        m.duration.as_secs_f64()
    );
    out
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
    let m = match crate::stats::merge::merge(&files) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("report merge: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let facts = RunFacts { run_id: RunId::fresh(), duration: m.duration, cpes: m.cpes, first_index: 0, shards: m.shards, multiplier: 1.0 };
    let process = ProcessFigures::default();
    console::out(&format!("{}{}", header(&m), report::to_text(&m.total, &facts, &process))).context("writing the report to stdout")?;
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
            }))
            .collect::<Vec<_>>());
        json["run"]["overlapping_slices"] = json!(m.overlapping);
        std::fs::write(p, serde_json::to_vec_pretty(&json)?).with_context(|| format!("--report-json {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `paths` with each directory replaced by the interval logs (`*.hdr`) and JSON reports
/// (`*.json`) in it, in name order, so a container with no shell can merge a volume of slices.
/// A merged report found there (one with `merged_from`, say the output of an earlier merge into
/// the same directory) is left out and said so: its runs are already among the inputs.
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
            .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "hdr" || x == "json"))
            .filter(|f| {
                let merged = f.extension().is_some_and(|x| x == "json") && is_merged_report(f);
                if merged {
                    tracing::info!(file = %f.display(), "report merge: leaving out a merged report found in the directory");
                }
                !merged
            })
            .collect();
        anyhow::ensure!(!found.is_empty(), "{}: no interval logs (*.hdr) or JSON reports (*.json) in this directory", p.display());
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// Whether `path` is a JSON report written by `report merge` (it lists what it was merged from).
fn is_merged_report(path: &std::path::Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get("merged_from").is_some())
}
