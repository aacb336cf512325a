//! One HTTP/1.1 exchange with a backend: write the request, read the response head with
//! httparse and the body by its framing (Content-Length, chunked, or until close), within the
//! response timeout and a size limit. A pooled connection that turns out to be closed before any
//! response byte arrived is retried once on a fresh connection (the keep-alive race); nothing
//! else is retried, because the request may have had effects.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::http::body::Chunked;
use crate::timer::Deadlines;
use crate::upstream::pool::{self, Pool, Stream};
use crate::upstream::target::Target;

/// Limits of one exchange.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connect timeout.
    pub connect: Duration,
    /// Time for the response head to arrive, and for the body (from the request on); honoured
    /// to within [`crate::timer::TICK`].
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
    /// The caller has no credential for the backend under this per-principal scheme (nothing
    /// was sent).
    #[error("no credential for this caller under scheme {0}")]
    NoCredential(Box<str>),
    /// No token from the scheme's token service (nothing was sent to the backend).
    #[error("scheme {0}: {1}")]
    Token(Box<str>, crate::upstream::sts::StsError),
}

/// A complete response, its body in `buf[body.0..body.1]` (de-chunked when it was chunked).
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The response header lines the proxy reads.
    pub headers: Kept,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// First header named `name` (lower case), when it is one of [`KEPT`].
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name)
    }
}

/// Response headers the proxy reads; the others are not kept.
pub const KEPT: [&str; 2] = ["content-type", "mcp-session-id"];

/// The values of a response's [`KEPT`] headers (the first of each). A value of up to
/// [`INLINE`] bytes - every content type, the session ids of the common servers - is stored in
/// place, so reading a response head allocates nothing.
#[derive(Debug, Default)]
pub struct Kept([Option<Value>; KEPT.len()]);

/// Longest header value kept without allocating.
const INLINE: usize = 62;

#[derive(Debug)]
enum Value {
    Inline(u8, [u8; INLINE]),
    Heap(Box<[u8]>),
}

impl Kept {
    /// First header named `name` (lower case), when it is one of [`KEPT`].
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let i = KEPT.iter().position(|k| *k == name)?;
        match self.0[i].as_ref()? {
            Value::Inline(n, bytes) => Some(&bytes[..usize::from(*n)]),
            Value::Heap(bytes) => Some(bytes),
        }
    }

    /// Forgets every value.
    fn clear(&mut self) {
        self.0 = Default::default();
    }

    /// Keeps `value` when `name` is one of [`KEPT`] not seen before in this head.
    fn keep(&mut self, name: &str, value: &[u8]) {
        let Some(i) = KEPT.iter().position(|k| name.eq_ignore_ascii_case(k)) else { return };
        if self.0[i].is_some() {
            return;
        }
        self.0[i] = Some(match u8::try_from(value.len()) {
            Ok(n) if value.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..value.len()].copy_from_slice(value);
                Value::Inline(n, bytes)
            }
            _ => Value::Heap(value.into()),
        });
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
    collect(open(pool, target, request, limits).await?, pool).await
}

/// Reads the rest of `s` into a [`Response`] and returns the connection to the pool.
pub async fn collect(mut s: Streaming, pool: &RefCell<Pool>) -> Result<Response, UpstreamError> {
    let mut body = s.take_buffered_body().unwrap_or_default();
    while let Some(piece) = s.next().await? {
        body.extend_from_slice(piece);
    }
    let resp = Response { status: s.status, headers: std::mem::take(&mut s.headers), body };
    s.finish(pool);
    Ok(resp)
}

