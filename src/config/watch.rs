//! Reload: compile the new file completely, then publish it with one arc-swap store. A file with
//! errors changes nothing; its errors are logged and returned (admin `POST /reload`). Triggers
//! (SIGHUP, file change, admin) live in `runtime`; they all call [`Reloader::reload`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::compile;
use crate::config::snapshot::Snapshot;

/// Where the config comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// The embedded demo.
    Demo,
    /// A file on disk.
    File(PathBuf),
}

impl Source {
    /// Compiles the source.
    pub fn compile(&self) -> Result<Snapshot, Vec<String>> {
        self.compile_for(compile::Purpose::Serve)
    }

    /// Compiles the source for a [`compile::Purpose`].
    pub fn compile_for(&self, purpose: compile::Purpose) -> Result<Snapshot, Vec<String>> {
        match self {
            Source::Demo => compile::compile_text_for(
                crate::config::DEMO,
                &|n| std::env::var(n).ok(),
                compile::Syntax::Yaml,
                purpose,
            ),
            Source::File(p) => compile::compile_file_for(p, purpose),
        }
    }
}

/// Owns the published snapshot and the reload counters.
pub struct Reloader {
    /// Where to read the config from.
    pub source: Source,
    /// The snapshot every worker reads.
    pub current: Arc<ArcSwap<Snapshot>>,
    /// Successful reloads.
    pub ok: AtomicU64,
    /// Failed reloads.
    pub failed: AtomicU64,
    // Reloads come from three threads (signals, file watcher, admin); they must not interleave a
    // compare-and-publish. Control plane only, never touched by a request.
    #[allow(clippy::disallowed_types)]
    serial: std::sync::Mutex<()>,
}

impl Reloader {
    /// A reloader publishing `initial`. Publishing applies the snapshot's process-wide
    /// settings (the `log` block) too.
    pub fn new(source: Source, initial: Snapshot) -> Reloader {
        crate::runtime::logging::apply(&initial.log);
        crate::runtime::audit::configure(initial.audit.as_deref());
        crate::runtime::otlp::configure(initial.tracing.as_ref());
        Reloader {
            source,
            current: Arc::new(ArcSwap::from_pointee(initial)),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            #[allow(clippy::disallowed_types)]
            serial: std::sync::Mutex::new(()),
        }
    }

    /// Compiles the source again and publishes it. Settings bound at start-up (listeners,
    /// workers, admin address) keep their running values; a change to them is reported.
    pub fn reload(&self) -> Result<Vec<String>, Vec<String>> {
        let _guard = self.serial.lock().unwrap_or_else(|p| p.into_inner());
        match self.source.compile() {
            Ok(mut next) => {
                let cur = self.current.load();
                let mut notes = std::mem::take(&mut next.warnings);
                if next.listen != cur.listen || next.workers != cur.workers || next.admin != cur.admin {
                    notes.push("listen, workers and admin changes take effect after a restart".into());
                    next.listen = cur.listen.clone();
                    next.listen_tls = cur.listen_tls.clone();
                    next.workers = cur.workers;
                    next.admin = cur.admin;
                }
                next.carry_over(&cur);
                crate::runtime::logging::apply(&next.log);
                crate::runtime::audit::configure(next.audit.as_deref());
                crate::runtime::otlp::configure(next.tracing.as_ref());
                self.current.store(Arc::new(next));
                self.ok.fetch_add(1, Ordering::Relaxed);
                for n in &notes {
                    log::warn!("reload: {n}");
                }
                log::info!("reload: new configuration published");
                Ok(notes)
            }
            Err(errors) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                for e in &errors {
                    log::error!("reload rejected: {e}");
                }
                Err(errors)
            }
        }
    }
}
