//! Per-worker caches with a bound: opened sessions (decrypted once per worker), terminated
//! sessions (published to every worker), verified tokens per server.
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::config::snapshot::{Server, Snapshot};

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
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    (u64::from_le_bytes(b) as usize) ^ worker
}
