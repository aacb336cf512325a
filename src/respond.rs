//! The single table from error [`Kind`] to the wire: HTTP status, JSON-RPC error code and whether
//! the connection must close. Every error response of the gateway is written through
//! [`write_error`], so every one carries a JSON-RPC error object whose message says what was wrong.

use crate::error::{Error, Kind};
use crate::http::response::{self, Extra};
use crate::mcp::envelope::Id;
use crate::mcp::json;
use crate::mcp::version::Generation;

/// How one error kind appears on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wire {
    /// HTTP status code.
    pub status: u16,
    /// JSON-RPC error code in the body.
    pub code: i32,
    /// Whether the connection must be closed after the response (framing can no longer be trusted,
    /// or the body was not read).
    pub close: bool,
}

/// JSON-RPC: invalid JSON.
pub const PARSE_ERROR: i32 = -32700;
/// JSON-RPC: not a valid request object.
pub const INVALID_REQUEST: i32 = -32600;
/// JSON-RPC: method does not exist.
pub const METHOD_NOT_FOUND: i32 = -32601;
/// JSON-RPC: invalid method parameters.
pub const INVALID_PARAMS: i32 = -32602;
/// JSON-RPC: internal error.
pub const INTERNAL_ERROR: i32 = -32603;
/// MCP 2025 revisions: resource not found (replaced by -32602 in 2026-07-28).
pub const RESOURCE_NOT_FOUND: i32 = -32002;
/// MCP (TypeScript SDK convention): session not found.
pub const SESSION_NOT_FOUND: i32 = -32001;
/// MCP 2026-07-28: `Mcp-Method`/`Mcp-Name` headers disagree with the body.
pub const HEADER_MISMATCH: i32 = -32020;
/// The gateway's rate limits: a call over its budget (server-defined range, -32000 to -32099).
pub const RATE_LIMITED: i32 = -32029;
/// The gateway's tool pinning: the tool's definition is not the approved one.
pub const TOOL_NOT_APPROVED: i32 = -32030;
/// MCP 2026-07-28: unsupported protocol version.
pub const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;

/// The table. Statuses follow RFC 9110/9112 and the MCP Streamable HTTP transport; JSON-RPC
/// errors for a well-formed request that names a bad method or params travel with HTTP 200, as
/// the official SDK servers do.
pub const fn wire(kind: Kind) -> Wire {
    let (status, code, close) = match kind {
        Kind::BadRequest => (400, INVALID_REQUEST, true),
        Kind::HeadTooLarge => (431, INVALID_REQUEST, true),
        Kind::BodyTooLarge => (413, INVALID_REQUEST, true),
        Kind::HeadTimeout => (408, INVALID_REQUEST, true),
        Kind::ExpectationFailed => (417, INVALID_REQUEST, true),
        Kind::NotImplemented => (501, INVALID_REQUEST, true),
        Kind::NotFound => (404, INVALID_REQUEST, false),
        Kind::MethodNotAllowed => (405, INVALID_REQUEST, false),
        Kind::NotAcceptable => (406, INVALID_REQUEST, false),
        Kind::UnsupportedMediaType => (415, INVALID_REQUEST, false),
        Kind::Forbidden => (403, INVALID_REQUEST, false),
        Kind::Unauthorized => (401, INVALID_REQUEST, false),
        Kind::Denied => (403, INVALID_REQUEST, false),
        Kind::Overloaded => (503, INTERNAL_ERROR, true),
        Kind::RateLimited => (429, RATE_LIMITED, false),
        Kind::NotApproved => (403, TOOL_NOT_APPROVED, false),
        Kind::UnsupportedProtocolVersion => (400, UNSUPPORTED_PROTOCOL_VERSION, false),
        Kind::SessionRequired => (400, INVALID_REQUEST, false),
        Kind::SessionNotFound => (404, SESSION_NOT_FOUND, false),
        Kind::HeaderMismatch => (400, HEADER_MISMATCH, false),
        Kind::Parse => (400, PARSE_ERROR, false),
        Kind::InvalidRequest => (400, INVALID_REQUEST, false),
        Kind::MethodNotFound => (200, METHOD_NOT_FOUND, false),
        Kind::InvalidParams => (200, INVALID_PARAMS, false),
        Kind::ResourceNotFound => (200, RESOURCE_NOT_FOUND, false),
        Kind::BadGateway => (502, INTERNAL_ERROR, false),
        Kind::GatewayTimeout => (504, INTERNAL_ERROR, false),
        Kind::TokenService => (502, INTERNAL_ERROR, false),
        Kind::Internal => (500, INTERNAL_ERROR, false),
    };
    Wire { status, code, close }
}

