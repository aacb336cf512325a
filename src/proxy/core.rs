//! Per-core state: everything one worker owns and its connections share without locks - the
//! JSON decoder buffers, the terminated-session set, the statistics, the drain signal. It is
//! `!Send` by design (Cell/RefCell); the only cross-thread inputs are the published snapshot and
//! channel messages (session terminations, statistics scrapes, drain).

use std::cell::{Cell, RefCell};

use std::rc::Rc;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::task::Waker;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use ring::rand::SystemRandom;

use crate::config::snapshot::Snapshot;
use crate::mcp::json::Decoder;
use crate::proxy::caches::{Revocation, RevocationBus, Revoked, SessionCache, TokenCaches};
use crate::proxy::stats::{EndpointStats, Stats};

/// A one-shot local event: set once, wakes every waiter (the worker's drain signal).
///
/// A worker's spare connection buffers: what connections give back while they idle (plain
/// connections with nothing buffered hold no buffer then, as nginx frees a keep-alive
/// connection's), lent again when bytes arrive. Reused, so a busy worker does not allocate per
/// request; bounded, and each second the spares that sat unused for the whole second are freed.
#[derive(Default)]
pub struct Spare {
    bufs: Vec<Vec<u8>>,
    /// The fewest spares held since the last trim: that many were not needed.
    low: usize,
}

/// Buffers kept at most (each at most [`SPARE_BUF_MAX`] bytes).
const SPARE_MAX: usize = 8192;
/// A buffer larger than this is freed rather than kept.
pub const SPARE_BUF_MAX: usize = 64 * 1024;

impl Spare {
    /// A buffer (empty; a spare when there is one).
    pub fn take(&mut self) -> Vec<u8> {
        let v = self.bufs.pop().unwrap_or_default();
        self.low = self.low.min(self.bufs.len());
        v
    }

    /// `s` in a spare buffer (give it back with `into_bytes`).
    pub fn take_string(&mut self, s: &str) -> String {
        // A spare is empty, so always UTF-8.
        let mut out = String::from_utf8(self.take()).unwrap_or_default();
        out.push_str(s);
        out
    }

    /// Gives `v` back (cleared); one that holds no memory is dropped.
    pub fn give(&mut self, mut v: Vec<u8>) {
        if v.capacity() == 0 || v.capacity() > SPARE_BUF_MAX || self.bufs.len() >= SPARE_MAX {
            return;
        }
        v.clear();
        self.bufs.push(v);
    }

    /// Frees the spares that were not needed since the last trim (the bottom of the stack: the
    /// ones taken last).
    pub fn trim(&mut self) {
        let unused = self.low.min(self.bufs.len());
        self.bufs.drain(..unused);
        if self.bufs.capacity() > 2 * self.bufs.len().max(16) {
            self.bufs.shrink_to(self.bufs.len().max(16));
        }
        self.low = self.bufs.len();
    }

    /// Spare buffers held.
    pub fn len(&self) -> usize {
        self.bufs.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }
}

/// Waiters live in slots that a dropped [`Wait`] gives back, so the many short waits of idle
/// keep-alive reads (each abandoned when data arrives) do not pile up wakers.
#[derive(Default)]
pub struct Event {
    set: Cell<bool>,
    slots: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

impl Event {
    /// Sets the event and wakes all waiters.
    pub fn set(&self) {
        self.set.set(true);
        let wakers: Vec<Waker> = self.slots.borrow_mut().iter_mut().filter_map(Option::take).collect();
        for w in wakers {
            w.wake();
        }
    }

    /// Whether the event is set.
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Resolves once the event is set.
    pub fn wait(&self) -> Wait<'_> {
        Wait { event: self, slot: None }
    }

    /// Waiters currently registered (for tests).
    pub fn waiters(&self) -> usize {
        self.slots.borrow().iter().filter(|s| s.is_some()).count()
    }
}

/// Future of [`Event::wait`]; deregisters its waker when dropped.
pub struct Wait<'e> {
    event: &'e Event,
    slot: Option<usize>,
}

