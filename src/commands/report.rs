//! `cpe-sim report merge`: interval logs from several runs or machines merged into one report.

use std::process::ExitCode;

use anyhow::Context;

use crate::console;

/// Merges the `--hdr-log` files and prints (and writes) the report.
pub fn merge(files: &[std::path::PathBuf], json_path: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let (merged, span) = crate::stats::interval::merge(files).map_err(anyhow::Error::msg)?;
    let facts = crate::stats::report::RunFacts { duration: span, cpes: 0, shards: 0, multiplier: 1.0, ..Default::default() };
    let process = crate::stats::report::ProcessFigures::default();
    console::out(&crate::stats::report::to_text(&merged, &facts, &process)).context("writing the report to stdout")?;
    if let Some(p) = json_path {
        let json = crate::stats::report::to_json(&merged, &facts, &process);
        std::fs::write(p, serde_json::to_vec_pretty(&json)?).with_context(|| format!("--report-json {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
