//! Running one simulated CPE against an ACS over the network: its sessions, the deferred work the
//! ACS asked for (reboot, factory reset, scheduled informs, transfers), retries with the TR-069
//! back-off, and periodic informs in daemon mode.
//!
//! One-shot mode (the default) runs the CPE's sessions until nothing more is owed (the bootstrap
//! session, and any follow-up the ACS caused, such as the session after a Reboot or the
//! TransferComplete after a Download) and stops at the first failure. Daemon mode keeps going
//! with periodic informs and retries until its duration ends or the caller signals shutdown; an
//! open session is always finished first.

use std::cell::RefCell;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::connreq::CpeMsg;
use crate::cpe::{retry, CpeState, DeferredAction, TransferRequest};
use crate::cwmp::rpc::inform::EventCode;
use crate::cwmp::template::InformTemplate;
use crate::model::{ChangeSet, Loc, Model, ReadFor};
use crate::session::{AcsReply, Session, SessionError, SessionSummary, State, Step};
use crate::stats::{self, Cause, Recorder};
use crate::time::{parse_datetime, UnixMillis};
use crate::transport::auth::AuthState;
use crate::transport::conn::Connection;
use crate::transport::{fetch, Destination, FailureKind, HttpSession, TransportConfig, TransportError};

/// How long to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Until nothing more is owed; stop at the first failed session.
    OneShot,
    /// With periodic informs and retries, for this long (or until shutdown).
    Daemon { duration: Option<Duration> },
}

/// What a run needs besides the CPE.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub acs_url: String,
    pub transport: TransportConfig,
    pub mode: Mode,
    /// `--state-dir`: where to save the CPE after each session and local change.
    pub state: Option<crate::persist::StateSink>,
}

/// How a run went.
#[derive(Debug, Default, Clone)]
pub struct RunReport {
    pub completed: u32,
    pub failed: u32,
    /// The last failure, worded for a person.
    pub last_error: Option<String>,
    /// The run ended on a shutdown signal.
    pub interrupted: bool,
}

enum Work {
    ScheduledInform(Box<str>),
    Transfer(Box<TransferRequest>),
}

