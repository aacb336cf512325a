//! The request driver: the one function that knows the order of the phases. [`process`] runs
//! them top to bottom, once each, for one request on one connection:
//!
//! 1. read head (`Conn::read_head`: limits, head and idle timeouts)
//! 2. route (path -> server) and admit (method, Origin/Host, Accept, Content-Type): [`exchange`]
//! 3. authenticate (-> `Principal`, or 401): [`authenticate`]
//! 4. read the body (`Conn::read_body`: framing, 100-continue, body limit) and decode it into one
//!    message per JSON-RPC message, the protocol revision's rules checked (`proxy::message`;
//!    sessions in `proxy::session`)
//! 5. authorize, once per message, on the normalized arguments (`proxy::decide`)
//! 6. dispatch what phase 5 allowed: answered here (`proxy::dispatch`, `proxy::local`) or carried
//!    out over backends (`proxy::backends`, the one phase that waits on other servers)
//! 7. respond: [`respond`]
//! 8. log and count: [`record`]
//!
//! Phases 2-6 are synchronous decisions over borrowed data except the body read and the backend
//! exchanges; they write the response into the connection's reused buffers. Every refusal leaves
//! through one exit (`proxy::exit::error_exit`) and the one table from error kind to status and
//! code (`respond`).

use crate::auth::{Failure, Principal};
use crate::config::snapshot::{Server, Snapshot};
use crate::error::{Error, Kind};
use crate::http::head::{Head, Method};
use crate::http::response::{self, Extra};
use crate::proxy::backends as aggregate;
use crate::proxy::conn::{Conn, HeadRead};
use crate::proxy::core::now_unix;
use crate::proxy::core::Core;
use crate::proxy::exit::{error_exit, Rejection};
use crate::proxy::observe::{self, Access, Facts, RuleName, Trace};
use crate::proxy::request::*;
use crate::proxy::stats::{auth_reason, AuthEvent, MethodClass, Record};
use crate::proxy::{message::*, session::*};
use crate::respond::ErrorReply;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// What the connection does after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Read the next request.
    KeepAlive,
    /// Close the connection.
    Close,
    /// Nothing arrived for a while: wait for the next request outside the pipeline.
    Idle,
}

/// Serves one request on `conn`, phases 1 to 8 once each. Returns whether the connection stays
/// open.
pub async fn process(core: &Core, conn: &mut Conn) -> Flow {
    // 1. read head, under the limits in force while waiting for it
    let failure = match conn.read_head(&core.current().limits, &core.drain, &core.spare).await {
        HeadRead::Ready => None,
        HeadRead::Closed => return Flow::Close,
        HeadRead::Idle => return Flow::Idle,
        HeadRead::Failed(err) => Some(err),
    };
    // The request runs on the snapshot current when its head arrived, to the end, even if a
    // reload publishes another meanwhile (a keep-alive connection may have idled across one).
    let snap: Rc<Arc<Snapshot>> = core.current();
    let started = Instant::now();
    set_request_id(core, conn);
    let mut facts = Facts::default();
    let tally = aggregate::Tally::default();
    if let (None, Some(t)) = (&failure, snap.tracing.as_deref()) {
        let parent = conn
            .head
            .traceparent
            .map(|s| s.of(&conn.buf))
            .filter(|v| !conn.head.traceparent_repeated && observe::valid_traceparent(v));
        tally.trace.begin(crate::proxy::spans::decide(&core.span_ids, parent, t.sampling));
    }
    let framing_lost = failure.is_some();
    // 2-6. route and admit, authenticate, read and decode the body, authorize, dispatch
    let outcome = match failure {
        Some(err) => unframed(conn, &err),
        None => exchange(core, &snap, conn, &mut facts, &tally).await,
    };
    // The audit trail reads how the answer ended before phase 7 sends it; a traced request's
    // span reads its JSON-RPC error code, when the answer is one.
    use crate::proxy::audit::Outcome as Answer;
    let answered = match snap.audit.is_some() && audited(&facts, outcome.status) {
        true => Some(Answer::of_response(&mut core.decoder.borrow_mut(), &conn.out, outcome.status)),
        false => None,
    };
    let error_code = match (answered, tally.trace.ids()) {
        (_, None) => None,
        (Some(Answer::Error(code)), _) => Some(code),
        (Some(_), _) => None,
        (None, Some(_)) => Answer::error_code(&mut core.decoder.borrow_mut(), &conn.out),
    };
    // 7. respond
    let sent = respond(conn, &snap.limits, framing_lost).await;
    // 8. log and count
    let done = Done { outcome, framing_lost, started, sent, answered, error_code };
    record(core, &snap, conn, &facts, &tally, &done);
    let close = outcome.close || !sent.written || !conn.body_read || core.drain.is_set();
    // Answered before the request was read: the client may still be sending it.
    conn.linger = close && sent.written && (!conn.body_read || framing_lost);
    conn.finish_request();
    if close {
        Flow::Close
    } else {
        Flow::KeepAlive
    }
}

