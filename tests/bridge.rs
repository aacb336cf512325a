//! The MRTR bridge (SEP-2322) toward a 2025-revision backend: a backend that asks the client
//! something during a 2026-07-28 client's call (a request on the call's SSE stream) makes the
//! client see an `InputRequiredResult`; the client's retry with `inputResponses` answers the
//! backend's requests under their own ids and the call completes. The backend is written here: a
//! 2025-11-25 server with sessions that asks by SSE and waits for the answers (posted back on
//! other connections), recording what reached it.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_methods)] // fixture threads, not the data path
#![allow(clippy::disallowed_types)] // fixture bookkeeping across test threads, not the data path

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const JWT_KEY: &[u8] = b"bridge-test-hmac-key-0123456789abcdef";

/// What the backend was sent: answers to its own requests by their id, and every message.
#[derive(Clone, Default)]
struct Backend {
    answers: Arc<Mutex<HashMap<String, Value>>>,
    messages: Arc<Mutex<Vec<Value>>>,
}

impl Backend {
    /// The answer to the backend's request `id`, waited for (bounded).
    fn answer(&self, id: &str) -> Option<Value> {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Some(v) = self.answers.lock().unwrap().remove(id) {
                return Some(v);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    fn methods(&self) -> Vec<String> {
        self.messages.lock().unwrap().iter().filter_map(|m| m["method"].as_str().map(String::from)).collect()
    }
}

fn http(status: &str, extra: &str, body: &str) -> String {
    format!("HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())
}

fn event(msg: &Value) -> String {
    let e = format!("event: message\ndata: {msg}\n\n");
    format!("{:x}\r\n{e}\r\n", e.len())
}

/// Asks the client `request` (method, params) as request `id` on the open stream `s`, and waits
/// for the answer.
fn ask(s: &mut TcpStream, b: &Backend, id: &str, method: &str, params: Value) -> Option<Value> {
    let r = json!({"jsonrpc":"2.0","id":id,"method":method,"params":params});
    s.write_all(event(&r).as_bytes()).ok()?;
    b.answer(id)
}

fn elicit(message: &str) -> Value {
    json!({"mode":"form","message":message,"requestedSchema":{"type":"object","properties":{"name":{"type":"string"}}}})
}

/// The tools/call answer of the fixture, written on `s` (an SSE stream that asks first).
fn call(s: &mut TcpStream, b: &Backend, msg: &Value) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    if s.write_all(head.as_bytes()).is_err() {
        return;
    }
    let text = match msg["params"]["name"].as_str().unwrap_or("") {
        // One question.
        "greet" => match ask(s, b, "e-1", "elicitation/create", elicit("What is your name?")) {
            Some(a) => format!("Hello, {}!", a["result"]["content"]["name"].as_str().unwrap_or("?")),
            None => return,
        },
        // A ping first (the gateway answers it), a request the client cannot be asked (refused
        // by the gateway), then two questions at once, then one more.
        "survey" => {
            let ping = ask(s, b, "p-1", "ping", json!({}));
            let odd = ask(s, b, "x-1", "tools/list", json!({}));
            let both = [
                json!({"jsonrpc":"2.0","id":"s-1","method":"sampling/createMessage","params":{"messages":[],"maxTokens":5}}),
                json!({"jsonrpc":"2.0","id":"r-1","method":"roots/list"}),
            ];
            if s.write_all(format!("{}{}", event(&both[0]), event(&both[1])).as_bytes()).is_err() {
                return;
            }
            let (sampled, roots) = (b.answer("s-1"), b.answer("r-1"));
            let last = ask(s, b, "e-2", "elicitation/create", elicit("And your colour?"));
            format!(
                "ping:{} odd:{} model:{} roots:{} colour:{}",
                ping.is_some_and(|p| p["result"] == json!({})),
                odd.map_or(json!(null), |o| o["error"]["code"].clone()),
                sampled.map_or(json!(null), |v| v["result"]["content"]["text"].clone()),
                roots.map_or(0, |v| v["result"]["roots"].as_array().map_or(0, Vec::len)),
                last.map_or(json!(null), |v| v["result"]["content"]["name"].clone()),
            )
        }
        other => format!("no tool {other}"),
    };
    let result = json!({"jsonrpc":"2.0","id":msg["id"],"result":{"content":[{"type":"text","text":text}],"isError":false}});
    let _ = s.write_all(format!("{}0\r\n\r\n", event(&result)).as_bytes());
}

/// A 2025-11-25 backend with sessions (`server/discover` is unknown to it).
fn backend() -> (SocketAddr, Backend) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let b = Backend::default();
    let shared = b.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let b = shared.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                while let Some((_, body)) = common::read_request(&mut s, &mut buf) {
                    let msg: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
                    b.messages.lock().unwrap().push(msg.clone());
                    let method = msg["method"].as_str().unwrap_or("");
                    let out = match method {
                        "initialize" => http(
                            "200 OK",
                            "Content-Type: application/json\r\nMcp-Session-Id: sess-1\r\n",
                            &json!({"jsonrpc":"2.0","id":msg["id"],"result":{"protocolVersion":"2025-11-25",
                                "capabilities":{"tools":{}},"serverInfo":{"name":"old","version":"1"}}})
                            .to_string(),
                        ),
                        "tools/call" => {
                            call(&mut s, &b, &msg);
                            continue;
                        }
                        "tools/list" => http(
                            "200 OK",
                            "Content-Type: application/json\r\n",
                            &json!({"jsonrpc":"2.0","id":msg["id"],"result":{"tools":[
                                {"name":"greet","inputSchema":{"type":"object"}},
                                {"name":"survey","inputSchema":{"type":"object"}}]}})
                            .to_string(),
                        ),
                        "" if msg.get("id").is_some() => {
                            let id = msg["id"].as_str().unwrap_or("").to_string();
                            b.answers.lock().unwrap().insert(id, msg);
                            http("202 Accepted", "", "")
                        }
                        _ if msg.get("id").is_none() => http("202 Accepted", "", ""),
                        _ => http(
                            "200 OK",
                            "Content-Type: application/json\r\n",
                            &json!({"jsonrpc":"2.0","id":msg["id"],"error":{"code":-32601,"message":"Method not found"}})
                                .to_string(),
                        ),
                    };
                    if s.write_all(out.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, b)
}

fn gateway(b: SocketAddr, workers: usize) -> portcullis::runtime::Gateway {
    common::start(&format!(
        "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nworkers: {workers}\nservers:\n  - name: s\n    path: /mcp\n    resource: https://gw.test/mcp\n    {auth}\n    \
         backends: [{{ name: old, url: \"http://{b}/mcp\" }}]\n",
        auth = common::hs256_auth(JWT_KEY),
    ))
}

/// A 2026-07-28 `tools/call` of `tool` with id `id`, `extra` params members (each with a leading
/// comma) and the client declaring elicitation, sampling and roots.
fn call_tool(addr: SocketAddr, sub: &str, id: u32, tool: &str, extra: &str) -> common::Resp {
    let token = common::hs256_token(JWT_KEY, sub, "tools.call");
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{"form":{}},"sampling":{},"roots":{}}}"#;
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}{extra},{meta}}}}}"#
    );
    common::send(
        addr,
        &format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: {tool}\r\n\
Authorization: Bearer {token}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn retry(addr: SocketAddr, sub: &str, id: u32, tool: &str, state: &str, responses: Value) -> common::Resp {
    call_tool(addr, sub, id, tool, &format!(r#","inputResponses":{responses},"requestState":"{state}""#))
}

/// The `requestState` of an `InputRequiredResult`, checked to be one.
fn input_required(r: &common::Resp) -> (Value, String) {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["result"]["resultType"], "input_required", "{v}");
    let state = v["result"]["requestState"].as_str().unwrap().to_string();
    (v["result"]["inputRequests"].clone(), state)
}

fn text(r: &common::Resp) -> String {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["result"]["resultType"], "complete", "{v}");
    v["result"]["content"][0]["text"].as_str().unwrap().to_string()
}

#[test]
fn a_2025_backends_question_reaches_a_2026_client_and_the_retry_answers_it() {
    let (b, seen) = backend();
    let gw = gateway(b, 1);
    let addr = gw.addrs()[0];

    let r = call_tool(addr, "alice", 1, "greet", "");
    let (asked, state) = input_required(&r);
    assert_eq!(r.json()["id"], 1);
    assert_eq!(asked["r1"]["method"], "elicitation/create", "{asked}");
    assert_eq!(asked["r1"]["params"]["message"], "What is your name?");
    assert!(!state.contains("e-1"), "the state names no backend id: {state}");

    // The retry (another id, another connection) answers the backend under its own id, and
    // the call's result comes back under the retry's id.
    let r =
        retry(addr, "alice", 2, "greet", &state, json!({"r1":{"action":"accept","content":{"name":"Ada"}}}));
    assert_eq!(text(&r), "Hello, Ada!");
    assert_eq!(r.json()["id"], 2);
    let answered = seen.messages.lock().unwrap().iter().find(|m| m["id"] == "e-1").cloned().unwrap();
    assert_eq!(answered["result"]["content"]["name"], "Ada", "{answered}");
    // The backend's session was opened with what the client declared.
    let init = seen.messages.lock().unwrap().iter().find(|m| m["method"] == "initialize").cloned().unwrap();
    assert!(init["params"]["capabilities"]["elicitation"].is_object(), "{init}");

    // Answered once: the same state again names nothing held.
    let r =
        retry(addr, "alice", 3, "greet", &state, json!({"r1":{"action":"accept","content":{"name":"Eve"}}}));
    let v = r.json();
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("call again"), "{v}");
    gw.shutdown();
}