/// Runs `cpe` until its mode says stop.
pub async fn run_cpe(
    model: &Model,
    template: &InformTemplate,
    cpe: &mut CpeState,
    opts: &RunOptions,
    mut shutdown: watch::Receiver<bool>,
    mut cr: Option<mpsc::UnboundedReceiver<CpeMsg>>,
) -> RunReport {
    let mut report = RunReport::default();
    let mut auth = AuthState::default();
    let mut url = opts.acs_url.clone();
    let mut timers: Vec<(Instant, Work)> = Vec::new();
    let mut retry_at: Option<Instant> = None;
    let daemon = matches!(opts.mode, Mode::Daemon { .. });
    let deadline = match opts.mode {
        Mode::Daemon { duration: Some(d) } => Some(Instant::now() + d),
        _ => None,
    };
    let mut next_periodic = if daemon { next_periodic_inform(model, cpe) } else { None };
    // An active notification changed locally (the API): a `4 VALUE CHANGE` session is due.
    let mut value_change_due = false;
    loop {
        if *shutdown.borrow() {
            report.interrupted = true;
            break;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        // Timers that are due add their events (and transfers happen now, before the session).
        let mut i = 0;
        while i < timers.len() {
            if timers[i].0 <= now {
                match timers.swap_remove(i).1 {
                    Work::ScheduledInform(key) => cpe.scheduled_inform_due(&key),
                    Work::Transfer(req) => {
                        let start = UnixMillis::now();
                        info!(url = %req.url, command_key = %req.command_key, "transfer started");
                        let fault = fetch::perform(&opts.transport, &req).await;
                        match &fault {
                            None => info!(command_key = %req.command_key, "transfer completed"),
                            Some((code, detail)) => {
                                warn!(command_key = %req.command_key, fault_code = code.code(), "transfer failed: {detail}")
                            }
                        }
                        cpe.transfer_finished(&req, fault.as_ref().map(|(c, d)| (*c, d.as_str())), start, UnixMillis::now());
                    }
                }
            } else {
                i += 1;
            }
        }
        if next_periodic.is_some_and(|t| t <= now) {
            cpe.periodic_due();
            next_periodic = next_periodic_inform(model, cpe);
        }
        // Passive value changes wait for the next Inform; an active one is owed now.
        let owed = !cpe.events.is_empty() || value_change_due;
        if owed && retry_at.is_none_or(|t| t <= now) {
            // The listener must be answered during the session too: from a snapshot of the
            // credentials, with a Connection Request applied once the session ends.
            let creds = model.connection_request_credentials(cpe.id, &cpe.delta);
            let id = cpe.id.0;
            let mut woken = false;
            let SessionRun { summary, failure, .. } = {
                let run = session(model, template, cpe, &mut auth, Destination::Url(&url), &opts.transport, None, None, true);
                let mut run = std::pin::pin!(run);
                loop {
                    tokio::select! {
                        done = &mut run => break done,
                        msg = next_cr(&mut cr) => match msg.refuse_busy() {
                            Some(CpeMsg::Lookup { index, reply }) => {
                                let _ = reply.send((index == id).then(|| creds.clone()));
                            }
                            Some(CpeMsg::Wake { .. }) => woken = true,
                            _ => {}
                        },
                    }
                }
            };
            if woken {
                info!("connection request during the session: another session follows");
                cpe.connection_requested();
            }
            if failure.is_none() {
                value_change_due = false;
            }
            for action in &summary.actions {
                match action {
                    DeferredAction::Reboot { command_key } => {
                        info!(command_key = %command_key, "rebooting as the ACS asked");
                        cpe.reboot(command_key, UnixMillis::now());
                    }
                    DeferredAction::FactoryReset => {
                        info!("factory reset as the ACS asked");
                        cpe.factory_reset(UnixMillis::now());
                        auth.reset();
                        url = opts.acs_url.clone();
                    }
                    DeferredAction::ScheduleInform { delay, command_key } => {
                        info!(delay_s = delay.as_secs(), command_key = %command_key, "scheduled inform");
                        timers.push((Instant::now() + *delay, Work::ScheduledInform(command_key.clone())));
                    }
                    DeferredAction::Transfer(req) => timers.push((Instant::now() + req.delay, Work::Transfer(Box::new(req.clone())))),
                }
            }
            if summary.changes.contains(ChangeSet::ACS_URL) {
                if let Some(new) = model.well_known.acs_url.map(|n| value(model, cpe, n)).filter(|u| !u.is_empty()) {
                    info!(acs_url = %new, "the ACS changed ManagementServer.URL; bootstrapping to the new ACS");
                    url = new;
                    auth.reset();
                }
            }
            if summary.changes.contains(ChangeSet::PERIODIC_INFORM) && daemon {
                next_periodic = next_periodic_inform(model, cpe);
            }
            if let Some(s) = &opts.state {
                s.save(cpe);
            }
            match failure {
                None => {
                    report.completed += 1;
                    retry_at = None;
                }
                Some(f) => {
                    report.failed += 1;
                    warn!(retry_count = cpe.retry_count, "session failed: {}", f.message);
                    report.last_error = Some(f.message);
                    if !daemon {
                        break;
                    }
                    let wait = retry_wait(model, cpe).max(f.retry_after.unwrap_or_default());
                    info!(wait_s = wait.as_secs_f64().round(), "retrying the session with TR-069 back-off");
                    retry_at = Some(Instant::now() + wait);
                }
            }
            continue;
        }
        // Nothing to do now: sleep until the next due thing.
        let wake = [timers.iter().map(|t| t.0).min(), retry_at.filter(|_| owed), next_periodic, deadline].into_iter().flatten().min();
        let Some(wake) = wake else {
            if daemon {
                // A daemon with nothing scheduled waits for shutdown or a Connection Request.
                tokio::select! {
                    _ = signalled(&mut shutdown) => {}
                    msg = next_cr(&mut cr) => value_change_due |= handle_cr(model, cpe, msg, opts.state.as_ref()),
                }
                continue;
            }
            break;
        };
        if !daemon && wake > now + Duration::from_secs(1) {
            info!(in_s = (wake - now).as_secs(), "waiting for work the ACS scheduled (Ctrl-C to stop)");
        }
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = signalled(&mut shutdown) => {}
            msg = next_cr(&mut cr) => value_change_due |= handle_cr(model, cpe, msg, opts.state.as_ref()),
        }
    }
    report
}

