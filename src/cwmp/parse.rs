//! Reading ACS→CPE envelopes with quick-xml's parsing primitives, borrowing from the body.
//!
//! [`Cursor`] walks the body slice itself: `memchr` finds markup, quick-xml's `ElementParser`
//! finds where a tag ends (quotes respected) and `escape::unescape` decodes entity references;
//! attributes are read by a single-pass scanner, since only namespaces and `xsi:type` matter. Open element names and namespace bindings live
//! on small stacks, so a parse allocates nothing unless a text needs unescaping, and elements are
//! matched on namespace URI + local name, never on prefix (PROTOCOL.md §2, §13). Driving the
//! primitives directly rather than `quick_xml::Reader` (whose tag-name buffer is allocated per
//! document) and scanning attributes in one pass took a whole InformResponse from 1.05 µs to
//! 0.44 µs (benches/codec.rs `parse_inform_response`). DTDs are refused (no entity expansion).
//!
//! Before the root element, whatever XML 1.0 allows is read: a UTF-8 byte order mark, the XML
//! declaration (single or double quotes, `standalone`, any case of `UTF-8`, and `utf8`, which is
//! not a registered name but which libxml2 reads as UTF-8 too; `US-ASCII` when the body is
//! 7-bit), whitespace, comments and processing instructions. A body in any other encoding, by its
//! declaration, its byte order mark or the UTF-16/32 layout of its first `<` (XML 1.0 Appendix F),
//! is refused with [`ParseError::UnsupportedEncoding`] naming it, never read as UTF-8. A DOCTYPE
//! is [`ParseError::Doctype`].
//!
//! Limits on depth, item counts and text length keep a hostile body from costing unbounded memory
//! or time.
//!
//! Errors are small `Copy` values. [`ParseError::is_fatal`] separates a body that is not a usable
//! envelope (the session fails) from a well-formed request with bad arguments (answered with
//! Fault 9003/9004 by the session).

use std::borrow::Cow;

use quick_xml::parser::{ElementParser, Parser};
use smallvec::SmallVec;

/// Deepest element nesting accepted (CWMP needs about 8).
pub const MAX_DEPTH: u16 = 32;
/// Most entries accepted in one array (names, values, attributes).
pub const MAX_ITEMS: usize = 10_000;
/// Longest text accepted in one element.
pub const MAX_TEXT: usize = 64 * 1024;

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not well-formed XML.
    Malformed,
    /// The body is not valid UTF-8.
    NotUtf8,
    /// The body ends before the document does.
    Truncated,
    /// Elements nest deeper than [`MAX_DEPTH`].
    TooDeep,
    /// The root element is not a SOAP 1.1 Envelope.
    NotSoapEnvelope,
    /// The envelope has no Body.
    NoBody,
    /// The Body holds no message element.
    EmptyBody,
    /// A required argument is missing.
    MissingArgument(&'static str),
    /// An argument's text is not of its type.
    BadArgument(&'static str),
    /// An element holds child elements where text was expected.
    UnexpectedElement(&'static str),
    /// An array has more than [`MAX_ITEMS`] entries.
    TooManyItems(&'static str),
    /// A text is longer than [`MAX_TEXT`].
    TextTooLong,
    /// The body is in an encoding other than UTF-8 (declared, or by its byte order mark/layout).
    UnsupportedEncoding(EncodingName),
    /// A document type declaration: DTDs are refused (no entity expansion).
    Doctype,
}

/// An encoding name as a body declared it, kept inline so [`ParseError`] stays `Copy` (names
/// longer than [`EncodingName::MAX`] bytes are shortened).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EncodingName {
    len: u8,
    bytes: [u8; EncodingName::MAX],
}

impl EncodingName {
    /// Longest name kept (registered names are at most 40 characters; common ones under 16).
    pub const MAX: usize = 22;

    pub fn new(name: &str) -> EncodingName {
        let mut len = name.len().min(Self::MAX);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0; Self::MAX];
        bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
        EncodingName { len: len as u8, bytes }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl std::fmt::Debug for EncodingName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl ParseError {
    /// True when the body as a whole is unusable (no reply can be built from it).
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            ParseError::Malformed
                | ParseError::NotUtf8
                | ParseError::Truncated
                | ParseError::TooDeep
                | ParseError::NotSoapEnvelope
                | ParseError::NoBody
                | ParseError::EmptyBody
                | ParseError::UnsupportedEncoding(_)
                | ParseError::Doctype
        )
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Malformed => f.write_str("malformed XML"),
            ParseError::NotUtf8 => f.write_str("body is not UTF-8"),
            ParseError::Truncated => f.write_str("body is truncated"),
            ParseError::TooDeep => write!(f, "elements nest deeper than {MAX_DEPTH}"),
            ParseError::NotSoapEnvelope => f.write_str("not a SOAP envelope"),
            ParseError::NoBody => f.write_str("SOAP envelope has no Body"),
            ParseError::EmptyBody => f.write_str("SOAP Body is empty"),
            ParseError::MissingArgument(a) => write!(f, "missing argument {a}"),
            ParseError::BadArgument(a) => write!(f, "invalid value for {a}"),
            ParseError::UnexpectedElement(a) => write!(f, "unexpected child element in {a}"),
            ParseError::TooManyItems(a) => write!(f, "{a} has more than {MAX_ITEMS} entries"),
            ParseError::TextTooLong => write!(f, "a text is longer than {MAX_TEXT} bytes"),
            ParseError::UnsupportedEncoding(name) => {
                write!(f, "the body declares encoding {}; only UTF-8 is read", name.as_str())
            }
            ParseError::Doctype => f.write_str("DOCTYPE refused (no DTDs, no entity expansion)"),
        }
    }
}

