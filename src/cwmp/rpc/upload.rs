//! Upload (TR-069 §A.4.1.5): accepted as pending (Status 1); completion is reported with
//! TransferComplete + `M Upload` in a later session.

use crate::cwmp::parse::{parse_u32, Cursor, Elem, ParseError};

use super::download::TransferArgs;

/// The request's arguments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Upload<'a> {
    pub args: TransferArgs<'a>,
    pub delay_seconds: u32,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<Upload<'a>, ParseError> {
    let mut u = Upload::default();
    super::read_fields(cur, m, |name, text| {
        if !u.args.field(name, text.clone())? && name == "DelaySeconds" {
            u.delay_seconds = parse_u32(&text, "DelaySeconds")?;
        }
        Ok(())
    })?;
    u.args.require_url()?;
    Ok(u)
}
