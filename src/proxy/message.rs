//! Phase 4: the body decoded into one JSON-RPC message (or a 2025-03-26 batch of them) and the
//! rules of its protocol revision checked: `_meta`, `Mcp-*` headers and the version for
//! 2026-07-28; a session of this principal for the 2025 revisions. Then phase 5 once per
//! message, then phase 6.

use crate::error::{Error, Kind};
use crate::mcp::envelope::{self, Envelope, Id, MessageKind};
use crate::mcp::json;
use crate::mcp::version::{Generation, Version};
use crate::proxy::core::now_unix;
use crate::proxy::local;
use crate::proxy::observe::{self};
use crate::proxy::request::*;
use crate::proxy::stats::MethodClass;
use crate::proxy::{decide::*, dispatch::*, session::*};
use crate::respond::{self, ErrorReply};
use simd_json::Node;

pub(crate) const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

pub(crate) const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// Most messages in one JSON-RPC batch (2025-03-26 only).
pub(crate) const MAX_BATCH: usize = 100;

/// Phases 4-6 for one decoded body.
pub(crate) fn message(w: &mut Writer<'_, '_>, tape: &[Node<'_>]) -> Step {
    let header_version = w.header(w.head.protocol_version);
    if envelope::is_batch(tape) {
        return batch(w, tape, header_version).into();
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
    w.facts.rpc_id.set(match &env.id {
        Some(crate::mcp::envelope::Id::Int(i)) => Some(observe::RpcId::Int(*i)),
        Some(crate::mcp::envelope::Id::Uint(u)) => i64::try_from(*u).ok().map(observe::RpcId::Int),
        Some(crate::mcp::envelope::Id::Str(s)) => {
            observe::body_span(w.body, w.base, s).map(observe::RpcId::Str)
        }
        // An id kept as its JSON text: a number, or a string in the body as received.
        Some(crate::mcp::envelope::Id::Raw(r)) => {
            match std::str::from_utf8(r).ok().and_then(|t| t.parse().ok()) {
                Some(i) => Some(observe::RpcId::Int(i)),
                None => observe::raw_span(w.body, w.body.as_ptr() as usize, r).map(observe::RpcId::Str),
            }
        }
        _ => None,
    });
    if class == MethodClass::ToolsCall {
        let name = env.name.unwrap_or("");
        w.facts.tool.set(observe::body_span(w.body, w.base, name));
        w.facts.tool_labels.set(Some(observe::tool_labels(w.cx.server, name)));
    }
    let target = match env.method {
        "resources/read" | "resources/subscribe" => env.uri,
        "prompts/get" => env.name,
        _ => None,
    };
    if let Some(t) = target.filter(|_| env.kind == MessageKind::Request) {
        w.facts.target.set(observe::body_span(w.body, w.base, t));
    }
    // Which generation's rules the message follows.
    let generation = match header_version {
        Some(v) => match Version::parse(v) {
            Some(v) => v.generation(),
            // An unknown header version on a request that speaks the stateless wire (it has
            // `_meta`) is checked by the stateless rules, which report a mismatch first.
            None if env.meta.is_some() => Generation::Stateless,
            None => {
                let err = Error::client(Kind::UnsupportedProtocolVersion, "Unsupported protocol version");
                return unsupported_version(w, &err, env.id.as_ref(), v, Generation::Sessions, class).into();
            }
        },
        None if env.meta.and_then(|m| json::get(m, META_VERSION)).is_some() => Generation::Stateless,
        None => Generation::Sessions,
    };
    // The revision's own checks come first (an unknown session is 404, a 2026 request without
    // `_meta` is -32602, whatever the rules say), then phase 5 once, then dispatch with the
    // arguments phase 5 judged.
    let session = match generation {
        Generation::Stateless => match stateless_checks(w, &env, class) {
            Ok(()) => {
                // Never fewer, never more than the client declared: a backend the gateway opens a
                // session with for this caller is told exactly these.
                w.caps.clear();
                match env.meta.and_then(|m| json::get(m, META_CAPABILITIES)) {
                    Some(c) if !matches!(c.first(), Some(Node::Object { len: 0, .. })) => {
                        json::write_value(w.caps, c)
                    }
                    _ => w.caps.extend_from_slice(b"{}"),
                }
                None
            }
            Err(answered) => return answered,
        },
        Generation::Sessions => match legacy_checks(w, &env, class) {
            Ok(claims) => Some(claims),
            Err(answered) => return answered,
        },
    };
    let judged = decide(w, &env, |w, args| match &session {
        None => stateless(w, &env, class, args),
        Some(claims) => legacy(w, &env, claims.clone(), class, args),
    });
    match judged {
        Judged::Learn(backend) => {
            let via =
                session.map_or(crate::proxy::backends::Via::Links, crate::proxy::backends::Via::Session);
            Step::Learn(backend, via)
        }
        Judged::Go(step) => step,
        Judged::Refused(r) => forbidden(w, &r, &env, generation, class).into(),
        Judged::ToolFailed(text) => {
            w.scratch.clear();
            tool_failed(w.scratch, &env, &text, generation, w.cx.server);
            w.json(None, class).into()
        }
    }
}

/// A JSON-RPC batch: allowed only in 2025-03-26 (removed in 2025-06-18, where an array is a 400).
pub(crate) fn batch(w: &mut Writer<'_, '_>, tape: &[Node<'_>], header_version: Option<&[u8]>) -> Outcome {
    let (core, snap, principal) = (w.cx.core, w.cx.snap, w.principal);
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
            return unsupported_version(
                w,
                &err,
                None,
                header_version.unwrap_or(b""),
                Generation::Sessions,
                class,
            );
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
        Some(Ok(c)) if *c.principal != *principal.id() => {
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
                // A refused or failed element is an error element of its own. Elements never
                // reach backends, so there is nothing to learn first.
                w.cx.may_learn.set(false);
                let failed = match decide(w, &env, |w, args| dispatch_legacy(w, &env, args)) {
                    Judged::Go(done) => done.err(),
                    Judged::Refused(r) => Some(r.error),
                    Judged::Learn(_) => Some(Error::internal("a batch element cannot reach a backend")),
                    Judged::ToolFailed(text) => {
                        tool_failed(w.scratch, &env, &text, Generation::Sessions, w.cx.server);
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

pub(crate) fn unsupported_version(
    w: &mut Writer<'_, '_>,
    err: &Error,
    id: Option<&Id<'_>>,
    requested: &[u8],
    generation: Generation,
    class: MethodClass,
) -> Outcome {
    // data: {"supported": [...], "requested": "..."} (schema UnsupportedProtocolVersionError).
    let mut data = Vec::with_capacity(96);
    data.extend_from_slice(b"{\"supported\":");
    local::write_supported_versions(&mut data);
    data.extend_from_slice(b",\"requested\":");
    json::write_str(&mut data, &String::from_utf8_lossy(&requested[..requested.len().min(64)]));
    data.push(b'}');
    let reply = ErrorReply { id, data: Some(&data), generation };
    w.error(err, &reply, class)
}

/// 2026-07-28: every request carries its version and capabilities in `params._meta` and
/// repeats method, name and version in headers, so intermediaries can route without the body.
/// Checks run in the specification's order: `_meta`, then header agreement, then version.
pub(crate) fn stateless_checks(
    w: &mut Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    class: MethodClass,
) -> Result<(), Step> {
    if env.kind != MessageKind::Request {
        return Err(w.accepted(class).into());
    }
    let id = env.id.as_ref();
    let reply = ErrorReply { id, data: None, generation: Generation::Stateless };
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
        return Err(
            unsupported_version(w, &err, id, body_version.as_bytes(), Generation::Stateless, class).into()
        );
    }
    Ok(())
}

/// `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` must be present and agree with the body.
pub(crate) fn check_headers(
    w: &Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    body_version: &str,
) -> Result<(), Error> {
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
        m if crate::proxy::tasks::is_task_method(m) => {
            Some(env.params.and_then(|p| json::get(p, "taskId")).and_then(json::as_str).unwrap_or(""))
        }
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
