//! One worker: a pinned thread running a monoio runtime (io_uring with cooperative task running,
//! or epoll where io_uring is unavailable or `MONOIO_FORCE_LEGACY_DRIVER=1`), its listeners (its
//! own SO_REUSEPORT sockets, or duplicates of inherited ones: see `runtime::listen`), and the
//! connections they accept.

use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures_core::Stream;
use monoio::io::AsyncWriteRentExt;

use crate::config::snapshot::Snapshot;
use crate::proxy::caches::RevocationBus;
use crate::proxy::conn::{ClientStream, Link};
use crate::proxy::core::Core;
use crate::runtime::listen::{Listener, Source};
use crate::runtime::scrape::ScrapeRequest;

/// Everything a worker thread starts with.
pub struct Spec {
    pub index: usize,
    /// One per `listen` entry, in order.
    pub sources: Vec<Source>,
    pub core: Option<core_affinity::CoreId>,
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub bus: Arc<RevocationBus>,
    pub revoked_rx: Receiver<crate::proxy::caches::Revocation>,
    pub drain_rx: futures_channel::oneshot::Receiver<()>,
    pub scrape_rx: futures_channel::mpsc::UnboundedReceiver<ScrapeRequest>,
    /// Every worker's inbox of MRTR retries (`proxy::backends::pending`), and this worker's.
    pub handoffs: crate::proxy::backends::pending::HandOffs,
    pub handoff_rx: futures_channel::mpsc::UnboundedReceiver<crate::proxy::backends::pending::Inbox>,
    pub ready_tx: Sender<std::io::Result<Vec<SocketAddr>>>,
}

/// The worker thread's body.
pub fn run(spec: Spec) {
    if let Some(c) = spec.core {
        core_affinity::set_for_current(c);
    }
    let build =
        |urb| monoio::RuntimeBuilder::<monoio::FusionDriver>::new().uring_builder(urb).enable_timer().build();
    // io_uring with cooperative task running: the kernel completes a worker's operations when
    // the worker next enters it (every loop turn submits or waits) instead of interrupting it.
    // Measured against the default set-up: open-loop p50 at half of nginx's maximum 467-525 ->
    // 338-379 us, +2.8% throughput (perf/RESULTS.md, session 14). Kernels before 5.19 refuse
    // the flags: plain io_uring then; epoll where io_uring is unavailable.
    let mut coop = io_uring::IoUring::builder();
    coop.setup_coop_taskrun().setup_taskrun_flag();
    let rt = build(coop).or_else(|e| {
        log::info!("io_uring without cooperative task running ({e})");
        build(io_uring::IoUring::builder())
    });
    let mut rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            let _ = spec.ready_tx.send(Err(e));
            return;
        }
    };
    rt.block_on(serve(spec));
}

async fn serve(spec: Spec) {
    let Spec {
        index,
        sources,
        snapshot,
        bus,
        revoked_rx,
        drain_rx,
        mut scrape_rx,
        handoffs,
        mut handoff_rx,
        ready_tx,
        ..
    } = spec;
    let mut listeners = Vec::new();
    let mut bound = Vec::new();
    for source in sources {
        let what = match &source {
            Source::Bind(a) => a.to_string(),
            Source::Shared(l) => {
                l.local_addr().map_or_else(|_| "an inherited socket".into(), |a| a.to_string())
            }
        };
        match Listener::open(source) {
            Ok(l) => {
                bound.push(l.addr);
                listeners.push(l);
            }
            Err(e) => {
                let _ = ready_tx
                    .send(Err(std::io::Error::new(e.kind(), format!("cannot listen on {what}: {e}"))));
                return;
            }
        }
    }
    let _ = ready_tx.send(Ok(bound));
    let mut core = Core::new(index, snapshot, bus, revoked_rx);
    core.handoffs = handoffs;
    let core = Rc::new(core);

    // Statistics scrapes from the admin thread.
    let c = core.clone();
    monoio::spawn(async move {
        while let Some(reply) = std::future::poll_fn(|cx| Pin::new(&mut scrape_rx).poll_next(cx)).await {
            let _ = reply.send(c.scrape());
        }
    });
    // From the other workers: retries whose exchange this worker holds (the MRTR bridge), and
    // clients' answers for calls it holds (the reverse bridge).
    let c = core.clone();
    monoio::spawn(async move {
        use crate::proxy::backends::pending::Inbox;
        while let Some(m) = std::future::poll_fn(|cx| Pin::new(&mut handoff_rx).poll_next(cx)).await {
            match m {
                Inbox::Resume(h) => {
                    monoio::spawn(crate::proxy::backends::bridge::serve_handoff(c.clone(), h));
                }
                Inbox::Answer(a) => {
                    if !c.asks.borrow().deliver(a) {
                        log::debug!("an answer for a call this worker no longer holds was dropped");
                    }
                }
            }
        }
    });
    // Drain signal from the control thread.
    let c = core.clone();
    monoio::spawn(async move {
        let _ = drain_rx.await;
        c.drain.set();
    });
    // Take in other workers' session terminations even when this worker opens no sessions, so
    // its queue cannot grow without bound.
    let c = core.clone();
    monoio::spawn(async move {
        while !c.drain.is_set() {
            monoio::time::sleep(Duration::from_secs(1)).await;
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            c.revoked.borrow_mut().drain(now);
            c.pending.borrow_mut().sweep(Instant::now());
            c.spare.borrow_mut().trim();
            crate::runtime::memory::release_freed();
        }
    });
    // Access lines leave in batches; this bounds how long one waits.
    let c = core.clone();
    monoio::spawn(async move {
        while !c.drain.is_set() {
            monoio::time::sleep(crate::runtime::logging::ACCESS_FLUSH).await;
            c.lines.flush();
            c.audit.flush();
            c.spans.flush();
        }
    });
    let loops: Vec<_> =
        listeners.into_iter().enumerate().map(|(i, l)| monoio::spawn(accept(core.clone(), l, i))).collect();
    core.drain.wait().await;
    // The accept loops end (their pending accepts cancelled, queued connections taken, sockets
    // closed) before anything else: returning with an accept still armed would leave the socket
    // open, and connections queued on it unanswered, until the process exits.
    for l in loops {
        l.await;
    }
    // In-flight requests finish, up to the grace deadline.
    let grace = core.current().shutdown_grace;
    let deadline = Instant::now() + grace;
    while core.open.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    if core.open.get() > 0 {
        log::warn!("worker {index}: {} connection(s) still open at the drain deadline", core.open.get());
    }
    core.lines.flush();
    core.audit.flush();
    core.spans.flush();
}

