//! Sessions of the 2025 revisions in one place: a new one sealed at `initialize`, the one a
//! request names opened (cached per worker, termination checked every time) and checked to
//! belong to the principal, and DELETE ending it everywhere in the process.

use crate::auth::Principal;
use crate::config::snapshot::{Server, Snapshot};
use crate::error::{Error, Kind};
use crate::mcp::envelope::{Envelope, MessageKind};
use crate::mcp::json;
use crate::mcp::reply::{begin_result, end_result};
use crate::mcp::session::Claims;
use crate::mcp::version::Version;
use crate::proxy::backends as aggregate;
use crate::proxy::conn::Conn;
use crate::proxy::core::now_unix;
use crate::proxy::core::Core;
use crate::proxy::dispatch::*;
use crate::proxy::local;
use crate::proxy::request::*;
use crate::proxy::stats::MethodClass;
use crate::respond::ErrorReply;
use std::rc::Rc;

/// 2025 revisions: initialize mints a sealed session (answered here: `Err`); everything else
/// must present a session of this principal, returned for phase 6.
pub(crate) fn legacy_checks(
    w: &mut Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    class: MethodClass,
) -> Result<Rc<Claims>, Step> {
    let (core, snap, principal) = (w.cx.core, w.cx.snap, w.principal);
    let reply = ErrorReply { id: env.id.as_ref(), ..ErrorReply::default() };
    let server = w.cx.server;
    if env.kind == MessageKind::Request && env.method == "initialize" {
        let requested = env.params.and_then(|p| json::get(p, "protocolVersion")).and_then(json::as_str);
        let version = local::negotiate(requested);
        if !server.backends.is_empty() {
            // The client's capabilities are what every backend is told (a backend that checks
            // them before sampling or eliciting sees what the client can do, no more, no less).
            let mut capabilities = Vec::new();
            match env.params.and_then(|p| json::get(p, "capabilities")) {
                Some(c) if matches!(c.first(), Some(simd_json::Node::Object { .. })) => {
                    json::write_value(&mut capabilities, c);
                }
                _ => capabilities.extend_from_slice(b"{}"),
            }
            let plan = aggregate::Plan::Initialize {
                id: raw_id(w.cx.core, env),
                version: version.as_str(),
                principal: principal.id().to_string(),
                capabilities,
            };
            return Err(Step::Backends(plan, class));
        }
        return Err(initialize(w, env, version, class).into());
    }
    let Some(sid) = w.header(w.head.session_id) else {
        let err = Error::client(Kind::SessionRequired, "Bad Request: Mcp-Session-Id header is required");
        return Err(w.error(&err, &reply, class).into());
    };
    let claims = match open_session(core, snap, server, sid, now_unix()) {
        Ok(c) => c,
        Err(err) => return Err(w.error(&err, &reply, class).into()),
    };
    if *claims.principal != *principal.id() {
        let err = Error::client(Kind::SessionNotFound, "Session not found");
        return Err(w.error(&err, &reply, class).into());
    }
    Ok(claims)
}

/// A local `initialize` (no backends): a new session at the negotiated `version`.
pub(crate) fn initialize(
    w: &mut Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    version: Version,
    class: MethodClass,
) -> Outcome {
    let (core, snap, principal) = (w.cx.core, w.cx.snap, w.principal);
    let at = (&*w.cx.server.name, now_unix());
    let sealed = snap.sessions.seal_new(version, principal.id(), Vec::new(), at, &core.rng);
    let Some(session_id) = sealed else {
        let err = Error::internal("could not create a session");
        let reply = ErrorReply { id: env.id.as_ref(), ..ErrorReply::default() };
        return w.error(&err, &reply, class);
    };
    core.stats.borrow_mut().sessions_opened += 1;
    w.scratch.clear();
    begin_result(w.scratch, env.id.as_ref());
    local::initialize(w.scratch, w.cx.server, version);
    end_result(w.scratch);
    w.json(Some(&session_id), class)
}

