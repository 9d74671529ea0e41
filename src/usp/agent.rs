//! One USP Agent: its endpoint ID, its CPE state (the same `cpe::CpeState` and data-model delta
//! a CWMP CPE has), and its answer to each Record a Controller sends.
//!
//! `Agent::handle(model, record, now)` opens the Record, dispatches the Message to the file that
//! owns its semantics, and returns the sealed answer (a response, or an Error message with a
//! 7000-series code for a refusal) plus what the caller must do after sending it (a reboot, an
//! async command, notifications). No I/O, no clock.

use rusp_lib::usp::mod_Body::OneOfmsg_body;
use rusp_lib::usp::mod_Error::ParamError;
use rusp_lib::usp::mod_Header::MsgType;
use rusp_lib::usp::mod_Request::OneOfreq_type;
use rusp_lib::usp::mod_Response::OneOfresp_type;
use rusp_lib::usp::{Body, Error, Header, Msg, Notify, Request, Response};

use super::defaults::{self, Factory};
use super::notify::BootCause;
use super::objects::{self, Changed};
use super::operate::{self, Accepted, Command};
use super::record::{self, Dropped};
use super::{get, set, supported, Budget, MsgKind, UspErr, MAX_PATHS, MAX_RECORD};
use crate::cpe::CpeState;
use crate::model::Model;
use crate::time::UnixMillis;

/// One simulated USP Agent.
#[derive(Debug, Clone)]
pub struct Agent {
    /// This Agent's endpoint ID (`os::<OUI>-<serial>`).
    pub endpoint_id: String,
    /// The Controller it reports to (Boot!, Periodic!, notifications).
    pub controller_id: String,
    /// The CPE behind it: boot time and data-model delta.
    pub cpe: CpeState,
    /// The next number for this Agent's own Message IDs.
    next_msg: u64,
    /// The next `Device.LocalAgent.Request.{i}` number for asynchronous commands.
    next_request: u32,
    /// The largest Record this Agent's MTP carries ([`MAX_RECORD`] unless set): a read answer
    /// that would outgrow it is refused with 7000 instead of built.
    pub max_record: usize,
    /// What the factory defaults depend on (the run's Controller, `--inform-interval`).
    pub factory: Factory,
}

/// What a Record and Msg around a response take besides the response itself (version, endpoint
/// IDs, Message ID, field headers), over-estimated.
const ENVELOPE: usize = 1024;

/// What handling one Record produced.
#[derive(Debug)]
pub struct Handled {
    /// The kind of Message that came in.
    pub kind: MsgKind,
    /// The sealed answer and the endpoint it goes to (none for responses and for requests that
    /// asked for none, e.g. an Operate with `send_resp` false).
    pub reply: Option<(String, Vec<u8>)>,
    /// The error code when the answer was an Error message.
    pub refused: Option<UspErr>,
    /// For a response from the Controller: the Message ID of this Agent's request it answers,
    /// and the Controller's error code if it answered with an Error.
    pub answered: Option<(String, Option<u32>)>,
    /// A command to carry out once the answer is sent.
    pub accepted: Option<Accepted>,
    /// Instances an Add/Delete created or deleted (for ObjectCreation/ObjectDeletion).
    pub changed: Changed,
}

impl Agent {
    /// A fresh Agent for `cpe`.
    pub fn new(endpoint_id: String, controller_id: String, cpe: CpeState) -> Agent {
        let factory = Factory { controller_id: controller_id.clone(), periodic: None };
        Agent { endpoint_id, controller_id, cpe, next_msg: 1, next_request: 1, max_record: MAX_RECORD, factory }
    }

    /// Writes the factory-default Controller entry and subscriptions ([`super::defaults`]) into
    /// a fresh CPE.
    pub fn factory_defaults(&mut self, model: &Model, now: UnixMillis) {
        defaults::apply(model, &mut self.cpe, &self.factory, now);
    }

    fn next_msg_id(&mut self) -> String {
        let id = format!("cpe-sim-{}", self.next_msg);
        self.next_msg += 1;
        id
    }

    /// Seals a Notify to the Controller; returns its Message ID (the NotifyResp carries it back)
    /// and the Record.
    pub fn notify(&mut self, n: Notify) -> (String, Vec<u8>) {
        let msg_id = self.next_msg_id();
        let msg = Msg {
            header: Some(Header { msg_id: msg_id.clone(), msg_type: MsgType::NOTIFY }),
            body: Some(Body { msg_body: OneOfmsg_body::request(Request { req_type: OneOfreq_type::notify(n) }) }),
        };
        let bytes = record::seal(&msg, &self.endpoint_id, &self.controller_id);
        (msg_id, bytes)
    }

