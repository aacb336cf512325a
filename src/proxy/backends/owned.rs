//! How a worker reaches a backend for clients without a session of their own (2026-07-28): a
//! backend that speaks the stateless revision is reached directly, with nothing shared; any
//! other backend needs a session, which the gateway opens itself.
//!
//! A gateway-owned session belongs to one owner: the principal, the identity headers sent
//! with it (claim headers, `forwardHeaders`) and the capabilities the client declared in `_meta`
//! (what the session's `initialize` tells the backend, never more or fewer). Two principals never
//! share one, so a backend that keeps per-session state (what `initialize` told it,
//! subscriptions, elicitation answers) never mixes callers. The sessions are bounded per worker ([`MAX_OWNED`], least recently used
//! replaced first) and an idle one ([`IDLE`]) is not reused: both are handed back for closing
//! (`DELETE`). A reload (new snapshot generation) forgets everything.

use std::rc::Rc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::mcp::version::Generation;

/// Most gateway-owned sessions one worker keeps.
pub const MAX_OWNED: usize = 1024;

/// A gateway-owned session unused for this long is closed instead of reused.
pub const IDLE: Duration = Duration::from_secs(300);

/// Longest owner key kept as it is; a longer one is kept as its SHA-256.
const MAX_EXACT_KEY: usize = 512;

/// Most idle sessions closed at once when room is needed (the closes are sent together, and a
/// request that makes room waits for them).
const MAX_CLOSED_AT_ONCE: usize = 8;

/// Who a gateway-owned session belongs to: the server and backend, the principal, the declared
/// capabilities and the identity headers sent with it (`Mcp-Param-*` request parameters are not identity and are left
/// out). Compared exactly: the key is these parts, each prefixed by its length, so two owners
/// never share a key.
#[derive(Clone, Copy)]
pub struct Owner<'a> {
    /// The server's name.
    pub server: &'a str,
    /// The backend's name.
    pub backend: &'a str,
    /// The principal's id.
    pub principal: &'a str,
    /// The client headers sent to the backend (claim headers, `forwardHeaders`).
    pub identity: &'a [(&'a [u8], &'a [u8])],
    /// The capabilities the client declared (JSON): what the session's `initialize` told the
    /// backend, so a caller declaring others gets a session of its own.
    pub capabilities: &'a [u8],
}

impl Owner<'_> {
    /// Writes the owner's key into `out` (cleared first).
    fn key(&self, out: &mut Vec<u8>) {
        out.clear();
        let mut part = |p: &[u8]| {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p);
        };
        part(self.server.as_bytes());
        part(self.backend.as_bytes());
        part(self.principal.as_bytes());
        part(self.capabilities);
        for (n, v) in self.identity {
            if n.len() > 10 && n[..10].eq_ignore_ascii_case(b"mcp-param-") {
                continue;
            }
            part(n);
            part(v);
        }
        // Identity headers come from the client: a long key is kept as its digest, so the table
        // holds at most MAX_OWNED small keys. The marker length (u32::MAX) cannot begin an exact
        // key, so a digest never equals one.
        if out.len() > MAX_EXACT_KEY {
            let digest = ring::digest::digest(&ring::digest::SHA256, out);
            out.clear();
            out.extend_from_slice(&u32::MAX.to_le_bytes());
            out.extend_from_slice(digest.as_ref());
        }
    }
}

/// Where a backend is in the snapshot a worker's links were learned under: the server's index,
/// the backend's position in its `backends`.
pub type At = (usize, usize);

/// A gateway-owned session in use: (version, session id), shared with the requests using it.
pub type Session = (Rc<str>, Rc<str>);

/// A gateway-owned session to close: (server, backend, version, session id).
pub type Closing = (Box<str>, Box<str>, Rc<str>, Rc<str>);

/// Which transport generation a backend speaks (learned once per worker and snapshot) and the
/// capabilities it declared.
type Learned = (Generation, Rc<serde_json::Value>);

struct Owned {
    server: Box<str>,
    backend: Box<str>,
    version: Rc<str>,
    session: Rc<str>,
    used: Instant,
}

