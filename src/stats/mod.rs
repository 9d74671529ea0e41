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

pub mod interval;
pub mod report;
pub mod threshold;

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
}

impl Outcomes {
    /// Failed sessions (late Informs are not sessions).
    pub fn failed_sessions(&self) -> u64 {
        self.failed.iter().sum::<u64>() - self.failed[Cause::Late as usize]
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

    fn add(&mut self, o: &Outcomes) {
        self.started += o.started;
        self.completed += o.completed;
        self.interrupted += o.interrupted;
        self.shard_cpu_us += o.shard_cpu_us;
        self.periodic_due += o.periodic_due;
        if o.last_failure.is_some() {
            self.last_failure.clone_from(&o.last_failure);
        }
        for (a, b) in self.failed.iter_mut().zip(o.failed.iter()) {
            *a += b;
        }
        for (s, n) in &o.http_status {
            match self.http_status.iter_mut().find(|(x, _)| x == s) {
                Some((_, m)) => *m += n,
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
        self.outcomes = Outcomes::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        a.reset();
        assert_eq!(a.service[m::INFORM].len(), 0);
        assert_eq!(METRICS[m::CONNECT], "Connect");
        assert_eq!(metric("GetParameterValues"), Some(5));
    }
}
