//! Reading CPE→ACS messages on the ACS side: just enough to script a session and report it
//! (method, cwmp:ID, events, DeviceId serial, Name/Value pairs, fault code).

use std::borrow::Cow;

use crate::cwmp::parse::{Cursor, Elem, Ns, ParseError};

/// What a CPE sent, as the embedded ACS sees it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CpeMessage<'a> {
    /// `Inform`, `GetParameterValuesResponse`, `Fault`, …
    pub method: &'a str,
    pub id: Option<Cow<'a, str>>,
    pub serial: Option<Cow<'a, str>>,
    pub events: Vec<Cow<'a, str>>,
    /// Name (and Value, when present) pairs from any ParameterList.
    pub params: Vec<(Cow<'a, str>, Option<Cow<'a, str>>)>,
    pub fault_code: Option<u32>,
    pub instance_number: Option<u32>,
}

/// Reads one CPE message.
///
/// # Errors
/// A body that is not a SOAP envelope with a message.
pub fn inspect(body: &[u8]) -> Result<CpeMessage<'_>, ParseError> {
    let mut cur = Cursor::new(body)?;
    let root = cur.root()?;
    if root.ns != Ns::SoapEnv || root.local != "Envelope" {
        return Err(ParseError::NotSoapEnvelope);
    }
    let mut msg = CpeMessage::default();
    while let Some(child) = cur.child(&root)? {
        match child.local {
            "Header" => {
                while let Some(h) = cur.child(&child)? {
                    if h.local == "ID" {
                        msg.id = Some(cur.text(&h, "ID")?);
                    } else {
                        cur.skip(&h)?;
                    }
                }
            }
            "Body" => {
                let Some(m) = cur.child(&child)? else { return Err(ParseError::EmptyBody) };
                msg.method = m.local;
                scan(&mut cur, &m, &mut msg, None)?;
                while let Some(rest) = cur.child(&child)? {
                    cur.skip(&rest)?;
                }
            }
            _ => cur.skip(&child)?,
        }
    }
    cur.finish()?;
    if msg.method.is_empty() {
        return Err(ParseError::NoBody);
    }
    Ok(msg)
}

fn scan<'a>(
    cur: &mut Cursor<'a>,
    e: &Elem<'a>,
    msg: &mut CpeMessage<'a>,
    mut pending_name: Option<Cow<'a, str>>,
) -> Result<(), ParseError> {
    while let Some(c) = cur.child(e)? {
        match c.local {
            "Name" => {
                let name = cur.text(&c, "Name")?;
                msg.params.push((name.clone(), None));
                pending_name = Some(name);
            }
            "Value" => {
                let v = cur.text(&c, "Value")?;
                if let Some(last) = msg.params.last_mut() {
                    if pending_name.is_some() {
                        last.1 = Some(v);
                    }
                }
            }
            "EventCode" => msg.events.push(cur.text(&c, "EventCode")?),
            "SerialNumber" => msg.serial = Some(cur.text(&c, "SerialNumber")?),
            "FaultCode" if msg.fault_code.is_none() => msg.fault_code = cur.text(&c, "FaultCode")?.trim().parse().ok(),
            "InstanceNumber" => msg.instance_number = cur.text(&c, "InstanceNumber")?.trim().parse().ok(),
            _ if c.empty => {}
            _ => scan(cur, &c, msg, None)?,
        }
    }
    Ok(())
}
