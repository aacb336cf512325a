//! Higress `mcp-server.yaml` files pasted as `servers[]` entries (issue "Configurations written by
//! others load as they are"). The configuration here is our own, written in the shape of the
//! files in Higress's `plugins/wasm-go/mcp-servers/`, using every template function and argument
//! field they use: `uuidv4` nonces, `now`/`date`/`dateInZone` form bodies, `getRealIP`,
//! `b64enc`, `toJson`, `join` (with a string and with a rune separator), response templates with
//! `range`/`add`/`index`/`len`/`eq`/`not`, a direct-response tool, `type: int`, `format`,
//! `minimum`/`maximum`, `items`, `properties`, `enum`, a duplicated argument, path arguments
//! holding `/`, relative URLs, a host taken from the arguments, `server.description` and an
//! entry named by `server.name`. A recording REST backend written here sees what is sent.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_types)] // fixture bookkeeping across test threads, not the data path

mod common;

use std::net::SocketAddr;

use common::{call_2026, post_mcp, recorder, Recorder, Reply};
use serde_json::{json, Value};

fn ok_json(body: Value) -> Reply {
    (200, "application/json", body.to_string().into_bytes())
}

/// The `result` of a 2026-07-28 call of `tool` at `/mcp` with `extra` header lines.
fn call(addr: SocketAddr, tool: &str, args: Value, extra: &str) -> Value {
    let r = call_2026(addr, "/mcp", tool, &args.to_string(), extra);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["result"].clone()
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text in {result}"))
}

/// One `servers[]` entry in Higress's shape (no `name`: `server.name` names it), plus the
/// gateway's own `path` and `baseUrl` beside it.
fn config(rec: &Recorder) -> String {
    let a = rec.addr;
    format!(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - path: /mcp
    baseUrl: http://{a}/api
    server:
      name: higress-shaped
      description: A server written the way Higress's own are
      config:
        appCode: app-code-1
        accessToken: tok-1
    tools:
      - name: holiday
        description: Holidays of a year
        args:
          - name: year
            description: Year (default this year)
            type: string
            position: body
          - name: timeZone
            type: string
            default: Asia/Shanghai
        requestTemplate:
          url: http://{a}/holiday
          method: POST
          headers:
            - key: Authorization
              value: APPCODE {{{{.config.appCode}}}}
            - key: X-Ca-Nonce
              value: '{{{{uuidv4}}}}'
            - key: Content-Type
              value: application/x-www-form-urlencoded
          body: year={{{{ if empty .args.year }}}}{{{{ now | date "2006" }}}}{{{{ else }}}}{{{{ .args.year }}}}{{{{ end }}}}&today={{{{ dateInZone "20060102" now .args.timeZone }}}}
      - name: ip-lookup
        args:
          - name: ip
            type: string
        requestTemplate:
          url: http://{a}/ip
          method: POST
          headers:
            - key: Content-Type
              value: application/x-www-form-urlencoded
          body: ip={{{{ if empty .args.ip }}}}{{{{ getRealIP }}}}{{{{ else }}}}{{{{ .args.ip }}}}{{{{ end }}}}
      - name: put-file
        args:
          - name: owner
            type: string
            required: true
          - name: path
            type: string
            required: true
          - name: content
            type: string
          - name: labels
            type: array
            items:
              type: string
          - name: meta
            type: object
            properties:
              branch:
                type: string
        requestTemplate:
          url: http://{a}/repos/{{{{.args.owner}}}}/contents/{{{{.args.path}}}}?labels={{{{.args.labels | join ","}}}}
          method: PUT
          headers:
            - key: Authorization
              value: Bearer {{{{.config.accessToken}}}}
          body: |
            {{"content": "{{{{.args.content | b64enc}}}}", "meta": {{{{toJson .args.meta}}}}}}
      - name: list-issues
        args:
          - name: labels
            type: array
            items: {{ type: string }}
        requestTemplate:
          url: http://{a}/issues?labels={{{{.args.labels | join ','}}}}
          method: GET
      - name: search
        args:
          - name: q
            type: string
            required: true
          - name: count
            type: integer
            minimum: 1
            maximum: 20
            default: 5
          - name: lang
            type: string
            default: en
          - name: lang
            type: string
            default: en-US
            enum: [en, en-US]
          - name: site
            type: string
            format: uri
          - name: timeout
            type: int
            default: 300
        requestTemplate:
          url: http://{a}/search
          argsToUrlParam: true
        responseTemplate:
          body: |
            {{{{- range $i, $r := .results }}}}{{{{ add $i 1 }}}}. {{{{ $r.title }}}}{{{{ if not (eq $i (len $.results | add -1)) }}}}, {{{{ end }}}}{{{{ end }}}} (first: {{{{ (index .results 0).title }}}})
      - name: note
        args:
          - name: noteId
            type: string
            position: path
        requestTemplate:
          url: /notes/{{noteId}}
          method: GET
      - name: execute
        args:
          - name: sandbox_id
            type: string
        requestTemplate:
          url: https://49999-{{{{.args.sandbox_id}}}}.sandbox.example/execute
          method: POST
      - name: time
        args:
          - name: timeZone
            type: string
            default: Asia/Shanghai
        responseTemplate:
          body: '{{{{ dateInZone "2006-01-02 MST" now .args.timeZone }}}}'
"#
    )
}

