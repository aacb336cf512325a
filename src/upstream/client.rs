//! One HTTP/1.1 exchange with a backend: write the request, read the response head with
//! httparse and the body by its framing (Content-Length, chunked, or until close), within the
//! response timeout and a size limit. A pooled connection that turns out to be closed before any
//! response byte arrived is retried once on a fresh connection (the keep-alive race); nothing
//! else is retried, because the request may have had effects.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use crate::http::body::Chunked;
use crate::upstream::pool::{self, Pool, Stream};
use crate::upstream::target::Target;

/// Limits of one exchange.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connect timeout.
    pub connect: Duration,
    /// Time for the whole response to arrive.
    pub response: Duration,
    /// Largest response body accepted.
    pub max_body: usize,
}

/// What went wrong, for a JSON-RPC error naming the backend (never its address).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UpstreamError {
    /// Connection refused, reset, or failed to open.
    #[error("backend unreachable")]
    Connect,
    /// No complete response within the response timeout.
    #[error("backend timed out")]
    Timeout,
    /// The connection closed before a complete response.
    #[error("backend closed the connection")]
    Closed,
    /// The response is not valid HTTP/1.1, or too large.
    #[error("backend sent an invalid response: {0}")]
    Invalid(&'static str),
}

/// A complete response, its body in `buf[body.0..body.1]` (de-chunked when it was chunked).
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The response header lines the proxy reads (`content-type`, `mcp-session-id`), lower-cased
    /// names; the others are not kept.
    pub headers: Vec<(&'static str, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// First header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_slice())
    }
}

/// Sends `request` (a complete HTTP/1.1 request, head and body) to `target` over a pooled or new
/// connection and reads the whole response.
pub async fn exchange(
    pool: &RefCell<Pool>,
    target: &Target,
    request: Vec<u8>,
    limits: Limits,
) -> Result<Response, UpstreamError> {
    let pooled = pool.borrow_mut().take(target.pool_key, Instant::now());
    let (mut stream, reused) = match pooled {
        Some(s) => (s, true),
        None => (fresh(pool, target, limits).await?, false),
    };
    let deadline = Instant::now() + limits.response;
    let (mut result, request) = once(&mut stream, request, limits, deadline).await;
    if reused && matches!(result, Err(Attempt::Stale)) {
        stream = fresh(pool, target, limits).await?;
        result = once(&mut stream, request, limits, deadline).await.0;
    }
    match result {
        Ok((resp, keep)) => {
            if keep {
                pool.borrow_mut().put(target.pool_key, stream, Instant::now());
            }
            Ok(resp)
        }
        Err(Attempt::Stale) => Err(UpstreamError::Closed),
        Err(Attempt::Failed(e)) => Err(e),
    }
}

async fn fresh(pool: &RefCell<Pool>, target: &Target, limits: Limits) -> Result<Stream, UpstreamError> {
    let s = pool::connect(target, limits.connect).await.map_err(|_| UpstreamError::Connect)?;
    pool.borrow_mut().connects += 1;
    Ok(s)
}

enum Attempt {
    /// Closed before any response byte: safe to retry on a fresh connection.
    Stale,
    Failed(UpstreamError),
}

/// One attempt under one deadline (a single timer for the write and every read: per-operation
/// timers cost ~800 instructions each on the proxied path). Hands the request buffer back for a
/// retry; it is empty when the deadline passed mid-write.
async fn once(
    stream: &mut Stream,
    request: Vec<u8>,
    limits: Limits,
    deadline: Instant,
) -> (Result<(Response, bool), Attempt>, Vec<u8>) {
    let attempt = async {
        let request = match stream.write_all(request).await {
            (Ok(_), r) => r,
            (Err(_), r) => return (Err(Attempt::Stale), r),
        };
        (read_response(stream, limits).await, request)
    };
    match monoio::time::timeout(deadline.saturating_duration_since(Instant::now()), attempt).await {
        Ok(done) => done,
        Err(_) => (Err(Attempt::Failed(UpstreamError::Timeout)), Vec::new()),
    }
}

