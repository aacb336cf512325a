//! Micro-benchmarks of the two parsers on the hot path: the HTTP request head (a 1 KB MCP head
//! with a bearer token) and the JSON-RPC envelope of a ~200 B `tools/call`, the latter side by
//! side with a `serde_json::Value` parse of the same bytes (the figure to beat: <= 0.2x).
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)] // fixed benchmark inputs: a failure is a broken bench, not a crash

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use portcullis::http::head::{self, Head};
use portcullis::mcp::envelope;
use portcullis::mcp::json::Decoder;

/// A realistic 1 KB head: what the Python and TypeScript SDKs send, plus a JWT bearer token.
pub fn mcp_head() -> Vec<u8> {
    let token = format!("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.{}.{}", "e".repeat(420), "s".repeat(342));
    format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:8080\r\naccept: application/json, text/event-stream\r\n\
content-type: application/json\r\nmcp-protocol-version: 2025-11-25\r\n\
mcp-session-id: AQllcGhlbWVyYWzlMxpiOgPDdUmJ9NBHtEneb0GMdv6kLTE0kh8exNaBu8FHeB7wIAmyr\r\n\
authorization: Bearer {token}\r\nuser-agent: python-httpx/0.28.1\r\naccept-encoding: gzip, deflate\r\n\
connection: keep-alive\r\ncontent-length: 178\r\n\r\n"
    )
    .into_bytes()
}

/// A 200 B tools/call body.
pub const TOOLS_CALL: &[u8] = br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"get-forecast","arguments":{"city":"Amsterdam","days":3,"units":"metric"},"_meta":{"progressToken":"tok-7f3a9c1e"}}}"#;

fn heads(c: &mut Criterion) {
    let bytes = mcp_head();
    let limits = portcullis::http::Limits::default();
    let mut h = Head::default();
    c.bench_function(&format!("head_parse_{}B", bytes.len()), |b| {
        b.iter(|| {
            head::parse(black_box(&bytes), &limits, &mut h).unwrap();
            black_box(h.authorization);
        })
    });
}

fn envelopes(c: &mut Criterion) {
    let mut d = Decoder::default();
    c.bench_function(&format!("envelope_simd_tape_{}B", TOOLS_CALL.len()), |b| {
        b.iter(|| {
            d.with_tape(black_box(TOOLS_CALL), |t| {
                let e = envelope::decode(t).unwrap();
                black_box((e.id, e.method, e.name, e.arguments.map(|a| a.len())));
            })
            .unwrap()
        })
    });
    c.bench_function(&format!("envelope_serde_json_value_{}B", TOOLS_CALL.len()), |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(black_box(TOOLS_CALL)).unwrap();
            black_box((&v["id"], &v["method"], &v["params"]["name"]));
        })
    });
}

criterion_group!(benches, heads, envelopes);
criterion_main!(benches);
