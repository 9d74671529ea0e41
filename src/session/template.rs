//! The pre-rendered Inform: per profile, the envelope is rendered once into static byte runs with
//! splice points, so rendering one Inform is a few memcpys into a reused buffer.
//!
//! Splices: `cwmp:ID`, the DeviceId fields, the events, CurrentTime, RetryCount, the parameter
//! count, the value of each forced-inform parameter, and any value-change parameters. Static
//! values were XML-escaped at build time; identity values are stamped from the CPE index;
//! dynamic values (uptime, counters) are computed from `now`. No `format!`, no allocation once the
//! buffer has grown (see `tests/alloc.rs`).

use std::ops::Range;

use bytes::BytesMut;

use crate::cwmp::envelope;
use crate::model::{Device, Loc, Model, ReadFor};
use crate::time::format_datetime;

/// The events an Inform carries, written by whoever owns them (`cpe::events`).
pub trait InformEvents {
    /// How many EventStructs [`write`](Self::write) will produce.
    fn count(&self) -> usize;
    /// Writes the EventStruct elements.
    fn write(&self, out: &mut BytesMut);
}

/// Writes one `<EventStruct>`.
pub fn write_event(out: &mut BytesMut, code: &str, command_key: &str) {
    out.extend_from_slice(b"<EventStruct><EventCode>");
    out.extend_from_slice(code.as_bytes());
    out.extend_from_slice(b"</EventCode><CommandKey>");
    crate::cwmp::xml::escape_into(out, crate::cwmp::limits::clip(command_key, crate::cwmp::limits::COMMAND_KEY));
    out.extend_from_slice(b"</CommandKey></EventStruct>");
}

#[derive(Debug, Clone)]
enum Piece {
    Static(Range<usize>),
    Id,
    /// The value of a forced parameter.
    Value(Loc),
    /// A DeviceIdStruct field, clipped to its schema limit (characters).
    Field(Loc, usize),
    Events,
    CurrentTime,
    RetryCount,
    ParamCount,
    Extra,
}

/// One profile's Inform, pre-rendered.
#[derive(Debug)]
pub struct InformTemplate {
    bytes: Vec<u8>,
    pieces: Vec<Piece>,
    forced_count: usize,
}

struct Builder {
    bytes: Vec<u8>,
    pieces: Vec<Piece>,
}

impl Builder {
    fn text(&mut self, s: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(s);
        match self.pieces.last_mut() {
            Some(Piece::Static(r)) if r.end == start => r.end = self.bytes.len(),
            _ => self.pieces.push(Piece::Static(start..self.bytes.len())),
        }
    }

    fn splice(&mut self, p: Piece) {
        self.pieces.push(p);
    }
}

impl InformTemplate {
    /// Renders the static parts of `model`'s Inform once.
    pub fn new(model: &Model) -> InformTemplate {
        let mut b = Builder { bytes: Vec::with_capacity(2048), pieces: Vec::new() };
        let mut head = BytesMut::new();
        envelope::write_head_before_id(&mut head, &model.cwmp_urn);
        b.text(&head);
        b.splice(Piece::Id);
        b.text(envelope::AFTER_ID);
        b.text(b"<cwmp:Inform><DeviceId>");
        let wk = &model.well_known;
        use crate::cwmp::limits::{DEVICE_ID_FIELD, OUI};
        let fields = [
            ("Manufacturer", wk.manufacturer, DEVICE_ID_FIELD),
            ("OUI", wk.oui, OUI),
            ("ProductClass", wk.product_class, DEVICE_ID_FIELD),
            ("SerialNumber", wk.serial_number, DEVICE_ID_FIELD),
        ];
        for (tag, node, max) in fields {
            b.text(format!("<{tag}>").as_bytes());
            if let Some(n) = node {
                b.splice(Piece::Field(Loc::plain(n), max));
            }
            b.text(format!("</{tag}>").as_bytes());
        }
        b.text(b"</DeviceId><Event SOAP-ENC:arrayType=\"cwmp:EventStruct[");
        b.splice(Piece::Events);
        b.text(b"</Event><MaxEnvelopes>1</MaxEnvelopes><CurrentTime>");
        b.splice(Piece::CurrentTime);
        b.text(b"</CurrentTime><RetryCount>");
        b.splice(Piece::RetryCount);
        b.text(b"</RetryCount><ParameterList SOAP-ENC:arrayType=\"cwmp:ParameterValueStruct[");
        b.splice(Piece::ParamCount);
        b.text(b"]\">");
        for loc in &model.forced {
            let ty = model.tree.node(loc.node).param().map_or("xsd:string", |p| p.ty.xsi_type());
            let name = model.tree.path_string(loc);
            b.text(format!("<ParameterValueStruct><Name>{name}</Name><Value xsi:type=\"{ty}\">").as_bytes());
            b.splice(Piece::Value(loc.clone()));
            b.text(b"</Value></ParameterValueStruct>");
        }
        b.splice(Piece::Extra);
        b.text(b"</ParameterList></cwmp:Inform>");
        b.text(envelope::CLOSE);
        InformTemplate { bytes: b.bytes, pieces: b.pieces, forced_count: model.forced.len() }
    }

