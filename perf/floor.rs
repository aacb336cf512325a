//! The floor: the smallest monoio HTTP/1.1 responder that still does what any server must (parse
//! the head with httparse, read the Content-Length body, keep the connection alive) and answers
//! every request with the same canned MCP `tools/call` result. No routing, no JSON, no checks.
//! The gateway's figures are reported as a ratio to this one on the same placement.
//!
//! `cargo run --release --example floor -- 127.0.0.1:18081`
#![allow(clippy::unwrap_used)] // benchmark tool: a failure to bind is fatal anyway

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{ListenerOpts, TcpListener, TcpStream};

const BODY: &[u8] = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"Hello, Ada!"}],"isError":false,"resultType":"complete"}}"#;

async fn serve(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        BODY.len()
    )
    .into_bytes();
    response.extend_from_slice(BODY);
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
            buf.drain(..n + cl);
            out.extend_from_slice(&response);
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
