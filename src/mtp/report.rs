//! What a USP run measures, and its report: connections held, Notify round trips per
//! notification type, messages handled per USP message type (with the Agent's processing time),
//! the embedded Controller's request round trips, failures by cause, dropped Records and errors
//! answered. Shared by every Agent task of a run behind one mutex (a few updates per message).
//!
//! The JSON report keeps every histogram whole (`"hdr"`: base64 of the HdrHistogram V2 deflate
//! encoding, the `--hdr-log` one) beside its quantiles, so `report merge` ([`super::merge`])
//! merges slices' latencies exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::usp::record::Dropped;
use crate::usp::MsgKind;

/// A latency histogram in microseconds, 1 µs … 1 h, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_micros() as u64).max(1));
}

/// The histogram as the JSON report keeps it: base64 of its V2 deflate encoding (empty when
/// it cannot be encoded, which a histogram of these bounds never fails).
pub fn encode(h: &Histogram<u64>) -> String {
    use base64::Engine as _;
    use hdrhistogram::serialization::Serializer as _;
    let mut raw = Vec::new();
    match hdrhistogram::serialization::V2DeflateSerializer::new().serialize(h, &mut raw) {
        Ok(_) => base64::engine::general_purpose::STANDARD.encode(raw),
        Err(_) => String::new(),
    }
}

/// The notification names the report counts Notifies by (`life::notify_name`'s names).
pub const NOTIFY_NAMES: [&str; 9] =
    ["Boot!", "Periodic!", "Event", "ValueChange", "ObjectCreation", "ObjectDeletion", "OperationComplete", "OnBoardRequest", "None"];

/// Why an Agent's connection ended or never started (counted, never a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConnFailure {
    /// TCP connect refused or reset (no broker listening, broker shut down).
    Refused,
    /// Connect, CONNACK or keep-alive timed out.
    Timeout,
    /// The broker answered CONNACK with an error (bad credentials, not authorized, …).
    ConnackRefused,
    /// TLS handshake or certificate failure.
    Tls,
    /// The connection dropped after it was up (I/O error, broker closed it).
    Lost,
    /// A protocol error: in the MQTT stream, or a WebSocket server that is not a USP Controller.
    Protocol,
}

impl ConnFailure {
    /// Every cause, in the report's order.
    pub const ALL: [ConnFailure; 6] = [
        ConnFailure::Refused,
        ConnFailure::Timeout,
        ConnFailure::ConnackRefused,
        ConnFailure::Tls,
        ConnFailure::Lost,
        ConnFailure::Protocol,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ConnFailure::Refused => "connect_refused",
            ConnFailure::Timeout => "timeout",
            ConnFailure::ConnackRefused => "connack_refused",
            ConnFailure::Tls => "tls",
            ConnFailure::Lost => "connection_lost",
            ConnFailure::Protocol => "protocol",
        }
    }
}

/// One notification type's round trips (Notify sent → NotifyResp received).
#[derive(Debug)]
pub struct NotifyFigures {
    pub sent: u64,
    pub answered: u64,
    pub retransmitted: u64,
    /// Given up after the retries.
    pub unanswered: u64,
    pub rtt: Histogram<u64>,
}

impl Default for NotifyFigures {
    fn default() -> Self {
        NotifyFigures { sent: 0, answered: 0, retransmitted: 0, unanswered: 0, rtt: histogram() }
    }
}

/// One message type's count and latency.
#[derive(Debug)]
pub struct Timed {
    pub count: u64,
    pub latency: Histogram<u64>,
}

impl Default for Timed {
    fn default() -> Self {
        Timed { count: 0, latency: histogram() }
    }
}

