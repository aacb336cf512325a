//! GET stream fan-in end to end: fixture MCP backends (std sockets, sessions) whose
//! server-to-client streams the test drives event by event, behind the gateway started
//! in-process, read by a raw HTTP client.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_types)] // fixture bookkeeping across test threads, not the data path

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// A backend with sessions (`<tag>-sess`) whose GET streams the test feeds.
struct Backend {
    addr: SocketAddr,
    /// Heads of the GET requests it received.
    gets: Arc<Mutex<Vec<String>>>,
    /// One sender per open GET stream: each string is written as one SSE event; dropping the
    /// sender ends the stream.
    streams: Arc<Mutex<Vec<Sender<String>>>>,
    /// JSON-RPC responses (client answers) it received by POST.
    answers: Arc<Mutex<Vec<Value>>>,
    /// Every other message it received by POST.
    requests: Arc<Mutex<Vec<Value>>>,
    /// GET streams whose writes failed: the gateway went away.
    broken: Arc<AtomicUsize>,
}

fn backend(tag: &'static str, offers_get: bool) -> Backend {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = Backend {
        addr: l.local_addr().unwrap(),
        gets: Arc::default(),
        streams: Arc::default(),
        answers: Arc::default(),
        requests: Arc::default(),
        broken: Arc::default(),
    };
    let (gets, streams, answers, requests, broken) =
        (b.gets.clone(), b.streams.clone(), b.answers.clone(), b.requests.clone(), b.broken.clone());
    std::thread::Builder::new()
        .spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let (gets, streams, answers, requests, broken) =
                    (gets.clone(), streams.clone(), answers.clone(), requests.clone(), broken.clone());
                std::thread::Builder::new()
                    .spawn(move || {
                        let mut buf = Vec::new();
                        while let Some((head, body)) = common::read_request(&mut s, &mut buf) {
                            let session = head
                                .lines()
                                .find_map(|l| l.to_ascii_lowercase().strip_prefix("mcp-session-id: ").map(str::to_string))
                                .unwrap_or_default();
                            if head.starts_with("GET ") {
                                gets.lock().unwrap().push(head.clone());
                                if !offers_get {
                                    let _ = s.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
                                    continue;
                                }
                                if session != format!("{tag}-sess") {
                                    let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                                    continue;
                                }
                                let (tx, rx) = channel::<String>();
                                streams.lock().unwrap().push(tx);
                                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
                                if s.write_all(head.as_bytes()).is_err() {
                                    return;
                                }
                                while let Ok(ev) = rx.recv() {
                                    let chunk = format!("{:x}\r\n{ev}\r\n", ev.len());
                                    if s.write_all(chunk.as_bytes()).and_then(|()| s.flush()).is_err() {
                                        broken.fetch_add(1, Ordering::SeqCst);
                                        return;
                                    }
                                }
                                if s.write_all(b"0\r\n\r\n").is_err() {
                                    return;
                                }
                                continue;
                            }
                            let msg: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
                            if msg.get("method").is_some() {
                                requests.lock().unwrap().push(msg.clone());
                            }
                            let out = match msg["method"].as_str() {
                                Some("initialize") => {
                                    let r = json!({"jsonrpc":"2.0","id":msg["id"],"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{},"completions":{},"logging":{},"resources":{"subscribe":true}},"serverInfo":{"name":tag,"version":"1"}}}).to_string();
                                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: {tag}-sess\r\nContent-Length: {}\r\n\r\n{r}", r.len())
                                }
                                None => {
                                    answers.lock().unwrap().push(msg);
                                    "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_string()
                                }
                                Some(_) if msg.get("id").is_none() => {
                                    "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_string()
                                }
                                Some(_) => {
                                    let r = json!({"jsonrpc":"2.0","id":msg["id"],"result":{"tools":[]}}).to_string();
                                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{r}", r.len())
                                }
                            };
                            if s.write_all(out.as_bytes()).is_err() {
                                return;
                            }
                        }
                    })
                    .unwrap();
            }
        })
        .unwrap();
    b
}

