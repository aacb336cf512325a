//! Calls that end at one backend: a REST tool's exchange, and a 2026-07-28 client's call over
//! the worker's link.

use crate::config::snapshot::{Backend, Server};
use crate::error::Error;
use crate::http::response::{self};
use crate::mcp::version::Generation;
use crate::upstream::client::{self};

use super::wire::{backend_error, Link, Wire};

use super::{exchange::*, link::*};

/// Sets the `traceparent` of a request the REST builder made: its value replaced, or the header
/// added after the request line.
fn set_traceparent(request: &mut Vec<u8>, value: &[u8; 55]) {
    let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(request.len());
    let at = request[..head_end].windows(15).position(|w| w == b"\ntraceparent: ").map(|i| i + 15);
    match at {
        Some(i) => {
            let end = request[i..head_end].windows(2).position(|w| w == b"\r\n").map_or(head_end, |e| i + e);
            request.splice(i..end, value.iter().copied());
        }
        None => {
            let line_end = request.windows(2).position(|w| w == b"\r\n").map_or(request.len(), |i| i + 2);
            let line: Vec<u8> = [&b"traceparent: "[..], &value[..], b"\r\n"].concat();
            request.splice(line_end..line_end, line);
        }
    }
}

/// One REST tool call: the exchange over the worker's pool, then the answer (or the failure,
/// named by the tool, never by address) as a `tools/call` result.
pub(crate) async fn rest_call(
    cx: &Cx<'_>,
    server: &Server,
    tool: usize,
    id: &[u8],
    (mut request, token): (Vec<u8>, bool),
    generation: Generation,
) -> Vec<u8> {
    use crate::config::snapshot::ToolKind;
    use crate::rest::tool::{shape, text_result};
    let mut out = Vec::with_capacity(256);
    crate::mcp::reply::begin_raw(&mut out, id);
    let t = &server.tools[tool];
    let rest = match &t.kind {
        ToolKind::Rest(rt) => rt.target.as_ref().ok().map(|target| (rt, target)),
        ToolKind::Template { .. } => None,
    };
    let sts = rest.and_then(|(rt, _)| match rt.upstream.as_ref().and_then(|u| u.configured.as_ref()) {
        Some(crate::auth::credentials::Credential::Sts(sts)) if token => Some(sts),
        _ => None,
    });
    if let Some(sts) = sts {
        match cx.backend_token(sts).await {
            Ok(c) => {
                if let crate::auth::scheme::BackendCredential::Header { value, .. } = &*c {
                    crate::rest::tool::add_authorization(&mut request, value);
                }
            }
            Err(e) => {
                text_result(&mut out, &format!("call failed: scheme {}: {e}", sts.scheme), true);
                crate::proxy::local::end_result_for(&mut out, generation, server, false);
                return out;
            }
        }
    }
    match rest {
        Some((rt, target)) => {
            // A traced request's REST call is a CLIENT span, and the API's `traceparent` names it.
            let span = cx.tally.trace.client(&cx.core.span_ids);
            if let Some(open) = &span {
                set_traceparent(&mut request, &crate::proxy::spans::traceparent(&open.trace, &open.id));
            }
            let exchanged = {
                let _waiting = cx.tally.wait();
                client::exchange(&cx.core.upstream, target, request, cx.snap.limits.upstream()).await
            };
            if let Some(open) = span {
                cx.tally.trace.end(
                    &cx.core.spans,
                    open,
                    [rt.method.as_bytes(), b" ", t.name.as_bytes()],
                    |w| {
                        w.str("portcullis.backend", &server.name);
                        w.str("gen_ai.tool.name", &t.name);
                        w.str("http.request.method", &rt.method);
                        w.str("server.address", &target.authority);
                        match &exchanged {
                            Ok(r) => {
                                w.int("http.response.status_code", i64::from(r.status));
                                if r.status >= 500 {
                                    w.fail_code(i64::from(r.status));
                                }
                            }
                            Err(e) => w.fail(&e.to_string()),
                        }
                    },
                );
            }
            match exchanged {
                Ok(mut r) => {
                    if r.status >= 500 {
                        cx.core.stats.borrow_mut().backend_failed(&t.name);
                    }
                    // A body may echo the request: never with the gateway's credential.
                    match rt.upstream.as_ref().and_then(|u| u.configured.as_ref()) {
                        Some(crate::auth::credentials::Credential::Sts(sts)) => {
                            cx.redact_token(sts, &mut r.body)
                        }
                        Some(c) => {
                            if let Ok(Some(c)) = c.for_principal(cx.principal) {
                                c.redact_from(&mut r.body);
                            }
                        }
                        None => {}
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
    crate::proxy::local::end_result_for(&mut out, generation, server, false);
    out
}

/// Where `body`'s id is and the gateway's next request id to write there (a number, where the
/// gateway's other requests have string ids), formatted in `number`.
fn renumber<'n>(
    cx: &Cx<'_>,
    body: &[u8],
    number: &'n mut itoa::Buffer,
) -> Result<((usize, usize), &'n [u8]), Error> {
    let at = crate::mcp::envelope::id_value(body).ok_or_else(|| {
        Error::client(
            crate::error::Kind::InvalidRequest,
            "the id member must not be written with JSON escapes",
        )
    })?;
    let n = cx.core.upstream_ids.get() + 1;
    cx.core.upstream_ids.set(n);
    Ok((at, number.format(n).as_bytes()))
}

/// A 2026-07-28 client's tools/call over the worker's link. A 2026 backend's answer is relayed
/// as sent; a legacy backend's answer is translated (the revision requires `resultType`), which
/// means parsing and re-encoding that one message.
pub(crate) async fn call_stateless(
    cx: &Cx<'_>,
    server: &Server,
    b: &Backend,
    (method, id): (&'static str, &[u8]),
    body: &[u8],
    tool: &str,
    fwd: &[(&[u8], &[u8])],
) -> Result<Answer, Error> {
    for attempt in 0..2 {
        let l = link(cx, server, b, fwd).await?;
        let wire = match &l {
            // Mcp-Name exists for tools/call, prompts/get and resources/read only.
            Link::Stateless if method == "completion/complete" => Wire::stateless(method, None),
            Link::Stateless => Wire::stateless(method, Some(tool)),
            Link::Session { version, session } => Wire::session(version, session),
        };
        let failed = |e: &client::UpstreamError| {
            cx.core.stats.borrow_mut().backend_failed(&b.name);
            backend_error(b, e)
        };
        // A gateway-owned session is shared by the principal's stateless clients, which number
        // their requests alike: the backend gets an id of the gateway's (unique on this worker,
        // whose sessions these are), and the answer is given the client's back.
        let mut number = itoa::Buffer::new();
        let wire = match &l {
            Link::Session { .. } => Wire { renumbered: Some(renumber(cx, body, &mut number)?), ..wire },
            Link::Stateless => wire,
        };
        let opened = cx.open(b, body, wire, fwd).await.map_err(|e| failed(&e))?;
        // A 2025 backend answering in SSE may ask the client something first: followed event by
        // event (the MRTR bridge).
        if let (200, Link::Session { version, session }) = (opened.status, &l) {
            if is_sse(&opened) {
                let read = (opened, Default::default(), Vec::new());
                return super::bridge::follow(
                    cx,
                    server,
                    b,
                    (method, tool, id),
                    read,
                    (version, session),
                    fwd,
                )
                .await;
            }
        }
        let resp = cx.collect(opened).await.map_err(|e| failed(&e))?;
        match (resp.status, &l) {
            (404, Link::Session { .. }) if attempt == 0 => forget(cx, server, b, fwd, &l),
            (200, Link::Stateless) => {
                let sse = resp.header("content-type").is_some_and(|c| c.starts_with(b"text/event-stream"));
                let mut body = resp.body;
                cx.redact(b, &mut body);
                // A task the backend created or reports is handed to the client under the
                // gateway's id for it (bound to this caller).
                crate::proxy::tasks::tag_answer(method, &mut body, sse, |own| {
                    crate::proxy::tasks::tag(cx.snap, server, cx.owner, &b.name, own)
                });
                // So is the state of a request that needs the client's input (bound to it too).
                crate::proxy::mrtr::seal_answer(&mut body, sse, |own| {
                    crate::proxy::mrtr::seal(cx.snap, server, cx.owner, &b.name, own)
                });
                return Ok((200, body, None, if sse { response::SSE } else { response::JSON }));
            }
            (200, Link::Session { .. }) => {
                let out = super::bridge::complete(cx, &resp.body, method, Some(id));
                cx.core.spare.borrow_mut().give(resp.body);
                let mut out = out
                    .ok_or_else(|| Error::upstream(format!("backend {} sent no JSON-RPC answer", b.name)))?;
                cx.redact(b, &mut out);
                return Ok((200, out, None, response::JSON));
            }
            (status, _) if (400..500).contains(&status) && is_jsonrpc_error(&resp.body) => {
                let mut body = resp.body;
                cx.redact(b, &mut body);
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
