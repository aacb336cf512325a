//! Configurations written for other gateways, pasted as they are (issue "Configurations written
//! by others load as they are"): Envoy AI Gateway's `MCPRoute` authorization block, with
//! capitalized actions, `claims[].valueType` and a rule-level `cel` over the arguments. The
//! configurations here are our own, shaped as those projects document theirs.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_methods)] // fixture threads, not the data path

mod common;

use std::net::SocketAddr;

use common::{recorder, Recorder, Resp, Seen};
use serde_json::{json, Value};

const JWT_KEY: &[u8] = b"foreign-configs-test-hmac-key-0123";

/// A stateless 2025-revision MCP backend with the tools `echo`, `sum` and `time`.
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
            "tools/list" => json!({"tools":[
                {"name":"echo","inputSchema":{"type":"object","properties":{"text":{"type":"string"}}}},
                {"name":"sum","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}}},
                {"name":"time","inputSchema":{"type":"object"}},
                {"name":"admin","inputSchema":{"type":"object"}}]}),
            "tools/call" => {
                json!({"content":[{"type":"text","text":format!("ran {}", msg["params"]["name"].as_str().unwrap_or(""))}]})
            }
            _ => json!({}),
        };
        (
            200,
            "application/json",
            json!({"jsonrpc":"2.0","id":msg["id"],"result":result}).to_string().into_bytes(),
        )
    })
}

fn call(addr: SocketAddr, tool: &str, args: &str, token: &str, extra: &str) -> Resp {
    common::call_2026(addr, "/mcp", tool, args, &format!("Authorization: Bearer {token}\r\n{extra}"))
}

