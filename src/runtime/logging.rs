//! Logging that never blocks a worker: records are formatted on the calling thread and handed
//! whole to a bounded channel; one thread writes them to stderr. A slow or stalled stderr (a
//! throttled journal, a full pipe) costs dropped lines, counted and reported, instead of every
//! core waiting on the stderr lock.
//!
//! What is written follows the configuration's `log` block ([`apply`], at start and on every
//! reload): the level, the format (env_logger's text lines, or one JSON object per line) and
//! whether access lines are written. `RUST_LOG`, when set, overrides the level with its own
//! filter (per target, e.g. `RUST_LOG=info,access=off`).
//!
//! Access lines (one per request, target `access`) do not go through the `log` facade: a worker
//! formats them into its batch buffer ([`Lines`]) and sends the batch when it holds 64 KiB or
//! 100 ms passed (one channel hand-over, one writer wake-up and one `write` per batch: per line,
//! those cost 30% of full-load throughput; per 16 KiB batch still ~1%, the writer sharing the
//! workers' cores); the writer thread sends the buffer back for reuse, so the access log
//! allocates nothing in steady state.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

use crate::config::snapshot::{LogFormat, LogSettings};

/// Lines buffered between the workers and the writer thread.
const QUEUE: usize = 16 * 1024;

/// Emptied access-line buffers a worker keeps for reuse.
const SPARE: usize = 64;

/// A worker ships its access lines in batches of about this size (or every
/// [`ACCESS_FLUSH`]): one hand-over and one `write` per batch rather than per line.
const BATCH: usize = 64 * 1024;

/// How long an access line may wait in a worker's batch.
pub const ACCESS_FLUSH: std::time::Duration = std::time::Duration::from_millis(100);

/// Access-line buffers that grew past this are not kept for reuse.
const KEEP_BELOW: usize = 4 * BATCH;

/// A line for the writer thread, and where to send its buffer back once written.
type Line = (Vec<u8>, Option<SyncSender<Vec<u8>>>);

/// The writer thread's end, once [`init`] ran.
struct Sink {
    tx: SyncSender<Line>,
    dropped: Arc<AtomicU64>,
    /// `RUST_LOG` is set: its filter decides, not the configured level.
    env_filter: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// The configured level (a `log::LevelFilter` as usize), format and access switch.
static LEVEL: AtomicUsize = AtomicUsize::new(log::LevelFilter::Info as usize);
static JSON: AtomicBool = AtomicBool::new(false);
static ACCESS: AtomicBool = AtomicBool::new(true);

fn send(sink: &Sink, line: Line) {
    match sink.tx.try_send(line) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
            sink.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// env_logger's output: each formatted record arrives in one `write`.
struct ChannelWriter;

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(sink) = SINK.get() {
            send(sink, (buf.to_vec(), None));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The installed logger: env_logger formats (text, or JSON through [`json_record`]); the level
/// is `RUST_LOG`'s filter when set, else the configured one.
struct Logger {
    text: env_logger::Logger,
    json: env_logger::Logger,
    env_filter: bool,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        if self.env_filter {
            self.text.enabled(m)
        } else {
            m.level() as usize <= LEVEL.load(Ordering::Relaxed)
        }
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if JSON.load(Ordering::Relaxed) {
            self.json.log(record);
        } else {
            self.text.log(record);
        }
    }

    fn flush(&self) {}
}

/// Writes what is formatted into it JSON-escaped (no quotes) into an `io::Write`, as a
/// `fmt::Write`, each fragment escaped by `mcp::json` through one scratch buffer per record (only
/// the rare non-access records take this path).
struct Escaping<'w, W: Write>(&'w mut W, Vec<u8>);

impl<W: Write> std::fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.1.clear();
        crate::mcp::json::write_escaped(&mut self.1, s);
        self.0.write_all(&self.1).map_err(|_| std::fmt::Error)
    }
}

/// One record as a JSON object: `{"ts":...,"level":...,"target":...,"msg":...}`.
fn json_record(buf: &mut env_logger::fmt::Formatter, record: &log::Record<'_>) -> std::io::Result<()> {
    use std::fmt::Write as _;
    write!(buf, "{{\"ts\":\"{}\",\"level\":\"{}\",\"target\":\"", buf.timestamp_millis(), record.level())?;
    let _ = write!(Escaping(buf, Vec::new()), "{}", record.target());
    buf.write_all(b"\",\"msg\":\"")?;
    let _ = write!(Escaping(buf, Vec::new()), "{}", record.args());
    buf.write_all(b"\"}\n")
}

