//! Reading ACS→CPE envelopes with quick-xml, borrowing from the body.
//!
//! [`Cursor`] wraps `quick_xml::Reader<&[u8]>` (events borrow from the body slice, no copy buffer)
//! and resolves namespaces itself on a small stack, so elements are matched on namespace URI +
//! local name, never on prefix (PROTOCOL.md §2, §13). Text with entity references is joined into
//! an owned string only when it has to be. Limits on depth, item counts and text length keep a
//! hostile body from costing unbounded memory or time.
//!
//! Errors are small `Copy` values. [`ParseError::is_fatal`] separates a body that is not a usable
//! envelope (the session fails) from a well-formed request with bad arguments (answered with
//! Fault 9003/9004 by the session).

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
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
        match uri {
            "http://schemas.xmlsoap.org/soap/envelope/" => Ns::SoapEnv,
            "http://schemas.xmlsoap.org/soap/encoding/" => Ns::SoapEnc,
            "http://www.w3.org/2001/XMLSchema-instance" => Ns::Xsi,
            "http://www.w3.org/2001/XMLSchema" => Ns::Xsd,
            _ => match uri.strip_prefix("urn:dslforum-org:cwmp-1-") {
                Some(n) if n.len() == 1 && n.as_bytes()[0].is_ascii_digit() => Ns::Cwmp(n.as_bytes()[0] - b'0'),
                _ if uri.is_empty() => Ns::None,
                _ => Ns::Other,
            },
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

/// A pull cursor over one body.
pub struct Cursor<'a> {
    reader: Reader<&'a [u8]>,
    /// The whole body, checked UTF-8 once so borrowed names can be re-sliced from it safely.
    src: &'a str,
    bindings: SmallVec<[Binding<'a>; 8]>,
    depth: u16,
}

impl<'a> Cursor<'a> {
    /// A cursor over `body`.
    ///
    /// # Errors
    /// [`ParseError::NotUtf8`] when the body is not UTF-8 (CWMP bodies are, PROTOCOL.md §1.1).
    pub fn new(body: &'a [u8]) -> Result<Cursor<'a>, ParseError> {
        let src = std::str::from_utf8(body).map_err(|_| ParseError::NotUtf8)?;
        let mut reader = Reader::from_str(src);
        let cfg = reader.config_mut();
        cfg.expand_empty_elements = false;
        cfg.trim_text(false);
        Ok(Cursor { reader, src, bindings: SmallVec::new(), depth: 0 })
    }

    fn map_err(&self, e: quick_xml::Error) -> ParseError {
        match e {
            quick_xml::Error::Encoding(_) => ParseError::NotUtf8,
            _ if self.reader.buffer_position() as usize >= self.src.len() => ParseError::Truncated,
            _ => ParseError::Malformed,
        }
    }

    fn read(&mut self) -> Result<Event<'a>, ParseError> {
        self.reader.read_event().map_err(|e| self.map_err(e))
    }

    fn resolve(&self, prefix: &str) -> Ns {
        self.bindings.iter().rev().find(|b| b.prefix == prefix).map_or(
            if prefix.is_empty() { Ns::None } else { Ns::Other },
            |b| b.ns,
        )
    }

    /// Pushes the element's namespace declarations and describes it.
    fn open(&mut self, start: &BytesStart<'_>, empty: bool) -> Result<Elem<'a>, ParseError> {
        let src = self.src;
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(ParseError::TooDeep);
        }
        let mut type_attr: Option<(&'a str, &'a str)> = None;
        for attr in start.attributes().with_checks(false) {
            let attr = attr.map_err(|_| ParseError::Malformed)?;
            let key = attr.key.0;
            let Cow::Borrowed(value) = attr.value else { continue };
            // Attribute keys and values borrow from the body; re-slice to keep its lifetime.
            let key: &'a str = reslice(src, key);
            let value: &'a str = reslice(src, value);
            if key == "xmlns" {
                self.bindings.push(Binding { prefix: "", ns: Ns::from_uri(value), depth });
            } else if let Some(p) = key.strip_prefix("xmlns:") {
                self.bindings.push(Binding { prefix: p, ns: Ns::from_uri(value), depth });
            } else if let Some((p, "type")) = key.split_once(':') {
                type_attr = Some((p, value));
            }
        }
        let name: &'a str = reslice(src, start.name().0);
        let (prefix, local) = name.split_once(':').unwrap_or(("", name));
        let ns = self.resolve(prefix);
        let xsi_type = match type_attr {
            Some((p, v)) if self.resolve(p) == Ns::Xsi => Some(v.rsplit(':').next().unwrap_or(v)),
            _ => None,
        };
        if empty {
            self.bindings.retain(|b| b.depth < depth);
        } else {
            self.depth = depth;
        }
        Ok(Elem { ns, local, empty, xsi_type, depth })
    }

    fn close(&mut self) {
        let d = self.depth;
        while self.bindings.last().is_some_and(|b| b.depth >= d) {
            self.bindings.pop();
        }
        self.depth -= 1;
    }

    /// The next element at the top level of the document.
    pub fn root(&mut self) -> Result<Elem<'a>, ParseError> {
        loop {
            match self.read()? {
                Event::Start(s) => return self.open_start(s, false),
                Event::Empty(s) => return self.open_start(s, true),
                Event::Eof => return Err(ParseError::NotSoapEnvelope),
                Event::Text(t) if !t.trim_ascii().is_empty() => return Err(ParseError::NotSoapEnvelope),
                Event::End(_) | Event::GeneralRef(_) | Event::CData(_) => return Err(ParseError::NotSoapEnvelope),
                _ => {}
            }
        }
    }

    fn open_start(&mut self, s: BytesStart<'a>, empty: bool) -> Result<Elem<'a>, ParseError> {
        self.open(&s, empty)
    }

    /// The next child element of `parent`, or `None` at its end. Text between elements is
    /// skipped. Each returned child must be consumed ([`text`](Self::text), [`skip`](Self::skip)
    /// or its own children) before asking for the next.
    pub fn child(&mut self, parent: &Elem<'a>) -> Result<Option<Elem<'a>>, ParseError> {
        if parent.empty {
            return Ok(None);
        }
        loop {
            match self.read()? {
                Event::Start(s) => return self.open_start(s, false).map(Some),
                Event::Empty(s) => return self.open_start(s, true).map(Some),
                Event::End(_) => {
                    self.close();
                    debug_assert!(self.depth < parent.depth);
                    return Ok(None);
                }
                Event::Eof => return Err(ParseError::Truncated),
                _ => {}
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
            let piece: Cow<'a, str> = match self.read()? {
                Event::Text(t) => t.into_inner(),
                Event::CData(c) => c.into_inner(),
                Event::GeneralRef(r) => {
                    let ch = match &*r {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        _ => match r.resolve_char_ref() {
                            Ok(Some(c)) => c,
                            _ => return Err(ParseError::Malformed),
                        },
                    };
                    Cow::Owned(ch.to_string())
                }
                Event::End(_) => {
                    self.close();
                    return Ok(acc.unwrap_or(Cow::Borrowed("")));
                }
                Event::Start(_) | Event::Empty(_) => return Err(ParseError::UnexpectedElement(what)),
                Event::Eof => return Err(ParseError::Truncated),
                _ => continue,
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
        while self.depth > depth {
            match self.read()? {
                Event::Start(s) => {
                    self.open_start(s, false)?;
                }
                Event::End(_) => self.close(),
                Event::Eof => return Err(ParseError::Truncated),
                _ => {}
            }
        }
        Ok(())
    }

    /// Current element depth.
    pub fn depth(&self) -> u16 {
        self.depth
    }

    /// Reads to the end of the document, requiring nothing but whitespace and comments.
    pub fn finish(&mut self) -> Result<(), ParseError> {
        loop {
            match self.read()? {
                Event::Eof => return Ok(()),
                Event::Text(t) if t.trim_ascii().is_empty() => {}
                Event::Comment(_) | Event::PI(_) => {}
                _ => return Err(ParseError::Malformed),
            }
        }
    }
}

/// Recovers the body lifetime of `part`, a sub-slice of `src` (events borrow from the body).
/// Returns `""` (which matches nothing) if it is not one, which borrowed events never are not.
fn reslice<'a>(src: &'a str, part: &str) -> &'a str {
    let base = src.as_ptr() as usize;
    let p = part.as_ptr() as usize;
    if p >= base && p + part.len() <= base + src.len() {
        src.get(p - base..p - base + part.len()).unwrap_or("")
    } else {
        ""
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
