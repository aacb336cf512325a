//! Exchanges waiting for a client's input: the half of the MRTR bridge ([`super::bridge`]) that
//! holds state. A 2025-revision backend that sends a server-to-client request during a
//! 2026-07-28 client's call keeps its answer stream open while the client is asked; the worker
//! holds that stream here until the client's retry comes back (on this worker, or handed over
//! from another one, [`HandOff`]), the exchange expires, or room is needed.
//!
//! Limits: [`PENDING_MAX`] exchanges per worker (the oldest is dropped to make room) and
//! [`PENDING_TTL`] each. Dropping one closes its backend connection, which ends the backend's
//! wait; a retry for it gets a clear error asking the client to call again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_channel::{mpsc, oneshot};

use crate::error::Error;
use crate::mcp::sse;
use crate::upstream::client::Streaming;

/// At most this many exchanges wait for input on one worker.
pub const PENDING_MAX: usize = 256;

/// How long an exchange waits for the client's retry (a person may be answering a form).
pub const PENDING_TTL: Duration = Duration::from_secs(300);

/// The caller who started a held call: their credential for the backend, identity headers and
/// declared capabilities go with the answers, as they went with the call.
pub struct Who {
    pub(crate) principal: crate::auth::Principal,
    pub(crate) bearer: Option<Vec<u8>>,
    pub(crate) caps: Vec<u8>,
    pub(crate) fwd: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One exchange waiting for the client's input: the backend's open answer stream and what is
/// needed to go on with it as the caller who started it.
pub struct Pending {
    /// The backend's answer stream, and its events not yet complete.
    pub(crate) stream: Streaming,
    pub(crate) events: sse::Events,
    /// Messages read from the stream after the requests that were asked, not yet handled.
    pub(crate) queued: Vec<Vec<u8>>,
    pub(crate) server: Box<str>,
    pub(crate) backend: Box<str>,
    pub(crate) who: Who,
    /// The gateway-owned backend session (protocol version, session id) the call runs in.
    pub(crate) version: String,
    pub(crate) session: String,
    /// The client's method (its answer is completed for the 2026-07-28 revision).
    pub(crate) method: &'static str,
    /// The backend's name (or URI) the call named: a retry must name the same.
    pub(crate) name: String,
    /// The requests the client was asked: the key in `inputRequests`, the backend's id (JSON).
    pub(crate) asked: Vec<(String, Vec<u8>)>,
    /// Until when it is held.
    pub(crate) expires: Instant,
}

/// Something held until a deadline.
pub trait Expiring {
    /// Until when it is held.
    fn expires(&self) -> Instant;
}

impl Expiring for Pending {
    fn expires(&self) -> Instant {
        self.expires
    }
}

/// The exchanges one worker holds, by slot (a random number named in the gateway's
/// `requestState`).
pub struct Pendings<T = Pending> {
    held: HashMap<u64, T>,
}

impl<T> Default for Pendings<T> {
    fn default() -> Self {
        Pendings { held: HashMap::new() }
    }
}

impl<T: Expiring> Pendings<T> {
    /// Holds `p` under `slot`; the expired ones go, and the oldest when the table is full.
    pub(crate) fn park(&mut self, slot: u64, p: T, now: Instant) {
        self.sweep(now);
        if self.held.len() >= PENDING_MAX {
            if let Some(oldest) = self.held.iter().min_by_key(|(_, p)| p.expires()).map(|(s, _)| *s) {
                log::warn!(
                    "{PENDING_MAX} exchanges wait for client input on this worker: the oldest is dropped"
                );
                self.held.remove(&oldest);
            }
        }
        self.held.insert(slot, p);
    }

    /// The exchange under `slot`, left in place, unless it expired.
    pub(crate) fn peek(&self, slot: u64, now: Instant) -> Option<&T> {
        self.held.get(&slot).filter(|p| p.expires() > now)
    }

    /// The exchange under `slot`, taken out (answered once), unless it expired.
    pub(crate) fn take(&mut self, slot: u64, now: Instant) -> Option<T> {
        self.held.remove(&slot).filter(|p| p.expires() > now)
    }

    /// Drops the expired exchanges (their backend connections close).
    pub fn sweep(&mut self, now: Instant) {
        self.held.retain(|_, p| p.expires() > now);
    }

