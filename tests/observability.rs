//! Observability end to end: `/metrics` families (requests by server/method/tool/status, latency
//! split into gateway and backend time, authentication failures, token cache, authorization
//! decisions, upstream pool, sessions, reloads, TLS handshakes), the JSON access log of the built
//! binary (fields, hostile input, secrets never written at debug level), the `log` block with
//! `RUST_LOG` overriding it, and the request id and W3C trace context reaching MCP and REST
//! backends. Backends are recording fixtures written here (std sockets).
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_types)] // fixture bookkeeping across test threads, not the data path

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{send, Resp};
use portcullis::config::compile::compile_str;
use portcullis::config::watch::{Reloader, Source};
use portcullis::runtime::Gateway;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const JWT_KEY: &[u8] = b"observability-test-hmac-key-0123456789";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// One request a fixture received: its head (request line and header lines) and body.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A keep-alive HTTP/1.1 server that records every request. `/mcp` speaks enough MCP for a
/// 2025 session (initialize, notifications, tools/list, tools/call echoing its arguments,
/// DELETE); any other path answers a REST JSON object.
fn recorder() -> (SocketAddr, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    std::thread::Builder::new()
        .spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let seen = s2.clone();
                std::thread::Builder::new()
                    .spawn(move || {
                        let mut buf = Vec::new();
                        while let Some((head, body)) = common::read_request(&mut s, &mut buf) {
                            seen.lock().unwrap().push((head.clone(), body.clone()));
                            let reply = answer(&head, &body);
                            if s.write_all(reply.as_bytes()).is_err() {
                                return;
                            }
                        }
                    })
                    .unwrap();
            }
        })
        .unwrap();
    (addr, seen)
}

