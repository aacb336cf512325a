//! Methods the gateway answers itself: initialize, server/discover, ping, the list methods and
//! `tools/call` of template tools. Each writes the members of a JSON-RPC `result` object into a
//! reused buffer; the pipeline wraps them in the envelope. Pure functions over borrowed data.

use simd_json::Node;

use crate::config::snapshot::{LocalTool, Server, ToolKind};
use crate::error::{Error, Kind};
use crate::mcp::json;
use crate::mcp::reply::end_result;
use crate::mcp::version::{self, Generation, Version};
use crate::rest::template::Context;

/// Gateway version reported in `serverInfo`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `capabilities` the gateway advertises for a local endpoint. Prompts and resources are
/// advertised (with empty lists) because clients and the conformance suite expect the list
/// methods to answer.
pub const CAPABILITIES: &[u8] =
    br#"{"tools":{"listChanged":false},"prompts":{"listChanged":false},"resources":{"subscribe":false,"listChanged":false}}"#;

/// Writes `{"name":"portcullis/<server>","version":".."}`.
pub fn write_server_info(body: &mut Vec<u8>, server: &Server) {
    body.extend_from_slice(b"{\"name\":\"portcullis/");
    json::write_escaped(body, &server.name);
    body.extend_from_slice(b"\",\"version\":\"");
    body.extend_from_slice(VERSION.as_bytes());
    body.extend_from_slice(b"\"}");
}

/// The version `initialize` answers with: the client's if we speak it (and it has a handshake),
/// otherwise the newest handshake version (MCP lifecycle, version negotiation).
pub fn negotiate(requested: Option<&str>) -> Version {
    requested
        .and_then(|r| Version::parse(r.as_bytes()))
        .filter(|v| !v.is_stateless())
        .unwrap_or(version::LATEST_HANDSHAKE)
}

/// `initialize` result members.
pub fn initialize(body: &mut Vec<u8>, server: &Server, v: Version) {
    initialize_with(body, server, v, CAPABILITIES)
}

/// `initialize` result members with the given `capabilities` JSON (merged from backends).
pub fn initialize_with(body: &mut Vec<u8>, server: &Server, v: Version, capabilities: &[u8]) {
    body.extend_from_slice(b"\"protocolVersion\":\"");
    body.extend_from_slice(v.as_str().as_bytes());
    body.extend_from_slice(b"\",\"capabilities\":");
    body.extend_from_slice(capabilities);
    body.extend_from_slice(b",\"serverInfo\":");
    write_server_info(body, server);
    if let Some(i) = &server.instructions {
        body.extend_from_slice(b",\"instructions\":");
        json::write_str(body, i);
    }
}

/// Writes the JSON array of every version the gateway speaks, newest first.
pub fn write_supported_versions(body: &mut Vec<u8>) {
    body.push(b'[');
    for (i, v) in version::ALL.iter().rev().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.push(b'"');
        body.extend_from_slice(v.as_str().as_bytes());
        body.push(b'"');
    }
    body.push(b']');
}

/// `server/discover` result members (2026-07-28); the caller adds `resultType`, cache fields
/// and `_meta.serverInfo`.
pub fn discover(body: &mut Vec<u8>, server: &Server) {
    discover_with(body, server, CAPABILITIES);
}

/// [`discover`] with `capabilities` (JSON object) in place of the gateway's own (an aggregating
/// server offers the union of its backends').
pub fn discover_with(body: &mut Vec<u8>, server: &Server, capabilities: &[u8]) {
    body.extend_from_slice(b"\"supportedVersions\":");
    write_supported_versions(body);
    body.extend_from_slice(b",\"capabilities\":");
    body.extend_from_slice(capabilities);
    if let Some(i) = &server.instructions {
        body.extend_from_slice(b",\"instructions\":");
        json::write_str(body, i);
    }
}

/// `tools/list` result members: the tools this caller may see. Each entry was serialised at
/// config load. A `cursor` is refused: the gateway never hands one out for local tools.
pub fn tools_list(
    body: &mut Vec<u8>,
    server: &Server,
    params: Option<&[Node<'_>]>,
    allow: Option<&[u8]>,
    visible: &crate::proxy::authz::Visible<'_>,
) -> Result<(), Error> {
    if params.and_then(|p| json::get(p, "cursor")).is_some() {
        return Err(Error::client(Kind::InvalidParams, "Invalid cursor"));
    }
    body.extend_from_slice(b"\"tools\":[");
    let mut first = true;
    let mask = allow.map(|a| server.header_mask(a));
    for (i, t) in server.tools.iter().enumerate() {
        if !t.allowed || mask.as_ref().is_some_and(|m| !m[i]) || !visible.tool(&server.name, &t.name) {
            continue;
        }
        if !first {
            body.push(b',');
        }
        first = false;
        body.extend_from_slice(&t.listing);
    }
    body.push(b']');
    Ok(())
}

/// Result members of an empty list method (`prompts/list`, `resources/list`, ...).
pub fn empty_list(body: &mut Vec<u8>, member: &str) {
    body.push(b'"');
    body.extend_from_slice(member.as_bytes());
    body.extend_from_slice(b"\":[]");
}

/// The local tool `name` names, if this caller may call it: an unknown or disallowed tool is a
/// protocol error (-32602).
pub fn find_tool<'s>(
    server: &'s Server,
    name: Option<&str>,
    allow: Option<&[u8]>,
) -> Result<&'s LocalTool, Error> {
    let name = name.ok_or_else(|| Error::client(Kind::InvalidParams, "params.name is required"))?;
    let tool = server
        .tool_index
        .get(name)
        .and_then(|&i| server.tools.get(i))
        .ok_or_else(|| Error::client(Kind::InvalidParams, format!("Unknown tool: {}", truncate(name))))?;
    if !server.tool_allowed(tool, allow) {
        return Err(not_allowed(name));
    }
    Ok(tool)
}