#[test]
fn a_higress_shaped_file_loads_and_renders_as_higress_does() {
    let rec = recorder(|seen| {
        if seen.path() == "/search" {
            ok_json(json!({"results": [{"title": "one"}, {"title": "two"}, {"title": "three"}]}))
        } else {
            ok_json(json!({"ok": true}))
        }
    });
    let snap = portcullis::config::compile::compile_str(&config(&rec), &|_| None)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    let warned = |needle: &str| snap.warnings.iter().any(|w| w.contains(needle));
    assert!(warned("argument \"lang\" is declared again later"), "{:?}", snap.warnings);
    assert!(warned("\"int\" is read as \"integer\""), "{:?}", snap.warnings);
    assert!(warned("comes from the arguments"), "{:?}", snap.warnings);
    assert_eq!(&*snap.servers[0].name, "higress-shaped");
    let gw = common::start(&config(&rec));
    let addr = gw.addrs()[0];

    // tools/list: the schema as written (the later `lang`, `int` as integer, JSON Schema keywords).
    let list = post_mcp(
        addr,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
        "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\n",
    )
    .json();
    let tools = list["result"]["tools"].as_array().unwrap();
    let search = tools.iter().find(|t| t["name"] == "search").unwrap();
    let props = &search["inputSchema"]["properties"];
    assert_eq!(props["lang"], json!({"type": "string", "default": "en-US", "enum": ["en", "en-US"]}));
    assert_eq!(props["count"]["minimum"], 1);
    assert_eq!(props["count"]["maximum"], 20);
    assert_eq!(props["site"]["format"], "uri");
    assert_eq!(props["timeout"]["type"], "integer");
    let put = tools.iter().find(|t| t["name"] == "put-file").unwrap();
    assert_eq!(put["inputSchema"]["properties"]["meta"]["properties"]["branch"]["type"], "string");

    // uuidv4 nonces (fresh per call), now/date and dateInZone in a form body.
    let r = call(addr, "holiday", json!({}), "");
    assert_eq!(r["isError"], false, "{r}");
    let first = rec.last();
    let nonce = first.header("x-ca-nonce").unwrap().to_string();
    let shape =
        regex::Regex::new("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$").unwrap();
    assert!(shape.is_match(&nonce), "{nonce}");
    assert_eq!(first.header("authorization"), Some("APPCODE app-code-1"));
    let body = regex::Regex::new(r"^year=20\d\d&today=20\d{6}$").unwrap();
    assert!(body.is_match(&first.body), "{}", first.body);
    call(addr, "holiday", json!({"year": "1999", "timeZone": "America/New_York"}), "");
    let second = rec.last();
    assert_ne!(second.header("x-ca-nonce").unwrap(), nonce, "a nonce is new on every call");
    assert!(second.body.starts_with("year=1999&today="), "{}", second.body);

    // getRealIP: the forwarded address when it is one, else the peer's.
    call(addr, "ip-lookup", json!({}), "X-Forwarded-For: 203.0.113.9, 10.1.1.1\r\n");
    assert_eq!(rec.last().body, "ip=203.0.113.9");
    call(addr, "ip-lookup", json!({}), "X-Forwarded-For: 1.2.3.4&admin=1\r\n");
    assert_eq!(rec.last().body, "ip=127.0.0.1");

    // A path argument with `/` stays several segments; b64enc and toJson in a JSON body.
    let r = call(
        addr,
        "put-file",
        json!({"owner": "octo", "path": "docs/guide/intro.md", "content": "hi", "labels": ["a", "b"], "meta": {"branch": "main"}}),
        "",
    );
    assert_eq!(r["isError"], false, "{r}");
    let s = rec.last();
    assert_eq!(s.method, "PUT");
    assert_eq!(s.path(), "/repos/octo/contents/docs/guide/intro.md");
    assert_eq!(s.query(), "labels=a%2Cb");
    let sent: Value = serde_json::from_str(&s.body).unwrap();
    assert_eq!(sent, json!({"content": "aGk=", "meta": {"branch": "main"}}));
    assert_eq!(s.header("authorization"), Some("Bearer tok-1"));

    // `..` in a path argument would climb to another endpoint: refused, nothing sent.
    let before = rec.take().len();
    let r = call(addr, "put-file", json!({"owner": "octo", "path": "../../user/keys"}), "");
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).contains("segment"), "{r}");
    assert!(rec.take().is_empty(), "{before}: the refused call reached the backend");

    // join ',' is a Go type error (as in Higress): the call fails saying so.
    let r = call(addr, "list-issues", json!({"labels": ["bug"]}), "");
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).contains("separator must be a string"), "{r}");

    // argsToUrlParam with the later duplicate's default; the response template's functions.
    let r = call(addr, "search", json!({"q": "rust"}), "");
    assert_eq!(text(&r), "1. one, 2. two, 3. three (first: one)\n", "{r}");
    let s = rec.last();
    assert!(s.query().contains("lang=en-US") && s.query().contains("q=rust"), "{}", s.query());

    // A relative URL goes under baseUrl.
    let r = call(addr, "note", json!({"noteId": "n-42"}), "");
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(rec.last().path(), "/api/notes/n-42");

    // A host from the arguments never decides where a request goes.
    rec.take();
    let r = call(addr, "execute", json!({"sandbox_id": "127.0.0.1:1/x#"}), "");
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).contains("never lets arguments choose"), "{r}");
    assert!(rec.take().is_empty());

    // A direct-response tool with a zone from its arguments.
    let r = call(addr, "time", json!({}), "");
    assert!(text(&r).ends_with(" CST"), "{r}");
    let r = call(addr, "time", json!({"timeZone": "UTC"}), "");
    assert!(text(&r).ends_with(" UTC"), "{r}");
}

/// Without `baseUrl`, a file with relative URLs still loads (one warning); its calls say what to
/// set.
#[test]
fn relative_urls_without_a_base_load_and_say_what_to_set() {
    let cfg = r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - path: /mcp
    server: { name: notes }
    tools:
      - name: note
        args: [{ name: noteId, type: string, position: path }]
        requestTemplate: { url: "/notes/{noteId}", method: GET }
      - name: me
        requestTemplate: { url: /me, method: GET }
"#;
    let snap = portcullis::config::compile::compile_str(cfg, &|_| None).unwrap_or_else(|e| panic!("{e:#?}"));
    let about: Vec<_> = snap.warnings.iter().filter(|w| w.contains("is relative")).collect();
    assert_eq!(about.len(), 1, "{:?}", snap.warnings);
    let gw = common::start(cfg);
    let r = call(gw.addrs()[0], "me", json!({}), "");
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).contains("set this server's baseUrl"), "{r}");
}
