//! The request pipeline: the one function that knows the order of the phases. [`process`] runs
//! them top to bottom for one request on one connection:
//!
//! 1. read head (`Conn::read_head`: limits, head and idle timeouts)
//! 2. route (path -> server) and admit (method, Origin/Host, Accept, Content-Type)
//! 3. authenticate (-> `Principal`, or 401)
//! 4. read body (`Conn::read_body`: framing, 100-continue, body limit) and decode the envelope
//! 5. authorize (allowTools and `x-envoy-allow-mcp-tools`)
//! 6. dispatch (protocol-version rules, sessions, local methods)
//! 7. respond (`Conn::flush`)
//! 8. log and count
//!
//! Phases 2-6 are synchronous decisions over borrowed data except the body read; they write the
//! response into the connection's reused buffers.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use simd_json::Node;

use crate::auth::{Failure, Principal};
use crate::config::snapshot::{Server, Snapshot};
use crate::error::{Error, Kind};
use crate::http::head::{Head, Method, Span};
use crate::http::response::{self, Extra};
use crate::mcp::envelope::{self, Envelope, Id, MessageKind};
use crate::mcp::json;
use crate::mcp::session::Claims;
use crate::mcp::version::Version;
use crate::proxy::backends as aggregate;
use crate::proxy::conn::{Conn, HeadRead};
use crate::proxy::core::{auth_reason, AuthEvent, Core, MethodClass, Record};
use crate::proxy::observe::{self, Access, Facts, RuleName, Trace};
use crate::proxy::{authz, local};
use crate::respond::{self, ErrorReply};
use crate::rest::tool::{needs_normalizing, ArgError, ArgRule, Shape, ToolError};

/// What the connection does after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Read the next request.
    KeepAlive,
    /// Close the connection.
    Close,
}

/// The synchronous decision over a decoded body: answered, or backends are needed.
enum Step {
    Done(Outcome),
    Backends(aggregate::Plan, MethodClass),
}

impl From<Outcome> for Step {
    fn from(o: Outcome) -> Step {
        Step::Done(o)
    }
}

/// What phases 2-6 decided, for phases 7 and 8.
#[derive(Clone, Copy, Debug)]
struct Outcome {
    status: u16,
    close: bool,
    method: MethodClass,
}

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// Most messages in one JSON-RPC batch (2025-03-26 only).
const MAX_BATCH: usize = 100;

pub(crate) fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Serves one request on `conn`. Returns whether the connection stays open.
pub async fn process(core: &Core, conn: &mut Conn) -> Flow {
    // 1. read head, under the limits in force while waiting for it
    let failure = match conn.read_head(&core.current().limits, &core.drain).await {
        HeadRead::Ready => None,
        HeadRead::Closed => return Flow::Close,
        HeadRead::Failed(err) => Some(err),
    };
    // The request runs on the snapshot current when its head arrived, to the end, even if a
    // reload publishes another meanwhile (a keep-alive connection may have idled across one).
    let snap: Rc<Arc<Snapshot>> = core.current();
    let snap_ref: &Snapshot = &snap;
    let limits = snap.limits;
    let started = Instant::now();
    set_request_id(core, conn);
    let mut facts = Facts::default();
    let tally = aggregate::Tally::default();
    let failed = failure.is_some();
    let outcome = match failure {
        Some(err) => {
            // Framing is lost: answer without echoing anything of the request and close.
            let w = respond::write_error(
                &mut conn.out,
                &mut conn.scratch,
                &err,
                &ErrorReply::default(),
                false,
                &Extra { request_id: Some(&conn.request_id), ..Extra::default() },
            );
            Outcome { status: w.status, close: true, method: MethodClass::None }
        }
        None => exchange(core, snap_ref, conn, &mut facts, &tally).await,
    };

    // RFC 9110 9.3.2: a response to HEAD has no content (the head may keep its length).
    if !failed && conn.head.method == Method::Head {
        if let Some(end) = conn.out.windows(4).position(|w| w == b"\r\n\r\n") {
            conn.out.truncate(end + 4);
        }
    }

    // 7. respond
    let pending = conn.out.len() as u64;
    let written = conn.flush(&limits).await;

    // 8. log and count
    let total_us = started.elapsed().as_micros() as u64;
    let path = if failed { &b""[..] } else { conn.head.path.of(&conn.buf) };
    let routed = if failed { None } else { snap_ref.route(path) };
    let server = routed.map_or("-", |s| &*s.name);
    let backend_us = tally.backend_us();
    let tool = facts.tool_labels.get().filter(|_| outcome.method == MethodClass::ToolsCall);
    core.stats.borrow_mut().count(&Record {
        server,
        method: outcome.method,
        status: outcome.status,
        total_us,
        backend_us,
        tool,
        auth: facts.auth,
    });
    if let Some(format) = crate::runtime::logging::access_format() {
        let body = conn.body();
        let rpc = observe::in_body(body, facts.rpc_method.get());
        let (decision, rule) = match facts.decision.get() {
            None => ("-", RuleName::None),
            Some((allowed, rule)) => {
                let named = |i: usize| routed.and_then(|s| s.policy.rules().get(i)?.name.as_deref());
                let rule = match rule {
                    None => RuleName::Default,
                    Some(i) => named(i).map_or(RuleName::Index(i), RuleName::Named),
                };
                (if allowed { "allow" } else { "deny" }, rule)
            }
        };
        let bytes_in = if failed { conn.buf.len() } else { conn.head.len + conn.body().len() };
        let access = Access {
            request_id: &conn.request_id,
            peer: conn.peer,
            http_method: if failed { "-" } else { conn.head.method.as_str() },
            path,
            server,
            method: if rpc.is_empty() { outcome.method.as_str().as_bytes() } else { rpc },
            tool: observe::in_body(body, facts.tool.get()),
            backend: facts.backend.unwrap_or("-"),
            subject: facts.principal.as_deref().map_or("", |p| &p.subject),
            decision,
            rule,
            status: outcome.status,
            duration_us: total_us,
            backend_us: backend_us.unwrap_or(0),
            bytes_in: bytes_in as u64,
            bytes_out: tally.written() + if written { pending } else { 0 },
        };
        let mut line = core.lines.buffer();
        observe::write_access(&mut line, format, &access, SystemTime::now());
        core.lines.send(line);
    }
    let close = outcome.close || !written || !conn.body_read || core.drain.is_set();
    conn.finish_request();
    if close {
        Flow::Close
    } else {
        Flow::KeepAlive
    }
}

/// Uses the client's `X-Request-Id` when it is short visible ASCII, else `w<worker>-<seq>`.
fn set_request_id(core: &Core, conn: &mut Conn) {
    conn.request_id.clear();
    if let Some(rid) = conn.head.request_id.map(|s| s.of(&conn.buf)) {
        if !rid.is_empty() && rid.len() <= 128 && rid.iter().all(|b| (0x21..=0x7e).contains(b)) {
            conn.request_id.extend_from_slice(rid);
            return;
        }
    }
    let n = core.seq.get() + 1;
    core.seq.set(n);
    conn.request_id.push(b'w');
    response::write_u64(&mut conn.request_id, core.worker as u64);
    conn.request_id.push(b'-');
    response::write_u64(&mut conn.request_id, n);
}

/// Per-request decisions shared by the phases.
struct Ctx<'s> {
    keep_alive: bool,
    /// The request's Origin when it passed the check (echoed for CORS).
    cors_origin: Option<Span>,
    server: &'s Server,
    /// The snapshot's generation (what per-worker caches learned belongs to one).
    generation: u64,
}