impl std::error::Error for ParseError {}

/// The namespaces CWMP uses, by URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    None,
    SoapEnv,
    SoapEnc,
    Xsi,
    Xsd,
    /// `urn:dslforum-org:cwmp-1-N`, with N.
    Cwmp(u8),
    Other,
}

impl Ns {
    fn from_uri(uri: &str) -> Ns {
        const ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
        const ENC: &str = "http://schemas.xmlsoap.org/soap/encoding/";
        const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
        const XSD: &str = "http://www.w3.org/2001/XMLSchema";
        const CWMP: &str = "urn:dslforum-org:cwmp-1-";
        let b = uri.as_bytes();
        // Pick the one candidate by length and a distinguishing byte, then compare once.
        let (candidate, ns) = match (b.len(), b.get(34)) {
            (41, Some(b'v')) => (ENV, Ns::SoapEnv),
            (41, Some(b'c')) => (ENC, Ns::SoapEnc),
            (41, _) => (XSI, Ns::Xsi),
            (32, _) => (XSD, Ns::Xsd),
            (25, _) if b[24].is_ascii_digit() && uri.starts_with(CWMP) => return Ns::Cwmp(b[24] - b'0'),
            (0, _) => return Ns::None,
            _ => return Ns::Other,
        };
        if uri == candidate {
            ns
        } else {
            Ns::Other
        }
    }
}

/// An element the cursor stopped at.
#[derive(Debug, Clone, Copy)]
pub struct Elem<'a> {
    pub ns: Ns,
    pub local: &'a str,
    /// `<x/>`: no content to read or skip.
    pub empty: bool,
    /// The local part of an `xsi:type` attribute (`string` for `xsd:string`).
    pub xsi_type: Option<&'a str>,
    depth: u16,
}

struct Binding<'a> {
    prefix: &'a str,
    ns: Ns,
    depth: u16,
}

