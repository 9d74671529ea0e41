//! CancelTransfer (TR-069 §A.4.1.9, CWMP 1.2+): cancels a transfer the CPE has accepted but not
//! started. Only transfers queued in the current session have not started (they run after it);
//! anything else faults 9021.

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope;
use crate::cwmp::parse::{Cursor, Elem, ParseError};

/// The request's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelTransfer<'a> {
    pub command_key: Cow<'a, str>,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<CancelTransfer<'a>, ParseError> {
    let mut command_key = None;
    super::read_fields(cur, m, |name, text| {
        if name == "CommandKey" {
            command_key = Some(text);
        }
        Ok(())
    })?;
    Ok(CancelTransfer { command_key: command_key.ok_or(ParseError::MissingArgument("CommandKey"))? })
}

/// Writes the (empty) response.
pub fn write_response(out: &mut BytesMut, urn: &str, id: Option<&str>) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:CancelTransferResponse></cwmp:CancelTransferResponse>");
    envelope::close(out);
}
