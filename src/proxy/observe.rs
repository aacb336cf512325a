//! What phase 8 needs: the [`Facts`] of one request (filled in by the phases as they run), the
//! access line written from them ([`write_access`]), the metric labels of a tool call
//! ([`tool_labels`]) and the W3C trace context passed on to backends ([`Trace`]). No I/O here:
//! the line is handed to `runtime::logging`, the figures to `core::Stats`.
//!
//! Access lines never carry tool arguments, request bodies, the query string (an API key may
//! travel there) or any credential header; every string from the request is escaped, so a line
//! stays one valid JSON object whatever the client sent.

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::Principal;
use crate::config::snapshot::{LogFormat, Server};
use crate::http::head::Head;
use crate::http::response::write_u64;
use crate::mcp::json;
use crate::proxy::stats::AuthEvent;

/// Where a JSON string of the request body was written: (offset, length) of its raw text
/// between the quotes, escapes as sent. Phase 8 reads it back from the body (still in the
/// connection's buffers), so naming the tool in the access line copies nothing and keeps every
/// connection's task small.
pub type BodySpan = (u32, u32);

/// Where bytes borrowed from the body (at address `base`) are in it: a raw id's JSON text.
pub fn raw_span(body: &[u8], base: usize, b: &[u8]) -> Option<BodySpan> {
    let start = (b.as_ptr() as usize).checked_sub(base)?;
    (start + b.len() <= body.len()).then_some((u32::try_from(start).ok()?, u32::try_from(b.len()).ok()?))
}

/// The [`BodySpan`] of `s`, a string decoded from a copy of `body` that starts at address `base`
/// (the decoder's buffer: simd-json leaves a string, unescaped in place, where it was written).
/// `None` when `s` does not lie in that copy.
pub fn body_span(body: &[u8], base: usize, s: &str) -> Option<BodySpan> {
    let start = (s.as_ptr() as usize).checked_sub(base)?;
    if start == 0 || start > body.len() || body.get(start - 1) != Some(&b'"') {
        return None;
    }
    let mut i = start;
    while i < body.len() {
        match body[i] {
            b'\\' => i += 2,
            b'"' => return Some((u32::try_from(start).ok()?, u32::try_from(i - start).ok()?)),
            _ => i += 1,
        }
    }
    None
}

/// The bytes of `span` in `body` (empty when there is none).
pub fn in_body(body: &[u8], span: Option<BodySpan>) -> &[u8] {
    span.and_then(|(start, len)| body.get(start as usize..start as usize + len as usize)).unwrap_or(&[])
}

/// What one request did, for the access line and the counters. `'s` is the snapshot the request
/// runs on: labels taken from the configuration are borrowed, never copied. Fields written while
/// the response is being assembled (behind shared borrows) are cells.
#[derive(Default)]
pub struct Facts<'s> {
    /// Who called, once authenticated.
    pub principal: Option<Principal>,
    /// What authentication did (cache hit or miss, failure reason).
    pub auth: AuthEvent,
    /// The backend the request went to (`*` for a fan-out; the server's name for its REST tools).
    pub backend: Option<&'s str>,
    /// The JSON-RPC method of a single message, in the body.
    pub rpc_method: Cell<Option<BodySpan>>,
    /// The tool a `tools/call` named, in the body (as written: escapes kept).
    pub tool: Cell<Option<BodySpan>>,
    /// The request's JSON-RPC id (for its trace span).
    pub rpc_id: Cell<Option<RpcId>>,
    /// The (backend, tool) metric labels of a `tools/call`.
    pub tool_labels: Cell<Option<(&'s str, &'s str)>>,
    /// The authorization decision: (allowed, deciding rule; `None` = `defaultAction`).
    pub decision: Cell<Option<(bool, Option<usize>)>>,
    /// The URI of a `resources/read` or `resources/subscribe`, the name of a `prompts/get`, in
    /// the body (as written).
    pub target: Cell<Option<BodySpan>>,
    /// SHA-256 of the canonical JSON of the judged arguments (audit trail only).
    pub args_sha256: Cell<Option<[u8; 32]>>,
    /// A rate limit refused the call.
    pub limited: Cell<bool>,
    /// Pinning refused the call (the tool's definition is not the approved one).
    pub pin_refused: Cell<bool>,
}

