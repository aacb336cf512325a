//! `subscriptions/listen` (2026-07-28) through the gateway: one client stream fanned in from a
//! 2026-07-28 backend's own subscription and a 2025 backend's GET stream (after
//! `resources/subscribe`), acknowledged once, filtered to what the client asked for, tagged with
//! the client's subscription id, resource URIs as the client knows them; resource URIs judged by
//! the resource rules. Both backends are written here.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_methods)] // fixture threads, not the data path
#![allow(clippy::disallowed_types)] // fixture bookkeeping across test threads, not the data path

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const JWT_KEY: &[u8] = b"listen-test-hmac-key-0123456789abcdef";

type Log = Arc<Mutex<Vec<Value>>>;

fn http(status: &str, extra: &str, body: &str) -> String {
    format!("HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())
}

fn chunk(msg: &Value) -> String {
    let e = format!("event: message\ndata: {msg}\n\n");
    format!("{:x}\r\n{e}\r\n", e.len())
}

const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

/// Serves each connection of `l` with `handle(stream, head, message)` per request.
fn serve(l: TcpListener, log: Log, handle: fn(&mut TcpStream, &str, &Value) -> Option<String>) {
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                while let Some((head, body)) = common::read_request(&mut s, &mut buf) {
                    let msg: Value = if head.starts_with("GET ") {
                        json!({"method": "GET"})
                    } else {
                        serde_json::from_slice(&body).unwrap_or(json!({}))
                    };
                    log.lock().unwrap().push(msg.clone());
                    match handle(&mut s, &head, &msg) {
                        Some(out) if s.write_all(out.as_bytes()).is_ok() => {}
                        _ => return,
                    }
                }
            });
        }
    });
}

/// A 2026-07-28 backend: its subscription acknowledges what it was asked (tools and resource
/// URIs), then sends a tools change, an update of each URI, a prompts change the client did not
/// ask for, and a progress notification, and stays open.
fn modern(s: &mut TcpStream, _: &str, msg: &Value) -> Option<String> {
    let reply = |result: Value| {
        let r = json!({"jsonrpc":"2.0","id":msg["id"],"result":result});
        Some(http("200 OK", "Content-Type: application/json\r\n", &r.to_string()))
    };
    match msg["method"].as_str().unwrap_or("") {
        "server/discover" => reply(json!({"supportedVersions":["2026-07-28"],"resultType":"complete",
            "capabilities":{"tools":{"listChanged":true},"resources":{"subscribe":true}},
            "serverInfo":{"name":"m","version":"1"}})),
        "subscriptions/listen" => {
            let asked = &msg["params"]["notifications"];
            let tag = json!({"io.modelcontextprotocol/subscriptionId": msg["id"]});
            let mut out = SSE_HEAD.to_string();
            out += &chunk(&json!({"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged",
                "params":{"notifications":asked,"_meta":tag}}));
            out += &chunk(
                &json!({"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{"_meta":tag}}),
            );
            for uri in asked["resourceSubscriptions"].as_array().into_iter().flatten() {
                out += &chunk(&json!({"jsonrpc":"2.0","method":"notifications/resources/updated",
                    "params":{"uri":uri,"_meta":tag}}));
            }
            out += &chunk(
                &json!({"jsonrpc":"2.0","method":"notifications/prompts/list_changed","params":{"_meta":tag}}),
            );
            out += &chunk(
                &json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}),
            );
            s.write_all(out.as_bytes()).ok()?;
            // Stays open until the gateway goes away.
            let mut b = [0u8; 64];
            while s.read(&mut b).is_ok_and(|n| n > 0) {}
            None
        }
        _ => reply(json!({"resultType":"complete"})),
    }
}

/// A 2025-11-25 backend with sessions: its GET stream sends a tools change, an update of a
/// subscribed URI and of one not subscribed, and a resources list change the client did not ask
/// for.
fn legacy(s: &mut TcpStream, head: &str, msg: &Value) -> Option<String> {
    if head.starts_with("GET ") {
        let mut out = SSE_HEAD.to_string();
        for m in [
            json!({"jsonrpc":"2.0","method":"notifications/tools/list_changed"}),
            json!({"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///b"}}),
            json!({"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///other"}}),
            json!({"jsonrpc":"2.0","method":"notifications/resources/list_changed"}),
        ] {
            out += &chunk(&m);
        }
        s.write_all(out.as_bytes()).ok()?;
        let mut b = [0u8; 64];
        while s.read(&mut b).is_ok_and(|n| n > 0) {}
        return None;
    }
    let ok = |result: Value| {
        let r = json!({"jsonrpc":"2.0","id":msg["id"],"result":result});
        Some(http("200 OK", "Content-Type: application/json\r\nMcp-Session-Id: old-1\r\n", &r.to_string()))
    };
    match msg["method"].as_str().unwrap_or("") {
        "initialize" => ok(json!({"protocolVersion":"2025-11-25",
            "capabilities":{"tools":{"listChanged":true},"resources":{"subscribe":true,"listChanged":true}},
            "serverInfo":{"name":"old","version":"1"}})),
        "server/discover" => Some(http("400 Bad Request", "", "")),
        _ if msg.get("id").is_none() => Some(http("202 Accepted", "", "")),
        _ => ok(json!({})),
    }
}

fn backend(handle: fn(&mut TcpStream, &str, &Value) -> Option<String>) -> (SocketAddr, Log) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let log = Log::default();
    serve(l, log.clone(), handle);
    (addr, log)
}

