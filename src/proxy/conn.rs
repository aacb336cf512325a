//! One client connection: the socket, its reused buffers and the I/O the pipeline asks for (read
//! a head, read a body, write the response). Buffers pass ownership into monoio and come back on
//! every completed operation; an operation abandoned on a timeout or drain takes its buffer with
//! it, and the connection is closed in exactly those cases, so no state is ever reused after one.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::future::Either;
use monoio::buf::{IoBufMut, SliceMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use crate::config::snapshot::Limits;
use crate::error::{Error, Kind};
use crate::http::body::Chunked;
use crate::http::head::{self, Framing, Head, Parsed};
use crate::proxy::core::{Event, Spare};
use crate::timer::Deadlines;

/// Read buffer capacity a connection starts with; enough for a typical MCP head and small body.
const INITIAL_READ: usize = 4 * 1024;
/// A connection whose buffers grew past this (a large body) gives the memory back afterwards.
const SHRINK_ABOVE: usize = 64 * 1024;

/// How long a quiet plain connection keeps its buffers and pipeline before it idles holding
/// none (the next request of a busy client comes sooner).
pub const IDLE_HOLD: Duration = Duration::from_millis(100);

/// How long a connection accepted just before a drain may take to send its first bytes: its
/// client has sent (or is sending) a request, which is served rather than dropped.
const FIRST_BYTES_AT_DRAIN: Duration = Duration::from_millis(250);

/// What the first wait of a quiet connection ended with.
enum Idle {
    /// A read ended: bytes, the end, an error, or (`None`) the timeout or a drain.
    Read(Option<std::io::Result<usize>>),
    /// Nothing arrived within [`IDLE_HOLD`]: the connection idles holding nothing
    /// ([`Link::wait`]); its buffers went back to the worker.
    Cold,
}

/// Outcome of waiting for a request head.
pub enum HeadRead {
    /// A head is parsed into `Conn::head`.
    Ready,
    /// The peer closed (or idled out, or the worker is draining) between requests.
    Closed,
    /// A plain connection stayed quiet for [`IDLE_HOLD`]: it gave its buffers back and waits
    /// for its next bytes outside the request pipeline.
    Idle,
    /// The head is bad, too large or too slow; answer and close.
    Failed(Error),
}

/// The client's transport: plain TCP, or TLS terminated here.
pub enum ClientStream {
    /// A plain listener.
    Plain(TcpStream),
    /// A `tls` listener, after the handshake.
    Tls(Box<crate::tls::TlsStream>),
}

impl ClientStream {
    /// Reads into the spare capacity of `buf` (appending), handing it back.
    async fn read_append(&mut self, buf: Vec<u8>) -> (std::io::Result<usize>, Vec<u8>) {
        match self {
            ClientStream::Plain(s) => {
                let len = buf.len();
                let (r, slice) = s.read(buf.slice_mut(len..)).await;
                (r, slice.into_inner())
            }
            ClientStream::Tls(s) => s.read_append(buf).await,
        }
    }

    /// Writes all of `buf`, handing it back.
    async fn write_all(&mut self, buf: Vec<u8>) -> (std::io::Result<usize>, Vec<u8>) {
        match self {
            ClientStream::Plain(s) => s.write_all(buf).await,
            ClientStream::Tls(s) => {
                let r = s.write_all(&buf).await.map(|()| buf.len());
                (r, buf)
            }
        }
    }
}

/// What a connection keeps between requests, when it idles holding nothing else (see
/// [`crate::proxy::idle`]).
pub struct Link {
    pub(crate) stream: ClientStream,
    /// The client's certificate, on a TLS listener that asked for one and got it.
    pub client_cert: Option<Box<crate::auth::mtls::ClientCert>>,
    /// The peer's address.
    pub peer: SocketAddr,
    /// No request has arrived yet on this connection.
    pub(crate) fresh: bool,
}

impl Link {
    /// Wraps an accepted stream.
    pub fn new(stream: ClientStream, peer: SocketAddr) -> Link {
        let client_cert = match &stream {
            ClientStream::Tls(t) => {
                t.peer_certificates().map(|c| Box::new(crate::auth::mtls::ClientCert::new(c.to_vec())))
            }
            ClientStream::Plain(_) => None,
        };
        Link { stream, client_cert, peer, fresh: true }
    }

    /// Waits, holding nothing else, until the idle connection's next bytes (or its end) can be
    /// read: `true` then, `false` when it idled out (`left`: the rest of the idle timeout after
    /// [`IDLE_HOLD`], kept by the worker's coarse `deadlines`) or the worker drains (a
    /// connection that never sent a request gets [`FIRST_BYTES_AT_DRAIN`] more for it). No
    /// monoio timer: one is 640 bytes at 128-byte alignment, more than the rest of the task.
    pub async fn wait(&self, left: Duration, deadlines: &Deadlines, drain: &Event) -> bool {
        let ClientStream::Plain(stream) = &self.stream else { return true };
        let at = Instant::now() + left;
        let ready = stream.readable(false);
        let mut ready = std::pin::pin!(ready);
        monoio::select! {
            r = &mut ready => r.is_ok(),
            _ = deadlines.until(at) => false,
            _ = drain.wait() => {
                if !self.fresh {
                    return false;
                }
                let grace = Instant::now() + FIRST_BYTES_AT_DRAIN;
                monoio::select! {
                    r = &mut ready => r.is_ok(),
                    _ = deadlines.until(grace) => false,
                }
            }
        }
    }
}

/// A client connection while it serves requests: its [`Link`] and per-request buffers.
pub struct Conn {
    /// The connection itself.
    pub link: Link,
    /// Bytes read and not yet consumed: the current head, then (Content-Length) its body, then
    /// any pipelined bytes.
    pub buf: Vec<u8>,
    /// The current request's head.
    pub head: Head,
    /// De-chunked body of the current request (chunked requests only).
    pub chunked_body: Vec<u8>,
    /// Where the current body lives: `None` = in `chunked_body`, `Some(range)` = in `buf`.
    body_in_buf: Option<(usize, usize)>,
    /// Bytes of `buf` that belong to the current request.
    consumed: usize,
    /// Whether the current body has been read.
    pub body_read: bool,
    /// Response bytes being assembled.
    pub out: Vec<u8>,
    /// Scratch for response bodies.
    pub scratch: Vec<u8>,
    /// Scratch for rendering (templates, ids).
    pub tmp: Vec<u8>,
    /// The capabilities a 2026-07-28 request declared (`_meta`), as JSON: what a backend reached
    /// over a gateway-owned session is told at `initialize`.
    pub caps: Vec<u8>,
    /// Request id of the current request.
    pub request_id: Vec<u8>,
    /// Cancels an idle connection's read (`idle_fill`); one per connection, renewed when used.
    canceller: monoio::io::Canceller,
    /// The connection closes with request bytes the client may still be sending (an answer
    /// given before the body was read): [`Conn::close`] drains them first.
    pub linger: bool,
    /// The worker's deadlines, which every wait of this connection is bounded by.
    timer: Rc<Deadlines>,
}

/// Lingering close (as nginx's `lingering_close`): after an answer sent before the request was
/// read, the write side is shut and the rest of the request read and discarded, so the client
/// reads the answer instead of a reset. At most this long in all,
const LINGER_TIME: Duration = Duration::from_secs(5);
/// this long without a byte,
const LINGER_IDLE: Duration = Duration::from_secs(1);
/// and this many bytes.
const LINGER_BYTES: usize = 8 * 1024 * 1024;

impl Conn {
    /// A connection about to read a request, with buffers from the worker's spares.
    pub fn new(link: Link, spare: &std::cell::RefCell<Spare>, timer: Rc<Deadlines>) -> Conn {
        let mut conn = Conn {
            link,
            buf: Vec::new(),
            head: Head::default(),
            chunked_body: Vec::new(),
            body_in_buf: Some((0, 0)),
            consumed: 0,
            body_read: true,
            out: Vec::new(),
            scratch: Vec::new(),
            tmp: Vec::new(),
            caps: Vec::new(),
            request_id: Vec::with_capacity(32),
            canceller: monoio::io::Canceller::new(),
            linger: false,
            timer,
        };
        conn.borrow(spare);
        conn
    }

    /// The connection without its buffers, which go back to the worker's spares.
    pub fn into_link(mut self, spare: &std::cell::RefCell<Spare>) -> Link {
        self.lend(spare);
        self.link
    }

    /// The current request's body (empty until read).
    pub fn body(&self) -> &[u8] {
        match self.body_in_buf {
            Some((s, e)) => self.buf.get(s..e).unwrap_or(&[]),
            None => &self.chunked_body,
        }
    }

    /// Reads more bytes into `buf`, waiting until `at` at most, and giving up early when `drain`
    /// is set if `interruptible` (a connection that has not sent its first request yet gets
    /// [`FIRST_BYTES_AT_DRAIN`] more on the same read). Returns bytes read (0 = EOF) or `None`
    /// on timeout/drain.
    async fn fill(
        &mut self,
        at: Instant,
        drain: &Event,
        interruptible: bool,
    ) -> Option<std::io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            // Grow in bounded steps: never by more than 64 KiB at a time, whatever a peer
            // announced, and without doubling a large buffer for its last few bytes.
            self.buf.reserve(self.buf.len().clamp(INITIAL_READ, 64 * 1024));
        }
        let buf = std::mem::take(&mut self.buf);
        let fresh = self.link.fresh;
        let read = std::pin::pin!(self.link.stream.read_append(buf));
        let read = self.timer.timeout(at, read);
        let res = if interruptible {
            let mut read = std::pin::pin!(read);
            monoio::select! {
                r = &mut read => r,
                _ = drain.wait() => {
                    if !fresh {
                        return None;
                    }
                    // Accepted just before the drain: its request may be on the way. The same
                    // read stays armed: an abandoned io_uring read still consumes the bytes
                    // that arrive, so a second read would never see them.
                    let grace = Instant::now() + FIRST_BYTES_AT_DRAIN;
                    self.timer.timeout(grace, read.as_mut()).await.ok()?
                }
            }
        } else {
            read.await
        };
        let (res, buf) = res.ok()?;
        self.buf = buf;
        Some(res)
    }

    /// The connection's byte buffers, the read buffer first.
    fn buffers(&mut self) -> [&mut Vec<u8>; 6] {
        [
            &mut self.buf,
            &mut self.out,
            &mut self.scratch,
            &mut self.tmp,
            &mut self.caps,
            &mut self.chunked_body,
        ]
    }

    /// Gives the connection's buffers to the worker's spares (it idles: nothing is buffered).
    /// The read buffer goes last, so that it is the first taken back.
    fn lend(&mut self, spare: &std::cell::RefCell<Spare>) {
        let mut spare = spare.borrow_mut();
        for v in self.buffers().into_iter().rev() {
            spare.give(std::mem::take(v));
        }
    }

    /// Takes buffers from the worker's spares (bytes arrived).
    fn borrow(&mut self, spare: &std::cell::RefCell<Spare>) {
        let mut spare = spare.borrow_mut();
        for v in self.buffers() {
            *v = spare.take();
        }
    }

    /// The next request's first bytes on an idle plain connection: an ordinary read, for
    /// [`IDLE_HOLD`] (the next request of a busy client comes sooner); then the read is
    /// cancelled - and awaited, so bytes it took meanwhile are kept - and, when the idle timeout
    /// is longer than the hold, the connection's buffers go to the worker's `spare` and it is
    /// `Cold`: it waits for the rest of `wait` outside the pipeline ([`Link::wait`]).
    async fn idle_fill(&mut self, wait: Duration, drain: &Event, spare: &std::cell::RefCell<Spare>) -> Idle {
        use monoio::io::CancelableAsyncReadRent;
        let fresh = self.link.fresh;
        if self.buf.capacity() < 1024 {
            if self.buf.capacity() == 0 {
                self.buf = spare.borrow_mut().take();
            }
            self.buf.reserve(INITIAL_READ);
        }
        let buf = std::mem::take(&mut self.buf);
        let hold = IDLE_HOLD.min(wait);
        let (res, slice) = {
            let ClientStream::Plain(stream) = &mut self.link.stream else {
                self.buf = buf;
                return Idle::Read(None);
            };
            // Under epoll a read that has not completed has taken nothing, so dropping it is its
            // cancellation, and monoio's canceller (a SipHash set entry per read, ~850
            // instructions) is left out; under io_uring the kernel may be filling the buffer.
            let uring = monoio::utils::detect_uring();
            let read = if uring {
                Either::Left(stream.cancelable_read(buf.slice_mut(0..), self.canceller.handle()))
            } else {
                Either::Right(stream.read(buf.slice_mut(0..)))
            };
            let mut read = std::pin::pin!(read);
            let early = monoio::select! {
                r = &mut read => Some(r),
                _ = self.timer.until(Instant::now() + hold) => None,
                _ = drain.wait() => {
                    if !fresh {
                        return Idle::Read(None);
                    }
                    // Accepted just before the drain: its request may be on the way.
                    match self.timer.timeout(Instant::now() + FIRST_BYTES_AT_DRAIN, read.as_mut()).await {
                        Ok(r) => Some(r),
                        Err(_) => return Idle::Read(None),
                    }
                }
            };
            match early {
                Some((r, slice)) => (Some(r), Some(slice)),
                None if uring => {
                    self.canceller = std::mem::take(&mut self.canceller).cancel();
                    let (r, slice) = read.await;
                    (Some(r), Some(slice))
                }
                // The dropped read frees its buffer: the connection idles holding none anyway.
                None => (None, None),
            }
        };
        self.buf = slice.map(SliceMut::into_inner).unwrap_or_default();
        match res {
            // ECANCELED: the read took nothing.
            Some(Err(e)) if e.raw_os_error() == Some(125) => {}
            None => {}
            Some(r) => return Idle::Read(Some(r)),
        }
        if wait <= hold {
            return Idle::Read(None);
        }
        self.lend(spare);
        Idle::Cold
    }

    /// Phase 1: waits for and parses the next request head. Between requests the idle timeout
    /// applies (and a drain closes the connection); once the first byte arrived, the whole head
    /// must arrive within the head timeout. A plain connection quiet for [`IDLE_HOLD`] returns
    /// `Idle`: its buffers went to the worker's `spare`, and it waits for its next request
    /// holding none ([`Link::wait`]).
    pub async fn read_head(
        &mut self,
        limits: &Limits,
        drain: &Event,
        spare: &std::cell::RefCell<Spare>,
    ) -> HeadRead {
        let mut deadline: Option<Instant> = None;
        let mut drain_grace = self.link.fresh;
        // Bytes already searched for the end of the head: re-parsing the whole head on every
        // read would let a client sending one byte per segment cost O(n^2).
        let mut scanned = 0usize;
        loop {
            // The first attempt goes straight to httparse (a head almost always arrives in one
            // read); later attempts only scan the new bytes for a possible end of head.
            let end_seen = scanned == 0 || {
                let tail = &self.buf[scanned.saturating_sub(3)..];
                tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n")
            };
            scanned = self.buf.len();
            if end_seen || self.buf.len() >= limits.http.max_header_bytes {
                match head::parse(&self.buf, &limits.http, &mut self.head) {
                    Ok(Parsed::Complete) => {
                        self.link.fresh = false;
                        self.consumed = self.head.len;
                        self.body_in_buf = Some((self.head.len, self.head.len));
                        self.body_read = self.head.framing == Framing::None;
                        return HeadRead::Ready;
                    }
                    Ok(Parsed::Partial) => {}
                    Err(e) => return HeadRead::Failed(e),
                }
            }
            // Between requests the wait is the idle timeout (`None`: an idle plain connection's
            // first read counts it itself); once bytes came, the head's deadline.
            let (at, interruptible) = match deadline {
                // A fresh connection when the drain began: a short, last wait for its request.
                None if self.buf.is_empty() && drain_grace && drain.is_set() => {
                    drain_grace = false;
                    (Some(Instant::now() + FIRST_BYTES_AT_DRAIN), false)
                }
                None if self.buf.is_empty() => (None, true),
                None => {
                    let d = Instant::now() + limits.header_timeout;
                    deadline = Some(d);
                    (Some(d), false)
                }
                Some(d) => (Some(d), false),
            };
            let had_bytes = !self.buf.is_empty();
            let idle = !had_bytes && interruptible && matches!(self.link.stream, ClientStream::Plain(_));
            let filled = match at {
                None if idle => match self.idle_fill(limits.idle_timeout, drain, spare).await {
                    Idle::Read(r) => r,
                    Idle::Cold => return HeadRead::Idle,
                },
                None => self.fill(Instant::now() + limits.idle_timeout, drain, interruptible).await,
                Some(at) => self.fill(at, drain, interruptible).await,
            };
            match filled {
                Some(Ok(0)) | Some(Err(_)) => {
                    return if !had_bytes {
                        HeadRead::Closed
                    } else {
                        HeadRead::Failed(Error::client(Kind::BadRequest, "connection closed mid-head"))
                    };
                }
                Some(Ok(_)) => {
                    if deadline.is_none() {
                        deadline = Some(Instant::now() + limits.header_timeout);
                    }
                }
                None if !had_bytes => return HeadRead::Closed,
                None => {
                    return HeadRead::Failed(Error::client(
                        Kind::HeadTimeout,
                        "request head not received in time",
                    ))
                }
            }
        }
    }

    /// Phase 4 I/O: reads the body the head announced, honouring `Expect: 100-continue` and the
    /// body limit. Each read must make progress within the idle timeout.
    pub async fn read_body(&mut self, limits: &Limits, drain: &Event) -> Result<(), Error> {
        if self.body_read {
            return Ok(());
        }
        let start = self.head.len;
        let max = limits.http.max_body_bytes;
        let too_large = || Error::client(Kind::BodyTooLarge, "request body too large");
        let timeout = || Error::client(Kind::HeadTimeout, "request body not received in time");
        let closed = || Error::client(Kind::BadRequest, "connection closed mid-body");
        // The whole body must arrive within the head timeout plus the idle timeout: each read
        // making progress is not enough, or one byte per idle period would hold the connection.
        let deadline = Instant::now() + limits.header_timeout + limits.idle_timeout;
        match self.head.framing {
            Framing::None => {}
            Framing::Length(n) => {
                if n > max as u64 {
                    return Err(too_large());
                }
                let end = start + n as usize;
                if self.buf.len() < end {
                    self.continue_if_expected(limits).await?;
                }
                while self.buf.len() < end {
                    let at = deadline.min(Instant::now() + limits.idle_timeout);
                    match self.fill(at, drain, false).await {
                        Some(Ok(0)) | Some(Err(_)) => return Err(closed()),
                        Some(Ok(_)) => {}
                        None => return Err(timeout()),
                    }
                }
                self.body_in_buf = Some((start, end));
                self.consumed = end;
            }
            Framing::Chunked => {
                let mut dec = Chunked::new(max, limits.http.max_header_bytes);
                self.chunked_body.clear();
                let mut pos = start;
                if self.buf.len() == start {
                    self.continue_if_expected(limits).await?;
                }
                loop {
                    pos += dec.decode(&self.buf[pos..], &mut self.chunked_body)?;
                    if dec.is_done() {
                        break;
                    }
                    // Raw chunked bytes in flight are bounded: decoded data leaves `buf` as it is
                    // consumed, so compact once the consumed prefix dominates.
                    if pos > start && pos == self.buf.len() {
                        self.buf.truncate(start);
                        pos = start;
                    }
                    let at = deadline.min(Instant::now() + limits.idle_timeout);
                    match self.fill(at, drain, false).await {
                        Some(Ok(0)) | Some(Err(_)) => return Err(closed()),
                        Some(Ok(_)) => {}
                        None => return Err(timeout()),
                    }
                }
                self.body_in_buf = None;
                self.consumed = pos;
            }
        }
        self.body_read = true;
        Ok(())
    }

    async fn continue_if_expected(&mut self, limits: &Limits) -> Result<(), Error> {
        if self.head.expect_continue {
            self.head.expect_continue = false;
            let write = std::pin::pin!(self.link.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()));
            match self.timer.timeout(Instant::now() + limits.idle_timeout, write).await {
                Ok((Ok(_), _)) => {}
                Ok((Err(_), _)) => return Err(Error::client(Kind::BadRequest, "connection closed")),
                Err(_) => return Err(Error::client(Kind::HeadTimeout, "client is not reading responses")),
            }
        }
        Ok(())
    }

    /// Phase 7 I/O: writes `out` (within the idle timeout) and clears it.
    pub async fn flush(&mut self, limits: &Limits) -> bool {
        let out = std::mem::take(&mut self.out);
        let write = std::pin::pin!(self.link.stream.write_all(out));
        match self.timer.timeout(Instant::now() + limits.idle_timeout, write).await {
            Ok((res, mut out)) => {
                out.clear();
                self.out = out;
                res.is_ok()
            }
            Err(_) => false,
        }
    }

    /// Ends the connection cleanly (TLS: `close_notify`), bounded by a short timeout.
    pub async fn close(&mut self) {
        match &mut self.link.stream {
            ClientStream::Tls(s) => {
                let _ = self
                    .timer
                    .timeout(Instant::now() + Duration::from_secs(1), std::pin::pin!(s.close()))
                    .await;
            }
            ClientStream::Plain(s) if self.linger => {
                use monoio::io::AsyncWriteRent;
                let _ = s.shutdown().await;
            }
            ClientStream::Plain(_) => {}
        }
        if self.linger {
            self.drain_input().await;
        }
    }

    /// Reads and discards what the client still sends, within [`LINGER_TIME`], [`LINGER_IDLE`]
    /// and [`LINGER_BYTES`].
    async fn drain_input(&mut self) {
        let deadline = Instant::now() + LINGER_TIME;
        let mut left = LINGER_BYTES;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.reserve(64 * 1024);
        while left > 0 {
            let now = Instant::now();
            if deadline <= now {
                break;
            }
            let at = deadline.min(now + LINGER_IDLE);
            let read = std::pin::pin!(self.link.stream.read_append(buf));
            match self.timer.timeout(at, read).await {
                Ok((Ok(n), b)) if n > 0 => {
                    left = left.saturating_sub(n);
                    buf = b;
                    buf.clear();
                }
                _ => break,
            }
        }
    }

    /// Drops the finished request's bytes, keeping pipelined ones, and returns memory a large
    /// request borrowed.
    pub fn finish_request(&mut self) {
        let n = self.consumed.min(self.buf.len());
        self.buf.drain(..n);
        self.consumed = 0;
        self.body_in_buf = Some((0, 0));
        self.body_read = true;
        if self.buf.capacity() > SHRINK_ABOVE && self.buf.len() < INITIAL_READ {
            self.buf.shrink_to(INITIAL_READ);
        }
        for v in [&mut self.chunked_body, &mut self.scratch, &mut self.tmp, &mut self.out] {
            v.clear();
            if v.capacity() > SHRINK_ABOVE {
                v.shrink_to(1024);
            }
        }
    }
}