impl std::future::Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.event.set.get() {
            return std::task::Poll::Ready(());
        }
        let mut slots = self.event.slots.borrow_mut();
        match self.slot {
            Some(i) => match &mut slots[i] {
                Some(w) if w.will_wake(cx.waker()) => {}
                other => *other = Some(cx.waker().clone()),
            },
            None => {
                let i = match self.event.free.borrow_mut().pop() {
                    Some(i) => {
                        slots[i] = Some(cx.waker().clone());
                        i
                    }
                    None => {
                        slots.push(Some(cx.waker().clone()));
                        slots.len() - 1
                    }
                };
                drop(slots);
                self.slot = Some(i);
            }
        }
        std::task::Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.slot.take() {
            if let Some(s) = self.event.slots.borrow_mut().get_mut(i) {
                *s = None;
            }
            self.event.free.borrow_mut().push(i);
        }
    }
}

/// Everything one worker owns.
pub struct Core {
    /// Worker index (for request ids and logs).
    pub worker: usize,
    /// The published configuration.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// Reused JSON decoding buffers.
    pub decoder: RefCell<Decoder>,
    /// Reused buffers for the normalized arguments of local tool calls.
    pub args: RefCell<crate::rest::args::ArgScratch>,
    /// Terminated sessions.
    pub revoked: RefCell<Revoked>,
    /// Where to announce terminations.
    pub revocations: Arc<RevocationBus>,
    /// Statistics.
    pub stats: RefCell<Stats>,
    /// Randomness for session ids.
    pub rng: SystemRandom,
    /// Request counter (request ids).
    pub seq: Cell<u64>,
    /// Set when the worker starts draining.
    pub drain: Event,
    /// Every timeout of the worker's connections and exchanges (coarse: swept by one task);
    /// the upstream pool holds the same table.
    pub deadlines: Rc<crate::timer::Deadlines>,
    /// Scratch for opening session ids.
    pub session_scratch: RefCell<Vec<u8>>,
    /// Recently opened sessions.
    pub sessions: RefCell<SessionCache>,
    /// Keep-alive connections to backends.
    pub upstream: RefCell<crate::upstream::pool::Pool>,
    /// Round-robin cursor over backend endpoints.
    pub upstream_rr: Cell<usize>,
    /// Counter for the ids of requests the gateway itself sends backends.
    pub upstream_ids: Cell<u64>,
    /// How this worker reaches backends for sessionless clients.
    pub links: RefCell<crate::proxy::backends::owned::Links>,
    /// Rate-limit buckets (this worker's share of every budget).
    pub buckets: RefCell<crate::policy::limits::Buckets>,
    /// Argument rules of backend tools, from the lists this worker relayed.
    pub schemas: RefCell<crate::proxy::backends::schemas::Schemas>,
    /// Connections open on this worker.
    pub open: Cell<usize>,
    /// Verified-token caches.
    pub tokens: RefCell<TokenCaches>,
    /// Trace and span ids.
    pub span_ids: crate::proxy::spans::Ids,
    /// Finished spans awaiting their hand-over to the exporter.
    pub spans: crate::runtime::otlp::Held,
    /// Tokens from token services for backends (oauth2 schemes).
    pub backend_tokens: RefCell<crate::proxy::backends::tokens::Tokens>,
    /// Buffers for access lines, reused.
    pub lines: crate::runtime::logging::Lines,
    /// Buffers for audit lines, reused.
    pub audit: crate::runtime::logging::Lines,
    /// The anonymous principal, shared.
    pub anonymous: crate::auth::Principal,
    /// Exchanges waiting for a client's input (the MRTR bridge).
    pub pending: RefCell<crate::proxy::backends::pending::Pendings>,
    /// Connection buffers idle connections gave back.
    pub spare: RefCell<Spare>,
    /// Calls waiting for a client's answers (the reverse bridge).
    pub asks: RefCell<crate::proxy::backends::pending::Asks>,
    /// Every worker's inbox for retries that reached another worker than the one holding theirs.
    pub handoffs: crate::proxy::backends::pending::HandOffs,
    /// The snapshot this core last saw, shared by its requests with a non-atomic count.
    // The Rc is the point: cloning it per request is a core-local increment, where cloning the
    // Arc would bounce its shared counter's cache line between cores.
    #[allow(clippy::redundant_allocation)]
    cached: RefCell<Rc<Arc<Snapshot>>>,
}

