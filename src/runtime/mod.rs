//! Threads and their lifetimes: one pinned monoio worker per core, each with its own
//! SO_REUSEPORT listener or a share of an inherited one ([`listen`]); the admin thread; the
//! config file watcher. [`Gateway`] starts them, fans reloads and drains out, and joins them.
//! Only this module spawns threads.
//!
//! Workers share nothing mutable: they read the published snapshot through arc-swap and receive
//! channel messages (drain, statistics scrape, session terminations).

pub mod audit;
pub mod listen;
pub mod logging;
pub mod memory;
pub mod otlp;
pub mod otlp_wire;
pub mod pins;
pub mod scrape;
mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::admin;
use crate::config::watch::{Reloader, Source};
use crate::proxy::caches::RevocationBus;
use crate::runtime::scrape::Scraper;

/// A running gateway.
pub struct Gateway {
    addrs: Vec<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    reloader: Arc<Reloader>,
    drains: Vec<futures_channel::oneshot::Sender<()>>,
    workers: Vec<JoinHandle<()>>,
    ready: Arc<admin::Readiness>,
    stop: Arc<AtomicBool>,
    others: Vec<JoinHandle<()>>,
}

impl Gateway {
    /// Starts workers, admin and (for a file source) the watcher; every `listen` address is
    /// bound with `SO_REUSEPORT`.
    pub fn start(reloader: Arc<Reloader>) -> std::io::Result<Gateway> {
        Gateway::start_with(reloader, Vec::new(), false)
    }

