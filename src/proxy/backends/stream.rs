//! Backend streams relayed to the client: a backend's SSE answer as it arrives, and the GET
//! fan-in of every backend's server-to-client stream.

use std::time::Duration;

use futures_util::StreamExt;

use crate::config::snapshot::{Server, Snapshot};
use crate::error::{Error, Kind};
use crate::http::response::{self, Extra};
use crate::mcp::session::Claims;
use crate::mcp::sse;
use crate::proxy::conn::Conn;
use crate::proxy::core::Core;
use crate::proxy::exit::{error_exit, Rejection, To};
use crate::upstream::client::{self, UpstreamError};

use super::exchange::*;
use super::schemas;
use super::wire::{backend_error, decode_session, Verb, Wire};

/// Relays a backend's SSE answer to the client piece by piece as it arrives (progress and log
/// notifications reach the client before the result), as a chunked response whose head is
/// already in `conn.out`. A backend failure mid-stream closes the client connection without the
/// final chunk, so the client sees the stream break rather than a clean end.
pub(crate) async fn relay_sse(
    conn: &mut Conn,
    mut stream: client::Streaming,
    fan: &Fan<'_>,
    b: &crate::config::snapshot::Backend,
    method: &str,
) -> (u16, bool) {
    let Fan { core, snap, server, principal, tally, keep_alive } = *fan;
    let (limits, prefixed) = (&snap.limits, server.prefixed());
    let backend: &str = &b.name;
    // Task ids the backend names (a task it created, a task's status) are handed out as the
    // gateway's, bound to this caller.
    let gateway_id = |own: &str| crate::proxy::tasks::tag(snap, server, principal.id(), backend, own);
    if !tally.flush(conn, limits).await {
        return (200, true);
    }
    // Whole events are relayed; a request the backend sends the client (sampling, elicitation)
    // gets its id tagged with the backend's name so the client's answer can be routed back.
    let mut events = crate::mcp::sse::Events::default();
    let mut chunk = Vec::new();
    loop {
        let next = {
            let _waiting = tally.wait();
            stream.next().await
        };
        match next {
            Ok(Some(piece)) => {
                chunk.clear();
                events.push(piece, |ev| {
                    if schemas::lists_changed(ev) {
                        core.schemas.borrow_mut().forget(&server.name, backend);
                    }
                    match crate::proxy::tasks::tag_event(method, ev, gateway_id) {
                        Some(tagged) => sse::relay_event(&tagged, backend, prefixed, &mut chunk),
                        None => sse::relay_event(ev, backend, prefixed, &mut chunk),
                    }
                });
                // Whole events only: a credential cannot straddle two chunks.
                redact(b, Some(principal), &mut chunk);
                write_chunk(&mut conn.out, &chunk);
                if !conn.out.is_empty() && !tally.flush(conn, limits).await {
                    return (200, true);
                }
            }
            Ok(None) => {
                write_chunk(&mut conn.out, &events.rest());
                conn.out.extend_from_slice(b"0\r\n\r\n");
                stream.finish(&core.upstream);
                return (200, !keep_alive);
            }
            Err(e) => {
                log::warn!("backend {backend}: stream broke ({e})");
                core.stats.borrow_mut().backend_failed(backend);
                return (200, true);
            }
        }
    }
}