/// Sends `request` and reads the response head; the body is then read piece by piece with
/// [`Streaming::next`] (an SSE answer is relayed as it arrives). A pooled connection that is
/// found closed before any response byte is retried once on a fresh connection.
pub async fn open(
    pool: &RefCell<Pool>,
    target: &Target,
    request: Vec<u8>,
    limits: Limits,
) -> Result<Streaming, UpstreamError> {
    let now = Instant::now();
    let (pooled, mut x) = {
        let mut p = pool.borrow_mut();
        (p.take(target.pool_key, now), Exchange::spare(p.deadlines()))
    };
    let (mut stream, reused, deadline) = match pooled {
        Some(s) => (s, true, now + limits.response),
        None => (fresh(pool, target, limits).await?, false, Instant::now() + limits.response),
    };
    let sent = request.len();
    let (mut result, mut buf) = start(&mut stream, request, &mut x, deadline).await;
    if reused && matches!(result, Err(Attempt::Stale)) {
        stream = fresh(pool, target, limits).await?;
        buf.truncate(sent);
        (result, buf) = start(&mut stream, buf, &mut x, deadline).await;
    }
    match result {
        Ok(head) => {
            x.status = head.status;
            x.framing = head.framing;
            x.keep = head.keep;
            x.stream = Some(stream);
            x.buf = buf;
            x.pos = head.len;
            x.delivered = 0;
            x.chunked = Chunked::new(limits.max_body, 16 * 1024);
            x.done = false;
            x.key = target.pool_key;
            x.deadline = deadline;
            x.max_body = limits.max_body;
            Ok(Streaming(x))
        }
        Err(Attempt::Stale) => Err(UpstreamError::Closed),
        Err(Attempt::Failed(e)) => Err(e),
    }
}

async fn fresh(pool: &RefCell<Pool>, target: &Target, limits: Limits) -> Result<Stream, UpstreamError> {
    match pool::connect(target, limits.connect).await {
        Ok(s) => {
            pool.borrow_mut().connected(target.pool_key);
            Ok(s)
        }
        Err(_) => {
            pool.borrow_mut().connect_failed(target.pool_key);
            Err(UpstreamError::Connect)
        }
    }
}

enum Attempt {
    /// Closed before any response byte: safe to retry on a fresh connection.
    Stale,
    Failed(UpstreamError),
}

/// A response head (its kept headers are in the exchange): where it ends in the exchange's
/// buffer.
struct HeadPart {
    status: u16,
    len: usize,
    framing: BodyFraming,
    keep: bool,
}

/// Writes the request and reads the response head, by `deadline` (the attempt's), into the
/// request's own buffer after the request's bytes (kept there for the one retry of a stale pooled
/// connection): the request's buffer becomes the response's, so an exchange allocates no buffer
/// of its own. Hands the buffer back (empty when the deadline passed mid-write). The kept
/// headers go to `x`.
async fn start(
    stream: &mut Stream,
    request: Vec<u8>,
    x: &mut Exchange,
    deadline: Instant,
) -> (Result<HeadPart, Attempt>, Vec<u8>) {
    let sent = request.len();
    let attempt = std::pin::pin!(async {
        let mut buf = match stream.write_all(request).await {
            (Ok(_), r) => r,
            (Err(_), r) => return (Err(Attempt::Stale), r),
        };
        let head = read_head(stream, &mut buf, sent, &mut x.headers).await;
        (head, buf)
    });
    match x.deadlines.timeout(deadline, attempt).await {
        Ok(done) => done,
        Err(_) => (Err(Attempt::Failed(UpstreamError::Timeout)), Vec::new()),
    }
}

/// Reads until `buf[from..]` holds a complete response head.
async fn read_head(
    stream: &mut Stream,
    buf: &mut Vec<u8>,
    from: usize,
    headers: &mut Kept,
) -> Result<HeadPart, Attempt> {
    loop {
        let got = buf.len() - from;
        if got > 0 {
            if let Some((status, len, framing, keep)) =
                parse_head(&buf[from..], headers).map_err(Attempt::Failed)?
            {
                return Ok(HeadPart { status, len: from + len, framing, keep });
            }
            if got > 64 * 1024 {
                return Err(Attempt::Failed(UpstreamError::Invalid("response head too large")));
            }
        }
        let (end, b) = read(stream, std::mem::take(buf)).await;
        *buf = b;
        match end {
            Read::Data => {}
            Read::Eof if got == 0 => return Err(Attempt::Stale),
            Read::Eof => return Err(Attempt::Failed(UpstreamError::Closed)),
        }
    }
}

/// A response whose body is being read. Its state is an [`Exchange`] in a box that this
/// thread reuses ([`Streaming::finish`] gives it back): moving a `Streaming` through the
/// futures of the call path copies a pointer, where the ~400-byte state used to be copied ~30
/// times per call.
pub struct Streaming(Box<Exchange>);

