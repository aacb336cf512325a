//! REST APIs as MCP tools end to end (Higress parity): a recording REST backend written here sees
//! exactly what the gateway sends - method, path, query, headers, body - for every argument
//! position, body mode, security scheme, credential precedence and passthrough; answers of every
//! shape come back as tool results; the seeds' YAML examples load verbatim.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_types)] // fixture bookkeeping across test threads, not the data path

mod common;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{call_2026, post_mcp, recorder, recorder_with, start, Reply};
use serde_json::{json, Value};

fn ok_json(body: Value) -> Reply {
    (200, "application/json", body.to_string().into_bytes())
}

/// The result of a 2026-07-28 call at `/mcp`.
fn call(addr: SocketAddr, tool: &str, args: Value, extra: &str) -> Value {
    call_at(addr, "/mcp", tool, args, extra)
}

fn call_at(addr: SocketAddr, target: &str, tool: &str, args: Value, extra: &str) -> Value {
    let r = call_2026(addr, target, tool, &args.to_string(), extra);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["result"]["resultType"], "complete", "{v}");
    v["result"].clone()
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text in {result}"))
}

#[test]
fn argument_positions_templates_and_coercion() {
    let rec = recorder(|_| ok_json(json!({"ok": true})));
    let addr = rec.addr;
    let gw = start(&format!(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: rest
    path: /mcp
    server:
      name: rest-api
      config: {{ apiKey: cfg-key, region: eu }}
    tools:
      - name: get-item
        args:
          - {{ name: id, position: path, required: true }}
          - {{ name: q, position: query }}
          - {{ name: limit, type: integer, position: query, default: 10 }}
          - {{ name: X-Trace, position: header }}
          - {{ name: session, position: cookie }}
          - {{ name: theme, position: cookie }}
          - {{ name: flag, type: boolean, position: body }}
          - {{ name: count, type: integer, position: body }}
          - {{ name: ratio, type: number, position: body }}
          - {{ name: city }}
        requestTemplate:
          url: "http://{addr}/items/{{id}}?city={{{{.args.city}}}}&region={{{{.config.region}}}}"
          method: post
          headers: [{{ key: X-Api-Key, value: "{{{{.config.apiKey}}}}" }}]
      - name: json-all
        args: [{{ name: a }}, {{ name: n, type: integer, default: 3 }}, {{ name: p, position: path }}]
        requestTemplate: {{ url: "http://{addr}/json", method: POST, argsToJsonBody: true }}
      - name: form-all
        args: [{{ name: a }}, {{ name: b, position: body }}]
        requestTemplate: {{ url: "http://{addr}/form", method: POST, argsToFormBody: true }}
      - name: url-all
        args: [{{ name: a }}, {{ name: b, type: boolean }}]
        requestTemplate: {{ url: "http://{addr}/url?fixed=1", argsToUrlParam: true }}
      - name: arrays
        args: [{{ name: tag, type: array, position: query }}, {{ name: X-Ids, type: array, position: header }}]
        requestTemplate: {{ url: "http://{addr}/arr" }}
      - name: templated-body
        args: [{{ name: a }}, {{ name: n, type: number }}]
        requestTemplate:
          url: "http://{addr}/t"
          method: PUT
          body: '{{"name": "{{{{.args.a}}}}", "n": {{{{.args.n}}}}}}'
"#
    ));
    let gwa = gw.addrs()[0];

    let r = call(
        gwa,
        "get-item",
        json!({"id": "a/b c", "q": "x&y=z", "X-Trace": "t1", "session": "s 1", "theme": "dark",
               "flag": "true", "count": "42", "ratio": "0.5", "city": "Köln & co", "extra": "dropped"}),
        "",
    );
    assert_eq!(r["isError"], false, "{r}");
    let s = rec.last();
    assert_eq!(s.method, "POST");
    assert_eq!(s.path(), "/items/a/b%20c", "path placeholder escaped as a path (Higress keeps /)");
    assert_eq!(
        s.query(),
        "city=K%C3%B6ln%20%26%20co&region=eu&q=x%26y%3Dz&limit=10",
        "template values encoded, query args appended, the default filled"
    );
    assert_eq!(s.header("host"), Some(addr.to_string().as_str()));
    assert_eq!(s.header("x-api-key"), Some("cfg-key"));
    assert_eq!(s.header("x-trace"), Some("t1"));
    assert_eq!(s.header("cookie"), Some("session=s%201; theme=dark"));
    assert_eq!(s.header("content-type"), Some("application/json; charset=utf-8"));
    assert_eq!(s.header("accept"), Some("*/*"));
    assert_eq!(
        serde_json::from_str::<Value>(&s.body).unwrap(),
        json!({"flag": true, "count": 42, "ratio": 0.5}),
        "body args coerced to their declared types; undeclared and other positions left out"
    );

    // A missing required argument is a tool error naming it, and the backend is not called.
    rec.take();
    let r = call(gwa, "get-item", json!({"q": "x"}), "");
    assert_eq!(r["isError"], true);
    assert_eq!(text(&r), "missing required argument: id");
    assert!(rec.take().is_empty(), "the backend was not called");

    call(gwa, "json-all", json!({"a": "x", "p": "not in body", "zzz": 1}), "");
    let s = rec.last();
    assert_eq!(serde_json::from_str::<Value>(&s.body).unwrap(), json!({"a": "x", "n": 3}));

    call(gwa, "form-all", json!({"a": "x y", "b": "&"}), "");
    let s = rec.last();
    assert_eq!(s.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(s.body, "a=x%20y&b=%26");

    call(gwa, "url-all", json!({"a": "1", "b": "false"}), "");
    let s = rec.last();
    assert_eq!((s.method.as_str(), s.target.as_str()), ("GET", "/url?fixed=1&a=1&b=false"));
    assert_eq!(s.header("content-length"), None, "no body on a GET");

    call(gwa, "arrays", json!({"tag": ["a", "b c"], "X-Ids": [1, 2]}), "");
    let s = rec.last();
    assert_eq!(s.target, "/arr?tag=a&tag=b%20c", "an array is one query pair per element");
    assert_eq!(s.header("x-ids"), Some("1,2"), "and comma-joined in a header");

    call(gwa, "templated-body", json!({"a": "A", "n": "2.5"}), "");
    let s = rec.last();
    assert_eq!(s.method, "PUT");
    assert_eq!(s.body, r#"{"name": "A", "n": 2.5}"#);
    assert_eq!(s.header("content-type"), Some("application/json; charset=utf-8"), "a JSON body is labelled");
}

fn schemes_config(addr: SocketAddr) -> String {
    format!(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: creds
    path: /mcp
    server:
      securitySchemes:
        - {{ id: bearer, type: http, scheme: bearer, defaultCredential: srv-token }}
        - {{ id: basic, type: http, scheme: basic, defaultCredential: "service_user:p@$$wOrd" }}
        - {{ id: header, type: apiKey, in: header, name: X-Internal-ApiKey, defaultCredential: hk }}
        - {{ id: query, type: apiKey, in: query, name: key, defaultCredential: "q k" }}
        - {{ id: bare, type: http, scheme: bearer }}
        - {{ id: clientBearer, type: http, scheme: bearer }}
        - {{ id: clientKey, type: apiKey, in: query, name: api_key }}
        - {{ id: clientBasic, type: http, scheme: basic }}
        - {{ id: backendKey, type: apiKey, in: header, name: X-Key, defaultCredential: fallback }}
    tools:
      - {{ name: t-bearer, requestTemplate: {{ url: "http://{addr}/b", security: {{ id: bearer }} }} }}
      - {{ name: t-override, requestTemplate: {{ url: "http://{addr}/o", security: {{ id: bearer, credential: override }} }} }}
      - {{ name: t-basic, requestTemplate: {{ url: "http://{addr}/ba", security: {{ id: basic }} }} }}
      - {{ name: t-header, requestTemplate: {{ url: "http://{addr}/h", security: {{ id: header }} }} }}
      - {{ name: t-query, requestTemplate: {{ url: "http://{addr}/q?x=1", security: {{ id: query }} }} }}
      - {{ name: t-none, requestTemplate: {{ url: "http://{addr}/n" }} }}
      - {{ name: t-missing, requestTemplate: {{ url: "http://{addr}/m", security: {{ id: bare }} }} }}
      - name: p-bearer
        security: {{ id: clientBearer, passthrough: true }}
        requestTemplate: {{ url: "http://{addr}/pb", security: {{ id: bearer, credential: ignored-when-passed }} }}
      - name: p-key
        security: {{ id: clientKey, passthrough: true }}
        requestTemplate: {{ url: "http://{addr}/pk", security: {{ id: backendKey }} }}
      - name: p-basic
        security: {{ id: clientBasic, passthrough: true }}
        requestTemplate: {{ url: "http://{addr}/pba", security: {{ id: basic }} }}
      - name: p-required
        security: {{ id: clientBearer, passthrough: true }}
        requestTemplate: {{ url: "http://{addr}/pr", security: {{ id: bare }} }}
      - name: p-as-sent
        security: {{ id: clientBearer, passthrough: true }}
        requestTemplate: {{ url: "http://{addr}/pas" }}
  - name: pass-header
    path: /mcp2
    server: {{ passthroughAuthHeader: true }}
    tools:
      - {{ name: t-raw, requestTemplate: {{ url: "http://{addr}/raw" }} }}
  - name: defaults
    path: /mcp3
    server:
      securitySchemes:
        - {{ id: cb, type: http, scheme: bearer }}
        - {{ id: bk, type: apiKey, in: header, name: X-Backend-Key }}
      defaultDownstreamSecurity: {{ id: cb, passthrough: true }}
      defaultUpstreamSecurity: {{ id: bk }}
    tools:
      - {{ name: t-def, requestTemplate: {{ url: "http://{addr}/def" }} }}
"#
    )
}

#[test]
fn backend_credentials_by_scheme_and_precedence() {
    let rec = recorder(|_| ok_json(json!({})));
    let gw = start(&schemes_config(rec.addr));
    let gwa = gw.addrs()[0];
    let client = "Authorization: Bearer user-jwt\r\n";

    call(gwa, "t-bearer", json!({}), client);
    assert_eq!(rec.last().header("authorization"), Some("Bearer srv-token"), "defaultCredential");
    call(gwa, "t-override", json!({}), client);
    assert_eq!(rec.last().header("authorization"), Some("Bearer override"), "tool credential beats default");
    call(gwa, "t-basic", json!({}), client);
    assert_eq!(
        rec.last().header("authorization"),
        Some("Basic c2VydmljZV91c2VyOnBAJCR3T3Jk"),
        "user:pass is base64-encoded (Higress seed credential)"
    );
    call(gwa, "t-header", json!({}), client);
    let s = rec.last();
    assert_eq!(s.header("x-internal-apikey"), Some("hk"));
    assert_eq!(s.header("authorization"), None, "the client's stage-1 credential is not forwarded");
    call(gwa, "t-query", json!({}), client);
    let s = rec.last();
    assert_eq!(s.target, "/q?x=1&key=q%20k");
    assert_eq!(s.header("authorization"), None);
    call(gwa, "t-none", json!({}), client);
    assert_eq!(rec.last().header("authorization"), None, "no scheme, no passthrough: nothing forwarded");

    // A scheme without any credential: the call fails naming it, and the backend is not asked.
    rec.take();
    let r = call(gwa, "t-missing", json!({}), client);
    assert_eq!(r["isError"], true);
    assert!(text(&r).contains("missing credential") && text(&r).contains("bare"), "{r}");
    assert!(rec.take().is_empty());

    // Passthrough: the client's token, in the backend scheme's form; the tool's credential is
    // ignored while the client sends one, and used when it does not.
    call(gwa, "p-bearer", json!({}), client);
    assert_eq!(rec.last().header("authorization"), Some("Bearer user-jwt"));
    call(gwa, "p-bearer", json!({}), "");
    assert_eq!(rec.last().header("authorization"), Some("Bearer ignored-when-passed"));
    // An api key from the client's query, applied as the backend's header; the client's query
    // parameter is not forwarded.
    call_at(gwa, "/mcp?api_key=u%2Dk", "p-key", json!({}), "");
    let s = rec.last();
    assert_eq!((s.header("x-key"), s.target.as_str()), (Some("u-k"), "/pk"));
    call(gwa, "p-key", json!({}), "");
    assert_eq!(rec.last().header("x-key"), Some("fallback"));
    // The base64 part of the client's Basic credential.
    call(gwa, "p-basic", json!({}), "Authorization: Basic dTpw\r\n");
    assert_eq!(rec.last().header("authorization"), Some("Basic dTpw"));
    // Passthrough expected but nothing to pass and nothing configured.
    rec.take();
    let r = call(gwa, "p-required", json!({}), "");
    assert_eq!(r["isError"], true);
    assert!(text(&r).contains("the client sent no credential for scheme clientBearer"), "{r}");
    assert!(rec.take().is_empty());
    // Passthrough without a backend scheme: sent in the client's own scheme.
    call(gwa, "p-as-sent", json!({}), client);
    assert_eq!(rec.last().header("authorization"), Some("Bearer user-jwt"));
    let r = call(gwa, "p-as-sent", json!({}), "");
    assert!(text(&r).contains("missing credential"), "{r}");

    // Server defaults: the client's bearer token (defaultDownstreamSecurity, passthrough) sent as
    // the backend's api key header (defaultUpstreamSecurity).
    call_at(gwa, "/mcp3", "t-def", json!({}), client);
    let s = rec.last();
    assert_eq!((s.header("x-backend-key"), s.header("authorization")), (Some("user-jwt"), None));

    // server.passthroughAuthHeader: the Authorization header goes on verbatim.
    call_at(gwa, "/mcp2", "t-raw", json!({}), "Authorization: Token abc\r\n");
    assert_eq!(rec.last().header("authorization"), Some("Token abc"));
}

#[test]
fn answers_become_results() {
    let rec = recorder(|s| match s.path() {
        "/json" => ok_json(json!({"current": {"temp_c": 21}, "location": {"name": "Berlin"}})),
        "/raw" => (200, "text/plain", b"hello".to_vec()),
        "/fail" | "/fail2" => (503, "application/json", br#"{"error":"down"}"#.to_vec()),
        "/img" => (200, "image/png", vec![0x89, b'P', b'N', b'G']),
        "/object" => ok_json(json!({"a": 1})),
        "/array" => ok_json(json!([1])),
        _ => (200, "text/plain", Vec::new()),
    });
    let addr = rec.addr;
    let gw = start(&format!(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: answers
    path: /mcp
    tools:
      - name: weather
        requestTemplate: {{ url: "http://{addr}/json" }}
        responseTemplate: {{ body: "{{{{.current.temp_c}}}} C in {{{{.location.name}}}}" }}
      - name: raw
        requestTemplate: {{ url: "http://{addr}/raw" }}
        responseTemplate: {{ prependBody: "<<", appendBody: ">>" }}
      - {{ name: fail, requestTemplate: {{ url: "http://{addr}/fail" }} }}
      - name: fail2
        requestTemplate: {{ url: "http://{addr}/fail2" }}
        errorResponseTemplate: "upstream said {{{{.error}}}}"
      - {{ name: img, requestTemplate: {{ url: "http://{addr}/img" }} }}
      - name: object
        requestTemplate: {{ url: "http://{addr}/object" }}
        outputSchema: {{ type: object, properties: {{ a: {{ type: integer }} }} }}
      - name: array
        requestTemplate: {{ url: "http://{addr}/array" }}
        outputSchema: {{ type: object }}
      - {{ name: empty, requestTemplate: {{ url: "http://{addr}/empty" }} }}
"#
    ));
    let gwa = gw.addrs()[0];
    assert_eq!(text(&call(gwa, "weather", json!({}), "")), "21 C in Berlin");
    assert_eq!(text(&call(gwa, "raw", json!({}), "")), "<<hello>>");
    let r = call(gwa, "fail", json!({}), "");
    assert_eq!(
        (r["isError"].clone(), text(&r)),
        (json!(true), r#"call failed, status: 503, response: {"error":"down"}"#)
    );
    let r = call(gwa, "fail2", json!({}), "");
    assert_eq!((r["isError"].clone(), text(&r)), (json!(true), "upstream said down"));
    let r = call(gwa, "img", json!({}), "");
    assert_eq!(r["content"][0], json!({"type": "image", "data": "iVBORw==", "mimeType": "image/png"}));
    let r = call(gwa, "object", json!({}), "");
    assert_eq!((r["isError"].clone(), r["structuredContent"].clone()), (json!(false), json!({"a": 1})));
    assert_eq!(serde_json::from_str::<Value>(text(&r)).unwrap(), json!({"a": 1}), "text mirrors the JSON");
    let r = call(gwa, "array", json!({}), "");
    assert_eq!(r["isError"], true, "{r}");
    assert_eq!(text(&call(gwa, "empty", json!({}), "")), "success");
}

#[test]
fn faults_are_tool_errors_and_connections_are_pooled() {
    let rec = recorder(|s| {
        if s.path() == "/slow" {
            std::thread::sleep(Duration::from_millis(1500));
        }
        ok_json(json!({"n": 1}))
    });
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // closed at once
    let addr = rec.addr;
    let gw = start(&format!(
        r#"
listen: 127.0.0.1:0
workers: 1
limits: {{ upstreamTimeoutMs: 400 }}
servers:
  - name: faults
    path: /mcp
    tools:
      - {{ name: ok, requestTemplate: {{ url: "http://{addr}/ok" }} }}
      - {{ name: slow, requestTemplate: {{ url: "http://{addr}/slow" }} }}
      - {{ name: refused, requestTemplate: {{ url: "http://{dead}/x" }} }}
"#
    ));
    let gwa = gw.addrs()[0];
    for _ in 0..20 {
        assert_eq!(call(gwa, "ok", json!({}), "")["isError"], false);
    }
    assert_eq!(rec.connections.load(Ordering::SeqCst), 1, "one worker, one pooled keep-alive connection");
    let r = call(gwa, "refused", json!({}), "");
    assert_eq!((r["isError"].clone(), text(&r)), (json!(true), "call failed: backend unreachable"));
    assert!(!text(&r).contains(&dead.to_string()), "no internal address in the error");
    let r = call(gwa, "slow", json!({}), "");
    assert_eq!((r["isError"].clone(), text(&r)), (json!(true), "call failed: backend timed out"));
    assert_eq!(call(gwa, "ok", json!({}), "")["isError"], false, "still serving after the faults");
}

/// The 2025 (session) wire, `allowTools`, the client's allow-list header and authorization rules
/// all apply to REST tools like to any other.
#[test]
fn sessions_allow_lists_and_rules_govern_rest_tools() {
    let rec = recorder(|_| ok_json(json!({"v": 1})));
    let addr = rec.addr;
    let gw = start(&format!(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: gov
    path: /mcp
    authorization:
      rules:
        - target: {{ tools: [{{ backend: gov, tool: open }}] }}
          action: allow
    allowTools: [open, closed]
    tools:
      - {{ name: open, args: [{{name: x}}], requestTemplate: {{ url: "http://{addr}/open", argsToUrlParam: true }} }}
      - {{ name: closed, requestTemplate: {{ url: "http://{addr}/closed" }} }}
      - {{ name: hidden, requestTemplate: {{ url: "http://{addr}/hidden" }} }}
"#
    ));
    let gwa = gw.addrs()[0];
    let post = |body: &str, sid: &str, extra: &str| post_mcp(gwa, body, &format!("{sid}{extra}"));
    let init = post(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        "",
        "",
    );
    let sid = format!("Mcp-Session-Id: {}\r\n", init.header("mcp-session-id").unwrap());
    let r = post(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"open","arguments":{"x":"1"}}}"#,
        &sid,
        "",
    );
    assert_eq!(r.json()["result"]["isError"], false, "{:?}", r.json());
    assert_eq!(rec.last().target, "/open?x=1");
    let r = post(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"closed"}}"#, &sid, "");
    assert_eq!(r.status, 403, "denied by the rule table (default deny)");
    let r = post(r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"hidden"}}"#, &sid, "");
    assert_eq!(r.json()["error"]["code"], -32602, "not in allowTools");
    let r = post(
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"open"}}"#,
        &sid,
        "x-envoy-allow-mcp-tools: closed\r\n",
    );
    assert_eq!(r.json()["error"]["message"], "Tool not allowed: open");
    let r = post(r#"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#, &sid, "");
    let names: Vec<String> = r.json()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().into())
        .collect();
    assert_eq!(names, ["open"]);
}

