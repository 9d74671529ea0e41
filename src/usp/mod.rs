//! TR-369 (USP) Agents, sans-IO: the same CPE state and TR-181 data model the CWMP side uses,
//! spoken as USP Records and Messages instead of SOAP.
//!
//! Owns: endpoint IDs ([`endpoint`]), Record framing ([`record`], USP 1.3 NoSessionContext only),
//! the 7000-series error codes ([`error`]), and one Agent's answer to each Controller message
//! ([`agent`], with one file per message family: [`get`], [`set`], [`objects`], [`operate`],
//! [`supported`], [`notify`]). Records and Messages are encoded and decoded by the `rusp-lib`
//! crate (Axiros; quick-protobuf bindings generated from the Broadband Forum's `usp-record` and
//! `usp-msg` proto files, vendored in the crate, so no `protoc` at build time).
//!
//! Does not own: sockets, MQTT or WebSocket (`mtp`), clocks (callers pass `now`), or the run and
//! its report (`mtp::run`). No I/O, no clock: the same split as `session` for CWMP.

pub mod agent;
pub mod endpoint;
pub mod error;
pub mod get;
pub mod notify;
pub mod objects;
pub mod operate;
pub mod record;
pub mod set;
pub mod subscription;
pub mod supported;

pub use agent::{Agent, Handled};
pub use endpoint::EndpointTemplate;
pub use error::UspErr;

/// The USP version this Agent speaks in its Records and answers to GetSupportedProtocol
/// (TR-369 Issue 1 Amendment 3).
pub const USP_VERSION: &str = "1.3";

/// What kind of USP Message one was: the key of the report's latency and count tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MsgKind {
    Get,
    Set,
    Add,
    Delete,
    Operate,
    Notify,
    GetSupportedDm,
    GetInstances,
    GetSupportedProtocol,
    Register,
    Deregister,
    /// A response or an Error sent to an Agent (Agents answer, they are not asked to).
    Response,
    /// A Msg with no body the Agent knows.
    Unknown,
}

impl MsgKind {
    /// The name TR-369 gives the message (`GetSupportedDM`, …).
    pub fn name(self) -> &'static str {
        match self {
            MsgKind::Get => "Get",
            MsgKind::Set => "Set",
            MsgKind::Add => "Add",
            MsgKind::Delete => "Delete",
            MsgKind::Operate => "Operate",
            MsgKind::Notify => "Notify",
            MsgKind::GetSupportedDm => "GetSupportedDM",
            MsgKind::GetInstances => "GetInstances",
            MsgKind::GetSupportedProtocol => "GetSupportedProtocol",
            MsgKind::Register => "Register",
            MsgKind::Deregister => "Deregister",
            MsgKind::Response => "Response",
            MsgKind::Unknown => "Unknown",
        }
    }
}
