//! The engine: one code path for one CPE or ten million. It starts one [`shard`] thread per core
//! (each runs its CPEs' agendas on a timing wheel), merges what the shards report once per
//! interval (recorders travel both ways, so nothing is allocated per interval once warm), prints
//! the progress line, writes the interval log, and decides when to stop: at the end of
//! `--duration`, on SIGINT/SIGTERM (open sessions get `--drain-timeout` to finish), or, in a
//! one-shot run, when no CPE owes anything. A shard that panics fails the run.
//!
//! - [`shard`]: a thread with a current-thread runtime, its CPEs, wheel, pool and recorder.
//! - [`thread`]: a shard's thread for both protocols (the USP run's shards use it too), its
//!   panic caught and named.
//! - [`session`]: one CWMP session over HTTP, measured.
//! - [`wheel`], [`timer`], [`clock`]: when things happen.
//! - [`transfer`]: Downloads and Uploads, and their TransferComplete faults.
//! - [`sweep`]: interval-multiplier sweeps on a live fleet.
//! - `ticks`: what each progress tick updates (timeline, progress line, `/metrics`, interval log).
//! - [`phase`]: a scenario's phases on the timeline; [`route`]: ACS endpoints and source
//!   addresses per CPE.

pub mod clock;
pub mod phase;
pub mod route;
pub mod session;
pub mod shard;
pub mod sweep;
pub mod thread;
pub(crate) mod ticks;
pub mod timer;
pub mod transfer;
pub mod users;
pub mod wheel;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::cpe::periodic::PeriodicPlan;
use crate::cpe::CpeState;
use crate::model::{DeviceId, Model};
use crate::owners::CpeMsg;
use crate::session::template::InformTemplate;
use crate::stats::report::{self, ProcessFigures, RunFacts};
use crate::stats::run_id::RunId;
use crate::stats::threshold::{Breach, Threshold, Verdict};
use crate::stats::timeline::Timeline;
use crate::stats::Recorder;
use crate::transport::TransportConfig;
use clock::Clock;
use shard::ShardReport;

/// How first contacts are spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Boot {
    /// Uniformly over this long (zero: a boot storm).
    Spread(Duration),
    /// At this many CPEs per second (finite, > 0).
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

/// How long CPEs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Until nothing is owed: the sessions the CPEs owe at start and every follow-up the ACS
    /// causes (reboots, scheduled informs, transfers); no periodic informs, and a CPE whose
    /// session fails stops there.
    OneShot,
    /// Periodic informs and retries with the TR-069 back-off, until the duration ends or a stop.
    Daemon,
}

/// Default most transfers in flight per process (`--max-transfers`).
pub const DEFAULT_MAX_TRANSFERS: usize = 64;

/// What bounds Downloads and Uploads: a CPE whose transfer is due waits for one of `slots` (shared
/// by every shard of the process), then has `timeout` for the whole transfer.
#[derive(Debug, Clone)]
pub struct TransferLimits {
    pub slots: Arc<tokio::sync::Semaphore>,
    pub max: usize,
    pub timeout: Duration,
}

impl TransferLimits {
    /// `max` (≥ 1) transfers at once, each within `timeout`.
    pub fn new(max: usize, timeout: Duration) -> TransferLimits {
        let max = max.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        TransferLimits { slots: Arc::new(tokio::sync::Semaphore::new(max)), max, timeout }
    }
}

