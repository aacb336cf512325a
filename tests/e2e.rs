//! End-to-end: the gateway started in-process (real workers, real sockets on 127.0.0.1) and
//! driven by a raw HTTP/1.1 client, so every byte on the wire is the test's choice.
#![allow(clippy::unwrap_used)] // test harness: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use portcullis::config::watch::{Reloader, Source};
use portcullis::runtime::Gateway;

const BASE: &str = r#"
listen: 127.0.0.1:0
admin: 127.0.0.1:0
workers: 2
shutdownGraceMs: 2000
limits: { maxBodyBytes: 2048, maxHeaderBytes: 2048, headerTimeoutMs: 300, idleTimeoutMs: 2000 }
sessions: { keys: [{ id: k1, secret: "0123456789abcdef0123456789abcdef" }], ttlSeconds: 600 }
servers:
  - name: demo
    path: /mcp
    allowTools: [hello, echo, cfg]
    server: { config: { motd: "hi there" } }
    tools:
      - name: hello
        description: greets
        args: [{ name: who, type: string, required: true }]
        responseTemplate: { body: "Hello, {{.args.who}}!" }
      - name: echo
        description: echoes
        args: [{ name: text, type: string }]
        responseTemplate: { body: "{{.args.text}}" }
      - name: cfg
        description: config
        responseTemplate: { body: "{{.config.motd}}" }
      - name: hidden
        description: not in allowTools
        responseTemplate: { body: "secret" }
"#;

struct Harness {
    gw: Option<Gateway>,
    addr: SocketAddr,
    admin: SocketAddr,
    file: PathBuf,
}

impl Harness {
    fn start(config: &str) -> Harness {
        let file = std::env::temp_dir().join(format!(
            "portcullis-e2e-{}-{}.yaml",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        std::fs::write(&file, config).unwrap();
        let source = Source::File(file.clone());
        let snap = source.compile().unwrap();
        let gw = Gateway::start(Arc::new(Reloader::new(source, snap))).unwrap();
        let addr = gw.addrs()[0];
        let admin = gw.admin_addr().unwrap();
        Harness { gw: Some(gw), addr, admin, file }
    }

    fn conn(&self) -> Client {
        Client::connect(self.addr)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(gw) = self.gw.take() {
            gw.shutdown();
        }
        let _ = std::fs::remove_file(&self.file);
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    fn code(&self) -> i64 {
        self.json()["error"]["code"].as_i64().unwrap_or_else(|| panic!("no error code in {:?}", self.json()))
    }
}

struct Client {
    s: TcpStream,
    pending: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Client { s, pending: Vec::new() }
    }

    fn send(&mut self, raw: &[u8]) {
        self.s.write_all(raw).unwrap();
    }

    /// Reads one response (Content-Length framed, or empty for 1xx/204/304).
    fn read(&mut self) -> Option<Resp> {
        loop {
            if let Some(end) = find(&self.pending, b"\r\n\r\n") {
                let head = String::from_utf8(self.pending[..end].to_vec()).unwrap();
                let mut lines = head.split("\r\n");
                let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
                let headers: Vec<(String, String)> = lines
                    .map(|l| {
                        let (n, v) = l.split_once(':').unwrap();
                        (n.to_string(), v.trim().to_string())
                    })
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap_or(0);
                while self.pending.len() < end + 4 + len {
                    if !self.fill() {
                        return None;
                    }
                }
                let body = self.pending[end + 4..end + 4 + len].to_vec();
                self.pending.drain(..end + 4 + len);
                return Some(Resp { status, headers, body });
            }
            if !self.fill() {
                return None;
            }
        }
    }

    fn fill(&mut self) -> bool {
        let mut b = [0u8; 8192];
        match self.s.read(&mut b) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.pending.extend_from_slice(&b[..n]);
                true
            }
        }
    }

