//! The JSON-RPC envelope: from a decoded tape, only what a decision needs - `jsonrpc`, `id`,
//! `method`, and from `params` the `name`, `uri` and `arguments` - borrowed, never copied.
//! Anything that is not a single well-formed JSON-RPC 2.0 message is rejected here with the
//! code JSON-RPC prescribes, and the id echoed when one could be read.

use simd_json::{Node, StaticNode};

use crate::error::{Error, Kind};
use crate::mcp::json;

/// A JSON-RPC id. MCP ids are strings or numbers, never null.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Id<'a> {
    /// A string id.
    Str(&'a str),
    /// A negative or small integer id.
    Int(i64),
    /// An integer id above `i64::MAX`.
    Uint(u64),
    /// A fractional id (discouraged by JSON-RPC, still echoed).
    Float(f64),
    /// An id already serialised as JSON (kept across an upstream exchange).
    Raw(&'a [u8]),
}

/// What kind of message the body holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// Has `method` and `id`: expects a response.
    Request,
    /// Has `method`, no `id`: answered 202.
    Notification,
    /// Has `result` or `error` and `id`: a client's answer to a server request; answered 202.
    Response,
}

/// The decoded envelope, borrowing the tape.
#[derive(Clone, Copy, Debug)]
pub struct Envelope<'t, 'a> {
    /// Request, notification or response.
    pub kind: MessageKind,
    /// The id, for requests and responses.
    pub id: Option<Id<'a>>,
    /// The method ("" for responses).
    pub method: &'a str,
    /// The whole `params` value, when present.
    pub params: Option<&'t [Node<'a>]>,
    /// `params.name` (tools/call, prompts/get).
    pub name: Option<&'a str>,
    /// `params.uri` (resources/read and friends).
    pub uri: Option<&'a str>,
    /// `params.arguments`.
    pub arguments: Option<&'t [Node<'a>]>,
    /// `params._meta` (2026-07-28 carries the protocol version and client capabilities here).
    pub meta: Option<&'t [Node<'a>]>,
}

/// A rejected envelope: the error and, when it could be read, the id to echo.
#[derive(Clone, Debug)]
pub struct Rejected<'a> {
    /// What was wrong.
    pub error: Error,
    /// The id, if one was present and valid.
    pub id: Option<Id<'a>>,
}

/// Whether the top-level value is a JSON array (a JSON-RPC batch).
pub fn is_batch(tape: &[Node<'_>]) -> bool {
    matches!(tape.first(), Some(Node::Array { .. }))
}

fn invalid<'a>(msg: &'static str, id: Option<Id<'a>>) -> Rejected<'a> {
    Rejected { error: Error::client(Kind::InvalidRequest, msg), id }
}

fn read_id<'a>(v: &[Node<'a>]) -> Option<Id<'a>> {
    match v.first()? {
        Node::String(s) => Some(Id::Str(s)),
        Node::Static(StaticNode::I64(n)) => Some(Id::Int(*n)),
        Node::Static(StaticNode::U64(n)) => Some(Id::Uint(*n)),
        Node::Static(StaticNode::F64(f)) => Some(Id::Float(*f)),
        _ => None,
    }
}

