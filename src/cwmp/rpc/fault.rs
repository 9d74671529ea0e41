//! SOAP Faults: the CPE's `cwmp:Fault` answers (with SetParameterValuesFault entries) and the
//! faults an ACS sends (PROTOCOL.md §8).

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope::{self, num, text_elem};
use crate::cwmp::fault::{AcsFaultCode, FaultCode};
use crate::cwmp::parse::{Cursor, Elem, ParseError};

/// Writes a CPE fault answering request `id`. `detail` extends the standard FaultString (e.g. the
/// offending name); `params` are SetParameterValuesFault entries (name, code).
pub fn write_cpe_fault<S: AsRef<str>>(
    out: &mut BytesMut,
    urn: &str,
    id: Option<&str>,
    code: FaultCode,
    detail: Option<&str>,
    params: &[(S, FaultCode)],
) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<SOAP-ENV:Fault><faultcode>");
    out.extend_from_slice(code.soap_faultcode().as_bytes());
    out.extend_from_slice(b"</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>");
    num(out, code.code());
    out.extend_from_slice(b"</FaultCode><FaultString>");
    // FaultString is string(256): the detail (often the ACS's own input) is clipped to fit.
    let message = code.message();
    crate::cwmp::xml::escape_into(out, crate::cwmp::limits::clip(message, crate::cwmp::limits::FAULT_STRING));
    if let Some(d) = detail {
        let room = crate::cwmp::limits::FAULT_STRING.saturating_sub(message.chars().count() + 2);
        if room > 0 {
            out.extend_from_slice(b": ");
            crate::cwmp::xml::escape_into(out, crate::cwmp::limits::clip(d, room));
        }
    }
    out.extend_from_slice(b"</FaultString>");
    for (name, c) in params {
        out.extend_from_slice(b"<SetParameterValuesFault>");
        text_elem(out, "ParameterName", name.as_ref());
        out.extend_from_slice(b"<FaultCode>");
        num(out, c.code());
        out.extend_from_slice(b"</FaultCode>");
        text_elem(out, "FaultString", c.message());
        out.extend_from_slice(b"</SetParameterValuesFault>");
    }
    out.extend_from_slice(b"</cwmp:Fault></detail></SOAP-ENV:Fault>");
    envelope::close(out);
}

/// A fault the ACS sent.
#[derive(Debug, Clone, PartialEq)]
pub struct AcsFault<'a> {
    /// The CWMP FaultCode from `detail/Fault`, if present and numeric.
    pub code: Option<AcsFaultCode>,
    pub fault_string: Cow<'a, str>,
}

/// Reads a SOAP Fault, taking the first descendant `FaultCode` and `FaultString` wherever they are
/// (tolerates GenieACS's malformed `soap-env:Body:Fault` wrapper).
pub fn parse_acs_fault<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<AcsFault<'a>, ParseError> {
    let mut code = None;
    let mut fault_string = None;
    let mut soap_string = None;
    scan(cur, m, &mut |local, text| match local {
        "FaultCode" if code.is_none() => code = text.trim().parse::<u32>().ok().map(AcsFaultCode),
        "FaultString" if fault_string.is_none() => fault_string = Some(text),
        "faultstring" if soap_string.is_none() => soap_string = Some(text),
        _ => {}
    })?;
    Ok(AcsFault { code, fault_string: fault_string.or(soap_string).unwrap_or(Cow::Borrowed("")) })
}

fn scan<'a>(cur: &mut Cursor<'a>, e: &Elem<'a>, f: &mut dyn FnMut(&'a str, Cow<'a, str>)) -> Result<(), ParseError> {
    while let Some(c) = cur.child(e)? {
        match c.local {
            "FaultCode" | "FaultString" | "faultstring" => {
                let t = cur.text(&c, "Fault")?;
                f(c.local, t);
            }
            "faultcode" => cur.skip(&c)?,
            _ => scan(cur, &c, f)?,
        }
    }
    Ok(())
}
