//! SetParameterValues (TR-069 §A.3.2.1): ParameterValueStruct[] + ParameterKey in, Status out.

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope::{self, num};
use crate::cwmp::parse::{Cursor, Elem, ParseError, MAX_ITEMS};

/// One name/value pair as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamValue<'a> {
    pub name: Cow<'a, str>,
    pub value: Cow<'a, str>,
    /// The local part of `xsi:type`, if sent (missing is tolerated, PROTOCOL.md §3).
    pub xsi_type: Option<&'a str>,
}

/// The request's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct SetParameterValues<'a> {
    pub params: Vec<ParamValue<'a>>,
    pub parameter_key: Cow<'a, str>,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<SetParameterValues<'a>, ParseError> {
    let mut params = None;
    let mut parameter_key = Cow::Borrowed("");
    while let Some(c) = cur.child(m)? {
        match c.local {
            "ParameterList" => {
                let mut list = Vec::new();
                while let Some(item) = cur.child(&c)? {
                    if list.len() >= MAX_ITEMS {
                        return Err(ParseError::TooManyItems("ParameterList"));
                    }
                    let (mut name, mut value, mut xsi_type) = (None, None, None);
                    while let Some(f) = cur.child(&item)? {
                        match f.local {
                            "Name" => name = Some(cur.text(&f, "Name")?),
                            "Value" => {
                                xsi_type = f.xsi_type;
                                value = Some(cur.text(&f, "Value")?);
                            }
                            _ => cur.skip(&f)?,
                        }
                    }
                    list.push(ParamValue {
                        name: name.ok_or(ParseError::MissingArgument("ParameterValueStruct/Name"))?,
                        value: value.ok_or(ParseError::MissingArgument("ParameterValueStruct/Value"))?,
                        xsi_type,
                    });
                }
                params = Some(list);
            }
            "ParameterKey" => parameter_key = cur.text(&c, "ParameterKey")?,
            _ => cur.skip(&c)?,
        }
    }
    Ok(SetParameterValues { params: params.ok_or(ParseError::MissingArgument("ParameterList"))?, parameter_key })
}

/// Writes the response: Status 0 (applied) or 1 (applied, takes effect later).
pub fn write_response(out: &mut BytesMut, urn: &str, id: Option<&str>, status: u8) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:SetParameterValuesResponse><Status>");
    num(out, status);
    out.extend_from_slice(b"</Status></cwmp:SetParameterValuesResponse>");
    envelope::close(out);
}
