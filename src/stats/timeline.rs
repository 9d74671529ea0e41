//! A run's story over time: its named phases (each with its own totals) and a bounded time
//! series of what each progress tick saw (sessions/s, sessions in flight, latency percentiles
//! per RPC, failures by cause, scheduler lag). The HTML report plots it, `/metrics` labels by its
//! phase, and the progress line names the phase.
//!
//! Owned by the engine's main thread, fed once per progress tick from the merged interval
//! recorder ([`Timeline::record`]); no shard touches it. The series is bounded: past
//! [`MAX_SAMPLES`] points, neighbours are merged pairwise (counts summed, rates weighted by
//! time, percentiles and in-flight the higher of the two), so a 10-minute or a 10-day run keeps
//! at most that many points.
//!
//! What the engine calls: [`Timeline::new`] at start, [`Timeline::begin_phase`] when a phase
//! starts (a plain run has one phase, `run`; a sweep `warm-up` then one per step; a scenario its
//! timeline's phases), [`Timeline::record`] at each tick and once after the stop.
//!
//! Each phase keeps its own totals (a [`Recorder::sparse`]: its histograms grow only for the
//! RPCs the phase saw, from ~0.7 MB to a few MB), so the phases a run may have are bounded: a
//! scenario lists at most [`MAX_PHASES`] and a sweep steps through at most as many multipliers
//! (checked before anything starts), so a timeline holds at most `MAX_PHASES + 1` phases with
//! the first (`run` or `warm-up`).

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::report::{self, ProcessFigures, RunFacts};
use super::run_id::RunId;
use super::{Cause, Recorder, METRICS};

/// Most points the series keeps (halved by merging neighbours beyond).
pub const MAX_SAMPLES: usize = 1024;

/// Most phases a scenario may list, and most steps (`--multipliers`) a sweep may take: each
/// costs a [`Recorder`] of its own for the whole run.
pub const MAX_PHASES: usize = 256;

/// One named phase of a run and what happened in it.
#[derive(Debug, Clone)]
pub struct Phase {
    /// As shown to people: `run`, `warm-up`, `step 2 ×0.5`.
    pub name: String,
    /// When it began and ended, since the run started (`ended` is the latest tick while it runs).
    pub started: Duration,
    pub ended: Duration,
    /// Everything measured in it.
    pub totals: Recorder,
}

/// What one progress tick (or a merge of neighbouring ticks) saw.
#[derive(Debug, Clone)]
pub struct Sample {
    /// End of the interval, since the run started.
    pub at: Duration,
    /// Length of the interval.
    pub span: Duration,
    /// Index into [`Timeline::phases`].
    pub phase: usize,
    /// Sessions completed in the interval.
    pub completed: u64,
    /// Sessions in flight at its end (the higher of two merged points).
    pub in_flight: u64,
    /// Failures by cause in the interval (late Informs included, under `late`).
    pub failed: [u64; Cause::ALL.len()],
    /// Scheduler lag p99 in the interval, µs.
    pub lag_p99_us: u64,
    /// Service time p50 and p99 per metric of [`METRICS`], µs (0: none in the interval).
    pub rpc: [[u64; 2]; METRICS.len()],
}

impl Sample {
    fn merge(&mut self, o: &Sample) {
        self.at = o.at;
        self.span += o.span;
        self.completed += o.completed;
        self.in_flight = self.in_flight.max(o.in_flight);
        for (a, b) in self.failed.iter_mut().zip(o.failed.iter()) {
            *a += b;
        }
        self.lag_p99_us = self.lag_p99_us.max(o.lag_p99_us);
        for (a, b) in self.rpc.iter_mut().zip(o.rpc.iter()) {
            a[0] = a[0].max(b[0]);
            a[1] = a[1].max(b[1]);
        }
    }
}

/// A run's phases and time series.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub run_id: RunId,
    /// CPEs in the run.
    pub cpes: u64,
    /// ACS endpoint labels (URLs without userinfo), indexed as sessions' endpoint indexes are.
    pub endpoints: Vec<String>,
    pub phases: Vec<Phase>,
    samples: Vec<Sample>,
}

fn p(h: &hdrhistogram::Histogram<u64>, q: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(q)
    }
}