/// Phase 1's failure: framing is lost, so the answer echoes nothing of the request and the
/// connection closes.
fn unframed(conn: &mut Conn, err: &Error) -> Outcome {
    error_exit(to_conn(conn, None, false), &Rejection::of(err))
}

/// What phase 7 sent.
#[derive(Clone, Copy)]
struct Sent {
    /// Bytes of the response (streamed bytes are counted by the tally).
    pending: u64,
    /// Whether all of it was written.
    written: bool,
}

/// Phase 7: writes the response in `conn.out` (a response to HEAD without its content, RFC 9110
/// 9.3.2; the head keeps its length).
async fn respond(conn: &mut Conn, limits: &crate::config::snapshot::Limits, framing_lost: bool) -> Sent {
    if !framing_lost && conn.head.method == Method::Head {
        if let Some(end) = conn.out.windows(4).position(|w| w == b"\r\n\r\n") {
            conn.out.truncate(end + 4);
        }
    }
    let pending = conn.out.len() as u64;
    Sent { pending, written: conn.flush(limits).await }
}

/// How a request ended, for phase 8.
struct Done {
    outcome: Outcome,
    framing_lost: bool,
    started: Instant,
    sent: Sent,
    /// How the answer ended, for the audit trail (when it writes a line for this request).
    answered: Option<crate::proxy::audit::Outcome>,
    /// The answer's JSON-RPC error code, for a traced request's span.
    error_code: Option<i64>,
}

/// Whether the audit trail records a request: the rules decided it, or it was refused (401,
/// 403, 429) whatever it asked.
fn audited(facts: &Facts<'_>, status: u16) -> bool {
    facts.decision.get().is_some() || matches!(status, 401 | 403 | 429)
}

/// Phase 8: counts the request in this worker's statistics and writes its access line (when
/// access logging is on), from what the phases noted in `facts` and `tally`.
fn record(
    core: &Core,
    snap: &Snapshot,
    conn: &Conn,
    facts: &Facts<'_>,
    tally: &aggregate::Tally,
    done: &Done,
) {
    let Done { outcome, framing_lost, started, sent, answered, error_code } = *done;
    let total_us = started.elapsed().as_micros() as u64;
    let path = if framing_lost { &b""[..] } else { conn.head.path.of(&conn.buf) };
    let routed = if framing_lost { None } else { snap.route(path) };
    let server = routed.map_or("-", |s| &*s.name);
    if let Some(answered) = answered {
        audit_line(core, conn, facts, routed, answered, (outcome.status, total_us));
    }
    let backend_us = tally.backend_us();
    if let Some(ids) = tally.trace.ids() {
        let status = (server, outcome.status, framing_lost, error_code);
        server_span(core, conn, facts, routed, status, (ids, tally.trace.start()));
    }
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
    let Some(format) = crate::runtime::logging::access_format() else { return };
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
    let bytes_in = if framing_lost { conn.buf.len() } else { conn.head.len + conn.body().len() };
    let access = Access {
        request_id: &conn.request_id,
        peer: conn.link.peer,
        http_method: if framing_lost { "-" } else { conn.head.method.as_str() },
        path,
        server,
        method: if rpc.is_empty() { outcome.method.as_str().as_bytes() } else { rpc },
        tool: observe::in_body(body, facts.tool.get()),
        backend: facts.backend.unwrap_or("-"),
        subject: facts.principal.as_ref().map_or("", |p| p.subject()),
        decision,
        rule,
        status: outcome.status,
        duration_us: total_us,
        backend_us: backend_us.unwrap_or(0),
        bytes_in: bytes_in as u64,
        bytes_out: tally.written() + if sent.written { sent.pending } else { 0 },
    };
    let mut line = core.lines.buffer();
    observe::write_access(&mut line, format, &access, SystemTime::now());
    core.lines.send(line);
}