/// A JSON-RPC id as noted for the trace: an integer, or a string in the body.
#[derive(Clone, Copy, Debug)]
pub enum RpcId {
    /// An integer id.
    Int(i64),
    /// A string id, where it is in the body (as written).
    Str(BodySpan),
}

/// The metric labels of a call to the exposed tool `exposed` on `server`: (backend, tool), both
/// from the configuration so the label set stays bounded. The backend is the server's own name
/// for its local and REST tools (as in authorization targets). A tool is named when the
/// configuration names it - a local tool, a backend's `toolSelector.include` entry, or an
/// authorization target - and is `other` otherwise; a name no backend serves is `other/other`.
pub fn tool_labels<'s>(server: &'s Server, exposed: &str) -> (&'s str, &'s str) {
    if let Some((name, _)) = server.tool_index.get_key_value(exposed) {
        return (&server.name, name);
    }
    match crate::proxy::names::resolve(server, exposed) {
        Some((i, own)) => {
            let b = &server.backends[i];
            let named = b
                .selector
                .include
                .iter()
                .find(|t| ***t == *own)
                .map(|t| &**t)
                .or_else(|| server.policy.target_tool(&b.name, own));
            (&b.name, named.unwrap_or("other"))
        }
        None => ("other", "other"),
    }
}

/// Longest `tracestate` passed on (W3C Trace Context 3.3.1.5 asks for at least 512 characters).
const MAX_TRACESTATE: usize = 4096;

/// Whether `v` is a W3C `traceparent` this gateway passes on: version `00`, a 32-hex trace id
/// and a 16-hex parent id that are not all zeros, and 2 hex flags, in lower case (Trace Context
/// 3.2: `00-<trace-id>-<parent-id>-<flags>`, 55 characters).
pub fn valid_traceparent(v: &[u8]) -> bool {
    let hex = |s: &[u8]| s.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    let nonzero = |s: &[u8]| s.iter().any(|&b| b != b'0');
    v.len() == 55
        && v.starts_with(b"00-")
        && v[35] == b'-'
        && v[52] == b'-'
        && hex(&v[3..35])
        && hex(&v[36..52])
        && hex(&v[53..55])
        && nonzero(&v[3..35])
        && nonzero(&v[36..52])
}

/// Whether `v` is a `tracestate` value safe to pass on: visible ASCII, spaces and tabs, bounded.
fn valid_tracestate(v: &[u8]) -> bool {
    v.len() <= MAX_TRACESTATE && v.iter().all(|&b| (0x20..=0x7e).contains(&b) || b == b'\t')
}

/// Headers the gateway adds to every backend request (MCP and REST): `x-request-id` (the
/// request id the client sees too) and the client's W3C `traceparent`/`tracestate` when the
/// `traceparent` is valid. An invalid or repeated `traceparent` is dropped with its
/// `tracestate` (Trace Context 3.3: no `tracestate` without a valid parent); a `tracestate` sent
/// on several lines is dropped rather than combined (3.3.1.5 allows discarding it).
#[derive(Clone, Copy, Debug)]
pub struct Trace<'a> {
    pairs: [(&'static [u8], &'a [u8]); 3],
    len: usize,
}

/// Names of the headers [`Trace`] sets: never forwarded from the client as they are.
pub const TRACE_HEADERS: [&str; 3] = ["x-request-id", "traceparent", "tracestate"];

impl<'a> Trace<'a> {
    /// No trace headers (requests the gateway makes on its own, such as recording pins).
    pub fn none() -> Trace<'a> {
        Trace { pairs: [(b"", b""); 3], len: 0 }
    }

    /// The trace headers of the request `head` over `buf`, with request id `request_id`.
    pub fn of(head: &Head, buf: &'a [u8], request_id: &'a [u8]) -> Trace<'a> {
        let mut t = Trace { pairs: [(b"", b""); 3], len: 0 };
        if !request_id.is_empty() {
            t.push(b"x-request-id", request_id);
        }
        let parent = head
            .traceparent
            .map(|s| s.of(buf))
            .filter(|v| !head.traceparent_repeated && valid_traceparent(v));
        if let Some(p) = parent {
            t.push(b"traceparent", p);
            let state = head
                .tracestate
                .map(|s| s.of(buf))
                .filter(|v| !head.tracestate_repeated && !v.is_empty() && valid_tracestate(v));
            if let Some(state) = state {
                t.push(b"tracestate", state);
            }
        }
        t
    }

    fn push(&mut self, name: &'static [u8], value: &'a [u8]) {
        self.pairs[self.len] = (name, value);
        self.len += 1;
    }

    /// The headers, as (lower-case name, value).
    pub fn headers(&self) -> &[(&'static [u8], &'a [u8])] {
        &self.pairs[..self.len]
    }
}

