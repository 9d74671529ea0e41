//! Pass/fail rules for CI (`--threshold 'Inform.p99<500ms'`, `--threshold
//! 'sessions.failed_ratio<0.001'`), checked against the JSON report; a breach makes the run exit
//! 99, k6's convention.
//!
//! Paths: `<Rpc>.<p50|p90|p99|p999|max|mean|count>` (service time), `<Rpc>.scheduled.<stat>` (from
//! the scheduled start; Inform and Session), `sessions.<completed|failed|failed_ratio|per_second|
//! late>`, `scheduler_lag.<p50|p99|max>`, `failures.<cause>`. Operators `<`, `<=`, `>`, `>=`.
//! Time values need a unit, `us`, `ms` or `s` (`Inform.p99<500` is refused: 500 what?); counts and
//! ratios take none (a ratio may end in `%`). Every rule is checked, passed or not
//! ([`Threshold::evaluate`]), and its actual value is shown in the rule's unit.
//!
//! A cause (`failures.<cause>`, `dropped.<cause>`) must be one the report can count: the names
//! come from the cause enums themselves (`stats::Cause`, `mtp::report::ConnFailure`,
//! `usp::record::Dropped`), and a misspelt one is refused when parsing, listing the allowed ones.
//! A time (any quantile, max or mean) whose histogram has no samples is "no data": the rule is
//! breached (a CI gate must not pass on nothing) and its actual value reads `no data`. Counts
//! with no events are real zeros.
//!
//! A USP run (`--protocol usp`) has its own paths into its report ([`Threshold::parse_usp`]):
//! `<Notification>.<p50|p90|p99|max>` (Notify → NotifyResp round trip, e.g. `Boot!.p99`),
//! `<Notification>.<sent|answered|retransmitted|unanswered>`, `<Message>.<p50|p90|p99|max|count>`
//! (time to answer, e.g. `Get.p99`), `connect.<p50|p90|p99|max>`, `connections.<held|peak|
//! connects>`, `booted`, `failures.<cause>`, `dropped.<cause>`. The same operators and units.

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
    /// What a report value is multiplied by to be in report units (1, or 1000 for the USP
    /// report's milliseconds).
    scale: f64,
    /// For a time: where the report counts its samples (none there: no data).
    samples: Option<String>,
    /// The unit the rule was written in, for showing actual values (`ms`); empty for counts.
    unit: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

/// A rule checked against a report: whether it held and the value it saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The rule as written.
    pub rule: String,
    /// The value in report units (µs for times, a ratio as 0..1); `None`: no data (a time
    /// whose histogram has no samples), which breaches the rule.
    pub actual: Option<f64>,
    /// The value in the rule's unit, with the unit (`612.3ms`, `0.12%`, `17`).
    pub actual_text: String,
    pub passed: bool,
}

impl Verdict {
    /// The verdict as the JSON reports list it under `"thresholds"` (CWMP and USP alike):
    /// `{"rule", "passed", "actual" (report units; null: no data), "actual_text"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"rule": self.rule, "passed": self.passed, "actual": self.actual, "actual_text": self.actual_text})
    }
}

/// A rule the run broke.
pub type Breach = Verdict;

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = if self.passed { "threshold passed" } else { "threshold breached" };
        write!(f, "{word}: {} (actual {})", self.rule, self.actual_text)
    }
}

