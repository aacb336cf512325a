//! Tasks through the gateway (the 2026-07-28 `io.modelcontextprotocol/tasks` extension). A task a
//! backend creates for a `tools/call` (a `CreateTaskResult`: `resultType` `task`, with its
//! `taskId`) reaches the client under a gateway task id, `<backend><separator><tag>.<own id>`,
//! whose tag (an HMAC under the session keys) binds it to the endpoint, the principal and the
//! backend. `tasks/get`, `tasks/update` and `tasks/cancel` carry that id in `params.taskId` and
//! `Mcp-Name`: the gateway checks the tag, routes to the backend it names and sends the backend
//! its own id. An id of another principal, or one the gateway did not hand out, is an unknown
//! task (-32602), as a backend answers one. With `sessions.keys` every replica understands the
//! ids of the others; without, a restart forgets them.

use crate::config::snapshot::{Server, Snapshot};

/// Searchers built once: building one costs more than searching an answer.
static TASK_ID: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"taskId\""));
static TASK_STATUS: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"notifications/tasks/status"));

/// The task methods routed by task id.
pub(crate) fn is_task_method(method: &str) -> bool {
    matches!(method, "tasks/get" | "tasks/update" | "tasks/cancel")
}

/// The task methods a 2025-11-25 session routes by task id (its `tasks/list` is merged across
/// the backends, `backends::ListKind::Tasks`).
pub(crate) fn is_session_task_method(method: &str) -> bool {
    matches!(method, "tasks/get" | "tasks/result" | "tasks/cancel")
}

/// The method as a static string (`Mcp-Method` of the backend request).
pub(crate) fn method_name(method: &str) -> Option<&'static str> {
    match method {
        "tasks/get" => Some("tasks/get"),
        "tasks/update" => Some("tasks/update"),
        "tasks/cancel" => Some("tasks/cancel"),
        "tasks/result" => Some("tasks/result"),
        _ => None,
    }
}

fn context<'p>(server: &'p Server, principal: &'p str, backend: &'p str) -> [&'p [u8]; 4] {
    [b"task", server.name.as_bytes(), principal.as_bytes(), backend.as_bytes()]
}

/// The gateway's id for `backend`'s task `own`, created for `principal`.
pub(crate) fn tag(snap: &Snapshot, server: &Server, principal: &str, backend: &str, own: &str) -> String {
    let bound = snap.sessions.bind(&context(server, principal, backend), own);
    format!("{backend}{}{bound}", server.separator)
}

/// The backend (its index) and its own id for a gateway task id, when the id is this
/// principal's at this endpoint.
pub(crate) fn untag<'t>(
    snap: &Snapshot,
    server: &Server,
    principal: &str,
    id: &'t str,
) -> Option<(usize, &'t str)> {
    let (i, bound) = server
        .backends
        .iter()
        .enumerate()
        .find_map(|(i, b)| Some((i, id.strip_prefix(&*b.name)?.strip_prefix(&*server.separator)?)))?;
    let backend = &*server.backends[i].name;
    Some((i, snap.sessions.unbind(&context(server, principal, backend), bound)?))
}

/// A backend's answer to `method` (a JSON body, or an SSE stream of JSON events) with the task
/// id of a `CreateTaskResult` (answering `tools/call`) or of a task (answering a task method)
/// replaced by `gateway_id(own)`. Anything else is left as it is; only answers that name a
/// `taskId` are parsed.
pub(crate) fn tag_answer(method: &str, body: &mut Vec<u8>, sse: bool, gateway_id: impl Fn(&str) -> String) {
    let routed = is_task_method(method) || is_session_task_method(method);
    if !(method == "tools/call" || routed) || TASK_ID.find(body).is_none() {
        return;
    }
    rewrite_results(body, sse, |result| tag_result(method, result, &gateway_id));
}

/// The task ids a result names, made the gateway's: a 2026-07-28 `CreateTaskResult` (flat,
/// `resultType` `task`) or a task method's answer (`taskId`); a 2025-11-25 `CreateTaskResult`
/// (`task.taskId`); a 2025-11-25 `tasks/result` payload (`_meta` related-task). Whether any
/// changed.
fn tag_result(method: &str, result: &mut serde_json::Value, gateway_id: &impl Fn(&str) -> String) -> bool {
    use serde_json::Value;
    let mut changed = false;
    let mut tag = |slot: Option<&mut Value>| {
        if let Some(v) = slot {
            if let Some(own) = v.as_str() {
                *v = Value::String(gateway_id(own));
                changed = true;
            }
        }
    };
    let created = result.get("resultType").and_then(|t| t.as_str()) == Some("task");
    if created || is_task_method(method) || is_session_task_method(method) {
        tag(result.get_mut("taskId"));
    }
    tag(result.get_mut("task").and_then(|t| t.get_mut("taskId")));
    if method == "tasks/result" {
        let related = result.get_mut("_meta").and_then(|m| m.get_mut("io.modelcontextprotocol/related-task"));
        tag(related.and_then(|r| r.get_mut("taskId")));
    }
    changed
}

