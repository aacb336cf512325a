//! Phase 8's audit line (`audit.file`): one JSON object per authorization decision of
//! `tools/call`, `resources/read`, `resources/subscribe` and `prompts/get`, and per refused
//! request of any other kind (401, 403, 429). It names who, what and the verdict - never an
//! argument, a result, a token or a credential: the arguments appear only as the SHA-256 of
//! their canonical JSON (keys sorted, no spaces), which lets an investigator check a claimed call
//! without the trail holding its content.

use std::sync::LazyLock;

use memchr::memmem::Finder;
use simd_json::{Node, StaticNode};

use crate::auth::{Principal, PrincipalKind};
use crate::http::response::write_u64;
use crate::mcp::json::{self, Decoder};
use crate::proxy::observe::{quoted, rule, write_time, RuleName};

/// How the request ended, as the trail says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A result (not `isError`), or an accepted message.
    Ok,
    /// A `tools/call` result with `isError: true`.
    IsError,
    /// A JSON-RPC error with this code.
    Error(i64),
    /// Refused by a rate limit.
    RateLimited,
    /// Refused by pinning.
    PinMismatch,
    /// No JSON-RPC answer to read (a stream, an HTTP error without one): its status.
    Http(u16),
}

// Searchers built once: constructing one costs more than searching a small answer.
static HEAD_END: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\r\n\r\n"));
static ERROR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"error\""));
/// The tail shared by `"error"` and `"isError"`: one search finds both.
static RROR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"rror\""));

/// Whether a JSON answer may be an error: it has the bytes `"error"`, or `"isError"` followed
/// by `: true` (with any JSON whitespace). Outside JSON strings, where quotes are escaped, these
/// are the only ways to write a member named `error` or an `isError` set to true; inside them
/// they are false alarms that a parse settles. Without either, the answer is a plain result.
fn may_be_error(body: &[u8]) -> bool {
    RROR.find_iter(body).any(|i| {
        let before = &body[..i];
        if before.ends_with(b"\"e") {
            return true;
        }
        let after = body.get(i + 5..).unwrap_or_default().trim_ascii_start();
        before.ends_with(b"\"isE")
            && after.strip_prefix(b":").is_some_and(|v| v.trim_ascii_start().starts_with(b"true"))
    })
}

/// The body of the response in `out` (head and body as written).
fn body_of(out: &[u8]) -> &[u8] {
    HEAD_END.find(out).map_or(&[][..], |i| &out[i + 4..])
}

/// The integer `error.code` of a JSON-RPC answer's tape.
fn error_code_of(tape: &[Node<'_>]) -> Option<Option<i64>> {
    let code = json::get(tape, "error").and_then(|e| json::get(e, "code"))?;
    Some(match code.first() {
        Some(Node::Static(StaticNode::I64(c))) => Some(*c),
        Some(Node::Static(StaticNode::U64(c))) => Some(*c as i64),
        _ => None,
    })
}

impl Outcome {
    /// Reads the response in `out` (head and body as written, before phase 7 sends it).
    pub(crate) fn of_response(decoder: &mut Decoder, out: &[u8], status: u16) -> Outcome {
        let body = body_of(out);
        if !may_be_error(body) {
            return if (200..300).contains(&status) { Outcome::Ok } else { Outcome::Http(status) };
        }
        let read = decoder.with_tape(body, |tape| {
            if let Some(code) = error_code_of(tape) {
                return code.map(Outcome::Error);
            }
            let result = json::get(tape, "result")?;
            let is_error = json::get(result, "isError");
            Some(match is_error.and_then(|v| v.first()) {
                Some(Node::Static(StaticNode::Bool(true))) => Outcome::IsError,
                _ => Outcome::Ok,
            })
        });
        match read {
            Ok(Some(o)) => o,
            _ if (200..300).contains(&status) => Outcome::Ok,
            _ => Outcome::Http(status),
        }
    }

    /// The JSON-RPC error code of the answer in `out`, when it is an error (what a trace span
    /// records; cheaper than [`Outcome::of_response`]: one search, a parse only for an error).
    pub(crate) fn error_code(decoder: &mut Decoder, out: &[u8]) -> Option<i64> {
        let body = body_of(out);
        ERROR.find(body)?;
        decoder.with_tape(body, |tape| error_code_of(tape).flatten()).ok().flatten()
    }

    fn write(self, out: &mut Vec<u8>) {
        match self {
            Outcome::Ok => out.extend_from_slice(b"\"ok\""),
            Outcome::IsError => out.extend_from_slice(b"\"isError\""),
            Outcome::RateLimited => out.extend_from_slice(b"\"rate_limited\""),
            Outcome::PinMismatch => out.extend_from_slice(b"\"pin_mismatch\""),
            Outcome::Error(code) => {
                out.extend_from_slice(b"\"error:");
                if code < 0 {
                    out.push(b'-');
                }
                write_u64(out, code.unsigned_abs());
                out.push(b'"');
            }
            Outcome::Http(status) => {
                out.extend_from_slice(b"\"http:");
                write_u64(out, u64::from(status));
                out.push(b'"');
            }
        }
    }
}

/// The fields of one audit line.
pub(crate) struct Line<'a> {
    pub(crate) request_id: &'a [u8],
    pub(crate) principal: Option<&'a Principal>,
    pub(crate) server: &'a str,
    pub(crate) backend: Option<&'a str>,
    /// The JSON-RPC method as written in the body (empty when there was none).
    pub(crate) method: &'a [u8],
    /// `("tool" | "uri" | "prompt", as written in the body)`.
    pub(crate) target: Option<(&'static str, &'a [u8])>,
    /// `Some((allowed, rule))` when the rules decided.
    pub(crate) decision: Option<(bool, RuleName<'a>)>,
    pub(crate) args_sha256: Option<[u8; 32]>,
    pub(crate) outcome: Outcome,
    /// The HTTP status of the answer.
    pub(crate) status: u16,
    pub(crate) duration_us: u64,
}

fn mode(kind: PrincipalKind) -> &'static [u8] {
    match kind {
        PrincipalKind::Anonymous => b"anonymous",
        PrincipalKind::Jwt => b"jwt",
        PrincipalKind::ApiKey => b"apiKey",
        PrincipalKind::Basic => b"basic",
        PrincipalKind::Proxy => b"proxy",
        PrincipalKind::Mtls => b"mtls",
    }
}

