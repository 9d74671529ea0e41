//! What each progress tick of a run or a sweep updates, in one place: the [`Timeline`] (phases
//! and the time series of the HTML report), the progress line, the `/metrics` text, the
//! `--api-bind-addr` running totals and the interval log (`--hdr-log`).
//!
//! Used by [`super::run`] and [`super::sweep::sweep`] on the main thread; shards never see it.

use std::time::{Duration, Instant};

use super::{Outputs, Plan};
use crate::stats::interval::HdrLog;
use crate::stats::progress::{self, Progress};
use crate::stats::report::RunFacts;
use crate::stats::run_id::RunId;
use crate::stats::timeline::Timeline;
use crate::stats::{exposition, Recorder};

/// The per-tick outputs of one run.
pub(crate) struct Ticks<'o> {
    out: &'o Outputs,
    pub(crate) timeline: Timeline,
    pub(crate) facts: RunFacts,
    hdr: Option<HdrLog>,
    /// Most sessions in flight at once (the shards' shares of `--max-connections`).
    cap: usize,
    pub(crate) started: Instant,
    last_tick: Instant,
    /// Sessions shown by the last progress line (the final line is printed only if it says more).
    shown: u64,
    /// Output files that failed after the start (the run goes on).
    pub(crate) output_errors: Vec<String>,
}

impl<'o> Ticks<'o> {
    /// Opens the interval log (its header names the run) and starts the timeline.
    ///
    /// # Errors
    /// `--hdr-log` cannot be created.
    pub(crate) fn start(plan: &Plan, out: &'o Outputs) -> anyhow::Result<Ticks<'o>> {
        let run_id = out.run_id.unwrap_or_else(RunId::fresh);
        let facts = RunFacts {
            run_id,
            duration: Duration::ZERO,
            cpes: plan.cpes as u64,
            first_index: plan.first_index,
            shards: plan.shards as u32,
            multiplier: crate::stats::report::Multiplier::Same(plan.periodic.multiplier),
        };
        let hdr = match &out.hdr_log {
            Some(p) => Some(HdrLog::create(p, &facts).map_err(|e| anyhow::anyhow!("--hdr-log {}: {e}", p.display()))?),
            None => None,
        };
        // The report's endpoint labels: a scenario's ACS URLs, or the run's one.
        let endpoints = (0..plan.routes.endpoint_count().max(1))
            .map(|i| crate::transport::without_userinfo(plan.endpoint_url(i)).into_owned())
            .collect();
        let now = Instant::now();
        Ok(Ticks {
            out,
            timeline: Timeline::new(run_id, plan.cpes as u64, endpoints),
            facts,
            hdr,
            cap: plan.max_in_flight.saturating_mul(plan.shards as usize),
            started: now,
            last_tick: now,
            shown: 0,
            output_errors: Vec::new(),
        })
    }

    /// When the next tick is due.
    pub(crate) fn next_at(&self) -> Instant {
        self.last_tick + self.out.progress_every.max(super::MIN_TICK)
    }

    /// Starts a phase now.
    pub(crate) fn begin_phase(&mut self, name: impl Into<String>) {
        self.timeline.begin_phase(name, self.started.elapsed());
    }

    /// One tick at `now`: `interval` is what came in since the last one (reset here), `total` the
    /// run so far, `in_flight` the sessions open now.
    pub(crate) fn tick(&mut self, interval: &mut Recorder, total: &Recorder, in_flight: usize, now: Instant) {
        let (at, span) = (now.saturating_duration_since(self.started), now.saturating_duration_since(self.last_tick));
        self.timeline.record(interval, at, span, in_flight);
        if self.out.progress {
            let line = progress::line(&Progress {
                elapsed: at,
                phase: self.timeline.phase(),
                cpes: self.facts.cpes,
                interval,
                over: span,
                total,
                in_flight,
                cap: self.cap,
                shards: self.facts.shards,
            });
            crate::console::err_line(&line);
            self.shown = total.outcomes.completed + total.outcomes.failed_sessions();
        }
        self.write_hdr(interval, span);
        if let Some(m) = &self.out.metrics {
            let text = exposition::render(&self.timeline, in_flight, self.cap);
            *m.lock().unwrap_or_else(|e| e.into_inner()) = text;
        }
        if let Some(live) = &self.out.live {
            let mut l = live.lock().unwrap_or_else(|e| e.into_inner());
            l.reset();
            l.add(total);
        }
        interval.reset();
        self.last_tick = now;
    }

    fn write_hdr(&mut self, interval: &Recorder, span: Duration) {
        let start = self.last_tick.saturating_duration_since(self.started);
        if let Some(h) = self.hdr.as_mut() {
            if let Err(e) = h.write(interval, start, span) {
                tracing::error!("--hdr-log: {e}; the interval log stops here, the run goes on");
                self.output_errors.push(format!("--hdr-log: {e}"));
                self.hdr = None;
            }
        }
    }

    /// The last tick after the stop: what came in since the last tick goes into the timeline and
    /// the log, and the last progress line (phase `whole run`: rates over the whole run, so it
    /// agrees with the report) is printed if it says more than the one before. Returns the run's
    /// facts.
    pub(crate) fn last(&mut self, interval: &mut Recorder, total: &Recorder) -> RunFacts {
        let now = Instant::now();
        let (at, span) = (now.saturating_duration_since(self.started), now.saturating_duration_since(self.last_tick));
        match span < self.out.progress_every / 2 {
            true => self.timeline.record_tail(interval, at, span, 0),
            false => self.timeline.record(interval, at, span, 0),
        }
        self.write_hdr(interval, span);
        if self.out.progress && total.outcomes.completed + total.outcomes.failed_sessions() != self.shown {
            let line = progress::line(&Progress {
                elapsed: at,
                phase: "whole run",
                cpes: self.facts.cpes,
                interval: total,
                over: at,
                total,
                in_flight: 0,
                cap: self.cap,
                shards: self.facts.shards,
            });
            crate::console::err_line(&line);
        }
        if let Some(m) = &self.out.metrics {
            *m.lock().unwrap_or_else(|e| e.into_inner()) = exposition::render(&self.timeline, 0, self.cap);
        }
        interval.reset();
        self.last_tick = now;
        RunFacts { duration: at, ..self.facts }
    }
}
