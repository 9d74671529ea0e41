//! The CWMP codec, sans-IO: parsing ACS→CPE envelopes and rendering CPE→ACS ones.
//!
//! - [`parse`]: the borrowing quick-xml cursor and its limits.
//! - [`rpc`]: one file per RPC, [`rpc::parse_envelope`] and the message enums.
//! - [`envelope`], [`xml`]: envelope framing and escaping for the renderers.
//! - [`fault`]: fault codes.
//!
//! No sockets, no clock. Called by `session` (and by the embedded ACS in `acs`).

pub mod envelope;
pub mod fault;
pub mod limits;
pub mod parse;
pub mod rpc;
pub mod xml;

pub use fault::{AcsFaultCode, FaultCode};
pub use parse::ParseError;
pub use rpc::{parse_envelope, AcsMessage, AcsRequest, Envelope};
