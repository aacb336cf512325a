//! Client authentication end to end: every mode accepted and refused over HTTP, the exact 401
//! challenge, the protected resource metadata documents, claim headers reaching a backend (and
//! client-sent copies not), the proxy header from trusted and untrusted peers, sessions bound to
//! their principal, and JWKS rotation over a local JWKS server without a reload. Tokens are
//! minted by the `jsonwebtoken` crate, never by the code under test.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_types)] // fixture bookkeeping across test threads, not the data path

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use portcullis::config::compile::compile_str;
use portcullis::config::watch::{Reloader, Source};
use portcullis::runtime::Gateway;
use serde_json::{json, Value};

const RSA_PEM: &[u8] = include_bytes!("data/jwt-rsa2048.pem");
const RSA_JWKS: &str = include_str!("data/jwt-rsa2048.jwks.json");
const EC_PEM: &[u8] = include_bytes!("data/jwt-p256.pem");
const EC_JWKS: &str = include_str!("data/jwt-p256.jwks.json");
const ISSUER: &str = "https://idp.test";
const RESOURCE: &str = "https://gw.test/mcp";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn rs256(claims: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("rsa-1".into());
    encode(&h, claims, &EncodingKey::from_rsa_pem(RSA_PEM).unwrap()).unwrap()
}

fn es256(claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("ec-1".into());
    encode(&h, claims, &EncodingKey::from_ec_pem(EC_PEM).unwrap()).unwrap()
}

fn claims(sub: &str) -> Value {
    json!({"iss": ISSUER, "sub": sub, "aud": RESOURCE, "exp": now() + 600, "iat": now(),
           "scope": "tools.read", "org": {"id": "acme"}})
}

fn start(config: &str) -> Gateway {
    let snap = compile_str(config, &|_| None).unwrap_or_else(|e| panic!("{e:?}"));
    Gateway::start(Arc::new(Reloader::new(Source::Demo, snap))).unwrap()
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn send(addr: SocketAddr, method: &str, path: &str, extra: &str, body: &str) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\n{extra}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':').map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string())))
        .collect();
    Resp { status: head[9..12].parse().unwrap(), headers, body: raw[end + 4..].to_vec() }
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
const LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

