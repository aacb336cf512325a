//! Backend tokens from a token service (`type: oauth2` schemes), per worker: fetched when a
//! request first needs one, kept until shortly before they expire, one fetch in flight per key
//! (requests that need the same token meanwhile wait for it rather than asking too). Client
//! credentials tokens are keyed by scheme; exchanged tokens by scheme and the caller's exact
//! token, and never outlive it. Nothing here is shared between workers (no lock): each worker
//! fetches its own. The fetching itself is `exchange::Cx::backend_token`.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use rustc_hash::FxHashMap;

use crate::auth::scheme::BackendCredential;
use crate::upstream::sts::{Sts, StsError};

/// Most tokens a worker keeps (exchanged tokens are one per caller token).
pub const MAX_TOKENS: usize = 4096;

/// How long before its expiry a token is fetched again: a fifth of its lifetime, at most 30 s.
fn margin(lifetime: Duration) -> Duration {
    (lifetime / 5).min(Duration::from_secs(30))
}

/// Lifetime of a token whose answer has no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

type Answer = Result<Rc<BackendCredential>, StsError>;

enum Slot {
    Ready { credential: Rc<BackendCredential>, fresh_until: Instant },
    Fetching(Vec<oneshot::Sender<Answer>>),
}

/// A worker's backend tokens: scheme (its cache key) -> subject token (empty for client
/// credentials) -> slot. Looked up by borrowed keys: a cache hit allocates nothing.
#[derive(Default)]
pub struct Tokens {
    slots: FxHashMap<Box<str>, FxHashMap<Box<[u8]>, Slot>>,
    len: usize,
}

impl Tokens {
    fn get_mut(&mut self, scheme: &str, subject: &[u8]) -> Option<&mut Slot> {
        self.slots.get_mut(scheme)?.get_mut(subject)
    }

    fn insert(&mut self, scheme: &str, subject: &[u8], slot: Slot) -> Option<Slot> {
        let previous = match self.slots.get_mut(scheme) {
            Some(m) => m.insert(subject.into(), slot),
            None => self.slots.entry(scheme.into()).or_default().insert(subject.into(), slot),
        };
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    fn remove(&mut self, scheme: &str, subject: &[u8]) -> Option<Slot> {
        let removed = self.slots.get_mut(scheme)?.remove(subject);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// The cached token of `sts` for `subject`, if it is still fresh (no fetch).
    pub fn peek(&self, sts: &Sts, subject: &[u8]) -> Option<Rc<BackendCredential>> {
        match self.slots.get(&*sts.cache_key)?.get(subject) {
            Some(Slot::Ready { credential, fresh_until }) if Instant::now() < *fresh_until => {
                Some(credential.clone())
            }
            _ => None,
        }
    }

    /// Room for one more: expired tokens go first, then (still full) a sixteenth of the rest.
    fn make_room(&mut self) {
        if self.len < MAX_TOKENS {
            return;
        }
        let now = Instant::now();
        let mut budget = MAX_TOKENS / 16;
        for m in self.slots.values_mut() {
            m.retain(|_, s| match s {
                Slot::Ready { fresh_until, .. } if *fresh_until <= now => false,
                Slot::Ready { .. } if budget > 0 => {
                    budget -= 1;
                    false
                }
                _ => true,
            });
        }
        self.len = self.slots.values().map(FxHashMap::len).sum();
    }
}

/// What [`Tokens::begin`] found.
pub(crate) enum Begin {
    /// A fresh token.
    Hit(Rc<BackendCredential>),
    /// Another request is fetching it: its answer arrives here (closed if that request goes
    /// away, and then this one starts over).
    Wait(oneshot::Receiver<Answer>),
    /// Nobody is: this request fetches, then calls [`Tokens::finish`] (or [`Tokens::abandon`]).
    Fetch,
}

impl Tokens {
    /// Looks the token of `scheme` (a cache key) for `who` (a subject token, or empty) up, and
    /// claims the fetch when there is none.
    pub(crate) fn begin(&mut self, scheme: &str, who: &[u8]) -> Begin {
        match self.get_mut(scheme, who) {
            Some(Slot::Ready { credential, fresh_until }) if Instant::now() < *fresh_until => {
                Begin::Hit(credential.clone())
            }
            Some(Slot::Fetching(waiters)) => {
                let (tx, rx) = oneshot::channel();
                waiters.push(tx);
                Begin::Wait(rx)
            }
            _ => {
                self.make_room();
                self.insert(scheme, who, Slot::Fetching(Vec::new()));
                Begin::Fetch
            }
        }
    }

    /// Ends a fetch: keeps the token until `fresh_until` (a failure keeps nothing: the next
    /// request asks again) and answers the requests that waited for it.
    pub(crate) fn finish(
        &mut self,
        scheme: &str,
        who: &[u8],
        answer: &Result<(Rc<BackendCredential>, Instant), StsError>,
    ) {
        let previous = match answer {
            Ok((credential, fresh_until)) => self.insert(
                scheme,
                who,
                Slot::Ready { credential: credential.clone(), fresh_until: *fresh_until },
            ),
            Err(_) => self.remove(scheme, who),
        };
        if let Some(Slot::Fetching(waiters)) = previous {
            let answer: Answer = answer.as_ref().map(|(c, _)| c.clone()).map_err(Clone::clone);
            for w in waiters {
                let _ = w.send(answer.clone());
            }
        }
    }

    /// Gives up a fetch (the request went away): its waiters see their channel close.
    pub(crate) fn abandon(&mut self, scheme: &str, who: &[u8]) {
        self.remove(scheme, who);
    }
}

/// How long a token fetched now is served: its lifetime (`expires_in`, else
/// [`DEFAULT_LIFETIME`]), never beyond the subject token's remaining life (an exchanged token
/// never outlives the token it was exchanged for), less the refresh [`margin`].
pub(crate) fn served_for(lifetime: Option<Duration>, subject_left: Option<Duration>) -> Duration {
    let life = lifetime.unwrap_or(DEFAULT_LIFETIME);
    let life = subject_left.map_or(life, |left| life.min(left));
    life - margin(life)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_lifetimes() {
        let s = Duration::from_secs;
        assert_eq!(served_for(Some(s(3600)), None), s(3570));
        assert_eq!(served_for(None, None), s(48));
        // Bounded by the subject token's own expiry, with the margin of that shorter life.
        assert_eq!(served_for(Some(s(3600)), Some(s(100))), s(80));
        assert_eq!(served_for(Some(s(60)), Some(s(100))), s(48));
        assert_eq!(served_for(Some(s(3600)), Some(s(0))), s(0));
    }

    #[test]
    fn margins() {
        assert_eq!(margin(Duration::from_secs(300)), Duration::from_secs(30));
        assert_eq!(margin(Duration::from_secs(60)), Duration::from_secs(12));
        assert_eq!(margin(Duration::from_secs(5)), Duration::from_secs(1));
    }
}
