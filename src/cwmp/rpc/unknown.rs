//! Methods the CPE does not implement: answered with Fault 9000 "Method not supported"
//! (PROTOCOL.md §7.1), never treated as an error of the session; or, when an extension hook
//! implements the vendor RPC, with the hook's response.

use bytes::BytesMut;

use super::fault::write_cpe_fault;
use crate::cwmp::envelope;
use crate::cwmp::fault::FaultCode;

/// Writes the 9000 fault naming the method.
pub fn write_response(out: &mut BytesMut, urn: &str, id: Option<&str>, method: &str) {
    write_cpe_fault::<&str>(out, urn, id, FaultCode::MethodNotSupported, Some(method), &[]);
}

/// Writes a vendor RPC's response as an extension hook produced it: `inner` is XML the hook
/// vouches for, put between `<cwmp:{method}Response>` tags.
pub fn write_vendor_response(out: &mut BytesMut, urn: &str, id: Option<&str>, method: &str, inner: &str) {
    envelope::open(out, urn, id);
    for part in ["<cwmp:", method, "Response>", inner, "</cwmp:", method, "Response>"] {
        out.extend_from_slice(part.as_bytes());
    }
    envelope::close(out);
}
