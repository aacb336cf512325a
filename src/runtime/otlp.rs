//! The span exporter (`tracing.otlp`): one thread, off the workers. Workers write finished spans
//! in their protobuf bytes (`otlp_wire`) into a buffer ([`Held`]) and hand it over whole, every
//! 64 KiB or on their 100 ms timer, through a bounded queue (a full queue drops the batch,
//! counted: `portcullis_trace_spans_dropped_total`). The exporter POSTs what it collected as one
//! OTLP `ExportTraceServiceRequest` when 2,048 spans are pending or a second has passed - the
//! workers' buffers written as they are after the envelope, never copied together - and gives
//! the buffers back to their workers for reuse. It retries twice with backoff and drops what it
//! cannot deliver (counted). A collector that is down never slows a request: only this thread
//! waits on it. Each publication of a configuration ([`configure`]) gives it the endpoint,
//! headers and service name in force.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::otlp_wire::{Head, SpanWriter, Spans};
use crate::config::snapshot::Tracing;

/// Batches queued for the exporter.
const QUEUE: usize = 256;
/// Spans sent in one request (at least; the last buffer taken may bring more).
const EXPORT_BATCH: usize = 2048;
/// Longest a span waits before it is sent.
const EXPORT_AFTER: Duration = Duration::from_secs(1);
/// Most spans pending when the collector does not keep up; newer ones are dropped.
const MAX_PENDING: usize = 8192;
/// One export's connect, write and read bound.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a worker takes its emptied span buffers back.
type Back = SyncSender<Vec<u8>>;

enum Msg {
    Spans(Spans, Option<Back>),
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

/// Hands spans to the exporter (their buffer comes back through `back` once sent); a full
/// queue (or no exporter) drops them, counted.
pub fn ship(spans: Spans, back: Option<Back>) {
    let n = spans.count;
    match SINK.get().map(|tx| tx.try_send(Msg::Spans(spans, back))) {
        Some(Ok(())) => {}
        Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => count_dropped(n),
    }
}

/// Spans a worker holds until its next hand-over to the exporter thread, written in their wire
/// bytes (bounded: past [`MAX_HELD`] the newest are dropped and counted), and the buffers the
/// exporter gave back.
pub struct Held {
    spans: std::cell::RefCell<Spans>,
    spare: Receiver<Vec<u8>>,
    back: Back,
}

/// Spans a worker holds between hand-overs.
pub const MAX_HELD: usize = 4096;

/// A worker hands its spans over when it holds this many bytes of them (or on its 100 ms
/// timer): small enough to stay in the core's cache while it is written.
const HAND_OVER: usize = 64 * 1024;

/// Emptied buffers waiting for their worker.
const SPARE: usize = 8;

impl Default for Held {
    fn default() -> Self {
        let (back, spare) = sync_channel(SPARE);
        Held { spans: std::cell::RefCell::default(), spare, back }
    }
}

impl Held {
    /// Writes a span ending now: `attributes` adds its attributes (and marks a failure).
    pub fn span(&self, head: &Head, name: [&[u8]; 3], attributes: impl FnOnce(&mut SpanWriter<'_>)) {
        let mut held = self.spans.borrow_mut();
        if held.count >= MAX_HELD {
            count_dropped(1);
            return;
        }
        if held.bytes.capacity() == 0 {
            held.bytes = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(HAND_OVER + 4096));
        }
        let mut w = SpanWriter::begin(&mut held.bytes, head, name);
        attributes(&mut w);
        w.finish(super::otlp_wire::now_nanos());
        held.count += 1;
        if held.bytes.len() >= HAND_OVER {
            ship(std::mem::take(&mut *held), Some(self.back.clone()));
        }
    }

