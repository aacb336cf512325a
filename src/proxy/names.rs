//! Pure name routing: which backend an exposed tool, prompt or resource name belongs to, and
//! the request body with only that name rewritten to the backend's own.

use crate::config::snapshot::Server;
use crate::mcp::json;

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

/// What a `completion/complete` completes (`params.ref`): `Some((true, name))` for a
/// `ref/prompt`, `Some((false, uri))` for a `ref/resource` (a missing name or URI is `""`),
/// `None` for anything else.
pub fn completion_ref<'t>(params: Option<&'t [simd_json::Node<'t>]>) -> Option<(bool, &'t str)> {
    let r = params.and_then(|p| json::get(p, "ref"));
    let field = |k: &str| r.and_then(|r| json::get(r, k)).and_then(json::as_str);
    match field("type")? {
        "ref/prompt" => Some((true, field("name").unwrap_or(""))),
        "ref/resource" => Some((false, field("uri").unwrap_or(""))),
        _ => None,
    }
}

/// `body` with the JSON string `old` (a slice of the decoder's copy starting at `base`) replaced
/// by `new`, written in `out` (cleared first). `None` when the name was written with escapes (its
/// bytes differ from the decoded string): exposed tool names never need escapes, so such a call
/// is refused.
pub fn rewrite_name(body: &[u8], base: usize, old: &str, new: &str, mut out: Vec<u8>) -> Option<Vec<u8>> {
    let start = (old.as_ptr() as usize).checked_sub(base)?;
    let end = start.checked_add(old.len())?;
    if start == 0
        || body.get(start - 1) != Some(&b'"')
        || body.get(start..end)? != old.as_bytes()
        || body.get(end) != Some(&b'"')
    {
        return None;
    }
    out.clear();
    out.reserve(body.len() + new.len());
    out.extend_from_slice(&body[..start]);
    json::write_escaped(&mut out, new);
    out.extend_from_slice(&body[end..]);
    Some(out)
}

/// The resource URIs a `subscriptions/listen` asks updates of
/// (`params.notifications.resourceSubscriptions`), as the client exposed them; strings only
/// (dispatch refuses a filter of another shape).
pub fn listen_uris<'t>(params: Option<&'t [simd_json::Node<'t>]>) -> impl Iterator<Item = &'t str> {
    use crate::mcp::json::{as_str, elements, get};
    params
        .and_then(|p| get(p, "notifications"))
        .and_then(|n| get(n, "resourceSubscriptions"))
        .filter(|a| matches!(a.first(), Some(simd_json::Node::Array { .. })))
        .into_iter()
        .flat_map(elements)
        .filter_map(as_str)
}
