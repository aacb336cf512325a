//! The built `portcullis` binary: `check` exit codes and error paths, SIGHUP reload, SIGTERM
//! drain with exit status 0. Signals are sent with libc; everything else is std.
#![allow(clippy::unwrap_used)] // test harness

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn temp(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("portcullis-bin-{}-{name}.yaml", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

const CONFIG: &str = r#"
listen: 127.0.0.1:0
workers: 2
shutdownGraceMs: 3000
servers:
  - name: demo
    path: /mcp
    tools:
      - name: hello
        description: greets
        responseTemplate: { body: "v1" }
"#;

#[test]
fn check_reports_every_error_with_its_path() {
    let bad = temp(
        "bad",
        r#"
listen: 127.0.0.1:0
bogus: 1
limits: { maxHeaders: 100000 }
servers:
  - name: a
    tools:
      - { name: t, responseTemplate: { body: "{{if .x}}" } }
  - name: "bad name!"
    authentication: { mode: proxy, proxy: { userHeader: X-User } }
"#,
    );
    let out = Command::new(BIN).args(["check", "--config"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    for path in [
        "bogus: unknown field",
        "limits.maxHeaders",
        "servers[0].tools[0].responseTemplate.body",
        "servers[1].name",
        "servers[1].authentication.proxy.trustedSources",
    ] {
        assert!(err.contains(path), "missing {path:?} in:\n{err}");
    }
    let good = temp("good", CONFIG);
    let out = Command::new(BIN).args(["check", "--config"]).arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8(out.stdout).unwrap().contains("demo at /mcp: 1 local tool(s)"));
    let _ = std::fs::remove_file(bad);
    let _ = std::fs::remove_file(good);
}

struct Running {
    child: Child,
    addr: String,
}

impl Running {
    fn start(config: &std::path::Path) -> Running {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("stderr".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            })
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = loop {
            let line = rx.recv_timeout(deadline - Instant::now()).expect("gateway did not start");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split(' ').next().unwrap().to_string();
            }
        };
        Running { child, addr }
    }

    fn signal(&self, sig: i32) {
        let rc = kill(self.child.id() as i32, sig);
        assert_eq!(rc, 0);
    }
}

#[allow(unsafe_code)] // the one FFI call of the suite
fn kill(pid: i32, sig: i32) -> i32 {
    // SAFETY: kill(2) has no memory-safety preconditions; pid is our own child.
    unsafe { libc::kill(pid, sig) }
}

fn call(addr: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let body =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"hello",{meta}}}}}"#);
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\nContent-Type: application/json\r\n\
MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: hello\r\nConnection: close\r\n\
Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    (status, resp)
}

#[test]
fn sighup_reloads_and_sigterm_drains_with_exit_zero() {
    let file = temp("run", CONFIG);
    let mut gw = Running::start(&file);
    let (status, body) = call(&gw.addr);
    assert_eq!(status, 200);
    assert!(body.contains(r#""text":"v1""#), "{body}");

    std::fs::write(&file, CONFIG.replace("body: \"v1\"", "body: \"v2\"")).unwrap();
    gw.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, body) = call(&gw.addr);
        if body.contains(r#""text":"v2""#) {
            break;
        }
        assert!(Instant::now() < deadline, "reload not visible: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // An idle keep-alive connection is open while SIGTERM arrives: the gateway closes it and
    // exits 0 well before the grace deadline.
    let mut idle = TcpStream::connect(&gw.addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    gw.signal(libc::SIGTERM);
    let mut buf = [0u8; 16];
    assert_eq!(idle.read(&mut buf).unwrap_or(0), 0, "idle connection closed on drain");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = gw.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_file(file);
}