// ---- The seeds' YAML examples (000/001: Higress mcp-server API authentication), verbatim. ----

/// seed 001, "server.securitySchemes".
const SEED_SCHEMES: &str = r#"server:
  name: my-secure-api-server
  securitySchemes:
  - id: backendBasicAuth
    type: http
    scheme: basic
    defaultCredential: "service_user:p@$$wOrd"
  - id: backendBearerToken
    type: http
    scheme: bearer
    defaultCredential: "your_static_bearer_token_for_backend"
  - id: backendApiKeyHeader
    type: apiKey
    in: header
    name: X-Internal-ApiKey
    defaultCredential: "secret_backend_api_key"
"#;

/// seed 001, "requestTemplate.security".
const SEED_TOOL: &str = r#"tools:
- name: fetch-sensitive-data
  description: "Fetches sensitive data from a backend service requiring Bearer token."
  args: # ...
  requestTemplate:
    url: "https://api.internal.com/data"
    method: GET
    security:
      id: backendBearerToken # Uses the 'backendBearerToken' scheme
      # credential: "override_token_for_this_tool_if_needed"
"#;

/// seed 001, transparent credential passthrough.
const SEED_PASSTHROUGH: &str = r#"server:
  name: user-data-passthrough-server
  securitySchemes:
  - id: clientUserBearer # Scheme for client's incoming Bearer token
    type: http
    scheme: bearer
  - id: backendServiceBearer # Scheme for backend API (also Bearer, but could be different)
    type: http
    scheme: bearer
    # No defaultCredential needed here if always relying on passthrough
