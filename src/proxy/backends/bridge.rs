//! The MRTR bridge (SEP-2322) toward the 2025 revisions. A 2025-revision backend asks the client
//! something during a call (`sampling/createMessage`, `elicitation/create`, `roots/list`) by
//! sending a request on the call's SSE answer stream and waiting for the client's answer. A
//! 2026-07-28 client has no such stream to answer on: it gets an `InputRequiredResult` instead
//! (`inputRequests` keyed `r1`, `r2`, ...; a `requestState` naming the held exchange, bound to
//! the caller and the backend, `proxy::mrtr::seal_held`), and retries the call with
//! `inputResponses`. The worker holding the exchange ([`super::pending`]) sends the backend each
//! answer under its own request id and reads on until the call's result (or the next question).
//!
//! A retry that reaches another worker of the process is handed to the owner ([`HandOff`]); one
//! that reaches another gateway instance, or comes after the exchange expired or was answered,
//! gets -32602 telling the client to call again. A `ping` from the backend is answered here;
//! any other request gets -32601 from the gateway (the client could not answer it in an
//! `InputRequiredResult`). Notifications on the stream (progress, logs) are not relayed.

use std::rc::Rc;
use std::sync::LazyLock;
use std::time::Instant;

use crate::config::snapshot::{Backend, Server, Snapshot};
use crate::error::{Error, Kind};
use crate::http::response;
use crate::mcp::{json, sse};
use crate::proxy::core::Core;
use crate::proxy::mrtr::{self, Held};
use crate::proxy::observe::Trace;
use crate::upstream::client::Streaming;

use super::exchange::{Answer, Cx, Tally};
use super::pending::{HandOff, Inbox, Pending, Resumed, Who};
use super::wire::{backend_error, Wire};

/// The requests a 2026-07-28 client can answer in `inputResponses`.
const INPUT_METHODS: [&str; 3] = ["sampling/createMessage", "elicitation/create", "roots/list"];

/// This process among gateway instances sharing `sessions.keys`: a `requestState` of another
/// one names an exchange this one does not hold.
static PROCESS: LazyLock<u64> = LazyLock::new(|| {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u64::from_le_bytes(b)
});

/// The answer to a retry whose exchange is not held (any more): the client starts over.
fn gone() -> Error {
    Error::client(
        Kind::InvalidParams,
        "Invalid requestState: the exchange it names is no longer held (it expired, was answered, or \
         is held by another gateway instance); call again without requestState and inputResponses",
    )
}

/// The answer to a retry whose state names an exchange of another request (method or name): the
/// exchange stays held for its own retry.
fn other_request() -> Error {
    Error::client(
        Kind::InvalidParams,
        "Invalid requestState: it belongs to another request (a retry must repeat the method and name)",
    )
}

/// What one message on a backend's answer stream is.
enum Message {
    /// The call's answer, completed for the 2026-07-28 revision (the client's id in it).
    Answer(Vec<u8>),
    /// A request to the client: its method, id (JSON) and params (JSON, `None` when absent).
    Request(String, Vec<u8>, Option<Vec<u8>>),
    /// A notification, or anything else: not relayed.
    Other,
}

/// A 2025 backend's response `payload` to `method` as the 2026-07-28 revision requires it
/// (`mcp::reply::complete_legacy_response`, with the client's `id` when given): one tape parse
/// over the worker's decoder, no tree. `None` when `payload` is not a response.
pub(crate) fn complete(cx: &Cx<'_>, payload: &[u8], method: &str, id: Option<&[u8]>) -> Option<Vec<u8>> {
    use crate::mcp::json::Decoder;
    // The decoder is free here (phases 3-6 hold it only synchronously); a fresh one otherwise.
    let mut fresh = None;
    let mut held = cx.core.decoder.try_borrow_mut();
    let decoder: &mut Decoder = match &mut held {
        Ok(d) => d,
        Err(_) => fresh.insert(Decoder::default()),
    };
    let mut out = cx.core.spare.borrow_mut().take();
    out.reserve(payload.len() + 32);
    crate::mcp::reply::complete_legacy_response(decoder, payload, (method, id), &mut out).then_some(out)
}

