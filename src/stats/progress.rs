//! The live progress line on stderr, one per `--progress-interval`:
//!
//! ```text
//! [  12.0s] run | booted 1000 of 1000 | 200.0 sessions/s | in flight 12 of 1024 | failed 3 (timeout 2, http_status 1) | late 0 | Inform p50 1.2ms p99 3.4ms | bottleneck none
//! ```
//!
//! Times use the reports' style throughout ([`fmt_us`]: `850µs`, `12.3ms`, `1.25s`); rates are
//! per second of the interval, counts are run totals. The bottleneck is the report's
//! `limited_by` over the interval (`connections`, `simulator_cpu`, `acs` or `none`). The engine
//! builds a [`Progress`] at each tick; this module only words it.

use std::time::Duration;

use super::report::{fmt_us, limited_by, RunFacts};
use super::{m, Cause, Recorder};

/// What one progress line shows.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Since the run started.
    pub elapsed: Duration,
    /// The current phase's name.
    pub phase: &'a str,
    pub cpes: u64,
    /// The interval since the last line, and how long it was.
    pub interval: &'a Recorder,
    pub over: Duration,
    /// The run so far.
    pub total: &'a Recorder,
    /// Sessions open now, and the most that may be (`--max-connections`, as the shards split it).
    pub in_flight: usize,
    pub cap: usize,
    pub shards: u32,
}

/// Words one progress line.
pub fn line(p: &Progress<'_>) -> String {
    let inform = &p.interval.service[m::INFORM];
    let q = |x: f64| if inform.is_empty() { "-".to_string() } else { fmt_us(inform.value_at_quantile(x)) };
    let o = &p.total.outcomes;
    let causes: Vec<String> = o
        .top_causes(Cause::ALL.len())
        .into_iter()
        .filter(|(c, _)| *c != Cause::Late)
        .take(2)
        .map(|(c, n)| format!("{} {n}", c.name()))
        .collect();
    let failed = match causes.is_empty() {
        true => format!("failed {}", o.failed_sessions()),
        false => format!("failed {} ({})", o.failed_sessions(), causes.join(", ")),
    };
    let facts = RunFacts { duration: p.over, shards: p.shards, ..RunFacts::default() };
    let (bottleneck, _) = limited_by(p.interval, &facts);
    format!(
        "[{:>6.1}s] {} | booted {} of {} | {:.1} sessions/s | in flight {} of {} | {failed} | late {} | Inform p50 {} p99 {} | bottleneck {bottleneck}",
        p.elapsed.as_secs_f64(),
        p.phase,
        o.booted().min(p.cpes),
        p.cpes,
        p.interval.outcomes.completed as f64 / p.over.as_secs_f64().max(1e-3),
        p.in_flight,
        p.cap,
        o.late(),
        q(0.5),
        q(0.99),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_phase_boot_rate_cap_causes_and_bottleneck() {
        let mut interval = Recorder::new();
        interval.outcomes.completed = 50;
        interval.record(m::INFORM, Duration::from_micros(1_200));
        let mut total = interval.clone();
        total.outcomes.count_session(0b11, 0, true);
        total.outcomes.count(Cause::Timeout);
        total.outcomes.count(Cause::Timeout);
        total.outcomes.count_status(503);
        total.outcomes.count(Cause::Late);
        let l = line(&Progress {
            elapsed: Duration::from_secs(12),
            phase: "step 2 ×0.5",
            cpes: 1000,
            interval: &interval,
            over: Duration::from_secs(5),
            total: &total,
            in_flight: 12,
            cap: 1024,
            shards: 2,
        });
        assert!(l.starts_with("[  12.0s] step 2 ×0.5 | booted 1 of 1000 | 10.0 sessions/s | in flight 12 of 1024 |"), "{l}");
        assert!(l.contains("| failed 3 (timeout 2, http_status 1) | late 1 | Inform p50 1.2ms p99 1.2ms | bottleneck none"), "{l}");
    }
}