/// An `MCPRoute`'s `securityPolicy.authorization` (and `protectedResourceMetadata`'s fields)
/// pasted under a server: `Deny`/`Allow`, `valueType: String` and `StringArray` over a nested
/// claim, a `cel` reading the arguments and a header, a rule without source, a rule without
/// target; `protectedResource` without `authorizationServers` names the JWT issuer.
#[test]
fn envoy_ai_gateway_authorization_block_loads_and_decides_as_written() {
    let b = backend();
    let gw = common::start(&format!(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: tools
    path: /mcp
    resource: https://gw.test/mcp
    authentication:
      mode: jwt
      jwt:
        providers:
          - name: t
            issuer: https://idp.test
            jwks: {{ inline: {{ keys: [{{ kty: oct, kid: h, k: "{k}" }}] }} }}
      protectedResource:
        resourceName: Tools behind the gateway
        scopesSupported: [echo, sum, all-access]
    authorization:
      defaultAction: Deny
      rules:
        - source:
            jwt:
              scopes: [echo]
          target:
            tools:
              - backend: b1
                tool: echo
          cel: request.mcp.params.arguments.text.matches("^Hello, .*!$") && request.headers["x-tenant-id"] == "t-123"
        - source:
            jwt:
              scopes: [sum]
              claims:
                - name: tenant
                  valueType: String
                  values: [acme, globex]
                - name: org.departments
                  valueType: StringArray
                  values: [engineering, operations]
          target:
            tools:
              - backend: b1
                tool: sum
        - target:
            tools:
              - backend: b1
                tool: time
        - source:
            jwt:
              scopes: [all-access]
          action: Allow
    backends:
      - name: b1
        url: http://{b}/mcp
"#,
        k = base64_simd::URL_SAFE_NO_PAD.encode_to_string(JWT_KEY),
        b = b.addr
    ));
    let addr = gw.addrs()[0];
    let token = |claims: Value| common::hs256_token_with(JWT_KEY, claims);
    let tenant = "X-Tenant-Id: t-123\r\n";

    // The cel rule: arguments and header both as written.
    let echo = token(json!({"sub": "e", "scope": "echo"}));
    assert_eq!(call(addr, "echo", r#"{"text":"Hello, world!"}"#, &echo, tenant).status, 200);
    assert_eq!(call(addr, "echo", r#"{"text":"Goodbye"}"#, &echo, tenant).status, 403);
    assert_eq!(call(addr, "echo", r#"{"text":"Hello, world!"}"#, &echo, "").status, 403);

    // Claims with value types: String over a top-level claim, StringArray over a nested one.
    let sum = |tenant: Value, departments: Value| {
        let t =
            token(json!({"sub": "s", "scope": "sum", "tenant": tenant, "org": {"departments": departments}}));
        call(addr, "sum", r#"{"a":1,"b":2}"#, &t, "").status
    };
    assert_eq!(sum(json!("acme"), json!(["sales", "engineering"])), 200);
    assert_eq!(sum(json!("acme"), json!("operations")), 200, "StringArray takes a plain string");
    assert_eq!(sum(json!("initech"), json!(["engineering"])), 403, "tenant not listed");
    assert_eq!(sum(json!(["acme"]), json!(["engineering"])), 403, "String does not take an array");
    assert_eq!(sum(json!("acme"), json!(["sales"])), 403, "no listed department");

    // No source: anyone may call `time`; no target: all-access may call anything.
    let nobody = token(json!({"sub": "n", "scope": "none"}));
    assert_eq!(call(addr, "time", "{}", &nobody, "").status, 200);
    assert_eq!(call(addr, "admin", "{}", &nobody, "").status, 403);
    let all = token(json!({"sub": "a", "scope": "all-access"}));
    assert_eq!(call(addr, "admin", "{}", &all, "").status, 200);

    // A scope-only miss is the insufficient_scope challenge, naming the metadata document.
    let r = call(addr, "sum", r#"{"a":1,"b":2}"#, &nobody, "");
    let challenge = r.header("www-authenticate").unwrap_or_default().to_string();
    assert!(challenge.contains(r#"error="insufficient_scope""#), "{challenge}");

    // The metadata document names the issuer as its authorization server.
    let prm = common::send(
        addr,
        "GET /.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(prm.status, 200, "{}", String::from_utf8_lossy(&prm.body));
    let doc = prm.json();
    assert_eq!(doc["authorization_servers"], json!(["https://idp.test"]));
    assert_eq!(doc["resource_name"], "Tools behind the gateway");
}

/// `portcullis import mcproute` on a manifest of our own (a ConfigMap with the keys beside the
/// route), its output pasted under `servers:` as it is: the gateway serves the route's rules.
#[test]
fn an_imported_mcproute_serves_its_rules() {
    let b = backend();
    let k = base64_simd::URL_SAFE_NO_PAD.encode_to_string(JWT_KEY);
    let manifest = format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata: {{ name: idp-keys, namespace: agents }}
data:
  jwks: '{{"keys":[{{"kty":"oct","kid":"h","k":"{k}"}}]}}'
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: MCPRoute
metadata: {{ name: agent-tools, namespace: agents }}
spec:
  parentRefs: [{{ name: gw, kind: Gateway }}]
  backendRefs:
    - name: b1
      port: 8080
      toolSelector: {{ exclude: [admin] }}
  securityPolicy:
    oauth:
      issuer: https://idp.test
      audiences: [https://gw.test/mcp]
      jwks:
        localJWKS: {{ type: ValueRef, valueRef: {{ group: "", kind: ConfigMap, name: idp-keys }} }}
      protectedResourceMetadata:
        resource: https://gw.test/mcp
        scopesSupported: [sum]
    authorization:
      rules:
        - source: {{ jwt: {{ scopes: [sum] }} }}
          target: {{ tools: [{{ backend: b1, tool: sum }}] }}
        - target: {{ tools: [{{ backend: b1, tool: admin }}] }}
"#
    );
    let file = std::env::temp_dir().join(format!("portcullis-mcproute-{}.yaml", std::process::id()));
    std::fs::write(&file, manifest).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["import", "mcproute"])
        .arg(&file)
        .arg("--backend")
        .arg(format!("b1=http://{}/mcp", b.addr))
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    let entry = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let indented: String = entry.lines().map(|l| format!("  {l}\n")).collect();
    let gw = common::start(&format!("listen: 127.0.0.1:0\nworkers: 1\nservers:\n{indented}"));
    let addr = gw.addrs()[0];
    let token = |scope: &str| common::hs256_token_with(JWT_KEY, json!({"sub": "u", "scope": scope}));
    assert_eq!(call(addr, "sum", r#"{"a":1}"#, &token("sum"), "").status, 200);
    let denied = call(addr, "sum", r#"{"a":1}"#, &token("other"), "");
    assert_eq!(denied.status, 403);
    assert!(denied.header("www-authenticate").unwrap_or_default().contains("insufficient_scope"));
    // Allowed by a rule, but outside the backend's toolSelector: not served.
    assert_ne!(call(addr, "admin", "{}", &token("other"), "").status, 200);
    // A token without the audience is refused outright.
    let wrong_aud =
        common::hs256_token_with(JWT_KEY, json!({"sub": "u", "scope": "sum", "aud": "https://else"}));
    assert_eq!(call(addr, "sum", "{}", &wrong_aud, "").status, 401);
}
