//! Talking to aggregated MCP backends: building the HTTP request (backend credential, forwarded
//! client headers, the backend's own session), choosing an endpoint (round-robin, next endpoint
//! on connect failure only), and reading a JSON-RPC answer that came as JSON or as SSE.
//!
//! Sessions: a client session (sealed id) records, per backend, the protocol version and the
//! backend's own `Mcp-Session-Id`, as `"<version> <session id>"` (the session id may be empty for
//! stateless backends).

use std::cell::Cell;

use crate::config::snapshot::{Backend, Limits};
use crate::error::{Error, Kind, Side};
use crate::http::response::write_u64;
use crate::upstream::client::{self, Response, UpstreamError};
use crate::upstream::pool::Pool;

/// How a worker reaches a backend for clients without a session of their own (2026-07-28): the
/// backend speaks the stateless revision, or the worker holds a session with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// The backend answered `server/discover` with 2026-07-28: reached directly.
    Stateless,
    /// A gateway-owned session (version, session id) made by `initialize`.
    Session {
        /// Negotiated version.
        version: std::rc::Rc<str>,
        /// The backend's `Mcp-Session-Id` ("" for a stateless legacy backend).
        session: std::rc::Rc<str>,
    },
}

/// The revision a backend of a client session speaks when it refused `initialize` and answered
/// `server/discover` (the reverse bridge, `proxy::backends::reverse`). Its entry in the sealed
/// session has no backend session id: in its place, the client's declared capabilities (a JSON
/// object), which every request to it carries in `_meta`.
pub const MODERN: &str = "2026-07-28";

/// A backend's session as the sealed client session records it.
pub fn encode_session(version: &str, sid: &str) -> String {
    format!("{version} {sid}")
}

/// Inverse of [`encode_session`]: (protocol version, backend session id or "").
pub fn decode_session(s: &str) -> (&str, &str) {
    s.split_once(' ').unwrap_or((s, ""))
}

/// The error a client sees when a backend fails: names the backend, never its address; 504 for
/// a timeout, 502 for anything else.
pub fn backend_error(backend: &Backend, e: &UpstreamError) -> Error {
    Error {
        kind: match e {
            UpstreamError::Timeout => Kind::GatewayTimeout,
            UpstreamError::NoCredential(_) => Kind::Denied,
            UpstreamError::Token(..) => Kind::TokenService,
            _ => Kind::BadGateway,
        },
        side: Side::Upstream,
        message: format!("backend {}: {e}", backend.name).into(),
    }
}

/// How a request addresses a backend: the protocol version, the backend's session (legacy) and,
/// on the 2026-07-28 wire, the method and name repeated in headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wire<'a> {
    /// `MCP-Protocol-Version` ("" = none, as for initialize).
    pub version: &'a str,
    /// `Mcp-Session-Id` ("" = none).
    pub session: &'a str,
    /// `Mcp-Method` (2026-07-28).
    pub method: Option<&'a str>,
    /// `Mcp-Name` (2026-07-28: tools/call, prompts/get, resources/read).
    pub name: Option<&'a str>,
    /// The HTTP method: `POST` a message, `GET` the backend's stream, `DELETE` its session.
    pub verb: Verb,
    /// `Last-Event-ID` for a `GET` that resumes the backend's stream ("" = none).
    pub last_event_id: &'a str,
    /// The body's JSON-RPC id (where its value is) written as this instead: the gateway's own
    /// id on a session other clients share (`mcp::envelope::id_value`).
    pub renumbered: Option<((usize, usize), &'a [u8])>,
}

/// The HTTP method of a request to a backend (Streamable HTTP uses three).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verb {
    /// A JSON-RPC message in the body.
    #[default]
    Post,
    /// Opens the backend's server-to-client SSE stream (no body).
    Get,
    /// Ends the backend session (no body).
    Delete,
}

impl<'a> Wire<'a> {
    /// A 2025-revision request within a backend session.
    pub fn session(version: &'a str, session: &'a str) -> Wire<'a> {
        Wire {
            version,
            session,
            method: None,
            name: None,
            verb: Verb::Post,
            last_event_id: "",
            renumbered: None,
        }
    }

    /// A 2026-07-28 request.
    pub fn stateless(method: &'a str, name: Option<&'a str>) -> Wire<'a> {
        Wire {
            version: "2026-07-28",
            session: "",
            method: Some(method),
            name,
            verb: Verb::Post,
            last_event_id: "",
            renumbered: None,
        }
    }
}

/// A header value as the 2026-07-28 transport carries it: as is when it is header-safe, else in
/// the `=?base64?...?=` form.
fn header_value(out: &mut Vec<u8>, v: &str) {
    let safe = !v.is_empty()
        && v.bytes().all(|b| (0x21..=0x7e).contains(&b) || b == b' ')
        && !v.starts_with(' ')
        && !v.ends_with(' ')
        && !v.starts_with("=?");
    if safe {
        out.extend_from_slice(v.as_bytes());
    } else {
        out.extend_from_slice(b"=?base64?");
        out.extend_from_slice(base64_simd::STANDARD.encode_to_string(v.as_bytes()).as_bytes());
        out.extend_from_slice(b"?=");
    }
}

/// Headers a backend request carries besides the transport's own: the client headers this
/// backend gets (`forwardHeaders`, claim headers, `Mcp-Param-*`) and the gateway's trace
/// headers (`x-request-id`, `traceparent`, `tracestate`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Headers<'a> {
    /// Client headers passed on.
    pub forwarded: &'a [(&'a [u8], &'a [u8])],
    /// The request id and trace context (`observe::Trace`).
    pub trace: &'a [(&'a [u8], &'a [u8])],
    /// The credential for this caller (`backends[].security`).
    pub credential: Option<&'a crate::auth::scheme::BackendCredential>,
}