#[test]
fn several_rounds_pings_and_questions_the_client_cannot_answer() {
    let (b, seen) = backend();
    let gw = gateway(b, 1);
    let addr = gw.addrs()[0];

    let (asked, state) = input_required(&call_tool(addr, "alice", 1, "survey", ""));
    // The ping was answered by the gateway and the request the client cannot be asked was
    // refused; the two questions asked together come together.
    assert_eq!(asked.as_object().unwrap().len(), 2, "{asked}");
    assert_eq!(asked["r1"]["method"], "sampling/createMessage");
    assert_eq!(asked["r2"]["method"], "roots/list");
    let responses = json!({
        "r1": {"role":"assistant","content":{"type":"text","text":"42"},"model":"m"},
        "r2": {"roots":[{"uri":"file:///a"},{"uri":"file:///b"}]},
    });
    let (asked, state2) = input_required(&retry(addr, "alice", 2, "survey", &state, responses));
    assert_ne!(state, state2, "each round has a state of its own");
    assert_eq!(asked["r1"]["params"]["message"], "And your colour?");
    let r = retry(
        addr,
        "alice",
        3,
        "survey",
        &state2,
        json!({"r1":{"action":"accept","content":{"name":"teal"}}}),
    );
    assert_eq!(text(&r), "ping:true odd:-32601 model:\"42\" roots:2 colour:\"teal\"");
    assert!(seen.methods().iter().all(|m| m != "ping"), "the gateway asked the backend nothing else");
    gw.shutdown();
}