    /// Carries out a synchronous command after its OperateResp went out: `Reboot()` restarts the
    /// CPE, `FactoryReset()` forgets every change and writes the factory defaults again. Returns
    /// the Boot! cause to announce.
    pub fn carry_out(&mut self, model: &Model, command: Command, now: UnixMillis) -> Option<BootCause> {
        match command {
            Command::Reboot => {
                self.cpe.restart(now);
                Some(BootCause::RemoteReboot)
            }
            Command::FactoryReset => {
                self.cpe.factory_reset(now);
                self.factory_defaults(model, now);
                Some(BootCause::RemoteFactoryReset)
            }
            Command::SelfTest => None,
        }
    }

    /// Handles one Record from an MTP.
    ///
    /// # Errors
    /// A [`Dropped`] cause when the Record is not for this Agent or cannot be read: nothing is
    /// answered (there is no Message ID to answer to).
    pub fn handle(&mut self, model: &Model, bytes: &[u8], now: UnixMillis) -> Result<Handled, Dropped> {
        let opened = record::open(bytes, &self.endpoint_id)?;
        let msg = opened.msg;
        let header = msg.header.unwrap_or_default();
        let body = msg.body.unwrap_or_default();
        let mut h =
            Handled { kind: MsgKind::Unknown, reply: None, refused: None, answered: None, accepted: None, changed: Changed::default() };
        let request = match body.msg_body {
            OneOfmsg_body::request(r) => r,
            // Only the Controller this Agent notifies answers its Notifies: anyone else on the
            // broker could otherwise settle them (Message IDs are predictable, `cpe-sim-N`).
            OneOfmsg_body::response(_) | OneOfmsg_body::error(_) if opened.from_id != self.controller_id => {
                return Err(Dropped::BadSender);
            }
            OneOfmsg_body::response(r) => {
                h.kind = MsgKind::Response;
                h.answered = match r.resp_type {
                    OneOfresp_type::None => None,
                    _ => Some((header.msg_id, None)),
                };
                return Ok(h);
            }
            OneOfmsg_body::error(e) => {
                h.kind = MsgKind::Response;
                h.answered = Some((header.msg_id, Some(e.err_code)));
                return Ok(h);
            }
            OneOfmsg_body::None => {
                return Err(Dropped::MalformedMsg);
            }
        };
        let root = model.tree.root_name().to_string();
        // Room for a read answer: the MTP's limit less the envelope and the header's Message ID
        // and endpoint IDs (which come back in the answer).
        let budget =
            Budget::new(self.max_record.saturating_sub(ENVELOPE + header.msg_id.len() + self.endpoint_id.len() + opened.from_id.len()));
        // Set when the answer was given up for its size: the Error says so.
        let mut too_large = false;
        let mut read = |r: Result<OneOfresp_type, UspErr>| match r {
            Ok(resp) => Ok(Some(resp)),
            Err(e) => {
                too_large = e == UspErr::MESSAGE_FAILED;
                Err((e, Vec::new()))
            }
        };
        // TR-369 7005 Resources Exceeded: a request naming more paths than an Agent handles at
        // once is well formed (so not 7004 Invalid Arguments), it asks for more than this Agent
        // sets aside for one Message.
        let paths = match &request.req_type {
            OneOfreq_type::get(g) => g.param_paths.len(),
            OneOfreq_type::get_instances(g) => g.obj_paths.len(),
            OneOfreq_type::get_supported_dm(g) => g.obj_paths.len(),
            OneOfreq_type::set(s) => s.update_objs.len(),
            OneOfreq_type::add(a) => a.create_objs.len(),
            OneOfreq_type::delete(d) => d.obj_paths.len(),
            _ => 0,
        };
        let answer: Result<Option<OneOfresp_type>, (UspErr, Vec<ParamError>)> = match request.req_type {
            _ if paths > MAX_PATHS => {
                h.kind = kind_of(&request.req_type);
                Err((UspErr::RESOURCES_EXCEEDED, Vec::new()))
            }
            OneOfreq_type::get(g) => {
                h.kind = MsgKind::Get;
                let dev = model.device(self.cpe.id, &self.cpe.delta, self.cpe.boot_at, now);
                read(get::get(&dev, &g, budget).map(OneOfresp_type::get_resp))
            }
            OneOfreq_type::set(s) => {
                h.kind = MsgKind::Set;
                match set::set(model, &mut self.cpe, &s, now) {
                    Ok(r) => Ok(Some(OneOfresp_type::set_resp(r))),
                    Err(f) => Err((
                        f.err,
                        f.param_errs
                            .into_iter()
                            .map(|(param_path, e)| ParamError { param_path, err_code: e.0, err_msg: e.message().into() })
                            .collect(),
                    )),
                }
            }
            OneOfreq_type::add(a) => {
                h.kind = MsgKind::Add;
                objects::add(model, &mut self.cpe, &a, &opened.from_id, now, &mut h.changed)
                    .map(|r| Some(OneOfresp_type::add_resp(r)))
                    .map_err(|e| (e, Vec::new()))
            }
            OneOfreq_type::delete(d) => {
                h.kind = MsgKind::Delete;
                objects::delete(model, &mut self.cpe, &d, now, &mut h.changed)
                    .map(|r| Some(OneOfresp_type::delete_resp(r)))
                    .map_err(|e| (e, Vec::new()))
            }
            OneOfreq_type::operate(o) => {
                h.kind = MsgKind::Operate;
                match operate::operate(&root, &o, self.next_request) {
                    Ok((resp, accepted)) => {
                        if accepted.request_path.is_some() {
                            self.next_request = self.next_request.wrapping_add(1).max(1);
                        }
                        let send = accepted.send_resp;
                        h.accepted = Some(accepted);
                        Ok(send.then_some(OneOfresp_type::operate_resp(resp)))
                    }
                    Err(e) => Err((e, Vec::new())),
                }
            }
            OneOfreq_type::get_supported_dm(g) => {
                h.kind = MsgKind::GetSupportedDm;
                read(supported::get_supported_dm(&model.tree, &g, budget).map(OneOfresp_type::get_supported_dm_resp))
            }
            OneOfreq_type::get_instances(g) => {
                h.kind = MsgKind::GetInstances;
                let dev = model.device(self.cpe.id, &self.cpe.delta, self.cpe.boot_at, now);
                read(supported::get_instances(&dev, &g, budget).map(OneOfresp_type::get_instances_resp))
            }
            OneOfreq_type::get_supported_protocol(_) => {
                h.kind = MsgKind::GetSupportedProtocol;
                Ok(Some(OneOfresp_type::get_supported_protocol_resp(supported::get_supported_protocol())))
            }
            // A Controller does not notify an Agent, and Register/Deregister are what Agents send
            // (USP 1.3): 7001 Message not supported.
            OneOfreq_type::notify(_) => {
                h.kind = MsgKind::Notify;
                Err((UspErr::MESSAGE_NOT_SUPPORTED, Vec::new()))
            }
            OneOfreq_type::register(_) => {
                h.kind = MsgKind::Register;
                Err((UspErr::MESSAGE_NOT_SUPPORTED, Vec::new()))
            }
            OneOfreq_type::deregister(_) => {
                h.kind = MsgKind::Deregister;
                Err((UspErr::MESSAGE_NOT_SUPPORTED, Vec::new()))
            }
            OneOfreq_type::None => Err((UspErr::MESSAGE_NOT_SUPPORTED, Vec::new())),
        };
        let (msg_type, body) = match answer {
            Ok(None) => return Ok(h),
            Ok(Some(resp)) => (response_type(&resp), OneOfmsg_body::response(Response { resp_type: resp })),
            Err((e, param_errs)) => {
                h.refused = Some(e);
                let err_msg = if too_large { format!("response too large (over {} bytes)", self.max_record) } else { e.message().into() };
                (MsgType::ERROR, OneOfmsg_body::error(Error { err_code: e.0, err_msg, param_errs }))
            }
        };
        // TR-369 R-MSG.4 (roughly): a response carries the request's Message ID.
        let reply = Msg { header: Some(Header { msg_id: header.msg_id, msg_type }), body: Some(Body { msg_body: body }) };
        h.reply = Some((opened.from_id.clone(), record::seal(&reply, &self.endpoint_id, &opened.from_id)));
        Ok(h)
    }
}

