//! Multi-round-trip requests (SEP-2322, 2026-07-28) through the gateway. A backend's
//! `InputRequiredResult` (`resultType` `input_required`) reaches the client with its
//! `requestState` made the gateway's: `<tag>.<backend's state>`, the tag an HMAC under the session
//! keys over the endpoint, the principal and the backend. The client's retry (the same request
//! with `inputResponses` and that `requestState`) is routed as the first request was; the gateway
//! checks the tag against the caller and the backend the request routes to, and sends the
//! backend its own state. A state of another caller, for another backend, altered, or not handed
//! out by the gateway is refused (-32602) before any backend sees it.
//!
//! The bridge from the 2025 revisions (`backends::bridge`) hands out a state of its own kind: it
//! names the exchange a worker holds for the caller (`<tag>.<process>.<worker>.<slot>`, the tag
//! over another context), never a backend's state.

use crate::config::snapshot::{Server, Snapshot};

fn context<'p>(server: &'p Server, principal: &'p str, backend: &'p str) -> [&'p [u8]; 4] {
    [b"request-state", server.name.as_bytes(), principal.as_bytes(), backend.as_bytes()]
}

/// The gateway's `requestState` for `backend`'s state `own`, handed to `principal`.
pub(crate) fn seal(snap: &Snapshot, server: &Server, principal: &str, backend: &str, own: &str) -> String {
    snap.sessions.bind(&context(server, principal, backend), own)
}

/// `backend`'s own state in a gateway `requestState`, when it was handed to `principal` for it.
pub(crate) fn open<'s>(
    snap: &Snapshot,
    server: &Server,
    principal: &str,
    backend: &str,
    sealed: &'s str,
) -> Option<&'s str> {
    snap.sessions.unbind(&context(server, principal, backend), sealed)
}

fn pending_context<'p>(server: &'p Server, principal: &'p str, backend: &'p str) -> [&'p [u8]; 4] {
    [b"pending-input", server.name.as_bytes(), principal.as_bytes(), backend.as_bytes()]
}

/// Where an exchange waiting for a client's input is held: the gateway process (a random
/// number drawn at start), the worker and the slot in its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// The gateway process (instances sharing `sessions.keys` draw different ones).
    pub process: u64,
    /// The worker holding it.
    pub worker: usize,
    /// Its slot in the worker's table (`backends::pending::Pendings`).
    pub slot: u64,
}

/// The gateway's `requestState` naming the exchange `at`, handed to `principal` for `backend`.
pub(crate) fn seal_held(
    snap: &Snapshot,
    server: &Server,
    principal: &str,
    backend: &str,
    at: Held,
) -> String {
    let own = format!("{:x}.{}.{:x}", at.process, at.worker, at.slot);
    snap.sessions.bind(&pending_context(server, principal, backend), &own)
}

/// The exchange a gateway `requestState` names, when it was handed to `principal` for `backend`.
pub(crate) fn open_held(
    snap: &Snapshot,
    server: &Server,
    principal: &str,
    backend: &str,
    sealed: &str,
) -> Option<Held> {
    let own = snap.sessions.unbind(&pending_context(server, principal, backend), sealed)?;
    let mut parts = own.splitn(3, '.');
    let process = u64::from_str_radix(parts.next()?, 16).ok()?;
    let worker = parts.next()?.parse().ok()?;
    let slot = u64::from_str_radix(parts.next()?, 16).ok()?;
    Some(Held { process, worker, slot })
}

/// A backend's answer with the `requestState` of an `InputRequiredResult` replaced by
/// `gateway_state(own)`; anything else is left as it is (only answers naming a `requestState`
/// are parsed).
pub(crate) fn seal_answer(body: &mut Vec<u8>, sse: bool, gateway_state: impl Fn(&str) -> String) {
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    static REQUEST_STATE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"requestState\""));
    if REQUEST_STATE.find(body).is_none() {
        return;
    }
    crate::proxy::tasks::rewrite_results(body, sse, |result| {
        if result.get("resultType").and_then(|t| t.as_str()) != Some("input_required") {
            return false;
        }
        let Some(own) = result.get("requestState").and_then(|s| s.as_str()) else { return false };
        result["requestState"] = serde_json::Value::String(gateway_state(own));
        true
    });
}