#[test]
fn a_request_state_of_another_caller_or_altered_is_refused() {
    let (b, seen) = backend();
    let gw = gateway(b, 1);
    let addr = gw.addrs()[0];
    let (_, state) = input_required(&call_tool(addr, "alice", 1, "greet", ""));
    let answer = json!({"r1":{"action":"accept","content":{"name":"Mallory"}}});

    let mut altered = state.clone().into_bytes();
    altered[0] = if altered[0] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for (who, s) in [("mallory", state.as_str()), ("alice", altered.as_str()), ("alice", "not-a-state")] {
        let v = retry(addr, who, 2, "greet", s, answer.clone()).json();
        assert_eq!(v["error"]["code"], -32602, "{who} {s}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().starts_with("Invalid requestState"), "{v}");
    }
    // A retry of another request (another tool of the same backend) with alice's state: refused,
    // and the exchange stays held for its own retry.
    let v = retry(addr, "alice", 2, "survey", &state, answer.clone()).json();
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("another request"), "{v}");
    // A retry without inputResponses is refused too.
    let v = call_tool(addr, "alice", 2, "greet", &format!(r#","requestState":"{state}""#)).json();
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(seen.answers.lock().unwrap().is_empty(), "no answer reached the backend");

    // The exchange is still held for its caller.
    let r =
        retry(addr, "alice", 3, "greet", &state, json!({"r1":{"action":"accept","content":{"name":"Ada"}}}));
    assert_eq!(text(&r), "Hello, Ada!");
    gw.shutdown();
}

fn metric(admin: SocketAddr, name: &str) -> u64 {
    let r = common::send(admin, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let text = String::from_utf8_lossy(&r.body).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Two workers: a retry that reaches the worker not holding its exchange is handed to the one
/// that does. Connections are spread by the kernel, so exchanges go on (on fresh connections)
/// until one was handed over; each completes either way.
#[test]
fn a_retry_on_another_worker_is_handed_to_the_owner() {
    let (b, _) = backend();
    let gw = gateway(b, 2);
    let (addr, admin) = (gw.addrs()[0], gw.admin_addr().unwrap());
    for round in 0..40 {
        let (_, state) = input_required(&call_tool(addr, "alice", 1, "greet", ""));
        let name = format!("n{round}");
        let r = retry(
            addr,
            "alice",
            2,
            "greet",
            &state,
            json!({"r1":{"action":"accept","content":{"name":name}}}),
        );
        assert_eq!(text(&r), format!("Hello, {name}!"));
        if metric(admin, "portcullis_input_handoffs_total") > 0 {
            assert!(metric(admin, "portcullis_input_required_bridged_total") > round);
            gw.shutdown();
            return;
        }
    }
    panic!("40 retries on fresh connections all reached the worker holding their exchange");
}

/// A 2026-07-28-only backend: `initialize` is no method of it (404, -32601); `greet` asks for a
/// name with an `InputRequiredResult` and completes on the retry that answers it with its state.
/// What the 2026-07-28 backend was sent: each request's `Mcp-Method` header and body.
type Sent = Arc<Mutex<Vec<(String, Value)>>>;

fn modern_backend() -> (SocketAddr, Sent) {
    let seen: Sent = Arc::default();
    let shared = seen.clone();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let seen = shared.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                while let Some((head, body)) = common::read_request(&mut s, &mut buf) {
                    let msg: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
                    let method_header = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("mcp-method:").map(|v| v.trim().to_string())
                        })
                        .unwrap_or_default();
                    seen.lock().unwrap().push((method_header, msg.clone()));
                    let p = &msg["params"];
                    let result = match msg["method"].as_str().unwrap_or("") {
                        "server/discover" => {
                            json!({"supportedVersions":["2026-07-28"],"resultType":"complete",
                            "capabilities":{"tools":{}},"serverInfo":{"name":"new","version":"1"}})
                        }
                        "tools/list" => {
                            json!({"resultType":"complete","tools":[{"name":"greet","inputSchema":{"type":"object"}}]})
                        }
                        "tools/call"
                            if p["requestState"] == "round-1" && p["inputResponses"]["name"].is_object() =>
                        {
                            let name = p["inputResponses"]["name"]["content"]["name"].as_str().unwrap_or("?");
                            json!({"resultType":"complete","content":[{"type":"text","text":format!("Hello, {name}!")}],"isError":false})
                        }
                        "tools/call" => {
                            json!({"resultType":"input_required","requestState":"round-1","inputRequests":{
                            "name":{"method":"elicitation/create","params":{"mode":"form","message":"Your name?",
                                "requestedSchema":{"type":"object","properties":{"name":{"type":"string"}}}}}}})
                        }
                        _ => {
                            let e = json!({"jsonrpc":"2.0","id":msg["id"],"error":{"code":-32601,"message":"Method not found"}});
                            let out =
                                http("404 Not Found", "Content-Type: application/json\r\n", &e.to_string());
                            if s.write_all(out.as_bytes()).is_err() {
                                return;
                            }
                            continue;
                        }
                    };
                    let r = json!({"jsonrpc":"2.0","id":msg["id"],"result":result}).to_string();
                    if s.write_all(http("200 OK", "Content-Type: application/json\r\n", &r).as_bytes())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn legacy_post(addr: SocketAddr, token: &str, sid: Option<&str>, body: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let sid = sid
        .map(|v| format!("Mcp-Session-Id: {v}\r\nMCP-Protocol-Version: 2025-11-25\r\n"))
        .unwrap_or_default();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
Authorization: Bearer {token}\r\n{sid}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    s
}

fn read_all(mut s: TcpStream) -> String {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut out).unwrap();
    String::from_utf8_lossy(&out).to_string()
}

/// A 2025-11-25 client in front of a 2026-07-28-only backend: the backend's question reaches the
/// client as a request on its call's stream, the client's answer (posted in its session, on any
/// worker) becomes the retry, and the result ends the stream.
#[test]
fn a_2026_backends_question_reaches_a_2025_client_on_its_stream() {
    let (b, seen) = modern_backend();
    let gw = common::start(&format!(
        "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nworkers: 2\nservers:\n  - name: s\n    path: /mcp\n    resource: https://gw.test/mcp\n    {auth}\n    \
         backends: [{{ name: new, url: \"http://{b}/mcp\" }}]\n",
        auth = common::hs256_auth(JWT_KEY),
    ));
    let (addr, admin) = (gw.addrs()[0], gw.admin_addr().unwrap());
    let token = common::hs256_token(JWT_KEY, "alice", "tools.call");
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{"form":{}}},"clientInfo":{"name":"t","version":"1"}}}"#;
    let answer = read_all(legacy_post(addr, &token, None, init));
    let sid = answer
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().starts_with("mcp-session-id:").then(|| l[15..].trim().to_string())
        })
        .unwrap_or_else(|| panic!("no session: {answer}"));
    assert!(answer.contains("\"tools\""), "the backend's capabilities are offered: {answer}");

    for round in 0..40 {
        let call =
            r#"{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"greet","arguments":{}}}"#;
        let mut s = legacy_post(addr, &token, Some(&sid), call);
        let mut got = Vec::new();
        let ask = loop {
            let mut b = [0u8; 4096];
            let n = std::io::Read::read(&mut s, &mut b).unwrap();
            assert!(n > 0, "stream ended early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&b[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(line) =
                text.lines().find(|l| l.starts_with("data: ") && l.contains("elicitation/create"))
            {
                break serde_json::from_str::<Value>(&line[6..]).unwrap();
            }
        };
        assert_eq!(ask["params"]["message"], "Your name?");
        let name = format!("n{round}");
        let reply =
            json!({"jsonrpc":"2.0","id":ask["id"],"result":{"action":"accept","content":{"name":name}}});
        let posted = read_all(legacy_post(addr, &token, Some(&sid), &reply.to_string()));
        assert!(posted.starts_with("HTTP/1.1 202"), "{posted}");
        let rest = read_all(s);
        let done = rest
            .lines()
            .find(|l| l.starts_with("data: ") && l.contains("result"))
            .unwrap_or_else(|| panic!("{rest}"));
        let v: Value = serde_json::from_str(&done[6..]).unwrap();
        assert_eq!(v["id"], "c1", "{v}");
        assert_eq!(v["result"]["content"][0]["text"], format!("Hello, {name}!"), "{v}");
        if metric(admin, "portcullis_input_handoffs_total") > 0 {
            // The backend was asked on its own wire, with what the client declared.
            let seen = seen.lock().unwrap();
            let (header, first) = seen.iter().find(|(_, m)| m["method"] == "tools/call").unwrap();
            assert_eq!(header, "tools/call");
            let meta = &first["params"]["_meta"];
            assert_eq!(meta["io.modelcontextprotocol/protocolVersion"], "2026-07-28", "{first}");
            assert!(meta["io.modelcontextprotocol/clientCapabilities"]["elicitation"].is_object(), "{first}");
            drop(seen);
            gw.shutdown();
            return;
        }
    }
    panic!("40 answers on fresh connections all reached the worker holding their call");
}