/// The table entry for the stateless revision (2026-07-28), where JSON-RPC errors of a request
/// also set the HTTP status: -32601 is 404 and -32602 is 400 (basic/transports, "Error handling").
pub const fn wire_for(kind: Kind, generation: Generation) -> Wire {
    let w = wire(kind);
    let stateless = matches!(generation, Generation::Stateless);
    match (kind, stateless) {
        (Kind::MethodNotFound, true) => Wire { status: 404, ..w },
        (Kind::InvalidParams, true) => Wire { status: 400, ..w },
        // 2026-07-28 changelog: resource not found is -32602; -32002 must no longer be sent.
        (Kind::ResourceNotFound, true) => Wire { status: 400, code: INVALID_PARAMS, ..w },
        _ => w,
    }
}

/// How an error reply is shaped beyond its kind and message.
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorReply<'a, 'i> {
    /// The request id to echo, when known.
    pub id: Option<&'a Id<'i>>,
    /// Raw JSON for `error.data`.
    pub data: Option<&'a [u8]>,
    /// Use the stateless revision's statuses.
    pub generation: Generation,
}

/// Writes the JSON-RPC error object `{"jsonrpc":"2.0","id":..,"error":{..}}` into `body`.
pub fn error_body(body: &mut Vec<u8>, code: i32, message: &str, id: Option<&Id<'_>>) {
    error_body_with_data(body, code, message, id, None)
}

/// [`error_body`] with an optional raw JSON `data` member.
pub fn error_body_with_data(
    body: &mut Vec<u8>,
    code: i32,
    message: &str,
    id: Option<&Id<'_>>,
    data: Option<&[u8]>,
) {
    body.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    match id {
        Some(id) => crate::mcp::envelope::write_id(body, id),
        None => body.extend_from_slice(b"null"),
    }
    body.extend_from_slice(b",\"error\":{\"code\":");
    json::write_i64(body, i64::from(code));
    body.extend_from_slice(b",\"message\":");
    json::write_str(body, message);
    if let Some(d) = data {
        body.extend_from_slice(b",\"data\":");
        body.extend_from_slice(d);
    }
    body.extend_from_slice(b"}}");
}

/// Writes a complete error response (head and JSON-RPC body) for `err` into `out`, using
/// `scratch` for the body. Returns the wire entry so the caller knows whether to close.
pub fn write_error(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    err: &Error,
    reply: &ErrorReply<'_, '_>,
    keep_alive: bool,
    extra: &Extra<'_>,
) -> Wire {
    let w = wire_for(err.kind, reply.generation);
    scratch.clear();
    error_body_with_data(scratch, w.code, &err.message, reply.id, reply.data);
    let mut extra = *extra;
    if err.kind == Kind::MethodNotAllowed && extra.allow.is_none() {
        extra.allow = Some("GET, POST, DELETE, OPTIONS");
    }
    response::write_head(out, w.status, Some(response::JSON), scratch.len(), keep_alive && !w.close, &extra);
    out.extend_from_slice(scratch);
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_errors_close_the_connection() {
        for k in [Kind::BadRequest, Kind::HeadTooLarge, Kind::BodyTooLarge, Kind::HeadTimeout] {
            assert!(wire(k).close, "{k:?}");
        }
        assert!(!wire(Kind::MethodNotFound).close);
    }

    #[test]
    fn error_body_is_json_rpc() {
        let mut b = Vec::new();
        error_body(&mut b, METHOD_NOT_FOUND, "Method not found: x\"y", Some(&Id::Int(7)));
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["error"]["code"], -32601);
        assert_eq!(v["error"]["message"], "Method not found: x\"y");
    }
}
