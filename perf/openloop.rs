//! An open-loop load generator for latency: requests are *scheduled* at a fixed rate, whatever
//! the target answers, and each latency is measured from the request's intended send time (so a
//! slow answer that delays the next request on its connection shows up in the next request's
//! latency too: no coordinated omission). One keep-alive connection per thread; request `i` goes
//! on connection `i % CONNS`, due at `start + i / RATE`. Loopback only.
//!
//! Usage: openloop HOST:PORT RATE SECONDS CONNS
//! Sends perf/wrk/tools_call.lua's request (a 2026-07-28 `tools/call` of `hello`), with
//! `Authorization: $MCP_AUTH` when set. Prints one line:
//! `OPENLOOP rate=R sent=N errors=E p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=..`.
#![allow(clippy::unwrap_used)] // a benchmark tool
#![allow(clippy::disallowed_methods)] // its own threads, not the data path

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello","arguments":{"who":"Ada"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

fn request() -> Vec<u8> {
    let auth = std::env::var("MCP_AUTH").map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\n\
Mcp-Name: hello\r\n{auth}Content-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
    .into_bytes()
}

/// How a response ended: a 200 or not, and whether the server closes the connection after it.
struct Answered {
    ok: bool,
    close: bool,
}

/// Reads one Content-Length framed response.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Answered> {
    buf.clear();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let close = head.lines().any(|l| {
                    l.split_once(':').is_some_and(|(n, v)| {
                        n.eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close")
                    })
                });
                return Ok(Answered { ok: head.starts_with("HTTP/1.1 200"), close });
            }
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: openloop HOST:PORT RATE SECONDS CONNS");
        std::process::exit(2);
    }
    let (addr, rate, secs, conns): (String, f64, f64, usize) =
        (args[1].clone(), args[2].parse().unwrap(), args[3].parse().unwrap(), args[4].parse().unwrap());
    let total = (rate * secs) as u64;
    let req = request();
    let start = Instant::now() + Duration::from_millis(200);
    let threads: Vec<_> = (0..conns)
        .map(|k| {
            let (addr, req) = (addr.clone(), req.clone());
            std::thread::spawn(move || {
                let connect = || {
                    let s = TcpStream::connect(&addr).unwrap();
                    s.set_nodelay(true).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    s
                };
                let mut s = connect();
                let (mut lat, mut errors, mut buf) = (Vec::new(), 0u64, Vec::with_capacity(4096));
                let mut i = k as u64;
                while i < total {
                    let due = start + Duration::from_secs_f64(i as f64 / rate);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    // A keep-alive connection the server closed meanwhile (nginx after
                    // `keepalive_requests`) is reopened and the request sent again, as HTTP
                    // clients do; only a failure on a fresh connection counts.
                    let mut answer = s.write_all(&req).and_then(|()| read_response(&mut s, &mut buf));
                    if answer.is_err() {
                        s = connect();
                        answer = s.write_all(&req).and_then(|()| read_response(&mut s, &mut buf));
                    }
                    match answer {
                        Ok(a) => {
                            errors += u64::from(!a.ok);
                            if a.close {
                                s = connect();
                            }
                        }
                        Err(_) => {
                            errors += 1;
                            s = connect();
                        }
                    }
                    lat.push(due.elapsed().as_micros() as u64);
                    i += conns as u64;
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(total as usize);
    let mut errors = 0;
    for t in threads {
        let (lat, e) = t.join().unwrap();
        all.extend(lat);
        errors += e;
    }
    all.sort_unstable();
    println!(
        "OPENLOOP rate={rate} sent={} errors={errors} p50_us={} p90_us={} p99_us={} p999_us={} max_us={}",
        all.len(),
        percentile(&all, 0.50),
        percentile(&all, 0.90),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
        all.last().copied().unwrap_or(0)
    );
}
