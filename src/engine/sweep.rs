//! Interval-multiplier sweeps: a warm-up (the boot storm, until every CPE's boot session ended,
//! measured apart), then one step per multiplier on the same live fleet (every periodic Inform re-planned
//! at each step), a table of offered vs achieved rates with each step's failures by cause,
//! scheduler lag and what limited it, and the knee: the last step the ACS kept up with, and
//! whether the ACS or the simulator (scheduler lag, the connection cap) gave out after it.
//!
//! Each step is a phase of the run's timeline (`warm-up`, `step 1 ×1`, `step 2 ×0.5`, …), so the
//! progress line, `/metrics` and the HTML report carry the step's multiplier.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::{Boot, Control, Outputs, Plan, Running};
use crate::cwmp::rpc::inform::EventCode;
use crate::stats::report::{self, fmt_us, ProcessFigures, RunFacts};
use crate::stats::{m, Cause, Recorder};

/// How long the warm-up may outlast the boot spread (or the time `--boot-rate` needs) at least:
/// a bootstrap with the ACS's provisioning takes seconds, and more on a busy machine.
const WARM_UP_MARGIN: Duration = Duration::from_secs(30);

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
    /// Failed sessions by cause (late Informs are in `late`), most first.
    pub failures: Vec<(Cause, u64)>,
    /// The simulator's own lateness in the step, p99, µs.
    pub scheduler_lag_p99_us: u64,
    /// What limited the step (`connections`, `simulator_cpu`, `acs`, `none`) and why, as the
    /// report's `limited_by` says it.
    pub limited_by: (&'static str, String),
    pub thresholds_ok: bool,
}

impl SweepStep {
    fn kept_up(&self) -> bool {
        self.achieved_per_second >= 0.99 * self.offered_per_second && self.thresholds_ok && self.failed == 0
    }
}

/// How the warm-up went: how long it took and how many CPEs booted in it.
#[derive(Debug, Clone, Copy)]
pub struct WarmUp {
    pub duration: Duration,
    pub booted: u64,
}

/// The knee's verdict for people: which step was the last that kept up, and who gave out after it.
pub fn verdict(steps: &[SweepStep], knee: Option<usize>) -> String {
    let after = match knee {
        Some(k) => steps.get(k + 1),
        None => steps.first(),
    };
    let Some(next) = after else {
        let short = steps.iter().enumerate().find(|(_, s)| !s.kept_up());
        return match (knee, short) {
            (Some(_), None) => "every step kept up: the ACS was not pushed to its limit; sweep smaller multipliers".into(),
            (Some(k), Some((i, s))) => format!(
                "the last step (×{}) kept up, so the ACS was not pushed to its limit; step {} (×{}) fell short before it (limited by {}: {}); sweep smaller multipliers",
                steps[k].multiplier,
                i + 1,
                s.multiplier,
                s.limited_by.0,
                s.limited_by.1
            ),
            (None, _) => "no step ran".into(),
        };
    };
    let (what, why) = &next.limited_by;
    let who = match *what {
        "connections" => "the simulator gave out first (its connection cap, --max-connections)",
        "simulator_cpu" => "the simulator gave out first (scheduler lag: it could not keep its own schedule)",
        _ => "the ACS gave out first",
    };
    let at = match knee {
        Some(k) => format!("knee at step {} (×{}); at step {} (×{})", k + 1, steps[k].multiplier, k + 2, next.multiplier),
        None => format!("no step kept up; at step 1 (×{})", next.multiplier),
    };
    format!("{at} {who}: {why}")
}