/// Installs the logger (level `info`, text, until [`apply`] says otherwise). Call once, before
/// any worker starts.
pub fn init() {
    let (tx, rx) = sync_channel::<Line>(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let seen = dropped.clone();
    let writer = std::thread::Builder::new().name("portcullis-log".into()).spawn(move || {
        let mut reported = 0;
        while let Ok((line, back)) = rx.recv() {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&line);
            let now = seen.load(Ordering::Relaxed);
            if now != reported {
                let _ = writeln!(err, "[portcullis] {} log line(s) dropped: stderr too slow", now - reported);
                reported = now;
            }
            drop(err);
            if let Some(back) = back {
                if line.capacity() <= KEEP_BELOW {
                    let _ = back.try_send(line);
                }
            }
        }
    });
    let env_filter = std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty());
    let target = || match writer.is_ok() {
        true => env_logger::Target::Pipe(Box::new(ChannelWriter)),
        // Without the writer thread, fall back to writing directly.
        false => env_logger::Target::Stderr,
    };
    let builder = || {
        let mut b = env_logger::Builder::new();
        if env_filter {
            b.parse_default_env();
        } else {
            // The configured level is checked by `Logger::enabled`.
            b.filter_level(log::LevelFilter::Trace);
        }
        b.target(target());
        b
    };
    let text = builder().build();
    let json = builder().format(json_record).build();
    let max = if env_filter { text.filter() } else { log::LevelFilter::Info };
    if writer.is_ok() {
        let _ = SINK.set(Sink { tx, dropped, env_filter });
    }
    let logger: &'static Logger = Box::leak(Box::new(Logger { text, json, env_filter }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(max);
    }
}

/// Applies the configuration's `log` block: level (unless `RUST_LOG` is set), format, access
/// lines. Called when a configuration is published; cheap, and harmless without [`init`].
pub fn apply(settings: &LogSettings) {
    LEVEL.store(settings.level as usize, Ordering::Relaxed);
    JSON.store(settings.format == LogFormat::Json, Ordering::Relaxed);
    ACCESS.store(settings.access, Ordering::Relaxed);
    if let Some(sink) = SINK.get() {
        if !sink.env_filter {
            log::set_max_level(settings.level);
        }
    }
}

/// The format of access lines, or `None` when they are not written (no logger, `access:
/// false`, or a level or `RUST_LOG` filter that leaves out `access` at info).
#[inline]
pub fn access_format() -> Option<LogFormat> {
    if !ACCESS.load(Ordering::Relaxed) || !log::log_enabled!(target: "access", log::Level::Info) {
        return None;
    }
    SINK.get()?;
    Some(if JSON.load(Ordering::Relaxed) { LogFormat::Json } else { LogFormat::Text })
}

/// Where a [`Lines`] batch goes: a writer thread's queue, with the channel the written buffer
/// comes back on.
pub type Ship = fn(Vec<u8>, SyncSender<Vec<u8>>);

/// A worker's line batch (access lines, or the audit trail): a line is appended to
/// [`Lines::buffer`] and given back with [`Lines::send`], which hands the batch to the writer
/// thread once it is large enough; [`Lines::flush`] (the worker's timer) sends what is pending.
/// Written batches come back here.
pub struct Lines {
    spare: Receiver<Vec<u8>>,
    back: SyncSender<Vec<u8>>,
    pending: std::cell::RefCell<Vec<u8>>,
    ship: Ship,
}

impl Default for Lines {
    /// Access lines, to the log writer.
    fn default() -> Self {
        Lines::to(|batch, back| {
            if let Some(sink) = SINK.get() {
                send(sink, (batch, Some(back)));
            }
        })
    }
}

impl Lines {
    /// Batches handed to `ship`.
    pub fn to(ship: Ship) -> Lines {
        let (back, spare) = sync_channel(SPARE);
        Lines { spare, back, pending: std::cell::RefCell::new(Vec::new()), ship }
    }

    /// The batch to append the next line to (a returned buffer when a new batch starts).
    pub fn buffer(&self) -> Vec<u8> {
        let batch = std::mem::take(&mut *self.pending.borrow_mut());
        if batch.capacity() > 0 {
            return batch;
        }
        match self.spare.try_recv() {
            Ok(mut b) => {
                b.clear();
                b
            }
            Err(_) => Vec::with_capacity(BATCH + 1024),
        }
    }

    /// Gives the batch back with a complete line (ending in a newline) appended; a full batch
    /// goes to the writer thread (dropped, and counted, when its queue is full).
    pub fn send(&self, batch: Vec<u8>) {
        if batch.len() >= BATCH {
            self.ship(batch);
        } else {
            *self.pending.borrow_mut() = batch;
        }
    }

    /// Sends the pending lines, if any.
    pub fn flush(&self) {
        let batch = std::mem::take(&mut *self.pending.borrow_mut());
        if batch.is_empty() {
            *self.pending.borrow_mut() = batch;
        } else {
            self.ship(batch);
        }
    }

    fn ship(&self, batch: Vec<u8>) {
        (self.ship)(batch, self.back.clone());
    }
}
