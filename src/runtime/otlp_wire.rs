//! OTLP traces on the wire, written in one pass. Workers write each finished span straight into
//! its protobuf bytes ([`SpanWriter`]: a `Span` message framed as field 2 of `ScopeSpans`, ready to
//! be concatenated), so a traced request costs a few appends into a buffer the worker keeps, no
//! string or vector per attribute; the exporter wraps a batch of them in the
//! `ExportTraceServiceRequest` envelope ([`envelope`]) without decoding or re-encoding anything.
//! The bytes are those prost writes for `opentelemetry-proto`'s message types (fields in tag
//! order, minimal varints): the tests decode them with those types and encode them back.

use std::borrow::Cow;

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// Longest attribute value or name part written, in bytes (cut at a character boundary).
pub const MAX_TEXT: usize = 256;

/// SERVER or CLIENT (OTLP's `SpanKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The gateway serving a request.
    Server,
    /// The gateway calling a backend, an API or a token service.
    Client,
}

/// What a span is, known when it is written.
#[derive(Clone, Copy, Debug)]
pub struct Head {
    /// The trace.
    pub trace: [u8; 16],
    /// This span.
    pub id: [u8; 8],
    /// Its parent (none for a root span).
    pub parent: Option<[u8; 8]>,
    /// SERVER or CLIENT.
    pub kind: Kind,
    /// Start, Unix nanoseconds.
    pub start: u64,
}

/// Finished spans, back to back, each framed as field 2 of `ScopeSpans`.
#[derive(Debug, Default)]
pub struct Spans {
    /// The framed `Span` messages.
    pub bytes: Vec<u8>,
    /// How many.
    pub count: usize,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    // Most values (tags, lengths of short strings) are one byte.
    if v < 0x80 {
        out.push(v as u8);
        return;
    }
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire)));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    tag(out, field, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Length of a `bytes`/`string`/message field of `n` bytes with a one-byte tag.
fn len_field(n: usize) -> usize {
    1 + varint_len(n as u64) + n
}

/// A `KeyValue` with a string value, as field `field`.
fn key_str(out: &mut Vec<u8>, field: u32, key: &str, value: &[u8]) {
    let (k, v) = (key.len(), value.len());
    // Nearly every attribute: every length one byte, the tag one byte (field < 16), written
    // with one reservation and four copies.
    if k + v < 120 && field < 16 {
        let any = 2 + v;
        out.reserve(k + v + 8);
        out.extend_from_slice(&[(field as u8) << 3 | LEN, (k + v + 6) as u8, 1 << 3 | LEN, k as u8]);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&[2 << 3 | LEN, any as u8, 1 << 3 | LEN, v as u8]);
        out.extend_from_slice(value);
        return;
    }
    let any = len_field(v);
    tag(out, field, LEN);
    varint(out, (len_field(k) + len_field(any)) as u64);
    bytes_field(out, 1, key.as_bytes());
    tag(out, 2, LEN);
    varint(out, any as u64);
    bytes_field(out, 1, value);
}

/// `b` as protobuf string text: at most [`MAX_TEXT`] bytes, cut at a character boundary;
/// ASCII (nearly everything) taken as it is, other UTF-8 checked, invalid UTF-8 (a hostile
/// body's bytes) replaced, which is the only case that allocates.
pub fn text(b: &[u8]) -> Cow<'_, [u8]> {
    let mut n = b.len().min(MAX_TEXT);
    // Cut before a continuation byte, not inside a character.
    while n < b.len() && n > 0 && b[n] & 0xc0 == 0x80 {
        n -= 1;
    }
    let b = &b[..n];
    if b.is_ascii() || std::str::from_utf8(b).is_ok() {
        return Cow::Borrowed(b);
    }
    Cow::Owned(String::from_utf8_lossy(b).into_owned().into_bytes())
}

