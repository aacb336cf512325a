//! Aggregated MCP backends end to end: fixture MCP servers written here (std sockets, sessions,
//! JSON or SSE answers) behind the gateway started in-process, driven by a raw HTTP client.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_types)] // fixture bookkeeping across test threads, not the data path

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis::config::compile::compile_str;
use portcullis::config::watch::{Reloader, Source};
use portcullis::runtime::Gateway;
use serde_json::{json, Value};

/// What a fixture backend saw: (method, session header, authorization header, x-tenant header).
type Seen = Arc<Mutex<Vec<(String, String, String, String)>>>;

struct Fixture {
    addr: SocketAddr,
    seen: Seen,
    connections: Arc<Mutex<usize>>,
    /// Connections the gateway has closed.
    closed: Arc<Mutex<usize>>,
}

/// An MCP server with sessions: initialize mints `<tag>-sess`, later requests must carry it.
fn fixture(tag: &'static str, sse: bool) -> Fixture {
    fixture_mode(tag, sse, false)
}

/// `modern`: a 2026-07-28 server (server/discover, no sessions, Mcp-* headers required).
fn fixture_mode(tag: &'static str, sse: bool, modern: bool) -> Fixture {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let connections = Arc::new(Mutex::new(0));
    let closed = Arc::new(Mutex::new(0));
    let (s2, c2, d2) = (seen.clone(), connections.clone(), closed.clone());
    std::thread::Builder::new()
        .spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { return };
                *c2.lock().unwrap() += 1;
                let (seen, done) = (s2.clone(), d2.clone());
                std::thread::Builder::new()
                    .spawn(move || {
                        serve(s, tag, sse, modern, seen);
                        *done.lock().unwrap() += 1;
                    })
                    .unwrap();
            }
        })
        .unwrap();
    Fixture { addr, seen, connections, closed }
}