fn classify(cx: &Cx<'_>, payload: &[u8], method: &str, id: &[u8]) -> Message {
    if let Some(out) = complete(cx, payload, method, Some(id)) {
        return Message::Answer(out);
    }
    let Ok(serde_json::Value::Object(m)) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return Message::Other;
    };
    match (m.get("method").and_then(|v| v.as_str()), m.get("id")) {
        (Some(name), Some(rid)) if !rid.is_null() => {
            let params = m.get("params").and_then(|p| serde_json::to_vec(p).ok());
            Message::Request(name.to_string(), serde_json::to_vec(rid).unwrap_or_default(), params)
        }
        _ => Message::Other,
    }
}

/// A request of the backend the client is asked: its key in `inputRequests`, the backend's id
/// (JSON), method and params (JSON).
struct Question {
    key: String,
    id: Vec<u8>,
    method: String,
    params: Option<Vec<u8>>,
}

/// A gateway-owned backend session: protocol version and session id.
pub(crate) type Session<'s> = (&'s str, &'s str);

/// Reads a 2025 backend's SSE answer to `method` (the client's id `id`) until the call's
/// answer, answering the backend's pings and refusing what the client cannot be asked; a
/// request the client can answer parks the exchange and answers the client an
/// `InputRequiredResult`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn follow(
    cx: &Cx<'_>,
    server: &Server,
    b: &Backend,
    (method, name, id): (&'static str, &str, &[u8]),
    (mut stream, mut events, queued): (Streaming, sse::Events, Vec<Vec<u8>>),
    session: Session<'_>,
    fwd: &[(&[u8], &[u8])],
) -> Result<Answer, Error> {
    let max_event = cx.snap.limits.http.max_body_bytes;
    let mut queued = std::collections::VecDeque::from(queued);
    let mut asked: Vec<Question> = Vec::new();
    loop {
        while let Some(payload) = queued.pop_front() {
            match classify(cx, &payload, method, id) {
                Message::Answer(mut out) => {
                    stream.finish(&cx.core.upstream);
                    cx.redact(b, &mut out);
                    return Ok((200, out, None, response::JSON));
                }
                Message::Request(name, rid, params) => {
                    if INPUT_METHODS.contains(&name.as_str()) {
                        let key = format!("r{}", asked.len() + 1);
                        asked.push(Question { key, id: rid, method: name, params });
                        continue;
                    }
                    let body = if name == "ping" {
                        reply(&rid, Ok(b"{}"))
                    } else {
                        reply(&rid, Err((-32601, "Method not found: the client cannot be asked this")))
                    };
                    answer_backend(cx, b, session, fwd, &body).await;
                }
                Message::Other => {}
            }
        }
        if !asked.is_empty() {
            let left: Vec<Vec<u8>> = queued.into_iter().collect();
            return Ok(park(cx, server, b, (method, name, id), (stream, events, left), session, fwd, asked));
        }
        let next = {
            let _waiting = cx.tally.wait();
            stream.next().await
        };
        match next {
            Ok(Some(piece)) => {
                events.push(piece, |ev| queued.extend(sse::data_payloads(ev)));
                if events.pending() > max_event {
                    return Err(Error::upstream(format!("backend {}: stream event too large", b.name)));
                }
            }
            Ok(None) => {
                return Err(Error::upstream(format!("backend {} ended its answer without a result", b.name)))
            }
            Err(e) => {
                cx.core.stats.borrow_mut().backend_failed(&b.name);
                return Err(backend_error(b, &e));
            }
        }
    }
}

