//! What a fleet run measures: an HdrHistogram per RPC (service time, and for the Inform and the
//! whole session also from the *scheduled* start, wrk2's method against coordinated omission),
//! the scheduler lag, and session outcomes by cause.
//!
//! A shard owns one [`Recorder`]; histograms are created with fixed bounds up front, so
//! `record` never allocates. At each report interval the shard hands its recorder to the main
//! thread and takes an empty one back (no locks); the main thread merges them ([`Recorder::add`]).
//!
//! - [`report`]: the final report (text table and JSON) and process figures.
//! - [`threshold`]: `--threshold 'Inform.p99<500ms'` rules.
//! - [`interval`]: the HdrHistogram interval log (`--hdr-log`) and `report merge`.
//! - [`timeline`]: a run's phases and its bounded time series (the progress line, the HTML report).
//! - [`exposition`]: the Prometheus text of a running run (`--metrics-bind-addr`).
//! - [`html`]: the self-contained HTML report (`--report-html`).
//! - [`run_id`]: the id every output of a run carries.
//! - [`merge`]: `report merge` of interval logs and JSON reports, refusing the same run twice.
//! - [`progress`]: the live progress line.

pub mod exposition;
pub mod html;
pub mod interval;
pub mod merge;
pub mod progress;
pub mod report;
pub mod run_id;
pub mod threshold;
pub mod timeline;

use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest value a histogram holds (1 hour, in µs); larger values are clamped.
const MAX_US: u64 = 3_600_000_000;

/// The metrics with a histogram, by index.
pub const METRICS: &[&str] = &[
    "Session",
    "Inform",
    "EmptyPost",
    "TransferComplete",
    "GetRPCMethods",
    "GetParameterValues",
    "SetParameterValues",
    "GetParameterNames",
    "GetParameterAttributes",
    "SetParameterAttributes",
    "AddObject",
    "DeleteObject",
    "Reboot",
    "FactoryReset",
    "Download",
    "Upload",
    "ScheduleInform",
    "GetQueuedTransfers",
    "GetAllQueuedTransfers",
    "ScheduleDownload",
    "CancelTransfer",
    "ChangeDUState",
    "SetVouchers",
    "GetOptions",
    "Unknown",
    "BadRequest",
    "Connect",
    // The Inform of a session a Connection Request started; from_scheduled counts from the wake-up.
    "ConnectionRequest",
];

/// Index of a metric name in [`METRICS`].
pub fn metric(name: &str) -> Option<usize> {
    METRICS.iter().position(|m| *m == name)
}

/// Metric indexes used on the hot path.
pub mod m {
    pub const SESSION: usize = 0;
    pub const INFORM: usize = 1;
    pub const EMPTY_POST: usize = 2;
    pub const TRANSFER_COMPLETE: usize = 3;
    pub const GET_RPC_METHODS: usize = 4;
    pub const CONNECT: usize = 26;
    pub const CONNECTION_REQUEST: usize = 27;
}

/// Why a session did not complete (or an Inform came due too late), for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Cause {
    Dns,
    Connect,
    Tls,
    Timeout,
    Auth,
    HttpStatus,
    Redirect,
    BodyTooLarge,
    Connection,
    BadUrl,
    AcsFault,
    Parse,
    Protocol,
    /// An Inform came due while the CPE's previous session was still open (k6's dropped
    /// iterations): counted, not queued.
    Late,
}

impl Cause {
    pub const ALL: [Cause; 14] = [
        Cause::Dns,
        Cause::Connect,
        Cause::Tls,
        Cause::Timeout,
        Cause::Auth,
        Cause::HttpStatus,
        Cause::Redirect,
        Cause::BodyTooLarge,
        Cause::Connection,
        Cause::BadUrl,
        Cause::AcsFault,
        Cause::Parse,
        Cause::Protocol,
        Cause::Late,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cause::Dns => "dns",
            Cause::Connect => "connect",
            Cause::Tls => "tls",
            Cause::Timeout => "timeout",
            Cause::Auth => "auth",
            Cause::HttpStatus => "http_status",
            Cause::Redirect => "redirect",
            Cause::BodyTooLarge => "body_too_large",
            Cause::Connection => "connection",
            Cause::BadUrl => "bad_url",
            Cause::AcsFault => "acs_fault",
            Cause::Parse => "parse",
            Cause::Protocol => "protocol",
            Cause::Late => "late",
        }
    }
}