/// Opens `subscriptions/listen` (id 41) with `notifications` and reads SSE messages until
/// `want` arrived or 10 s passed.
fn listen(addr: SocketAddr, notifications: Value, want: usize) -> (u16, Vec<Value>) {
    let token = common::hs256_token(JWT_KEY, "alice", "tools.call");
    let body = json!({"jsonrpc":"2.0","id":41,"method":"subscriptions/listen","params":{"notifications":notifications,
        "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}})
    .to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: subscriptions/listen\r\n\
Authorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut got = Vec::new();
    let until = Instant::now() + Duration::from_secs(10);
    let messages = |got: &[u8]| -> Vec<Value> {
        String::from_utf8_lossy(got)
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    };
    let answered_whole = |got: &[u8]| {
        let text = String::from_utf8_lossy(got);
        text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
            let head = head.to_ascii_lowercase();
            !head.contains("text/event-stream")
                && head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .is_some_and(|n| n.trim().parse::<usize>().is_ok_and(|n| body.len() >= n))
        })
    };
    while Instant::now() < until && messages(&got).len() < want && !answered_whole(&got) {
        let mut b = [0u8; 4096];
        match s.read(&mut b) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(_) => {}
        }
    }
    let status = String::from_utf8_lossy(&got[9..12]).parse().unwrap();
    (status, messages(&got))
}

fn gateway(modern: SocketAddr, old: SocketAddr) -> portcullis::runtime::Gateway {
    common::start(&format!(
        r#"listen: 127.0.0.1:0
workers: 1
servers:
  - name: s
    path: /mcp
    resource: https://gw.test/mcp
    {auth}
    authorization:
      rules:
        - target:
            resources: [{{ backend: m, uri: "file:///a" }}, {{ backend: old, uri: "file:///b" }}]
    backends:
      - {{ name: m, url: "http://{modern}/mcp" }}
      - {{ name: old, url: "http://{old}/mcp" }}
"#,
        auth = common::hs256_auth(JWT_KEY),
    ))
}

#[test]
fn one_acknowledged_filtered_stream_from_every_backend() {
    let (m, m_log) = backend(modern);
    let (old, old_log) = backend(legacy);
    let gw = gateway(m, old);
    let addr = gw.addrs()[0];

    let asked = json!({"toolsListChanged": true, "resourceSubscriptions": ["m+file:///a", "old+file:///b"]});
    let (status, msgs) = listen(addr, asked, 5);
    assert_eq!(status, 200);
    // Acknowledged first, once, with what the backends agreed to, as the client knows it.
    let ack = &msgs[0];
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged", "{msgs:#?}");
    assert_eq!(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 41);
    assert_eq!(ack["params"]["notifications"]["toolsListChanged"], true, "{ack}");
    let mut uris: Vec<&str> = ack["params"]["notifications"]["resourceSubscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    uris.sort_unstable();
    assert_eq!(uris, ["m+file:///a", "old+file:///b"]);
    let acks = msgs.iter().filter(|m| m["method"] == "notifications/subscriptions/acknowledged").count();
    assert_eq!(acks, 1, "the backend's own acknowledgement is not relayed: {msgs:#?}");

    // Then exactly what was asked for, from both backends, tagged with the client's id.
    let rest = &msgs[1..];
    assert_eq!(rest.len(), 4, "{rest:#?}");
    for m in rest {
        assert_eq!(m["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 41, "{m}");
    }
    let count = |method: &str| rest.iter().filter(|m| m["method"] == method).count();
    assert_eq!(count("notifications/tools/list_changed"), 2, "{rest:#?}");
    let mut updated: Vec<&str> = rest
        .iter()
        .filter(|m| m["method"] == "notifications/resources/updated")
        .map(|m| m["params"]["uri"].as_str().unwrap())
        .collect();
    updated.sort_unstable();
    assert_eq!(updated, ["m+file:///a", "old+file:///b"], "{rest:#?}");

    // Each backend was asked for its part, in its own terms.
    let sub = m_log.lock().unwrap().iter().find(|v| v["method"] == "subscriptions/listen").cloned().unwrap();
    assert_eq!(
        sub["params"]["notifications"],
        json!({"toolsListChanged": true, "resourceSubscriptions": ["file:///a"]})
    );
    let subscribed: Vec<Value> = old_log
        .lock()
        .unwrap()
        .iter()
        .filter(|v| v["method"] == "resources/subscribe")
        .map(|v| v["params"]["uri"].clone())
        .collect();
    assert_eq!(subscribed, [json!("file:///b")]);
    gw.shutdown();
}

#[test]
fn resource_subscriptions_are_judged_and_filters_checked() {
    let (m, m_log) = backend(modern);
    let (old, _) = backend(legacy);
    let gw = gateway(m, old);
    let addr = gw.addrs()[0];

    // A URI no rule allows is refused before any backend is asked.
    let (status, msgs) = listen(addr, json!({"resourceSubscriptions": ["m+file:///secret"]}), 1);
    assert_eq!(status, 403, "{msgs:?}");
    // A filter of the wrong shape is invalid params, and so are more than 64 resources.
    let (status, _) = listen(addr, json!({"toolsListChanged": "yes"}), 1);
    assert_eq!(status, 400);
    let (status, _) = listen(addr, json!({"resourceSubscriptions": vec!["m+file:///a"; 65]}), 1);
    assert_eq!(status, 400);
    assert!(m_log.lock().unwrap().iter().all(|v| v["method"] != "subscriptions/listen"));
    gw.shutdown();
}