/// The Agents' side of a run.
#[derive(Debug, Default)]
pub struct AgentFigures {
    pub agents: u32,
    /// Connections up now, and the most at once.
    pub connected: u64,
    pub peak_connected: u64,
    /// Successful connects (CONNACK accepted) and their time from TCP connect to SUBACK.
    pub connects: u64,
    pub connect_time: Timed,
    pub failures: BTreeMap<ConnFailure, u64>,
    /// Agents whose first Boot! was answered.
    pub booted: u64,
    /// Notify round trips by notification (`Boot!`, `Periodic!`, `ValueChange`, …).
    pub notify: BTreeMap<&'static str, NotifyFigures>,
    /// Every notification's round trips in one histogram (the progress line's, read under the
    /// lock without merging the per-type ones each tick).
    pub notify_rtt: Timed,
    /// Messages the Agents handled, by type, with the time to build the answer.
    pub handled: BTreeMap<MsgKind, Timed>,
    /// Errors the Agents answered with, by code.
    pub refused: BTreeMap<u32, u64>,
    /// Records dropped, by cause.
    pub dropped: BTreeMap<Dropped, u64>,
    /// Publishes that could not be queued (the client's request queue was full).
    pub publish_failed: u64,
    /// Notifies a subscription asked for whose Recipient is not the run's Controller (the only
    /// Controller an Agent's MTP reaches): not sent.
    pub notify_no_route: u64,
}

impl AgentFigures {
    pub fn connected_now(&mut self, took: Duration) {
        self.connects += 1;
        self.connected += 1;
        self.peak_connected = self.peak_connected.max(self.connected);
        self.connect_time.count += 1;
        record(&mut self.connect_time.latency, took);
    }

    pub fn disconnected(&mut self) {
        self.connected = self.connected.saturating_sub(1);
    }

    pub fn notify_sent(&mut self, what: &'static str) {
        self.notify.entry(what).or_default().sent += 1;
    }

    pub fn notify_answered(&mut self, what: &'static str, rtt: Duration) {
        let n = self.notify.entry(what).or_default();
        n.answered += 1;
        record(&mut n.rtt, rtt);
        self.notify_rtt.count += 1;
        record(&mut self.notify_rtt.latency, rtt);
    }

    pub fn handled(&mut self, kind: MsgKind, took: Duration) {
        let t = self.handled.entry(kind).or_default();
        t.count += 1;
        record(&mut t.latency, took);
    }
}

/// The embedded Controller's side of a run.
#[derive(Debug, Default)]
pub struct ControllerFigures {
    /// Notifications received, by notification type.
    pub notifications: BTreeMap<&'static str, u64>,
    /// Endpoint IDs whose Boot! arrived.
    pub booted: BTreeSet<String>,
    /// Agents booted in merged reports (`report merge`), whose endpoint IDs are not kept.
    pub booted_merged: u64,
    /// Its own requests' round trips (request sent → response received), by message type.
    pub round_trips: BTreeMap<MsgKind, Timed>,
    /// Error messages the Agents answered its requests with.
    pub errors: u64,
    /// Records it could not read or that were not for it, and Boot! from endpoints that are not
    /// the run's Agents.
    pub dropped: u64,
    /// Its requests given up unanswered after the run's `--timeout` (the ones still in flight
    /// when the run ends are not counted).
    pub expired: u64,
}

impl ControllerFigures {
    /// Agents whose Boot! the Controller received.
    pub fn booted_agents(&self) -> u64 {
        (self.booted.len() as u64).saturating_add(self.booted_merged)
    }
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn line(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "-".into();
    }
    // The time style of every cpe-sim output (`850µs`, `12.3ms`, `1.25s`).
    let t = |q: f64| crate::stats::report::fmt_us(h.value_at_quantile(q));
    format!("p50 {}  p90 {}  p99 {}  max {}", t(0.5), t(0.9), t(0.99), crate::stats::report::fmt_us(h.max()))
}

fn json_latency(h: &Histogram<u64>) -> serde_json::Value {
    serde_json::json!({
        "count": h.len(),
        "p50_ms": ms(h, 0.5), "p90_ms": ms(h, 0.9), "p99_ms": ms(h, 0.99), "max_ms": h.max() as f64 / 1000.0,
        "hdr": encode(h),
    })
}

