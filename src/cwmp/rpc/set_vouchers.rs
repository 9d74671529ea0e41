//! SetVouchers (TR-069 §A.4.1.11, legacy option vouchers): the vouchers are accepted and kept by
//! nobody; the simulated CPE has no optional features to unlock.

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope;
use crate::cwmp::parse::{string_array, Cursor, Elem, ParseError};

/// The request's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct SetVouchers<'a> {
    /// base64 vouchers.
    pub vouchers: Vec<Cow<'a, str>>,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<SetVouchers<'a>, ParseError> {
    let mut vouchers = None;
    while let Some(c) = cur.child(m)? {
        if c.local == "VoucherList" {
            vouchers = Some(string_array(cur, &c, "VoucherList")?);
        } else {
            cur.skip(&c)?;
        }
    }
    Ok(SetVouchers { vouchers: vouchers.ok_or(ParseError::MissingArgument("VoucherList"))? })
}

/// Writes the (empty) response.
pub fn write_response(out: &mut BytesMut, urn: &str, id: Option<&str>) {
    envelope::open(out, urn, id);
    out.extend_from_slice(b"<cwmp:SetVouchersResponse></cwmp:SetVouchersResponse>");
    envelope::close(out);
}
