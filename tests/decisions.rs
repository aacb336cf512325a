//! One decision per message, on exactly what the backend receives: each test is an attack on a
//! gap between what the rules judged and what a backend would act on, named after the rule of
//! docs/security.md it checks. The REST backend is a recorder written here; its log shows what
//! reached it.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_methods)] // fixture threads, not the data path

mod common;

use common::{call_2026, post_mcp, recorder, start, Reply};
use serde_json::Value;

fn ok(_: &common::Seen) -> Reply {
    (200, "application/json", br#"{"ok":true}"#.to_vec())
}

fn error_of(r: &common::Resp) -> Value {
    r.json()["error"].clone()
}

/// `{"amount":"5000"}` used to slip past `args.amount > 100` (the condition errored on a string,
/// the deny rule was skipped) and reach the backend as `5000` after normalization.
#[test]
fn normalize_then_authorize() {
    let rec = recorder(ok);
    let addr = rec.addr;
    let gw = start(&format!(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: pay
    path: /mcp
    authorization:
      rules:
        - name: no-large-transfers
          target: {{ tools: [{{ backend: pay, tool: transfer, when: "args.amount > 100" }}] }}
          action: deny
        - name: no-forced-wipes
          target: {{ tools: [{{ backend: pay, tool: wipe }}] }}
          cel: "request.mcp.params.arguments.force == true"
          action: deny
        - target: {{ tools: [{{ backend: pay }}] }}
          action: allow
    tools:
      - name: transfer
        args: [{{ name: amount, type: number, required: true }}, {{ name: memo, type: string }}]
        requestTemplate: {{ url: "http://{addr}/transfer", method: POST, argsToJsonBody: true }}
      - name: wipe
        args: [{{ name: force, type: boolean, default: false }}]
        responseTemplate: {{ body: "wiped force={{{{.args.force}}}}" }}
      - name: quote
        args: [{{ name: amount, type: integer, default: 1 }}]
        responseTemplate: {{ body: "quote for {{{{.args.amount}}}}" }}
"#
    ));
    let gwa = gw.addrs()[0];

    // The string is judged as the number the backend would receive: denied, never sent.
    let r = call_2026(gwa, "/mcp", "transfer", r#"{"amount":"5000"}"#, "");
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert!(rec.take().is_empty(), "a denied call never reaches the backend");

    // Allowed: the backend receives exactly the normalized value the rules saw.
    let r = call_2026(gwa, "/mcp", "transfer", r#"{"amount":"50","memo":"rent","extra":1}"#, "");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let seen = rec.take();
    assert_eq!(seen.len(), 1);
    let sent: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(sent, serde_json::json!({"amount": 50, "memo": "rent"}));

    // A value no coercion converts is refused before any rule, naming the argument.
    for (args, name) in [(r#"{"amount":"lots"}"#, "amount"), (r#"{"amount":5,"memo":7}"#, "memo")] {
        let r = call_2026(gwa, "/mcp", "transfer", args, "");
        assert_eq!(r.status, 400, "{args}: -32602 is 400 on the 2026-07-28 wire");
        let e = error_of(&r);
        assert_eq!(e["code"], -32602, "{e}");
        assert!(e["message"].as_str().unwrap().contains(name), "{e}");
    }
    assert!(rec.take().is_empty());

    // `request.mcp.params.arguments` reads the judged arguments too: `"true"` is `true` there.
    let r = call_2026(gwa, "/mcp", "wipe", r#"{"force":"true"}"#, "");
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    let r = call_2026(gwa, "/mcp", "wipe", r#"{"force":"false"}"#, "");
    assert_eq!(r.json()["result"]["content"][0]["text"], "wiped force=false");

    // Template tools: the default and the coercion are what the rules and the template see.
    let r = call_2026(gwa, "/mcp", "quote", r#"{"amount":"7"}"#, "");
    assert_eq!(r.json()["result"]["content"][0]["text"], "quote for 7");
    let r = call_2026(gwa, "/mcp", "quote", "{}", "");
    assert_eq!(r.json()["result"]["content"][0]["text"], "quote for 1");
}

/// A deny rule whose condition cannot be evaluated denies; an allow rule that cannot be
/// evaluated does not allow.
#[test]
fn deny_fails_closed() {
    let gw = start(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: s
    path: /mcp
    authorization:
      defaultAction: allow
      rules:
        - target: { tools: [{ backend: s, tool: search, when: "args.filter.size() > 2" }] }
          action: deny
        - target: { tools: [{ backend: s, tool: admin, when: "args.level < 3" }] }
          action: allow
        - target: { tools: [{ backend: s, tool: admin }] }
          action: deny
    tools:
      - { name: search, args: [{ name: q }, { name: filter, type: object }], responseTemplate: { body: found } }
      - { name: admin, args: [{ name: level, type: string }], responseTemplate: { body: done } }
"#,
    );
    let gwa = gw.addrs()[0];
    // `filter` absent: `args.filter.size()` cannot be evaluated, so the deny rule denies.
    let r = call_2026(gwa, "/mcp", "search", r#"{"q":"x"}"#, "");
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    let r = call_2026(gwa, "/mcp", "search", r#"{"q":"x","filter":{"a":1}}"#, "");
    assert_eq!(r.json()["result"]["content"][0]["text"], "found");
    let r = call_2026(gwa, "/mcp", "search", r#"{"q":"x","filter":{"a":1,"b":2,"c":3}}"#, "");
    assert_eq!(r.status, 403);
    // `level` is a string: `args.level < 3` errors, the allow rule does not allow, the next
    // rule denies.
    let r = call_2026(gwa, "/mcp", "admin", r#"{"level":"1"}"#, "");
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
}

/// A header a rule reads is judged on all its lines, not the first: a backend reading the last
/// line would otherwise act on a value no rule saw.
#[test]
fn repeated_headers() {
    let rec = recorder(ok);
    let addr = rec.addr;
    let gw = start(&format!(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: t
    path: /mcp
    authorization:
      rules:
        - cel: 'request.headers["x-tenant"] == "t-1"'
          action: allow
    tools:
      - {{ name: echo, responseTemplate: {{ body: ok }} }}
  - name: px
    path: /px
    authentication: {{ mode: proxy, proxy: {{ userHeader: X-User, trustedSources: [127.0.0.1/32, "::1"] }} }}
    tools:
      - {{ name: who, requestTemplate: {{ url: "http://{addr}/who" }} }}
"#
    ));
    let gwa = gw.addrs()[0];
    let r = call_2026(gwa, "/mcp", "echo", "{}", "x-tenant: t-1\r\n");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = call_2026(gwa, "/mcp", "echo", "{}", "x-tenant: t-1\r\nx-tenant: t-2\r\n");
    assert_eq!(r.status, 403, "judged on \"t-1, t-2\", not on its first line");
    let r = call_2026(gwa, "/mcp", "echo", "{}", "X-Tenant: t-1\r\nx-tenant: t-1\r\n");
    assert_eq!(r.status, 403, "\"t-1, t-1\" is not \"t-1\" either");

    // An identity header sent twice is refused outright: 400, and the backend is never asked.
    let r = call_2026(gwa, "/px", "who", "{}", "X-User: alice\r\nX-User: admin\r\n");
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert!(error_of(&r)["message"].as_str().unwrap().contains("repeated"));
    assert!(rec.take().is_empty());
    let r = call_2026(gwa, "/px", "who", "{}", "X-User: alice\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(rec.take().len(), 1);
}

/// Inside a 2025-03-26 batch every element is decided like a message of its own: arguments
/// normalized first, a denied or malformed element an error element of its own.
#[test]
fn batches_are_decided_per_message() {
    let gw = start(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: b
    path: /mcp
    authorization:
      defaultAction: allow
      rules:
        - target: { tools: [{ backend: b, tool: add, when: "args.n > 10" }] }
          action: deny
    tools:
      - { name: add, args: [{ name: n, type: integer, required: true }], responseTemplate: { body: "n={{.args.n}}" } }
"#,
    );
    let gwa = gw.addrs()[0];
    let post = |body: &str, extra: &str| post_mcp(gwa, body, extra);
    let init = post(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        "",
    );
    let sid = format!("Mcp-Session-Id: {}\r\n", init.header("mcp-session-id").unwrap());
    let r = post(
        r#"[{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":{"n":"3"}}},
            {"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"n":"30"}}},
            {"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"add","arguments":{"n":"x"}}},
            {"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"add","arguments":{}}}]"#,
        &sid,
    );
    let v = r.json();
    let by_id = |id: i64| v.as_array().unwrap().iter().find(|e| e["id"] == id).unwrap().clone();
    assert_eq!(by_id(2)["result"]["content"][0]["text"], "n=3");
    assert!(by_id(3)["error"]["message"].as_str().unwrap().contains("not allowed"), "{v}");
    assert_eq!(by_id(4)["error"]["code"], -32602, "{v}");
    assert_eq!(by_id(5)["result"]["isError"], true, "a missing argument is the tool's failure");
}

/// A backend that refuses, resets or stalls is the backend's failure (502, 504), not the
/// gateway's (500); a backend echoing what the gateway sent it does not hand the client the
/// gateway's credential.
#[test]
fn backend_failures_are_not_internal_errors() {
    use std::io::{Read, Write};
    // Refused: a port nobody listens on (bound, then closed).
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // Garbage: answers a line that is not HTTP.
    let garbage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_addr = garbage.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in garbage.incoming().take(4) {
            let mut s = s.unwrap();
            let mut b = [0u8; 4096];
            let _ = s.read(&mut b);
            let _ = s.write_all(b"SSH-2.0-not-http\r\n\r\n");
        }
    });
    // Stalls: accepts and reads, never answers (until the test ends).
    let stall = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stall_addr = stall.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in stall.incoming().take(4) {
            held.push(s.unwrap());
        }
    });
    // Echo: a REST backend answering 401 with the request's head in its body.
    let echo = recorder(|seen| {
        let mut body = format!("denied {} {}", seen.method, seen.target);
        for (n, v) in &seen.headers {
            body.push_str(&format!("\n{n}: {v}"));
        }
        (401, "text/plain", body.into_bytes())
    });
    let echo_addr = echo.addr;
    let gw = start(&format!(
        r#"
listen: 127.0.0.1:0
workers: 1
limits: {{ upstreamTimeoutMs: 300 }}
servers:
  - name: down
    path: /down
    backends: [{{ name: b, url: "http://{refused}/mcp" }}]
  - name: junk
    path: /junk
    backends: [{{ name: b, url: "http://{garbage_addr}/mcp" }}]
  - name: slow
    path: /slow
    backends: [{{ name: b, url: "http://{stall_addr}/mcp" }}]
  - name: rest
    path: /rest
    server:
      securitySchemes:
        - {{ id: key, type: apiKey, in: header, name: X-Backend-Key, defaultCredential: "sk-live-0123456789" }}
        - {{ id: q, type: apiKey, in: query, name: token, defaultCredential: "qk-live-9876543210" }}
    tools:
      - {{ name: echo, requestTemplate: {{ url: "http://{echo_addr}/e", security: {{ id: key }} }} }}
      - {{ name: echoq, requestTemplate: {{ url: "http://{echo_addr}/q", security: {{ id: q }} }} }}
"#
    ));
    let gwa = gw.addrs()[0];
    for (path, status) in [("/down", 502), ("/junk", 502), ("/slow", 504)] {
        let r = call_2026(gwa, path, "b__t", "{}", "");
        assert_eq!(r.status, status, "{path}: {}", String::from_utf8_lossy(&r.body));
        let e = error_of(&r);
        assert_eq!(e["code"], -32603, "{e}");
        assert!(e["message"].as_str().unwrap().contains("backend b"), "{e}");
    }
    for tool in ["echo", "echoq"] {
        let r = call_2026(gwa, "/rest", tool, "{}", "");
        let text = String::from_utf8_lossy(&r.body).to_string();
        assert!(text.contains("denied GET"), "the body is relayed: {text}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(!text.contains("0123456789") && !text.contains("9876543210"), "credential leaked: {text}");
    }
    assert!(echo.take().iter().all(|s| s.header("x-backend-key").is_some() || s.query().contains("token=")));
}

/// An argument error is told only to a caller who may call the tool: anyone else gets the 403
/// a call would get, and learns nothing of the tool's arguments.
#[test]
fn argument_errors_go_only_to_callers_who_may_call() {
    let gw = start(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: s
    path: /mcp
    authentication: { mode: apiKey, apiKey: { in: header, name: X-Api-Key, keys: [{ id: ci, value: key-ci-0123 }, { id: ops, value: key-ops-4567 }] } }
    authorization:
      rules:
        - { cel: 'request.auth.subject == "ci"', target: { tools: [{ backend: s, tool: t }] } }
    tools:
      - { name: t, args: [{ name: n, type: integer, required: true }], responseTemplate: { body: "n={{.args.n}}" } }
"#,
    );
    let gwa = gw.addrs()[0];
    let ci = "X-Api-Key: key-ci-0123\r\n";
    let ops = "X-Api-Key: key-ops-4567\r\n";
    let r = call_2026(gwa, "/mcp", "t", r#"{"n":"x"}"#, ci);
    assert_eq!((r.status, &error_of(&r)["code"]), (400, &serde_json::json!(-32602)));
    let r = call_2026(gwa, "/mcp", "t", r#"{"n":"x"}"#, ops);
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    let r = call_2026(gwa, "/mcp", "t", "{}", ops);
    assert_eq!(r.status, 403, "a missing argument is not told either");
    let r = call_2026(gwa, "/mcp", "t", r#"{"n":"4"}"#, ci);
    assert_eq!(r.json()["result"]["content"][0]["text"], "n=4");
}

/// A backend that echoes its request in a successful answer (a tool result, an SSE event) does
/// not hand the client the credential the gateway sent it, however it escapes it.
#[test]
fn backend_answers_never_carry_the_gateway_credential() {
    let echo = recorder(|seen| {
        let msg: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
        let auth = seen.header("authorization").unwrap_or("").to_string();
        let body = match msg["method"].as_str() {
            Some("server/discover") => serde_json::json!({"jsonrpc": "2.0", "id": msg["id"], "result":
                {"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}}})
            .to_string(),
            // Once as is, once with JSON's optional `\/` escape (as PHP writes it).
            _ => format!(
                r#"{{"jsonrpc":"2.0","id":{},"result":{{"content":[{{"type":"text","text":"you sent {auth}"}}],"escaped":"{}"}}}}"#,
                msg["id"],
                auth.replace('/', "\\/")
            ),
        };
        let body = if msg["params"]["arguments"]["sse"] == true {
            format!("event: message\ndata: {body}\n\n").into_bytes()
        } else {
            body.into_bytes()
        };
        let ctype =
            if msg["params"]["arguments"]["sse"] == true { "text/event-stream" } else { "application/json" };
        (200, ctype, body)
    });
    let gw = start(&format!(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: s
    path: /mcp
    server:
      securitySchemes: [{{ id: svc, type: http, scheme: bearer, defaultCredential: "sk/live/0123456789" }}]
    backends: [{{ name: b, url: "http://{}/mcp", security: {{ id: svc }} }}]
"#,
        echo.addr
    ));
    let gwa = gw.addrs()[0];
    for args in [r#"{}"#, r#"{"sse":true}"#] {
        let r = call_2026(gwa, "/mcp", "t", args, "");
        let text = String::from_utf8_lossy(&r.body).to_string();
        assert!(text.contains("you sent <redacted>"), "{text}");
        assert!(!text.contains("0123456789"), "credential leaked: {text}");
    }
    assert!(echo.take().iter().any(|s| s.header("authorization") == Some("Bearer sk/live/0123456789")));
}

/// A backend tool this worker has never seen listed: its argument rules are read from the
/// backend before the call is decided, so `"true"` for a boolean is judged as `true` (an
/// equality against a string would otherwise be plainly false and let a deny rule pass).
#[test]
fn backend_tools_are_learned_before_the_first_decision() {
    let backend = recorder(|seen| {
        let msg: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
        let result = match msg["method"].as_str() {
            Some("server/discover") => {
                serde_json::json!({"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}})
            }
            Some("tools/list") => serde_json::json!({"tools": [{"name": "wipe", "inputSchema":
                {"type": "object", "properties": {"force": {"type": "boolean"}}}}], "resultType": "complete"}),
            _ => {
                serde_json::json!({"content": [{"type": "text", "text": format!("args {}", msg["params"]["arguments"])}], "resultType": "complete"})
            }
        };
        let body = serde_json::json!({"jsonrpc": "2.0", "id": msg["id"], "result": result}).to_string();
        (200, "application/json", body.into_bytes())
    });
    let gw = start(&format!(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: s
    path: /mcp
    authorization:
      defaultAction: allow
      rules:
        - {{ target: {{ tools: [{{ backend: b, tool: wipe, when: "args.force == true" }}] }}, action: deny }}
    backends: [{{ name: b, url: "http://{}/mcp" }}]
"#,
        backend.addr
    ));
    let gwa = gw.addrs()[0];
    // One backend: its tools keep their own names.
    let r = call_2026(gwa, "/mcp", "wipe", r#"{"force":"true"}"#, "");
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    let r = call_2026(gwa, "/mcp", "wipe", r#"{"force":"false"}"#, "");
    assert_eq!(r.json()["result"]["content"][0]["text"], r#"args {"force":false}"#, "sent as judged");
    // A tool the backend does not list is judged as sent, without asking the backend again.
    for _ in 0..2 {
        let r = call_2026(gwa, "/mcp", "unlisted", r#"{"x":"1"}"#, "");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let lists = backend.take().iter().filter(|s| s.body.contains("tools/list")).count();
    assert_eq!(lists, 1, "learned once, before the first decision");
}

/// SEP-2243 parameter headers: `Mcp-Param-Region: us` beside `"region":"eu"` used to reach the
/// backend as sent, judged on `eu` while an intermediary or a backend routing by the header would
/// act on `us`. A header must carry the value the rules judged (after normalization).
#[test]
fn parameter_headers_carry_what_was_judged() {
    let rec = recorder(|seen: &common::Seen| {
        let msg: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
        let result = match msg["method"].as_str().unwrap_or("") {
            "server/discover" => {
                serde_json::json!({"supportedVersions":["2026-07-28"],"resultType":"complete",
                "capabilities":{"tools":{}},"serverInfo":{"name":"m","version":"1"}})
            }
            "tools/list" => {
                serde_json::json!({"resultType":"complete","tools":[{"name":"route","inputSchema":{"type":"object",
                "properties":{"region":{"type":"string","x-mcp-header":"Region"},"count":{"type":"integer","x-mcp-header":"Count"}}}}]})
            }
            _ => {
                serde_json::json!({"resultType":"complete","content":[{"type":"text","text":"routed"}],"isError":false})
            }
        };
        let body = serde_json::json!({"jsonrpc":"2.0","id":msg["id"],"result":result});
        (200, "application/json", body.to_string().into_bytes())
    });
    let gw = start(&format!(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: s
    path: /mcp
    authorization:
      rules:
        - target: {{ tools: [{{ backend: m, tool: route, when: 'args.region == "eu"' }}] }}
    backends: [{{ name: m, url: "http://{}/mcp" }}]
"#,
        rec.addr
    ));
    let addr = gw.addrs()[0];
    let call = |args: &str, headers: &str| {
        common::rpc_2026(addr, "tools/call", &format!(r#""name":"route","arguments":{args}"#), headers)
    };
    let called = || rec.take().into_iter().filter(|s| s.body.contains("\"tools/call\"")).collect::<Vec<_>>();

    // Agreeing headers pass; the integer header agrees with the normalized value.
    let r = call(r#"{"region":"eu","count":"5"}"#, "Mcp-Param-Region: eu\r\nMcp-Param-Count: 5\r\n");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let seen = called();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("mcp-param-region"), Some("eu"));
    let sent: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(sent["params"]["arguments"]["count"], 5, "judged and sent normalized");

    // The attack: judged on "eu", the header says "us".
    let r = call(r#"{"region":"eu"}"#, "Mcp-Param-Region: us\r\n");
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let e = error_of(&r);
    assert_eq!(e["code"], -32020, "{e}");
    assert_eq!(e["message"], "Header mismatch: Mcp-Param-Region does not match arguments.region");
    // A header for an argument the body does not have.
    assert_eq!(call(r#"{"region":"eu"}"#, "Mcp-Param-Region: eu\r\nMcp-Param-Count: 7\r\n").status, 400);
    assert!(called().is_empty(), "no backend saw them");

    // The base64 form of a header value is what it decodes to; the rules still decide.
    assert_eq!(call(r#"{"region":"eu"}"#, "Mcp-Param-Region: =?base64?ZXU=?=\r\n").status, 200);
    assert_eq!(call(r#"{"region":"us"}"#, "Mcp-Param-Region: us\r\n").status, 403);
    gw.shutdown();
}
