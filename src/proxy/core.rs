//! Per-core state: everything one worker owns and its connections share without locks - the
//! JSON decoder buffers, the terminated-session set, the statistics, the drain signal. It is
//! `!Send` by design (Cell/RefCell); the only cross-thread inputs are the published snapshot and
//! channel messages (session terminations, statistics scrapes, drain).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::rc::Rc;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::task::Waker;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use ring::rand::SystemRandom;

use crate::config::snapshot::{Server, Snapshot};
use crate::mcp::json::Decoder;

/// A terminated session: its id and its expiry (unix seconds).
pub type Revocation = ([u8; 16], u64);

/// Fans session terminations out to every worker, so a DELETE on one core is seen by all.
pub struct RevocationBus {
    senders: Vec<Sender<Revocation>>,
}

impl RevocationBus {
    /// A bus for `workers` workers and each worker's receiving end.
    pub fn new(workers: usize) -> (Arc<RevocationBus>, Vec<Receiver<Revocation>>) {
        let (senders, receivers) = (0..workers).map(|_| std::sync::mpsc::channel()).unzip();
        (Arc::new(RevocationBus { senders }), receivers)
    }

    /// Announces that session `id` (valid until `expires`) is terminated. Sent to every worker
    /// before the DELETE is answered, and every worker drains its queue before it checks a
    /// session, so no later request on any core can still use the id.
    pub fn publish(&self, id: [u8; 16], expires: u64) {
        for s in &self.senders {
            let _ = s.send((id, expires));
        }
    }
}

/// Most terminated sessions one worker remembers (about 40 MB). Entries leave at their session's
/// expiry. A live entry is never dropped - that would bring a terminated session back - so when
/// the set is full of live entries, further DELETEs are refused with 503 until some expire.
pub const MAX_REVOKED: usize = 1 << 20;

/// A worker's view of terminated sessions.
pub struct Revoked {
    set: HashMap<[u8; 16], u64>,
    rx: Receiver<Revocation>,
}

impl Revoked {
    /// The set fed by `rx`.
    pub fn new(rx: Receiver<Revocation>) -> Self {
        Revoked { set: HashMap::new(), rx }
    }

    /// Takes in the terminations other workers announced.
    pub fn drain(&mut self, now: u64) {
        while let Ok((rid, exp)) = self.rx.try_recv() {
            if self.set.len() >= MAX_REVOKED {
                self.set.retain(|_, e| *e > now);
            }
            self.set.insert(rid, exp);
        }
    }

    /// Whether `id` was terminated (by any worker) and has not expired by `now`.
    pub fn contains(&mut self, id: &[u8; 16], now: u64) -> bool {
        self.drain(now);
        self.set.get(id).is_some_and(|&exp| exp > now)
    }

    /// Whether another termination can be remembered (expired entries are dropped first).
    pub fn has_room(&mut self, now: u64) -> bool {
        self.drain(now);
        if self.set.len() >= MAX_REVOKED {
            self.set.retain(|_, e| *e > now);
        }
        self.set.len() < MAX_REVOKED
    }
}

/// MCP method classes counted in metrics (a bounded label set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodClass {
    /// Not an MCP POST (GET, DELETE, OPTIONS, errors before the body).
    None,
    /// initialize
    Initialize,
    /// server/discover
    Discover,
    /// ping
    Ping,
    /// tools/list
    ToolsList,
    /// tools/call
    ToolsCall,
    /// Any other request method.
    Other,
    /// A notification.
    Notification,
    /// A client response.
    Response,
    /// A batch (2025-03-26).
    Batch,
}

/// Number of [`MethodClass`] values.
pub const METHOD_CLASSES: usize = 10;

impl MethodClass {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodClass::None => "-",
            MethodClass::Initialize => "initialize",
            MethodClass::Discover => "server/discover",
            MethodClass::Ping => "ping",
            MethodClass::ToolsList => "tools/list",
            MethodClass::ToolsCall => "tools/call",
            MethodClass::Other => "other",
            MethodClass::Notification => "notification",
            MethodClass::Response => "response",
            MethodClass::Batch => "batch",
        }
    }

    /// All classes, in index order.
    pub const ALL: [MethodClass; METHOD_CLASSES] = [
        MethodClass::None,
        MethodClass::Initialize,
        MethodClass::Discover,
        MethodClass::Ping,
        MethodClass::ToolsList,
        MethodClass::ToolsCall,
        MethodClass::Other,
        MethodClass::Notification,
        MethodClass::Response,
        MethodClass::Batch,
    ];

    /// The class of a JSON-RPC method name.
    pub fn of(method: &str) -> MethodClass {
        match method {
            "tools/call" => MethodClass::ToolsCall,
            "tools/list" => MethodClass::ToolsList,
            "initialize" => MethodClass::Initialize,
            "server/discover" => MethodClass::Discover,
            "ping" => MethodClass::Ping,
            _ => MethodClass::Other,
        }
    }
}