/// A JSON-RPC response to a backend's request `rid`: a result, or an error (code, message).
fn reply(rid: &[u8], result: Result<&[u8], (i32, &str)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(rid);
    match result {
        Ok(r) => {
            out.extend_from_slice(b",\"result\":");
            out.extend_from_slice(r);
        }
        Err((code, message)) => {
            out.extend_from_slice(format!(",\"error\":{{\"code\":{code},\"message\":").as_bytes());
            json::write_str(&mut out, message);
            out.push(b'}');
        }
    }
    out.push(b'}');
    out
}

/// Posts a response to a backend request in the backend session (best effort: a backend that
/// refuses it still owes the call its answer, or ends the stream).
async fn answer_backend(
    cx: &Cx<'_>,
    b: &Backend,
    (version, sid): Session<'_>,
    fwd: &[(&[u8], &[u8])],
    body: &[u8],
) {
    match cx.send(b, body, Wire::session(version, sid), fwd).await {
        Ok(r) if r.status < 300 => {}
        Ok(r) => log::warn!("backend {}: an answer to its request got HTTP {}", b.name, r.status),
        Err(e) => log::warn!("backend {}: delivering an answer to its request failed ({e})", b.name),
    }
}

/// Holds the exchange on this worker and writes the client's `InputRequiredResult`.
#[allow(clippy::too_many_arguments)]
fn park(
    cx: &Cx<'_>,
    server: &Server,
    b: &Backend,
    (method, name, id): (&'static str, &str, &[u8]),
    (stream, events, queued): (Streaming, sse::Events, Vec<Vec<u8>>),
    (version, sid): Session<'_>,
    fwd: &[(&[u8], &[u8])],
    asked: Vec<Question>,
) -> Answer {
    let mut slot = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&cx.core.rng, &mut slot);
    let at = Held { process: *PROCESS, worker: cx.core.worker, slot: u64::from_le_bytes(slot) };
    let state = mrtr::seal_held(cx.snap, server, cx.owner, &b.name, at);
    let mut out = Vec::with_capacity(256);
    crate::mcp::reply::begin_raw(&mut out, id);
    out.extend_from_slice(b"\"resultType\":\"input_required\",\"inputRequests\":{");
    for (n, q) in asked.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        json::write_str(&mut out, &q.key);
        out.extend_from_slice(b":{\"method\":");
        json::write_str(&mut out, &q.method);
        if let Some(p) = &q.params {
            out.extend_from_slice(b",\"params\":");
            out.extend_from_slice(p);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"},\"requestState\":");
    json::write_str(&mut out, &state);
    out.extend_from_slice(b"}}");
    cx.redact(b, &mut out);
    let who = Who {
        principal: cx.principal.cloned().unwrap_or_else(crate::auth::Principal::anonymous),
        bearer: cx.bearer.map(<[u8]>::to_vec),
        caps: cx.caps.to_vec(),
        fwd: fwd.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect(),
    };
    let now = Instant::now();
    let pending = Pending {
        stream,
        events,
        queued,
        server: server.name.clone(),
        backend: b.name.clone(),
        who,
        version: version.to_string(),
        session: sid.to_string(),
        method,
        name: name.to_string(),
        asked: asked.into_iter().map(|q| (q.key, q.id)).collect(),
        expires: now + super::pending::PENDING_TTL,
    };
    cx.core.pending.borrow_mut().park(at.slot, pending, now);
    cx.core.stats.borrow_mut().input_asked += 1;
    (200, out, None, response::JSON)
}

