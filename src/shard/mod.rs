//! Per-core shards of a fleet: one OS thread each, with a current-thread tokio runtime, its own
//! CPEs (a strided slice of the fleet's indices), its own timing wheel, connection pool and
//! recorder. Nothing on the per-session path is shared between shards; a shard talks to the main
//! thread only through channels, once per report interval.
//!
//! A CPE is only a `CpeState` in an array while idle (48 bytes, plus its timer). When a timer
//! fires, its state moves into a session future, joins the shard's bounded set of in-flight
//! sessions, and comes back when the session ends. An Inform that comes due while the CPE's
//! previous session is still open is counted as late, not queued.

pub mod timer;
pub mod wheel;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::connreq::CpeMsg;
use crate::cpe::{CpeState, DeferredAction, TransferRequest};
use crate::cwmp::template::InformTemplate;
use crate::model::{ChangeSet, DeviceId, Model};
use crate::runner::{next_cr, periodic_delay_at, periodic_period_ms, retry_wait, session, PeriodicPlan, Probe, SessionRun};
use crate::stats::{Cause, Recorder};
use crate::time::UnixMillis;
use crate::transport::auth::AuthState;
use crate::transport::conn::{Connection, Target};
use crate::transport::{fetch, Destination, TransportConfig};
use wheel::{TimerHandle, TimerKind, Wheel};

/// How first contacts are spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Boot {
    /// Uniformly over this long (zero: a boot storm).
    Spread(Duration),
    /// At this many CPEs per second.
    Rate(f64),
}

/// How sessions get connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionMode {
    /// A per-shard pool of keep-alive connections; a session holds one exclusively.
    Pooled,
    /// A fresh TCP/TLS connection per session, as real CPEs do.
    PerSession,
}

/// Everything the shards share, immutable.
pub struct FleetPlan {
    pub model: Arc<Model>,
    pub template: Arc<InformTemplate>,
    pub acs_url: String,
    pub transport: TransportConfig,
    /// Fleet size and the index of its first CPE (so processes can take disjoint slices).
    pub cpes: u32,
    pub first_index: u32,
    pub shards: u16,
    pub boot: Boot,
    pub periodic: PeriodicPlan,
    pub connection_mode: ConnectionMode,
    /// In-flight sessions (and so connections) per shard.
    pub max_in_flight: usize,
    pub report_every: Duration,
    /// Tick 0 of every shard's wheel (ms resolution).
    pub epoch: std::time::Instant,
    /// `--state-dir`: saved CPEs to resume and where to save snapshots.
    pub state: Option<crate::persist::Resume>,
}

/// What the main thread tells shards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Control {
    /// Finish the open sessions, start no new ones, report and stop.
    pub stop: bool,
    /// The current interval multiplier (a change re-schedules every periodic Inform).
    pub multiplier: f64,
}

/// What a shard sends each interval.
#[derive(Debug)]
pub struct ShardReport {
    pub shard: u16,
    /// CPEs this shard scheduled (sent once, right after start-up, with an empty recorder).
    pub scheduled: Option<u32>,
    pub recorder: Recorder,
    pub in_flight: usize,
    /// The last report of a stopped shard.
    pub last: bool,
}

/// Starts shard `id` on its own thread.
///
/// # Errors
/// The thread or its runtime could not be created.
pub fn spawn(
    plan: Arc<FleetPlan>,
    id: u16,
    reports: mpsc::Sender<ShardReport>,
    spares: mpsc::Receiver<Recorder>,
    control: watch::Receiver<Control>,
    cr: Option<tokio::sync::mpsc::UnboundedReceiver<CpeMsg>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(format!("shard-{id}")).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                warn!(shard = id, "cannot start the shard runtime: {e}");
                return;
            }
        };
        let span = tracing::info_span!("shard", id);
        let _g = span.enter();
        let shard = Shard::new(&plan, id);
        let _ = reports.send(ShardReport {
            shard: id,
            scheduled: Some(shard.cpes.len() as u32),
            recorder: Recorder::new(),
            in_flight: 0,
            last: false,
        });
        rt.block_on(shard.run(reports, spares, control, cr));
    })
}

/// How far ahead of its deadline a timer may fire when only tokio's millisecond timer is
/// available (half a tick; it wakes up to ~1–2 ms after its target). With the precise timer
/// (`timer::PreciseTimer`) timers fire at their deadline, never early.
const EARLY: Duration = Duration::from_micros(500);

