//! OpenTelemetry traces (issue "Observability and packaging"): an OTLP/HTTP receiver written
//! here decodes what the gateway exports (protobuf, `opentelemetry-proto`): a SERVER span per
//! request (continuing the client's `traceparent`) and CLIENT spans for the MCP backend and REST
//! exchanges, whose ids are the `traceparent`s those backends received; the attributes, and no
//! argument, token or credential in any of them; the sampling ratio; a collector that is down
//! slows nothing and its drops are counted.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_types)] // fixture bookkeeping across test threads, not the data path
#![allow(clippy::disallowed_methods)] // fixture threads, not the data path

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{recorder, Recorder, Seen};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};

const JWT_KEY: &[u8] = b"tracing-test-hmac-key-0123456789abcd";
const CLIENT_PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// An OTLP/HTTP traces receiver: (address, spans received, request heads).
type Received = Arc<Mutex<(Vec<Span>, Vec<String>)>>;

fn receiver() -> (SocketAddr, Received) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let got: Received = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            let (head, body) = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break (String::new(), Vec::new());
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(e) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..e]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    while buf.len() < e + 4 + len {
                        let n = s.read(&mut chunk).unwrap();
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    break (head, buf[e + 4..e + 4 + len].to_vec());
                }
            };
            if head.is_empty() {
                continue;
            }
            let req = ExportTraceServiceRequest::decode(&body[..]).unwrap();
            let spans = req.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
            let mut g = g.lock().unwrap();
            g.0.extend(spans);
            g.1.push(head);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (addr, got)
}

