//! Phase 6 for requests that need backends. The synchronous decision in `pipeline` produces a
//! [`Plan`] of owned data; [`run`] carries it out over the worker's connection pool and writes
//! the answer.
//!
//! - [`init`]: `initialize` of every backend for a 2025-revision client, capabilities merged,
//!   the DELETE fan-out.
//! - [`list`]: lists merged across local items and every backend, behind one gateway cursor.
//! - [`call`]: a REST tool's exchange; a 2026-07-28 client's call over the worker's link.
//! - [`bridge`] and [`pending`]: a 2025 backend's requests to a 2026-07-28 client as an
//!   `InputRequiredResult`, the exchange held until the client's retry ([`Plan::Resume`]).
//! - [`reverse`]: a 2025-revision client's calls to a 2026-07-28-only backend, its
//!   `InputRequiredResult`s asked of the client on its stream ([`Plan::Deliver`] brings answers).
//! - [`listen`]: `subscriptions/listen` fanned in from every backend ([`Plan::Listen`]).
//! - [`link`] and [`owned`]: how a 2026-07-28 client reaches a backend (directly, or over a
//!   gateway-owned session of its own principal).
//! - [`stream`]: SSE answers relayed as they arrive, and the GET fan-in of backend streams
//!   (requests inside them tagged with the backend so the client's answers find their way back,
//!   [`Plan::Answer`]).
//! - [`exchange`]: the request's context for backend exchanges, forwarded headers, backend time.
//! - [`wire`]: one backend request on the wire, and reading its JSON-RPC answer.
//! - [`schemas`]: argument rules of backend tools, learned from their lists.
//! - [`tokens`]: backend tokens from a token service (oauth2 schemes), cached per worker.

pub mod bridge;
pub(crate) mod call;
pub(crate) mod exchange;
pub(crate) mod init;
pub(crate) mod link;
pub(crate) mod list;
pub mod listen;
pub mod owned;
pub mod pending;
pub mod pins;
pub(crate) mod reverse;
pub mod schemas;
pub(crate) mod stream;
pub mod tokens;
pub mod wire;

pub(crate) use crate::proxy::names::{resolve, rewrite_name, route};
pub(crate) use exchange::{Caller, Tally};
pub(crate) use init::end_sessions;
pub(crate) use list::{ListKind, Resume};
pub(crate) use stream::get_stream;

use crate::config::snapshot::{Server, Snapshot};
use crate::error::{Error, Kind};
use crate::http::response::{self, Extra};
use crate::mcp::envelope::Id;
use crate::mcp::session::Claims;
use crate::proxy::conn::Conn;
use crate::proxy::core::Core;
use crate::proxy::exit::{error_exit, Rejection, To};
use crate::proxy::local;
use crate::respond::ErrorReply;
use crate::upstream::client::{self};