/// `s` cut to at most [`MAX_TEXT`] bytes at a character boundary.
fn cut(s: &str) -> &str {
    let mut n = s.len().min(MAX_TEXT);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

/// Unix time in nanoseconds (span times).
pub fn now_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// `v` in decimal ASCII, written into `buf` (no allocation).
fn decimal(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// A `KeyValue` whose every byte is known when the program is built: `static_kv!(key, value)`
/// is its encoding as an attribute of a span (field 9), written with one copy.
macro_rules! static_kv {
    ($key:literal, $value:literal) => {{
        const KV: [u8; $key.len() + $value.len() + 8] = $crate::runtime::otlp_wire::encode_kv($key, $value);
        &KV
    }};
}
pub(crate) use static_kv;

/// The encoding `static_kv!` makes (key and value under 120 bytes together).
pub const fn encode_kv<const N: usize>(key: &str, value: &str) -> [u8; N] {
    let (k, v) = (key.as_bytes(), value.as_bytes());
    assert!(N == k.len() + v.len() + 8 && N < 128);
    let mut out = [0u8; N];
    out[0] = 9 << 3 | LEN;
    out[1] = (N - 2) as u8;
    out[2] = 1 << 3 | LEN;
    out[3] = k.len() as u8;
    let mut i = 0;
    while i < k.len() {
        out[4 + i] = k[i];
        i += 1;
    }
    let at = 4 + k.len();
    out[at] = 2 << 3 | LEN;
    out[at + 1] = (v.len() + 2) as u8;
    out[at + 2] = 1 << 3 | LEN;
    out[at + 3] = v.len() as u8;
    let mut j = 0;
    while j < v.len() {
        out[at + 4 + j] = v[j];
        j += 1;
    }
    out
}

/// A span being written into a buffer of [`Spans`]: begun with its head and name, then its
/// attributes, then [`SpanWriter::finish`] with its end.
pub struct SpanWriter<'a> {
    out: &'a mut Vec<u8>,
    /// Where the span's framing (tag, two-byte length slot) begins.
    at: usize,
    /// Where the end time's eight bytes go.
    end_at: usize,
    start: u64,
    failed: bool,
}

impl<'a> SpanWriter<'a> {
    /// Begins a span at the end of `out`; `name` is the concatenation of its parts (each made
    /// [`text`]).
    pub fn begin(out: &'a mut Vec<u8>, head: &Head, name: [&[u8]; 3]) -> SpanWriter<'a> {
        let at = out.len();
        let name = name.map(|p| if p.is_empty() { Cow::Borrowed(p) } else { text(p) });
        let name_len: usize = name.iter().map(|p| p.len()).sum();
        out.reserve(64 + name_len);
        // The span's own tag and a two-byte length slot (the length is written at the end; two
        // bytes hold any span under 16 KiB - attribute values are bounded, so every span is -
        // and one is given back when it is under 128), then its ids, in one copy.
        let mut ids = [0u8; 3 + 18 + 10 + 10];
        ids[0] = 2 << 3 | LEN;
        ids[3..5].copy_from_slice(&[1 << 3 | LEN, 16]);
        ids[5..21].copy_from_slice(&head.trace);
        ids[21..23].copy_from_slice(&[2 << 3 | LEN, 8]);
        ids[23..31].copy_from_slice(&head.id);
        let mut n = 31;
        if let Some(p) = &head.parent {
            ids[31..33].copy_from_slice(&[4 << 3 | LEN, 8]);
            ids[33..41].copy_from_slice(p);
            n = 41;
        }
        out.extend_from_slice(&ids[..n]);
        if name_len > 0 {
            tag(out, 5, LEN);
            varint(out, name_len as u64);
            for p in &name {
                out.extend_from_slice(p);
            }
        }
        // kind, start, and the end's place (its bytes written by `finish`).
        let mut times = [0u8; 2 + 9 + 9];
        times[0] = 6 << 3 | VARINT;
        times[1] = match head.kind {
            Kind::Server => 2,
            Kind::Client => 3,
        };
        times[2] = 7 << 3 | FIXED64;
        times[3..11].copy_from_slice(&head.start.to_le_bytes());
        times[11] = 8 << 3 | FIXED64;
        times[12..20].copy_from_slice(&head.start.to_le_bytes());
        out.extend_from_slice(&times);
        let end_at = out.len() - 8;
        SpanWriter { out, at, end_at, start: head.start, failed: false }
    }

    /// A string attribute (cut to [`MAX_TEXT`] bytes at a character boundary).
    pub fn str(&mut self, key: &str, value: &str) {
        key_str(self.out, 9, key, cut(value).as_bytes());
    }

    /// An attribute encoded ahead of time ([`static_kv!`]).
    pub fn kv(&mut self, encoded: &[u8]) {
        self.out.extend_from_slice(encoded);
    }

    /// A string attribute holding `v` in decimal (a JSON-RPC id or error code).
    pub fn decimal(&mut self, key: &str, v: i64) {
        key_str(self.out, 9, key, decimal(v, &mut [0u8; 20]));
    }

    /// A string attribute from bytes off the network, made [`text`].
    pub fn bytes(&mut self, key: &str, value: &[u8]) {
        key_str(self.out, 9, key, &text(value));
    }

    /// An integer attribute.
    pub fn int(&mut self, key: &str, v: i64) {
        let k = key.len();
        let mut int = [0u8; 11];
        int[0] = 3 << 3 | VARINT;
        let mut n = 1;
        let mut u = v as u64;
        while u >= 0x80 {
            int[n] = (u as u8) | 0x80;
            u >>= 7;
            n += 1;
        }
        int[n] = u as u8;
        n += 1;
        if k < 100 {
            self.out.reserve(k + n + 6);
            self.out.extend_from_slice(&[9 << 3 | LEN, (k + n + 4) as u8, 1 << 3 | LEN, k as u8]);
            self.out.extend_from_slice(key.as_bytes());
            self.out.extend_from_slice(&[2 << 3 | LEN, n as u8]);
            self.out.extend_from_slice(&int[..n]);
            return;
        }
        tag(self.out, 9, LEN);
        varint(self.out, (len_field(k) + len_field(n)) as u64);
        bytes_field(self.out, 1, key.as_bytes());
        tag(self.out, 2, LEN);
        varint(self.out, n as u64);
        self.out.extend_from_slice(&int[..n]);
    }

    /// Marks the operation failed: `error.type` is `kind` and the status ERROR.
    pub fn fail(&mut self, kind: &str) {
        self.str("error.type", kind);
        self.failed = true;
    }

    /// Marks the operation failed with a status or error code as its `error.type`.
    pub fn fail_code(&mut self, code: i64) {
        self.decimal("error.type", code);
        self.failed = true;
    }

    /// Ends the span at `end` (Unix nanoseconds; never before its start).
    pub fn finish(self, end: u64) {
        let out = self.out;
        // status: code ERROR (2) for a failure, an unset status an empty message; then the
        // flags (field 16, two-byte tag): sampled, the parent's remoteness known (0x101).
        const FLAGS: [u8; 6] = [16 << 3 | FIXED32, 1, 1, 1, 0, 0];
        match self.failed {
            true => out.extend_from_slice(&[15 << 3 | LEN, 2, 3 << 3 | VARINT, 2]),
            false => out.extend_from_slice(&[15 << 3 | LEN, 0]),
        }
        out.extend_from_slice(&FLAGS);
        out[self.end_at..self.end_at + 8].copy_from_slice(&end.max(self.start).to_le_bytes());
        let body = out.len() - (self.at + 3);
        let slot = self.at + 1;
        match body {
            0..=0x7f => {
                out[slot] = body as u8;
                out.copy_within(slot + 2.., slot + 1);
                out.pop();
            }
            0x80..=0x3fff => {
                out[slot] = (body as u8) | 0x80;
                out[slot + 1] = (body >> 7) as u8;
            }
            _ => {
                // Not reached with bounded attributes; correct anyway.
                let mut len = Vec::with_capacity(4);
                varint(&mut len, body as u64);
                out.splice(slot..slot + 2, len);
            }
        }
    }
}

/// The start of the `ExportTraceServiceRequest` carrying `spans_len` bytes of spans (framed by
/// [`SpanWriter`]), into `out` (cleared first): the request is these bytes, then the spans.
pub fn envelope(service: &str, spans_len: usize, out: &mut Vec<u8>) {
    let version = env!("CARGO_PKG_VERSION");
    let mut scope = Vec::with_capacity(32);
    bytes_field(&mut scope, 1, b"portcullis");
    bytes_field(&mut scope, 2, version.as_bytes());
    let scope_spans_len = len_field(scope.len()) + spans_len;
    // Resource: service.name and service.version.
    let mut resource = Vec::with_capacity(64);
    key_str(&mut resource, 1, "service.name", cut(service).as_bytes());
    key_str(&mut resource, 1, "service.version", version.as_bytes());
    let resource_spans_len = len_field(resource.len()) + len_field(scope_spans_len);
    out.clear();
    out.reserve(len_field(resource_spans_len));
    tag(out, 1, LEN);
    varint(out, resource_spans_len as u64);
    bytes_field(out, 1, &resource);
    tag(out, 2, LEN);
    varint(out, scope_spans_len as u64);
    bytes_field(out, 1, &scope);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use prost::Message;

    fn write(spans: &mut Spans, kind: Kind, parent: bool, error: Option<&str>, long: usize) {
        let head = Head {
            trace: [7; 16],
            id: [9; 8],
            parent: parent.then_some([3; 8]),
            kind,
            start: 1_765_000_000_123_456_789,
        };
        let mut w = SpanWriter::begin(&mut spans.bytes, &head, [b"tools/call ", b"echo", b""]);
        w.str("mcp.method.name", "tools/call");
        w.int("http.response.status_code", 200);
        w.int("big", -5);
        w.str("long", &"é".repeat(long));
        if let Some(e) = error {
            w.fail(e);
        }
        w.finish(1_765_000_000_223_456_789);
        spans.count += 1;
    }

    #[test]
    fn prost_reads_the_request_and_writes_the_same_bytes() {
        let mut spans = Spans::default();
        write(&mut spans, Kind::Server, true, None, 300); // over 128 bytes: a two-byte length
        write(&mut spans, Kind::Client, false, Some("502"), 0); // under 128: the slot shrinks
        write(&mut spans, Kind::Server, false, None, 20);
        let mut out = Vec::new();
        envelope("svc", spans.bytes.len(), &mut out);
        out.extend_from_slice(&spans.bytes);
        let req = ExportTraceServiceRequest::decode(&out[..]).unwrap();
        assert_eq!(out, req.encode_to_vec(), "byte for byte what prost writes");
        let rs = &req.resource_spans[0];
        let service = &rs.resource.as_ref().unwrap().attributes[0];
        assert_eq!(service.key, "service.name");
        assert_eq!(service.value.as_ref().unwrap().value, Some(Value::StringValue("svc".into())));
        let got = &rs.scope_spans[0].spans;
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].name, "tools/call echo");
        assert_eq!(got[0].parent_span_id, vec![3; 8]);
        assert_eq!(got[0].kind, 2);
        assert_eq!(got[0].end_time_unix_nano - got[0].start_time_unix_nano, 100_000_000);
        let long = got[0].attributes.iter().find(|a| a.key == "long").unwrap();
        let Some(Value::StringValue(v)) = &long.value.as_ref().unwrap().value else { panic!() };
        assert_eq!(v.len(), MAX_TEXT, "cut at a character boundary: {v}");
        let big = got[0].attributes.iter().find(|a| a.key == "big").unwrap();
        assert_eq!(big.value.as_ref().unwrap().value, Some(Value::IntValue(-5)));
        assert!(got[1].parent_span_id.is_empty());
        assert_eq!((got[1].kind, got[1].status.as_ref().unwrap().code), (3, 2));
        assert!(got[1].attributes.iter().any(|a| a.key == "error.type"));
        assert_eq!(got[2].status.as_ref().unwrap().code, 0);
        assert_eq!(got[2].flags, 0x101);
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(u64::MAX), 10);
    }

    #[test]
    fn decimals_and_static_attributes() {
        let mut buf = [0u8; 20];
        for v in [0, 7, -32602, 200, i64::MIN, i64::MAX] {
            assert_eq!(decimal(v, &mut buf), v.to_string().as_bytes());
        }
        let (mut a, mut b) = (Spans::default(), Spans::default());
        let head = Head { trace: [1; 16], id: [2; 8], parent: None, kind: Kind::Client, start: 5 };
        let mut w = SpanWriter::begin(&mut a.bytes, &head, [b"x", b"", b""]);
        w.kv(static_kv!("http.request.method", "POST"));
        w.finish(6);
        let mut w = SpanWriter::begin(&mut b.bytes, &head, [b"x", b"", b""]);
        w.str("http.request.method", "POST");
        w.finish(6);
        assert_eq!(a.bytes, b.bytes);
    }

    #[test]
    fn text_is_bounded_valid_utf8() {
        assert_eq!(&*text(b"tools/call"), b"tools/call");
        let long = "é".repeat(200); // 400 bytes: MAX_TEXT falls after a whole character
        assert_eq!(text(long.as_bytes()).len(), MAX_TEXT);
        let odd = format!("a{long}"); // here it falls inside one: the cut backs off
        assert_eq!(text(odd.as_bytes()).len(), MAX_TEXT - 1);
        assert!(matches!(text(odd.as_bytes()), Cow::Borrowed(_)));
        assert_eq!(&*text(b"a\xffb"), "a\u{fffd}b".as_bytes());
        assert_eq!(cut(&odd).len(), MAX_TEXT - 1);
    }
}