fn serve(mut s: impl Read + Write, tag: &str, sse: bool, modern: bool, seen: Seen) {
    let mut buf = Vec::new();
    loop {
        let Some((head, body)) = common::read_request(&mut s, &mut buf) else { return };
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let msg: Value = if head.starts_with("DELETE ") {
            json!({"method": "DELETE"})
        } else {
            serde_json::from_slice(&body).unwrap()
        };
        let method = msg["method"].as_str().unwrap_or("").to_string();
        seen.lock().unwrap().push((
            method.clone(),
            header("mcp-session-id"),
            header("authorization"),
            header("x-tenant"),
        ));
        let session = format!("{tag}-sess");
        let reply = |status: &str, extra: &str, body: &str| {
            format!("HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())
        };
        let modern_ok = header("mcp-protocol-version") == "2026-07-28"
            && header("mcp-method") == method
            && (method != "tools/call" || header("mcp-name") == msg["params"]["name"].as_str().unwrap_or(""));
        let resp = if modern {
            if modern_ok && msg["params"]["name"] == "bad" {
                let e = json!({"jsonrpc":"2.0","id":msg["id"],"error":{"code":-32602,"message":"Unknown tool: bad","data":{"x":1}}});
                reply("400 Bad Request", "Content-Type: application/json\r\n", &e.to_string())
            } else if !modern_ok {
                reply(
                    "400 Bad Request",
                    "",
                    r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32020,"message":"Header mismatch"}}"#,
                )
            } else {
                let result = match method.as_str() {
                    "server/discover" => {
                        json!({"supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},"resultType":"complete","ttlMs":0,"cacheScope":"public"})
                    }
                    "tools/list" => {
                        json!({"tools":[{"name":"echo","description":"echo","inputSchema":{"type":"object"}}],"resultType":"complete","ttlMs":0,"cacheScope":"public"})
                    }
                    "tools/call" => {
                        let region = header("mcp-param-region");
                        let region = if region.is_empty() { String::new() } else { format!("|{region}") };
                        json!({"content":[{"type":"text","text":format!("{tag}:{}{region}", msg["params"]["arguments"]["text"].as_str().unwrap_or(""))}],"isError":false,"resultType":"complete"})
                    }
                    _ => json!({}),
                };
                let r = json!({"jsonrpc":"2.0","id":msg["id"],"result":result}).to_string();
                reply("200 OK", "Content-Type: application/json\r\n", &r)
            }
        } else if method == "initialize" {
            let r = json!({"jsonrpc":"2.0","id":msg["id"],"result":{"protocolVersion":msg["params"]["protocolVersion"],"capabilities":{"tools":{"listChanged":true},"completions":{},"logging":{},"experimental":{"x":{}}},"serverInfo":{"name":tag,"version":"1"}}});
            reply(
                "200 OK",
                &format!("Content-Type: application/json\r\nMcp-Session-Id: {session}\r\n"),
                &r.to_string(),
            )
        } else if header("mcp-session-id") != session {
            reply("404 Not Found", "", "")
        } else if method == "DELETE" {
            reply("200 OK", "", "")
        } else if msg.get("id").is_none() {
            reply("202 Accepted", "", "")
        } else {
            let result = match method.as_str() {
                "tools/list" => json!({"tools":[
                    {"name":"echo","description":"echo","inputSchema":{"type":"object"}},
                    {"name":"sum","description":"sum","inputSchema":{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer","default":10}}}},
                    {"name":"secret","description":"hidden by the selector","inputSchema":{"type":"object"}}]}),
                // `sum` reads its arguments as a typed server would: numbers, or nothing.
                "tools/call" if msg["params"]["name"] == "sum" => {
                    let a = &msg["params"]["arguments"];
                    let text = match (a["a"].as_i64(), a["b"].as_i64()) {
                        (Some(x), Some(y)) => format!("{tag}:sum:{}", x + y),
                        _ => format!("{tag}:sum:not numbers: {a}"),
                    };
                    json!({"content":[{"type":"text","text":text}],"isError":false})
                }
                "tools/call" => {
                    json!({"content":[{"type":"text","text":format!("{tag}:{}:{}", msg["params"]["name"].as_str().unwrap(), msg["params"]["arguments"]["text"].as_str().unwrap_or(""))}],"isError":false})
                }
                "prompts/list" => json!({"prompts":[{"name":"greet","description":"a prompt"}]}),
                "prompts/get" => {
                    json!({"messages":[{"role":"user","content":{"type":"text","text":format!("{tag} prompt {}", msg["params"]["name"].as_str().unwrap_or(""))}}]})
                }
                "resources/list" => json!({"resources":[{"uri":"file:///readme","name":"readme"}]}),
                "completion/complete" => {
                    json!({"completion":{"values":[format!("{tag}:{}", msg["params"]["ref"]["name"].as_str().or(msg["params"]["ref"]["uri"].as_str()).unwrap_or(""))]}})
                }
                "resources/templates/list" => {
                    json!({"resourceTemplates":[{"uriTemplate":"file:///{path}","name":"files"}]})
                }
                "resources/read" => {
                    json!({"contents":[{"uri":msg["params"]["uri"],"text":format!("{tag} read {}", msg["params"]["uri"].as_str().unwrap_or(""))}]})
                }
                _ => json!({}),
            };
            let r = json!({"jsonrpc":"2.0","id":msg["id"],"result":result}).to_string();
            if sse {
                reply(
                    "200 OK",
                    "Content-Type: text/event-stream\r\n",
                    &format!("event: message\ndata: {r}\n\n"),
                )
            } else {
                reply("200 OK", "Content-Type: application/json\r\n", &r)
            }
        };
        if s.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

fn start(config: &str) -> Gateway {
    let snap = compile_str(config, &|_| None).unwrap_or_else(|e| panic!("{e:?}"));
    Gateway::start(Arc::new(Reloader::new(Source::Demo, snap))).unwrap()
}

fn post(addr: SocketAddr, body: &str, sid: Option<&str>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let sid = sid.map(|v| format!("Mcp-Session-Id: {v}\r\n")).unwrap_or_default();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
X-Tenant: t-1\r\nAuthorization: Bearer client-token\r\n{sid}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let status = head[9..12].parse().unwrap();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':').map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string())))
        .collect();
    (status, headers, raw[end + 4..].to_vec())
}

fn config(b1: SocketAddr, b2: SocketAddr) -> String {
    format!(
        r#"
listen: 127.0.0.1:0
workers: 2
limits: {{ upstreamTimeoutMs: 1500 }}
sessions: {{ keys: [{{ id: k1, secret: "0123456789abcdef0123456789abcdef" }}] }}
servers:
  - name: agg
    path: /mcp
    server:
      securitySchemes:
        - {{ id: svc, type: http, scheme: bearer, defaultCredential: backend-token }}
    tools:
      - name: local-hello
        description: local
        responseTemplate: {{ body: "hi" }}
    backends:
      - name: b1
        url: http://{b1}/mcp
        toolSelector: {{ exclude: [secret] }}
        security: {{ id: svc }}
        forwardHeaders: [{{ name: x-tenant }}]
      - name: b2
        url: http://{b2}/mcp
        toolSelector: {{ include: [echo] }}
"#
    )
}

fn init(addr: SocketAddr) -> String {
    let (status, headers, body) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        None,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    headers.iter().find(|(n, _)| n == "mcp-session-id").unwrap().1.clone()
}

#[test]
fn aggregation_naming_routing_and_credentials() {
    let b1 = fixture("b1", false);
    let b2 = fixture("b2", true);
    let gw = start(&config(b1.addr, b2.addr));
    let addr = gw.addrs()[0];
    let sid = init(addr);

    let (_, _, body) = post(addr, r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, Some(&sid));
    let v: Value = serde_json::from_slice(&body).unwrap();
    let names: Vec<&str> =
        v["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["local-hello", "b1__echo", "b1__sum", "b2__echo"],
        "selectors and <backend>__<tool> names"
    );

    // JSON answer from b1, with the name rewritten on the way in and the client's id kept.
    let (status, headers, body) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":"c-3","method":"tools/call","params":{"name":"b1__echo","arguments":{"text":"x"}}}"#,
        Some(&sid),
    );
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(n, v)| n == "content-type" && v == "application/json"));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["id"], "c-3");
    assert_eq!(v["result"]["content"][0]["text"], "b1:echo:x");

    // SSE answer from b2 is relayed as an event stream.
    let (status, headers, body) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"b2__echo","arguments":{"text":"y"}}}"#,
        Some(&sid),
    );
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(n, v)| n == "content-type" && v == "text/event-stream"));
    assert!(String::from_utf8_lossy(&body).contains("b2:echo:y"));

    // Excluded and unknown tools are -32602.
    for name in ["b1__secret", "b2__sum", "nope", "b9__echo"] {
        let (_, _, body) = post(
            addr,
            &format!(r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"{name}"}}}}"#),
            Some(&sid),
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], -32602, "{name}");
    }

    // What the backends saw: their own session ids, the backend credential (never the client's
    // bearer token), and only the configured forwarded header.
    let seen = b1.seen.lock().unwrap().clone();
    assert_eq!(seen[0].0, "initialize");
    assert!(seen.iter().skip(1).all(|(_, s, _, _)| s == "b1-sess"), "{seen:?}");
    assert!(seen.iter().all(|(_, _, auth, _)| auth == "Bearer backend-token"), "{seen:?}");
    assert!(seen.iter().all(|(_, _, _, tenant)| tenant == "t-1"));
    let seen2 = b2.seen.lock().unwrap().clone();
    assert!(seen2.iter().all(|(_, _, auth, tenant)| auth.is_empty() && tenant.is_empty()), "{seen2:?}");
    assert!(seen2.iter().any(|(m, _, _, _)| m == "notifications/initialized"));
    // Keep-alive reuse: a handful of requests per backend over at most one connection per worker.
    assert!(*b1.connections.lock().unwrap() <= 2, "pooled: {}", b1.connections.lock().unwrap());

    // DELETE fans out to every backend session of the client.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        format!(
            "DELETE /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nMcp-Session-Id: {sid}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 204"), "{raw}");
    for f in [&b1, &b2] {
        let seen = f.seen.lock().unwrap();
        assert!(seen.iter().any(|(m, s, _, _)| m == "DELETE" && s.ends_with("-sess")), "{seen:?}");
    }
    gw.shutdown();
}

