//! Download (TR-069 §A.3.2.8): the CPE accepts, answers Status 1 (pending) with Unknown times, and
//! reports the outcome later with TransferComplete in a new session (PROTOCOL.md §7.1).

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope::{self, num, text_elem};
use crate::cwmp::parse::{parse_u32, Cursor, Elem, ParseError};

/// The request's arguments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Download<'a> {
    pub command_key: Cow<'a, str>,
    /// `1 Firmware Upgrade Image`, `3 Vendor Configuration File`, …
    pub file_type: Cow<'a, str>,
    pub url: Cow<'a, str>,
    pub username: Cow<'a, str>,
    pub password: Cow<'a, str>,
    pub file_size: u32,
    pub target_file_name: Cow<'a, str>,
    pub delay_seconds: u32,
    pub success_url: Cow<'a, str>,
    pub failure_url: Cow<'a, str>,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<Download<'a>, ParseError> {
    let mut d = Download::default();
    let (mut have_type, mut have_url) = (false, false);
    super::read_fields(cur, m, |name, text| {
        match name {
            "CommandKey" => d.command_key = text,
            "FileType" => {
                have_type = true;
                d.file_type = text
            }
            "URL" => {
                have_url = true;
                d.url = text
            }
            "Username" => d.username = text,
            "Password" => d.password = text,
            "FileSize" => d.file_size = parse_u32(&text, "FileSize")?,
            "TargetFileName" => d.target_file_name = text,
            "DelaySeconds" => d.delay_seconds = parse_u32(&text, "DelaySeconds")?,
            "SuccessURL" => d.success_url = text,
            "FailureURL" => d.failure_url = text,
            _ => {}
        }
        Ok(())
    })?;
    if !have_type {
        return Err(ParseError::MissingArgument("FileType"));
    }
    if !have_url {
        return Err(ParseError::MissingArgument("URL"));
    }
    Ok(d)
}

/// Writes the response (shared by Download and Upload: same shape).
pub fn write_transfer_response(out: &mut BytesMut, urn: &str, id: Option<&str>, method: &str, status: u8, start: &str, complete: &str) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:");
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(b"Response><Status>");
    num(out, status);
    out.extend_from_slice(b"</Status>");
    text_elem(out, "StartTime", start);
    text_elem(out, "CompleteTime", complete);
    out.extend_from_slice(b"</cwmp:");
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(b"Response>");
    envelope::close(out);
}
