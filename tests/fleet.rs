//! A fleet of gateway processes sharing session keys: one client alternates between two built
//! `portcullis` binaries (A and B) for a whole session with a real MCP backend behind them, while
//! the session keys rotate in the safe order - the new key is first added as an open-only key
//! everywhere, then made the sealing key everywhere, then the old key is removed. A third
//! process that never gets the new key (the laggard) shows why the first step cannot be skipped.
//!
//! Reloads use both triggers: SIGHUP for A, `POST /reload` on the admin listener for B. Each
//! config file is replaced atomically (written aside, then renamed) because the gateway also
//! watches its file and would otherwise reload a half-written one.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_types)] // fixture bookkeeping across test threads, not the data path

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Resp;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// The protocol revision the client speaks (sessions exist up to the 2025 revisions).
const VERSION: &str = "2025-06-18";

/// The session keys of the rotation: k1 is the old key, k2 the new one.
fn secret(kid: &str) -> &'static str {
    match kid {
        "k1" => "fleet-test-session-key-one-0123456789abcdef",
        "k2" => "fleet-test-session-key-two-0123456789abcdef",
        _ => unreachable!("unknown key id {kid}"),
    }
}

/// The gateway configuration: one server in front of the backend, with `keys` in this order
/// (the first seals, every one opens). Port 0 everywhere: the real ports are read from the log.
fn config(backend: SocketAddr, keys: &[&str]) -> String {
    let keys: Vec<String> =
        keys.iter().map(|k| format!("{{ id: {k}, secret: \"{}\" }}", secret(k))).collect();
    format!(
        r#"
listen: 127.0.0.1:0
admin: 127.0.0.1:0
workers: 2
shutdownGraceMs: 3000
limits: {{ upstreamTimeoutMs: 5000 }}
sessions:
  keys: [{}]
  ttlSeconds: 3600
servers:
  - name: fleet
    path: /mcp
    backends:
      - name: b
        url: http://{backend}/mcp
"#,
        keys.join(", ")
    )
}

// ---- The MCP backend -------------------------------------------------------------------------

/// One request the backend received, and the status it answered.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    session: String,
    version: String,
    status: u16,
}