/// The report as text.
pub fn to_text(header: &str, a: &AgentFigures, c: Option<&ControllerFigures>, elapsed: Duration) -> String {
    let mut s = String::new();
    s.push_str(&format!("{header}\nelapsed {:.1} s\n", elapsed.as_secs_f64()));
    s.push_str(&format!(
        "connections: {} held at the end, peak {}, {} connects ({})\n",
        a.connected,
        a.peak_connected,
        a.connects,
        line(&a.connect_time.latency)
    ));
    s.push_str(&format!("agents booted (Boot! answered): {} of {}\n", a.booted, a.agents));
    s.push_str("notify round trips (Notify -> NotifyResp):\n");
    for (what, n) in &a.notify {
        s.push_str(&format!(
            "  {what:<18} sent {:>7}  answered {:>7}  retransmitted {:>5}  unanswered {:>5}  {}\n",
            n.sent,
            n.answered,
            n.retransmitted,
            n.unanswered,
            line(&n.rtt)
        ));
    }
    if !a.handled.is_empty() {
        s.push_str("messages handled by the agents (time to answer):\n");
        for (k, t) in &a.handled {
            s.push_str(&format!("  {:<20} {:>7}  {}\n", k.name(), t.count, line(&t.latency)));
        }
    }
    if let Some(c) = c {
        s.push_str(&format!("controller: Boot! from {} agents; notifications:", c.booted_agents()));
        for (what, n) in &c.notifications {
            s.push_str(&format!(" {what} {n}"));
        }
        s.push('\n');
        for (k, t) in &c.round_trips {
            s.push_str(&format!("  controller {:<9} round trips {:>7}  {}\n", k.name(), t.count, line(&t.latency)));
        }
        if c.errors > 0 || c.dropped > 0 || c.expired > 0 {
            s.push_str(&format!(
                "  controller: {} errors answered, {} records dropped, {} requests expired unanswered\n",
                c.errors, c.dropped, c.expired
            ));
        }
    }
    let failures: Vec<String> = a.failures.iter().map(|(k, n)| format!("{} {n}", k.name())).collect();
    s.push_str(&format!("failures by cause: {}\n", if failures.is_empty() { "none".into() } else { failures.join(", ") }));
    if !a.dropped.is_empty() {
        let d: Vec<String> = a.dropped.iter().map(|(k, n)| format!("{} {n}", k.name())).collect();
        s.push_str(&format!("records dropped: {}\n", d.join(", ")));
    }
    if !a.refused.is_empty() {
        let r: Vec<String> = a.refused.iter().map(|(k, n)| format!("{k} {n}")).collect();
        s.push_str(&format!("errors answered: {}\n", r.join(", ")));
    }
    if a.notify_no_route > 0 {
        s.push_str(&format!("notifies for another Controller (not sent): {}\n", a.notify_no_route));
    }
    if a.publish_failed > 0 {
        s.push_str(&format!("publishes not queued: {}\n", a.publish_failed));
    }
    s
}

impl AgentFigures {
    /// Notifies sent so far, every notification type.
    pub fn notifies_sent(&self) -> u64 {
        self.notify.values().map(|n| n.sent).sum()
    }
}

/// One progress tick of a USP run, for the HTML report's charts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Tick {
    /// Since the run started, and the span since the tick before.
    at: Duration,
    span: Duration,
    connected: u64,
    booted: u64,
    /// Notifies sent and answered in the span.
    sent: u64,
    answered: u64,
    /// Connection failures so far.
    failures: u64,
}

/// The progress ticks of a USP run (`--report-html`'s time series): at most
/// [`crate::stats::timeline::MAX_SAMPLES`] points, neighbours merged pairwise beyond (gauges
/// the later one's, counts summed, so a rate is over the merged span), whatever the run's length.
#[derive(Debug, Default)]
pub struct Ticks {
    ticks: Vec<Tick>,
    /// Notifies sent and answered at the last tick.
    sent: u64,
    answered: u64,
}

impl Ticks {
    /// Records the figures `a` at `at` since the run started.
    pub fn record(&mut self, a: &AgentFigures, at: Duration) {
        let (sent, answered) = (a.notifies_sent(), a.notify.values().map(|n| n.answered).sum::<u64>());
        let span = at.saturating_sub(self.ticks.last().map_or(Duration::ZERO, |t| t.at));
        self.ticks.push(Tick {
            at,
            span,
            connected: a.connected,
            booted: a.booted,
            sent: sent.saturating_sub(self.sent),
            answered: answered.saturating_sub(self.answered),
            failures: a.failures.values().sum(),
        });
        (self.sent, self.answered) = (sent, answered);
        if self.ticks.len() > crate::stats::timeline::MAX_SAMPLES {
            let old = std::mem::take(&mut self.ticks);
            self.ticks = old
                .chunks(2)
                .map(|p| match p {
                    [a, b] => Tick { span: a.span + b.span, sent: a.sent + b.sent, answered: a.answered + b.answered, ..*b },
                    [a] => *a,
                    _ => unreachable!("chunks of at most 2"),
                })
                .collect();
        }
    }

