//! The OTLP traces request on the wire: an `ExportTraceServiceRequest` (protobuf) written in
//! one pass, each span sized once. The message types of `opentelemetry-proto` define it; this
//! writer produces the same bytes prost would (tests decode it with those types and compare)
//! without prost's re-sizing of every nested message at each of its six levels, which cost the
//! exporter ~10k instructions per span.

use crate::proxy::spans::{Kind, Span, Value};

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

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

/// `AnyValue`'s encoded length.
fn any_len(v: &Value) -> usize {
    match v {
        Value::Str(s) => len_field(s.len()),
        Value::Int(i) => 1 + varint_len(*i as u64),
    }
}

/// A `KeyValue` (key, AnyValue) as field `field`.
fn key_value(out: &mut Vec<u8>, field: u32, key: &str, v: &Value) {
    let any = any_len(v);
    let body = len_field(key.len()) + len_field(any);
    tag(out, field, LEN);
    varint(out, body as u64);
    bytes_field(out, 1, key.as_bytes());
    tag(out, 2, LEN);
    varint(out, any as u64);
    match v {
        Value::Str(s) => bytes_field(out, 1, s.as_bytes()),
        Value::Int(i) => {
            tag(out, 3, VARINT);
            varint(out, *i as u64);
        }
    }
}

/// One `Span` message's fields (without its own tag and length).
fn span_body(out: &mut Vec<u8>, s: &Span) {
    bytes_field(out, 1, &s.trace);
    bytes_field(out, 2, &s.id);
    if let Some(p) = &s.parent {
        bytes_field(out, 4, p);
    }
    if !s.name.is_empty() {
        bytes_field(out, 5, s.name.as_bytes());
    }
    tag(out, 6, VARINT);
    varint(
        out,
        match s.kind {
            Kind::Server => 2,
            Kind::Client => 3,
        },
    );
    tag(out, 7, FIXED64);
    out.extend_from_slice(&s.start.to_le_bytes());
    tag(out, 8, FIXED64);
    out.extend_from_slice(&s.end.max(s.start).to_le_bytes());
    for (k, v) in &s.attributes {
        key_value(out, 9, k, v);
    }
    if let Some(e) = &s.error {
        key_value(out, 9, "error.type", &Value::Str(e.clone()));
    }
    // status: code ERROR (2) for a failure; an unset status is an empty message.
    tag(out, 15, LEN);
    if s.error.is_some() {
        varint(out, 2);
        tag(out, 3, VARINT);
        varint(out, 2);
    } else {
        varint(out, 0);
    }
    tag(out, 16, FIXED32);
    out.extend_from_slice(&0x101u32.to_le_bytes()); // sampled; the parent's remoteness known
}

/// The request for `batch` into `out` (cleared first); `scratch` is reused between calls.
pub fn encode(service: &str, batch: &[Span], out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
    // ScopeSpans: the scope, then every span (each sized once, into `scratch`).
    let estimate: usize = batch.iter().map(|s| 128 + s.name.len() + 48 * s.attributes.len()).sum();
    let mut spans = Vec::with_capacity(estimate);
    for s in batch {
        scratch.clear();
        scratch.reserve(128 + s.name.len() + 48 * s.attributes.len());
        span_body(scratch, s);
        bytes_field(&mut spans, 2, scratch);
    }
    let version = env!("CARGO_PKG_VERSION");
    let mut scope = Vec::with_capacity(32);
    bytes_field(&mut scope, 1, b"portcullis");
    bytes_field(&mut scope, 2, version.as_bytes());
    let scope_spans_len = len_field(scope.len()) + spans.len();
    // Resource: service.name and service.version.
    let mut resource = Vec::with_capacity(64);
    key_value(&mut resource, 1, "service.name", &Value::Str(service.into()));
    key_value(&mut resource, 1, "service.version", &Value::Str(version.into()));
    let resource_spans_len = len_field(resource.len()) + len_field(scope_spans_len);
    out.clear();
    out.reserve(len_field(resource_spans_len));
    tag(out, 1, LEN);
    varint(out, resource_spans_len as u64);
    bytes_field(out, 1, &resource);
    tag(out, 2, LEN);
    varint(out, scope_spans_len as u64);
    bytes_field(out, 1, &scope);
    out.extend_from_slice(&spans);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    fn span(kind: Kind, error: Option<&str>, parent: bool) -> Span {
        Span {
            trace: [7; 16],
            id: [9; 8],
            parent: parent.then_some([3; 8]),
            kind,
            name: "tools/call echo".into(),
            start: 1_765_000_000_123_456_789,
            end: 1_765_000_000_223_456_789,
            attributes: vec![
                ("mcp.method.name", Value::Str("tools/call".into())),
                ("http.response.status_code", Value::Int(200)),
                ("big", Value::Int(-5)),
                ("long", Value::Str("x".repeat(300))),
            ],
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn the_same_message_as_prost_writes() {
        let settings = crate::config::snapshot::Tracing {
            endpoint: crate::upstream::target::Target::parse("http://127.0.0.1:9/v1/traces", || {
                Err("no".into())
            })
            .unwrap(),
            headers: Vec::new(),
            sampling: 1.0,
            service_name: "svc".into(),
        };
        let batch = vec![
            span(Kind::Server, None, true),
            span(Kind::Client, Some("502"), false),
            span(Kind::Server, None, false),
        ];
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        encode("svc", &batch, &mut out, &mut scratch);
        let ours = ExportTraceServiceRequest::decode(&out[..]).unwrap();
        let reference = super::super::otlp::encode(&settings, batch);
        assert_eq!(ours, reference);
        assert_eq!(out, reference.encode_to_vec(), "byte for byte");
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(u64::MAX), 10);
    }
}