fn answer(head: &str, body: &[u8]) -> String {
    let reply = |status: &str, extra: &str, body: &str| {
        format!("HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())
    };
    if !head.contains(" /mcp") {
        return reply("200 OK", "Content-Type: application/json\r\n", r#"{"temp":21}"#);
    }
    if head.starts_with("DELETE ") {
        return reply("200 OK", "", "");
    }
    let msg: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let method = msg["method"].as_str().unwrap_or("");
    if msg.get("id").is_none() {
        return reply("202 Accepted", "", "");
    }
    let result = match method {
        "initialize" => {
            json!({"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}}, "serverInfo": {"name": "rec", "version": "1"}})
        }
        "tools/list" => json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}),
        "tools/call" => {
            json!({"content": [{"type": "text", "text": format!("echo:{}", msg["params"]["arguments"])}], "isError": false})
        }
        _ => {
            let e = json!({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "Method not found"}});
            return reply("200 OK", "Content-Type: application/json\r\n", &e.to_string());
        }
    };
    let r = json!({"jsonrpc": "2.0", "id": msg["id"], "result": result}).to_string();
    reply("200 OK", "Content-Type: application/json\r\nMcp-Session-Id: rec-sess\r\n", &r)
}

/// The value of header `name` in a recorded head, every time it appears.
fn header_values(head: &str, name: &str) -> Vec<String> {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

fn token(sub: &str, scope: &str, key: &[u8]) -> String {
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    let claims = json!({"iss": "https://idp.test", "sub": sub, "aud": "https://gw.test/mcp", "exp": exp, "scope": scope});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("h".into());
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(key)).unwrap()
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A JWT-protected server with authorization rules, an MCP backend and REST tools at `rec`.
fn config(rec: SocketAddr, dead: u16) -> String {
    let k = base64_simd::URL_SAFE_NO_PAD.encode_to_string(JWT_KEY);
    format!(
        r#"
listen: 127.0.0.1:0
admin: 127.0.0.1:0
workers: 1
sessions: {{ keys: [{{ id: k1, secret: "0123456789abcdef0123456789abcdef" }}] }}
servers:
  - name: tools
    path: /mcp
    resource: https://gw.test/mcp
    authentication:
      mode: jwt
      jwt: {{ providers: [{{ name: t, issuer: https://idp.test, jwks: {{ inline: {{ keys: [{{ kty: oct, kid: h, k: "{k}" }}] }} }} }}] }}
    authorization:
      defaultAction: deny
      rules:
        - name: echo-for-scoped
          source: {{ jwt: {{ scopes: [echo] }} }}
          target: {{ tools: [{{ backend: b1, tool: echo }}] }}
        - target: {{ tools: [{{ backend: tools, tool: weather }}, {{ backend: tools, tool: dead }}] }}
    server:
      securitySchemes:
        - {{ id: restBearer, type: http, scheme: bearer, defaultCredential: "REST-DEFAULT-CRED-5c1" }}
        - {{ id: mcpKey, type: apiKey, in: header, name: X-Backend-Key, defaultCredential: "MCP-BACKEND-CRED-9f2" }}
    tools:
      - name: weather
        args: [{{ name: city, type: string }}]
        requestTemplate: {{ url: "http://{rec}/rest/weather?city={{{{.args.city}}}}", method: GET, security: {{ id: restBearer }} }}
      - name: dead
        requestTemplate: {{ url: "http://127.0.0.1:{dead}/x", method: GET }}
    backends:
      - name: b1
        url: http://{rec}/mcp
        toolSelector: {{ include: [echo, sum] }}
        security: {{ id: mcpKey }}
        forwardHeaders: [{{ name: x-request-id }}, {{ name: traceparent }}]
"#
    )
}

fn post(addr: SocketAddr, auth: &str, extra: &str, body: &str) -> Resp {
    let auth = if auth.is_empty() { String::new() } else { format!("Authorization: Bearer {auth}\r\n") };
    send(
        addr,
        &format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\n{auth}{extra}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn initialize(addr: SocketAddr, auth: &str, extra: &str) -> String {
    let r = post(
        addr,
        auth,
        extra,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.header("mcp-session-id").unwrap().to_string()
}

fn call(addr: SocketAddr, auth: &str, sid: &str, extra: &str, tool: &str, args: &str) -> Resp {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
    );
    post(addr, auth, &format!("Mcp-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-06-18\r\n{extra}"), &body)
}

fn scrape(admin: SocketAddr) -> String {
    let r = send(admin, "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    String::from_utf8(r.body).unwrap()
}

/// The value of the series `series` (name and labels, exactly as exposed); panics when absent.
fn value(m: &str, series: &str) -> f64 {
    m.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no series {series} in:\n{m}"))
        .parse()
        .unwrap()
}

#[test]
fn metrics_cover_requests_latency_auth_decisions_pool_sessions_and_reloads() {
    let (rec, seen) = recorder();
    let dead = dead_port();
    let text = config(rec, dead);
    let file = std::env::temp_dir().join(format!("portcullis-obs-{}.yaml", std::process::id()));
    std::fs::write(&file, &text).unwrap();
    let snap = compile_str(&text, &|_| None).unwrap_or_else(|e| panic!("{e:#?}"));
    let gw = Gateway::start(Arc::new(Reloader::new(Source::File(file.clone()), snap))).unwrap();
    let (addr, admin) = (gw.addrs()[0], gw.admin_addr().unwrap());
    let t = token("alice", "echo", JWT_KEY);

    let sid = initialize(addr, &t, ""); // token verified: a cache miss
    let r = call(addr, &t, &sid, "", "b1__echo", r#"{"text":"hi"}"#);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(call(addr, &t, &sid, "", "b1__sum", "{}").status, 403, "default deny");
    for _ in 0..2 {
        let r = call(addr, &t, &sid, "", "weather", r#"{"city":"Paris"}"#);
        assert!(String::from_utf8_lossy(&r.body).contains("temp"), "{}", String::from_utf8_lossy(&r.body));
    }
    let r = call(addr, &t, &sid, "", "dead", "{}");
    assert!(String::from_utf8_lossy(&r.body).contains(r#""isError":true"#));
    call(addr, &t, &sid, "", "b1__nope", "{}");
    let bad = token("mallory", "echo", b"not-the-key-not-the-key-not-the-key!!");
    assert_eq!(call(addr, &bad, &sid, "", "b1__echo", "{}").status, 401);
    assert_eq!(call(addr, "", &sid, "", "b1__echo", "{}").status, 401);
    let del = send(
        addr,
        &format!(
            "DELETE /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {t}\r\nMcp-Session-Id: {sid}\r\n\
MCP-Protocol-Version: 2025-06-18\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(del.status, 204);
    assert!(seen.lock().unwrap().iter().any(|(h, _)| h.starts_with("DELETE ")), "backend session ended");

    let m = scrape(admin);
    let tc = |labels: &str| value(&m, &format!("portcullis_tool_calls_total{{server=\"tools\",{labels}}}"));
    assert_eq!(
        value(&m, r#"portcullis_requests_total{server="tools",method="tools/call",status="200"}"#),
        5.0
    );
    assert_eq!(
        value(&m, r#"portcullis_requests_total{server="tools",method="initialize",status="200"}"#),
        1.0
    );
    assert_eq!(tc(r#"backend="b1",tool="echo",status="200""#), 1.0);
    assert_eq!(tc(r#"backend="b1",tool="sum",status="403""#), 1.0);
    assert_eq!(tc(r#"backend="tools",tool="weather",status="200""#), 2.0);
    assert_eq!(tc(r#"backend="tools",tool="dead",status="200""#), 1.0);
    assert!(m.contains(r#"portcullis_tool_calls_total{server="tools",backend="other",tool="other""#), "{m}");
    assert!(!m.contains("nope"), "tool names outside the configuration never become labels");

    // Latency: every request in the whole-request and gateway histograms, the ones that reached
    // a backend (initialize, echo, 2 x weather, dead, DELETE) in the backend histogram.
    let requests = value(&m, r#"portcullis_request_duration_seconds_count{server="tools"}"#);
    assert_eq!(requests, 10.0);
    assert_eq!(value(&m, r#"portcullis_gateway_duration_seconds_count{server="tools"}"#), requests);
    assert_eq!(value(&m, r#"portcullis_backend_duration_seconds_count{server="tools"}"#), 6.0);
    assert!(value(&m, r#"portcullis_backend_duration_seconds_sum{server="tools"}"#) > 0.0);
    assert_eq!(value(&m, r#"portcullis_backend_duration_seconds_bucket{server="tools",le="+Inf"}"#), 6.0);
    let total = value(&m, r#"portcullis_request_duration_seconds_sum{server="tools"}"#);
    let split = value(&m, r#"portcullis_gateway_duration_seconds_sum{server="tools"}"#)
        + value(&m, r#"portcullis_backend_duration_seconds_sum{server="tools"}"#);
    assert!((total - split).abs() < 1e-3, "gateway + backend = total ({total} vs {split})");

    assert_eq!(
        value(&m, r#"portcullis_authentication_failures_total{server="tools",reason="signature"}"#),
        1.0
    );
    assert_eq!(
        value(&m, r#"portcullis_authentication_failures_total{server="tools",reason="missing"}"#),
        1.0
    );
    assert_eq!(value(&m, r#"portcullis_token_cache_hits_total{server="tools"}"#), 7.0);
    assert_eq!(value(&m, r#"portcullis_token_cache_misses_total{server="tools"}"#), 2.0);

    let d = |labels: &str| {
        value(&m, &format!("portcullis_authorization_decisions_total{{server=\"tools\",{labels}}}"))
    };
    assert_eq!(d(r#"rule="0",rule_name="echo-for-scoped",decision="allow""#), 1.0);
    assert_eq!(d(r#"rule="1",decision="allow""#), 3.0);
    assert_eq!(d(r#"rule="default",decision="deny""#), 1.0);

    let ep = format!(r#"{{backend="b1,weather",endpoint="{rec}"}}"#);
    assert!(value(&m, &format!("portcullis_upstream_pool_connects_total{ep}")) >= 1.0);
    assert!(value(&m, &format!("portcullis_upstream_pool_reuses_total{ep}")) >= 1.0, "{m}");
    assert!(value(&m, &format!("portcullis_upstream_pool_idle_connections{ep}")) >= 1.0);
    assert_eq!(
        value(&m, &format!("portcullis_upstream_pool_connects_total{ep}")),
        value(&m, "portcullis_upstream_connections_total")
    );
    let dead_ep = format!(r#"{{backend="dead",endpoint="127.0.0.1:{dead}"}}"#);
    assert_eq!(value(&m, &format!("portcullis_upstream_connect_failures_total{dead_ep}")), 1.0);

    assert_eq!(value(&m, "portcullis_sessions_opened_total"), 1.0);
    assert_eq!(value(&m, "portcullis_sessions_closed_total"), 1.0);
    assert_eq!(value(&m, r#"portcullis_tls_handshakes_total{result="ok"}"#), 0.0);
    assert_eq!(value(&m, r#"portcullis_tls_handshakes_total{result="failed"}"#), 0.0);
    for secret in [&t[..], "REST-DEFAULT-CRED-5c1", "MCP-BACKEND-CRED-9f2", "Paris"] {
        assert!(!m.contains(secret), "{secret} in /metrics");
    }

    // Reloads: a broken file is rejected, a good one published (the file watcher may count
    // the same changes too).
    std::fs::write(&file, text.replace("defaultAction: deny", "defaultAction: maybe")).unwrap();
    let r = send(admin, "POST /reload HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(r.status, 422);
    std::fs::write(&file, &text).unwrap();
    let r = send(admin, "POST /reload HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(r.status, 200);
    let m = scrape(admin);
    assert!(value(&m, "portcullis_config_reload_failures_total") >= 1.0);
    assert!(value(&m, "portcullis_config_reloads_total") >= 1.0);
    gw.shutdown();
    let _ = std::fs::remove_file(file);
}

#[test]
fn request_id_and_trace_context_reach_mcp_and_rest_backends() {
    let (rec, seen) = recorder();
    let snap = compile_str(&config(rec, dead_port()), &|_| None).unwrap_or_else(|e| panic!("{e:#?}"));
    let gw = Gateway::start(Arc::new(Reloader::new(Source::Demo, snap))).unwrap();
    let addr = gw.addrs()[0];
    let t = token("alice", "echo", JWT_KEY);
    let trace =
        format!("X-Request-Id: req-42\r\ntraceparent: {TRACEPARENT}\r\ntracestate: congo=t61rcWkgMzE\r\n");
    let sid = initialize(addr, &t, &trace);
    let last = |path: &str| {
        let seen = seen.lock().unwrap();
        seen.iter().rev().find(|(h, _)| h.contains(path)).cloned().unwrap().0
    };
    let check = |head: &str, rid: &str, traced: bool| {
        assert_eq!(header_values(head, "x-request-id"), vec![rid.to_string()], "once: {head}");
        if traced {
            assert_eq!(header_values(head, "traceparent"), vec![TRACEPARENT.to_string()], "{head}");
            assert_eq!(header_values(head, "tracestate"), vec!["congo=t61rcWkgMzE".to_string()], "{head}");
        } else {
            assert!(header_values(head, "traceparent").is_empty(), "{head}");
            assert!(header_values(head, "tracestate").is_empty(), "{head}");
        }
    };
    check(&last(" /mcp"), "req-42", true);

    // MCP backend (tools/call in the client's session) and REST backend.
    let r = call(addr, &t, &sid, &trace, "b1__echo", r#"{"text":"hi"}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("req-42"), "the response carries it too");
    check(&last(" /mcp"), "req-42", true);
    let r = call(addr, &t, &sid, &trace, "weather", r#"{"city":"Oslo"}"#);
    assert_eq!(r.header("x-request-id"), Some("req-42"));
    check(&last(" /rest/weather"), "req-42", true);

    // An invalid traceparent (upper-case hex) is dropped with its tracestate; without a client
    // request id the gateway's own goes to the backend and back to the client.
    let bad =
        format!("traceparent: {}\r\ntracestate: congo=t61rcWkgMzE\r\n", TRACEPARENT.to_ascii_uppercase());
    let r = call(addr, &t, &sid, &bad, "b1__echo", r#"{"text":"hi"}"#);
    assert_eq!(r.status, 200);
    let rid = r.header("x-request-id").unwrap().to_string();
    assert!(rid.starts_with('w'), "{rid}");
    check(&last(" /mcp"), &rid, false);
    let r = call(addr, &t, &sid, &bad, "weather", r#"{"city":"Oslo"}"#);
    check(&last(" /rest/weather"), r.header("x-request-id").unwrap(), false);

    // A 2026-07-28 client reaches the backend over the worker's link: traced as well.
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{{"name":"b1__echo","arguments":{{"text":"x"}},{meta}}}}}"#
    );
    let r = post(
        addr,
        &t,
        &format!(
            "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: b1__echo\r\n{trace}"
        ),
        &body,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    check(&last(" /mcp"), "req-42", true);
    gw.shutdown();
}

/// The built binary with a config file; its stderr lines arrive on a channel.
struct Running {
    child: Child,
    lines: Receiver<String>,
    /// Every line read so far.
    log: Vec<String>,
    addr: SocketAddr,
    admin: SocketAddr,
}

impl Running {
    fn start(name: &str, config: &str, rust_log: Option<&str>) -> Running {
        let file = std::env::temp_dir().join(format!("portcullis-obs-{}-{name}.yaml", std::process::id()));
        std::fs::write(&file, config).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(&file).stderr(Stdio::piped()).stdout(Stdio::null()).env_remove("RUST_LOG");
        if let Some(v) = rust_log {
            cmd.env("RUST_LOG", v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            })
            .unwrap();
        let mut log = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let (addr, admin) = loop {
            let line = lines.recv_timeout(deadline - Instant::now()).expect("gateway did not start");
            log.push(line.clone());
            if let Some(rest) = line.split("listening on ").nth(1) {
                let addr = rest.split(' ').next().unwrap().trim_end_matches(',').parse().unwrap();
                let admin = rest.split("admin ").nth(1).unwrap();
                let admin = admin.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().unwrap();
                break (addr, admin);
            }
        };
        let _ = std::fs::remove_file(file);
        Running { child, lines, log, addr, admin }
    }

    /// Reads lines until `done` holds for the log so far, or `wait` passes.
    fn read_until(&mut self, wait: Duration, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + wait;
        while !done(&self.log) {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => self.log.push(line),
                Err(_) => return,
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON access lines of `log` (every line must be a JSON object).
fn access_lines(log: &[String]) -> Vec<Value> {
    log.iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .filter(|v| v["target"] == "access")
        .collect()
}

fn by_id<'a>(lines: &'a [Value], id: &str) -> &'a Value {
    lines
        .iter()
        .find(|v| v["request_id"] == id)
        .unwrap_or_else(|| panic!("no access line for {id}: {lines:#?}"))
}

#[test]
fn json_access_log_has_every_field_and_never_a_secret() {
    let (rec, _seen) = recorder();
    let base = config(rec, dead_port());
    let extra = r#"
  - name: keyed
    path: /mcp/keyed
    authentication: { mode: apiKey, apiKey: { in: header, name: X-Api-Key, keys: [{ id: ci, value: "APIKEY-SECRET-7a1" }] } }
    tools:
      - { name: hello, args: [{ name: who, type: string }], responseTemplate: { body: "Hello {{.args.who}}" } }
  - name: keyq
    path: /mcp/keyq
    authentication: { mode: apiKey, apiKey: { in: query, name: key, keys: [{ id: q, value: "APIKEY-QUERY-3b8" }] } }
    tools:
      - { name: hello, responseTemplate: { body: "hi" } }
  - name: basic
    path: /mcp/basic
    authentication: { mode: basic, basic: { users: [{ name: bob, password: "BASIC-PW-SECRET-2d4" }] } }
    tools:
      - { name: hello, responseTemplate: { body: "hi" } }
"#;
    let config = format!("log: {{ level: debug, format: json }}\n{base}{extra}");
    let mut gw = Running::start("json", &config, None);
    let addr = gw.addr;
    let t = token("alice", "echo", JWT_KEY);
    let sid = initialize(addr, &t, "X-Request-Id: t-init\r\n");
    let args = r#"{"text":"ARG-SECRET-e11"}"#;
    let r = call(addr, &t, &sid, "X-Request-Id: t-echo\r\n", "b1__echo", args);
    assert_eq!(r.status, 200);
    call(addr, &t, &sid, "X-Request-Id: t-weather\r\n", "weather", r#"{"city":"ARG-SECRET-c22"}"#);
    call(addr, &t, &sid, "X-Request-Id: t-sum\r\n", "b1__sum", r#"{"a":"ARG-SECRET-s33"}"#);
    // Hostile request id and tool name: quotes, backslashes, an escaped newline and NUL.
    let hostile_id = r#"h"i\{j"#;
    call(addr, &t, &sid, &format!("X-Request-Id: {hostile_id}\r\n"), r#"b1__x\"\n\u0000y"#, args);
    let call_at = |path: &str, extra: &str, rid: &str| {
        let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"hello","arguments":{{"who":"ARG-SECRET-h44"}},{meta}}}}}"#
        );
        send(
            addr,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: hello\r\n\
X-Request-Id: {rid}\r\n{extra}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    assert_eq!(call_at("/mcp/keyed", "X-Api-Key: APIKEY-SECRET-7a1\r\n", "t-key").status, 200);
    assert_eq!(call_at("/mcp/keyed", "X-Api-Key: APIKEY-SECRET-7a1x\r\n", "t-badkey").status, 401);
    assert_eq!(call_at("/mcp/keyq?key=APIKEY-QUERY-3b8", "", "t-keyq").status, 200);
    let basic = base64_simd::STANDARD.encode_to_string("bob:BASIC-PW-SECRET-2d4");
    assert_eq!(call_at("/mcp/basic", &format!("Authorization: Basic {basic}\r\n"), "t-basic").status, 200);
    let wrong = base64_simd::STANDARD.encode_to_string("bob:BASIC-PW-SECRET-2d4-wrong");
    assert_eq!(call_at("/mcp/basic", &format!("Authorization: Basic {wrong}\r\n"), "t-badbasic").status, 401);
    let metrics = scrape(gw.admin);

    let ids = [
        "t-init",
        "t-echo",
        "t-weather",
        "t-sum",
        hostile_id,
        "t-key",
        "t-badkey",
        "t-keyq",
        "t-basic",
        "t-badbasic",
    ];
    gw.read_until(Duration::from_secs(10), |log| {
        let seen = |id: &str| {
            log.iter().any(|l| {
                serde_json::from_str::<Value>(l)
                    .is_ok_and(|v| v["target"] == "access" && v["request_id"] == id)
            })
        };
        ids.iter().all(|id| seen(id))
    });
    let lines = access_lines(&gw.log);

    let echo = by_id(&lines, "t-echo");
    for (k, v) in [
        ("subject", json!("alice")),
        ("server", json!("tools")),
        ("http_method", json!("POST")),
        ("path", json!("/mcp")),
        ("method", json!("tools/call")),
        ("tool", json!("b1__echo")),
        ("backend", json!("b1")),
        ("decision", json!("allow")),
        ("rule", json!("echo-for-scoped")),
        ("status", json!(200)),
        ("level", json!("INFO")),
    ] {
        assert_eq!(echo[k], v, "{k}: {echo}");
    }
    let (total, backend) = (echo["duration_us"].as_u64().unwrap(), echo["backend_us"].as_u64().unwrap());
    assert!(backend > 0 && backend <= total, "{echo}");
    assert!(echo["bytes_in"].as_u64().unwrap() > args.len() as u64, "{echo}");
    assert!(echo["bytes_out"].as_u64().unwrap() > 100, "{echo}");
    assert!(echo["ts"].as_str().unwrap().ends_with('Z'), "{echo}");
    assert!(echo["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{echo}");

    let weather = by_id(&lines, "t-weather");
    assert_eq!((weather["tool"].as_str(), weather["backend"].as_str()), (Some("weather"), Some("tools")));
    assert_eq!((weather["decision"].as_str(), weather["rule"].as_str()), (Some("allow"), Some("1")));
    let sum = by_id(&lines, "t-sum");
    assert_eq!(
        (sum["status"].as_u64(), sum["decision"].as_str(), sum["rule"].as_str()),
        (Some(403), Some("deny"), Some("default"))
    );
    assert_eq!(sum["backend_us"], 0, "never reached the backend: {sum}");
    let init = by_id(&lines, "t-init");
    assert_eq!(
        (init["method"].as_str(), init["backend"].as_str(), init["decision"].as_str()),
        (Some("initialize"), Some("*"), Some("-"))
    );
    let hostile = by_id(&lines, hostile_id);
    assert_eq!(hostile["tool"], r#"b1__x\"\n\u0000y"#, "as written, escapes kept: {hostile}");
    assert_eq!(by_id(&lines, "t-key")["subject"], "ci");
    assert_eq!(by_id(&lines, "t-keyq")["path"], "/mcp/keyq", "no query string");
    assert_eq!(by_id(&lines, "t-basic")["subject"], "bob");
    let bad = by_id(&lines, "t-badkey");
    assert_eq!((bad["status"].as_u64(), bad["subject"].as_str()), (Some(401), Some("-")));
    assert!(
        gw.log.iter().any(|l| l.contains(r#""level":"DEBUG""#)),
        "level debug is in force: {:#?}",
        gw.log
    );

    let all = gw.log.join("\n");
    let secrets = [
        &t[..],
        "APIKEY-SECRET-7a1",
        "APIKEY-QUERY-3b8",
        "BASIC-PW-SECRET-2d4",
        &basic,
        &wrong,
        "REST-DEFAULT-CRED-5c1",
        "MCP-BACKEND-CRED-9f2",
        "ARG-SECRET",
    ];
    for s in secrets {
        assert!(!all.contains(s), "{s} logged:\n{all}");
        assert!(!metrics.contains(s), "{s} in /metrics");
    }
    assert!(
        value(
            &metrics,
            r#"portcullis_authentication_failures_total{server="keyed",reason="invalid_credential"}"#
        ) == 1.0
    );
    assert!(
        value(
            &metrics,
            r#"portcullis_authentication_failures_total{server="basic",reason="invalid_credential"}"#
        ) == 1.0
    );
}

#[test]
fn log_block_level_format_and_access_switch_with_rust_log_overriding() {
    let (rec, _seen) = recorder();
    let base = config(rec, dead_port());
    let ping = |addr: SocketAddr, rid: &str| {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        post(addr, "", &format!("X-Request-Id: {rid}\r\n"), body)
    };

    // access: false: info lines, but no access line.
    let mut gw = Running::start("noaccess", &format!("log: {{ access: false }}\n{base}"), None);
    assert_eq!(ping(gw.addr, "q-1").status, 401);
    scrape(gw.admin);
    gw.read_until(Duration::from_millis(500), |_| false);
    assert!(!gw.log.iter().any(|l| l.contains("q-1")), "{:#?}", gw.log);
    assert!(gw.log.iter().any(|l| l.contains(" INFO ")), "text format by default: {:#?}", gw.log);
    drop(gw);

    // level: error silences info (and access lines) ... unless RUST_LOG says otherwise.
    let quiet = format!("log: {{ level: error, format: text }}\n{base}");
    let mut gw = Running::start("rustlog", &quiet, Some("info"));
    assert_eq!(ping(gw.addr, "q-2").status, 401);
    gw.read_until(Duration::from_secs(5), |log| log.iter().any(|l| l.contains("q-2")));
    let line = gw.log.iter().find(|l| l.contains("q-2")).expect("RUST_LOG=info overrides level: error");
    assert!(line.contains(" INFO  access] q-2 ") && line.contains(" 401 server=tools "), "{line}");
    drop(gw);

    // Unknown keys and bad values are load errors with their path.
    let bad = compile_str(&format!("log: {{ level: loud, format: xml, colour: true }}\n{base}"), &|_| None)
        .unwrap_err();
    let all = bad.join("\n");
    assert!(all.contains("log: unknown field `colour`") || all.contains("log.colour"), "{all}");
    let bad = compile_str(&format!("log: {{ level: loud, format: xml }}\n{base}"), &|_| None).unwrap_err();
    let all = bad.join("\n");
    assert!(all.contains("log.level") && all.contains("log.format"), "{all}");
}
