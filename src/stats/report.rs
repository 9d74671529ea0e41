//! The final report of a fleet run: a text table for people and JSON (`--report-json`) for
//! tools, from the merged [`Recorder`].
//!
//! JSON schema (`"schema": "cpe-sim/report/v1"`), all times in microseconds:
//! `sessions.{started,completed,failed,failed_ratio,per_second,late,interrupted}`, `slot_wait.{p50_us,p99_us,max_us}`,
//! `limited_by.{what,why}` (`connections`, `simulator_cpu`, `acs` or `none`), `complete`,
//! `failures.{<cause>: n, http_status: {"503": n}}`,
//! `rpc.<Name>.{count,p50_us,p90_us,p99_us,p999_us,max_us,mean_us}` (service time, plus
//! `from_scheduled.{…}`: from the session's scheduled start), `scheduler_lag.{count,p50_us,p99_us,max_us}`,
//! `process.{peak_rss_bytes,cpu_seconds}`, `run.{id,duration_s,cpes,first_index,shards,multiplier}`,
//! `events.{"0 BOOTSTRAP": {completed,failed}, …}` (sessions by the event codes their Inform
//! carried) and `endpoints: [{index,completed,failed}]` (by ACS endpoint; the engine adds `url`).

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use super::run_id::RunId;
use super::{Cause, Recorder, METRICS};
use crate::cwmp::rpc::inform::EventCode;

/// The `schema` of a run's JSON report (`--report-json`).
pub const SCHEMA: &str = "cpe-sim/report/v1";

/// The `schema` of a USP run's JSON report (`report merge` merges these only with each other,
/// in `mtp::merge`).
pub const USP_SCHEMA: &str = "cpe-sim/usp-report/v1";

/// Facts about the run the report describes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunFacts {
    /// The run's id, in every output ([`RunId`]).
    pub run_id: RunId,
    pub duration: Duration,
    pub cpes: u64,
    /// Index of the first CPE (`--first-index`): the run simulated `first_index..first_index+cpes`.
    pub first_index: u32,
    pub shards: u32,
    pub multiplier: Multiplier,
}

/// The interval multiplier a report's runs ran at (a run: [`Multiplier::Same`]; a merged report
/// may say the others). Shown as the number, `mixed` or `unknown`; in JSON a number, `"mixed"`
/// or null.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Multiplier {
    /// No input said it (older logs and reports).
    #[default]
    Unknown,
    /// Every input that said one said this.
    Same(f64),
    /// The inputs ran at different multipliers.
    Mixed,
}

impl Multiplier {
    /// The report's JSON value.
    pub fn to_json(self) -> Value {
        match self {
            Multiplier::Same(x) => json!(x),
            Multiplier::Mixed => json!("mixed"),
            Multiplier::Unknown => Value::Null,
        }
    }
}

impl std::fmt::Display for Multiplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Multiplier::Same(x) => write!(f, "{x}"),
            Multiplier::Mixed => f.write_str("mixed"),
            Multiplier::Unknown => f.write_str("unknown"),
        }
    }
}

/// Peak RSS and CPU time of this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessFigures {
    pub peak_rss_bytes: u64,
    pub cpu_seconds: f64,
}

impl ProcessFigures {
    /// Reads them from the OS (`getrusage`).
    pub fn now() -> ProcessFigures {
        // SAFETY: getrusage only writes into the zeroed struct we pass.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: RUSAGE_SELF with a valid pointer.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
            return ProcessFigures::default();
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        // Linux reports ru_maxrss in KiB.
        ProcessFigures { peak_rss_bytes: ru.ru_maxrss as u64 * 1024, cpu_seconds: secs(ru.ru_utime) + secs(ru.ru_stime) }
    }
}

fn quantiles(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({"count": 0});
    }
    json!({
        "count": h.len(),
        "p50_us": h.value_at_quantile(0.50),
        "p90_us": h.value_at_quantile(0.90),
        "p99_us": h.value_at_quantile(0.99),
        "p999_us": h.value_at_quantile(0.999),
        "max_us": h.max(),
        "mean_us": (h.mean() * 10.0).round() / 10.0,
    })
}