/// The state of a [`Streaming`] response, read through it.
pub struct Exchange {
    /// Status code.
    pub status: u16,
    /// The response header lines the proxy reads.
    pub headers: Kept,
    framing: BodyFraming,
    keep: bool,
    /// `None` only in a spare.
    stream: Option<Stream>,
    buf: Vec<u8>,
    pos: usize,
    delivered: usize,
    chunked: Chunked,
    out: Vec<u8>,
    done: bool,
    key: pool::Key,
    deadlines: Rc<Deadlines>,
    deadline: Instant,
    max_body: usize,
}

/// Spare exchange states a thread keeps (each ~420 bytes).
const MAX_SPARE: usize = 64;

thread_local! {
    /// This thread's spare exchange states: per worker, never shared, so no lock. Boxed: the
    /// box itself is what a `Streaming` hands around.
    #[allow(clippy::vec_box)]
    static SPARE: RefCell<Vec<Box<Exchange>>> = const { RefCell::new(Vec::new()) };
}

impl Exchange {
    /// A state from this thread's spares (a new one when there is none) whose waits are kept
    /// in `deadlines`.
    fn spare(deadlines: &Rc<Deadlines>) -> Box<Exchange> {
        let mut x = SPARE.with(|s| s.borrow_mut().pop()).unwrap_or_else(|| {
            Box::new(Exchange {
                status: 0,
                headers: Kept::default(),
                framing: BodyFraming::Length(0),
                keep: false,
                stream: None,
                buf: Vec::new(),
                pos: 0,
                delivered: 0,
                chunked: Chunked::new(0, 0),
                out: Vec::new(),
                done: true,
                key: (std::net::SocketAddr::from(([0, 0, 0, 0], 0)), 0),
                deadlines: deadlines.clone(),
                deadline: Instant::now(),
                max_body: 0,
            })
        });
        if !Rc::ptr_eq(&x.deadlines, deadlines) {
            x.deadlines = deadlines.clone();
        }
        x
    }

    /// Back to this thread's spares, holding no connection, buffer or header value.
    fn recycle(mut self: Box<Exchange>) {
        self.stream = None;
        self.buf = Vec::new();
        self.headers.clear();
        self.out.clear();
        if self.out.capacity() > 64 * 1024 {
            self.out = Vec::new();
        }
        SPARE.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < MAX_SPARE {
                s.push(self);
            }
        });
    }
}

impl std::ops::Deref for Streaming {
    type Target = Exchange;
    fn deref(&self) -> &Exchange {
        &self.0
    }
}

impl std::ops::DerefMut for Streaming {
    fn deref_mut(&mut self) -> &mut Exchange {
        &mut self.0
    }
}