/// Everything a run's shards share, immutable.
pub struct Plan {
    pub model: Arc<Model>,
    pub template: Arc<InformTemplate>,
    pub acs_url: String,
    pub transport: TransportConfig,
    /// Number of CPEs (≥ 1) and the index of the first (so processes can take disjoint slices).
    pub cpes: u32,
    pub first_index: u32,
    /// Shards (threads), 1..=cpes.
    pub shards: u16,
    pub boot: Boot,
    pub periodic: PeriodicPlan,
    pub mode: Mode,
    pub connection_mode: ConnectionMode,
    /// In-flight sessions (and so connections) per shard, ≥ 1.
    pub max_in_flight: usize,
    /// Transfers in flight across the process, and the time each may take.
    pub transfers: TransferLimits,
    /// How often shards report (≤ the progress interval).
    pub report_every: Duration,
    /// How long a stop waits for open sessions before cutting them.
    pub drain_timeout: Duration,
    pub clock: Clock,
    /// Log every session at info, each line naming the CPE (a single CPE's run).
    pub verbose: bool,
    /// Hand the CPEs' final states back in the outcome (a library user's or a test's small run).
    pub return_states: bool,
    /// `--state-dir`: saved CPEs to resume and where to save snapshots.
    pub state: Option<crate::persist::Resume>,
    /// A scenario's fleets in rank order (their `cpes` add up to the plan's); empty: every CPE
    /// runs `model`. With fleets, `model` and `template` are the first fleet's.
    pub fleets: Vec<Fleet>,
    /// ACS endpoints and source addresses per CPE (default: `acs_url`, no binding).
    pub routes: route::Routes,
    /// A scenario's phases from the run's start (default: none).
    pub timeline: phase::Timeline,
}

/// One fleet of a scenario: CPEs of one profile, with their own identity (OUI, serial template).
pub struct Fleet {
    pub name: String,
    pub model: Arc<Model>,
    pub template: Arc<InformTemplate>,
    /// How many CPEs (the next `cpes` ranks after the fleets before it).
    pub cpes: u32,
}

impl Fleet {
    /// A fleet of `cpes` CPEs of `model`.
    pub fn new(name: impl Into<String>, model: Arc<Model>, cpes: u32) -> Fleet {
        Fleet { name: name.into(), template: Arc::new(InformTemplate::new(&model)), model, cpes }
    }
}

impl Plan {
    /// A plan for `cpes` CPEs with the defaults of the command line: system clock, one shard,
    /// pooled connections, a boot storm, one-shot, 1 s reports, 5 s drain.
    pub fn new(model: Arc<Model>, acs_url: impl Into<String>, transport: TransportConfig, cpes: u32) -> Plan {
        Plan {
            template: Arc::new(InformTemplate::new(&model)),
            model,
            acs_url: acs_url.into(),
            transport,
            cpes: cpes.max(1),
            first_index: 0,
            shards: 1,
            boot: Boot::Spread(Duration::ZERO),
            periodic: PeriodicPlan::default(),
            mode: Mode::OneShot,
            connection_mode: ConnectionMode::Pooled,
            max_in_flight: 1024,
            transfers: TransferLimits::new(DEFAULT_MAX_TRANSFERS, crate::transport::fetch::DEFAULT_TRANSFER_TIMEOUT),
            report_every: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(5),
            clock: Clock::system(),
            verbose: false,
            return_states: false,
            state: None,
            fleets: Vec::new(),
            routes: route::Routes::default(),
            timeline: phase::Timeline::default(),
        }
    }

    /// The fleet CPE `id` belongs to (0 without fleets). This and [`Plan::endpoint_of`] are where
    /// a report finds a CPE's fleet and ACS endpoint.
    pub fn fleet_of(&self, id: DeviceId) -> usize {
        let rank = id.0.wrapping_sub(self.first_index);
        let mut end = 0u32;
        for (i, f) in self.fleets.iter().enumerate() {
            end = end.saturating_add(f.cpes);
            if rank < end {
                return i;
            }
        }
        self.fleets.len().saturating_sub(1)
    }

    /// The model CPE `id` runs.
    pub fn model_for(&self, id: DeviceId) -> &Arc<Model> {
        match self.fleets.is_empty() {
            true => &self.model,
            false => &self.fleets[self.fleet_of(id)].model,
        }
    }

    /// The ACS endpoint index (into `routes.endpoints`) CPE `id` informs, sticky across its
    /// sessions (round robin by rank, or a hash of its serial number).
    pub fn endpoint_of(&self, id: DeviceId) -> usize {
        self.routes.endpoint_of(id.0.wrapping_sub(self.first_index), || {
            let model = self.model_for(id);
            let now = crate::time::UnixMillis(0);
            model
                .well_known
                .serial_number
                .map(|n| {
                    model
                        .device(id, &crate::model::Delta::default(), now, now)
                        .value_string(&crate::model::Loc::plain(n), crate::model::ReadFor::Local)
                })
                .unwrap_or_default()
        })
    }

