//! CWMP messages: one file per RPC (arguments, parsing, response rendering), dispatched through
//! [`AcsRequest`], whose [`AcsRequest::Unknown`] variant is answered with Fault 9000 rather than
//! treated as an error (PROTOCOL.md §7.1).
//!
//! [`parse_envelope`] reads a whole ACS→CPE body into an [`Envelope`]: header fields (`cwmp:ID`,
//! `HoldRequests`), the cwmp version, and the message.

pub mod add_object;
pub mod cancel_transfer;
pub mod change_du_state;
pub mod delete_object;
pub mod download;
pub mod factory_reset;
pub mod fault;
pub mod get_options;
pub mod get_parameter_attributes;
pub mod get_parameter_names;
pub mod get_parameter_values;
pub mod get_queued_transfers;
pub mod get_rpc_methods;
pub mod inform;
pub mod reboot;
pub mod schedule_download;
pub mod schedule_inform;
pub mod set_parameter_attributes;
pub mod set_parameter_values;
pub mod set_vouchers;
pub mod transfer_complete;
pub mod unknown;
pub mod upload;

use std::borrow::Cow;

use super::parse::{parse_bool, Cursor, Elem, Ns, ParseError};

/// An ACS request the CPE must answer.
#[derive(Debug, Clone, PartialEq)]
pub enum AcsRequest<'a> {
    GetRpcMethods,
    GetParameterValues(get_parameter_values::GetParameterValues<'a>),
    GetParameterNames(get_parameter_names::GetParameterNames<'a>),
    SetParameterValues(set_parameter_values::SetParameterValues<'a>),
    GetParameterAttributes(get_parameter_attributes::GetParameterAttributes<'a>),
    SetParameterAttributes(set_parameter_attributes::SetParameterAttributes<'a>),
    AddObject(add_object::AddObject<'a>),
    DeleteObject(delete_object::DeleteObject<'a>),
    Reboot(reboot::Reboot<'a>),
    FactoryReset,
    // Boxed: ten strings each would make every message 200 bytes instead of 56, and moving that
    // around cost ~10% of parsing an InformResponse (benches/codec.rs). Transfers are rare.
    Download(Box<download::Download<'a>>),
    Upload(Box<upload::Upload<'a>>),
    ScheduleInform(schedule_inform::ScheduleInform<'a>),
    GetQueuedTransfers,
    GetAllQueuedTransfers,
    ScheduleDownload(Box<schedule_download::ScheduleDownload<'a>>),
    CancelTransfer(cancel_transfer::CancelTransfer<'a>),
    ChangeDuState(change_du_state::ChangeDuState<'a>),
    SetVouchers(set_vouchers::SetVouchers<'a>),
    GetOptions(get_options::GetOptions<'a>),
    /// Any other method: answered with Fault 9000.
    Unknown {
        name: &'a str,
    },
}

impl AcsRequest<'_> {
    /// The RPC method name (`Unknown` for methods this CPE does not know).
    pub fn static_name(&self) -> &'static str {
        match self {
            AcsRequest::GetRpcMethods => "GetRPCMethods",
            AcsRequest::GetParameterValues(_) => "GetParameterValues",
            AcsRequest::GetParameterNames(_) => "GetParameterNames",
            AcsRequest::SetParameterValues(_) => "SetParameterValues",
            AcsRequest::GetParameterAttributes(_) => "GetParameterAttributes",
            AcsRequest::SetParameterAttributes(_) => "SetParameterAttributes",
            AcsRequest::AddObject(_) => "AddObject",
            AcsRequest::DeleteObject(_) => "DeleteObject",
            AcsRequest::Reboot(_) => "Reboot",
            AcsRequest::FactoryReset => "FactoryReset",
            AcsRequest::Download(_) => "Download",
            AcsRequest::Upload(_) => "Upload",
            AcsRequest::ScheduleInform(_) => "ScheduleInform",
            AcsRequest::GetQueuedTransfers => "GetQueuedTransfers",
            AcsRequest::GetAllQueuedTransfers => "GetAllQueuedTransfers",
            AcsRequest::ScheduleDownload(_) => "ScheduleDownload",
            AcsRequest::CancelTransfer(_) => "CancelTransfer",
            AcsRequest::ChangeDuState(_) => "ChangeDUState",
            AcsRequest::SetVouchers(_) => "SetVouchers",
            AcsRequest::GetOptions(_) => "GetOptions",
            AcsRequest::Unknown { .. } => "Unknown",
        }
    }

    /// The RPC method name as sent.
    pub fn name(&self) -> &str {
        match self {
            AcsRequest::Unknown { name } => name,
            known => known.static_name(),
        }
    }
}

/// Every method the simulated CPE implements (the GetRPCMethods answer).
pub const SUPPORTED_METHODS: &[&str] = &[
    "GetRPCMethods",
    "SetParameterValues",
    "GetParameterValues",
    "GetParameterNames",
    "SetParameterAttributes",
    "GetParameterAttributes",
    "AddObject",
    "DeleteObject",
    "Reboot",
    "Download",
    "Upload",
    "FactoryReset",
    "ScheduleInform",
    "GetQueuedTransfers",
    "GetAllQueuedTransfers",
    "ScheduleDownload",
    "CancelTransfer",
    "SetVouchers",
    "GetOptions",
];

/// Any message an ACS sends.
#[derive(Debug, Clone, PartialEq)]
pub enum AcsMessage<'a> {
    InformResponse {
        max_envelopes: u32,
    },
    TransferCompleteResponse,
    GetRpcMethodsResponse {
        methods: Vec<Cow<'a, str>>,
    },
    Request(AcsRequest<'a>),
    /// A request whose arguments could not be read: answered with Fault 9003 (9004 when too big).
    BadRequest {
        method: &'a str,
        error: ParseError,
    },
    Fault(fault::AcsFault<'a>),
}

/// A parsed ACS→CPE envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<'a> {
    /// `cwmp:ID`, to be echoed verbatim in the answer.
    pub id: Option<Cow<'a, str>>,
    /// `cwmp:HoldRequests`: the CPE must not send a request in its next POST.
    pub hold_requests: bool,
    /// N of the message's `urn:dslforum-org:cwmp-1-N`, if it was in a cwmp namespace.
    pub cwmp_minor: Option<u8>,
    pub message: AcsMessage<'a>,
}

/// Parses a whole ACS→CPE body.
///
/// # Errors
/// Only when the body is not a usable envelope ([`ParseError::is_fatal`]); a request with bad
/// arguments comes back as [`AcsMessage::BadRequest`].
pub fn parse_envelope(body: &[u8]) -> Result<Envelope<'_>, ParseError> {
    let mut cur = Cursor::new(body)?;
    let root = cur.root()?;
    if root.ns != Ns::SoapEnv || root.local != "Envelope" {
        return Err(ParseError::NotSoapEnvelope);
    }
    let mut id = None;
    let mut hold_requests = false;
    let mut message = None;
    let mut cwmp_minor = None;
    while let Some(child) = cur.child(&root)? {
        match (child.ns, child.local) {
            (Ns::SoapEnv, "Header") => {
                while let Some(h) = cur.child(&child)? {
                    match h.local {
                        "ID" => id = Some(cur.text(&h, "ID")?),
                        "HoldRequests" => hold_requests = parse_bool(&cur.text(&h, "HoldRequests")?).unwrap_or(false),
                        _ => cur.skip(&h)?,
                    }
                }
            }
            (Ns::SoapEnv, "Body") if message.is_none() => {
                let Some(m) = cur.child(&child)? else { return Err(ParseError::EmptyBody) };
                if let Ns::Cwmp(n) = m.ns {
                    cwmp_minor = Some(n);
                }
                message = Some(parse_message(&mut cur, &m)?);
                // Anything after the message inside Body is ignored (MaxEnvelopes is 1).
                cur.skip_to(ENVELOPE_DEPTH)?;
            }
            _ => cur.skip(&child)?,
        }
    }
    cur.finish()?;
    let message = message.ok_or(ParseError::NoBody)?;
    Ok(Envelope { id, hold_requests, cwmp_minor, message })
}

/// The cursor depth inside the Envelope element (the Body is at depth 2).
const ENVELOPE_DEPTH: u16 = 1;

fn parse_message<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<AcsMessage<'a>, ParseError> {
    // GenieACS's 8000 fault element is literally named `soap-env:Body:Fault` (PROTOCOL.md §8).
    if m.local == "Fault" || m.local.ends_with(":Fault") {
        return fault::parse_acs_fault(cur, m).map(AcsMessage::Fault);
    }
    let depth = cur.depth();
    let parsed = match m.local {
        "InformResponse" => inform::parse_response(cur, m),
        "TransferCompleteResponse" => cur.skip(m).map(|_| AcsMessage::TransferCompleteResponse),
        "GetRPCMethodsResponse" => get_rpc_methods::parse_response(cur, m),
        _ => parse_request(cur, m).map(AcsMessage::Request),
    };
    match parsed {
        Ok(msg) => Ok(msg),
        Err(e) if e.is_fatal() => Err(e),
        Err(error) => {
            // Recover to the end of the message element so the rest is still checked.
            let back = if m.empty { depth } else { depth - 1 };
            cur.skip_to(back)?;
            Ok(AcsMessage::BadRequest { method: m.local, error })
        }
    }
}

fn parse_request<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<AcsRequest<'a>, ParseError> {
    Ok(match m.local {
        "GetRPCMethods" => {
            cur.skip(m)?;
            AcsRequest::GetRpcMethods
        }
        "GetParameterValues" => AcsRequest::GetParameterValues(get_parameter_values::parse(cur, m)?),
        "GetParameterNames" => AcsRequest::GetParameterNames(get_parameter_names::parse(cur, m)?),
        "SetParameterValues" => AcsRequest::SetParameterValues(set_parameter_values::parse(cur, m)?),
        "GetParameterAttributes" => AcsRequest::GetParameterAttributes(get_parameter_attributes::parse(cur, m)?),
        "SetParameterAttributes" => AcsRequest::SetParameterAttributes(set_parameter_attributes::parse(cur, m)?),
        "AddObject" => AcsRequest::AddObject(add_object::parse(cur, m)?),
        "DeleteObject" => AcsRequest::DeleteObject(delete_object::parse(cur, m)?),
        "Reboot" => AcsRequest::Reboot(reboot::parse(cur, m)?),
        "FactoryReset" => {
            cur.skip(m)?;
            AcsRequest::FactoryReset
        }
        "Download" => AcsRequest::Download(Box::new(download::parse(cur, m)?)),
        "Upload" => AcsRequest::Upload(Box::new(upload::parse(cur, m)?)),
        "ScheduleInform" => AcsRequest::ScheduleInform(schedule_inform::parse(cur, m)?),
        "GetQueuedTransfers" => {
            cur.skip(m)?;
            AcsRequest::GetQueuedTransfers
        }
        "GetAllQueuedTransfers" => {
            cur.skip(m)?;
            AcsRequest::GetAllQueuedTransfers
        }
        "ScheduleDownload" => AcsRequest::ScheduleDownload(Box::new(schedule_download::parse(cur, m)?)),
        "CancelTransfer" => AcsRequest::CancelTransfer(cancel_transfer::parse(cur, m)?),
        "ChangeDUState" => AcsRequest::ChangeDuState(change_du_state::parse(cur, m)?),
        "SetVouchers" => AcsRequest::SetVouchers(set_vouchers::parse(cur, m)?),
        "GetOptions" => AcsRequest::GetOptions(get_options::parse(cur, m)?),
        name => {
            cur.skip(m)?;
            AcsRequest::Unknown { name }
        }
    })
}

/// Reads a struct-like element: calls `field(local_name, text)` for each child's text.
pub(crate) fn read_fields<'a>(
    cur: &mut Cursor<'a>,
    elem: &Elem<'a>,
    mut field: impl FnMut(&'a str, Cow<'a, str>) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    while let Some(c) = cur.child(elem)? {
        let text = cur.text(&c, "argument")?;
        field(c.local, text)?;
    }
    Ok(())
}