/// Accepts on listener `index` (its place in `listen`, which says whether it terminates TLS)
/// until the drain; then takes what the kernel already queued and closes the socket.
async fn accept(core: Rc<Core>, listener: Listener, index: usize) {
    // The drain cancels the pending accept and the loop sees its result, rather than dropping
    // the future: a dropped io_uring accept stays armed in the kernel, keeps the socket open and
    // takes one more connection that nobody would serve.
    let canceller = monoio::io::Canceller::new();
    let cancel = canceller.handle();
    let c = core.clone();
    monoio::spawn(async move {
        c.drain.wait().await;
        canceller.cancel();
    });
    loop {
        match listener.io.cancelable_accept(cancel.clone()).await {
            // One that completed as the cancel went in is served like any other.
            Ok((stream, peer)) => admit(&core, stream, peer, index),
            Err(_) if core.drain.is_set() => break,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                log::warn!("accept failed: {e}");
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    let queued = listener.close().await;
    if !queued.is_empty() {
        log::debug!("worker {}: serving {} connection(s) queued at the drain", core.worker, queued.len());
    }
    for (stream, peer) in queued {
        admit(&core, stream, peer, index);
    }
}

/// Counts a new connection and serves it on its own task (or refuses it over the limit).
fn admit(core: &Rc<Core>, stream: monoio::net::TcpStream, peer: SocketAddr, index: usize) {
    {
        let mut st = core.stats.borrow_mut();
        st.connections_total += 1;
    }
    let max = core.current().limits.max_connections_per_worker;
    if core.open.get() >= max {
        core.stats.borrow_mut().connections_rejected += 1;
        monoio::spawn(refuse(stream));
        return;
    }
    core.open.set(core.open.get() + 1);
    let _ = stream.set_nodelay(true);
    // The TLS configuration is the current snapshot's: certificates reload without
    // rebinding the port.
    let tls = core.current().listen_tls.get(index).cloned().flatten();
    // Plain and TLS connections are tasks of their own kinds: a plain connection's task is not
    // sized for a TLS handshake it never makes (it is what an idle connection costs).
    let open = Open(core.clone());
    match tls {
        None => {
            let link = Link::new(ClientStream::Plain(stream), peer);
            monoio::spawn(crate::proxy::serve(core.clone(), link, open));
        }
        Some(tls) => {
            monoio::spawn(serve_tls(open, stream, peer, tls));
        }
    }
}

/// A connection counted in `Core::open` until dropped.
struct Open(Rc<Core>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get().saturating_sub(1));
    }
}

/// A TLS listener's connection: the handshake (within the head timeout), then the requests.
async fn serve_tls(
    open: Open,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
    tls: std::sync::Arc<crate::tls::Listener>,
) {
    let c = open.0.clone();
    let wait = c.current().limits.header_timeout;
    let shake = crate::tls::TlsStream::accept(stream, tls.config.clone());
    match monoio::time::timeout(wait, shake).await {
        Ok(Ok(s)) => {
            c.stats.borrow_mut().tls_handshake(true);
            let link = Link::new(ClientStream::Tls(Box::new(s)), peer);
            crate::proxy::serve(c.clone(), link, ()).await;
        }
        Ok(Err(e)) => {
            c.stats.borrow_mut().tls_handshake(false);
            log::debug!("TLS handshake with {peer} failed: {e}");
        }
        Err(_) => {
            c.stats.borrow_mut().tls_handshake(false);
            log::debug!("TLS handshake with {peer} timed out");
        }
    }
    drop(open);
}

/// Answers a connection over the per-worker limit with 503 and closes it (through the one
/// error-to-wire table, like every other error).
async fn refuse(mut stream: monoio::net::TcpStream) {
    let (mut out, mut scratch) = (Vec::with_capacity(256), Vec::with_capacity(128));
    let err = crate::error::Error::client(
        crate::error::Kind::Overloaded,
        "Service Unavailable: too many connections",
    );
    crate::respond::write_error(
        &mut out,
        &mut scratch,
        &err,
        &Default::default(),
        false,
        &Default::default(),
    );
    let _ = monoio::time::timeout(Duration::from_secs(1), stream.write_all(out)).await;
}