/// Builds the JSON report.
pub fn to_json(r: &Recorder, facts: &RunFacts, process: &ProcessFigures) -> Value {
    let o = &r.outcomes;
    let secs = facts.duration.as_secs_f64().max(1e-9);
    let finished = o.completed.saturating_add(o.failed_sessions());
    let mut rpc = Map::new();
    for (i, name) in METRICS.iter().enumerate() {
        if r.service[i].is_empty() {
            continue;
        }
        let mut v = quantiles(&r.service[i]);
        if !r.from_scheduled[i].is_empty() {
            v["from_scheduled"] = quantiles(&r.from_scheduled[i]);
        }
        rpc.insert(name.to_string(), v);
    }
    let mut failures = Map::new();
    for c in Cause::ALL {
        let n = o.failed[c as usize];
        // Late informs never started: they are counted under sessions.late, not as failures.
        if n > 0 && c != Cause::Late {
            failures.insert(c.name().to_string(), json!(n));
        }
    }
    if !o.http_status.is_empty() {
        let statuses: Map<String, Value> = o.http_status.iter().map(|(s, n)| (s.to_string(), json!(n))).collect();
        failures.insert("http_status_codes".into(), Value::Object(statuses));
    }
    let lag = if r.lag.is_empty() {
        json!({"count": 0, "p50_us": 0, "p99_us": 0, "max_us": 0})
    } else {
        json!({"count": r.lag.len(), "p50_us": r.lag.value_at_quantile(0.5), "p99_us": r.lag.value_at_quantile(0.99), "max_us": r.lag.max()})
    };
    let slot_wait = if r.slot_wait.is_empty() {
        json!({"p50_us": 0, "p99_us": 0, "max_us": 0})
    } else {
        json!({"p50_us": r.slot_wait.value_at_quantile(0.5), "p99_us": r.slot_wait.value_at_quantile(0.99), "max_us": r.slot_wait.max()})
    };
    let (limit, why) = limited_by(r, facts);
    let events: Map<String, Value> = EventCode::ALL
        .iter()
        .map(|c| (c, o.by_event[*c as usize]))
        .filter(|(_, t)| t.completed > 0 || t.failed > 0)
        .map(|(c, t)| (c.as_str().to_string(), json!({"completed": t.completed, "failed": t.failed})))
        .collect();
    let endpoints: Vec<Value> =
        o.by_endpoint.iter().enumerate().map(|(i, t)| json!({"index": i, "completed": t.completed, "failed": t.failed})).collect();
    json!({
        "schema": SCHEMA,
        "run": {
            "id": facts.run_id.to_string(),
            "duration_s": (secs * 1000.0).round() / 1000.0,
            "cpes": facts.cpes,
            "first_index": facts.first_index,
            "shards": facts.shards,
            "multiplier": facts.multiplier.to_json(),
        },
        "events": Value::Object(events),
        "endpoints": endpoints,
        "sessions": {
            "started": o.started,
            "completed": o.completed,
            "failed": o.failed_sessions(),
            "failed_ratio": if finished == 0 { 0.0 } else { o.failed_sessions() as f64 / finished as f64 },
            "per_second": ((o.completed as f64 / secs) * 10.0).round() / 10.0,
            "late": o.late(),
            "interrupted": o.interrupted,
        },
        "slot_wait": slot_wait,
        "limited_by": {"what": limit, "why": why},
        "failures": Value::Object(failures),
        "rpc": Value::Object(rpc),
        "scheduler_lag": lag,
        "process": {"peak_rss_bytes": process.peak_rss_bytes, "cpu_seconds": (process.cpu_seconds * 1000.0).round() / 1000.0},
    })
}

/// What held the run back, by the figures: the `--max-connections` cap (CPEs waited for a slot),
/// the simulator's CPU (it handled its own timers late while its shards' threads were busy), or
/// the ACS (late informs, failed or interrupted sessions, slow connects); "none" when the load was
/// served on schedule. Returns the verdict and the figure behind it.
pub fn limited_by(r: &Recorder, facts: &RunFacts) -> (&'static str, String) {
    let p99 = |h: &Histogram<u64>| if h.is_empty() { 0 } else { h.value_at_quantile(0.99) };
    let o = &r.outcomes;
    let lag = p99(&r.lag);
    let slot = p99(&r.slot_wait);
    let busy = o.shard_cpu_us as f64 / (facts.duration.as_secs_f64() * 1e6 * facts.shards.max(1) as f64).max(1.0);
    let connect = p99(&r.service[crate::stats::m::CONNECT]);
    let inform = p99(&r.service[crate::stats::m::INFORM]);
    let late = o.late();
    let failed = o.failed_sessions();
    if slot > 10_000 {
        return (
            "connections",
            format!("CPEs waited for a --max-connections slot: p99 {} (sessions hold slots while the ACS answers)", fmt_us(slot)),
        );
    }
    if lag > 10_000 && busy > 0.8 {
        return ("simulator_cpu", format!("scheduler lag p99 {}, the shards' threads {:.0}% busy", fmt_us(lag), busy * 100.0));
    }
    if late > 0 || failed > 0 || o.interrupted > 0 || connect > 100_000 {
        return (
            "acs",
            format!(
                "{late} late informs, {failed} failed and {} interrupted sessions, Connect p99 {}, Inform p99 {}",
                o.interrupted,
                fmt_us(connect),
                fmt_us(inform)
            ),
        );
    }
    if lag > 10_000 {
        return (
            "simulator_cpu",
            format!("scheduler lag p99 {} with the shards' threads {:.0}% busy (the machine is busy)", fmt_us(lag), busy * 100.0),
        );
    }
    ("none", format!("on schedule: scheduler lag p99 {}, slot wait p99 {}, Inform p99 {}", fmt_us(lag), fmt_us(slot), fmt_us(inform)))
}

