//! The span exporter (`tracing.otlp`): one thread, off the workers. Workers hand it batches of
//! finished spans, already in their protobuf bytes (`otlp_wire`), through a bounded queue (a full
//! queue drops the batch, counted: `portcullis_trace_spans_dropped_total`); it collects them and
//! POSTs them as an OTLP `ExportTraceServiceRequest` when 512 are pending or a second
//! has passed, retries twice with backoff, and drops what it cannot deliver (counted). A
//! collector that is down never slows a request: only this thread waits on it. Each publication
//! of a configuration ([`configure`]) gives it the endpoint, headers and service name in force.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::otlp_wire::{Head, SpanWriter, Spans};
use crate::config::snapshot::Tracing;

/// Batches queued for the exporter.
const QUEUE: usize = 256;
/// Spans sent in one request.
const EXPORT_BATCH: usize = 512;
/// Longest a span waits before it is sent.
const EXPORT_AFTER: Duration = Duration::from_secs(1);
/// Most spans pending when the collector does not keep up; newer ones are dropped.
const MAX_PENDING: usize = 8192;
/// One export's connect, write and read bound.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

enum Msg {
    Spans(Spans),
    Configure(Option<Arc<Tracing>>),
}

static SINK: OnceLock<SyncSender<Msg>> = OnceLock::new();
/// Whether the configuration in force exports spans (for threads outside the workers).
static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether spans are exported now.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}
static DROPPED: AtomicU64 = AtomicU64::new(0);
static EXPORTED: AtomicU64 = AtomicU64::new(0);

/// Spans dropped so far (a queue or the pending set full, or a collector that did not take them).
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Spans delivered so far.
pub fn exported() -> u64 {
    EXPORTED.load(Ordering::Relaxed)
}

/// Counts `n` spans dropped.
pub fn count_dropped(n: usize) {
    DROPPED.fetch_add(n as u64, Ordering::Relaxed);
}

/// Hands a worker's spans to the exporter; a full queue (or no exporter) drops them, counted.
pub fn ship(spans: Spans) {
    let n = spans.count;
    match SINK.get().map(|tx| tx.try_send(Msg::Spans(spans))) {
        Some(Ok(())) => {}
        Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => count_dropped(n),
    }
}

/// Spans a worker holds until its next hand-over to the exporter thread, written in their wire
/// bytes (bounded: past [`MAX_HELD`] the newest are dropped and counted).
#[derive(Default)]
pub struct Held {
    spans: std::cell::RefCell<Spans>,
}

/// Spans a worker holds between hand-overs.
pub const MAX_HELD: usize = 4096;

/// A worker hands its spans over when it holds this many (or on its 100 ms timer).
const HAND_OVER: usize = 256;