/// A stateless 2025-revision MCP backend with the tool `echo`.
fn backend() -> Recorder {
    recorder(|seen: &Seen| {
        let msg: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
        if msg.get("id").is_none() {
            return (202, "application/json", Vec::new());
        }
        let result = match msg["method"].as_str().unwrap_or("") {
            "initialize" => {
                json!({"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"b","version":"1"}})
            }
            "tools/list" => json!({"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}),
            "tools/call" => json!({"content":[{"type":"text","text":"echoed"}]}),
            _ => json!({}),
        };
        (
            200,
            "application/json",
            json!({"jsonrpc":"2.0","id":msg["id"],"result":result}).to_string().into_bytes(),
        )
    })
}

fn config(otlp: SocketAddr, b: SocketAddr, rest: SocketAddr, sampling: f64) -> String {
    let k = base64_simd::URL_SAFE_NO_PAD.encode_to_string(JWT_KEY);
    // A second issuer whose keys are fetched (a JWKS fetch is a span of its own trace).
    let jwks = format!(r#"{{"keys":[{{"kty":"oct","kid":"j","k":"{k}"}}]}}"#);
    let keys = recorder(move |_| (200, "application/json", jwks.clone().into_bytes())).addr;
    format!(
        r#"
listen: 127.0.0.1:0
admin: 127.0.0.1:0
workers: 2
tracing:
  otlp:
    endpoint: http://{otlp}/v1/traces
    headers: {{ authorization: "Bearer otlp-collector-secret" }}
  sampling: {sampling}
  serviceName: gw-under-test
servers:
  - name: tools
    path: /mcp
    resource: https://gw.test/mcp
    authentication:
      mode: jwt
      jwt:
        providers:
          - {{ name: t, issuer: https://idp.test, jwks: {{ inline: {{ keys: [{{ kty: oct, kid: h, k: "{k}" }}] }} }} }}
          - {{ name: other, issuer: https://other.test, jwks: {{ uri: "http://{keys}/jwks.json" }} }}
    server:
      securitySchemes:
        - {{ id: api, type: http, scheme: bearer, defaultCredential: rest-api-credential-77 }}
    tools:
      - name: report
        args: [{{ name: q, type: string }}]
        requestTemplate: {{ url: "http://{rest}/report?q={{{{.args.q}}}}", security: {{ id: api }} }}
      - name: hello
        responseTemplate: {{ body: hi }}
    backends:
      - {{ name: b1, url: "http://{b}/mcp" }}
"#
    )
}

fn attr<'a>(s: &'a Span, key: &str) -> Option<&'a any_value::Value> {
    s.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.as_ref()?.value.as_ref())
}

fn str_attr<'a>(s: &'a Span, key: &str) -> Option<&'a str> {
    match attr(s, key)? {
        any_value::Value::StringValue(v) => Some(v),
        _ => None,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Waits until `pred` holds for what was received (the exporter sends within ~1 s).
fn wait_for(got: &Received, pred: impl Fn(&[Span]) -> bool) -> Vec<Span> {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let spans = got.lock().unwrap().0.clone();
        if pred(&spans) || Instant::now() > until {
            return spans;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One exporter serves the process (one gateway per process in production): the scenarios run
/// one after another, each gateway configuring it in turn.
#[test]
fn traces_exported_over_otlp() {
    spans_for_a_request_and_its_backend_exchanges();
    sampling_ratio_and_a_parent_that_says_no();
    a_collector_that_is_down_slows_nothing_and_drops_are_counted();
}

fn spans_for_a_request_and_its_backend_exchanges() {
    let (otlp, got) = receiver();
    let (b, rest) = (backend(), recorder(|_| (200, "application/json", b"{\"ok\":1}".to_vec())));
    let gw = common::start(&config(otlp, b.addr, rest.addr, 1.0));
    let addr = gw.addrs()[0];
    let token = common::hs256_token_with(JWT_KEY, json!({"sub": "alice", "scope": "x"}));
    let auth = format!("Authorization: Bearer {token}\r\ntraceparent: {CLIENT_PARENT}\r\n");

    // A backend tool, then a REST tool with an argument that must not reach any span.
    let r = common::call_2026(addr, "/mcp", "b1__echo", r#"{"text":"secret-argument-value"}"#, &auth);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = common::call_2026(addr, "/mcp", "report", r#"{"q":"secret-argument-value"}"#, &auth);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // A call answered with a JSON-RPC error: its code on the span.
    let r = common::call_2026(addr, "/mcp", "nope", "{}", &auth);
    let code = r.json()["error"]["code"].as_i64().unwrap();

    let spans = wait_for(&got, |s| {
        s.iter().filter(|s| s.kind == 2).count() >= 3 && s.iter().any(|s| s.name == "jwks fetch")
    });
    // The key fetch: a CLIENT span with no parent, in a trace of its own.
    let jwks = spans.iter().find(|s| s.name == "jwks fetch").unwrap();
    assert!(jwks.kind == 3 && jwks.parent_span_id.is_empty(), "{jwks:?}");
    let servers: Vec<&Span> = spans.iter().filter(|s| s.kind == 2).collect();
    assert_eq!(servers.len(), 3, "{spans:#?}");
    let failed = servers.iter().find(|s| s.name == "tools/call nope").unwrap();
    let code = code.to_string();
    assert_eq!(str_attr(failed, "rpc.response.status_code"), Some(code.as_str()));
    assert_eq!(str_attr(failed, "error.type"), Some(code.as_str()));
    let call = servers.iter().find(|s| s.name == "tools/call b1__echo").unwrap();
    // The client's trace continues: same trace id, its span as parent.
    assert_eq!(hex(&call.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&call.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(str_attr(call, "mcp.method.name"), Some("tools/call"));
    assert_eq!(str_attr(call, "gen_ai.tool.name"), Some("b1__echo"));
    assert_eq!(str_attr(call, "gen_ai.operation.name"), Some("execute_tool"));
    assert_eq!(str_attr(call, "portcullis.server"), Some("tools"));
    assert_eq!(str_attr(call, "enduser.id"), Some("alice"));
    assert_eq!(attr(call, "http.response.status_code"), Some(&any_value::Value::IntValue(200)));
    assert_eq!(str_attr(call, "jsonrpc.request.id"), Some("7"), "{:?}", call.attributes);
    assert_eq!(str_attr(call, "mcp.protocol.version"), Some("2026-07-28"));
    assert_eq!(str_attr(call, "server.address"), Some("127.0.0.1"));
    // Its backend exchanges are CLIENT spans under it, and the backend saw their ids.
    let clients: Vec<&Span> =
        spans.iter().filter(|s| s.kind == 3 && s.parent_span_id == call.span_id).collect();
    assert!(!clients.is_empty(), "{spans:#?}");
    let tool_call = clients.iter().find(|s| str_attr(s, "mcp.method.name") == Some("tools/call"));
    let seen = b.take();
    let backend_parents: Vec<&str> = seen.iter().filter_map(|s| s.header("traceparent")).collect();
    for c in &clients {
        assert_eq!(c.trace_id, call.trace_id);
        assert_eq!(str_attr(c, "portcullis.backend"), Some("b1"));
        let tp = format!("00-{}-{}-01", hex(&c.trace_id), hex(&c.span_id));
        assert!(backend_parents.contains(&tp.as_str()), "{tp} not among {backend_parents:?}");
    }
    let _ = tool_call;
    // The REST call: a CLIENT span named by the tool, the API saw its id.
    let report = servers.iter().find(|s| s.name == "tools/call report").unwrap();
    let rest_span = spans.iter().find(|s| s.kind == 3 && s.parent_span_id == report.span_id).unwrap();
    assert_eq!(str_attr(rest_span, "gen_ai.tool.name"), Some("report"));
    let api = rest.take();
    let tp = format!("00-{}-{}-01", hex(&rest_span.trace_id), hex(&rest_span.span_id));
    assert_eq!(api[0].header("traceparent"), Some(tp.as_str()));
    // Nothing of the arguments, the caller's token or the credentials in any span.
    let all = format!("{spans:?}");
    for secret in ["secret-argument-value", &token, "rest-api-credential-77", "otlp-collector-secret"] {
        assert!(!all.contains(secret), "{secret} in a span");
    }
    // The collector got its header; /config does not show it.
    let heads = got.lock().unwrap().1.clone();
    assert!(heads.iter().all(|h| h.contains("authorization: Bearer otlp-collector-secret")), "{heads:?}");
    let admin = gw.admin_addr().unwrap();
    let config = common::send(admin, "GET /config HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(!String::from_utf8_lossy(&config.body).contains("otlp-collector-secret"));
    gw.shutdown();
}

fn sampling_ratio_and_a_parent_that_says_no() {
    let (otlp, got) = receiver();
    let (b, rest) = (backend(), recorder(|_| (200, "application/json", b"{}".to_vec())));
    let gw = common::start(&config(otlp, b.addr, rest.addr, 0.1));
    let addr = gw.addrs()[0];
    let token = common::hs256_token_with(JWT_KEY, json!({"sub": "s", "scope": "x"}));
    let auth = format!("Authorization: Bearer {token}\r\n");
    for _ in 0..1000 {
        assert_eq!(common::call_2026(addr, "/mcp", "hello", "{}", &auth).status, 200);
    }
    // A parent that was not sampled is honoured, whatever the ratio.
    let unsampled = format!("{auth}traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00\r\n");
    for _ in 0..20 {
        common::call_2026(addr, "/mcp", "hello", "{}", &unsampled);
    }
    std::thread::sleep(Duration::from_millis(2500)); // every worker's spans handed over and sent
    let spans = got.lock().unwrap().0.clone();
    let traced = spans.iter().filter(|s| s.kind == 2).count();
    assert!((50..=160).contains(&traced), "{traced} of 1,000 requests traced at 0.1");
    assert!(!spans.iter().any(|s| hex(&s.trace_id) == "0af7651916cd43dd8448eb211c80319c"));
    gw.shutdown();
}

fn a_collector_that_is_down_slows_nothing_and_drops_are_counted() {
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (b, rest) = (backend(), recorder(|_| (200, "application/json", b"{}".to_vec())));
    let gw = common::start(&config(dead, b.addr, rest.addr, 1.0));
    let (addr, admin) = (gw.addrs()[0], gw.admin_addr().unwrap());
    let metric = || {
        let m = String::from_utf8(
            common::send(admin, "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").body,
        )
        .unwrap();
        m.lines()
            .find_map(|l| l.strip_prefix("portcullis_trace_spans_dropped_total "))
            .map_or(0u64, |v| v.parse().unwrap())
    };
    let before = metric();
    let token = common::hs256_token_with(JWT_KEY, json!({"sub": "s", "scope": "x"}));
    let auth = format!("Authorization: Bearer {token}\r\n");
    for _ in 0..50 {
        assert_eq!(common::call_2026(addr, "/mcp", "hello", "{}", &auth).status, 200);
    }
    // Sent within a second, retried twice (200 ms, 800 ms later), then counted as dropped.
    let until = Instant::now() + Duration::from_secs(15);
    let dropped = loop {
        let n = metric() - before;
        if n >= 50 || Instant::now() > until {
            break n;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(dropped >= 50, "{dropped} spans counted as dropped");
    gw.shutdown();
}