    /// Renders one Inform for `dev` into `out` (appending).
    ///
    /// `extra` are value-change parameters to report besides the forced ones (each once; those
    /// already forced are not repeated).
    pub fn render(&self, out: &mut BytesMut, dev: &Device<'_>, id: u32, events: &dyn InformEvents, retry_count: u32, extra: &[Loc]) {
        let mut num = itoa::Buffer::new();
        let forced = &dev.model.forced;
        let extra_count = extra.iter().filter(|l| !forced.contains(l)).count();
        for piece in &self.pieces {
            match piece {
                Piece::Static(r) => out.extend_from_slice(&self.bytes[r.clone()]),
                Piece::Id => out.extend_from_slice(num.format(id).as_bytes()),
                Piece::Value(loc) => dev.write_value(loc, ReadFor::Acs, true, out),
                Piece::Field(loc, max) => {
                    let start = out.len();
                    dev.write_value(loc, ReadFor::Acs, true, out);
                    clip_escaped(out, start, *max);
                }
                Piece::Events => {
                    out.extend_from_slice(num.format(events.count()).as_bytes());
                    out.extend_from_slice(b"]\">");
                    events.write(out);
                }
                Piece::CurrentTime => out.extend_from_slice(&format_datetime(dev.now)),
                Piece::RetryCount => out.extend_from_slice(num.format(retry_count).as_bytes()),
                Piece::ParamCount => out.extend_from_slice(num.format(self.forced_count + extra_count).as_bytes()),
                Piece::Extra => {
                    for loc in extra.iter().filter(|l| !forced.contains(l)) {
                        let ty = dev.model.tree.node(loc.node).param().map_or("xsd:string", |p| p.ty.xsi_type());
                        crate::cwmp::rpc::get_parameter_values::write_entry(
                            out,
                            |o| dev.model.tree.write_path(loc, o),
                            ty,
                            |o| dev.write_value(loc, ReadFor::Acs, true, o),
                        );
                    }
                }
            }
        }
    }
}

/// Cuts the escaped XML text written at `out[start..]` to at most `max` characters, counting an
/// entity (`&amp;`) as the one character it stands for and never cutting one in half.
fn clip_escaped(out: &mut BytesMut, start: usize, max: usize) {
    let text = &out[start..];
    let (mut chars, mut i) = (0, 0);
    while i < text.len() {
        if chars == max {
            out.truncate(start + i);
            return;
        }
        let len = match text[i] {
            b'&' => text[i..].iter().position(|&c| c == b';').map_or(1, |p| p + 1),
            b if b < 0x80 => 1,
            b if b >= 0xF0 => 4,
            b if b >= 0xE0 => 3,
            _ => 2,
        };
        i += len;
        chars += 1;
    }
}

#[cfg(test)]
mod clip_tests {
    #[test]
    fn clipping_keeps_entities_and_characters_whole() {
        let mut b = bytes::BytesMut::from(&b"<x>a&amp;b\xc3\xa9cd"[..]);
        super::clip_escaped(&mut b, 3, 3);
        assert_eq!(&b[..], b"<x>a&amp;b");
        let mut b = bytes::BytesMut::from(&b"ab\xc3\xa9"[..]);
        super::clip_escaped(&mut b, 0, 3);
        assert_eq!(&b[..], "ab\u{e9}".as_bytes());
        super::clip_escaped(&mut b, 0, 2);
        assert_eq!(&b[..], b"ab");
    }
}
