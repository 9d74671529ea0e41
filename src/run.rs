//! One session of one CPE against an in-process [`AcsSession`], with no sockets: the session
//! machine and the scripted ACS hand each other the exact bytes they would POST. The network
//! path is `runner`; this is the sans-IO harness tests use to check a whole exchange quickly.

use bytes::BytesMut;

use crate::acs::{AcsOutput, AcsScript, AcsSession};
use crate::cpe::CpeState;
use crate::model::Model;
use crate::session::template::InformTemplate;
use crate::session::{AcsReply, Session, SessionError, SessionSummary, Step};
use crate::time::UnixMillis;

/// One POST and its answer, as the CPE saw them.
#[derive(Debug, Clone)]
pub struct Hop {
    /// The CPE's message (empty for the empty POST).
    pub cpe: Vec<u8>,
    /// The ACS's answer (`None` for 204).
    pub acs: Option<Vec<u8>>,
    /// The ACS request the CPE answered in its next message, and the fault it answered with.
    pub answered: Option<(&'static str, Option<crate::cwmp::FaultCode>)>,
}

/// A session run in-process.
#[derive(Debug)]
pub struct InProcessRun {
    pub summary: SessionSummary,
    pub acs: AcsSession,
    pub hops: Vec<Hop>,
}

/// Most POSTs one session may take before it is declared stuck.
const MAX_HOPS: usize = 10_000;

/// Runs one session of `cpe` against a fresh ACS session with `script`.
pub fn run_session(model: &Model, template: &InformTemplate, cpe: &mut CpeState, script: AcsScript, now: UnixMillis) -> InProcessRun {
    let mut acs = AcsSession::new(script);
    let mut out = BytesMut::with_capacity(4096);
    let mut session = Session::start(model, template, cpe, now, &mut out);
    let mut hops = Vec::new();
    let mut body = out.split().to_vec();
    loop {
        let answer = match acs.handle(&body) {
            Ok(a) => a,
            Err(_) => {
                hops.push(Hop { cpe: body, acs: None, answered: None });
                let summary = session.abort(cpe);
                return InProcessRun { summary, acs, hops };
            }
        };
        let reply_bytes = match &answer {
            AcsOutput::Envelope(b) => Some(b.clone()),
            AcsOutput::NoContent => None,
        };
        hops.push(Hop { cpe: std::mem::take(&mut body), acs: reply_bytes.clone(), answered: None });
        let reply = match &reply_bytes {
            Some(b) => AcsReply::Body(b),
            None => AcsReply::Empty,
        };
        session.last_rpc = None;
        let step = session.handle(model, cpe, reply, now, &mut out);
        if let Some(hop) = hops.last_mut() {
            hop.answered = session.last_rpc;
        }
        match step {
            Step::Send => body = out.split().to_vec(),
            Step::SendEmpty => body.clear(),
            Step::Finished(summary) => return InProcessRun { summary, acs, hops },
        }
        if hops.len() > MAX_HOPS {
            let mut summary = session.abort(cpe);
            summary.result = Err(SessionError::Aborted);
            return InProcessRun { summary, acs, hops };
        }
    }
}