    /// Like [`Ticks::record`] for the run's end: a last sliver shorter than `short` is merged
    /// into the tick before (a rate over a sliver would be a spike or a dip).
    pub fn record_last(&mut self, a: &AgentFigures, at: Duration, short: Duration) {
        self.record(a, at);
        if self.ticks.len() >= 2 && self.ticks.last().is_some_and(|t| t.span < short) {
            if let (Some(b), Some(prev)) = (self.ticks.pop(), self.ticks.pop()) {
                self.ticks.push(Tick { span: prev.span + b.span, sent: prev.sent + b.sent, answered: prev.answered + b.answered, ..b });
            }
        }
    }

    /// The series as `stats::html::render_usp` reads them.
    pub fn to_json(&self) -> serde_json::Value {
        let rate = |n: u64, span: Duration| (n as f64 / span.as_secs_f64().max(1e-3) * 10.0).round() / 10.0;
        serde_json::json!({
            "t_s": self.ticks.iter().map(|t| (t.at.as_secs_f64() * 10.0).round() / 10.0).collect::<Vec<_>>(),
            "connected": self.ticks.iter().map(|t| t.connected).collect::<Vec<_>>(),
            "booted": self.ticks.iter().map(|t| t.booted).collect::<Vec<_>>(),
            "sent_per_s": self.ticks.iter().map(|t| rate(t.sent, t.span)).collect::<Vec<_>>(),
            "answered_per_s": self.ticks.iter().map(|t| rate(t.answered, t.span)).collect::<Vec<_>>(),
            "failures": self.ticks.iter().map(|t| t.failures).collect::<Vec<_>>(),
        })
    }

    pub fn len(&self) -> usize {
        self.ticks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ticks.is_empty()
    }
}

/// One progress line of a USP run (stderr, every `--progress-interval`), in the CWMP line's
/// style ([`crate::stats::progress`]):
///
/// ```text
/// [  12.0s] run | booted 1000 of 1000 | connected 1000 (peak 1000) | 83.3 notifies/s | failed 2 (timeout 2) | unanswered 0 | Notify p50 1.2ms p99 3.4ms
/// ```
///
/// Counts are run totals; `notifies_per_s` is the caller's rate (of the interval, or of the whole
/// run on the last line); the Notify round trips are the run's so far, every notification type.
pub fn progress_line(elapsed: Duration, phase: &str, a: &AgentFigures, notifies_per_s: f64) -> String {
    let rtt = &a.notify_rtt.latency;
    let q = |x: f64| if rtt.is_empty() { "-".to_string() } else { crate::stats::report::fmt_us(rtt.value_at_quantile(x)) };
    let mut causes: Vec<(ConnFailure, u64)> = a.failures.iter().map(|(c, n)| (*c, *n)).filter(|(_, n)| *n > 0).collect();
    causes.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    let failed: u64 = causes.iter().map(|(_, n)| n).sum();
    let top: Vec<String> = causes.iter().take(2).map(|(c, n)| format!("{} {n}", c.name())).collect();
    let failed = match top.is_empty() {
        true => format!("failed {failed}"),
        false => format!("failed {failed} ({})", top.join(", ")),
    };
    format!(
        "[{:>6.1}s] {phase} | booted {} of {} | connected {} (peak {}) | {notifies_per_s:.1} notifies/s | {failed} | unanswered {} | Notify p50 {} p99 {}",
        elapsed.as_secs_f64(),
        a.booted,
        a.agents,
        a.connected,
        a.peak_connected,
        a.notify.values().map(|n| n.unanswered).sum::<u64>(),
        q(0.5),
        q(0.99),
    )
}

