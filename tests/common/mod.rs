//! Shared end-to-end harness: start the gateway in-process from a config string, send raw
//! HTTP/1.1 requests, read whole responses. (Older test files still carry their own copies.)
#![allow(dead_code)] // each test binary uses a subset
#![allow(clippy::disallowed_types)] // fixture bookkeeping across test threads, not the data path

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis::config::compile::compile_str;
use portcullis::config::watch::{Reloader, Source};
use portcullis::runtime::Gateway;
use serde_json::Value;

/// Compiles `config` (no environment) and starts a gateway on it.
pub fn start(config: &str) -> Gateway {
    let snap = compile_str(config, &|_| None).unwrap_or_else(|e| panic!("{e:#?}"));
    Gateway::start(Arc::new(Reloader::new(Source::Demo, snap))).unwrap()
}

/// A whole response.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body (as received: not de-chunked).
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as JSON (panics with the raw body otherwise).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// First header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends `raw` (which should ask for `Connection: close`) and reads the response to EOF.
pub fn send(addr: SocketAddr, raw: &str) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&out)));
    let head = String::from_utf8_lossy(&out[..end]).to_string();
    let status = head[9..12].parse().unwrap();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':').map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string())))
        .collect();
    Resp { status, headers, body: out[end + 4..].to_vec() }
}

/// A JSON-RPC POST of `body` to `/mcp` with `extra` header lines (each ending in `\r\n`), e.g.
/// an `Mcp-Session-Id` line on the 2025 revisions.
pub fn post_mcp(addr: SocketAddr, body: &str, extra: &str) -> Resp {
    send(
        addr,
        &format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\n{extra}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// A 2026-07-28 `tools/call` of `tool` with `args` (JSON) at `target` (path and query), with
/// `extra` header lines (each ending in `\r\n`).
pub fn call_2026(addr: SocketAddr, target: &str, tool: &str, args: &str, extra: &str) -> Resp {
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"{tool}","arguments":{args},{meta}}}}}"#
    );
    let req = format!(
        "POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: {tool}\r\n\
{extra}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    send(addr, &req)
}

/// A TLS server configuration for 127.0.0.1 signed by a fresh private CA, and that CA's PEM
/// written to a temporary file named after `tag` (for a `caFile`).
pub fn private_tls(tag: &str) -> (Arc<rustls::ServerConfig>, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let srv_key = KeyPair::generate().unwrap();
    let srv_cert =
        CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&srv_key, &issuer).unwrap();
    let ca_file = std::env::temp_dir().join(format!("portcullis-test-ca-{}-{tag}.pem", std::process::id()));
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![srv_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(srv_key.serialize_der().into()),
        )
        .unwrap();
    (Arc::new(config), ca_file)
}

/// Reads one HTTP/1.1 request (head, then a Content-Length body) from `s`, keeping bytes of a
/// following pipelined request in `buf`. `None` once the peer closes.
pub fn read_request(s: &mut impl Read, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let cl: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + cl {
                let body = buf[end + 4..end + 4 + cl].to_vec();
                buf.drain(..end + 4 + cl);
                return Some((head, body));
            }
        }
        let mut b = [0u8; 8192];
        match s.read(&mut b) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
}

/// One request the backend received.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap()
    }
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }
}

/// What the backend answers: status, content type, body.
pub type Reply = (u16, &'static str, Vec<u8>);

pub struct Recorder {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub connections: Arc<AtomicUsize>,
}

impl Recorder {
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
    pub fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().expect("the backend was called")
    }
}

