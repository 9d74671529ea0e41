//! The CWMP session state machine of one CPE, sans-IO (PROTOCOL.md §1.2).
//!
//! `Inform → [TransferComplete …] → empty POST → (ACS request → response)* → 204`.
//!
//! Requests the CPE owes (TransferComplete reports, GetRPCMethods after a BOOTSTRAP) go in the
//! next POST that is free (after the InformResponse, after the answer to one of them, or after an
//! empty reply) unless the ACS's last message held them (`cwmp:HoldRequests`, TR-069 §3.7.1.3).
//! An empty reply carries no header, so it lifts a hold: a CPE that still owes a request sends it
//! then, and the session ends only on an empty reply to an empty POST (§3.7.1.4). A session that
//! ends with a request still owed (the ACS dropped it, or ended the session instead of answering)
//! did not complete: the report stays owed and the next attempt follows the retry policy.
//!
//! [`Session::start`] renders the Inform; each [`Session::handle`] takes what the ACS answered
//! (a body, or nothing for 204/empty 200) plus `now`, writes the next message into the caller's
//! buffer and says what to send. States are named after what they wait for. Event bookkeeping
//! (delivered on InformResponse, `6 CONNECTION REQUEST` dropped on failure), RetryCount and
//! deferred actions are applied here; the caller owns sockets and timers.
//!
//! - [`template`]: the pre-rendered Inform with splices (the one place the codec reads a CPE's
//!   data model).

mod dispatch;
pub mod template;

use bytes::BytesMut;
use smallvec::SmallVec;

use crate::cpe::events::Sent;
use crate::cpe::{CpeState, DeferredAction};
use crate::cwmp::envelope::{urn_minor, URNS};
use crate::cwmp::fault::{AcsFaultCode, FaultCode};
use crate::cwmp::parse::ParseError;
use crate::cwmp::rpc::inform::EventCode;
use crate::cwmp::rpc::{parse_envelope, transfer_complete, AcsMessage};
use crate::model::{ChangeSet, Model};
use crate::session::template::InformTemplate;
use crate::time::{format_datetime, UnixMillis};

/// What the session waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    ExpectInformResponse,
    ExpectTransferCompleteResponse,
    ExpectGetRpcMethodsResponse,
    /// After the empty POST or a response: an ACS request, or 204 to end.
    ExpectAcsRequest,
    Done,
}

/// What the ACS answered one POST with.
#[derive(Debug, Clone, Copy)]
pub enum AcsReply<'b> {
    /// `204 No Content`, or `200` with an empty body (PROTOCOL.md §1.1).
    Empty,
    /// A `200` with a body.
    Body(&'b [u8]),
}

/// What to POST next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// POST the envelope now in the output buffer.
    Send,
    /// POST an empty body (`Content-Length: 0`, no SOAPAction).
    SendEmpty,
    /// The session is over; nothing more to send.
    Finished(SessionSummary),
}

/// Why a session failed (what the ACS did is data, kept `Copy` for counting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// The ACS's body was not a usable envelope.
    Parse(ParseError),
    /// The ACS answered with a SOAP Fault (8005 = retry request).
    AcsFault(Option<AcsFaultCode>),
    /// The ACS sent something other than what this state waits for.
    Unexpected { state: State },
    /// The ACS ended the session (204) before answering the Inform.
    NoInformResponse,
    /// The ACS answered an empty POST with something that is not a request.
    NotARequest,
    /// The ACS ended the session (204/empty) instead of answering the CPE's own request, which
    /// stays owed (the next attempt follows the retry policy, never at once).
    OwnRequestUnanswered { request: &'static str },
    /// The caller gave up (transport failure, timeout); the reason is the caller's.
    Aborted,
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Parse(e) => write!(f, "CWMP envelope round-trip failed: {e}"),
            SessionError::AcsFault(Some(c)) => write!(f, "ACS fault {} {}", c.0, c.meaning()),
            SessionError::AcsFault(None) => f.write_str("ACS fault without a FaultCode"),
            SessionError::Unexpected { state } => write!(f, "unexpected ACS message while in {state:?}"),
            SessionError::NoInformResponse => f.write_str("ACS ended the session without an InformResponse"),
            SessionError::NotARequest => f.write_str("ACS answered the empty POST with a non-request"),
            SessionError::OwnRequestUnanswered { request } => {
                write!(f, "ACS ended the session without answering the CPE's {request}, which stays owed")
            }
            SessionError::Aborted => f.write_str("session aborted"),
        }
    }
}

impl std::error::Error for SessionError {}

/// The outcome of a finished session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    pub result: Result<(), SessionError>,
    /// For the caller to carry out now that the session is over.
    pub actions: SmallVec<[DeferredAction; 1]>,
    /// Which simulator-relevant settings the ACS changed (re-arm timers).
    pub changes: ChangeSet,
    /// ACS requests answered, and how many of those with a fault.
    pub requests: u32,
    pub faults: u32,
    /// Whether the Inform was answered (its events delivered).
    pub informed: bool,
    /// The ACS's methods, when the CPE asked with GetRPCMethods.
    pub acs_methods: Option<Vec<String>>,
}

