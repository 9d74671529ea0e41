//! GetParameterNames (TR-069 §A.3.2.3): ParameterPath + NextLevel in, ParameterInfoStruct[] out.

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope::{self, num};
use crate::cwmp::parse::{parse_bool, Cursor, Elem, ParseError};

/// The request's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct GetParameterNames<'a> {
    /// `""` for the top of the tree.
    pub path: Cow<'a, str>,
    /// Accepted as true/false/1/0 (GenieACS sends 1/0).
    pub next_level: bool,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<GetParameterNames<'a>, ParseError> {
    let (mut path, mut next_level) = (None, None);
    super::read_fields(cur, m, |name, text| {
        match name {
            "ParameterPath" => path = Some(text),
            "NextLevel" => next_level = Some(parse_bool(&text).ok_or(ParseError::BadArgument("NextLevel"))?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(GetParameterNames {
        // An absent ParameterPath is read as the empty path (the whole tree), as ACSs mean it.
        path: path.unwrap_or(Cow::Borrowed("")),
        next_level: next_level.ok_or(ParseError::MissingArgument("NextLevel"))?,
    })
}

/// Writes the response head.
pub fn write_head(out: &mut BytesMut, urn: &str, id: Option<&str>, count: usize) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:GetParameterNamesResponse><ParameterList SOAP-ENC:arrayType=\"cwmp:ParameterInfoStruct[");
    num(out, count);
    out.extend_from_slice(b"]\">");
}

/// Writes one ParameterInfoStruct; `name` appends the (escaped) name.
pub fn write_entry(out: &mut BytesMut, name: impl FnOnce(&mut BytesMut), writable: bool) {
    out.extend_from_slice(b"<ParameterInfoStruct><Name>");
    name(out);
    out.extend_from_slice(if writable {
        b"</Name><Writable>true</Writable></ParameterInfoStruct>".as_slice()
    } else {
        b"</Name><Writable>false</Writable></ParameterInfoStruct>".as_slice()
    });
}

/// Closes the response.
pub fn write_tail(out: &mut BytesMut) {
    out.extend_from_slice(b"</ParameterList></cwmp:GetParameterNamesResponse>");
    envelope::close(out);
}