impl Streaming {
    /// First header named `name` (lower case), when it is one of [`KEPT`].
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name)
    }

    /// Whether the whole body arrived with the head (reading it waits for nothing).
    pub fn complete(&self) -> bool {
        matches!(self.framing, BodyFraming::Length(n) if self.delivered == 0 && self.buf.len() - self.pos == n)
    }

    /// Makes this an open-ended stream (a `GET` SSE stream): no cap on the total body, whose
    /// reader bounds each event instead, and no overall deadline ([`Streaming::wait_at_most`]
    /// sets one per read). Call before the first [`Streaming::next`].
    pub fn endless(&mut self) {
        self.max_body = usize::MAX;
        self.chunked = Chunked::new(usize::MAX, 16 * 1024);
    }

    /// The next read (and every later one until called again) waits at most `idle`.
    pub fn wait_at_most(&mut self, idle: Duration) {
        self.deadline = Instant::now() + idle;
    }

    /// The whole body when it is Content-Length framed and already read with the head (the
    /// common case for JSON answers): the read buffer itself, moved, not copied.
    fn take_buffered_body(&mut self) -> Option<Vec<u8>> {
        let BodyFraming::Length(n) = self.framing else { return None };
        if !self.complete() || n > self.max_body {
            return None;
        }
        let mut body = std::mem::take(&mut self.buf);
        body.drain(..self.pos);
        self.pos = 0;
        self.delivered = n;
        self.done = true;
        Some(body)
    }

    /// The next piece of the (de-chunked) body, `None` at its end. Each read waits at most until
    /// the attempt's deadline.
    pub async fn next(&mut self) -> Result<Option<&[u8]>, UpstreamError> {
        let x = &mut *self.0;
        loop {
            if x.done {
                return Ok(None);
            }
            let available = x.buf.len() - x.pos;
            match x.framing {
                BodyFraming::Length(n) => {
                    if n > x.max_body {
                        return Err(UpstreamError::Invalid("response body too large"));
                    }
                    if x.delivered == n {
                        x.done = true;
                        continue;
                    }
                    if available > 0 {
                        let take = available.min(n - x.delivered);
                        let piece = x.pos..x.pos + take;
                        x.pos += take;
                        x.delivered += take;
                        return Ok(Some(&x.buf[piece]));
                    }
                }
                BodyFraming::Chunked => {
                    if available > 0 {
                        x.out.clear();
                        x.pos += x
                            .chunked
                            .decode(&x.buf[x.pos..], &mut x.out)
                            .map_err(|_| UpstreamError::Invalid("bad chunked body"))?;
                        x.delivered += x.out.len();
                        if x.delivered > x.max_body {
                            return Err(UpstreamError::Invalid("response body too large"));
                        }
                        x.done = x.chunked.is_done();
                        if !x.out.is_empty() {
                            return Ok(Some(&x.out));
                        }
                        continue;
                    }
                }
                BodyFraming::UntilClose => {
                    if available > 0 {
                        x.delivered += available;
                        if x.delivered > x.max_body {
                            return Err(UpstreamError::Invalid("response body too large"));
                        }
                        let piece = x.pos..x.buf.len();
                        x.pos = x.buf.len();
                        return Ok(Some(&x.buf[piece]));
                    }
                }
            }
            // Everything buffered was handed out: reuse the buffer for the next read.
            x.buf.clear();
            x.pos = 0;
            let buf = std::mem::take(&mut x.buf);
            let Some(stream) = x.stream.as_mut() else { return Err(UpstreamError::Closed) };
            let read = std::pin::pin!(read(stream, buf));
            let (end, b) = match x.deadlines.timeout(x.deadline, read).await {
                Ok(r) => r,
                Err(_) => return Err(UpstreamError::Timeout),
            };
            x.buf = b;
            match end {
                Read::Data => {}
                Read::Eof if x.framing == BodyFraming::UntilClose => x.done = true,
                Read::Eof => return Err(UpstreamError::Closed),
            }
        }
    }

    /// Returns the connection to the pool when the whole body was read and it may be reused.
    /// The exchange's state goes back to this thread's spares either way.
    pub fn finish(self, pool: &RefCell<Pool>) {
        let mut x = self.0;
        if x.done && x.keep && x.framing != BodyFraming::UntilClose && x.pos == x.buf.len() {
            if let Some(stream) = x.stream.take() {
                pool.borrow_mut().put(x.key, stream, Instant::now());
            }
        }
        x.recycle();
    }
}

/// How a read ended.
enum Read {
    Data,
    Eof,
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

type Head = (u16, usize, BodyFraming, bool);

/// Parses a response head (RFC 9112 6.3 framing rules for responses), its [`KEPT`] headers
/// into `headers`.
fn parse_head(buf: &[u8], headers: &mut Kept) -> Result<Option<Head>, UpstreamError> {
    // Uninitialized slots: filling 64 empty headers first would copy 2 KiB per response.
    let mut slots = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; 64];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(UpstreamError::Invalid("malformed response head")),
    };
    let status = resp.code.unwrap_or(0);
    headers.clear();
    let (mut cl, mut chunked, mut close) = (None, false, resp.version == Some(0));
    for h in resp.headers.iter() {
        headers.keep(h.name, h.value);
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<usize>().ok());
            match (n, cl) {
                (Some(n), None) => cl = Some(n),
                (Some(n), Some(prev)) if n == prev => {}
                _ => return Err(UpstreamError::Invalid("bad Content-Length")),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.trim_ascii_end().ends_with(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            close |= h.value.eq_ignore_ascii_case(b"close");
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
    Ok(Some((status, len, framing, !close)))
}

#[cfg(test)]
mod tests;