/// Sessions under one key (an event code, an ACS endpoint): how many ended, and how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub completed: u64,
    pub failed: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.completed = self.completed.saturating_add(o.completed);
        self.failed = self.failed.saturating_add(o.failed);
    }
}

/// Number of single event codes (TR-069 Amd 6 §3.7.1.5 Table 7, `0 BOOTSTRAP` … `14 HEARTBEAT`).
pub const EVENT_CODES: usize = crate::cwmp::rpc::inform::EventCode::ALL.len();

/// Session counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub started: u64,
    pub completed: u64,
    /// Sessions still open when a stop's drain time ran out (neither completed nor failed).
    pub interrupted: u64,
    /// Periodic Informs that came due (started, joined a pending session, or late): the offered load.
    pub periodic_due: u64,
    /// CPU time the shards' own threads used, µs (the simulator's work, without start-up, the
    /// embedded ACS or the listeners).
    pub shard_cpu_us: u64,
    /// Failed sessions by cause (`Late` counts Informs that never started).
    pub failed: [u64; Cause::ALL.len()],
    /// HTTP statuses among `HttpStatus` failures.
    pub http_status: Vec<(u16, u64)>,
    /// The latest failure, worded for a person (after the reachability checklist).
    pub last_failure: Option<String>,
    /// Ended sessions by the single event codes their Inform carried, indexed by `EventCode as
    /// usize` (a session with `0 BOOTSTRAP` and `1 BOOT` counts under both).
    pub by_event: [Tally; EVENT_CODES],
    /// Ended sessions by ACS endpoint, indexed by the endpoint's index in the run's list (grown
    /// on first use; today one endpoint, the `--acs-url`).
    pub by_endpoint: Vec<Tally>,
}

impl Outcomes {
    /// Failed sessions (late Informs are not sessions).
    pub fn failed_sessions(&self) -> u64 {
        let all = self.failed.iter().fold(0u64, |a, n| a.saturating_add(*n));
        all.saturating_sub(self.failed[Cause::Late as usize])
    }

    pub fn late(&self) -> u64 {
        self.failed[Cause::Late as usize]
    }

    pub fn count(&mut self, cause: Cause) {
        self.failed[cause as usize] += 1;
    }

