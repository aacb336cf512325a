//! Response heads, written straight into the connection's reused output buffer. Every response
//! carries `Content-Length` (or is an SSE/chunked stream written by the caller), `Date`, and the
//! headers the MCP transport and CORS need.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// `application/json`
pub const JSON: &str = "application/json";
/// `text/event-stream`
pub const SSE: &str = "text/event-stream";

/// Optional headers of one response.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extra<'a> {
    /// `Mcp-Session-Id` to hand out (initialize only).
    pub session_id: Option<&'a str>,
    /// `Allow`, on 405 and OPTIONS.
    pub allow: Option<&'static str>,
    /// The request's `Origin`, echoed in `Access-Control-Allow-Origin` when it is allowed.
    pub cors_origin: Option<&'a [u8]>,
    /// `X-Request-Id`.
    pub request_id: Option<&'a [u8]>,
    /// `WWW-Authenticate` challenge.
    pub www_authenticate: Option<&'a str>,
    /// `Access-Control-Allow-Origin: *` (public documents such as the resource metadata).
    pub cors_any: bool,
    /// `Retry-After`, seconds (429).
    pub retry_after: Option<u64>,
}

/// Headers a browser MCP client may send and must be able to read.
pub const CORS_ALLOW_HEADERS: &str = "authorization, content-type, accept, mcp-session-id, \
mcp-protocol-version, mcp-method, mcp-name, last-event-id, x-request-id";
/// Response headers exposed to browser clients.
pub const CORS_EXPOSE_HEADERS: &str =
    "mcp-session-id, mcp-protocol-version, www-authenticate, x-request-id, retry-after";

/// Standard reason phrase for the statuses the gateway sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// `HTTP/1.1 <status> <reason>` and the `Date` line.
fn status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    write_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\ndate: ");
    with_date(|d| out.extend_from_slice(d));
    out.extend_from_slice(b"\r\n");
}

/// Writes a response head. `content_length` is omitted for 1xx/204/304 (RFC 9110 8.6).
pub fn write_head(
    out: &mut Vec<u8>,
    status: u16,
    content_type: Option<&str>,
    content_length: usize,
    keep_alive: bool,
    extra: &Extra<'_>,
) {
    status_line(out, status);
    if let Some(ct) = content_type {
        out.extend_from_slice(b"content-type: ");
        out.extend_from_slice(ct.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !matches!(status, 100..=199 | 204 | 304) {
        out.extend_from_slice(b"content-length: ");
        write_u64(out, content_length as u64);
        out.extend_from_slice(b"\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    write_extra(out, extra);
    out.extend_from_slice(b"\r\n");
}

/// Writes the head of a response whose body follows as it is produced (chunked transfer
/// coding): an SSE stream relayed from a backend.
pub fn write_stream_head(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    keep_alive: bool,
    extra: &Extra<'_>,
) {
    status_line(out, status);
    out.extend_from_slice(b"content-type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n");
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    write_extra(out, extra);
    out.extend_from_slice(b"\r\n");
}

fn write_extra(out: &mut Vec<u8>, extra: &Extra<'_>) {
    let mut line = |name: &[u8], value: &[u8]| {
        out.extend_from_slice(name);
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    if let Some(s) = extra.session_id {
        line(b"mcp-session-id: ", s.as_bytes());
    }
    if let Some(a) = extra.allow {
        line(b"allow: ", a.as_bytes());
    }
    if let Some(o) = extra.cors_origin {
        line(b"access-control-allow-origin: ", o);
        line(b"access-control-expose-headers: ", CORS_EXPOSE_HEADERS.as_bytes());
        line(b"vary: ", b"Origin");
    }
    if extra.cors_any {
        line(b"access-control-allow-origin: ", b"*");
    }
    if let Some(r) = extra.request_id {
        line(b"x-request-id: ", r);
    }
    if let Some(w) = extra.www_authenticate {
        line(b"www-authenticate: ", w.as_bytes());
    }
    if let Some(s) = extra.retry_after {
        out.extend_from_slice(b"retry-after: ");
        write_u64(out, s);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends a decimal integer without allocating.
pub fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

thread_local! {
    /// Per-core cache of the IMF-fixdate, refreshed at most once a second.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0u8; 29])) };
}

/// Calls `f` with the current `Date` value (RFC 9110 6.6.1: an origin server with a clock MUST
/// send it). Formatting happens once per second per core, not per response.
pub fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    DATE.with(|cell| {
        let mut c = cell.borrow_mut();
        if c.0 != secs {
            let s = httpdate::fmt_http_date(now);
            let bytes = s.as_bytes();
            let n = bytes.len().min(29);
            c.1[..n].copy_from_slice(&bytes[..n]);
            c.0 = secs;
        }
        f(&c.1)
    })
}
