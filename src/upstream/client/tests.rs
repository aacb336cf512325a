//! The client against in-process backends written with std sockets: framing, reuse, the
//! keep-alive race retry, faults.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;

/// A backend answering every request on a connection with `reply(n)` (n = request number on that
/// connection), counting accepted connections; closes after `per_conn` requests.
fn backend(per_conn: usize, reply: fn(usize) -> Vec<u8>) -> (Target, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::Builder::new()
        .spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let mut buf = Vec::new();
                for n in 0..per_conn {
                    // Read one request: head, then Content-Length body.
                    loop {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                            let cl: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length: "))
                                .map_or(0, |v| v.trim().parse().unwrap());
                            if buf.len() >= end + 4 + cl {
                                buf.drain(..end + 4 + cl);
                                break;
                            }
                        }
                        let mut b = [0u8; 4096];
                        match s.read(&mut b) {
                            Ok(0) | Err(_) => return,
                            Ok(k) => buf.extend_from_slice(&b[..k]),
                        }
                    }
                    if s.write_all(&reply(n)).is_err() {
                        break;
                    }
                }
            }
        })
        .unwrap();
    (Target::parse(&format!("http://{addr}/mcp"), no_tls).unwrap(), accepted)
}

fn no_tls() -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    Err("plain http in these tests".into())
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::FusionDriver>::new().enable_timer().build().unwrap().block_on(f)
}

const LIMITS: Limits =
    Limits { connect: Duration::from_secs(1), response: Duration::from_millis(500), max_body: 1 << 20 };

fn request(t: &Target) -> Vec<u8> {
    format!("POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: 2\r\n\r\n{{}}", t.path, t.authority).into_bytes()
}

#[test]
fn content_length_and_reuse() {
    let (t, accepted) = backend(1000, |_| {
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}".to_vec()
    });
    run(async {
        let pool = RefCell::new(Pool::default());
        for _ in 0..50 {
            let r = exchange(&pool, &t, request(&t), LIMITS).await.unwrap();
            assert_eq!((r.status, &r.body[..]), (200, &b"{\"a\":1}"[..]));
            assert_eq!(r.header("content-type"), Some(&b"application/json"[..]));
        }
        assert_eq!(pool.borrow().connects, 1);
        assert_eq!(pool.borrow().reuses, 49);
    });
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn chunked_and_sse_bodies() {
    let (t, _) = backend(10, |_| {
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n\
7\r\nevent: \r\n18\r\nmessage\ndata: {\"id\":1}\n\n\r\n0\r\n\r\n"
            .to_vec()
    });
    run(async {
        let pool = RefCell::new(Pool::default());
        let r = exchange(&pool, &t, request(&t), LIMITS).await.unwrap();
        assert_eq!(r.body, b"event: message\ndata: {\"id\":1}\n\n");
        assert_eq!(pool.borrow().idle(t.pool_key), 1, "chunked response leaves the connection reusable");
    });
}

#[test]
fn close_delimited_body_is_not_pooled() {
    let (t, _) = backend(1, |_| b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-eof".to_vec());
    run(async {
        let pool = RefCell::new(Pool::default());
        let r = exchange(&pool, &t, request(&t), LIMITS).await.unwrap();
        assert_eq!(r.body, b"until-eof");
        assert_eq!(pool.borrow().idle(t.pool_key), 0);
    });
}

#[test]
fn stale_pooled_connection_is_retried_once() {
    // The backend closes every connection after one response, while claiming keep-alive: the
    // second exchange finds its pooled connection dead and must succeed on a fresh one.
    let (t, accepted) = backend(1, |_| b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec());
    run(async {
        let pool = RefCell::new(Pool::default());
        for _ in 0..3 {
            let r = exchange(&pool, &t, request(&t), LIMITS).await.unwrap();
            assert_eq!(r.body, b"ok");
            monoio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[test]
fn faults() {
    run(async {
        let pool = RefCell::new(Pool::default());
        // Refused: nothing listens on a port we just released.
        let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let t = Target::parse(&format!("http://{free}/"), no_tls).unwrap();
        assert_eq!(exchange(&pool, &t, request(&t), LIMITS).await.unwrap_err(), UpstreamError::Connect);
        // Garbage.
        let (t, _) = backend(1, |_| b"SSH-2.0-OpenSSH\r\n\r\n".to_vec());
        assert!(matches!(exchange(&pool, &t, request(&t), LIMITS).await, Err(UpstreamError::Invalid(_))));
        // Silent: accepts, reads, never answers -> timeout within the response limit.
        let (t, _) = backend(1, |_| Vec::new());
        let start = Instant::now();
        let e = exchange(&pool, &t, request(&t), LIMITS).await.unwrap_err();
        assert!(matches!(e, UpstreamError::Timeout | UpstreamError::Closed), "{e:?}");
        assert!(start.elapsed() < Duration::from_secs(3));
        // Oversized.
        let (t, _) = backend(1, |_| b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n".to_vec());
        assert!(matches!(exchange(&pool, &t, request(&t), LIMITS).await, Err(UpstreamError::Invalid(_))));
    });
}

#[test]
fn kept_headers_first_of_each_any_case_long_values_too() {
    let long = "s".repeat(300);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMCP-Session-Id: {long}\r\n\
         content-type: text/plain\r\nX-Other: 1\r\nContent-Length: 0\r\n\r\n"
    );
    let mut kept = Kept::default();
    let (status, len, framing, keep) = parse_head(head.as_bytes(), &mut kept).unwrap().unwrap();
    assert_eq!((status, len, framing, keep), (200, head.len(), BodyFraming::Length(0), true));
    assert_eq!(kept.get("content-type"), Some(&b"application/json"[..]));
    assert_eq!(kept.get("mcp-session-id"), Some(long.as_bytes()));
    assert_eq!(kept.get("x-other"), None);
    // The same (reused) headers: nothing of the previous head survives.
    let short = "HTTP/1.1 204 No Content\r\nmcp-session-id: abc\r\nConnection: close\r\n\r\n";
    let (_, _, _, keep) = parse_head(short.as_bytes(), &mut kept).unwrap().unwrap();
    assert_eq!(
        (kept.get("mcp-session-id"), kept.get("content-type"), keep),
        (Some(&b"abc"[..]), None, false)
    );
}
