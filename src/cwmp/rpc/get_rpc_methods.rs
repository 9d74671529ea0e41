//! GetRPCMethods (TR-069 §A.3.1.1): answering the ACS with the methods the CPE supports, and
//! reading the ACS's GetRPCMethodsResponse.

use bytes::BytesMut;

use crate::cwmp::envelope::{self, num, text_elem};
use crate::cwmp::parse::{string_array, Cursor, Elem, ParseError};

use super::AcsMessage;

/// Writes the CPE's GetRPCMethodsResponse.
pub fn write_response(out: &mut BytesMut, urn: &str, id: Option<&str>, methods: &[&str]) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:GetRPCMethodsResponse><MethodList SOAP-ENC:arrayType=\"xsd:string[");
    num(out, methods.len());
    out.extend_from_slice(b"]\">");
    for m in methods {
        text_elem(out, "string", m);
    }
    out.extend_from_slice(b"</MethodList></cwmp:GetRPCMethodsResponse>");
    envelope::close(out);
}

/// Reads the ACS's GetRPCMethodsResponse.
pub fn parse_response<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<AcsMessage<'a>, ParseError> {
    let mut methods = Vec::new();
    while let Some(c) = cur.child(m)? {
        if c.local == "MethodList" {
            methods = string_array(cur, &c, "MethodList")?;
        } else {
            cur.skip(&c)?;
        }
    }
    Ok(AcsMessage::GetRpcMethodsResponse { methods })
}

/// Writes a CPE-originated GetRPCMethods request (sent after a BOOTSTRAP Inform when the profile
/// asks for it, as some CPEs do to learn what the ACS supports).
pub fn write_request(out: &mut BytesMut, urn: &str, id: &str) {
    envelope::open(out, urn, Some(id));
    out.extend_from_slice(b"<cwmp:GetRPCMethods></cwmp:GetRPCMethods>");
    envelope::close(out);
}