/// Appends `chunk` to `out` as one HTTP/1.1 chunk (nothing when it is empty: an empty chunk
/// would end the body).
pub(crate) fn write_chunk(out: &mut Vec<u8>, chunk: &[u8]) {
    use std::io::Write;
    if !chunk.is_empty() {
        let _ = write!(out, "{:x}\r\n", chunk.len());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
}

/// How long a backend's GET stream may stay silent before the gateway stops reading it. A
/// backend owes no traffic on it, so this is long; the client's stream goes on with the other
/// backends, and ends (the client reconnects) when none is left.
pub(crate) const STREAM_IDLE: Duration = Duration::from_secs(3600);

/// How long a GET stream may stay quiet before the gateway writes an SSE comment on it: a
/// client that went away is found (the write fails) and intermediaries see traffic.
pub(crate) const STREAM_KEEPALIVE: Duration = Duration::from_secs(15);

/// What one read of backend `.0`'s GET stream gave: relayed bytes, its end (`Ok(None)`), or a
/// failure.
pub(crate) type StreamItem = (usize, Result<Option<Vec<u8>>, UpstreamError>);

/// What woke the GET stream loop.
pub(crate) enum Wake {
    /// A backend stream's next item; `None` when no backend stream is left.
    Backend(Option<StreamItem>),
    /// The worker drains: the stream ends now (the client reconnects elsewhere).
    Drain,
    /// Nothing for [`STREAM_KEEPALIVE`].
    Quiet,
}

/// GET on a 2025-revision session: the server-to-client streams of the session's backends,
/// fanned in to one SSE response. Each backend answering 200 `text/event-stream` is read by its
/// own reader (all polled on this task); 405 means the backend has none. Events are relayed whole,
/// with requests' ids tagged and event ids prefixed by the backend ([`sse::relay_event`]); a
/// `Last-Event-ID` naming a backend resumes that backend's stream. The stream ends when every
/// backend stream ended, when the worker drains, or when the client goes away (found by the
/// keep-alive comments); a backend stream that fails is logged and counted, the others go on.
/// No backend stream at all: 405 when every backend said so, else the first failure.
pub async fn get_stream(
    core: &Core,
    snap: &Snapshot,
    server: &Server,
    conn: &mut Conn,
    caller: Caller<'_>,
    claims: &Claims,
) -> (u16, bool) {
    let Caller { keep_alive, cors, principal, tally } = caller;
    let opened = {
        let Conn { buf, head, request_id, .. } = &*conn;
        let cx = &Cx::for_request((core, snap), (head, buf, request_id), (principal, tally), b"");
        let resume = head
            .last_event_id
            .and_then(|s| std::str::from_utf8(s.of(buf)).ok())
            .and_then(sse::split_event_id);
        let fwd = forwarded(server, principal, head, buf);
        let opens = server.backends.iter().enumerate().filter_map(|(i, b)| {
            let (_, s) = claims.backends.iter().find(|(n, _)| *n == *b.name)?;
            let (version, sid) = decode_session(s);
            // A 2026-07-28-only backend has no GET stream (its notifications come by
            // subscriptions/listen).
            if version == super::wire::MODERN {
                return None;
            }
            let last_event_id = resume.filter(|(n, _)| *n == &*b.name).map_or("", |(_, id)| id);
            let wire = Wire { verb: Verb::Get, last_event_id, ..Wire::session(version, sid) };
            let fwd = fwd_for(&fwd, i);
            Some(async move { (i, cx.open(b, b"", wire, fwd).await) })
        });
        futures_util::future::join_all(opens).await
    };
    let mut streams = Vec::new();
    let mut failure = None;
    for (i, r) in opened {
        let b = &server.backends[i];
        match r {
            Ok(s) if s.status == 200 && is_sse(&s) => streams.push((i, s)),
            // The backend offers no GET stream: nothing to fan in from it.
            Ok(s) if s.status == 405 => {}
            Ok(s) if s.status == 404 => {
                log::warn!("backend {}: its session is gone (GET answered 404)", b.name);
                failure.get_or_insert(Error::client(Kind::SessionNotFound, "Session not found"));
            }
            Ok(s) => {
                log::warn!("backend {}: GET stream answered HTTP {}", b.name, s.status);
                failure
                    .get_or_insert(Error::upstream(format!("backend {} answered HTTP {}", b.name, s.status)));
            }
            Err(e) => {
                log::warn!("backend {}: GET stream failed ({e})", b.name);
                failure.get_or_insert(backend_error(b, &e));
            }
        }
    }
    let Conn { buf, out, scratch, request_id, .. } = &mut *conn;
    let origin = cors.map(|o| o.of(buf)).filter(|o| !o.is_empty());
    let extra = Extra { cors_origin: origin, request_id: Some(request_id), ..Extra::default() };
    if streams.is_empty() {
        let err = failure.unwrap_or_else(|| {
            Error::client(Kind::MethodNotAllowed, "no backend of this session offers a GET stream; use POST")
        });
        let o = error_exit(To { out, scratch, buf, request_id, cors, keep_alive }, &Rejection::of(&err));
        return (o.status, o.close);
    }
    response::write_stream_head(out, 200, response::SSE, keep_alive, &extra);
    let streams = streams.into_iter().map(|(i, s)| (i, s, sse::Events::default())).collect();
    let prefixed = server.prefixed();
    let relay = |i: usize, ev: &[u8], chunk: &mut Vec<u8>| {
        let name: &str = &server.backends[i].name;
        if schemas::lists_changed(ev) {
            core.schemas.borrow_mut().forget(&server.name, name);
        }
        // A task's status names it as the gateway handed it out.
        let gateway_id = |own: &str| crate::proxy::tasks::tag(snap, server, principal.id(), name, own);
        match crate::proxy::tasks::tag_event("", ev, gateway_id) {
            Some(tagged) => sse::relay_event(&tagged, name, prefixed, chunk),
            None => sse::relay_event(ev, name, prefixed, chunk),
        }
    };
    let fan = Fan { core, snap, server, principal, tally, keep_alive };
    fan_in(&fan, conn, streams, &relay, b"").await
}

/// How [`fan_in`] writes one whole event of backend `i` into the chunk for the client.
pub(crate) type Relay<'r> = dyn Fn(usize, &[u8], &mut Vec<u8>) + 'r;

/// What a fan-in of backend streams needs of the request.
pub(crate) struct Fan<'a> {
    pub(crate) core: &'a Core,
    pub(crate) snap: &'a Snapshot,
    pub(crate) server: &'a Server,
    pub(crate) principal: &'a crate::auth::Principal,
    pub(crate) tally: &'a Tally,
    pub(crate) keep_alive: bool,
}

