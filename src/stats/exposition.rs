//! The Prometheus text exposition (format 0.0.4) of a running run, served at `/metrics` by
//! `--metrics-bind-addr` and refreshed at each progress tick.
//!
//! Labels are the run id, the phase and the ACS endpoint, never a CPE: the series count stays
//! fixed however large the fleet. Counters are per phase (a phase's counts stop growing when it
//! ends), so `sum by (outcome)` gives the run's totals. Families:
//! `cpesim_run_info{run_id,phase}` (1 for the current phase), `cpesim_cpes`, `cpesim_cpes_booted`,
//! `cpesim_sessions_in_flight`, `cpesim_sessions_in_flight_limit`,
//! `cpesim_sessions_total{phase,endpoint,outcome}`, `cpesim_session_failures_total{phase,cause}`,
//! `cpesim_late_informs_total{phase}`, `cpesim_sessions_by_event_total{phase,event,outcome}`,
//! `cpesim_rpc_seconds{phase,rpc,quantile}` (summary of service time) and
//! `cpesim_scheduler_lag_seconds{phase,quantile}`.
//!
//! The format's rules (`# HELP`/`# TYPE` heads, label escaping, a histogram as a summary in
//! seconds) are [`Families`]'; a USP run's families (`mtp::report::to_exposition`) are written
//! with it too.

use std::fmt::Write;

use super::timeline::Timeline;
use super::{Cause, METRICS};
use crate::cwmp::rpc::inform::EventCode;

/// Escapes a label value (backslash, double quote, newline), as the format requires.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A family's head: its help and type lines.
fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// An exposition being written: family heads, samples, and histograms as summaries.
#[derive(Debug, Default)]
pub struct Families {
    pub out: String,
}

impl Families {
    /// Starts family `name` (`kind`: `gauge`, `counter` or `summary`) with its help line.
    pub fn head(&mut self, name: &str, kind: &str, help: &str) {
        head(&mut self.out, name, kind, help);
    }

    /// One sample: `labels` as (name, value) pairs, values escaped here.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", label(v))).collect();
            let _ = write!(self.out, "{{{}}}", l.join(","));
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A histogram of microseconds as a summary in seconds: p50, p90, p99, p99.9, `_sum` and
    /// `_count`. Nothing for an empty histogram.
    pub fn summary(&mut self, name: &str, labels: &[(&str, &str)], h: &hdrhistogram::Histogram<u64>) {
        if h.is_empty() {
            return;
        }
        for q in ["0.5", "0.9", "0.99", "0.999"] {
            let mut with = labels.to_vec();
            with.push(("quantile", q));
            self.sample(name, &with, h.value_at_quantile(q.parse().unwrap_or(0.5)) as f64 / 1e6);
        }
        self.sample(&format!("{name}_sum"), labels, h.mean() * h.len() as f64 / 1e6);
        self.sample(&format!("{name}_count"), labels, h.len());
    }
}

