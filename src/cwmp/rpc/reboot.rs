//! Reboot (TR-069 §A.3.2.8): CommandKey in, empty response; the reboot happens after the session.

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope;
use crate::cwmp::parse::{Cursor, Elem, ParseError};

/// The request's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Reboot<'a> {
    pub command_key: Cow<'a, str>,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<Reboot<'a>, ParseError> {
    let mut command_key = Cow::Borrowed("");
    super::read_fields(cur, m, |name, text| {
        if name == "CommandKey" {
            command_key = text;
        }
        Ok(())
    })?;
    Ok(Reboot { command_key })
}

/// Writes the (empty) response.
pub fn write_response(out: &mut BytesMut, urn: &str, id: Option<&str>) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:RebootResponse></cwmp:RebootResponse>");
    envelope::close(out);
}
