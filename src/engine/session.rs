//! One CWMP session of one CPE over HTTP: the session machine ([`crate::session`]) driven by an
//! [`HttpSession`], one POST per step, measured into the shard's recorder.
//!
//! The engine calls [`session`] with the CPE's state moved in; what the session leaves behind
//! (deferred actions, changed settings, a failure and its Retry-After) goes back to the CPE's
//! agenda.

use std::cell::RefCell;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::clock::Clock;
use crate::cpe::CpeState;
use crate::cwmp::rpc::inform::EventCode;
use crate::model::{Model, Source};
use crate::session::template::InformTemplate;
use crate::session::{AcsReply, Session, SessionError, SessionSummary, State, Step};
use crate::stats::{self, Cause, Recorder};
use crate::transport::auth::{AuthState, Credentials};
use crate::transport::conn::Connection;
use crate::transport::{Destination, FailureKind, HttpSession, TransportConfig, TransportError};

/// Measurement hooks for one session of a fleet run.
pub struct Probe<'r> {
    pub recorder: &'r RefCell<Recorder>,
    /// When the session was due (the wheel's deadline), for latency from the scheduled start.
    pub scheduled_at: Instant,
    /// The session's ACS endpoint: an index into the run's endpoint labels (0, the `--acs-url`,
    /// unless a scenario has several).
    pub endpoint: u16,
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

/// What every session of a run shares.
pub struct SessionCtx<'a> {
    pub model: &'a Model,
    pub template: &'a InformTemplate,
    pub transport: &'a TransportConfig,
    pub clock: &'a Clock,
    /// Log the session at info (a single CPE) rather than debug (a fleet).
    pub verbose: bool,
    /// The shard's message buffers.
    pub buffers: &'a Buffers,
}

/// Message buffers a shard's sessions reuse: a session takes one for the messages it renders
/// and gives it back at its end, so a session costs no buffer allocation once the shard has as
/// many as it runs sessions at once. A buffer grown past [`Buffers::KEEP`] (a large answer) is
/// dropped rather than kept.
#[derive(Default)]
pub struct Buffers(RefCell<Vec<BytesMut>>);

impl Buffers {
    /// A new buffer's capacity: a periodic Inform and most answers fit.
    pub const INITIAL: usize = 8192;
    /// Largest buffer kept for reuse, in bytes.
    pub const KEEP: usize = 64 * 1024;

    fn take(&self) -> BytesMut {
        self.0.borrow_mut().pop().unwrap_or_else(|| BytesMut::with_capacity(Self::INITIAL))
    }

    fn give(&self, mut buf: BytesMut) {
        buf.clear();
        if buf.capacity() <= Self::KEEP {
            self.0.borrow_mut().push(buf);
        }
    }
}

/// One CWMP session over HTTP. `conn` is an open connection to reuse, if any; `probe` records
/// measurements.
pub async fn session(
    ctx: &SessionCtx<'_>,
    cpe: &mut CpeState,
    auth: &mut AuthState,
    destination: Destination<'_>,
    conn: Option<Connection>,
    probe: Option<Probe<'_>>,
) -> SessionRun {
    let mut out = ctx.buffers.take();
    let run = session_with(ctx, &mut out, cpe, auth, destination, conn, probe).await;
    ctx.buffers.give(out);
    run
}