/// Appends `l` as one JSON line.
pub(crate) fn write(out: &mut Vec<u8>, l: &Line<'_>, now: std::time::SystemTime) {
    out.extend_from_slice(b"{\"ts\":\"");
    write_time(out, now, true);
    out.extend_from_slice(b"\",\"request_id\":");
    quoted(out, l.request_id);
    out.extend_from_slice(b",\"principal\":");
    match l.principal {
        Some(p) => json::write_str(out, p.subject()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"mode\":");
    match l.principal {
        Some(p) => {
            out.push(b'"');
            out.extend_from_slice(mode(p.kind));
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"server\":");
    json::write_str(out, l.server);
    out.extend_from_slice(b",\"backend\":");
    match l.backend {
        Some(b) => json::write_str(out, b),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"method\":");
    match l.method {
        [] => out.extend_from_slice(b"null"),
        m => raw_string(out, m),
    }
    if let Some((key, value)) = l.target {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        raw_string(out, value);
    }
    out.extend_from_slice(b",\"decision\":");
    match l.decision {
        Some((allowed, r)) => {
            out.extend_from_slice(if allowed { b"\"allow\",\"rule\":" } else { b"\"deny\",\"rule\":" });
            rule(out, r, true);
        }
        None => out.extend_from_slice(b"\"deny\",\"rule\":null"),
    }
    out.extend_from_slice(b",\"args_sha256\":");
    match l.args_sha256 {
        Some(d) => {
            let mut hex = [b'"'; 66];
            for (i, b) in d.iter().enumerate() {
                hex[1 + 2 * i] = HEX[(b >> 4) as usize];
                hex[2 + 2 * i] = HEX[(b & 15) as usize];
            }
            out.extend_from_slice(&hex);
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"outcome\":");
    l.outcome.write(out);
    out.extend_from_slice(b",\"status\":");
    write_u64(out, u64::from(l.status));
    out.extend_from_slice(b",\"duration_us\":");
    write_u64(out, l.duration_us);
    out.extend_from_slice(b"}\n");
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A JSON string's content as it was written in a request body (escapes kept: the decoder
/// accepted it, so it is valid string content), quoted.
fn raw_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(s);
    out.push(b'"');
}

/// SHA-256 of the canonical JSON of `args` (absent: `{}`): objects with their keys sorted by
/// their UTF-8 bytes, no insignificant whitespace, strings escaped as `mcp::json` writes them,
/// numbers as the tape holds them.
pub(crate) fn args_sha256(args: Option<&[Node<'_>]>, scratch: &mut Vec<u8>) -> [u8; 32] {
    scratch.clear();
    match args {
        Some(v) => canonical(scratch, v, 0),
        None => scratch.extend_from_slice(b"{}"),
    }
    let d = ring::digest::digest(&ring::digest::SHA256, scratch);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Deepest nesting sorted; deeper values are written in their own order (still deterministic
/// for the same input, and no recursion deeper than this).
const MAX_CANONICAL_DEPTH: usize = 64;

fn canonical(out: &mut Vec<u8>, v: &[Node<'_>], depth: usize) {
    match v.first() {
        Some(Node::Object { len, .. }) if depth < MAX_CANONICAL_DEPTH => {
            // Objects of up to 16 members (arguments, nearly always) are sorted on the stack.
            let mut small: [(&str, &[Node<'_>]); 16] = [("", &[]); 16];
            let mut large: Vec<(&str, &[Node<'_>])> = Vec::new();
            let members: &mut [(&str, &[Node<'_>])] = if *len <= small.len() {
                let mut n = 0;
                for (slot, m) in small.iter_mut().zip(json::entries(v)) {
                    *slot = m;
                    n += 1;
                }
                &mut small[..n]
            } else {
                large.extend(json::entries(v));
                &mut large
            };
            members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, &(k, val)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::write_str(out, k);
                out.push(b':');
                canonical(out, val, depth + 1);
            }
            out.push(b'}');
        }
        Some(Node::Array { .. }) if depth < MAX_CANONICAL_DEPTH => {
            out.push(b'[');
            for (i, e) in json::elements(v).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(out, e, depth + 1);
            }
            out.push(b']');
        }
        _ => json::write_value(out, v),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn digest_of(text: &str) -> [u8; 32] {
        Decoder::default().with_tape(text.as_bytes(), |t| args_sha256(Some(t), &mut Vec::new())).unwrap()
    }

    #[test]
    fn canonical_arguments_ignore_order_and_spacing() {
        let a = digest_of(r#"{"b":[1,{"y":2,"x":"é"}],"a":true}"#);
        let b = digest_of(r#"{ "a" : true, "b" : [ 1, { "x" : "\u00e9", "y" : 2 } ] }"#);
        assert_eq!(a, b);
        assert_ne!(a, digest_of(r#"{"a":true,"b":[{"x":"é","y":2},1]}"#), "array order matters");
        let mut s = Vec::new();
        Decoder::default()
            .with_tape(br#"{"b":1,"a":{"d":null,"c":"q\"t"}}"#, |t| canonical(&mut s, t, 0))
            .unwrap();
        assert_eq!(String::from_utf8(s).unwrap(), r#"{"a":{"c":"q\"t","d":null},"b":1}"#);
        assert_eq!(args_sha256(None, &mut Vec::new()), digest_of("{}"));
    }

    #[test]
    fn outcomes_are_read_from_the_answer() {
        let mut d = Decoder::default();
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n";
        let of = |d: &mut Decoder, body: &str, status| {
            Outcome::of_response(d, format!("{head}{body}").as_bytes(), status)
        };
        assert_eq!(
            of(&mut d, r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}"#, 200),
            Outcome::IsError
        );
        assert_eq!(
            of(&mut d, r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"text":"\"isError\":true"}]}}"#, 200),
            Outcome::Ok
        );
        // As Python's json.dumps and pretty printers write it.
        assert_eq!(
            of(
                &mut d,
                "{\"jsonrpc\": \"2.0\", \"id\": 1, \"result\": {\"content\": [], \"isError\" :\n true}}",
                200
            ),
            Outcome::IsError
        );
        assert_eq!(of(&mut d, r#"{"jsonrpc":"2.0","id":1,"result":{"isError": false}}"#, 200), Outcome::Ok);
        assert!(!may_be_error(br#"{"result":{"isError":false,"content":[{"text":"no rror\" here"}]}}"#));
        assert!(may_be_error(br#"{"error": {"code": 1}}"#));
        assert_eq!(
            of(&mut d, r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"x"}}"#, 200),
            Outcome::Error(-32602)
        );
        assert_eq!(of(&mut d, "event: message\ndata: {}\n\n", 200), Outcome::Ok);
        assert_eq!(of(&mut d, "", 502), Outcome::Http(502));
        let code = |d: &mut Decoder, body: &str| Outcome::error_code(d, format!("{head}{body}").as_bytes());
        assert_eq!(
            code(&mut d, r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"x"}}"#),
            Some(-32602)
        );
        assert_eq!(
            code(&mut d, r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"text":"\"error\""}]}}"#),
            None
        );
        assert_eq!(code(&mut d, r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), None);
        let mut line = Vec::new();
        Outcome::Error(-32029).write(&mut line);
        assert_eq!(line, br#""error:-32029""#);
    }
}