    /// Hands what is held to the exporter (the worker's timer).
    pub fn flush(&self) {
        let mut held = self.spans.borrow_mut();
        if held.count > 0 {
            ship(std::mem::take(&mut *held), Some(self.back.clone()));
        }
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

/// Span buffers collected for the next export.
#[derive(Default)]
struct Pending {
    buffers: Vec<(Vec<u8>, Option<Back>)>,
    spans: usize,
    since: Option<Instant>,
}

impl Pending {
    /// Empties the buffers and gives each back to its worker (or drops it).
    fn give_back(&mut self) {
        for (mut b, back) in self.buffers.drain(..) {
            b.clear();
            if let Some(back) = back {
                let _ = back.try_send(b);
            }
        }
        self.spans = 0;
        self.since = None;
    }
}

fn run(rx: Receiver<Msg>) {
    // Off the request path: the allocation tests count the workers.
    #[cfg(feature = "count-allocs")]
    crate::alloc_count::ignore_this_thread();
    let mut settings: Option<Arc<Tracing>> = None;
    let mut pending = Pending::default();
    let mut head = Vec::new();
    loop {
        let wait =
            pending.since.map_or(Duration::from_secs(3600), |s| EXPORT_AFTER.saturating_sub(s.elapsed()));
        match rx.recv_timeout(wait) {
            Ok(Msg::Configure(t)) => settings = t,
            Ok(Msg::Spans(batch, back)) => {
                // A batch is kept whole or dropped whole (counted).
                if pending.spans + batch.count > MAX_PENDING {
                    count_dropped(batch.count);
                } else {
                    pending.spans += batch.count;
                    pending.buffers.push((batch.bytes, back));
                    pending.since.get_or_insert_with(Instant::now);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let due = pending.since.is_some_and(|s| s.elapsed() >= EXPORT_AFTER);
        if pending.spans >= EXPORT_BATCH || (due && pending.spans > 0) {
            match &settings {
                Some(s) => export(s, &pending, &mut head),
                None => count_dropped(pending.spans),
            }
            pending.give_back();
        }
    }
}

/// Sends what is pending, retrying twice (after 200 ms, then 800 ms); drops it after that.
fn export(settings: &Tracing, pending: &Pending, head: &mut Vec<u8>) {
    let n = pending.spans;
    let spans_len = pending.buffers.iter().map(|(b, _)| b.len()).sum();
    super::otlp_wire::envelope(&settings.service_name, spans_len, head);
    let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + pending.buffers.len());
    parts.push(head);
    parts.extend(pending.buffers.iter().map(|(b, _)| &b[..]));
    let mut backoff = Duration::from_millis(200);
    for attempt in 0..3 {
        match post(settings, &parts) {
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

/// One POST of the body made of `parts` to the endpoint (http, or https through rustls); the
/// status.
fn post(settings: &Tracing, parts: &[&[u8]]) -> std::io::Result<u16> {
    let body_len: usize = parts.iter().map(|p| p.len()).sum();
    let t = &settings.endpoint;
    let mut head = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\nconnection: close\r\n",
        t.path,
        t.authority,
        body_len
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
        None => {
            exchange(std::io::BufWriter::with_capacity(64 * 1024, tcp), head.as_bytes(), parts, &mut answer)?
        }
        Some(tls) => {
            let conn = rustls::ClientConnection::new(tls.config.clone(), tls.name.clone())
                .map_err(std::io::Error::other)?;
            let tls = rustls::StreamOwned::new(conn, tcp);
            exchange(std::io::BufWriter::with_capacity(64 * 1024, tls), head.as_bytes(), parts, &mut answer)?;
        }
    }
    let code = answer.get(9..12).and_then(|c| std::str::from_utf8(c).ok()).and_then(|c| c.parse().ok());
    code.ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}

fn exchange<S: Read + Write>(
    mut s: std::io::BufWriter<S>,
    head: &[u8],
    parts: &[&[u8]],
    answer: &mut Vec<u8>,
) -> std::io::Result<()> {
    s.write_all(head)?;
    for p in parts {
        s.write_all(p)?;
    }
    s.flush()?;
    let mut s = s.into_inner().map_err(|e| e.into_error())?;
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
