//! The request context the phases share ([`Ctx`]: the worker, the snapshot and the server, keep-alive,
//! CORS origin) and the response writer over the connection's buffers ([`Writer`]).

use crate::auth::Principal;
use crate::config::snapshot::{Server, Snapshot};
use crate::error::Error;
use crate::http::head::{Head, Span};
use crate::http::response::{self, Extra};
use crate::proxy::backends as aggregate;
use crate::proxy::conn::Conn;
use crate::proxy::core::Core;
use crate::proxy::exit::{error_exit, Rejection, To};
use crate::proxy::observe::Facts;
use crate::proxy::stats::MethodClass;
use crate::respond::ErrorReply;

/// Per-request decisions shared by the phases.
pub(crate) struct Ctx<'s> {
    pub(crate) keep_alive: bool,
    /// The request's Origin when it passed the check (echoed for CORS).
    pub(crate) cors_origin: Option<Span>,
    pub(crate) server: &'s Server,
    /// The worker's state.
    pub(crate) core: &'s Core,
    /// The configuration the request runs under (`server` is one of its servers).
    pub(crate) snap: &'s Snapshot,
    /// The client's address (the TCP peer).
    pub(crate) peer: std::net::IpAddr,
    /// Whether phase 5 may ask to learn a backend's tools before deciding (once per request).
    pub(crate) may_learn: std::cell::Cell<bool>,
}

/// Response assembly over the connection's buffers (split borrows of `Conn`).
pub(crate) struct Writer<'c, 's> {
    pub(crate) out: &'c mut Vec<u8>,
    pub(crate) scratch: &'c mut Vec<u8>,
    pub(crate) tmp: &'c mut Vec<u8>,
    /// Where a 2026-07-28 request's declared capabilities are written (`Conn::caps`).
    pub(crate) caps: &'c mut Vec<u8>,
    pub(crate) buf: &'c [u8],
    pub(crate) head: &'c Head,
    pub(crate) cx: &'c Ctx<'s>,
    pub(crate) principal: &'c Principal,
    pub(crate) request_id: &'c [u8],
    /// The request body as the client sent it, and where the decoder's copy of it starts.
    pub(crate) body: &'c [u8],
    pub(crate) base: usize,
    /// What the request did, for phase 8.
    pub(crate) facts: &'c Facts<'s>,
}

impl<'c> Writer<'c, '_> {
    pub(crate) fn extra(&self) -> Extra<'c> {
        Extra {
            cors_origin: self.cx.cors_origin.map(|o| o.of(self.buf)),
            request_id: Some(self.request_id),
            ..Extra::default()
        }
    }

    /// Where this request's answers go, for the error exit.
    pub(crate) fn to(&mut self) -> To<'_> {
        To {
            out: self.out,
            scratch: self.scratch,
            buf: self.buf,
            request_id: self.request_id,
            cors: self.cx.cors_origin,
            keep_alive: self.cx.keep_alive,
        }
    }

    /// A JSON-RPC error for this message through the one error exit.
    pub(crate) fn error(&mut self, err: &Error, reply: &ErrorReply<'_, '_>, method: MethodClass) -> Outcome {
        error_exit(self.to(), &Rejection { reply: *reply, method, ..Rejection::of(err) })
    }

    /// 202 with an empty body (accepted notification or response).
    pub(crate) fn accepted(&mut self, method: MethodClass) -> Outcome {
        let extra = self.extra();
        response::write_head(self.out, 202, None, 0, self.cx.keep_alive, &extra);
        Outcome { status: 202, close: !self.cx.keep_alive, method }
    }

    /// 200 with `scratch` as the JSON body.
    pub(crate) fn json(&mut self, session_id: Option<&str>, method: MethodClass) -> Outcome {
        let mut extra = self.extra();
        extra.session_id = session_id;
        response::write_head(
            self.out,
            200,
            Some(response::JSON),
            self.scratch.len(),
            self.cx.keep_alive,
            &extra,
        );
        self.out.extend_from_slice(self.scratch);
        Outcome { status: 200, close: !self.cx.keep_alive, method }
    }

    pub(crate) fn header(&self, span: Option<Span>) -> Option<&'c [u8]> {
        span.map(|s| s.of(self.buf))
    }
}

