//! SetParameterAttributes (TR-069 §A.3.2.4): SetParameterAttributesStruct[] in, empty response.

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope;
use crate::cwmp::parse::{parse_bool, string_array, Cursor, Elem, ParseError, MAX_ITEMS};

/// One entry as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct SetAttribute<'a> {
    pub name: Cow<'a, str>,
    /// `Some` only when NotificationChange is true (GenieACS sends an empty Notification
    /// otherwise, PROTOCOL.md §7.1).
    pub notification: Option<u8>,
    /// `Some` only when AccessListChange is true.
    pub access_list: Option<Vec<Cow<'a, str>>>,
}

/// The request's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct SetParameterAttributes<'a> {
    pub params: Vec<SetAttribute<'a>>,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<SetParameterAttributes<'a>, ParseError> {
    let mut params = None;
    while let Some(c) = cur.child(m)? {
        if c.local != "ParameterList" {
            cur.skip(&c)?;
            continue;
        }
        let mut list = Vec::new();
        while let Some(item) = cur.child(&c)? {
            if list.len() >= MAX_ITEMS {
                return Err(ParseError::TooManyItems("ParameterList"));
            }
            let mut name = None;
            let (mut n_change, mut n_value) = (false, None::<Cow<'a, str>>);
            let (mut a_change, mut a_list) = (false, Vec::new());
            while let Some(f) = cur.child(&item)? {
                match f.local {
                    "Name" => name = Some(cur.text(&f, "Name")?),
                    "NotificationChange" => {
                        n_change = parse_bool(&cur.text(&f, "NotificationChange")?).ok_or(ParseError::BadArgument("NotificationChange"))?
                    }
                    "Notification" => n_value = Some(cur.text(&f, "Notification")?),
                    "AccessListChange" => {
                        a_change = parse_bool(&cur.text(&f, "AccessListChange")?).ok_or(ParseError::BadArgument("AccessListChange"))?
                    }
                    "AccessList" => a_list = string_array(cur, &f, "AccessList")?,
                    _ => cur.skip(&f)?,
                }
            }
            let notification = if n_change {
                let text = n_value.ok_or(ParseError::MissingArgument("Notification"))?;
                Some(text.trim().parse::<u8>().map_err(|_| ParseError::BadArgument("Notification"))?)
            } else {
                None
            };
            list.push(SetAttribute {
                name: name.ok_or(ParseError::MissingArgument("SetParameterAttributesStruct/Name"))?,
                notification,
                access_list: a_change.then_some(a_list),
            });
        }
        params = Some(list);
    }
    Ok(SetParameterAttributes { params: params.ok_or(ParseError::MissingArgument("ParameterList"))? })
}

/// Writes the (empty) response.
pub fn write_response(out: &mut BytesMut, urn: &str, id: Option<&str>) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:SetParameterAttributesResponse></cwmp:SetParameterAttributesResponse>");
    envelope::close(out);
}