/// A worker's links (no locks: one per worker).
#[derive(Default)]
pub struct Links {
    generation: u64,
    /// What each backend speaks and the capabilities it declared, by [`At`] (positions in this
    /// generation's snapshot: no name is hashed per request).
    kinds: Vec<Vec<Option<Learned>>>,
    owned: FxHashMap<Box<[u8]>, Owned>,
    /// The key being looked up, reused (no allocation per request).
    key: Vec<u8>,
}

impl Links {
    /// Forgets everything learned under an older snapshot (a reload may have moved or renamed
    /// backends). Sessions dropped this way are left to expire on their backends. A request
    /// still running on an older snapshot changes nothing.
    pub fn renew(&mut self, generation: u64) {
        if generation > self.generation {
            self.generation = generation;
            self.kinds.clear();
            self.owned.clear();
        }
    }

    /// What the backend at `at` speaks, when known.
    pub fn kind(&self, at: At) -> Option<Generation> {
        self.learned(at).map(|(k, _)| *k)
    }

    /// The capabilities the backend at `at` declared, when known.
    pub fn caps(&self, at: At) -> Option<Rc<serde_json::Value>> {
        self.learned(at).map(|(_, c)| c.clone())
    }

    fn learned(&self, (server, backend): At) -> Option<&Learned> {
        self.kinds.get(server)?.get(backend)?.as_ref()
    }

    /// Records what the backend at `at` speaks.
    pub fn set_kind(&mut self, (server, backend): At, kind: Generation, caps: serde_json::Value) {
        if self.kinds.len() <= server {
            self.kinds.resize_with(server + 1, Vec::new);
        }
        let backends = &mut self.kinds[server];
        if backends.len() <= backend {
            backends.resize_with(backend + 1, || None);
        }
        backends[backend] = Some((kind, Rc::new(caps)));
    }

    /// The owner's session (version, session id), when it has one that is not idle; an idle
    /// one is removed and returned for closing.
    pub fn session(&mut self, owner: Owner<'_>, now: Instant) -> Result<Option<Session>, Closing> {
        owner.key(&mut self.key);
        let Some(o) = self.owned.get_mut(&self.key[..]) else { return Ok(None) };
        if now.duration_since(o.used) > IDLE {
            let o = self.owned.remove(&self.key[..]).map(closing);
            return o.map_or(Ok(None), Err);
        }
        o.used = now;
        Ok(Some((o.version.clone(), o.session.clone())))
    }

    /// Keeps the owner's new session; returns the sessions to close: the one it replaces, and
    /// to stay within [`MAX_OWNED`] idle ones (a few at a time), else the least recently used.
    pub fn insert(
        &mut self,
        owner: Owner<'_>,
        version: Rc<str>,
        session: Rc<str>,
        now: Instant,
    ) -> Vec<Closing> {
        owner.key(&mut self.key);
        let mut out = Vec::new();
        if let Some(old) = self.owned.remove(&self.key[..]) {
            out.push(closing(old));
        }
        if self.owned.len() >= MAX_OWNED {
            let mut evict: Vec<Box<[u8]>> = self
                .owned
                .iter()
                .filter(|(_, o)| now.duration_since(o.used) > IDLE)
                .map(|(k, _)| k.clone())
                .take(MAX_CLOSED_AT_ONCE)
                .collect();
            if evict.is_empty() {
                evict.extend(self.owned.iter().min_by_key(|(_, o)| o.used).map(|(k, _)| k.clone()));
            }
            out.extend(evict.iter().filter_map(|k| self.owned.remove(k)).map(closing));
        }
        let owned =
            Owned { server: owner.server.into(), backend: owner.backend.into(), version, session, used: now };
        self.owned.insert(self.key.as_slice().into(), owned);
        out
    }

    /// Drops the owner's session `session` (its backend forgot it); a newer session of the same
    /// owner, opened meanwhile by another request, stays.
    pub fn forget(&mut self, owner: Owner<'_>, session: &str) {
        owner.key(&mut self.key);
        if self.owned.get(&self.key[..]).is_some_and(|o| *o.session == *session) {
            self.owned.remove(&self.key[..]);
        }
    }