pub(crate) fn allow_list<'b>(w: &Writer<'b, '_>) -> Option<&'b [u8]> {
    w.header(w.head.allow_tools)
}

/// The synchronous decision over a decoded body: answered, or backends are needed.
pub(crate) enum Step {
    Done(Outcome),
    Backends(aggregate::Plan, MethodClass),
    /// Phase 5 needs the argument rules of this backend's tools (read over `Via`) before it
    /// decides: learn them, then decode and decide again.
    Learn(usize, aggregate::Via),
}

impl From<Outcome> for Step {
    fn from(o: Outcome) -> Step {
        Step::Done(o)
    }
}

pub(crate) use crate::proxy::exit::Outcome;

/// The `Accept` values of (nearly) every MCP client: both media types, either order.
const COMMON_ACCEPT: [&[u8]; 2] =
    [b"application/json, text/event-stream", b"text/event-stream, application/json"];

/// Whether the request's `Accept` takes (JSON, SSE).
pub(crate) fn accepts(head: &Head, buf: &[u8]) -> (bool, bool) {
    let (mut json, mut sse) = (false, false);
    let first = head.accept.map(|a| a.of(buf)).unwrap_or(b"");
    // What the transport asks clients to send, and what the SDKs send: one comparison.
    if !head.accept_repeated && COMMON_ACCEPT.contains(&first) {
        return (true, true);
    }
    // Several Accept lines form one list (RFC 9110 5.3); the common single line needs no scan.
    let lines = head
        .headers
        .iter()
        .filter(|_| head.accept_repeated)
        .filter(|(n, _)| n.of(buf).eq_ignore_ascii_case(b"accept"))
        .map(|(_, v)| v.of(buf));
    let ranges = std::iter::once(first).filter(|_| !head.accept_repeated).chain(lines);
    for range in ranges.flat_map(|l| l.split(|&b| b == b',')) {
        let media = range.split(|&b| b == b';').next().unwrap_or(b"").trim_ascii();
        if media.eq_ignore_ascii_case(b"*/*") {
            (json, sse) = (true, true);
        } else if media.eq_ignore_ascii_case(b"application/json")
            || media.eq_ignore_ascii_case(b"application/*")
        {
            json = true;
        } else if media.eq_ignore_ascii_case(b"text/event-stream") || media.eq_ignore_ascii_case(b"text/*") {
            sse = true;
        }
    }
    (json, sse)
}

/// Where a connection-level answer goes: the connection's buffers, the request's id and CORS
/// origin; it stays open only when `keep_alive` and the body was read.
pub(crate) fn to_conn(conn: &mut Conn, cors: Option<Span>, keep_alive: bool) -> To<'_> {
    let keep_alive = keep_alive && conn.body_read;
    let Conn { out, scratch, buf, request_id, .. } = conn;
    To { out, scratch, buf, request_id, cors, keep_alive }
}

/// A refusal of the request as a whole (no id to echo, no data) through the one error exit.
pub(crate) fn reject(conn: &mut Conn, cx: &Ctx<'_>, err: &Error) -> Outcome {
    error_exit(to_conn(conn, cx.cors_origin, cx.keep_alive), &Rejection::of(err))
}

/// Writes a `204 No Content` (with `Allow` when given) for this request.
pub(crate) fn no_content(conn: &mut Conn, cx: &Ctx<'_>, allow: Option<&'static str>) -> Outcome {
    let keep = cx.keep_alive && conn.body_read;
    let origin = cx.cors_origin.map(|o| o.of(&conn.buf));
    let extra = Extra { allow, cors_origin: origin, request_id: Some(&conn.request_id), ..Extra::default() };
    response::write_head(&mut conn.out, 204, None, 0, keep, &extra);
    Outcome { status: 204, close: !keep, method: MethodClass::None }
}

/// Decodes a header value sent in the `=?base64?...?=` form (basic/transports: values that
/// are not header-safe travel base64-encoded) into `out`; returns the value to compare.
pub(crate) fn header_text<'a>(raw: &'a [u8], out: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    let v = raw.trim_ascii();
    if let Some(b64) = v.strip_prefix(b"=?base64?").and_then(|r| r.strip_suffix(b"?=")) {
        *out = base64_simd::STANDARD.decode_to_vec(b64).ok()?;
        return Some(&out[..]);
    }
    Some(v)
}