use self::wire::{backend_error, decode_session, encode_session, Wire};
use self::{call::*, exchange::*, init::*, link::*, list::*, stream::*};

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
        /// The client's `capabilities` (a JSON object), declared to every backend.
        capabilities: Vec<u8>,
    },
    /// Merge a list method across local items and every backend.
    List {
        /// Which list.
        kind: ListKind,
        /// The client's id, as JSON.
        id: Vec<u8>,
        /// How the backends are reached.
        via: Via,
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
    /// Forward a tools/call, prompts/get, resources/read, completion/complete or subscription
    /// to the one backend its name routes to.
    Call {
        /// The method (`Mcp-Method` on the 2026-07-28 wire).
        method: &'static str,
        /// The client's id, as JSON.
        id: Vec<u8>,
        /// Index of the backend in the server.
        backend: usize,
        /// The body for the backend: the client's with the name rewritten (or written anew with
        /// the arguments phase 5 normalized).
        body: Vec<u8>,
        /// The backend's name for the tool or prompt, or the resource URI (`Mcp-Name`).
        tool: String,
        /// How the backend is reached.
        via: Via,
    },
    /// Go on with an exchange a 2025 backend began with a request to the client (the MRTR
    /// bridge): the client's retry brought its `inputResponses`.
    Resume {
        /// The retry's id, as JSON.
        id: Vec<u8>,
        /// Index of the backend in the server.
        backend: usize,
        /// The retry's method: the held exchange's.
        method: &'static str,
        /// The backend's name (or URI) the retry names: the held exchange's.
        name: String,
        /// Where the exchange is held.
        at: crate::proxy::mrtr::Held,
        /// The retry's `inputResponses` (a JSON object).
        responses: Vec<u8>,
    },
    /// The client's answer to a request the reverse bridge sent it: to the call waiting for it.
    Deliver {
        /// The worker holding the call.
        worker: usize,
        /// The answer (slot, key, principal, result).
        answer: pending::Answered,
    },
    /// `subscriptions/listen` of a 2026-07-28 client: a subscription on every backend that
    /// serves part of it, fanned in to one stream.
    Listen {
        /// The client's id, as JSON (its subscription id).
        id: Vec<u8>,
        /// What the client asked to be told.
        filter: listen::Filter,
    },
    /// Call a REST tool's backend with the request the pipeline built, and shape the answer.
    Rest {
        /// The client's id, as JSON.
        id: Vec<u8>,
        /// Index of the tool in the server.
        tool: usize,
        /// The complete HTTP/1.1 request.
        request: Vec<u8>,
        /// A token service's token goes in its `authorization` (fetched, or from the worker's
        /// cache, when the call is made).
        token: bool,
        /// The client's transport generation (a 2026-07-28 result carries `resultType` and
        /// `_meta`).
        generation: crate::mcp::version::Generation,
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
}

/// How a plan reaches its backends, by the client's transport generation.
#[derive(Debug)]
pub enum Via {
    /// Within the client's 2025-revision session: each backend's own session is sealed in it.
    Session(std::rc::Rc<Claims>),
    /// For a 2026-07-28 client: over the worker's links (directly, or over a gateway-owned
    /// session of the principal).
    Links,
}

impl Plan {
    /// The backend the plan goes to, for the access line: a backend's name, the server's own
    /// name for a REST tool (as in authorization targets), `*` when it asks several.
    pub fn backend<'s>(&self, server: &'s Server) -> &'s str {
        match self {
            Plan::Call { backend, .. } | Plan::Answer { backend, .. } | Plan::Resume { backend, .. } => {
                server.backends.get(*backend).map_or("-", |b| &b.name)
            }
            Plan::Rest { .. } => &server.name,
            _ => "*",
        }
    }
}

/// Learns the argument rules of backend `backend`'s tools before phase 5 decides a call to one
/// of them (see `proxy::decide`): reads its tool list within the client's session (`via`) or over
/// the worker's link. Writes no response.
pub async fn learn(
    core: &Core,
    snap: &Snapshot,
    server: &Server,
    conn: &Conn,
    caller: Caller<'_>,
    backend: usize,
    via: &Via,
) {
    let Some(b) = server.backends.get(backend) else { return };
    let Conn { buf, head, request_id, caps, .. } = conn;
    let fwd_refs = forwarded(server, caller.principal, head, buf);
    let who = (caller.principal, caller.tally);
    let cx = &Cx::for_request((core, snap), (head, buf, request_id), who, declared(via, caps));
    let fwd = fwd_for(&fwd_refs, backend);
    match via {
        Via::Session(claims) => {
            let Some((_, s)) = claims.backends.iter().find(|(n, _)| *n == *b.name) else { return };
            let (v, sid) = decode_session(s);
            let session = (!reverse::is_modern(v)).then_some((v, sid));
            learn_tools(cx, server, b, session, fwd).await;
        }
        Via::Links => learn_tools(cx, server, b, None, fwd).await,
    }
}

/// `initialize` of `b` for a client's session. A backend that refuses it but speaks the
/// 2026-07-28 revision joins the session anyway (the reverse bridge): its entry records that
/// revision and, in place of a session id, the client's capabilities (at most 4 KiB of them).
async fn join(
    cx: &Cx<'_>,
    b: &crate::config::snapshot::Backend,
    (version, capabilities): (&str, &[u8]),
    fwd: &[(&[u8], &[u8])],
) -> Result<(String, String, serde_json::Value), Error> {
    let refused = match init_backend(cx, b, (version, capabilities), fwd).await {
        Ok(joined) => return Ok(joined),
        Err(e) => e,
    };
    match discover(cx, b, fwd).await {
        Ok(Some(caps)) => {
            let declared = if capabilities.len() <= 4096 { capabilities } else { b"{}" };
            Ok((wire::MODERN.to_string(), String::from_utf8_lossy(declared).into_owned(), caps))
        }
        _ => Err(refused),
    }
}