    pub fn count_status(&mut self, status: u16) {
        self.count(Cause::HttpStatus);
        match self.http_status.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => self.http_status.push((status, 1)),
        }
    }

    /// Counts one ended session under each event code in `events` (a bit set, bit `EventCode as
    /// u8`) and under ACS endpoint `endpoint`.
    pub fn count_session(&mut self, events: u16, endpoint: u16, ok: bool) {
        let bump = |t: &mut Tally| if ok { t.completed += 1 } else { t.failed += 1 };
        for (i, t) in self.by_event.iter_mut().enumerate() {
            if events & (1 << i) != 0 {
                bump(t);
            }
        }
        let e = endpoint as usize;
        if self.by_endpoint.len() <= e {
            self.by_endpoint.resize(e + 1, Tally::default());
        }
        if let Some(t) = self.by_endpoint.get_mut(e) {
            bump(t);
        }
    }

    /// CPEs booted: sessions with `1 BOOT` that completed (a first boot carries `0 BOOTSTRAP 1
    /// BOOT`, a resumed CPE `1 BOOT`); a reboot counts again, so callers cap it at the fleet.
    pub fn booted(&self) -> u64 {
        self.by_event[crate::cwmp::rpc::inform::EventCode::Boot as usize].completed
    }

    /// The causes with failures, most first (late Informs included), at most `n`.
    pub fn top_causes(&self, n: usize) -> Vec<(Cause, u64)> {
        let mut v: Vec<(Cause, u64)> = Cause::ALL.iter().map(|c| (*c, self.failed[*c as usize])).filter(|(_, n)| *n > 0).collect();
        v.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        v.truncate(n);
        v
    }

    fn add(&mut self, o: &Outcomes) {
        for (a, b) in self.by_event.iter_mut().zip(o.by_event.iter()) {
            a.add(b);
        }
        if self.by_endpoint.len() < o.by_endpoint.len() {
            self.by_endpoint.resize(o.by_endpoint.len(), Tally::default());
        }
        for (a, b) in self.by_endpoint.iter_mut().zip(o.by_endpoint.iter()) {
            a.add(b);
        }
        self.started = self.started.saturating_add(o.started);
        self.completed = self.completed.saturating_add(o.completed);
        self.interrupted = self.interrupted.saturating_add(o.interrupted);
        self.shard_cpu_us = self.shard_cpu_us.saturating_add(o.shard_cpu_us);
        self.periodic_due = self.periodic_due.saturating_add(o.periodic_due);
        if o.last_failure.is_some() {
            self.last_failure.clone_from(&o.last_failure);
        }
        for (a, b) in self.failed.iter_mut().zip(o.failed.iter()) {
            *a = a.saturating_add(*b);
        }
        for (s, n) in &o.http_status {
            match self.http_status.iter_mut().find(|(x, _)| x == s) {
                Some((_, m)) => *m = m.saturating_add(*n),
                None => self.http_status.push((*s, *n)),
            }
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid bounds")
}

/// One shard's (or the merged) measurements.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Service time per metric: from sending a message to its answer.
    pub service: Vec<Histogram<u64>>,
    /// Per metric, from the session's scheduled start to the answer (wrk2's method).
    pub from_scheduled: Vec<Histogram<u64>>,
    /// The simulator's own lateness: when a shard handled a due timer − when it was due.
    pub lag: Histogram<u64>,
    /// How long a due CPE waited for one of the `--max-connections` slots.
    pub slot_wait: Histogram<u64>,
    pub outcomes: Outcomes,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_US)
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            service: (0..METRICS.len()).map(|_| histogram()).collect(),
            from_scheduled: (0..METRICS.len()).map(|_| histogram()).collect(),
            lag: histogram(),
            slot_wait: histogram(),
            outcomes: Outcomes::default(),
        }
    }

    /// A recorder for totals that are only ever [`Recorder::add`]ed to (a phase's): its
    /// histograms start at their smallest (~16 kB, auto-resizing) and grow only as far as the
    /// values added to them, so the ~40 per-RPC histograms of RPCs a phase never saw stay small
    /// (a [`Recorder::new`] is ~8 MB: each histogram covers 1 µs … 1 h up front).
    pub fn sparse() -> Recorder {
        let h = || Histogram::new(3).expect("valid precision");
        Recorder {
            service: (0..METRICS.len()).map(|_| h()).collect(),
            from_scheduled: (0..METRICS.len()).map(|_| h()).collect(),
            lag: h(),
            slot_wait: h(),
            outcomes: Outcomes::default(),
        }
    }

    /// Records a service time for metric `idx`.
    #[inline]
    pub fn record(&mut self, idx: usize, d: Duration) {
        self.service[idx].saturating_record(us(d));
    }

    /// Records metric `idx` two ways: its service time and the time since the session's
    /// scheduled start.
    #[inline]
    pub fn record_both(&mut self, idx: usize, service: Duration, from_scheduled: Duration) {
        self.service[idx].saturating_record(us(service));
        self.from_scheduled[idx].saturating_record(us(from_scheduled));
    }

    /// Records a whole session: from its scheduled start and from its actual start.
    #[inline]
    pub fn record_session(&mut self, from_scheduled: Duration, service: Duration) {
        self.record_both(m::SESSION, service, from_scheduled);
    }

    /// The Inform's latency from the scheduled start.
    pub fn scheduled_inform(&self) -> &Histogram<u64> {
        &self.from_scheduled[m::INFORM]
    }

    /// The whole session's latency from the scheduled start.
    pub fn scheduled_session(&self) -> &Histogram<u64> {
        &self.from_scheduled[m::SESSION]
    }

    /// Records how late the simulator handled a due timer.
    #[inline]
    pub fn record_lag(&mut self, d: Duration) {
        self.lag.saturating_record(us(d).max(1));
    }

    /// Records how long a due CPE waited for a connection slot.
    #[inline]
    pub fn record_slot_wait(&mut self, d: Duration) {
        self.slot_wait.saturating_record(us(d).max(1));
    }

    /// Adds another recorder's measurements.
    pub fn add(&mut self, o: &Recorder) {
        // Most histograms of a report are empty (RPCs the ACS never sent): adding one would still
        // walk all its buckets.
        let pairs = self.service.iter_mut().zip(&o.service).chain(self.from_scheduled.iter_mut().zip(&o.from_scheduled));
        for (a, b) in pairs.chain([(&mut self.lag, &o.lag), (&mut self.slot_wait, &o.slot_wait)]) {
            if !b.is_empty() {
                a.add(b).expect("same bounds");
            }
        }
        self.outcomes.add(&o.outcomes);
    }

    /// Clears everything, keeping the allocations. Empty histograms are left alone (a reset
    /// writes all of a histogram's ~190 kB of buckets).
    pub fn reset(&mut self) {
        let all = self.service.iter_mut().chain(self.from_scheduled.iter_mut());
        for h in all.chain([&mut self.lag, &mut self.slot_wait]) {
            if !h.is_empty() {
                h.reset();
            }
        }
        // The endpoint list keeps its allocation (zeroed), so a swapped-back recorder counts its
        // first session of the interval without allocating.
        let mut endpoints = std::mem::take(&mut self.outcomes.by_endpoint);
        endpoints.iter_mut().for_each(|t| *t = Tally::default());
        self.outcomes = Outcomes { by_endpoint: endpoints, ..Outcomes::default() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The buckets a recorder holds, all histograms together.
    fn buckets(r: &Recorder) -> usize {
        r.service.iter().chain(&r.from_scheduled).chain([&r.lag, &r.slot_wait]).map(Histogram::distinct_values).sum()
    }

    #[test]
    fn a_sparse_recorder_stays_small_and_adds_up_exactly() {
        let mut full = Recorder::new();
        full.record_both(m::INFORM, Duration::from_millis(3), Duration::from_secs(2));
        full.record_lag(Duration::from_secs(3000));
        let mut sparse = Recorder::sparse();
        assert!(buckets(&sparse) * 10 < buckets(&Recorder::new()), "{} vs {}", buckets(&sparse), buckets(&Recorder::new()));
        sparse.add(&full);
        sparse.add(&full);
        // Grown only where values came: still a fraction of a full recorder.
        assert!(buckets(&sparse) * 4 < buckets(&Recorder::new()), "{}", buckets(&sparse));
        for (a, b) in sparse.service.iter().chain(&sparse.from_scheduled).zip(full.service.iter().chain(&full.from_scheduled)) {
            assert_eq!((a.len(), a.max(), a.value_at_quantile(0.5)), (2 * b.len(), b.max(), b.value_at_quantile(0.5)));
        }
        assert_eq!(sparse.lag.max(), full.lag.max());
        // And a sparse recorder adds into a full one.
        full.add(&sparse);
        assert_eq!(full.service[m::INFORM].len(), 3);
    }

    #[test]
    fn record_merge_reset() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        a.record(m::INFORM, Duration::from_millis(2));
        b.record(m::INFORM, Duration::from_millis(4));
        b.outcomes.count_status(503);
        b.outcomes.count(Cause::Late);
        a.add(&b);
        assert_eq!(a.service[m::INFORM].len(), 2);
        assert!(a.service[m::INFORM].max() >= 3_990);
        assert_eq!(a.outcomes.failed_sessions(), 1);
        assert_eq!(a.outcomes.late(), 1);
        assert_eq!(a.outcomes.http_status, vec![(503, 1)]);
        a.outcomes.count_session(0b11, 1, true);
        b.outcomes.count_session(0b10, 0, false);
        a.add(&b);
        assert_eq!(a.outcomes.by_event[0], Tally { completed: 1, failed: 0 });
        assert_eq!(a.outcomes.by_event[1], Tally { completed: 1, failed: 1 });
        assert_eq!(a.outcomes.by_endpoint, vec![Tally { completed: 0, failed: 1 }, Tally { completed: 1, failed: 0 }]);
        assert_eq!(a.outcomes.booted(), 1);
        assert_eq!(a.outcomes.top_causes(1), vec![(Cause::HttpStatus, 2)]);
        a.reset();
        assert_eq!(a.service[m::INFORM].len(), 0);
        assert_eq!(METRICS[m::CONNECT], "Connect");
        assert_eq!(metric("GetParameterValues"), Some(5));
    }
}