#[test]
fn a_failing_backend_is_left_out_and_named() {
    let b1 = fixture("b1", false);
    // b2 points at a port nobody listens on.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gw = start(&config(b1.addr, dead));
    let addr = gw.addrs()[0];
    let sid = init(addr);
    let (_, _, body) = post(addr, r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, Some(&sid));
    let v: Value = serde_json::from_slice(&body).unwrap();
    let names: Vec<&str> =
        v["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["local-hello", "b1__echo", "b1__sum"], "partial result without the dead backend");
    let (_, _, body) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"b2__echo","arguments":{"text":"x"}}}"#,
        Some(&sid),
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("b2"), "{msg}");
    assert!(!msg.contains("127.0.0.1"), "no internal addresses: {msg}");
    gw.shutdown();
}

fn post_2026(addr: SocketAddr, method: &str, name: Option<&str>, params: &str) -> Value {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let body = format!(r#"{{"jsonrpc":"2.0","id":9,"method":"{method}","params":{{{params}{meta}}}}}"#);
    let name = name.map(|n| format!("Mcp-Name: {n}\r\n")).unwrap_or_default();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: {method}\r\n{name}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    serde_json::from_slice(&raw[end + 4..])
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&raw)))
}

#[test]
fn stateless_clients_reach_legacy_and_modern_backends() {
    let legacy = fixture("b1", true);
    let modern = fixture_mode("b2", false, true);
    let gw = start(&config(legacy.addr, modern.addr));
    let addr = gw.addrs()[0];

    let v = post_2026(addr, "tools/list", None, "");
    let names: Vec<&str> =
        v["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["local-hello", "b1__echo", "b1__sum", "b2__echo"]);
    assert_eq!(v["result"]["resultType"], "complete");
    assert!(v["result"]["ttlMs"].is_u64());

    // A legacy backend's answer is translated for the 2026 client (resultType added).
    let v = post_2026(addr, "tools/call", Some("b1__echo"), r#""name":"b1__echo","arguments":{"text":"x"},"#);
    assert_eq!(v["id"], 9);
    assert_eq!(v["result"]["content"][0]["text"], "b1:echo:x");
    assert_eq!(v["result"]["resultType"], "complete");
    // A 2026 backend gets Mcp-Method/Mcp-Name with its own tool name; its answer is relayed.
    let v = post_2026(addr, "tools/call", Some("b2__echo"), r#""name":"b2__echo","arguments":{"text":"y"},"#);
    assert_eq!(v["result"]["content"][0]["text"], "b2:y", "{v}");

    // The worker's link to the legacy backend is reused: one initialize per worker at most.
    let inits = legacy.seen.lock().unwrap().iter().filter(|(m, _, _, _)| m == "initialize").count();
    let seen = legacy.seen.lock().unwrap().len();
    assert!((1..=2).contains(&inits), "{inits} initializes over {seen} requests");
    gw.shutdown();
}

#[test]
fn a_session_continues_on_another_gateway_instance_with_the_same_keys() {
    // Sessions are sealed records: gateway B opens what gateway A sealed, backend session included.
    let b1 = fixture("b1", false);
    let b2 = fixture("b2", false);
    let a = start(&config(b1.addr, b2.addr));
    let b = start(&config(b1.addr, b2.addr));
    let sid = init(a.addrs()[0]);
    let (status, _, body) = post(
        b.addrs()[0],
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"b1__echo","arguments":{"text":"moved"}}}"#,
        Some(&sid),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["result"]["content"][0]["text"], "b1:echo:moved");
    a.shutdown();
    b.shutdown();
}

#[test]
fn pools_carry_over_a_reload() {
    let b1 = fixture("b1", false);
    let b2 = fixture("b2", false);
    let file = std::env::temp_dir().join(format!("portcullis-backends-reload-{}.yaml", std::process::id()));
    let text = config(b1.addr, b2.addr).replace("workers: 2", "workers: 1");
    std::fs::write(&file, &text).unwrap();
    let source = Source::File(file.clone());
    let reloader = Arc::new(Reloader::new(source.clone(), source.compile().unwrap()));
    let gw = Gateway::start(reloader.clone()).unwrap();
    let addr = gw.addrs()[0];
    let sid = init(addr);
    let call = r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"b1__echo","arguments":{"text":"x"}}}"#;
    assert_eq!(post(addr, call, Some(&sid)).0, 200);
    let before = *b1.connections.lock().unwrap();
    // Same backends, another local tool: the worker keeps its pooled connections.
    std::fs::write(&file, text.replace("body: \"hi\"", "body: \"hello\"")).unwrap();
    reloader.reload().unwrap();
    for _ in 0..5 {
        assert_eq!(post(addr, call, Some(&sid)).0, 200);
    }
    assert_eq!(*b1.connections.lock().unwrap(), before, "no new backend connection after the reload");
    // A reload that removes b2: the worker closes its idle connection to b2 at once (not after
    // the idle TTL) and keeps b1's.
    let b2_open = *b2.connections.lock().unwrap() - *b2.closed.lock().unwrap();
    assert!(b2_open >= 1, "b2 was initialized over a pooled connection");
    let without_b2 = text.replace(
        &format!(
            "      - name: b2\n        url: http://{}/mcp\n        toolSelector: {{ include: [echo] }}\n",
            b2.addr
        ),
        "",
    );
    assert_ne!(without_b2, text, "the b2 entry was found in the config");
    std::fs::write(&file, without_b2).unwrap();
    reloader.reload().unwrap();
    let sid = init(addr);
    let call =
        r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}"#;
    assert_eq!(post(addr, call, Some(&sid)).0, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while *b2.connections.lock().unwrap() > *b2.closed.lock().unwrap() {
        assert!(std::time::Instant::now() < deadline, "b2's pooled connection was not closed");
        std::thread::sleep(Duration::from_millis(20));
    }
    gw.shutdown();
    let _ = std::fs::remove_file(file);
}

#[test]
fn a_silent_backend_times_out_with_its_name() {
    let b1 = fixture("b1", false);
    // b2 accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    std::thread::Builder::new()
        .spawn(move || {
            let mut held = Vec::new();
            for s in silent.incoming().flatten() {
                held.push(s);
            }
        })
        .unwrap();
    let gw =
        start(&config(b1.addr, silent_addr).replace("upstreamTimeoutMs: 1500", "upstreamTimeoutMs: 300"));
    let addr = gw.addrs()[0];
    let started = std::time::Instant::now();
    let sid = init(addr);
    assert!(started.elapsed() < Duration::from_secs(5), "initialize bounded by the upstream timeout");
    let (_, _, body) = post(addr, r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, Some(&sid));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["result"]["tools"].as_array().unwrap().len(), 3, "local + b1 tools; b2 left out");
    gw.shutdown();
}