impl Core {
    /// A worker's state.
    pub fn new(
        worker: usize,
        snapshot: Arc<ArcSwap<Snapshot>>,
        revocations: Arc<RevocationBus>,
        revoked_rx: Receiver<Revocation>,
    ) -> Core {
        let cached = RefCell::new(Rc::new(snapshot.load_full()));
        let deadlines = crate::timer::Deadlines::new();
        Core {
            worker,
            cached,
            open: Cell::new(0),
            tokens: RefCell::new(TokenCaches::default()),
            backend_tokens: RefCell::default(),
            span_ids: crate::proxy::spans::Ids::new(),
            spans: crate::runtime::otlp::Held::default(),
            lines: Default::default(),
            audit: crate::runtime::logging::Lines::to(crate::runtime::audit::ship),
            anonymous: crate::auth::Principal::anonymous(),
            session_scratch: RefCell::new(Vec::with_capacity(256)),
            upstream: RefCell::new(crate::upstream::pool::Pool::new(deadlines.clone())),
            sessions: RefCell::new(SessionCache::default()),
            upstream_rr: Cell::new(worker),
            upstream_ids: Cell::new(0),
            links: RefCell::default(),
            schemas: RefCell::default(),
            buckets: RefCell::default(),
            snapshot,
            decoder: RefCell::new(Decoder::default()),
            args: RefCell::new(Default::default()),
            revoked: RefCell::new(Revoked::new(revoked_rx)),
            revocations,
            stats: RefCell::new(Stats::default()),
            rng: SystemRandom::new(),
            seq: Cell::new(0),
            drain: Event::default(),
            deadlines,
            pending: RefCell::default(),
            asks: RefCell::default(),
            spare: RefCell::default(),
            handoffs: Default::default(),
        }
    }
}

impl Core {
    /// This worker's statistics for a scrape: the counters, plus the gauges and pool figures
    /// read now.
    pub fn scrape(&self) -> Stats {
        let mut st = self.stats.borrow().clone();
        st.connections_open = self.open.get() as u64;
        let pool = self.upstream.borrow();
        (st.upstream_connects, st.upstream_reuses) = (pool.connects, pool.reuses);
        st.upstream = pool
            .endpoints()
            .map(|(key, c, idle)| {
                let e = EndpointStats {
                    connects: c.connects,
                    reuses: c.reuses,
                    connect_failures: c.connect_failures,
                    idle: idle as u64,
                };
                (key, e)
            })
            .collect();
        st
    }

    /// The current snapshot. The arc-swap load is a thread-local fast path; the returned `Rc`
    /// is cloned without touching any cache line another core writes. A request keeps the
    /// snapshot it started with even if a reload publishes a new one meanwhile.
    pub fn current(&self) -> Rc<Arc<Snapshot>> {
        let live = self.snapshot.load();
        let mut cached = self.cached.borrow_mut();
        if !Arc::ptr_eq(&live, &**cached) {
            *cached = Rc::new(arc_swap::Guard::into_inner(live));
            // A reload may remove backends: their idle pooled connections close now instead
            // of lingering until the idle TTL. Connections of backends still configured stay.
            let snap = &***cached;
            self.upstream.borrow_mut().retain(|key| snap.upstream_targets().any(|t| t.pool_key == *key));
        }
        Rc::clone(&cached)
    }
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::stats::*;
    use std::future::Future;

