//! Issue budget: building a typical REST tool request - a URL with a path placeholder and a
//! query value, 2 templated headers, a JSON body from 5 arguments, a bearer credential - from
//! the client's arguments: normalization (defaults, coercion) plus rendering, into a reused
//! output buffer. `tests/alloc.rs` checks the same call allocates nothing.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)] // fixed benchmark inputs: a failure is a broken bench, not a crash

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use portcullis::config::compile::compile_str;
use portcullis::config::snapshot::ToolKind;
use portcullis::mcp::json::Decoder;
use portcullis::rest::args::ArgScratch;
use portcullis::rest::tool::{build, Incoming};

/// The typical tool of the budget.
pub const CONFIG: &str = include_str!("data/rest_typical.yaml");

/// The client's arguments of the typical call.
pub const ARGS: &[u8] =
    br#"{"customer":"c-42","item":"widget","quantity":"3","priority":"true","note":"leave at the door","price":9.5,"tags":["a",1]}"#;

fn render(c: &mut Criterion) {
    let snap = compile_str(CONFIG, &|_| None).unwrap();
    let server = &snap.servers[0];
    let ToolKind::Rest(tool) = &server.tools[0].kind else { panic!("a REST tool") };
    let mut decoder = Decoder::default();
    let mut scratch = ArgScratch::default();
    let (mut tmp, mut out) = (Vec::new(), Vec::new());
    decoder
        .with_tape(ARGS, |args| {
            c.bench_function("rest/build typical request (url + 2 headers + JSON body of 5 args)", |b| {
                b.iter(|| {
                    scratch
                        .with_normalized(&tool.args, Some(args), |norm| {
                            build(tool, norm, &server.config, &Incoming::default(), &mut tmp, &mut out)
                        })
                        .unwrap()
                        .unwrap();
                    black_box(out.len())
                })
            });
        })
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out));
}

criterion_group!(benches, render);
criterion_main!(benches);
