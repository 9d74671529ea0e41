//! `cpe-sim report merge`: interval logs from several runs or machines merged into one report.

use std::process::ExitCode;

use anyhow::Context;

use crate::console;

/// Merges the `--hdr-log` files and prints (and writes) the report. A directory stands for the
/// interval logs (`*.hdr`) in it, so a container with no shell can merge a volume of slices.
pub fn merge(files: &[std::path::PathBuf], json_path: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let files = expand(files)?;
    let (merged, span) = crate::stats::interval::merge(&files).map_err(anyhow::Error::msg)?;
    let facts = crate::stats::report::RunFacts { duration: span, cpes: 0, shards: 0, multiplier: 1.0 };
    let process = crate::stats::report::ProcessFigures::default();
    console::out(&crate::stats::report::to_text(&merged, &facts, &process)).context("writing the report to stdout")?;
    if let Some(p) = json_path {
        let json = crate::stats::report::to_json(&merged, &facts, &process);
        std::fs::write(p, serde_json::to_vec_pretty(&json)?).with_context(|| format!("--report-json {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `paths` with each directory replaced by the `*.hdr` files in it, in name order.
///
/// # Errors
/// A directory that cannot be read, or that holds no interval log.
fn expand(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut logs: Vec<_> = std::fs::read_dir(p)
            .with_context(|| format!("{}: cannot list the directory", p.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "hdr"))
            .collect();
        anyhow::ensure!(!logs.is_empty(), "{}: no interval logs (*.hdr) in this directory", p.display());
        logs.sort();
        out.extend(logs);
    }
    Ok(out)
}
