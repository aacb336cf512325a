//! Requests answered with the help of aggregated MCP backends (phase 6 when a server has
//! `backends`). The synchronous decision in `pipeline` produces a [`Plan`] of owned data; this
//! module carries it out over the per-core pool and writes the answer.
//!
//! Implemented: for clients on the 2025 revisions, `initialize` (every backend initialized, its
//! session sealed into the client's session id), `tools/list` (fan-out, selectors, prefixed
//! names, merged with local tools; a failing backend is left out and logged) and `tools/call`
//! (routed by name, only the name rewritten, the backend's JSON or SSE answer relayed as sent).
//! Not yet: resources/prompts aggregation, streamed (incremental) SSE relay with id rewriting,
//! GET stream fan-in, DELETE fan-out, 2026-07-28 clients reaching backend tools, https.

use crate::config::snapshot::{Server, Snapshot};
use crate::error::{Error, Kind};
use crate::http::response::{self, Extra};
use crate::mcp::envelope::Id;
use crate::mcp::json;
use crate::mcp::session::Claims;
use crate::proxy::backend::{self, answer, backend_error, decode_session, encode_session};
use crate::proxy::conn::Conn;
use crate::proxy::core::Core;
use crate::proxy::local;
use crate::respond::{self, ErrorReply};

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
    /// Merge local tools with every backend's tools.
    List {
        /// The client's id, as JSON.
        id: Vec<u8>,
        /// The client's session.
        claims: Claims,
        /// `x-envoy-allow-mcp-tools`, when sent.
        allow: Option<Vec<u8>>,
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
        claims: Claims,
    },
}

