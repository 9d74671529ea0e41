//! TransferComplete (TR-069 §A.3.3.2): the CPE's report of a finished Download/Upload, sent after
//! the InformResponse of a session whose Inform carried `7 TRANSFER COMPLETE`.

use bytes::BytesMut;

use crate::cwmp::envelope::{self, num, text_elem};

/// Writes a TransferComplete request. `fault` is 0 for success; `start`/`complete` are dateTimes.
pub fn write_request(out: &mut BytesMut, urn: &str, id: &str, command_key: &str, fault: (u16, &str), start: &str, complete: &str) {
    envelope::open(out, urn, Some(id));
    out.extend_from_slice(b"<cwmp:TransferComplete>");
    text_elem(out, "CommandKey", crate::cwmp::limits::clip(command_key, crate::cwmp::limits::COMMAND_KEY));
    out.extend_from_slice(b"<FaultStruct><FaultCode>");
    num(out, fault.0);
    out.extend_from_slice(b"</FaultCode>");
    text_elem(out, "FaultString", crate::cwmp::limits::clip(fault.1, crate::cwmp::limits::FAULT_STRING));
    out.extend_from_slice(b"</FaultStruct>");
    text_elem(out, "StartTime", start);
    text_elem(out, "CompleteTime", complete);
    out.extend_from_slice(b"</cwmp:TransferComplete>");
    envelope::close(out);
}