/// How a rule is named in the access line.
#[derive(Clone, Copy, Debug)]
pub enum RuleName<'a> {
    /// No decision was taken.
    None,
    /// The server's `defaultAction` decided.
    Default,
    /// A rule with a `name`.
    Named(&'a str),
    /// An unnamed rule, by its index.
    Index(usize),
}

/// The fields of one access line.
#[derive(Clone, Copy, Debug)]
pub struct Access<'a> {
    /// Request id (also on the response and sent to backends).
    pub request_id: &'a [u8],
    /// Client address.
    pub peer: SocketAddr,
    /// HTTP method.
    pub http_method: &'a str,
    /// Request path, without the query.
    pub path: &'a [u8],
    /// Server name, `-` when none.
    pub server: &'a str,
    /// JSON-RPC method (or method class), `-` when none.
    pub method: &'a [u8],
    /// Tool of a `tools/call` as the request wrote it, `-` otherwise.
    pub tool: &'a [u8],
    /// Backend, `-` when none.
    pub backend: &'a str,
    /// Principal subject, `-` when anonymous or not authenticated.
    pub subject: &'a str,
    /// `allow`, `deny` or `-`.
    pub decision: &'a str,
    /// The deciding rule.
    pub rule: RuleName<'a>,
    /// HTTP status.
    pub status: u16,
    /// Complete head to response written, microseconds.
    pub duration_us: u64,
    /// Time waiting on backends, microseconds (0 without backends).
    pub backend_us: u64,
    /// Request bytes (head and body).
    pub bytes_in: u64,
    /// Response bytes written.
    pub bytes_out: u64,
}

/// Longest request path written to a line.
const MAX_PATH: usize = 512;

/// Appends `bytes` escaped as JSON string content, whatever they are: invalid UTF-8 becomes
/// U+FFFD, so the line stays valid JSON (and valid UTF-8).
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        json::write_escaped(out, chunk.valid());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
}

pub(crate) fn quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    escaped(out, bytes);
    out.push(b'"');
}

fn pad(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in (digits.len() - i)..width {
        out.push(b'0');
    }
    out.extend_from_slice(&digits[i..]);
}

/// Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u64, u64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe as i64 + era * 400 + i64::from(m <= 2), m, d)
}

/// Appends `t` as RFC 3339 UTC, with milliseconds when `millis`.
pub fn write_time(out: &mut Vec<u8>, t: SystemTime, millis: bool) {
    // The date and time to the second, formatted once per second per thread (every log line of
    // a second shares it).
    thread_local!(static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) });
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (cached, text) = SECOND.get();
    if cached == secs {
        out.extend_from_slice(&text);
    } else {
        let start = out.len();
        write_second(out, secs);
        if let Ok(text) = <[u8; 19]>::try_from(&out[start..]) {
            SECOND.set((secs, text));
        }
    }
    if millis {
        out.push(b'.');
        pad(out, u64::from(d.subsec_millis()), 3);
    }
    out.push(b'Z');
}

/// `YYYY-MM-DDTHH:MM:SS` of `secs` since the epoch.
fn write_second(out: &mut Vec<u8>, secs: u64) {
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    pad(out, y.max(0) as u64, 4);
    out.push(b'-');
    pad(out, m, 2);
    out.push(b'-');
    pad(out, day, 2);
    out.push(b'T');
    pad(out, rem / 3600, 2);
    out.push(b':');
    pad(out, rem / 60 % 60, 2);
    out.push(b':');
    pad(out, rem % 60, 2);
}