/// Shows `v` (report units) in `unit`: `us`/`µs`, `ms`, `s`, `%` or a bare number.
fn show(v: f64, unit: &str) -> String {
    let (n, suffix) = match unit {
        "us" | "µs" => (v, "µs"),
        "ms" => (v / 1e3, "ms"),
        "s" => (v / 1e6, "s"),
        "%" => (v * 100.0, "%"),
        _ => (v, ""),
    };
    // Whole numbers print without decimals (counts), others with up to 3 significant decimals.
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}{suffix}", n as i64)
    } else {
        format!("{}{suffix}", (n * 1000.0).round() / 1000.0)
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

/// Where a rule's value is in the report.
struct Metric {
    pointer: String,
    /// A time (needs a unit).
    timed: bool,
    scale: f64,
    /// For a time: where the report counts the samples behind it (missing or 0: no data).
    samples: Option<String>,
}

/// Why a path names no metric.
enum Miss {
    /// Not a path of this report.
    Unknown,
    /// `<group>.<cause>` with a cause the report never counts.
    Cause { group: &'static str, allowed: Vec<&'static str> },
}

/// `<group>.<cause>` if `cause` is one of `allowed` (the names of a cause enum).
fn cause_metric(group: &'static str, cause: &str, allowed: Vec<&'static str>) -> Result<Metric, Miss> {
    if !allowed.contains(&cause) {
        return Err(Miss::Cause { group, allowed });
    }
    Ok(Metric { pointer: format!("/{group}/{cause}"), timed: false, scale: 1.0, samples: None })
}

fn cwmp_metric(parts: &[&str]) -> Result<Metric, Miss> {
    use crate::stats::Cause;
    let rpc_name = |rpc: &str| crate::stats::METRICS.iter().find(|m| m.eq_ignore_ascii_case(rpc)).ok_or(Miss::Unknown);
    // A histogram's figures: the count is a count, the rest are times backed by that count.
    let histogram = |base: String, s: &str| {
        let f = stat_field(s).ok_or(Miss::Unknown)?;
        let timed = f != "count";
        let samples = timed.then(|| format!("{base}/count"));
        Ok(Metric { pointer: format!("{base}/{f}"), timed, scale: 1.0, samples })
    };
    match parts {
        ["sessions", f @ ("completed" | "failed" | "failed_ratio" | "per_second" | "late" | "started")] => {
            Ok(Metric { pointer: format!("/sessions/{f}"), timed: false, scale: 1.0, samples: None })
        }
        ["scheduler_lag", s] => {
            let f = stat_field(s).filter(|f| *f != "count" && *f != "mean_us").ok_or(Miss::Unknown)?;
            Ok(Metric { pointer: format!("/scheduler_lag/{f}"), timed: true, scale: 1.0, samples: Some("/scheduler_lag/count".into()) })
        }
        // Late Informs are `sessions.late`, not a failure (the report never lists them here).
        ["failures", cause] => {
            cause_metric("failures", cause, Cause::ALL.iter().filter(|c| **c != Cause::Late).map(|c| c.name()).collect())
        }
        [rpc, "scheduled", s] => histogram(format!("/rpc/{}/from_scheduled", rpc_name(rpc)?), s),
        [rpc, s] => histogram(format!("/rpc/{}", rpc_name(rpc)?), s),
        _ => Err(Miss::Unknown),
    }
}

/// The notification types a USP report names (`mtp::life::notify_name`).
const USP_NOTIFICATIONS: [&str; 7] =
    ["Boot!", "Periodic!", "Event", "ValueChange", "ObjectCreation", "ObjectDeletion", "OperationComplete"];

/// A latency field of the USP report (milliseconds).
fn usp_stat(stat: &str) -> Option<&'static str> {
    Some(match stat {
        "p50" => "p50_ms",
        "p90" => "p90_ms",
        "p99" => "p99_ms",
        "max" => "max_ms",
        _ => return None,
    })
}

