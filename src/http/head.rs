//! Request heads. `httparse` tokenises the head over the connection's read buffer; this module
//! then applies the RFC 9112 rules httparse leaves to the caller (Host, Content-Length and
//! Transfer-Encoding semantics, Expect, persistence) and records every header as a [`Span`] into
//! the buffer, so nothing is copied. Headers the pipeline decides on are picked out once here
//! so later phases do not rescan the list.

use std::mem::MaybeUninit;

use crate::error::{Error, Kind};
use crate::http::Limits;

/// Hard ceiling on `limits.maxHeaders`: the parser's header slots live on the stack.
pub const MAX_HEADERS_CAP: usize = 512;

/// A byte range of the connection's read buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// The bytes this span covers in `buf` (empty if the span does not fit, never a panic).
    #[inline]
    pub fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start as usize..self.end as usize).unwrap_or(&[])
    }

    fn within(buf: &[u8], part: &[u8]) -> Span {
        // `part` is a sub-slice of `buf` handed back by httparse.
        let start = part.as_ptr() as usize - buf.as_ptr() as usize;
        Span { start: start as u32, end: (start + part.len()) as u32 }
    }

    /// Whether the span is empty.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Request methods the gateway distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
    /// PATCH
    Patch,
    /// Anything else (answered 405 or 404).
    Other,
}

impl Method {
    fn parse(m: &str) -> Method {
        match m {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "HEAD" => Method::Head,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }

    /// The method's name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Other => "OTHER",
        }
    }
}

/// How the request body is delimited (RFC 9112 section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// A parsed request head: spans into the read buffer plus the decisions RFC 9112 asks for.
/// One `Head` lives per connection and is refilled for every request.
#[derive(Debug)]
pub struct Head {
    /// Request method.
    pub method: Method,
    /// The path part of the request target (before `?`).
    pub path: Span,
    /// The query (after `?`, without it); empty when absent.
    pub query: Span,
    /// HTTP minor version (0 or 1).
    pub minor_version: u8,
    /// Length of the head in bytes, final CRLFCRLF included.
    pub len: usize,
    /// Body framing.
    pub framing: Framing,
    /// Whether the connection may stay open after this exchange.
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// The Host header (empty for HTTP/1.0 without one).
    pub host: Span,
    /// `Accept` (the first field line).
    pub accept: Option<Span>,
    /// More than one `Accept` line was sent (a list header: the lines form one list).
    pub accept_repeated: bool,
    /// `Content-Type`.
    pub content_type: Option<Span>,
    /// `Origin`.
    pub origin: Option<Span>,
    /// `Mcp-Session-Id`.
    pub session_id: Option<Span>,
    /// `MCP-Protocol-Version`.
    pub protocol_version: Option<Span>,
    /// `Mcp-Method` (2026-07-28).
    pub mcp_method: Option<Span>,
    /// `Mcp-Name` (2026-07-28).
    pub mcp_name: Option<Span>,
    /// `Authorization`.
    pub authorization: Option<Span>,
    /// `Last-Event-ID`.
    pub last_event_id: Option<Span>,
    /// `X-Request-Id`, reused as the access-log request id when sane.
    pub request_id: Option<Span>,
    /// `x-envoy-allow-mcp-tools` (Higress/Envoy: a per-request tool allow-list).
    pub allow_tools: Option<Span>,
    /// W3C `traceparent` (the first one).
    pub traceparent: Option<Span>,
    /// W3C `tracestate` (the first one).
    pub tracestate: Option<Span>,
    /// `traceparent` came more than once (invalid: the trace context is dropped).
    pub traceparent_repeated: bool,
    /// `tracestate` came on several lines (not combined: it is dropped).
    pub tracestate_repeated: bool,
    /// Every header as (name, value) spans, in order.
    pub headers: Vec<(Span, Span)>,
}

impl Default for Head {
    fn default() -> Self {
        Head {
            method: Method::Other,
            path: Span::default(),
            query: Span::default(),
            minor_version: 1,
            len: 0,
            framing: Framing::None,
            keep_alive: false,
            expect_continue: false,
            host: Span::default(),
            accept: None,
            accept_repeated: false,
            content_type: None,
            origin: None,
            session_id: None,
            protocol_version: None,
            mcp_method: None,
            mcp_name: None,
            authorization: None,
            last_event_id: None,
            request_id: None,
            allow_tools: None,
            traceparent: None,
            tracestate: None,
            traceparent_repeated: false,
            tracestate_repeated: false,
            headers: Vec::with_capacity(32),
        }
    }
}

