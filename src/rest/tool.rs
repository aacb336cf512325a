//! REST APIs as MCP tools (Higress `tools[]` with `requestTemplate.url`): the tool as compiled at
//! load, the backend request built for one call, and the MCP result shaped from the answer.
//!
//! A call goes: the client's arguments normalized against the declared `args` (`rest::args`,
//! in phase 5, before the rules), then [`build`] the HTTP/1.1 request from the templates, the argument positions and
//! the backend credential, then (after the exchange) [`shape`] the answer into a `tools/call`
//! result. A problem the client can fix (a missing argument or credential) is a [`ToolError`]:
//! an `isError: true` result, and the backend is never called.

use simd_json::{Node, StaticNode};

use crate::auth::scheme::{BackendCredential, SchemeKind};
use crate::http::percent::encode as url_escape;
use crate::mcp::json;
use crate::rest::args::{ArgRule, Position, ToolError};
use crate::rest::template::{Context, Escape, RenderError, Template};
use crate::upstream::target::Target;

/// How the request body is made.
#[derive(Debug)]
pub enum Body {
    /// No body, unless arguments have `position: body` (then JSON, or a form when the
    /// template headers say `application/x-www-form-urlencoded`).
    None,
    /// `requestTemplate.body`.
    Template(Template),
    /// `argsToJsonBody`: body-position and position-less arguments as a JSON object.
    Json,
    /// `argsToFormBody`: the same as `application/x-www-form-urlencoded`.
    Form,
}

/// What a constant `Content-Type` template header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    /// `application/json` (or `+json`).
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// Anything else, or templated.
    Other,
}

/// A security scheme as a call uses it (no secret inside).
#[derive(Clone, Debug)]
pub struct Scheme {
    /// `securitySchemes[].id`.
    pub id: Box<str>,
    /// Kind.
    pub kind: SchemeKind,
    /// apiKey header (lower case) or query parameter name; empty for http schemes.
    pub name: Box<str>,
}

/// `requestTemplate.security`: how the gateway authenticates to the REST backend.
#[derive(Debug)]
pub struct Upstream {
    /// The scheme.
    pub scheme: Scheme,
    /// The configured credential (the tool's `credential`, else the scheme's
    /// `defaultCredential`), compiled into its header or query form (`Debug` redacts it).
    pub configured: Option<crate::auth::credentials::Credential>,
}

/// `tools[].security`: the scheme the client authenticates with, and whether its credential is
/// passed through to the backend.
#[derive(Clone, Debug)]
pub struct Downstream {
    /// The scheme.
    pub scheme: Scheme,
    /// `passthrough: true`.
    pub passthrough: bool,
}

/// `responseTemplate`, `errorResponseTemplate` and `outputSchema`.
#[derive(Debug, Default)]
pub struct Response {
    /// `responseTemplate.body`, over the backend's JSON answer.
    pub body: Option<Template>,
    /// `responseTemplate.prependBody` (literal).
    pub prepend: Box<str>,
    /// `responseTemplate.appendBody` (literal).
    pub append: Box<str>,
    /// `errorResponseTemplate`, over a non-2xx answer's JSON body.
    pub error: Option<Template>,
    /// With `outputSchema`: the backend's JSON object becomes `structuredContent`.
    pub structured: bool,
}