#[test]
fn prompts_and_resources_are_aggregated_and_routed() {
    let b1 = fixture("b1", false);
    let b2 = fixture("b2", true);
    let gw = start(&config(b1.addr, b2.addr));
    let addr = gw.addrs()[0];
    let sid = init(addr);
    let list = |method: &str, member: &str, field: &str| -> Vec<String> {
        let (_, _, body) =
            post(addr, &format!(r#"{{"jsonrpc":"2.0","id":2,"method":"{method}"}}"#), Some(&sid));
        let v: Value = serde_json::from_slice(&body).unwrap();
        v["result"][member]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t[field].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(list("prompts/list", "prompts", "name"), ["b1__greet", "b2__greet"]);
    assert_eq!(list("resources/list", "resources", "uri"), ["b1+file:///readme", "b2+file:///readme"]);
    assert_eq!(
        list("resources/templates/list", "resourceTemplates", "uriTemplate"),
        ["b1+file:///{path}", "b2+file:///{path}"]
    );

    let (_, _, body) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"b2__greet"}}"#,
        Some(&sid),
    );
    assert!(String::from_utf8_lossy(&body).contains("b2 prompt greet"), "{}", String::from_utf8_lossy(&body));
    let (_, _, body) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"b1+file:///readme"}}"#,
        Some(&sid),
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["result"]["contents"][0]["text"], "b1 read file:///readme", "the backend sees its own URI");
    // Unknown prompt / resource: -32602 / -32002 with the URI.
    let (_, _, body) =
        post(addr, r#"{"jsonrpc":"2.0","id":5,"method":"prompts/get","params":{"name":"nope"}}"#, Some(&sid));
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["error"]["code"], -32602);
    let (_, _, body) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":6,"method":"resources/read","params":{"uri":"zz+file:///x"}}"#,
        Some(&sid),
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (v["error"]["code"].as_i64(), v["error"]["data"]["uri"].as_str()),
        (Some(-32002), Some("zz+file:///x"))
    );
    gw.shutdown();
}

/// The fixture behind TLS: a private CA signs a certificate for 127.0.0.1.
fn tls_fixture(tag: &'static str) -> (Fixture, std::path::PathBuf) {
    let (config, ca_file) = common::private_tls(tag);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let connections = Arc::new(Mutex::new(0));
    let (s2, c2) = (seen.clone(), connections.clone());
    std::thread::Builder::new()
        .spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { return };
                *c2.lock().unwrap() += 1;
                let (seen, config) = (s2.clone(), config.clone());
                std::thread::Builder::new()
                    .spawn(move || {
                        let conn = rustls::ServerConnection::new(config).unwrap();
                        serve(rustls::StreamOwned::new(conn, s), tag, false, false, seen)
                    })
                    .unwrap();
            }
        })
        .unwrap();
    (Fixture { addr, seen, connections, closed: Arc::default() }, ca_file)
}

fn tls_config(addr: SocketAddr, ca_file: Option<&std::path::Path>) -> String {
    let ca = ca_file.map(|p| format!("\n        caFile: {}", p.display())).unwrap_or_default();
    format!(
        r#"
listen: 127.0.0.1:0
workers: 1
limits: {{ upstreamTimeoutMs: 2000 }}
servers:
  - name: tls
    path: /mcp
    backends:
      - name: secure
        url: https://{addr}/mcp{ca}
"#
    )
}

#[test]
fn https_backend_verified_against_a_private_ca() {
    let (b, ca_file) = tls_fixture("tls");
    let gw = start(&tls_config(b.addr, Some(&ca_file)));
    let addr = gw.addrs()[0];
    let sid = init(addr);
    let (_, _, body) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"over tls"}}}"#,
        Some(&sid),
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["result"]["content"][0]["text"], "tls:echo:over tls", "{v}");
    assert_eq!(*b.connections.lock().unwrap(), 1, "the TLS connection is pooled and reused");
    gw.shutdown();

    // Without the CA the certificate is not trusted: the backend is unreachable, never used.
    let before = b.seen.lock().unwrap().len();
    let gw = start(&tls_config(b.addr, None));
    let (status, _, body) = post(
        gw.addrs()[0],
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        None,
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 502, "{v}");
    assert_eq!(v["error"]["code"], -32603);
    assert_eq!(
        b.seen.lock().unwrap().len(),
        before,
        "no request reached the backend over an unverified connection"
    );
    gw.shutdown();
    let _ = std::fs::remove_file(ca_file);
}

#[test]
fn capabilities_merge_completion_routes_and_set_level_fans_out() {
    let b1 = fixture("b1", false);
    let b2 = fixture("b2", false);
    let gw = start(&config(b1.addr, b2.addr));
    let addr = gw.addrs()[0];
    let (_, headers, body) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        None,
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    let caps = &v["result"]["capabilities"];
    assert!(caps["completions"].is_object() && caps["logging"].is_object(), "{caps}");
    assert_eq!(caps["tools"]["listChanged"], true, "sub-flags are OR-ed");
    assert!(caps.get("experimental").is_none(), "capabilities the gateway does not relay are not offered");
    let sid = headers.iter().find(|(n, _)| n == "mcp-session-id").unwrap().1.clone();

    let (_, _, body) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"b2__greet"},"argument":{"name":"a","value":"x"}}}"#,
        Some(&sid),
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["result"]["completion"]["values"][0], "b2:greet", "{v}");
    let (_, _, body) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":3,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"b1+file:///{path}"},"argument":{"name":"path","value":"r"}}}"#,
        Some(&sid),
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["result"]["completion"]["values"][0], "b1:file:///{path}", "{v}");

    let (_, _, body) = post(
        addr,
        r#"{"jsonrpc":"2.0","id":4,"method":"logging/setLevel","params":{"level":"debug"}}"#,
        Some(&sid),
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["result"], json!({}));
    for f in [&b1, &b2] {
        assert!(f.seen.lock().unwrap().iter().any(|(m, _, _, _)| m == "logging/setLevel"));
    }
    gw.shutdown();
}