/// Decodes one JSON-RPC message from its tape.
///
/// Runs once per POST body (or per batch element). `Ok` means a structurally valid message whose
/// method may still be unknown; `Err` carries the -32600 error to answer with.
pub fn decode<'t, 'a>(tape: &'t [Node<'a>]) -> Result<Envelope<'t, 'a>, Rejected<'a>> {
    if !matches!(tape.first(), Some(Node::Object { .. })) {
        return Err(invalid("message must be a JSON object", None));
    }
    let mut jsonrpc = None;
    let mut id_node = None;
    let mut method_node = None;
    let mut params = None;
    let mut has_result = false;
    for (key, value) in json::entries(tape) {
        let slot = match key {
            "jsonrpc" => &mut jsonrpc,
            "id" => &mut id_node,
            "method" => &mut method_node,
            "params" => &mut params,
            "result" | "error" => {
                has_result = true;
                continue;
            }
            _ => continue,
        };
        // A duplicated envelope key would let the gateway and a backend read different messages.
        if slot.replace(value).is_some() {
            return Err(invalid("duplicate key in JSON-RPC message", None));
        }
    }
    let id = match id_node {
        None => None,
        Some(v) => match read_id(v) {
            Some(id) => Some(id),
            None => return Err(invalid("id must be a string or a number", None)),
        },
    };
    if jsonrpc.and_then(json::as_str) != Some("2.0") {
        return Err(invalid("jsonrpc must be \"2.0\"", id));
    }
    let method = match method_node {
        None => None,
        Some(v) => match json::as_str(v) {
            Some(m) => Some(m),
            None => return Err(invalid("method must be a string", id)),
        },
    };
    if let Some(p) = params {
        if !matches!(p.first(), Some(Node::Object { .. } | Node::Array { .. })) {
            return Err(invalid("params must be an object or an array", id));
        }
    }
    let kind = match (method, id, has_result) {
        (Some(_), Some(_), false) => MessageKind::Request,
        (Some(_), None, false) => MessageKind::Notification,
        (None, Some(_), true) => MessageKind::Response,
        (Some(_), _, true) => return Err(invalid("a message cannot have both method and result/error", id)),
        (None, _, _) => return Err(invalid("missing method", id)),
    };
    let (mut name, mut uri, mut arguments, mut meta) = (None, None, None, None);
    if let Some(p) = params {
        for (key, value) in json::entries(p) {
            let dup = match key {
                "name" => name
                    .replace(
                        json::as_str(value)
                            .ok_or_else(|| invalid_params("params.name must be a string", id))?,
                    )
                    .is_some(),
                "uri" => uri
                    .replace(
                        json::as_str(value)
                            .ok_or_else(|| invalid_params("params.uri must be a string", id))?,
                    )
                    .is_some(),
                "arguments" => arguments.replace(value).is_some(),
                "_meta" => meta.replace(value).is_some(),
                _ => false,
            };
            if dup {
                return Err(invalid("duplicate key in params", id));
            }
        }
    }
    // Params are judged by the rules (arguments, a completion's `ref`, a task id) and acted on
    // by a backend: a repeated key anywhere in them would let the two read different values.
    if params.is_some_and(json::has_duplicate_key) {
        return Err(invalid_params(
            if arguments.is_some_and(json::has_duplicate_key) {
                "duplicate key in params.arguments"
            } else {
                "duplicate key in params"
            },
            id,
        ));
    }
    Ok(Envelope { kind, id, method: method.unwrap_or(""), params, name, uri, arguments, meta })
}

fn invalid_params<'a>(msg: &'static str, id: Option<Id<'a>>) -> Rejected<'a> {
    Rejected { error: Error::client(Kind::InvalidParams, msg), id }
}

/// Appends a JSON-RPC id exactly as its value was sent.
pub fn write_id(out: &mut Vec<u8>, id: &Id<'_>) {
    match id {
        Id::Str(s) => json::write_str(out, s),
        Id::Int(n) => json::write_i64(out, *n),
        Id::Uint(n) => crate::http::response::write_u64(out, *n),
        Id::Float(f) => json::write_f64(out, *f),
        Id::Raw(r) => out.extend_from_slice(r),
    }
}

