//! The built `portcullis` binary: `check` exit codes and error paths, SIGHUP reload, SIGTERM
//! drain with exit status 0, and zero-downtime upgrades (SO_REUSEPORT and inherited sockets).
//! Signals and the descriptor hand-over are done with libc; everything else is std.
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
    /// It logged that it took over inherited sockets.
    inherited: bool,
}

impl Running {
    fn start(config: &std::path::Path) -> Running {
        Running::spawn(Command::new(BIN).arg("--config").arg(config))
    }

    /// Starts the binary with `listener` passed as systemd socket activation does: descriptor
    /// 3 and `LISTEN_FDS=1` (no `LISTEN_PID`: the child's pid is not known before it exists).
    fn start_inheriting(config: &std::path::Path, listener: &std::net::TcpListener) -> Running {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let fd = listener.as_raw_fd();
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(config).env("LISTEN_FDS", "1").env_remove("LISTEN_PID");
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe calls (dup2, fcntl) on a descriptor the parent keeps open.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || inherit_as_fd3(fd));
        }
        Running::spawn(&mut cmd)
    }

    fn spawn(cmd: &mut Command) -> Running {
        let mut child =
            cmd.env("RUST_LOG", "info").stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
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
        let mut inherited = false;
        let addr = loop {
            let line = rx.recv_timeout(deadline - Instant::now()).expect("gateway did not start");
            inherited |= line.contains("inherited from the supervisor");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split(' ').next().unwrap().to_string();
            }
        };
        Running { child, addr, inherited }
    }

    fn signal(&self, sig: i32) {
        let rc = kill(self.child.id() as i32, sig);
        assert_eq!(rc, 0);
    }
}

#[allow(unsafe_code)] // FFI
fn kill(pid: i32, sig: i32) -> i32 {
    // SAFETY: kill(2) has no memory-safety preconditions; pid is our own child.
    unsafe { libc::kill(pid, sig) }
}

