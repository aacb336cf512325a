//! The reverse bridge: a 2025-revision client (a session, `initialize`) in front of a backend that
//! speaks only the 2026-07-28 revision (it refuses `initialize` and answers `server/discover`;
//! such a backend's entry in the client's session records its revision and the client's
//! declared capabilities, `wire::MODERN`).
//!
//! The client's requests reach that backend on the 2026-07-28 wire (`Mcp-Method`, `Mcp-Name`, and
//! `_meta` with the revision and the client's capabilities). When the backend answers an
//! `InputRequiredResult`, the client's answer becomes an SSE stream: each of the backend's
//! `inputRequests` is sent to the client as a request (its id tagged `\u{1e}<worker>.<slot>.<n>`,
//! [`ASK_TAG`]), the client answers each with a POST in its session (on any worker: an answer
//! reaching another worker is handed to this one, `pending::Inbox::Answer`), and the gateway
//! retries the call with `inputResponses` and the backend's `requestState`, until the backend
//! completes it. Bounded: [`MAX_ROUNDS`] rounds, `pending::PENDING_TTL` per round,
//! `pending::PENDING_MAX` calls waiting per worker.

use futures_util::StreamExt;
use serde_json::{json, Map, Value};

use crate::config::snapshot::{Server, Snapshot};
use crate::error::{Error, Kind};
use crate::http::response::{self, Extra};
use crate::proxy::conn::Conn;
use crate::proxy::core::Core;
use crate::proxy::exit::{error_exit, Rejection, To};

use super::exchange::*;
use super::pending::{Answered, Ask, Inbox, PENDING_TTL};
use super::stream::{write_chunk, STREAM_KEEPALIVE};
use super::wire::{answer, backend_error, Wire, MODERN};

/// Marks the id of a request the reverse bridge sends the client (record separator: never part
/// of an id the gateway hands out otherwise).
pub const ASK_TAG: char = '\u{1e}';

/// At most this many rounds of questions per call.
const MAX_ROUNDS: usize = 8;

/// The call the client's answer (a JSON-RPC response whose id is `id`) is for: worker, slot and
/// the request's index; `None` when `id` is not one the reverse bridge handed out.
pub(crate) fn asked(id: &str) -> Option<(usize, u64, usize)> {
    let mut parts = id.strip_prefix(ASK_TAG)?.splitn(3, '.');
    let worker = parts.next()?.parse().ok()?;
    let slot = u64::from_str_radix(parts.next()?, 16).ok()?;
    let key = parts.next()?.parse().ok()?;
    Some((worker, slot, key))
}

/// Hands the client's answer to the call it is for, here or on the worker holding it. `false`
/// when no call of this principal waits for it.
pub(crate) fn deliver(core: &Core, worker: usize, a: Answered) -> bool {
    if worker == core.worker {
        return core.asks.borrow().deliver(a);
    }
    core.stats.borrow_mut().input_handoffs += 1;
    core.handoffs.send(worker, Inbox::Answer(a))
}

/// The client's body for the backend: `_meta` gains the revision and the client's capabilities
/// (`caps`), and, on a retry, `inputResponses` and `requestState`.
fn for_backend(
    body: &[u8],
    caps: &str,
    retry: Option<(&Map<String, Value>, Option<&Value>)>,
) -> Option<Vec<u8>> {
    let mut msg: Value = serde_json::from_slice(body).ok()?;
    let params = msg.as_object_mut()?.entry("params").or_insert_with(|| json!({})).as_object_mut()?;
    let meta = params.entry("_meta").or_insert_with(|| json!({})).as_object_mut()?;
    meta.insert("io.modelcontextprotocol/protocolVersion".into(), Value::String(MODERN.into()));
    let caps: Value = serde_json::from_str(caps).unwrap_or_else(|_| json!({}));
    meta.insert("io.modelcontextprotocol/clientCapabilities".into(), caps);
    if let Some((responses, state)) = retry {
        params.insert("inputResponses".into(), Value::Object(responses.clone()));
        match state {
            Some(s) => params.insert("requestState".into(), s.clone()),
            None => params.remove("requestState"),
        };
    }
    serde_json::to_vec(&msg).ok()
}