/// A backend that records every request head and answers as a small MCP server with sessions.
fn recording_backend() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s2 = seen.clone();
    std::thread::Builder::new()
        .spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let seen = s2.clone();
                std::thread::Builder::new()
                    .spawn(move || {
                        let mut buf = Vec::new();
                        loop {
                            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                                let mut b = [0u8; 4096];
                                match s.read(&mut b) {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => buf.extend_from_slice(&b[..n]),
                                }
                                continue;
                            };
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let cl: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap()))
                                .unwrap_or(0);
                            while buf.len() < end + 4 + cl {
                                let mut b = [0u8; 4096];
                                match s.read(&mut b) {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => buf.extend_from_slice(&b[..n]),
                                }
                            }
                            let msg: Value = serde_json::from_slice(&buf[end + 4..end + 4 + cl]).unwrap_or(Value::Null);
                            buf.drain(..end + 4 + cl);
                            seen.lock().unwrap().push(head);
                            let result = match msg["method"].as_str() {
                                Some("initialize") => json!({"protocolVersion": msg["params"]["protocolVersion"],
                                    "capabilities": {"tools": {}}, "serverInfo": {"name": "rec", "version": "1"}}),
                                Some("tools/list") => json!({"tools": [{"name": "whoami", "inputSchema": {"type": "object"}}]}),
                                Some("tools/call") => json!({"content": [{"type": "text", "text": "ok"}]}),
                                _ => json!({}),
                            };
                            let body = json!({"jsonrpc": "2.0", "id": msg["id"], "result": result}).to_string();
                            let resp = if msg.get("id").is_some() {
                                format!(
                                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: rec-1\r\nContent-Length: {}\r\n\r\n{body}",
                                    body.len()
                                )
                            } else {
                                "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_string()
                            };
                            if s.write_all(resp.as_bytes()).is_err() {
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

fn jwt_config(jwks: &str, backend: SocketAddr) -> String {
    format!(
        r#"
listen: 127.0.0.1:0
workers: 2
sessions: {{ keys: [{{ id: k1, secret: "0123456789abcdef0123456789abcdef" }}] }}
servers:
  - name: weather
    path: /mcp
    resource: {RESOURCE}
    authentication:
      mode: jwt
      jwt:
        providers:
          - name: corp
            issuer: {ISSUER}
            jwks: {jwks}
            algorithms: [RS256, ES256]
            clockSkewSeconds: 5
            claimToHeaders:
              - {{ claim: sub, header: x-user-id }}
              - {{ claim: org.id, header: x-org }}
      protectedResource:
        authorizationServers: [{ISSUER}]
        scopesSupported: [tools.read, tools.admin]
        resourceName: Weather tools
    backends:
      - name: rec
        url: http://{backend}/mcp
        forwardHeaders: [{{ name: x-user-id }}, {{ name: x-trace }}]
"#
    )
}

#[test]
fn jwt_challenge_metadata_sessions_and_claim_headers() {
    let (backend, seen) = recording_backend();
    let gw = start(&jwt_config(&format!("{{ inline: {RSA_JWKS} }}"), backend));
    let addr = gw.addrs()[0];
    let prm_url = "https://gw.test/.well-known/oauth-protected-resource/mcp";

    // No token: the challenge without error (RFC 6750 3), metadata URL and scopes.
    let r = send(addr, "POST", "/mcp", "", INIT);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(format!(r#"Bearer resource_metadata="{prm_url}", scope="tools.read tools.admin""#).as_str())
    );
    assert_eq!(r.json()["error"]["code"], -32600, "a JSON-RPC error body");

    // A refused token: error="invalid_token" with a description.
    let bad = [
        ("garbage", "not-a-jwt".to_string(), "compact JWS"),
        (
            "expired",
            rs256(&json!({"iss": ISSUER, "sub": "a", "aud": RESOURCE, "exp": now() - 60})),
            "expired",
        ),
        (
            "audience",
            rs256(&json!({"iss": ISSUER, "sub": "a", "aud": "https://other", "exp": now() + 60})),
            "not issued",
        ),
        (
            "issuer",
            rs256(&json!({"iss": "https://evil", "sub": "a", "aud": RESOURCE, "exp": now() + 60})),
            "issuer",
        ),
    ];
    for (name, token, why) in bad {
        let r = send(addr, "POST", "/mcp", &bearer(&token), INIT);
        assert_eq!(r.status, 401, "{name}");
        let challenge = r.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with(r#"Bearer error="invalid_token", error_description=""#),
            "{name}: {challenge}"
        );
        assert!(challenge.contains(&format!(r#"resource_metadata="{prm_url}""#)), "{name}: {challenge}");
        assert!(r.json()["error"]["message"].as_str().unwrap().contains(why), "{name}: {:?}", r.json());
        assert!(!String::from_utf8_lossy(&r.body).contains(&token), "the token is never echoed");
    }
    // Tokens in the query string are ignored.
    let token = rs256(&claims("alice"));
    let r = send(addr, "POST", &format!("/mcp?access_token={token}"), "", INIT);
    assert_eq!(r.status, 401, "a token in the query string is not a credential");
    // A session id never stands in for a credential, and a session is bound to its principal.
    let r = send(addr, "POST", "/mcp", &bearer(&token), INIT);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let sid = r.header("mcp-session-id").unwrap().to_string();
    let with_sid = |extra: &str| format!("Mcp-Session-Id: {sid}\r\n{extra}");
    assert_eq!(send(addr, "POST", "/mcp", &with_sid(""), LIST).status, 401);
    let r = send(addr, "POST", "/mcp", &with_sid(&bearer(&token)), LIST);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["result"]["tools"][0]["name"], "whoami");
    let mallory = rs256(&claims("mallory"));
    assert_eq!(send(addr, "POST", "/mcp", &with_sid(&bearer(&mallory)), LIST).status, 404);
    // A token signed by another key (ES256, unknown kid here) is refused.
    assert_eq!(send(addr, "POST", "/mcp", &with_sid(&bearer(&es256(&claims("alice")))), LIST).status, 401);

    // Claim headers reach the backend; the client's own copies do not.
    seen.lock().unwrap().clear();
    let call = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;
    let spoof = "X-User-Id: root\r\nX-Org: evil\r\nX-Trace: t-9\r\n";
    let r = send(addr, "POST", "/mcp", &with_sid(&format!("{}{spoof}", bearer(&token))), call);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let heads = seen.lock().unwrap().clone();
    let call_head = heads.iter().find(|h| h.contains("tools/call") || h.starts_with("post")).unwrap();
    assert!(call_head.contains("x-user-id: alice"), "{call_head}");
    assert!(call_head.contains("x-org: acme"), "{call_head}");
    assert!(call_head.contains("x-trace: t-9"), "ordinary forwarded headers still pass: {call_head}");
    assert!(!call_head.contains("root") && !call_head.contains("evil"), "{call_head}");
    assert!(!call_head.contains(&token.to_ascii_lowercase()), "the client's token never reaches a backend");

    // The metadata documents: path-suffixed and, with one server, the root; public CORS.
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let r = send(addr, "GET", path, "Origin: https://app.example\r\n", "");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        let doc = r.json();
        assert_eq!(doc["resource"], RESOURCE);
        assert_eq!(doc["authorization_servers"], json!([ISSUER]));
        assert_eq!(doc["scopes_supported"], json!(["tools.read", "tools.admin"]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert_eq!(doc["resource_name"], "Weather tools");
    }
    gw.shutdown();
}

#[test]
fn api_key_basic_and_trusted_proxy() {
    let (backend, seen) = recording_backend();
    let config = format!(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: hk
    path: /hk
    authentication: {{ mode: apiKey, apiKey: {{ in: header, name: X-Api-Key, keys: [{{ id: ci, value: "key-ci-0123" }}, {{ id: ops, value: "key-ops-4567" }}] }} }}
    tools: [{{ name: t, responseTemplate: {{ body: ok }} }}]
  - name: qk
    path: /qk
    authentication: {{ mode: apiKey, apiKey: {{ in: query, name: key, keys: [{{ id: ci, value: "key/ci+0123" }}] }} }}
    tools: [{{ name: t, responseTemplate: {{ body: ok }} }}]
  - name: ba
    path: /ba
    authentication: {{ mode: basic, basic: {{ users: [{{ name: alice, password: "s3cret:pw" }}] }} }}
    tools: [{{ name: t, responseTemplate: {{ body: ok }} }}]
  - name: px
    path: /px
    authentication: {{ mode: proxy, proxy: {{ userHeader: X-Authenticated-User, trustedSources: [127.0.0.1/32, "::1"] }} }}
    backends: [{{ name: rec, url: "http://{backend}/mcp", forwardHeaders: [{{ name: x-authenticated-user }}] }}]
  - name: untrusted
    path: /untrusted
    authentication: {{ mode: proxy, proxy: {{ trustedSources: [10.0.0.0/8] }} }}
    tools: [{{ name: t, responseTemplate: {{ body: ok }} }}]
  - name: optional
    path: /optional
    authentication: {{ mode: proxy, proxy: {{ trustedSources: [10.0.0.0/8], requireUser: false }} }}
    tools: [{{ name: t, responseTemplate: {{ body: ok }} }}]
"#
    );
    let gw = start(&config);
    let addr = gw.addrs()[0];
    let status = |path: &str, extra: &str| send(addr, "POST", path, extra, INIT).status;

    assert_eq!(status("/hk", "X-Api-Key: key-ops-4567\r\n"), 200);
    assert_eq!(status("/hk", "x-api-key: key-ci-0123\r\n"), 200);
    assert_eq!(status("/hk", "X-Api-Key: key-ci-012\r\n"), 401);
    assert_eq!(status("/hk", "X-Api-Key: key-ci-0123\r\nX-Api-Key: key-ci-0123\r\n"), 400, "repeated");
    let r = send(addr, "POST", "/hk", "", INIT);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some(r#"ApiKey realm="hk""#));

    assert_eq!(status("/qk?key=key%2Fci%2B0123", ""), 200, "percent-encoded query key");
    assert_eq!(status("/qk?a=1&key=key%2Fci%2B0123&b=2", ""), 200);
    assert_eq!(status("/qk?key=key%2Fci%2B012", ""), 401);
    assert_eq!(status("/qk", "X-Api-Key: key/ci+0123\r\n"), 401, "the query key is not read from headers");

    let basic = |user_pass: &str| {
        use std::fmt::Write as _;
        let mut h = String::new();
        write!(h, "Authorization: Basic {}\r\n", b64(user_pass.as_bytes())).unwrap();
        h
    };
    assert_eq!(status("/ba", &basic("alice:s3cret:pw")), 200, "the password may contain ':'");
    assert_eq!(status("/ba", &basic("alice:wrong")), 401);
    assert_eq!(status("/ba", &basic("bob:s3cret:pw")), 401);
    assert_eq!(status("/ba", "Authorization: Basic !!!\r\n"), 401);
    let r = send(addr, "POST", "/ba", "", INIT);
    assert_eq!(r.header("www-authenticate"), Some(r#"Basic realm="ba", charset="UTF-8""#));

    // Trusted peer: the header names the principal, and is never forwarded (even when listed
    // in forwardHeaders).
    let r = send(addr, "POST", "/px", "X-Authenticated-User: carol\r\n", INIT);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(status("/px", ""), 401, "requireUser defaults to true");
    assert!(
        seen.lock().unwrap().iter().all(|h| !h.contains("x-authenticated-user")),
        "{:?}",
        seen.lock().unwrap()
    );
    // Untrusted peer: the header is ignored.
    assert_eq!(status("/untrusted", "X-Authenticated-User: carol\r\n"), 401);
    assert_eq!(status("/optional", "X-Authenticated-User: carol\r\n"), 200, "anonymous allowed");
    gw.shutdown();
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A JWKS server whose document the test can replace; counts fetches.
fn jwks_server(doc: Arc<Mutex<String>>, fetches: Arc<Mutex<usize>>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::Builder::new()
        .spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let mut buf = Vec::new();
                loop {
                    let mut b = [0u8; 1024];
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                    if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                *fetches.lock().unwrap() += 1;
                let body = doc.lock().unwrap().clone();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes());
            }
        })
        .unwrap();
    addr
}

#[test]
fn jwks_rotation_without_reload() {
    let doc = Arc::new(Mutex::new(RSA_JWKS.to_string()));
    let fetches = Arc::new(Mutex::new(0));
    let jwks = jwks_server(doc.clone(), fetches.clone());
    let (backend, _) = recording_backend();
    let gw =
        start(&jwt_config(&format!("{{ uri: \"http://{jwks}/jwks.json\", refreshSeconds: 3600 }}"), backend));
    let addr = gw.addrs()[0];
    assert!(*fetches.lock().unwrap() >= 1, "keys are fetched before serving");
    assert_eq!(send(addr, "POST", "/mcp", &bearer(&rs256(&claims("a"))), INIT).status, 200);

    // The IdP rotates to a new key; a token with its kid triggers a (rate-limited) refetch.
    let rsa: Value = serde_json::from_str(RSA_JWKS).unwrap();
    let ec: Value = serde_json::from_str(EC_JWKS).unwrap();
    *doc.lock().unwrap() = json!({"keys": [rsa["keys"][0], ec["keys"][0]]}).to_string();
    let token = es256(&claims("b"));
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut refused = 0;
    loop {
        let status = send(addr, "POST", "/mcp", &bearer(&token), INIT).status;
        if status == 200 {
            break;
        }
        assert_eq!(status, 401);
        refused += 1;
        assert!(Instant::now() < deadline, "the new key was never fetched");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(refused >= 1, "the first request met the unknown kid");
    // Rate limit: a burst of unknown kids does not turn into a burst of fetches.
    let before = *fetches.lock().unwrap();
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("nope".into());
    let unknown = encode(&h, &claims("c"), &EncodingKey::from_ec_pem(EC_PEM).unwrap()).unwrap();
    for _ in 0..20 {
        assert_eq!(send(addr, "POST", "/mcp", &bearer(&unknown), INIT).status, 401);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(*fetches.lock().unwrap() <= before + 1, "at most one refetch per 10 s");
    gw.shutdown();
}

const CALL_2026_META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

/// A 2026-07-28 `tools/call` of `name` with `args` (JSON) and the headers the revision needs.
fn call_2026(addr: SocketAddr, token: &str, name: &str, args: &str, extra: &str) -> Resp {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"{name}","arguments":{args},{CALL_2026_META}}}}}"#
    );
    let headers = format!(
        "{}MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: {name}\r\n{extra}",
        bearer(token)
    );
    send(addr, "POST", "/mcp", &headers, &body)
}

fn list_2026(addr: SocketAddr, token: &str) -> Vec<String> {
    let body = format!(r#"{{"jsonrpc":"2.0","id":8,"method":"tools/list","params":{{{CALL_2026_META}}}}}"#);
    let headers = format!("{}MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\n", bearer(token));
    let r = send(addr, "POST", "/mcp", &headers, &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn authorization_rules_scopes_conditions_and_lists() {
    let config = format!(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: tools
    path: /mcp
    resource: {RESOURCE}
    authentication:
      mode: jwt
      jwt: {{ providers: [{{ name: corp, issuer: {ISSUER}, jwks: {{ inline: {RSA_JWKS} }} }}] }}
      protectedResource: {{ authorizationServers: [{ISSUER}] }}
    authorization:
      rules:
        - source: {{ jwt: {{ claims: [{{ name: org.id, values: [evil] }}] }} }}
          action: deny
        - source: {{ jwt: {{ scopes: [tools.echo] }} }}
          target: {{ tools: [{{ backend: tools, tool: echo, when: 'args.text.matches("^Hello, .*!$")' }}] }}
        - target: {{ tools: [{{ backend: tools, toolName: motd }}] }}
          cel: request.headers["x-tenant"] == "t-1"
        - source: {{ jwt: {{ scopes: [tools.admin, tools.echo] }} }}
          target: {{ tools: [{{ backend: tools, tool: admin }}] }}
    tools:
      - {{ name: echo, args: [{{ name: text, type: string, required: true }}], responseTemplate: {{ body: "{{{{.args.text}}}}" }} }}
      - {{ name: motd, responseTemplate: {{ body: "hi" }} }}
      - {{ name: admin, responseTemplate: {{ body: "root" }} }}
"#
    );
    let gw = start(&config);
    let addr = gw.addrs()[0];
    let token = |scope: &str, org: &str| {
        rs256(
            &json!({"iss": ISSUER, "sub": "u", "aud": RESOURCE, "exp": now() + 600, "scope": scope, "org": {"id": org}}),
        )
    };
    let echo = token("tools.echo", "acme");
    let none = token("", "acme");
    let evil = token("tools.echo", "evil");

    // Allowed: scope and condition hold.
    let r = call_2026(addr, &echo, "echo", r#"{"text":"Hello, World!"}"#, "");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Condition false: 403 without an insufficient_scope challenge.
    let r = call_2026(addr, &echo, "echo", r#"{"text":"Goodbye"}"#, "");
    assert_eq!(r.status, 403);
    assert_eq!(r.header("www-authenticate"), None);
    assert_eq!(r.json()["id"], 7, "a JSON-RPC error echoing the id");
    // Missing scope only: the exact challenge.
    let r = call_2026(addr, &none, "echo", r#"{"text":"Hello, World!"}"#, "");
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer error="insufficient_scope", scope="tools.echo", resource_metadata="https://gw.test/.well-known/oauth-protected-resource/mcp", error_description="The access token lacks a scope this tool requires""#
        )
    );
    // The smallest scope set of the allow rules that matched the target.
    let r = call_2026(addr, &none, "admin", "{}", "");
    assert!(r.header("www-authenticate").unwrap().contains(r#"scope="tools.admin tools.echo""#));
    // First match wins: the deny rule for the evil org comes first.
    assert_eq!(call_2026(addr, &evil, "echo", r#"{"text":"Hello, World!"}"#, "").status, 403);
    // Rule-level CEL over request headers.
    assert_eq!(call_2026(addr, &none, "motd", "{}", "X-Tenant: t-1\r\n").status, 200);
    assert_eq!(call_2026(addr, &none, "motd", "{}", "X-Tenant: t-2\r\n").status, 403);
    // Lists show each principal what it may call (echo is listed: some arguments pass).
    assert_eq!(list_2026(addr, &echo), vec!["echo"]);
    assert_eq!(list_2026(addr, &none), Vec::<String>::new());
    assert_eq!(list_2026(addr, &token("tools.echo tools.admin", "acme")), vec!["echo", "admin"]);
    assert_eq!(list_2026(addr, &evil), Vec::<String>::new());
    // The legacy wire is authorized the same way, inside a session.
    let r = send(addr, "POST", "/mcp", &bearer(&none), INIT);
    let sid = r.header("mcp-session-id").unwrap().to_string();
    let call = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"Hello, World!"}}}"#;
    let r = send(addr, "POST", "/mcp", &format!("{}Mcp-Session-Id: {sid}\r\n", bearer(&none)), call);
    assert_eq!(r.status, 403);
    assert!(r.header("www-authenticate").unwrap().contains("insufficient_scope"));
    gw.shutdown();
}

#[test]
fn rules_match_api_key_principals_by_subject() {
    let config = r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: k
    path: /mcp
    authentication: { mode: apiKey, apiKey: { in: header, name: X-Api-Key, keys: [{ id: ci, value: "key-ci-0123" }, { id: ops, value: "key-ops-4567" }] } }
    authorization:
      rules:
        - cel: request.auth.subject == "ops" && request.auth.mode == "apiKey" && !has(request.auth.jwt)
    tools: [{ name: t, responseTemplate: { body: ok } }]
"#;
    let gw = start(config);
    let addr = gw.addrs()[0];
    let call = |key: &str| {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"t","arguments":{{}},{CALL_2026_META}}}}}"#
        );
        let headers = format!("X-Api-Key: {key}\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: t\r\n");
        send(addr, "POST", "/mcp", &headers, &body).status
    };
    assert_eq!(call("key-ops-4567"), 200);
    assert_eq!(call("key-ci-0123"), 403, "no scopes to challenge: a plain 403");
    gw.shutdown();
}

#[test]
fn backend_tool_lists_are_filtered_and_calls_authorized() {
    let (backend, seen) = recording_backend();
    let config = format!(
        r#"
listen: 127.0.0.1:0
workers: 1
sessions: {{ keys: [{{ id: k1, secret: "0123456789abcdef0123456789abcdef" }}] }}
servers:
  - name: agg
    path: /mcp
    resource: {RESOURCE}
    authentication:
      mode: jwt
      jwt: {{ providers: [{{ name: corp, issuer: {ISSUER}, jwks: {{ inline: {RSA_JWKS} }} }}] }}
    authorization:
      rules:
        - source: {{ jwt: {{ scopes: [rec.use] }} }}
          target: {{ tools: [{{ backend: rec }}] }}
    backends:
      - name: rec
        url: http://{backend}/mcp
"#
    );
    let gw = start(&config);
    let addr = gw.addrs()[0];
    let with =
        rs256(&json!({"iss": ISSUER, "sub": "a", "aud": RESOURCE, "exp": now() + 600, "scope": "rec.use"}));
    let without = rs256(&json!({"iss": ISSUER, "sub": "b", "aud": RESOURCE, "exp": now() + 600}));
    assert_eq!(list_2026(addr, &with), vec!["whoami"]);
    assert_eq!(list_2026(addr, &without), Vec::<String>::new());
    seen.lock().unwrap().clear();
    let r = call_2026(addr, &without, "whoami", "{}", "");
    assert_eq!(r.status, 403);
    assert!(r.header("www-authenticate").unwrap().contains(r#"scope="rec.use""#));
    assert!(
        seen.lock().unwrap().iter().all(|h| !h.contains("tools/call")),
        "a denied call never reaches the backend"
    );
    assert_eq!(call_2026(addr, &with, "whoami", "{}", "").status, 200);
    gw.shutdown();
}

/// A JWKS fetch that fails (not JSON, no keys, no usable key) keeps the last good keys.
#[test]
fn a_failing_jwks_fetch_keeps_the_last_good_keys() {
    use portcullis::auth::jwks::{self, KeySource};
    use portcullis::upstream::target::Target;
    let doc = Arc::new(Mutex::new(RSA_JWKS.to_string()));
    let fetches = Arc::new(Mutex::new(0));
    let addr = jwks_server(doc.clone(), fetches.clone());
    let target = Target::parse(&format!("http://{addr}/jwks.json"), || Err("no tls".into())).unwrap();
    let source = KeySource::remote("http://jwks.test/", target, Duration::from_secs(300));
    let limits = portcullis::upstream::client::Limits {
        connect: Duration::from_secs(2),
        response: Duration::from_secs(5),
        max_body: 0,
    };
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build().unwrap();
    rt.block_on(async {
        let pool = std::cell::RefCell::new(portcullis::upstream::pool::Pool::default());
        assert_eq!(jwks::fetch(&source, &pool, limits).await, Ok(1));
        let (_, epoch) = source.load();
        for bad in ["not json", r#"{"keys":[]}"#, r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#] {
            *doc.lock().unwrap() = bad.to_string();
            assert!(jwks::fetch(&source, &pool, limits).await.is_err(), "{bad}");
            let (keys, now) = source.load();
            assert_eq!(keys.keys.len(), 1, "the last good key stays");
            assert_eq!(now, epoch, "cached tokens stay valid");
        }
        // The same keys again do not move the epoch; new keys do.
        *doc.lock().unwrap() = RSA_JWKS.to_string();
        jwks::fetch(&source, &pool, limits).await.unwrap();
        assert_eq!(source.load().1, epoch);
        *doc.lock().unwrap() = EC_JWKS.to_string();
        jwks::fetch(&source, &pool, limits).await.unwrap();
        assert_eq!(source.load().1, epoch + 1);
    });
}

#[test]
fn readyz_says_starting_until_the_first_jwks_fetch_is_done() {
    // A JWKS server that answers only when the test lets it.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let jwks = l.local_addr().unwrap();
    std::thread::Builder::new()
        .spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 4096];
            let _ = s.read(&mut b);
            let _ = held.recv_timeout(Duration::from_secs(20));
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{RSA_JWKS}",
                RSA_JWKS.len()
            );
            let _ = s.write_all(resp.as_bytes());
        })
        .unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (backend, _) = recording_backend();
    let config =
        jwt_config(&format!("{{ uri: \"http://{jwks}/jwks.json\", refreshSeconds: 3600 }}"), backend)
            .replace("workers: 2", &format!("workers: 2\nadmin: {admin}"));
    let starting = std::thread::Builder::new().spawn(move || start(&config)).unwrap();
    // The admin port answers while start-up waits for the keys: not ready yet.
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        if let Ok(mut s) = TcpStream::connect(admin) {
            s.write_all(b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            break out;
        }
        assert!(Instant::now() < deadline, "admin never came up");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(first.starts_with("HTTP/1.1 503") && first.ends_with("starting\n"), "{first}");
    release.send(()).unwrap();
    let gw = starting.join().unwrap();
    let now = send(admin, "GET", "/readyz", "", "");
    assert_eq!((now.status, now.body.as_slice()), (200, &b"ready\n"[..]));
    // And tokens verify at once.
    assert_eq!(send(gw.addrs()[0], "POST", "/mcp", &bearer(&rs256(&claims("a"))), INIT).status, 200);
    gw.shutdown();
}
