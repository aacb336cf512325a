//! The audit trail (`audit.file`): one JSON line per authorization decision, appended to a file
//! by one writer thread, off the workers.
//!
//! Workers format lines into their own batch ([`crate::runtime::logging::Lines`], shipped here
//! when it holds 64 KiB or every 100 ms) and hand whole batches to a bounded queue; a full queue
//! drops the batch and counts its lines ([`dropped`], `portcullis_audit_dropped_total`): a slow
//! disk never slows a request. Every publication of a configuration ([`configure`]: start,
//! `SIGHUP`, `POST /reload`, a changed file) reopens the file, so a rotated file (logrotate's
//! `create` or `copytruncate`) is followed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::OnceLock;

/// Batches queued for the writer (at most 256 x ~64 KiB = 16 MiB waiting for the disk).
const QUEUE: usize = 256;

enum Msg {
    /// Lines to append, and where their buffer goes back.
    Lines(Vec<u8>, SyncSender<Vec<u8>>),
    /// Open this file (append), closing the current one; `None` closes it.
    Open(Option<PathBuf>),
}

struct Sink {
    tx: SyncSender<Msg>,
}

static SINK: OnceLock<Sink> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Lines dropped so far (queue full, or no file open).
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

fn count_lines(batch: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', batch).count() as u64
}

/// Hands a worker's batch to the writer; a full queue drops it (counted). For
/// [`crate::runtime::logging::Lines::to`].
pub fn ship(batch: Vec<u8>, back: SyncSender<Vec<u8>>) {
    let n = count_lines(&batch);
    let Some(sink) = SINK.get() else {
        DROPPED.fetch_add(n, Ordering::Relaxed);
        return;
    };
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
        sink.tx.try_send(Msg::Lines(batch, back))
    {
        DROPPED.fetch_add(n, Ordering::Relaxed);
    }
}

/// Applies the configuration's `audit.file`: (re)opens it, or closes the trail when `None`.
/// Starts the writer thread the first time a file is named.
pub fn configure(file: Option<&Path>) {
    if SINK.get().is_none() && file.is_none() {
        return;
    }
    let sink = SINK.get_or_init(|| {
        let (tx, rx) = sync_channel::<Msg>(QUEUE);
        let spawned = std::thread::Builder::new().name("portcullis-audit".into()).spawn(move || {
            let mut out: Option<std::fs::File> = None;
            while let Ok(msg) = rx.recv() {
                match msg {
                    Msg::Open(path) => {
                        out = path.and_then(|p| match open(&p) {
                            Ok(f) => Some(f),
                            Err(e) => {
                                log::error!(
                                    "audit: cannot open {}: {e}; audit lines are dropped",
                                    p.display()
                                );
                                None
                            }
                        });
                    }
                    Msg::Lines(batch, back) => {
                        let written = out.as_mut().is_some_and(|f| f.write_all(&batch).is_ok());
                        if !written {
                            DROPPED.fetch_add(count_lines(&batch), Ordering::Relaxed);
                        }
                        let _ = back.try_send(batch);
                    }
                }
            }
        });
        if let Err(e) = spawned {
            log::error!("audit: cannot start the writer thread: {e}");
        }
        Sink { tx }
    });
    // Control messages wait for room: they are rare and must not be lost.
    let _ = sink.tx.send(Msg::Open(file.map(Path::to_path_buf)));
}

/// Opens `path` for appending, creating it (mode 0600 on Unix: the trail names principals).
pub fn open(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}