    /// [`Gateway::start`] with listening sockets a supervisor passed (see [`listen::inherited`]):
    /// each serves the `listen` entry with its address; the other entries are bound. An address
    /// another process listens on is refused unless `takeover` (an upgrade: both processes
    /// serve it while the old one drains).
    pub fn start_with(
        reloader: Arc<Reloader>,
        inherited: Vec<std::net::TcpListener>,
        takeover: bool,
    ) -> std::io::Result<Gateway> {
        let snap = reloader.current.load_full();
        let mut sources = listen::plan(&snap.listen, inherited)?;
        if !takeover {
            for s in &sources {
                if let listen::Source::Bind(addr) = s {
                    listen::ensure_free(*addr)?;
                }
            }
        }
        let n = snap.workers.max(1);
        let (bus, revoked_rxs) = RevocationBus::new(n);
        let (handoffs, handoff_rxs) = crate::proxy::backends::pending::HandOffs::new(n);
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let pin = pin_workers(cores.len(), n);
        if !pin && !cores.is_empty() {
            log::info!(
                "{n} worker(s) may run on {} CPUs: not pinning them (the scheduler places them)",
                cores.len()
            );
        }
        let mut workers = Vec::with_capacity(n);
        let mut drains = Vec::with_capacity(n);
        let mut scrapers = Vec::with_capacity(n);
        for (i, (revoked_rx, handoff_rx)) in revoked_rxs.into_iter().zip(handoff_rxs).enumerate() {
            let (drain_tx, drain_rx) = futures_channel::oneshot::channel();
            let (scrape_tx, scrape_rx) = futures_channel::mpsc::unbounded();
            let (ready_tx, ready_rx) = mpsc::channel();
            let spec = worker::Spec {
                index: i,
                sources: sources.iter().map(listen::Source::for_worker).collect::<std::io::Result<_>>()?,
                core: if pin { cores.get(i % cores.len()).copied() } else { None },
                snapshot: reloader.current.clone(),
                bus: bus.clone(),
                revoked_rx,
                drain_rx,
                scrape_rx,
                handoffs: handoffs.clone(),
                handoff_rx,
                ready_tx,
            };
            let handle = std::thread::Builder::new()
                .name(format!("portcullis-w{i}"))
                .spawn(move || worker::run(spec))?;
            // Worker 0 binds first so that port 0 resolves once; the others join its ports.
            match ready_rx.recv() {
                Ok(Ok(bound)) => {
                    for (s, a) in sources.iter_mut().zip(&bound) {
                        if let listen::Source::Bind(want) = s {
                            *want = *a;
                        }
                    }
                }
                Ok(Err(e)) => {
                    for d in drains {
                        let _: Result<(), ()> = futures_channel::oneshot::Sender::send(d, ());
                    }
                    let _ = handle.join();
                    return Err(e);
                }
                Err(_) => return Err(std::io::Error::other("worker exited during start-up")),
            }
            workers.push(handle);
            drains.push(drain_tx);
            scrapers.push(scrape_tx);
        }
        let ready = Arc::new(admin::Readiness::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut others = Vec::new();
        let scraper = Arc::new(Scraper { senders: scrapers });
        let mut admin_addr = None;
        if let Some(a) = snap.admin {
            let (bound, handle) = admin::start(a, reloader.clone(), scraper, ready.clone(), stop.clone())?;
            admin_addr = Some(bound);
            others.push(handle);
        }
        // JWKS URIs are fetched off the request path; the first fetch is awaited (bounded) so
        // a fresh gateway does not refuse valid tokens for want of keys.
        let r = reloader.clone();
        let st = stop.clone();
        others.push(
            std::thread::Builder::new().name("portcullis-jwks".into()).spawn(move || jwks_fetcher(r, st))?,
        );
        let first_fetch = Instant::now() + JWKS_START_WAIT;
        while !snap.key_sources().iter().all(|s| s.fetched()) && Instant::now() < first_fetch {
            std::thread::sleep(Duration::from_millis(10));
        }
        for s in snap.key_sources().iter().filter(|s| !s.fetched()) {
            log::warn!(
                "jwks {}: no keys yet; tokens are refused until a fetch succeeds",
                s.remote.as_ref().map_or("", |r| &r.uri)
            );
        }
        if let Source::File(path) = &reloader.source {
            let path = path.clone();
            let (r, st) = (reloader.clone(), stop.clone());
            others.push(
                std::thread::Builder::new()
                    .name("portcullis-watch".into())
                    .spawn(move || watch(path, r, st))?,
            );
        }
        let addrs = sources
            .iter()
            .map(|s| match s {
                listen::Source::Bind(a) => Ok(*a),
                listen::Source::Shared(l) => l.local_addr(),
            })
            .collect::<std::io::Result<_>>()?;
        // Workers serve, the admin answers, the first JWKS fetches are done (or waited for).
        ready.set_ready();
        Ok(Gateway { addrs, admin_addr, reloader, drains, workers, ready, stop, others })
    }

    /// The data-plane addresses actually bound (port 0 resolved).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The admin address actually bound.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The reloader (SIGHUP calls it).
    pub fn reloader(&self) -> &Arc<Reloader> {
        &self.reloader
    }

    /// Graceful shutdown: stop accepting, let in-flight requests finish up to the configured
    /// deadline, then stop. Returns when every thread has exited (or the deadline passed).
    pub fn shutdown(self) {
        self.ready.set_draining();
        for d in self.drains {
            let _ = d.send(());
        }
        let grace = self.reloader.current.load().shutdown_grace;
        let deadline = Instant::now() + grace + Duration::from_secs(2);
        for w in self.workers {
            while !w.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if w.is_finished() {
                let _ = w.join();
            } else {
                log::warn!("a worker did not finish draining before the deadline");
            }
        }
        self.stop.store(true, Ordering::SeqCst);
        for o in self.others {
            let _ = o.join();
        }
    }
}

/// Whether worker *i* is pinned to the *i*-th CPU of the process's affinity mask: only when the
/// workers cover every CPU the process may run on, so that each CPU is the gateway's (exclusive
/// CPUs from a cpuset, systemd `CPUAffinity=`, or the whole machine). With more CPUs allowed than
/// workers (a CPU quota, a shared Kubernetes node) every such process would pin to the first
/// CPUs of the mask and crowd them while the rest idle.
fn pin_workers(allowed_cpus: usize, workers: usize) -> bool {
    allowed_cpus > 0 && allowed_cpus <= workers
}

/// How long start-up waits for the first JWKS fetches.
const JWKS_START_WAIT: Duration = Duration::from_secs(5);

/// The JWKS fetcher thread: its own monoio runtime and connection pool, fetching the current
/// snapshot's `uri` key sources as they fall due (see `auth::jwks`).
fn jwks_fetcher(reloader: Arc<Reloader>, stop: Arc<AtomicBool>) {
    let rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new().enable_timer().build();
    let mut rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("jwks fetcher: cannot start a runtime: {e}");
            return;
        }
    };
    let limits = {
        let snap = reloader.current.load();
        crate::upstream::client::Limits {
            connect: snap.limits.upstream_connect_timeout,
            response: snap.limits.upstream_timeout.min(Duration::from_secs(10)),
            max_body: 0,
        }
    };
    let sources = move || reloader.current.load().key_sources();
    // A key fetch is a CLIENT span of its own trace (no request asked for it).
    let traced = |authority: &str, start: std::time::SystemTime, error: Option<String>| {
        if !otlp::enabled() {
            return;
        }
        let start = start.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        crate::proxy::spans::root_client("jwks fetch", start, |w| {
            w.str("server.address", authority);
            w.str("http.request.method", "GET");
            if let Some(e) = &error {
                w.fail(e);
            }
        });
    };
    rt.block_on(crate::auth::jwks::run(sources, traced, limits, stop, Duration::from_millis(100)));
}

/// How often backend host names are looked up again.
const DNS_RECHECK: Duration = Duration::from_secs(30);