/// A session-less MCP server for the streaming tests: `handler` sees every message first and may
/// answer it (writing to the stream itself if it needs to); otherwise initialize, notifications
/// and everything else get minimal answers.
type Handler = dyn Fn(&mut TcpStream, &Value) -> Option<String> + Send + Sync;

fn minimal_server(handler: Arc<Handler>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::Builder::new()
        .spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let handler = handler.clone();
                std::thread::Builder::new()
                    .spawn(move || {
                        let mut buf = Vec::new();
                        while let Some(msg) = read_request(&mut s, &mut buf) {
                            let out = handler(&mut s, &msg).unwrap_or_else(|| match msg["method"].as_str().unwrap_or("") {
                                "initialize" => plain(json!({"jsonrpc":"2.0","id":msg["id"],"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"s","version":"1"}}})),
                                _ if msg.get("id").is_none() || msg.get("method").is_none() => {
                                    "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_string()
                                }
                                _ => plain(json!({"jsonrpc":"2.0","id":msg["id"],"result":{}})),
                            });
                            if s.write_all(out.as_bytes()).is_err() {
                                return;
                            }
                        }
                    })
                    .unwrap();
            }
        })
        .unwrap();
    addr
}

fn plain(r: Value) -> String {
    let r = r.to_string();
    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{r}", r.len())
}

/// Starts a chunked SSE answer carrying `first_event`; `false` if the client went away.
fn start_sse(s: &mut TcpStream, first_event: &str) -> bool {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{first_event}\r\n",
        first_event.len()
    );
    s.write_all(head.as_bytes()).is_ok()
}

/// The last chunk of an SSE answer: the result event and the end of the stream.
fn end_sse(id: &Value, text: &str) -> String {
    let result = format!(
        "event: message\ndata: {}\n\n",
        json!({"jsonrpc":"2.0","id":id,"result":{"content":[{"type":"text","text":text}],"isError":false}})
    );
    format!("{:x}\r\n{result}\r\n0\r\n\r\n", result.len())
}

/// A backend whose tools/call answer is an SSE stream: a progress notification, then - only once
/// `gate` fires - the result.
fn streaming_fixture(gate: std::sync::mpsc::Receiver<()>) -> SocketAddr {
    let gate = Mutex::new(gate);
    minimal_server(Arc::new(move |s: &mut TcpStream, msg: &Value| {
        (msg["method"] == "tools/call").then(|| {
            let progress = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\n";
            if !start_sse(s, progress) {
                return String::new();
            }
            // Hold the result back until the client has seen the progress event.
            let _ = gate.lock().unwrap().recv();
            end_sse(&msg["id"], "done")
        })
    }))
}

#[test]
fn sse_answers_are_relayed_as_they_arrive() {
    let (tx, rx) = std::sync::mpsc::channel();
    let backend = streaming_fixture(rx);
    let gw = start(&format!(
        "listen: 127.0.0.1:0\nworkers: 1\nservers:\n  - name: s\n    path: /mcp\n    backends:\n      - name: b\n        url: http://{backend}/mcp\n"
    ));
    let addr = gw.addrs()[0];
    let sid = init(addr);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"slow","arguments":{},"_meta":{"progressToken":1}}}"#;
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
Mcp-Session-Id: {sid}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    // The progress event arrives while the backend still holds the result back.
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("notifications/progress") {
        let mut b = [0u8; 4096];
        let n = s.read(&mut b).unwrap();
        assert!(n > 0, "stream ended before the progress event: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&b[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_string();
    assert!(text.contains("transfer-encoding: chunked") && text.contains("text/event-stream"), "{text}");
    assert!(!text.contains("\"done\""), "the result has not been released yet");
    tx.send(()).unwrap();
    s.read_to_end(&mut got).unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("\"done\""), "{text}");
    assert!(text.ends_with("0\r\n\r\n"), "the chunked stream ends cleanly: {text:?}");
    gw.shutdown();
}

/// Reads one HTTP request (head and Content-Length body) from `s`; `None` at EOF.
fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Value> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let cl: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if buf.len() >= end + 4 + cl {
                let body = buf[end + 4..end + 4 + cl].to_vec();
                buf.drain(..end + 4 + cl);
                return Some(serde_json::from_slice(&body).unwrap_or(json!({})));
            }
        }
        let mut b = [0u8; 4096];
        match s.read(&mut b) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
}

/// A backend that, during tools/call, asks the client for a sampling result over the SSE stream
/// and finishes only when the client's answer arrives (on another connection, via the gateway).
fn sampling_fixture() -> SocketAddr {
    let (answers_tx, answers_rx) = std::sync::mpsc::channel::<Value>();
    let (answers_tx, answers_rx) = (Mutex::new(answers_tx), Mutex::new(answers_rx));
    minimal_server(Arc::new(move |s: &mut TcpStream, msg: &Value| {
        if msg.get("result").is_some() && msg.get("method").is_none() {
            answers_tx.lock().unwrap().send(msg.clone()).unwrap();
            return None; // answered 202 by default
        }
        (msg["method"] == "tools/call").then(|| {
            let ask = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"sampling/createMessage\",\"params\":{\"messages\":[],\"maxTokens\":5}}\n\n";
            if !start_sse(s, ask) {
                return String::new();
            }
            let answer = answers_rx.lock().unwrap().recv().unwrap();
            assert_eq!(answer["id"], 5, "the backend gets its own id back: {answer}");
            let text = answer["result"]["content"]["text"].as_str().unwrap_or("");
            end_sse(&msg["id"], &format!("done:{text}"))
        })
    }))
}

#[test]
fn backend_requests_on_a_stream_reach_the_client_and_its_answer_returns() {
    let backend = sampling_fixture();
    let gw = start(&format!(
        "listen: 127.0.0.1:0\nworkers: 1\nservers:\n  - name: s\n    path: /mcp\n    backends:\n      - name: b\n        url: http://{backend}/mcp\n"
    ));
    let addr = gw.addrs()[0];
    let sid = init(addr);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body =
        r#"{"jsonrpc":"2.0","id":"call-1","method":"tools/call","params":{"name":"think","arguments":{}}}"#;
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
Mcp-Session-Id: {sid}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut got = Vec::new();
    let tagged = loop {
        let mut b = [0u8; 4096];
        let n = s.read(&mut b).unwrap();
        assert!(n > 0, "stream ended early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&b[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(line) =
            text.lines().find(|l| l.starts_with("data: ") && l.contains("sampling/createMessage"))
        {
            let v: Value = serde_json::from_str(&line[6..]).unwrap();
            break v["id"].clone();
        }
    };
    assert!(tagged.is_string() && tagged != json!(5), "the id names the backend: {tagged}");
    // The client answers on a separate request; the gateway routes it to the backend.
    let answer = json!({"jsonrpc":"2.0","id":tagged,"result":{"role":"assistant","content":{"type":"text","text":"yes"},"model":"m"}});
    let (status, _, _) = post(addr, &answer.to_string(), Some(&sid));
    assert_eq!(status, 202);
    s.read_to_end(&mut got).unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("done:yes"), "{text}");
    gw.shutdown();
}

