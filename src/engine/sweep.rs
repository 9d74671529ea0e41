//! Interval-multiplier sweeps: one step per multiplier on the same live fleet (every periodic
//! Inform re-planned at each step), a table of offered vs achieved rates, and the knee, the last
//! step the ACS kept up with.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{progress_line, Control, Outputs, Plan, Running};
use crate::stats::report::{self, ProcessFigures, RunFacts};
use crate::stats::{m, Recorder};

/// One sweep step's result.
#[derive(Debug, Clone)]
pub struct SweepStep {
    pub multiplier: f64,
    pub offered_per_second: f64,
    pub achieved_per_second: f64,
    pub inform_p50_us: u64,
    pub inform_p99_us: u64,
    pub failed: u64,
    pub late: u64,
    pub thresholds_ok: bool,
}

/// Runs one step per multiplier on the same (already booted) fleet, re-scheduled each step.
///
/// The offered rate of a step is the periodic Informs that came due in it (whatever interval the
/// ACS gave the CPEs), per second. `owners` are the listeners' channels, one per shard (or none).
/// The outcome over all steps (totals, panics, `--report-json`) comes back with the table.
///
/// # Errors
/// Shard threads that cannot start.
pub fn sweep(
    mut plan: Plan,
    multipliers: &[f64],
    step: Duration,
    out: &Outputs,
    owners: Vec<tokio::sync::mpsc::UnboundedReceiver<crate::owners::CpeMsg>>,
) -> anyhow::Result<Sweep> {
    let cpes = plan.cpes;
    plan.publish_acs_settings();
    let plan = Arc::new(plan);
    let started = Instant::now();
    let mut running = Running::start(plan.clone(), owners)?;
    let mut total = Recorder::new();
    let mut steps: Vec<SweepStep> = Vec::new();
    for &mult in multipliers {
        let _ = running.control.send(Control { stop: false, multiplier: mult });
        let mut acc = Recorder::new();
        let begin = Instant::now();
        let end = begin + step;
        while Instant::now() < end && !out.stop_requested() && running.live > 0 {
            running.collect((Instant::now() + out.progress_every).min(end), &mut [&mut total, &mut acc], &|| out.stop_requested());
            if out.progress {
                crate::console::err_line(&progress_line(
                    begin.elapsed(),
                    cpes,
                    &acc,
                    begin.elapsed(),
                    &total,
                    running.in_flight.iter().sum(),
                ));
            }
        }
        let secs = begin.elapsed().as_secs_f64();
        let facts = RunFacts { duration: begin.elapsed(), cpes: cpes as u64, shards: plan.shards as u32, multiplier: mult };
        let step_json = report::to_json(&acc, &facts, &ProcessFigures::now());
        let thresholds_ok = out.thresholds.iter().all(|t| t.check(&step_json).is_none());
        let inform = &acc.service[m::INFORM];
        steps.push(SweepStep {
            multiplier: mult,
            offered_per_second: acc.outcomes.periodic_due as f64 / secs.max(1e-9),
            achieved_per_second: acc.outcomes.completed as f64 / secs.max(1e-9),
            inform_p50_us: if inform.is_empty() { 0 } else { inform.value_at_quantile(0.5) },
            inform_p99_us: if inform.is_empty() { 0 } else { inform.value_at_quantile(0.99) },
            failed: acc.outcomes.failed_sessions(),
            late: acc.outcomes.late(),
            thresholds_ok,
        });
        if out.stop_requested() || running.live < plan.shards as usize {
            break;
        }
    }
    running.stop(&mut [&mut total]);
    let facts =
        RunFacts { duration: started.elapsed(), cpes: cpes as u64, shards: plan.shards as u32, multiplier: plan.periodic.multiplier };
    let mut outcome = super::finish(total, facts, out, &running.panics)?;
    outcome.panics = std::mem::take(&mut running.panics);
    // The knee: the last step where the ACS kept up (≥ 99 % of offered, thresholds held).
    let knee = steps.iter().rposition(|s| s.achieved_per_second >= 0.99 * s.offered_per_second && s.thresholds_ok && s.failed == 0);
    let json = json!({
        "schema": "cpe-sim/sweep/v1",
        "cpes": cpes,
        "step_duration_s": step.as_secs_f64(),
        "steps": steps.iter().map(|s| json!({
            "multiplier": s.multiplier,
            "offered_per_second": (s.offered_per_second * 10.0).round() / 10.0,
            "achieved_per_second": (s.achieved_per_second * 10.0).round() / 10.0,
            "inform_p50_us": s.inform_p50_us,
            "inform_p99_us": s.inform_p99_us,
            "failed": s.failed,
            "late": s.late,
            "thresholds_ok": s.thresholds_ok,
        })).collect::<Vec<_>>(),
        "knee": knee.map(|i| json!({"step": i, "multiplier": steps[i].multiplier, "offered_per_second": steps[i].offered_per_second})),
    });
    Ok(Sweep { steps, knee, json, outcome })
}

/// A sweep's result: the steps, the knee (an index into them), the table as JSON, and the
/// outcome over all steps (totals, panics; `--report-json` was written from it).
#[derive(Debug)]
pub struct Sweep {
    pub steps: Vec<SweepStep>,
    pub knee: Option<usize>,
    pub json: Value,
    pub outcome: super::FleetOutcome,
}

/// The sweep table for people.
pub fn sweep_text(steps: &[SweepStep], knee: Option<usize>) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>10} {:>12} {:>12} {:>10} {:>10} {:>8} {:>8}  ",
        "multiplier", "offered/s", "achieved/s", "p50", "p99", "failed", "late"
    );
    for (i, st) in steps.iter().enumerate() {
        let _ = writeln!(
            s,
            "{:>10} {:>12.1} {:>12.1} {:>9.1}ms {:>9.1}ms {:>8} {:>8}  {}",
            st.multiplier,
            st.offered_per_second,
            st.achieved_per_second,
            st.inform_p50_us as f64 / 1000.0,
            st.inform_p99_us as f64 / 1000.0,
            st.failed,
            st.late,
            if Some(i) == knee { "<- knee: the last step the ACS kept up with" } else { "" }
        );
    }
    if knee.is_none() {
        let _ = writeln!(s, "no step kept up (achieved ≥ 99% of offered with no failures and thresholds held)");
    }
    s
}