fn kind_of(r: &OneOfreq_type) -> MsgKind {
    match r {
        OneOfreq_type::get(_) => MsgKind::Get,
        OneOfreq_type::get_instances(_) => MsgKind::GetInstances,
        OneOfreq_type::get_supported_dm(_) => MsgKind::GetSupportedDm,
        OneOfreq_type::set(_) => MsgKind::Set,
        OneOfreq_type::add(_) => MsgKind::Add,
        OneOfreq_type::delete(_) => MsgKind::Delete,
        _ => MsgKind::Unknown,
    }
}

fn response_type(r: &OneOfresp_type) -> MsgType {
    match r {
        OneOfresp_type::get_resp(_) => MsgType::GET_RESP,
        OneOfresp_type::get_supported_dm_resp(_) => MsgType::GET_SUPPORTED_DM_RESP,
        OneOfresp_type::get_instances_resp(_) => MsgType::GET_INSTANCES_RESP,
        OneOfresp_type::set_resp(_) => MsgType::SET_RESP,
        OneOfresp_type::add_resp(_) => MsgType::ADD_RESP,
        OneOfresp_type::delete_resp(_) => MsgType::DELETE_RESP,
        OneOfresp_type::operate_resp(_) => MsgType::OPERATE_RESP,
        OneOfresp_type::notify_resp(_) => MsgType::NOTIFY_RESP,
        OneOfresp_type::get_supported_protocol_resp(_) => MsgType::GET_SUPPORTED_PROTO_RESP,
        OneOfresp_type::register_resp(_) => MsgType::REGISTER_RESP,
        OneOfresp_type::deregister_resp(_) => MsgType::DEREGISTER_RESP,
        OneOfresp_type::None => MsgType::ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DeviceId;
    use rusp_lib::usp::{Get, GetInstances, GetSupportedDM};

    const CTL: &str = "self::ctl";
    const NOW: UnixMillis = UnixMillis(1_700_000_000_000);

    fn agent() -> (Model, Agent) {
        let model =
            crate::config::load_profile(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/example-tr181-gateway")).unwrap();
        (model, Agent::new("os::A-1".into(), CTL.into(), CpeState::new(DeviceId(0), NOW)))
    }

    fn ask(model: &Model, a: &mut Agent, req: OneOfreq_type) -> OneOfmsg_body {
        let msg = Msg {
            header: Some(Header { msg_id: "m".into(), msg_type: MsgType::GET }),
            body: Some(Body { msg_body: OneOfmsg_body::request(Request { req_type: req }) }),
        };
        let h = a.handle(model, &record::seal(&msg, CTL, "os::A-1"), NOW).unwrap();
        let (_, bytes) = h.reply.unwrap();
        assert!(bytes.len() <= a.max_record, "{} bytes", bytes.len());
        record::open(&bytes, CTL).unwrap().msg.body.unwrap().msg_body
    }

    fn err_code(b: &OneOfmsg_body) -> Option<(u32, String)> {
        match b {
            OneOfmsg_body::error(e) => Some((e.err_code, e.err_msg.clone())),
            _ => None,
        }
    }

    #[test]
    fn too_many_paths_is_7005_before_anything_is_resolved() {
        let (model, mut a) = agent();
        let many = vec!["Device.".to_string(); 20_000];
        let get = OneOfreq_type::get(Get { param_paths: many.clone(), max_depth: 0 });
        assert_eq!(err_code(&ask(&model, &mut a, get)).unwrap().0, 7005);
        let gi = OneOfreq_type::get_instances(GetInstances { obj_paths: many.clone(), first_level_only: false });
        assert_eq!(err_code(&ask(&model, &mut a, gi)).unwrap().0, 7005);
        let gsdm = OneOfreq_type::get_supported_dm(GetSupportedDM { obj_paths: many, return_params: true, ..Default::default() });
        assert_eq!(err_code(&ask(&model, &mut a, gsdm)).unwrap().0, 7005);
        // At the limit the request is served (small paths: the answer fits).
        let ok = vec!["Device.DeviceInfo.SerialNumber".to_string(); MAX_PATHS];
        assert!(err_code(&ask(&model, &mut a, OneOfreq_type::get(Get { param_paths: ok, max_depth: 0 }))).is_none());
    }

    #[test]
    fn an_answer_past_the_budget_is_7000_not_built() {
        let (model, mut a) = agent();
        let whole = |n| vec!["Device.".to_string(); n];
        // One whole tree fits a megabyte; a thousand do not: 7000 "response too large".
        assert!(err_code(&ask(&model, &mut a, OneOfreq_type::get(Get { param_paths: whole(1), max_depth: 0 }))).is_none());
        let (code, msg) = err_code(&ask(&model, &mut a, OneOfreq_type::get(Get { param_paths: whole(1000), max_depth: 0 }))).unwrap();
        assert_eq!(code, 7000);
        assert!(msg.contains("response too large"), "{msg}");
        let gsdm = OneOfreq_type::get_supported_dm(GetSupportedDM { obj_paths: whole(1000), return_params: true, ..Default::default() });
        assert_eq!(err_code(&ask(&model, &mut a, gsdm)).unwrap().0, 7000);
        // A smaller MTP limit is honoured the same way (GetInstances answers are small: a
        // thousand whole-tree ones still fit a megabyte).
        let gi = OneOfreq_type::get_instances(GetInstances { obj_paths: whole(1000), first_level_only: false });
        assert!(err_code(&ask(&model, &mut a, gi.clone())).is_none());
        a.max_record = 16 * 1024;
        assert_eq!(err_code(&ask(&model, &mut a, gi)).unwrap().0, 7000);
        a.max_record = 2048;
        assert_eq!(err_code(&ask(&model, &mut a, OneOfreq_type::get(Get { param_paths: whole(1), max_depth: 0 }))).unwrap().0, 7000);
    }
}