fn usp_metric(parts: &[&str]) -> Result<Metric, Miss> {
    let count = |pointer: String| Ok(Metric { pointer, timed: false, scale: 1.0, samples: None });
    // A latency object of the USP report (`mtp::report`'s `json_latency`) counts its samples.
    let time = |base: String, s: &str| {
        let f = usp_stat(s).ok_or(Miss::Unknown)?;
        Ok(Metric { pointer: format!("{base}/{f}"), timed: true, scale: 1000.0, samples: Some(format!("{base}/count")) })
    };
    // A notification name ends in `!` or not, and has no dot: split as `Boot!` `.` `p99`.
    match parts {
        ["booted"] => count("/booted".into()),
        ["connections", f @ ("held" | "peak" | "connects")] => count(format!("/connections/{f}")),
        ["connect", s] => time("/connections/connect_time".into(), s),
        ["failures", cause] => cause_metric("failures", cause, crate::mtp::report::ConnFailure::ALL.iter().map(|c| c.name()).collect()),
        ["dropped", cause] => cause_metric("dropped", cause, crate::usp::record::Dropped::ALL.iter().map(|c| c.name()).collect()),
        [name, s] => {
            if let Some(n) = USP_NOTIFICATIONS.iter().find(|n| n.eq_ignore_ascii_case(name)) {
                return match *s {
                    "sent" | "answered" | "retransmitted" | "unanswered" => count(format!("/notify/{n}/{s}")),
                    _ => time(format!("/notify/{n}/round_trip"), s),
                };
            }
            let kind = crate::usp::MsgKind::ALL.iter().map(|k| k.name()).find(|k| k.eq_ignore_ascii_case(name)).ok_or(Miss::Unknown)?;
            match *s {
                "count" => count(format!("/handled/{kind}/count")),
                _ => time(format!("/handled/{kind}/latency"), s),
            }
        }
        _ => Err(Miss::Unknown),
    }
}

impl Threshold {
    /// Parses a rule.
    ///
    /// # Errors
    /// A message naming what is wrong and the accepted forms.
    pub fn parse(text: &str) -> Result<Threshold, String> {
        Threshold::parse_with(text, "Inform.p99<500ms", cwmp_metric)
    }

    /// Parses a rule of a run of `protocol` (`--protocol`: `usp` rules name the USP report's
    /// figures, any other the CWMP report's): the one switch `plan` and scenario files use.
    ///
    /// # Errors
    /// As [`Threshold::parse`] or [`Threshold::parse_usp`].
    pub fn parse_for(protocol: &str, text: &str) -> Result<Threshold, String> {
        if protocol == "usp" {
            Threshold::parse_usp(text)
        } else {
            Threshold::parse(text)
        }
    }

    /// Parses a rule of a USP run (paths into the USP report; see the module's doc).
    ///
    /// # Errors
    /// A message naming what is wrong and the accepted forms.
    pub fn parse_usp(text: &str) -> Result<Threshold, String> {
        Threshold::parse_with(text, "Boot!.p99<500ms", usp_metric)
    }

    fn parse_with(text: &str, example: &str, metric: fn(&[&str]) -> Result<Metric, Miss>) -> Result<Threshold, String> {
        let t = text.trim();
        let (pos, op, len) = ["<=", ">=", "<", ">"]
            .iter()
            .find_map(|o| t.find(o).map(|p| (p, *o, o.len())))
            .ok_or_else(|| format!("`{text}`: expected <path><op><value>, e.g. {example}"))?;
        let op = match op {
            "<=" => Op::Le,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            _ => Op::Gt,
        };
        let (path, value) = (t[..pos].trim(), t[pos + len..].trim());
        let parts: Vec<&str> = path.split('.').collect();
        let Metric { pointer, timed, scale, samples } = match metric(&parts) {
            Ok(m) => m,
            Err(Miss::Cause { group, allowed }) => {
                return Err(format!("`{text}`: unknown cause in `{path}` ({group}.<cause>, one of: {})", allowed.join(", ")));
            }
            Err(Miss::Unknown) => {
                let examples = if example.starts_with("Inform") {
                    "Inform.p99, Session.scheduled.p99, sessions.failed_ratio, scheduler_lag.p99, failures.timeout"
                } else {
                    "Boot!.p99, Periodic!.unanswered, Get.p99, connect.p99, connections.held, booted, failures.timeout"
                };
                return Err(format!("`{text}`: unknown metric `{path}` (e.g. {examples})"));
            }
        };
        let (num, unit) =
            value.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')).map_or((value, ""), |i| (&value[..i], &value[i..]));
        let n: f64 = num.parse().map_err(|_| format!("`{text}`: `{value}` is not a number"))?;
        let (limit, unit) = match (timed, unit) {
            (true, "") => return Err(format!("`{text}`: a time needs a unit: us, ms or s (e.g. {path}<{num}ms)")),
            (true, "us") => (n, "us"),
            (true, "µs") => (n, "µs"),
            (true, "ms") => (n * 1e3, "ms"),
            (true, "s") => (n * 1e6, "s"),
            (false, "") => (n, ""),
            (false, "%") => (n / 100.0, "%"),
            (true, _) => return Err(format!("`{text}`: unit `{unit}` does not fit `{path}` (a time: us, ms or s)")),
            (false, _) => return Err(format!("`{text}`: unit `{unit}` does not fit `{path}` (a count or ratio: no unit, or %)")),
        };
        Ok(Threshold { text: text.to_string(), pointer, op, limit, unit, scale, samples })
    }