/// An MCP server with sessions of its own: every `initialize` mints `backend-sess-<n>`; any later
/// request must carry a live session id (else 404) and the protocol version negotiated for it
/// (else 400). `tools/list` answers JSON, `tools/call` answers SSE with `<session>|<text>`.
struct Backend {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

#[derive(Default)]
struct BackendState {
    minted: usize,
    /// Live sessions: (id, negotiated protocol version).
    live: Vec<(String, String)>,
}

impl Backend {
    fn start() -> Backend {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let state: Arc<Mutex<BackendState>> = Arc::default();
        let s2 = seen.clone();
        std::thread::Builder::new()
            .name("fleet-backend".into())
            .spawn(move || {
                for s in l.incoming() {
                    let Ok(s) = s else { return };
                    let (seen, state) = (s2.clone(), state.clone());
                    std::thread::Builder::new()
                        .name("fleet-backend-conn".into())
                        .spawn(move || serve_backend(s, &seen, &state))
                        .unwrap();
                }
            })
            .unwrap();
        Backend { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve_backend(mut s: TcpStream, seen: &Mutex<Vec<Seen>>, state: &Mutex<BackendState>) {
    // Bounded: an idle pooled connection is given up after a while.
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut buf = Vec::new();
    while let Some((head, body)) = common::read_request(&mut s, &mut buf) {
        let header = |name: &str| {
            head.lines()
                .skip(1)
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let (session, version) = (header("mcp-session-id"), header("mcp-protocol-version"));
        let delete = head.starts_with("DELETE ");
        let msg: Value =
            if delete { json!({"method": "DELETE"}) } else { serde_json::from_slice(&body).unwrap() };
        let method = msg["method"].as_str().unwrap_or("").to_string();
        let reply = |status: &str, extra: &str, body: &str| {
            format!("HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())
        };
        let mut st = state.lock().unwrap();
        let live = st.live.iter().find(|(id, _)| *id == session).map(|(_, v)| v.clone());
        let (status, resp) = if method == "initialize" {
            st.minted += 1;
            let sid = format!("backend-sess-{}", st.minted);
            let negotiated = msg["params"]["protocolVersion"].as_str().unwrap_or("").to_string();
            st.live.push((sid.clone(), negotiated.clone()));
            let r = json!({"jsonrpc":"2.0","id":msg["id"],"result":{"protocolVersion":negotiated,"capabilities":{"tools":{}},"serverInfo":{"name":"fleet-backend","version":"1"}}});
            let extra = format!("Content-Type: application/json\r\nMcp-Session-Id: {sid}\r\n");
            (200, reply("200 OK", &extra, &r.to_string()))
        } else if live.is_none() {
            (404, reply("404 Not Found", "", ""))
        } else if live.as_deref() != Some(version.as_str()) {
            (400, reply("400 Bad Request", "", ""))
        } else if delete {
            st.live.retain(|(id, _)| *id != session);
            (200, reply("200 OK", "", ""))
        } else if msg.get("id").is_none() {
            (202, reply("202 Accepted", "", ""))
        } else if method == "tools/list" {
            let r = json!({"jsonrpc":"2.0","id":msg["id"],"result":{"tools":[{"name":"echo","description":"echoes","inputSchema":{"type":"object","properties":{"text":{"type":"string"}}}}]}});
            (200, reply("200 OK", "Content-Type: application/json\r\n", &r.to_string()))
        } else if method == "tools/call" {
            let text = format!("{session}|{}", msg["params"]["arguments"]["text"].as_str().unwrap_or(""));
            let r = json!({"jsonrpc":"2.0","id":msg["id"],"result":{"content":[{"type":"text","text":text}],"isError":false}});
            (
                200,
                reply(
                    "200 OK",
                    "Content-Type: text/event-stream\r\n",
                    &format!("event: message\ndata: {r}\n\n"),
                ),
            )
        } else {
            let r = json!({"jsonrpc":"2.0","id":msg["id"],"result":{}});
            (200, reply("200 OK", "Content-Type: application/json\r\n", &r.to_string()))
        };
        drop(st);
        seen.lock().unwrap().push(Seen { method, session, version, status });
        if s.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

// ---- A gateway process -----------------------------------------------------------------------

/// One running `portcullis` binary with its own config file.
struct Gw {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    file: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Gw {
    fn start(name: &'static str, config: &str) -> Gw {
        let file = std::env::temp_dir().join(format!("portcullis-fleet-{}-{name}.yaml", std::process::id()));
        std::fs::write(&file, config).unwrap();
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&file)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let l2 = log.clone();
        std::thread::Builder::new()
            .name(format!("stderr-{name}"))
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    l2.lock().unwrap().push(line);
                }
            })
            .unwrap();
        // "portcullis <v> listening on <addr> (<n> worker(s), <driver>); admin <addr>"
        let deadline = Instant::now() + Duration::from_secs(10);
        let line = loop {
            if let Some(l) = log.lock().unwrap().iter().find(|l| l.contains(" listening on ")) {
                break l.clone();
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("gateway {name} exited at start-up ({status}): {:#?}", log.lock().unwrap());
            }
            assert!(Instant::now() < deadline, "gateway {name} did not start: {:#?}", log.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        };
        let addr = line.split(" listening on ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        let admin = line.split("; admin ").nth(1).unwrap().trim().parse().unwrap();
        Gw { name, child, addr, admin, file, log }
    }

    fn signal(&self, sig: i32) {
        assert_eq!(kill(self.child.id() as i32, sig), 0);
    }

    /// Replaces the config file atomically, so the file watcher never reads half of it.
    fn write_config(&self, config: &str) {
        let tmp = self.file.with_extension("yaml.tmp");
        std::fs::write(&tmp, config).unwrap();
        std::fs::rename(&tmp, &self.file).unwrap();
    }

    /// The session key ids of the published configuration (admin `/config`, secrets redacted).
    fn key_ids(&self) -> Vec<String> {
        let r = admin(self.admin, "GET", "/config");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        let text = v.to_string();
        for kid in ["k1", "k2"] {
            assert!(!text.contains(secret(kid)), "the admin /config must not show key material");
        }
        v["sessions"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// New config, then SIGHUP; waits until the new keys are published.
    /// (The file watcher may publish the new file first; either way it is the new file.)
    fn reload_by_sighup(&self, config: &str, want: &[&str]) {
        let hups = || self.log().iter().filter(|l| l.contains("SIGHUP: reloading configuration")).count();
        let before = hups();
        self.write_config(config);
        self.signal(libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(10);
        while hups() == before || self.key_ids() != want {
            assert!(Instant::now() < deadline, "{}: reload not published: {:#?}", self.name, self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// New config, then `POST /reload` on the admin listener, which answers once it is published.
    fn reload_by_admin(&self, config: &str, want: &[&str]) {
        self.write_config(config);
        let r = admin(self.admin, "POST", "/reload");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["status"], "reloaded");
        assert_eq!(self.key_ids(), want, "{}: published on return", self.name);
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit status (bounded wait).
    fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "{} did not exit after SIGTERM", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gw {
    /// A failed assertion must not leave the process running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.file);
    }
}

#[allow(unsafe_code)] // the one FFI call of this file
fn kill(pid: i32, sig: i32) -> i32 {
    // SAFETY: kill(2) has no memory-safety preconditions; pid is our own child.
    unsafe { libc::kill(pid, sig) }
}

/// A request to an admin listener.
fn admin(addr: SocketAddr, method: &str, path: &str) -> Resp {
    common::send(
        addr,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    )
}

// ---- The MCP client --------------------------------------------------------------------------

/// A JSON-RPC message to `gw` within session `sid` (none for initialize).
fn rpc(gw: &Gw, sid: Option<&str>, body: &str) -> Resp {
    let session = sid
        .map(|s| format!("Mcp-Session-Id: {s}\r\nMCP-Protocol-Version: {VERSION}\r\n"))
        .unwrap_or_default();
    common::send(
        gw.addr,
        &format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\n{session}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// The body of a chunked response, de-chunked.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let line = std::str::from_utf8(&rest[..eol]).unwrap();
        let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap();
        rest = &rest[eol + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
    out
}

/// The JSON-RPC answer in a response, whether sent as JSON or as an SSE stream.
fn answer(r: &Resp) -> Value {
    let chunked = r.header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(&r.body) } else { r.body.clone() };
    if !r.header("content-type").is_some_and(|c| c.starts_with("text/event-stream")) {
        return serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{e}: {} {}", r.status, String::from_utf8_lossy(&body)));
    }
    let text = String::from_utf8_lossy(&body).to_string();
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str::<Value>(d.trim()).unwrap())
        .find(|v| v.get("id").is_some() && (v.get("result").is_some() || v.get("error").is_some()))
        .unwrap_or_else(|| panic!("no JSON-RPC answer in the stream: {text}"))
}

/// `initialize` on `gw`: the new gateway session id.
fn initialize(gw: &Gw) -> String {
    let r = rpc(
        gw,
        None,
        &format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"{VERSION}","capabilities":{{}},"clientInfo":{{"name":"fleet-client","version":"1"}}}}}}"#
        ),
    );
    assert_eq!(r.status, 200, "{}: {}", gw.name, String::from_utf8_lossy(&r.body));
    assert_eq!(answer(&r)["result"]["protocolVersion"], VERSION);
    let sid =
        r.header("mcp-session-id").unwrap_or_else(|| panic!("{}: no Mcp-Session-Id", gw.name)).to_string();
    let r = rpc(gw, Some(&sid), r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    assert_eq!(r.status, 202, "{}", gw.name);
    sid
}

/// The key id a gateway session id was sealed with: it travels in clear in the id
/// (`0x01 | kid_len | kid | nonce | ciphertext`, base64url), so that any key can open it.
fn sealed_with(sid: &str) -> String {
    let raw = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(sid.as_bytes()).unwrap();
    assert_eq!(raw[0], 1, "session id format");
    String::from_utf8(raw[2..2 + raw[1] as usize].to_vec()).unwrap()
}

/// `tools/list` on `gw` within `sid`: the tool names.
fn list(gw: &Gw, sid: &str) -> Vec<String> {
    let r = rpc(gw, Some(sid), r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
    assert_eq!(r.status, 200, "{}: {}", gw.name, String::from_utf8_lossy(&r.body));
    let v = answer(&r);
    v["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: {v}", gw.name))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// `tools/call echo` on `gw` within `sid`: HTTP status and the JSON-RPC answer.
fn call(gw: &Gw, sid: &str, text: &str) -> (u16, Value) {
    let r = rpc(
        gw,
        Some(sid),
        &format!(
            r#"{{"jsonrpc":"2.0","id":"c-{text}","method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{text}"}}}}}}"#
        ),
    );
    let v = answer(&r);
    (r.status, v)
}

/// `tools/call echo` succeeds on `gw` and was served by the backend in `backend_sid`.
fn echo(gw: &Gw, sid: &str, backend_sid: &str, text: &str) {
    let (status, v) = call(gw, sid, text);
    assert_eq!(status, 200, "{}: {v}", gw.name);
    assert_eq!(v["id"], format!("c-{text}"), "{}: {v}", gw.name);
    assert_eq!(v["result"]["content"][0]["text"], format!("{backend_sid}|{text}"), "{}: {v}", gw.name);
}

/// The session is refused as MCP requires for an unknown session: HTTP 404.
fn refused(gw: &Gw, sid: &str, what: &str) {
    let (status, v) = call(gw, sid, "refused");
    assert_eq!(status, 404, "{}: {what}: {v}", gw.name);
    assert_eq!(v["error"]["code"], -32001, "{}: {what}: {v}", gw.name);
    let r = rpc(gw, Some(sid), r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#);
    assert_eq!(r.status, 404, "{}: {what}: tools/list", gw.name);
}

/// A stretch of the session alternating between the gateways, twice round: a list and a call on
/// each in turn, every one reaching the backend in `backend_sid`.
fn alternate(gws: &[&Gw], sid: &str, backend_sid: &str, tag: &str) {
    for round in 0..2 {
        for gw in gws {
            assert_eq!(list(gw, sid), ["echo"], "{}: {tag}", gw.name);
            echo(gw, sid, backend_sid, &format!("{tag}-{round}-{}", gw.name));
        }
    }
}

/// How many initializes the backend saw: one more than the client asked for would mean a backend
/// session was made behind the client's back (its session dropped and re-created).
fn initializes(backend: &Backend) -> usize {
    backend.seen().iter().filter(|s| s.method == "initialize").count()
}

#[test]
fn a_session_alternates_between_two_gateways_through_a_key_rotation() {
    let backend = Backend::start();
    let old = config(backend.addr, &["k1"]);
    let mut a = Gw::start("A", &old);
    let mut b = Gw::start("B", &old);
    // A replica the rollout misses: it keeps the old keys throughout.
    let mut laggard = Gw::start("laggard", &old);
    assert_eq!((a.key_ids(), b.key_ids()), (vec!["k1".to_string()], vec!["k1".to_string()]));

    // 1. A session made on A is a session on B: initialize on A, then everything alternates.
    let s1 = initialize(&a);
    assert_eq!(sealed_with(&s1), "k1");
    let r = rpc(&b, Some(&s1), r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    assert_eq!(r.status, 202, "B accepts the notification within A's session");
    assert_eq!(list(&a, &s1), ["echo"]);
    echo(&b, &s1, "backend-sess-1", "first-call-on-B");
    alternate(&[&a, &b], &s1, "backend-sess-1", "before");
    echo(&laggard, &s1, "backend-sess-1", "on-the-laggard");
    let seen = backend.seen();
    assert_eq!(seen[0].method, "initialize");
    assert_eq!(seen[1].method, "notifications/initialized", "the gateway completes the backend handshake");
    assert!(
        seen[1..].iter().all(|s| s.session == "backend-sess-1" && s.version == VERSION && s.status < 300),
        "every call after initialize, through either process, carried the backend's own session: {seen:#?}"
    );

    // 2. Stage A: the new key k2 is added to every process as an open-only (second) key. Until
    // every process has it, nothing seals with it, so sessions made mid-rollout work everywhere.
    let stage_a = config(backend.addr, &["k1", "k2"]);
    a.reload_by_sighup(&stage_a, &["k1", "k2"]);
    let mid = initialize(&a);
    assert_eq!(sealed_with(&mid), "k1", "a second key does not seal");
    echo(&b, &mid, "backend-sess-2", "made-on-A-used-on-B-mid-rollout");
    alternate(&[&a, &b], &s1, "backend-sess-1", "stage-a-half");
    b.reload_by_admin(&stage_a, &["k1", "k2"]);
    alternate(&[&b, &a], &s1, "backend-sess-1", "stage-a");

    // 3. Stage B: k2 becomes the sealing key everywhere; k1 still opens.
    let stage_b = config(backend.addr, &["k2", "k1"]);
    a.reload_by_sighup(&stage_b, &["k2", "k1"]);
    let s2 = initialize(&a);
    assert_eq!(sealed_with(&s2), "k2", "the first key seals");
    // B has not reloaded yet but already opens k2 (stage A): the rollout is invisible to clients.
    alternate(&[&b, &a], &s2, "backend-sess-3", "k2-mid-rollout");
    alternate(&[&a, &b], &s1, "backend-sess-1", "stage-b-half");
    // Skipping stage A would look like the laggard, which never learnt k2: it refuses S2.
    refused(&laggard, &s2, "a k2-sealed session on a process without k2");
    echo(&laggard, &s1, "backend-sess-1", "old-session-on-the-laggard");
    b.reload_by_admin(&stage_b, &["k2", "k1"]);
    let s3 = initialize(&b);
    assert_eq!(sealed_with(&s3), "k2");
    alternate(&[&a, &b], &s3, "backend-sess-4", "stage-b-new");
    alternate(&[&b, &a], &s1, "backend-sess-1", "stage-b-old");
    alternate(&[&a, &b], &s2, "backend-sess-3", "stage-b-k2");
    assert_eq!(initializes(&backend), 4, "no session was re-created behind the client's back");

    // 4. Stage C: k1 is retired. Its sessions end (404, as for any unknown session) on each
    // process as it reloads; the client starts a new session, which works everywhere.
    let stage_c = config(backend.addr, &["k2"]);
    a.reload_by_sighup(&stage_c, &["k2"]);
    refused(&a, &s1, "k1 retired on A");
    echo(&b, &s1, "backend-sess-1", "k1-still-known-to-B");
    b.reload_by_admin(&stage_c, &["k2"]);
    refused(&b, &s1, "k1 retired on B");
    refused(&a, &s1, "k1 retired on A, again");
    let s4 = initialize(&b);
    assert_eq!(sealed_with(&s4), "k2");
    alternate(&[&a, &b], &s4, "backend-sess-5", "after-retirement");
    // Sessions sealed with k2 lived through the retirement of k1.
    alternate(&[&b, &a], &s2, "backend-sess-3", "k2-survives");
    alternate(&[&a, &b], &s3, "backend-sess-4", "k2-survives-too");

    // The backend never saw a request outside a live session of its own, nor a second
    // initialize for a live client session.
    let seen = backend.seen();
    assert!(
        seen.iter().all(|s| s.status < 300),
        "{:#?}",
        seen.iter().filter(|s| s.status >= 300).collect::<Vec<_>>()
    );
    assert_eq!(initializes(&backend), 5);
    assert!(seen.iter().filter(|s| s.method != "initialize").all(|s| s.version == VERSION));

    // 5. Every process drains and exits 0 on SIGTERM.
    for gw in [&mut a, &mut b, &mut laggard] {
        let status = gw.stop();
        assert!(status.success(), "{}: {status:?}: {:#?}", gw.name, gw.log());
    }
}
