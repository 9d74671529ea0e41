//! XML text helpers shared by the renderers: escaping into a reused buffer.
//!
//! TR-069 Amd 6 §3.5 (PROTOCOL.md §11): escape `&`, `<`, `>` and quotes; write characters outside
//! printable ASCII (besides TAB, LF, CR) as numeric character references. Characters XML 1.0 cannot
//! carry at all (other C0 controls) are dropped rather than producing an invalid document.

use bytes::BytesMut;

#[inline]
fn needs_escape(b: u8) -> bool {
    matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'') || b >= 0x7F || (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
}

/// Appends `s` to `out`, escaped for element text or attribute values.
#[inline]
pub fn escape_into(out: &mut BytesMut, s: &str) {
    let bytes = s.as_bytes();
    // Fast path: most values (numbers, names, serials) need no escaping at all.
    let Some(first) = bytes.iter().position(|&b| needs_escape(b)) else {
        out.extend_from_slice(bytes);
        return;
    };
    out.extend_from_slice(&bytes[..first]);
    let mut plain_start = first;
    for (i, c) in s[first..].char_indices() {
        let i = first + i;
        let rep: Option<&[u8]> = match c {
            '&' => Some(b"&amp;"),
            '<' => Some(b"&lt;"),
            '>' => Some(b"&gt;"),
            '"' => Some(b"&quot;"),
            '\'' => Some(b"&apos;"),
            '\t' | '\n' | '\r' => None,
            c if (c as u32) < 0x20 => Some(b""),
            c if (c as u32) >= 0x7F => {
                out.extend_from_slice(&bytes[plain_start..i]);
                let mut num = itoa::Buffer::new();
                out.extend_from_slice(b"&#");
                out.extend_from_slice(num.format(c as u32).as_bytes());
                out.extend_from_slice(b";");
                plain_start = i + c.len_utf8();
                continue;
            }
            _ => None,
        };
        if let Some(rep) = rep {
            out.extend_from_slice(&bytes[plain_start..i]);
            out.extend_from_slice(rep);
            plain_start = i + c.len_utf8();
        }
    }
    out.extend_from_slice(&bytes[plain_start..]);
}

/// `s` escaped, as a `String` (for pre-rendering at start-up).
pub fn escape_to_string(s: &str) -> String {
    let mut out = BytesMut::with_capacity(s.len());
    escape_into(&mut out, s);
    String::from_utf8(out.to_vec()).expect("escaping keeps UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_non_ascii() {
        assert_eq!(escape_to_string("plain-123"), "plain-123");
        assert_eq!(escape_to_string("a & <b> \"c\" 'd'"), "a &amp; &lt;b&gt; &quot;c&quot; &apos;d&apos;");
        assert_eq!(escape_to_string("café\u{1}\n"), "caf&#233;\n");
    }
}
