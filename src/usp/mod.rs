//! TR-369 (USP) Agents, sans-IO: the same CPE state and TR-181 data model the CWMP side uses,
//! spoken as USP Records and Messages instead of SOAP.
//!
//! Owns: endpoint IDs ([`endpoint`]), Record framing ([`record`], USP 1.3 NoSessionContext only),
//! the 7000-series error codes ([`error`]), one Agent's answer to each Controller message
//! ([`agent`], with one file per message family: [`get`], [`set`], [`objects`], [`operate`],
//! [`supported`], [`notify`]), Controller paths with `*` and search expressions ([`path`]),
//! unique keys ([`keys`]), which Notifies an event causes ([`subscription`]), the factory
//! defaults that subscribe the run's Controller to Boot! and Periodic! ([`defaults`]) and one
//! Agent's timers ([`agenda`]). Records and Messages are encoded and decoded by the `rusp-lib`
//! crate (Axiros; quick-protobuf bindings generated from the Broadband Forum's `usp-record` and
//! `usp-msg` proto files, vendored in the crate, so no `protoc` at build time).
//!
//! Does not own: sockets, MQTT or WebSocket (`mtp`), clocks (callers pass `now`), or the run and
//! its report (`mtp::run`). No I/O, no clock: the same split as `session` for CWMP.

pub mod agenda;
pub mod agent;
pub mod defaults;
pub mod endpoint;
pub mod error;
pub mod get;
pub mod keys;
pub mod notify;
pub mod objects;
pub mod operate;
pub mod path;
pub mod record;
pub mod rollback;
pub mod set;
pub mod subscription;
pub mod supported;

pub use agent::{Agent, Handled};
pub use endpoint::EndpointTemplate;
pub use error::UspErr;

/// The USP version this Agent speaks in its Records and answers to GetSupportedProtocol
/// (TR-369 Issue 1 Amendment 3).
pub const USP_VERSION: &str = "1.3";

/// The largest Record an Agent sends: both MTPs here take at most 1 MiB (`mtp::mqtt::MAX_PACKET`,
/// the WebSocket's maximum message size), so a larger answer could not be delivered anyway.
pub const MAX_RECORD: usize = 1 << 20;

/// Most paths one Get, GetInstances or GetSupportedDM may name (or objects a Set, Add or Delete
/// may): beyond, the request is refused with 7005 Resources Exceeded before any is resolved.
pub const MAX_PATHS: usize = 1024;

/// What a read answer (GetResp, GetInstancesResp, GetSupportedDMResp) may grow to before it is
/// given up: 7000 "response too large" is sent instead of building it further.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    left: usize,
}

impl Budget {
    /// A budget of `bytes` encoded bytes.
    pub fn new(bytes: usize) -> Budget {
        Budget { left: bytes }
    }

    /// Takes `bytes` (one requested path's encoded result, plus its field header).
    ///
    /// # Errors
    /// 7000 when the answer would outgrow the budget.
    pub fn take(&mut self, bytes: usize) -> Result<(), UspErr> {
        self.left = self.left.checked_sub(bytes.saturating_add(8)).ok_or(UspErr::MESSAGE_FAILED)?;
        Ok(())
    }
}

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
    /// Every kind, in the report's order.
    pub const ALL: [MsgKind; 13] = [
        MsgKind::Get,
        MsgKind::Set,
        MsgKind::Add,
        MsgKind::Delete,
        MsgKind::Operate,
        MsgKind::Notify,
        MsgKind::GetSupportedDm,
        MsgKind::GetInstances,
        MsgKind::GetSupportedProtocol,
        MsgKind::Register,
        MsgKind::Deregister,
        MsgKind::Response,
        MsgKind::Unknown,
    ];

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
