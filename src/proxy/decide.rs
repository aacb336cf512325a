//! Phase 5, once per JSON-RPC message: arguments normalized (template and REST tools' `args`,
//! backend tools' learned `inputSchema`), then the server's rule table judges the call over the
//! normalized arguments; phase 6 receives exactly what was judged.

use crate::config::snapshot::Server;
use crate::error::{Error, Kind};
use crate::mcp::envelope::{Envelope, MessageKind};
use crate::mcp::json;
use crate::mcp::reply::begin_result;
use crate::mcp::version::Generation;
use crate::proxy::backends as aggregate;
use crate::proxy::backends::schemas::Learned;
use crate::proxy::exit::{error_exit, Rejection};
use crate::proxy::local::end_result_for;
use crate::proxy::request::*;
use crate::proxy::stats::MethodClass;
use crate::proxy::{authz, local};
use crate::respond::ErrorReply;
use crate::rest::args::{needs_normalizing, ArgError, ArgRule, Shape, ToolError};
use simd_json::Node;
use std::rc::Rc;

/// Why phase 5 refused a message: the error (-32602 for arguments of the wrong type, 403 for a
/// denied call) and, when an allow rule was missed only for scopes, the `insufficient_scope`
/// challenge.
pub(crate) struct Refusal {
    pub(crate) error: Error,
    pub(crate) challenge: Option<String>,
    /// Over a rate limit: when a call would pass again (`Retry-After`, `data.retryAfterMs`).
    pub(crate) retry_after: Option<std::time::Duration>,
}

/// What phase 5 made of a message.
pub(crate) enum Judged<R> {
    /// Allowed: phase 6's result, over the arguments judged.
    Go(R),
    /// Refused before dispatch.
    Refused(Refusal),
    /// A required argument is missing: the tool's failure (an `isError` result, not a refusal).
    ToolFailed(String),
    /// A call to a tool of this backend, whose argument rules this worker has not learned, under
    /// rules that may read arguments: learn them first, then decide.
    Learn(usize),
}

/// The arguments a `tools/call` declares, when the gateway knows them.
pub(crate) enum Declared<'s> {
    /// A template or REST tool of the server: only its declared arguments reach it.
    Local(&'s [ArgRule]),
    /// A backend tool, with the rules this worker learned from its `inputSchema`.
    Backend(Rc<[ArgRule]>),
    /// A tool of this backend (by index) whose rules this worker has not learned yet.
    Unknown(usize),
    /// A tool of a backend with `pinning: enforce` whose definition does not match its pin
    /// (`true`) or that has no pin or was not listed (`false`): refused.
    Unapproved(bool),
}

/// What the gateway knows of a `tools/call`'s arguments: one of the server's own tools (template
/// or REST), or a backend tool this worker has seen listed, that the caller may see and whose
/// `arguments` is an object (or absent). `None` for anything else: dispatch reports unknown or
/// hidden tools and malformed arguments itself.
pub(crate) fn declared_args<'s>(w: &Writer<'_, 's>, env: &Envelope<'_, '_>) -> Option<Declared<'s>> {
    let (core, principal) = (w.cx.core, w.principal);
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
    let b = server.backends.get(i)?;
    let backend = &b.name;
    let enforce = b.pinning == crate::config::snapshot::Pinning::Enforce;
    let learned = {
        let mut schemas = core.schemas.borrow_mut();
        schemas.renew(w.cx.snap.generation);
        schemas.lookup(&server.name, backend, own)
    };
    match learned {
        // Pinned (enforce): only a listed definition that matches its pin is served.
        Learned::Tool(_, false) | Learned::NotListed if enforce => {
            Some(Declared::Unapproved(b.pins.contains_key(own)))
        }
        Learned::Tool(rules, _) => Some(Declared::Backend(rules)),
        // The backend's list was read and does not declare this tool: judged as sent.
        Learned::NotListed => None,
        // The definition must be seen before a call is served.
        Learned::Unknown if enforce => Some(Declared::Unknown(i)),
        // Worth learning only when rules may read the arguments and some call of this tool by
        // this caller could be allowed: a caller the rules refuse outright never makes the
        // gateway ask a backend anything.
        Learned::Unknown
            if !server.policy.is_open()
                && authz::Visible { server, principal, head: w.head, buf: w.buf }.tool(backend, own) =>
        {
            Some(Declared::Unknown(i))
        }
        Learned::Unknown => None,
    }
}

