//! Merged lists (`tools/list`, `prompts/list`, `resources/list`, `resources/templates/list`):
//! local items first, then every backend's, under their exposed names, one page of each backend
//! at a time behind one gateway cursor ([`Resume`]).

use crate::config::snapshot::{Backend, Server};
use crate::mcp::json;
use crate::policy::rules::Other;

use super::wire::{answer, Link, Wire};
use super::{exchange::*, link::*};

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
    /// tasks/list of a 2025-11-25 session (each `taskId` the gateway's, `proxy::tasks::tag`)
    Tasks,
}

impl ListKind {
    /// The list method of a JSON-RPC method name, if it is one.
    pub fn of(method: &str) -> Option<ListKind> {
        match method {
            "tools/list" => Some(ListKind::Tools),
            "prompts/list" => Some(ListKind::Prompts),
            "resources/list" => Some(ListKind::Resources),
            "resources/templates/list" => Some(ListKind::Templates),
            "tasks/list" => Some(ListKind::Tasks),
            _ => None,
        }
    }

    pub(crate) fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Prompts => "prompts/list",
            ListKind::Resources => "resources/list",
            ListKind::Templates => "resources/templates/list",
            ListKind::Tasks => "tasks/list",
        }
    }

    pub(crate) fn member(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::Templates => "resourceTemplates",
            ListKind::Tasks => "tasks",
        }
    }

    /// The field that carries the exposed name.
    pub(crate) fn field(self) -> &'static str {
        match self {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::Templates => "uriTemplate",
            ListKind::Tasks => "taskId",
        }
    }

    pub(crate) fn joiner(self, server: &Server) -> &str {
        match self {
            ListKind::Tools | ListKind::Prompts => &server.separator,
            ListKind::Resources | ListKind::Templates => "+",
            ListKind::Tasks => &server.separator,
        }
    }
}

/// Where a paginated list continues: each backend that has more, with its own cursor. The
/// client sees it as one opaque gateway cursor (base64url JSON naming the list, so a tools
/// cursor is not taken for a prompts one); backends' cursors pass through it unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume(pub Vec<(String, String)>);

/// Largest gateway cursor accepted from a client.
pub(crate) const MAX_CURSOR: usize = 8192;

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
pub(crate) struct ListRequest<'a> {
    pub(crate) kind: ListKind,
    /// `x-envoy-allow-mcp-tools`, when sent.
    pub(crate) allow: Option<&'a [u8]>,
    /// The authorization filter of the caller.
    pub(crate) visible: &'a crate::proxy::authz::Visible<'a>,
    /// The gateway cursor's backends (`None`: the first page).
    pub(crate) resume: Option<&'a Resume>,
}

/// How one backend is addressed while merging lists.
pub(crate) enum Addressed {
    /// Within the client's session: (version, backend session id).
    Session(String, String),
    /// Over the worker's link (2026-07-28 clients).
    Link,
}

