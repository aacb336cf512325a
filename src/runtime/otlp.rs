//! The span exporter (`tracing.otlp`): one thread, off the workers. Workers hand it batches of
//! finished spans through a bounded queue (a full queue drops the batch, counted:
//! `portcullis_trace_spans_dropped_total`); it collects them and POSTs them as an OTLP
//! `ExportTraceServiceRequest` (protobuf, `opentelemetry-proto`) when 512 are pending or a second
//! has passed, retries twice with backoff, and drops what it cannot deliver (counted). A
//! collector that is down never slows a request: only this thread waits on it. Each publication
//! of a configuration ([`configure`]) gives it the endpoint, headers and service name in force.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};

use crate::config::snapshot::Tracing;
use crate::proxy::spans;

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
    Spans(Vec<spans::Span>),
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
pub fn ship(spans: Vec<spans::Span>) {
    let n = spans.len();
    match SINK.get().map(|tx| tx.try_send(Msg::Spans(spans))) {
        Some(Ok(())) => {}
        Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => count_dropped(n),
    }
}

/// Spans a worker holds until its next hand-over to the exporter thread (bounded: past
/// [`MAX_HELD`] the newest are dropped and counted).
#[derive(Default)]
pub struct Held {
    spans: std::cell::RefCell<Vec<spans::Span>>,
}

/// Spans a worker holds between hand-overs.
pub const MAX_HELD: usize = 4096;

/// A worker hands its spans over when it holds this many (or on its 100 ms timer).
const HAND_OVER: usize = 256;

impl Held {
    /// Keeps `spans` for the exporter.
    pub fn push(&self, spans: impl IntoIterator<Item = spans::Span>) {
        let mut held = self.spans.borrow_mut();
        for s in spans {
            if held.len() >= MAX_HELD {
                count_dropped(1);
                continue;
            }
            held.push(s);
        }
        if held.len() >= HAND_OVER {
            ship(std::mem::take(&mut *held));
        }
    }

    /// Hands what is held to the exporter (the worker's timer).
    pub fn flush(&self) {
        let spans = std::mem::take(&mut *self.spans.borrow_mut());
        if !spans.is_empty() {
            ship(spans);
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

fn run(rx: Receiver<Msg>) {
    let mut settings: Option<Arc<Tracing>> = None;
    let mut pending: Vec<spans::Span> = Vec::new();
    let mut since: Option<Instant> = None;
    loop {
        let wait = since.map_or(Duration::from_secs(3600), |s| EXPORT_AFTER.saturating_sub(s.elapsed()));
        match rx.recv_timeout(wait) {
            Ok(Msg::Configure(t)) => settings = t,
            Ok(Msg::Spans(batch)) => {
                let room = MAX_PENDING.saturating_sub(pending.len());
                if batch.len() > room {
                    count_dropped(batch.len() - room);
                }
                pending.extend(batch.into_iter().take(room));
                since.get_or_insert_with(Instant::now);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let due = since.is_some_and(|s| s.elapsed() >= EXPORT_AFTER);
        if pending.len() >= EXPORT_BATCH || (due && !pending.is_empty()) {
            let batch: Vec<spans::Span> = pending.drain(..pending.len().min(EXPORT_BATCH)).collect();
            since = if pending.is_empty() { None } else { Some(Instant::now()) };
            match &settings {
                Some(s) => export(s, batch),
                None => count_dropped(batch.len()),
            }
        }
    }
}

/// Sends `batch`, retrying twice (after 200 ms, then 800 ms); drops it after that.
fn export(settings: &Tracing, batch: Vec<spans::Span>) {
    let n = batch.len();
    let mut body = Vec::new();
    super::otlp_wire::encode(&settings.service_name, &batch, &mut body, &mut Vec::new());
    let mut backoff = Duration::from_millis(200);
    for attempt in 0..3 {
        match post(settings, &body) {
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

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..KeyValue::default() }
}

/// The OTLP request for `batch` as `opentelemetry-proto`'s messages (the reference the wire
/// writer, `otlp_wire`, is checked against).
pub fn encode(settings: &Tracing, batch: Vec<spans::Span>) -> ExportTraceServiceRequest {
    let spans = batch
        .into_iter()
        .map(|s| Span {
            trace_id: s.trace.to_vec(),
            span_id: s.id.to_vec(),
            parent_span_id: s.parent.map(|p| p.to_vec()).unwrap_or_default(),
            flags: 0x101, // sampled; the parent's remoteness known
            status: Some(match &s.error {
                Some(_) => Status { code: status::StatusCode::Error as i32, message: String::new() },
                None => Status { code: status::StatusCode::Unset as i32, message: String::new() },
            }),
            name: s.name,
            kind: match s.kind {
                spans::Kind::Server => span::SpanKind::Server as i32,
                spans::Kind::Client => span::SpanKind::Client as i32,
            },
            start_time_unix_nano: s.start,
            end_time_unix_nano: s.end.max(s.start),
            attributes: s
                .attributes
                .into_iter()
                .map(|(k, v)| match v {
                    spans::Value::Str(t) => kv(k, any_value::Value::StringValue(t)),
                    spans::Value::Int(i) => kv(k, any_value::Value::IntValue(i)),
                })
                .chain(s.error.map(|e| kv("error.type", any_value::Value::StringValue(e))))
                .collect(),
            ..Span::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", any_value::Value::StringValue(settings.service_name.clone())),
                    kv("service.version", any_value::Value::StringValue(env!("CARGO_PKG_VERSION").into())),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "portcullis".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..InstrumentationScope::default()
                }),
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
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