/// The figures as Prometheus text (`--metrics-bind-addr`, refreshed each progress tick), in
/// [`crate::stats::exposition`]'s format. Labels are the run id, notification, message type and
/// cause, never an Agent: the series count stays fixed however large the fleet. Families:
/// `cpesim_run_info{run_id,protocol="usp"}`, `cpesim_cpes`, `cpesim_cpes_booted` (Boot! answered),
/// `cpesim_usp_connections` (held now), `cpesim_usp_connections_peak`,
/// `cpesim_usp_connects_total`, `cpesim_usp_connect_seconds` (summary, TCP connect to ready),
/// `cpesim_usp_connection_failures_total{cause}`, `cpesim_usp_notifies_total{notification,outcome}`
/// (outcome `sent`, `answered`, `retransmitted`, `unanswered`),
/// `cpesim_usp_notify_round_trip_seconds{notification}` (summary),
/// `cpesim_usp_message_seconds{msg_type}` (summary of the Agents' time to answer; `_count` is
/// the messages handled), `cpesim_usp_records_dropped_total{cause}`,
/// `cpesim_usp_errors_answered_total{code}`, `cpesim_usp_publish_failed_total`,
/// `cpesim_usp_notify_no_route_total`, and with the embedded Controller
/// `cpesim_usp_controller_notifications_total{notification}` and
/// `cpesim_usp_controller_round_trip_seconds{msg_type}` (summary).
pub fn to_exposition(run_id: &str, a: &AgentFigures, c: Option<&ControllerFigures>) -> String {
    let mut f = crate::stats::exposition::Families::default();
    f.head("cpesim_run_info", "gauge", "The run (its id) and its protocol.");
    f.sample("cpesim_run_info", &[("run_id", run_id), ("protocol", "usp")], 1);
    f.head("cpesim_cpes", "gauge", "USP Agents simulated by this run.");
    f.sample("cpesim_cpes", &[], a.agents);
    f.head("cpesim_cpes_booted", "gauge", "Agents whose first Boot! Notify was answered.");
    f.sample("cpesim_cpes_booted", &[], a.booted);
    f.head("cpesim_usp_connections", "gauge", "Agents' MTP connections up now.");
    f.sample("cpesim_usp_connections", &[], a.connected);
    f.head("cpesim_usp_connections_peak", "gauge", "Most MTP connections up at once.");
    f.sample("cpesim_usp_connections_peak", &[], a.peak_connected);
    f.head("cpesim_usp_connects_total", "counter", "Successful MTP connects (reconnects count again).");
    f.sample("cpesim_usp_connects_total", &[], a.connects);
    f.head("cpesim_usp_connect_seconds", "summary", "Time from TCP connect to a connection ready for Records.");
    f.summary("cpesim_usp_connect_seconds", &[], &a.connect_time.latency);
    f.head("cpesim_usp_connection_failures_total", "counter", "Connections that failed or ended, by cause.");
    for cause in ConnFailure::ALL {
        f.sample("cpesim_usp_connection_failures_total", &[("cause", cause.name())], a.failures.get(&cause).copied().unwrap_or(0));
    }
    f.head("cpesim_usp_notifies_total", "counter", "Notify messages by notification and outcome.");
    for (what, n) in &a.notify {
        for (outcome, v) in [("sent", n.sent), ("answered", n.answered), ("retransmitted", n.retransmitted), ("unanswered", n.unanswered)] {
            f.sample("cpesim_usp_notifies_total", &[("notification", what), ("outcome", outcome)], v);
        }
    }
    f.head("cpesim_usp_notify_round_trip_seconds", "summary", "Notify sent to NotifyResp received, by notification.");
    for (what, n) in &a.notify {
        f.summary("cpesim_usp_notify_round_trip_seconds", &[("notification", what)], &n.rtt);
    }
    f.head("cpesim_usp_message_seconds", "summary", "Messages the Agents handled by type, and their time to answer.");
    for (k, t) in &a.handled {
        f.summary("cpesim_usp_message_seconds", &[("msg_type", k.name())], &t.latency);
    }
    f.head("cpesim_usp_records_dropped_total", "counter", "Records the Agents dropped, by cause.");
    for cause in Dropped::ALL {
        f.sample("cpesim_usp_records_dropped_total", &[("cause", cause.name())], a.dropped.get(&cause).copied().unwrap_or(0));
    }
    f.head("cpesim_usp_errors_answered_total", "counter", "USP Error messages the Agents answered with, by error code.");
    for (code, n) in &a.refused {
        f.sample("cpesim_usp_errors_answered_total", &[("code", &code.to_string())], n);
    }
    f.head("cpesim_usp_publish_failed_total", "counter", "Records that could not be queued for sending.");
    f.sample("cpesim_usp_publish_failed_total", &[], a.publish_failed);
    f.head("cpesim_usp_notify_no_route_total", "counter", "Notifies for a Controller other than the run's (not sent).");
    f.sample("cpesim_usp_notify_no_route_total", &[], a.notify_no_route);
    if let Some(c) = c {
        f.head("cpesim_usp_controller_notifications_total", "counter", "Notifications the embedded Controller received.");
        for (what, n) in &c.notifications {
            f.sample("cpesim_usp_controller_notifications_total", &[("notification", what)], n);
        }
        f.head("cpesim_usp_controller_round_trip_seconds", "summary", "The embedded Controller's requests, sent to answered, by type.");
        for (k, t) in &c.round_trips {
            f.summary("cpesim_usp_controller_round_trip_seconds", &[("msg_type", k.name())], &t.latency);
        }
    }
    f.out
}

