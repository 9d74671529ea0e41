//! GetParameterValues (TR-069 §A.3.2.2): ParameterNames in, ParameterValueStruct[] out.

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope::{self, num};
use crate::cwmp::parse::{string_array, Cursor, Elem, ParseError};

/// The request's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct GetParameterValues<'a> {
    /// Full names, partial paths ending in `.`, or `""` for the whole tree.
    pub names: Vec<Cow<'a, str>>,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<GetParameterValues<'a>, ParseError> {
    let mut names = None;
    while let Some(c) = cur.child(m)? {
        match c.local {
            "ParameterNames" => names = Some(string_array(cur, &c, "ParameterNames")?),
            _ => cur.skip(&c)?,
        }
    }
    Ok(GetParameterValues { names: names.ok_or(ParseError::MissingArgument("ParameterNames"))? })
}

/// Writes the response head up to the first ParameterValueStruct.
pub fn write_head(out: &mut BytesMut, urn: &str, id: Option<&str>, count: usize) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:GetParameterValuesResponse><ParameterList SOAP-ENC:arrayType=\"cwmp:ParameterValueStruct[");
    num(out, count);
    out.extend_from_slice(b"]\">");
}

/// Writes one entry; `write_value` appends the escaped value text.
pub fn write_entry(out: &mut BytesMut, name: impl FnOnce(&mut BytesMut), xsi_type: &str, write_value: impl FnOnce(&mut BytesMut)) {
    out.extend_from_slice(b"<ParameterValueStruct><Name>");
    name(out);
    out.extend_from_slice(b"</Name><Value xsi:type=\"");
    out.extend_from_slice(xsi_type.as_bytes());
    out.extend_from_slice(b"\">");
    write_value(out);
    out.extend_from_slice(b"</Value></ParameterValueStruct>");
}

/// Closes the response.
pub fn write_tail(out: &mut BytesMut) {
    out.extend_from_slice(b"</ParameterList></cwmp:GetParameterValuesResponse>");
    envelope::close(out);
}