async fn read_response(stream: &mut Stream, limits: Limits) -> Result<(Response, bool), Attempt> {
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    // Head.
    let (status, headers, head_len, framing, keep) = loop {
        if !buf.is_empty() {
            if let Some(h) = parse_head(&buf).map_err(Attempt::Failed)? {
                break h;
            }
            if buf.len() > 64 * 1024 {
                return Err(Attempt::Failed(UpstreamError::Invalid("response head too large")));
            }
        }
        let had = !buf.is_empty();
        let (end, b) = read(stream, buf).await;
        buf = b;
        match end {
            Read::Data => {}
            Read::Eof if !had => return Err(Attempt::Stale),
            Read::Eof => return Err(Attempt::Failed(UpstreamError::Closed)),
        }
    };
    // Body.
    let body = match framing {
        BodyFraming::Length(n) => {
            if n > limits.max_body {
                return Err(Attempt::Failed(UpstreamError::Invalid("response body too large")));
            }
            while buf.len() < head_len + n {
                let (end, b) = read(stream, buf).await;
                buf = b;
                end.data().map_err(Attempt::Failed)?;
            }
            // The body is moved to the front of the read buffer: no second allocation.
            buf.truncate(head_len + n);
            buf.drain(..head_len);
            buf
        }
        BodyFraming::Chunked => {
            let mut dec = Chunked::new(limits.max_body, 16 * 1024);
            let mut out = Vec::new();
            let mut pos = head_len;
            loop {
                pos += dec
                    .decode(&buf[pos..], &mut out)
                    .map_err(|_| Attempt::Failed(UpstreamError::Invalid("bad chunked body")))?;
                if dec.is_done() {
                    break;
                }
                let (end, b) = read(stream, buf).await;
                buf = b;
                end.data().map_err(Attempt::Failed)?;
            }
            out
        }
        BodyFraming::UntilClose => {
            loop {
                if buf.len() - head_len > limits.max_body {
                    return Err(Attempt::Failed(UpstreamError::Invalid("response body too large")));
                }
                let (end, b) = read(stream, buf).await;
                buf = b;
                match end {
                    Read::Data => {}
                    Read::Eof => break,
                }
            }
            buf.get(head_len..).map(<[u8]>::to_vec).unwrap_or_default()
        }
    };
    Ok((Response { status, headers, body }, keep && framing != BodyFraming::UntilClose))
}

/// How a read ended.
enum Read {
    Data,
    Eof,
}

impl Read {
    /// `Ok` for data; EOF as the error a body read reports.
    fn data(self) -> Result<(), UpstreamError> {
        match self {
            Read::Data => Ok(()),
            Read::Eof => Err(UpstreamError::Closed),
        }
    }
}

/// Reads more bytes into `buf`, handing the buffer back. The attempt's deadline bounds it; a
/// read abandoned by that deadline keeps its buffer and the connection is not reused after it.
async fn read(stream: &mut Stream, mut buf: Vec<u8>) -> (Read, Vec<u8>) {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(buf.len().clamp(8 * 1024, 64 * 1024));
    }
    match stream.read(pool::spare(buf)).await {
        (Ok(0), b) | (Err(_), b) => (Read::Eof, b.into_inner()),
        (Ok(_), b) => (Read::Data, b.into_inner()),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyFraming {
    Length(usize),
    Chunked,
    UntilClose,
}

type Head = (u16, Vec<(&'static str, Vec<u8>)>, usize, BodyFraming, bool);

/// Response headers the proxy reads.
const KEPT: [&str; 2] = ["content-type", "mcp-session-id"];

/// Parses a response head (RFC 9112 6.3 framing rules for responses).
fn parse_head(buf: &[u8]) -> Result<Option<Head>, UpstreamError> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut slots);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(UpstreamError::Invalid("malformed response head")),
    };
    let status = resp.code.unwrap_or(0);
    let mut headers = Vec::new();
    let (mut cl, mut chunked, mut close) = (None, false, resp.version == Some(0));
    for h in resp.headers.iter() {
        let kept = KEPT.iter().find(|k| h.name.eq_ignore_ascii_case(k));
        if let Some(k) = kept {
            headers.push((*k, h.value.to_vec()));
        }
        match h.name.to_ascii_lowercase().as_str() {
            "content-length" => {
                let n = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<usize>().ok());
                match (n, cl) {
                    (Some(n), None) => cl = Some(n),
                    (Some(n), Some(prev)) if n == prev => {}
                    _ => return Err(UpstreamError::Invalid("bad Content-Length")),
                }
            }
            "transfer-encoding" => chunked = h.value.trim_ascii_end().ends_with(b"chunked"),
            "connection" => close |= h.value.eq_ignore_ascii_case(b"close"),
            _ => {}
        }
    }
    let framing = if matches!(status, 100..=199 | 204 | 304) {
        BodyFraming::Length(0)
    } else if chunked {
        BodyFraming::Chunked
    } else if let Some(n) = cl {
        BodyFraming::Length(n)
    } else {
        BodyFraming::UntilClose
    };
    if (100..=199).contains(&status) {
        return Err(UpstreamError::Invalid("unexpected interim response"));
    }
    Ok(Some((status, headers, len, framing, !close)))
}

#[cfg(test)]
mod tests;
