//! One shard of the engine: an OS thread with a current-thread tokio runtime that runs a strided
//! slice of the CPEs (one CPE or millions), each with its [`Agenda`], on one timing wheel, with
//! its own connection pool and recorder. Nothing on the per-session path is shared between
//! shards; a shard talks to the main thread only through channels, once per report interval.
//!
//! A CPE is a `CpeState` and an `Agenda` in two arrays while idle, with one wheel timer at its
//! agenda's next deadline. When the agenda says a session starts, the CPE waits in the ready
//! queue for one of the shard's `--max-connections` slots, its state moves into a session
//! future, and comes back when the session ends, with what the session left behind handed to
//! the agenda. All policy (what is due, what is late, retries, deferred work) is the agenda's;
//! this file does the I/O around it.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::mpsc;
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;
use tracing::{debug, info, warn, Instrument};

use super::clock::Clock;
use super::phase::{self, PhaseKind};
use super::session::{session, Buffers, Probe, SessionCtx, SessionRun};
use super::timer::PreciseTimer;
use super::users::UserIndex;
use super::wheel::{TimerHandle, Wheel};
use super::{Boot, ConnectionMode, Control, Mode, Plan};
use crate::cpe::agenda::{owes_session, Agenda, SessionEnd, Wake, NEVER};
use crate::cpe::periodic::{self, PeriodicPlan};
use crate::cpe::{retry, CpeState, DeferredAction, TransferRequest};
use crate::model::{ChangeSet, DeviceId, Loc, ReadFor};
use crate::owners::CpeMsg;
use crate::stats::{Cause, Recorder};
use crate::time::UnixMillis;
use crate::transport::auth::AuthState;
use crate::transport::conn::{Connection, Target};
use crate::transport::Destination;

/// What a shard sends the main thread.
#[derive(Debug)]
pub struct ShardReport {
    pub shard: u16,
    /// CPEs this shard scheduled (sent once, right after start-up, with an empty recorder).
    pub scheduled: Option<u32>,
    pub recorder: Recorder,
    pub in_flight: usize,
    /// The last report of a stopped shard.
    pub last: bool,
    /// The shard died of a panic with this message (its last interval's figures are lost).
    pub panic: Option<String>,
    /// The CPEs' final states, in the last report, when the plan asks for them.
    pub states: Vec<CpeState>,
}

impl ShardReport {
    fn new(shard: u16, recorder: Recorder) -> ShardReport {
        ShardReport { shard, scheduled: None, recorder, in_flight: 0, last: false, panic: None, states: Vec::new() }
    }
}

/// Starts shard `id` on its own thread. A panic in the shard is caught and reported as its last
/// report (the run then fails, naming the shard).
///
/// # Errors
/// The thread could not be created.
pub fn spawn(
    plan: std::sync::Arc<Plan>,
    id: u16,
    reports: mpsc::Sender<ShardReport>,
    spares: mpsc::Receiver<Recorder>,
    control: watch::Receiver<Control>,
    owner: Option<tokio::sync::mpsc::UnboundedReceiver<CpeMsg>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let on_panic = {
        let reports = reports.clone();
        move |message: String| {
            let mut last = ShardReport::new(id, Recorder::new());
            last.last = true;
            last.panic = Some(message);
            let _ = reports.send(last);
        }
    };
    super::thread::spawn_shard(
        id,
        move |rt| {
            let shard = Shard::new(&plan, id);
            rt.block_on(shard.run(&reports, spares, control, owner));
        },
        on_panic,
    )
}

type SessionFuture<'a> = Pin<Box<dyn std::future::Future<Output = (u32, CpeState, AuthState, SessionRun)> + 'a>>;

struct Shard<'p> {
    plan: &'p Plan,
    id: u16,
    /// The CPEs by local index (global index = first + id + k·shards); a CPE in a session has a
    /// placeholder here while its state is in the session future.
    cpes: Vec<CpeState>,
    agendas: Vec<Agenda>,
    /// Each CPE's one wheel timer, at its agenda's next deadline.
    timers: Vec<TimerHandle>,
    /// CPEs with a timer armed (a one-shot shard ends when none is, and nothing runs).
    armed: usize,
    /// CPEs in a session.
    busy: Bits,
    /// CPEs in `ready`, so that none is queued twice.
    queued: Bits,
    /// CPEs whose periodic plan changed (a sweep step) while they were in a session.
    replan: Bits,
    wheel: Wheel,
    /// Wheel tick 0, in ms since the Unix epoch.
    epoch: u64,
    /// Due CPEs waiting for a slot: (local index, the tick they were due at, when queued).
    ready: VecDeque<(u32, u64, Instant)>,
    /// Due transfers of queued CPEs, performed when their session starts.
    transfers: HashMap<u32, Vec<TransferRequest>>,
    /// Auth state of CPEs whose ACS challenged (most fleets never need one).
    auth: HashMap<u32, AuthState>,
    /// CPEs the ACS moved to another URL (ManagementServer.URL).
    urls: HashMap<u32, Target>,
    /// Idle pooled connections, one pool per route (ACS endpoint × source address).
    idle_connections: Vec<Vec<Connection>>,
    /// Each CPE's route id (`Routes::route_id`); empty when the run has one route.
    routes: Vec<u16>,
    /// Where the scenario's phases stand on this shard.
    phases: PhaseRun,
    /// Phases that reached a CPE while it was in a session, applied when it ends (rare).
    pending: HashMap<u32, smallvec::SmallVec<[usize; 2]>>,
    multiplier: f64,
    /// Connection Request credentials of CPEs in a session, for the listener (only with one).
    busy_credentials: HashMap<u32, (String, String)>,
    /// CPEs woken by a Connection Request during their session.
    woken: HashSet<u32>,
    /// ConnectionRequestUsername → CPE, built on the first UDP Connection Request.
    users: Option<UserIndex>,
    scratch: Vec<TransferRequest>,
}