/// Relays backend streams (`(backend index, stream, its events so far)`) to the client as one
/// SSE response whose head (and anything else to send first) is in `conn.out`: every whole event
/// of backend `i` written by `relay(i, event, chunk)` (nothing to drop it), credentials redacted.
/// Each stream is read by its own reader (all polled on this task). Ends when every backend
/// stream ended (after `last`, a final event), when the worker drains, or when the client goes
/// away (found by the keep-alive comments); a backend stream that fails is logged and counted,
/// the others go on.
pub(crate) async fn fan_in(
    fan: &Fan<'_>,
    conn: &mut Conn,
    streams: Vec<(usize, client::Streaming, sse::Events)>,
    relay: &Relay<'_>,
    last: &[u8],
) -> (u16, bool) {
    let Fan { core, snap, server, principal, tally, keep_alive } = *fan;
    let limits = &snap.limits;
    if !tally.flush(conn, limits).await {
        return (200, true);
    }
    // One reader per backend stream. `select_all` keeps each reader's pending read when the
    // loop below wakes for something else: a read is abandoned only when the whole stream ends.
    let max_event = limits.http.max_body_bytes;
    let readers = streams.into_iter().map(|(i, mut s, events)| {
        s.endless();
        let state = Some((s, events));
        futures_util::stream::unfold(state, move |state| async move {
            let (mut s, mut events) = state?;
            s.wait_at_most(STREAM_IDLE);
            let item = match s.next().await {
                Ok(Some(piece)) => {
                    let mut chunk = Vec::with_capacity(piece.len() + 32);
                    events.push(piece, |ev| relay(i, ev, &mut chunk));
                    redact(&server.backends[i], Some(principal), &mut chunk);
                    if events.pending() > max_event {
                        Err(UpstreamError::Invalid("stream event too large"))
                    } else {
                        Ok(Some(chunk))
                    }
                }
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
            match item {
                Ok(Some(_)) => Some(((i, item), Some((s, events)))),
                Ok(None) => {
                    // A cleanly ended stream leaves a reusable connection.
                    s.finish(&core.upstream);
                    Some(((i, item), None))
                }
                Err(_) => Some(((i, item), None)),
            }
        })
        .boxed_local()
    });
    let mut merged = futures_util::stream::select_all(readers);
    loop {
        let wake = monoio::select! {
            item = merged.next() => Wake::Backend(item),
            _ = core.drain.wait() => Wake::Drain,
            _ = monoio::time::sleep(STREAM_KEEPALIVE) => Wake::Quiet,
        };
        match wake {
            Wake::Backend(Some((_, Ok(Some(chunk))))) => write_chunk(&mut conn.out, &chunk),
            Wake::Backend(Some((i, Ok(None)))) => {
                log::debug!("backend {}: stream ended", server.backends[i].name);
            }
            Wake::Backend(Some((i, Err(e)))) => {
                let b = &server.backends[i];
                log::warn!("backend {}: stream broke ({e})", b.name);
                core.stats.borrow_mut().backend_failed(&b.name);
            }
            Wake::Backend(None) => {
                write_chunk(&mut conn.out, last);
                conn.out.extend_from_slice(b"0\r\n\r\n");
                return (200, !keep_alive);
            }
            Wake::Drain => {
                write_chunk(&mut conn.out, last);
                conn.out.extend_from_slice(b"0\r\n\r\n");
                return (200, true);
            }
            Wake::Quiet => write_chunk(&mut conn.out, b": keep-alive\n\n"),
        }
        if !conn.out.is_empty() && !tally.flush(conn, limits).await {
            return (200, true);
        }
    }
}