    /// Whether the server closed the connection (EOF with nothing pending).
    fn closed(&mut self) -> bool {
        self.pending.is_empty() && !self.fill()
    }

    fn exchange(&mut self, raw: &[u8]) -> Resp {
        self.send(raw);
        self.read().expect("response")
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// A POST with the headers MCP clients send, plus `extra` header lines.
fn post(body: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn initialize(c: &mut Client, version: &str) -> String {
    let r = c.exchange(&post(
        &format!(r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{}},"clientInfo":{{"name":"t","version":"1"}}}}}}"#),
        "",
    ));
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    r.header("mcp-session-id").unwrap().to_string()
}

fn sid(s: &str) -> String {
    format!("Mcp-Session-Id: {s}\r\n")
}

#[test]
fn legacy_session_lifecycle() {
    let h = Harness::start(BASE);
    let mut c = h.conn();
    let init = c.exchange(&post(
        r#"{"jsonrpc":"2.0","id":"init-1","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        "",
    ));
    assert_eq!(init.status, 200);
    let v = init.json();
    assert_eq!(v["id"], "init-1");
    assert_eq!(v["result"]["protocolVersion"], "2025-06-18");
    let s = init.header("mcp-session-id").unwrap().to_string();
    assert!(s.bytes().all(|b| (0x21..=0x7e).contains(&b)));

    let n = c.exchange(&post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, &sid(&s)));
    assert_eq!((n.status, n.body.len()), (202, 0));

    let list = c.exchange(&post(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, &sid(&s))).json();
    let names: Vec<&str> =
        list["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["hello", "echo", "cfg"], "allowTools hides `hidden`");

    let call = c.exchange(&post(
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"hello","arguments":{"who":"Ada \"L\""}}}"#,
        &sid(&s),
    ));
    assert_eq!(call.json()["result"]["content"][0]["text"], "Hello, Ada \"L\"!");
    assert_eq!(call.json()["result"]["isError"], false);
    let cfg = c.exchange(&post(
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"cfg"}}"#,
        &sid(&s),
    ));
    assert_eq!(cfg.json()["result"]["content"][0]["text"], "hi there");

    // Terminated on one connection (and so one worker) -> 404 on fresh connections, whichever
    // worker the kernel picks for them.
    let del = c.exchange(format!("DELETE /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n{}\r\n", sid(&s)).as_bytes());
    assert_eq!(del.status, 204);
    for _ in 0..8 {
        let mut other = h.conn();
        let r = other.exchange(&post(r#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#, &sid(&s)));
        assert_eq!(r.status, 404);
        assert_eq!(r.code(), -32001);
        assert_eq!(r.json()["id"], 5);
    }
}

#[test]
fn sessions_are_required_and_checked() {
    let h = Harness::start(BASE);
    let mut c = h.conn();
    let r = c.exchange(&post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, ""));
    assert_eq!(r.status, 400, "missing session id");
    let s = initialize(&mut c, "2025-11-25");
    let ping = c.exchange(&post(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#, &sid(&s)));
    assert_eq!(ping.json()["result"], serde_json::json!({}));
    let mut tampered = s.into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let r = c.exchange(&post(
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        &sid(std::str::from_utf8(&tampered).unwrap()),
    ));
    assert_eq!(r.status, 404);
    let r = c.exchange(&post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, &sid("not-a-session")));
    assert_eq!(r.status, 404);
}

#[test]
fn json_rpc_errors_carry_codes_and_ids() {
    let h = Harness::start(BASE);
    let mut c = h.conn();
    let s = initialize(&mut c, "2025-06-18");
    let cases: [(&str, u16, i64); 7] = [
        ("{not json", 400, -32700),
        (r#"{"jsonrpc":"2.0","id":1,"method":"nope/nope"}"#, 200, -32601),
        (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"missing"}}"#, 200, -32602),
        (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hidden"}}"#, 200, -32602),
        (r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, 400, -32600),
        (r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, 400, -32600),
        (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, 400, -32600),
    ];
    for (body, status, code) in cases {
        let r = c.exchange(&post(body, &format!("{}MCP-Protocol-Version: 2025-06-18\r\n", sid(&s))));
        assert_eq!((r.status, r.code()), (status, code), "{body}");
    }
    let r = c.exchange(&post(
        r#"{"jsonrpc":"2.0","id":"x-9","method":"tools/call","params":{"name":"missing"}}"#,
        &sid(&s),
    ));
    assert_eq!(r.json()["id"], "x-9");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("Unknown tool: missing"));
    let r = c.exchange(&post(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello","arguments":{}}}"#,
        &sid(&s),
    ));
    assert_eq!(r.json()["result"]["isError"], true, "missing required argument is a tool error");
    let r = c.exchange(&post(
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        &format!("{}MCP-Protocol-Version: 1999-01-01\r\n", sid(&s)),
    ));
    assert_eq!(r.status, 400);
    // x-envoy-allow-mcp-tools narrows the list further.
    let r = c.exchange(&post(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        &format!("{}x-envoy-allow-mcp-tools: echo\r\n", sid(&s)),
    ));
    assert_eq!(r.json()["result"]["tools"].as_array().unwrap().len(), 1);
}

#[test]
fn batches_only_in_2025_03_26() {
    let h = Harness::start(BASE);
    let mut c = h.conn();
    let s = initialize(&mut c, "2025-03-26");
    let r = c.exchange(&post(
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"},{"jsonrpc":"2.0","id":2,"method":"bogus"}]"#,
        &sid(&s),
    ));
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["id"], 1);
    assert_eq!(v[1]["error"]["code"], -32601);
    let r = c.exchange(&post(r#"[{"jsonrpc":"2.0","method":"notifications/x"}]"#, &sid(&s)));
    assert_eq!(r.status, 202);
    // Regression: a batch of tiny elements each answered with an error amplified one request
    // into a response hundreds of times its size. Batches are capped at 100 messages.
    let many = format!("[{}]", vec!["1"; 101].join(","));
    let r = c.exchange(&post(&many, &sid(&s)));
    assert_eq!((r.status, r.code()), (400, -32600));
}

fn modern(method: &str, name: Option<&str>, body: &str) -> Vec<u8> {
    let mut extra = format!("MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: {method}\r\n");
    if let Some(n) = name {
        extra.push_str(&format!("Mcp-Name: {n}\r\n"));
    }
    post(body, &extra)
}

const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

#[test]
fn stateless_2026_wire() {
    let h = Harness::start(BASE);
    let mut c = h.conn();
    let d = c.exchange(&modern(
        "server/discover",
        None,
        &format!(r#"{{"jsonrpc":"2.0","id":"d","method":"server/discover","params":{{{META}}}}}"#),
    ));
    assert_eq!(d.status, 200);
    assert!(d.header("mcp-session-id").is_none(), "2026-07-28 has no sessions");
    let v = d.json();
    assert!(v["result"]["supportedVersions"].as_array().unwrap().contains(&"2026-07-28".into()));
    assert_eq!(v["result"]["resultType"], "complete");
    assert!(v["result"]["ttlMs"].is_u64());
    assert!(v["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"].is_string());

    let call = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"t"}},{META}}}}}"#
    );
    let r = c.exchange(&modern("tools/call", Some("  echo  "), &call));
    assert_eq!(r.json()["result"]["content"][0]["text"], "t");
    assert_eq!(r.json()["result"]["resultType"], "complete");
    let r = c.exchange(&modern("tools/call", Some("=?base64?ZWNobw==?="), &call));
    assert_eq!(r.status, 200, "base64 sentinel form of Mcp-Name");

    let r = c.exchange(&modern("tools/call", Some("hello"), &call));
    assert_eq!((r.status, r.code()), (400, -32020), "Mcp-Name mismatch");
    let r = c.exchange(&modern("tools/list", None, &call));
    assert_eq!((r.status, r.code()), (400, -32020), "Mcp-Method mismatch");
    let r = c.exchange(&modern("tools/call", None, &call));
    assert_eq!((r.status, r.code()), (400, -32020), "Mcp-Name missing");
    let r = c.exchange(&modern(
        "tools/list",
        None,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}"#,
    ));
    assert_eq!((r.status, r.code()), (400, -32602), "_meta missing");
    let r = c.exchange(&modern(
        "ping",
        None,
        &format!(r#"{{"jsonrpc":"2.0","id":4,"method":"ping","params":{{{META}}}}}"#),
    ));
    assert_eq!((r.status, r.code()), (404, -32601), "ping is gone in 2026-07-28");
    assert_eq!(r.json()["id"], 4);

    let v999 = r#"{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"v999.0.0","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let r = c.exchange(&post(v999, "MCP-Protocol-Version: v999.0.0\r\nMcp-Method: tools/list\r\n"));
    assert_eq!((r.status, r.code()), (400, -32022));
    assert_eq!(r.json()["error"]["data"]["requested"], "v999.0.0");
    let r = c.exchange(&post(v999, "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\n"));
    assert_eq!((r.status, r.code()), (400, -32020), "header/body version mismatch is reported first");
    for (m, member) in [
        ("prompts/list", "prompts"),
        ("resources/list", "resources"),
        ("resources/templates/list", "resourceTemplates"),
    ] {
        let r = c.exchange(&modern(
            m,
            None,
            &format!(r#"{{"jsonrpc":"2.0","id":6,"method":"{m}","params":{{{META}}}}}"#),
        ));
        assert_eq!(r.json()["result"][member], serde_json::json!([]), "{m}");
        assert_eq!(r.json()["result"]["cacheScope"], "private");
    }
}

#[test]
fn transport_checks() {
    let h = Harness::start(BASE);
    let mut c = h.conn();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
    let no_accept = format!("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    assert_eq!(c.exchange(no_accept.as_bytes()).status, 406);
    let text = format!("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let mut c = h.conn();
    assert_eq!(c.exchange(text.as_bytes()).status, 415);
    let mut c = h.conn();
    let evil = c.exchange(&post(body, "Origin: http://evil.example.com\r\n"));
    assert_eq!(evil.status, 403);
    let mut c = h.conn();
    let rebinding = format!("POST /mcp HTTP/1.1\r\nHost: evil.example.com\r\nOrigin: http://evil.example.com\r\nAccept: */*\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    assert_eq!(c.exchange(rebinding.as_bytes()).status, 403);
    let mut c = h.conn();
    let ok = c.exchange(&post(body, "Origin: http://127.0.0.1:3000\r\n"));
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("access-control-allow-origin"), Some("http://127.0.0.1:3000"));
    let pre = c.exchange(b"OPTIONS /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1:5173\r\nAccess-Control-Request-Method: POST\r\n\r\n");
    assert_eq!(pre.status, 204);
    let cross =
        c.exchange(b"OPTIONS /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://localhost:5173\r\n\r\n");
    assert_eq!(cross.status, 403, "without allowedOrigins only the same host may call");
    assert!(pre.header("access-control-allow-headers").unwrap().contains("mcp-session-id"));
    assert_eq!(
        c.exchange(b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n").status,
        405
    );
    // Regression: a HEAD response carried a body, desynchronising the keep-alive connection.
    c.send(b"HEAD /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    c.send(b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let mut raw = Vec::new();
    while find(&raw, b"Not Found").is_none() {
        let mut b = [0u8; 4096];
        let n = c.s.read(&mut b).unwrap();
        assert!(n > 0);
        raw.extend_from_slice(&b[..n]);
    }
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.1 405"), "{text}");
    let second = text.find("HTTP/1.1 404").expect("second response follows the HEAD head directly");
    assert!(text[..second].ends_with("\r\n\r\n"), "no body after the HEAD response head: {text}");
    let mut c = h.conn();
    let split = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nAccept: text/event-stream\r\n\
Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(c.exchange(split.as_bytes()).status, 200, "Accept split over two lines is one list");
    let nf = c.exchange(b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(nf.status, 404);
    assert_eq!(nf.code(), -32600, "every error response carries a JSON-RPC error");
}

#[test]
fn http_framing_on_the_wire() {
    let h = Harness::start(BASE);
    let mut c = h.conn();
    let s = initialize(&mut c, "2025-06-18");
    // Pipelining: two requests in one write, answered in order.
    let mut two = post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, &sid(&s));
    two.extend(post(r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#, &sid(&s)));
    c.send(&two);
    assert_eq!(c.read().unwrap().json()["id"], 1);
    assert_eq!(c.read().unwrap().json()["id"], 2);
    // Chunked body, with an extension and a trailer.
    let body = r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#;
    let chunked = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\nContent-Type: application/json\r\n{}Transfer-Encoding: chunked\r\n\r\n5;x=y\r\n{}\r\n{:x}\r\n{}\r\n0\r\nX-T: 1\r\n\r\n",
        sid(&s),
        &body[..5],
        body.len() - 5,
        &body[5..]
    );
    assert_eq!(c.exchange(chunked.as_bytes()).json()["id"], 3);
    // Expect: 100-continue: interim response, then the final one.
    let mut req = post(body, &format!("{}Expect: 100-continue\r\n", sid(&s)));
    let split = find(&req, b"\r\n\r\n").unwrap() + 4;
    let rest = req.split_off(split);
    c.send(&req);
    assert_eq!(c.read().unwrap().status, 100);
    c.send(&rest);
    assert_eq!(c.read().unwrap().json()["id"], 3);

    // Smuggling shapes are refused and the connection closed.
    for bad in [
        "POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST /mcp HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST /mcp HTTP/1.1\r\nHost : a\r\n\r\n",
        "POST /mcp HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
        "POST /mcp HTTP/1.1\r\n\r\n",
        "POST /mcp HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let mut c = h.conn();
        let r = c.exchange(bad.as_bytes());
        assert_eq!(r.status, 400, "{bad:?}");
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.code(), -32600);
        assert!(c.closed(), "{bad:?}");
    }
}

#[test]
fn limits_and_timeouts() {
    let h = Harness::start(BASE);
    let big = "x".repeat(3000);
    let mut c = h.conn();
    assert_eq!(c.exchange(&post(&big, "")).status, 413);
    assert!(c.closed());
    let mut c = h.conn();
    let r = c.exchange(format!("GET /mcp HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n").as_bytes());
    assert_eq!(r.status, 431);
    // A slow client: half a head, then silence past headerTimeoutMs (300 ms) -> 408 and close.
    let mut c = h.conn();
    c.send(b"POST /mcp HTTP/1.1\r\nHost: a\r\n");
    let r = c.read().unwrap();
    assert_eq!(r.status, 408);
    assert!(c.closed());
}

fn admin(h: &Harness, method: &str, path: &str) -> Resp {
    let mut c = Client::connect(h.admin);
    c.exchange(format!("{method} {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").as_bytes())
}

#[test]
fn admin_metrics_config_and_reload() {
    let h = Harness::start(BASE);
    let mut c = h.conn();
    let s = initialize(&mut c, "2025-06-18");
    c.exchange(&post(
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"a"}}}"#,
        &sid(&s),
    ));
    assert_eq!(admin(&h, "GET", "/healthz").status, 200);
    assert_eq!(admin(&h, "GET", "/readyz").status, 200);
    let m = String::from_utf8(admin(&h, "GET", "/metrics").body).unwrap();
    assert!(
        m.contains(r#"portcullis_requests_total{server="demo",method="tools/call",status="200"} 1"#),
        "{m}"
    );
    assert!(m.contains("portcullis_request_duration_seconds_count"));
    assert!(m.contains("portcullis_workers 2"));
    let cfg = String::from_utf8(admin(&h, "GET", "/config").body).unwrap();
    assert!(!cfg.contains("0123456789abcdef"), "session secret redacted: {cfg}");
    assert!(cfg.contains("hi there"), "a server.config value that is no secret is shown: {cfg}");

    // A broken file changes nothing and reports its errors.
    std::fs::write(&h.file, BASE.replace("allowTools: [hello, echo, cfg]", "allowTools: [nope]")).unwrap();
    let r = admin(&h, "POST", "/reload");
    assert_eq!(r.status, 422);
    assert!(String::from_utf8_lossy(&r.body).contains("servers[0].allowTools[0]"));
    let list = c.exchange(&post(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, &sid(&s))).json();
    assert_eq!(list["result"]["tools"].as_array().unwrap().len(), 3);
    // A good file is published; sessions sealed with the same key stay valid.
    std::fs::write(&h.file, BASE.replace("allowTools: [hello, echo, cfg]", "allowTools: [hello]")).unwrap();
    assert_eq!(admin(&h, "POST", "/reload").status, 200);
    let list = c.exchange(&post(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#, &sid(&s))).json();
    assert_eq!(list["result"]["tools"].as_array().unwrap().len(), 1);
    let m = String::from_utf8(admin(&h, "GET", "/metrics").body).unwrap();
    assert!(m.contains("portcullis_config_reload_failures_total 1"));
}

#[test]
fn connection_limit_and_graceful_shutdown() {
    let h = Harness::start(
        &BASE
            .replace("workers: 2", "workers: 1")
            .replace("idleTimeoutMs: 2000", "idleTimeoutMs: 2000, maxConnectionsPerWorker: 1"),
    );
    let mut first = h.conn();
    let s = initialize(&mut first, "2025-06-18");
    let mut second = h.conn();
    second.send(&post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, &sid(&s)));
    assert_eq!(second.read().unwrap().status, 503);
    // Shutdown with an idle keep-alive connection open: it is closed and shutdown returns.
    let mut h = h;
    let gw = h.gw.take().unwrap();
    gw.shutdown();
    assert!(first.closed());
}

/// An idle keep-alive connection gives its buffers and request pipeline back after 100 ms and
/// waits holding neither (`proxy::idle`): the request that comes later, also right at that
/// moment (the idle read cancelled as its bytes arrive) or split across the switch, is served
/// whole; a connection silent for the whole idle timeout (2 s here, checked on the worker's
/// 100 ms tick) is closed.
#[test]
fn idle_connections_give_their_buffers_back_and_are_served_later() {
    let h = Harness::start(BASE);
    let mut c = h.conn();
    let call = |id: u32| {
        modern(
            "tools/call",
            Some("echo"),
            &format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"t{id}"}},{META}}}}}"#
            ),
        )
    };
    for (n, pause_ms) in [0u64, 95, 99, 100, 101, 105, 110, 300].into_iter().enumerate() {
        std::thread::sleep(std::time::Duration::from_millis(pause_ms));
        let r = c.exchange(&call(n as u32));
        assert_eq!(r.status, 200, "after {pause_ms} ms: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["result"]["content"][0]["text"], format!("t{n}"), "after {pause_ms} ms");
    }
    // A request whose head straddles the switch: half before, half after.
    let raw = call(9);
    std::thread::sleep(std::time::Duration::from_millis(150));
    c.send(&raw[..20]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.send(&raw[20..]);
    let r = c.read().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["result"]["content"][0]["text"], "t9");
    // Silent past the idle timeout: closed.
    std::thread::sleep(std::time::Duration::from_millis(2300));
    assert!(c.closed());
}