/// [`session`], rendering messages into `out`.
async fn session_with(
    ctx: &SessionCtx<'_>,
    out: &mut BytesMut,
    cpe: &mut CpeState,
    auth: &mut AuthState,
    destination: Destination<'_>,
    conn: Option<Connection>,
    probe: Option<Probe<'_>>,
) -> SessionRun {
    let SessionCtx { model, template, transport: cfg, clock, verbose, .. } = *ctx;
    let started = Instant::now();
    // The values the ACS had set before, to log what this session sets (one CPE only).
    let mut before = if verbose { acs_values(model, cpe) } else { Vec::new() };
    if verbose {
        let events = cpe.events.describe(cpe.delta.changed().len());
        info!(event_codes = %events, retry_count = cpe.retry_count, rpc = %"Inform", "session started");
    }
    // A session a Connection Request started: its Inform is also measured from the wake-up.
    let woken = cpe.events.has(EventCode::ConnectionRequest);
    // The Inform's event codes, for the by-event-code table.
    let events = cpe.events.codes_for_inform(cpe.delta.changed().len());
    let mut session = Session::start(model, template, cpe, clock.now(), out);
    if let Some(p) = &probe {
        let mut r = p.recorder.borrow_mut();
        r.outcomes.started += 1;
    }
    let finish = |failure: Option<Failure>, summary: SessionSummary, conn: Option<Connection>| {
        if let Some(p) = &probe {
            let mut r = p.recorder.borrow_mut();
            r.outcomes.count_session(events, p.endpoint, failure.is_none());
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
    // This CPE's own ACS credentials, as they were when the session started (an ACS's
    // SetParameterValues of them applies from the next session); else the run's.
    let own = model.acs_credentials(cpe.id, &cpe.delta).map(|(username, password)| Credentials { username, password });
    let mut http = match HttpSession::new(cfg, auth, destination) {
        Ok(h) if own.is_some() => h.with_connection(conn).with_credentials(own.as_ref()),
        Ok(h) => h.with_connection(conn),
        Err(e) => return finish(Some(Failure::transport(e)), session.abort(cpe), None),
    };
    let mut body: Bytes = out.split().freeze();
    // What the CPE is POSTing, for the per-RPC histograms.
    let mut sending = stats::m::INFORM;
    loop {
        // URLs in bodies (a Download's, a TransferComplete's) are logged without their userinfo.
        debug!(url = %http.url(), "CPE → ACS\n{}", if body.is_empty() { "(empty POST)".into() } else { crate::transport::without_userinfo_in(&String::from_utf8_lossy(&body)).into_owned() });
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
            if resp.body.is_empty() {
                "(no body)".into()
            } else {
                crate::transport::without_userinfo_in(&String::from_utf8_lossy(&resp.body)).into_owned()
            }
        );
        let reply = if resp.status == 204 || resp.body.is_empty() { AcsReply::Empty } else { AcsReply::Body(&resp.body) };
        session.last_rpc = None;
        let step = session.handle(model, cpe, reply, clock.now(), out);
        if verbose {
            log_new_values(model, cpe, &mut before);
        }
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
                            let how = if resp.status == 204 { "204 No Content" } else { "an empty HTTP 200" };
                            info!(
                                acs_requests = summary.requests,
                                faults = summary.faults,
                                "session completed: the ACS ended it with {how}"
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

/// The values the ACS set on `cpe`, as (path, value) (secrets masked).
fn acs_values(model: &Model, cpe: &CpeState) -> Vec<(String, Box<str>)> {
    let values = cpe.delta.inner().map(|d| d.values.as_slice()).unwrap_or_default();
    values
        .iter()
        .filter(|v| v.source == Source::Acs)
        .map(|v| {
            let secret = model.tree.node(v.loc.node).param().is_some_and(|p| p.secret);
            let shown = if secret { "<hidden>".into() } else { crate::transport::without_userinfo(&v.value).into_owned().into_boxed_str() };
            (model.tree.path_string(&v.loc), shown)
        })
        .collect()
}

/// Logs each value the ACS set since `before` was taken, once, when it is set.
fn log_new_values(model: &Model, cpe: &CpeState, before: &mut Vec<(String, Box<str>)>) {
    let values = cpe.delta.inner().map(|d| d.values.as_slice()).unwrap_or_default();
    if values.iter().all(|v| v.source != Source::Acs) {
        return;
    }
    for (path, value) in acs_values(model, cpe) {
        if !before.iter().any(|(p, v)| *p == path && *v == value) {
            info!(source = %"acs", "set {path} = {value}");
            before.push((path, value));
        }
    }
}