fn peer(out: &mut Vec<u8>, p: SocketAddr) {
    use std::io::Write;
    let _ = write!(out, "{p}");
}

pub(crate) fn rule(out: &mut Vec<u8>, r: RuleName<'_>, json: bool) {
    let q = |out: &mut Vec<u8>| {
        if json {
            out.push(b'"');
        }
    };
    q(out);
    match r {
        RuleName::None => out.push(b'-'),
        RuleName::Default => out.extend_from_slice(b"default"),
        RuleName::Named(n) => escaped(out, n.as_bytes()),
        RuleName::Index(i) => write_u64(out, i as u64),
    }
    q(out);
}

fn or_dash(s: &[u8]) -> &[u8] {
    if s.is_empty() {
        b"-"
    } else {
        s
    }
}

/// Appends the access line for `a` (ending in a newline) in `format`, timestamped `now`.
pub fn write_access(out: &mut Vec<u8>, format: LogFormat, a: &Access<'_>, now: SystemTime) {
    let path = &a.path[..a.path.len().min(MAX_PATH)];
    match format {
        LogFormat::Json => {
            out.extend_from_slice(b"{\"ts\":\"");
            write_time(out, now, true);
            out.extend_from_slice(b"\",\"level\":\"INFO\",\"target\":\"access\",\"request_id\":");
            quoted(out, or_dash(a.request_id));
            out.extend_from_slice(b",\"peer\":\"");
            peer(out, a.peer);
            out.extend_from_slice(b"\",\"subject\":");
            quoted(out, or_dash(a.subject.as_bytes()));
            out.extend_from_slice(b",\"server\":");
            quoted(out, or_dash(a.server.as_bytes()));
            out.extend_from_slice(b",\"http_method\":");
            quoted(out, a.http_method.as_bytes());
            out.extend_from_slice(b",\"path\":");
            quoted(out, or_dash(path));
            out.extend_from_slice(b",\"method\":");
            quoted(out, or_dash(a.method));
            out.extend_from_slice(b",\"tool\":");
            quoted(out, or_dash(a.tool));
            out.extend_from_slice(b",\"backend\":");
            quoted(out, or_dash(a.backend.as_bytes()));
            out.extend_from_slice(b",\"decision\":");
            quoted(out, a.decision.as_bytes());
            out.extend_from_slice(b",\"rule\":");
            rule(out, a.rule, true);
            out.extend_from_slice(b",\"status\":");
            write_u64(out, u64::from(a.status));
            out.extend_from_slice(b",\"duration_us\":");
            write_u64(out, a.duration_us);
            out.extend_from_slice(b",\"backend_us\":");
            write_u64(out, a.backend_us);
            out.extend_from_slice(b",\"bytes_in\":");
            write_u64(out, a.bytes_in);
            out.extend_from_slice(b",\"bytes_out\":");
            write_u64(out, a.bytes_out);
            out.extend_from_slice(b"}\n");
        }
        LogFormat::Text => {
            // The header env_logger writes for other records: `[time LEVEL target] `.
            out.push(b'[');
            write_time(out, now, false);
            out.extend_from_slice(b" INFO  access] ");
            escaped(out, or_dash(a.request_id));
            out.push(b' ');
            peer(out, a.peer);
            out.push(b' ');
            out.extend_from_slice(a.http_method.as_bytes());
            out.push(b' ');
            escaped(out, or_dash(path));
            out.push(b' ');
            write_u64(out, u64::from(a.status));
            let kv = |out: &mut Vec<u8>, k: &[u8], v: &[u8]| {
                out.push(b' ');
                out.extend_from_slice(k);
                out.push(b'=');
                escaped(out, or_dash(v));
            };
            kv(out, b"server", a.server.as_bytes());
            kv(out, b"mcp", a.method);
            out.push(b' ');
            write_u64(out, a.duration_us);
            out.extend_from_slice(b"us");
            kv(out, b"tool", a.tool);
            kv(out, b"backend", a.backend.as_bytes());
            out.extend_from_slice(b" backend_us=");
            write_u64(out, a.backend_us);
            kv(out, b"subject", a.subject.as_bytes());
            kv(out, b"decision", a.decision.as_bytes());
            out.extend_from_slice(b" rule=");
            rule(out, a.rule, false);
            out.extend_from_slice(b" in=");
            write_u64(out, a.bytes_in);
            out.extend_from_slice(b" out=");
            write_u64(out, a.bytes_out);
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    fn access<'a>() -> Access<'a> {
        Access {
            request_id: b"r\"1\\",
            peer: "127.0.0.1:5000".parse().unwrap(),
            http_method: "POST",
            path: b"/mcp/\xff\n",
            server: "s",
            method: b"tools/call",
            tool: "t\u{0}\"\n\u{2028}".as_bytes(),
            backend: "b1",
            subject: "al\"ice\r\n{",
            decision: "allow",
            rule: RuleName::Named("r\"x"),
            status: 200,
            duration_us: 1234,
            backend_us: 1000,
            bytes_in: 300,
            bytes_out: 200,
        }
    }

    #[test]
    fn json_line_is_valid_json_with_hostile_fields() {
        let mut out = Vec::new();
        write_access(
            &mut out,
            LogFormat::Json,
            &access(),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        );
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["ts"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["request_id"], "r\"1\\");
        assert_eq!(v["path"], "/mcp/\u{fffd}\n");
        assert_eq!(v["tool"], "t\u{0}\"\n\u{2028}");
        assert_eq!(v["subject"], "al\"ice\r\n{");
        assert_eq!(v["rule"], "r\"x");
        assert_eq!(v["status"], 200);
        assert_eq!(v["duration_us"], 1234);
        assert_eq!(v["backend_us"], 1000);
        assert_eq!(v["bytes_in"], 300);
        assert_eq!(v["bytes_out"], 200);
    }

    #[test]
    fn text_line_is_one_line() {
        let mut out = Vec::new();
        let a = Access { rule: RuleName::Index(3), ..access() };
        write_access(&mut out, LogFormat::Text, &a, UNIX_EPOCH);
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.starts_with("[1970-01-01T00:00:00Z INFO  access] r\\\"1\\\\ 127.0.0.1:5000 POST "),
            "{line}"
        );
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(line.contains(" rule=3 "), "{line}");
        assert!(line.contains(" 1234us "), "{line}");
    }

    #[test]
    fn dates() {
        let mut out = Vec::new();
        // 2000-02-29 (leap day) 12:34:56.
        write_time(&mut out, UNIX_EPOCH + Duration::from_secs(951_827_696), true);
        assert_eq!(out, b"2000-02-29T12:34:56.000Z");
        out.clear();
        write_time(&mut out, UNIX_EPOCH + Duration::from_secs(4_102_444_799), false);
        assert_eq!(out, b"2099-12-31T23:59:59Z");
    }

    #[test]
    fn traceparent_format() {
        let ok = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(valid_traceparent(ok));
        for bad in [
            &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"[..],
            b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
        ] {
            assert!(!valid_traceparent(bad), "{}", String::from_utf8_lossy(bad));
        }
        assert!(valid_tracestate(b"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"));
        assert!(!valid_tracestate(b"a=b\r\nx-injected: 1"));
    }

    #[test]
    fn body_spans_find_names_as_written() {
        let body = br#"{"method":"tools/call","params":{"name":"a\"b","x":"\u00e9"}}"#;
        // The decoder's copy, with strings unescaped in place (as simd-json leaves them).
        let mut copy = body.to_vec();
        let at = |needle: &[u8]| body.windows(needle.len()).position(|w| w == needle).unwrap();
        let (m, n) = (at(b"tools/call"), at(br#"a\"b"#));
        copy[n..n + 3].copy_from_slice(b"a\"b");
        let base = copy.as_ptr() as usize;
        let method = std::str::from_utf8(&copy[m..m + 10]).unwrap();
        let name = std::str::from_utf8(&copy[n..n + 3]).unwrap();
        assert_eq!(in_body(body, body_span(body, base, method)), b"tools/call");
        assert_eq!(in_body(body, body_span(body, base, name)), br#"a\"b"#);
        assert_eq!(body_span(body, base, "elsewhere"), None);
        assert_eq!(in_body(body, None), b"");
    }
}
