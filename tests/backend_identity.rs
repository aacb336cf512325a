//! Backend identity (issue "Backend identity"), per-principal credentials: a scheme's
//! `credentials.file` maps each caller (`sub`, subject or a claim) to the credential the gateway
//! presents for them, to MCP backends and REST tools alike. The backends are written here and
//! record the credential each request carried next to the caller the request came from.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_types)] // fixture bookkeeping across test threads, not the data path
#![allow(clippy::disallowed_methods)] // fixture threads, not the data path

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{recorder, Recorder, Seen};
use portcullis::config::watch::{Reloader, Source};
use portcullis::runtime::Gateway;
use serde_json::{json, Value};

const JWT_KEY: &[u8] = b"backend-identity-test-hmac-key-0123";

/// A stateless 2025-revision MCP backend whose `whoami` tool answers with the credential it
/// received (the `authorization` header).
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
            "tools/list" => {
                json!({"tools":[{"name":"whoami","inputSchema":{"type":"object","properties":{"caller":{"type":"string"}}}}]})
            }
            "tools/call" => {
                // Reversed, so the gateway's redaction of echoed credentials leaves it readable; and
                // as received, which the gateway must redact on the way back.
                let got = seen.header("authorization").unwrap_or("none");
                let reversed: String = got.chars().rev().collect();
                let caller = msg["params"]["arguments"]["caller"].as_str().unwrap_or("");
                json!({"content":[{"type":"text","text":format!("{caller}|{reversed}|{got}")}]})
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

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("portcullis-identity-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(b: SocketAddr, rest: SocketAddr, creds: &Path, fallback: &str, workers: usize) -> String {
    let k = base64_simd::URL_SAFE_NO_PAD.encode_to_string(JWT_KEY);
    format!(
        r#"
listen: 127.0.0.1:0
workers: {workers}
servers:
  - name: tools
    path: /mcp
    authentication:
      mode: jwt
      jwt:
        providers:
          - name: t
            issuer: https://idp.test
            audiences: [https://gw.test/mcp]
            jwks: {{ inline: {{ keys: [{{ kty: oct, kid: h, k: "{k}" }}] }} }}
    server:
      securitySchemes:
        - id: perUser
          type: http
          scheme: bearer
          defaultCredential: shared-default-token
          credentials: {{ file: {creds}, key: sub, fallback: {fallback} }}
        - id: perOrg
          type: apiKey
          in: query
          name: key
          credentials: {{ file: {creds}, key: "claim:org.id" }}
    backends:
      - name: b1
        url: http://{b}/mcp
        security: {{ id: perUser }}
    tools:
      - name: org-report
        args: [{{ name: caller, type: string }}]
        requestTemplate:
          url: http://{rest}/report
          security: {{ id: perOrg }}
"#,
        creds = creds.display()
    )
}

fn token(sub: &str, org: &str) -> String {
    common::hs256_token_with(JWT_KEY, json!({"sub": sub, "scope": "x", "org": {"id": org}}))
}

/// One 2026-07-28 `tools/call` on an open keep-alive connection; the result's text (or the
/// whole answer when there is none) and the status.
fn call_on(s: &mut TcpStream, tool: &str, caller: &str, token: &str) -> (u16, String) {
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":tool,"arguments":{"caller":caller},
        "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}})
    .to_string();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: {tool}\r\n\
Authorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    // Head, then exactly Content-Length bytes: the connection stays open for the next call.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status: u16 = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    let text = v["result"]["content"][0]["text"].as_str().map_or_else(|| v.to_string(), str::to_string);
    (status, text)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

fn start(config: &Path) -> (Gateway, Arc<Reloader>) {
    let source = Source::File(config.to_path_buf());
    let reloader =
        Arc::new(Reloader::new(source.clone(), source.compile().unwrap_or_else(|e| panic!("{e:#?}"))));
    (Gateway::start(reloader.clone()).unwrap(), reloader)
}

/// Each caller's requests carry that caller's credential, interleaved on one connection and
/// spread over connections to two workers; a caller without an entry is refused before anything
/// is sent (fallback deny); the file is watched (a change reloads) and never shown.
#[test]
fn each_caller_reaches_the_backend_with_its_own_credential() {
    let b = backend();
    let rest = recorder(|seen: &Seen| {
        (200, "application/json", json!({"got": seen.query()}).to_string().into_bytes())
    });
    let dir = Dir::new("per-user");
    let creds = dir.write("creds.yaml", "alice: tok-alice\nbob: tok-bob\nacme: org-key-acme\n");
    let file = dir.write("gw.yaml", &config(b.addr, rest.addr, &creds, "deny", 2));
    let (gw, reloader) = start(&file);
    let addr = gw.addrs()[0];
    let (alice, bob, carol) = (token("alice", "acme"), token("bob", "initech"), token("carol", "acme"));

    // Interleaved on one keep-alive connection.
    let mut s = connect(addr);
    for _ in 0..3 {
        assert_eq!(
            call_on(&mut s, "b1__whoami", "alice", &alice),
            (200, "alice|ecila-kot reraeB|<redacted>".into())
        );
        assert_eq!(call_on(&mut s, "b1__whoami", "bob", &bob), (200, "bob|bob-kot reraeB|<redacted>".into()));
    }
    // Across connections (and so across the two workers).
    for i in 0..16 {
        let (who, t) = if i % 2 == 0 { ("alice", &alice) } else { ("bob", &bob) };
        let (status, text) = call_on(&mut connect(addr), "b1__whoami", who, t);
        let reversed: String = format!("Bearer tok-{who}").chars().rev().collect();
        assert_eq!((status, text), (200, format!("{who}|{reversed}|<redacted>")));
    }
    // No entry and fallback deny: 403, and the backend never sees the call.
    b.take();
    let (status, text) = call_on(&mut connect(addr), "b1__whoami", "carol", &carol);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("no credential for this caller under scheme perUser"), "{text}");
    assert!(b.take().iter().all(|seen| !seen.body.contains("carol")), "carol's call reached the backend");

    // A REST tool keyed by a claim: acme's key for both acme members, none for initech.
    // (The API echoes the key: the gateway redacts it from the result, so look at what arrived.)
    let (_, text) = call_on(&mut connect(addr), "org-report", "alice", &alice);
    assert_eq!(rest.last().query(), "key=org-key-acme");
    assert!(text.contains("<redacted>") && !text.contains("org-key-acme"), "{text}");
    call_on(&mut connect(addr), "org-report", "carol", &carol);
    assert_eq!(rest.last().query(), "key=org-key-acme");
    rest.take();
    let (status, text) = call_on(&mut connect(addr), "org-report", "bob", &bob);
    assert!(rest.take().is_empty(), "bob's call reached the API");
    assert_eq!(status, 200, "a REST tool reports it as its result");
    assert!(text.contains("missing credential: no credential for this caller under scheme perOrg"), "{text}");

    // The file is watched like the configuration; a new entry serves after the reload.
    assert!(reloader.current.load().files.iter().any(|f| f == &creds), "the credentials file is watched");
    std::fs::write(&creds, "alice: tok-alice-2\nbob: tok-bob\ncarol: tok-carol\nacme: org-key-acme\n")
        .unwrap();
    reloader.reload().unwrap();
    assert_eq!(
        call_on(&mut connect(addr), "b1__whoami", "carol", &carol),
        (200, "carol|lorac-kot reraeB|<redacted>".into())
    );
    assert_eq!(
        call_on(&mut connect(addr), "b1__whoami", "alice", &alice),
        (200, "alice|2-ecila-kot reraeB|<redacted>".into())
    );
    gw.shutdown();
}

/// `fallback: default` serves callers without an entry with the scheme's defaultCredential;
/// values never appear in the admin configuration dump or in load errors.
#[test]
fn fallback_default_and_redaction() {
    let b = backend();
    let rest = recorder(|_| (200, "application/json", b"{}".to_vec()));
    let dir = Dir::new("fallback");
    let creds = dir.write("creds.json", r#"{"alice": "tok-alice-json"}"#);
    let text = config(b.addr, rest.addr, &creds, "default", 1);
    let file = dir.write("gw.yaml", &text);
    let (gw, _reloader) = start(&file);
    let addr = gw.addrs()[0];
    let (_, got) = call_on(&mut connect(addr), "b1__whoami", "dave", &token("dave", "x"));
    assert_eq!(got, "dave|nekot-tluafed-derahs reraeB|<redacted>");
    let (_, got) = call_on(&mut connect(addr), "b1__whoami", "alice", &token("alice", "x"));
    assert_eq!(got, "alice|nosj-ecila-kot reraeB|<redacted>");
    gw.shutdown();

    // A broken file is a load error naming the entry, never its value.
    std::fs::write(&creds, r#"{"alice": ["tok-secret-value"]}"#).unwrap();
    let errs = Source::File(file).compile().unwrap_err();
    let all = errs.join("\n");
    assert!(all.contains("credentials.file") && all.contains("\"alice\""), "{all}");
    assert!(!all.contains("tok-secret-value"), "{all}");
    // fallback default without a default credential, and a bad key, are load errors.
    std::fs::write(&creds, r#"{"alice": "tok-alice-json"}"#).unwrap();
    let bad = text
        .replace("defaultCredential: shared-default-token", "")
        .replace("key: \"claim:org.id\"", "key: email");
    let errs = portcullis::config::compile::compile_str(&bad, &|_| None).unwrap_err().join("\n");
    assert!(errs.contains("default needs a defaultCredential"), "{errs}");
    assert!(errs.contains("must be sub, subject or claim:<dotted path>"), "{errs}");
}

/// A form body's field, decoded.
fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            let v = v.replace('+', " ");
            let mut out = Vec::new();
            let b = v.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' && i + 2 < b.len() + 1 {
                    out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        })
    })
}

