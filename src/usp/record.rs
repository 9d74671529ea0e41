//! USP Records (TR-369 §"End to End Message Exchange"): the envelope of every Message, with
//! `to_id`/`from_id` endpoint IDs. Agents here speak NoSessionContext Records only (USP 1.3); a
//! SessionContext, E2E-secured or MTP connect Record addressed to an Agent is refused and counted.

use quick_protobuf::{BytesReader, MessageRead, MessageWrite, Writer};
use rusp_lib::usp::Msg;
use rusp_lib::usp_record::mod_Record::{OneOfrecord_type, PayloadSecurity};
use rusp_lib::usp_record::{NoSessionContextRecord, Record};

use super::USP_VERSION;

/// Why an incoming Record was dropped: the report's `dropped` counts, by cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dropped {
    /// The bytes are not a protobuf `Record` (TR-369 R-E2E.? "Record could not be parsed", 7100).
    MalformedRecord,
    /// `to_id` names another endpoint (TR-369 R-MTP.2: an Agent ignores Records not for it).
    WrongEndpoint,
    /// A SessionContext Record (E2E sessions are not simulated; 7106 would be the answer).
    SessionContext,
    /// A Record with payload security other than PLAINTEXT, or a MAC signature (7101/7102).
    SecuredPayload,
    /// An MTP connect/disconnect Record or no record type at all.
    NotAMessage,
    /// The payload is not a protobuf `Msg`, or a Msg with no header/body.
    MalformedMsg,
    /// `from_id` is not a valid endpoint ID ([`super::endpoint::is_valid`]): an answer would go
    /// to a topic built from it (empty, too long for MQTT, or holding wildcards), or a response
    /// came from someone other than the Controller the Agent reports to.
    BadSender,
}

impl Dropped {
    /// Every cause, in the report's order.
    pub const ALL: [Dropped; 7] = [
        Dropped::MalformedRecord,
        Dropped::WrongEndpoint,
        Dropped::SessionContext,
        Dropped::SecuredPayload,
        Dropped::NotAMessage,
        Dropped::MalformedMsg,
        Dropped::BadSender,
    ];

    /// The cause as the report names it.
    pub fn name(self) -> &'static str {
        match self {
            Dropped::MalformedRecord => "malformed_record",
            Dropped::WrongEndpoint => "wrong_endpoint",
            Dropped::SessionContext => "session_context",
            Dropped::SecuredPayload => "secured_payload",
            Dropped::NotAMessage => "not_a_message",
            Dropped::MalformedMsg => "malformed_msg",
            Dropped::BadSender => "bad_sender",
        }
    }
}

/// A NoSessionContext Record's Message, opened.
#[derive(Debug)]
pub struct Opened {
    /// The sender's endpoint ID (where an answer goes).
    pub from_id: String,
    pub msg: Msg,
}

/// Opens a Record addressed to `own_id` and decodes its Message.
///
/// # Errors
/// The [`Dropped`] cause: the caller counts it and answers nothing (there is no Message ID to
/// answer to).
pub fn open(bytes: &[u8], own_id: &str) -> Result<Opened, Dropped> {
    let record = decode::<Record>(bytes).ok_or(Dropped::MalformedRecord)?;
    if record.to_id != own_id {
        return Err(Dropped::WrongEndpoint);
    }
    // The answer goes to `usp/agent/<from_id>` or `usp/controller/<from_id>`: an ID that is not
    // one (empty, 70,000 bytes, `+`/`#`) would knock the publisher off the broker.
    if !super::endpoint::is_valid(&record.from_id) {
        return Err(Dropped::BadSender);
    }
    if record.payload_security != PayloadSecurity::PLAINTEXT || !record.mac_signature.is_empty() {
        return Err(Dropped::SecuredPayload);
    }
    let payload = match record.record_type {
        OneOfrecord_type::no_session_context(r) => r.payload,
        OneOfrecord_type::session_context(_) => return Err(Dropped::SessionContext),
        _ => return Err(Dropped::NotAMessage),
    };
    let msg = decode::<Msg>(&payload).ok_or(Dropped::MalformedMsg)?;
    if msg.header.is_none() || msg.body.is_none() {
        return Err(Dropped::MalformedMsg);
    }
    Ok(Opened { from_id: record.from_id, msg })
}