/// Phases 2-6. What they did is noted in `facts`; backend time in `tally`.
async fn exchange<'s>(
    core: &Core,
    snap: &'s Snapshot,
    conn: &mut Conn,
    facts: &mut Facts<'s>,
    tally: &aggregate::Tally,
) -> Outcome {
    let keep_alive = conn.head.keep_alive && !core.drain.is_set();
    // 2. route
    let Some(server) = snap.route(conn.head.path.of(&conn.buf)) else {
        if let Some(server) = snap.metadata(conn.head.path.of(&conn.buf)) {
            return metadata(conn, keep_alive, server);
        }
        let err = Error::client(Kind::NotFound, "no MCP endpoint at this path");
        return fail(conn, keep_alive, None, &err, &ErrorReply::default(), MethodClass::None);
    };
    // 2. admit: DNS-rebinding protection applies to every method, preflight included.
    if let Err(why) =
        snap.origins.check(conn.head.origin.map(|o| o.of(&conn.buf)), conn.head.host.of(&conn.buf))
    {
        let err = Error::client(Kind::Forbidden, why);
        return fail(conn, keep_alive, None, &err, &ErrorReply::default(), MethodClass::None);
    }
    let cx = Ctx { keep_alive, cors_origin: conn.head.origin, server, generation: snap.generation };
    // A CORS preflight carries no credentials: answered before authentication.
    if conn.head.method == Method::Options {
        return preflight(conn, &cx);
    }

    // 3. authenticate: every request, whatever its method; a session id never stands in for a
    // credential.
    let principal = match authenticate(core, snap, server, conn, facts) {
        Ok(p) => p,
        Err(failure) => return unauthorized(conn, &cx, failure),
    };
    facts.principal = Some(principal.clone());

    match conn.head.method {
        Method::Post => {}
        Method::Delete => {
            let (outcome, ended) = delete(core, snap, conn, &cx, &principal);
            // DELETE fans out: each backend's own session of this client ends too.
            if let Some(claims) = ended {
                facts.backend = Some("*");
                let trace = Trace::of(&conn.head, &conn.buf, &conn.request_id);
                Box::pin(aggregate::end_sessions(core, snap, server, &claims, trace, tally)).await;
            }
            return outcome;
        }
        // The backends' server-to-client streams, fanned in. Local tools send nothing
        // unprompted: without backends the transport allows 405 here.
        Method::Get => {
            if server.backends.is_empty() {
                let err =
                    Error::client(Kind::MethodNotAllowed, "this endpoint offers no GET stream; use POST");
                return reject(conn, &cx, &err);
            }
            let claims = match stream_session(core, snap, conn, &cx, &principal) {
                Ok(claims) => claims,
                Err(outcome) => return outcome,
            };
            let caller = aggregate::Caller {
                keep_alive: cx.keep_alive,
                cors: cx.cors_origin,
                principal: &principal,
                tally,
            };
            facts.backend = Some("*");
            // Boxed, like every backend exchange: an idle connection's task stays small.
            let (status, close) =
                Box::pin(aggregate::get_stream(core, snap, server, conn, caller, &claims)).await;
            return Outcome { status, close, method: MethodClass::None };
        }
        _ => {
            let err = Error::client(Kind::MethodNotAllowed, "method not allowed on an MCP endpoint");
            return reject(conn, &cx, &err);
        }
    }
    if let Err(err) = admit_post(&conn.head, &conn.buf) {
        return reject(conn, &cx, &err);
    }

    // 4. read body
    if let Err(err) = conn.read_body(&snap.limits, &core.drain).await {
        return reject(conn, &cx, &err);
    }
    // 4-6. decode, authorize, dispatch: synchronous, over the per-core decoder.
    let step = {
        let mut decoder = core.decoder.borrow_mut();
        let Conn { buf, head, out, scratch, tmp, request_id, chunked_body, .. } = &mut *conn;
        let body = if head_body_is_chunked(head) { &chunked_body[..] } else { body_slice(buf, head) };
        let mut w = Writer {
            out,
            scratch,
            tmp,
            buf,
            head,
            cx: &cx,
            principal: &principal,
            request_id,
            body,
            base: 0,
            facts,
        };
        let decoded = decoder.with_tape_at(body, |tape, base| {
            w.base = base;
            message(core, snap, &mut w, &principal, tape)
        });
        match decoded {
            Ok(step) => step,
            Err(_) => {
                let err = Error::client(Kind::Parse, "Parse error: the body is not valid JSON");
                Step::Done(w.error(&err, &ErrorReply::default(), MethodClass::None))
            }
        }
    };
    match step {
        Step::Done(o) => o,
        // 6. dispatch to backends: the only phase that waits on other servers.
        Step::Backends(plan, class) => {
            let caller = aggregate::Caller {
                keep_alive: cx.keep_alive,
                cors: cx.cors_origin,
                principal: &principal,
                tally,
            };
            facts.backend = Some(plan.backend(server));
            // Boxed: this future is large, and only requests that reach backends need it (the
            // task of every connection, idle ones included, is as large as its largest state).
            let (status, close) = Box::pin(aggregate::run(core, snap, server, conn, caller, plan)).await;
            Outcome { status, close, method: class }
        }
    }
}

/// Phase 3 for `server`, with this core's token cache; notes the cache hit or miss and the
/// failure reason in `facts`.
fn authenticate(
    core: &Core,
    snap: &Snapshot,
    server: &Server,
    conn: &mut Conn,
    facts: &mut Facts<'_>,
) -> Result<Rc<Principal>, Failure> {
    let auth = &server.auth;
    if auth.anonymous() {
        return Ok(core.anonymous.clone());
    }
    if let crate::auth::Mode::Mtls(m) = &auth.mode {
        let r = m.authenticate(conn.client_cert.as_deref_mut());
        if let Err(f) = &r {
            facts.auth = AuthEvent::Failed(auth_reason(*f));
        }
        return r;
    }
    let mut caches = core.tokens.borrow_mut();
    let cache = caches.for_server(snap, server, core.worker);
    let (hits, misses) = cache.lookups();
    let r = auth.authenticate(&conn.head, &conn.buf, conn.peer.ip(), now_unix(), cache, &core.anonymous);
    let (hit, missed) = (cache.lookups().0 > hits, cache.lookups().1 > misses);
    facts.auth = match &r {
        Ok(_) if hit => AuthEvent::CacheHit,
        Ok(_) if missed => AuthEvent::CacheMiss,
        Ok(_) => AuthEvent::None,
        Err(f) if missed => AuthEvent::MissFailed(auth_reason(*f)),
        Err(f) => AuthEvent::Failed(auth_reason(*f)),
    };
    r
}

/// 401 with the server's challenge (`WWW-Authenticate`) and a JSON-RPC error body.
fn unauthorized(conn: &mut Conn, cx: &Ctx<'_>, failure: Failure) -> Outcome {
    // A repeated credential is a malformed request, not a credential to challenge (RFC 9110
    // 5.3: it is judged on no single copy).
    if let Failure::Repeated(why) = failure {
        return reject(conn, cx, &Error::client(Kind::InvalidRequest, why));
    }
    let challenge = cx.server.auth.challenge(failure, conn.head.host.of(&conn.buf));
    let err = Error::client(Kind::Unauthorized, failure.message());
    let extra = Extra {
        cors_origin: cx.cors_origin.map(|o| o.of(&conn.buf)),
        request_id: Some(&conn.request_id),
        www_authenticate: Some(&challenge),
        ..Extra::default()
    };
    // The body was not read: the connection closes unless there was none.
    let keep = cx.keep_alive && conn.body_read;
    let w =
        respond::write_error(&mut conn.out, &mut conn.scratch, &err, &ErrorReply::default(), keep, &extra);
    Outcome { status: w.status, close: w.close || !keep, method: MethodClass::None }
}

/// GET (or HEAD) of a server's RFC 9728 protected resource metadata; public, so any origin
/// may read it.
fn metadata(conn: &mut Conn, keep_alive: bool, server: &Server) -> Outcome {
    let Some(prm) = &server.auth.prm else {
        let err = Error::client(Kind::NotFound, "no metadata at this path");
        return fail(conn, keep_alive, None, &err, &ErrorReply::default(), MethodClass::None);
    };
    match conn.head.method {
        Method::Get | Method::Head => {
            let doc = prm.document_for(conn.head.host.of(&conn.buf), &server.path);
            let extra = Extra { request_id: Some(&conn.request_id), cors_any: true, ..Extra::default() };
            response::write_head(&mut conn.out, 200, Some(response::JSON), doc.len(), keep_alive, &extra);
            conn.out.extend_from_slice(&doc);
            Outcome { status: 200, close: !keep_alive, method: MethodClass::None }
        }
        Method::Options => {
            let extra = Extra {
                request_id: Some(&conn.request_id),
                cors_any: true,
                allow: Some("GET, HEAD, OPTIONS"),
                ..Extra::default()
            };
            response::write_head(&mut conn.out, 204, None, 0, keep_alive, &extra);
            // The SDKs send MCP-Protocol-Version on this fetch: the preflight must allow it.
            conn.out.truncate(conn.out.len() - 2);
            conn.out.extend_from_slice(
                b"access-control-allow-methods: GET, HEAD, OPTIONS\r\naccess-control-allow-headers: ",
            );
            conn.out.extend_from_slice(response::CORS_ALLOW_HEADERS.as_bytes());
            conn.out.extend_from_slice(b"\r\naccess-control-max-age: 86400\r\n\r\n");
            Outcome { status: 204, close: !keep_alive, method: MethodClass::None }
        }
        _ => {
            let err = Error::client(Kind::MethodNotAllowed, "metadata is read with GET");
            let extra = Extra {
                request_id: Some(&conn.request_id),
                allow: Some("GET, HEAD, OPTIONS"),
                ..Extra::default()
            };
            let w = respond::write_error(
                &mut conn.out,
                &mut conn.scratch,
                &err,
                &ErrorReply::default(),
                keep_alive,
                &extra,
            );
            Outcome { status: w.status, close: w.close || !keep_alive, method: MethodClass::None }
        }
    }
}