/// Status codes with their own metric slot; anything else lands in the last slot.
pub const STATUSES: [u16; 21] =
    [100, 200, 202, 204, 400, 401, 403, 404, 405, 406, 408, 413, 415, 417, 431, 500, 501, 502, 503, 504, 0];

fn status_slot(status: u16) -> usize {
    STATUSES.iter().position(|&s| s == status).unwrap_or(STATUSES.len() - 1)
}

/// Latency histogram bucket upper bounds, microseconds.
pub const LATENCY_BOUNDS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    5_000_000, 10_000_000,
];

/// Counters of one server: `[method class][status slot]`.
pub type ServerCounters = [[u64; STATUSES.len()]; METHOD_CLASSES];

/// A latency histogram over [`LATENCY_BOUNDS_US`]: per-bucket (not cumulative) counts, the last
/// bucket being +Inf, and the sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket (last = above every bound).
    pub buckets: [u64; LATENCY_BOUNDS_US.len() + 1],
    /// Sum of the observations, microseconds.
    pub sum_us: u64,
}

impl Histogram {
    /// Adds one observation.
    #[inline]
    pub fn observe(&mut self, micros: u64) {
        let b = LATENCY_BOUNDS_US.iter().position(|&ub| micros <= ub).unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[b] += 1;
        self.sum_us += micros;
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(o.buckets.iter()) {
            *a += b;
        }
        self.sum_us += o.sum_us;
    }
}

/// Authentication failure reasons, the `reason` label of
/// `portcullis_authentication_failures_total` (a fixed set: the label never carries client data).
pub const AUTH_REASONS: [&str; 21] = [
    "missing",
    "token_too_large",
    "malformed",
    "encrypted",
    "base64",
    "json",
    "algorithm",
    "unsupported",
    "issuer",
    "unknown_kid",
    "key_mismatch",
    "signature",
    "no_expiry",
    "expired",
    "not_yet_valid",
    "bad_time",
    "audience",
    "invalid_credential",
    "repeated_credential",
    "client_certificate",
    "subject",
];

/// The [`AUTH_REASONS`] slot of a failure: the label set is fixed and short.
pub fn auth_reason(f: crate::auth::Failure) -> usize {
    use crate::auth::jwt::Reject as R;
    use crate::auth::Failure;
    match f {
        Failure::Missing => 0,
        Failure::Token(r) => match r {
            R::TooLarge => 1,
            R::Malformed => 2,
            R::Encrypted => 3,
            R::Base64 => 4,
            R::Json => 5,
            R::Alg => 6,
            R::Unsupported => 7,
            R::Issuer => 8,
            R::UnknownKid => 9,
            R::KeyMismatch => 10,
            R::Signature => 11,
            R::NoExpiry => 12,
            R::Expired => 13,
            R::NotYetValid => 14,
            R::BadTime => 15,
            R::Audience => 16,
            R::Subject => 20,
        },
        Failure::Credential(_) => 17,
        Failure::Repeated(_) => 18,
        Failure::Certificate(_) => 19,
    }
}

/// Status counters of one tool: `[status slot]`.
pub type ToolCounters = [u64; STATUSES.len()];

/// One server's figures.
#[derive(Clone, Debug)]
pub struct ServerStats {
    /// Requests by method class and status.
    pub counters: ServerCounters,
    /// `tools/call` by backend label, then tool label (configured names or `other`), then
    /// status. Nested so counting looks up borrowed names (no allocation once seen).
    pub tools: FxHashMap<Box<str>, FxHashMap<Box<str>, ToolCounters>>,
    /// Whole request: complete head to response written.
    pub total: Histogram,
    /// The part of `total` not spent waiting on backends (what the gateway adds).
    pub gateway: Histogram,
    /// Time waiting on backends, for requests that reached one.
    pub backend: Histogram,
    /// Authentication failures by [`AUTH_REASONS`] slot.
    pub auth_failures: [u64; AUTH_REASONS.len()],
    /// Verified-token cache hits.
    pub token_cache_hits: u64,
    /// Verified-token cache misses (the token was verified, or refused, in full).
    pub token_cache_misses: u64,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            counters: [[0; STATUSES.len()]; METHOD_CLASSES],
            tools: FxHashMap::default(),
            total: Histogram::default(),
            gateway: Histogram::default(),
            backend: Histogram::default(),
            auth_failures: [0; AUTH_REASONS.len()],
            token_cache_hits: 0,
            token_cache_misses: 0,
        }
    }
}