/// Another caller's answer to the request the reverse bridge put on alice's stream is dropped:
/// the call goes on waiting for alice's own.
#[test]
fn only_the_caller_answers_the_reverse_bridges_questions() {
    let (b, _) = modern_backend();
    let gw = common::start(&format!(
        "listen: 127.0.0.1:0\nworkers: 1\nservers:\n  - name: s\n    path: /mcp\n    resource: https://gw.test/mcp\n    {auth}\n    \
         backends: [{{ name: new, url: \"http://{b}/mcp\" }}]\n",
        auth = common::hs256_auth(JWT_KEY),
    ));
    let addr = gw.addrs()[0];
    let session = |who: &str| {
        let token = common::hs256_token(JWT_KEY, who, "tools.call");
        let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"t","version":"1"}}}"#;
        let answer = read_all(legacy_post(addr, &token, None, init));
        let sid = answer
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase().starts_with("mcp-session-id:").then(|| l[15..].trim().to_string())
            })
            .unwrap();
        (token, sid)
    };
    let (alice, alice_sid) = session("alice");
    let (mallory, mallory_sid) = session("mallory");
    let call = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"greet","arguments":{}}}"#;
    let mut s = legacy_post(addr, &alice, Some(&alice_sid), call);
    let mut got = Vec::new();
    let ask = loop {
        let mut b = [0u8; 4096];
        let n = std::io::Read::read(&mut s, &mut b).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&b[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(line) = text.lines().find(|l| l.starts_with("data: ") && l.contains("elicitation/create"))
        {
            break serde_json::from_str::<Value>(&line[6..]).unwrap();
        }
    };
    let forged =
        json!({"jsonrpc":"2.0","id":ask["id"],"result":{"action":"accept","content":{"name":"Mallory"}}});
    let posted = read_all(legacy_post(addr, &mallory, Some(&mallory_sid), &forged.to_string()));
    assert!(posted.starts_with("HTTP/1.1 202"), "{posted}");
    let real =
        json!({"jsonrpc":"2.0","id":ask["id"],"result":{"action":"accept","content":{"name":"Alice"}}});
    read_all(legacy_post(addr, &alice, Some(&alice_sid), &real.to_string()));
    let rest = read_all(s);
    assert!(rest.contains("Hello, Alice!") && !rest.contains("Mallory"), "{rest}");
    gw.shutdown();
}