impl Head {
    fn reset(&mut self) {
        self.len = 0;
        self.framing = Framing::None;
        self.keep_alive = false;
        self.expect_continue = false;
        self.host = Span::default();
        self.accept = None;
        self.accept_repeated = false;
        self.content_type = None;
        self.origin = None;
        self.session_id = None;
        self.protocol_version = None;
        self.mcp_method = None;
        self.mcp_name = None;
        self.authorization = None;
        self.last_event_id = None;
        self.request_id = None;
        self.allow_tools = None;
        self.traceparent = None;
        self.tracestate = None;
        self.traceparent_repeated = false;
        self.tracestate_repeated = false;
        self.headers.clear();
    }

    /// The value of the first header called `name` (ASCII case-insensitive).
    pub fn header<'a>(&self, buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.of(buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.of(buf))
    }
}

/// Result of feeding bytes to [`parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A full head was parsed; `Head` is filled.
    Complete,
    /// More bytes are needed.
    Partial,
}

fn bad(msg: &'static str) -> Error {
    Error::client(Kind::BadRequest, msg)
}

/// Parses the request head at the start of `buf` into `head`.
///
/// Runs every time bytes arrive while a head is incomplete. `Partial` means read more (the caller
/// enforces the head timeout); an error means answer it and close, because the framing of
/// anything after it can no longer be trusted.
pub fn parse(buf: &[u8], limits: &Limits, head: &mut Head) -> Result<Parsed, Error> {
    // Forget the previous request first: nothing of it may survive a failed or partial parse.
    head.reset();
    let max_headers = limits.max_headers.min(MAX_HEADERS_CAP);
    let mut slots: [MaybeUninit<httparse::Header<'_>>; MAX_HEADERS_CAP] =
        [const { MaybeUninit::uninit() }; MAX_HEADERS_CAP];
    let mut req = httparse::Request::new(&mut []);
    let status = match req.parse_with_uninit_headers(buf, &mut slots[..max_headers]) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Error::client(Kind::HeadTooLarge, "too many header fields"))
        }
        Err(e) => return Err(bad(httparse_message(e))),
    };
    let len = match status {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => {
            if buf.len() >= limits.max_header_bytes {
                return Err(Error::client(Kind::HeadTooLarge, "request head too large"));
            }
            return Ok(Parsed::Partial);
        }
    };
    if len > limits.max_header_bytes {
        return Err(Error::client(Kind::HeadTooLarge, "request head too large"));
    }
    // RFC 9112 2.2: a bare CR MUST be rejected. httparse does: CR is not a token, URI or
    // field-value byte, and a line may end only in LF or CRLF (pinned by the tests table).

    let method = Method::parse(req.method.unwrap_or(""));
    let mut target = req.path.unwrap_or("");
    let minor = req.version.unwrap_or(1);
    // RFC 9112 3.2.2: absolute-form (`http://host/path`), which a server must accept; the
    // target's authority is then the host (3.2.3), whatever the Host field says.
    let mut authority = None;
    if let Some((auth, rest)) = absolute_form(target) {
        if auth.is_empty() || auth.contains('@') || !valid_host(auth.as_bytes()) {
            return Err(bad("absolute-form request target with an invalid authority"));
        }
        authority = Some(Span::within(buf, auth.as_bytes()));
        target = rest;
    }
    let origin_form = target.starts_with('/') || (authority.is_some() && target.is_empty());
    if !(origin_form || (target == "*" && method == Method::Options && authority.is_none())) {
        return Err(bad("request target must be an absolute path or an absolute URI"));
    }
    let target_span = Span::within(buf, target.as_bytes());
    let (path, query) = match target.find('?') {
        Some(q) => (
            Span { start: target_span.start, end: target_span.start + q as u32 },
            Span { start: target_span.start + q as u32 + 1, end: target_span.end },
        ),
        None => (target_span, Span { start: target_span.end, end: target_span.end }),
    };

    head.method = method;
    head.path = path;
    head.query = query;
    head.minor_version = minor;
    head.len = len;

    let mut hosts = 0u32;
    let mut content_length: Option<u64> = None;
    let mut te_seen = false;
    let mut te_chunked_last = false;
    let mut te_other = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;

    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        // httparse already skips the OWS after the colon and trims trailing whitespace.
        let value = h.value;
        let ns = Span::within(buf, name);
        let vs =
            if value.is_empty() { Span { start: ns.end, end: ns.end } } else { Span::within(buf, value) };
        head.headers.push((ns, vs));
        // Dispatch on length first: most names are rejected by one integer compare.
        match name.len() {
            4 if is(name, b"host") => {
                hosts += 1;
                if !valid_host(value) {
                    return Err(bad("invalid Host header"));
                }
                head.host = vs;
            }
            6 if is(name, b"accept") => {
                head.accept_repeated |= head.accept.is_some();
                head.accept.get_or_insert(vs);
            }
            6 if is(name, b"origin") => once(&mut head.origin, vs, "Origin")?,
            6 if is(name, b"expect") => {
                if value.eq_ignore_ascii_case(b"100-continue") {
                    head.expect_continue = true;
                } else {
                    return Err(Error::client(Kind::ExpectationFailed, "unsupported Expect value"));
                }
            }
            10 if is(name, b"connection") => {
                for token in value.split(|&b| b == b',') {
                    let t = trim_ows(token);
                    if t.eq_ignore_ascii_case(b"close") {
                        conn_close = true;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") {
                        conn_keep_alive = true;
                    }
                }
            }
            10 if is(name, b"mcp-method") => once(&mut head.mcp_method, vs, "Mcp-Method")?,
            8 if is(name, b"mcp-name") => once(&mut head.mcp_name, vs, "Mcp-Name")?,
            12 if is(name, b"content-type") => once(&mut head.content_type, vs, "Content-Type")?,
            12 if is(name, b"x-request-id") => head.request_id = Some(vs),
            11 if is(name, b"traceparent") => {
                head.traceparent_repeated |= head.traceparent.is_some();
                head.traceparent.get_or_insert(vs);
            }
            10 if is(name, b"tracestate") => {
                head.tracestate_repeated |= head.tracestate.is_some();
                head.tracestate.get_or_insert(vs);
            }
            13 if is(name, b"authorization") => once(&mut head.authorization, vs, "Authorization")?,
            13 if is(name, b"last-event-id") => once(&mut head.last_event_id, vs, "Last-Event-ID")?,
            14 if is(name, b"content-length") => {
                let n = parse_content_length(value)?;
                if content_length.is_some_and(|prev| prev != n) {
                    return Err(bad("conflicting Content-Length headers"));
                }
                content_length = Some(n);
            }
            14 if is(name, b"mcp-session-id") => once(&mut head.session_id, vs, "Mcp-Session-Id")?,
            17 if is(name, b"transfer-encoding") => {
                // RFC 9112 6.1: the codings form one list across field lines; chunked must be the
                // final coding of a request, and appear only once.
                for coding in value.split(|&b| b == b',') {
                    let c = trim_ows(coding);
                    if c.is_empty() {
                        continue;
                    }
                    if te_chunked_last {
                        return Err(bad("chunked must be the final transfer coding, applied once"));
                    }
                    te_chunked_last = c.eq_ignore_ascii_case(b"chunked");
                    te_other |= !te_chunked_last;
                    te_seen = true;
                }
                if value.is_empty() {
                    te_seen = true;
                }
            }
            20 if is(name, b"mcp-protocol-version") => {
                once(&mut head.protocol_version, vs, "MCP-Protocol-Version")?
            }
            23 if is(name, b"x-envoy-allow-mcp-tools") => {
                once(&mut head.allow_tools, vs, "x-envoy-allow-mcp-tools")?
            }
            _ => {}
        }
    }

    // RFC 9112 3.2: a server MUST respond 400 to an HTTP/1.1 request that lacks a Host header
    // field or contains more than one.
    if hosts > 1 {
        return Err(bad("duplicate Host header"));
    }
    if hosts == 0 && minor >= 1 {
        return Err(bad("missing Host header"));
    }
    if let Some(a) = authority {
        head.host = a;
    }
    head.framing = if te_seen {
        // RFC 9112 6.1: a request with both may be an attempt at smuggling; we refuse it.
        if content_length.is_some() {
            return Err(bad("both Content-Length and Transfer-Encoding"));
        }
        if minor == 0 {
            return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if !te_chunked_last {
            return Err(bad("transfer coding list does not end in chunked"));
        }
        if te_other {
            // RFC 9112 6.1: a coding the server does not understand is a 501.
            return Err(Error::client(Kind::NotImplemented, "only the chunked transfer coding is supported"));
        }
        Framing::Chunked
    } else {
        match content_length {
            Some(0) | None => Framing::None,
            Some(n) => Framing::Length(n),
        }
    };
    head.keep_alive = if minor == 0 { conn_keep_alive && !conn_close } else { !conn_close };
    if head.expect_continue && minor == 0 {
        // RFC 9110 10.1.1: a server MUST ignore 100-continue in an HTTP/1.0 request.
        head.expect_continue = false;
    }
    Ok(Parsed::Complete)
}

