//! Requests answered with the help of aggregated MCP backends (phase 6 when a server has
//! `backends`). The synchronous decision in `pipeline` produces a [`Plan`] of owned data; this
//! module carries it out over the per-core pool and writes the answer.
//!
//! Implemented: for clients on the 2025 revisions, `initialize` (every backend initialized, its
//! session sealed into the client's session id), `tools/list` (fan-out, selectors, prefixed
//! names, merged with local tools; a failing backend is left out and logged) and `tools/call`
//! (routed by name, only the name rewritten, the backend's JSON or SSE answer relayed as sent).
//! For 2026-07-28 clients the same over a per-worker [`Link`] to each backend. Prompts and
//! resources are merged and routed like tools ([`ListKind`]); DELETE fans out.
//! `completion/complete` is routed by its ref; `logging/setLevel` fans out; initialize merges
//! capabilities. SSE answers are relayed as they arrive, requests inside them tagged with the
//! backend (`mcp::sse::tag_request`) so the client's answers find their way back
//! ([`Plan::Answer`]). GET fans the backends' server-to-client streams in ([`get_stream`]).

use std::cell::Cell;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::config::snapshot::{Backend, Server, Snapshot};
use crate::error::{Error, Kind};
use crate::http::response::{self, Extra};
use crate::mcp::envelope::Id;
use crate::mcp::json;
use crate::mcp::session::Claims;
use crate::mcp::sse;
use crate::proxy::backend::{self, answer, backend_error, decode_session, encode_session, Link, Verb, Wire};
use crate::proxy::conn::Conn;
use crate::proxy::core::Core;
use crate::proxy::local;
use crate::proxy::observe::Trace;
use crate::proxy::{links, schemas};
use crate::respond::{self, ErrorReply};
use crate::upstream::client::{self, Response, UpstreamError};

/// Which list method is being merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// tools/list (selectors and allowTools apply; local tools first)
    Tools,
    /// prompts/list (`<backend><sep><name>`)
    Prompts,
    /// resources/list (`<backend>+<uri>`)
    Resources,
    /// resources/templates/list (`<backend>+<uriTemplate>`)
    Templates,
}

impl ListKind {
    /// The list method of a JSON-RPC method name, if it is one.
    pub fn of(method: &str) -> Option<ListKind> {
        match method {
            "tools/list" => Some(ListKind::Tools),
            "prompts/list" => Some(ListKind::Prompts),
            "resources/list" => Some(ListKind::Resources),
            "resources/templates/list" => Some(ListKind::Templates),
            _ => None,
        }
    }

    fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Prompts => "prompts/list",
            ListKind::Resources => "resources/list",
            ListKind::Templates => "resources/templates/list",
        }
    }

    fn member(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::Templates => "resourceTemplates",
        }
    }

    /// The field that carries the exposed name.
    fn field(self) -> &'static str {
        match self {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::Templates => "uriTemplate",
        }
    }

    fn joiner(self, server: &Server) -> &str {
        match self {
            ListKind::Tools | ListKind::Prompts => &server.separator,
            ListKind::Resources | ListKind::Templates => "+",
        }
    }
}

/// What the backends must do for one request.
pub enum Plan {
    /// Initialize every backend, then answer the client's initialize with a sealed session.
    Initialize {
        /// The client's id, as JSON.
        id: Vec<u8>,
        /// The version the gateway negotiated with the client.
        version: &'static str,
        /// The principal the new session belongs to.
        principal: String,
    },
    /// Merge a list method across local items and every backend.
    List {
        /// Which list.
        kind: ListKind,
        /// The client's id, as JSON.
        id: Vec<u8>,
        /// The client's session.
        claims: std::rc::Rc<Claims>,
        /// `x-envoy-allow-mcp-tools`, when sent.
        allow: Option<Vec<u8>>,
        /// The backends to continue, from the client's gateway cursor (`None`: first page).
        resume: Option<Resume>,
    },
    /// Merge a list method for a 2026-07-28 client.
    ListStateless {
        /// Which list.
        kind: ListKind,
        /// The client's id, as JSON.
        id: Vec<u8>,
        /// `x-envoy-allow-mcp-tools`, when sent.
        allow: Option<Vec<u8>>,
        /// The backends to continue, from the client's gateway cursor (`None`: first page).
        resume: Option<Resume>,
    },
    /// `server/discover` for a 2026-07-28 client: the gateway's capabilities merged with those
    /// of every backend reachable over the worker's links.
    Discover {
        /// The client's id, as JSON.
        id: Vec<u8>,
    },
    /// Forward a 2026-07-28 tools/call, prompts/get or resources/read to one backend over the
    /// worker's link to it.
    CallStateless {
        /// `Mcp-Method`.
        method: &'static str,
        /// The client's id, as JSON.
        id: Vec<u8>,
        /// Index of the backend in the server.
        backend: usize,
        /// The client's body with only the tool name changed.
        body: Vec<u8>,
        /// The backend's name for the tool or prompt, or the resource URI (`Mcp-Name`).
        tool: String,
    },
    /// Call a REST tool's backend with the request the pipeline built, and shape the answer.
    Rest {
        /// The client's id, as JSON.
        id: Vec<u8>,
        /// Index of the tool in the server.
        tool: usize,
        /// The complete HTTP/1.1 request.
        request: Vec<u8>,
        /// Whether the client speaks 2026-07-28 (its result carries `resultType` and `_meta`).
        stateless: bool,
    },
    /// Send the client's request to every backend of its session and answer an empty result
    /// (`logging/setLevel`).
    Broadcast {
        /// The client's id, as JSON.
        id: Vec<u8>,
        /// The client's body, forwarded unchanged.
        body: Vec<u8>,
        /// The client's session.
        claims: std::rc::Rc<Claims>,
    },
    /// Deliver the client's answer to a request a backend sent it (id restored).
    Answer {
        /// Index of the backend in the server.
        backend: usize,
        /// The client's answer with the backend's original id.
        body: Vec<u8>,
        /// The client's session.
        claims: std::rc::Rc<Claims>,
    },
    /// Forward a tools/call to one backend with the tool name rewritten.
    Call {
        /// The client's id, as JSON.
        id: Vec<u8>,
        /// Index of the backend in the server.
        backend: usize,
        /// The client's body with only the tool name changed.
        body: Vec<u8>,
        /// The client's session.
        claims: std::rc::Rc<Claims>,
    },
}