/// Deferred work for one CPE (rare: kept in a map, not per CPE).
enum Work {
    ScheduledInform(Box<str>),
    Transfer(Box<TransferRequest>),
}

type SessionFuture<'a> = Pin<Box<dyn std::future::Future<Output = (u32, CpeState, AuthState, SessionRun)> + 'a>>;

struct Shard<'p> {
    plan: &'p FleetPlan,
    id: u16,
    /// Idle CPEs by local index (global index = first + id + k·shards).
    cpes: Vec<CpeState>,
    /// CPEs in a session (their state is in the session future).
    busy: Bits,
    /// CPEs in `ready`, so that none is queued twice.
    queued: Bits,
    periodic: Vec<Option<TimerHandle>>,
    /// Auth state of CPEs whose ACS challenged (most fleets never need one).
    auth: HashMap<u32, AuthState>,
    work: HashMap<u32, Vec<Work>>,
    wheel: Wheel,
    /// Due CPEs waiting for an in-flight slot: (local index, scheduled tick).
    ready: VecDeque<(u32, u64)>,
    idle_connections: Vec<Connection>,
    multiplier: f64,
    /// See [`EARLY`].
    early: Duration,
    /// Connection Request credentials of CPEs in a session, for the listener (only with one).
    busy_credentials: HashMap<u32, (String, String)>,
    /// CPEs woken by a Connection Request during their session.
    woken: std::collections::HashSet<u32>,
}