/// The SERVER span of a traced request, written into the worker's held spans: OpenTelemetry's
/// MCP and gen_ai attributes where they exist, the gateway's own beside them; never arguments,
/// results, tokens or credentials (names come from the body as the client wrote them, bounded).
/// `code` is the JSON-RPC error code of an error answer.
fn server_span(
    core: &Core,
    conn: &Conn,
    facts: &Facts<'_>,
    routed: Option<&crate::config::snapshot::Server>,
    (server, status, framing_lost, code): (&str, u16, bool, Option<i64>),
    (ids, start): (crate::proxy::spans::TraceIds, u64),
) {
    use crate::proxy::spans::{static_kv, Head, Kind};
    let body = if framing_lost { &b""[..] } else { conn.body() };
    let method = observe::in_body(body, facts.rpc_method.get());
    let tool = observe::in_body(body, facts.tool.get());
    let http_method = conn.head.method.as_str();
    let call = method == b"tools/call" && !tool.is_empty();
    let name: [&[u8]; 3] = match (method, call) {
        (b"", _) => [http_method.as_bytes(), b" ", server.as_bytes()],
        (_, true) => [b"tools/call ", tool, b""],
        (m, false) => [m, b"", b""],
    };
    let head = Head { trace: ids.trace, id: ids.span, parent: ids.parent, kind: Kind::Server, start };
    core.spans.span(&head, name, |w| {
        match conn.head.method {
            crate::http::head::Method::Post => w.kv(static_kv!("http.request.method", "POST")),
            _ => w.str("http.request.method", http_method),
        }
        w.int("http.response.status_code", i64::from(status));
        w.str("portcullis.server", server);
        if !method.is_empty() {
            w.bytes("mcp.method.name", method);
        }
        match facts.rpc_id.get() {
            Some(observe::RpcId::Int(i)) => w.decimal("jsonrpc.request.id", i),
            Some(observe::RpcId::Str(s)) => w.bytes("jsonrpc.request.id", observe::in_body(body, Some(s))),
            None => {}
        }
        if !framing_lost {
            if let Some(v) = conn.head.protocol_version.map(|s| s.of(&conn.buf)) {
                w.bytes("mcp.protocol.version", v);
            }
            let host = conn.head.host.of(&conn.buf);
            if !host.is_empty() {
                w.bytes("server.address", host);
            }
        }
        if call {
            w.bytes("gen_ai.tool.name", tool);
            w.kv(static_kv!("gen_ai.operation.name", "execute_tool"));
        }
        if let Some(b) = facts.backend {
            w.str("portcullis.backend", b);
        }
        if let Some((allowed, rule)) = facts.decision.get() {
            w.kv(match allowed {
                true => static_kv!("portcullis.decision", "allow"),
                false => static_kv!("portcullis.decision", "deny"),
            });
            let named = rule.and_then(|i| routed?.policy.rules().get(i)?.name.as_deref());
            match (rule, named) {
                (None, _) => w.kv(static_kv!("portcullis.rule", "default")),
                (Some(_), Some(n)) => w.str("portcullis.rule", n),
                (Some(i), None) => w.decimal("portcullis.rule", i as i64),
            }
        }
        if let Some(p) = facts.principal.as_ref().filter(|p| !p.subject().is_empty()) {
            w.str("enduser.id", p.subject());
        }
        if let Some(code) = code {
            w.decimal("rpc.response.status_code", code);
        }
        if status >= 500 {
            w.fail_code(i64::from(status));
        } else if let Some(code) = code {
            w.fail_code(code);
        }
    });
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

/// Phases 2-6. What they did is noted in `facts`; backend time in `tally`.
async fn exchange<'s>(
    core: &'s Core,
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
        return error_exit(to_conn(conn, None, keep_alive), &Rejection::of(&err));
    };
    // 2. admit: DNS-rebinding protection applies to every method, preflight included.
    if let Err(why) =
        snap.origins.check(conn.head.origin.map(|o| o.of(&conn.buf)), conn.head.host.of(&conn.buf))
    {
        let err = Error::client(Kind::Forbidden, why);
        return error_exit(to_conn(conn, None, keep_alive), &Rejection::of(&err));
    }
    let cx = Ctx {
        keep_alive,
        cors_origin: conn.head.origin,
        server,
        core,
        snap,
        peer: conn.link.peer.ip(),
        may_learn: std::cell::Cell::new(true),
    };
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
            let (outcome, ended) = delete(conn, &cx, &principal);
            // DELETE fans out: each backend's own session of this client ends too.
            if let Some(claims) = ended {
                facts.backend = Some("*");
                let trace = Trace::of(&conn.head, &conn.buf, &conn.request_id);
                let bearer = crate::proxy::backends::exchange::bearer(&conn.head, &conn.buf);
                let who = (&principal, bearer);
                Box::pin(aggregate::end_sessions(core, snap, server, &claims, who, trace, tally)).await;
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
            let claims = match stream_session(conn, &cx, &principal) {
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
    // 4-6. decode, authorize, dispatch: synchronous, over the per-core decoder. Phase 5 may ask
    // once to learn a backend's tools first; the body is then decoded and decided again.
    loop {
        let step = {
            let mut decoder = core.decoder.borrow_mut();
            let Conn { buf, head, out, scratch, tmp, caps, request_id, chunked_body, .. } = &mut *conn;
            let body = if head_body_is_chunked(head) { &chunked_body[..] } else { body_slice(buf, head) };
            let mut w = Writer {
                out,
                scratch,
                tmp,
                caps,
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
                message(&mut w, tape)
            });
            match decoded {
                Ok(step) => step,
                Err(_) => {
                    let err = Error::client(Kind::Parse, "Parse error: the body is not valid JSON");
                    Step::Done(w.error(&err, &ErrorReply::default(), MethodClass::None))
                }
            }
        };
        let caller = aggregate::Caller {
            keep_alive: cx.keep_alive,
            cors: cx.cors_origin,
            principal: &principal,
            tally,
        };
        match step {
            Step::Done(o) => return o,
            Step::Learn(backend, via) => {
                cx.may_learn.set(false);
                Box::pin(aggregate::learn(core, snap, server, conn, caller, backend, &via)).await;
            }
            // 6. dispatch to backends: the only phase that waits on other servers.
            Step::Backends(plan, class) => {
                facts.backend = Some(plan.backend(server));
                // Not boxed: the pipeline is (`proxy::serve`), once per busy period; an idle
                // connection holds none of it.
                let (status, close) = aggregate::run(core, snap, server, conn, caller, plan).await;
                return Outcome { status, close, method: class };
            }
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
) -> Result<Principal, Failure> {
    let auth = &server.auth;
    if auth.anonymous() {
        return Ok(core.anonymous.clone());
    }
    if let crate::auth::Mode::Mtls(m) = &auth.mode {
        let r = m.authenticate(conn.link.client_cert.as_deref_mut());
        if let Err(f) = &r {
            facts.auth = AuthEvent::Failed(auth_reason(*f));
        }
        return r;
    }
    let mut caches = core.tokens.borrow_mut();
    let cache = caches.for_server(snap, server, core.worker);
    let (hits, misses) = cache.lookups();
    let r = auth.authenticate(&conn.head, &conn.buf, conn.link.peer.ip(), now_unix(), cache, &core.anonymous);
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
    // The body was not read: the connection closes unless there was none.
    let to = to_conn(conn, cx.cors_origin, cx.keep_alive);
    error_exit(to, &Rejection { challenge: Some(&challenge), ..Rejection::of(&err) })
}

/// GET (or HEAD) of a server's RFC 9728 protected resource metadata; public, so any origin
/// may read it.
fn metadata(conn: &mut Conn, keep_alive: bool, server: &Server) -> Outcome {
    let Some(prm) = &server.auth.prm else {
        let err = Error::client(Kind::NotFound, "no metadata at this path");
        return error_exit(to_conn(conn, None, keep_alive), &Rejection::of(&err));
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
            let to = to_conn(conn, None, keep_alive);
            error_exit(to, &Rejection { allow: Some("GET, HEAD, OPTIONS"), ..Rejection::of(&err) })
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

/// Phase 8's audit line for a request [`audited`] says is recorded.
fn audit_line(
    core: &Core,
    conn: &Conn,
    facts: &Facts<'_>,
    routed: Option<&crate::config::snapshot::Server>,
    answered: crate::proxy::audit::Outcome,
    (status, duration_us): (u16, u64),
) {
    use crate::proxy::audit::{self, Line, Outcome as Audited};
    let body = conn.body();
    let method = observe::in_body(body, facts.rpc_method.get());
    let target = match method {
        b"tools/call" => Some(("tool", observe::in_body(body, facts.tool.get()))),
        b"prompts/get" => Some(("prompt", observe::in_body(body, facts.target.get()))),
        b"resources/read" | b"resources/subscribe" => {
            Some(("uri", observe::in_body(body, facts.target.get())))
        }
        _ => None,
    };
    let decision = facts.decision.get().map(|(allowed, rule)| {
        let named = |i: usize| routed.and_then(|s| s.policy.rules().get(i)?.name.as_deref());
        let rule = match rule {
            None => RuleName::Default,
            Some(i) => named(i).map_or(RuleName::Index(i), RuleName::Named),
        };
        (allowed, rule)
    });
    let backend = facts.tool_labels.get().map(|(b, _)| b).or(facts.backend);
    let line = Line {
        request_id: &conn.request_id,
        principal: facts.principal.as_ref(),
        server: routed.map_or("-", |s| &*s.name),
        backend,
        method,
        target,
        decision,
        args_sha256: facts.args_sha256.get(),
        outcome: match (facts.limited.get(), facts.pin_refused.get()) {
            (true, _) => Audited::RateLimited,
            (_, true) => Audited::PinMismatch,
            _ => answered,
        },
        status,
        duration_us,
    };
    let mut batch = core.audit.buffer();
    audit::write(&mut batch, &line, SystemTime::now());
    core.audit.send(batch);
}