/// `inputResponses` of another shape than an object of result objects is a protocol error
/// (-32602) at the gateway, before any backend.
#[test]
fn malformed_input_responses_are_refused() {
    let (b, seen) = backend();
    let gw = gateway(b, 1);
    let addr = gw.addrs()[0];
    for bad in ["42", "null", r#"{"r1":7}"#, "[]"] {
        let v = call_tool(addr, "alice", 1, "greet", &format!(r#","inputResponses":{bad}"#)).json();
        assert_eq!(v["error"]["code"], -32602, "{bad}: {v}");
    }
    assert!(seen.methods().iter().all(|m| m != "tools/call"), "no call reached the backend");
    gw.shutdown();
}

/// A retry that reaches another gateway instance (sharing `sessions.keys`, so the state's tag
/// checks) names an exchange that instance does not hold: a clear error telling the client to
/// call again, and nothing reaches the backend.
#[test]
fn a_retry_on_another_replica_is_told_to_call_again() {
    let (b, seen) = backend();
    let config = format!(
        "listen: 127.0.0.1:0\nworkers: 1\nsessions: {{ keys: [{{ id: k1, secret: \"0123456789abcdef0123456789abcdef\" }}] }}\n\
         servers:\n  - name: s\n    path: /mcp\n    resource: https://gw.test/mcp\n    {auth}\n    \
         backends: [{{ name: old, url: \"http://{b}/mcp\" }}]\n",
        auth = common::hs256_auth(JWT_KEY),
    );
    let (one, two) = (common::start(&config), common::start(&config));
    let (_, state) = input_required(&call_tool(one.addrs()[0], "alice", 1, "greet", ""));
    let answer = json!({"r1":{"action":"accept","content":{"name":"Ada"}}});
    let v = retry(two.addrs()[0], "alice", 2, "greet", &state, answer.clone()).json();
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("call again"), "{v}");
    assert!(seen.answers.lock().unwrap().is_empty(), "no answer reached the backend");
    // The instance holding it still completes it.
    assert_eq!(text(&retry(one.addrs()[0], "alice", 3, "greet", &state, answer)), "Hello, Ada!");
    one.shutdown();
    two.shutdown();
}
