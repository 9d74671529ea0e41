//! ChangeDUState (TR-069 §A.4.1.10, CWMP 1.2+): install/update/uninstall software modules. Parsed
//! so a malformed request gets 9003 like any other, but the simulated CPE has no software modules,
//! so a valid one is answered with Fault 9000 and the method is not listed in GetRPCMethods.

use std::borrow::Cow;

use crate::cwmp::parse::{Cursor, Elem, ParseError, MAX_ITEMS};

/// One operation, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuOperation {
    Install,
    Update,
    Uninstall,
}

/// The request's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeDuState<'a> {
    pub operations: Vec<DuOperation>,
    pub command_key: Cow<'a, str>,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<ChangeDuState<'a>, ParseError> {
    let mut operations = None;
    let mut command_key = Cow::Borrowed("");
    while let Some(c) = cur.child(m)? {
        match c.local {
            "Operations" => {
                let mut ops = Vec::new();
                while let Some(op) = cur.child(&c)? {
                    if ops.len() >= MAX_ITEMS {
                        return Err(ParseError::TooManyItems("Operations"));
                    }
                    // The struct is chosen by element name or by xsi:type (PROTOCOL.md §7.1).
                    let kind = op.xsi_type.unwrap_or(op.local);
                    ops.push(match kind {
                        "InstallOpStruct" => DuOperation::Install,
                        "UpdateOpStruct" => DuOperation::Update,
                        "UninstallOpStruct" => DuOperation::Uninstall,
                        _ => return Err(ParseError::BadArgument("Operations")),
                    });
                    cur.skip(&op)?;
                }
                operations = Some(ops);
            }
            "CommandKey" => command_key = cur.text(&c, "CommandKey")?,
            _ => cur.skip(&c)?,
        }
    }
    let operations = operations.filter(|o| !o.is_empty()).ok_or(ParseError::MissingArgument("Operations"))?;
    Ok(ChangeDuState { operations, command_key })
}
