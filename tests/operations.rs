//! Operations that never surprise (issue "Configurations written by others load as they are;
//! operations that never surprise"): what a client or an operator sees at the edges.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_methods)] // fixture threads, not the data path

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A request refused before its body was read (413) is answered, not reset: the gateway
/// half-closes and drains what the client is still sending (bounded), so the client reads the
/// answer. Before, about one oversized upload in four saw a connection reset instead.
#[test]
fn an_early_answer_is_read_not_reset() {
    let gw = common::start(
        r#"
listen: 127.0.0.1:0
workers: 1
limits: { maxBodyBytes: 65536 }
servers:
  - name: s
    path: /mcp
    tools:
      - { name: hello, responseTemplate: { body: "hi" } }
"#,
    );
    let addr = gw.addrs()[0];
    let body = vec![b'x'; 2 * 1024 * 1024];
    for round in 0..20 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let head = format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        // The client sends everything before it reads, as most HTTP clients do.
        let mut w = s.try_clone().unwrap();
        let body = body.clone();
        let writer = std::thread::spawn(move || {
            let _ = w.write_all(head.as_bytes());
            let _ = w.write_all(&body);
        });
        let mut got = Vec::new();
        let read = s.read_to_end(&mut got);
        let _ = writer.join();
        let text = String::from_utf8_lossy(&got);
        assert!(read.is_ok(), "round {round}: {read:?} after {} bytes: {text}", got.len());
        assert!(text.starts_with("HTTP/1.1 413"), "round {round}: {text}");
        assert!(text.contains("request body too large"), "round {round}: {text}");
    }
}

/// Each command's `--help` says what it does and what `--config` means for it; `run --help`
/// names the admin endpoints and `RUST_LOG`.
#[test]
fn every_command_says_what_it_does() {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis")).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let check = help(&["check", "--help"]);
    assert!(
        check.contains("Compile a configuration") && check.contains("embedded demo is checked"),
        "{check}"
    );
    assert!(!check.contains("served"), "{check}");
    let import = help(&["import", "--help"]);
    assert!(!import.contains("--config"), "{import}");
    let run = help(&["run", "--help"]);
    for needle in
        ["/healthz", "/readyz", "/metrics", "/config", "/reload", "/pins/record", "RUST_LOG", "SIGHUP"]
    {
        assert!(run.contains(needle), "{needle} in {run}");
    }
    let record = help(&["pins", "record", "--help"]);
    assert!(record.contains("--config <CONFIG>") && record.contains("pinned backends"), "{record}");
}

/// `portcullis import openapi SPEC | head` ends quietly: a reader that stops early is not an
/// error (no broken-pipe panic, exit 0).
#[test]
fn import_into_a_closed_pipe_exits_quietly() {
    use std::fmt::Write as _;
    let mut spec = String::from(
        "openapi: 3.1.0\ninfo: {title: Big, version: '1'}\nservers: [{url: 'https://api.example.com'}]\npaths:\n",
    );
    for i in 0..3000 {
        let _ = writeln!(
            spec,
            "  /items{i}:\n    get: {{operationId: list{i}, description: 'Lists the items of shelf {i}.'}}"
        );
    }
    let file = std::env::temp_dir().join(format!("portcullis-big-spec-{}.yaml", std::process::id()));
    std::fs::write(&file, spec).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["import", "openapi"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take()); // the reader goes away, as `head` does
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
    let _ = std::fs::remove_file(&file);
}

/// An absolute-form request target (RFC 9112 3.2.2, as proxies send) is served; its authority is
/// the host the DNS-rebinding check judges (3.2.3), not the Host field.
#[test]
fn absolute_form_targets_are_served() {
    let gw = common::start(
        r#"
listen: 127.0.0.1:0
workers: 1
allowedHosts: [gw.example]
servers:
  - name: s
    path: /mcp
    tools:
      - { name: hello, responseTemplate: { body: "hi" } }
"#,
    );
    let addr = gw.addrs()[0];
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let req = |target: &str, host: &str| {
        common::send(
            addr,
            &format!(
                "POST {target} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    assert_eq!(req("/mcp", "gw.example").status, 200, "origin-form, as before");
    let r = req("http://gw.example/mcp", "evil.example");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(req("http://evil.example/mcp", "gw.example").status, 403, "the target's host is judged");
}