/// The backend and its tool name for an exposed tool name, if a backend serves it (after the
/// backend's tool selector).
pub fn resolve<'n>(server: &Server, exposed: &'n str) -> Option<(usize, &'n str)> {
    if server.backends.is_empty() {
        return None;
    }
    let (i, tool) = if server.prefixed() {
        let (prefix, tool) = exposed.split_once(&*server.separator)?;
        (server.backends.iter().position(|b| &*b.name == prefix)?, tool)
    } else {
        (0, exposed)
    };
    server.backends[i].selector.selects(tool).then_some((i, tool))
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

/// Carries out `plan` and writes the response into `conn.out`.
pub async fn run(
    core: &Core,
    snap: &Snapshot,
    server: &Server,
    conn: &mut Conn,
    keep_alive: bool,
    cors: Option<crate::http::head::Span>,
    plan: Plan,
) -> (u16, bool) {
    // Client headers named by a backend's forwardHeaders, captured before the buffers are reused.
    let forwarded = |b: &crate::config::snapshot::Backend| -> Vec<(Vec<u8>, Vec<u8>)> {
        conn.head
            .headers
            .iter()
            .filter(|(n, _)| {
                b.forward_headers.iter().any(|f| n.of(&conn.buf).eq_ignore_ascii_case(f.as_bytes()))
            })
            .map(|(n, v)| (n.of(&conn.buf).to_vec(), v.of(&conn.buf).to_vec()))
            .collect()
    };
    let fwd: Vec<Vec<(Vec<u8>, Vec<u8>)>> = server.backends.iter().map(forwarded).collect();
    let fwd_refs: Vec<Vec<(&[u8], &[u8])>> =
        fwd.iter().map(|l| l.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect()).collect();
    let pool = &core.upstream;
    let rr = &core.upstream_rr;
    let lim = &snap.limits;
    let result: Result<Answer, Failure> = match plan {
        Plan::Initialize { id, version, principal } => {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":"portcullis-init","method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{}},"clientInfo":{{"name":"portcullis","version":"{}"}}}}}}"#,
                local::VERSION
            );
            let mut sessions = Vec::new();
            for (i, b) in server.backends.iter().enumerate() {
                let resp = match backend::send(pool, rr, lim, b, body.as_bytes(), None, &fwd_refs[i]).await {
                    Ok(r) if r.status == 200 => r,
                    Ok(r) => {
                        log::warn!(
                            "backend {}: initialize answered HTTP {}; left out of the session",
                            b.name,
                            r.status
                        );
                        continue;
                    }
                    Err(e) => {
                        log::warn!("backend {}: initialize failed ({e}); left out of the session", b.name);
                        continue;
                    }
                };
                let Some(result) = answer(&resp, "portcullis-init").and_then(|v| v.get("result").cloned())
                else {
                    log::warn!("backend {}: no initialize result; left out of the session", b.name);
                    continue;
                };
                let v = result.get("protocolVersion").and_then(|v| v.as_str()).unwrap_or(version).to_string();
                let sid = resp
                    .header("mcp-session-id")
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .unwrap_or_default();
                let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
                if let Err(e) = backend::send(pool, rr, lim, b, note, Some((&v, &sid)), &fwd_refs[i]).await {
                    log::warn!("backend {}: notifications/initialized failed ({e})", b.name);
                }
                sessions.push((b.name.to_string(), encode_session(&v, &sid)));
            }
            if sessions.is_empty() && server.tools.is_empty() {
                Err((Error::internal("no backend could be initialized"), Some(id)))
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
                        let mut out = Vec::with_capacity(512);
                        begin(&mut out, &id);
                        local::initialize(
                            &mut out,
                            server,
                            crate::mcp::version::Version::parse(version.as_bytes())
                                .unwrap_or(crate::mcp::version::LATEST_HANDSHAKE),
                        );
                        out.extend_from_slice(b"}}");
                        Ok((out, Some(sid), response::JSON))
                    }
                }
            }
        }
        Plan::List { id, claims, allow } => {
            let mut out = Vec::with_capacity(4096);
            begin(&mut out, &id);
            out.extend_from_slice(b"\"tools\":[");
            let mut first = true;
            let allow = allow.as_deref();
            for t in &server.tools {
                if server.tool_allowed(t, allow) {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    out.extend_from_slice(&t.listing);
                }
            }
            for (i, b) in server.backends.iter().enumerate() {
                let Some((_, s)) = claims.backends.iter().find(|(n, _)| *n == *b.name) else { continue };
                let (v, sid) = decode_session(s);
                let mut cursor: Option<String> = None;
                // Follow the backend's pages (bounded): the client gets one merged list.
                for _ in 0..32 {
                    let params = match &cursor {
                        Some(c) => {
                            format!(r#","params":{{"cursor":{}}}"#, serde_json::Value::String(c.clone()))
                        }
                        None => String::new(),
                    };
                    let body = format!(
                        r#"{{"jsonrpc":"2.0","id":"portcullis-list","method":"tools/list"{params}}}"#
                    );
                    let page =
                        match backend::send(pool, rr, lim, b, body.as_bytes(), Some((v, sid)), &fwd_refs[i])
                            .await
                        {
                            Ok(r) if r.status == 200 => answer(&r, "portcullis-list"),
                            Ok(r) => {
                                log::warn!("backend {}: tools/list answered HTTP {}", b.name, r.status);
                                None
                            }
                            Err(e) => {
                                log::warn!("backend {}: tools/list failed ({e})", b.name);
                                None
                            }
                        };
                    let Some(result) = page.and_then(|p| p.get("result").cloned()) else { break };
                    for tool in result.get("tools").and_then(|t| t.as_array()).into_iter().flatten() {
                        let Some(name) = tool.get("name").and_then(|n| n.as_str()) else { continue };
                        if !b.selector.selects(name) {
                            continue;
                        }
                        let exposed = if server.prefixed() {
                            format!("{}{}{}", b.name, server.separator, name)
                        } else {
                            name.to_string()
                        };
                        if !server.name_allowed(&exposed, allow) {
                            continue;
                        }
                        let mut t = tool.clone();
                        t["name"] = serde_json::Value::String(exposed);
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        let _ = serde_json::to_writer(&mut out, &t);
                    }
                    cursor = result.get("nextCursor").and_then(|c| c.as_str()).map(str::to_string);
                    if cursor.is_none() {
                        break;
                    }
                }
            }
            out.extend_from_slice(b"]}}");
            Ok((out, None, response::JSON))
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
                    match backend::send(pool, rr, lim, b, &body, Some((v, sid)), &fwd_refs[i]).await {
                        Ok(r) if r.status == 200 => {
                            let sse =
                                r.header("content-type").is_some_and(|c| c.starts_with(b"text/event-stream"));
                            Ok((r.body, None, if sse { response::SSE } else { response::JSON }))
                        }
                        // The backend forgot its session: the client must start a new one.
                        Ok(r) if r.status == 404 => {
                            Err((Error::client(Kind::SessionNotFound, "Session not found"), Some(id)))
                        }
                        Ok(r) => {
                            log::warn!("backend {}: tools/call answered HTTP {}", b.name, r.status);
                            Err((
                                Error::internal(format!("backend {} answered HTTP {}", b.name, r.status)),
                                Some(id),
                            ))
                        }
                        Err(e) => Err((backend_error(b, &e), Some(id))),
                    }
                }
            }
        }
    };
    let origin = cors.map(|o| o.of(&conn.buf).to_vec()).filter(|o| !o.is_empty());
    let rid = conn.request_id.clone();
    let extra = Extra { cors_origin: origin.as_deref(), request_id: Some(&rid), ..Extra::default() };
    match result {
        Ok((body, session, ctype)) => {
            let extra = Extra { session_id: session.as_deref(), ..extra };
            response::write_head(&mut conn.out, 200, Some(ctype), body.len(), keep_alive, &extra);
            conn.out.extend_from_slice(&body);
            (200, !keep_alive)
        }
        Err((err, id)) => {
            let raw = id.as_deref().map(Id::Raw);
            let reply = ErrorReply { id: raw.as_ref(), ..ErrorReply::default() };
            let w = respond::write_error(&mut conn.out, &mut conn.scratch, &err, &reply, keep_alive, &extra);
            (w.status, w.close || !keep_alive)
        }
    }
}

/// A successful answer: body, the session id to hand out (initialize), content type.
type Answer = (Vec<u8>, Option<String>, &'static str);
/// A failure and the client's id to echo.
type Failure = (Error, Option<Vec<u8>>);

fn begin(out: &mut Vec<u8>, id: &[u8]) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id);
    out.extend_from_slice(b",\"result\":{");
}