impl ServerStats {
    fn merge(&mut self, o: &ServerStats) {
        for (m, row) in o.counters.iter().enumerate() {
            for (s, n) in row.iter().enumerate() {
                self.counters[m][s] += n;
            }
        }
        for (backend, tools) in &o.tools {
            let mine = self.tools.entry(backend.clone()).or_default();
            for (tool, row) in tools {
                let slot = mine.entry(tool.clone()).or_insert([0; STATUSES.len()]);
                for (a, b) in slot.iter_mut().zip(row.iter()) {
                    *a += b;
                }
            }
        }
        self.total.merge(&o.total);
        self.gateway.merge(&o.gateway);
        self.backend.merge(&o.backend);
        for (a, b) in self.auth_failures.iter_mut().zip(o.auth_failures.iter()) {
            *a += b;
        }
        self.token_cache_hits += o.token_cache_hits;
        self.token_cache_misses += o.token_cache_misses;
    }
}

/// What stage 1 did for one request, as counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthEvent {
    /// Nothing worth counting (anonymous, or authentication was not reached).
    #[default]
    None,
    /// A bearer token found in the verified-token cache.
    CacheHit,
    /// A bearer token not in the cache (verified or refused in full).
    CacheMiss,
    /// Refused, with its [`AUTH_REASONS`] slot.
    Failed(usize),
    /// Refused after a cache miss (a token that did not verify).
    MissFailed(usize),
}

/// One request as phase 8 counts it.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// Server name (`-` when no server matched).
    pub server: &'a str,
    /// MCP method class.
    pub method: MethodClass,
    /// HTTP status.
    pub status: u16,
    /// Complete head to response written, microseconds.
    pub total_us: u64,
    /// Time waiting on backends, when the request reached one.
    pub backend_us: Option<u64>,
    /// (backend, tool) labels of a `tools/call`.
    pub tool: Option<(&'a str, &'a str)>,
    /// What authentication did.
    pub auth: AuthEvent,
}

/// Per-endpoint figures of the upstream pool (keyed by the pool key; labelled with backend
/// names at scrape time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// New connections opened.
    pub connects: u64,
    /// Requests served on a pooled connection.
    pub reuses: u64,
    /// Connections that could not be opened (refused, timed out, TLS handshake failed).
    pub connect_failures: u64,
    /// Idle connections held now (a gauge).
    pub idle: u64,
}

impl EndpointStats {
    fn merge(&mut self, o: &EndpointStats) {
        self.connects += o.connects;
        self.reuses += o.reuses;
        self.connect_failures += o.connect_failures;
        self.idle += o.idle;
    }
}

/// One worker's statistics; summed across workers at scrape time.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Requests and their latencies by server name (`-` when no server matched).
    pub requests: FxHashMap<Box<str>, ServerStats>,
    /// Connections currently open.
    pub connections_open: u64,
    /// Connections accepted.
    pub connections_total: u64,
    /// Connections refused at `maxConnectionsPerWorker`.
    pub connections_rejected: u64,
    /// New upstream connections opened.
    pub upstream_connects: u64,
    /// Upstream requests served on a pooled connection.
    pub upstream_reuses: u64,
    /// Upstream pool figures by endpoint (filled at scrape time from the pool).
    pub upstream: FxHashMap<crate::upstream::pool::Key, EndpointStats>,
    /// Backend failures (refused, timed out, bad answer, error status) by backend name.
    pub backend_failures: FxHashMap<Box<str>, u64>,
    /// Authorization decisions by server, then (deciding rule index or -1 for the default,
    /// allowed). Keyed by server first so counting looks up a borrowed name (no allocation).
    pub decisions: FxHashMap<Box<str>, FxHashMap<(i64, bool), u64>>,
    /// Rule conditions that failed to evaluate (missing field, wrong type, cost bound).
    pub condition_errors: u64,
    /// Sessions handed out by `initialize`.
    pub sessions_opened: u64,
    /// Sessions ended by `DELETE`.
    pub sessions_closed: u64,
    /// TLS handshakes completed on `tls` listeners.
    pub tls_handshakes: u64,
    /// TLS handshakes that failed (bad client hello, no shared cipher, refused client
    /// certificate, timeout).
    pub tls_handshake_failures: u64,
}

