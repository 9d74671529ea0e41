//! AddObject (TR-069 §A.3.2.6): ObjectName + ParameterKey in, InstanceNumber + Status out.

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope::{self, num};
use crate::cwmp::parse::{Cursor, Elem, ParseError};

/// The request's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct AddObject<'a> {
    /// The table path, ending with `.`.
    pub object_name: Cow<'a, str>,
    pub parameter_key: Cow<'a, str>,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<AddObject<'a>, ParseError> {
    let (mut object_name, mut parameter_key) = (None, Cow::Borrowed(""));
    super::read_fields(cur, m, |name, text| {
        match name {
            "ObjectName" => object_name = Some(text),
            "ParameterKey" => parameter_key = text,
            _ => {}
        }
        Ok(())
    })?;
    Ok(AddObject { object_name: object_name.ok_or(ParseError::MissingArgument("ObjectName"))?, parameter_key })
}

/// Writes the response.
pub fn write_response(out: &mut BytesMut, urn: &str, id: Option<&str>, instance: u32, status: u8) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:AddObjectResponse><InstanceNumber>");
    num(out, instance);
    out.extend_from_slice(b"</InstanceNumber><Status>");
    num(out, status);
    out.extend_from_slice(b"</Status></cwmp:AddObjectResponse>");
    envelope::close(out);
}
