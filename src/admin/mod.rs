//! The admin listener: `/healthz`, `/readyz`, `/metrics` (Prometheus text, per-worker figures
//! summed at scrape time), `/config` (the effective configuration, secrets redacted) and
//! `POST /reload`. It runs on its own thread and runtime, off the data path; it reads worker
//! state only through scrape messages.

use std::fmt::Write as _;
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
use crate::proxy::core::{MethodClass, Stats, LATENCY_BOUNDS_US, STATUSES};
use crate::runtime::Scraper;

/// Binds the admin address and starts its thread.
pub fn start(
    addr: SocketAddr,
    reloader: Arc<Reloader>,
    scraper: Arc<Scraper>,
    ready: Arc<AtomicBool>,
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
            while !stop.load(Ordering::SeqCst) {
                let accepted = monoio::select! {
                    r = listener.accept() => Some(r),
                    _ = monoio::time::sleep(Duration::from_millis(100)) => None,
                };
                if let Some(Ok((stream, _))) = accepted {
                    monoio::spawn(serve(state.clone(), stream));
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
    ready: Arc<AtomicBool>,
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
    let (status, ctype, body) = route(&state, h.method, path);
    let mut out = Vec::with_capacity(body.len() + 256);
    response::write_head(&mut out, status, Some(ctype), body.len(), false, &Default::default());
    out.extend_from_slice(body.as_bytes());
    let _ = monoio::time::timeout(deadline, stream.write_all(out)).await;
}

fn route(state: &State, method: Method, path: &[u8]) -> (u16, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    const JSON: &str = response::JSON;
    match (method, path) {
        (Method::Get, b"/healthz") => (200, TEXT, "ok\n".into()),
        (Method::Get, b"/readyz") => {
            if state.ready.load(Ordering::SeqCst) {
                (200, TEXT, "ready\n".into())
            } else {
                (503, TEXT, "draining\n".into())
            }
        }
        (Method::Get, b"/metrics") => {
            let stats = state.scraper.scrape();
            (200, "text/plain; version=0.0.4; charset=utf-8", metrics_text(&stats, state))
        }
        (Method::Get, b"/config") => (200, JSON, state.reloader.current.load().effective.clone()),
        (Method::Post, b"/reload") => match state.reloader.reload() {
            Ok(notes) => (200, JSON, serde_json::json!({"status": "reloaded", "notes": notes}).to_string()),
            Err(errors) => {
                (422, JSON, serde_json::json!({"status": "rejected", "errors": errors}).to_string())
            }
        },
        (_, b"/healthz" | b"/readyz" | b"/metrics" | b"/config" | b"/reload") => {
            (405, TEXT, "method not allowed\n".into())
        }
        _ => (404, TEXT, "not found\n".into()),
    }
}

/// Prometheus text exposition of the summed statistics.
fn metrics_text(st: &Stats, state: &State) -> String {
    let mut s = String::with_capacity(4096);
    s.push_str("# HELP portcullis_requests_total Requests by server, MCP method and HTTP status.\n");
    s.push_str("# TYPE portcullis_requests_total counter\n");
    let mut servers: Vec<_> = st.requests.iter().collect();
    servers.sort_by(|a, b| a.0.cmp(b.0));
    for (server, counters) in servers {
        for (m, row) in counters.iter().enumerate() {
            for (si, &n) in row.iter().enumerate() {
                if n == 0 {
                    continue;
                }
                let status = if STATUSES[si] == 0 { "other".to_string() } else { STATUSES[si].to_string() };
                let _ = writeln!(
                    s,
                    "portcullis_requests_total{{server=\"{server}\",method=\"{}\",status=\"{status}\"}} {n}",
                    MethodClass::ALL[m].as_str()
                );
            }
        }
    }
    s.push_str(
        "# HELP portcullis_request_duration_seconds Time from complete request head to response written.\n",
    );
    s.push_str("# TYPE portcullis_request_duration_seconds histogram\n");
    let mut cumulative = 0u64;
    for (i, ub) in LATENCY_BOUNDS_US.iter().enumerate() {
        cumulative += st.latency_buckets[i];
        let _ = writeln!(
            s,
            "portcullis_request_duration_seconds_bucket{{le=\"{}\"}} {cumulative}",
            *ub as f64 / 1e6
        );
    }
    cumulative += st.latency_buckets[LATENCY_BOUNDS_US.len()];
    let _ = writeln!(s, "portcullis_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(s, "portcullis_request_duration_seconds_sum {}", st.latency_sum_us as f64 / 1e6);
    let _ = writeln!(s, "portcullis_request_duration_seconds_count {cumulative}");
    if !st.backend_failures.is_empty() {
        s.push_str("# HELP portcullis_backend_failures_total Failed backend exchanges by backend.\n");
        s.push_str("# TYPE portcullis_backend_failures_total counter\n");
        let mut failures: Vec<_> = st.backend_failures.iter().collect();
        failures.sort();
        for (b, n) in failures {
            let _ = writeln!(s, "portcullis_backend_failures_total{{backend=\"{b}\"}} {n}");
        }
    }
    if !st.decisions.is_empty() {
        s.push_str("# HELP portcullis_authorization_decisions_total Tool-call decisions by server and deciding rule (-1: defaultAction).\n");
        s.push_str("# TYPE portcullis_authorization_decisions_total counter\n");
        let mut decisions: Vec<_> =
            st.decisions.iter().flat_map(|(s, m)| m.iter().map(move |((r, a), n)| (s, *r, *a, *n))).collect();
        decisions.sort();
        for (server, rule, allowed, n) in decisions {
            let d = if allowed { "allow" } else { "deny" };
            let _ = writeln!(s, "portcullis_authorization_decisions_total{{server=\"{server}\",rule=\"{rule}\",decision=\"{d}\"}} {n}");
        }
    }
    s.push_str("# HELP portcullis_authorization_condition_errors_total Rule conditions that failed to evaluate (the rule did not match).\n");
    s.push_str("# TYPE portcullis_authorization_condition_errors_total counter\n");
    let _ = writeln!(s, "portcullis_authorization_condition_errors_total {}", st.condition_errors);
    s.push_str("# HELP portcullis_tls_handshakes_total TLS handshakes on tls listeners by result.\n");
    s.push_str("# TYPE portcullis_tls_handshakes_total counter\n");
    let _ = writeln!(s, "portcullis_tls_handshakes_total{{result=\"ok\"}} {}", st.tls_handshakes);
    let _ = writeln!(s, "portcullis_tls_handshakes_total{{result=\"failed\"}} {}", st.tls_handshake_failures);
    let gauges: [(&str, &str, &str, u64); 8] = [
        (
            "portcullis_upstream_connections_total",
            "counter",
            "Upstream connections opened.",
            st.upstream_connects,
        ),
        (
            "portcullis_upstream_reused_total",
            "counter",
            "Upstream requests on a pooled connection.",
            st.upstream_reuses,
        ),
        ("portcullis_connections_open", "gauge", "Client connections open.", st.connections_open),
        ("portcullis_connections_total", "counter", "Client connections accepted.", st.connections_total),
        (
            "portcullis_connections_rejected_total",
            "counter",
            "Connections refused at maxConnectionsPerWorker.",
            st.connections_rejected,
        ),
        (
            "portcullis_config_reloads_total",
            "counter",
            "Successful configuration reloads.",
            state.reloader.ok.load(Ordering::Relaxed),
        ),
        (
            "portcullis_config_reload_failures_total",
            "counter",
            "Rejected configuration reloads.",
            state.reloader.failed.load(Ordering::Relaxed),
        ),
        ("portcullis_workers", "gauge", "Worker threads.", state.scraper.workers() as u64),
    ];
    for (name, kind, help, v) in gauges {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
    }
    s
}