/// -32602 for a tool `allowTools` or the client's allow-list header hides (Higress wording).
pub fn not_allowed(name: &str) -> Error {
    Error::client(Kind::InvalidParams, format!("Tool not allowed: {}", truncate(name)))
}

/// `params.arguments`, when present, must be an object.
pub fn check_arguments(arguments: Option<&[Node<'_>]>) -> Result<(), Error> {
    match arguments.map(|a| a.first()) {
        None | Some(Some(Node::Object { .. })) => Ok(()),
        Some(_) => Err(Error::client(Kind::InvalidParams, "params.arguments must be an object")),
    }
}

/// `tools/call` of a template tool: renders `responseTemplate.body` over `arguments` (as phase
/// 5 normalized and judged them) into a text content item. REST tools are called by the
/// pipeline (they wait on a backend); one reaching here is inside a JSON-RPC batch.
pub fn tools_call(
    body: &mut Vec<u8>,
    tmp: &mut Vec<u8>,
    server: &Server,
    name: Option<&str>,
    arguments: Option<&[Node<'_>]>,
    allow: Option<&[u8]>,
    client: crate::rest::template::Client<'_>,
) -> Result<(), Error> {
    let tool = find_tool(server, name, allow)?;
    check_arguments(arguments)?;
    let ToolKind::Template { body: template, .. } = &tool.kind else {
        return Err(Error::client(
            Kind::InvalidRequest,
            "this tool calls a REST backend, which cannot be answered inside a JSON-RPC batch; send the call on its own",
        ));
    };
    tmp.clear();
    let rendered =
        template.render(tmp, &Context { args: arguments, config: Some(&server.config), data: None, client });
    let is_error = match rendered {
        Ok(()) => false,
        // A render error (budget, output cap, a function refusing its input) is the tool's
        // failure, reported to the model like a validation failure.
        Err(e) => {
            tmp.clear();
            tmp.extend_from_slice(b"template error: ");
            tmp.extend_from_slice(e.to_string().as_bytes());
            true
        }
    };
    body.extend_from_slice(b"\"content\":[{\"type\":\"text\",\"text\":\"");
    // Rendered text is UTF-8 but where a function produced raw bytes (`b64dec`); those are
    // replaced rather than sent as invalid JSON (no copy when the text is valid).
    json::write_escaped(body, &String::from_utf8_lossy(tmp));
    body.extend_from_slice(b"\"}],\"isError\":");
    body.extend_from_slice(if is_error { b"true" } else { b"false" });
    Ok(())
}

/// Client-supplied names in error messages are cut short so a huge name cannot bloat replies.
pub fn truncate(s: &str) -> &str {
    match s.char_indices().nth(128) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// 2026-07-28 result members: `resultType`, `_meta.serverInfo` and, for cacheable results,
/// `ttlMs`/`cacheScope`. Lists may differ per caller (the allow-list header, the rules)
/// and change on reload, so they are private and not cached.
/// Closes a result as the client's transport `generation` wants it: 2026-07-28 results carry
/// `resultType` and `_meta.serverInfo` ([`end_result_stateless`]).
pub(crate) fn end_result_for(body: &mut Vec<u8>, generation: Generation, server: &Server, cacheable: bool) {
    match generation {
        Generation::Stateless => end_result_stateless(body, server, cacheable),
        Generation::Sessions => end_result(body),
    }
}

pub(crate) fn end_result_stateless(body: &mut Vec<u8>, server: &Server, cacheable: bool) {
    body.extend_from_slice(
        b",\"resultType\":\"complete\",\"_meta\":{\"io.modelcontextprotocol/serverInfo\":",
    );
    write_server_info(body, server);
    body.push(b'}');
    if cacheable {
        body.extend_from_slice(b",\"ttlMs\":0,\"cacheScope\":\"private\"");
    }
    end_result(body);
}