impl Plan {
    /// The backend the plan goes to, for the access line: a backend's name, the server's own
    /// name for a REST tool (as in authorization targets), `*` when it asks several.
    pub fn backend<'s>(&self, server: &'s Server) -> &'s str {
        match self {
            Plan::Call { backend, .. }
            | Plan::CallStateless { backend, .. }
            | Plan::Answer { backend, .. } => server.backends.get(*backend).map_or("-", |b| &b.name),
            Plan::Rest { .. } => &server.name,
            _ => "*",
        }
    }
}

/// What one request's backend exchanges cost, for phase 8: the wall time during which at least
/// one exchange with a backend was in flight (the overlapping exchanges of a fan-out count
/// once), and the response bytes written to the client from within this module (relayed
/// streams). Cells: the exchanges of a fan-out share it on one task.
#[derive(Debug, Default)]
pub struct Tally {
    inflight: Cell<u32>,
    since: Cell<Option<Instant>>,
    waited: Cell<Duration>,
    reached: Cell<bool>,
    written: Cell<u64>,
}

impl Tally {
    /// Starts waiting on a backend until the guard is dropped (cancellation included).
    fn wait(&self) -> Waiting<'_> {
        if self.inflight.get() == 0 {
            self.since.set(Some(Instant::now()));
        }
        self.inflight.set(self.inflight.get() + 1);
        self.reached.set(true);
        Waiting(self)
    }

    /// Time spent waiting on backends, microseconds; `None` when no backend was asked.
    pub fn backend_us(&self) -> Option<u64> {
        self.reached.get().then(|| self.waited.get().as_micros() as u64)
    }

    /// Response bytes written to the client from within this module.
    pub fn written(&self) -> u64 {
        self.written.get()
    }

    /// Writes `conn.out` to the client, counting the bytes.
    async fn flush(&self, conn: &mut Conn, limits: &crate::config::snapshot::Limits) -> bool {
        let n = conn.out.len() as u64;
        let ok = conn.flush(limits).await;
        if ok {
            self.written.set(self.written.get() + n);
        }
        ok
    }
}

/// An exchange with a backend in flight (see [`Tally::wait`]).
struct Waiting<'t>(&'t Tally);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let t = self.0;
        t.inflight.set(t.inflight.get().saturating_sub(1));
        if t.inflight.get() == 0 {
            if let Some(since) = t.since.take() {
                t.waited.set(t.waited.get() + since.elapsed());
            }
        }
    }
}

/// The backend and its tool name for an exposed tool name, if a backend serves it (after the
/// backend's tool selector).
pub fn resolve<'n>(server: &Server, exposed: &'n str) -> Option<(usize, &'n str)> {
    let (i, tool) = route(server, exposed, &server.separator)?;
    server.backends[i].selector.selects(tool).then_some((i, tool))
}

/// The backend and its own name for an exposed prompt name (`sep`) or resource URI (`+`).
pub fn route<'n>(server: &Server, exposed: &'n str, joiner: &str) -> Option<(usize, &'n str)> {
    if server.backends.is_empty() {
        return None;
    }
    if server.prefixed() {
        let (prefix, own) = exposed.split_once(joiner)?;
        Some((server.backends.iter().position(|b| &*b.name == prefix)?, own))
    } else {
        Some((0, exposed))
    }
}

/// `body` with the JSON string `old` (a slice of the decoder's copy starting at `base`) replaced
/// by `new`. `None` when the name was written with escapes (its bytes differ from the decoded
/// string): exposed tool names never need escapes, so such a call is refused.
pub fn rewrite_name(body: &[u8], base: usize, old: &str, new: &str) -> Option<Vec<u8>> {
    let start = (old.as_ptr() as usize).checked_sub(base)?;
    let end = start.checked_add(old.len())?;
    if start == 0
        || body.get(start - 1) != Some(&b'"')
        || body.get(start..end)? != old.as_bytes()
        || body.get(end) != Some(&b'"')
    {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() + new.len());
    out.extend_from_slice(&body[..start]);
    json::write_escaped(&mut out, new);
    out.extend_from_slice(&body[end..]);
    Some(out)
}

/// Where a paginated list continues: each backend that has more, with its own cursor. The
/// client sees it as one opaque gateway cursor (base64url JSON naming the list, so a tools
/// cursor is not taken for a prompts one); backends' cursors pass through it unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume(pub Vec<(String, String)>);

/// Largest gateway cursor accepted from a client.
const MAX_CURSOR: usize = 8192;

impl Resume {
    /// The gateway cursor for `kind`.
    pub fn encode(&self, kind: ListKind) -> String {
        let doc = serde_json::json!(["pc1", kind.method(), self.0]);
        base64_simd::URL_SAFE_NO_PAD.encode_to_string(doc.to_string().as_bytes())
    }

    /// Reads a client's cursor for `kind` on `server`; `None` when it is not one this gateway
    /// issued for that list (or names a backend the server no longer has).
    pub fn decode(cursor: &str, kind: ListKind, server: &Server) -> Option<Resume> {
        if cursor.len() > MAX_CURSOR {
            return None;
        }
        let bytes = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(cursor.as_bytes()).ok()?;
        let (tag, method, entries): (String, String, Vec<(String, String)>) =
            serde_json::from_slice(&bytes).ok()?;
        let known = |n: &String| server.backends.iter().any(|b| *b.name == **n);
        (tag == "pc1"
            && method == kind.method()
            && !entries.is_empty()
            && entries.iter().all(|(n, _)| known(n)))
        .then_some(Resume(entries))
    }
}

/// What a merged list asks: which list, the client's filters, and where it continues.
struct ListRequest<'a> {
    kind: ListKind,
    /// `x-envoy-allow-mcp-tools`, when sent.
    allow: Option<&'a [u8]>,
    /// The authorization filter of the caller.
    visible: &'a crate::proxy::authz::Visible<'a>,
    /// The gateway cursor's backends (`None`: the first page).
    resume: Option<&'a Resume>,
}

/// Who asked, and how the answer must be framed for them.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'p> {
    /// Whether the client connection stays open.
    pub keep_alive: bool,
    /// The request's allowed `Origin` (echoed for CORS).
    pub cors: Option<crate::http::head::Span>,
    /// The authenticated principal (its claim headers go to backends).
    pub principal: &'p crate::auth::Principal,
    /// Where the request's backend time and streamed bytes are counted.
    pub tally: &'p Tally,
}