/// Builds the HTTP/1.1 request for `body` to `backend` at endpoint `target_index` in `r` (a
/// spare buffer; cleared first).
pub fn request(
    backend: &Backend,
    target_index: usize,
    body: &[u8],
    wire: Wire<'_>,
    headers: Headers<'_>,
    mut r: Vec<u8>,
) -> Vec<u8> {
    let t = &backend.targets[target_index % backend.targets.len()];
    // Room for the head with a credential and trace context: never regrown.
    r.clear();
    r.reserve(640 + body.len());
    r.extend_from_slice(match wire.verb {
        Verb::Post => b"POST ",
        Verb::Get => b"GET ",
        Verb::Delete => b"DELETE ",
    });
    r.extend_from_slice(t.path.as_bytes());
    if let Some(crate::auth::scheme::BackendCredential::Query { pair }) = headers.credential {
        r.push(if t.path.contains('?') { b'&' } else { b'?' });
        r.extend_from_slice(pair.as_bytes());
    }
    r.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    r.extend_from_slice(t.authority.as_bytes());
    if wire.verb == Verb::Get {
        r.extend_from_slice(b"\r\naccept: text/event-stream\r\n");
    } else {
        r.extend_from_slice(
            b"\r\naccept: application/json, text/event-stream\r\ncontent-type: application/json\r\ncontent-length: ",
        );
        let len = match wire.renumbered {
            Some(((start, end), id)) => body.len() - (end - start) + id.len(),
            None => body.len(),
        };
        write_u64(&mut r, len as u64);
        r.extend_from_slice(b"\r\n");
    }
    if !wire.last_event_id.is_empty() {
        r.extend_from_slice(b"last-event-id: ");
        r.extend_from_slice(wire.last_event_id.as_bytes());
        r.extend_from_slice(b"\r\n");
    }
    if !wire.version.is_empty() {
        r.extend_from_slice(b"mcp-protocol-version: ");
        r.extend_from_slice(wire.version.as_bytes());
        r.extend_from_slice(b"\r\n");
    }
    if !wire.session.is_empty() {
        r.extend_from_slice(b"mcp-session-id: ");
        r.extend_from_slice(wire.session.as_bytes());
        r.extend_from_slice(b"\r\n");
    }
    if let Some(m) = wire.method {
        r.extend_from_slice(b"mcp-method: ");
        header_value(&mut r, m);
        r.extend_from_slice(b"\r\n");
    }
    if let Some(n) = wire.name {
        r.extend_from_slice(b"mcp-name: ");
        header_value(&mut r, n);
        r.extend_from_slice(b"\r\n");
    }
    if let Some(crate::auth::scheme::BackendCredential::Header { name, value }) = headers.credential {
        r.extend_from_slice(name.as_bytes());
        r.extend_from_slice(b": ");
        r.extend_from_slice(value.as_bytes());
        r.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers.forwarded.iter().chain(headers.trace) {
        r.extend_from_slice(name);
        r.extend_from_slice(b": ");
        r.extend_from_slice(value);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"\r\n");
    match wire.renumbered {
        Some(((start, end), id)) => {
            r.extend_from_slice(&body[..start]);
            r.extend_from_slice(id);
            r.extend_from_slice(&body[end..]);
        }
        None => r.extend_from_slice(body),
    }
    r
}

/// Sends `body` to `backend` and returns once the answer's head arrived: endpoints in
/// round-robin order starting at the per-core cursor, moving to the next endpoint only when
/// connecting fails (the request never reached anyone). The request is written in a buffer from
/// the worker's spares, which the answer is then read into (give its body back when done).
pub async fn open(
    (pool, spare): (&std::cell::RefCell<Pool>, &std::cell::RefCell<crate::proxy::core::Spare>),
    rr: &Cell<usize>,
    limits: &Limits,
    backend: &Backend,
    body: &[u8],
    wire: Wire<'_>,
    headers: Headers<'_>,
) -> Result<client::Streaming, UpstreamError> {
    let lim = limits.upstream();
    let start = rr.get();
    rr.set(start.wrapping_add(1));
    let n = backend.targets.len();
    for k in 0..n {
        let i = (start + k) % n;
        let req = request(backend, i, body, wire, headers, spare.borrow_mut().take());
        match client::open(pool, &backend.targets[i], req, lim).await {
            Err(UpstreamError::Connect) => {
                log::warn!("backend {}: endpoint {} refused the connection", backend.name, i);
            }
            other => return other,
        }
    }
    Err(UpstreamError::Connect)
}

/// The JSON-RPC message answering request `id` (any response when `None`) in a backend response
/// (JSON body, or the SSE event carrying it), parsed.
pub fn answer(resp: &Response, id: Option<&str>) -> Option<serde_json::Value> {
    let is_sse = resp.header("content-type").is_some_and(|c| c.starts_with(b"text/event-stream"));
    let candidates: Vec<Vec<u8>> =
        if is_sse { crate::mcp::sse::data_payloads(&resp.body) } else { vec![resp.body.clone()] };
    candidates.iter().filter_map(|d| serde_json::from_slice::<serde_json::Value>(d).ok()).find(|v| {
        id.is_none_or(|id| v.get("id").is_some_and(|i| i.as_str() == Some(id)))
            && (v.get("result").is_some() || v.get("error").is_some())
    })
}
