//! Methods the CPE does not implement: answered with Fault 9000 "Method not supported"
//! (PROTOCOL.md §7.1), never treated as an error of the session.

use bytes::BytesMut;

use super::fault::write_cpe_fault;
use crate::cwmp::fault::FaultCode;

/// Writes the 9000 fault naming the method.
pub fn write_response(out: &mut BytesMut, urn: &str, id: Option<&str>, method: &str) {
    write_cpe_fault::<&str>(out, urn, id, FaultCode::MethodNotSupported, Some(method), &[]);
}