/// Decodes one protobuf message, `None` when the bytes are not one.
///
/// quick-protobuf 0.8.1's `BytesReader::read_len` does not bound a nested field's length by its
/// enclosing message: on hostile input that is an arithmetic overflow, a panic where overflow
/// checks are on (debug and test builds) and wrapping arithmetic that ends in an error in
/// release builds. Decoding is pure, so the unwind is caught and the input counted as malformed.
fn decode<'a, M: MessageRead<'a>>(bytes: &'a [u8]) -> Option<M> {
    std::panic::catch_unwind(|| {
        let mut reader = BytesReader::from_bytes(bytes);
        M::from_reader(&mut reader, bytes).ok()
    })
    .ok()
    .flatten()
}

/// Encodes `msg` into a NoSessionContext Record from `from_id` to `to_id` (USP 1.3, plaintext).
pub fn seal(msg: &Msg, from_id: &str, to_id: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(msg.get_size() + 8);
    // Writing into a Vec cannot fail.
    let _ = msg.write_message(&mut Writer::new(&mut payload));
    seal_payload(payload, from_id, to_id)
}

/// Encodes an already encoded Message into a NoSessionContext Record (tests send broken ones).
pub fn seal_payload(payload: Vec<u8>, from_id: &str, to_id: &str) -> Vec<u8> {
    let record = Record {
        version: USP_VERSION.into(),
        to_id: to_id.into(),
        from_id: from_id.into(),
        payload_security: PayloadSecurity::PLAINTEXT,
        mac_signature: Vec::new(),
        sender_cert: Vec::new(),
        record_type: OneOfrecord_type::no_session_context(NoSessionContextRecord { payload }),
    };
    let mut out = Vec::with_capacity(record.get_size() + 8);
    let _ = record.write_message(&mut Writer::new(&mut out));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusp_lib::usp::mod_Body::OneOfmsg_body;
    use rusp_lib::usp::mod_Header::MsgType;
    use rusp_lib::usp::mod_Request::OneOfreq_type;
    use rusp_lib::usp::{Body, Get, Header, Request};

    fn get_msg() -> Msg {
        Msg {
            header: Some(Header { msg_id: "m1".into(), msg_type: MsgType::GET }),
            body: Some(Body {
                msg_body: OneOfmsg_body::request(Request {
                    req_type: OneOfreq_type::get(Get { param_paths: vec!["Device.".into()], max_depth: 0 }),
                }),
            }),
        }
    }

    #[test]
    fn round_trip() {
        let bytes = seal(&get_msg(), "self::c", "os::A-1");
        let opened = open(&bytes, "os::A-1").unwrap();
        assert_eq!(opened.from_id, "self::c");
        assert_eq!(opened.msg, get_msg());
    }

    #[test]
    fn refusals() {
        let bytes = seal(&get_msg(), "self::c", "os::A-1");
        assert_eq!(open(&bytes, "os::A-2").unwrap_err(), Dropped::WrongEndpoint);
        assert_eq!(open(b"\xff\xff\xff", "os::A-1").unwrap_err(), Dropped::MalformedRecord);
        assert_eq!(open(&seal_payload(vec![0xff, 0x01], "self::c", "os::a"), "os::a").unwrap_err(), Dropped::MalformedMsg);
        assert_eq!(open(&seal_payload(Vec::new(), "self::c", "os::a"), "os::a").unwrap_err(), Dropped::MalformedMsg);
        // A sender whose ID cannot name a topic is dropped before anything is answered.
        assert_eq!(open(&seal(&get_msg(), "", "os::A-1"), "os::A-1").unwrap_err(), Dropped::BadSender);
        assert_eq!(open(&seal(&get_msg(), &"x".repeat(70_000), "os::A-1"), "os::A-1").unwrap_err(), Dropped::BadSender);
        assert_eq!(open(&seal(&get_msg(), "self::c/#", "os::A-1"), "os::A-1").unwrap_err(), Dropped::BadSender);
        assert_eq!(open(&seal(&get_msg(), "self::+", "os::A-1"), "os::A-1").unwrap_err(), Dropped::BadSender);
        // Truncated records never panic.
        for n in 0..bytes.len() {
            let _ = open(&bytes[..n], "os::A-1");
        }
    }
}