/// A keep-alive HTTP/1.1 server that records every request and answers with `reply`.
pub fn recorder(reply: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Recorder {
    recorder_with(None, reply)
}

/// [`recorder`], over TLS when `tls` is given.
pub fn recorder_with(
    tls: Option<Arc<rustls::ServerConfig>>,
    reply: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> Recorder {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let connections = Arc::new(AtomicUsize::new(0));
    let reply = Arc::new(reply);
    let (s2, c2) = (seen.clone(), connections.clone());
    std::thread::Builder::new()
        .spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { return };
                c2.fetch_add(1, Ordering::SeqCst);
                let (seen, reply, tls) = (s2.clone(), reply.clone(), tls.clone());
                std::thread::Builder::new()
                    .spawn(move || match tls {
                        Some(config) => {
                            let conn = rustls::ServerConnection::new(config).unwrap();
                            serve(rustls::StreamOwned::new(conn, s), &seen, &*reply)
                        }
                        None => serve(s, &seen, &*reply),
                    })
                    .unwrap();
            }
        })
        .unwrap();
    Recorder { addr, seen, connections }
}

fn serve(mut s: impl Read + Write, seen: &Mutex<Vec<Seen>>, reply: &dyn Fn(&Seen) -> Reply) {
    let mut buf = Vec::new();
    loop {
        let Some((head, body)) = read_request(&mut s, &mut buf) else { return };
        let mut lines = head.lines();
        let mut first = lines.next().unwrap().split(' ');
        let got = Seen {
            method: first.next().unwrap().to_string(),
            target: first.next().unwrap().to_string(),
            headers: lines
                .filter_map(|l| {
                    l.split_once(':').map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
                })
                .collect(),
            body: String::from_utf8_lossy(&body).to_string(),
        };
        seen.lock().unwrap().push(got.clone());
        let (status, ctype, body) = reply(&got);
        let head =
            format!("HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n", body.len());
        if s.write_all(head.as_bytes()).is_err() || s.write_all(&body).is_err() {
            return;
        }
    }
}

/// An HS256 JWT signed with `key` (kid `h`): issuer `https://idp.test`, audience
/// `https://gw.test/mcp`, an hour left, `sub` and `scope` as given.
pub fn hs256_token(key: &[u8], sub: &str, scope: &str) -> String {
    hs256_token_with(key, serde_json::json!({"sub": sub, "scope": scope}))
}

/// [`hs256_token`] with `extra` claims (an object) beside `iss`, `aud` and `exp`.
pub fn hs256_token_with(key: &[u8], extra: Value) -> String {
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    let mut claims = serde_json::json!({"iss": "https://idp.test", "aud": "https://gw.test/mcp", "exp": exp});
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("h".into());
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(key)).unwrap()
}

/// The `authentication:` block (one line of YAML) of a server that accepts [`hs256_token`]s
/// signed with `key`.
pub fn hs256_auth(key: &[u8]) -> String {
    let k = base64_simd::URL_SAFE_NO_PAD.encode_to_string(key);
    format!(
        "authentication: {{ mode: jwt, jwt: {{ providers: [{{ name: t, issuer: https://idp.test, \
         jwks: {{ inline: {{ keys: [{{ kty: oct, kid: h, k: \"{k}\" }}] }} }} }}] }} }}"
    )
}

/// A 2026-07-28 request (id 7) of `method` with `params` (a JSON object's members, without
/// `_meta`) to `/mcp`, with `Mcp-Name` from `params.name`, `params.uri` or `params.taskId` where
/// the method has one, and `extra` header lines (each ending in `\r\n`).
pub fn rpc_2026(addr: SocketAddr, method: &str, params: &str, extra: &str) -> Resp {
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let sep = if params.is_empty() { "" } else { "," };
    let body = format!(r#"{{"jsonrpc":"2.0","id":7,"method":"{method}","params":{{{params}{sep}{meta}}}}}"#);
    let parsed: Value = serde_json::from_str(&body).unwrap();
    let name = match method {
        "tools/call" | "prompts/get" => parsed["params"]["name"].as_str(),
        "resources/read" => parsed["params"]["uri"].as_str(),
        "tasks/get" | "tasks/update" | "tasks/cancel" => parsed["params"]["taskId"].as_str(),
        _ => None,
    };
    let name = name.map(|n| format!("Mcp-Name: {n}\r\n")).unwrap_or_default();
    send(
        addr,
        &format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: {method}\r\n{name}{extra}\
Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}