/// The next Connection Request message, or never when there is no listener.
pub async fn next_cr(cr: &mut Option<mpsc::UnboundedReceiver<CpeMsg>>) -> CpeMsg {
    match cr {
        Some(rx) => match rx.recv().await {
            Some(m) => m,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Answers a listener's message for an idle CPE; true when an active value change is now due.
fn handle_cr(model: &Model, cpe: &mut CpeState, msg: CpeMsg, state: Option<&crate::persist::StateSink>) -> bool {
    match msg {
        CpeMsg::Lookup { index, reply } => {
            let _ = reply.send((index == cpe.id.0).then(|| model.connection_request_credentials(cpe.id, &cpe.delta)));
        }
        CpeMsg::Wake { .. } => {
            info!("connection request: starting a session");
            cpe.connection_requested();
        }
        CpeMsg::Inspect { reply, .. } => {
            let _ = reply.send(Ok(crate::api::state::inspect(model, cpe, UnixMillis::now())));
        }
        CpeMsg::SetLocal { params, reply, .. } => {
            let result = crate::api::state::set_local(model, cpe, &params, UnixMillis::now());
            let active = result == Ok(crate::api::state::Notify::Active);
            if let (Ok(_), Some(s)) = (&result, state) {
                s.save(cpe);
            }
            if let Ok(n) = &result {
                info!(parameters = params.len(), notification = ?n, "values changed locally");
            }
            let _ = reply.send(result);
            return active;
        }
    }
    false
}

/// Resolves when shutdown is signalled; never, once nobody can signal any more.
async fn signalled(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Measurement hooks for one session of a fleet run.
pub struct Probe<'r> {
    pub recorder: &'r RefCell<Recorder>,
    /// When the session was due (the wheel's deadline), for latency from the scheduled start.
    pub scheduled_at: Instant,
}

/// How one session went.
pub struct SessionRun {
    pub summary: SessionSummary,
    pub failure: Option<Failure>,
    /// The connection, still open, for the next session (pooled mode).
    pub conn: Option<Connection>,
}

/// Why one session failed.
pub struct Failure {
    pub message: String,
    pub retry_after: Option<Duration>,
    pub cause: Cause,
    pub http_status: Option<u16>,
}

impl Failure {
    fn transport(e: TransportError) -> Failure {
        let (cause, http_status) = match e.kind() {
            FailureKind::Dns => (Cause::Dns, None),
            FailureKind::Connect => (Cause::Connect, None),
            FailureKind::Tls => (Cause::Tls, None),
            FailureKind::Timeout => (Cause::Timeout, None),
            FailureKind::Auth => (Cause::Auth, None),
            FailureKind::HttpStatus(s) => (Cause::HttpStatus, Some(s)),
            FailureKind::Redirect => (Cause::Redirect, None),
            FailureKind::BodyTooLarge => (Cause::BodyTooLarge, None),
            FailureKind::Connection => (Cause::Connection, None),
            FailureKind::BadUrl => (Cause::BadUrl, None),
        };
        Failure { retry_after: e.retry_after(), message: e.to_string(), cause, http_status }
    }

    fn session(e: &SessionError) -> Failure {
        let cause = match e {
            SessionError::Parse(_) => Cause::Parse,
            SessionError::AcsFault(_) => Cause::AcsFault,
            _ => Cause::Protocol,
        };
        Failure { message: e.to_string(), retry_after: None, cause, http_status: None }
    }
}

/// One CWMP session over HTTP. `conn` is an open connection to reuse, if any; `probe` records
/// measurements; `verbose` logs the session at info (one CPE) rather than debug (a fleet).
#[allow(clippy::too_many_arguments)]
pub async fn session(
    model: &Model,
    template: &InformTemplate,
    cpe: &mut CpeState,
    auth: &mut AuthState,
    destination: Destination<'_>,
    cfg: &TransportConfig,
    conn: Option<Connection>,
    probe: Option<Probe<'_>>,
    verbose: bool,
) -> SessionRun {
    let started = Instant::now();
    let mut out = BytesMut::with_capacity(8192);
    if verbose {
        let events = cpe.events.describe(cpe.delta.changed().len());
        info!(event_codes = %events, retry_count = cpe.retry_count, rpc = %"Inform", "session started");
    }
    // A session a Connection Request started: its Inform is also measured from the wake-up.
    let woken = cpe.events.has(EventCode::ConnectionRequest);
    let mut session = Session::start(model, template, cpe, UnixMillis::now(), &mut out);
    if let Some(p) = &probe {
        let mut r = p.recorder.borrow_mut();
        r.outcomes.started += 1;
        r.record_lag(started.saturating_duration_since(p.scheduled_at));
    }
    let finish = |failure: Option<Failure>, summary: SessionSummary, conn: Option<Connection>| {
        if let Some(p) = &probe {
            let mut r = p.recorder.borrow_mut();
            match &failure {
                None => {
                    r.outcomes.completed += 1;
                    let now = Instant::now();
                    r.record_session(now.saturating_duration_since(p.scheduled_at), now.saturating_duration_since(started));
                }
                Some(f) => match f.http_status {
                    Some(s) => r.outcomes.count_status(s),
                    None => r.outcomes.count(f.cause),
                },
            }
        }
        SessionRun { summary, failure, conn }
    };
    let mut http = match HttpSession::new(cfg, auth, destination) {
        Ok(h) => h.with_connection(conn),
        Err(e) => return finish(Some(Failure::transport(e)), session.abort(cpe), None),
    };
    let mut body: Bytes = out.split().freeze();
    // What the CPE is POSTing, for the per-RPC histograms.
    let mut sending = stats::m::INFORM;
    loop {
        debug!(url = %http.url(), "CPE → ACS\n{}", if body.is_empty() { "(empty POST)".into() } else { String::from_utf8_lossy(&body) });
        let sent_at = Instant::now();
        let resp = match http.post(body).await {
            Ok(r) => r,
            Err(e) => return finish(Some(Failure::transport(e)), session.abort(cpe), None),
        };
        if let Some(p) = &probe {
            let mut r = p.recorder.borrow_mut();
            let now = Instant::now();
            let (service, from_scheduled) = (now.saturating_duration_since(sent_at), now.saturating_duration_since(p.scheduled_at));
            r.record_both(sending, service, from_scheduled);
            if woken && sending == stats::m::INFORM {
                r.record_both(stats::m::CONNECTION_REQUEST, service, from_scheduled);
            }
        }
        debug!(
            status = resp.status,
            "ACS → CPE\n{}",
            if resp.body.is_empty() { "(no body)".into() } else { String::from_utf8_lossy(&resp.body) }
        );
        let reply = if resp.status == 204 || resp.body.is_empty() { AcsReply::Empty } else { AcsReply::Body(&resp.body) };
        session.last_rpc = None;
        let step = session.handle(model, cpe, reply, UnixMillis::now(), &mut out);
        match session.last_rpc {
            Some((rpc, None)) if verbose => info!(rpc = %rpc, "answered"),
            Some((rpc, None)) => debug!(rpc = %rpc, "answered"),
            Some((rpc, Some(f))) if verbose => warn!(rpc = %rpc, fault_code = f.code(), "answered with a fault: {}", f.message()),
            Some((rpc, Some(f))) => debug!(rpc = %rpc, fault_code = f.code(), "answered with a fault: {}", f.message()),
            None => {}
        }
        sending = match (&step, session.state(), session.last_rpc) {
            (Step::SendEmpty, _, _) => stats::m::EMPTY_POST,
            (_, State::ExpectTransferCompleteResponse, _) => stats::m::TRANSFER_COMPLETE,
            (_, State::ExpectGetRpcMethodsResponse, _) => stats::m::GET_RPC_METHODS,
            (_, _, Some((rpc, _))) => stats::metric(rpc).unwrap_or(stats::m::EMPTY_POST),
            _ => stats::m::EMPTY_POST,
        };
        match step {
            Step::Send => body = out.split().freeze(),
            Step::SendEmpty => body = Bytes::new(),
            Step::Finished(summary) => {
                let failure = match &summary.result {
                    Ok(()) => {
                        if verbose {
                            info!(
                                acs_requests = summary.requests,
                                faults = summary.faults,
                                "session completed: the ACS ended it with 204 No Content"
                            );
                        }
                        None
                    }
                    Err(e) => Some(Failure::session(e)),
                };
                if let Some(p) = &probe {
                    let (n, t) = http.connects();
                    if n > 0 {
                        p.recorder.borrow_mut().record_both(stats::m::CONNECT, t / n, p.scheduled_at.elapsed());
                    }
                }
                let conn = http.into_connection();
                return finish(failure, summary, conn);
            }
        }
    }
}

fn value(model: &Model, cpe: &CpeState, node: crate::model::NodeId) -> String {
    model.device(cpe.id, &cpe.delta, cpe.boot_at, UnixMillis::now()).value_string(&Loc::plain(node), ReadFor::Local)
}

/// The CPE's periodic Inform period in milliseconds (× the plan's multiplier), or `None` when
/// periodic informs are off.
pub fn periodic_period_ms(model: &Model, cpe: &CpeState, plan: &PeriodicPlan) -> Option<u64> {
    let wk = &model.well_known;
    let set = |n: Option<crate::model::NodeId>| n.and_then(|n| cpe.delta.value(&Loc::plain(n)));
    let enabled = match (set(wk.periodic_inform_enable), plan.interval) {
        // Someone set it explicitly: that wins.
        (Some(v), _) => &*v.value == "true" || &*v.value == "1",
        (None, Some(_)) => true,
        (None, None) => wk.periodic_inform_enable.map(|n| value(model, cpe, n)).is_some_and(|v| v == "true" || v == "1"),
    };
    let interval_s: f64 = match (set(wk.periodic_inform_interval), plan.interval) {
        (Some(v), _) => v.value.parse().ok()?,
        (None, Some(d)) => d.as_secs_f64(),
        (None, None) => wk.periodic_inform_interval.and_then(|n| value(model, cpe, n).parse().ok())?,
    };
    if !enabled || interval_s <= 0.0 {
        return None;
    }
    Some(((interval_s * plan.multiplier * 1000.0).round() as u64).max(1))
}

/// The TR-069 wait before the next retry, from the CPE's retry settings (PROTOCOL.md §5).
pub fn retry_wait(model: &Model, cpe: &CpeState) -> Duration {
    let wk = &model.well_known;
    let m =
        wk.retry_minimum_wait_interval.and_then(|n| value(model, cpe, n).parse().ok()).map_or(retry::DEFAULT_MIN_WAIT, Duration::from_secs);
    let k = wk.retry_interval_multiplier.and_then(|n| value(model, cpe, n).parse().ok()).unwrap_or(retry::DEFAULT_MULTIPLIER);
    // Spread the fleet: a per-CPE, per-attempt pseudo-random point in the window.
    let unit = (crate::model::identity::mix64((cpe.id.0 as u64) << 16 ^ cpe.retry_count as u64) >> 11) as f64 / (1u64 << 53) as f64;
    retry::retry_wait(m, k, cpe.retry_count.max(1) as u32, unit)
}

/// When the next periodic Inform is due (PROTOCOL.md §6): at PeriodicInformTime + N·interval, or
/// with a per-CPE phase when the time is unknown. `None` when periodic informs are off.
fn next_periodic_inform(model: &Model, cpe: &CpeState) -> Option<Instant> {
    periodic_delay(model, cpe, &PeriodicPlan::default()).map(|d| Instant::now() + d)
}

/// How a fleet bends the profile's periodic informs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeriodicPlan {
    /// Period = PeriodicInformInterval × this (the horde hard-coded 1/1000).
    pub multiplier: f64,
    /// Used instead of the profile's PeriodicInformInterval until the ACS sets one; also turns
    /// periodic informs on unless the ACS turned them off.
    pub interval: Option<Duration>,
}

impl Default for PeriodicPlan {
    fn default() -> Self {
        PeriodicPlan { multiplier: 1.0, interval: None }
    }
}

/// Time until the CPE's next periodic Inform (PROTOCOL.md §6), or `None` when they are off.
pub fn periodic_delay(model: &Model, cpe: &CpeState, plan: &PeriodicPlan) -> Option<Duration> {
    periodic_delay_at(model, cpe, plan, UnixMillis::now())
}

/// [`periodic_delay`] at an explicit `now` (deterministic, for tests and tools).
pub fn periodic_delay_at(model: &Model, cpe: &CpeState, plan: &PeriodicPlan, now: UnixMillis) -> Option<Duration> {
    let wk = &model.well_known;
    let period_ms = periodic_period_ms(model, cpe, plan)?;
    let phase_ms = match wk.periodic_inform_time.map(|n| value(model, cpe, n)).and_then(|t| parse_datetime(&t)) {
        Some(t) if t >= 0 => (t as u64 * 1000) % period_ms,
        // Unknown Time: the CPE picks its own phase.
        _ => (cpe.boot_at.0 + crate::model::identity::mix64(cpe.id.0 as u64) % period_ms) % period_ms,
    };
    let since = (now.0 + period_ms - phase_ms) % period_ms;
    let wait = if since == 0 { period_ms } else { period_ms - since };
    Some(Duration::from_millis(wait))
}