/// `sub` of a JWT (not verified: the STS here trusts its input).
fn sub_of(jwt: &str) -> String {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(payload).unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["sub"].as_str().unwrap().to_string()
}

/// A token service written here: client credentials (Basic client authentication checked)
/// answer `cc-<n>`; token exchange answers `x-<sub>-<n>` for the subject token's `sub`, and
/// `invalid_grant` for the subject `mallory`. Answers take 300 ms, so concurrent needs overlap.
fn sts() -> Recorder {
    let issued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    recorder(move |seen: &Seen| {
        std::thread::sleep(Duration::from_millis(300));
        let basic = format!("Basic {}", base64_simd::STANDARD.encode_to_string("portcullis:sts-secret"));
        if seen.header("authorization") != Some(basic.as_str()) {
            return (401, "application/json", br#"{"error":"invalid_client"}"#.to_vec());
        }
        let n = issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let body = match form_field(&seen.body, "grant_type").as_deref() {
            Some("client_credentials") => {
                json!({"access_token": format!("cc-{n}"), "token_type": "Bearer", "expires_in": 3600})
            }
            Some("urn:ietf:params:oauth:grant-type:token-exchange") => {
                let sub = sub_of(&form_field(&seen.body, "subject_token").unwrap());
                if sub == "mallory" {
                    return (
                        400,
                        "application/json",
                        br#"{"error":"invalid_grant","error_description":"no"}"#.to_vec(),
                    );
                }
                if sub == "garbage" {
                    return (200, "text/html", b"<html>maintenance</html>".to_vec());
                }
                if sub == "brief" {
                    // A token that lives three seconds: served 2.4 s, then fetched again.
                    let t = json!({"access_token": format!("x-brief-{n}"), "token_type": "Bearer", "expires_in": 3});
                    return (200, "application/json", t.to_string().into_bytes());
                }
                json!({"access_token": format!("x-{sub}-{n}"), "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                       "token_type": "N_A", "expires_in": 3600})
            }
            _ => return (400, "application/json", br#"{"error":"unsupported_grant_type"}"#.to_vec()),
        };
        (200, "application/json", body.to_string().into_bytes())
    })
}

fn sts_config(b: SocketAddr, rest: SocketAddr, sts: SocketAddr) -> String {
    let k = base64_simd::URL_SAFE_NO_PAD.encode_to_string(JWT_KEY);
    // A port nobody listens on: the token service that is down.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    format!(
        r#"
listen: 127.0.0.1:0
workers: 1
servers:
  - name: tools
    path: /mcp
    authentication:
      mode: jwt
      jwt:
        providers:
          - name: t
            issuer: https://idp.test
            audiences: [https://gw.test/mcp]
            jwks: {{ inline: {{ keys: [{{ kty: oct, kid: h, k: "{k}" }}] }} }}
    server:
      securitySchemes:
        - id: service
          type: oauth2
          flows:
            clientCredentials:
              tokenUrl: http://{sts}/token
              clientId: portcullis
              clientSecret: sts-secret
              authMethod: client_secret_basic
              scopes: [inventory.read]
              audience: https://inventory.example.com
        - id: onBehalf
          type: oauth2
          flows:
            tokenExchange:
              tokenUrl: http://{sts}/token
              clientId: portcullis
              clientSecret: sts-secret
              audience: https://crm.example.com
              resource: https://crm.example.com/mcp
        - id: down
          type: oauth2
          flows:
            clientCredentials: {{ tokenUrl: "http://{dead}/token", clientId: portcullis, clientSecret: sts-secret }}
    backends:
      - name: crm
        url: http://{b}/mcp
        security: {{ id: onBehalf }}
    tools:
      - name: inventory
        args: [{{ name: caller, type: string }}]
        requestTemplate:
          url: http://{rest}/inventory
          security: {{ id: service }}
      - name: stock
        requestTemplate:
          url: http://{rest}/stock
          security: {{ id: down }}
"#
    )
}

/// Client credentials for a REST tool: fetched once for eight concurrent calls (one fetch in
/// flight), then served from the cache; token exchange for an MCP backend: each caller's own
/// exchanged token, never the caller's token; a refused exchange is the call's isError result
/// naming the scheme and the STS's error; counted in /metrics.
#[test]
fn tokens_from_a_token_service() {
    let (b, sts) = (backend(), sts());
    let rest = recorder(|_| (200, "application/json", b"{\"ok\":true}".to_vec()));
    let dir = Dir::new("sts");
    let file =
        dir.write("gw.yaml", &format!("admin: 127.0.0.1:0\n{}", sts_config(b.addr, rest.addr, sts.addr)));
    let (gw, _reloader) = start(&file);
    let addr = gw.addrs()[0];
    let alice = token("alice", "acme");

    // Eight calls at once: one token request.
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let t = alice.clone();
            std::thread::spawn(move || call_on(&mut connect(addr), "inventory", "alice", &t))
        })
        .collect();
    for c in calls {
        assert_eq!(c.join().unwrap().0, 200);
    }
    let fetched: Vec<Seen> = sts.take();
    assert_eq!(
        fetched.len(),
        1,
        "one fetch in flight: {:?}",
        fetched.iter().map(|s| &s.body).collect::<Vec<_>>()
    );
    assert_eq!(form_field(&fetched[0].body, "scope").as_deref(), Some("inventory.read"));
    assert_eq!(form_field(&fetched[0].body, "audience").as_deref(), Some("https://inventory.example.com"));
    let at_rest = rest.take();
    assert_eq!(at_rest.len(), 8);
    assert!(
        at_rest.iter().all(|s| s.header("authorization") == Some("Bearer cc-1")),
        "{:?}",
        at_rest[0].headers
    );
    // Cached: more calls, no more fetches.
    call_on(&mut connect(addr), "inventory", "alice", &alice);
    assert!(sts.take().is_empty());

    // Token exchange: alice and bob each get theirs; the backend never sees a caller's token.
    let bob = token("bob", "initech");
    let (_, text) = call_on(&mut connect(addr), "crm__whoami", "alice", &alice);
    assert!(text.starts_with("alice|") && text.ends_with("|<redacted>"), "{text}");
    let (_, text) = call_on(&mut connect(addr), "crm__whoami", "bob", &bob);
    assert!(text.starts_with("bob|"), "{text}");
    let seen = b.take();
    let calls: Vec<&Seen> = seen.iter().filter(|s| s.body.contains("tools/call")).collect();
    let creds: Vec<&str> = calls.iter().map(|s| s.header("authorization").unwrap()).collect();
    assert!(creds[0].starts_with("Bearer x-alice-") && creds[1].starts_with("Bearer x-bob-"), "{creds:?}");
    for s in &seen {
        let got = s.header("authorization").unwrap_or_default();
        assert!(!got.contains(&alice) && !got.contains(&bob), "a caller's own token reached the backend");
    }
    let exchanges = sts.take();
    assert!(exchanges
        .iter()
        .all(|s| form_field(&s.body, "resource").as_deref() == Some("https://crm.example.com/mcp")));
    assert!(exchanges
        .iter()
        .any(|s| form_field(&s.body, "subject_token").as_deref() == Some(alice.as_str())));
    // Cached per caller token: alice again, no exchange.
    call_on(&mut connect(addr), "crm__whoami", "alice", &alice);
    assert!(sts.take().is_empty(), "alice's exchanged token is cached");

    // A refused exchange: the call's isError result names the scheme and the STS's error code.
    let mallory = token("mallory", "x");
    let (status, text) = call_on(&mut connect(addr), "crm__whoami", "mallory", &mallory);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("scheme onBehalf") && text.contains("invalid_grant"), "{text}");
    assert!(!text.contains("no") || !text.contains("error_description"), "{text}");

    // An answer that is not a token response is the call's failure too.
    let (_, text) = call_on(&mut connect(addr), "crm__whoami", "garbage", &token("garbage", "x"));
    assert!(
        text.contains("scheme onBehalf: token service answered something that is not a token response"),
        "{text}"
    );
    // Refresh: a token is fetched again once its lifetime (less a fifth) has passed.
    sts.take();
    let brief = token("brief", "x");
    call_on(&mut connect(addr), "crm__whoami", "brief", &brief);
    call_on(&mut connect(addr), "crm__whoami", "brief", &brief);
    assert_eq!(sts.take().len(), 1, "served from the cache while fresh");
    std::thread::sleep(Duration::from_millis(3100));
    let (_, text) = call_on(&mut connect(addr), "crm__whoami", "brief", &brief);
    assert_eq!(sts.take().len(), 1, "fetched again after it expired");
    assert!(text.starts_with("brief|"), "{text}");

    // A token service that is down: the call's isError result says so; the API is not called.
    rest.take();
    let (status, text) = call_on(&mut connect(addr), "stock", "alice", &alice);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("call failed: scheme down: token service unreachable"), "{text}");
    assert!(rest.take().is_empty());

    // Metrics by scheme and outcome; the secret nowhere in /config.
    let admin = gw.admin_addr().unwrap();
    let metrics = common::send(admin, "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let m = String::from_utf8_lossy(&metrics.body).to_string();
    assert!(
        m.contains("portcullis_backend_token_requests_total{scheme=\"service\",outcome=\"ok\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("portcullis_backend_token_requests_total{scheme=\"onBehalf\",outcome=\"refused\"} 1"),
        "{m}"
    );
    assert!(m.contains("portcullis_backend_token_cache_hits_total{scheme=\"service\"}"), "{m}");
    assert!(
        m.contains("portcullis_backend_token_requests_total{scheme=\"down\",outcome=\"unreachable\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("portcullis_backend_token_requests_total{scheme=\"onBehalf\",outcome=\"malformed\"} 1"),
        "{m}"
    );
    let config = common::send(admin, "GET /config HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(!String::from_utf8_lossy(&config.body).contains("sts-secret"), "the client secret in /config");
    gw.shutdown();
}

/// Load-time refusals: token exchange on a server that does not verify JWTs, a plain-http
/// token URL off loopback, an oauth2 scheme as a client scheme.
#[test]
fn token_service_configuration_errors() {
    let cfg = r#"
servers:
  - name: s
    authentication: { mode: apiKey, apiKey: { in: header, name: X-Key, keys: [{ id: a, value: "0123456789abcdef0123" }] } }
    server:
      securitySchemes:
        - id: ex
          type: oauth2
          flows: { tokenExchange: { tokenUrl: "http://10.1.2.3/token", clientId: c, clientSecret: s } }
        - id: two
          type: oauth2
          flows:
            clientCredentials: { tokenUrl: "https://127.0.0.1/token", clientId: c, clientSecret: s }
            tokenExchange: { tokenUrl: "https://127.0.0.1/token", clientId: c, clientSecret: s }
    tools:
      - name: t
        security: { id: ex }
        requestTemplate: { url: "http://127.0.0.1:9/x", security: { id: ex } }
"#;
    let errs = portcullis::config::compile::compile_str(cfg, &|_| None).unwrap_err().join("\n");
    assert!(errs.contains("securitySchemes[0].flows.tokenExchange: exchanges the caller's token"), "{errs}");
    assert!(errs.contains("tokenExchange.tokenUrl: must be https://"), "{errs}");
    assert!(errs.contains("securitySchemes[1].flows: needs exactly one"), "{errs}");
    assert!(
        errs.contains("tools[0].security.id: an oauth2 scheme is how the gateway calls backends"),
        "{errs}"
    );
    assert!(!errs.contains("sts-secret") && !errs.contains("clientSecret: s"), "{errs}");
}