    /// Gateway-owned sessions held.
    pub fn owned(&self) -> usize {
        self.owned.len()
    }
}

fn closing(o: Owned) -> Closing {
    (o.server, o.backend, o.version, o.session)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(o: Owner<'_>) -> Vec<u8> {
        let mut k = Vec::new();
        o.key(&mut k);
        k
    }

    fn owner<'a>(backend: &'a str, principal: &'a str, identity: &'a [(&'a [u8], &'a [u8])]) -> Owner<'a> {
        Owner { server: "s", backend, principal, identity, capabilities: b"{}" }
    }

    #[test]
    fn owners_differ_by_principal_identity_headers_and_capabilities_only() {
        let a = key(owner("b", "jwt iss alice", &[(b"x-tenant", b"t1")]));
        assert_ne!(a, key(owner("b", "jwt iss bob", &[(b"x-tenant", b"t1")])));
        assert_ne!(a, key(owner("b", "jwt iss alice", &[(b"x-tenant", b"t2")])));
        assert_ne!(a, key(owner("b2", "jwt iss alice", &[(b"x-tenant", b"t1")])));
        // Length-prefixed: moving bytes between parts is another owner.
        assert_ne!(key(owner("bx", "y", &[])), key(owner("b", "xy", &[])));
        assert_eq!(
            a,
            key(owner("b", "jwt iss alice", &[(b"x-tenant", b"t1"), (b"Mcp-Param-Region", b"eu")]))
        );
        // A backend told other capabilities at initialize is another session.
        let sampling = Owner {
            capabilities: br#"{"sampling":{}}"#,
            ..owner("b", "jwt iss alice", &[(b"x-tenant", b"t1")])
        };
        assert_ne!(a, key(sampling));
    }

    #[test]
    fn sessions_are_bounded_and_idle_ones_closed() {
        let mut l = Links::default();
        let t0 = Instant::now();
        let names: Vec<String> = (0..=MAX_OWNED).map(|i| format!("p{i}")).collect();
        let k = |i: usize| owner("b", &names[i], &[]);
        for i in 0..MAX_OWNED {
            let t = t0 + Duration::from_millis(i as u64);
            assert!(l.insert(k(i), "v".into(), format!("sid{i}").into(), t).is_empty());
        }
        // Full: the least recently used (p0, unless touched) goes.
        let _ = l.session(k(0), t0 + Duration::from_secs(1)).unwrap();
        let closed = l.insert(k(MAX_OWNED), "v".into(), "new".into(), t0 + Duration::from_secs(2));
        assert_eq!(closed.len(), 1);
        assert_eq!(&*closed[0].3, "sid1");
        assert_eq!(l.owned(), MAX_OWNED);
        // Idle past IDLE: not reused, handed back for closing.
        let later = t0 + IDLE + Duration::from_secs(10);
        let idle = l.session(k(2), later).unwrap_err();
        assert_eq!(&*idle.3, "sid2");
        assert_eq!(l.session(k(2), later).unwrap(), None);
        // Room among idle sessions is made a few at a time.
        let closed = l.insert(k(2), "v".into(), "again".into(), later);
        assert!(closed.is_empty(), "one slot was free");
        let closed = l.insert(k(1), "v".into(), "back".into(), later);
        assert_eq!(closed.len(), MAX_CLOSED_AT_ONCE);
        // Forgetting a session that was replaced meanwhile keeps the newer one.
        l.forget(k(2), "sid2");
        assert_eq!(l.session(k(2), later).unwrap(), Some(("v".into(), "again".into())));
        l.forget(k(2), "again");
        assert_eq!(l.session(k(2), later).unwrap(), None);
        // A reload forgets all; a request on an older snapshot changes nothing.
        l.set_kind((0, 1), Generation::Sessions, serde_json::Value::Null);
        l.renew(7);
        assert_eq!(l.owned(), 0);
        assert!(l.kind((0, 1)).is_none());
        l.set_kind((0, 1), Generation::Sessions, serde_json::Value::Null);
        l.renew(6);
        assert_eq!(l.kind((0, 1)), Some(Generation::Sessions));
        assert!(l.kind((0, 0)).is_none() && l.kind((1, 1)).is_none());
    }
}
