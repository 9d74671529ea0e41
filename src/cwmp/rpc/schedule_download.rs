//! ScheduleDownload (TR-069 §A.4.1.8, CWMP 1.2+): a download within time windows. The CPE accepts
//! it, fetches at the first window's start, and reports TransferComplete with
//! `M ScheduleDownload`.

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope;
use crate::cwmp::parse::{parse_u32, Cursor, Elem, ParseError};

use super::download::TransferArgs;

/// One TimeWindowStruct: seconds after the request arrived.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TimeWindow<'a> {
    pub start: u32,
    pub end: u32,
    /// `1 At Any Time`, `2 Immediately`, `3 When Idle`, `4 Confirmation Needed`.
    pub mode: Cow<'a, str>,
    pub user_message: Cow<'a, str>,
    pub max_retries: i32,
}

/// The request's arguments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScheduleDownload<'a> {
    pub args: TransferArgs<'a>,
    /// One or two windows.
    pub windows: Vec<TimeWindow<'a>>,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<ScheduleDownload<'a>, ParseError> {
    let mut d = ScheduleDownload::default();
    while let Some(c) = cur.child(m)? {
        match c.local {
            "TimeWindowList" => {
                while let Some(w) = cur.child(&c)? {
                    if d.windows.len() >= 2 {
                        return Err(ParseError::BadArgument("TimeWindowList"));
                    }
                    let mut tw = TimeWindow::default();
                    super::read_fields(cur, &w, |name, text| {
                        match name {
                            "WindowStart" => tw.start = parse_u32(&text, "WindowStart")?,
                            "WindowEnd" => tw.end = parse_u32(&text, "WindowEnd")?,
                            "WindowMode" => tw.mode = text,
                            "UserMessage" => tw.user_message = text,
                            "MaxRetries" => tw.max_retries = text.trim().parse().map_err(|_| ParseError::BadArgument("MaxRetries"))?,
                            _ => {}
                        }
                        Ok(())
                    })?;
                    d.windows.push(tw);
                }
            }
            other => {
                let text = cur.text(&c, "argument")?;
                d.args.field(other, text)?;
            }
        }
    }
    d.args.require_url()?;
    if d.windows.is_empty() {
        return Err(ParseError::MissingArgument("TimeWindowList"));
    }
    Ok(d)
}

/// Writes the (empty) response.
pub fn write_response(out: &mut BytesMut, urn: &str, id: Option<&str>) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:ScheduleDownloadResponse></cwmp:ScheduleDownloadResponse>");
    envelope::close(out);
}
