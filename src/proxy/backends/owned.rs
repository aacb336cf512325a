//! How a worker reaches a backend for clients without a session of their own (2026-07-28): a
//! backend that speaks the stateless revision is reached directly, with nothing shared; any
//! other backend needs a session, which the gateway opens itself.
//!
//! A gateway-owned session belongs to one owner: the principal and the identity headers sent
//! with it (claim headers, `forwardHeaders`). Two principals never share one, so a backend that
//! keeps per-session state (what `initialize` told it, subscriptions, elicitation answers) never
//! mixes callers. The sessions are bounded per worker ([`MAX_OWNED`], least recently used
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

/// The owner of a gateway-owned session: a digest of server, backend, principal and identity
/// headers (fixed size, whatever the headers' length).
pub type Owner = [u8; 32];

/// A gateway-owned session to close: (server, backend, version, session id).
pub type Closing = (Box<str>, Box<str>, String, String);

/// Which transport generation a backend speaks (learned once per worker and snapshot) and the
/// capabilities it declared.
type Learned = (Generation, Rc<serde_json::Value>);

struct Owned {
    server: Box<str>,
    backend: Box<str>,
    version: String,
    session: String,
    used: Instant,
}

/// A worker's links (no locks: one per worker).
#[derive(Default)]
pub struct Links {
    generation: u64,
    /// server -> backend -> what it speaks and the capabilities it declared (nested so lookups
    /// by `&str` allocate nothing).
    kinds: FxHashMap<Box<str>, FxHashMap<Box<str>, Learned>>,
    owned: FxHashMap<Owner, Owned>,
}

/// The owner key of a session with `backend` of `server` for `principal` sending `identity`
/// headers (`Mcp-Param-*` request parameters are not identity and are left out).
pub fn owner(server: &str, backend: &str, principal: &str, identity: &[(&[u8], &[u8])]) -> Owner {
    let mut d = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [server.as_bytes(), backend.as_bytes(), principal.as_bytes()] {
        d.update(&(part.len() as u64).to_be_bytes());
        d.update(part);
    }
    for (n, v) in identity {
        if n.len() > 10 && n[..10].eq_ignore_ascii_case(b"mcp-param-") {
            continue;
        }
        for part in [*n, *v] {
            d.update(&(part.len() as u64).to_be_bytes());
            d.update(part);
        }
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(d.finish().as_ref());
    key
}

impl Links {
    /// Forgets everything learned under an older snapshot (a reload may have moved or renamed
    /// backends). Sessions dropped this way are left to expire on their backends.
    pub fn renew(&mut self, generation: u64) {
        if generation != self.generation {
            self.generation = generation;
            self.kinds.clear();
            self.owned.clear();
        }
    }

    /// What `backend` of `server` speaks, with its capabilities, when known.
    pub fn kind(&self, server: &str, backend: &str) -> Option<(Generation, Rc<serde_json::Value>)> {
        self.kinds.get(server)?.get(backend).cloned()
    }

    /// Records what `backend` of `server` speaks.
    pub fn set_kind(&mut self, server: &str, backend: &str, kind: Generation, caps: serde_json::Value) {
        self.kinds.entry(server.into()).or_default().insert(backend.into(), (kind, Rc::new(caps)));
    }

    /// The owner's session (version, session id), when it has one that is not idle; an idle
    /// one is removed and returned for closing.
    pub fn session(&mut self, owner: &Owner, now: Instant) -> Result<Option<(String, String)>, Closing> {
        let Some(o) = self.owned.get_mut(owner) else { return Ok(None) };
        if now.duration_since(o.used) > IDLE {
            let o = self.owned.remove(owner).map(closing);
            return o.map_or(Ok(None), Err);
        }
        o.used = now;
        Ok(Some((o.version.clone(), o.session.clone())))
    }

    /// Keeps the owner's new session; returns the sessions to close to stay within
    /// [`MAX_OWNED`]: every idle one, else the least recently used.
    pub fn insert(
        &mut self,
        owner: Owner,
        (server, backend): (&str, &str),
        version: String,
        session: String,
        now: Instant,
    ) -> Vec<Closing> {
        let mut out = Vec::new();
        if let Some(old) = self.owned.remove(&owner) {
            out.push(closing(old));
        }
        if self.owned.len() >= MAX_OWNED {
            let idle: Vec<Owner> = self
                .owned
                .iter()
                .filter(|(_, o)| now.duration_since(o.used) > IDLE)
                .map(|(k, _)| *k)
                .collect();
            let evict = if idle.is_empty() {
                self.owned.iter().min_by_key(|(_, o)| o.used).map(|(k, _)| *k).into_iter().collect()
            } else {
                idle
            };
            out.extend(evict.iter().filter_map(|k| self.owned.remove(k)).map(closing));
        }
        self.owned.insert(
            owner,
            Owned { server: server.into(), backend: backend.into(), version, session, used: now },
        );
        out
    }

    /// Drops the owner's session (its backend forgot it).
    pub fn forget(&mut self, owner: &Owner) {
        self.owned.remove(owner);
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

    #[test]
    fn owners_differ_by_principal_and_identity_headers_only() {
        let a = owner("s", "b", "jwt iss alice", &[(b"x-tenant", b"t1")]);
        assert_ne!(a, owner("s", "b", "jwt iss bob", &[(b"x-tenant", b"t1")]));
        assert_ne!(a, owner("s", "b", "jwt iss alice", &[(b"x-tenant", b"t2")]));
        assert_ne!(a, owner("s", "b2", "jwt iss alice", &[(b"x-tenant", b"t1")]));
        // Length-prefixed: moving bytes between parts is another owner.
        assert_ne!(owner("s", "bx", "y", &[]), owner("s", "b", "xy", &[]));
        assert_eq!(
            a,
            owner("s", "b", "jwt iss alice", &[(b"x-tenant", b"t1"), (b"Mcp-Param-Region", b"eu")])
        );
    }

    #[test]
    fn sessions_are_bounded_and_idle_ones_closed() {
        let mut l = Links::default();
        let t0 = Instant::now();
        let k = |i: usize| owner("s", "b", &format!("p{i}"), &[]);
        for i in 0..MAX_OWNED {
            let t = t0 + Duration::from_millis(i as u64);
            assert!(l.insert(k(i), ("s", "b"), "v".into(), format!("sid{i}"), t).is_empty());
        }
        // Full: the least recently used (p0, unless touched) goes.
        let _ = l.session(&k(0), t0 + Duration::from_secs(1)).unwrap();
        let closed =
            l.insert(k(MAX_OWNED), ("s", "b"), "v".into(), "new".into(), t0 + Duration::from_secs(2));
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].3, "sid1");
        assert_eq!(l.owned(), MAX_OWNED);
        // Idle past IDLE: not reused, handed back for closing.
        let later = t0 + IDLE + Duration::from_secs(10);
        let idle = l.session(&k(2), later).unwrap_err();
        assert_eq!(idle.3, "sid2");
        assert_eq!(l.session(&k(2), later).unwrap(), None);
        // A reload forgets all.
        l.set_kind("s", "b", Generation::Sessions, serde_json::Value::Null);
        l.renew(7);
        assert_eq!(l.owned(), 0);
        assert!(l.kind("s", "b").is_none());
    }
}
