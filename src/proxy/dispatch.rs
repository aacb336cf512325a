//! Phase 6 for one message that phase 5 let through: answered here (the gateway's own methods
//! and template tools), or planned for backends ([`crate::proxy::backends::Plan`]: MCP backends,
//! REST tools). Phase 6 never decides again: it carries out what phase 5 allowed, with the
//! arguments phase 5 judged.

use crate::config::snapshot::Server;
use crate::error::{Error, Kind};
use crate::mcp::envelope::{Envelope, MessageKind};
use crate::mcp::json;
use crate::mcp::reply::{begin_result, end_result};
use crate::mcp::session::Claims;
use crate::mcp::version::Generation;
use crate::proxy::backends as aggregate;
use crate::proxy::backends::Via;
use crate::proxy::decide::*;
use crate::proxy::local::end_result_stateless;
use crate::proxy::observe::Trace;
use crate::proxy::request::*;
use crate::proxy::stats::MethodClass;
use crate::proxy::{authz, local};
use crate::respond::ErrorReply;
use crate::rest::args::ToolError;
use simd_json::Node;
use std::rc::Rc;

/// Phase 6 of a 2026-07-28 request that passed [`stateless_checks`] and phase 5, with `args`
/// the arguments phase 5 judged.
pub(crate) fn stateless(
    w: &mut Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    class: MethodClass,
    args: Option<&[Node<'_>]>,
) -> Step {
    let reply = ErrorReply { id: env.id.as_ref(), data: None, generation: Generation::Stateless };
    let server = w.cx.server;
    let allow = allow_list(w);
    if !server.backends.is_empty() {
        // tasks/list is no method of the 2026-07-28 revision.
        if let Some(kind) = aggregate::ListKind::of(env.method).filter(|k| *k != aggregate::ListKind::Tasks) {
            return merged_list(w, env, kind, Via::Links, class, &reply);
        }
        if env.method == "server/discover" {
            return Step::Backends(aggregate::Plan::Discover { id: raw_id(w.cx.core, env) }, class);
        }
        if env.method == "subscriptions/listen" {
            let mut filter = Vec::new();
            if let Some(n) = env.params.and_then(|p| json::get(p, "notifications")) {
                json::write_value(&mut filter, n);
            }
            let parsed =
                serde_json::from_slice(&filter).ok().and_then(|v| aggregate::listen::Filter::parse(&v));
            return match parsed {
                Some(filter) => {
                    Step::Backends(aggregate::Plan::Listen { id: raw_id(w.cx.core, env), filter }, class)
                }
                None => {
                    let err = Error::client(
                        Kind::InvalidParams,
                        "params.notifications must be a subscription filter (an object of flags and at most 64 resource URIs)",
                    );
                    w.error(&err, &reply, class).into()
                }
            };
        }
        let local = env.method == "tools/call" && server.tool_index.contains_key(env.name.unwrap_or(""));
        // Task methods (2026-07-28 only) are routed by the task id the gateway handed out.
        if !local && (routed_method(env.method) || crate::proxy::tasks::is_task_method(env.method)) {
            return to_backend(w, env, args, Via::Links, class, &reply);
        }
    }
    if let Some(step) = rest_call(w, env, Generation::Stateless, class, args) {
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
        "tools/call" => {
            local::tools_call(w.scratch, w.tmp, server, env.name, args, allow, client_of(w)).map(|()| false)
        }
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

/// Phase 6 of a 2025-revision message in session `claims`, with `args` the arguments phase 5
/// judged.
pub(crate) fn legacy(
    w: &mut Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    claims: Rc<Claims>,
    class: MethodClass,
    args: Option<&[Node<'_>]>,
) -> Step {
    let reply = ErrorReply { id: env.id.as_ref(), ..ErrorReply::default() };
    let server = w.cx.server;
    // The client answering a request a backend sent it over an SSE stream: back to that backend
    // (or to the call the reverse bridge holds). Rare, so parsed as a tree, once.
    if env.kind == MessageKind::Response && !server.backends.is_empty() {
        if let Ok(msg) = serde_json::from_slice::<serde_json::Value>(w.body) {
            if let Some(plan) = answer_to_call(w, &msg).or_else(|| answer_to_backend(w, msg, claims.clone()))
            {
                return Step::Backends(plan, class);
            }
        }
    }
    if env.kind != MessageKind::Request {
        return w.accepted(class).into();
    }
    if !server.backends.is_empty() {
        if let Some(kind) = aggregate::ListKind::of(env.method) {
            return merged_list(w, env, kind, Via::Session(claims), class, &reply);
        }
        if env.method == "logging/setLevel" {
            let plan =
                aggregate::Plan::Broadcast { id: raw_id(w.cx.core, env), body: w.body.to_vec(), claims };
            return Step::Backends(plan, class);
        }
        let local = env.method == "tools/call" && server.tool_index.contains_key(env.name.unwrap_or(""));
        // Subscriptions go to the backend serving the URI; its updates come on the GET stream.
        let subscription = matches!(env.method, "resources/subscribe" | "resources/unsubscribe");
        // Tasks (2025-11-25) are routed by the task id the gateway handed out.
        let task = crate::proxy::tasks::is_session_task_method(env.method);
        if !local && (routed_method(env.method) || subscription || task) {
            return to_backend(w, env, args, Via::Session(claims), class, &reply);
        }
    }
    if let Some(step) = rest_call(w, env, Generation::Sessions, class, args) {
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

/// A merged list over every backend, reached `via` the client's session or the worker's links.
fn merged_list(
    w: &mut Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    kind: aggregate::ListKind,
    via: Via,
    class: MethodClass,
    reply: &ErrorReply<'_, '_>,
) -> Step {
    match list_cursor(w.cx.server, env, kind) {
        Ok(resume) => {
            let allow = allow_list(w).map(<[u8]>::to_vec);
            Step::Backends(
                aggregate::Plan::List { kind, id: raw_id(w.cx.core, env), via, allow, resume },
                class,
            )
        }
        Err(err) => w.error(&err, reply, class).into(),
    }
}

/// A request routed by its name or URI to one backend, reached `via` the client's session or
/// the worker's links, with the arguments phase 5 judged.
fn to_backend(
    w: &mut Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    args: Option<&[Node<'_>]>,
    via: Via,
    class: MethodClass,
    reply: &ErrorReply<'_, '_>,
) -> Step {
    // Over the worker's links (2026-07-28), a retry's requestState is the gateway's.
    match routed(w, env, args, matches!(via, Via::Links)) {
        Ok((backend, Forward::Body(body), tool)) => {
            let method = method_name(env.method);
            Step::Backends(
                aggregate::Plan::Call { method, id: raw_id(w.cx.core, env), backend, body, tool, via },
                class,
            )
        }
        Ok((backend, Forward::Resume(at, responses), name)) => {
            let (id, method) = (raw_id(w.cx.core, env), method_name(env.method));
            Step::Backends(aggregate::Plan::Resume { id, backend, method, name, at, responses }, class)
        }
        Err(err) => {
            let data = not_found_data(env, &err);
            w.error(&err, &ErrorReply { data: data.as_deref(), ..*reply }, class).into()
        }
    }
}

/// One legacy request into `w.scratch` as a complete JSON-RPC response.
pub(crate) fn dispatch_legacy(
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
        "tools/call" => local::tools_call(w.scratch, w.tmp, server, env.name, args, allow, client_of(w)),
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

/// A `tools/call` of a REST tool. The backend request is built here, over the request's own
/// bytes (arguments normalized, templates rendered, the backend credential chosen, a
/// passthrough credential taken from the client's request), and sent in phase 6. A call the tool
/// refuses (a missing argument or credential) is answered at once with an `isError` result and
/// never reaches the backend. `None` for any other message.
pub(crate) fn rest_call(
    w: &mut Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    generation: Generation,
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
    let reply = ErrorReply { id: env.id.as_ref(), data: None, generation };
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
        trace: trace.headers(),
        client: client_of(w),
        principal: Some(w.principal),
    };
    let mut request = Vec::with_capacity(512);
    // Phase 5 normalized the arguments of every REST tool call it let through.
    let Some(args) = args else {
        let err = Error::internal("the arguments were not normalized");
        return Some(w.error(&err, &reply, class).into());
    };
    match build(rt, args, &server.config, &incoming, w.tmp, &mut request) {
        Ok(token) => {
            let plan =
                aggregate::Plan::Rest { id: raw_id(w.cx.core, env), tool: index, request, generation, token };
            Some(Step::Backends(plan, class))
        }
        Err(ToolError(text)) => {
            w.scratch.clear();
            tool_failed(w.scratch, env, &text, generation, server);
            Some(w.json(None, class).into())
        }
    }
}

/// Who is calling, for the template functions `getRealIP` and `getSocketIP`.
fn client_of<'a>(w: &Writer<'a, '_>) -> crate::rest::template::Client<'a> {
    crate::rest::template::Client {
        forwarded_for: w.head.header(w.buf, "x-forwarded-for"),
        peer: Some(w.cx.peer),
    }
}

/// The client's credential under `scheme` (for passthrough): the token of `Bearer x`, the
/// base64 part of `Basic x`, an api key header, or an api key query parameter (percent-decoded
/// into `decoded`). `None` when the client sent none in that form.
pub(crate) fn client_credential<'b>(
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

/// The request id as JSON, kept across the upstream exchange (in a buffer from the worker's
/// spares; the call gives it back).
pub(crate) fn raw_id(core: &crate::proxy::core::Core, env: &Envelope<'_, '_>) -> Vec<u8> {
    let mut id = core.spare.borrow_mut().take();
    match env.id.as_ref() {
        Some(i) => crate::mcp::envelope::write_id(&mut id, i),
        None => id.extend_from_slice(b"null"),
    }
    id
}

/// For a client's JSON-RPC response whose id the gateway tagged (see `mcp::sse::ID_TAG`): the
/// backend and the response with its original id. Rare (sampling, elicitation), so re-encoded.
pub(crate) fn answer_to_backend(
    w: &Writer<'_, '_>,
    mut msg: serde_json::Value,
    claims: Rc<Claims>,
) -> Option<aggregate::Plan> {
    let server = w.cx.server;
    let (backend, original) = crate::mcp::sse::untag(msg.get("id")?.as_str()?)?;
    let i = server.backends.iter().position(|b| &*b.name == backend)?;
    let original: serde_json::Value = serde_json::from_str(original).ok()?;
    msg["id"] = original;
    let body = serde_json::to_vec(&msg).ok()?;
    Some(aggregate::Plan::Answer { backend: i, body, claims })
}

/// For a client's JSON-RPC response to a request the reverse bridge sent it
/// (`backends::reverse::ASK_TAG`): the call waiting for it.
pub(crate) fn answer_to_call(w: &Writer<'_, '_>, msg: &serde_json::Value) -> Option<aggregate::Plan> {
    let (worker, slot, key) = aggregate::reverse::asked(msg.get("id")?.as_str()?)?;
    let result = msg.get("result").filter(|r| r.is_object()).and_then(|r| serde_json::to_vec(r).ok());
    let principal = w.principal.id().into();
    let answer = aggregate::pending::Answered { slot, key, principal, result };
    Some(aggregate::Plan::Deliver { worker, answer })
}

/// The routed method's name as a static string (`Mcp-Method` of the backend request).
fn method_name(method: &str) -> &'static str {
    if let Some(m) = crate::proxy::tasks::method_name(method) {
        return m;
    }
    match method {
        "tools/call" => "tools/call",
        "prompts/get" => "prompts/get",
        "completion/complete" => "completion/complete",
        "resources/subscribe" => "resources/subscribe",
        "resources/unsubscribe" => "resources/unsubscribe",
        _ => "resources/read",
    }
}

/// Requests routed to one backend by the name or URI they carry.
pub(crate) fn routed_method(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read" | "completion/complete")
}

/// What a routed request sends its backend.
pub(crate) enum Forward {
    /// A request: the client's body with only the exposed name (or URI) rewritten, or written
    /// anew ([`written_anew`]).
    Body(Vec<u8>),
    /// The answers (`inputResponses`, a JSON object) to the requests of an exchange the MRTR
    /// bridge holds (`backends::bridge`).
    Resume(crate::proxy::mrtr::Held, Vec<u8>),
}

/// For a routed request: the backend, what it is sent, and the backend's own name (or URI).
/// Tools pass the backend's selector and `allowTools`.
pub(crate) fn routed(
    w: &Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    args: Option<&[Node<'_>]>,
    sealed_state: bool,
) -> Result<(usize, Forward, String), Error> {
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
        m if crate::proxy::tasks::is_task_method(m) || crate::proxy::tasks::is_session_task_method(m) => {
            let id = env.params.and_then(|p| json::get(p, "taskId")).and_then(json::as_str).unwrap_or("");
            let unknown =
                || Error::client(Kind::InvalidParams, format!("Unknown task: {}", local::truncate(id)));
            (id, crate::proxy::tasks::untag(w.cx.snap, server, w.principal.id(), id).ok_or_else(unknown))
        }
        // Completion names what it completes in params.ref: a prompt by name or a resource
        // (template) by URI, routed like prompts/get and resources/read.
        "completion/complete" => {
            let (value, joiner) = match crate::proxy::names::completion_ref(env.params) {
                Some((true, name)) => (name, &*server.separator),
                Some((false, uri)) => (uri, "+"),
                None => {
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
    // A retry's answers (SEP-2322) are an object of result objects: anything else is a protocol
    // error, refused here rather than passed to a backend that may not check it.
    if let Some(r) = env.params.and_then(|p| json::get(p, "inputResponses")).filter(|_| sealed_state) {
        let objects = matches!(r.first(), Some(Node::Object { .. }))
            && json::entries(r).all(|(_, v)| matches!(v.first(), Some(Node::Object { .. })));
        if !objects {
            return Err(Error::client(
                Kind::InvalidParams,
                "inputResponses must be an object whose members are the results of the input requests",
            ));
        }
    }
    // A retry with inputResponses carries the requestState the gateway handed out (SEP-2322):
    // checked against this caller and this backend, and the backend gets its own.
    let state = match env.params.and_then(|p| json::get(p, "requestState")).filter(|_| sealed_state) {
        None => None,
        Some(v) => {
            let invalid = || {
                Error::client(
                    Kind::InvalidParams,
                    "Invalid requestState: not one this gateway handed to this caller",
                )
            };
            let sealed = json::as_str(v).ok_or_else(invalid)?;
            let b = &server.backends[backend].name;
            let (snap, who) = (w.cx.snap, w.principal.id());
            match crate::proxy::mrtr::open(snap, server, who, b, sealed) {
                Some(own) => Some((sealed, own)),
                // The state of an exchange the bridge holds: its answers go to it.
                None if matches!(env.method, "tools/call" | "prompts/get" | "resources/read") => {
                    let at =
                        crate::proxy::mrtr::open_held(snap, server, who, b, sealed).ok_or_else(invalid)?;
                    let mut responses = Vec::new();
                    match env.params.and_then(|p| json::get(p, "inputResponses")) {
                        Some(r @ [Node::Object { .. }, ..]) => json::write_value(&mut responses, r),
                        _ => {
                            return Err(Error::client(
                                Kind::InvalidParams,
                                "a retry with requestState must carry inputResponses (an object)",
                            ))
                        }
                    }
                    return Ok((backend, Forward::Resume(at, responses), own.to_string()));
                }
                None => return Err(invalid()),
            }
        }
    };
    // Phase 5 judged normalized arguments (a copy): the backend gets those, in a body written
    // anew, as it gets its own state (which may need escapes). Otherwise the client's body goes
    // on with only the name rewritten.
    let normalized = args.filter(|a| env.arguments.is_none_or(|e| e.as_ptr() != a.as_ptr()));
    let anew = matches!(env.method, "tools/call" | "prompts/get" | "resources/read");
    if anew && (normalized.is_some() || state.is_some()) {
        let body = written_anew(env, own, normalized, state.map(|s| s.1));
        return Ok((backend, Forward::Body(body), own.to_string()));
    }
    if state.is_some() {
        return Err(Error::client(Kind::InvalidParams, "requestState is not taken on this method"));
    }
    let mut spare = w.cx.core.spare.borrow_mut();
    let body = aggregate::rewrite_name(w.body, w.base, exposed, own, spare.take()).ok_or_else(|| {
        Error::client(Kind::InvalidParams, "names and URIs must not be written with JSON escapes")
    })?;
    Ok((backend, Forward::Body(body), spare.take_string(own)))
}

/// `env` (a `tools/call`, `prompts/get` or `resources/read`) written anew for a backend: its own
/// name (or URI) `own`, `args` as the arguments and `state` as the `requestState` when given,
/// every other member as sent.
pub(crate) fn written_anew(
    env: &Envelope<'_, '_>,
    own: &str,
    args: Option<&[Node<'_>]>,
    state: Option<&str>,
) -> Vec<u8> {
    let key = if env.method == "resources/read" { "uri" } else { "name" };
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    match env.id.as_ref() {
        Some(id) => crate::mcp::envelope::write_id(&mut out, id),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"method\":");
    json::write_str(&mut out, env.method);
    out.extend_from_slice(b",\"params\":{");
    json::write_str(&mut out, key);
    out.push(b':');
    json::write_str(&mut out, own);
    if let Some(args) = args {
        out.extend_from_slice(b",\"arguments\":");
        json::write_value(&mut out, args);
    }
    for (k, v) in env.params.into_iter().flat_map(json::entries) {
        if k == key || (k == "arguments" && args.is_some()) {
            continue;
        }
        out.push(b',');
        json::write_str(&mut out, k);
        out.push(b':');
        match state.filter(|_| k == "requestState") {
            Some(s) => json::write_str(&mut out, s),
            None => json::write_value(&mut out, v),
        }
    }
    out.extend_from_slice(b"}}");
    out
}

/// The client's `params.cursor` of a merged list: absent (first page), or a gateway cursor this
/// gateway issued for this list (-32602 "Invalid cursor" otherwise).
pub(crate) fn list_cursor(
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
pub(crate) fn not_found(env: &Envelope<'_, '_>) -> Error {
    match env.method {
        "resources/read" => Error::client(Kind::ResourceNotFound, "Resource not found"),
        _ => Error::client(
            Kind::InvalidParams,
            format!("Unknown prompt: {}", local::truncate(env.name.unwrap_or(""))),
        ),
    }
}

/// `error.data` of a resource-not-found error: `{"uri": ...}` (resources spec, error handling).
pub(crate) fn not_found_data(env: &Envelope<'_, '_>, err: &Error) -> Option<Vec<u8>> {
    (err.kind == Kind::ResourceNotFound).then(|| {
        let mut d = b"{\"uri\":".to_vec();
        json::write_str(&mut d, local::truncate(env.uri.unwrap_or("")));
        d.push(b'}');
        d
    })
}

pub(crate) fn list(body: &mut Vec<u8>, member: &str) -> bool {
    local::empty_list(body, member);
    true
}