fn event(v: &Value) -> Vec<u8> {
    let mut e = b"event: message\ndata: ".to_vec();
    e.extend_from_slice(v.to_string().as_bytes());
    e.extend_from_slice(b"\n\n");
    e
}

/// What the request needs to reach the backend and answer the client.
pub(crate) struct Call<'a> {
    pub(crate) backend: usize,
    pub(crate) method: &'static str,
    pub(crate) id: &'a [u8],
    pub(crate) body: &'a [u8],
    pub(crate) tool: &'a str,
    /// The client's declared capabilities (its session's entry for the backend).
    pub(crate) caps: &'a str,
}

/// A 2025-revision client's call to a 2026-07-28-only backend, answered in `conn.out`.
pub(crate) async fn call(
    (core, snap, server): (&Core, &Snapshot, &Server),
    conn: &mut Conn,
    caller: Caller<'_>,
    call: Call<'_>,
) -> (u16, bool) {
    let Caller { keep_alive, cors, principal, tally } = caller;
    let b = &server.backends[call.backend];
    // The backend's final answer (or the failure), and whether the client's stream was opened.
    let mut streaming = false;
    let outcome: Result<Vec<u8>, Error> = 'call: {
        let Some(mut body) = for_backend(call.body, call.caps, None) else {
            break 'call Err(Error::client(Kind::InvalidParams, "the request is not a JSON object"));
        };
        let name = match call.method {
            "tools/call" | "prompts/get" | "resources/read" => Some(call.tool),
            _ => None,
        };
        for _ in 0..MAX_ROUNDS {
            let exchanged = {
                let Conn { buf, head, request_id, .. } = &*conn;
                let cx = Cx::for_request(
                    (core, snap),
                    (head, buf, request_id),
                    (principal, tally),
                    call.caps.as_bytes(),
                );
                let fwd = forwarded(server, principal, head, buf);
                let fwd = fwd_for(&fwd, call.backend);
                cx.send(b, &body, Wire::stateless(call.method, name), fwd).await.map(|mut r| {
                    cx.redact(b, &mut r.body);
                    r
                })
            };
            let resp = match exchanged {
                Ok(r) => r,
                Err(e) => break 'call Err(backend_error(b, &e)),
            };
            let Some(mut msg) = answer(&resp, None) else {
                log::warn!("backend {}: answered HTTP {} without a JSON-RPC answer", b.name, resp.status);
                break 'call Err(Error::upstream(format!(
                    "backend {} answered HTTP {}",
                    b.name, resp.status
                )));
            };
            if msg["result"]["resultType"] != "input_required" {
                msg["id"] = serde_json::from_slice(call.id).unwrap_or(Value::Null);
                break 'call Ok(serde_json::to_vec(&msg).unwrap_or_default());
            }
            // Questions: asked on the client's stream, answered by its POSTs.
            let requests = msg["result"]["inputRequests"].as_object().cloned().unwrap_or_default();
            let state = msg["result"].get("requestState").cloned();
            if !streaming {
                let Conn { buf, out, request_id, .. } = &mut *conn;
                let origin = cors.map(|o| o.of(buf)).filter(|o| !o.is_empty());
                let extra = Extra { cors_origin: origin, request_id: Some(request_id), ..Extra::default() };
                response::write_stream_head(out, 200, response::SSE, keep_alive, &extra);
                streaming = true;
            }
            let responses = match ask(core, snap, conn, (principal, tally), &requests).await {
                Ok(r) => r,
                Err(e) => break 'call Err(e),
            };
            match for_backend(call.body, call.caps, Some((&responses, state.as_ref()))) {
                Some(next) => body = next,
                None => break 'call Err(Error::internal("the retry could not be written")),
            }
        }
        Err(Error::upstream(format!("backend {}: more than {MAX_ROUNDS} rounds of questions", b.name)))
    };
    let Conn { buf, out, scratch, request_id, .. } = &mut *conn;
    match (outcome, streaming) {
        (Ok(body), false) => {
            let origin = cors.map(|o| o.of(buf)).filter(|o| !o.is_empty());
            let extra = Extra { cors_origin: origin, request_id: Some(request_id), ..Extra::default() };
            response::write_head(out, 200, Some(response::JSON), body.len(), keep_alive, &extra);
            out.extend_from_slice(&body);
            (200, !keep_alive)
        }
        (Err(err), false) => {
            let raw = crate::mcp::envelope::Id::Raw(call.id);
            let reply = crate::respond::ErrorReply { id: Some(&raw), ..Default::default() };
            let to = To { out, scratch, buf, request_id, cors, keep_alive };
            let o = error_exit(to, &Rejection { reply, ..Rejection::of(&err) });
            (o.status, o.close)
        }
        (outcome, true) => {
            let last = match outcome {
                Ok(body) => body,
                Err(err) => {
                    let mut e = Vec::with_capacity(128);
                    let raw = crate::mcp::envelope::Id::Raw(call.id);
                    let code =
                        crate::respond::wire_for(err.kind, crate::mcp::version::Generation::Sessions).code;
                    crate::respond::error_body(&mut e, code, &err.message, Some(&raw));
                    e
                }
            };
            let mut ev = b"event: message\ndata: ".to_vec();
            ev.extend_from_slice(&last);
            ev.extend_from_slice(b"\n\n");
            write_chunk(out, &ev);
            out.extend_from_slice(b"0\r\n\r\n");
            (200, !keep_alive)
        }
    }
}