impl Stats {
    /// Counts a failed backend exchange.
    pub fn backend_failed(&mut self, backend: &str) {
        match self.backend_failures.get_mut(backend) {
            Some(n) => *n += 1,
            None => {
                self.backend_failures.insert(backend.into(), 1);
            }
        }
    }

    /// Counts a TLS handshake on a `tls` listener.
    pub fn tls_handshake(&mut self, ok: bool) {
        if ok {
            self.tls_handshakes += 1;
        } else {
            self.tls_handshake_failures += 1;
        }
    }

    /// Counts one authorization decision and the conditions that failed to evaluate for it.
    pub fn authorized(&mut self, server: &str, d: &crate::policy::rules::Decision, errors: u64) {
        use crate::policy::rules::Decision;
        let (rule, allowed) = match d {
            Decision::Allow { rule } => (*rule, true),
            Decision::Deny { rule, .. } => (*rule, false),
        };
        let rule = rule.map_or(-1, |r| r as i64);
        let per_server = match self.decisions.get_mut(server) {
            Some(m) => m,
            None => self.decisions.entry(server.into()).or_default(),
        };
        *per_server.entry((rule, allowed)).or_insert(0) += 1;
        self.condition_errors += errors;
    }

    /// Counts one request (no backend, tool or authentication detail).
    pub fn record(&mut self, server: &str, method: MethodClass, status: u16, micros: u64) {
        self.count(&Record {
            server,
            method,
            status,
            total_us: micros,
            backend_us: None,
            tool: None,
            auth: AuthEvent::None,
        });
    }

    /// Counts one request. Allocates only the first time a server, backend or tool label is
    /// seen (the label sets are bounded by the configuration).
    pub fn count(&mut self, r: &Record<'_>) {
        let s = match self.requests.get_mut(r.server) {
            Some(s) => s,
            None => self.requests.entry(r.server.into()).or_default(),
        };
        let slot = status_slot(r.status);
        s.counters[r.method as usize][slot] += 1;
        s.total.observe(r.total_us);
        s.gateway.observe(r.total_us.saturating_sub(r.backend_us.unwrap_or(0)));
        if let Some(b) = r.backend_us {
            s.backend.observe(b);
        }
        if let Some((backend, tool)) = r.tool {
            let tools = match s.tools.get_mut(backend) {
                Some(t) => t,
                None => s.tools.entry(backend.into()).or_default(),
            };
            let row = match tools.get_mut(tool) {
                Some(row) => row,
                None => tools.entry(tool.into()).or_insert([0; STATUSES.len()]),
            };
            row[slot] += 1;
        }
        match r.auth {
            AuthEvent::None => {}
            AuthEvent::CacheHit => s.token_cache_hits += 1,
            AuthEvent::CacheMiss => s.token_cache_misses += 1,
            AuthEvent::Failed(reason) => s.auth_failures[reason.min(AUTH_REASONS.len() - 1)] += 1,
            AuthEvent::MissFailed(reason) => {
                s.token_cache_misses += 1;
                s.auth_failures[reason.min(AUTH_REASONS.len() - 1)] += 1;
            }
        }
    }

    /// Adds another worker's figures.
    pub fn merge(&mut self, o: &Stats) {
        for (name, st) in &o.requests {
            self.requests.entry(name.clone()).or_default().merge(st);
        }
        self.connections_open += o.connections_open;
        self.connections_total += o.connections_total;
        self.connections_rejected += o.connections_rejected;
        self.upstream_connects += o.upstream_connects;
        self.upstream_reuses += o.upstream_reuses;
        for (k, e) in &o.upstream {
            self.upstream.entry(*k).or_default().merge(e);
        }
        for (b, n) in &o.backend_failures {
            *self.backend_failures.entry(b.clone()).or_insert(0) += n;
        }
        for (server, m) in &o.decisions {
            let mine = self.decisions.entry(server.clone()).or_default();
            for (k, n) in m {
                *mine.entry(*k).or_insert(0) += n;
            }
        }
        self.condition_errors += o.condition_errors;
        self.sessions_opened += o.sessions_opened;
        self.sessions_closed += o.sessions_closed;
        self.tls_handshakes += o.tls_handshakes;
        self.tls_handshake_failures += o.tls_handshake_failures;
    }
}