/// One session of one CPE.
#[derive(Debug)]
pub struct Session {
    state: State,
    urn: &'static str,
    sent: Sent,
    informed: bool,
    actions: SmallVec<[DeferredAction; 1]>,
    changes: ChangeSet,
    requests: u32,
    faults: u32,
    asked_methods: bool,
    acs_methods: Option<Vec<String>>,
    /// The last RPC answered and its fault, for logs.
    pub last_rpc: Option<(&'static str, Option<FaultCode>)>,
}

impl Session {
    /// Starts a session: renders the Inform with `cpe`'s pending events into `out`.
    pub fn start(model: &Model, template: &InformTemplate, cpe: &mut CpeState, now: UnixMillis, out: &mut BytesMut) -> Session {
        let id = cpe.take_message_id();
        let dev = model.device(cpe.id, &cpe.delta, cpe.boot_at, now);
        let changed = cpe.delta.changed();
        let events = cpe.events.for_inform(changed.len());
        template.render(out, &dev, id, &EventStructs(&events), cpe.retry_count as u32, changed);
        let minor = urn_minor(&model.cwmp_urn).unwrap_or(0);
        Session {
            state: State::ExpectInformResponse,
            urn: URNS[minor as usize],
            sent: events.sent(),
            informed: false,
            actions: SmallVec::new(),
            changes: ChangeSet::default(),
            requests: 0,
            faults: 0,
            asked_methods: false,
            acs_methods: None,
            last_rpc: None,
        }
    }

    /// What the session waits for.
    pub fn state(&self) -> State {
        self.state
    }

    /// Takes the ACS's answer to the last POST and writes the next message into `out`.
    pub fn handle(&mut self, model: &Model, cpe: &mut CpeState, reply: AcsReply<'_>, now: UnixMillis, out: &mut BytesMut) -> Step {
        match self.step(model, cpe, reply, now, out) {
            Ok(Some(step)) => step,
            Ok(None) => Step::Finished(self.finish(cpe, Ok(()))),
            Err(e) => Step::Finished(self.finish(cpe, Err(e))),
        }
    }

    /// Ends the session from outside (transport failure or timeout).
    pub fn abort(&mut self, cpe: &mut CpeState) -> SessionSummary {
        self.finish(cpe, Err(SessionError::Aborted))
    }

    fn step(
        &mut self,
        model: &Model,
        cpe: &mut CpeState,
        reply: AcsReply<'_>,
        now: UnixMillis,
        out: &mut BytesMut,
    ) -> Result<Option<Step>, SessionError> {
        let body = match reply {
            AcsReply::Empty => None,
            AcsReply::Body(b) if b.iter().all(u8::is_ascii_whitespace) => None,
            AcsReply::Body(b) => Some(b),
        };
        match self.state {
            State::ExpectInformResponse => {
                let body = body.ok_or(SessionError::NoInformResponse)?;
                let env = parse_envelope(body).map_err(SessionError::Parse)?;
                match env.message {
                    AcsMessage::InformResponse { .. } => {}
                    AcsMessage::Fault(f) => return Err(SessionError::AcsFault(f.code)),
                    _ => return Err(SessionError::Unexpected { state: self.state }),
                }
                if let Some(acs_minor) = env.cwmp_minor {
                    // Use the lower of the two versions for the rest of the session (icwmp).
                    let ours = URNS.iter().position(|u| *u == self.urn).unwrap_or(0) as u8;
                    self.urn = URNS[acs_minor.min(ours).min(4) as usize];
                }
                self.informed = true;
                cpe.events.delivered(self.sent);
                cpe.delta.clear_changed(self.sent.value_changes);
                if self.sent.codes & (1 << EventCode::Bootstrap as u8) != 0 {
                    cpe.bootstrapped = true;
                }
                Ok(Some(self.own_request_or_empty(model, cpe, env.hold_requests, out)))
            }
            State::ExpectTransferCompleteResponse => {
                let body = body.ok_or(SessionError::OwnRequestUnanswered { request: "TransferComplete" })?;
                let env = parse_envelope(body).map_err(SessionError::Parse)?;
                match env.message {
                    AcsMessage::TransferCompleteResponse => {
                        cpe.events.transfer_acknowledged();
                        Ok(Some(self.own_request_or_empty(model, cpe, env.hold_requests, out)))
                    }
                    AcsMessage::Fault(f) => Err(SessionError::AcsFault(f.code)),
                    _ => Err(SessionError::Unexpected { state: self.state }),
                }
            }
            State::ExpectGetRpcMethodsResponse => {
                let body = body.ok_or(SessionError::OwnRequestUnanswered { request: "GetRPCMethods" })?;
                let env = parse_envelope(body).map_err(SessionError::Parse)?;
                match env.message {
                    AcsMessage::GetRpcMethodsResponse { methods } => {
                        self.acs_methods = Some(methods.iter().map(|m| m.to_string()).collect());
                        Ok(Some(self.own_request_or_empty(model, cpe, env.hold_requests, out)))
                    }
                    AcsMessage::Fault(f) => Err(SessionError::AcsFault(f.code)),
                    _ => Err(SessionError::Unexpected { state: self.state }),
                }
            }
            State::ExpectAcsRequest => {
                let Some(body) = body else {
                    // An empty reply holds nothing: a request still owed goes now (TR-069
                    // §3.7.1.3); otherwise the ACS has nothing more and the session ends (§3.7.1.4).
                    return Ok(self.own_request(model, cpe, out).then_some(Step::Send));
                };
                let env = parse_envelope(body).map_err(SessionError::Parse)?;
                let id = env.id.as_deref();
                self.requests += 1;
                let mut dev = cpe.device_mut(model, now);
                let fault = match &env.message {
                    AcsMessage::Request(req) => {
                        let f = dispatch::answer(req, id, self.urn, &mut dev, &mut self.actions, &mut self.changes, out);
                        self.last_rpc = Some((req.static_name(), f));
                        f
                    }
                    AcsMessage::BadRequest { method, error } => {
                        let code = if matches!(error, ParseError::TooManyItems(_)) {
                            FaultCode::ResourcesExceeded
                        } else {
                            FaultCode::InvalidArguments
                        };
                        let detail = format!("{method}: {error}");
                        crate::cwmp::rpc::fault::write_cpe_fault::<&str>(out, self.urn, id, code, Some(&detail), &[]);
                        self.last_rpc = Some(("BadRequest", Some(code)));
                        Some(code)
                    }
                    AcsMessage::Fault(f) => return Err(SessionError::AcsFault(f.code)),
                    _ => return Err(SessionError::NotARequest),
                };
                if fault.is_some() {
                    self.faults += 1;
                }
                Ok(Some(Step::Send))
            }
            State::Done => Err(SessionError::Unexpected { state: self.state }),
        }
    }

