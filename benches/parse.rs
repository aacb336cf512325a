//! Micro-benchmarks of the two parsers on the hot path: the HTTP request head (a 1 KB MCP head
//! with a bearer token) and the JSON-RPC envelope of a ~200 B `tools/call`, the latter side by
//! side with a `serde_json::Value` parse of the same bytes (the figure to beat: <= 0.2x); and a
//! 2025 backend's answer completed for a 2026 client, by the validating scan (what the proxy
//! does) and by a simd-json tape (its fallback).
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)] // fixed benchmark inputs: a failure is a broken bench, not a crash

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use portcullis::http::head::{self, Head};
use portcullis::mcp::envelope;
use portcullis::mcp::json::Decoder;

#[path = "../perf/fixtures.rs"]
mod fixtures;
use fixtures::{mcp_head, TOOLS_CALL};

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

fn legacy_answers(c: &mut Criterion) {
    use portcullis::mcp::reply::{complete_from_tape, complete_legacy_response};
    // What perf/floor.rs answers to a tools/call, under a gateway id.
    let answer: &[u8] = br#"{"jsonrpc":"2.0","id":"g-17","result":{"content":[{"type":"text","text":"Hello, Ada!"}],"isError":false}}"#;
    let mut d = Decoder::default();
    let mut out = Vec::with_capacity(256);
    let id = Some(&b"1"[..]);
    c.bench_function(&format!("legacy_answer_scan_splice_{}B", answer.len()), |b| {
        b.iter(|| {
            out.clear();
            assert!(complete_legacy_response(&mut d, black_box(answer), ("tools/call", id), &mut out));
            black_box(out.len());
        })
    });
    c.bench_function(&format!("legacy_answer_tape_rewrite_{}B", answer.len()), |b| {
        b.iter(|| {
            out.clear();
            assert!(complete_from_tape(&mut d, black_box(answer), ("tools/call", id), &mut out));
            black_box(out.len());
        })
    });
}

criterion_group!(benches, heads, envelopes, legacy_answers);
criterion_main!(benches);