/// DELETE ends a session (2025 revisions). The termination reaches every worker before the
/// answer is written, so the id is 404 everywhere in this process from then on.
pub(crate) fn delete(conn: &mut Conn, cx: &Ctx<'_>, principal: &Principal) -> (Outcome, Option<Rc<Claims>>) {
    let core = cx.core;
    let claims =
        match session_of(conn, cx, principal, "protocol version 2026-07-28 has no sessions to delete") {
            Ok(claims) => claims,
            Err(outcome) => return (outcome, None),
        };
    if !core.revoked.borrow_mut().has_room(now_unix()) {
        let err = Error::client(Kind::Overloaded, "too many terminated sessions; retry later");
        return (reject(conn, cx, &err), None);
    }
    core.revocations.publish(claims.id, claims.expires);
    core.stats.borrow_mut().sessions_closed += 1;
    (no_content(conn, cx, None), Some(claims))
}

/// The client's session for a GET stream: a 2025-revision session of this principal, with an
/// `Accept` that takes `text/event-stream`.
pub(crate) fn stream_session(
    conn: &mut Conn,
    cx: &Ctx<'_>,
    principal: &Principal,
) -> Result<Rc<Claims>, Outcome> {
    if !accepts(&conn.head, &conn.buf).1 {
        let err = Error::client(Kind::NotAcceptable, "Not Acceptable: Accept must include text/event-stream");
        return Err(reject(conn, cx, &err));
    }
    session_of(conn, cx, principal, "protocol version 2026-07-28 has no GET stream")
}

/// The 2025-revision session a GET or DELETE names, when it exists and belongs to `principal`
/// (a session of someone else is as unknown as a forged one). `stateless` is the 405 message for
/// a 2026-07-28 request, which has no sessions.
pub(crate) fn session_of(
    conn: &mut Conn,
    cx: &Ctx<'_>,
    principal: &Principal,
    stateless: &'static str,
) -> Result<Rc<Claims>, Outcome> {
    let (core, snap) = (cx.core, cx.snap);
    let pv = conn.head.protocol_version.map(|s| s.of(&conn.buf));
    if pv.and_then(Version::parse).is_some_and(Version::is_stateless) {
        return Err(reject(conn, cx, &Error::client(Kind::MethodNotAllowed, stateless)));
    }
    let Some(sid) = conn.head.session_id.map(|s| s.of(&conn.buf)) else {
        let err = Error::client(Kind::SessionRequired, "Bad Request: Mcp-Session-Id header is required");
        return Err(reject(conn, cx, &err));
    };
    match open_session(core, snap, cx.server, sid, now_unix()) {
        Ok(claims) if *claims.principal != *principal.id() => {
            Err(reject(conn, cx, &Error::client(Kind::SessionNotFound, "Session not found")))
        }
        Ok(claims) => Ok(claims),
        Err(err) => Err(reject(conn, cx, &err)),
    }
}

pub(crate) fn open_session(
    core: &Core,
    snap: &Snapshot,
    server: &Server,
    sid: &[u8],
    now: u64,
) -> Result<Rc<Claims>, Error> {
    let not_found = || Error::client(Kind::SessionNotFound, "Session not found");
    let cached = core.sessions.borrow_mut().get(snap, sid, &server.name, now);
    let claims = match cached {
        Some(c) => c,
        None => {
            let opened = snap
                .sessions
                .open_with(sid, &server.name, now, &mut core.session_scratch.borrow_mut())
                .ok_or_else(not_found)?;
            let opened = Rc::new(opened);
            core.sessions.borrow_mut().put(sid, &server.name, opened.clone());
            opened
        }
    };
    // Termination is checked on every request, cached or not.
    if core.revoked.borrow_mut().contains(&claims.id, now) {
        return Err(not_found());
    }
    Ok(claims)
}