/// A one-shot local event: set once, wakes every waiter (the worker's drain signal).
///
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

/// A cached session: the server it was opened for and its claims.
type CachedSession = (Box<str>, Rc<crate::mcp::session::Claims>);

/// Most opened sessions a worker keeps; past this the cache starts over (bounded memory).
const SESSION_CACHE: usize = 4096;

/// Sessions this worker opened recently, so a session id is decrypted once per worker rather
/// than on every request (AES-GCM open plus claim decoding, ~2.5k instructions). Keyed by the
/// full id; valid only for the snapshot it was filled under (keys may rotate on reload); expiry
/// is checked on every hit and termination by the caller.
#[derive(Default)]
pub struct SessionCache {
    snapshot: u64,
    map: FxHashMap<Box<[u8]>, CachedSession>,
}

impl SessionCache {
    /// The claims of `sid` on `server`, if cached under `snap` and not expired at `now`.
    pub fn get(
        &mut self,
        snap: &Snapshot,
        sid: &[u8],
        server: &str,
        now: u64,
    ) -> Option<Rc<crate::mcp::session::Claims>> {
        let id = snap.generation;
        if self.snapshot != id {
            self.map.clear();
            self.snapshot = id;
            return None;
        }
        match self.map.get(sid) {
            Some((srv, c)) if &**srv == server && c.expires > now => Some(c.clone()),
            _ => None,
        }
    }

    /// Remembers freshly opened claims.
    pub fn put(&mut self, sid: &[u8], server: &str, claims: Rc<crate::mcp::session::Claims>) {
        if self.map.len() >= SESSION_CACHE {
            self.map.clear();
        }
        self.map.insert(sid.into(), (server.into(), claims));
    }
}

/// This worker's verified-token caches, one per server, valid for one snapshot (a reload may
/// change issuers, audiences or keys, so it starts them over).
#[derive(Default)]
pub struct TokenCaches {
    snapshot: u64,
    per_server: Vec<Option<crate::auth::cache::TokenCache>>,
}

impl TokenCaches {
    /// The cache of `server` under `snap` (created on first use).
    pub fn for_server(
        &mut self,
        snap: &Snapshot,
        server: &Server,
        seed: usize,
    ) -> &mut crate::auth::cache::TokenCache {
        if self.snapshot != snap.generation {
            self.snapshot = snap.generation;
            self.per_server.clear();
        }
        if self.per_server.len() <= server.index {
            self.per_server.resize_with(server.index + 1, || None);
        }
        self.per_server[server.index].get_or_insert_with(|| {
            crate::auth::cache::TokenCache::new(server.auth.cache_entries(), seed_for(seed))
        })
    }
}

/// A per-core hash seed from the system's randomness (falls back to the worker index).
fn seed_for(worker: usize) -> usize {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut b);
    (u64::from_le_bytes(b) as usize) ^ worker
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
    pub args: RefCell<crate::rest::tool::ArgScratch>,
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
    /// Argument rules of backend tools, from the lists this worker relayed.
    pub schemas: RefCell<crate::proxy::backends::schemas::Schemas>,
    /// Connections open on this worker.
    pub open: Cell<usize>,
    /// Verified-token caches.
    pub tokens: RefCell<TokenCaches>,
    /// Buffers for access lines, reused.
    pub lines: crate::runtime::logging::Lines,
    /// The anonymous principal, shared.
    pub anonymous: Rc<crate::auth::Principal>,
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
        Core {
            worker,
            cached,
            open: Cell::new(0),
            tokens: RefCell::new(TokenCaches::default()),
            lines: Default::default(),
            anonymous: Rc::new(crate::auth::Principal::anonymous()),
            session_scratch: RefCell::new(Vec::with_capacity(256)),
            upstream: RefCell::new(crate::upstream::pool::Pool::default()),
            sessions: RefCell::new(SessionCache::default()),
            upstream_rr: Cell::new(worker),
            upstream_ids: Cell::new(0),
            links: RefCell::default(),
            schemas: RefCell::default(),
            snapshot,
            decoder: RefCell::new(Decoder::default()),
            args: RefCell::new(Default::default()),
            revoked: RefCell::new(Revoked::new(revoked_rx)),
            revocations,
            stats: RefCell::new(Stats::default()),
            rng: SystemRandom::new(),
            seq: Cell::new(0),
            drain: Event::default(),
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
    use std::future::Future;

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