impl Timeline {
    /// An empty timeline; the first phase begins with the first [`Timeline::begin_phase`] (or
    /// `run` at the first [`Timeline::record`]).
    pub fn new(run_id: RunId, cpes: u64, endpoints: Vec<String>) -> Timeline {
        Timeline { run_id, cpes, endpoints, phases: Vec::new(), samples: Vec::new() }
    }

    /// Starts phase `name` at `at` (since the run started); the previous one ends there.
    pub fn begin_phase(&mut self, name: impl Into<String>, at: Duration) {
        if let Some(last) = self.phases.last_mut() {
            last.ended = at;
        }
        self.phases.push(Phase { name: name.into(), started: at, ended: at, totals: Recorder::sparse() });
    }

    /// The current phase's name (`run` before any began).
    pub fn phase(&self) -> &str {
        self.phases.last().map_or("run", |p| p.name.as_str())
    }

    /// Adds one tick: `interval` is what the shards reported in the `span` ending at `at`, with
    /// `in_flight` sessions open at its end.
    pub fn record(&mut self, interval: &Recorder, at: Duration, span: Duration, in_flight: usize) {
        if self.phases.is_empty() {
            self.begin_phase("run", at.saturating_sub(span));
        }
        let phase = self.phases.len() - 1;
        if let Some(cur) = self.phases.last_mut() {
            cur.totals.add(interval);
            cur.ended = at;
        }
        let mut rpc = [[0u64; 2]; METRICS.len()];
        for (slot, h) in rpc.iter_mut().zip(&interval.service) {
            *slot = [p(h, 0.5), p(h, 0.99)];
        }
        self.samples.push(Sample {
            at,
            span,
            phase,
            completed: interval.outcomes.completed,
            in_flight: in_flight as u64,
            failed: interval.outcomes.failed,
            lag_p99_us: p(&interval.lag, 0.99),
            rpc,
        });
        if self.samples.len() > MAX_SAMPLES {
            self.halve();
        }
    }

    /// Like [`Timeline::record`], for the last sliver of a run (shorter than a tick): merged into
    /// the point before it when that is of the same phase, so it shows as neither a spike nor a
    /// dip in the rates.
    pub fn record_tail(&mut self, interval: &Recorder, at: Duration, span: Duration, in_flight: usize) {
        self.record(interval, at, span, in_flight);
        let n = self.samples.len();
        if n >= 2 && self.samples[n - 2].phase == self.samples[n - 1].phase {
            if let Some(last) = self.samples.pop() {
                if let Some(before) = self.samples.last_mut() {
                    before.merge(&last);
                }
            }
        }
    }

    /// Merges neighbouring points pairwise.
    fn halve(&mut self) {
        let old = std::mem::take(&mut self.samples);
        let mut it = old.into_iter();
        while let Some(mut a) = it.next() {
            if let Some(b) = it.next() {
                a.merge(&b);
            }
            self.samples.push(a);
        }
    }

    /// The points, oldest first.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The series as columns for plotting: `t_s`, `sessions_per_s`, `in_flight`, `lag_p99_ms`,
    /// `failures.<cause>` (per second, causes that occurred), `rpc.<Name>.{p50_ms,p99_ms}` (RPCs
    /// that occurred), `phase` (index per point).
    pub fn series_json(&self) -> Value {
        let s = &self.samples;
        let secs = |x: &Sample| x.span.as_secs_f64().max(1e-3);
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        let mut failures = Map::new();
        for c in Cause::ALL {
            if s.iter().any(|x| x.failed[c as usize] > 0) {
                failures.insert(c.name().into(), json!(s.iter().map(|x| round(x.failed[c as usize] as f64 / secs(x))).collect::<Vec<_>>()));
            }
        }
        let mut rpc = Map::new();
        for (i, name) in METRICS.iter().enumerate() {
            if s.iter().any(|x| x.rpc[i][1] > 0) {
                let col =
                    |q: usize| s.iter().map(move |x| if x.rpc[i][q] == 0 { Value::Null } else { json!(round(x.rpc[i][q] as f64 / 1e3)) });
                rpc.insert((*name).into(), json!({"p50_ms": col(0).collect::<Vec<_>>(), "p99_ms": col(1).collect::<Vec<_>>()}));
            }
        }
        json!({
            "t_s": s.iter().map(|x| round(x.at.as_secs_f64())).collect::<Vec<_>>(),
            "phase": s.iter().map(|x| x.phase).collect::<Vec<_>>(),
            "sessions_per_s": s.iter().map(|x| round(x.completed as f64 / secs(x))).collect::<Vec<_>>(),
            "in_flight": s.iter().map(|x| x.in_flight).collect::<Vec<_>>(),
            "lag_p99_ms": s.iter().map(|x| round(x.lag_p99_us as f64 / 1e3)).collect::<Vec<_>>(),
            "failures": Value::Object(failures),
            "rpc": Value::Object(rpc),
        })
    }

