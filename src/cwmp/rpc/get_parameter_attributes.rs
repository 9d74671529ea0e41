//! GetParameterAttributes (TR-069 §A.3.2.5): ParameterNames in, ParameterAttributeStruct[] out.

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope::{self, num};
use crate::cwmp::parse::{string_array, Cursor, Elem, ParseError};

/// The request's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct GetParameterAttributes<'a> {
    pub names: Vec<Cow<'a, str>>,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<GetParameterAttributes<'a>, ParseError> {
    let mut names = None;
    while let Some(c) = cur.child(m)? {
        match c.local {
            "ParameterNames" => names = Some(string_array(cur, &c, "ParameterNames")?),
            _ => cur.skip(&c)?,
        }
    }
    Ok(GetParameterAttributes { names: names.ok_or(ParseError::MissingArgument("ParameterNames"))? })
}

/// Writes the response head.
pub fn write_head(out: &mut BytesMut, urn: &str, id: Option<&str>, count: usize) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:GetParameterAttributesResponse><ParameterList SOAP-ENC:arrayType=\"cwmp:ParameterAttributeStruct[");
    num(out, count);
    out.extend_from_slice(b"]\">");
}

/// Writes one ParameterAttributeStruct.
pub fn write_entry(out: &mut BytesMut, name: impl FnOnce(&mut BytesMut), notification: u8, subscriber: bool) {
    out.extend_from_slice(b"<ParameterAttributeStruct><Name>");
    name(out);
    out.extend_from_slice(b"</Name><Notification>");
    num(out, notification);
    if subscriber {
        out.extend_from_slice(b"</Notification><AccessList SOAP-ENC:arrayType=\"xsd:string[1]\"><string>Subscriber</string></AccessList></ParameterAttributeStruct>");
    } else {
        out.extend_from_slice(b"</Notification><AccessList SOAP-ENC:arrayType=\"xsd:string[0]\"></AccessList></ParameterAttributeStruct>");
    }
}

/// Closes the response.
pub fn write_tail(out: &mut BytesMut) {
    out.extend_from_slice(b"</ParameterList></cwmp:GetParameterAttributesResponse>");
    envelope::close(out);
}