/// `http://authority/rest` or `https://...` (scheme case-insensitive): (authority, the path and
/// query that follow, starting with `/`, or empty).
fn absolute_form(target: &str) -> Option<(&str, &str)> {
    let after = ["http://", "https://"].iter().find_map(|scheme| {
        let head = target.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme).then(|| &target[scheme.len()..])
    })?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (auth, rest) = after.split_at(end);
    // An empty path is `/`'s (RFC 9110 4.2.3); `?query` without a path is not served here.
    Some((auth, rest))
}

/// Host = uri-host [ ":" port ] (RFC 9110 7.2, RFC 3986 3.2.2): an IP-literal in brackets or a
/// reg-name of unreserved, pct-encoded and sub-delim bytes, then an optional all-digit port.
/// Empty is allowed (a target without authority). RFC 9112 3.2: an invalid value is a 400.
fn valid_host(v: &[u8]) -> bool {
    let (host, port) = if let Some(rest) = v.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|&b| b == b']') else { return false };
        let literal = &rest[..close];
        if literal.is_empty() || !literal.iter().all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return false;
        }
        match &rest[close + 1..] {
            [] => return true,
            [b':', port @ ..] => (&b""[..], Some(port)),
            _ => return false,
        }
    } else {
        match v.iter().rposition(|&b| b == b':') {
            Some(i) => (&v[..i], Some(&v[i + 1..])),
            None => (v, None),
        }
    };
    let reg_name = host.iter().all(|&b| REG_NAME[b as usize]);
    let port_ok = port.is_none_or(|p| p.len() <= 5 && p.iter().all(u8::is_ascii_digit));
    reg_name && port_ok
}