    /// Each phase's name, bounds and report (the JSON report's schema over that phase alone).
    pub fn phases_json(&self, shards: u32, multiplier: f64) -> Value {
        json!(self
            .phases
            .iter()
            .map(|ph| {
                let facts = RunFacts {
                    run_id: self.run_id,
                    duration: ph.ended.saturating_sub(ph.started),
                    cpes: self.cpes,
                    first_index: 0,
                    shards,
                    multiplier: super::report::Multiplier::Same(multiplier),
                };
                json!({
                    "name": ph.name,
                    "start_s": ph.started.as_secs_f64(),
                    "end_s": ph.ended.as_secs_f64(),
                    "report": report::to_json(&ph.totals, &facts, &ProcessFigures::default()),
                })
            })
            .collect::<Vec<_>>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::m;

    fn tick(completed: u64, inform_ms: u64) -> Recorder {
        let mut r = Recorder::new();
        r.outcomes.completed = completed;
        r.record(m::INFORM, Duration::from_millis(inform_ms));
        r.outcomes.count(Cause::Timeout);
        r
    }

    #[test]
    fn phases_collect_their_ticks_and_the_series_stays_bounded() {
        let mut t = Timeline::new(RunId(1), 10, vec!["http://acs/".into()]);
        t.record(&tick(5, 2), Duration::from_secs(1), Duration::from_secs(1), 3);
        assert_eq!(t.phase(), "run", "a run without phases has one, `run`");
        t.begin_phase("step 1 ×0.5", Duration::from_secs(1));
        t.record(&tick(7, 9), Duration::from_secs(2), Duration::from_secs(1), 4);
        assert_eq!(t.phases.len(), 2);
        assert_eq!(t.phases[0].totals.outcomes.completed, 5);
        assert_eq!(t.phases[1].totals.outcomes.completed, 7);
        assert_eq!(t.phases[0].ended, Duration::from_secs(1));
        let j = t.series_json();
        assert_eq!(j["sessions_per_s"], json!([5.0, 7.0]));
        assert_eq!(j["phase"], json!([0, 1]));
        let mut tail = t.clone();
        tail.record_tail(&tick(1, 2), Duration::from_millis(2250), Duration::from_millis(250), 0);
        assert_eq!(tail.series_json()["sessions_per_s"], json!([5.0, 6.4]), "8 sessions over 1.25 s, one point");
        assert_eq!(j["failures"]["timeout"], json!([1.0, 1.0]));
        assert!(j["rpc"]["Inform"]["p99_ms"][1].as_f64().unwrap() >= 8.9);
        assert!(j["rpc"].get("GetParameterValues").is_none(), "only RPCs that occurred");
        for i in 0..(3 * MAX_SAMPLES) {
            t.record(&tick(1, 1 + (i % 50) as u64), Duration::from_secs(3 + i as u64), Duration::from_secs(1), i % 7);
        }
        assert!(t.samples().len() <= MAX_SAMPLES && t.samples().len() > MAX_SAMPLES / 4, "{}", t.samples().len());
        let total: u64 = t.samples().iter().map(|s| s.completed).sum();
        assert_eq!(total, 12 + 3 * MAX_SAMPLES as u64, "merging keeps every session");
        assert_eq!(t.samples().last().map(|s| s.at), Some(Duration::from_secs(2 + 3 * MAX_SAMPLES as u64)));
        assert!(t.samples().iter().all(|s| s.rpc[m::INFORM][1] >= 1_000));
        let phases = t.phases_json(1, 1.0);
        assert_eq!(phases[1]["name"], "step 1 ×0.5");
        assert_eq!(phases[0]["report"]["sessions"]["completed"], 5);
    }
}