/// In the forked child: `fd` becomes descriptor 3 and survives exec.
#[allow(unsafe_code)] // FFI
fn inherit_as_fd3(fd: i32) -> std::io::Result<()> {
    // SAFETY: dup2(2) and fcntl(2) on plain integers have no memory-safety preconditions.
    let rc = unsafe {
        if fd == 3 {
            libc::fcntl(3, libc::F_SETFD, 0)
        } else {
            libc::dup2(fd, 3)
        }
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn call(addr: &str) -> (u16, String) {
    try_call(addr).unwrap()
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

/// A port free on 127.0.0.1 right now (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits (bounded) for the process to exit; its status.
fn wait_exit(gw: &mut Running, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = gw.child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`call`] that reports failures instead of panicking: (status, body) or what went wrong.
fn try_call(addr: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
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
    s.write_all(req.as_bytes()).map_err(|e| format!("write: {e}"))?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| format!("read: {e}"))?;
    let status =
        resp.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| format!("no status: {resp:?}"))?;
    Ok((status, resp))
}

#[test]
fn requests_in_flight_at_sigterm_complete_and_new_connections_are_refused() {
    let port = free_port();
    let file = temp("inflight", &CONFIG.replace("listen: 127.0.0.1:0", &format!("listen: 127.0.0.1:{port}")));
    let mut gw = Running::start(&file);
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let body =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"hello",{meta}}}}}"#);
    // The head and half the body are in when SIGTERM arrives; the rest comes after.
    let mut s = TcpStream::connect(&gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\nContent-Type: application/json\r\n\
MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: hello\r\nConnection: close\r\n\
Content-Length: {}\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(first.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    gw.signal(libc::SIGTERM);
    // New connections are refused once the listeners are closed (bounded wait for that). One
    // the kernel still completed in the meantime is answered, never swallowed: an abandoned
    // io_uring accept would take it and serve nobody.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match try_call(&gw.addr) {
            Err(e) if e.starts_with("connect: ") => break,
            Ok((200, _)) => {}
            other => panic!("a connection accepted during the drain was not served: {other:?}"),
        }
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    s.write_all(rest.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "the in-flight request completed: {resp}");
    assert!(resp.contains(r#""text":"v1""#), "{resp}");
    assert!(wait_exit(&mut gw, Duration::from_secs(10)).success());
    let _ = std::fs::remove_file(file);
}

/// What clients saw while one gateway process replaced another.
struct Handover {
    /// Answered by the old process (body `v1`) and the new one (`v2`).
    v1: u32,
    v2: u32,
    failures: Vec<String>,
    /// Requests reset before any response byte and sent again (only when allowed).
    retried: u32,
}

/// Puts two clients under load on `a` (a new connection per request, bounded in count and
/// time), starts the new process with `start_b`, stops `a` with SIGTERM, and reports.
fn handover(mut a: Running, start_b: impl FnOnce() -> Running, retry_resets: bool) -> Handover {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let addr = a.addr.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..2)
        .map(|i| {
            let (stop, addr) = (stop.clone(), addr.clone());
            std::thread::Builder::new()
                .name(format!("load-{i}"))
                .spawn(move || {
                    let mut h = Handover { v1: 0, v2: 0, failures: Vec::new(), retried: 0 };
                    let deadline = Instant::now() + Duration::from_secs(30);
                    while !stop.load(Ordering::SeqCst) && h.v1 + h.v2 < 50_000 && Instant::now() < deadline {
                        let r = match try_call(&addr) {
                            Err(e) if retry_resets && e.starts_with("read: ") => {
                                h.retried += 1;
                                try_call(&addr)
                            }
                            r => r,
                        };
                        match r {
                            Ok((200, body)) if body.contains(r#""text":"v1""#) => h.v1 += 1,
                            Ok((200, body)) if body.contains(r#""text":"v2""#) => h.v2 += 1,
                            Ok((status, body)) => h.failures.push(format!("{status}: {body}")),
                            Err(e) => h.failures.push(e),
                        }
                    }
                    h
                })
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The new process serves next to the old one...
    let mut b = start_b();
    assert_eq!(b.addr, addr);
    std::thread::sleep(Duration::from_millis(300));
    // ...which drains and exits.
    a.signal(libc::SIGTERM);
    assert!(wait_exit(&mut a, Duration::from_secs(10)).success());
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let mut total = Handover { v1: 0, v2: 0, failures: Vec::new(), retried: 0 };
    for t in load {
        let h = t.join().unwrap();
        total.v1 += h.v1;
        total.v2 += h.v2;
        total.retried += h.retried;
        total.failures.extend(h.failures);
    }
    b.signal(libc::SIGTERM);
    assert!(wait_exit(&mut b, Duration::from_secs(10)).success());
    assert!(
        total.failures.is_empty(),
        "{} failed of {}: {:?}",
        total.failures.len(),
        total.v1 + total.v2 + total.failures.len() as u32,
        &total.failures[..total.failures.len().min(5)]
    );
    assert!(total.v1 > 0 && total.v2 > 0, "both processes served: old {}, new {}", total.v1, total.v2);
    total
}

fn upgrade_configs(name: &str, port: u16) -> (std::path::PathBuf, std::path::PathBuf) {
    let cfg = CONFIG.replace("listen: 127.0.0.1:0", &format!("listen: 127.0.0.1:{port}"));
    (
        temp(&format!("{name}-a"), &cfg),
        temp(&format!("{name}-b"), &cfg.replace("body: \"v1\"", "body: \"v2\"")),
    )
}

#[test]
fn a_new_process_takes_over_the_port_without_a_failed_request() {
    let (file_a, file_b) = upgrade_configs("upgrade", free_port());
    let a = Running::start(&file_a);
    // Both processes bind the port with SO_REUSEPORT, each socket with its own accept queue.
    // The old one cancels its pending accepts, takes what is queued, and closes at once; a
    // connection the kernel queues on it in the microseconds between its last look and the
    // close is still reset before any response byte (unless net.ipv4.tcp_migrate_req=1). That
    // one request is retried, as a load balancer would; no other failure is allowed.
    // A second process on the same port must ask for it: without --takeover it refuses.
    let refused = Command::new(BIN).arg("--config").arg(&file_b).output().unwrap();
    assert!(!refused.status.success(), "a second gateway silently shared the port");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("already in use by another process") && stderr.contains("--takeover"),
        "{stderr}"
    );
    let h = handover(
        a,
        || Running::spawn(Command::new(BIN).arg("--config").arg(&file_b).arg("--takeover")),
        true,
    );
    assert!(h.retried <= 1, "{} requests were reset: the drain loses queued connections", h.retried);
    let _ = std::fs::remove_file(file_a);
    let _ = std::fs::remove_file(file_b);
}

#[test]
fn an_inherited_socket_hands_over_without_a_single_reset() {
    // The test holds the listening socket, as systemd does for a socket unit, and passes it to
    // both processes: one socket, one queue. The old process stops accepting and whatever is
    // queued is accepted by the new one; nothing is retried.
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (file_a, file_b) = upgrade_configs("inherit", socket.local_addr().unwrap().port());
    let a = Running::start_inheriting(&file_a, &socket);
    assert!(a.inherited, "the gateway uses the socket it was given");
    let h = handover(
        a,
        || {
            let b = Running::start_inheriting(&file_b, &socket);
            assert!(b.inherited);
            b
        },
        false,
    );
    assert_eq!(h.retried, 0);
    let _ = std::fs::remove_file(file_a);
    let _ = std::fs::remove_file(file_b);
}

#[test]
fn the_service_manager_hears_ready_reloading_and_stopping() {
    // NOTIFY_SOCKET as systemd sets it for a Type=notify unit: a datagram socket path.
    let dir = std::env::temp_dir().join(format!("portcullis-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let manager = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    manager.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let file = temp("notify", CONFIG);
    let mut gw = Running::spawn(Command::new(BIN).arg("--config").arg(&file).env("NOTIFY_SOCKET", &path));
    let next = || {
        let mut buf = [0u8; 512];
        let n = manager.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    assert_eq!(next(), "READY=1\n");
    // The ports are served once READY=1 has been sent.
    assert_eq!(call(&gw.addr).0, 200);
    gw.signal(libc::SIGHUP);
    let reloading = next();
    assert!(reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{reloading:?}");
    assert_eq!(next(), "READY=1\n");
    gw.signal(libc::SIGTERM);
    assert_eq!(next(), "STOPPING=1\n");
    assert!(wait_exit(&mut gw, Duration::from_secs(10)).success());
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_file(file);
}
