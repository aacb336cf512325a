//! The one error exit of the request path. Every phase that refuses a request describes the
//! refusal ([`Rejection`]) and hands it to [`error_exit`], which writes it through
//! `respond::write_error` (the one table from error kind to HTTP status and JSON-RPC code) with
//! what every answer of the request carries (its id, the CORS origin it passed with) and decides
//! whether the connection survives it.

use crate::error::Error;
use crate::http::head::Span;
use crate::http::response::Extra;
use crate::proxy::stats::MethodClass;
use crate::respond::{self, ErrorReply};

/// What phases 2-6 decided, for phases 7 and 8.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Outcome {
    pub(crate) status: u16,
    pub(crate) close: bool,
    pub(crate) method: MethodClass,
}

/// A refusal on its way to the wire.
pub(crate) struct Rejection<'r> {
    /// What was wrong.
    pub(crate) error: &'r Error,
    /// The JSON-RPC id to echo, `error.data`, the transport generation's statuses.
    pub(crate) reply: ErrorReply<'r, 'r>,
    /// `WWW-Authenticate` (401, and 403 `insufficient_scope`).
    pub(crate) challenge: Option<&'r str>,
    /// `Allow` (405).
    pub(crate) allow: Option<&'static str>,
    /// `Retry-After`, seconds (429).
    pub(crate) retry_after: Option<u64>,
    /// The method class the request is counted under.
    pub(crate) method: MethodClass,
}

impl<'r> Rejection<'r> {
    /// A refusal of the request as a whole (no JSON-RPC id, no data).
    pub(crate) fn of(error: &'r Error) -> Rejection<'r> {
        Rejection {
            error,
            reply: ErrorReply::default(),
            challenge: None,
            allow: None,
            retry_after: None,
            method: MethodClass::None,
        }
    }
}

/// Where an answer goes: the connection's output and scratch buffers, and what the request
/// carried that every answer repeats.
pub(crate) struct To<'a> {
    pub(crate) out: &'a mut Vec<u8>,
    pub(crate) scratch: &'a mut Vec<u8>,
    /// The read buffer the spans point into (empty after an abandoned body read).
    pub(crate) buf: &'a [u8],
    pub(crate) request_id: &'a [u8],
    /// The request's Origin, when it passed the check (echoed for CORS).
    pub(crate) cors: Option<Span>,
    /// Whether the connection may stay open after this answer (keep-alive asked, not draining,
    /// the body read).
    pub(crate) keep_alive: bool,
}

/// Writes `r` and says whether the connection closes: when the wire table says so (framing can
/// no longer be trusted) or when it could not stay open anyway.
pub(crate) fn error_exit(to: To<'_>, r: &Rejection<'_>) -> Outcome {
    let origin = to.cors.map(|o| o.of(to.buf)).filter(|o| !o.is_empty());
    let extra = Extra {
        cors_origin: origin,
        request_id: Some(to.request_id),
        www_authenticate: r.challenge,
        allow: r.allow,
        retry_after: r.retry_after,
        ..Extra::default()
    };
    let w = respond::write_error(to.out, to.scratch, r.error, &r.reply, to.keep_alive, &extra);
    Outcome { status: w.status, close: w.close || !to.keep_alive, method: r.method }
}