/// Carries out `plan` and writes the response into `conn.out`.
pub async fn run(
    core: &Core,
    snap: &Snapshot,
    server: &Server,
    conn: &mut Conn,
    caller: Caller<'_>,
    plan: Plan,
) -> (u16, bool) {
    let Caller { keep_alive, cors, principal, tally } = caller;
    // The request's bytes stay put while backends are asked (only `out`/`scratch` are written,
    // at the end), so forwarded headers are borrowed from the read buffer, not copied.
    let Conn { buf, head, out, scratch, request_id, .. } = &mut *conn;
    let (buf, head): (&[u8], &crate::http::head::Head) = (buf, head);
    let fwd_refs = forwarded(server, principal, head, buf);
    let cx = &Cx { core, owner: &principal.id, snap, tally, trace: Trace::of(head, buf, request_id) };
    let visible = crate::proxy::authz::Visible { server, principal, head, buf };
    // Set when the answer is an SSE stream to relay as it arrives rather than whole.
    let mut relay: Option<client::Streaming> = None;
    let mut relay_backend = "";
    let result: Result<Answer, Failure> = match plan {
        Plan::Initialize { id, version, principal } => {
            // Every backend at once: the client waits for the slowest, not the sum.
            let inits = server
                .backends
                .iter()
                .enumerate()
                .map(|(i, b)| init_backend(cx, b, version, fwd_for(&fwd_refs, i)));
            let mut sessions = Vec::new();
            // The client sees the union of what the gateway and the joined backends offer.
            let mut caps: serde_json::Value =
                serde_json::from_slice(local::CAPABILITIES).unwrap_or(serde_json::Value::Null);
            for (b, r) in server.backends.iter().zip(futures_util::future::join_all(inits).await) {
                match r {
                    Ok((v, sid, backend_caps)) => {
                        sessions.push((b.name.to_string(), encode_session(&v, &sid)));
                        merge_capabilities(&mut caps, &backend_caps);
                    }
                    Err(why) => log::warn!("backend {}: {why}; left out of the session", b.name),
                }
            }
            if sessions.is_empty() && server.tools.is_empty() {
                Err((Error::upstream("no backend could be initialized"), Some(id)))
            } else {
                let mut claims = Claims {
                    id: [0; 16],
                    expires: crate::proxy::pipeline::now_unix().saturating_add(snap.sessions.ttl_seconds),
                    version: crate::mcp::version::Version::parse(version.as_bytes()).map_or(0, |v| v.tag()),
                    principal,
                    backends: sessions,
                };
                let sealed = ring::rand::SecureRandom::fill(&core.rng, &mut claims.id)
                    .ok()
                    .and_then(|()| snap.sessions.seal(&claims, &server.name, &core.rng));
                match sealed {
                    None => Err((Error::internal("could not create a session"), Some(id))),
                    Some(sid) => {
                        core.stats.borrow_mut().sessions_opened += 1;
                        let mut out = Vec::with_capacity(512);
                        begin(&mut out, &id);
                        let caps = serde_json::to_vec(&caps).unwrap_or_else(|_| local::CAPABILITIES.to_vec());
                        local::initialize_with(
                            &mut out,
                            server,
                            crate::mcp::version::Version::parse(version.as_bytes())
                                .unwrap_or(crate::mcp::version::LATEST_HANDSHAKE),
                            &caps,
                        );
                        out.extend_from_slice(b"}}");
                        Ok((200, out, Some(sid), response::JSON))
                    }
                }
            }
        }
        Plan::List { kind, id, claims, allow, resume } => {
            let mut out = Vec::with_capacity(4096);
            begin(&mut out, &id);
            let req =
                ListRequest { kind, allow: allow.as_deref(), visible: &visible, resume: resume.as_ref() };
            merge_list(cx, server, req, &fwd_refs, &mut out, |name| {
                claims.backends.iter().find(|(n, _)| n == name).map(|(_, s)| {
                    let (v, sid) = decode_session(s);
                    Via::Session(v.to_string(), sid.to_string())
                })
            })
            .await;
            out.extend_from_slice(b"}}");
            Ok((200, out, None, response::JSON))
        }
        Plan::ListStateless { kind, id, allow, resume } => {
            let mut out = Vec::with_capacity(4096);
            begin(&mut out, &id);
            let req =
                ListRequest { kind, allow: allow.as_deref(), visible: &visible, resume: resume.as_ref() };
            merge_list(cx, server, req, &fwd_refs, &mut out, |_| Some(Via::Link)).await;
            crate::proxy::pipeline::end_result_stateless(&mut out, server, true);
            Ok((200, out, None, response::JSON))
        }
        Plan::Discover { id } => {
            let links =
                server.backends.iter().enumerate().map(|(i, b)| link(cx, server, b, fwd_for(&fwd_refs, i)));
            let mut caps: serde_json::Value =
                serde_json::from_slice(local::CAPABILITIES).unwrap_or(serde_json::Value::Null);
            for (b, r) in server.backends.iter().zip(futures_util::future::join_all(links).await) {
                match r {
                    Ok(_) => {
                        if let Some(c) = link_caps(cx, server, b) {
                            merge_capabilities(&mut caps, &c);
                        }
                    }
                    // Discovery still answers: that backend's capabilities are just not offered.
                    Err(why) => {
                        log::warn!("backend {}: {}; left out of server/discover", b.name, why.message)
                    }
                }
            }
            let caps = serde_json::to_vec(&caps).unwrap_or_else(|_| local::CAPABILITIES.to_vec());
            let mut out = Vec::with_capacity(512);
            begin(&mut out, &id);
            local::discover_with(&mut out, server, &caps);
            crate::proxy::pipeline::end_result_stateless(&mut out, server, true);
            Ok((200, out, None, response::JSON))
        }
        Plan::Answer { backend: i, body, claims } => {
            let b = &server.backends[i];
            if let Some((_, s)) = claims.backends.iter().find(|(n, _)| *n == *b.name) {
                let (v, sid) = decode_session(s);
                match cx.send(b, &body, Wire::legacy(v, sid), fwd_for(&fwd_refs, i)).await {
                    Ok(r) if r.status < 300 => {}
                    Ok(r) => log::warn!("backend {}: the client's answer got HTTP {}", b.name, r.status),
                    Err(e) => log::warn!("backend {}: delivering the client's answer failed ({e})", b.name),
                }
            }
            let extra = Extra { request_id: Some(request_id), ..Extra::default() };
            response::write_head(out, 202, None, 0, keep_alive, &extra);
            return (202, !keep_alive);
        }
        Plan::Broadcast { id, body, claims } => {
            let sends = server.backends.iter().enumerate().filter_map(|(i, b)| {
                let (_, s) = claims.backends.iter().find(|(n, _)| *n == *b.name)?;
                let (v, sid) = decode_session(s);
                let (body, fwd) = (&body, fwd_for(&fwd_refs, i));
                Some(async move {
                    match cx.send(b, body, Wire::legacy(v, sid), fwd).await {
                        Ok(r) if r.status == 200 => {}
                        Ok(r) => log::warn!(
                            "backend {}: {} answered HTTP {}",
                            b.name,
                            "logging/setLevel",
                            r.status
                        ),
                        Err(e) => log::warn!("backend {}: logging/setLevel failed ({e})", b.name),
                    }
                })
            });
            futures_util::future::join_all(sends).await;
            let mut out = Vec::with_capacity(64);
            begin(&mut out, &id);
            out.extend_from_slice(b"}}");
            Ok((200, out, None, response::JSON))
        }
        Plan::Rest { id, tool, request, stateless } => {
            Ok((200, rest_call(cx, server, tool, &id, request, stateless).await, None, response::JSON))
        }
        Plan::CallStateless { method, id, backend: i, body, tool } => {
            let b = &server.backends[i];
            call_stateless(cx, server, b, method, &body, &tool, fwd_for(&fwd_refs, i))
                .await
                .map_err(|e| (e, Some(id)))
        }
        Plan::Call { id, backend: i, body, claims } => {
            let b = &server.backends[i];
            match claims.backends.iter().find(|(n, _)| *n == *b.name) {
                None => Err((
                    Error::client(
                        Kind::InvalidParams,
                        format!("backend {} is not part of this session", b.name),
                    ),
                    Some(id),
                )),
                Some((_, s)) => {
                    let (v, sid) = decode_session(s);
                    match cx.open(b, &body, Wire::legacy(v, sid), fwd_for(&fwd_refs, i)).await {
                        Ok(r) if r.status == 200 && is_sse(&r) => {
                            relay = Some(r);
                            relay_backend = &b.name;
                            Ok((200, Vec::new(), None, response::SSE))
                        }
                        Ok(r) if r.status == 200 => match cx.collect(r).await {
                            Ok(r) => Ok((200, r.body, None, response::JSON)),
                            Err(e) => Err((backend_error(b, &e), Some(id))),
                        },
                        Ok(r) => {
                            let status = r.status;
                            match cx.collect(r).await {
                                // The backend's own JSON-RPC error (code, message, data) is relayed.
                                Ok(mut r) if (400..500).contains(&status) && is_jsonrpc_error(&r.body) => {
                                    if let Some(c) = &b.credential {
                                        c.redact_from(&mut r.body);
                                    }
                                    Ok((status, r.body, None, response::JSON))
                                }
                                // The backend forgot its session: the client must start a new one.
                                _ if status == 404 => {
                                    Err((Error::client(Kind::SessionNotFound, "Session not found"), Some(id)))
                                }
                                _ => {
                                    log::warn!("backend {}: answered HTTP {status}", b.name);
                                    Err((
                                        Error::upstream(format!("backend {} answered HTTP {status}", b.name)),
                                        Some(id),
                                    ))
                                }
                            }
                        }
                        Err(e) => Err((backend_error(b, &e), Some(id))),
                    }
                }
            }
        }
    };
    let origin = cors.map(|o| o.of(buf)).filter(|o| !o.is_empty());
    let extra = Extra { cors_origin: origin, request_id: Some(request_id), ..Extra::default() };
    if let (Some(stream), Ok(_)) = (relay, &result) {
        response::write_stream_head(out, 200, response::SSE, keep_alive, &extra);
        let prefixed = server.prefixed();
        return relay_sse(
            conn,
            stream,
            core,
            &snap.limits,
            tally,
            keep_alive,
            (&server.name, relay_backend, prefixed),
        )
        .await;
    }
    match result {
        Ok((status, body, session, ctype)) => {
            let extra = Extra { session_id: session.as_deref(), ..extra };
            response::write_head(out, status, Some(ctype), body.len(), keep_alive, &extra);
            out.extend_from_slice(&body);
            (status, !keep_alive)
        }
        Err((err, id)) => {
            let raw = id.as_deref().map(Id::Raw);
            let reply = ErrorReply { id: raw.as_ref(), ..ErrorReply::default() };
            let w = respond::write_error(out, scratch, &err, &reply, keep_alive, &extra);
            (w.status, w.close || !keep_alive)
        }
    }
}

