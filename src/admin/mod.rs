//! The admin listener: `/healthz`, `/readyz`, `/metrics` (Prometheus text, per-worker figures
//! summed at scrape time), `/config` (the effective configuration, secrets redacted) and
//! `POST /reload`. It runs on its own thread and runtime, off the data path; it reads worker
//! state only through scrape messages.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};

use crate::config::watch::Reloader;
use crate::http::head::{self, Head, Method, Parsed};
use crate::http::response;
use crate::runtime::scrape::Scraper;

/// What `/readyz` says: starting (503) until the gateway is fully up, including its first JWKS
/// fetches; ready (200); draining (503) from the moment a shutdown begins.
#[derive(Default)]
pub struct Readiness(std::sync::atomic::AtomicU8);

impl Readiness {
    const STARTING: u8 = 0;
    const READY: u8 = 1;
    const DRAINING: u8 = 2;

    /// Everything is up.
    pub fn set_ready(&self) {
        // A drain that began during start-up wins.
        let _ = self.0.compare_exchange(Self::STARTING, Self::READY, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// A shutdown began.
    pub fn set_draining(&self) {
        self.0.store(Self::DRAINING, Ordering::SeqCst);
    }

    /// `/readyz`'s status and body.
    fn answer(&self) -> (u16, &'static str) {
        match self.0.load(Ordering::SeqCst) {
            Self::READY => (200, "ready\n"),
            Self::STARTING => (503, "starting\n"),
            _ => (503, "draining\n"),
        }
    }
}

/// Binds the admin address and starts its thread.
pub fn start(
    addr: SocketAddr,
    reloader: Arc<Reloader>,
    scraper: Arc<Scraper>,
    ready: Arc<Readiness>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new().name("portcullis-admin".into()).spawn(move || {
        let rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new().enable_timer().build();
        let mut rt = match rt {
            Ok(rt) => rt,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        rt.block_on(async move {
            // Not SO_REUSEPORT (monoio's default): a second process given the same admin port
            // must fail to start, not share it and answer another process's /readyz.
            let opts = monoio::net::ListenerOpts::new().reuse_port(false).reuse_addr(true);
            let listener = match TcpListener::bind_with_config(addr, &opts) {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::new(
                        e.kind(),
                        format!("admin cannot listen on {addr}: {e}"),
                    )));
                    return;
                }
            };
            let _ = tx.send(Ok(listener.local_addr().unwrap_or(addr)));
            let state = Arc::new(State { reloader, scraper, ready });
            // The stop cancels the pending accept and the loop sees its result. Dropping the
            // accept future instead (a select against a timer) leaves an io_uring accept armed
            // in the kernel: the next connection goes to it and is never served.
            let canceller = monoio::io::Canceller::new();
            let cancel = canceller.handle();
            let stopping = stop.clone();
            monoio::spawn(async move {
                while !stopping.load(Ordering::SeqCst) {
                    monoio::time::sleep(Duration::from_millis(100)).await;
                }
                canceller.cancel();
            });
            loop {
                match listener.cancelable_accept(cancel.clone()).await {
                    Ok((stream, _)) => {
                        monoio::spawn(serve(state.clone(), stream));
                    }
                    Err(_) if stop.load(Ordering::SeqCst) => break,
                    Err(e) => {
                        log::warn!("admin: accept failed: {e}");
                        monoio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        });
    })?;
    let bound = rx.recv().map_err(|_| std::io::Error::other("admin thread exited"))??;
    Ok((bound, handle))
}

struct State {
    reloader: Arc<Reloader>,
    scraper: Arc<Scraper>,
    ready: Arc<Readiness>,
}

/// One request per connection: admin traffic is rare and tooling-driven.
async fn serve(state: Arc<State>, mut stream: TcpStream) {
    let limits = crate::http::Limits { max_body_bytes: 0, ..Default::default() };
    let mut buf = Vec::with_capacity(4096);
    let mut h = Head::default();
    let deadline = Duration::from_secs(5);
    loop {
        let len = buf.len();
        if len >= limits.max_header_bytes {
            return;
        }
        buf.reserve(1024);
        let read = monoio::time::timeout(deadline, stream.read(buf.slice_mut(len..))).await;
        let Ok((Ok(n), b)) = read.map(|(r, s)| (r, s.into_inner())) else { return };
        buf = b;
        if n == 0 {
            return;
        }
        match head::parse(&buf, &limits, &mut h) {
            Ok(Parsed::Complete) => break,
            Ok(Parsed::Partial) => continue,
            Err(_) => return,
        }
    }
    let path = h.path.of(&buf);
    let (status, ctype, body) = match (h.method, path) {
        (Method::Post, b"/pins/record") => record_pins(&state).await,
        _ => route(&state, h.method, path),
    };
    let mut out = Vec::with_capacity(body.len() + 256);
    response::write_head(&mut out, status, Some(ctype), body.len(), false, &Default::default());
    out.extend_from_slice(body.as_bytes());
    let _ = monoio::time::timeout(deadline, stream.write_all(out)).await;
}

/// `POST /pins/record`: records the pinned backends' tools into the pins files, then reloads so
/// the workers judge by them.
async fn record_pins(state: &State) -> (u16, &'static str, String) {
    let report = crate::runtime::pins::record_pins(state.reloader.current.clone()).await;
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            return (500, response::JSON, serde_json::json!({"status": "failed", "error": e}).to_string())
        }
    };
    let recorded: Vec<serde_json::Value> = report
        .iter()
        .map(|(server, backend, outcome)| match outcome {
            Ok(n) => serde_json::json!({"server": server, "backend": backend, "tools": n}),
            Err(why) => serde_json::json!({"server": server, "backend": backend, "error": why}),
        })
        .collect();
    let failed = report.iter().any(|(_, _, o)| o.is_err());
    let reload = match state.reloader.reload() {
        Ok(notes) => serde_json::json!({"status": "reloaded", "notes": notes}),
        Err(errors) => serde_json::json!({"status": "rejected", "errors": errors}),
    };
    let status = if failed { 502 } else { 200 };
    let body = serde_json::json!({"status": if failed { "partial" } else { "recorded" }, "backends": recorded, "reload": reload});
    (status, response::JSON, body.to_string())
}

fn route(state: &State, method: Method, path: &[u8]) -> (u16, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    const JSON: &str = response::JSON;
    match (method, path) {
        (Method::Get, b"/healthz") => (200, TEXT, "ok\n".into()),
        (Method::Get, b"/readyz") => {
            let (status, body) = state.ready.answer();
            (status, TEXT, body.into())
        }
        (Method::Get, b"/metrics") => {
            let stats = state.scraper.scrape();
            let process = crate::proxy::metrics::Process {
                reloads: state.reloader.ok.load(Ordering::Relaxed),
                reload_failures: state.reloader.failed.load(Ordering::Relaxed),
                workers: state.scraper.workers() as u64,
                audit_dropped: crate::runtime::audit::dropped(),
                spans_dropped: crate::runtime::otlp::dropped(),
                spans_exported: crate::runtime::otlp::exported(),
            };
            let text = crate::proxy::metrics::render(&stats, &state.reloader.current.load(), &process);
            (200, "text/plain; version=0.0.4; charset=utf-8", text)
        }
        (Method::Get, b"/config") => (200, JSON, state.reloader.current.load().effective.clone()),
        (Method::Post, b"/reload") => match state.reloader.reload() {
            Ok(notes) => (200, JSON, serde_json::json!({"status": "reloaded", "notes": notes}).to_string()),
            Err(errors) => {
                (422, JSON, serde_json::json!({"status": "rejected", "errors": errors}).to_string())
            }
        },
        (_, b"/healthz" | b"/readyz" | b"/metrics" | b"/config" | b"/reload" | b"/pins/record") => {
            (405, TEXT, "method not allowed\n".into())
        }
        _ => (404, TEXT, "not found\n".into()),
    }
}
