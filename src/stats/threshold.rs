//! Pass/fail rules for CI (`--threshold 'Inform.p99<500ms'`, `--threshold
//! 'sessions.failed_ratio<0.001'`), checked against the JSON report; a breach makes the run exit
//! 99, k6's convention.
//!
//! Paths: `<Rpc>.<p50|p90|p99|p999|max|mean|count>` (service time), `<Rpc>.scheduled.<stat>` (from
//! the scheduled start; Inform and Session), `sessions.<completed|failed|failed_ratio|per_second|
//! late>`, `scheduler_lag.<p50|p99|max>`, `failures.<cause>`. Operators `<`, `<=`, `>`, `>=`.
//! Time values take `us`, `ms` or `s` (bare numbers are microseconds).

use serde_json::Value;

/// One parsed rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The rule as written.
    pub text: String,
    /// JSON pointer into the report.
    pointer: String,
    op: Op,
    /// In report units (µs for times).
    limit: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

/// A rule the run broke.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    pub rule: String,
    pub actual: f64,
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "threshold breached: {} (actual {})", self.rule, self.actual)
    }
}

fn stat_field(stat: &str) -> Option<&'static str> {
    Some(match stat {
        "p50" => "p50_us",
        "p90" => "p90_us",
        "p99" => "p99_us",
        "p999" | "p99.9" => "p999_us",
        "max" => "max_us",
        "mean" => "mean_us",
        "count" => "count",
        _ => return None,
    })
}

impl Threshold {
    /// Parses a rule.
    ///
    /// # Errors
    /// A message naming what is wrong and the accepted forms.
    pub fn parse(text: &str) -> Result<Threshold, String> {
        let t = text.trim();
        let (pos, op, len) = ["<=", ">=", "<", ">"]
            .iter()
            .find_map(|o| t.find(o).map(|p| (p, *o, o.len())))
            .ok_or_else(|| format!("`{text}`: expected <path><op><value>, e.g. Inform.p99<500ms"))?;
        let op = match op {
            "<=" => Op::Le,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            _ => Op::Gt,
        };
        let (path, value) = (t[..pos].trim(), t[pos + len..].trim());
        let parts: Vec<&str> = path.split('.').collect();
        let bad = || {
            format!("`{text}`: unknown metric `{path}` (e.g. Inform.p99, Session.scheduled.p99, sessions.failed_ratio, scheduler_lag.p99, failures.timeout)")
        };
        let (pointer, timed) = match parts.as_slice() {
            ["sessions", f @ ("completed" | "failed" | "failed_ratio" | "per_second" | "late" | "started")] => {
                (format!("/sessions/{f}"), false)
            }
            ["scheduler_lag", s] => {
                (format!("/scheduler_lag/{}", stat_field(s).filter(|f| *f != "count" && *f != "mean_us").ok_or_else(bad)?), true)
            }
            ["failures", cause] => (format!("/failures/{cause}"), false),
            [rpc, "scheduled", s] => {
                let name = crate::stats::METRICS.iter().find(|m| m.eq_ignore_ascii_case(rpc)).ok_or_else(bad)?;
                let f = stat_field(s).ok_or_else(bad)?;
                (format!("/rpc/{name}/from_scheduled/{f}"), f != "count")
            }
            [rpc, s] => {
                let name = crate::stats::METRICS.iter().find(|m| m.eq_ignore_ascii_case(rpc)).ok_or_else(bad)?;
                let f = stat_field(s).ok_or_else(bad)?;
                (format!("/rpc/{name}/{f}"), f != "count")
            }
            _ => return Err(bad()),
        };
        let (num, unit) =
            value.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')).map_or((value, ""), |i| (&value[..i], &value[i..]));
        let n: f64 = num.parse().map_err(|_| format!("`{text}`: `{value}` is not a number"))?;
        let limit = match (timed, unit) {
            (true, "" | "us" | "µs") => n,
            (true, "ms") => n * 1e3,
            (true, "s") => n * 1e6,
            (false, "") => n,
            (false, "%") => n / 100.0,
            _ => return Err(format!("`{text}`: unit `{unit}` does not fit `{path}`")),
        };
        Ok(Threshold { text: text.to_string(), pointer, op, limit })
    }

    /// Checks the rule against a JSON report; a missing metric counts as 0.
    pub fn check(&self, report: &Value) -> Option<Breach> {
        let actual = report.pointer(&self.pointer).and_then(Value::as_f64).unwrap_or(0.0);
        let ok = match self.op {
            Op::Lt => actual < self.limit,
            Op::Le => actual <= self.limit,
            Op::Gt => actual > self.limit,
            Op::Ge => actual >= self.limit,
        };
        (!ok).then(|| Breach { rule: self.text.clone(), actual })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_and_check() {
        let report =
            json!({"rpc": {"Inform": {"p99_us": 600_000, "from_scheduled": {"p99_us": 700_000}}}, "sessions": {"failed_ratio": 0.0005}});
        assert!(Threshold::parse("Inform.p99<500ms").unwrap().check(&report).is_some());
        assert!(Threshold::parse("inform.p99 < 1s").unwrap().check(&report).is_none());
        assert!(Threshold::parse("Inform.scheduled.p99<=700000").unwrap().check(&report).is_none());
        assert!(Threshold::parse("sessions.failed_ratio<0.001").unwrap().check(&report).is_none());
        assert!(Threshold::parse("sessions.failed_ratio<0.01%").unwrap().check(&report).is_some());
        assert!(Threshold::parse("failures.timeout<1").unwrap().check(&report).is_none(), "missing counts as 0");
        assert!(Threshold::parse("Inform.p99").is_err());
        assert!(Threshold::parse("Nope.p99<1ms").is_err());
        assert!(Threshold::parse("Inform.p42<1ms").is_err());
        assert!(Threshold::parse("sessions.failed_ratio<5ms").is_err());
    }
}