/// Runs a warm-up, then one step per multiplier on the same fleet, re-scheduled each step.
///
/// The warm-up lasts until every CPE's boot session (`1 BOOT`) has ended, or at most the boot
/// spread (or the time `--boot-rate` needs) plus one step or 30 s, whichever is longer, and is
/// not part of step 1. The
/// offered rate of a step is the periodic Informs that came due in it (whatever interval the
/// ACS gave the CPEs), per second. `owners` are the listeners' channels, one per shard (or
/// none). The outcome over the whole sweep (totals, panics, `--report-json`, `--report-html`)
/// comes back with the table.
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
    if let Some(first) = multipliers.first() {
        plan.periodic.multiplier = *first;
    }
    plan.publish_acs_settings();
    let plan = Arc::new(plan);
    let mut ticks = super::ticks::Ticks::start(&plan, out)?;
    let mut running = Running::start(plan.clone(), owners)?;
    let mut total = Recorder::new();
    let mut interval = Recorder::new();
    let stop = || out.stop_requested();
    // Runs until `end` or `done`, ticking; returns what came in.
    let phase = |ticks: &mut super::ticks::Ticks<'_>,
                 running: &mut Running,
                 total: &mut Recorder,
                 interval: &mut Recorder,
                 end: Instant,
                 done: &dyn Fn(&Recorder) -> bool| {
        let mut acc = Recorder::new();
        while Instant::now() < end && !stop() && running.live > 0 && !done(total) {
            let next = ticks.next_at().min(end);
            running.collect(next.min(Instant::now() + Duration::from_millis(100)), &mut [&mut *total, &mut acc, &mut *interval], &stop);
            let now = Instant::now();
            if now >= ticks.next_at() || now >= end || done(total) {
                ticks.tick(interval, total, running.in_flight.iter().sum(), now);
            }
        }
        acc
    };
    // The warm-up: the boot storm, measured apart from the steps.
    let boot_takes = match plan.boot {
        Boot::Spread(d) => d,
        Boot::Rate(r) => Duration::from_secs_f64((cpes as f64 / r).min(1e7)),
    };
    ticks.begin_phase("warm-up");
    let begin = Instant::now();
    // Every CPE's boot session ended once (completed, or failed and now in its back-off).
    let boot_ended = |t: &Recorder| {
        let b = t.outcomes.by_event[EventCode::Boot as usize];
        b.completed >= cpes as u64 || b.completed + b.failed >= cpes as u64
    };
    let warm = phase(&mut ticks, &mut running, &mut total, &mut interval, begin + boot_takes + step.max(WARM_UP_MARGIN), &boot_ended);
    let warm_up = WarmUp { duration: begin.elapsed(), booted: warm.outcomes.booted().min(cpes as u64) };
    if warm_up.booted < cpes as u64 {
        tracing::warn!(booted = warm_up.booted, cpes, "the warm-up ended before every CPE booted; the steps start anyway");
    }
    let mut steps: Vec<SweepStep> = Vec::new();
    for (i, &mult) in multipliers.iter().enumerate() {
        if stop() || running.live < plan.shards as usize {
            break;
        }
        let _ = running.control.send(Control { stop: false, multiplier: mult });
        ticks.begin_phase(format!("step {} ×{mult}", i + 1));
        let begin = Instant::now();
        let acc = phase(&mut ticks, &mut running, &mut total, &mut interval, begin + step, &|_: &Recorder| false);
        let secs = begin.elapsed().as_secs_f64();
        let facts = RunFacts { duration: begin.elapsed(), multiplier: crate::stats::report::Multiplier::Same(mult), ..ticks.facts };
        let step_json = report::to_json(&acc, &facts, &ProcessFigures::now());
        let inform = &acc.service[m::INFORM];
        let q = |h: &hdrhistogram::Histogram<u64>, p: f64| if h.is_empty() { 0 } else { h.value_at_quantile(p) };
        let (what, why) = report::limited_by(&acc, &facts);
        steps.push(SweepStep {
            multiplier: mult,
            offered_per_second: acc.outcomes.periodic_due as f64 / secs.max(1e-9),
            achieved_per_second: acc.outcomes.completed as f64 / secs.max(1e-9),
            inform_p50_us: q(inform, 0.5),
            inform_p99_us: q(inform, 0.99),
            failed: acc.outcomes.failed_sessions(),
            late: acc.outcomes.late(),
            failures: acc.outcomes.top_causes(Cause::ALL.len()).into_iter().filter(|(c, _)| *c != Cause::Late).collect(),
            scheduler_lag_p99_us: q(&acc.lag, 0.99),
            limited_by: (what, why),
            // A rule with no data in this step (nothing offered, nothing timed) does not make the
            // step fall short; the whole run's verdict still breaches a rule that never had data.
            thresholds_ok: out.thresholds.iter().all(|t| {
                let v = t.evaluate(&step_json);
                v.passed || v.actual.is_none()
            }),
        });
    }
    running.stop(&mut [&mut total, &mut interval]);
    let facts = ticks.last(&mut interval, &total);
    // The knee: the last step where the ACS kept up (≥ 99 % of offered, no failures, thresholds held).
    let knee = steps.iter().rposition(SweepStep::kept_up);
    let mut json = sweep_json(cpes, step, warm_up, &steps, knee);
    json["run_id"] = json!(facts.run_id.to_string());
    let mut outcome = super::finish(total, facts, out, &running.panics, &ticks.timeline, Some(&json))?;
    outcome.panics = std::mem::take(&mut running.panics);
    let mut errors = std::mem::take(&mut ticks.output_errors);
    errors.append(&mut outcome.output_errors);
    outcome.output_errors = errors;
    Ok(Sweep { steps, knee, warm_up, json, outcome })
}

fn sweep_json(cpes: u32, step: Duration, warm_up: WarmUp, steps: &[SweepStep], knee: Option<usize>) -> Value {
    json!({
        "schema": "cpe-sim/sweep/v2",
        "cpes": cpes,
        "step_duration_s": step.as_secs_f64(),
        "warm_up": {"duration_s": (warm_up.duration.as_secs_f64() * 1000.0).round() / 1000.0, "booted": warm_up.booted},
        "steps": steps.iter().map(|s| json!({
            "multiplier": s.multiplier,
            "offered_per_second": (s.offered_per_second * 10.0).round() / 10.0,
            "achieved_per_second": (s.achieved_per_second * 10.0).round() / 10.0,
            "inform_p50_us": s.inform_p50_us,
            "inform_p99_us": s.inform_p99_us,
            "failed": s.failed,
            "failures": Value::Object(s.failures.iter().map(|(c, n)| (c.name().to_string(), json!(n))).collect::<Map<_, _>>()),
            "late": s.late,
            "scheduler_lag_p99_us": s.scheduler_lag_p99_us,
            "limited_by": s.limited_by.0,
            "limited_by_why": s.limited_by.1,
            "thresholds_ok": s.thresholds_ok,
        })).collect::<Vec<_>>(),
        "knee": knee.map(|i| json!({"step": i, "multiplier": steps[i].multiplier, "offered_per_second": steps[i].offered_per_second})),
        "verdict": verdict(steps, knee),
    })
}

