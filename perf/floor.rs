//! The floor: the smallest monoio HTTP/1.1 responder that still does what any server must (parse
//! the head with httparse, read the Content-Length body, keep the connection alive) and the least
//! an MCP server must (echo the request id; answer `initialize` and `tools/list`, one tool `hello`;
//! 202 for notifications). Every other request gets the same canned `tools/call` result. No
//! routing, no JSON parser, no checks.
//! It is both the throughput floor (perf/run.sh) and the backend of the proxy bench (perf/proxy.sh).
//! The gateway's figures are reported as a ratio to this one on the same placement.
//!
//! `cargo run --release --example floor -- 127.0.0.1:18081`
#![allow(clippy::unwrap_used)] // benchmark tool: a failure to bind is fatal anyway

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{ListenerOpts, TcpListener, TcpStream};

const RESULT: &[u8] = br#","result":{"content":[{"type":"text","text":"Hello, Ada!"}],"isError":false,"resultType":"complete"}}"#;
const TOOLS: &[u8] = br#","result":{"tools":[{"name":"hello","description":"Greets someone.","inputSchema":{"type":"object","properties":{"who":{"type":"string"}},"required":["who"]}}]}}"#;
const INIT: &[u8] = br#","result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"floor","version":"1"}}}"#;

/// The raw JSON of the request id: the bytes after `"id":` up to the next `,` or `}`.
fn raw_id(body: &[u8]) -> Option<&[u8]> {
    let at = body.windows(5).position(|w| w == b"\"id\":")? + 5;
    let len = body[at..].iter().position(|&b| b == b',' || b == b'}')?;
    Some(&body[at..at + len])
}

fn respond(out: &mut Vec<u8>, body: &[u8]) {
    let Some(id) = raw_id(body) else {
        out.extend_from_slice(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n");
        return;
    };
    let result = if body.windows(12).any(|w| w == b"\"initialize\"") {
        INIT
    } else if body.windows(12).any(|w| w == b"\"tools/list\"") {
        TOOLS
    } else {
        RESULT
    };
    let len = br#"{"jsonrpc":"2.0","id":"#.len() + id.len() + result.len();
    out.extend_from_slice(
        format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n")
            .as_bytes(),
    );
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id);
    out.extend_from_slice(result);
}

async fn serve(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    loop {
        // Parse as many complete requests as are buffered (pipelining), answer them in one write.
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            let Ok(httparse::Status::Complete(n)) = req.parse(&buf) else { break };
            let cl: usize = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .unwrap_or(0);
            if buf.len() < n + cl {
                break;
            }
            respond(&mut out, &buf[n..n + cl]);
            buf.drain(..n + cl);
        }
        if !out.is_empty() {
            let (r, o) = s.write_all(out).await;
            out = o;
            out.clear();
            if r.is_err() {
                return;
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(4096);
        }
        let len = buf.len();
        let (r, b) = s.read(buf.slice_mut(len..)).await;
        buf = b.into_inner();
        match r {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18081".into());
    let threads: usize = std::env::var("FLOOR_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let addr = addr.clone();
            std::thread::Builder::new()
                .spawn(move || {
                    let mut rt =
                        monoio::RuntimeBuilder::<monoio::FusionDriver>::new().enable_timer().build().unwrap();
                    rt.block_on(async move {
                        let l = TcpListener::bind_with_config(&addr, &ListenerOpts::new().reuse_port(true))
                            .unwrap();
                        loop {
                            if let Ok((s, _)) = l.accept().await {
                                monoio::spawn(serve(s));
                            }
                        }
                    })
                })
                .unwrap()
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
}