    /// How many exchanges wait.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

/// What a resumed exchange answers: HTTP status, body, content type.
pub type Resumed = (u16, Vec<u8>, &'static str);

/// A client's retry that reached another worker than the one holding its exchange: the owner
/// takes the exchange, goes on with it and answers on `reply`.
pub struct HandOff {
    pub(crate) slot: u64,
    pub(crate) server: Box<str>,
    pub(crate) principal: Box<str>,
    pub(crate) backend: Box<str>,
    /// The retry's method and the backend's name (or URI) it names.
    pub(crate) method: &'static str,
    pub(crate) name: Box<str>,
    /// The retry's JSON-RPC id (JSON) and its `inputResponses` (a JSON object).
    pub(crate) id: Vec<u8>,
    pub(crate) responses: Vec<u8>,
    pub(crate) reply: oneshot::Sender<Result<Resumed, Error>>,
}

/// The client's answer to a request the reverse bridge ([`super::reverse`]) put on its stream,
/// for the worker holding the call: the slot, the key's index, the answering principal, and the
/// answer's `result` (`None` when the client answered with an error).
pub struct Answered {
    pub(crate) slot: u64,
    pub(crate) key: usize,
    pub(crate) principal: Box<str>,
    pub(crate) result: Option<Vec<u8>>,
}

/// What one worker sends another.
pub enum Inbox {
    /// A retry of an exchange the receiving worker holds (the MRTR bridge).
    Resume(HandOff),
    /// An answer for a call the receiving worker holds (the reverse bridge).
    Answer(Answered),
}

/// A call of a 2025-revision client waiting for the client's answers to the requests the
/// reverse bridge sent it: who may answer, and where the answers go.
pub(crate) struct Ask {
    pub(crate) principal: Box<str>,
    pub(crate) tx: mpsc::UnboundedSender<(usize, Option<Vec<u8>>)>,
}

/// The calls one worker holds for the reverse bridge, by slot.
#[derive(Default)]
pub struct Asks {
    held: HashMap<u64, Ask>,
}

impl Asks {
    /// Holds `a` under `slot` (at most [`PENDING_MAX`]; `false` when full).
    pub(crate) fn hold(&mut self, slot: u64, a: Ask) -> bool {
        if self.held.len() >= PENDING_MAX {
            return false;
        }
        self.held.insert(slot, a);
        true
    }

    /// Lets go of `slot`.
    pub(crate) fn release(&mut self, slot: u64) {
        self.held.remove(&slot);
    }

    /// Hands an answer to the call under its slot, when it is the caller's; `false` otherwise.
    pub(crate) fn deliver(&self, a: Answered) -> bool {
        match self.held.get(&a.slot) {
            Some(ask) if ask.principal == a.principal => ask.tx.unbounded_send((a.key, a.result)).is_ok(),
            _ => false,
        }
    }
}

/// Every worker's inbox. The queues are unbounded in type but not in practice: each message is
/// a request in flight on another worker (bounded by its connections), and the receiver answers
/// each at once from its tables.
#[derive(Clone, Default)]
pub struct HandOffs {
    inboxes: Arc<[mpsc::UnboundedSender<Inbox>]>,
}

impl HandOffs {
    /// Inboxes for `n` workers, and each worker's receiving end.
    pub fn new(n: usize) -> (HandOffs, Vec<mpsc::UnboundedReceiver<Inbox>>) {
        let (tx, rx): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::unbounded()).unzip();
        (HandOffs { inboxes: tx.into() }, rx)
    }

    /// Sends `m` to worker `worker`; `false` when there is no such worker (or it ended).
    pub(crate) fn send(&self, worker: usize, m: Inbox) -> bool {
        self.inboxes.get(worker).is_some_and(|tx| tx.unbounded_send(m).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Until(Instant);
    impl Expiring for Until {
        fn expires(&self) -> Instant {
            self.0
        }
    }

    #[test]
    fn held_once_until_expiry_and_bounded() {
        let now = Instant::now();
        let mut t: Pendings<Until> = Pendings::default();
        t.park(1, Until(now + Duration::from_secs(10)), now);
        assert!(t.take(1, now).is_some(), "taken once");
        assert!(t.take(1, now).is_none(), "not twice");
        t.park(2, Until(now + Duration::from_secs(1)), now);
        assert!(t.take(2, now + Duration::from_secs(2)).is_none(), "expired");
        // Full: the oldest goes to make room, the rest stay.
        for slot in 0..PENDING_MAX as u64 + 5 {
            t.park(100 + slot, Until(now + Duration::from_secs(60 + slot)), now);
        }
        assert_eq!(t.len(), PENDING_MAX);
        assert!(t.take(100, now).is_none(), "the oldest was dropped");
        assert!(t.take(100 + PENDING_MAX as u64 + 4, now).is_some());
        t.sweep(now + Duration::from_secs(3600));
        assert!(t.is_empty());
    }

    #[test]
    fn answers_reach_only_their_callers_call() {
        let mut asks = Asks::default();
        let (tx, mut rx) = mpsc::unbounded();
        assert!(asks.hold(7, Ask { principal: "jwt:alice".into(), tx }));
        let answer = |principal: &str| Answered {
            slot: 7,
            key: 0,
            principal: principal.into(),
            result: Some(b"{}".to_vec()),
        };
        assert!(!asks.deliver(answer("jwt:mallory")));
        assert!(asks.deliver(answer("jwt:alice")));
        assert_eq!(rx.try_recv().ok(), Some((0, Some(b"{}".to_vec()))));
        asks.release(7);
        assert!(!asks.deliver(answer("jwt:alice")), "released");
    }
}