/// One piece of markup or text.
enum Tok<'a> {
    /// A start tag: its content between `<` and `>` (without a trailing `/`), name length.
    Start {
        content: &'a str,
        name_len: usize,
        empty: bool,
    },
    End {
        name: &'a str,
    },
    /// Raw text (entity references not yet decoded).
    Text(&'a str),
    /// CDATA content (taken literally).
    CData(&'a str),
    Eof,
}

/// A pull cursor over one body.
pub struct Cursor<'a> {
    src: &'a str,
    pos: usize,
    /// Qualified names of the open elements, innermost last.
    open: SmallVec<[&'a str; 16]>,
    bindings: SmallVec<[Binding<'a>; 8]>,
}

impl<'a> Cursor<'a> {
    /// A cursor over `body`.
    ///
    /// A UTF-8 byte order mark is skipped.
    ///
    /// # Errors
    /// [`ParseError::UnsupportedEncoding`] when the body is UTF-16/32 (by its byte order mark or
    /// layout) or declares an encoding other than UTF-8; [`ParseError::NotUtf8`] when it is
    /// not UTF-8 otherwise (CWMP bodies are, PROTOCOL.md §1.1).
    pub fn new(body: &'a [u8]) -> Result<Cursor<'a>, ParseError> {
        let body = match body {
            [0xEF, 0xBB, 0xBF, rest @ ..] => rest,
            _ => match wide_encoding(body) {
                Some(name) => return Err(ParseError::UnsupportedEncoding(EncodingName::new(name))),
                None => body,
            },
        };
        let src = match std::str::from_utf8(body) {
            Ok(src) => src,
            Err(e) => {
                // A body in another encoding that says so is refused by that name.
                let prefix = std::str::from_utf8(&body[..e.valid_up_to()]).unwrap_or("");
                let decl = prefix.trim_start_matches(|c: char| c.is_ascii_whitespace());
                if let Some(attrs) = decl.strip_prefix("<?").and_then(declaration) {
                    let end = attrs.find("?>").ok_or(ParseError::NotUtf8)?;
                    check_declaration(&attrs[..end], None)?;
                }
                return Err(ParseError::NotUtf8);
            }
        };
        Ok(Cursor { src, pos: 0, open: SmallVec::new(), bindings: SmallVec::new() })
    }

    /// Scans the next token, skipping the XML declaration, processing instructions and comments.
    #[inline(always)]
    fn next(&mut self) -> Result<Tok<'a>, ParseError> {
        loop {
            let bytes = &self.src.as_bytes()[self.pos..];
            let Some(&first) = bytes.first() else { return Ok(Tok::Eof) };
            if first != b'<' {
                let len = memchr::memchr(b'<', bytes).unwrap_or(bytes.len());
                let text = &self.src[self.pos..self.pos + len];
                self.pos += len;
                return Ok(Tok::Text(text));
            }
            match bytes.get(1) {
                None => return Err(ParseError::Truncated),
                Some(b'?') => self.skip_pi()?,
                Some(b'!') => {
                    if bytes.starts_with(b"<!--") {
                        let end = find_closing(&bytes[4..], b"-->").ok_or(ParseError::Truncated)?;
                        self.pos += end + 7;
                    } else if bytes.starts_with(b"<![CDATA[") {
                        let end = find_closing(&bytes[9..], b"]]>").ok_or(ParseError::Truncated)?;
                        let text = &self.src[self.pos + 9..self.pos + 9 + end];
                        self.pos += end + 12;
                        return Ok(Tok::CData(text));
                    } else if b"<![CDATA[".starts_with(bytes) || b"<!--".starts_with(bytes) {
                        return Err(ParseError::Truncated);
                    } else if bytes.starts_with(b"<!DOCTYPE") {
                        return Err(ParseError::Doctype);
                    } else {
                        // Anything else (`<!ELEMENT`, `<!ENTITY` …): no DTDs, no entity expansion.
                        return Err(ParseError::Malformed);
                    }
                }
                Some(b'/') => {
                    let end = memchr::memchr(b'>', bytes).ok_or(ParseError::Truncated)?;
                    let name = self.src[self.pos + 2..self.pos + end].trim_end();
                    self.pos += end + 1;
                    return Ok(Tok::End { name });
                }
                Some(_) => {
                    let end = ElementParser::default().feed(&bytes[1..]).ok_or(ParseError::Truncated)?;
                    let mut content = &self.src[self.pos + 1..self.pos + 1 + end];
                    self.pos += end + 2;
                    let empty = content.ends_with('/');
                    if empty {
                        content = &content[..content.len() - 1];
                    }
                    let name_len = content.bytes().position(|b| b.is_ascii_whitespace()).unwrap_or(content.len());
                    if name_len == 0 {
                        return Err(ParseError::Malformed);
                    }
                    return Ok(Tok::Start { content, name_len, empty });
                }
            }
        }
    }

    /// Skips the processing instruction at the cursor, reading it if it is the XML declaration.
    /// Out of line: about one per document, and `next` is inlined everywhere.
    #[inline(never)]
    fn skip_pi(&mut self) -> Result<(), ParseError> {
        let bytes = &self.src.as_bytes()[self.pos..];
        let end = find_closing(&bytes[2..], b"?>").ok_or(ParseError::Truncated)?;
        if let Some(attrs) = declaration(&self.src[self.pos + 2..self.pos + 2 + end]) {
            check_declaration(attrs, Some(self.src))?;
        }
        self.pos += end + 4;
        Ok(())
    }

    fn resolve(&self, prefix: &str) -> Ns {
        self.bindings.iter().rev().find(|b| b.prefix == prefix).map_or(if prefix.is_empty() { Ns::None } else { Ns::Other }, |b| b.ns)
    }

    /// Pushes the element's namespace declarations and describes it.
    #[inline(always)]
    fn open_start(&mut self, content: &'a str, name_len: usize, empty: bool) -> Result<Elem<'a>, ParseError> {
        let depth = self.open.len() as u16 + 1;
        if depth > MAX_DEPTH {
            return Err(ParseError::TooDeep);
        }
        let name = &content[..name_len];
        let raw_attrs = &content[name_len..];
        let mut type_attr: Option<(&'a str, &'a str)> = None;
        let bindings = &mut self.bindings;
        for_each_attribute(raw_attrs, |key, value| {
            if key == "xmlns" {
                bindings.push(Binding { prefix: "", ns: Ns::from_uri(value), depth });
            } else if let Some(p) = key.strip_prefix("xmlns:") {
                bindings.push(Binding { prefix: p, ns: Ns::from_uri(value), depth });
            } else if let Some(p) = key.strip_suffix(":type") {
                type_attr = Some((p, value));
            }
        })?;
        let (prefix, local) = match memchr::memchr(b':', name.as_bytes()) {
            Some(i) => (&name[..i], &name[i + 1..]),
            None => ("", name),
        };
        let ns = self.resolve(prefix);
        let xsi_type = match type_attr {
            Some((p, v)) if self.resolve(p) == Ns::Xsi => Some(v.rsplit(':').next().unwrap_or(v)),
            _ => None,
        };
        if empty {
            self.bindings.retain(|b| b.depth < depth);
        } else {
            self.open.push(name);
        }
        Ok(Elem { ns, local, empty, xsi_type, depth })
    }

    /// Closes the innermost element, checking the end tag names it.
    fn close(&mut self, name: &str) -> Result<(), ParseError> {
        let depth = self.open.len() as u16;
        match self.open.pop() {
            Some(open) if open == name => {}
            _ => return Err(ParseError::Malformed),
        }
        while self.bindings.last().is_some_and(|b| b.depth >= depth) {
            self.bindings.pop();
        }
        Ok(())
    }

    /// The next element at the top level of the document.
    pub fn root(&mut self) -> Result<Elem<'a>, ParseError> {
        loop {
            match self.next()? {
                Tok::Start { content, name_len, empty } => return self.open_start(content, name_len, empty),
                Tok::Text(t) if t.trim_ascii().is_empty() => {}
                _ => return Err(ParseError::NotSoapEnvelope),
            }
        }
    }

    /// The next child element of `parent`, or `None` at its end. Text between elements is
    /// skipped. Each returned child must be consumed ([`text`](Self::text), [`skip`](Self::skip)
    /// or its own children) before asking for the next.
    pub fn child(&mut self, parent: &Elem<'a>) -> Result<Option<Elem<'a>>, ParseError> {
        if parent.empty {
            return Ok(None);
        }
        loop {
            match self.next()? {
                Tok::Start { content, name_len, empty } => return self.open_start(content, name_len, empty).map(Some),
                Tok::End { name } => {
                    self.close(name)?;
                    return Ok(None);
                }
                Tok::Eof => return Err(ParseError::Truncated),
                Tok::Text(_) | Tok::CData(_) => {}
            }
        }
    }

    /// The text content of `elem` (which must hold no child elements), consuming it.
    ///
    /// # Errors
    /// [`ParseError::UnexpectedElement`] when it has children; limits and XML errors.
    pub fn text(&mut self, elem: &Elem<'a>, what: &'static str) -> Result<Cow<'a, str>, ParseError> {
        if elem.empty {
            return Ok(Cow::Borrowed(""));
        }
        let mut acc: Option<Cow<'a, str>> = None;
        loop {
            let piece: Cow<'a, str> = match self.next()? {
                Tok::Text(t) if t.contains('&') => quick_xml::escape::unescape(t).map_err(|_| ParseError::Malformed)?,
                Tok::Text(t) | Tok::CData(t) => Cow::Borrowed(t),
                Tok::End { name } => {
                    self.close(name)?;
                    return Ok(acc.unwrap_or(Cow::Borrowed("")));
                }
                Tok::Start { .. } => return Err(ParseError::UnexpectedElement(what)),
                Tok::Eof => return Err(ParseError::Truncated),
            };
            acc = Some(match acc {
                None => piece,
                Some(prev) => {
                    let mut s = prev.into_owned();
                    s.push_str(&piece);
                    Cow::Owned(s)
                }
            });
            if acc.as_ref().is_some_and(|a| a.len() > MAX_TEXT) {
                return Err(ParseError::TextTooLong);
            }
        }
    }

    /// Skips `elem` and everything inside it.
    pub fn skip(&mut self, elem: &Elem<'a>) -> Result<(), ParseError> {
        if elem.empty {
            return Ok(());
        }
        self.skip_to(elem.depth - 1)
    }

    /// Reads until the cursor is back at `depth` (recovering after an argument error).
    pub fn skip_to(&mut self, depth: u16) -> Result<(), ParseError> {
        while self.depth() > depth {
            match self.next()? {
                Tok::Start { content, name_len, empty } => {
                    self.open_start(content, name_len, empty)?;
                }
                Tok::End { name } => self.close(name)?,
                Tok::Eof => return Err(ParseError::Truncated),
                Tok::Text(_) | Tok::CData(_) => {}
            }
        }
        Ok(())
    }

    /// Current element depth.
    pub fn depth(&self) -> u16 {
        self.open.len() as u16
    }

    /// Reads to the end of the document, requiring nothing but whitespace and comments.
    pub fn finish(&mut self) -> Result<(), ParseError> {
        loop {
            match self.next()? {
                Tok::Eof => return Ok(()),
                Tok::Text(t) if t.trim_ascii().is_empty() => {}
                _ => return Err(ParseError::Malformed),
            }
        }
    }
}

/// The pseudo-attributes of an XML declaration, when the processing instruction `pi` (what lies
/// between `<?` and `?>`) is one (target `xml`, then whitespace or nothing).
fn declaration(pi: &str) -> Option<&str> {
    let attrs = pi.strip_prefix("xml")?;
    (attrs.is_empty() || attrs.as_bytes()[0].is_ascii_whitespace()).then_some(attrs)
}

/// Reads an XML declaration's pseudo-attributes and refuses an encoding other than UTF-8.
/// `body`: the whole body when it is UTF-8; `US-ASCII` is accepted when it is also 7-bit (then it
/// reads the same), checked only for such a declaration.
///
/// # Errors
/// [`ParseError::UnsupportedEncoding`]; [`ParseError::Malformed`] for a declaration that is not
/// well-formed.
fn check_declaration(attrs: &str, body: Option<&str>) -> Result<(), ParseError> {
    let mut encoding = None;
    for_each_attribute(attrs, |key, value| {
        if key == "encoding" {
            encoding = Some(value);
        }
    })?;
    match encoding {
        None => Ok(()),
        Some(e) if e.eq_ignore_ascii_case("UTF-8") || e.eq_ignore_ascii_case("UTF8") => Ok(()),
        Some(e) if (e.eq_ignore_ascii_case("US-ASCII") || e.eq_ignore_ascii_case("ASCII")) && body.is_some_and(str::is_ascii) => Ok(()),
        Some(e) => Err(ParseError::UnsupportedEncoding(EncodingName::new(e))),
    }
}

/// A UTF-16 or UTF-32 body, by its byte order mark or, without one, by how its first `<` is laid
/// out (XML 1.0 Appendix F). NUL bytes are valid UTF-8, so these would otherwise be misread.
fn wide_encoding(body: &[u8]) -> Option<&'static str> {
    match body {
        [0xFF, 0xFE, 0, 0, ..] | [b'<', 0, 0, 0, ..] => Some("UTF-32LE"),
        [0, 0, 0xFE, 0xFF, ..] | [0, 0, 0, b'<', ..] => Some("UTF-32BE"),
        [0xFF, 0xFE, ..] | [b'<', 0, ..] => Some("UTF-16LE"),
        [0xFE, 0xFF, ..] | [0, b'<', ..] => Some("UTF-16BE"),
        _ => None,
    }
}

