//! The per-core verified-token cache: a signature is checked once per token per core, after
//! which a hit costs a hash, a comparison and an expiry check.
//!
//! Set-associative and bounded: `capacity` entries in sets of [`WAYS`], each slot holding the
//! whole token (in its principal's record) for a full comparison (a hash match alone never authenticates). Only verified
//! tokens are inserted, so a client cannot fill the cache with garbage; a slot is reused when
//! empty, expired, or (round-robin in its set) when the set is full. Tokens over
//! [`MAX_CACHED`] bytes are not cached (Envoy's rule). Each entry remembers the key epoch it
//! was verified under; a changed key set makes it a miss.

use crate::auth::principal::Principal;
use std::hash::Hasher;

/// Slots per set.
pub const WAYS: usize = 4;
/// Largest token cached.
pub const MAX_CACHED: usize = 4096;
/// How much of a token's end is hashed.
const HASHED_TAIL: usize = 64;

struct Slot {
    hash: u64,
    deadline: u64,
    epoch: u64,
    provider: u32,
    /// Holds the token it was verified from.
    principal: Principal,
}

/// What a hit returns.
#[derive(Clone, Debug)]
pub struct Hit {
    /// The principal.
    pub principal: Principal,
    /// The provider that verified it.
    pub provider: usize,
}

/// One server's cache on one core.
pub struct TokenCache {
    sets: Vec<[Option<Slot>; WAYS]>,
    victim: Vec<u8>,
    seed: usize,
    hits: u64,
    misses: u64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenCache({} sets)", self.sets.len())
    }
}

impl TokenCache {
    /// A cache of about `capacity` entries (rounded up to whole sets); 0 disables it.
    pub fn new(capacity: usize, seed: usize) -> TokenCache {
        let sets = if capacity == 0 { 0 } else { capacity.div_ceil(WAYS).next_power_of_two() };
        TokenCache {
            sets: (0..sets).map(|_| Default::default()).collect(),
            victim: vec![0; sets],
            seed,
            hits: 0,
            misses: 0,
        }
    }

    /// Hashes the length and the last [`HASHED_TAIL`] bytes: the signature, which is what
    /// tells tokens apart. Collisions only cost a comparison: a hit still compares the whole
    /// token, and only verified tokens are ever inserted.
    #[inline]
    fn hash(&self, token: &[u8]) -> u64 {
        let mut h = rustc_hash::FxHasher::with_seed(self.seed);
        h.write_usize(token.len());
        h.write(&token[token.len().saturating_sub(HASHED_TAIL)..]);
        h.finish()
    }

    /// The cached principal for `token`, when it was verified, is not past its deadline at
    /// `now`, and its provider's keys are still those of `epoch_of(provider)`.
    #[inline]
    pub fn get(&mut self, token: &[u8], now: u64, epoch_of: impl Fn(usize) -> u64) -> Option<Hit> {
        let hit = self.lookup(token, now, epoch_of);
        if hit.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        hit
    }

    /// Lookups so far: (hits, misses). Metrics read the difference across one authentication.
    pub fn lookups(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    #[inline]
    fn lookup(&mut self, token: &[u8], now: u64, epoch_of: impl Fn(usize) -> u64) -> Option<Hit> {
        if self.sets.is_empty() || token.len() > MAX_CACHED {
            return None;
        }
        let hash = self.hash(token);
        let mask = self.sets.len() - 1;
        let set = &mut self.sets[(hash as usize) & mask];
        for slot in set.iter_mut() {
            let Some(s) = slot else { continue };
            if s.hash == hash && s.principal.token() == token {
                if now < s.deadline && s.epoch == epoch_of(s.provider as usize) {
                    return Some(Hit { principal: s.principal.clone(), provider: s.provider as usize });
                }
                *slot = None;
                return None;
            }
        }
        None
    }

    /// Remembers the principal of a verified token (the token is in its record).
    pub fn put(&mut self, principal: Principal, provider: usize, epoch: u64, deadline: u64, now: u64) {
        let token = principal.token();
        if self.sets.is_empty() || token.len() > MAX_CACHED || token.is_empty() {
            return;
        }
        let hash = self.hash(token);
        let index = (hash as usize) & (self.sets.len() - 1);
        let set = &mut self.sets[index];
        let way = match set.iter().position(|s| s.as_ref().is_none_or(|s| s.deadline <= now)) {
            Some(w) => w,
            None => {
                let v = &mut self.victim[index];
                *v = (*v + 1) % WAYS as u8;
                *v as usize
            }
        };
        set[way] = Some(Slot { hash, deadline, epoch, provider: provider as u32, principal });
    }

    /// Number of live entries (tests and metrics).
    pub fn len(&self) -> usize {
        self.sets.iter().flatten().filter(|s| s.is_some()).count()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The principal of `token`, whose subject is `sub`.
    fn p(token: &[u8], sub: &str) -> Principal {
        let kind = crate::auth::principal::PrincipalKind::Jwt;
        Principal::build(kind, &["jwt iss ", sub], true, None, std::iter::empty(), token)
    }

    #[test]
    fn hit_needs_the_whole_token_live_deadline_and_epoch() {
        let mut c = TokenCache::new(16, 7);
        c.put(p(b"tok-a", "a"), 0, 3, 100, 10);
        assert_eq!(c.get(b"tok-a", 50, |_| 3).unwrap().principal.subject(), "a");
        assert!(c.get(b"tok-b", 50, |_| 3).is_none());
        assert!(c.get(b"tok-a", 50, |_| 4).is_none(), "a new key epoch is a miss");
        c.put(p(b"tok-a", "a"), 0, 3, 100, 10);
        assert!(c.get(b"tok-a", 100, |_| 3).is_none(), "at the deadline the token is refused");
    }

    #[test]
    fn bounded_whatever_is_inserted() {
        let mut c = TokenCache::new(8, 1);
        for i in 0..1000 {
            c.put(p(format!("t{i}").as_bytes(), "x"), 0, 0, 1_000, 0);
        }
        assert!(c.len() <= 8);
        assert!(c.get(b"t999", 1, |_| 0).is_some(), "the newest entry is kept");
    }

    #[test]
    fn large_tokens_are_not_cached_and_zero_disables() {
        let mut c = TokenCache::new(8, 1);
        let big = vec![b'a'; MAX_CACHED + 1];
        c.put(p(&big, "x"), 0, 0, 100, 0);
        assert!(c.is_empty());
        let mut off = TokenCache::new(0, 1);
        off.put(p(b"t", "x"), 0, 0, 100, 0);
        assert!(off.get(b"t", 1, |_| 0).is_none());
    }
}