/// Renders the exposition: `in_flight` sessions are open now, of at most `limit`.
pub fn render(t: &Timeline, in_flight: usize, limit: usize) -> String {
    let mut out = String::new();
    let phase_now = label(t.phase());
    let booted: u64 = t.phases.iter().map(|p| p.totals.outcomes.booted()).sum();
    head(&mut out, "cpesim_run_info", "gauge", "The run (its id) and the phase it is in.");
    let _ = writeln!(out, "cpesim_run_info{{run_id=\"{}\",phase=\"{phase_now}\"}} 1", t.run_id);
    head(&mut out, "cpesim_cpes", "gauge", "CPEs simulated by this run.");
    let _ = writeln!(out, "cpesim_cpes {}", t.cpes);
    head(&mut out, "cpesim_cpes_booted", "gauge", "CPEs whose boot session completed (a reboot counts again; capped at the fleet).");
    let _ = writeln!(out, "cpesim_cpes_booted {}", booted.min(t.cpes));
    head(&mut out, "cpesim_sessions_in_flight", "gauge", "CWMP sessions open now.");
    let _ = writeln!(out, "cpesim_sessions_in_flight {in_flight}");
    head(&mut out, "cpesim_sessions_in_flight_limit", "gauge", "Most sessions open at once (--max-connections).");
    let _ = writeln!(out, "cpesim_sessions_in_flight_limit {limit}");
    head(&mut out, "cpesim_sessions_total", "counter", "Ended CWMP sessions by phase, ACS endpoint and outcome.");
    for ph in &t.phases {
        let name = label(&ph.name);
        for (i, tally) in ph.totals.outcomes.by_endpoint.iter().enumerate() {
            let endpoint = label(t.endpoints.get(i).map_or("?", String::as_str));
            for (outcome, n) in [("completed", tally.completed), ("failed", tally.failed)] {
                let _ = writeln!(out, "cpesim_sessions_total{{phase=\"{name}\",endpoint=\"{endpoint}\",outcome=\"{outcome}\"}} {n}");
            }
        }
    }
    head(&mut out, "cpesim_session_failures_total", "counter", "Failed CWMP sessions by phase and cause.");
    for ph in &t.phases {
        for c in Cause::ALL.iter().filter(|c| **c != Cause::Late) {
            let _ = writeln!(
                out,
                "cpesim_session_failures_total{{phase=\"{}\",cause=\"{}\"}} {}",
                label(&ph.name),
                c.name(),
                ph.totals.outcomes.failed[*c as usize]
            );
        }
    }
    head(&mut out, "cpesim_late_informs_total", "counter", "Periodic Informs that came due while the CPE was still busy (not sent).");
    for ph in &t.phases {
        let _ = writeln!(out, "cpesim_late_informs_total{{phase=\"{}\"}} {}", label(&ph.name), ph.totals.outcomes.late());
    }
    head(&mut out, "cpesim_sessions_by_event_total", "counter", "Ended sessions by an event code their Inform carried.");
    for ph in &t.phases {
        for code in EventCode::ALL {
            let tally = ph.totals.outcomes.by_event[code as usize];
            if tally.completed + tally.failed == 0 {
                continue;
            }
            for (outcome, n) in [("completed", tally.completed), ("failed", tally.failed)] {
                let _ = writeln!(
                    out,
                    "cpesim_sessions_by_event_total{{phase=\"{}\",event=\"{}\",outcome=\"{outcome}\"}} {n}",
                    label(&ph.name),
                    code.as_str()
                );
            }
        }
    }
    head(&mut out, "cpesim_rpc_seconds", "summary", "Service time per RPC (from sending a message to its answer).");
    let mut f = Families { out };
    for ph in &t.phases {
        for (rpc, h) in METRICS.iter().zip(&ph.totals.service) {
            f.summary("cpesim_rpc_seconds", &[("phase", &ph.name), ("rpc", rpc)], h);
        }
    }
    let mut out = f.out;
    head(&mut out, "cpesim_scheduler_lag_seconds", "gauge", "The simulator's own lateness handling due timers, by phase.");
    for ph in t.phases.iter().filter(|p| !p.totals.lag.is_empty()) {
        for q in [0.5, 0.99] {
            let _ = writeln!(
                out,
                "cpesim_scheduler_lag_seconds{{phase=\"{}\",quantile=\"{q}\"}} {}",
                label(&ph.name),
                ph.totals.lag.value_at_quantile(q) as f64 / 1e6
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::run_id::RunId;
    use crate::stats::{m, Recorder};
    use std::time::Duration;

    #[test]
    fn labels_are_phase_and_endpoint_never_a_cpe() {
        let mut t = Timeline::new(RunId(0xab), 5, vec!["http://a\"b/".into()]);
        t.begin_phase("warm-up", Duration::ZERO);
        let mut r = Recorder::new();
        r.outcomes.count_session(0b11, 0, true);
        r.outcomes.count(Cause::Timeout);
        r.record(m::INFORM, Duration::from_millis(3));
        r.record_lag(Duration::from_micros(40));
        t.record(&r, Duration::from_secs(1), Duration::from_secs(1), 2);
        let text = render(&t, 2, 16);
        assert!(text.contains("cpesim_run_info{run_id=\"00000000000000ab\",phase=\"warm-up\"} 1"), "{text}");
        assert!(text.contains("cpesim_sessions_total{phase=\"warm-up\",endpoint=\"http://a\\\"b/\",outcome=\"completed\"} 1"), "{text}");
        assert!(text.contains("cpesim_session_failures_total{phase=\"warm-up\",cause=\"timeout\"} 1"), "{text}");
        assert!(text.contains("cpesim_sessions_by_event_total{phase=\"warm-up\",event=\"0 BOOTSTRAP\",outcome=\"completed\"} 1"), "{text}");
        assert!(text.contains("cpesim_cpes_booted 1") && text.contains("cpesim_sessions_in_flight_limit 16"), "{text}");
        assert!(text.contains("cpesim_rpc_seconds_count{phase=\"warm-up\",rpc=\"Inform\"} 1"), "{text}");
        assert!(!text.contains("cpe-"), "no per-CPE label: {text}");
        // Every sample line is `name{labels} value` or `name value` with a number.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let v = l.rsplit(' ').next().unwrap();
            assert!(v.parse::<f64>().is_ok(), "{l}");
        }
    }
}