/// Position of `close` (`?>`, `-->`, `]]>`) in `hay`, found by its last byte with memchr
/// (a `memmem::Finder` per call costs more than the whole scan on these short spans).
fn find_closing(hay: &[u8], close: &[u8]) -> Option<usize> {
    let last = *close.last()?;
    let mut from = 0;
    while let Some(i) = memchr::memchr(last, &hay[from..]) {
        let end = from + i + 1;
        if end >= close.len() && &hay[end - close.len()..end] == close {
            return Some(end - close.len());
        }
        from = end;
    }
    None
}

/// Calls `f(key, value)` for each `key="value"` (or `'value'`) of a start tag's attribute text.
///
/// Values are passed raw: the codec reads only namespace URIs and `xsi:type` names, which carry
/// no entity references in practice (one that did would simply not match a known namespace).
/// A single pass with no per-attribute bookkeeping: quick-xml's general attribute iterator was a
/// quarter of an InformResponse parse (benches/codec.rs `parse_inform_response`).
///
/// # Errors
/// [`ParseError::Malformed`] for anything that is not a well-formed attribute list.
#[inline(always)]
fn for_each_attribute<'a>(raw: &'a str, mut f: impl FnMut(&'a str, &'a str)) -> Result<(), ParseError> {
    let b = raw.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == b.len() {
            return Ok(());
        }
        let key_start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &raw[key_start..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if key.is_empty() || b.get(i) != Some(&b'=') {
            return Err(ParseError::Malformed);
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let quote = match b.get(i) {
            Some(q @ (b'"' | b'\'')) => *q,
            _ => return Err(ParseError::Malformed),
        };
        i += 1;
        let len = memchr::memchr(quote, &b[i..]).ok_or(ParseError::Malformed)?;
        let value = &raw[i..i + len];
        if memchr::memchr(b'<', value.as_bytes()).is_some() {
            return Err(ParseError::Malformed);
        }
        i += len + 1;
        if i < b.len() && !b[i].is_ascii_whitespace() {
            return Err(ParseError::Malformed);
        }
        f(key, value);
    }
}

/// Parses a boolean as ACSs send it (`true`/`false`/`1`/`0`, PROTOCOL.md §11).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Parses an unsignedInt argument.
pub fn parse_u32(s: &str, what: &'static str) -> Result<u32, ParseError> {
    s.trim().parse().map_err(|_| ParseError::BadArgument(what))
}

/// Reads every `<string>` (any name) child of an array element.
pub fn string_array<'a>(cur: &mut Cursor<'a>, array: &Elem<'a>, what: &'static str) -> Result<Vec<Cow<'a, str>>, ParseError> {
    let mut out = Vec::new();
    while let Some(item) = cur.child(array)? {
        if out.len() >= MAX_ITEMS {
            return Err(ParseError::TooManyItems(what));
        }
        out.push(cur.text(&item, what)?);
    }
    Ok(out)
}