fn is_sse(r: &client::Streaming) -> bool {
    r.header("content-type").is_some_and(|c| c.starts_with(b"text/event-stream"))
}

/// Relays a backend's SSE answer to the client piece by piece as it arrives (progress and log
/// notifications reach the client before the result), as a chunked response whose head is
/// already in `conn.out`. A backend failure mid-stream closes the client connection without the
/// final chunk, so the client sees the stream break rather than a clean end.
async fn relay_sse(
    conn: &mut Conn,
    mut stream: client::Streaming,
    core: &Core,
    limits: &crate::config::snapshot::Limits,
    tally: &Tally,
    keep_alive: bool,
    (server, backend, prefixed): (&str, &str, bool),
) -> (u16, bool) {
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
                        core.schemas.borrow_mut().forget(server, backend);
                    }
                    sse::relay_event(ev, backend, prefixed, &mut chunk)
                });
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
fn write_chunk(out: &mut Vec<u8>, chunk: &[u8]) {
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
const STREAM_IDLE: Duration = Duration::from_secs(3600);

/// How long a GET stream may stay quiet before the gateway writes an SSE comment on it: a
/// client that went away is found (the write fails) and intermediaries see traffic.
const STREAM_KEEPALIVE: Duration = Duration::from_secs(15);

/// What one read of backend `.0`'s GET stream gave: relayed bytes, its end (`Ok(None)`), or a
/// failure.
type StreamItem = (usize, Result<Option<Vec<u8>>, UpstreamError>);

/// What woke the GET stream loop.
enum Wake {
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
        let cx = &Cx { core, owner: &principal.id, snap, tally, trace: Trace::of(head, buf, request_id) };
        let resume = head
            .last_event_id
            .and_then(|s| std::str::from_utf8(s.of(buf)).ok())
            .and_then(sse::split_event_id);
        let fwd = forwarded(server, principal, head, buf);
        let opens = server.backends.iter().enumerate().filter_map(|(i, b)| {
            let (_, s) = claims.backends.iter().find(|(n, _)| *n == *b.name)?;
            let (version, sid) = decode_session(s);
            let last_event_id = resume.filter(|(n, _)| *n == &*b.name).map_or("", |(_, id)| id);
            let wire = Wire { verb: Verb::Get, last_event_id, ..Wire::legacy(version, sid) };
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
        let w = respond::write_error(out, scratch, &err, &ErrorReply::default(), keep_alive, &extra);
        return (w.status, w.close || !keep_alive);
    }
    response::write_stream_head(out, 200, response::SSE, keep_alive, &extra);
    let limits = &snap.limits;
    if !tally.flush(conn, limits).await {
        return (200, true);
    }
    // One reader per backend stream. `select_all` keeps each reader's pending read when the
    // loop below wakes for something else: a read is abandoned only when the whole stream ends.
    let max_event = limits.http.max_body_bytes;
    let prefixed = server.prefixed();
    let readers = streams.into_iter().map(|(i, mut s)| {
        s.endless();
        let name: &str = &server.backends[i].name;
        let state = Some((s, sse::Events::default()));
        futures_util::stream::unfold(state, move |state| async move {
            let (mut s, mut events) = state?;
            s.wait_at_most(STREAM_IDLE);
            let item = match s.next().await {
                Ok(Some(piece)) => {
                    let mut chunk = Vec::with_capacity(piece.len() + 32);
                    events.push(piece, |ev| {
                        if schemas::lists_changed(ev) {
                            core.schemas.borrow_mut().forget(&server.name, name);
                        }
                        sse::relay_event(ev, name, prefixed, &mut chunk)
                    });
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
                log::debug!("backend {}: GET stream ended", server.backends[i].name);
            }
            Wake::Backend(Some((i, Err(e)))) => {
                let b = &server.backends[i];
                log::warn!("backend {}: GET stream broke ({e})", b.name);
                core.stats.borrow_mut().backend_failed(&b.name);
            }
            Wake::Backend(None) => {
                conn.out.extend_from_slice(b"0\r\n\r\n");
                return (200, !keep_alive);
            }
            Wake::Drain => {
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

/// An answer: HTTP status, body, the session id to hand out (initialize), content type.
type Answer = (u16, Vec<u8>, Option<String>, &'static str);

/// One REST tool call: the exchange over the worker's pool, then the answer (or the failure,
/// named by the tool, never by address) as a `tools/call` result.
async fn rest_call(
    cx: &Cx<'_>,
    server: &Server,
    tool: usize,
    id: &[u8],
    request: Vec<u8>,
    stateless: bool,
) -> Vec<u8> {
    use crate::config::snapshot::ToolKind;
    use crate::rest::tool::{shape, text_result};
    let mut out = Vec::with_capacity(256);
    begin(&mut out, id);
    let t = &server.tools[tool];
    let rest = match &t.kind {
        ToolKind::Rest(rt) => rt.target.as_ref().ok().map(|target| (rt, target)),
        ToolKind::Template { .. } => None,
    };
    match rest {
        Some((rt, target)) => {
            let exchanged = {
                let _waiting = cx.tally.wait();
                client::exchange(&cx.core.upstream, target, request, cx.snap.limits.upstream()).await
            };
            match exchanged {
                Ok(mut r) => {
                    if r.status >= 500 {
                        cx.core.stats.borrow_mut().backend_failed(&t.name);
                    }
                    // An error body may echo the request: never with the gateway's credential.
                    if !(200..300).contains(&r.status) {
                        if let Some(c) = rt.upstream.as_ref().and_then(|u| u.configured.as_ref()) {
                            c.redact_from(&mut r.body);
                        }
                    }
                    shape(rt, &server.config, r.status, r.header("content-type"), &r.body, &mut out)
                }
                Err(e) => {
                    cx.core.stats.borrow_mut().backend_failed(&t.name);
                    log::warn!("REST tool {} of server {}: {e}", t.name, server.name);
                    text_result(&mut out, &format!("call failed: {e}"), true)
                }
            }
        }
        // The pipeline plans REST calls only for REST tools with a resolved target.
        None => text_result(&mut out, "call failed: the tool has no backend", true),
    }
    if stateless {
        crate::proxy::pipeline::end_result_stateless(&mut out, server, false);
    } else {
        out.extend_from_slice(b"}}");
    }
    out
}

/// Whether `body` is a JSON-RPC error message: a backend's own protocol error (e.g. -32602 with
/// `data`, sent with HTTP 400 on the 2026 wire) is relayed as it is, status included.
fn is_jsonrpc_error(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v.get("error").is_some_and(|e| e.is_object()))
}
/// A failure and the client's id to echo.
type Failure = (Error, Option<Vec<u8>>);

/// DELETE fan-out: ends every backend session recorded in the client's (terminated) session.
/// Best effort: a backend that is down or answers 404/405 is logged, the client's DELETE
/// already succeeded.
pub async fn end_sessions(
    core: &Core,
    snap: &Snapshot,
    server: &Server,
    claims: &Claims,
    trace: Trace<'_>,
    tally: &Tally,
) {
    let cx = &Cx { core, owner: &claims.principal, snap, tally, trace };
    for (name, s) in &claims.backends {
        let (version, sid) = decode_session(s);
        let Some(b) = server.backends.iter().find(|b| &*b.name == name.as_str()) else { continue };
        if sid.is_empty() {
            continue;
        }
        let wire = Wire { verb: Verb::Delete, ..Wire::legacy(version, sid) };
        match cx.send(b, b"", wire, &[]).await {
            Ok(r) if r.status < 300 || r.status == 404 || r.status == 405 => {}
            Ok(r) => log::warn!("backend {}: DELETE of its session answered HTTP {}", b.name, r.status),
            Err(e) => log::warn!("backend {}: DELETE of its session failed ({e})", b.name),
        }
    }
}

/// Adds a backend's capabilities to the merged set: a capability any backend has is offered
/// (the gateway routes it), with sub-flags OR-ed (e.g. `listChanged`).
fn merge_capabilities(into: &mut serde_json::Value, from: &serde_json::Value) {
    let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) else { return };
    for (k, v) in from {
        // Capabilities the gateway does not relay yet are not offered to the client.
        if !matches!(k.as_str(), "tools" | "prompts" | "resources" | "completions" | "logging") {
            continue;
        }
        let slot = into.entry(k.clone()).or_insert_with(|| serde_json::json!({}));
        if let (Some(slot), Some(flags)) = (slot.as_object_mut(), v.as_object()) {
            for (f, fv) in flags {
                if fv == &serde_json::Value::Bool(true) || !slot.contains_key(f) {
                    slot.insert(f.clone(), fv.clone());
                }
            }
        }
    }
}

/// The client headers each backend receives, by backend index (empty when none forwards any):
/// its `forwardHeaders`, `Mcp-Param-*`, and the principal's claim headers. Borrowed from the
/// request's read buffer, not copied.
fn forwarded<'b>(
    server: &Server,
    principal: &'b crate::auth::Principal,
    head: &crate::http::head::Head,
    buf: &'b [u8],
) -> Vec<Vec<(&'b [u8], &'b [u8])>> {
    // `Mcp-Param-*` (2026-07-28 custom parameter headers) belong to the request itself: an
    // intermediary MUST forward them.
    let is_param = |n: &[u8]| n.len() > 10 && n[..10].eq_ignore_ascii_case(b"mcp-param-");
    let any_param = head.headers.iter().any(|(n, _)| is_param(n.of(buf)));
    // Headers set from verified claims replace any the client sent under the same name, and
    // the proxy identity header never leaves (`Authenticator::strips`).
    if any_param
        || !principal.headers.is_empty()
        || server.backends.iter().any(|b| !b.forward_headers.is_empty())
    {
        let forwarded = |b: &Backend| -> Vec<(&[u8], &[u8])> {
            head.headers
                .iter()
                .filter(|(n, _)| {
                    let n = n.of(buf);
                    // The allow-list header narrows what this gateway exposes: consumed here,
                    // never forwarded (Higress/Envoy behaviour).
                    !server.auth.strips(n)
                        && !n.eq_ignore_ascii_case(b"x-envoy-allow-mcp-tools")
                        // Set by the gateway itself (`observe::Trace`), once.
                        && !crate::proxy::observe::TRACE_HEADERS.iter().any(|t| n.eq_ignore_ascii_case(t.as_bytes()))
                        && (is_param(n)
                            || b.forward_headers.iter().any(|f| n.eq_ignore_ascii_case(f.as_bytes())))
                })
                .map(|(n, v)| (n.of(buf), v.of(buf)))
                .chain(principal.headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
                .collect()
        };
        server.backends.iter().map(forwarded).collect()
    } else {
        Vec::new()
    }
}

/// Backend `i`'s forwarded headers (none when no backend forwards any).
fn fwd_for<'a>(all: &'a [Vec<(&'a [u8], &'a [u8])>], i: usize) -> &'a [(&'a [u8], &'a [u8])] {
    all.get(i).map_or(&[], Vec::as_slice)
}

/// What the helpers below need of the worker, the snapshot and the request.
struct Cx<'a> {
    core: &'a Core,
    /// The principal's id: the owner of the gateway-owned backend sessions it uses.
    owner: &'a str,
    snap: &'a Snapshot,
    /// Backend time and streamed bytes of the request.
    tally: &'a Tally,
    /// Request id and trace context, sent on every backend request.
    trace: Trace<'a>,
}

impl Cx<'_> {
    /// A request id for a message the gateway itself sends a backend. Unique per worker (ids
    /// must not repeat within a backend session, and concurrent requests share sessions).
    fn next_id(&self) -> String {
        let n = self.core.upstream_ids.get() + 1;
        self.core.upstream_ids.set(n);
        format!("portcullis-{}-{n}", self.core.worker)
    }

    async fn open(
        &self,
        b: &Backend,
        body: &[u8],
        wire: Wire<'_>,
        fwd: &[(&[u8], &[u8])],
    ) -> Result<client::Streaming, UpstreamError> {
        let r = {
            let _waiting = self.tally.wait();
            let headers = backend::Headers { forwarded: fwd, trace: self.trace.headers() };
            backend::open(
                &self.core.upstream,
                &self.core.upstream_rr,
                &self.snap.limits,
                b,
                body,
                wire,
                headers,
            )
            .await
        };
        // Transport failures and server errors count; 4xx answers are protocol outcomes.
        if r.as_ref().map_or(true, |s| s.status >= 500) {
            self.core.stats.borrow_mut().backend_failed(&b.name);
        }
        r
    }

    async fn send(
        &self,
        b: &Backend,
        body: &[u8],
        wire: Wire<'_>,
        fwd: &[(&[u8], &[u8])],
    ) -> Result<Response, UpstreamError> {
        let r = self.collect(self.open(b, body, wire, fwd).await?).await;
        if r.is_err() {
            self.core.stats.borrow_mut().backend_failed(&b.name);
        }
        r
    }

    /// Reads the rest of a backend's answer (time counted as backend time).
    async fn collect(&self, r: client::Streaming) -> Result<Response, UpstreamError> {
        let _waiting = self.tally.wait();
        client::collect(r, &self.core.upstream).await
    }
}

/// Initializes `b` (then sends `notifications/initialized`): (negotiated version, session id).
async fn init_backend(
    cx: &Cx<'_>,
    b: &Backend,
    version: &str,
    fwd: &[(&[u8], &[u8])],
) -> Result<(String, String, serde_json::Value), String> {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"portcullis-init","method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{}},"clientInfo":{{"name":"portcullis","version":"{}"}}}}}}"#,
        local::VERSION
    );
    let resp = match cx.send(b, body.as_bytes(), Wire::default(), fwd).await {
        Ok(r) if r.status == 200 => r,
        Ok(r) => return Err(format!("initialize answered HTTP {}", r.status)),
        Err(e) => return Err(format!("initialize failed ({e})")),
    };
    let result = answer(&resp, Some("portcullis-init"))
        .and_then(|v| v.get("result").cloned())
        .ok_or_else(|| "no initialize result".to_string())?;
    let v = result.get("protocolVersion").and_then(|v| v.as_str()).unwrap_or(version).to_string();
    let sid =
        resp.header("mcp-session-id").map(|s| String::from_utf8_lossy(s).into_owned()).unwrap_or_default();
    let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    if let Err(e) = cx.send(b, note, Wire::legacy(&v, &sid), fwd).await {
        log::warn!("backend {}: notifications/initialized failed ({e})", b.name);
    }
    let caps = result.get("capabilities").cloned().unwrap_or(serde_json::Value::Null);
    Ok((v, sid, caps))
}

const META_2026: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

/// How this worker reaches `b` for the request's principal (see `proxy::links`): a 2026-07-28
/// backend (learned by `server/discover`) directly; any other through a gateway-owned session of
/// this principal and these identity headers, opened on first use.
async fn link(cx: &Cx<'_>, server: &Server, b: &Backend, fwd: &[(&[u8], &[u8])]) -> Result<Link, Error> {
    let owner = links::owner(&server.name, &b.name, cx.owner, fwd);
    let now = std::time::Instant::now();
    let (known, idle) = {
        let mut l = cx.core.links.borrow_mut();
        l.renew(cx.snap.generation);
        let known = l.kind(&server.name, &b.name).map(|(k, _)| k);
        match known {
            Some(links::Kind::Modern) => return Ok(Link::Modern),
            Some(links::Kind::Legacy) => match l.session(&owner, now) {
                Ok(Some((version, session))) => return Ok(Link::Legacy { version, session }),
                Ok(None) => (known, None),
                Err(idle) => (known, Some(idle)),
            },
            None => (None, None),
        }
    };
    close_owned(cx, server, idle.into_iter().collect()).await;
    if known.is_none() {
        let discover = format!(
            r#"{{"jsonrpc":"2.0","id":"portcullis-discover","method":"server/discover","params":{{{META_2026}}}}}"#
        );
        let discovered =
            match cx.send(b, discover.as_bytes(), Wire::modern("server/discover", None), fwd).await {
                Ok(r) if r.status == 200 => answer(&r, Some("portcullis-discover")).filter(|v| {
                    v["result"]["supportedVersions"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == "2026-07-28"))
                }),
                Ok(_) => None,
                Err(e) => return Err(backend_error(b, &e)),
            };
        if let Some(mut v) = discovered {
            let caps = v["result"]["capabilities"].take();
            cx.core.links.borrow_mut().set_kind(&server.name, &b.name, links::Kind::Modern, caps);
            return Ok(Link::Modern);
        }
    }
    let (version, session, caps) = init_backend(cx, b, crate::mcp::version::LATEST_HANDSHAKE.as_str(), fwd)
        .await
        .map_err(|why| Error::upstream(format!("backend {}: {why}", b.name)))?;
    let closing = {
        let mut l = cx.core.links.borrow_mut();
        if known.is_none() {
            l.set_kind(&server.name, &b.name, links::Kind::Legacy, caps);
        }
        l.insert(owner, (&server.name, &b.name), version.clone(), session.clone(), now)
    };
    close_owned(cx, server, closing).await;
    Ok(Link::Legacy { version, session })
}

/// Ends gateway-owned sessions the worker let go of (best effort, like a client's DELETE).
async fn close_owned(cx: &Cx<'_>, server: &Server, closing: Vec<links::Closing>) {
    for (_, backend, version, sid) in closing {
        let Some(b) = server.backends.iter().find(|b| *b.name == *backend) else { continue };
        if sid.is_empty() {
            continue;
        }
        let wire = Wire { verb: Verb::Delete, ..Wire::legacy(&version, &sid) };
        if let Err(e) = cx.send(b, b"", wire, &[]).await {
            log::debug!("backend {}: closing an idle gateway-owned session failed ({e})", b.name);
        }
    }
}

/// The capabilities `b` declared when this worker linked to it.
fn link_caps(cx: &Cx<'_>, server: &Server, b: &Backend) -> Option<std::rc::Rc<serde_json::Value>> {
    cx.core.links.borrow().kind(&server.name, &b.name).map(|(_, c)| c)
}

/// The backend forgot the principal's gateway-owned session (404): the next call opens another.
fn forget(cx: &Cx<'_>, server: &Server, b: &Backend, fwd: &[(&[u8], &[u8])]) {
    cx.core.links.borrow_mut().forget(&links::owner(&server.name, &b.name, cx.owner, fwd));
}

/// How one backend is addressed while merging lists.
enum Via {
    /// Within the client's session: (version, backend session id).
    Session(String, String),
    /// Over the worker's link (2026-07-28 clients).
    Link,
}

/// Appends `"tools":[...]` - local tools, then every reachable backend's selected tools under
/// their exposed names, following backend pages. A failing backend is left out and logged.
async fn merge_list(
    cx: &Cx<'_>,
    server: &Server,
    ListRequest { kind, allow, visible, resume }: ListRequest<'_>,
    fwd: &[Vec<(&[u8], &[u8])>],
    out: &mut Vec<u8>,
    via: impl Fn(&str) -> Option<Via>,
) {
    out.push(b'"');
    out.extend_from_slice(kind.member().as_bytes());
    out.extend_from_slice(b"\":[");
    let mut first = true;
    // Local tools come on the first page only.
    let local: &[crate::config::snapshot::LocalTool] =
        if kind == ListKind::Tools && resume.is_none() { &server.tools } else { &[] };
    for t in local {
        if server.tool_allowed(t, allow) && visible.tool(&server.name, &t.name) {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&t.listing);
        }
    }
    // One page of every backend still listing, fetched at once; the answers are merged in
    // configuration order. A backend with more pages goes into the gateway cursor.
    let fetches = server.backends.iter().enumerate().map(|(i, b)| {
        let start = match resume {
            None => Some(None),
            Some(r) => r.0.iter().find(|(n, _)| *n == *b.name).map(|(_, c)| Some(c.clone())),
        };
        let route = start.as_ref().and_then(|_| via(&b.name));
        async move {
            let mut pages = Vec::new();
            let Some(route) = route else { return (pages, None) };
            let mut cursor: Option<String> = start.flatten();
            {
                let cursor_json =
                    cursor.as_ref().map(|c| format!(r#""cursor":{},"#, serde_json::Value::String(c.clone())));
                let result = match &route {
                    Via::Session(v, sid) => {
                        let id = cx.next_id();
                        let body = format!(
                            r#"{{"jsonrpc":"2.0","id":"{id}","method":"{}","params":{{{}"_meta":{{}}}}}}"#,
                            kind.method(),
                            cursor_json.as_deref().unwrap_or("")
                        );
                        page(cx, b, body.as_bytes(), &id, Wire::legacy(v, sid), fwd_for(fwd, i)).await
                    }
                    Via::Link => {
                        list_over_link(
                            cx,
                            server,
                            b,
                            kind,
                            cursor_json.as_deref().unwrap_or(""),
                            fwd_for(fwd, i),
                        )
                        .await
                    }
                };
                let Some(result) = result else { return (pages, None) };
                cursor = result.get("nextCursor").and_then(|c| c.as_str()).map(str::to_string);
                pages.push(result);
            }
            (pages, cursor)
        }
    });
    let all = futures_util::future::join_all(fetches).await;
    let mut next = Vec::new();
    for (b, (pages, more)) in server.backends.iter().zip(all) {
        if let Some(c) = more {
            next.push((b.name.to_string(), c));
        }
        for result in pages {
            for item in result.get(kind.member()).and_then(|t| t.as_array()).into_iter().flatten() {
                let Some(name) = item.get(kind.field()).and_then(|n| n.as_str()) else { continue };
                if kind == ListKind::Tools && !b.selector.selects(name) {
                    continue;
                }
                // Every selected tool, also those this caller does not see: another may call it.
                if kind == ListKind::Tools {
                    let mut learned = cx.core.schemas.borrow_mut();
                    learned.renew(cx.snap.generation);
                    learned.learn(&server.name, &b.name, name, item.get("inputSchema"));
                }
                let exposed = if server.prefixed() {
                    format!("{}{}{}", b.name, kind.joiner(server), name)
                } else {
                    name.to_string()
                };
                if kind == ListKind::Tools
                    && (!server.name_allowed(&exposed, allow) || !visible.tool(&b.name, name))
                {
                    continue;
                }
                let mut t = item.clone();
                t[kind.field()] = serde_json::Value::String(exposed);
                if !first {
                    out.push(b',');
                }
                first = false;
                let _ = serde_json::to_writer(&mut *out, &t);
            }
        }
    }
    out.push(b']');
    if !next.is_empty() {
        out.extend_from_slice(b",\"nextCursor\":");
        json::write_str(out, &Resume(next).encode(kind));
    }
}

/// One list page over the worker's link, re-linking once if a legacy session expired.
async fn list_over_link(
    cx: &Cx<'_>,
    server: &Server,
    b: &Backend,
    kind: ListKind,
    cursor: &str,
    fwd: &[(&[u8], &[u8])],
) -> Option<serde_json::Value> {
    for attempt in 0..2 {
        let l = match link(cx, server, b, fwd).await {
            Ok(l) => l,
            Err(e) => {
                log::warn!("{}", e.message);
                return None;
            }
        };
        let id = cx.next_id();
        let (body, wire_version, wire_session);
        let wire = match &l {
            Link::Modern => {
                body = format!(
                    r#"{{"jsonrpc":"2.0","id":"{id}","method":"{}","params":{{{cursor}{META_2026}}}}}"#,
                    kind.method()
                );
                Wire::modern(kind.method(), None)
            }
            Link::Legacy { version, session } => {
                body = format!(
                    r#"{{"jsonrpc":"2.0","id":"{id}","method":"{}","params":{{{cursor}"_meta":{{}}}}}}"#,
                    kind.method()
                );
                (wire_version, wire_session) = (version.as_str(), session.as_str());
                Wire::legacy(wire_version, wire_session)
            }
        };
        match cx.send(b, body.as_bytes(), wire, fwd).await {
            Ok(r) if r.status == 404 && attempt == 0 && matches!(l, Link::Legacy { .. }) => {
                forget(cx, server, b, fwd)
            }
            Ok(r) if r.status == 200 => return answer(&r, Some(&id)).and_then(|v| v.get("result").cloned()),
            Ok(r) => {
                log::warn!("backend {}: tools/list answered HTTP {}", b.name, r.status);
                return None;
            }
            Err(e) => {
                log::warn!("backend {}: tools/list failed ({e})", b.name);
                return None;
            }
        }
    }
    None
}

/// One tools/list page within a client session.
async fn page(
    cx: &Cx<'_>,
    b: &Backend,
    body: &[u8],
    id: &str,
    wire: Wire<'_>,
    fwd: &[(&[u8], &[u8])],
) -> Option<serde_json::Value> {
    match cx.send(b, body, wire, fwd).await {
        Ok(r) if r.status == 200 => answer(&r, Some(id)).and_then(|v| v.get("result").cloned()),
        Ok(r) => {
            log::warn!("backend {}: tools/list answered HTTP {}", b.name, r.status);
            None
        }
        Err(e) => {
            log::warn!("backend {}: tools/list failed ({e})", b.name);
            None
        }
    }
}

/// A 2026-07-28 client's tools/call over the worker's link. A 2026 backend's answer is relayed
/// as sent; a legacy backend's answer is translated (the revision requires `resultType`), which
/// means parsing and re-encoding that one message.
async fn call_stateless(
    cx: &Cx<'_>,
    server: &Server,
    b: &Backend,
    method: &str,
    body: &[u8],
    tool: &str,
    fwd: &[(&[u8], &[u8])],
) -> Result<Answer, Error> {
    for attempt in 0..2 {
        let l = link(cx, server, b, fwd).await?;
        let wire = match &l {
            // Mcp-Name exists for tools/call, prompts/get and resources/read only.
            Link::Modern if method == "completion/complete" => Wire::modern(method, None),
            Link::Modern => Wire::modern(method, Some(tool)),
            Link::Legacy { version, session } => Wire::legacy(version, session),
        };
        let resp = cx.send(b, body, wire, fwd).await.map_err(|e| backend_error(b, &e))?;
        match (resp.status, &l) {
            (404, Link::Legacy { .. }) if attempt == 0 => forget(cx, server, b, fwd),
            (200, Link::Modern) => {
                let sse = resp.header("content-type").is_some_and(|c| c.starts_with(b"text/event-stream"));
                return Ok((200, resp.body, None, if sse { response::SSE } else { response::JSON }));
            }
            (200, Link::Legacy { .. }) => {
                let mut msg = answer(&resp, None)
                    .ok_or_else(|| Error::upstream(format!("backend {} sent no JSON-RPC answer", b.name)))?;
                if let Some(r) = msg.get_mut("result").and_then(|r| r.as_object_mut()) {
                    r.entry("resultType").or_insert_with(|| serde_json::Value::String("complete".into()));
                    // resources/read is a cacheable result in 2026-07-28.
                    if method == "resources/read" {
                        r.entry("ttlMs").or_insert_with(|| serde_json::Value::from(0));
                        r.entry("cacheScope").or_insert_with(|| serde_json::Value::String("private".into()));
                    }
                }
                let out =
                    serde_json::to_vec(&msg).map_err(|_| Error::internal("could not encode the answer"))?;
                return Ok((200, out, None, response::JSON));
            }
            (status, _) if (400..500).contains(&status) && is_jsonrpc_error(&resp.body) => {
                let mut body = resp.body;
                if let Some(c) = &b.credential {
                    c.redact_from(&mut body);
                }
                return Ok((status, body, None, response::JSON));
            }
            (status, _) => {
                log::warn!("backend {}: answered HTTP {status}", b.name);
                return Err(Error::upstream(format!("backend {} answered HTTP {status}", b.name)));
            }
        }
    }
    Err(Error::upstream(format!("backend {}: session could not be re-established", b.name)))
}

fn begin(out: &mut Vec<u8>, id: &[u8]) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id);
    out.extend_from_slice(b",\"result\":{");
}
