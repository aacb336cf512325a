//! The audit trail (`audit.file`), end to end: one line per decision with the documented
//! fields, for allowed, denied, rate-limited and unauthenticated requests; no argument value,
//! result or token anywhere in the file; the file reopened by a reload (logrotate). Its own test
//! binary: the trail is process-wide, and other tests' gateways would reconfigure it.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_methods)] // fixture threads, not the data path

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{recorder, send, Resp, Seen};
use portcullis::config::compile::compile_str;
use portcullis::config::watch::{Reloader, Source};
use portcullis::runtime::Gateway;
use serde_json::{json, Value};

const JWT_KEY: &[u8] = b"audit-test-hmac-key-0123456789abcdef";
const SECRET_ARG: &str = "SECRET-ARGUMENT-VALUE-7f3a";
const SECRET_RESULT: &str = "SECRET-RESULT-TEXT-91bc";

fn token(sub: &str, scope: &str) -> String {
    common::hs256_token(JWT_KEY, sub, scope)
}

/// A 2026-07-28 request of `method` with `params` members, as `auth` (bearer).
fn rpc(addr: std::net::SocketAddr, method: &str, params: &str, auth: Option<&str>) -> Resp {
    let auth = auth.map(|a| format!("Authorization: Bearer {a}\r\n")).unwrap_or_default();
    common::rpc_2026(addr, method, params, &auth)
}