/// A REST tool, compiled.
#[derive(Debug)]
pub struct RestTool {
    /// Where the backend is; `Err` says why its host did not resolve at load (calls fail with
    /// that message until a reload resolves it).
    pub target: Result<Target, Box<str>>,
    /// Upper-case method.
    pub method: Box<str>,
    /// The URL path (from its first `/`), `{name}` placeholders of path arguments included.
    pub path: Template,
    /// The URL query (after `?`), if the URL has one.
    pub query: Option<Template>,
    /// `requestTemplate.headers`: (name, value template).
    pub headers: Vec<(Box<str>, Template)>,
    /// Whether a template header sets `Accept`.
    pub has_accept: bool,
    /// A template `Content-Type`, if any.
    pub content_type: Option<ContentType>,
    /// The body.
    pub body: Body,
    /// `argsToUrlParam`: position-less arguments become query parameters.
    pub args_to_url: bool,
    /// Declared arguments, in order.
    pub args: Vec<ArgRule>,
    /// Client scheme (`tools[].security`, else `server.defaultDownstreamSecurity`).
    pub downstream: Option<Downstream>,
    /// Backend scheme (`requestTemplate.security`, else `server.defaultUpstreamSecurity`).
    pub upstream: Option<Upstream>,
    /// `server.passthroughAuthHeader` with no client scheme: the client's `Authorization`
    /// header is sent on as it is.
    pub pass_authorization: bool,
    /// How the answer becomes a result.
    pub response: Response,
}

/// What the client's request brings besides its arguments.
#[derive(Clone, Copy, Default)]
pub struct Incoming<'a> {
    /// The client's credential under the tool's downstream scheme (the token of `Bearer x`,
    /// the base64 part of `Basic x`, or the raw api key), when it sent one.
    pub credential: Option<&'a [u8]>,
    /// The client's `Authorization` header (for `passthroughAuthHeader`).
    pub authorization: Option<&'a [u8]>,
    /// Headers the gateway adds to every backend request (request id, trace context): (lower-case
    /// name, value). A header the tool's `requestTemplate.headers` sets itself wins.
    pub trace: &'a [(&'a [u8], &'a [u8])],
    /// Who is calling (`getRealIP`).
    pub client: crate::rest::template::Client<'a>,
    /// The caller: picks a per-principal credential; its `claimToHeaders` values are sent.
    pub principal: Option<&'a crate::auth::Principal>,
}

/// Appends the text form of an argument (query, header, cookie and form values): a string as it
/// is, null as nothing, an array of scalars comma-joined (OpenAPI's `simple` style), anything
/// else as JSON.
fn text_of(out: &mut Vec<u8>, v: &[Node<'_>]) {
    match v.first() {
        Some(Node::String(s)) => out.extend_from_slice(s.as_bytes()),
        Some(Node::Static(StaticNode::Null)) | None => {}
        Some(Node::Array { .. }) if scalars(v) => {
            for (i, e) in json::elements(v).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                text_of(out, e);
            }
        }
        _ => json::write_value(out, v),
    }
}

