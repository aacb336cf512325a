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

/// The task methods routed by task id.
pub(crate) fn is_task_method(method: &str) -> bool {
    matches!(method, "tasks/get" | "tasks/update" | "tasks/cancel")
}

/// The method as a static string (`Mcp-Method` of the backend request).
pub(crate) fn method_name(method: &str) -> Option<&'static str> {
    match method {
        "tasks/get" => Some("tasks/get"),
        "tasks/update" => Some("tasks/update"),
        "tasks/cancel" => Some("tasks/cancel"),
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
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    // Built once: building a searcher costs more than searching an answer.
    static TASK_ID: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"taskId\""));
    if !(method == "tools/call" || is_task_method(method)) || TASK_ID.find(body).is_none() {
        return;
    }
    rewrite_results(body, sse, |result| {
        let created = result.get("resultType").and_then(|t| t.as_str()) == Some("task");
        if !(created || is_task_method(method)) {
            return false;
        }
        let Some(own) = result.get("taskId").and_then(|t| t.as_str()) else { return false };
        result["taskId"] = serde_json::Value::String(gateway_id(own));
        true
    });
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
}