/// Phase 5, once per JSON-RPC message (a batch runs it per element). For a `tools/call` of a
/// tool whose arguments the gateway declares, the arguments are normalized first (defaults,
/// the documented coercions; a value of another type is refused with -32602 naming the
/// argument) and the rules judge the normalized value. `then` is phase 6: it receives exactly
/// the arguments that were judged, so the backend acts on what was decided.
pub(crate) fn decide<'c, 's, R>(
    w: &mut Writer<'c, 's>,
    env: &Envelope<'_, '_>,
    then: impl FnOnce(&mut Writer<'c, 's>, Option<&[Node<'_>]>) -> R,
) -> Judged<R> {
    let core = w.cx.core;
    // Backend tools keep every member they were sent; arguments that need no change are
    // judged and forwarded as sent, with no copy.
    let learned: Rc<[ArgRule]>;
    let (rules, shape): (&[ArgRule], Shape) = match declared_args(w, env) {
        None => return judge(w, env, env.arguments, then),
        // Learn once per request; a backend that does not list the tool is judged as sent.
        Some(Declared::Unknown(i)) if w.cx.may_learn.get() => return Judged::Learn(i),
        Some(Declared::Unknown(_)) => return judge(w, env, env.arguments, then),
        Some(Declared::Unapproved(pinned)) => return unapproved(w, env, pinned),
        Some(Declared::Local(rules)) => (rules, Shape::Declared),
        Some(Declared::Backend(rules)) => match needs_normalizing(&rules, env.arguments) {
            Ok(false) => {
                if let Err(r) = params_agree(w, &rules, env.arguments) {
                    return Judged::Refused(r);
                }
                return judge(w, env, env.arguments, then);
            }
            Ok(true) => {
                learned = rules;
                (&learned, Shape::Open)
            }
            Err(e) => return refused_arguments(w, env, e),
        },
    };
    let mut scratch = core.args.borrow_mut();
    let judged = |args: &[Node<'_>]| match params_agree(w, rules, Some(args)) {
        Ok(()) => judge(w, env, Some(args), then),
        Err(r) => Judged::Refused(r),
    };
    match scratch.with(rules, env.arguments, shape, judged) {
        Ok(j) => j,
        Err(e) => refused_arguments(w, env, e),
    }
}

/// SEP-2243: an argument whose property declares `x-mcp-header: H` travels in `Mcp-Param-H`
/// too, and intermediaries may act on the header. A header the client sent must carry the
/// value the rules judge (`args`, normalized), so what is decided on is what any hop reads; a
/// header for an absent argument, or with another value, is refused (-32020, 400) before any
/// backend sees it. A header left out is for the backend to refuse.
fn params_agree(w: &Writer<'_, '_>, rules: &[ArgRule], args: Option<&[Node<'_>]>) -> Result<(), Refusal> {
    use simd_json::StaticNode;
    for r in rules {
        let Some(h) = r.header.as_deref() else { continue };
        let sent = w.head.headers.iter().map(|(n, v)| (n.of(w.buf), v.of(w.buf))).find(|(n, _)| {
            n.len() == 10 + h.len()
                && n[..10].eq_ignore_ascii_case(b"mcp-param-")
                && n[10..].eq_ignore_ascii_case(h.as_bytes())
        });
        let Some((_, raw)) = sent else { continue };
        let mut decoded = Vec::new();
        let sent = header_text(raw, &mut decoded);
        let value = args.and_then(|a| json::get(a, &r.name)).and_then(|v| v.first());
        let agrees = match (sent, value) {
            (Some(s), Some(Node::String(v))) => s == v.as_bytes(),
            (Some(s), Some(Node::Static(StaticNode::I64(i)))) => s == i.to_string().as_bytes(),
            (Some(s), Some(Node::Static(StaticNode::U64(u)))) => s == u.to_string().as_bytes(),
            (Some(s), Some(Node::Static(StaticNode::Bool(b)))) => {
                s == if *b { &b"true"[..] } else { b"false" }
            }
            _ => false,
        };
        if !agrees {
            let message = format!(
                "Header mismatch: Mcp-Param-{} does not match arguments.{}",
                local::truncate(h),
                local::truncate(&r.name)
            );
            return Err(Refusal {
                error: Error::client(Kind::HeaderMismatch, message),
                challenge: None,
                retry_after: None,
            });
        }
    }
    Ok(())
}

/// The rules' decision over `args`, and phase 6 over the same `args` when they allow.
fn judge<'c, 's, R>(
    w: &mut Writer<'c, 's>,
    env: &Envelope<'_, '_>,
    args: Option<&[Node<'_>]>,
    then: impl FnOnce(&mut Writer<'c, 's>, Option<&[Node<'_>]>) -> R,
) -> Judged<R> {
    // The audit trail records which arguments were judged, as a digest only.
    if w.cx.snap.audit.is_some() && env.kind == MessageKind::Request && env.method == "tools/call" {
        w.facts.args_sha256.set(Some(crate::proxy::audit::args_sha256(args, w.tmp)));
    }
    match authorize(w, env, args).and_then(|()| spend(w, env)) {
        Ok(()) => Judged::Go(then(w, args)),
        Err(r) => Judged::Refused(r),
    }
}

/// A call of a tool whose definition was not approved (`pinning: enforce`): the rules' refusal
/// when they refuse the caller anyway, else the pinning error (403, -32030), which says the
/// definition changed (or was never approved) and is recorded as `pin_mismatch`.
fn unapproved<R>(w: &Writer<'_, '_>, env: &Envelope<'_, '_>, pinned: bool) -> Judged<R> {
    if let Err(r) = authorize(w, env, env.arguments) {
        return Judged::Refused(r);
    }
    w.facts.pin_refused.set(true);
    let name = local::truncate(env.name.unwrap_or(""));
    let message = if pinned {
        format!("Tool {name} was refused: its definition changed since it was approved (pinned)")
    } else {
        format!("Tool {name} was refused: its definition was never approved (no pin)")
    };
    Judged::Refused(Refusal {
        error: Error::client(Kind::NotApproved, message),
        challenge: None,
        retry_after: None,
    })
}

/// Phase 5's answer to arguments that could not be normalized. The argument error goes only to
/// a caller who may call the tool at all (the rules without arguments, as a listing judges them);
/// anyone else gets the 403 a call would get, and learns nothing of the tool's arguments.
pub(crate) fn refused_arguments<R>(w: &Writer<'_, '_>, env: &Envelope<'_, '_>, e: ArgError) -> Judged<R> {
    let principal = w.principal;
    let server = w.cx.server;
    let name = env.name.unwrap_or("");
    let target = match server.tool_index.get(name) {
        Some(_) => Some((&*server.name, name)),
        None => aggregate::resolve(server, name).map(|(i, own)| (&*server.backends[i].name, own)),
    };
    if let Some((backend, tool)) = target {
        let visible = authz::Visible { server, principal, head: w.head, buf: w.buf };
        if !visible.tool(backend, tool) {
            let error = Error::client(
                Kind::Denied,
                format!("Forbidden: calling {} is not allowed", local::truncate(name)),
            );
            return Judged::Refused(Refusal { error, challenge: None, retry_after: None });
        }
    }
    match e {
        ArgError::Type(why) => Judged::Refused(Refusal {
            error: Error::client(Kind::InvalidParams, why),
            challenge: None,
            retry_after: None,
        }),
        ArgError::Missing(ToolError(text)) => Judged::ToolFailed(text),
    }
}

/// A `tools/call` result with `isError` and `text`: a complete response for `env` into `out`,
/// shaped for the client's transport `generation`.
pub(crate) fn tool_failed(
    out: &mut Vec<u8>,
    env: &Envelope<'_, '_>,
    text: &str,
    generation: Generation,
    server: &Server,
) {
    begin_result(out, env.id.as_ref());
    crate::rest::tool::text_result(out, text, true);
    end_result_for(out, generation, server, false);
}

/// The rule table's decision on a message (called by [`decide`] only): a `tools/call` over the
/// principal, the tool's backend and name, the request, and `args` (the arguments as they will
/// be sent); a `resources/read` or `resources/subscribe` over the backend's URI, a `prompts/get`
/// over the backend's prompt name (when some rule targets resources or prompts). `Err` carries
/// the 403 error and, when an allow rule was missed only for scopes, the `insufficient_scope`
/// challenge.
pub(crate) fn authorize(
    w: &Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    args: Option<&[Node<'_>]>,
) -> Result<(), Refusal> {
    let server = w.cx.server;
    if server.policy.is_open() || env.kind != MessageKind::Request {
        return Ok(());
    }
    match env.method {
        "tools/call" => authorize_tool(w, env, args),
        "resources/read" | "resources/subscribe" => authorize_other(w, env, env.uri, "+", (false, false)),
        // A subscription's resource updates are judged as subscribing to each URI.
        "subscriptions/listen" => crate::proxy::names::listen_uris(env.params)
            .try_for_each(|uri| authorize_other(w, env, Some(uri), "+", (false, false))),
        "prompts/get" => authorize_other(w, env, env.name, &server.separator, (true, false)),
        // A completion names the prompt or resource template it completes arguments of: judged
        // as getting that prompt or reading that template's URI (a caller refused a prompt is
        // refused its argument completions too).
        "completion/complete" => match crate::proxy::names::completion_ref(env.params) {
            Some((true, name)) => authorize_other(w, env, Some(name), &server.separator, (true, true)),
            Some((false, uri)) => authorize_other(w, env, Some(uri), "+", (false, true)),
            // Anything else is refused by dispatch as invalid params.
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

fn authorize_tool(
    w: &Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    args: Option<&[Node<'_>]>,
) -> Result<(), Refusal> {
    use crate::policy::cel::Mcp;
    use crate::policy::rules::Call;
    let (server, principal) = (w.cx.server, w.principal);
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
    // `request.mcp.params.arguments` reads the judged arguments too, when they were normalized.
    let normalized = args.filter(|a| env.arguments.is_none_or(|e| e.as_ptr() != a.as_ptr()));
    let params = crate::policy::cel::Params { sent: env.params, arguments: normalized };
    let mcp = Mcp { method: Some(env.method), backend: Some(backend), tool: Some(tool), params };
    let (decision, _) = authz::with_activation(w.head, w.buf, principal, args, mcp, |activation| {
        server.policy.decide(&Call { backend, tool, principal, activation }, &mut errors)
    });
    decided(w, decision, errors, (backend, tool, "tool"), || format!("calling {}", local::truncate(name)))
}

/// `resources/read`, `resources/subscribe`, `prompts/get` and the completions of either: routed
/// to the backend that serves the exposed URI or name (`joiner` as the lists expose them), judged
/// on the backend's own. Unknown names are reported by dispatch, not hidden behind a 403.
fn authorize_other(
    w: &Writer<'_, '_>,
    env: &Envelope<'_, '_>,
    exposed: Option<&str>,
    joiner: &str,
    (prompt, completing): (bool, bool),
) -> Result<(), Refusal> {
    use crate::policy::cel::Mcp;
    use crate::policy::rules::Other;
    let what = |own| if prompt { Other::Prompt(own) } else { Other::Resource(own) };
    let (server, principal) = (w.cx.server, w.principal);
    let Some(exposed) = exposed else { return Ok(()) };
    let Some((i, own)) = aggregate::route(server, exposed, joiner) else { return Ok(()) };
    let backend = &*server.backends[i].name;
    if !server.policy.judges(what(own)) {
        return Ok(());
    }
    let mut errors = 0;
    let params = crate::policy::cel::Params { sent: env.params, arguments: None };
    let mcp = Mcp { method: Some(env.method), backend: Some(backend), tool: None, params };
    let (decision, _) = authz::with_activation(w.head, w.buf, principal, None, mcp, |activation| {
        server.policy.decide_other(backend, what(own), principal, activation, &mut errors)
    });
    let verb = match (prompt, completing) {
        (true, false) => "getting prompt",
        (false, false) => "reading",
        (true, true) => "completing prompt",
        (false, true) => "completing resource",
    };
    let noun = if prompt { "prompt" } else { "resource" };
    decided(w, decision, errors, (backend, own, noun), || format!("{verb} {}", local::truncate(exposed)))
}

/// Records a decision (metrics, phase 8's facts, the debug log) and turns a denial into the
/// refusal: 403 naming `what` was not allowed, with the challenge when scopes were missing.
fn decided(
    w: &Writer<'_, '_>,
    decision: crate::policy::rules::Decision,
    errors: u64,
    (backend, target, noun): (&str, &str, &str),
    what: impl FnOnce() -> String,
) -> Result<(), Refusal> {
    use crate::policy::rules::Decision;
    let server = w.cx.server;
    w.cx.core.stats.borrow_mut().authorized(&server.name, &decision, errors);
    w.facts.decision.set(Some(match &decision {
        Decision::Allow { rule } => (true, *rule),
        Decision::Deny { rule, .. } => (false, *rule),
    }));
    log::debug!(
        target: "authz",
        "server={} subject={:?} target={backend}/{target} decision={decision:?}",
        server.name,
        w.principal.subject()
    );
    match decision {
        Decision::Allow { .. } => Ok(()),
        Decision::Deny { scope, .. } => {
            let err = Error::client(Kind::Denied, format!("Forbidden: {} is not allowed", what()));
            let challenge = scope.map(|s| {
                let mut c = format!("Bearer error=\"insufficient_scope\", scope=\"{}\"", s.join(" "));
                if let Some(prm) = &server.auth.prm {
                    c.push_str(&format!(", resource_metadata=\"{}\"", prm.url_for(w.head.host.of(w.buf))));
                }
                c.push_str(&format!(
                    ", error_description=\"The access token lacks a scope this {noun} requires\""
                ));
                c
            });
            Err(Refusal { error: err, challenge, retry_after: None })
        }
    }
}

/// A refused call (403 denied, 429 over a rate limit, -32602 arguments): a JSON-RPC error
/// echoing the request id, with the challenge or the `Retry-After` it carries.
pub(crate) fn forbidden(
    w: &mut Writer<'_, '_>,
    r: &Refusal,
    env: &Envelope<'_, '_>,
    generation: Generation,
    method: MethodClass,
) -> Outcome {
    let mut data = Vec::new();
    let retry_after = r.retry_after.map(|wait| {
        let ms = wait.as_micros().div_ceil(1000) as u64;
        data.extend_from_slice(b"{\"retryAfterMs\":");
        crate::http::response::write_u64(&mut data, ms);
        data.push(b'}');
        ms.div_ceil(1000).max(1)
    });
    let data = (!data.is_empty()).then_some(&data[..]);
    let reply = ErrorReply { id: env.id.as_ref(), data, generation };
    let challenge = r.challenge.as_deref();
    error_exit(w.to(), &Rejection { reply, challenge, method, retry_after, ..Rejection::of(&r.error) })
}

/// The server's rate limits on an allowed `tools/call` (after phase 5's decision: a denied
/// call spends nothing): every limit that applies to the tool spends one token of the caller's
/// bucket; the first one out of tokens refuses the call (429).
fn spend(w: &Writer<'_, '_>, env: &Envelope<'_, '_>) -> Result<(), Refusal> {
    use crate::policy::limits::{KeyFrom, Verdict};
    let (server, snap, principal) = (w.cx.server, w.cx.snap, w.principal);
    if server.rate_limits.is_empty() || env.kind != MessageKind::Request || env.method != "tools/call" {
        return Ok(());
    }
    let tool = env.name.unwrap_or("");
    let now = std::time::Instant::now();
    let mut buckets = w.cx.core.buckets.borrow_mut();
    for (i, limit) in server.rate_limits.iter().enumerate() {
        if !limit.applies(tool) {
            continue;
        }
        // Callers without the key's value share one bucket (the limit still holds for them).
        let (mut ip, owned);
        let key: &[u8] = match &limit.key {
            KeyFrom::Sub if principal.subject_is_sub => principal.subject().as_bytes(),
            KeyFrom::Sub => b"",
            KeyFrom::Subject => principal.subject().as_bytes(),
            KeyFrom::ApiKey if principal.kind == crate::auth::PrincipalKind::ApiKey => {
                principal.subject().as_bytes()
            }
            KeyFrom::ApiKey => b"",
            KeyFrom::Claim(path) => match principal.claims().at_path(path) {
                Some(c) => match c.as_str() {
                    Some(s) => s.as_bytes(),
                    None => {
                        owned = serde_json::to_string(&c).unwrap_or_default();
                        owned.as_bytes()
                    }
                },
                None => b"",
            },
            KeyFrom::Peer => match w.cx.peer {
                std::net::IpAddr::V4(a) => {
                    ip = [0u8; 16];
                    ip[..4].copy_from_slice(&a.octets());
                    &ip[..4]
                }
                std::net::IpAddr::V6(a) => {
                    ip = a.octets();
                    &ip[..]
                }
            },
        };
        let verdict = buckets.check(snap.generation, &server.name, i, limit, snap.workers, key, now);
        if let Verdict::Limited(wait) = verdict {
            w.cx.core.stats.borrow_mut().rate_limited(&server.name, &limit.label);
            w.facts.limited.set(true);
            let per = limit.per.as_secs();
            let per = match per {
                p if p % 3600 == 0 => format!("{}h", p / 3600),
                p if p % 60 == 0 => format!("{}m", p / 60),
                p => format!("{p}s"),
            };
            let error = Error::client(
                Kind::RateLimited,
                format!(
                    "Rate limit {} exceeded: {} requests per {per}; retry in {} ms",
                    limit.label,
                    limit.requests,
                    wait.as_micros().div_ceil(1000)
                ),
            );
            return Err(Refusal { error, challenge: None, retry_after: Some(wait) });
        }
    }
    Ok(())
}
