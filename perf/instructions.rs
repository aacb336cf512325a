//! Runs one parser N times over a fixed input, for instruction counting under callgrind:
//! `instructions head|envelope|serde N`. perf/instructions.sh runs N and 3N and reports
//! (Ir(3N) - Ir(N)) / 2N, which cancels start-up cost.
#![allow(clippy::unwrap_used)] // fixed inputs: a failure is a broken harness

#[path = "fixtures.rs"]
mod fixtures;

use std::hint::black_box;

use portcullis::http::head::{self, Head};
use portcullis::mcp::envelope;
use portcullis::mcp::json::Decoder;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let what = std::env::args().nth(1).unwrap_or_default();
    let n: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(1000);
    match what.as_str() {
        "head" => {
            let bytes = fixtures::mcp_head();
            let limits = portcullis::http::Limits::default();
            let mut h = Head::default();
            for _ in 0..n {
                head::parse(black_box(&bytes), &limits, &mut h).unwrap();
                black_box((h.authorization, h.session_id, h.framing));
            }
        }
        "envelope" => {
            let mut d = Decoder::default();
            for _ in 0..n {
                d.with_tape(black_box(fixtures::TOOLS_CALL), |t| {
                    let e = envelope::decode(t).unwrap();
                    black_box((e.id, e.method, e.name, e.arguments.map(<[_]>::len)));
                })
                .unwrap();
            }
        }
        "serde" => {
            for _ in 0..n {
                let v: serde_json::Value = serde_json::from_slice(black_box(fixtures::TOOLS_CALL)).unwrap();
                black_box(&v["params"]["name"]);
            }
        }
        _ => eprintln!("usage: instructions head|envelope|serde N"),
    }
}