/// Backend host names whose address in `snap` is no longer among the addresses `resolve` gives
/// for them now, as `name: old -> new`. A failed lookup keeps the address that works.
fn moved_backends(
    snap: &crate::config::snapshot::Snapshot,
    resolve: impl Fn(&str) -> std::io::Result<Vec<SocketAddr>>,
) -> Vec<String> {
    let mut checked: Vec<(String, SocketAddr)> = Vec::new();
    let mut moved = Vec::new();
    for t in snap.upstream_targets() {
        let Some(name) = t.lookup_name() else { continue };
        if checked.iter().any(|(n, a)| *n == name && *a == t.addr) {
            continue;
        }
        match resolve(&name) {
            Ok(now) if !now.is_empty() && !now.contains(&t.addr) => {
                moved.push(format!("{name}: {} -> {}", t.addr, now[0]));
            }
            Ok(_) => {}
            Err(e) => log::debug!("looking up {name} again: {e}"),
        }
        checked.push((name, t.addr));
    }
    moved
}

/// Polls the config file and the files it references (certificates, keys, CA files, JWKS and
/// OpenAPI documents) four times a second, and reloads when the size or mtime of one changes.
/// Polling needs no extra dependency and sees ConfigMap symlink swaps that inotify watches can
/// miss. A reload that fails (a certificate that does not match its key) keeps what runs.
/// Every [`DNS_RECHECK`] it also looks backend host names up again and reloads (which resolves
/// them anew) when one no longer resolves to the address in use.
fn watch(path: std::path::PathBuf, reloader: Arc<Reloader>, stop: Arc<AtomicBool>) {
    let stamp = |p: &std::path::Path| std::fs::metadata(p).ok().map(|m| (m.len(), m.modified().ok()));
    let stamps = |files: &[std::path::PathBuf]| {
        std::iter::once(path.as_path())
            .chain(files.iter().map(|f| f.as_path()))
            .map(stamp)
            .collect::<Vec<_>>()
    };
    let mut files = reloader.current.load().files.clone();
    let mut last = stamps(&files);
    let mut next_lookup = Instant::now() + DNS_RECHECK;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(250));
        let now = stamps(&files);
        let mut why = None;
        if now != last && now[0].is_some() {
            last = now;
            why = Some("config file or a file it references changed".to_string());
        } else if Instant::now() >= next_lookup {
            next_lookup = Instant::now() + DNS_RECHECK;
            let moved = moved_backends(&reloader.current.load(), |name| {
                std::net::ToSocketAddrs::to_socket_addrs(name).map(Iterator::collect)
            });
            if !moved.is_empty() {
                why = Some(format!("backend addresses changed ({})", moved.join(", ")));
            }
        }
        if let Some(why) = why {
            log::info!("{why}; reloading");
            if reloader.reload().is_ok() {
                // The new configuration may reference other files.
                files = reloader.current.load().files.clone();
                last = stamps(&files);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn workers_are_pinned_only_when_they_cover_the_allowed_cpus() {
        assert!(pin_workers(8, 8), "workers: auto on a whole machine or an exclusive cpuset");
        assert!(pin_workers(2, 4), "more workers than CPUs: still one CPU each, round robin");
        assert!(!pin_workers(64, 2), "a quota or a shared node: the scheduler places them");
        assert!(!pin_workers(0, 2), "affinity unknown");
    }

    #[test]
    fn a_backend_whose_name_points_elsewhere_now_is_reported() {
        let snap = crate::config::compile::compile_str(
            "servers:\n  - name: a\n    backends:\n      - { name: by-name, url: 'http://localhost:9000/mcp' }\n      \
             - { name: by-ip, url: 'http://127.0.0.1:9001/mcp' }\n",
            &|_| None,
        )
        .unwrap();
        let current = snap.upstream_targets().find(|t| t.addr.port() == 9000).unwrap().addr;
        let asked = std::cell::RefCell::new(Vec::new());
        let resolve = |answer: std::io::Result<Vec<SocketAddr>>| {
            let asked = &asked;
            let answer = std::cell::RefCell::new(Some(answer));
            move |name: &str| {
                asked.borrow_mut().push(name.to_string());
                answer.borrow_mut().take().unwrap()
            }
        };
        // Still among the addresses (DNS may list them in any order): nothing to do.
        let elsewhere: SocketAddr = "10.0.0.7:9000".parse().unwrap();
        assert!(moved_backends(&snap, resolve(Ok(vec![elsewhere, current]))).is_empty());
        // Gone: reported. A failed lookup keeps the address that works.
        let moved = moved_backends(&snap, resolve(Ok(vec![elsewhere])));
        assert_eq!(moved, vec![format!("localhost:9000: {current} -> 10.0.0.7:9000")]);
        assert!(moved_backends(&snap, resolve(Err(std::io::Error::other("SERVFAIL")))).is_empty());
        // The IP-literal backend is never looked up.
        assert!(asked.borrow().iter().all(|n| n == "localhost:9000"), "{:?}", asked.borrow());
    }
}
