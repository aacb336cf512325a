//! Logging that never blocks a worker: env_logger formats each record (filter from `RUST_LOG`,
//! default `info`) and hands the bytes to a bounded channel; one thread writes them to stderr.
//! A slow or stalled stderr (a throttled journal, a full pipe) costs dropped lines, counted and
//! reported, instead of every core waiting on the stderr lock.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

/// Lines buffered between the workers and the writer thread.
const QUEUE: usize = 16 * 1024;

struct ChannelWriter {
    tx: SyncSender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.tx.try_send(buf.to_vec()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the logger. Call once, before any worker starts.
pub fn init() {
    let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let seen = dropped.clone();
    let writer = std::thread::Builder::new().name("portcullis-log".into()).spawn(move || {
        let mut reported = 0;
        while let Ok(line) = rx.recv() {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&line);
            let now = seen.load(Ordering::Relaxed);
            if now != reported {
                let _ = writeln!(err, "[portcullis] {} log line(s) dropped: stderr too slow", now - reported);
                reported = now;
            }
        }
    });
    let target = match writer {
        Ok(_) => env_logger::Target::Pipe(Box::new(ChannelWriter { tx, dropped })),
        // Without the writer thread, fall back to writing directly.
        Err(_) => env_logger::Target::Stderr,
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).target(target).init();
}