/// Appends `"tools":[...]` - local tools, then every reachable backend's selected tools under
/// their exposed names, following backend pages. A failing backend is left out and logged.
pub(crate) async fn merge_list(
    cx: &Cx<'_>,
    server: &Server,
    ListRequest { kind, allow, visible, resume }: ListRequest<'_>,
    fwd: &[Vec<(&[u8], &[u8])>],
    out: &mut Vec<u8>,
    via: impl Fn(&str) -> Option<Addressed>,
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
                    Addressed::Session(v, sid) => {
                        let id = cx.next_id();
                        let body = format!(
                            r#"{{"jsonrpc":"2.0","id":"{id}","method":"{}","params":{{{}"_meta":{{}}}}}}"#,
                            kind.method(),
                            cursor_json.as_deref().unwrap_or("")
                        );
                        page(cx, b, body.as_bytes(), &id, Wire::session(v, sid), fwd_for(fwd, i)).await
                    }
                    Addressed::Link => {
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
                let approved = kind != ListKind::Tools || super::schemas::approved(b, name, item);
                if kind == ListKind::Tools {
                    let mut learned = cx.core.schemas.borrow_mut();
                    learned.renew(cx.snap.generation);
                    learned.learn(&server.name, &b.name, name, item.get("inputSchema"), approved);
                }
                if !approved {
                    pin_mismatch(cx, server, b, name);
                    if b.pinning == crate::config::snapshot::Pinning::Enforce {
                        continue;
                    }
                }
                let exposed = if kind == ListKind::Tasks {
                    // Bound to the caller, as the task's creation handed it out.
                    crate::proxy::tasks::tag(cx.snap, server, cx.owner, &b.name, name)
                } else if server.prefixed() {
                    format!("{}{}{}", b.name, kind.joiner(server), name)
                } else {
                    name.to_string()
                };
                let shown = match kind {
                    ListKind::Tools => server.name_allowed(&exposed, allow) && visible.tool(&b.name, name),
                    ListKind::Prompts => visible.other(&b.name, Other::Prompt(name)),
                    ListKind::Resources => visible.other(&b.name, Other::Resource(name)),
                    ListKind::Templates => visible.other(&b.name, Other::Template(name)),
                    ListKind::Tasks => true,
                };
                if !shown {
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
pub(crate) async fn list_over_link(
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
            Link::Stateless => {
                // The caller's declared capabilities, as it sent them (a list may depend on them).
                let caps = String::from_utf8_lossy(cx.caps);
                body = format!(
                    r#"{{"jsonrpc":"2.0","id":"{id}","method":"{}","params":{{{cursor}"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{caps}}}}}}}"#,
                    kind.method()
                );
                Wire::stateless(kind.method(), None)
            }
            Link::Session { version, session } => {
                body = format!(
                    r#"{{"jsonrpc":"2.0","id":"{id}","method":"{}","params":{{{cursor}"_meta":{{}}}}}}"#,
                    kind.method()
                );
                (wire_version, wire_session) = (&**version, &**session);
                Wire::session(wire_version, wire_session)
            }
        };
        match cx.send(b, body.as_bytes(), wire, fwd).await {
            Ok(r) if r.status == 404 && attempt == 0 && matches!(l, Link::Session { .. }) => {
                forget(cx, server, b, fwd, &l)
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
pub(crate) async fn page(
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

/// Most pages of one backend's tool list read to learn its tools' arguments.
const MAX_LEARN_PAGES: usize = 16;

/// Reads `b`'s tool list (within the client's session, or over the worker's link) and learns
/// the argument rules of every tool it selects, so phase 5 can judge a call to one of them as
/// the backend will read it. Failures are logged; the call is then judged as sent.
pub(crate) async fn learn_tools(
    cx: &Cx<'_>,
    server: &Server,
    b: &Backend,
    session: Option<(&str, &str)>,
    fwd: &[(&[u8], &[u8])],
) {
    {
        let mut learned = cx.core.schemas.borrow_mut();
        learned.renew(cx.snap.generation);
        learned.mark_listed(&server.name, &b.name);
    }
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_LEARN_PAGES {
        let cursor_json =
            cursor.as_ref().map(|c| format!(r#""cursor":{},"#, serde_json::Value::String(c.clone())));
        let cursor_json = cursor_json.as_deref().unwrap_or("");
        let result = match session {
            Some((v, sid)) => {
                let id = cx.next_id();
                let body = format!(
                    r#"{{"jsonrpc":"2.0","id":"{id}","method":"tools/list","params":{{{cursor_json}"_meta":{{}}}}}}"#
                );
                page(cx, b, body.as_bytes(), &id, Wire::session(v, sid), fwd).await
            }
            None => list_over_link(cx, server, b, ListKind::Tools, cursor_json, fwd).await,
        };
        let Some(result) = result else { return };
        {
            let mut learned = cx.core.schemas.borrow_mut();
            learned.renew(cx.snap.generation);
            for item in result.get("tools").and_then(|t| t.as_array()).into_iter().flatten() {
                let Some(name) = item.get("name").and_then(|n| n.as_str()) else { continue };
                if b.selector.selects(name) {
                    let approved = super::schemas::approved(b, name, item);
                    learned.learn(&server.name, &b.name, name, item.get("inputSchema"), approved);
                    if !approved {
                        pin_mismatch(cx, server, b, name);
                    }
                }
            }
        }
        cursor = result.get("nextCursor").and_then(|c| c.as_str()).map(str::to_string);
        if cursor.is_none() {
            return;
        }
    }
}

/// A listed tool whose definition does not match its pin (or has none): logged and counted
/// (`portcullis_tool_pin_mismatches_total`); `enforce` also hides and refuses it.
fn pin_mismatch(cx: &Cx<'_>, server: &Server, b: &Backend, tool: &str) {
    let why = if b.pins.contains_key(tool) { "changed since it was pinned" } else { "has no pin" };
    log::warn!(
        "server {} backend {}: the definition of tool {tool:?} {why} ({})",
        server.name,
        b.name,
        if b.pinning == crate::config::snapshot::Pinning::Enforce { "hidden and refused" } else { "served" }
    );
    cx.core.stats.borrow_mut().pin_mismatch(&server.name, &b.name, tool);
}
