//! Per-CPE identity: the CPE index and the templates that stamp serial numbers, MAC addresses and
//! derived secrets from it, so N processes or N machines given disjoint index ranges never collide.
//!
//! A template is compiled once per profile (`{oui}{index:06X}` → parts) and evaluated straight into
//! an output buffer, with no allocation, every time a value is rendered. Secrets (`{secret:12}`)
//! are derived from the profile seed, the CPE index and the parameter, so the same CPE always gets
//! the same Connection Request password without storing it.

use bytes::BytesMut;

/// The index of one simulated CPE in the fleet (`cpe-N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct DeviceId(pub u32);

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cpe-{}", self.0)
    }
}

/// The profile-wide identity settings every template reads.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Six upper-case hex digits.
    pub oui: Box<str>,
    /// Seed for derived secrets.
    pub seed: u64,
    /// The serial number template (may not itself use `{serial}`).
    pub serial: Template,
}

/// One compiled value template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// Literal text, raw and XML-escaped.
    Lit {
        raw: Box<str>,
        escaped: Box<str>,
    },
    Index {
        width: u8,
        radix: Radix,
    },
    Oui,
    Serial,
    Mac,
    Secret {
        len: u8,
        salt: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Radix {
    Dec,
    HexUpper,
    HexLower,
}

/// Why a template did not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder `{{{0}}}` (known: index, index:06X, oui, serial, mac, secret:N; write `{{{{` for a literal brace)")]
    UnknownPlaceholder(String),
    #[error("unclosed `{{`")]
    Unclosed,
    #[error("`{{serial}}` cannot be used inside the serial template itself")]
    SerialInSerial,
}

impl Template {
    /// Compiles `text`. `salt` distinguishes secrets of different parameters.
    ///
    /// # Errors
    /// An unknown or unclosed placeholder.
    pub fn compile(text: &str, salt: u64) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(pos) = rest.find(['{', '}']) {
            lit.push_str(&rest[..pos]);
            let tail = &rest[pos..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                lit.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            if let Some(after) = tail.strip_prefix('}') {
                // A lone `}` is literal.
                lit.push('}');
                rest = after;
                continue;
            }
            let end = tail.find('}').ok_or(TemplateError::Unclosed)?;
            let token = &tail[1..end];
            if !lit.is_empty() {
                parts.push(Part::lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::parse(token, salt)?);
            rest = &tail[end + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::lit(lit));
        }
        Ok(Template { parts })
    }

    /// True when the template has no placeholder: its value is the same for every CPE.
    pub fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit { raw, .. }] => Some(raw),
            _ => None,
        }
    }

    /// True when `{serial}` appears (not allowed in the serial template itself).
    pub fn uses_serial(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Serial))
    }

    /// Writes the value for CPE `id`; `xml` selects the XML-escaped form of literal parts.
    pub fn write(&self, identity: &Identity, id: DeviceId, xml: bool, out: &mut BytesMut) {
        for part in &self.parts {
            match part {
                Part::Lit { raw, escaped } => out.extend_from_slice(if xml { escaped } else { raw }.as_bytes()),
                Part::Index { width, radix } => write_index(id.0 as u64, *width, *radix, out),
                Part::Oui => out.extend_from_slice(identity.oui.as_bytes()),
                Part::Serial => identity.serial.write(identity, id, xml, out),
                Part::Mac => write_mac(&identity.oui, id, out),
                Part::Secret { len, salt } => write_secret(identity.seed, id, *salt, *len, out),
            }
        }
    }

    /// The value for CPE `id` as a `String` (for logs, APIs and tests; not the hot path).
    pub fn to_string_for(&self, identity: &Identity, id: DeviceId) -> String {
        let mut out = BytesMut::new();
        self.write(identity, id, false, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Part {
    fn lit(raw: String) -> Part {
        let escaped = crate::cwmp::xml::escape_to_string(&raw);
        Part::Lit { raw: raw.into(), escaped: escaped.into() }
    }

    fn parse(token: &str, salt: u64) -> Result<Part, TemplateError> {
        let unknown = || TemplateError::UnknownPlaceholder(token.to_string());
        let (name, spec) = token.split_once(':').unwrap_or((token, ""));
        Ok(match name {
            "oui" if spec.is_empty() => Part::Oui,
            "serial" if spec.is_empty() => Part::Serial,
            "mac" if spec.is_empty() => Part::Mac,
            "index" => {
                let (digits, radix) = match spec.as_bytes().last() {
                    Some(b'X') => (&spec[..spec.len() - 1], Radix::HexUpper),
                    Some(b'x') => (&spec[..spec.len() - 1], Radix::HexLower),
                    _ => (spec, Radix::Dec),
                };
                let width = if digits.is_empty() { 0 } else { digits.parse::<u8>().map_err(|_| unknown())? };
                if width > 20 {
                    return Err(unknown());
                }
                Part::Index { width, radix }
            }
            "secret" => {
                let len = if spec.is_empty() { 12 } else { spec.parse::<u8>().map_err(|_| unknown())? };
                if len == 0 || len > 64 {
                    return Err(unknown());
                }
                Part::Secret { len, salt }
            }
            _ => return Err(unknown()),
        })
    }
}

fn write_index(mut v: u64, width: u8, radix: Radix, out: &mut BytesMut) {
    let (base, digits): (u64, &[u8; 16]) = match radix {
        Radix::Dec => (10, b"0123456789ABCDEF"),
        Radix::HexUpper => (16, b"0123456789ABCDEF"),
        Radix::HexLower => (16, b"0123456789abcdef"),
    };
    let mut buf = [b'0'; 24];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = digits[(v % base) as usize];
        v /= base;
        if v == 0 {
            break;
        }
    }
    let start = i.min(buf.len() - width as usize);
    out.extend_from_slice(&buf[start..]);
}

/// `OU:IO:UI:II:II:II`: the OUI followed by the low 24 bits of the index, like the horde's MACs.
fn write_mac(oui: &str, id: DeviceId, out: &mut BytesMut) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let o = oui.as_bytes();
    let n = id.0 & 0x00FF_FFFF;
    let tail = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
    let mut buf = [b':'; 17];
    for k in 0..3 {
        buf[k * 3] = *o.get(k * 2).unwrap_or(&b'0');
        buf[k * 3 + 1] = *o.get(k * 2 + 1).unwrap_or(&b'0');
        buf[9 + k * 3] = HEX[(tail[k] >> 4) as usize];
        buf[9 + k * 3 + 1] = HEX[(tail[k] & 15) as usize];
    }
    out.extend_from_slice(&buf);
}