/// Where the value of the top-level `"id"` member of the JSON object `body` (one the decoder
/// accepted) is: where the gateway writes its own id for a request it forwards on a session
/// other clients' requests share. Walks the top-level members only, skipping each value, so it
/// stops at the id (usually the first or second member). Every value is checked to end where a
/// member may (`,` or `}` next). `None` when no top-level member is written `"id"`: there is
/// none, or its name was written with escapes.
pub fn id_value(body: &[u8]) -> Option<(usize, usize)> {
    // How the SDKs write a request: one comparison finds the id.
    const COMMON: &[u8] = br#"{"jsonrpc":"2.0","id":"#;
    if body.starts_with(COMMON) {
        let end = value_end(body, COMMON.len())?;
        return matches!(body.get(skip_ws(body, end)), Some(b',' | b'}')).then_some((COMMON.len(), end));
    }
    let mut i = skip_ws(body, 0);
    (body.get(i) == Some(&b'{')).then_some(())?;
    i += 1;
    loop {
        i = skip_ws(body, i);
        (body.get(i) == Some(&b'"')).then_some(())?;
        let key_end = string_end(body, i)?;
        let is_id = &body[i..key_end] == b"\"id\"";
        i = skip_ws(body, key_end);
        (body.get(i) == Some(&b':')).then_some(())?;
        let start = skip_ws(body, i + 1);
        let end = value_end(body, start)?;
        i = skip_ws(body, end);
        match body.get(i) {
            Some(b',' | b'}') if is_id => return Some((start, end)),
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

fn skip_ws(b: &[u8], i: usize) -> usize {
    i + b
        .get(i..)
        .map_or(0, |rest| rest.iter().take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r')).count())
}

/// The end (exclusive) of the string whose opening quote is at `i` (a byte loop: the strings
/// walked here are member names and short values).
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2, // an escape and the byte it escapes
            _ => i += 1,
        }
    }
}

/// The end (exclusive) of the JSON value starting at `i`: a string, an object or array (to its
/// matching bracket, strings skipped), or a number or literal (its letters, digits, signs and
/// points).
fn value_end(b: &[u8], mut i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => return string_end(b, i),
        b'{' | b'[' => {}
        _ => {
            let scalar = |c: &&u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.');
            let n = b[i..].iter().take_while(scalar).count();
            return (n > 0).then_some(i + n);
        }
    }
    let mut depth = 0usize;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                i = string_end(b, i)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::json::Decoder;

    /// `body` with its id's value replaced by `id`, as `backends::wire::request` writes it.
    fn with_id(body: &[u8], id: &[u8], out: &mut Vec<u8>) -> bool {
        let Some((start, end)) = id_value(body) else { return false };
        out.extend_from_slice(&body[..start]);
        out.extend_from_slice(id);
        out.extend_from_slice(&body[end..]);
        true
    }

    #[test]
    fn the_top_level_id_is_replaced_and_nothing_else() {
        let cases = [
            (r#"{"jsonrpc":"2.0","id":11,"method":"m"}"#, r#"{"jsonrpc":"2.0","id":"g-1","method":"m"}"#),
            (r#"{"id":"a\"}","x":1}"#, r#"{"id":"g-1","x":1}"#),
            (
                r#" { "params" : {"id":5,"s":"\"id\":7"} , "id" : null } "#,
                r#" { "params" : {"id":5,"s":"\"id\":7"} , "id" : "g-1" } "#,
            ),
            (r#"{"a":[1,{"id":2}],"b":"x,}","id":-3.5e2}"#, r#"{"a":[1,{"id":2}],"b":"x,}","id":"g-1"}"#),
            (r#"{"id":{"n":[1,2]},"z":true}"#, r#"{"id":"g-1","z":true}"#),
        ];
        for (body, want) in cases {
            let mut out = b"<".to_vec();
            assert!(with_id(body.as_bytes(), br#""g-1""#, &mut out), "{body}");
            assert_eq!(String::from_utf8_lossy(&out[1..]), want, "{body}");
        }
        // No top-level id, or one whose name has escapes: nothing is written.
        for body in [
            r#"{"params":{"id":1}}"#,
            r#"{"\u0069d":1}"#,
            r#"{}"#,
            "[1]",
            r#"{"id""#,
            "{\"id\":-9\u{1}\\\"x,\"m\":1}",
            r#"{"id":1 2}"#,
        ] {
            let mut out = Vec::new();
            assert!(!with_id(body.as_bytes(), b"1", &mut out), "{body}");
            assert!(out.is_empty());
        }
    }

    fn check(body: &str, f: impl FnOnce(Result<Envelope<'_, '_>, Rejected<'_>>)) {
        Decoder::default().with_tape(body.as_bytes(), |t| f(decode(t))).unwrap();
    }

    #[test]
    fn repeated_keys_in_params_are_refused_at_any_depth() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"amount":5,"amount":5000}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":[{"x":{"k":1,"k":2}}]}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"a":10}}}"#,
        ] {
            check(body, |r| {
                let e = r.err().unwrap().error;
                assert_eq!(
                    (e.kind, &*e.message),
                    (Kind::InvalidParams, "duplicate key in params.arguments"),
                    "{body}"
                );
            });
        }
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a"},"ref":{"type":"ref/prompt","name":"b"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","name":"b"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"a","taskId":"b"}}"#,
        ] {
            check(body, |r| {
                let e = r.err().unwrap().error;
                assert_eq!((e.kind, &*e.message), (Kind::InvalidParams, "duplicate key in params"), "{body}");
            });
        }
        check(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":{"k":1},"b":{"k":2},"k":[{"k":3},{"k":4}]}}}"#,
            |r| assert!(r.is_ok(), "the same key in different objects is fine"),
        );
    }

    #[test]
    fn tools_call_fields() {
        check(
            r#"{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"name":"hello","arguments":{"who":"w"}}}"#,
            |r| {
                let e = r.unwrap();
                assert_eq!(e.kind, MessageKind::Request);
                assert_eq!(e.id, Some(Id::Str("a-1")));
                assert_eq!(e.method, "tools/call");
                assert_eq!(e.name, Some("hello"));
                assert_eq!(json::as_str(json::get(e.arguments.unwrap(), "who").unwrap()), Some("w"));
            },
        );
    }

    #[test]
    fn kinds() {
        check(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, |r| {
            assert_eq!(r.unwrap().kind, MessageKind::Notification)
        });
        check(r#"{"jsonrpc":"2.0","id":5,"result":{}}"#, |r| {
            assert_eq!(r.unwrap().kind, MessageKind::Response)
        });
        check(r#"{"jsonrpc":"2.0","id":-5,"method":"ping"}"#, |r| {
            assert_eq!(r.unwrap().id, Some(Id::Int(-5)))
        });
        check(r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"}"#, |r| {
            assert_eq!(r.unwrap().id, Some(Id::Uint(u64::MAX)))
        });
    }

    #[test]
    fn rejections() {
        for (body, code_kind, has_id) in [
            (r#"[]"#, Kind::InvalidRequest, false),
            (r#""x""#, Kind::InvalidRequest, false),
            (r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, Kind::InvalidRequest, false),
            (r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#, Kind::InvalidRequest, false),
            (r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, Kind::InvalidRequest, true),
            (r#"{"id":1,"method":"ping"}"#, Kind::InvalidRequest, true),
            (r#"{"jsonrpc":"2.0","id":1,"method":7}"#, Kind::InvalidRequest, true),
            (r#"{"jsonrpc":"2.0","id":1,"method":"a","params":3}"#, Kind::InvalidRequest, true),
            (r#"{"jsonrpc":"2.0","id":1}"#, Kind::InvalidRequest, true),
            (r#"{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}"#, Kind::InvalidRequest, false),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1}}"#,
                Kind::InvalidParams,
                true,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#,
                Kind::InvalidRequest,
                true,
            ),
        ] {
            check(body, |r| {
                let rej = r.expect_err(body);
                assert_eq!(rej.error.kind, code_kind, "{body}");
                assert_eq!(rej.id.is_some(), has_id, "{body}");
            });
        }
    }
}