impl<'p> Shard<'p> {
    fn new(plan: &'p FleetPlan, id: u16) -> Shard<'p> {
        let shards = plan.shards as u32;
        let n = (plan.cpes + shards - 1 - id as u32) / shards;
        let now = UnixMillis::now();
        let mut cpes = Vec::with_capacity(n as usize);
        let mut wheel = Wheel::new(0, n as usize + 1024);
        let mut saved = plan.state.as_ref().map(|r| r.saved.lock().expect("saved states"));
        for k in 0..n {
            let rank = id as u32 + k * shards;
            let index = plan.first_index + rank;
            // A saved CPE powers on again (1 BOOT, pending M-events kept); others are new.
            let resumed = saved.as_mut().and_then(|m| m.remove(&index)).map(|mut cpe| {
                cpe.restart(now);
                cpe
            });
            cpes.push(resumed.unwrap_or_else(|| CpeState::new(DeviceId(index), now)));
            let at_ms = match plan.boot {
                Boot::Spread(d) => (d.as_millis() as u64).saturating_mul(rank as u64) / plan.cpes.max(1) as u64,
                Boot::Rate(r) => ((rank as f64 / r) * 1000.0) as u64,
            };
            wheel.insert(at_ms, k, TimerKind::Boot);
        }
        Shard {
            plan,
            id,
            busy: Bits::new(n as usize),
            queued: Bits::new(n as usize),
            periodic: vec![None; n as usize],
            cpes,
            auth: HashMap::new(),
            work: HashMap::new(),
            wheel,
            ready: VecDeque::new(),
            idle_connections: Vec::new(),
            multiplier: plan.periodic.multiplier,
            early: EARLY,
            busy_credentials: HashMap::new(),
            woken: Default::default(),
        }
    }

    /// The current tick: milliseconds since the fleet's epoch (a timer due at tick t fires from
    /// t − `early` on: zero with the precise timer).
    fn tick(&self) -> u64 {
        (self.plan.epoch.elapsed().as_micros() as u64 + self.early.as_micros() as u64) / 1000
    }

    fn instant_of(&self, tick: u64) -> Instant {
        Instant::from_std(self.plan.epoch) + Duration::from_millis(tick)
    }

    fn is_busy(&self, k: u32) -> bool {
        self.busy.get(k)
    }

    fn set_busy(&mut self, k: u32, b: bool) {
        self.busy.set(k, b);
    }

    /// Queues CPE `k` for a session (due at `tick`) unless it already waits for one.
    fn enqueue(&mut self, k: u32, tick: u64) {
        if !self.queued.get(k) {
            self.queued.set(k, true);
            self.ready.push_back((k, tick));
        }
    }

    fn periodic_plan(&self) -> PeriodicPlan {
        PeriodicPlan { multiplier: self.multiplier, ..self.plan.periodic }
    }

    /// (Re-)arms CPE `k`'s periodic timer from its current settings.
    fn arm_periodic(&mut self, k: u32) {
        if let Some(h) = self.periodic[k as usize].take() {
            self.wheel.cancel(h);
        }
        let plan = self.periodic_plan();
        // Look 2 ms ahead: timers fire up to 0.5 ms early, and the boundary just served must not
        // count again (that would be a second Inform within a millisecond).
        let ahead = Duration::from_millis(2);
        if let Some(d) = periodic_delay_at(&self.plan.model, &self.cpes[k as usize], &plan, UnixMillis::now().plus(ahead)) {
            let at = self.tick() + (d + ahead).as_millis() as u64;
            self.periodic[k as usize] = Some(self.wheel.insert(at, k, TimerKind::Periodic));
        }
    }

    /// Re-arms CPE `k`'s periodic timer after the one due at `deadline` fired: one period later
    /// (the phase is unchanged; settings that change it re-arm through [`Shard::arm_periodic`]),
    /// skipping boundaries already past when the shard fell behind.
    fn rearm_periodic_after(&mut self, k: u32, deadline: u64, now: u64) {
        let Some(period) = periodic_period_ms(&self.plan.model, &self.cpes[k as usize], &self.periodic_plan()) else { return };
        self.periodic[k as usize] = Some(self.wheel.insert(next_boundary(deadline, period, now), k, TimerKind::Periodic));
    }

    /// The local index of global CPE `index`, if this shard holds it.
    fn local(&self, index: u32) -> Option<u32> {
        let rel = index.checked_sub(self.plan.first_index)?;
        let shards = self.plan.shards as u32;
        (rel % shards == self.id as u32 && rel / shards < self.cpes.len() as u32).then_some(rel / shards)
    }

    /// Answers the Connection Request listener.
    fn connection_request(&mut self, msg: CpeMsg) {
        match msg {
            CpeMsg::Lookup { index, reply } => {
                let creds = self.local(index).and_then(|k| match self.is_busy(k) {
                    true => self.busy_credentials.get(&k).cloned(),
                    false => Some(self.plan.model.connection_request_credentials(self.cpes[k as usize].id, &self.cpes[k as usize].delta)),
                });
                let _ = reply.send(creds);
            }
            CpeMsg::Wake { index } => {
                let Some(k) = self.local(index) else { return };
                if self.is_busy(k) {
                    self.woken.insert(k);
                } else {
                    self.cpes[k as usize].connection_requested();
                    let now = self.tick();
                    self.enqueue(k, now);
                }
            }
            msg @ (CpeMsg::Inspect { .. } | CpeMsg::SetLocal { .. }) => {
                let Some(k) = self.local(msg.index()) else {
                    let _ = msg.refuse(crate::api::state::Refusal::new(404, "no such CPE in this shard"));
                    return;
                };
                if self.is_busy(k) {
                    let _ = msg.refuse_busy();
                    return;
                }
                let model = self.plan.model.clone();
                let cpe = &mut self.cpes[k as usize];
                match msg {
                    CpeMsg::Inspect { reply, .. } => {
                        let _ = reply.send(Ok(crate::api::state::inspect(&model, cpe, UnixMillis::now())));
                    }
                    CpeMsg::SetLocal { params, reply, .. } => {
                        let result = crate::api::state::set_local(&model, cpe, &params, UnixMillis::now());
                        if let (Ok(_), Some(r)) = (&result, &self.plan.state) {
                            r.sink.save(cpe);
                        }
                        if result == Ok(crate::api::state::Notify::Active) {
                            let now = self.tick();
                            self.enqueue(k, now);
                        }
                        let _ = reply.send(result);
                    }
                    _ => {}
                }
            }
        }
    }

    async fn run(
        mut self,
        reports: mpsc::Sender<ShardReport>,
        spares: mpsc::Receiver<Recorder>,
        mut control: watch::Receiver<Control>,
        mut cr: Option<tokio::sync::mpsc::UnboundedReceiver<CpeMsg>>,
    ) {
        let with_listener = cr.is_some();
        let plan = self.plan;
        let model: &Model = &plan.model;
        let template: &InformTemplate = &plan.template;
        // The ACS URL, parsed once for every session (a bad one fails each session, saying why).
        let target = Target::parse(&plan.acs_url).ok();
        let target = &target;
        // Declared before the session futures, which borrow it (never across an await).
        let recorder_cell = RefCell::new(Recorder::new());
        let recorder = &recorder_cell;
        let mut in_flight: FuturesUnordered<SessionFuture<'_>> = FuturesUnordered::new();
        let mut expired = Vec::new();
        let precise = timer::PreciseTimer::new().ok();
        if precise.is_some() {
            self.early = Duration::ZERO;
        }
        let mut next_report = self.tick() + plan.report_every.as_millis() as u64;
        let mut stopping = false;
        loop {
            let now = self.tick();
            expired.clear();
            self.wheel.advance(now, &mut expired);
            for e in &expired {
                if stopping {
                    break;
                }
                match e.kind {
                    TimerKind::Periodic => {
                        self.periodic[e.id as usize] = None;
                        // Due while the previous Inform is still open, or still waiting for a slot.
                        if self.is_busy(e.id) || self.queued.get(e.id) {
                            recorder.borrow_mut().outcomes.count(Cause::Late);
                        } else {
                            self.cpes[e.id as usize].periodic_due();
                            self.enqueue(e.id, e.deadline);
                        }
                        self.rearm_periodic_after(e.id, e.deadline, now);
                    }
                    TimerKind::Boot | TimerKind::Retry | TimerKind::Deferred => {
                        if self.is_busy(e.id) {
                            // It will be picked up when the running session ends.
                            continue;
                        }
                        self.enqueue(e.id, e.deadline);
                    }
                }
            }
            while !stopping && in_flight.len() < plan.max_in_flight {
                let Some((k, scheduled)) = self.ready.pop_front() else { break };
                self.queued.set(k, false);
                if self.is_busy(k) {
                    continue;
                }
                self.set_busy(k, true);
                let cpe = std::mem::replace(&mut self.cpes[k as usize], CpeState::new(DeviceId(u32::MAX), UnixMillis(0)));
                let auth = self.auth.remove(&k).unwrap_or_default();
                if with_listener {
                    self.busy_credentials.insert(k, plan.model.connection_request_credentials(cpe.id, &cpe.delta));
                }
                let work = self.work.remove(&k).unwrap_or_default();
                let conn = match plan.connection_mode {
                    ConnectionMode::Pooled => self.idle_connections.pop(),
                    ConnectionMode::PerSession => None,
                };
                let scheduled_at = self.instant_of(scheduled);
                // Disabled (and free) unless debug logging is on: then every line of the session
                // carries the CPE's id.
                let span = tracing::debug_span!("cpe", cpe_id = %cpe.id);
                in_flight.push(Box::pin(tracing::Instrument::instrument(
                    async move {
                        let (mut cpe, mut auth) = (cpe, auth);
                        for w in work {
                            match w {
                                Work::ScheduledInform(key) => cpe.scheduled_inform_due(&key),
                                Work::Transfer(req) => {
                                    let start = UnixMillis::now();
                                    let fault = fetch::perform(&plan.transport, &req).await;
                                    cpe.transfer_finished(&req, fault.as_ref().map(|(c, d)| (*c, d.as_str())), start, UnixMillis::now());
                                }
                            }
                        }
                        let probe = Probe { recorder, scheduled_at };
                        let run = {
                            let destination = match target {
                                Some(t) => Destination::Parsed(t),
                                None => Destination::Url(&plan.acs_url),
                            };
                            session(model, template, &mut cpe, &mut auth, destination, &plan.transport, conn, Some(probe), false).await
                        };
                        (k, cpe, auth, run)
                    },
                    span,
                )));
            }
            if now >= next_report {
                next_report += plan.report_every.as_millis() as u64;
                let fresh = spares.try_recv().unwrap_or_default();
                let r = std::mem::replace(&mut *recorder.borrow_mut(), fresh);
                let _ = reports.send(ShardReport { shard: self.id, scheduled: None, recorder: r, in_flight: in_flight.len(), last: false });
            }
            if stopping && in_flight.is_empty() {
                let r = std::mem::take(&mut *recorder.borrow_mut());
                let _ = reports.send(ShardReport { shard: self.id, scheduled: None, recorder: r, in_flight: 0, last: true });
                return;
            }
            let mut wake = next_report;
            if let Some(t) = self.wheel.next_event() {
                wake = wake.min(t);
            }
            if !self.ready.is_empty() && in_flight.len() < plan.max_in_flight {
                wake = now;
            }
            let wake_at = self.instant_of(wake);
            let sleep = async {
                match &precise {
                    Some(t) => {
                        t.arm_at(wake_at.into_std());
                        t.wait().await;
                    }
                    // tokio's timer wakes after its target; aim EARLY ahead.
                    None => tokio::time::sleep_until(wake_at.checked_sub(EARLY).unwrap_or_else(Instant::now)).await,
                }
            };
            tokio::select! {
                done = in_flight.next(), if !in_flight.is_empty() => {
                    if let Some((k, cpe, auth, run)) = done {
                        self.finished(k, cpe, auth, run);
                    }
                }
                _ = sleep => {}
                msg = next_cr(&mut cr) => self.connection_request(msg),
                changed = control.changed(), if !stopping => {
                    let c = *control.borrow();
                    if changed.is_err() || c.stop {
                        stopping = true;
                        for (k, _) in self.ready.drain(..) {
                            self.queued.set(k, false);
                        }
                    } else if c.multiplier != self.multiplier {
                        self.multiplier = c.multiplier;
                        for k in 0..self.cpes.len() as u32 {
                            if self.periodic[k as usize].is_some() {
                                self.arm_periodic(k);
                            }
                        }
                    }
                }
            }
        }
    }

    /// A session ended: put the CPE back, carry out what the ACS asked, arm its timers.
    fn finished(&mut self, k: u32, cpe: CpeState, auth: AuthState, run: SessionRun) {
        self.cpes[k as usize] = cpe;
        self.set_busy(k, false);
        self.busy_credentials.remove(&k);
        if self.woken.remove(&k) {
            self.cpes[k as usize].connection_requested();
            let now = self.tick();
            self.enqueue(k, now);
        }
        if auth.is_set() {
            self.auth.insert(k, auth);
        }
        if let Some(c) = run.conn {
            if self.plan.connection_mode == ConnectionMode::Pooled {
                self.idle_connections.push(c);
            }
        }
        let now = self.tick();
        for action in run.summary.actions {
            let cpe = &mut self.cpes[k as usize];
            match action {
                DeferredAction::Reboot { command_key } => {
                    cpe.reboot(&command_key, UnixMillis::now());
                    self.enqueue(k, now);
                }
                DeferredAction::FactoryReset => {
                    cpe.factory_reset(UnixMillis::now());
                    self.auth.remove(&k);
                    self.enqueue(k, now);
                }
                DeferredAction::ScheduleInform { delay, command_key } => {
                    self.work.entry(k).or_default().push(Work::ScheduledInform(command_key));
                    self.wheel.insert(now + delay.as_millis() as u64, k, TimerKind::Deferred);
                }
                DeferredAction::Transfer(req) => {
                    let at = now + req.delay.as_millis() as u64;
                    self.work.entry(k).or_default().push(Work::Transfer(Box::new(req)));
                    self.wheel.insert(at, k, TimerKind::Deferred);
                }
            }
        }
        let cpe = &self.cpes[k as usize];
        match run.failure {
            None => {
                if run.summary.changes.contains(ChangeSet::ACS_URL) {
                    debug!(cpe_id = %cpe.id, "the ACS changed ManagementServer.URL; a fleet keeps informing --acs-url");
                }
                if self.periodic[k as usize].is_none() || run.summary.changes.contains(ChangeSet::PERIODIC_INFORM) {
                    self.arm_periodic(k);
                }
            }
            Some(f) => {
                debug!(cpe_id = %cpe.id, retry_count = cpe.retry_count, "session failed: {}", f.message);
                let wait = retry_wait(&self.plan.model, cpe).max(f.retry_after.unwrap_or_default());
                self.wheel.insert(now + wait.as_millis() as u64, k, TimerKind::Retry);
            }
        }
        if let Some(r) = &self.plan.state {
            r.sink.save(&self.cpes[k as usize]);
        }
    }
}

/// The first tick after `now` on the grid `deadline + n·period` (n ≥ 1).
fn next_boundary(deadline: u64, period: u64, now: u64) -> u64 {
    let at = deadline + period;
    match at <= now {
        true => at + ((now - at) / period + 1) * period,
        false => at,
    }
}

/// One bit per CPE of a shard.
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }

    fn get(&self, k: u32) -> bool {
        self.0[k as usize / 64] & (1 << (k % 64)) != 0
    }

    fn set(&mut self, k: u32, on: bool) {
        let bit = 1 << (k % 64);
        if on {
            self.0[k as usize / 64] |= bit;
        } else {
            self.0[k as usize / 64] &= !bit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::next_boundary;

    #[test]
    fn periodic_boundaries_keep_their_phase_and_skip_what_is_past() {
        assert_eq!(next_boundary(100, 10, 100), 110);
        assert_eq!(next_boundary(100, 10, 105), 110);
        // Fallen behind: the next boundary after now, on the same grid.
        assert_eq!(next_boundary(100, 10, 110), 120);
        assert_eq!(next_boundary(100, 10, 135), 140);
        assert_eq!(next_boundary(0, 1, 0), 1);
    }
}