    /// After the InformResponse or the answer to an own request: the next own request, else the
    /// empty POST. Own requests wait while the ACS holds requests (cwmp:HoldRequests) and then go
    /// after the ACS's next empty reply; GenieACS, which never holds, accepts them only before the
    /// empty POST (PROTOCOL.md §1.2).
    fn own_request_or_empty(&mut self, model: &Model, cpe: &mut CpeState, hold_requests: bool, out: &mut BytesMut) -> Step {
        if !hold_requests && self.own_request(model, cpe, out) {
            return Step::Send;
        }
        self.state = State::ExpectAcsRequest;
        Step::SendEmpty
    }

    /// Writes the next request the CPE owes into `out`, if any: TransferComplete reports, then
    /// GetRPCMethods after a BOOTSTRAP if the profile asks.
    fn own_request(&mut self, model: &Model, cpe: &mut CpeState, out: &mut BytesMut) -> bool {
        if let Some(t) = cpe.events.next_transfer().cloned() {
            let id = cpe.take_message_id();
            let mut num = itoa::Buffer::new();
            let start = format_datetime(t.start_at);
            let complete = format_datetime(t.complete_at);
            transfer_complete::write_request(
                out,
                self.urn,
                num.format(id),
                &t.command_key,
                (t.fault_code, &t.fault_string),
                std::str::from_utf8(&start).unwrap_or(""),
                std::str::from_utf8(&complete).unwrap_or(""),
            );
            self.state = State::ExpectTransferCompleteResponse;
            return true;
        }
        let bootstrap = self.sent.codes & (1 << EventCode::Bootstrap as u8) != 0;
        if bootstrap && model.get_rpc_methods_on_bootstrap && !self.asked_methods {
            self.asked_methods = true;
            let id = cpe.take_message_id();
            crate::cwmp::rpc::get_rpc_methods::write_request(out, self.urn, itoa::Buffer::new().format(id));
            self.state = State::ExpectGetRpcMethodsResponse;
            return true;
        }
        false
    }

    fn finish(&mut self, cpe: &mut CpeState, result: Result<(), SessionError>) -> SessionSummary {
        self.state = State::Done;
        if !self.informed {
            cpe.events.undelivered(self.sent);
        }
        // A new ACS URL means a new BOOTSTRAP to that ACS (PROTOCOL.md §4), whether or not this
        // session then completed: the SetParameterValues that set it was applied.
        if self.changes.contains(ChangeSet::ACS_URL) {
            cpe.events.add(EventCode::Bootstrap);
        }
        match result {
            Ok(()) => cpe.retry_count = 0,
            Err(_) => cpe.retry_count = cpe.retry_count.saturating_add(1),
        }
        SessionSummary {
            result,
            actions: std::mem::take(&mut self.actions),
            changes: self.changes,
            requests: self.requests,
            faults: self.faults,
            informed: self.informed,
            acs_methods: self.acs_methods.take(),
        }
    }
}

/// An Inform's event list as the codec writes it (the CPE's bookkeeping renders no XML).
pub struct EventStructs<'a, 'q>(pub &'a crate::cpe::events::InformEventList<'q>);

impl crate::session::template::InformEvents for EventStructs<'_, '_> {
    fn count(&self) -> usize {
        self.0.count()
    }

    fn write(&self, out: &mut BytesMut) {
        for (code, command_key) in self.0.entries() {
            crate::session::template::write_event(out, code, command_key);
        }
    }
}
