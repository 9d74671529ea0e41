//! Running a fleet: shards started per core, the live progress line, the HdrHistogram interval
//! log, the final report, thresholds, and multiplier sweeps.
//!
//! The main thread only merges what shards send once per report interval (recorders travel both
//! ways, so nothing is allocated per interval once warm) and decides when to stop: at the end of
//! `--duration`, or on SIGINT/SIGTERM, after which shards finish their open sessions and send a
//! last report.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::shard::{self, Control, FleetPlan, ShardReport};
use crate::stats::interval::HdrLog;
use crate::stats::report::{self, ProcessFigures, RunFacts};
use crate::stats::threshold::{Breach, Threshold};
use crate::stats::{m, Recorder};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Makes SIGINT and SIGTERM request a graceful stop (a second one is not special).
pub fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Whether a stop was requested by a signal.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Raises the open-files limit to its hard maximum (a fleet needs a socket per in-flight session).
pub fn raise_nofile_limit() -> Option<u64> {
    // SAFETY: getrlimit/setrlimit write/read the struct we own.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
        Some(lim.rlim_cur as u64)
    }
}

/// Output options of a run.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub progress_every: Duration,
    pub report_json: Option<PathBuf>,
    pub hdr_log: Option<PathBuf>,
    pub thresholds: Vec<Threshold>,
    /// Print the progress line (off in tests).
    pub progress: bool,
    /// A copy of the running totals, refreshed at each progress tick (the API's `/metrics`).
    pub live: Option<Arc<std::sync::Mutex<Recorder>>>,
}

/// The outcome of a run or a sweep step.
#[derive(Debug)]
pub struct FleetOutcome {
    pub total: Recorder,
    pub facts: RunFacts,
    pub json: Value,
    pub breaches: Vec<Breach>,
}

/// A running fleet: its shards and the channels to them.
struct Running {
    control: watch::Sender<Control>,
    reports: mpsc::Receiver<ShardReport>,
    spares: Vec<mpsc::Sender<Recorder>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    in_flight: Vec<usize>,
    live: usize,
    started: Instant,
    /// Shards that have scheduled their CPEs, and how many CPEs that was.
    scheduled: (usize, u64),
}

impl Running {
    fn start(plan: Arc<FleetPlan>, mut cr: Vec<tokio::sync::mpsc::UnboundedReceiver<crate::connreq::CpeMsg>>) -> std::io::Result<Running> {
        cr.reverse();
        let (control, control_rx) = watch::channel(Control { stop: false, multiplier: plan.periodic.multiplier });
        let (tx, reports) = mpsc::channel();
        let mut spares = Vec::new();
        let mut threads = Vec::new();
        for id in 0..plan.shards {
            let (spare_tx, spare_rx) = mpsc::channel();
            spares.push(spare_tx);
            threads.push(shard::spawn(plan.clone(), id, tx.clone(), spare_rx, control_rx.clone(), cr.pop())?);
        }
        let n = plan.shards as usize;
        Ok(Running { control, reports, spares, threads, in_flight: vec![0; n], live: n, started: Instant::now(), scheduled: (0, 0) })
    }

    /// Collects reports until `until` (or until every shard has stopped), merging into `into`.
    fn collect(&mut self, until: Instant, into: &mut [&mut Recorder]) {
        while self.live > 0 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.reports.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(r) => {
                    if let Some(n) = r.scheduled {
                        self.scheduled.0 += 1;
                        self.scheduled.1 += n as u64;
                        if self.scheduled.0 == self.in_flight.len() {
                            tracing::info!(
                                cpes = self.scheduled.1,
                                "scheduled every CPE in {:.0} ms",
                                self.started.elapsed().as_secs_f64() * 1000.0
                            );
                        }
                        continue;
                    }
                    for acc in into.iter_mut() {
                        acc.add(&r.recorder);
                    }
                    self.in_flight[r.shard as usize] = r.in_flight;
                    if r.last {
                        self.live -= 1;
                    } else {
                        let mut back = r.recorder;
                        back.reset();
                        let _ = self.spares[r.shard as usize].send(back);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if stop_requested() {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.live = 0;
                    return;
                }
            }
        }
    }

