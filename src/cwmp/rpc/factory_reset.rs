//! FactoryReset (TR-069 §A.4.1.6): no arguments, empty response; the reset happens after the
//! session and the next Inform carries `0 BOOTSTRAP` + `1 BOOT`.

use bytes::BytesMut;

use crate::cwmp::envelope;

/// Writes the (empty) response.
pub fn write_response(out: &mut BytesMut, urn: &str, id: Option<&str>) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:FactoryResetResponse></cwmp:FactoryResetResponse>");
    envelope::close(out);
}