/// One SSE event of a backend's stream with the task ids it names made the gateway's: in an
/// answer to `method` (as [`tag_answer`]) or in a `notifications/tasks/status`. `None` when the
/// event names no task (relayed as it is).
pub(crate) fn tag_event(method: &str, event: &[u8], gateway_id: impl Fn(&str) -> String) -> Option<Vec<u8>> {
    TASK_ID.find(event)?;
    let mut out = event.to_vec();
    if TASK_STATUS.find(event).is_some() {
        let mut changed = false;
        let mut kept = Vec::with_capacity(out.len() + 64);
        for line in out.split_inclusive(|&b| b == b'\n') {
            let data = line.strip_prefix(b"data:").map(|d| d.trim_ascii());
            let rewritten = data.and_then(|d| {
                let mut v: serde_json::Value = serde_json::from_slice(d).ok()?;
                if v.get("method")? != "notifications/tasks/status" {
                    return None;
                }
                let slot = v.get_mut("params")?.get_mut("taskId")?;
                let own = slot.as_str()?.to_string();
                *slot = serde_json::Value::String(gateway_id(&own));
                serde_json::to_vec(&v).ok()
            });
            match rewritten {
                Some(json) => {
                    changed = true;
                    kept.extend_from_slice(b"data: ");
                    kept.extend_from_slice(&json);
                    kept.push(b'\n');
                }
                None => kept.extend_from_slice(line),
            }
        }
        return changed.then_some(kept);
    }
    let before = out.clone();
    tag_answer(method, &mut out, true, gateway_id);
    (out != before).then_some(out)
}

/// Applies `edit` to the `result` of a JSON-RPC answer in `body` (a JSON body, or each `data:`
/// line of an SSE stream); an answer is re-encoded only when `edit` changed it.
pub(crate) fn rewrite_results(body: &mut Vec<u8>, sse: bool, edit: impl Fn(&mut serde_json::Value) -> bool) {
    let rewrite = |json: &[u8]| -> Option<Vec<u8>> {
        let mut v: serde_json::Value = serde_json::from_slice(json).ok()?;
        edit(v.get_mut("result")?).then(|| serde_json::to_vec(&v).ok())?
    };
    if !sse {
        if let Some(out) = rewrite(body) {
            *body = out;
        }
        return;
    }
    // Each `data:` line of the stream that is such an answer is rewritten; the rest is kept.
    let mut out = Vec::with_capacity(body.len() + 64);
    for line in body.split_inclusive(|&b| b == b'\n') {
        let data = line.strip_prefix(b"data:").map(|d| d.trim_ascii());
        match data.and_then(&rewrite) {
            Some(json) => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&json);
                out.push(b'\n');
            }
            None => out.extend_from_slice(line),
        }
    }
    *body = out;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn answers_naming_a_task_get_the_gateway_id() {
        let id = |own: &str| format!("b1__t.{own}");
        let mut created =
            br#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"task","taskId":"abc","status":"working"}}"#
                .to_vec();
        tag_answer("tools/call", &mut created, false, id);
        let v: serde_json::Value = serde_json::from_slice(&created).unwrap();
        assert_eq!(v["result"]["taskId"], "b1__t.abc");
        // A plain result that mentions "taskId" in its content is not a task.
        let plain = br#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","content":[{"type":"text","text":"\"taskId\""}],"taskId":"x"}}"#;
        let mut kept = plain.to_vec();
        tag_answer("tools/call", &mut kept, false, id);
        assert_eq!(kept, plain.to_vec());
        let mut got = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"resultType\":\"complete\",\"taskId\":\"abc\",\"status\":\"completed\"}}\n\n".to_vec();
        tag_answer("tasks/get", &mut got, true, id);
        let text = String::from_utf8(got).unwrap();
        assert!(
            text.starts_with("event: message\ndata: {") && text.contains(r#""taskId":"b1__t.abc""#),
            "{text}"
        );
        assert!(text.ends_with("}\n\n"), "{text}");
    }

    #[test]
    fn the_2025_shapes_of_tasks_get_the_gateway_id() {
        let id = |own: &str| format!("b1__t.{own}");
        let mut created =
            br#"{"jsonrpc":"2.0","id":1,"result":{"task":{"taskId":"abc","status":"working"}}}"#.to_vec();
        tag_answer("tools/call", &mut created, false, id);
        let v: serde_json::Value = serde_json::from_slice(&created).unwrap();
        assert_eq!(v["result"]["task"]["taskId"], "b1__t.abc");
        let mut payload = br#"{"jsonrpc":"2.0","id":2,"result":{"content":[],"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"abc"}}}}"#.to_vec();
        tag_answer("tasks/result", &mut payload, false, id);
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(v["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"], "b1__t.abc");
        let status = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tasks/status\",\"params\":{\"taskId\":\"abc\",\"status\":\"completed\"}}\n\n";
        let tagged = String::from_utf8(tag_event("tools/call", status, id).unwrap()).unwrap();
        assert!(tagged.contains(r#""taskId":"b1__t.abc""#) && tagged.ends_with("\n\n"), "{tagged}");
        assert!(tag_event("tools/call", b"event: message\ndata: {\"x\":1}\n\n", id).is_none());
    }
}