fn post_2026_with(addr: SocketAddr, name: &str, params: &str, extra: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let body = format!(r#"{{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{{{params}{meta}}}}}"#);
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: {name}\r\n{extra}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let status = String::from_utf8_lossy(&raw[9..12]).parse().unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (status, serde_json::from_slice(&raw[end + 4..]).unwrap())
}

#[test]
fn regression_backend_json_rpc_errors_and_mcp_param_headers_pass_through() {
    // Found by the conformance comparison: a backend's own JSON-RPC error sent with HTTP 400
    // was replaced by a generic -32603, and Mcp-Param-* headers were not forwarded.
    let legacy = fixture("b1", false);
    let modern = fixture_mode("b2", false, true);
    let gw = start(&config(legacy.addr, modern.addr).replace("toolSelector: { include: [echo] }", ""));
    let addr = gw.addrs()[0];
    let (status, v) = post_2026_with(addr, "b2__bad", r#""name":"b2__bad","arguments":{},"#, "");
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        (v["id"].as_i64(), v["error"]["code"].as_i64(), v["error"]["data"]["x"].as_i64()),
        (Some(11), Some(-32602), Some(1))
    );
    let (status, v) = post_2026_with(
        addr,
        "b2__echo",
        r#""name":"b2__echo","arguments":{"text":"t"},"#,
        "Mcp-Param-Region: eu\r\n",
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["content"][0]["text"], "b2:t|eu");
    gw.shutdown();
}

/// A backend with three pages of tools (`p1a p1b`, `p2a`, `p3a`), checking the cursors it gets.
fn paging_backend() -> SocketAddr {
    minimal_server(Arc::new(|_s: &mut TcpStream, msg: &Value| {
        (msg["method"] == "tools/list").then(|| {
            let tool = |n: &str| json!({"name": n, "inputSchema": {"type": "object"}});
            let result = match msg["params"]["cursor"].as_str() {
                None => json!({"tools": [tool("p1a"), tool("p1b")], "nextCursor": "c2"}),
                Some("c2") => json!({"tools": [tool("p2a")], "nextCursor": "c3"}),
                Some("c3") => json!({"tools": [tool("p3a")]}),
                Some(_) => return plain(json!({"jsonrpc":"2.0","id":msg["id"],"error":{"code":-32602,"message":"bad cursor"}})),
            };
            plain(json!({"jsonrpc":"2.0","id":msg["id"],"result":result}))
        })
    }))
}

#[test]
fn lists_paginate_across_backends_with_a_gateway_cursor() {
    let pg = paging_backend();
    let flat = minimal_server(Arc::new(|_s: &mut TcpStream, msg: &Value| {
        (msg["method"] == "tools/list").then(|| {
            plain(json!({"jsonrpc":"2.0","id":msg["id"],"result":{"tools":[{"name":"f1","inputSchema":{"type":"object"}}]}}))
        })
    }));
    let gw = start(&format!(
        r#"
listen: 127.0.0.1:0
workers: 1
sessions: {{ keys: [{{ id: k1, secret: "0123456789abcdef0123456789abcdef" }}] }}
servers:
  - name: agg
    path: /mcp
    tools: [{{ name: local-hello, responseTemplate: {{ body: hi }} }}]
    backends:
      - {{ name: pg, url: "http://{pg}/mcp" }}
      - {{ name: flat, url: "http://{flat}/mcp" }}
"#
    ));
    let addr = gw.addrs()[0];
    let sid = init(addr);
    let list = |cursor: Option<&str>| {
        let params = cursor.map(|c| format!(r#","params":{{"cursor":"{c}"}}"#)).unwrap_or_default();
        let (status, _, body) =
            post(addr, &format!(r#"{{"jsonrpc":"2.0","id":5,"method":"tools/list"{params}}}"#), Some(&sid));
        assert_eq!(status, 200);
        serde_json::from_slice::<Value>(&body).unwrap()
    };
    let names = |v: &Value| -> Vec<String> {
        v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let first = list(None);
    assert_eq!(names(&first), ["local-hello", "pg__p1a", "pg__p1b", "flat__f1"]);
    let c = first["result"]["nextCursor"].as_str().unwrap().to_string();
    assert!(!c.contains("c2"), "the cursor is the gateway's own, opaque");
    let second = list(Some(&c));
    assert_eq!(names(&second), ["pg__p2a"], "only the backend with more pages; local tools come once");
    let c = second["result"]["nextCursor"].as_str().unwrap().to_string();
    let third = list(Some(&c));
    assert_eq!(names(&third), ["pg__p3a"]);
    assert!(third["result"].get("nextCursor").is_none(), "the last page has no cursor");
    for bad in ["garbage", "c2", ""] {
        let v = list(Some(bad));
        assert_eq!(v["error"]["code"], -32602, "{bad}: {v}");
        assert_eq!(v["error"]["message"], "Invalid cursor");
    }
    gw.shutdown();
}

/// No shared identity on sessionless calls: a 2026-07-28 client reaching a backend that needs
/// a session gets a gateway-owned session of its own principal and identity headers, never one
/// that another caller's `initialize` opened.
#[test]
fn no_shared_identity_on_sessionless_calls() {
    let legacy = fixture("b1", false);
    let modern = fixture_mode("b2", false, true);
    let text = config(legacy.addr, modern.addr).replace("workers: 2", "workers: 1").replace(
        "  - name: agg\n    path: /mcp\n",
        "  - name: agg\n    path: /mcp\n    authentication: { mode: apiKey, apiKey: { in: header, name: X-Api-Key, keys: [{ id: alice, value: key-alice-1 }, { id: bob, value: key-bob-22 }] } }\n",
    );
    let gw = start(&text);
    let addr = gw.addrs()[0];
    let call = |key: &str, tenant: &str| {
        let extra = format!("X-Api-Key: {key}\r\nx-tenant: {tenant}\r\n");
        let (status, v) =
            post_2026_with(addr, "b1__echo", r#""name":"b1__echo","arguments":{"text":"x"},"#, &extra);
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["result"]["content"][0]["text"], "b1:echo:x");
    };
    let inits = || -> Vec<String> {
        legacy
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, ..)| m == "initialize")
            .map(|(.., t)| t.clone())
            .collect()
    };
    call("key-alice-1", "t-a");
    call("key-alice-1", "t-a");
    assert_eq!(inits(), ["t-a"], "one session for alice, reused");
    call("key-bob-22", "t-a");
    assert_eq!(inits(), ["t-a", "t-a"], "bob never rides alice's session");
    call("key-alice-1", "t-b");
    assert_eq!(inits(), ["t-a", "t-a", "t-b"], "other identity headers, another session");
    call("key-bob-22", "t-a");
    assert_eq!(inits().len(), 3, "bob's session is reused");
    // Every call carried the identity its session was opened with.
    let calls: Vec<String> = legacy
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, ..)| m == "tools/call")
        .map(|(.., t)| t.clone())
        .collect();
    assert_eq!(calls, ["t-a", "t-a", "t-a", "t-b", "t-a"]);
    gw.shutdown();
}

/// Normalize, then authorize, for backend tools: a tool's `inputSchema` types and defaults (read
/// from the backend's list, before the first call this worker decides) apply before the rules,
/// and the backend receives the arguments the rules judged.
#[test]
fn backend_tool_arguments_are_normalized_before_the_rules() {
    let b1 = fixture("b1", false);
    let b2 = fixture("b2", false);
    let text = config(b1.addr, b2.addr).replace("workers: 2", "workers: 1").replace(
        "  - name: agg\n    path: /mcp\n",
        "  - name: agg\n    path: /mcp\n    authorization:\n      defaultAction: allow\n      rules:\n        - { target: { tools: [{ backend: b1, tool: sum, when: \"args.a + args.b > 100\" }] }, action: deny }\n",
    );
    let gw = start(&text);
    let addr = gw.addrs()[0];
    let sid = init(addr);
    let call = |args: &str| {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"b1__sum","arguments":{args},"_meta":{{"progressToken":"p1"}}}}}}"#
        );
        let (status, _, body) = post(addr, &body, Some(&sid));
        (status, serde_json::from_slice::<Value>(&body).unwrap())
    };
    // No list was asked for: the worker reads the backend's tool list before deciding, so the
    // first call is already judged (and sent) as the backend will read it: `a` is an integer,
    // `b` defaults to 10.
    let lists = || b1.seen.lock().unwrap().iter().filter(|(m, ..)| m == "tools/list").count();
    assert_eq!(lists(), 0);
    let (status, v) = call(r#"{"a":"5"}"#);
    assert_eq!(lists(), 1, "learned once");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["content"][0]["text"], "b1:sum:15", "the backend got a=5, b=10: what was judged");
    let (status, v) = call(r#"{"a":"95"}"#);
    assert_eq!(status, 403, "95 + 10 > 100, judged after normalization: {v}");
    assert_eq!(lists(), 1, "and kept: no list per call");
    let (status, v) = call(r#"{"a":"ninety"}"#);
    assert_eq!(v["error"]["code"], -32602, "{status} {v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("a must be an integer"), "{v}");
    // Arguments that need no change go on as sent (no copy), undeclared members included.
    let (status, v) = call(r#"{"a":1,"b":2,"note":"kept"}"#);
    assert_eq!((status, &v["result"]["content"][0]["text"]), (200, &json!("b1:sum:3")), "{v}");
    // A repeated key is refused before anything reads it.
    let (_, v) = call(r#"{"a":1,"a":500}"#);
    assert_eq!(v["error"]["code"], -32602, "{v}");
    gw.shutdown();
}

/// A 2025-revision client's declared capabilities are what each backend is told at initialize
/// (a backend that checks them before sampling or eliciting must see the client's, not `{}`).
#[test]
fn backends_are_initialized_with_the_clients_capabilities() {
    let rec = common::recorder(|seen: &common::Seen| {
        let msg: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
        if msg.get("id").is_none() {
            return (202, "application/json", Vec::new());
        }
        let result = json!({"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"b","version":"1"}});
        (
            200,
            "application/json",
            json!({"jsonrpc":"2.0","id":msg["id"],"result":result}).to_string().into_bytes(),
        )
    });
    let gw = start(&format!(
        "listen: 127.0.0.1:0\nworkers: 1\nsessions: {{ keys: [{{ id: k, secret: \"0123456789abcdef0123456789abcdef\" }}] }}\n\
servers:\n  - name: s\n    path: /mcp\n    backends: [{{ name: b1, url: \"http://{}/mcp\" }}]\n",
        rec.addr
    ));
    let caps = json!({"sampling": {}, "elicitation": {"form": {}, "url": {}}, "roots": {"listChanged": true}, "experimental": {"x": {"on": true}}});
    let body = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":caps,"clientInfo":{"name":"t","version":"1"}}});
    let (status, _, _) = post(gw.addrs()[0], &body.to_string(), None);
    assert_eq!(status, 200);
    let init = rec.take().into_iter().find(|s| s.body.contains("\"initialize\"")).unwrap();
    let sent: Value = serde_json::from_str(&init.body).unwrap();
    assert_eq!(sent["params"]["capabilities"], caps);
    gw.shutdown();
}

/// A 2026-07-28 client without a session reaches a 2025-revision backend over a session the
/// gateway opens for it: the backend is told at `initialize` exactly the capabilities the client
/// declared in `_meta`, and a caller declaring others gets a session of its own.
#[test]
fn gateway_owned_sessions_carry_the_clients_capabilities() {
    let rec = common::recorder(|seen: &common::Seen| {
        let msg: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
        if msg.get("id").is_none() {
            return (202, "application/json", Vec::new());
        }
        let answer = match msg["method"].as_str() {
            // A 2025-revision server: no server/discover.
            Some("server/discover") => {
                json!({"jsonrpc":"2.0","id":msg["id"],"error":{"code":-32601,"message":"Method not found"}})
            }
            Some("initialize") => {
                json!({"jsonrpc":"2.0","id":msg["id"],"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"b","version":"1"}}})
            }
            Some("tools/list") => {
                json!({"jsonrpc":"2.0","id":msg["id"],"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}})
            }
            _ => json!({"jsonrpc":"2.0","id":msg["id"],"result":{"content":[{"type":"text","text":"ok"}]}}),
        };
        (200, "application/json", answer.to_string().into_bytes())
    });
    let gw = start(&format!(
        "listen: 127.0.0.1:0\nworkers: 1\nservers:\n  - name: s\n    path: /mcp\n    backends: [{{ name: b1, url: \"http://{}/mcp\" }}]\n",
        rec.addr
    ));
    let call = |caps: &Value| {
        let mut s = TcpStream::connect(gw.addrs()[0]).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let body = json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{},
            "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":caps}}})
        .to_string();
        let req = format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: echo\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        assert!(text.starts_with("HTTP/1.1 200") && text.contains("\"ok\""), "{text}");
    };
    let inits = || -> Vec<Value> {
        rec.take()
            .into_iter()
            .filter(|s| s.body.contains("\"initialize\""))
            .map(|s| serde_json::from_str::<Value>(&s.body).unwrap()["params"]["capabilities"].clone())
            .collect()
    };
    let sampling =
        json!({"sampling": {}, "elicitation": {"form": {}, "url": {}}, "roots": {"listChanged": true}});
    call(&sampling);
    assert_eq!(inits(), vec![sampling.clone()], "the backend is told what the client declared");
    call(&sampling);
    assert_eq!(inits(), Vec::<Value>::new(), "the same caller and capabilities reuse the session");
    call(&json!({}));
    assert_eq!(inits(), vec![json!({})], "a caller declaring nothing is not given another's capabilities");
    gw.shutdown();
}

/// The lists the gateway asks a 2026-07-28 backend for on a caller's behalf carry the caller's
/// declared capabilities in `_meta`, not an empty set (a server may list by what the client can do).
#[test]
fn lists_asked_of_modern_backends_carry_the_clients_capabilities() {
    let rec = common::recorder(|seen: &common::Seen| {
        let msg: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
        let result = match msg["method"].as_str() {
            Some("server/discover") => {
                json!({"supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},"serverInfo":{"name":"m","version":"1"},"resultType":"complete"})
            }
            _ => json!({"tools":[{"name":"echo","inputSchema":{"type":"object"}}],"resultType":"complete"}),
        };
        (
            200,
            "application/json",
            json!({"jsonrpc":"2.0","id":msg["id"],"result":result}).to_string().into_bytes(),
        )
    });
    let gw = start(&format!(
        "listen: 127.0.0.1:0\nworkers: 1\nservers:\n  - name: s\n    path: /mcp\n    backends: [{{ name: m, url: \"http://{}/mcp\" }}]\n",
        rec.addr
    ));
    let caps = json!({"sampling": {}, "elicitation": {"form": {}}});
    let mut s = TcpStream::connect(gw.addrs()[0]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = json!({"jsonrpc":"2.0","id":3,"method":"tools/list","params":{
        "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":caps}}})
    .to_string();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    assert!(text.starts_with("HTTP/1.1 200") && text.contains("\"echo\""), "{text}");
    let list = rec.take().into_iter().find(|s| s.body.contains("\"tools/list\"")).unwrap();
    let sent: Value = serde_json::from_str(&list.body).unwrap();
    assert_eq!(sent["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"], caps, "{sent}");
    gw.shutdown();
}

/// Stateless (2026-07-28) clients of one principal share the gateway-owned session of a 2025
/// backend, and such clients all tend to number their requests from 1: two of their calls in
/// flight at once must not reach the backend under one id (a session server routes a response
/// by its request's id, so the two answers could be swapped or lost). Each call gets its own
/// answer, under its own id.
#[test]
fn concurrent_calls_with_one_id_over_a_shared_session_get_their_own_answers() {
    let in_flight: Arc<Mutex<Vec<String>>> = Arc::default();
    let clash = Arc::new(Mutex::new(false));
    let (flight, clashed) = (in_flight.clone(), clash.clone());
    let addr = minimal_server(Arc::new(move |_s: &mut TcpStream, msg: &Value| {
        if msg["method"] != "tools/call" {
            return None;
        }
        let id = msg["id"].to_string();
        if flight.lock().unwrap().contains(&id) {
            *clashed.lock().unwrap() = true;
        }
        flight.lock().unwrap().push(id.clone());
        std::thread::sleep(Duration::from_millis(300)); // both calls are in flight now
        flight.lock().unwrap().retain(|i| *i != id);
        let who = msg["params"]["arguments"]["who"].clone();
        Some(plain(json!({"jsonrpc":"2.0","id":msg["id"],"result":{"content":[{"type":"text","text":who}]}})))
    }));
    let gw = start(&format!(
        "listen: 127.0.0.1:0\nworkers: 1\nservers:\n  - name: s\n    path: /mcp\n    backends: [{{ name: b1, url: \"http://{addr}/mcp\" }}]\n"
    ));
    let at = gw.addrs()[0];
    // The session is opened first, so both calls find it.
    let (status, first) = post_2026_with(at, "echo", r#""name":"echo","arguments":{"who":"Eve"},"#, "");
    assert_eq!((status, &first["result"]["content"][0]["text"]), (200, &json!("Eve")), "{first}");
    let calls: Vec<_> = ["Ada", "Bob"]
        .into_iter()
        .map(|who| {
            std::thread::Builder::new()
                .spawn(move || {
                    let params = format!(r#""name":"echo","arguments":{{"who":"{who}"}},"#);
                    (who, post_2026_with(at, "echo", &params, ""))
                })
                .unwrap()
        })
        .collect();
    for call in calls {
        let (who, (status, answer)) = call.join().unwrap();
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["id"], json!(11), "the client's own id: {answer}");
        assert_eq!(
            answer["result"]["content"][0]["text"],
            json!(who),
            "{who} got another's answer: {answer}"
        );
    }
    assert!(!*clash.lock().unwrap(), "the backend saw two requests in flight under one id");
    gw.shutdown();
}