/// splitmix64: a tiny, well-distributed mixer (Steele et al.), enough for derived test secrets.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over a string: a stable salt for a parameter's secrets.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

fn write_secret(seed: u64, id: DeviceId, salt: u64, len: u8, out: &mut BytesMut) {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = mix64(seed ^ mix64(id.0 as u64 ^ salt.rotate_left(17)));
    let mut buf = [0u8; 64];
    for slot in buf.iter_mut().take(len as usize) {
        state = mix64(state);
        *slot = ALPHABET[(state % 62) as usize];
    }
    out.extend_from_slice(&buf[..len as usize]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity { oui: "FEFEFE".into(), seed: 7, serial: Template::compile("{oui}{index:06X}", 0).unwrap() }
    }

    #[test]
    fn serials_count_up_from_the_oui() {
        let id = identity();
        assert_eq!(id.serial.to_string_for(&id, DeviceId(0)), "FEFEFE000000");
        assert_eq!(id.serial.to_string_for(&id, DeviceId(1)), "FEFEFE000001");
        assert_eq!(id.serial.to_string_for(&id, DeviceId(0x2A)), "FEFEFE00002A");
        assert_eq!(id.serial.to_string_for(&id, DeviceId(10_000_000)), "FEFEFE989680");
    }

    #[test]
    fn placeholders_and_escapes() {
        let id = identity();
        let t = Template::compile("cr-{serial} & {{x}} {index} {index:04x} {mac}", 0).unwrap();
        assert_eq!(t.to_string_for(&id, DeviceId(255)), "cr-FEFEFE0000FF & {x} 255 00ff FE:FE:FE:00:00:FF");
        let mut xml = BytesMut::new();
        t.write(&id, DeviceId(1), true, &mut xml);
        assert!(std::str::from_utf8(&xml).unwrap().contains("&amp; {x}"));
        assert_eq!(Template::compile("plain", 0).unwrap().literal(), Some("plain"));
    }

    #[test]
    fn secrets_are_deterministic_and_distinct() {
        let id = identity();
        let a = Template::compile("{secret:12}", 1).unwrap();
        let b = Template::compile("{secret:12}", 2).unwrap();
        let a0 = a.to_string_for(&id, DeviceId(0));
        assert_eq!(a0.len(), 12);
        assert_eq!(a0, a.to_string_for(&id, DeviceId(0)));
        assert_ne!(a0, a.to_string_for(&id, DeviceId(1)));
        assert_ne!(a0, b.to_string_for(&id, DeviceId(0)));
    }

    #[test]
    fn bad_templates_are_named() {
        assert_eq!(Template::compile("{nope}", 0), Err(TemplateError::UnknownPlaceholder("nope".into())));
        assert_eq!(Template::compile("{index", 0), Err(TemplateError::Unclosed));
        assert!(Template::compile("{secret:0}", 0).is_err());
    }
}