/// The file's lines once it holds at least `n` (workers ship every 100 ms; bounded wait).
fn lines(path: &Path, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if lines.len() >= n {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("fewer than {n} audit lines in {}: {:?}", path.display(), std::fs::read_to_string(path));
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_decision_is_one_line_without_content() {
    let dir = std::env::temp_dir().join(format!("portcullis-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trail = dir.join("audit.jsonl");
    let pins = dir.join("pins.json");
    std::fs::write(&pins, "{}").unwrap();
    let _ = std::fs::remove_file(&trail);
    // A stateless 2025-revision backend whose `echo` reports an error for "fail".
    let b1 = recorder(|seen: &Seen| {
        let msg: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
        let result = match msg["method"].as_str().unwrap_or("") {
            "initialize" => {
                json!({"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"b1","version":"1"}})
            }
            "tools/list" => {
                json!({"tools":[{"name":"echo","inputSchema":{"type":"object","properties":{"text":{"type":"string"},"n":{"type":"integer"}}}}]})
            }
            "tools/call" => {
                let failed = msg["params"]["arguments"]["text"] == "fail";
                json!({"content":[{"type":"text","text":SECRET_RESULT}],"isError":failed})
            }
            "server/discover" => {
                return (
                    200,
                    "application/json",
                    json!({"jsonrpc":"2.0","id":msg["id"],"error":{"code":-32601,"message":"no"}})
                        .to_string()
                        .into_bytes(),
                )
            }
            _ if msg.get("id").is_none() => return (202, "application/json", Vec::new()),
            _ => json!({}),
        };
        (
            200,
            "application/json",
            json!({"jsonrpc":"2.0","id":msg["id"],"result":result}).to_string().into_bytes(),
        )
    });
    let config = format!(
        r#"
listen: 127.0.0.1:0
admin: 127.0.0.1:0
workers: 1
audit: {{ file: "{trail}" }}
servers:
  - name: tools
    path: /mcp
    resource: https://gw.test/mcp
    {auth}
    authorization:
      rules:
        - name: echo-for-callers
          source: {{ jwt: {{ scopes: [echo] }} }}
          target: {{ tools: [{{ backend: b1, tool: echo }}, {{ backend: b2, tool: echo }}] }}
    rateLimits:
      - {{ name: two-per-hour, key: sub, requests: 2, per: 1h }}
    pins: "{pins}"
    backends:
      - name: b1
        url: http://{b1}/mcp
      - {{ name: b2, url: "http://{b1}/mcp", pinning: enforce }}
"#,
        trail = trail.display(),
        auth = common::hs256_auth(JWT_KEY),
        b1 = b1.addr,
        pins = pins.display()
    );
    let file = dir.join("config.yaml");
    std::fs::write(&file, &config).unwrap();
    let snap = compile_str(&config, &|_| None).unwrap_or_else(|e| panic!("{e:#?}"));
    let gw = Gateway::start(Arc::new(Reloader::new(Source::File(file.clone()), snap))).unwrap();
    let (addr, admin) = (gw.addrs()[0], gw.admin_addr().unwrap());
    let (caller, other) = (token("alice", "echo"), token("mallory", "none"));

    // Allowed (ok), allowed (isError), rate limited, denied, unauthenticated.
    let args = format!(r#""name":"b1__echo","arguments":{{"text":"{SECRET_ARG}","n":"5"}}"#);
    assert_eq!(rpc(addr, "tools/call", &args, Some(&caller)).status, 200);
    let fail = r#""name":"b1__echo","arguments":{"text":"fail"}"#;
    assert_eq!(rpc(addr, "tools/call", fail, Some(&caller)).status, 200);
    assert_eq!(rpc(addr, "tools/call", fail, Some(&caller)).status, 429);
    assert_eq!(rpc(addr, "tools/call", &args, Some(&other)).status, 403);
    assert_eq!(rpc(addr, "tools/call", &args, None).status, 401);
    // An unapproved definition (b2 is pinned, nothing recorded); the rate limit is not reached
    // first: refused calls spend nothing.
    let pinned = r#""name":"b2__echo","arguments":{"text":"x"}"#;
    assert_eq!(rpc(addr, "tools/call", pinned, Some(&token("trent", "echo"))).status, 403);
    // Not decided, not refused: no line.
    assert_eq!(rpc(addr, "tools/list", "", Some(&caller)).status, 200);

    let got = lines(&trail, 6);
    assert_eq!(got.len(), 6, "{got:#?}");
    assert_eq!(
        (got[5]["principal"].as_str(), got[5]["outcome"].as_str()),
        (Some("trent"), Some("pin_mismatch"))
    );
    assert_eq!(got[5]["backend"], "b2");
    let got = &got[..5];
    for l in got {
        for field in [
            "ts",
            "request_id",
            "principal",
            "mode",
            "server",
            "backend",
            "method",
            "decision",
            "rule",
            "args_sha256",
            "outcome",
            "duration_us",
        ] {
            assert!(l.get(field).is_some(), "{field} missing in {l}");
        }
        assert_eq!(l["server"], "tools");
    }
    for l in &got[..4] {
        assert_eq!(l["method"], "tools/call");
        assert_eq!(l["tool"], "b1__echo");
    }
    // Refused before its body was read: what it asked is not known.
    assert!(got[4]["method"].is_null() && got[4].get("tool").is_none(), "{}", got[4]);
    let summary: Vec<(String, String, String)> = got
        .iter()
        .map(|l| {
            let s = |k: &str| l[k].as_str().map_or_else(|| l[k].to_string(), str::to_string);
            (s("principal"), s("decision"), s("outcome"))
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("alice".into(), "allow".into(), "ok".into()),
            ("alice".into(), "allow".into(), "isError".into()),
            ("alice".into(), "allow".into(), "rate_limited".into()),
            ("mallory".into(), "deny".into(), "error:-32600".into()),
            ("null".into(), "deny".into(), "error:-32600".into()),
        ]
    );
    assert_eq!(got[0]["mode"], "jwt");
    assert_eq!(got[0]["backend"], "b1");
    assert_eq!(got[0]["rule"], "echo-for-callers");
    assert_eq!(got[3]["rule"], "default");
    let statuses: Vec<u64> = got.iter().map(|l| l["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [200, 200, 429, 403, 401]);
    // The digest is over the judged arguments: `n` normalized to the integer the backend gets,
    // keys sorted.
    let canonical = format!(r#"{{"n":5,"text":"{SECRET_ARG}"}}"#);
    assert_eq!(got[0]["args_sha256"], sha256_hex(canonical.as_bytes()));
    assert!(got[4]["args_sha256"].is_null(), "no decision, no digest: {}", got[4]);

    let text = std::fs::read_to_string(&trail).unwrap();
    for secret in [SECRET_ARG, SECRET_RESULT, &caller, &other, "fail\""] {
        assert!(!text.contains(secret), "{secret} in the trail:\n{text}");
    }

    // logrotate: the file is moved away, a reload reopens the path.
    let rotated = dir.join("audit.jsonl.1");
    std::fs::rename(&trail, &rotated).unwrap();
    let r = send(admin, "POST /reload HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(rpc(addr, "tools/call", &args, Some(&other)).status, 403);
    let fresh = lines(&trail, 1);
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0]["principal"], "mallory");
    assert_eq!(std::fs::read_to_string(&rotated).unwrap().lines().count(), 6);

    let m = send(admin, "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(String::from_utf8_lossy(&m.body).contains("portcullis_audit_dropped_total 0"));
    let _ = std::fs::remove_dir_all(&dir);
}