    #[test]
    fn spare_buffers_are_reused_and_the_unused_freed() {
        let mut s = Spare::default();
        s.give(Vec::with_capacity(4096));
        s.give(Vec::new());
        assert_eq!(s.len(), 1, "a buffer without memory is not kept");
        let v = s.take();
        assert!(v.capacity() >= 4096 && v.is_empty());
        s.give(v);
        s.give(Vec::with_capacity(128 * 1024));
        assert_eq!(s.len(), 1, "a large buffer is freed");
        // One trim to settle, then a second without a take frees what sat unused.
        s.trim();
        assert_eq!(s.len(), 1);
        s.trim();
        assert_eq!(s.len(), 0);
        for _ in 0..3 {
            s.give(Vec::with_capacity(64));
        }
        s.trim();
        // All three lent out and back within the second: all were needed, all are kept.
        let lent: Vec<_> = (0..3).map(|_| s.take()).collect();
        lent.into_iter().for_each(|v| s.give(v));
        s.trim();
        assert_eq!(s.len(), 3);
        // One lent out: the two that sat unused go.
        let one = s.take();
        s.give(one);
        s.trim();
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn revocation_reaches_every_worker() {
        let (bus, mut rxs) = RevocationBus::new(2);
        let mut b = Revoked::new(rxs.pop().unwrap());
        let mut a = Revoked::new(rxs.pop().unwrap());
        bus.publish([1; 16], 100);
        assert!(a.contains(&[1; 16], 50));
        assert!(b.contains(&[1; 16], 50));
        assert!(!b.contains(&[1; 16], 100), "forgotten at expiry");
        assert!(!a.contains(&[2; 16], 50));
    }

    #[test]
    fn abandoned_waits_give_their_slot_back() {
        // Regression: every idle keep-alive wait used to leave a waker (and a task reference)
        // behind until shutdown.
        let e = Event::default();
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        for _ in 0..1000 {
            let mut w = std::pin::pin!(e.wait());
            assert!(w.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(e.waiters(), 0);
        assert!(e.slots.borrow().len() <= 1);
        let mut w = std::pin::pin!(e.wait());
        assert!(w.as_mut().poll(&mut cx).is_pending());
        e.set();
        assert!(w.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn stats_merge() {
        let mut a = Stats::default();
        a.record("s", MethodClass::Ping, 200, 10);
        let mut b = Stats::default();
        b.record("s", MethodClass::Ping, 200, 10_000_000_000);
        b.count(&Record {
            server: "s",
            method: MethodClass::ToolsCall,
            status: 200,
            total_us: 900,
            backend_us: Some(700),
            tool: Some(("b1", "echo")),
            auth: AuthEvent::MissFailed(auth_reason(crate::auth::Failure::Token(
                crate::auth::jwt::Reject::Expired,
            ))),
        });
        b.tls_handshake(true);
        b.tls_handshake(false);
        a.merge(&b);
        let s = &a.requests["s"];
        assert_eq!(s.counters[MethodClass::Ping as usize][status_slot(200)], 2);
        assert_eq!(s.total.buckets[LATENCY_BOUNDS_US.len()], 1);
        assert_eq!(s.total.count(), 3);
        assert_eq!(s.backend.count(), 1);
        assert_eq!(s.backend.sum_us, 700);
        assert_eq!(s.gateway.sum_us, 10 + 10_000_000_000 + 200);
        assert_eq!(s.tools["b1"]["echo"][status_slot(200)], 1);
        assert_eq!(s.token_cache_misses, 1);
        assert_eq!(s.auth_failures[13], 1, "{}", AUTH_REASONS[13]);
        assert_eq!((a.tls_handshakes, a.tls_handshake_failures), (1, 1));
    }

    #[test]
    fn auth_reasons_are_named() {
        use crate::auth::jwt::Reject;
        use crate::auth::Failure;
        assert_eq!(AUTH_REASONS[auth_reason(Failure::Missing)], "missing");
        assert_eq!(AUTH_REASONS[auth_reason(Failure::Token(Reject::Signature))], "signature");
        assert_eq!(AUTH_REASONS[auth_reason(Failure::Token(Reject::Audience))], "audience");
        assert_eq!(AUTH_REASONS[auth_reason(Failure::Token(Reject::TooLarge))], "token_too_large");
        assert_eq!(
            AUTH_REASONS[auth_reason(Failure::Credential("The API key is not valid"))],
            "invalid_credential"
        );
        assert_eq!(
            AUTH_REASONS[auth_reason(Failure::Repeated("The credential header is repeated"))],
            "repeated_credential"
        );
        assert_eq!(
            AUTH_REASONS[auth_reason(Failure::Certificate("The client certificate has no subject"))],
            "client_certificate"
        );
        assert_eq!(AUTH_REASONS[auth_reason(Failure::Token(Reject::Subject))], "subject");
    }
}
