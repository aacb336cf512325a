//! Entry points for the cargo-fuzz targets in `fuzz/` and for the corpus replay test: each takes
//! arbitrary bytes and drives one parser the way the pipeline does. They must never panic; any
//! panic is a bug the fuzzer reports.

use crate::http::body::Chunked;
use crate::http::head::{self, Framing, Head, Parsed};
use crate::mcp::envelope;
use crate::mcp::json::{self, Decoder};
use crate::rest::template::{Context, Template};

/// Request head parsing plus body framing over `data`, as the connection loop would see it
/// (head first, then the body by its framing), with small limits so limit paths are reached.
pub fn http_request(data: &[u8]) {
    let limits = crate::http::Limits { max_header_bytes: 4096, max_headers: 32, max_body_bytes: 8192 };
    let mut h = Head::default();
    let Ok(Parsed::Complete) = head::parse(data, &limits, &mut h) else { return };
    // Every span must lie inside the buffer.
    for (n, v) in &h.headers {
        assert!(n.end as usize <= data.len() && v.end as usize <= data.len());
    }
    let rest = &data[h.len..];
    match h.framing {
        Framing::Chunked => {
            let mut out = Vec::new();
            let mut dec = Chunked::new(limits.max_body_bytes, limits.max_header_bytes);
            // Feed in two pieces to exercise resumption.
            let mid = rest.len() / 2;
            if let Ok(n) = dec.decode(&rest[..mid], &mut out) {
                if n == mid {
                    let _ = dec.decode(&rest[mid..], &mut out);
                }
            }
            assert!(out.len() <= limits.max_body_bytes);
        }
        Framing::Length(_) | Framing::None => {}
    }
}

/// JSON decoding, envelope extraction, re-serialisation and template rendering over `data`.
pub fn jsonrpc_envelope(data: &[u8]) {
    thread_local! {
        static DECODER: std::cell::RefCell<Decoder> = std::cell::RefCell::new(Decoder::default());
    }
    let Ok(template) = Template::compile("{{.args.a}} {{.args.b.c}} {{.config.x}}") else { return };
    let config = serde_json::json!({"x": "y"});
    DECODER.with(|d| {
        let _ = d.borrow_mut().with_tape(data, |tape| {
            if envelope::is_batch(tape) {
                for el in json::elements(tape) {
                    let _ = envelope::decode(el);
                }
            }
            if let Ok(env) = envelope::decode(tape) {
                let mut out = Vec::new();
                json::write_value(&mut out, tape);
                template
                    .render(&mut out, &Context { args: env.arguments, config: Some(&config), data: None });
            }
        });
    });
}