tools:
- name: get-user-profile
  description: "Gets user profile using the client's provided token."
  security: # Configuration for how the CLIENT authenticates to THIS MCP tool
    id: clientUserBearer # MCP Server expects a Bearer token from the client
    passthrough: true # Enable passthrough
  args: # ...
  requestTemplate:
    url: "https://api.user-profiles.com/me"
    method: GET
    security: # Configuration for how MCP Server authenticates to the BACKEND API
      id: backendServiceBearer # The passthrough token will be sent as a Bearer token
      # to the backend.
"#;

/// A config whose one server is `name` at `path` plus the Higress blocks `blocks`, pasted in
/// with their indentation.
fn with_blocks(name: &str, path: &str, blocks: &[&str]) -> String {
    let mut c = format!("listen: 127.0.0.1:0\nworkers: 1\nservers:\n  - name: {name}\n    path: {path}\n");
    for b in blocks {
        for line in b.lines() {
            c.push_str("    ");
            c.push_str(line);
            c.push('\n');
        }
    }
    c
}

#[test]
fn seed_examples_load_verbatim_and_passthrough_works_as_documented() {
    // The schemes block and the tool block together, as the seed's reader would combine them.
    let snap = portcullis::config::compile::compile_str(
        &with_blocks("secure", "/mcp", &[SEED_SCHEMES, SEED_TOOL]),
        &|_| None,
    )
    .unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(&*snap.servers[0].tools[0].name, "fetch-sensitive-data");
    let dump = snap.effective.to_string();
    assert!(
        !dump.contains("p@$$wOrd")
            && !dump.contains("your_static_bearer")
            && !dump.contains("secret_backend"),
        "credentials are redacted in the admin dump: {dump}"
    );
    portcullis::config::compile::compile_str(&with_blocks("pass", "/mcp", &[SEED_PASSTHROUGH]), &|_| None)
        .unwrap_or_else(|e| panic!("{e:#?}"));

    // The passthrough example run against the recorder: only the URL's origin changes.
    let rec = recorder(|_| ok_json(json!({"name": "Ada"})));
    let local = SEED_PASSTHROUGH.replace("https://api.user-profiles.com", &format!("http://{}", rec.addr));
    let gw = start(&with_blocks("pass", "/mcp", &[&local]));
    let gwa = gw.addrs()[0];
    let r = call(gwa, "get-user-profile", json!({}), "Authorization: Bearer user_jwt_token\r\n");
    assert_eq!(r["isError"], false, "{r}");
    let s = rec.last();
    assert_eq!((s.method.as_str(), s.target.as_str()), ("GET", "/me"));
    assert_eq!(s.header("authorization"), Some("Bearer user_jwt_token"));
    // Higress would send this request without any credential; the gateway refuses it instead.
    rec.take();
    let r = call(gwa, "get-user-profile", json!({}), "");
    assert_eq!(r["isError"], true);
    assert!(text(&r).contains("clientUserBearer") && text(&r).contains("backendServiceBearer"), "{r}");
    assert!(rec.take().is_empty());
}