/// Records a header that must appear once. A second line is a 400: the gateway and an
/// intermediary that reads the other copy would disagree about the request (RFC 9110 5.3: only
/// list-valued fields may repeat).
fn once(slot: &mut Option<Span>, value: Span, name: &'static str) -> Result<(), Error> {
    if slot.replace(value).is_some() {
        return Err(Error::client(
            Kind::BadRequest,
            match name {
                "Origin" => "duplicate Origin header",
                "Mcp-Method" => "duplicate Mcp-Method header",
                "Mcp-Name" => "duplicate Mcp-Name header",
                "Content-Type" => "duplicate Content-Type header",
                "Authorization" => "duplicate Authorization header",
                "Mcp-Session-Id" => "duplicate Mcp-Session-Id header",
                "MCP-Protocol-Version" => "duplicate MCP-Protocol-Version header",
                _ => "duplicate header that must appear once",
            },
        ));
    }
    Ok(())
}

/// Header-name match: exact bytes first (HTTP/2-era clients and the MCP SDKs send lower case,
/// and a memcmp is a few instructions), then the ASCII case-insensitive compare RFC 9110 asks for.
#[inline(always)]
fn is(name: &[u8], lower: &[u8]) -> bool {
    name == lower || name.eq_ignore_ascii_case(lower)
}

/// reg-name bytes (RFC 3986 3.2.2: unreserved / pct-encoded / sub-delims), as a table.
static REG_NAME: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        i += 1;
    }
    t
};

/// Content-Length = 1*DIGIT (RFC 9110 8.6); no sign, no list, no overflow.
fn parse_content_length(v: &[u8]) -> Result<u64, Error> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(bad("invalid Content-Length"));
    }
    Ok(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

fn httparse_message(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid character in header name (whitespace before colon?)",
        httparse::Error::HeaderValue => "invalid character in header value",
        httparse::Error::NewLine => "invalid line ending in request head",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token in request line",
        httparse::Error::TooManyHeaders => "too many header fields",
        httparse::Error::Version => "invalid HTTP version",
    }
}
