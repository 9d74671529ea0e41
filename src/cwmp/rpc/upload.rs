//! Upload (TR-069 §A.4.1.5): accepted as pending (Status 1); completion is reported with
//! TransferComplete + `M Upload` in a later session.

use std::borrow::Cow;

use crate::cwmp::parse::{parse_u32, Cursor, Elem, ParseError};

/// The request's arguments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Upload<'a> {
    pub command_key: Cow<'a, str>,
    pub file_type: Cow<'a, str>,
    pub url: Cow<'a, str>,
    pub username: Cow<'a, str>,
    pub password: Cow<'a, str>,
    pub delay_seconds: u32,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<Upload<'a>, ParseError> {
    let mut u = Upload::default();
    let mut have_url = false;
    super::read_fields(cur, m, |name, text| {
        match name {
            "CommandKey" => u.command_key = text,
            "FileType" => u.file_type = text,
            "URL" => {
                have_url = true;
                u.url = text
            }
            "Username" => u.username = text,
            "Password" => u.password = text,
            "DelaySeconds" => u.delay_seconds = parse_u32(&text, "DelaySeconds")?,
            _ => {}
        }
        Ok(())
    })?;
    if !have_url {
        return Err(ParseError::MissingArgument("URL"));
    }
    Ok(u)
}