/// A time in µs the way every output of cpe-sim shows times: `850µs`, `12.3ms`, `1.25s`.
pub fn fmt_us(v: u64) -> String {
    match v {
        0..=999 => format!("{v}µs"),
        1_000..=999_999 => format!("{:.1}ms", v as f64 / 1e3),
        _ => format!("{:.2}s", v as f64 / 1e6),
    }
}

/// Renders the report as a text table.
pub fn to_text(r: &Recorder, facts: &RunFacts, process: &ProcessFigures) -> String {
    use std::fmt::Write;
    let j = to_json(r, facts, process);
    let s = &j["sessions"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cpe-sim report: {} CPEs on {} shard(s), {:.1}s, interval multiplier {}, run {}",
        facts.cpes,
        facts.shards,
        facts.duration.as_secs_f64(),
        facts.multiplier,
        facts.run_id
    );
    let _ = writeln!(
        out,
        "sessions: {} completed, {} failed ({:.3}%), {} late informs, {}/s",
        s["completed"],
        s["failed"],
        s["failed_ratio"].as_f64().unwrap_or(0.0) * 100.0,
        s["late"],
        s["per_second"]
    );
    let _ = writeln!(out, "{:<30} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}", "rpc (service time)", "count", "p50", "p90", "p99", "p99.9", "max");
    let mut row = |name: &str, h: &Histogram<u64>| {
        if !h.is_empty() {
            let _ = writeln!(
                out,
                "{:<30} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                name,
                h.len(),
                fmt_us(h.value_at_quantile(0.5)),
                fmt_us(h.value_at_quantile(0.9)),
                fmt_us(h.value_at_quantile(0.99)),
                fmt_us(h.value_at_quantile(0.999)),
                fmt_us(h.max())
            );
        }
    };
    for (i, name) in METRICS.iter().enumerate() {
        row(name, &r.service[i]);
    }
    row("Inform (from scheduled)", r.scheduled_inform());
    row("Session (from scheduled)", r.scheduled_session());
    row("ConnectionRequest (from wake)", &r.from_scheduled[crate::stats::m::CONNECTION_REQUEST]);
    row("scheduler lag", &r.lag);
    row("slot wait (--max-connections)", &r.slot_wait);
    let f = &j["failures"];
    if let Some(map) = f.as_object().filter(|m| !m.is_empty()) {
        let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "failures: {}", parts.join(", "));
    }
    if r.outcomes.interrupted > 0 {
        let _ = writeln!(out, "interrupted: {} sessions were still open when the drain time ran out", r.outcomes.interrupted);
    }
    let _ = writeln!(
        out,
        "limited by: {} ({})",
        j["limited_by"]["what"].as_str().unwrap_or("?"),
        j["limited_by"]["why"].as_str().unwrap_or("")
    );
    let _ = writeln!(out, "process: peak RSS {:.1} MiB, CPU {:.2}s", process.peak_rss_bytes as f64 / 1048576.0, process.cpu_seconds);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::m;

    #[test]
    fn json_has_the_documented_schema() {
        let mut r = Recorder::new();
        for ms in [1u64, 2, 3, 100] {
            r.record(m::INFORM, Duration::from_millis(ms));
        }
        r.record_both(m::INFORM, Duration::from_millis(1), Duration::from_millis(5));
        r.record_session(Duration::from_millis(9), Duration::from_millis(8));
        r.record_lag(Duration::from_micros(300));
        r.outcomes.started = 5;
        r.outcomes.completed = 4;
        r.outcomes.count(Cause::Timeout);
        r.outcomes.count(Cause::Late);
        let j = to_json(
            &r,
            &RunFacts { duration: Duration::from_secs(2), cpes: 10, shards: 1, multiplier: Multiplier::Same(1.0), ..RunFacts::default() },
            &ProcessFigures::now(),
        );
        assert_eq!(j["sessions"]["completed"], 4);
        assert_eq!(j["sessions"]["failed"], 1);
        assert_eq!(j["sessions"]["failed_ratio"], 0.2);
        assert_eq!(j["sessions"]["per_second"], 2.0);
        assert_eq!(j["rpc"]["Inform"]["count"], 5);
        assert!(j["rpc"]["Inform"]["p99_us"].as_u64().unwrap() >= 99_000);
        assert!(j["rpc"]["Inform"]["from_scheduled"]["p50_us"].as_u64().unwrap() >= 4_900);
        assert_eq!(j["failures"]["timeout"], 1);
        assert!(j["failures"].get("late").is_none(), "late informs are not failures");
        assert_eq!(j["sessions"]["late"], 1);
        assert_eq!(j["limited_by"]["what"], "acs");
        assert!(j["scheduler_lag"]["p99_us"].as_u64().unwrap() >= 299);
        assert!(j["process"]["peak_rss_bytes"].as_u64().unwrap() > 0);
        let text = to_text(
            &r,
            &RunFacts { duration: Duration::from_secs(2), cpes: 10, shards: 1, multiplier: Multiplier::Same(1.0), ..RunFacts::default() },
            &ProcessFigures::default(),
        );
        assert!(text.contains("Inform") && text.contains("failures: timeout=1"), "{text}");
    }
}