/// The report's `"run"` section: the run id and the Agents' slice (`first_index..first_index+cpes`)
/// and shards, which `report merge` reads back ([`super::merge`]).
pub fn run_json(id: &str, cpes: u64, first_index: u32, shards: u32) -> serde_json::Value {
    serde_json::json!({"id": id, "cpes": cpes, "first_index": first_index, "shards": shards})
}

/// The report as JSON (`--report-json`).
pub fn to_json(a: &AgentFigures, c: Option<&ControllerFigures>, elapsed: Duration) -> serde_json::Value {
    let notify: serde_json::Map<String, serde_json::Value> = a
        .notify
        .iter()
        .map(|(k, n)| {
            (
                k.to_string(),
                serde_json::json!({
                    "sent": n.sent, "answered": n.answered, "retransmitted": n.retransmitted,
                    "unanswered": n.unanswered, "round_trip": json_latency(&n.rtt),
                }),
            )
        })
        .collect();
    let handled: serde_json::Map<String, serde_json::Value> = a
        .handled
        .iter()
        .map(|(k, t)| (k.name().to_string(), serde_json::json!({"count": t.count, "latency": json_latency(&t.latency)})))
        .collect();
    let controller = c.map(|c| {
        serde_json::json!({
            "booted_agents": c.booted_agents(),
            "notifications": c.notifications,
            "round_trips": c.round_trips.iter().map(|(k, t)| (k.name().to_string(), serde_json::json!({"count": t.count, "latency": json_latency(&t.latency)}))).collect::<serde_json::Map<_, _>>(),
            "errors": c.errors,
            "dropped": c.dropped,
            "expired": c.expired,
        })
    });
    serde_json::json!({
        "schema": crate::stats::report::USP_SCHEMA,
        "protocol": "usp",
        "elapsed_s": elapsed.as_secs_f64(),
        "agents": a.agents,
        "connections": {
            "held": a.connected, "peak": a.peak_connected, "connects": a.connects,
            "connect_time": json_latency(&a.connect_time.latency),
        },
        "booted": a.booted,
        "notify": notify,
        "handled": handled,
        "failures": a.failures.iter().map(|(k, n)| (k.name().to_string(), *n)).collect::<BTreeMap<_, _>>(),
        "dropped": a.dropped.iter().map(|(k, n)| (k.name().to_string(), *n)).collect::<BTreeMap<_, _>>(),
        "errors_answered": a.refused.iter().map(|(k, n)| (k.to_string(), *n)).collect::<BTreeMap<_, _>>(),
        "publish_failed": a.publish_failed,
        "notify_no_route": a.notify_no_route,
        "controller": controller,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_stay_bounded_and_keep_their_counts() {
        let mut t = Ticks::default();
        let mut a = AgentFigures { agents: 10, ..AgentFigures::default() };
        for i in 1..=5000u64 {
            a.notify_sent("Periodic!");
            a.connected = i % 10;
            t.record(&a, Duration::from_secs(i));
        }
        assert!(t.len() <= crate::stats::timeline::MAX_SAMPLES && t.len() > 100, "{}", t.len());
        let j = t.to_json();
        // One Notify a second, whatever the merging.
        assert!(j["sent_per_s"].as_array().unwrap().iter().all(|r| r.as_f64() == Some(1.0)), "{j}");
        assert_eq!(j["t_s"].as_array().unwrap().last().unwrap().as_f64(), Some(5000.0));
        assert_eq!(j["connected"].as_array().unwrap().last().unwrap().as_u64(), Some(0));
    }
}