    /// Checks the rule against a JSON report. A count the report leaves out is 0 (nothing
    /// happened); a time with no samples behind it is no data, and breaches the rule.
    pub fn evaluate(&self, report: &Value) -> Verdict {
        let sampled = |p: &String| report.pointer(p).and_then(Value::as_f64).is_some_and(|n| n > 0.0);
        let value = report.pointer(&self.pointer).and_then(Value::as_f64);
        let actual = match &self.samples {
            Some(p) if !sampled(p) => None,
            Some(_) => value.map(|v| v * self.scale),
            None => Some(value.unwrap_or(0.0) * self.scale),
        };
        let Some(actual) = actual else {
            return Verdict { rule: self.text.clone(), actual: None, actual_text: "no data".into(), passed: false };
        };
        let passed = match self.op {
            Op::Lt => actual < self.limit,
            Op::Le => actual <= self.limit,
            Op::Gt => actual > self.limit,
            Op::Ge => actual >= self.limit,
        };
        Verdict { rule: self.text.clone(), actual: Some(actual), actual_text: show(actual, self.unit), passed }
    }

    /// The verdict if the rule was broken.
    pub fn check(&self, report: &Value) -> Option<Breach> {
        Some(self.evaluate(report)).filter(|v| !v.passed)
    }
}