    /// The URL of endpoint `index` (the plan's `acs_url` without endpoints).
    pub fn endpoint_url(&self, index: usize) -> &str {
        self.routes.endpoints.get(index).map_or(self.acs_url.as_str(), String::as_str)
    }
}

impl Plan {
    /// Makes the run's ACS URL the default of ManagementServer.URL (see
    /// [`Model::publish_acs_url`]), so a GetParameterValues reads back the URL in use, and the
    /// run's ACS credentials, if any, those of ManagementServer.Username/Password
    /// ([`Model::publish_acs_credentials`]). A model shared elsewhere is copied once; the binary
    /// publishes before sharing, so nothing is.
    pub fn publish_acs_settings(&mut self) {
        let creds = self.transport.credentials.as_ref();
        let published = |m: &Model| m.publishes_acs_url(&self.acs_url) && (creds.is_none() || m.acs_credentials_from_run);
        if published(&self.model) && self.fleets.iter().all(|f| published(&f.model)) {
            return;
        }
        let model = Arc::make_mut(&mut self.model);
        model.publish_acs_url(&self.acs_url);
        if let Some(c) = creds {
            model.publish_acs_credentials(&c.username, &c.password);
        }
        self.template = Arc::new(InformTemplate::new(&self.model));
        // Each fleet reads back the same URL (the first endpoint with several) and credentials.
        for f in &mut self.fleets {
            let model = Arc::make_mut(&mut f.model);
            model.publish_acs_url(&self.acs_url);
            if let Some(c) = creds {
                model.publish_acs_credentials(&c.username, &c.password);
            }
            f.template = Arc::new(InformTemplate::new(&f.model));
        }
    }
}

/// What the main thread tells shards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Control {
    /// Finish the open sessions (within the drain time), start no new ones, report and stop.
    pub stop: bool,
    /// The current interval multiplier (a change re-schedules every periodic Inform).
    pub multiplier: f64,
}

static STOP: AtomicBool = AtomicBool::new(false);
/// The write end of the pipe a second signal writes to when something must be saved before the
/// process exits (`before_forced_exit`); -1 when nothing must.
static FORCED: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        // A second signal: the user does not want to wait for the drain.
        let fd = FORCED.load(Ordering::SeqCst);
        // SAFETY: write and _exit are async-signal-safe; the byte is a local.
        unsafe {
            if fd < 0 || libc::write(fd, [1u8].as_ptr().cast(), 1) != 1 {
                libc::_exit(1);
            }
        }
    }
}

/// Makes SIGINT and SIGTERM request a graceful stop (open sessions get `--drain-timeout`, the
/// report is printed); a second one exits at once with code 1 (after `before_forced_exit`'s work).
pub fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, writes a byte to a pipe or exits, which are
    // async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Has a second SIGINT/SIGTERM run `last` (for at most `within`) before the process exits with