/// Goes on with the exchange `at` (a retry with `inputResponses`, the JSON object `responses`,
/// and the JSON-RPC id `id`), here or on the worker that holds it.
pub(crate) async fn resume(
    cx: &Cx<'_>,
    server: &Server,
    (backend, method, name): (usize, &'static str, &str),
    at: Held,
    (id, responses): (&[u8], &[u8]),
) -> Result<Answer, Error> {
    let b = &server.backends[backend];
    if at.process != *PROCESS {
        return Err(gone());
    }
    if at.worker == cx.core.worker {
        let p = take_held(cx.core, at.slot, (cx.owner, &server.name, &b.name), (method, name))?;
        return go_on(cx.core, cx.snap, server, (cx.tally, cx.trace), p, (id, responses)).await;
    }
    let (tx, rx) = futures_channel::oneshot::channel();
    let h = HandOff {
        slot: at.slot,
        server: server.name.clone(),
        principal: cx.owner.into(),
        backend: b.name.clone(),
        method,
        name: name.into(),
        id: id.to_vec(),
        responses: responses.to_vec(),
        reply: tx,
    };
    if !cx.core.handoffs.send(at.worker, Inbox::Resume(h)) {
        return Err(gone());
    }
    cx.core.stats.borrow_mut().input_handoffs += 1;
    let _waiting = cx.tally.wait();
    match rx.await {
        Ok(Ok((status, body, ctype))) => Ok((status, body, None, ctype)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(gone()),
    }
}

/// The exchange under `slot` when it is this caller's at this endpoint and backend (else it is
/// not held for them), taken out when the retry repeats its request (else left for its own).
fn take_held(
    core: &Core,
    slot: u64,
    (principal, server, backend): (&str, &str, &str),
    (method, name): (&'static str, &str),
) -> Result<Pending, Error> {
    let now = Instant::now();
    let mut held = core.pending.borrow_mut();
    match held.peek(slot, now) {
        Some(p) if *p.who.principal.id() == *principal && *p.server == *server && *p.backend == *backend => {
            if p.method != method || p.name != name {
                return Err(other_request());
            }
        }
        _ => return Err(gone()),
    }
    held.take(slot, now).ok_or_else(gone)
}

/// A hand-off from another worker, carried out on this one (its owner).
pub async fn serve_handoff(core: Rc<Core>, h: HandOff) {
    let HandOff { slot, server, principal, backend, method, name, id, responses, reply } = h;
    let snap = core.current();
    let answer = async {
        let s = snap.servers.iter().find(|s| *s.name == *server).ok_or_else(gone)?;
        let p = take_held(&core, slot, (&principal, &server, &backend), (method, &name))?;
        let tally = Tally::default();
        go_on(&core, &snap, s, (&tally, Trace::none()), p, (&id, &responses)).await
    };
    let r: Result<Resumed, Error> = answer.await.map(|(status, body, _, ctype)| (status, body, ctype));
    let _ = reply.send(r);
}

/// Sends the backend the client's answers (a missing one as an error), then reads on.
async fn go_on(
    core: &Core,
    snap: &Snapshot,
    server: &Server,
    (tally, trace): (&Tally, Trace<'_>),
    p: Pending,
    (id, responses): (&[u8], &[u8]),
) -> Result<Answer, Error> {
    let Some(b) = server.backends.iter().find(|b| *b.name == *p.backend) else { return Err(gone()) };
    let Pending { mut stream, events, queued, who, version, session, method, name, asked, .. } = p;
    let Who { principal, bearer, caps, fwd } = who;
    let fwd: Vec<(&[u8], &[u8])> = fwd.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect();
    let cx = Cx {
        core,
        owner: principal.id(),
        principal: Some(&principal),
        bearer: bearer.as_deref(),
        snap,
        tally,
        trace,
        caps: &caps,
    };
    let given: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(responses).unwrap_or_default();
    let session = (version.as_str(), session.as_str());
    for (key, rid) in &asked {
        let body = match given.get(key).filter(|v| v.is_object()) {
            Some(v) => reply(rid, Ok(&serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec()))),
            None => reply(rid, Err((-32602, "The client gave no response to this request"))),
        };
        answer_backend(&cx, b, session, &fwd, &body).await;
    }
    stream.wait_at_most(snap.limits.upstream_timeout);
    follow(&cx, server, b, (method, &name, id), (stream, events, queued), session, &fwd).await
}
