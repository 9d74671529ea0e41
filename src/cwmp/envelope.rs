//! Writing the SOAP envelope around a CPE→ACS message into a reused buffer.
//!
//! Prefixes follow the shared examples (`SOAP-ENV`, `SOAP-ENC`, `cwmp`); the cwmp URN is the one
//! the session negotiated (PROTOCOL.md §2).

use bytes::BytesMut;

use super::xml::escape_into;

/// `urn:dslforum-org:cwmp-1-N` for N = 0..=4.
pub const URNS: [&str; 5] = [
    "urn:dslforum-org:cwmp-1-0",
    "urn:dslforum-org:cwmp-1-1",
    "urn:dslforum-org:cwmp-1-2",
    "urn:dslforum-org:cwmp-1-3",
    "urn:dslforum-org:cwmp-1-4",
];

/// The minor version N of a `urn:dslforum-org:cwmp-1-N` URN (also accepts `cwmp-1-N` and `1.N`).
pub fn urn_minor(s: &str) -> Option<u8> {
    let tail = s.strip_prefix("urn:dslforum-org:").unwrap_or(s);
    let n = tail.strip_prefix("cwmp-1-").or_else(|| tail.strip_prefix("1."))?;
    match n.as_bytes() {
        [d @ b'0'..=b'4'] => Some(d - b'0'),
        _ => None,
    }
}

/// The envelope start up to (not including) the `cwmp:ID` text.
pub fn write_head_before_id(out: &mut BytesMut, urn: &str) {
    out.extend_from_slice(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<SOAP-ENV:Envelope \
xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" \
xmlns:SOAP-ENC=\"http://schemas.xmlsoap.org/soap/encoding/\" \
xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:cwmp=\"",
    );
    out.extend_from_slice(urn.as_bytes());
    out.extend_from_slice(b"\"><SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand=\"1\">");
}

/// What follows the `cwmp:ID` text up to the message element.
pub const AFTER_ID: &[u8] = b"</cwmp:ID></SOAP-ENV:Header><SOAP-ENV:Body>";

/// Starts an envelope: declaration, namespaces, header with `id` (echoed verbatim; no header when
/// the ACS sent none, as easycwmp does), and the Body start tag.
pub fn open(out: &mut BytesMut, urn: &str, id: Option<&str>) {
    match id {
        Some(id) => {
            write_head_before_id(out, urn);
            escape_into(out, id);
            out.extend_from_slice(AFTER_ID);
        }
        None => {
            write_head_before_id(out, urn);
            // Undo the header start: rewrite without a header.
            let cut = out.len() - b"<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand=\"1\">".len();
            out.truncate(cut);
            out.extend_from_slice(b"<SOAP-ENV:Body>");
        }
    }
}

/// Ends the Body and the envelope.
pub const CLOSE: &[u8] = b"</SOAP-ENV:Body></SOAP-ENV:Envelope>";

/// Writes [`CLOSE`].
pub fn close(out: &mut BytesMut) {
    out.extend_from_slice(CLOSE);
}

/// Writes `<tag>escaped text</tag>`.
pub fn text_elem(out: &mut BytesMut, tag: &str, text: &str) {
    out.extend_from_slice(b"<");
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(b">");
    escape_into(out, text);
    out.extend_from_slice(b"</");
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(b">");
}

/// Writes a decimal number.
pub fn num(out: &mut BytesMut, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urn_versions() {
        assert_eq!(urn_minor("urn:dslforum-org:cwmp-1-0"), Some(0));
        assert_eq!(urn_minor("cwmp-1-2"), Some(2));
        assert_eq!(urn_minor("1.4"), Some(4));
        assert_eq!(urn_minor("cwmp-1-9"), None);
    }

    #[test]
    fn header_is_omitted_without_id() {
        let mut out = BytesMut::new();
        open(&mut out, URNS[0], None);
        close(&mut out);
        let s = std::str::from_utf8(&out).unwrap();
        assert!(!s.contains("Header"));
        assert!(s.ends_with("<SOAP-ENV:Body></SOAP-ENV:Body></SOAP-ENV:Envelope>"));
    }
}
