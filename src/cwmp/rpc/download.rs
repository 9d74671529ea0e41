//! Download (TR-069 §A.3.2.8): the CPE accepts, answers Status 1 (pending) with Unknown times, and
//! reports the outcome later with TransferComplete in a new session (PROTOCOL.md §7.1).

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope::{self, num, text_elem};
use crate::cwmp::parse::{parse_u32, Cursor, Elem, ParseError};

/// The arguments Download, Upload and ScheduleDownload share.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransferArgs<'a> {
    pub command_key: Cow<'a, str>,
    /// `1 Firmware Upgrade Image`, `3 Vendor Configuration File`, …
    pub file_type: Cow<'a, str>,
    pub url: Cow<'a, str>,
    pub username: Cow<'a, str>,
    pub password: Cow<'a, str>,
    pub file_size: u32,
    pub target_file_name: Cow<'a, str>,
}

impl<'a> TransferArgs<'a> {
    /// Takes `name`'s text if it is one of the shared arguments; returns false otherwise.
    pub(crate) fn field(&mut self, name: &str, text: Cow<'a, str>) -> Result<bool, ParseError> {
        match name {
            "CommandKey" => self.command_key = text,
            "FileType" => self.file_type = text,
            "URL" => self.url = text,
            "Username" => self.username = text,
            "Password" => self.password = text,
            "FileSize" => self.file_size = parse_u32(&text, "FileSize")?,
            "TargetFileName" => self.target_file_name = text,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A transfer needs at least a URL.
    pub(crate) fn require_url(&self) -> Result<(), ParseError> {
        if self.url.is_empty() {
            return Err(ParseError::MissingArgument("URL"));
        }
        Ok(())
    }
}

/// The request's arguments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Download<'a> {
    pub args: TransferArgs<'a>,
    pub delay_seconds: u32,
    pub success_url: Cow<'a, str>,
    pub failure_url: Cow<'a, str>,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<Download<'a>, ParseError> {
    let mut d = Download::default();
    super::read_fields(cur, m, |name, text| {
        if !d.args.field(name, text.clone())? {
            match name {
                "DelaySeconds" => d.delay_seconds = parse_u32(&text, "DelaySeconds")?,
                "SuccessURL" => d.success_url = text,
                "FailureURL" => d.failure_url = text,
                _ => {}
            }
        }
        Ok(())
    })?;
    if d.args.file_type.is_empty() {
        return Err(ParseError::MissingArgument("FileType"));
    }
    d.args.require_url()?;
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