/// The client's declared capabilities recorded for backend `i` in its session, when that backend
/// speaks only the 2026-07-28 revision (the reverse bridge).
fn modern_entry<'c>(server: &Server, claims: &'c Claims, i: usize) -> Option<&'c str> {
    let b = server.backends.get(i)?;
    let (_, s) = claims.backends.iter().find(|(n, _)| *n == *b.name)?;
    let (version, caps) = decode_session(s);
    reverse::is_modern(version).then_some(caps)
}

/// The capabilities a request declared, for backends reached over the worker's links (2026-07-28
/// requests carry them in `_meta`; a client session's backends were told at `initialize`).
fn declared<'c>(via: &Via, caps: &'c [u8]) -> &'c [u8] {
    match via {
        Via::Links if !caps.is_empty() => caps,
        _ => b"{}",
    }
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
    let plan = match plan {
        Plan::Listen { id, filter } => {
            return listen::listen((core, snap, server), conn, caller, &id, filter).await
        }
        Plan::Call { method, id, backend, body, tool, via: Via::Session(claims) }
            if modern_entry(server, &claims, backend).is_some() =>
        {
            let caps = modern_entry(server, &claims, backend).unwrap_or("{}");
            let call = reverse::Call { backend, method, id: &id, body: &body, tool: &tool, caps };
            return reverse::call((core, snap, server), conn, caller, call).await;
        }
        Plan::Deliver { worker, answer } => {
            if !reverse::deliver(core, worker, answer) {
                log::debug!("an answer for a call no longer waiting was dropped");
            }
            let extra = Extra { request_id: Some(&conn.request_id), ..Extra::default() };
            response::write_head(&mut conn.out, 202, None, 0, caller.keep_alive, &extra);
            return (202, !caller.keep_alive);
        }
        plan => plan,
    };
    let Caller { keep_alive, cors, principal, tally } = caller;
    // The request's bytes stay put while backends are asked (only `out`/`scratch` are written,
    // at the end), so forwarded headers are borrowed from the read buffer, not copied.
    let Conn { buf, head, out, scratch, request_id, caps, .. } = &mut *conn;
    let (buf, head): (&[u8], &crate::http::head::Head) = (buf, head);
    let caps: &[u8] = match &plan {
        Plan::Call { via, .. } | Plan::List { via, .. } => declared(via, caps),
        Plan::Discover { .. } => declared(&Via::Links, caps),
        _ => b"{}",
    };
    let fwd_refs = forwarded(server, principal, head, buf);
    let cx = &Cx::for_request((core, snap), (head, buf, request_id), (principal, tally), caps);
    let visible = crate::proxy::authz::Visible { server, principal, head, buf };
    // Set when the answer is an SSE stream to relay as it arrives rather than whole.
    let mut relay: Option<client::Streaming> = None;
    let mut relay_backend: Option<&crate::config::snapshot::Backend> = None;
    let mut relay_method = "";
    // A tools/call whose backend token could not be had is the tool's failure (an isError
    // result naming the scheme), as a REST tool's is.
    let tool_call = match &plan {
        Plan::Call { method: "tools/call", via, .. } => Some(match via {
            Via::Links => crate::mcp::version::Generation::Stateless,
            Via::Session(_) => crate::mcp::version::Generation::Sessions,
        }),
        _ => None,
    };
    let result: Result<Answer, Failure> = match plan {
        Plan::Initialize { id, version, principal, capabilities } => {
            // Every backend at once: the client waits for the slowest, not the sum.
            let inits = server
                .backends
                .iter()
                .enumerate()
                .map(|(i, b)| join(cx, b, (version, &capabilities), fwd_for(&fwd_refs, i)));
            let mut sessions = Vec::new();
            // The client sees the union of what the gateway and the joined backends offer.
            let mut caps: serde_json::Value =
                serde_json::from_slice(local::CAPABILITIES).unwrap_or(serde_json::Value::Null);
            let mut failures = Vec::new();
            for (b, r) in server.backends.iter().zip(futures_util::future::join_all(inits).await) {
                match r {
                    Ok((v, sid, backend_caps)) => {
                        sessions.push((b.name.to_string(), encode_session(&v, &sid)));
                        merge_capabilities(&mut caps, &backend_caps);
                    }
                    Err(why) => {
                        log::warn!("{}; left out of the session", why.message);
                        failures.push(why.message);
                    }
                }
            }
            if sessions.is_empty() && server.tools.is_empty() {
                // The reasons name backends and schemes (never addresses or credentials).
                let why = format!("no backend could be initialized ({})", failures.join("; "));
                Err((Error::upstream(why), Some(id)))
            } else {
                let negotiated = crate::mcp::version::Version::parse(version.as_bytes())
                    .unwrap_or(crate::mcp::version::LATEST_HANDSHAKE);
                let at = (&*server.name, crate::proxy::core::now_unix());
                let sealed = snap.sessions.seal_new(negotiated, &principal, sessions, at, &core.rng);
                match sealed {
                    None => Err((Error::internal("could not create a session"), Some(id))),
                    Some(sid) => {
                        core.stats.borrow_mut().sessions_opened += 1;
                        let mut out = Vec::with_capacity(512);
                        crate::mcp::reply::begin_raw(&mut out, &id);
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
        Plan::List { kind, id, via: Via::Session(claims), allow, resume } => {
            let mut out = Vec::with_capacity(4096);
            crate::mcp::reply::begin_raw(&mut out, &id);
            let req =
                ListRequest { kind, allow: allow.as_deref(), visible: &visible, resume: resume.as_ref() };
            merge_list(cx, server, req, &fwd_refs, &mut out, |name| {
                claims.backends.iter().find(|(n, _)| n == name).map(|(_, s)| {
                    let (v, sid) = decode_session(s);
                    // A 2026-07-28-only backend is asked on its own wire.
                    if reverse::is_modern(v) {
                        return Addressed::Link;
                    }
                    Addressed::Session(v.to_string(), sid.to_string())
                })
            })
            .await;
            out.extend_from_slice(b"}}");
            Ok((200, out, None, response::JSON))
        }
        Plan::List { kind, id, via: Via::Links, allow, resume } => {
            let mut out = Vec::with_capacity(4096);
            crate::mcp::reply::begin_raw(&mut out, &id);
            let req =
                ListRequest { kind, allow: allow.as_deref(), visible: &visible, resume: resume.as_ref() };
            merge_list(cx, server, req, &fwd_refs, &mut out, |_| Some(Addressed::Link)).await;
            crate::proxy::local::end_result_stateless(&mut out, server, true);
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
                            merge_extensions(&mut caps, &c);
                        }
                    }
                    // Discovery still answers: that backend's capabilities are just not offered.
                    Err(why) => {
                        log::warn!("backend {}: {}; left out of server/discover", b.name, why.message)
                    }
                }
            }
            // The 2025-11-25 tasks capability is no capability of the 2026-07-28 revision.
            if let Some(c) = caps.as_object_mut() {
                c.remove("tasks");
            }
            let caps = serde_json::to_vec(&caps).unwrap_or_else(|_| local::CAPABILITIES.to_vec());
            let mut out = Vec::with_capacity(512);
            crate::mcp::reply::begin_raw(&mut out, &id);
            local::discover_with(&mut out, server, &caps);
            crate::proxy::local::end_result_stateless(&mut out, server, true);
            Ok((200, out, None, response::JSON))
        }
        Plan::Answer { backend: i, body, claims } => {
            let b = &server.backends[i];
            if let Some((_, s)) = claims.backends.iter().find(|(n, _)| *n == *b.name) {
                let (v, sid) = decode_session(s);
                match cx.send(b, &body, Wire::session(v, sid), fwd_for(&fwd_refs, i)).await {
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
                // logging/setLevel is no method of the 2026-07-28 revision.
                if reverse::is_modern(v) {
                    return None;
                }
                let (body, fwd) = (&body, fwd_for(&fwd_refs, i));
                Some(async move {
                    match cx.send(b, body, Wire::session(v, sid), fwd).await {
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
            crate::mcp::reply::begin_raw(&mut out, &id);
            out.extend_from_slice(b"}}");
            Ok((200, out, None, response::JSON))
        }
        Plan::Rest { id, tool, request, generation, token } => {
            let answer = rest_call(cx, server, tool, &id, (request, token), generation).await;
            Ok((200, answer, None, response::JSON))
        }
        Plan::Call { method, id, backend: i, body, tool, via: Via::Links } => {
            let b = &server.backends[i];
            let r = call_stateless(cx, server, b, (method, &id), &body, &tool, fwd_for(&fwd_refs, i)).await;
            let mut spare = core.spare.borrow_mut();
            spare.give(body);
            spare.give(tool.into_bytes());
            match r {
                Ok(answer) => {
                    spare.give(id);
                    Ok(answer)
                }
                Err(e) => Err((e, Some(id))),
            }
        }
        // Answered above.
        Plan::Deliver { .. } => Err((Error::internal("an answer is not a call"), None)),
        Plan::Listen { id, .. } => Err((Error::internal("a subscription is not answered whole"), Some(id))),
        Plan::Resume { id, backend, method, name, at, responses } => {
            bridge::resume(cx, server, (backend, method, &name), at, (&id, &responses))
                .await
                .map_err(|e| (e, Some(id)))
        }
        Plan::Call { method, id, backend: i, body, tool, via: Via::Session(claims) } => {
            relay_method = method;
            // The spare buffers the call came in go back (the id's on success: an error names it).
            let mut id = Some(id);
            let b = &server.backends[i];
            let r = match claims.backends.iter().find(|(n, _)| *n == *b.name) {
                None => Err((
                    Error::client(
                        Kind::InvalidParams,
                        format!("backend {} is not part of this session", b.name),
                    ),
                    id.take(),
                )),
                Some((_, s)) => {
                    let (v, sid) = decode_session(s);
                    match cx.open(b, &body, Wire::session(v, sid), fwd_for(&fwd_refs, i)).await {
                        Ok(r) if r.status == 200 && is_sse(&r) => {
                            relay = Some(r);
                            relay_backend = Some(b);
                            Ok((200, Vec::new(), None, response::SSE))
                        }
                        Ok(r) if r.status == 200 => match cx.collect(r).await {
                            Ok(mut r) => {
                                cx.redact(b, &mut r.body);
                                crate::proxy::tasks::tag_answer(method, &mut r.body, false, |own| {
                                    crate::proxy::tasks::tag(snap, server, cx.owner, &b.name, own)
                                });
                                Ok((200, r.body, None, response::JSON))
                            }
                            Err(e) => Err((backend_error(b, &e), id.take())),
                        },
                        Ok(r) => {
                            let status = r.status;
                            match cx.collect(r).await {
                                // The backend's own JSON-RPC error (code, message, data) is relayed.
                                Ok(mut r) if (400..500).contains(&status) && is_jsonrpc_error(&r.body) => {
                                    cx.redact(b, &mut r.body);
                                    Ok((status, r.body, None, response::JSON))
                                }
                                // The backend forgot its session: the client must start a new one.
                                _ if status == 404 => Err((
                                    Error::client(Kind::SessionNotFound, "Session not found"),
                                    id.take(),
                                )),
                                _ => {
                                    log::warn!("backend {}: answered HTTP {status}", b.name);
                                    Err((
                                        Error::upstream(format!("backend {} answered HTTP {status}", b.name)),
                                        id.take(),
                                    ))
                                }
                            }
                        }
                        Err(e) => Err((backend_error(b, &e), id.take())),
                    }
                }
            };
            let mut spare = core.spare.borrow_mut();
            spare.give(body);
            spare.give(tool.into_bytes());
            if let (Ok(_), Some(id)) = (&r, id) {
                spare.give(id);
            }
            r
        }
    };
    let result = match (result, tool_call) {
        (Err((e, Some(id))), Some(generation)) if e.kind == Kind::TokenService => {
            let mut out = Vec::with_capacity(128);
            crate::mcp::reply::begin_raw(&mut out, &id);
            crate::rest::tool::text_result(&mut out, &format!("call failed: {}", e.message), true);
            crate::proxy::local::end_result_for(&mut out, generation, server, false);
            Ok((200, out, None, response::JSON))
        }
        (r, _) => r,
    };

    let origin = cors.map(|o| o.of(buf)).filter(|o| !o.is_empty());
    let extra = Extra { cors_origin: origin, request_id: Some(request_id), ..Extra::default() };
    if let (Some(stream), Some(b), Ok(_)) = (relay, relay_backend, &result) {
        response::write_stream_head(out, 200, response::SSE, keep_alive, &extra);
        let fan = Fan { core, snap, server, principal, tally, keep_alive };
        return relay_sse(conn, stream, &fan, b, relay_method).await;
    }
    match result {
        Ok((status, body, session, ctype)) => {
            let extra = Extra { session_id: session.as_deref(), ..extra };
            response::write_head(out, status, Some(ctype), body.len(), keep_alive, &extra);
            out.extend_from_slice(&body);
            core.spare.borrow_mut().give(body);
            (status, !keep_alive)
        }
        Err((err, id)) => {
            let raw = id.as_deref().map(Id::Raw);
            let reply = ErrorReply { id: raw.as_ref(), ..ErrorReply::default() };
            let to = To { out, scratch, buf, request_id, cors, keep_alive };
            let o = error_exit(to, &Rejection { reply, ..Rejection::of(&err) });
            (o.status, o.close)
        }
    }
}