/// Sends the client `requests` (key -> {method, params}) on its stream and waits for every
/// answer: the `inputResponses` of the retry.
async fn ask(
    core: &Core,
    snap: &Snapshot,
    conn: &mut Conn,
    (principal, tally): (&crate::auth::Principal, &Tally),
    requests: &Map<String, Value>,
) -> Result<Map<String, Value>, Error> {
    let mut slot = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&core.rng, &mut slot);
    let slot = u64::from_le_bytes(slot);
    let (tx, mut rx) = futures_channel::mpsc::unbounded();
    if !core.asks.borrow_mut().hold(slot, Ask { principal: principal.id().into(), tx }) {
        return Err(Error::upstream("too many calls wait for their clients' answers on this worker"));
    }
    /// Lets go of the slot however the wait ends.
    struct Release<'c>(&'c Core, u64);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            self.0.asks.borrow_mut().release(self.1);
        }
    }
    let _release = Release(core, slot);
    let keys: Vec<&String> = requests.keys().collect();
    for (n, key) in keys.iter().enumerate() {
        let req = &requests[*key];
        let id = format!("{ASK_TAG}{}.{slot:x}.{n}", core.worker);
        let mut msg = json!({"jsonrpc":"2.0","id":id,"method":req["method"]});
        if let Some(p) = req.get("params") {
            msg["params"] = p.clone();
        }
        write_chunk(&mut conn.out, &event(&msg));
    }
    if !tally.flush(conn, &snap.limits).await {
        return Err(Error::upstream("the client went away"));
    }
    let mut given = Map::new();
    let deadline = std::time::Instant::now() + PENDING_TTL;
    while given.len() < keys.len() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let wake = monoio::select! {
            a = rx.next() => Some(a),
            _ = core.drain.wait() => None,
            _ = monoio::time::sleep(left.min(STREAM_KEEPALIVE)) => Some(Some((usize::MAX, None))),
        };
        match wake {
            None | Some(None) => return Err(Error::upstream("the gateway is shutting down")),
            // Quiet: a keep-alive comment finds a client that went away.
            Some(Some((usize::MAX, None))) => {
                if left.is_zero() {
                    return Err(Error::client(Kind::GatewayTimeout, "the client did not answer in time"));
                }
                write_chunk(&mut conn.out, b": keep-alive\n\n");
                if !tally.flush(conn, &snap.limits).await {
                    return Err(Error::upstream("the client went away"));
                }
            }
            Some(Some((n, Some(result)))) => {
                if let (Some(key), Ok(v)) = (keys.get(n), serde_json::from_slice::<Value>(&result)) {
                    given.insert((*key).clone(), v);
                }
            }
            Some(Some((_, None))) => {
                return Err(Error::client(Kind::InvalidParams, "the client refused a request of the backend"))
            }
        }
    }
    Ok(given)
}

/// Whether a session entry (`version`) is a 2026-07-28-only backend's.
pub(crate) fn is_modern(version: &str) -> bool {
    version == MODERN
}