/// `servers[].openapi`: a description's operations served as REST tools, its schemes merged with
/// the entry's own (where the credential for an imported scheme is configured).
#[test]
fn an_openapi_description_is_served_directly() {
    let rec = recorder(|s| ok_json(json!({"id": s.path().rsplit('/').next().unwrap(), "name": "Rex"})));
    let dir = std::env::temp_dir().join(format!("portcullis-openapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("pets.yaml");
    std::fs::write(
        &spec,
        r#"openapi: 3.0.3
info: { title: Pets, version: "1" }
servers: [{ url: "https://pets.invalid/v1" }]
components:
  securitySchemes:
    petKey: { type: apiKey, in: header, name: X-Pet-Key }
security: [{ petKey: [] }]
paths:
  /pets/{petId}:
    get:
      operationId: getPet
      summary: One pet
      parameters:
        - { name: petId, in: path, required: true, schema: { type: integer } }
        - { name: fields, in: query, schema: { type: array, items: { type: string } } }
      responses:
        "200":
          description: the pet
          content:
            application/json:
              schema: { type: object, properties: { id: { type: string }, name: { type: string } } }
"#,
    )
    .unwrap();
    let gw = start(&format!(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: pets
    path: /mcp
    server:
      securitySchemes: [{{ id: petKey, type: apiKey, in: header, name: X-Pet-Key, defaultCredential: pk-1 }}]
    openapi: {{ file: "{}", baseUrl: "http://{}/v1", outputSchemas: true }}
"#,
        spec.display(),
        rec.addr
    ));
    let r = call(gw.addrs()[0], "getPet", json!({"petId": "7", "fields": ["name", "age"]}), "");
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(
        r["structuredContent"],
        json!({"id": "7", "name": "Rex"}),
        "outputSchema from the description"
    );
    let s = rec.last();
    assert_eq!(s.target, "/v1/pets/7?fields=name&fields=age");
    assert_eq!(s.header("x-pet-key"), Some("pk-1"), "the entry's credential for the imported scheme");
    std::fs::remove_dir_all(&dir).ok();
}

/// An `https://` REST backend, verified against a private CA given as `server.caFile`; without
/// that CA the handshake fails and the call is a tool error.
#[test]
fn https_rest_backends_are_verified() {
    let (tls, ca_file) = common::private_tls("rest");
    let rec = recorder_with(Some(tls), |_| ok_json(json!({"secure": true})));
    let config = |ca: &str| {
        format!(
            r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: tls
    path: /mcp
    server: {{ {ca} }}
    tools:
      - name: secure
        requestTemplate: {{ url: "https://{}/s" }}
        responseTemplate: {{ body: "secure={{{{.secure}}}}" }}
"#,
            rec.addr
        )
    };
    let gw = start(&config(&format!("caFile: \"{}\"", ca_file.display())));
    for _ in 0..3 {
        assert_eq!(text(&call(gw.addrs()[0], "secure", json!({}), "")), "secure=true");
    }
    assert_eq!(rec.connections.load(Ordering::SeqCst), 1, "the TLS connection is pooled");
    assert_eq!(rec.last().header("host"), Some(rec.addr.to_string().as_str()));
    let untrusted = start(&config(""));
    let r = call(untrusted.addrs()[0], "secure", json!({}), "");
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).starts_with("call failed"), "{r}");
    std::fs::remove_file(&ca_file).ok();
}