impl Backend {
    /// Waits (bounded) until `n` GET streams are open, then returns their senders.
    fn open_streams(&self, n: usize) -> Vec<Sender<String>> {
        for _ in 0..200 {
            if self.streams.lock().unwrap().len() >= n {
                return self.streams.lock().unwrap().clone();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} GET stream(s) never opened", n);
    }

    /// Ends every open stream (the senders are dropped).
    fn end_streams(&self) {
        self.streams.lock().unwrap().clear();
    }
}

fn config(backends: &[(&str, SocketAddr)]) -> String {
    let mut c = String::from(
        "listen: 127.0.0.1:0\nworkers: 1\nsessions: { keys: [{ id: k1, secret: \"0123456789abcdef0123456789abcdef\" }] }\n\
servers:\n  - name: s\n    path: /mcp\n    backends:\n",
    );
    for (name, addr) in backends {
        c.push_str(&format!("      - name: {name}\n        url: http://{addr}/mcp\n"));
    }
    c.push_str("  - name: local\n    path: /local\n    tools:\n      - name: hi\n        responseTemplate: { body: hi }\n");
    c
}

fn post(addr: SocketAddr, path: &str, body: &str, sid: Option<&str>) -> common::Resp {
    let sid = sid.map(|v| format!("Mcp-Session-Id: {v}\r\n")).unwrap_or_default();
    common::send(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\n{sid}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn init(addr: SocketAddr, path: &str) -> String {
    let r = post(
        addr,
        path,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        None,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.header("mcp-session-id").unwrap().to_string()
}

/// Opens a GET stream with `extra` header lines; returns the socket.
fn get(addr: SocketAddr, path: &str, extra: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s
}

/// Reads from `s` into `got` until it contains `needle` (each read bounded by the socket's
/// timeout); panics with what arrived when the stream ends first.
fn read_until(s: &mut TcpStream, got: &mut Vec<u8>, needle: &str) -> String {
    while !String::from_utf8_lossy(got).contains(needle) {
        let mut b = [0u8; 4096];
        let n = s.read(&mut b).unwrap_or(0);
        assert!(n > 0, "stream ended before {needle:?}: {}", String::from_utf8_lossy(got));
        got.extend_from_slice(&b[..n]);
    }
    String::from_utf8_lossy(got).to_string()
}

/// A whole (short) response to a GET that is refused.
fn refused(addr: SocketAddr, path: &str, extra: &str) -> common::Resp {
    common::send(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{extra}Connection: close\r\n\r\n"),
    )
}

#[test]
fn get_fans_in_the_backends_streams_and_routes_answers_back() {
    let (b1, b2, b3) = (backend("b1", true), backend("b2", false), backend("b3", true));
    let gw = common::start(&config(&[("b1", b1.addr), ("b2", b2.addr), ("b3", b3.addr)]));
    let addr = gw.addrs()[0];
    let sid = init(addr, "/mcp");
    let mut s = get(addr, "/mcp", &format!("Mcp-Session-Id: {sid}\r\n"));
    let (s1, s3) = (b1.open_streams(1), b3.open_streams(1));
    // Each backend was asked with its own session, for SSE only, and without a body.
    for (b, tag) in [(&b1, "b1"), (&b3, "b3")] {
        let head = b.gets.lock().unwrap()[0].to_ascii_lowercase();
        assert!(head.contains(&format!("mcp-session-id: {tag}-sess")), "{head}");
        assert!(head.contains("accept: text/event-stream") && !head.contains("content-length"), "{head}");
        assert!(!head.contains("last-event-id"), "{head}");
    }
    assert_eq!(b2.gets.lock().unwrap().len(), 1, "b2 was asked and said 405");

    s1[0]
        .send("id: 41\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"from-b1\"}}\n\n".into())
        .unwrap();
    let mut got = Vec::new();
    let text = read_until(&mut s, &mut got, "from-b1");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("content-type: text/event-stream"), "{text}");
    assert!(text.contains("id: b1/41\n"), "the event id names its backend: {text}");

    s3[0].send("data: {\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"roots/list\"}\n\n".into()).unwrap();
    let text = read_until(&mut s, &mut got, "roots/list");
    let line = text.lines().find(|l| l.contains("roots/list")).unwrap();
    let ask: Value = serde_json::from_str(line.strip_prefix("data: ").unwrap()).unwrap();
    assert!(ask["id"].is_string() && ask["id"] != json!(9), "the request's id is tagged: {ask}");

    // The client's answer reaches b3 with b3's own id.
    let answer = json!({"jsonrpc":"2.0","id":ask["id"],"result":{"roots":[]}});
    assert_eq!(post(addr, "/mcp", &answer.to_string(), Some(&sid)).status, 202);
    assert_eq!(b3.answers.lock().unwrap()[0]["id"], 9);
    assert!(b1.answers.lock().unwrap().is_empty());

    // One backend ending its stream leaves the others; all ending ends the client's stream.
    b1.end_streams();
    drop(s1);
    s3[0].send("data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"data\":\"still-b3\"}}\n\n".into()).unwrap();
    read_until(&mut s, &mut got, "still-b3");
    b3.end_streams();
    drop(s3);
    let text = read_until(&mut s, &mut got, "0\r\n\r\n");
    assert!(text.ends_with("0\r\n\r\n"), "the stream ends cleanly: {text:?}");
    gw.shutdown();
}

#[test]
fn last_event_id_resumes_the_backend_it_names() {
    let (b1, b3) = (backend("b1", true), backend("b3", true));
    let gw = common::start(&config(&[("b1", b1.addr), ("b3", b3.addr)]));
    let addr = gw.addrs()[0];
    let sid = init(addr, "/mcp");
    let _s = get(addr, "/mcp", &format!("Mcp-Session-Id: {sid}\r\nLast-Event-ID: b3/77\r\n"));
    b1.open_streams(1);
    b3.open_streams(1);
    let h1 = b1.gets.lock().unwrap()[0].to_ascii_lowercase();
    let h3 = b3.gets.lock().unwrap()[0].to_ascii_lowercase();
    assert!(h3.contains("last-event-id: 77"), "{h3}");
    assert!(!h1.contains("last-event-id"), "{h1}");
    gw.shutdown();
}

#[test]
fn get_is_refused_with_the_right_status() {
    let (b1, b2) = (backend("b1", false), backend("b2", false));
    let gw = common::start(&config(&[("b1", b1.addr), ("b2", b2.addr)]));
    let addr = gw.addrs()[0];
    let sid = init(addr, "/mcp");
    let with = format!("Mcp-Session-Id: {sid}\r\n");
    // No backend offers a stream.
    let r = refused(addr, "/mcp", &with);
    assert_eq!(r.status, 405, "{}", String::from_utf8_lossy(&r.body));
    // No session, a forged session, a session of the stateless revision.
    assert_eq!(refused(addr, "/mcp", "").status, 400);
    assert_eq!(refused(addr, "/mcp", "Mcp-Session-Id: forged\r\n").status, 404);
    assert_eq!(refused(addr, "/mcp", &format!("{with}MCP-Protocol-Version: 2026-07-28\r\n")).status, 405);
    // An Accept without text/event-stream.
    let r = common::send(
        addr,
        &format!("GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n{with}Connection: close\r\n\r\n"),
    );
    assert_eq!(r.status, 406);
    // An endpoint with only local tools has no stream.
    let local = init(addr, "/local");
    assert_eq!(refused(addr, "/local", &format!("Mcp-Session-Id: {local}\r\n")).status, 405);
    gw.shutdown();
}

#[test]
fn a_client_that_leaves_releases_the_backend_streams() {
    let b1 = backend("b1", true);
    let gw = common::start(&config(&[("b1", b1.addr)]));
    let addr = gw.addrs()[0];
    let sid = init(addr, "/mcp");
    let mut s = get(addr, "/mcp", &format!("Mcp-Session-Id: {sid}\r\n"));
    let s1 = b1.open_streams(1);
    s1[0].send("data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"data\":\"one\"}}\n\n".into()).unwrap();
    read_until(&mut s, &mut Vec::new(), "\"one\"");
    drop(s);
    // Events keep coming; the gateway finds the client gone at a write and closes the backend
    // stream, which the backend sees as a failed write.
    for _ in 0..200 {
        if b1.broken.load(Ordering::SeqCst) > 0 {
            break;
        }
        let _ = s1[0].send("data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"data\":\"more\"}}\n\n".into());
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(b1.broken.load(Ordering::SeqCst), 1, "the backend stream was closed");
    gw.shutdown();
}

#[test]
fn a_draining_gateway_ends_open_streams() {
    let b1 = backend("b1", true);
    let gw = common::start(&config(&[("b1", b1.addr)]));
    let addr = gw.addrs()[0];
    let sid = init(addr, "/mcp");
    let mut s = get(addr, "/mcp", &format!("Mcp-Session-Id: {sid}\r\n"));
    let _s1 = b1.open_streams(1);
    let mut got = Vec::new();
    read_until(&mut s, &mut got, "text/event-stream");
    let stopper = std::thread::Builder::new().spawn(move || gw.shutdown()).unwrap();
    let text = read_until(&mut s, &mut got, "0\r\n\r\n");
    assert!(text.ends_with("0\r\n\r\n"), "{text:?}");
    stopper.join().unwrap();
}

#[test]
fn subscriptions_route_by_uri_and_updates_come_back_under_the_exposed_uri() {
    let (b1, b3) = (backend("b1", true), backend("b3", true));
    let gw = common::start(&config(&[("b1", b1.addr), ("b3", b3.addr)]));
    let addr = gw.addrs()[0];
    let r = post(
        addr,
        "/mcp",
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        None,
    );
    assert_eq!(
        r.json()["result"]["capabilities"]["resources"]["subscribe"],
        true,
        "a backend offers subscriptions"
    );
    let sid = r.header("mcp-session-id").unwrap().to_string();
    let r = post(
        addr,
        "/mcp",
        r#"{"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{"uri":"b3+file:///notes.txt"}}"#,
        Some(&sid),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let seen = b3.requests.lock().unwrap().clone();
    let sub = seen.iter().find(|m| m["method"] == "resources/subscribe").expect("b3 got the subscription");
    assert_eq!(sub["params"]["uri"], "file:///notes.txt", "the backend sees its own URI");
    assert!(!b1.requests.lock().unwrap().iter().any(|m| m["method"] == "resources/subscribe"));
    // An unknown prefix is the client's error.
    let r = post(
        addr,
        "/mcp",
        r#"{"jsonrpc":"2.0","id":3,"method":"resources/unsubscribe","params":{"uri":"nope+file:///x"}}"#,
        Some(&sid),
    );
    assert!(r.json()["error"].is_object(), "{}", String::from_utf8_lossy(&r.body));

    let mut s = get(addr, "/mcp", &format!("Mcp-Session-Id: {sid}\r\n"));
    let s3 = b3.open_streams(1);
    s3[0]
        .send("data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/updated\",\"params\":{\"uri\":\"file:///notes.txt\"}}\n\n".into())
        .unwrap();
    let text = read_until(&mut s, &mut Vec::new(), "resources/updated");
    assert!(text.contains(r#""uri":"b3+file:///notes.txt""#), "{text}");
    gw.shutdown();
}

#[test]
fn stateless_discovery_offers_what_the_backends_offer() {
    let b1 = backend("b1", true);
    let gw = common::start(&config(&[("b1", b1.addr)]));
    let addr = gw.addrs()[0];
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{{{meta}}}}}"#);
    let r = common::send(
        addr,
        &format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: server/discover\r\n\
Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let caps = &r.json()["result"]["capabilities"];
    assert!(caps["completions"].is_object() && caps["logging"].is_object(), "{caps}");
    assert!(r.json()["result"]["supportedVersions"].is_array());
    gw.shutdown();
}
