//! GetOptions (TR-069 §A.4.1.12, legacy option vouchers): the simulated CPE has no optional
//! features, so the OptionList is always empty.

use std::borrow::Cow;

use bytes::BytesMut;

use crate::cwmp::envelope;
use crate::cwmp::parse::{Cursor, Elem, ParseError};

/// The request's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct GetOptions<'a> {
    /// An option name, or `""` for all.
    pub option_name: Cow<'a, str>,
}

pub fn parse<'a>(cur: &mut Cursor<'a>, m: &Elem<'a>) -> Result<GetOptions<'a>, ParseError> {
    let mut option_name = Cow::Borrowed("");
    super::read_fields(cur, m, |name, text| {
        if name == "OptionName" {
            option_name = text;
        }
        Ok(())
    })?;
    Ok(GetOptions { option_name })
}

/// Writes the response with an empty OptionList.
pub fn write_response(out: &mut BytesMut, urn: &str, id: Option<&str>) {
    envelope::open(out, urn, id);
    out.extend_from_slice(
        b"<cwmp:GetOptionsResponse><OptionList SOAP-ENC:arrayType=\"cwmp:OptionStruct[0]\"></OptionList></cwmp:GetOptionsResponse>",
    );
    envelope::close(out);
}