impl Held {
    /// Writes a span ending now: `attributes` adds its attributes (and marks a failure).
    pub fn span(&self, head: &Head, name: [&[u8]; 3], attributes: impl FnOnce(&mut SpanWriter<'_>)) {
        let mut held = self.spans.borrow_mut();
        if held.count >= MAX_HELD {
            count_dropped(1);
            return;
        }
        let mut w = SpanWriter::begin(&mut held.bytes, head, name);
        attributes(&mut w);
        w.finish(crate::proxy::spans::now_nanos());
        held.count += 1;
        if held.count >= HAND_OVER {
            ship(Self::take(&mut held));
        }
    }

    /// Hands what is held to the exporter (the worker's timer).
    pub fn flush(&self) {
        let mut held = self.spans.borrow_mut();
        if held.count > 0 {
            ship(Self::take(&mut held));
        }
    }

    /// What is held, leaving an empty buffer of the same capacity (one allocation per
    /// hand-over rather than a buffer growing again from nothing, copied at each step).
    fn take(held: &mut Spans) -> Spans {
        let capacity = held.bytes.capacity();
        std::mem::replace(held, Spans { bytes: Vec::with_capacity(capacity), count: 0 })
    }
}

/// Applies a configuration's `tracing` (starting the exporter the first time one is named).
pub fn configure(tracing: Option<&Arc<Tracing>>) {
    ENABLED.store(tracing.is_some(), Ordering::Relaxed);
    if SINK.get().is_none() && tracing.is_none() {
        return;
    }
    let tx = SINK.get_or_init(|| {
        let (tx, rx) = sync_channel(QUEUE);
        let spawned = std::thread::Builder::new().name("portcullis-otlp".into()).spawn(move || run(rx));
        if let Err(e) = spawned {
            log::error!("tracing: cannot start the exporter thread: {e}");
        }
        tx
    });
    let _ = tx.send(Msg::Configure(tracing.cloned()));
}

fn run(rx: Receiver<Msg>) {
    // Off the request path: the allocation tests count the workers.
    #[cfg(feature = "count-allocs")]
    crate::alloc_count::ignore_this_thread();
    let mut settings: Option<Arc<Tracing>> = None;
    let mut pending = Spans::default();
    let mut since: Option<Instant> = None;
    let mut body = Vec::new();
    loop {
        let wait = since.map_or(Duration::from_secs(3600), |s| EXPORT_AFTER.saturating_sub(s.elapsed()));
        match rx.recv_timeout(wait) {
            Ok(Msg::Configure(t)) => settings = t,
            Ok(Msg::Spans(batch)) => {
                // A batch is kept whole or dropped whole (counted).
                if pending.count + batch.count > MAX_PENDING {
                    count_dropped(batch.count);
                } else {
                    pending.bytes.extend_from_slice(&batch.bytes);
                    pending.count += batch.count;
                    since.get_or_insert_with(Instant::now);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let due = since.is_some_and(|s| s.elapsed() >= EXPORT_AFTER);
        if pending.count >= EXPORT_BATCH || (due && pending.count > 0) {
            // Everything pending goes (at most a hand-over's worth over EXPORT_BATCH).
            since = None;
            match &settings {
                Some(s) => export(s, &pending, &mut body),
                None => count_dropped(pending.count),
            }
            pending.bytes.clear();
            pending.count = 0;
        }
    }
}

/// Sends `batch`, retrying twice (after 200 ms, then 800 ms); drops it after that.
fn export(settings: &Tracing, batch: &Spans, body: &mut Vec<u8>) {
    let n = batch.count;
    super::otlp_wire::envelope(&settings.service_name, &batch.bytes, body);
    let mut backoff = Duration::from_millis(200);
    for attempt in 0..3 {
        match post(settings, body) {
            Ok(status) if (200..300).contains(&status) => {
                EXPORTED.fetch_add(n as u64, Ordering::Relaxed);
                return;
            }
            // A 4xx other than 429 will not get better by retrying.
            Ok(status) if (400..500).contains(&status) && status != 429 => {
                log::warn!("tracing: the collector refused {n} span(s): HTTP {status}");
                break;
            }
            Ok(status) => log::debug!("tracing: export attempt {attempt}: HTTP {status}"),
            Err(e) => log::debug!("tracing: export attempt {attempt}: {e}"),
        }
        if attempt < 2 {
            std::thread::sleep(backoff);
            backoff *= 4;
        }
    }
    count_dropped(n);
}

/// One POST of `body` to the endpoint (http, or https through rustls); the status.
fn post(settings: &Tracing, body: &[u8]) -> std::io::Result<u16> {
    let t = &settings.endpoint;
    let mut head = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\nconnection: close\r\n",
        t.path,
        t.authority,
        body.len()
    );
    for (k, v) in &settings.headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let tcp = std::net::TcpStream::connect_timeout(&t.addr, EXPORT_TIMEOUT)?;
    tcp.set_read_timeout(Some(EXPORT_TIMEOUT))?;
    tcp.set_write_timeout(Some(EXPORT_TIMEOUT))?;
    let mut answer = Vec::new();
    match &t.tls {
        None => exchange(tcp, head.as_bytes(), body, &mut answer)?,
        Some(tls) => {
            let conn = rustls::ClientConnection::new(tls.config.clone(), tls.name.clone())
                .map_err(std::io::Error::other)?;
            exchange(rustls::StreamOwned::new(conn, tcp), head.as_bytes(), body, &mut answer)?;
        }
    }
    let code = answer.get(9..12).and_then(|c| std::str::from_utf8(c).ok()).and_then(|c| c.parse().ok());
    code.ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}

fn exchange(mut s: impl Read + Write, head: &[u8], body: &[u8], answer: &mut Vec<u8>) -> std::io::Result<()> {
    s.write_all(head)?;
    s.write_all(body)?;
    s.flush()?;
    // The status line is enough; read a little (bounded) and let the connection close.
    let mut buf = [0u8; 512];
    while answer.len() < 12 {
        match s.read(&mut buf)? {
            0 => break,
            n => answer.extend_from_slice(&buf[..n]),
        }
    }
    Ok(())
}