/// Whether `v` is an array whose elements are all strings, numbers, booleans or null.
fn scalars(v: &[Node<'_>]) -> bool {
    json::elements(v).all(|e| matches!(e.first(), Some(Node::String(_) | Node::Static(_))))
}

/// Arguments (from the normalized object) whose position is one of `positions`.
fn positioned<'t, 'a>(
    rules: &'t [ArgRule],
    args: &'t [Node<'a>],
    positions: impl Fn(Position) -> bool + 't,
) -> impl Iterator<Item = (&'t str, &'t [Node<'a>])> + 't {
    rules
        .iter()
        .filter(move |r| positions(r.position))
        .filter_map(move |r| json::get(args, &r.name).map(|v| (&*r.name, v)))
}

/// A template that failed to render (budget, a function refusing its input): the call's error.
fn failed(what: &str, e: &RenderError) -> ToolError {
    ToolError(format!("template error in {what}: {e}"))
}

/// Whether a path has a `.` or `..` segment.
fn dot_segment(path: &[u8]) -> bool {
    path.split(|&b| b == b'/').any(|seg| seg == b"." || seg == b"..")
}

/// Whether a header value is safe to send (no CR, LF, NUL or other control characters but tab).
fn header_safe(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Builds the complete HTTP/1.1 request (head and body) for one call into `out`. `args` is the
/// tape of the [`normalize`]d arguments; `tmp` is scratch for the body. `Ok(true)`: the
/// credential is a token service's token, which the caller adds ([`add_authorization`]) once it
/// has it.
pub fn build(
    tool: &RestTool,
    args: &[Node<'_>],
    config: &serde_json::Value,
    incoming: &Incoming<'_>,
    tmp: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<bool, ToolError> {
    let target = tool.target.as_ref().map_err(|e| ToolError(format!("call failed: {e}")))?;
    let cx = Context { args: Some(args), config: Some(config), data: None, client: incoming.client };
    let credential = credential(tool, incoming)?;
    let needs_token = matches!(credential, Some(Applied::Token));

    // The body first: its length goes in the head.
    tmp.clear();
    let mut content_type: Option<&str> = None;
    let body_args = |p: Position| p == Position::Body || p == Position::Unset;
    match &tool.body {
        Body::Template(t) => {
            t.render(tmp, &cx).map_err(|e| failed("body", &e))?;
            let trimmed = tmp.trim_ascii();
            let looks_json = matches!(
                (trimmed.first(), trimmed.last()),
                (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']'))
            );
            if tool.content_type.is_none()
                && looks_json
                && serde_json::from_slice::<serde::de::IgnoredAny>(trimmed).is_ok()
            {
                content_type = Some("application/json; charset=utf-8");
            }
        }
        Body::Json => {
            json_object(tmp, positioned(&tool.args, args, body_args));
            content_type = Some("application/json; charset=utf-8");
        }
        Body::Form => {
            form(tmp, out, positioned(&tool.args, args, body_args));
            content_type = Some("application/x-www-form-urlencoded");
        }
        Body::None => {
            let mut body = positioned(&tool.args, args, |p| p == Position::Body).peekable();
            if body.peek().is_some() {
                if tool.content_type == Some(ContentType::Form) {
                    form(tmp, out, body);
                } else {
                    json_object(tmp, body);
                    content_type = Some("application/json; charset=utf-8");
                }
            }
        }
    }
    if tool.content_type.is_some() {
        content_type = None;
    }

    out.clear();
    out.extend_from_slice(tool.method.as_bytes());
    out.push(b' ');
    let path_start = out.len();
    tool.path.render_escaped(out, &cx, Escape::Path).map_err(|e| failed("url", &e))?;
    if dot_segment(&out[path_start..]) {
        // `/` is kept in path arguments (a file path is several segments), so `..` could climb
        // out of the tool's path to another endpoint of the API, with the tool's credential.
        return Err(ToolError("call failed: a path argument makes a \".\" or \"..\" segment".into()));
    }
    let mut sep = b'?';
    if let Some(q) = &tool.query {
        out.push(b'?');
        let mark = out.len();
        q.render_escaped(out, &cx, Escape::Url).map_err(|e| failed("url", &e))?;
        if out.len() == mark {
            out.pop();
        } else {
            sep = b'&';
        }
    }
    let to_query = |p: Position| p == Position::Query || (tool.args_to_url && p == Position::Unset);
    for (name, v) in positioned(&tool.args, args, to_query) {
        // An array of scalars is one pair per element (OpenAPI's default `form`, exploded).
        let each: &mut dyn Iterator<Item = &[Node<'_>]> =
            if matches!(v.first(), Some(Node::Array { .. })) && scalars(v) {
                &mut json::elements(v)
            } else {
                &mut std::iter::once(v)
            };
        for v in each {
            out.push(sep);
            sep = b'&';
            url_escape(out, name.as_bytes());
            out.push(b'=');
            escaped_text(out, tmp, v);
        }
    }
    match &credential {
        Some(Applied::Query(name, value)) => {
            out.push(sep);
            url_escape(out, name.as_bytes());
            out.push(b'=');
            url_escape(out, value);
        }
        Some(Applied::Pair(pair)) => {
            out.push(sep);
            out.extend_from_slice(pair.as_bytes());
        }
        _ => {}
    }
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(target.authority.as_bytes());
    out.extend_from_slice(b"\r\n");

    let mut cookies = positioned(&tool.args, args, |p| p == Position::Cookie).peekable();
    let mut cookie_written = false;
    for (name, value) in &tool.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        let mark = out.len();
        value.render(out, &cx).map_err(|e| failed(name, &e))?;
        if name.eq_ignore_ascii_case("cookie") && cookies.peek().is_some() {
            cookie_pairs(out, tmp, &mut cookies, "; ");
            cookie_written = true;
        }
        if !header_safe(&out[mark..]) {
            return Err(ToolError(format!("header {name} rendered a value with control characters")));
        }
        out.extend_from_slice(b"\r\n");
    }
    if !cookie_written && cookies.peek().is_some() {
        out.extend_from_slice(b"cookie: ");
        cookie_pairs(out, tmp, &mut cookies, "");
        out.extend_from_slice(b"\r\n");
    }
    for (name, v) in positioned(&tool.args, args, |p| p == Position::Header) {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        let mark = out.len();
        text_of(out, v);
        if !header_safe(&out[mark..]) {
            return Err(ToolError(format!("argument {name} is not a valid header value")));
        }
        out.extend_from_slice(b"\r\n");
    }
    match &credential {
        Some(Applied::Header(name, prefix, value)) => {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(prefix.as_bytes());
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        Some(Applied::Query(..) | Applied::Pair(_) | Applied::Token) => {}
        None => {
            if let Some(a) = incoming.authorization.filter(|_| tool.pass_authorization) {
                out.extend_from_slice(b"authorization: ");
                out.extend_from_slice(a);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    for (name, value) in incoming.principal.into_iter().flat_map(crate::auth::Principal::headers) {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in incoming.trace {
        if tool.headers.iter().any(|(h, _)| h.as_bytes().eq_ignore_ascii_case(name)) {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !tool.has_accept {
        out.extend_from_slice(b"accept: */*\r\n");
    }
    if let Some(ct) = content_type {
        out.extend_from_slice(b"content-type: ");
        out.extend_from_slice(ct.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !tmp.is_empty() || matches!(&*tool.method, "POST" | "PUT" | "PATCH") {
        out.extend_from_slice(b"content-length: ");
        json::write_i64(out, tmp.len() as i64);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(tmp);
    Ok(needs_token)
}

/// Puts `authorization: <value>` into a request [`build`] made, right after its request line.
pub fn add_authorization(request: &mut Vec<u8>, value: &str) {
    let at = request.windows(2).position(|w| w == b"\r\n").map_or(request.len(), |i| i + 2);
    let line = format!("authorization: {value}\r\n");
    request.splice(at..at, line.bytes());
}

/// A credential ready to put on the request.
enum Applied<'a> {
    /// Header name, a scheme word to put first (`Bearer `), and the rest of the value.
    Header(&'a str, &'static str, &'a [u8]),
    /// Query parameter name and raw (unencoded) value.
    Query(&'a str, &'a [u8]),
    /// A configured query credential, already encoded as `name=value`.
    Pair(&'a str),
    /// The token of the scheme's token service, put in `authorization` when the call is made.
    Token,
}

/// The backend credential of a call: the client's (passthrough) > the tool's `credential` >
/// the scheme's `defaultCredential`. A scheme that ends up with none is a [`ToolError`], as is a
/// passthrough tool whose client sent nothing to pass through.
fn credential<'a>(tool: &'a RestTool, incoming: &Incoming<'a>) -> Result<Option<Applied<'a>>, ToolError> {
    let passed =
        tool.downstream.as_ref().filter(|d| d.passthrough).and_then(|d| incoming.credential.map(|c| (d, c)));
    let (scheme, value): (&Scheme, &[u8]) = match (&tool.upstream, passed) {
        (Some(up), Some((_, c))) => (&up.scheme, c),
        (Some(up), None) => match up.configured.as_ref().map(|c| c.for_principal(incoming.principal)) {
            Some(Ok(Some(BackendCredential::Header { name, value }))) => {
                return Ok(Some(Applied::Header(name, "", value.as_bytes())));
            }
            Some(Ok(Some(BackendCredential::Query { pair }))) => return Ok(Some(Applied::Pair(pair))),
            // A token service's token: added when the call is made (it may need fetching).
            Some(Ok(None)) => return Ok(Some(Applied::Token)),
            Some(Err(e)) => return Err(ToolError(format!("missing credential: {e}"))),
            None => {
                let why = match &tool.downstream {
                    Some(d) if d.passthrough => format!(
                        "the client sent no credential for scheme {} and scheme {} has no defaultCredential",
                        d.scheme.id, up.scheme.id
                    ),
                    _ => format!(
                        "scheme {} has no defaultCredential and the tool sets no credential",
                        up.scheme.id
                    ),
                };
                return Err(ToolError(format!("missing credential: {why}")));
            }
        },
        // Passthrough without a backend scheme: the credential goes on as the client sent it.
        (None, Some((d, c))) => (&d.scheme, c),
        (None, None) => {
            return match &tool.downstream {
                Some(d) if d.passthrough => Err(ToolError(format!(
                    "missing credential: the client sent no credential for scheme {}",
                    d.scheme.id
                ))),
                _ => Ok(None),
            }
        }
    };
    if !header_safe(value) || value.is_empty() {
        return Err(ToolError(format!("the client's credential for scheme {} is not usable", scheme.id)));
    }
    Ok(Some(match scheme.kind {
        SchemeKind::Bearer => Applied::Header("authorization", "Bearer ", value),
        SchemeKind::Basic => Applied::Header("authorization", "Basic ", value),
        SchemeKind::ApiKeyHeader => Applied::Header(&scheme.name, "", value),
        SchemeKind::ApiKeyQuery => Applied::Query(&scheme.name, value),
    }))
}

/// Appends the percent-encoded text form of `v` to `out`, borrowing room at the end of
/// `scratch` (left as it was) for values that are not strings.
fn escaped_text(out: &mut Vec<u8>, scratch: &mut Vec<u8>, v: &[Node<'_>]) {
    if let Some(Node::String(s)) = v.first() {
        return url_escape(out, s.as_bytes());
    }
    let mark = scratch.len();
    text_of(scratch, v);
    url_escape(out, &scratch[mark..]);
    scratch.truncate(mark);
}

fn json_object<'t, 'a>(out: &mut Vec<u8>, args: impl Iterator<Item = (&'t str, &'t [Node<'a>])>)
where
    'a: 't,
{
    out.push(b'{');
    for (i, (name, v)) in args.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json::write_str(out, name);
        out.push(b':');
        json::write_value(out, v);
    }
    out.push(b'}');
}

fn form<'t, 'a>(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    args: impl Iterator<Item = (&'t str, &'t [Node<'a>])>,
) where
    'a: 't,
{
    for (i, (name, v)) in args.enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        url_escape(out, name.as_bytes());
        out.push(b'=');
        escaped_text(out, scratch, v);
    }
}

fn cookie_pairs<'t, 'a: 't>(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    cookies: &mut impl Iterator<Item = (&'t str, &'t [Node<'a>])>,
    lead: &str,
) {
    for (i, (name, v)) in cookies.enumerate() {
        if i > 0 || !lead.is_empty() {
            out.extend_from_slice(b"; ");
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        // Cookie values may not hold spaces, quotes, commas, semicolons or backslashes.
        escaped_text(out, scratch, v);
    }
}

/// Largest slice of a failed answer's body quoted in the error text.
const ERROR_QUOTE: usize = 4096;

/// Writes the members of a `tools/call` result (`content`, `isError`, maybe
/// `structuredContent`) for the backend's answer.
pub fn shape(
    tool: &RestTool,
    config: &serde_json::Value,
    status: u16,
    content_type: Option<&[u8]>,
    body: &[u8],
    out: &mut Vec<u8>,
) {
    let r = &tool.response;
    if !(200..300).contains(&status) {
        let text = match &r.error {
            Some(t) => {
                let data: Option<serde_json::Value> = serde_json::from_slice(body).ok();
                let mut o = Vec::new();
                match t.render(
                    &mut o,
                    &Context { args: None, config: Some(config), data: data.as_ref(), ..Context::default() },
                ) {
                    Ok(()) => String::from_utf8_lossy(&o).into_owned(),
                    Err(e) => format!("call failed, status: {status}; errorResponseTemplate: {e}"),
                }
            }
            None => format!(
                "call failed, status: {status}, response: {}",
                String::from_utf8_lossy(&body[..body.len().min(ERROR_QUOTE)])
            ),
        };
        return text_result(out, &text, true);
    }
    if let Some(ct) = content_type.filter(|c| c.len() > 6 && c[..6].eq_ignore_ascii_case(b"image/")) {
        let mime = ct.split(|&b| b == b';').next().unwrap_or(ct).trim_ascii();
        out.extend_from_slice(b"\"content\":[{\"type\":\"image\",\"data\":\"");
        out.extend_from_slice(base64_simd::STANDARD.encode_to_string(body).as_bytes());
        out.extend_from_slice(b"\",\"mimeType\":\"");
        json::write_escaped(out, &String::from_utf8_lossy(mime));
        out.extend_from_slice(b"\"}],\"isError\":false");
        return;
    }
    let data: Option<serde_json::Value> =
        if r.body.is_some() || r.structured { serde_json::from_slice(body).ok() } else { None };
    let mut text = Vec::new();
    match &r.body {
        Some(t) => {
            if let Err(e) = t.render(
                &mut text,
                &Context { args: None, config: Some(config), data: data.as_ref(), ..Context::default() },
            ) {
                return text_result(out, &format!("responseTemplate: {e}"), true);
            }
        }
        None => {
            text.extend_from_slice(r.prepend.as_bytes());
            text.extend_from_slice(body);
            text.extend_from_slice(r.append.as_bytes());
        }
    }
    if text.is_empty() {
        text.extend_from_slice(b"success");
    }
    let text = String::from_utf8_lossy(&text);
    if r.structured {
        match data.as_ref().filter(|d| d.is_object()) {
            Some(d) => {
                text_result(out, &text, false);
                out.extend_from_slice(b",\"structuredContent\":");
                let _ = serde_json::to_writer(&mut *out, d);
            }
            None => text_result(
                out,
                "the backend's answer is not a JSON object, which this tool's outputSchema requires",
                true,
            ),
        }
        return;
    }
    text_result(out, &text, false)
}

/// `"content":[{"type":"text","text":..}],"isError":..`
pub fn text_result(out: &mut Vec<u8>, text: &str, is_error: bool) {
    out.extend_from_slice(b"\"content\":[{\"type\":\"text\",\"text\":");
    json::write_str(out, text);
    out.extend_from_slice(b"}],\"isError\":");
    out.extend_from_slice(if is_error { b"true" } else { b"false" });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_credentials_take_their_scheme_form() {
        let value = |kind, c| match BackendCredential::new(kind, "k", c) {
            BackendCredential::Header { value, .. } => value.to_string(),
            BackendCredential::Query { pair } => pair.to_string(),
        };
        assert_eq!(value(SchemeKind::Bearer, "t"), "Bearer t");
        assert_eq!(value(SchemeKind::Bearer, "Bearer t"), "Bearer t");
        assert_eq!(value(SchemeKind::Basic, "u:p"), "Basic dTpw");
        assert_eq!(value(SchemeKind::Basic, "dTpw"), "Basic dTpw");
        assert_eq!(value(SchemeKind::ApiKeyQuery, "k"), "k=k");
        let debug = format!("{:?}", BackendCredential::new(SchemeKind::Bearer, "", "s3cret"));
        assert_eq!(debug, "Header(authorization: <redacted>)");
    }
}
