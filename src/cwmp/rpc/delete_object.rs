//! DeleteObject (TR-069 §A.3.2.7): ObjectName + ParameterKey in, Status out.

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope::{self, num};
use crate::cwmp::parse::{Cursor, Elem, ParseError};

/// The request's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteObject<'a> {
    /// The instance path, ending with `.`.
    pub object_name: Cow<'a, str>,
    pub parameter_key: Cow<'a, str>,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<DeleteObject<'a>, ParseError> {
    let (mut object_name, mut parameter_key) = (None, Cow::Borrowed(""));
    super::read_fields(cur, m, |name, text| {
        match name {
            "ObjectName" => object_name = Some(text),
            "ParameterKey" => parameter_key = text,
            _ => {}
        }
        Ok(())
    })?;
    Ok(DeleteObject { object_name: object_name.ok_or(ParseError::MissingArgument("ObjectName"))?, parameter_key })
}

/// Writes the response.
pub fn write_response(out: &mut BytesMut, urn: &str, id: Option<&str>, status: u8) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:DeleteObjectResponse><Status>");
    num(out, status);
    out.extend_from_slice(b"</Status></cwmp:DeleteObjectResponse>");
    envelope::close(out);
}