/// A sweep's result: the warm-up, the steps, the knee (an index into them), the table as JSON,
/// and the outcome over the whole sweep (totals, panics; `--report-json` was written from it).
#[derive(Debug)]
pub struct Sweep {
    pub steps: Vec<SweepStep>,
    pub knee: Option<usize>,
    pub warm_up: WarmUp,
    pub json: Value,
    pub outcome: super::FleetOutcome,
}

/// The sweep table for people: the warm-up, one line per step (its multiplier, rates, Inform
/// latency, failures by cause, late Informs, scheduler lag, what limited it), the knee's verdict.
pub fn sweep_text(sweep: &Sweep) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "sweep of run {}", sweep.outcome.facts.run_id);
    let _ = writeln!(
        s,
        "warm-up: {} of {} CPEs booted in {:.1}s (the boot storm; not part of step 1)",
        sweep.warm_up.booted,
        sweep.json["cpes"],
        sweep.warm_up.duration.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "{:>4} {:>10} {:>10} {:>10} {:>9} {:>9} {:>7} {:>6} {:>9} {:>13}  failures by cause",
        "step", "multiplier", "offered/s", "achieved/s", "p50", "p99", "failed", "late", "lag p99", "limited by"
    );
    for (i, st) in sweep.steps.iter().enumerate() {
        let causes: Vec<String> = st.failures.iter().map(|(c, n)| format!("{} {n}", c.name())).collect();
        let _ = writeln!(
            s,
            "{:>4} {:>10} {:>10.1} {:>10.1} {:>9} {:>9} {:>7} {:>6} {:>9} {:>13}  {}{}",
            i + 1,
            format!("×{}", st.multiplier),
            st.offered_per_second,
            st.achieved_per_second,
            fmt_us(st.inform_p50_us),
            fmt_us(st.inform_p99_us),
            st.failed,
            st.late,
            fmt_us(st.scheduler_lag_p99_us),
            st.limited_by.0,
            if causes.is_empty() { "-".to_string() } else { causes.join(", ") },
            if Some(i) == sweep.knee { "  <- knee: the last step the ACS kept up with" } else { "" }
        );
    }
    if sweep.knee.is_none() {
        let _ = writeln!(s, "no step kept up (achieved ≥ 99% of offered with no failures and thresholds held)");
    }
    let _ = writeln!(s, "{}", verdict(&sweep.steps, sweep.knee));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(multiplier: f64, offered: f64, achieved: f64, limited: &'static str) -> SweepStep {
        SweepStep {
            multiplier,
            offered_per_second: offered,
            achieved_per_second: achieved,
            inform_p50_us: 1_000,
            inform_p99_us: 2_000,
            failed: 0,
            late: 0,
            failures: Vec::new(),
            scheduler_lag_p99_us: 100,
            limited_by: (limited, format!("why {limited}")),
            thresholds_ok: true,
        }
    }

    #[test]
    fn the_verdict_says_who_gave_out_first() {
        let steps = vec![step(1.0, 100.0, 100.0, "none"), step(0.5, 200.0, 150.0, "acs")];
        let knee = steps.iter().rposition(SweepStep::kept_up);
        assert_eq!(knee, Some(0));
        assert_eq!(verdict(&steps, knee), "knee at step 1 (×1); at step 2 (×0.5) the ACS gave out first: why acs");
        let steps = vec![step(1.0, 100.0, 100.0, "none"), step(0.5, 200.0, 120.0, "simulator_cpu")];
        assert!(verdict(&steps, Some(0)).contains("the simulator gave out first (scheduler lag"), "{}", verdict(&steps, Some(0)));
        let steps = vec![step(1.0, 100.0, 60.0, "connections")];
        assert!(verdict(&steps, None).starts_with("no step kept up; at step 1 (×1) the simulator gave out first (its connection cap"));
        let steps = vec![step(1.0, 100.0, 100.0, "none")];
        assert!(verdict(&steps, Some(0)).starts_with("every step kept up"));
        let steps = vec![step(1.0, 100.0, 90.0, "simulator_cpu"), step(0.5, 200.0, 200.0, "none")];
        assert_eq!(steps.iter().rposition(SweepStep::kept_up), Some(1));
        assert!(
            verdict(&steps, Some(1)).starts_with("the last step (×0.5) kept up, so the ACS was not pushed to its limit; step 1 (×1) fell short before it (limited by simulator_cpu"),
            "{}",
            verdict(&steps, Some(1))
        );
    }
}