/// code 1, rather than exit at once: `--state-dir` writes its last batch that way. One per process.
pub fn before_forced_exit(within: Duration, last: impl FnOnce() + Send + 'static) {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe fills the two descriptors we pass.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return;
    }
    let (rd, wr) = (fds[0], fds[1]);
    let watcher = move || {
        let mut byte = 0u8;
        loop {
            // SAFETY: reads one byte into a local.
            let n = unsafe { libc::read(rd, (&raw mut byte).cast(), 1) };
            if n == 1 {
                break;
            }
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        tracing::warn!("a second signal: writing the last batch of device state (at most {within:?}), then exiting");
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = std::thread::Builder::new().name("forced-exit-work".into()).spawn(move || {
            last();
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(within);
        // SAFETY: ends the process, as the signal handler would have.
        unsafe { libc::_exit(1) };
    };
    if std::thread::Builder::new().name("forced-exit".into()).spawn(watcher).is_ok() {
        FORCED.store(wr, Ordering::SeqCst);
    }
}

/// Whether a stop was requested by a signal.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Raises the open-files limit to its hard maximum (a fleet needs a socket per in-flight session).
pub fn raise_nofile_limit() -> Option<u64> {
    // SAFETY: getrlimit/setrlimit write/read the struct we own.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
        Some(lim.rlim_cur as u64)
    }
}

/// Output options of a run.
#[derive(Debug, Clone)]
pub struct Outputs {
    /// How often a progress tick runs (the progress line, the interval log, `/metrics`); 1 s by
    /// default, and never less than [`MIN_TICK`] (a zero would spin the run's loop).
    pub progress_every: Duration,
    pub report_json: Option<PathBuf>,
    pub hdr_log: Option<PathBuf>,
    pub thresholds: Vec<Threshold>,
    /// Print the progress line (off in tests).
    pub progress: bool,
    /// A copy of the running totals, refreshed at each progress tick (the API's `/metrics`).
    pub live: Option<Arc<std::sync::Mutex<Recorder>>>,
    /// Set to stop the run (as SIGINT/SIGTERM do), for library users and tests.
    pub stop: Option<Arc<AtomicBool>>,
    /// `--report-html`: the self-contained HTML report.
    pub report_html: Option<PathBuf>,
    /// The Prometheus text `--metrics-bind-addr` serves, refreshed at each progress tick.
    pub metrics: Option<crate::metrics::Exposition>,
    /// The run's id (a fresh one when `None`), in every output.
    pub run_id: Option<RunId>,
    /// The ACS ran embedded in this process: the report says it shared the CPUs.
    pub embedded_acs: bool,
}

/// The shortest progress tick the engine runs, whatever `Outputs::progress_every` says.
pub const MIN_TICK: Duration = Duration::from_millis(10);

impl Default for Outputs {
    fn default() -> Outputs {
        Outputs {
            progress_every: Duration::from_secs(1),
            report_json: None,
            hdr_log: None,
            thresholds: Vec::new(),
            progress: false,
            live: None,
            stop: None,
            report_html: None,
            metrics: None,
            run_id: None,
            embedded_acs: false,
        }
    }
}

/// The report's line for a run against the embedded ACS.
pub const EMBEDDED_ACS_NOTE: &str = "acs: embedded in this process; it shared the CPUs with the simulator, so latencies and CPU figures include its work (use --acs-url for an ACS of its own)";

impl Outputs {
    pub(crate) fn stop_requested(&self) -> bool {
        stop_requested() || self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
    }
}

/// The outcome of a run or a sweep step.
#[derive(Debug)]
pub struct FleetOutcome {
    pub total: Recorder,
    pub facts: RunFacts,
    pub json: Value,
    pub breaches: Vec<Breach>,
    /// Every `--threshold` rule checked, passed or not, in the order given.
    pub verdicts: Vec<Verdict>,
    /// Shards that died, as "shard N panicked: message" lines; the report lacks their figures.
    pub panics: Vec<String>,
    /// The CPEs' final states when the plan asked for them, in the order the shards ended (each
    /// shard's by local index; a CPE whose session was cut at the drain is missing).
    pub states: Vec<CpeState>,
    /// Output files that could not be written after the run started (`--report-json`,
    /// `--hdr-log`): the run went on and its report is still printed.
    pub output_errors: Vec<String>,
}

impl FleetOutcome {
    /// Whether every shard ran to its end (no panic).
    pub fn complete(&self) -> bool {
        self.panics.is_empty()
    }
}

/// A running fleet: its shards and the channels to them.
pub(crate) struct Running {
    pub(crate) control: watch::Sender<Control>,
    reports: mpsc::Receiver<ShardReport>,
    spares: Vec<mpsc::Sender<Recorder>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    pub(crate) in_flight: Vec<usize>,
    pub(crate) live: usize,
    started: Instant,
    /// Shards that have scheduled their CPEs, and how many CPEs that was.
    scheduled: (usize, u64),
    panics: Vec<String>,
    states: Vec<CpeState>,
    drain_timeout: Duration,
}

impl Running {
    pub(crate) fn start(plan: Arc<Plan>, mut owners: Vec<tokio::sync::mpsc::UnboundedReceiver<CpeMsg>>) -> std::io::Result<Running> {
        owners.reverse();
        let (control, control_rx) = watch::channel(Control { stop: false, multiplier: plan.periodic.multiplier });
        let (tx, reports) = mpsc::channel();
        let mut spares = Vec::new();
        let mut threads = Vec::new();
        for id in 0..plan.shards {
            let (spare_tx, spare_rx) = mpsc::channel();
            spares.push(spare_tx);
            threads.push(shard::spawn(plan.clone(), id, tx.clone(), spare_rx, control_rx.clone(), owners.pop())?);
        }
        let n = plan.shards as usize;
        Ok(Running {
            control,
            reports,
            spares,
            threads,
            in_flight: vec![0; n],
            live: n,
            started: Instant::now(),
            scheduled: (0, 0),
            panics: Vec::new(),
            states: Vec::new(),
            drain_timeout: plan.drain_timeout,
        })
    }

    /// Collects reports until `until`, until every shard has stopped, until a shard panics or
    /// `stop()` says so, merging them into `into`.
    pub(crate) fn collect(&mut self, until: Instant, into: &mut [&mut Recorder], stop: &dyn Fn() -> bool) {
        while self.live > 0 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.reports.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(r) => {
                    if let Some(n) = r.scheduled {
                        self.scheduled.0 += 1;
                        self.scheduled.1 += n as u64;
                        if self.scheduled.0 == self.in_flight.len() && self.scheduled.1 > 1 {
                            tracing::info!(
                                cpes = self.scheduled.1,
                                "scheduled every CPE in {:.0} ms",
                                self.started.elapsed().as_secs_f64() * 1000.0
                            );
                        }
                        continue;
                    }
                    for acc in into.iter_mut() {
                        acc.add(&r.recorder);
                    }
                    self.in_flight[r.shard as usize] = r.in_flight;
                    if let Some(message) = r.panic {
                        let line = thread::panic_line(r.shard, &message);
                        tracing::error!(shard = r.shard, "{line}; the run fails and its report is incomplete");
                        self.panics.push(line);
                        self.live -= 1;
                        return;
                    }
                    if r.last {
                        self.live -= 1;
                        self.states.extend(r.states);
                    } else {
                        let mut back = r.recorder;
                        back.reset();
                        let _ = self.spares[r.shard as usize].send(back);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if stop() {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.live = 0;
                    return;
                }
            }
        }
    }

    /// Tells every shard to stop, waits for their last reports (the drain time, plus a margin
    /// for the shards to notice), and joins the threads that ended.
    pub(crate) fn stop(&mut self, into: &mut [&mut Recorder]) {
        let m = self.control.borrow().multiplier;
        let _ = self.control.send(Control { stop: true, multiplier: m });
        self.collect(Instant::now() + self.drain_timeout + thread::STOP_MARGIN, into, &|| false);
        // A panic report ends `collect` early: keep collecting the others.
        while self.live > 0 && !self.panics.is_empty() {
            let before = self.live;
            self.collect(Instant::now() + self.drain_timeout + thread::STOP_MARGIN, into, &|| false);
            if self.live == before {
                break;
            }
        }
        // A shard that did not end in time is left behind; the process exits anyway.
        thread::join_finished(std::mem::take(&mut self.threads));
    }
}

/// Runs `plan` for `duration` (or until a stop, or in a one-shot run until nothing is owed),
/// reporting as `out` says. `owners` holds one listener receiver per shard, or nothing without
/// listeners.
///
/// # Errors
/// Shard threads that cannot start, or an output file that cannot be written.
pub fn run(
    mut plan: Plan,
    duration: Option<Duration>,
    out: &Outputs,
    owners: Vec<tokio::sync::mpsc::UnboundedReceiver<CpeMsg>>,
) -> anyhow::Result<FleetOutcome> {
    plan.publish_acs_settings();
    let plan = Arc::new(plan);
    let mut ticks = ticks::Ticks::start(&plan, out)?;
    ticks.begin_phase("run");
    let started = ticks.started;
    let mut running = Running::start(plan.clone(), owners)?;
    let mut total = Recorder::new();
    let mut interval = Recorder::new();
    let end = duration.map(|d| started + d);
    let stop = || out.stop_requested();
    let mut phase_shown = None;
    loop {
        let mut next = ticks.next_at().min(end.unwrap_or(ticks.next_at()));
        // Each phase is announced as it starts (and the loop wakes for the next one); the report's
        // timeline starts a section for it.
        if let Some(p) = plan.timeline.at(started.elapsed().as_millis() as u64) {
            next = next.min(started + Duration::from_millis(p.end_ms));
            // Phases shorter than a tick are announced too, late, in order.
            let first = phase_shown.map_or(0, |i: usize| i + 1);
            for (i, phase) in plan.timeline.phases.iter().enumerate().take(p.index + 1).skip(first) {
                tracing::info!(
                    phase = phase.name,
                    "phase {} of {} ({:.1}s)",
                    i + 1,
                    plan.timeline.phases.len(),
                    phase.duration.as_secs_f64()
                );
                ticks.begin_phase(&phase.name);
            }
            phase_shown = Some(p.index);
        }
        running.collect(next, &mut [&mut total, &mut interval], &stop);
        let now = Instant::now();

        if now >= next {
            ticks.tick(&mut interval, &total, running.in_flight.iter().sum(), now);
        }
        if stop() || end.is_some_and(|e| now >= e) || running.live == 0 || !running.panics.is_empty() {
            break;
        }
    }
    let open: usize = running.in_flight.iter().sum();
    if open > 0 {
        tracing::info!(sessions = open, "stopping: open sessions get up to {:?} to finish (again to exit at once)", plan.drain_timeout);
    }
    running.stop(&mut [&mut total, &mut interval]);
    let facts = ticks.last(&mut interval, &total);
    let mut outcome = finish(total, facts, out, &running.panics, &ticks.timeline, None)?;
    outcome.panics = std::mem::take(&mut running.panics);
    outcome.states = std::mem::take(&mut running.states);
    let mut output_errors = std::mem::take(&mut ticks.output_errors);
    output_errors.append(&mut outcome.output_errors);
    outcome.output_errors = output_errors;
    Ok(outcome)
}

/// The report of a run (or of a sweep's steps together): JSON with the thresholds' verdicts and
/// the endpoints' URLs, written to `--report-json` and, with the timeline (and the sweep table),
/// to `--report-html`.
pub(crate) fn finish(
    total: Recorder,
    facts: RunFacts,
    out: &Outputs,
    panics: &[String],
    timeline: &Timeline,
    sweep: Option<&Value>,
) -> anyhow::Result<FleetOutcome> {
    let process = ProcessFigures::now();
    let mut json = report::to_json(&total, &facts, &process);
    if let Some(endpoints) = json["endpoints"].as_array_mut() {
        for e in endpoints {
            let url = e["index"].as_u64().and_then(|i| timeline.endpoints.get(i as usize)).cloned();
            e["url"] = json!(url);
        }
    }
    let verdicts: Vec<Verdict> = out.thresholds.iter().map(|t| t.evaluate(&json)).collect();
    let breaches: Vec<Breach> = verdicts.iter().filter(|v| !v.passed).cloned().collect();
    json["thresholds"] = json!(verdicts.iter().map(Verdict::to_json).collect::<Vec<_>>());
    json["complete"] = json!(panics.is_empty());
    if out.embedded_acs {
        json["acs"] = json!({"embedded": true, "shared_cpus": true, "note": EMBEDDED_ACS_NOTE});
    }
    if !panics.is_empty() {
        json["panics"] = json!(panics);
    }
    let mut output_errors = Vec::new();
    if let Some(p) = &out.report_json {
        if let Err(e) = std::fs::write(p, serde_json::to_vec_pretty(&json).unwrap_or_default()) {
            output_errors.push(format!("--report-json {}: {e}", p.display()));
        }
    }
    if let Some(p) = &out.report_html {
        let t0 = Instant::now();
        let html = crate::stats::html::render(timeline, &json, sweep);
        match std::fs::write(p, &html) {
            Ok(()) => tracing::info!(
                bytes = html.len(),
                ms = t0.elapsed().as_millis() as u64,
                "--report-html {} written (open it in a browser; it needs no network)",
                p.display()
            ),
            Err(e) => output_errors.push(format!("--report-html {}: {e}", p.display())),
        }
    }
    Ok(FleetOutcome { total, facts, json, breaches, verdicts, panics: Vec::new(), states: Vec::new(), output_errors })
}