fn head_body_is_chunked(head: &Head) -> bool {
    head.framing == crate::http::head::Framing::Chunked
}

fn body_slice<'b>(buf: &'b [u8], head: &Head) -> &'b [u8] {
    match head.framing {
        crate::http::head::Framing::Length(n) => buf.get(head.len..head.len + n as usize).unwrap_or(&[]),
        _ => &[],
    }
}

/// Transport checks of a POST that need no body: `Accept` must admit both JSON and SSE (the
/// client MUST list both) and the body must be declared JSON.
fn admit_post(head: &Head, buf: &[u8]) -> Result<(), Error> {
    let (json, sse) = accepts(head, buf);
    if !(json && sse) {
        return Err(Error::client(
            Kind::NotAcceptable,
            "Not Acceptable: Accept must include application/json and text/event-stream",
        ));
    }
    let ct = head.content_type.map(|c| c.of(buf)).unwrap_or(b"");
    let media = ct.split(|&b| b == b';').next().unwrap_or(b"").trim_ascii();
    if !media.eq_ignore_ascii_case(b"application/json") {
        return Err(Error::client(
            Kind::UnsupportedMediaType,
            "Unsupported Media Type: Content-Type must be application/json",
        ));
    }
    Ok(())
}

/// Whether the request's `Accept` takes (JSON, SSE).
fn accepts(head: &Head, buf: &[u8]) -> (bool, bool) {
    let (mut json, mut sse) = (false, false);
    let first = head.accept.map(|a| a.of(buf)).unwrap_or(b"");
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

/// [`fail`] for a transport-level rejection: no id to echo, no data, counted without a method.
fn reject(conn: &mut Conn, cx: &Ctx<'_>, err: &Error) -> Outcome {
    fail(conn, cx.keep_alive, cx.cors_origin, err, &ErrorReply::default(), MethodClass::None)
}

/// Writes an error reply; closes when the wire table says so or the body was never read.
fn fail(
    conn: &mut Conn,
    keep_alive: bool,
    cors: Option<Span>,
    err: &Error,
    reply: &ErrorReply<'_, '_>,
    method: MethodClass,
) -> Outcome {
    let keep = keep_alive && conn.body_read;
    // After an abandoned body read the buffer is gone and spans resolve to nothing.
    let origin = cors.map(|o| o.of(&conn.buf)).filter(|o| !o.is_empty());
    let extra = Extra { cors_origin: origin, request_id: Some(&conn.request_id), ..Extra::default() };
    let w = respond::write_error(&mut conn.out, &mut conn.scratch, err, reply, keep, &extra);
    Outcome { status: w.status, close: w.close || !keep, method }
}

/// Writes a `204 No Content` (with `Allow` when given) for this request.
fn no_content(conn: &mut Conn, cx: &Ctx<'_>, allow: Option<&'static str>) -> Outcome {
    let keep = cx.keep_alive && conn.body_read;
    let origin = cx.cors_origin.map(|o| o.of(&conn.buf));
    let extra = Extra { allow, cors_origin: origin, request_id: Some(&conn.request_id), ..Extra::default() };
    response::write_head(&mut conn.out, 204, None, 0, keep, &extra);
    Outcome { status: 204, close: !keep, method: MethodClass::None }
}

/// CORS preflight for browser-based MCP clients.
fn preflight(conn: &mut Conn, cx: &Ctx<'_>) -> Outcome {
    let outcome = no_content(conn, cx, Some("GET, POST, DELETE, OPTIONS"));
    if cx.cors_origin.is_some_and(|o| !o.is_empty()) {
        // write_head ended the head with CRLF; insert the preflight fields before it.
        conn.out.truncate(conn.out.len() - 2);
        conn.out.extend_from_slice(
            b"access-control-allow-methods: GET, POST, DELETE, OPTIONS\r\naccess-control-allow-headers: ",
        );
        conn.out.extend_from_slice(response::CORS_ALLOW_HEADERS.as_bytes());
        conn.out.extend_from_slice(b"\r\naccess-control-max-age: 86400\r\n\r\n");
    }
    outcome
}

/// DELETE ends a session (2025 revisions). The termination reaches every worker before the
/// answer is written, so the id is 404 everywhere in this process from then on.
fn delete(
    core: &Core,
    snap: &Snapshot,
    conn: &mut Conn,
    cx: &Ctx<'_>,
    principal: &Principal,
) -> (Outcome, Option<Rc<Claims>>) {
    let claims = match session_of(
        core,
        snap,
        conn,
        cx,
        principal,
        "protocol version 2026-07-28 has no sessions to delete",
    ) {
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
fn stream_session(
    core: &Core,
    snap: &Snapshot,
    conn: &mut Conn,
    cx: &Ctx<'_>,
    principal: &Principal,
) -> Result<Rc<Claims>, Outcome> {
    if !accepts(&conn.head, &conn.buf).1 {
        let err = Error::client(Kind::NotAcceptable, "Not Acceptable: Accept must include text/event-stream");
        return Err(reject(conn, cx, &err));
    }
    session_of(core, snap, conn, cx, principal, "protocol version 2026-07-28 has no GET stream")
}

/// The 2025-revision session a GET or DELETE names, when it exists and belongs to `principal`
/// (a session of someone else is as unknown as a forged one). `stateless` is the 405 message for
/// a 2026-07-28 request, which has no sessions.
fn session_of(
    core: &Core,
    snap: &Snapshot,
    conn: &mut Conn,
    cx: &Ctx<'_>,
    principal: &Principal,
    stateless: &'static str,
) -> Result<Rc<Claims>, Outcome> {
    let pv = conn.head.protocol_version.map(|s| s.of(&conn.buf));
    if pv.and_then(Version::parse).is_some_and(Version::is_stateless) {
        return Err(reject(conn, cx, &Error::client(Kind::MethodNotAllowed, stateless)));
    }
    let Some(sid) = conn.head.session_id.map(|s| s.of(&conn.buf)) else {
        let err = Error::client(Kind::SessionRequired, "Bad Request: Mcp-Session-Id header is required");
        return Err(reject(conn, cx, &err));
    };
    match open_session(core, snap, cx.server, sid, now_unix()) {
        Ok(claims) if *claims.principal != *principal.id => {
            Err(reject(conn, cx, &Error::client(Kind::SessionNotFound, "Session not found")))
        }
        Ok(claims) => Ok(claims),
        Err(err) => Err(reject(conn, cx, &err)),
    }
}

fn open_session(
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

/// Response assembly over the connection's buffers (split borrows of `Conn`).
struct Writer<'c, 's> {
    out: &'c mut Vec<u8>,
    scratch: &'c mut Vec<u8>,
    tmp: &'c mut Vec<u8>,
    buf: &'c [u8],
    head: &'c Head,
    cx: &'c Ctx<'s>,
    principal: &'c Principal,
    request_id: &'c [u8],
    /// The request body as the client sent it, and where the decoder's copy of it starts.
    body: &'c [u8],
    base: usize,
    /// What the request did, for phase 8.
    facts: &'c Facts<'s>,
}

impl<'c> Writer<'c, '_> {
    fn extra(&self) -> Extra<'c> {
        Extra {
            cors_origin: self.cx.cors_origin.map(|o| o.of(self.buf)),
            request_id: Some(self.request_id),
            ..Extra::default()
        }
    }

    fn error(&mut self, err: &Error, reply: &ErrorReply<'_, '_>, method: MethodClass) -> Outcome {
        let extra = Extra {
            cors_origin: self.cx.cors_origin.map(|o| o.of(self.buf)),
            request_id: Some(self.request_id),
            ..Extra::default()
        };
        let w = respond::write_error(self.out, self.scratch, err, reply, self.cx.keep_alive, &extra);
        Outcome { status: w.status, close: w.close || !self.cx.keep_alive, method }
    }

    /// 202 with an empty body (accepted notification or response).
    fn accepted(&mut self, method: MethodClass) -> Outcome {
        let extra = self.extra();
        response::write_head(self.out, 202, None, 0, self.cx.keep_alive, &extra);
        Outcome { status: 202, close: !self.cx.keep_alive, method }
    }

    /// 200 with `scratch` as the JSON body.
    fn json(&mut self, session_id: Option<&str>, method: MethodClass) -> Outcome {
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

    fn header(&self, span: Option<Span>) -> Option<&'c [u8]> {
        span.map(|s| s.of(self.buf))
    }
}

/// Which revision's rules a message follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Era {
    /// 2025 revisions: sessions and initialize.
    Legacy(Option<Version>),
    /// 2026-07-28: stateless, `_meta` and `Mcp-*` headers.
    Stateless,
}

/// Phases 4-6 for one decoded body.
fn message(
    core: &Core,
    snap: &Snapshot,
    w: &mut Writer<'_, '_>,
    principal: &Principal,
    tape: &[Node<'_>],
) -> Step {
    let header_version = w.header(w.head.protocol_version);
    if envelope::is_batch(tape) {
        return batch(core, snap, w, principal, tape, header_version).into();
    }
    let env = match envelope::decode(tape) {
        Ok(e) => e,
        Err(rej) => {
            let reply = ErrorReply { id: rej.id.as_ref(), ..ErrorReply::default() };
            return w.error(&rej.error, &reply, MethodClass::None).into();
        }
    };
    let class = match env.kind {
        MessageKind::Request => MethodClass::of(env.method),
        MessageKind::Notification => MethodClass::Notification,
        MessageKind::Response => MethodClass::Response,
    };
    w.facts.rpc_method.set(observe::body_span(w.body, w.base, env.method));
    if class == MethodClass::ToolsCall {
        let name = env.name.unwrap_or("");
        w.facts.tool.set(observe::body_span(w.body, w.base, name));
        w.facts.tool_labels.set(Some(observe::tool_labels(w.cx.server, name)));
    }
    let era = match header_version {
        Some(v) => match Version::parse(v) {
            Some(v) if v.is_stateless() => Era::Stateless,
            Some(v) => Era::Legacy(Some(v)),
            // An unknown header version on a request that speaks the stateless wire (it has
            // `_meta`) is checked by the stateless rules, which report a mismatch first.
            None if env.meta.is_some() => Era::Stateless,
            None => {
                let err = Error::client(Kind::UnsupportedProtocolVersion, "Unsupported protocol version");
                return unsupported_version(w, &err, env.id.as_ref(), v, false, class).into();
            }
        },
        None if env.meta.and_then(|m| json::get(m, META_VERSION)).is_some() => Era::Stateless,
        None => Era::Legacy(None),
    };
    // The revision's own checks come first (an unknown session is 404, a 2026 request without
    // `_meta` is -32602, whatever the rules say), then phase 5 once, then dispatch with the
    // arguments phase 5 judged.
    let session = match era {
        Era::Stateless => match stateless_checks(w, &env, class) {
            Ok(()) => None,
            Err(answered) => return answered,
        },
        Era::Legacy(_) => match legacy_checks(core, snap, w, principal, &env, class) {
            Ok(claims) => Some(claims),
            Err(answered) => return answered,
        },
    };
    let stateless_wire = session.is_none();
    let judged = decide(core, w, principal, &env, |w, args| match session {
        None => stateless(core, w, &env, class, args),
        Some(claims) => legacy(core, w, &env, claims, class, args),
    });
    match judged {
        Judged::Go(step) => step,
        Judged::Refused(r) => {
            forbidden(w, &r.error, r.challenge.as_deref(), &env, stateless_wire, class).into()
        }
        Judged::ToolFailed(text) => {
            w.scratch.clear();
            tool_failed(w.scratch, &env, &text, stateless_wire.then_some(w.cx.server));
            w.json(None, class).into()
        }
    }
}

/// Why phase 5 refused a message: the error (-32602 for arguments of the wrong type, 403 for a
/// denied call) and, when an allow rule was missed only for scopes, the `insufficient_scope`
/// challenge.
struct Refusal {
    error: Error,
    challenge: Option<String>,
}

/// What phase 5 made of a message.
enum Judged<R> {
    /// Allowed: phase 6's result, over the arguments judged.
    Go(R),
    /// Refused before dispatch.
    Refused(Refusal),
    /// A required argument is missing: the tool's failure (an `isError` result, not a refusal).
    ToolFailed(String),
}

/// The arguments a `tools/call` declares, when the gateway knows them.
enum Declared<'s> {
    /// A template or REST tool of the server: only its declared arguments reach it.
    Local(&'s [ArgRule]),
    /// A backend tool, with the rules this worker learned from its `inputSchema`.
    Backend(Rc<[ArgRule]>),
}

/// What the gateway knows of a `tools/call`'s arguments: one of the server's own tools (template
/// or REST), or a backend tool this worker has seen listed, that the caller may see and whose
/// `arguments` is an object (or absent). `None` for anything else: dispatch reports unknown or
/// hidden tools and malformed arguments itself.
fn declared_args<'s>(core: &Core, w: &Writer<'_, 's>, env: &Envelope<'_, '_>) -> Option<Declared<'s>> {
    if env.kind != MessageKind::Request || env.method != "tools/call" {
        return None;
    }
    let server: &'s Server = w.cx.server;
    let name = env.name?;
    if local::check_arguments(env.arguments).is_err() {
        return None;
    }
    if let Some(&i) = server.tool_index.get(name) {
        let tool = server.tools.get(i)?;
        if !server.tool_allowed(tool, allow_list(w)) {
            return None;
        }
        return Some(Declared::Local(match &tool.kind {
            crate::config::snapshot::ToolKind::Template { args, .. } => args,
            crate::config::snapshot::ToolKind::Rest(rt) => &rt.args,
        }));
    }
    let (i, own) = aggregate::resolve(server, name)?;
    if !server.name_allowed(name, allow_list(w)) {
        return None;
    }
    let mut schemas = core.schemas.borrow_mut();
    schemas.renew(w.cx.generation);
    schemas.get(&server.name, &server.backends.get(i)?.name, own).map(Declared::Backend)
}

/// Phase 5, once per JSON-RPC message (a batch runs it per element). For a `tools/call` of a
/// tool whose arguments the gateway declares, the arguments are normalized first (defaults,
/// the documented coercions; a value of another type is refused with -32602 naming the
/// argument) and the rules judge the normalized value. `then` is phase 6: it receives exactly
/// the arguments that were judged, so the backend acts on what was decided.
fn decide<'c, 's, R>(
    core: &Core,
    w: &mut Writer<'c, 's>,
    principal: &Principal,
    env: &Envelope<'_, '_>,
    then: impl FnOnce(&mut Writer<'c, 's>, Option<&[Node<'_>]>) -> R,
) -> Judged<R> {
    // Backend tools keep every member they were sent; arguments that need no change are
    // judged and forwarded as sent, with no copy.
    let learned: Rc<[ArgRule]>;
    let (rules, shape): (&[ArgRule], Shape) = match declared_args(core, w, env) {
        None => return judge_as_sent(core, w, principal, env, then),
        Some(Declared::Local(rules)) => (rules, Shape::Declared),
        Some(Declared::Backend(rules)) => match needs_normalizing(&rules, env.arguments) {
            Ok(false) => return judge_as_sent(core, w, principal, env, then),
            Ok(true) => {
                learned = rules;
                (&learned, Shape::Open)
            }
            Err(e) => return refused_arguments(e),
        },
    };
    let mut scratch = core.args.borrow_mut();
    let judged = scratch.with(rules, env.arguments, shape, |args| {
        match authorize(core, w, principal, env, Some(args)) {
            Ok(()) => Judged::Go(then(w, Some(args))),
            Err(r) => Judged::Refused(r),
        }
    });
    match judged {
        Ok(j) => j,
        Err(e) => refused_arguments(e),
    }
}

/// [`decide`] over the arguments as the client sent them.
fn judge_as_sent<'c, 's, R>(
    core: &Core,
    w: &mut Writer<'c, 's>,
    principal: &Principal,
    env: &Envelope<'_, '_>,
    then: impl FnOnce(&mut Writer<'c, 's>, Option<&[Node<'_>]>) -> R,
) -> Judged<R> {
    match authorize(core, w, principal, env, env.arguments) {
        Ok(()) => Judged::Go(then(w, env.arguments)),
        Err(r) => Judged::Refused(r),
    }
}

/// Phase 5's answer to arguments that could not be normalized.
fn refused_arguments<R>(e: ArgError) -> Judged<R> {
    match e {
        ArgError::Type(why) => {
            Judged::Refused(Refusal { error: Error::client(Kind::InvalidParams, why), challenge: None })
        }
        ArgError::Missing(ToolError(text)) => Judged::ToolFailed(text),
    }
}

/// A `tools/call` result with `isError` and `text`: a complete response for `env` into `out`
/// (2026-07-28 members when `stateless` names the server).
fn tool_failed(out: &mut Vec<u8>, env: &Envelope<'_, '_>, text: &str, stateless: Option<&Server>) {
    begin_result(out, env.id.as_ref());
    crate::rest::tool::text_result(out, text, true);
    match stateless {
        Some(server) => end_result_stateless(out, server, false),
        None => end_result(out),
    }
}

/// The rule table's decision on a `tools/call` (called by [`decide`] only): over the principal,
/// the tool's backend and name, the request, and `args` (the arguments as they will be sent).
/// `Err` carries the 403 error and, when an allow rule was missed only for scopes, the
/// `insufficient_scope` challenge.
fn authorize(
    core: &Core,
    w: &Writer<'_, '_>,
    principal: &Principal,
    env: &Envelope<'_, '_>,
    args: Option<&[Node<'_>]>,
) -> Result<(), Refusal> {
    use crate::policy::cel::Mcp;
    use crate::policy::rules::{Call, Decision};
    let server = w.cx.server;
    if server.policy.is_open() || env.kind != MessageKind::Request || env.method != "tools/call" {
        return Ok(());
    }
    let name = env.name.unwrap_or("");
    // A tool hidden by allowTools or the client's allow-list header is reported by dispatch as
    // not allowed (-32602, Higress behaviour), not as forbidden.
    let allow = allow_list(w);
    let (backend, tool) = if let Some(&i) = server.tool_index.get(name) {
        if !server.tool_allowed(&server.tools[i], allow) {
            return Ok(());
        }
        (&*server.name, name)
    } else {
        match aggregate::resolve(server, name) {
            Some(_) if !server.name_allowed(name, allow) => return Ok(()),
            Some((i, own)) => (&*server.backends[i].name, own),
            // Unknown tools are reported by dispatch (-32602), not hidden behind a 403.
            None => return Ok(()),
        }
    };
    let mut errors = 0;
    let mcp = Mcp { method: Some(env.method), backend: Some(backend), tool: Some(tool), params: env.params };
    let (decision, _) = authz::with_activation(w.head, w.buf, principal, args, mcp, |activation| {
        server.policy.decide(&Call { backend, tool, principal, activation }, &mut errors)
    });
    core.stats.borrow_mut().authorized(&server.name, &decision, errors);
    w.facts.decision.set(Some(match &decision {
        Decision::Allow { rule } => (true, *rule),
        Decision::Deny { rule, .. } => (false, *rule),
    }));
    log::debug!(
        target: "authz",
        "server={} subject={:?} tool={backend}/{tool} decision={decision:?}",
        server.name,
        principal.subject
    );
    match decision {
        Decision::Allow { .. } => Ok(()),
        Decision::Deny { scope, .. } => {
            let err = Error::client(
                Kind::Denied,
                format!("Forbidden: calling {} is not allowed", local::truncate(name)),
            );
            let challenge = scope.map(|s| {
                let mut c = format!("Bearer error=\"insufficient_scope\", scope=\"{}\"", s.join(" "));
                if let Some(prm) = &server.auth.prm {
                    c.push_str(&format!(", resource_metadata=\"{}\"", prm.url_for(w.head.host.of(w.buf))));
                }
                c.push_str(", error_description=\"The access token lacks a scope this tool requires\"");
                c
            });
            Err(Refusal { error: err, challenge })
        }
    }
}

/// 403 for a denied call: a JSON-RPC error echoing the request id, with the challenge.
fn forbidden(
    w: &mut Writer<'_, '_>,
    err: &Error,
    challenge: Option<&str>,
    env: &Envelope<'_, '_>,
    stateless: bool,
    method: MethodClass,
) -> Outcome {
    let extra = Extra {
        cors_origin: w.cx.cors_origin.map(|o| o.of(w.buf)),
        request_id: Some(w.request_id),
        www_authenticate: challenge,
        ..Extra::default()
    };
    let reply = ErrorReply { id: env.id.as_ref(), data: None, stateless };
    let wire = respond::write_error(w.out, w.scratch, err, &reply, w.cx.keep_alive, &extra);
    Outcome { status: wire.status, close: wire.close || !w.cx.keep_alive, method }
}

fn unsupported_version(
    w: &mut Writer<'_, '_>,
    err: &Error,
    id: Option<&Id<'_>>,
    requested: &[u8],
    stateless: bool,
    class: MethodClass,
) -> Outcome {
    // data: {"supported": [...], "requested": "..."} (schema UnsupportedProtocolVersionError).
    let mut data = Vec::with_capacity(96);
    data.extend_from_slice(b"{\"supported\":");
    local::write_supported_versions(&mut data);
    data.extend_from_slice(b",\"requested\":");
    json::write_str(&mut data, &String::from_utf8_lossy(&requested[..requested.len().min(64)]));
    data.push(b'}');
    let reply = ErrorReply { id, data: Some(&data), stateless };
    w.error(err, &reply, class)
}

/// 2026-07-28: every request carries its version and capabilities in `params._meta` and
/// repeats method, name and version in headers, so intermediaries can route without the body.
/// Checks run in the specification's order: `_meta`, then header agreement, then version.
fn stateless_checks(w: &mut Writer<'_, '_>, env: &Envelope<'_, '_>, class: MethodClass) -> Result<(), Step> {
    if env.kind != MessageKind::Request {
        return Err(w.accepted(class).into());
    }
    let id = env.id.as_ref();
    let reply = ErrorReply { id, data: None, stateless: true };
    let meta = env.meta;
    let body_version = meta.and_then(|m| json::get(m, META_VERSION)).and_then(json::as_str);
    let caps_ok = meta
        .and_then(|m| json::get(m, META_CAPABILITIES))
        .is_some_and(|c| matches!(c.first(), Some(Node::Object { .. })));
    let Some(body_version) = body_version.filter(|_| caps_ok) else {
        let err = Error::client(
            Kind::InvalidParams,
            "params._meta must carry io.modelcontextprotocol/protocolVersion and io.modelcontextprotocol/clientCapabilities",
        );
        return Err(w.error(&err, &reply, class).into());
    };
    if let Err(err) = check_headers(w, env, body_version) {
        return Err(w.error(&err, &reply, class).into());
    }
    if Version::parse(body_version.as_bytes()) != Some(Version::V2026_07_28) {
        let err = Error::client(Kind::UnsupportedProtocolVersion, "Unsupported protocol version");
        return Err(unsupported_version(w, &err, id, body_version.as_bytes(), true, class).into());
    }
    Ok(())
}

/// Phase 6 of a 2026-07-28 request that passed [`stateless_checks`] and phase 5, with `args`
/// the arguments phase 5 judged.
fn stateless(
    core: &Core,
    w: &mut Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    class: MethodClass,
    args: Option<&[Node<'_>]>,
) -> Step {
    let reply = ErrorReply { id: env.id.as_ref(), data: None, stateless: true };
    let server = w.cx.server;
    let allow = allow_list(w);
    if !server.backends.is_empty() {
        if let Some(kind) = aggregate::ListKind::of(env.method) {
            let resume = match list_cursor(server, env, kind) {
                Ok(r) => r,
                Err(err) => return w.error(&err, &reply, class).into(),
            };
            let allow = allow.map(<[u8]>::to_vec);
            return Step::Backends(
                aggregate::Plan::ListStateless { kind, id: raw_id(env), allow, resume },
                class,
            );
        }
        if env.method == "server/discover" {
            return Step::Backends(aggregate::Plan::Discover { id: raw_id(env) }, class);
        }
        let local = env.method == "tools/call" && server.tool_index.contains_key(env.name.unwrap_or(""));
        if !local && routed_method(env.method) {
            return match routed(w, env, args) {
                Ok((backend, body, own)) => {
                    let method = match env.method {
                        "tools/call" => "tools/call",
                        "prompts/get" => "prompts/get",
                        "completion/complete" => "completion/complete",
                        _ => "resources/read",
                    };
                    let plan =
                        aggregate::Plan::CallStateless { method, id: raw_id(env), backend, body, tool: own };
                    Step::Backends(plan, class)
                }
                Err(err) => {
                    let data = not_found_data(env, &err);
                    w.error(&err, &ErrorReply { data: data.as_deref(), ..reply }, class).into()
                }
            };
        }
    }
    if let Some(step) = rest_call(core, w, env, true, class, args) {
        return step;
    }
    w.scratch.clear();
    begin_result(w.scratch, env.id.as_ref());
    let res = match env.method {
        "server/discover" => {
            local::discover(w.scratch, server);
            Ok(true)
        }
        "tools/list" => {
            let visible = authz::Visible { server, principal: w.principal, head: w.head, buf: w.buf };
            local::tools_list(w.scratch, server, env.params, allow, &visible).map(|()| true)
        }
        "tools/call" => local::tools_call(w.scratch, w.tmp, server, env.name, args, allow).map(|()| false),
        "prompts/list" => Ok(list(w.scratch, "prompts")),
        "resources/list" => Ok(list(w.scratch, "resources")),
        "resources/templates/list" => Ok(list(w.scratch, "resourceTemplates")),
        "resources/read" | "prompts/get" => Err(not_found(env)),
        m => Err(Error::client(Kind::MethodNotFound, format!("Method not found: {}", local::truncate(m)))),
    };
    match res {
        Ok(cacheable) => {
            end_result_stateless(w.scratch, server, cacheable);
            w.json(None, class).into()
        }
        Err(err) => {
            let data = not_found_data(env, &err);
            w.error(&err, &ErrorReply { data: data.as_deref(), ..reply }, class).into()
        }
    }
}

/// The client's `params.cursor` of a merged list: absent (first page), or a gateway cursor this
/// gateway issued for this list (-32602 "Invalid cursor" otherwise).
fn list_cursor(
    server: &Server,
    env: &Envelope<'_, '_>,
    kind: aggregate::ListKind,
) -> Result<Option<aggregate::Resume>, Error> {
    match env.params.and_then(|p| json::get(p, "cursor")) {
        None => Ok(None),
        Some(c) => json::as_str(c)
            .and_then(|c| aggregate::Resume::decode(c, kind, server))
            .map(Some)
            .ok_or_else(|| Error::client(Kind::InvalidParams, "Invalid cursor")),
    }
}

/// Local endpoints serve no resources and no prompts (both capabilities are advertised, with
/// empty lists), so every `resources/read` and `prompts/get` names something unknown.
fn not_found(env: &Envelope<'_, '_>) -> Error {
    match env.method {
        "resources/read" => Error::client(Kind::ResourceNotFound, "Resource not found"),
        _ => Error::client(
            Kind::InvalidParams,
            format!("Unknown prompt: {}", local::truncate(env.name.unwrap_or(""))),
        ),
    }
}

/// `error.data` of a resource-not-found error: `{"uri": ...}` (resources spec, error handling).
fn not_found_data(env: &Envelope<'_, '_>, err: &Error) -> Option<Vec<u8>> {
    (err.kind == Kind::ResourceNotFound).then(|| {
        let mut d = b"{\"uri\":".to_vec();
        json::write_str(&mut d, local::truncate(env.uri.unwrap_or("")));
        d.push(b'}');
        d
    })
}

fn list(body: &mut Vec<u8>, member: &str) -> bool {
    local::empty_list(body, member);
    true
}

/// Decodes a header value sent in the `=?base64?...?=` form (basic/transports: values that
/// are not header-safe travel base64-encoded) into `out`; returns the value to compare.
fn header_text<'a>(raw: &'a [u8], out: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    let v = raw.trim_ascii();
    if let Some(b64) = v.strip_prefix(b"=?base64?").and_then(|r| r.strip_suffix(b"?=")) {
        *out = base64_simd::STANDARD.decode_to_vec(b64).ok()?;
        return Some(&out[..]);
    }
    Some(v)
}

/// `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` must be present and agree with the body.
fn check_headers(w: &Writer<'_, '_>, env: &Envelope<'_, '_>, body_version: &str) -> Result<(), Error> {
    let mismatch = |m: &'static str| Error::client(Kind::HeaderMismatch, m);
    let pv = w
        .header(w.head.protocol_version)
        .ok_or_else(|| mismatch("Header mismatch: MCP-Protocol-Version header is required"))?;
    if pv.trim_ascii() != body_version.as_bytes() {
        return Err(mismatch("Header mismatch: MCP-Protocol-Version does not match params._meta"));
    }
    let mut decoded = Vec::new();
    let method = w
        .header(w.head.mcp_method)
        .ok_or_else(|| mismatch("Header mismatch: Mcp-Method header is required"))?;
    if header_text(method, &mut decoded) != Some(env.method.as_bytes()) {
        return Err(mismatch("Header mismatch: Mcp-Method does not match the body method"));
    }
    let expected = match env.method {
        "tools/call" | "prompts/get" => Some(env.name.unwrap_or("")),
        "resources/read" => Some(env.uri.unwrap_or("")),
        _ => None,
    };
    if let Some(expected) = expected {
        let name = w
            .header(w.head.mcp_name)
            .ok_or_else(|| mismatch("Header mismatch: Mcp-Name header is required"))?;
        if header_text(name, &mut decoded) != Some(expected.as_bytes()) {
            return Err(mismatch("Header mismatch: Mcp-Name does not match the body"));
        }
    }
    Ok(())
}

fn allow_list<'b>(w: &Writer<'b, '_>) -> Option<&'b [u8]> {
    w.header(w.head.allow_tools)
}

fn begin_result(body: &mut Vec<u8>, id: Option<&Id<'_>>) {
    body.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    match id {
        Some(id) => json::write_id(body, id),
        None => body.extend_from_slice(b"null"),
    }
    body.extend_from_slice(b",\"result\":{");
}

fn end_result(body: &mut Vec<u8>) {
    body.extend_from_slice(b"}}");
}

/// 2026-07-28 result members: `resultType`, `_meta.serverInfo` and, for cacheable results,
/// `ttlMs`/`cacheScope`. Lists may differ per caller (allowTools header, later authorization)
/// and change on reload, so they are private and not cached.
pub(crate) fn end_result_stateless(body: &mut Vec<u8>, server: &Server, cacheable: bool) {
    body.extend_from_slice(
        b",\"resultType\":\"complete\",\"_meta\":{\"io.modelcontextprotocol/serverInfo\":",
    );
    local::write_server_info(body, server);
    body.push(b'}');
    if cacheable {
        body.extend_from_slice(b",\"ttlMs\":0,\"cacheScope\":\"private\"");
    }
    end_result(body);
}

/// 2025 revisions: initialize mints a sealed session (answered here: `Err`); everything else
/// must present a session of this principal, returned for phase 6.
fn legacy_checks(
    core: &Core,
    snap: &Snapshot,
    w: &mut Writer<'_, '_>,
    principal: &Principal,
    env: &Envelope<'_, '_>,
    class: MethodClass,
) -> Result<Rc<Claims>, Step> {
    let reply = ErrorReply { id: env.id.as_ref(), ..ErrorReply::default() };
    let server = w.cx.server;
    if env.kind == MessageKind::Request && env.method == "initialize" {
        if !server.backends.is_empty() {
            let requested = env.params.and_then(|p| json::get(p, "protocolVersion")).and_then(json::as_str);
            let version = local::negotiate(requested).as_str();
            let plan =
                aggregate::Plan::Initialize { id: raw_id(env), version, principal: principal.id.to_string() };
            return Err(Step::Backends(plan, class));
        }
        return Err(initialize(core, snap, w, principal, env, class).into());
    }
    let Some(sid) = w.header(w.head.session_id) else {
        let err = Error::client(Kind::SessionRequired, "Bad Request: Mcp-Session-Id header is required");
        return Err(w.error(&err, &reply, class).into());
    };
    let claims = match open_session(core, snap, server, sid, now_unix()) {
        Ok(c) => c,
        Err(err) => return Err(w.error(&err, &reply, class).into()),
    };
    if *claims.principal != *principal.id {
        let err = Error::client(Kind::SessionNotFound, "Session not found");
        return Err(w.error(&err, &reply, class).into());
    }
    Ok(claims)
}

/// Phase 6 of a 2025-revision message in session `claims`, with `args` the arguments phase 5
/// judged.
fn legacy(
    core: &Core,
    w: &mut Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    claims: Rc<Claims>,
    class: MethodClass,
    args: Option<&[Node<'_>]>,
) -> Step {
    let reply = ErrorReply { id: env.id.as_ref(), ..ErrorReply::default() };
    let server = w.cx.server;
    // The client answering a request a backend sent it over an SSE stream: back to that backend.
    if env.kind == MessageKind::Response && !server.backends.is_empty() {
        if let Some(plan) = answer_to_backend(w, claims.clone()) {
            return Step::Backends(plan, class);
        }
    }
    if env.kind != MessageKind::Request {
        return w.accepted(class).into();
    }
    if !server.backends.is_empty() {
        if let Some(kind) = aggregate::ListKind::of(env.method) {
            let resume = match list_cursor(server, env, kind) {
                Ok(r) => r,
                Err(err) => return w.error(&err, &reply, class).into(),
            };
            let allow = allow_list(w).map(<[u8]>::to_vec);
            return Step::Backends(
                aggregate::Plan::List { kind, id: raw_id(env), claims, allow, resume },
                class,
            );
        }
        if env.method == "logging/setLevel" {
            let plan = aggregate::Plan::Broadcast { id: raw_id(env), body: w.body.to_vec(), claims };
            return Step::Backends(plan, class);
        }
        let local = env.method == "tools/call" && server.tool_index.contains_key(env.name.unwrap_or(""));
        // Subscriptions go to the backend serving the URI; its updates come on the GET stream.
        let subscription = matches!(env.method, "resources/subscribe" | "resources/unsubscribe");
        if !local && (routed_method(env.method) || subscription) {
            return match routed(w, env, args) {
                Ok((backend, body, _)) => {
                    Step::Backends(aggregate::Plan::Call { id: raw_id(env), backend, body, claims }, class)
                }
                Err(err) => {
                    let data = not_found_data(env, &err);
                    w.error(&err, &ErrorReply { data: data.as_deref(), ..reply }, class).into()
                }
            };
        }
    }
    if let Some(step) = rest_call(core, w, env, false, class, args) {
        return step;
    }
    w.scratch.clear();
    match dispatch_legacy(w, env, args) {
        Ok(()) => w.json(None, class).into(),
        Err(err) => {
            let data = not_found_data(env, &err);
            w.error(&err, &ErrorReply { data: data.as_deref(), ..reply }, class).into()
        }
    }
}

/// A `tools/call` of a REST tool. The backend request is built here, over the request's own
/// bytes (arguments normalized, templates rendered, the backend credential chosen, a
/// passthrough credential taken from the client's request), and sent in phase 6. A call the tool
/// refuses (a missing argument or credential) is answered at once with an `isError` result and
/// never reaches the backend. `None` for any other message.
fn rest_call(
    core: &Core,
    w: &mut Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    stateless: bool,
    class: MethodClass,
    args: Option<&[Node<'_>]>,
) -> Option<Step> {
    use crate::rest::tool::{build, Incoming};
    if env.kind != MessageKind::Request || env.method != "tools/call" {
        return None;
    }
    let server = w.cx.server;
    let index = *server.tool_index.get(env.name?)?;
    let tool = &server.tools[index];
    let crate::config::snapshot::ToolKind::Rest(rt) = &tool.kind else { return None };
    let reply = ErrorReply { id: env.id.as_ref(), data: None, stateless };
    let allowed = if server.tool_allowed(tool, allow_list(w)) {
        local::check_arguments(env.arguments)
    } else {
        Err(local::not_allowed(&tool.name))
    };
    if let Err(err) = allowed {
        return Some(w.error(&err, &reply, class).into());
    }
    let (head, buf) = (w.head, w.buf);
    let mut decoded = None;
    let credential =
        rt.downstream.as_ref().and_then(|d| client_credential(head, buf, &d.scheme, &mut decoded));
    let trace = Trace::of(head, buf, w.request_id);
    let incoming = Incoming {
        credential,
        authorization: if rt.pass_authorization { head.header(buf, "authorization") } else { None },
        claim_headers: &w.principal.headers,
        trace: trace.headers(),
    };
    let mut request = Vec::with_capacity(512);
    // Phase 5 normalized the arguments of every REST tool call it let through.
    let Some(args) = args else {
        let err = Error::internal("the arguments were not normalized");
        return Some(w.error(&err, &reply, class).into());
    };
    let _ = core;
    match build(rt, args, &server.config, &incoming, w.tmp, &mut request) {
        Ok(()) => {
            let plan = aggregate::Plan::Rest { id: raw_id(env), tool: index, request, stateless };
            Some(Step::Backends(plan, class))
        }
        Err(ToolError(text)) => {
            w.scratch.clear();
            tool_failed(w.scratch, env, &text, stateless.then_some(server));
            Some(w.json(None, class).into())
        }
    }
}

/// The client's credential under `scheme` (for passthrough): the token of `Bearer x`, the
/// base64 part of `Basic x`, an api key header, or an api key query parameter (percent-decoded
/// into `decoded`). `None` when the client sent none in that form.
fn client_credential<'b>(
    head: &crate::http::head::Head,
    buf: &'b [u8],
    scheme: &crate::rest::tool::Scheme,
    decoded: &'b mut Option<Vec<u8>>,
) -> Option<&'b [u8]> {
    use crate::auth::scheme::SchemeKind;
    let after = |word: &[u8]| {
        let v = head.header(buf, "authorization")?;
        (v.len() > word.len() && v[..word.len()].eq_ignore_ascii_case(word))
            .then(|| v[word.len()..].trim_ascii())
    };
    match scheme.kind {
        SchemeKind::Bearer => after(b"bearer "),
        SchemeKind::Basic => after(b"basic "),
        SchemeKind::ApiKeyHeader => head.header(buf, &scheme.name),
        SchemeKind::ApiKeyQuery => {
            let v = crate::auth::query_param(head.query.of(buf), scheme.name.as_bytes()).ok()??;
            Some(decoded.insert(v).as_slice())
        }
    }
}

/// The request id as JSON, kept across the upstream exchange.
fn raw_id(env: &Envelope<'_, '_>) -> Vec<u8> {
    let mut id = Vec::with_capacity(16);
    match env.id.as_ref() {
        Some(i) => json::write_id(&mut id, i),
        None => id.extend_from_slice(b"null"),
    }
    id
}

/// For a client's JSON-RPC response whose id the gateway tagged (see `mcp::sse::ID_TAG`): the
/// backend and the response with its original id. Rare (sampling, elicitation), so re-encoded.
fn answer_to_backend(w: &Writer<'_, '_>, claims: Rc<Claims>) -> Option<aggregate::Plan> {
    let server = w.cx.server;
    let mut msg: serde_json::Value = serde_json::from_slice(w.body).ok()?;
    let (backend, original) = crate::mcp::sse::untag(msg.get("id")?.as_str()?)?;
    let i = server.backends.iter().position(|b| &*b.name == backend)?;
    let original: serde_json::Value = serde_json::from_str(original).ok()?;
    msg["id"] = original;
    let body = serde_json::to_vec(&msg).ok()?;
    Some(aggregate::Plan::Answer { backend: i, body, claims })
}

/// Requests routed to one backend by the name or URI they carry.
fn routed_method(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read" | "completion/complete")
}

/// For a routed request: the backend, the body with only the exposed name (or URI) rewritten to
/// the backend's own, and that own name. Tools pass the backend's selector and `allowTools`.
fn routed(
    w: &Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    args: Option<&[Node<'_>]>,
) -> Result<(usize, Vec<u8>, String), Error> {
    let server = w.cx.server;
    let (exposed, found) = match env.method {
        "tools/call" => {
            let name = env.name.unwrap_or("");
            let r = aggregate::resolve(server, name);
            if r.is_some() && !server.name_allowed(name, allow_list(w)) {
                return Err(local::not_allowed(name));
            }
            (
                name,
                r.ok_or_else(|| {
                    Error::client(Kind::InvalidParams, format!("Unknown tool: {}", local::truncate(name)))
                }),
            )
        }
        "prompts/get" => {
            let name = env.name.unwrap_or("");
            (name, aggregate::route(server, name, &server.separator).ok_or_else(|| not_found(env)))
        }
        // Completion names what it completes in params.ref: a prompt by name or a resource
        // (template) by URI, routed like prompts/get and resources/read.
        "completion/complete" => {
            let r = env.params.and_then(|p| json::get(p, "ref"));
            let field = |k: &str| r.and_then(|r| json::get(r, k)).and_then(json::as_str);
            let (value, joiner) = match field("type") {
                Some("ref/prompt") => (field("name").unwrap_or(""), &*server.separator),
                Some("ref/resource") => (field("uri").unwrap_or(""), "+"),
                _ => {
                    return Err(Error::client(
                        Kind::InvalidParams,
                        "params.ref must be a ref/prompt or ref/resource",
                    ))
                }
            };
            let unknown = || {
                Error::client(Kind::InvalidParams, format!("Unknown reference: {}", local::truncate(value)))
            };
            (value, aggregate::route(server, value, joiner).ok_or_else(unknown))
        }
        _ => {
            let uri = env.uri.unwrap_or("");
            (uri, aggregate::route(server, uri, "+").ok_or_else(|| not_found(env)))
        }
    };
    let (backend, own) = found?;
    // Phase 5 judged normalized arguments (a copy): the backend gets those, in a body written
    // anew. Otherwise the client's body goes on with only the name rewritten.
    if let Some(args) = args.filter(|a| env.arguments.is_none_or(|e| e.as_ptr() != a.as_ptr())) {
        return Ok((backend, with_arguments(env, own, args), own.to_string()));
    }
    let body = aggregate::rewrite_name(w.body, w.base, exposed, own).ok_or_else(|| {
        Error::client(Kind::InvalidParams, "names and URIs must not be written with JSON escapes")
    })?;
    Ok((backend, body, own.to_string()))
}

/// `env` (a `tools/call`) written anew for a backend: its own tool name `own` and `args` as the
/// arguments, every other member as sent.
fn with_arguments(env: &Envelope<'_, '_>, own: &str, args: &[Node<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    match env.id.as_ref() {
        Some(id) => json::write_id(&mut out, id),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"method\":\"tools/call\",\"params\":{\"name\":");
    json::write_str(&mut out, own);
    out.extend_from_slice(b",\"arguments\":");
    json::write_value(&mut out, args);
    for (k, v) in env.params.into_iter().flat_map(json::entries) {
        if k == "name" || k == "arguments" {
            continue;
        }
        out.push(b',');
        json::write_str(&mut out, k);
        out.push(b':');
        json::write_value(&mut out, v);
    }
    out.extend_from_slice(b"}}");
    out
}

/// One legacy request into `w.scratch` as a complete JSON-RPC response.
fn dispatch_legacy(
    w: &mut Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    args: Option<&[Node<'_>]>,
) -> Result<(), Error> {
    let server = w.cx.server;
    let allow = allow_list(w);
    let start = w.scratch.len();
    begin_result(w.scratch, env.id.as_ref());
    let res = match env.method {
        "ping" => Ok(()),
        "tools/list" => {
            let visible = authz::Visible { server, principal: w.principal, head: w.head, buf: w.buf };
            local::tools_list(w.scratch, server, env.params, allow, &visible)
        }
        "tools/call" => local::tools_call(w.scratch, w.tmp, server, env.name, args, allow),
        "prompts/list" => {
            local::empty_list(w.scratch, "prompts");
            Ok(())
        }
        "resources/list" => {
            local::empty_list(w.scratch, "resources");
            Ok(())
        }
        "resources/templates/list" => {
            local::empty_list(w.scratch, "resourceTemplates");
            Ok(())
        }
        "resources/read" | "prompts/get" => Err(not_found(env)),
        m => Err(Error::client(Kind::MethodNotFound, format!("Method not found: {}", local::truncate(m)))),
    };
    match res {
        Ok(()) => {
            end_result(w.scratch);
            Ok(())
        }
        Err(e) => {
            w.scratch.truncate(start);
            Err(e)
        }
    }
}

fn initialize(
    core: &Core,
    snap: &Snapshot,
    w: &mut Writer<'_, '_>,
    principal: &Principal,
    env: &Envelope<'_, '_>,
    class: MethodClass,
) -> Outcome {
    let requested = env.params.and_then(|p| json::get(p, "protocolVersion")).and_then(json::as_str);
    let version = local::negotiate(requested);
    let mut claims = Claims {
        id: [0; 16],
        expires: now_unix().saturating_add(snap.sessions.ttl_seconds),
        version: version.tag(),
        principal: principal.id.to_string(),
        backends: Vec::new(),
    };
    let sealed = ring::rand::SecureRandom::fill(&core.rng, &mut claims.id)
        .ok()
        .and_then(|()| snap.sessions.seal(&claims, &w.cx.server.name, &core.rng));
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

/// A JSON-RPC batch: allowed only in 2025-03-26 (removed in 2025-06-18, where an array is a 400).
fn batch(
    core: &Core,
    snap: &Snapshot,
    w: &mut Writer<'_, '_>,
    principal: &Principal,
    tape: &[Node<'_>],
    header_version: Option<&[u8]>,
) -> Outcome {
    let class = MethodClass::Batch;
    let version = header_version.map(Version::parse);
    let sid = w.header(w.head.session_id);
    let claims = sid.map(|s| open_session(core, snap, w.cx.server, s, now_unix()));
    let negotiated = match &claims {
        Some(Ok(c)) => c.protocol_version(),
        _ => None,
    };
    let effective = match version {
        Some(Some(v)) => v,
        Some(None) => {
            let err = Error::client(Kind::UnsupportedProtocolVersion, "Unsupported protocol version");
            return unsupported_version(w, &err, None, header_version.unwrap_or(b""), false, class);
        }
        None => negotiated.unwrap_or(Version::V2025_03_26),
    };
    if !effective.allows_batch() {
        let err = Error::client(
            Kind::InvalidRequest,
            "JSON-RPC batches are not supported from protocol version 2025-06-18 on",
        );
        return w.error(&err, &ErrorReply::default(), class);
    }
    let count = match tape.first() {
        Some(Node::Array { len, .. }) => *len,
        _ => 0,
    };
    if count == 0 {
        let err = Error::client(Kind::InvalidRequest, "empty batch");
        return w.error(&err, &ErrorReply::default(), class);
    }
    // Every element gets an answer of its own, so an unbounded batch would turn one small
    // request into a huge response (2-byte elements, ~100-byte errors). JSON-RPC sets no limit;
    // the official SDKs send small batches.
    if count > MAX_BATCH {
        let err = Error::client(Kind::InvalidRequest, "batch too large (at most 100 messages)");
        return w.error(&err, &ErrorReply::default(), class);
    }
    match claims {
        None => {
            let err = Error::client(Kind::SessionRequired, "Bad Request: Mcp-Session-Id header is required");
            return w.error(&err, &ErrorReply::default(), class);
        }
        Some(Err(err)) => return w.error(&err, &ErrorReply::default(), class),
        Some(Ok(c)) if *c.principal != *principal.id => {
            let err = Error::client(Kind::SessionNotFound, "Session not found");
            return w.error(&err, &ErrorReply::default(), class);
        }
        Some(Ok(_)) => {}
    }
    w.scratch.clear();
    w.scratch.push(b'[');
    let mut answered = 0usize;
    for element in json::elements(tape) {
        let mark = w.scratch.len();
        if answered > 0 {
            w.scratch.push(b',');
        }
        let before = w.scratch.len();
        match envelope::decode(element) {
            Ok(env) if env.kind != MessageKind::Request => {
                w.scratch.truncate(mark);
                continue;
            }
            Ok(env) if env.method == "initialize" => {
                let code = respond::wire(Kind::InvalidRequest).code;
                respond::error_body(
                    w.scratch,
                    code,
                    "initialize must not be part of a batch",
                    env.id.as_ref(),
                );
            }
            Ok(env) => {
                // A refused or failed element is an error element of its own.
                let failed = match decide(core, w, principal, &env, |w, args| dispatch_legacy(w, &env, args))
                {
                    Judged::Go(done) => done.err(),
                    Judged::Refused(r) => Some(r.error),
                    Judged::ToolFailed(text) => {
                        tool_failed(w.scratch, &env, &text, None);
                        None
                    }
                };
                if let Some(err) = failed {
                    w.scratch.truncate(before);
                    respond::error_body(
                        w.scratch,
                        respond::wire(err.kind).code,
                        &err.message,
                        env.id.as_ref(),
                    );
                }
            }
            Err(rej) => {
                respond::error_body(
                    w.scratch,
                    respond::wire(rej.error.kind).code,
                    &rej.error.message,
                    rej.id.as_ref(),
                );
            }
        }
        answered += 1;
    }
    if answered == 0 {
        w.scratch.clear();
        return w.accepted(class);
    }
    w.scratch.push(b']');
    w.json(None, class)
}