impl<'p> Shard<'p> {
    fn new(plan: &'p Plan, id: u16) -> Shard<'p> {
        let shards = plan.shards as u32;
        let n = (plan.cpes + shards - 1 - id as u32) / shards;
        let now = plan.clock.now();
        let mut cpes = Vec::with_capacity(n as usize);
        let mut agendas = Vec::with_capacity(n as usize);
        let mut saved = plan.state.as_ref().map(|r| r.saved.lock().unwrap_or_else(|e| e.into_inner()));
        for k in 0..n {
            let rank = id as u32 + k * shards;
            let index = plan.first_index + rank;
            let boot = now.0.saturating_add(boot_offset_ms(plan.boot, rank, plan.cpes));
            // A saved CPE powers on again (1 BOOT, pending M-events kept); others are new.
            let resumed = saved.as_mut().and_then(|m| m.remove(&index)).map(|mut cpe| {
                cpe.restart(UnixMillis(boot));
                cpe
            });
            cpes.push(resumed.unwrap_or_else(|| CpeState::new(DeviceId(index), UnixMillis(boot))));
            agendas.push(Agenda::idle());
        }
        drop(saved);
        // A resumed CPE whose ACS had set a URL of its own informs that URL again (only resumed
        // CPEs can have one, so a fresh fleet costs nothing here).
        let mut urls = HashMap::new();
        if plan.state.is_some() {
            for (k, cpe) in cpes.iter().enumerate() {
                if let Some(t) = own_target(plan, cpe) {
                    debug!(cpe_id = %cpe.id, acs_url = %crate::transport::without_userinfo(&t.url), "resumed at the ACS URL its ACS set");
                    urls.insert(k as u32, t);
                }
            }
        }
        // Each CPE's route, once (a serial hash renders the serial; round robin is arithmetic).
        let routes = if plan.routes.route_count() > 1 {
            (0..n)
                .map(|k| {
                    let rank = id as u32 + k * shards;
                    let endpoint = plan.endpoint_of(DeviceId(plan.first_index + rank));
                    plan.routes.route_id(endpoint, plan.routes.source_of(rank)) as u16
                })
                .collect()
        } else {
            Vec::new()
        };
        Shard {
            plan,
            id,
            routes,
            phases: PhaseRun::new(&plan.timeline),
            pending: HashMap::new(),
            busy: Bits::new(n as usize),
            queued: Bits::new(n as usize),
            replan: Bits::new(n as usize),
            timers: vec![TimerHandle::NONE; n as usize],
            armed: 0,
            cpes,
            agendas,
            wheel: Wheel::new(0, n as usize + 1024),
            epoch: now.0,
            ready: VecDeque::new(),
            transfers: HashMap::new(),
            auth: HashMap::new(),
            urls,
            idle_connections: (0..plan.routes.route_count()).map(|_| Vec::new()).collect(),
            multiplier: plan.periodic.multiplier,
            busy_credentials: HashMap::new(),
            woken: HashSet::new(),
            users: None,
            scratch: Vec::new(),
        }
    }

    /// Plans every CPE's first contact from `now` (`--boot-spread`/`--boot-rate`), once the shard
    /// is ready to run, so its own start-up does not count as lateness.
    fn boot(&mut self, now: u64) {
        let plan = self.plan;
        for k in 0..self.cpes.len() as u32 {
            let rank = self.rank(k);
            let boot = now.saturating_add(boot_offset_ms(plan.boot, rank, plan.cpes));
            self.agendas[k as usize] = Agenda::boot_at(boot);
            if plan.state.is_some() {
                // A test the CPE was running when the simulator stopped runs again after boot.
                self.rerun_diagnostics(k, boot);
            }
            self.rearm(k);
        }
    }

    fn tick_of(&self, t: u64) -> u64 {
        t.saturating_sub(self.epoch)
    }

    fn unix_of(&self, tick: u64) -> u64 {
        self.epoch.saturating_add(tick)
    }

    /// Files CPE `k`'s wheel timer at its agenda's next deadline (no timer when none).
    fn rearm(&mut self, k: u32) {
        let in_session = self.busy.get(k) || self.queued.get(k);
        let want = self.agendas[k as usize].next_deadline(in_session).map(|t| self.wheel.clamp(self.tick_of(t)));
        let handle = self.timers[k as usize];
        let have = self.wheel.deadline(handle);
        if want == have {
            return;
        }
        if have.is_some() {
            self.wheel.cancel(handle);
            self.armed -= 1;
        }
        self.timers[k as usize] = match want {
            Some(t) => {
                self.armed += 1;
                self.wheel.insert(t, k)
            }
            None => TimerHandle::NONE,
        };
    }

    /// Queues CPE `k` for a session (due at `tick`) unless it already waits for one.
    fn enqueue(&mut self, k: u32, tick: u64) {
        if !self.queued.get(k) {
            self.queued.set(k, true);
            self.ready.push_back((k, tick, Instant::now()));
        }
    }

    fn periodic_plan(&self) -> PeriodicPlan {
        PeriodicPlan { multiplier: self.multiplier, ..self.plan.periodic }
    }

    fn plan_periodic(&mut self, k: u32, now: u64) {
        let p = periodic::plan(self.plan.model_for(self.cpes[k as usize].id), &self.cpes[k as usize], &self.periodic_plan());
        self.agendas[k as usize].set_periodic(p, now);
    }

    /// CPE `k`'s timer, due at `tick`, fired at `now`.
    fn fire(&mut self, k: u32, tick: u64, now: u64, recorder: &mut Recorder) {
        self.timers[k as usize] = TimerHandle::NONE;
        self.armed -= 1;
        if matches!(self.plan.clock, Clock::System(_)) {
            let due = self.plan.clock.instant_of(UnixMillis(self.unix_of(tick)));
            recorder.record_lag(Instant::now().saturating_duration_since(due));
        }
        if self.agendas[k as usize].periodic().0 <= now {
            recorder.outcomes.periodic_due += 1;
        }
        if self.busy.get(k) || self.queued.get(k) {
            // Due while the previous session is open or still waiting for a slot: late, not queued.
            if self.agendas[k as usize].on_timeout_in_session(now) {
                recorder.outcomes.count(Cause::Late);
            }
        } else {
            let mut scratch = std::mem::take(&mut self.scratch);
            let start = self.agendas[k as usize].on_timeout(&mut self.cpes[k as usize], now, &mut scratch);
            if !scratch.is_empty() {
                self.transfers.entry(k).or_default().append(&mut scratch);
            }
            self.scratch = scratch;
            if let Some(reason) = start {
                debug!(cpe_id = %self.cpes[k as usize].id, ?reason, "session due");
                self.enqueue(k, tick);
            }
        }
        self.rearm(k);
    }

    /// The local index of global CPE `index`, if this shard holds it.
    fn local(&self, index: u32) -> Option<u32> {
        let rel = index.checked_sub(self.plan.first_index)?;
        let shards = self.plan.shards as u32;
        (rel % shards == self.id as u32 && rel / shards < self.cpes.len() as u32).then_some(rel / shards)
    }

    /// The global index of local CPE `k` (its state may be in a session future).
    fn global(&self, k: u32) -> u32 {
        self.plan.first_index + self.rank(k)
    }

    /// CPE `k`'s ConnectionRequestUsername/Password (a CPE in a session: as it started it).
    fn credentials(&self, k: u32) -> Option<(String, String)> {
        match self.busy.get(k) {
            true => self.busy_credentials.get(&k).cloned(),
            false => {
                let cpe = self.cpes.get(k as usize)?;
                Some(self.plan.model_for(cpe.id).connection_request_credentials(cpe.id, &cpe.delta))
            }
        }
    }

    /// CPE `k`'s Connection Request username may have changed: index its current one (only once
    /// a UDP Connection Request made the shard build its index).
    fn reindex_user(&mut self, k: u32) {
        if self.users.is_some() {
            if let Some((user, _)) = self.credentials(k) {
                if let Some(u) = self.users.as_mut() {
                    u.insert(&user, k);
                }
            }
        }
    }

    /// A span naming CPE `k` for its log lines: at info for a verbose (single-CPE) run, else at
    /// debug (disabled, and free, unless debug logging is on).
    fn span(&self, cpe: &CpeState) -> tracing::Span {
        if self.plan.verbose {
            let model = self.plan.model_for(cpe.id);
            let serial = model
                .well_known
                .serial_number
                .map(|n| model.device(cpe.id, &cpe.delta, cpe.boot_at, cpe.boot_at).value_string(&Loc::plain(n), ReadFor::Local))
                .unwrap_or_default();
            tracing::info_span!("cpe", cpe_id = %cpe.id, serial = %serial)
        } else {
            tracing::debug_span!("cpe", cpe_id = %cpe.id)
        }
    }

    /// Answers a listener's message (Connection Request or device state API).
    fn owner_message(&mut self, msg: CpeMsg, now: u64) {
        match msg {
            CpeMsg::Lookup { index, reply } => {
                let creds = self.local(index).and_then(|k| self.credentials(k));
                let _ = reply.send(creds);
            }
            CpeMsg::LookupUser { username, reply } => {
                if self.users.as_ref().is_none_or(|u| u.is_oversized(self.cpes.len())) {
                    let usernames: Vec<(u32, String)> =
                        (0..self.cpes.len() as u32).filter_map(|k| self.credentials(k).map(|(u, _)| (k, u))).collect();
                    self.users = Some(UserIndex::build(usernames.iter().map(|(k, u)| (*k, u.as_str()))));
                }
                let found = self.users.as_ref().and_then(|u| u.candidate(&username)).and_then(|k| {
                    let (user, pass) = self.credentials(k)?;
                    (*user == *username).then(|| (self.global(k), pass))
                });
                let _ = reply.send(found);
            }
            CpeMsg::Wake { index } => {
                let Some(k) = self.local(index) else { return };
                if self.phases.dark {
                    // Dark in an outage: nothing reaches it (see `wake`).
                    return;
                }
                if self.busy.get(k) {
                    self.woken.insert(k);
                } else {
                    if self.plan.verbose {
                        let _g = self.span(&self.cpes[k as usize]).entered();
                        info!("connection request: starting a session");
                    }
                    self.wake(k, Wake::ConnectionRequest, now);
                    self.rearm(k);
                }
            }
            msg @ (CpeMsg::Inspect { .. } | CpeMsg::SetLocal { .. }) => {
                let Some(k) = msg.index().and_then(|i| self.local(i)) else {
                    let _ = msg.refuse(crate::owners::Refusal::new(404, "no such CPE"));
                    return;
                };
                if self.busy.get(k) {
                    let _ = msg.refuse_busy();
                    return;
                }
                if self.phases.dark && matches!(msg, CpeMsg::SetLocal { .. }) {
                    // Powered off in a scenario's outage: nothing changes on it, nothing informs.
                    let _ = msg.refuse(crate::owners::Refusal::new(503, "the CPE is dark (a scenario's outage); retry after it"));
                    return;
                }
                let model = self.plan.model_for(self.cpes[k as usize].id).clone();
                let cpe = &mut self.cpes[k as usize];
                match msg {
                    CpeMsg::Inspect { reply, .. } => {
                        let _ = reply.send(Ok(crate::owners::answer::inspect(&model, cpe, UnixMillis(now))));
                    }
                    CpeMsg::SetLocal { params, reply, .. } => {
                        let result = crate::owners::answer::set_local(&model, cpe, &params, UnixMillis(now));
                        if let (Ok(_), Some(r)) = (&result, &self.plan.state) {
                            r.save(cpe);
                        }
                        if let Ok(n) = &result {
                            debug!(cpe_id = %cpe.id, parameters = params.len(), notification = ?n, "values changed locally");
                        }
                        if result.is_ok() {
                            self.reindex_user(k);
                        }
                        if result == Ok(crate::owners::Notify::Active) {
                            self.wake(k, Wake::ValueChange, now);
                            self.rearm(k);
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
        reports: &mpsc::Sender<ShardReport>,
        spares: mpsc::Receiver<Recorder>,
        mut control: watch::Receiver<Control>,
        mut owner: Option<tokio::sync::mpsc::UnboundedReceiver<CpeMsg>>,
    ) {
        let with_listener = owner.is_some();
        let plan = self.plan;
        // One context per fleet (the run's one model without fleets).
        let buffers = Buffers::default();
        let ctx_of = |model, template| SessionCtx {
            model,
            template,
            transport: &plan.transport,
            clock: &plan.clock,
            verbose: plan.verbose,
            buffers: &buffers,
        };
        let ctxs: Vec<SessionCtx<'_>> = match plan.fleets.is_empty() {
            true => vec![ctx_of(&plan.model, &plan.template)],
            false => plan.fleets.iter().map(|f| ctx_of(&f.model, &f.template)).collect(),
        };
        let ctxs = &ctxs;
        // Each route's URL, parsed once for every session (a bad one fails each session, saying
        // why), bound to the route's source address.
        let targets: Vec<Option<Target>> = (0..plan.routes.route_count())
            .map(|r| {
                let (endpoint, source) = plan.routes.split_route(r);
                Target::parse(plan.endpoint_url(endpoint)).ok().map(|t| t.with_source(source))
            })
            .collect();
        let targets = &targets;
        // Declared before the session futures, which borrow it (never across an await).
        let recorder_cell = RefCell::new(Recorder::new());
        let recorder = &recorder_cell;
        let mut in_flight: FuturesUnordered<SessionFuture<'_>> = FuturesUnordered::new();
        let mut expired = Vec::new();
        let precise = match plan.clock {
            Clock::System(_) => PreciseTimer::new().ok(),
            Clock::Manual(_) => None,
        };
        let started_ms = plan.clock.now().0;
        self.boot(started_ms);
        let mut cpu_reported = thread_cpu_us();
        let mut first = ShardReport::new(self.id, Recorder::new());
        first.scheduled = Some(self.cpes.len() as u32);
        let _ = reports.send(first);
        let mut next_report = Instant::now() + plan.report_every;
        let report_sleep = tokio::time::sleep_until(next_report.into());
        tokio::pin!(report_sleep);
        // Set once a stop is asked for: the drain deadline.
        let mut stopping: Option<Instant> = None;
        loop {
            let now = plan.clock.now().0;
            if stopping.is_none() {
                expired.clear();
                if !self.phases.idle {
                    self.run_phases(now.saturating_sub(started_ms), now);
                }
                self.wheel.advance(self.tick_of(now), &mut expired);
                let mut r = recorder.borrow_mut();
                for e in &expired {
                    self.fire(e.id, e.deadline, now, &mut r);
                }
            }
            while stopping.is_none() && in_flight.len() < plan.max_in_flight {
                let Some((k, scheduled, queued_at)) = self.ready.pop_front() else { break };
                self.queued.set(k, false);
                let transfers = take(&mut self.transfers, k).unwrap_or_default();
                if self.busy.get(k) || (transfers.is_empty() && !owes_session(&self.cpes[k as usize])) {
                    // Nothing owed any more (the wheel re-plans it).
                    self.rearm(k);
                    continue;
                }
                if let Some(since) = self.agendas[k as usize].value_change_since() {
                    // Another reason starts this session: changed values ride along now.
                    let model = plan.model_for(self.cpes[k as usize].id);
                    crate::cpe::notify::carry_pending(model, &mut self.cpes[k as usize], since, now);
                }
                self.busy.set(k, true);
                self.rearm(k);
                let scheduled_at = plan.clock.instant_of(UnixMillis(self.unix_of(scheduled)));
                recorder.borrow_mut().record_slot_wait(queued_at.elapsed());
                let cpe = std::mem::replace(&mut self.cpes[k as usize], CpeState::new(DeviceId(u32::MAX), UnixMillis(0)));
                let mut auth = take(&mut self.auth, k).unwrap_or_default();
                if with_listener {
                    self.busy_credentials.insert(k, plan.model_for(cpe.id).connection_request_credentials(cpe.id, &cpe.delta));
                }
                let own_url = if self.urls.is_empty() { None } else { self.urls.get(&k).cloned() };
                let route = self.route(k);
                let conn = match (plan.connection_mode, &own_url) {
                    (ConnectionMode::Pooled, None) => self.idle_connections[route].pop(),
                    _ => None,
                };
                let ctx = &ctxs[plan.fleet_of(cpe.id)];
                let target = &targets[route];
                let endpoint = plan.routes.split_route(route).0;
                let home_url = plan.endpoint_url(endpoint);
                let span = self.span(&cpe);
                in_flight.push(Box::pin(
                    async move {
                        let mut cpe = cpe;
                        for req in transfers {
                            // A slot first (--max-transfers); the session then carries the outcome.
                            let slot = plan.transfers.slots.acquire().await;
                            let start = plan.clock.now();
                            debug!(url = %crate::transport::without_userinfo(&req.url), command_key = %req.command_key, "transfer started");
                            let mut fault = super::transfer::perform(&plan.transport, &req, plan.transfers.timeout).await;
                            drop(slot);
                            if fault.is_none() && req.is_firmware() {
                                fault = cpe.install_firmware(plan.model_for(cpe.id), &req).map(|(c, d)| (c, d.to_string()));
                            }
                            match &fault {
                                None => debug!(command_key = %req.command_key, "transfer completed"),
                                Some((code, detail)) => {
                                    debug!(command_key = %req.command_key, fault_code = code.code(), "transfer failed: {detail}")
                                }
                            }
                            cpe.transfer_finished(&req, fault.as_ref().map(|(c, d)| (*c, d.as_str())), start, plan.clock.now());
                        }
                        let probe = Probe { recorder, scheduled_at: scheduled_at.into(), endpoint: endpoint as u16 };
                        let destination = match (&own_url, target) {
                            (Some(t), _) | (None, Some(t)) => Destination::Parsed(t),
                            (None, None) => Destination::Url(home_url),
                        };
                        let run = session(ctx, &mut cpe, &mut auth, destination, conn, Some(probe)).await;
                        (k, cpe, auth, run)
                    }
                    .instrument(span),
                ));
            }
            if Instant::now() >= next_report {
                next_report = Instant::now() + plan.report_every;
                if let Some(deadline) = stopping {
                    next_report = next_report.min(deadline);
                }
                report_sleep.as_mut().reset(next_report.into());
                let fresh = spares.try_recv().unwrap_or_default();
                let mut r = std::mem::replace(&mut *recorder.borrow_mut(), fresh);
                let cpu = thread_cpu_us();
                r.outcomes.shard_cpu_us = cpu.saturating_sub(cpu_reported);
                cpu_reported = cpu;
                let mut report = ShardReport::new(self.id, r);
                report.in_flight = in_flight.len();
                let _ = reports.send(report);
            }
            let drained = match stopping {
                Some(deadline) => in_flight.is_empty() || Instant::now() >= deadline,
                // A one-shot run ends when nothing is owed, planned or running.
                None => plan.mode == Mode::OneShot && in_flight.is_empty() && self.ready.is_empty() && self.armed == 0,
            };
            if drained {
                let interrupted = in_flight.len() as u64;
                if interrupted > 0 {
                    warn!(sessions = interrupted, "the drain time ran out: open sessions were cut");
                }
                drop(in_flight);
                let mut r = std::mem::take(&mut *recorder.borrow_mut());
                r.outcomes.interrupted += interrupted;
                r.outcomes.shard_cpu_us = thread_cpu_us().saturating_sub(cpu_reported);
                let mut report = ShardReport::new(self.id, r);
                report.last = true;
                if plan.return_states {
                    // CPEs whose session was cut at the drain have their state in that session.
                    let busy = &self.busy;
                    report.states = std::mem::take(&mut self.cpes)
                        .into_iter()
                        .enumerate()
                        .filter(|(k, _)| !busy.get(*k as u32))
                        .map(|(_, c)| c)
                        .collect();
                }
                let _ = reports.send(report);
                return;
            }
            let wheel_wake = match stopping {
                Some(_) => None,
                None if !self.ready.is_empty() && in_flight.len() < plan.max_in_flight => Some(now),
                None => {
                    let phase = self.next_phase_at(now.saturating_sub(started_ms)).map(|e| started_ms.saturating_add(e));
                    match (self.wheel.next_event().map(|t| self.unix_of(t)), phase) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    }
                }
            };
            let sleep = async {
                match wheel_wake {
                    Some(t) => plan.clock.sleep_until(UnixMillis(t), precise.as_ref()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                done = in_flight.next(), if !in_flight.is_empty() => {
                    if let Some((k, cpe, auth, run)) = done {
                        self.finished(k, cpe, auth, run, stopping.is_some(), &mut recorder.borrow_mut());
                    }
                }
                _ = sleep => {}
                _ = &mut report_sleep => {}
                msg = next_message(&mut owner) => self.owner_message(msg, plan.clock.now().0),
                changed = control.changed(), if stopping.is_none() => {
                    let c = *control.borrow();
                    if changed.is_err() || c.stop {
                        let deadline = Instant::now() + plan.drain_timeout;
                        stopping = Some(deadline);
                        next_report = next_report.min(deadline);
                        report_sleep.as_mut().reset(next_report.into());
                        for (k, _, _) in self.ready.drain(..) {
                            self.queued.set(k, false);
                        }
                    } else if c.multiplier != self.multiplier {
                        self.set_multiplier(c.multiplier, plan.clock.now().0);
                    }
                }
            }
        }
    }

    /// CPE `k`'s route id (ACS endpoint × source address).
    fn route(&self, k: u32) -> usize {
        if self.routes.is_empty() {
            0
        } else {
            self.routes[k as usize] as usize
        }
    }

    /// CPE `k`'s rank in the run (0-based).
    fn rank(&self, k: u32) -> u32 {
        self.id as u32 + k * self.plan.shards as u32
    }

    /// A new interval multiplier (a sweep step or a scenario phase): every periodic Inform is
    /// planned again from `now`.
    fn set_multiplier(&mut self, multiplier: f64, now: u64) {
        self.multiplier = multiplier;
        for k in 0..self.cpes.len() as u32 {
            if self.agendas[k as usize].periodic().0 == NEVER {
                continue;
            }
            // A CPE in a session has its state in the session: re-planned at its end.
            if self.busy.get(k) {
                self.replan.set(k, true);
            } else {
                self.plan_periodic(k, now);
                self.rearm(k);
            }
        }
    }

    /// Carries the scenario's phases forward to `elapsed` ms after the start (`now` on the
    /// clock): the multiplier they set, outages beginning and ending, wave steps due.
    fn run_phases(&mut self, elapsed: u64, now: u64) {
        let plan = self.plan;
        if self.phases.steers_multiplier {
            let m = plan.timeline.multiplier_at(elapsed, plan.periodic.multiplier);
            if m != self.multiplier {
                debug!(multiplier = m, "phase: interval multiplier");
                self.set_multiplier(m, now);
            }
        }
        let mut cursors = std::mem::take(&mut self.phases.cursors);
        for c in cursors.iter_mut().filter(|c| !c.done) {
            let phase = &plan.timeline.phases[c.phase];
            match &phase.kind {
                PhaseKind::Outage { storm_spread } => {
                    if c.step == 0 && elapsed >= c.start_ms {
                        c.step = 1;
                        debug!(phase = %phase.name, "outage: the CPEs go dark");
                        self.go_dark();
                    }
                    if c.step == 1 && elapsed >= c.start_ms.saturating_add(phase.duration.as_millis() as u64) {
                        c.step = 2;
                        c.done = true;
                        debug!(phase = %phase.name, "outage over: the CPEs power on (1 BOOT)");
                        self.power_back(c.phase, *storm_spread, now);
                    }
                }
                PhaseKind::RebootWave { share } | PhaseKind::ValueChangeWave { share, .. } => {
                    while (c.step as usize) < self.cpes.len() {
                        let rank = self.rank(c.step);
                        if elapsed < c.start_ms.saturating_add(phase::wave_offset_ms(phase.duration, rank, plan.cpes)) {
                            break;
                        }
                        let k = c.step;
                        c.step += 1;
                        if phase::picks(*share, rank, plan.cpes, c.phase as u64) && !self.phases.dark {
                            if self.busy.get(k) {
                                self.pending.entry(k).or_default().push(c.phase);
                            } else {
                                self.apply_phase(k, c.phase, now);
                            }
                        }
                    }
                    c.done = c.step as usize >= self.cpes.len();
                }
                _ => c.done = true,
            }
        }
        let all_done = cursors.iter().all(|c| c.done);
        self.phases.cursors = cursors;
        self.phases.idle = all_done && (!self.phases.steers_multiplier || plan.timeline.next_multiplier_change(elapsed).is_none());
    }

    /// The next instant (ms after the start) a phase acts on this shard, for its wake-up.
    fn next_phase_at(&self, elapsed: u64) -> Option<u64> {
        if self.phases.idle {
            return None;
        }
        let plan = self.plan;
        let mut next = if self.phases.steers_multiplier { plan.timeline.next_multiplier_change(elapsed) } else { None };
        for c in self.phases.cursors.iter().filter(|c| !c.done) {
            let phase = &plan.timeline.phases[c.phase];
            let t = match phase.kind {
                PhaseKind::Outage { .. } if c.step == 0 => c.start_ms,
                PhaseKind::Outage { .. } => c.start_ms.saturating_add(phase.duration.as_millis() as u64),
                _ => c.start_ms.saturating_add(phase::wave_offset_ms(phase.duration, self.rank(c.step), plan.cpes)),
            };
            next = Some(next.map_or(t, |n: u64| n.min(t)));
        }
        next
    }

    /// After CPE `k` boots at `at` (a resumed `--state-dir`, or a power cycle in a scenario): a
    /// diagnostic test it had requested or running runs again (a restart loses the test, not
    /// the request). The one rule for every restart.
    fn rerun_diagnostics(&mut self, k: u32, at: u64) {
        let plan = self.plan;
        let cpe = &self.cpes[k as usize];
        for run in crate::cpe::diagnostics::resume(plan.model_for(cpe.id), cpe, UnixMillis(at)) {
            self.agendas[k as usize].defer_diagnostic(run, at);
        }
    }

    /// Wakes CPE `k` at `at` (a Connection Request, an active notification): the one place a
    /// wake reaches an agenda, so a CPE dark in a scenario's outage is never woken.
    fn wake(&mut self, k: u32, kind: Wake, at: u64) {
        if self.phases.dark {
            return;
        }
        self.agendas[k as usize].on_wake(&mut self.cpes[k as usize], kind, at);
    }

    /// CPE `k` powers on at `now` and informs at `at` (`1 BOOT`).
    fn power_on(&mut self, k: u32, now: u64, at: u64) {
        self.agendas[k as usize].power_on(&mut self.cpes[k as usize], now, at);
        self.rerun_diagnostics(k, at.max(now));
    }

    /// An outage begins: no session starts (queued ones are dropped), idle CPEs plan nothing;
    /// CPEs in a session finish it and then go dark.
    fn go_dark(&mut self) {
        self.phases.dark = true;
        let queued: Vec<u32> = self.ready.drain(..).map(|(k, _, _)| k).collect();
        for k in queued {
            self.queued.set(k, false);
        }
        self.transfers.clear();
        for k in 0..self.cpes.len() as u32 {
            if !self.busy.get(k) {
                self.agendas[k as usize].power_off();
                self.rearm(k);
            }
        }
    }

    /// An outage (phase `phase`) ends at `now`: every CPE powers on (`1 BOOT`), spread over
    /// `spread` by rank; one still in a session powers on when it ends.
    fn power_back(&mut self, phase: usize, spread: std::time::Duration, now: u64) {
        self.phases.dark = false;
        for k in 0..self.cpes.len() as u32 {
            if self.busy.get(k) {
                self.pending.entry(k).or_default().push(phase);
                continue;
            }
            let at = now.saturating_add(phase::wave_offset_ms(spread, self.rank(k), self.plan.cpes));
            self.power_on(k, now, at);
            self.rearm(k);
        }
    }

    /// What phase `phase` does to idle CPE `k` at `now`: power on after an outage, power-cycle in
    /// a reboot wave, change a value in a value-change wave (an active notification owes
    /// `4 VALUE CHANGE` at once).
    fn apply_phase(&mut self, k: u32, phase: usize, now: u64) {
        let plan = self.plan;
        let cpe = &mut self.cpes[k as usize];
        match &plan.timeline.phases[phase].kind {
            PhaseKind::Outage { .. } | PhaseKind::RebootWave { .. } => {
                debug!(cpe_id = %cpe.id, phase = %plan.timeline.phases[phase].name, "power cycle (1 BOOT)");
                self.power_on(k, now, now);
            }
            PhaseKind::ValueChangeWave { parameter, value, .. } => {
                let model = plan.model_for(cpe.id).clone();
                let path = phase::under_root(parameter, model.tree.root_name()).into_owned();
                match crate::owners::answer::set_local(&model, cpe, &[(path, value.clone())], UnixMillis(now)) {
                    Ok(crate::owners::Notify::Active) => self.wake(k, Wake::ValueChange, now),
                    Ok(_) => {}
                    Err(r) => debug!(cpe_id = %cpe.id, parameter = %parameter, "value-change wave refused: {}", r.reason),
                }
            }
            _ => {}
        }
        self.rearm(k);
    }

    /// After CPE `k`'s session: dark during an outage, else the phases that reached it meanwhile.
    fn phases_after_session(&mut self, k: u32, now: u64) {
        if self.phases.dark {
            self.agendas[k as usize].power_off();
            take(&mut self.pending, k);
            return;
        }
        if let Some(list) = take(&mut self.pending, k) {
            for phase in list {
                self.apply_phase(k, phase, now);
            }
        }
    }

    /// A session ended: put the CPE back, hand what the session left to its agenda, re-arm.
    fn finished(&mut self, k: u32, cpe: CpeState, auth: AuthState, run: SessionRun, stopping: bool, recorder: &mut Recorder) {
        let plan = self.plan;
        let now = plan.clock.now().0;
        let _g = self.span(&cpe).entered();
        self.cpes[k as usize] = cpe;
        self.busy.set(k, false);
        take(&mut self.busy_credentials, k);
        if let Some(c) = run.conn {
            if plan.connection_mode == ConnectionMode::Pooled && (self.urls.is_empty() || !self.urls.contains_key(&k)) {
                let route = self.route(k);
                self.idle_connections[route].push(c);
            }
        }
        let daemon = plan.mode == Mode::Daemon;
        let retry_in = match &run.failure {
            Some(f) if daemon => Some(
                retry::wait_for(plan.model_for(self.cpes[k as usize].id), &self.cpes[k as usize]).max(f.retry_after.unwrap_or_default()),
            ),
            _ => None,
        };
        if plan.verbose {
            log_actions(&run.summary.actions);
            match (&run.failure, retry_in) {
                (Some(f), Some(wait)) => {
                    warn!(retry_count = self.cpes[k as usize].retry_count, "session failed: {}", f.message);
                    info!(wait_s = wait.as_secs_f64().round(), "retrying the session with TR-069 back-off");
                }
                (Some(f), None) => warn!(retry_count = self.cpes[k as usize].retry_count, "session failed: {}", f.message),
                (None, _) => {}
            }
        } else if let Some(f) = &run.failure {
            debug!(retry_count = self.cpes[k as usize].retry_count, "session failed: {}", f.message);
        }
        if let Some(f) = &run.failure {
            recorder.outcomes.last_failure = Some(f.message.clone());
        }
        let ok = run.failure.is_none();
        let changes = run.summary.changes;
        let end = SessionEnd { ok, actions: run.summary.actions, retry_in };
        let effects = self.agendas[k as usize].on_session_end(&mut self.cpes[k as usize], end, now);
        if effects.factory_reset {
            self.urls.remove(&k);
        }
        if !effects.restarted && auth.is_set() {
            self.auth.insert(k, auth);
        }
        if changes.contains(ChangeSet::ACS_URL) {
            self.follow_acs_url(k);
        }
        if changes.contains(ChangeSet::CONNECTION_REQUEST) || effects.factory_reset {
            self.reindex_user(k);
        }
        if !self.woken.is_empty() && self.woken.remove(&k) {
            if plan.verbose {
                info!("connection request during the session: another session follows");
            }
            self.wake(k, Wake::ConnectionRequest, now + crate::cpe::agenda::FOLLOW_UP_GAP_MS);
        }
        let replan = self.replan.get(k);
        self.replan.set(k, false);
        if daemon
            && (effects.factory_reset
                || replan
                || changes.contains(ChangeSet::PERIODIC_INFORM)
                || (ok && self.agendas[k as usize].periodic().0 == NEVER))
        {
            self.plan_periodic(k, now);
        }
        let model = plan.model_for(self.cpes[k as usize].id);
        if daemon && !model.generated.is_empty() {
            // Generated values with active notification: the next change after the throttle.
            let next = crate::cpe::notify::plan(model, &self.cpes[k as usize], now);
            self.agendas[k as usize].set_value_change(next, now);
        }
        if !daemon && !ok {
            // A one-shot CPE stops at its first failure.
            self.agendas[k as usize].clear_work();
        }
        if !daemon {
            let dropped = self.agendas[k as usize].drop_deferred_after(now.saturating_add(ONE_SHOT_HORIZON_MS));
            if dropped > 0 {
                warn!(
                    cpe_id = %self.cpes[k as usize].id,
                    dropped,
                    "a one-shot run does not wait more than 24 h for work the ACS scheduled; run with --duration to keep it"
                );
            }
        }
        if stopping {
            self.agendas[k as usize].clear_work();
        }
        if !stopping {
            self.phases_after_session(k, now);
        }
        if let Some(r) = &plan.state {
            r.save(&self.cpes[k as usize]);
        }
        self.rearm(k);
        if plan.verbose && !daemon {
            if let Some(next) = self.agendas[k as usize].next_deadline(false).filter(|t| *t > now + 1000) {
                info!(in_s = (next - now) / 1000, "waiting for work the ACS scheduled (Ctrl-C to stop)");
            }
        }
    }

    /// The ACS set ManagementServer.URL: CPE `k` informs the new one from its next session (back
    /// to the run's own URL when it set that one).
    fn follow_acs_url(&mut self, k: u32) {
        let plan = self.plan;
        let cpe = &self.cpes[k as usize];
        let Some(url) = plan.model_for(cpe.id).own_acs_url(&cpe.delta) else { return };
        let home = plan.endpoint_url(plan.routes.split_route(self.route(k)).0);
        let current = self.urls.get(&k).map_or(home, |t| t.url.as_str());
        if url == current {
            return;
        }
        let (shown, id, verbose) = (crate::transport::without_userinfo(url), cpe.id, plan.verbose);
        if url == home {
            match verbose {
                true => info!(acs_url = %shown, "the ACS changed ManagementServer.URL back to the run's; bootstrapping to it"),
                false => debug!(cpe_id = %id, acs_url = %shown, "the ACS changed ManagementServer.URL back to the run's"),
            }
            self.urls.remove(&k);
            self.auth.remove(&k);
            return;
        }
        match Target::parse(url) {
            Ok(t) => {
                let t = t.with_source(plan.routes.split_route(self.route(k)).1);
                match verbose {
                    true => info!(acs_url = %shown, "the ACS changed ManagementServer.URL; bootstrapping to the new ACS"),
                    false => debug!(cpe_id = %id, acs_url = %shown, "the ACS changed ManagementServer.URL"),
                }
                self.urls.insert(k, t);
                self.auth.remove(&k);
            }
            Err(e) => {
                warn!(cpe_id = %id, acs_url = %shown, "the ACS set ManagementServer.URL to an unusable URL; informing the old one: {e}")
            }
        }
    }
}

/// The parsed URL `cpe` informs when its ACS set one other than the run's (None: the run's).
fn own_target(plan: &Plan, cpe: &CpeState) -> Option<Target> {
    let url = plan.model_for(cpe.id).own_acs_url(&cpe.delta).filter(|u| *u != plan.endpoint_url(plan.endpoint_of(cpe.id)))?;
    let rank = cpe.id.0.wrapping_sub(plan.first_index);
    match Target::parse(url) {
        Ok(t) => Some(t.with_source(plan.routes.source_of(rank).map(|i| plan.routes.sources[i]))),
        Err(e) => {
            warn!(cpe_id = %cpe.id, acs_url = %crate::transport::without_userinfo(url), "the saved ManagementServer.URL is unusable; informing the run's: {e}");
            None
        }
    }
}

fn log_actions(actions: &[DeferredAction]) {
    for action in actions {
        match action {
            DeferredAction::Reboot { command_key } => info!(command_key = %command_key, "rebooting as the ACS asked"),
            DeferredAction::FactoryReset => info!("factory reset as the ACS asked"),
            DeferredAction::ScheduleInform { delay, command_key } => {
                info!(delay_s = delay.as_secs(), command_key = %command_key, "scheduled inform")
            }
            DeferredAction::Transfer(req) => {
                info!(url = %crate::transport::without_userinfo(&req.url), command_key = %req.command_key, delay_s = req.delay.as_secs(), "transfer scheduled")
            }
            DeferredAction::Diagnostic(run) => {
                info!(
                    test = run.kind.name(),
                    duration_ms = run.duration.as_millis() as u64,
                    end_state = run.end_state,
                    "diagnostic requested"
                )
            }
            DeferredAction::CancelDiagnostic(kind) => info!(test = kind.name(), "diagnostic canceled: an input changed"),
        }
    }
}

/// Removes `k` from a map that is almost always empty, without hashing when it is (the maps
/// beside the CPE arrays hold only the rare CPEs with a transfer, an auth challenge, a URL of
/// their own or a listener's snapshot; every session looks them up).
fn take<V>(map: &mut HashMap<u32, V>, k: u32) -> Option<V> {
    if map.is_empty() {
        None
    } else {
        map.remove(&k)
    }
}

/// Where a shard stands in the scenario's timeline.
struct PhaseRun {
    /// Nothing left to do (or never anything): the loop skips the timeline.
    idle: bool,
    /// The timeline has periodic or ramp phases that set the interval multiplier.
    steers_multiplier: bool,
    /// An outage is on: CPEs are dark.
    dark: bool,
    /// One per outage or wave, in timeline order.
    cursors: Vec<PhaseCursor>,
}

/// How far one outage or wave got on this shard.
struct PhaseCursor {
    /// Its index in the timeline.
    phase: usize,
    /// When it starts, ms after the run's start.
    start_ms: u64,
    /// An outage: 0 before, 1 dark, 2 over. A wave: the next local CPE to reach.
    step: u32,
    done: bool,
}

impl PhaseRun {
    fn new(timeline: &phase::Timeline) -> PhaseRun {
        let steers_multiplier = timeline.phases.iter().any(|p| matches!(p.kind, PhaseKind::Periodic { .. } | PhaseKind::Ramp { .. }));
        let cursors: Vec<PhaseCursor> =
            timeline.events().map(|(phase, start_ms, _)| PhaseCursor { phase, start_ms, step: 0, done: false }).collect();
        PhaseRun { idle: !steers_multiplier && cursors.is_empty(), steers_multiplier, dark: false, cursors }
    }
}

/// How far ahead a one-shot run waits for work the ACS scheduled (ScheduleInform, DelaySeconds).
const ONE_SHOT_HORIZON_MS: u64 = 24 * 3600 * 1000;

/// CPU time this thread has used, µs.
fn thread_cpu_us() -> u64 {
    // SAFETY: clock_gettime writes into the zeroed struct we own.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// When the CPE (or USP Agent) of rank `rank` (of `cpes`) first contacts its ACS or Controller,
/// in ms after the start: the one boot rule for both protocols. Saturates, never panics.
pub(crate) fn boot_offset_ms(boot: Boot, rank: u32, cpes: u32) -> u64 {
    match boot {
        Boot::Spread(d) => ((d.as_millis().min(u64::MAX as u128) as u64) as u128 * rank as u128 / cpes.max(1) as u128) as u64,
        // Float to integer casts saturate.
        Boot::Rate(r) => ((rank as f64 / r) * 1000.0) as u64,
    }
}

/// The next message from the listeners, or never when there is none.
async fn next_message(owner: &mut Option<tokio::sync::mpsc::UnboundedReceiver<CpeMsg>>) -> CpeMsg {
    match owner {
        Some(rx) => match rx.recv().await {
            Some(m) => m,
            None => {
                *owner = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
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
