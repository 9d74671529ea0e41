//! ScheduleInform (TR-069 §A.4.1.4): DelaySeconds + CommandKey in, empty response; after the delay
//! the CPE informs with `3 SCHEDULED` + `M ScheduleInform`.

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope;
use crate::cwmp::parse::{parse_u32, Cursor, Elem, ParseError};

/// The request's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleInform<'a> {
    pub delay_seconds: u32,
    pub command_key: Cow<'a, str>,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<ScheduleInform<'a>, ParseError> {
    let (mut delay, mut command_key) = (None, Cow::Borrowed(""));
    super::read_fields(cur, m, |name, text| {
        match name {
            "DelaySeconds" => delay = Some(parse_u32(&text, "DelaySeconds")?),
            "CommandKey" => command_key = text,
            _ => {}
        }
        Ok(())
    })?;
    Ok(ScheduleInform { delay_seconds: delay.ok_or(ParseError::MissingArgument("DelaySeconds"))?, command_key })
}

/// Writes the (empty) response.
pub fn write_response(out: &mut BytesMut, urn: &str, id: Option<&str>) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:ScheduleInformResponse></cwmp:ScheduleInformResponse>");
    envelope::close(out);
}