/// The thresholds section of the text report: every rule, passed or breached, with its actual
/// value in the rule's unit; empty without rules.
pub fn to_text(verdicts: &[Verdict]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if verdicts.is_empty() {
        return out;
    }
    let passed = verdicts.iter().filter(|v| v.passed).count();
    let _ = writeln!(out, "thresholds: {passed} of {} passed", verdicts.len());
    for v in verdicts {
        let _ = writeln!(out, "  {:<8} {} (actual {})", if v.passed { "passed" } else { "BREACHED" }, v.rule, v.actual_text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_and_check() {
        let report = json!({"rpc": {"Inform": {"count": 3, "p99_us": 600_000, "from_scheduled": {"count": 3, "p99_us": 700_000}}},
            "sessions": {"failed_ratio": 0.0005}});
        assert!(Threshold::parse("Inform.p99<500ms").unwrap().check(&report).is_some());
        assert!(Threshold::parse("inform.p99 < 1s").unwrap().check(&report).is_none());
        assert!(Threshold::parse("Inform.scheduled.p99<=700000us").unwrap().check(&report).is_none());
        let e = Threshold::parse("Inform.p99<500").unwrap_err();
        assert!(e.contains("a time needs a unit: us, ms or s (e.g. Inform.p99<500ms)"), "{e}");
        assert!(Threshold::parse("scheduler_lag.p99<20").is_err());
        assert!(Threshold::parse("Inform.count>=5").is_ok(), "counts take no unit");
        assert!(Threshold::parse("sessions.failed_ratio<0.001").unwrap().check(&report).is_none());
        assert!(Threshold::parse("sessions.failed_ratio<0.01%").unwrap().check(&report).is_some());
        assert!(Threshold::parse("failures.timeout<1").unwrap().check(&report).is_none(), "missing counts as 0");
        assert!(Threshold::parse("Inform.p99").is_err());
        assert!(Threshold::parse("Boot!.p99<1s").is_err(), "a USP path is not a CWMP one");
        assert!(Threshold::parse("Nope.p99<1ms").is_err());
        assert!(Threshold::parse("Inform.p42<1ms").is_err());
        assert!(Threshold::parse("sessions.failed_ratio<5ms").is_err());
    }

    #[test]
    fn verdicts_show_the_rules_units() {
        let report = json!({"rpc": {"Inform": {"count": 17, "p99_us": 612_345}}, "sessions": {"failed_ratio": 0.0012, "completed": 17}});
        let breach = Threshold::parse("Inform.p99<500ms").unwrap().check(&report).unwrap();
        assert_eq!(breach.to_string(), "threshold breached: Inform.p99<500ms (actual 612.345ms)");
        let v = Threshold::parse("Inform.p99<1s").unwrap().evaluate(&report);
        assert!(v.passed);
        assert_eq!(v.actual_text, "0.612s");
        assert_eq!(Threshold::parse("sessions.failed_ratio<1%").unwrap().evaluate(&report).actual_text, "0.12%");
        assert_eq!(Threshold::parse("sessions.completed>10").unwrap().evaluate(&report).actual_text, "17");
        let verdicts: Vec<Verdict> =
            ["Inform.p99<500ms", "sessions.completed>10"].iter().map(|t| Threshold::parse(t).unwrap().evaluate(&report)).collect();
        let text = to_text(&verdicts);
        assert!(text.starts_with("thresholds: 1 of 2 passed\n"), "{text}");
        assert!(text.contains("  BREACHED Inform.p99<500ms (actual 612.345ms)"), "{text}");
        assert!(text.contains("  passed   sessions.completed>10 (actual 17)"), "{text}");
    }

    #[test]
    fn usp_rules_read_the_usp_report() {
        let report = json!({
            "booted": 998, "connections": {"held": 1000, "connect_time": {"count": 1000, "p99_ms": 12.5}},
            "notify": {"Boot!": {"unanswered": 2, "round_trip": {"count": 996, "p99_ms": 480.0}}},
            "handled": {"Get": {"count": 7, "latency": {"count": 7, "p99_ms": 0.25}}},
        });
        let check = |rule: &str| Threshold::parse_usp(rule).unwrap_or_else(|e| panic!("{e}")).evaluate(&report);
        assert!(check("Boot!.p99<500ms").passed);
        assert!(!check("boot!.p99<0.4s").passed);
        assert_eq!(check("Boot!.p99<0.4s").actual_text, "0.48s");
        assert!(check("Boot!.unanswered<=2").passed);
        assert!(!check("booted>=1000").passed);
        assert!(check("connections.held>=1000").passed);
        assert!(check("connect.p99<20ms").passed);
        assert!(check("Get.p99<=250us").passed);
        assert!(check("Get.count>=7").passed);
        assert!(check("Periodic!.unanswered<1").passed, "missing counts as 0");
        assert!(check("failures.timeout<1").passed);
        let e = Threshold::parse_usp("Boot!.p99<500").unwrap_err();
        assert!(e.contains("a time needs a unit"), "{e}");
        let e = Threshold::parse_usp("Inform.p99<1ms").unwrap_err();
        assert!(e.contains("unknown metric `Inform.p99` (e.g. Boot!.p99"), "{e}");
        assert!(Threshold::parse_usp("Boot!.p999<1s").is_err());
        assert!(Threshold::parse_usp("booted>=5ms").is_err(), "a count takes no time unit");
    }

    #[test]
    fn unknown_causes_are_refused_listing_the_enums_names() {
        let e = Threshold::parse("failures.bogus<1").unwrap_err();
        assert!(e.contains("unknown cause in `failures.bogus` (failures.<cause>, one of: dns, connect, tls, timeout,"), "{e}");
        assert!(e.ends_with("parse, protocol)"), "late is sessions.late, not a failure: {e}");
        assert!(Threshold::parse("failures.late<1").is_err());
        for c in crate::stats::Cause::ALL.iter().filter(|c| **c != crate::stats::Cause::Late) {
            assert!(Threshold::parse(&format!("failures.{}<1", c.name())).is_ok(), "{}", c.name());
        }
        let e = Threshold::parse_usp("failures.bogus<1").unwrap_err();
        assert!(e.contains("one of: connect_refused, timeout, connack_refused, tls, connection_lost, protocol)"), "{e}");
        let e = Threshold::parse_usp("dropped.x<1").unwrap_err();
        assert!(e.contains("unknown cause in `dropped.x` (dropped.<cause>, one of: malformed_record, wrong_endpoint,"), "{e}");
        for d in crate::usp::record::Dropped::ALL {
            assert!(Threshold::parse_usp(&format!("dropped.{}<1", d.name())).is_ok(), "{}", d.name());
        }
        for c in crate::mtp::report::ConnFailure::ALL {
            assert!(Threshold::parse_usp(&format!("failures.{}<1", c.name())).is_ok(), "{}", c.name());
        }
    }

    #[test]
    fn a_time_without_samples_is_no_data_and_breaches() {
        // CWMP: an RPC never timed is absent from the report; a lag with no samples counts 0.
        let cwmp = json!({"rpc": {}, "scheduler_lag": {"count": 0, "p99_us": 0}, "sessions": {"completed": 0}});
        for rule in ["Inform.p99<1s", "Inform.max>=0us", "Inform.scheduled.p99<1s", "scheduler_lag.p99<1s"] {
            let v = Threshold::parse(rule).unwrap().evaluate(&cwmp);
            assert!(!v.passed, "{rule}");
            assert_eq!((v.actual, v.actual_text.as_str()), (None, "no data"), "{rule}");
            assert_eq!(v.to_string(), format!("threshold breached: {rule} (actual no data)"));
        }
        // Counts with no events are real zeros.
        assert!(Threshold::parse("Inform.count<1").unwrap().evaluate(&cwmp).passed);
        assert!(Threshold::parse("failures.timeout<1").unwrap().evaluate(&cwmp).passed);
        assert!(!Threshold::parse("sessions.completed>0").unwrap().evaluate(&cwmp).passed);
        // USP: a latency object with no samples reports 0 ms, and a count of 0.
        let usp = json!({"booted": 0, "connections": {"connect_time": {"count": 0, "p99_ms": 0.0}},
            "notify": {}, "handled": {"Get": {"count": 0, "latency": {"count": 0, "p99_ms": 0.0}}}});
        for rule in ["Boot!.p99<1s", "connect.p99<1s", "Get.max<1s", "ValueChange.p50>=0ms"] {
            let v = Threshold::parse_usp(rule).unwrap().evaluate(&usp);
            assert_eq!((v.passed, v.actual_text.as_str()), (false, "no data"), "{rule}");
        }
        assert!(Threshold::parse_usp("Boot!.unanswered<1").unwrap().evaluate(&usp).passed);
        assert!(Threshold::parse_usp("failures.timeout<1").unwrap().evaluate(&usp).passed);
        assert!(Threshold::parse_usp("Get.count<1").unwrap().evaluate(&usp).passed);
        assert_eq!(
            to_text(&[Threshold::parse_usp("Boot!.p99<1s").unwrap().evaluate(&usp)]),
            "thresholds: 0 of 1 passed\n  BREACHED Boot!.p99<1s (actual no data)\n"
        );
    }
}