    fn stop(mut self, into: &mut [&mut Recorder]) {
        let m = self.control.borrow().multiplier;
        let _ = self.control.send(Control { stop: true, multiplier: m });
        // Open sessions finish within the transport timeout; bound the wait anyway.
        self.collect(Instant::now() + Duration::from_secs(120), into);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn progress_line(elapsed: Duration, cpes: u32, interval: &Recorder, over: Duration, total: &Recorder, in_flight: usize) -> String {
    let inform = &interval.service[m::INFORM];
    let q = |p: f64| if inform.is_empty() { "-".to_string() } else { format!("{:.1}ms", inform.value_at_quantile(p) as f64 / 1000.0) };
    format!(
        "[{:>6.1}s] cpes {} | sessions {} ({:.1}/s) | in flight {} | failed {} | late {} | Inform p50 {} p99 {}",
        elapsed.as_secs_f64(),
        cpes,
        total.outcomes.completed,
        interval.outcomes.completed as f64 / over.as_secs_f64().max(1e-3),
        in_flight,
        total.outcomes.failed_sessions(),
        total.outcomes.late(),
        q(0.5),
        q(0.99)
    )
}

/// Runs `plan` for `duration` (or until a signal), reporting as `out` says. `cr` holds one
/// Connection Request receiver per shard, or nothing without a listener.
///
/// # Errors
/// Shard threads that cannot start, or an output file that cannot be written.
pub fn run(
    plan: FleetPlan,
    duration: Option<Duration>,
    out: &Outputs,
    cr: Vec<tokio::sync::mpsc::UnboundedReceiver<crate::connreq::CpeMsg>>,
) -> anyhow::Result<FleetOutcome> {
    let plan = Arc::new(plan);
    let started = Instant::now();
    let mut hdr = match &out.hdr_log {
        Some(p) => Some(HdrLog::create(p).map_err(|e| anyhow::anyhow!("--hdr-log {}: {e}", p.display()))?),
        None => None,
    };
    let mut running = Running::start(plan.clone(), cr)?;
    let mut total = Recorder::new();
    let mut interval = Recorder::new();
    let end = duration.map(|d| started + d);
    let mut last_tick = started;
    loop {
        let next = (last_tick + out.progress_every).min(end.unwrap_or(last_tick + out.progress_every));
        running.collect(next, &mut [&mut total, &mut interval]);
        let now = Instant::now();
        if now >= next {
            if out.progress {
                let line = progress_line(now - started, plan.cpes, &interval, now - last_tick, &total, running.in_flight.iter().sum());
                crate::console::err_line(&line);
            }
            if let Some(h) = hdr.as_mut() {
                h.write(&interval, last_tick - started, now - last_tick).map_err(|e| anyhow::anyhow!("--hdr-log: {e}"))?;
            }
            if let Some(live) = &out.live {
                let mut l = live.lock().expect("live totals");
                l.reset();
                l.add(&total);
            }
            interval.reset();
            last_tick = now;
        }
        if stop_requested() || end.is_some_and(|e| now >= e) || running.live == 0 {
            break;
        }
    }
    running.stop(&mut [&mut total, &mut interval]);
    if let Some(h) = hdr.as_mut() {
        h.write(&interval, last_tick - started, started.elapsed().saturating_sub(last_tick - started))
            .map_err(|e| anyhow::anyhow!("--hdr-log: {e}"))?;
    }
    let facts =
        RunFacts { duration: started.elapsed(), cpes: plan.cpes as u64, shards: plan.shards as u32, multiplier: plan.periodic.multiplier };
    finish(total, facts, out)
}

fn finish(total: Recorder, facts: RunFacts, out: &Outputs) -> anyhow::Result<FleetOutcome> {
    let process = ProcessFigures::now();
    let json = report::to_json(&total, &facts, &process);
    let breaches: Vec<Breach> = out.thresholds.iter().filter_map(|t| t.check(&json)).collect();
    let mut json = json;
    json["thresholds"] = json!(out
        .thresholds
        .iter()
        .map(|t| json!({"rule": t.text, "passed": !breaches.iter().any(|b| b.rule == t.text)}))
        .collect::<Vec<_>>());
    if let Some(p) = &out.report_json {
        std::fs::write(p, serde_json::to_vec_pretty(&json)?).map_err(|e| anyhow::anyhow!("--report-json {}: {e}", p.display()))?;
    }
    Ok(FleetOutcome { total, facts, json, breaches })
}

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
/// `period` is the PeriodicInformInterval the offered rate is computed from.
///
/// # Errors
/// Shard threads that cannot start.
pub fn sweep(
    plan: FleetPlan,
    multipliers: &[f64],
    step: Duration,
    period: Duration,
    out: &Outputs,
) -> anyhow::Result<(Vec<SweepStep>, Option<usize>, Value)> {
    let cpes = plan.cpes;
    let plan = Arc::new(plan);
    let mut running = Running::start(plan.clone(), Vec::new())?;
    let mut total = Recorder::new();
    let mut steps = Vec::new();
    for &mult in multipliers {
        let _ = running.control.send(Control { stop: false, multiplier: mult });
        let mut acc = Recorder::new();
        let begin = Instant::now();
        let end = begin + step;
        while Instant::now() < end && !stop_requested() {
            running.collect((Instant::now() + out.progress_every).min(end), &mut [&mut total, &mut acc]);
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
            offered_per_second: cpes as f64 / (period.as_secs_f64() * mult).max(1e-9),
            achieved_per_second: acc.outcomes.completed as f64 / secs.max(1e-9),
            inform_p50_us: if inform.is_empty() { 0 } else { inform.value_at_quantile(0.5) },
            inform_p99_us: if inform.is_empty() { 0 } else { inform.value_at_quantile(0.99) },
            failed: acc.outcomes.failed_sessions(),
            late: acc.outcomes.late(),
            thresholds_ok,
        });
        if stop_requested() {
            break;
        }
    }
    running.stop(&mut [&mut total]);
    // The knee: the last step where the ACS kept up (≥ 99 % of offered, thresholds held).
    let knee = steps.iter().rposition(|s| s.achieved_per_second >= 0.99 * s.offered_per_second && s.thresholds_ok && s.failed == 0);
    let json = json!({
        "schema": "cpe-sim/sweep/v1",
        "cpes": cpes,
        "step_duration_s": step.as_secs_f64(),
        "period_s": period.as_secs_f64(),
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
    Ok((steps, knee, json))
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
