//! The per-core keep-alive pool: idle connections by endpoint, most recently used first (they are
//! the least likely to have been closed by the backend). Bounded per endpoint; connections idle
//! past the TTL are dropped instead of reused. Owned by one worker; no locks.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::buf::{IoBufMut, SliceMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustc_hash::FxHashMap;

use crate::timer::Deadlines;
use crate::upstream::target::Target;

/// A connection to a backend: plain TCP, or TLS over TCP (rustls driven on this runtime).
pub enum Stream {
    /// `http://`
    Plain(TcpStream),
    /// `https://`
    Tls(Box<monoio_rustls::ClientTlsStream<TcpStream>>),
}

impl Stream {
    /// Writes all of `buf`, handing it back.
    pub async fn write_all(&mut self, buf: Vec<u8>) -> (std::io::Result<usize>, Vec<u8>) {
        match self {
            Stream::Plain(s) => s.write_all(buf).await,
            Stream::Tls(s) => s.write_all(buf).await,
        }
    }

    /// Reads into the spare capacity `buf` describes, handing it back.
    pub async fn read(&mut self, buf: SliceMut<Vec<u8>>) -> (std::io::Result<usize>, SliceMut<Vec<u8>>) {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
        }
    }
}

/// Pool key: address plus TLS name hash (0 for plain).
pub type Key = (SocketAddr, u64);

/// Spare capacity of `buf` from its length on, for a read.
pub fn spare(buf: Vec<u8>) -> SliceMut<Vec<u8>> {
    let len = buf.len();
    buf.slice_mut(len..)
}

/// Idle connections one worker keeps per endpoint.
pub const MAX_IDLE_PER_ENDPOINT: usize = 64;
/// How long an idle connection may wait for reuse (backends commonly close after 60-75 s).
pub const IDLE_TTL: Duration = Duration::from_secs(30);

/// Counters of one endpoint (metrics; summed across workers at scrape time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// New connections opened.
    pub connects: u64,
    /// Requests served on a pooled connection.
    pub reuses: u64,
    /// Connections that could not be opened (refused, timed out, TLS handshake failed).
    pub connect_failures: u64,
}

/// One endpoint: its idle connections and its counters, under one key so a request looks the
/// endpoint up once.
#[derive(Default)]
struct Endpoint {
    idle: Vec<(Stream, Instant)>,
    counters: Counters,
}

/// A worker's upstream connections, and the deadlines its exchanges wait on.
pub struct Pool {
    endpoints: FxHashMap<Key, Endpoint>,
    /// New connections opened (for the reuse figure).
    pub connects: u64,
    /// Requests served on a pooled connection.
    pub reuses: u64,
    deadlines: Rc<Deadlines>,
}

impl Default for Pool {
    /// A pool with deadlines of its own.
    fn default() -> Pool {
        Pool::new(Deadlines::new())
    }
}

impl Pool {
    /// A pool whose exchanges' timeouts are kept in `deadlines` (the worker's).
    pub fn new(deadlines: Rc<Deadlines>) -> Pool {
        Pool { endpoints: FxHashMap::default(), connects: 0, reuses: 0, deadlines }
    }

    /// The deadlines the exchanges wait on.
    pub fn deadlines(&self) -> &Rc<Deadlines> {
        &self.deadlines
    }

    /// A warm idle connection to `addr`, if one is young enough.
    pub fn take(&mut self, key: Key, now: Instant) -> Option<Stream> {
        let e = self.endpoints.get_mut(&key)?;
        while let Some((stream, since)) = e.idle.pop() {
            if now.duration_since(since) < IDLE_TTL {
                self.reuses += 1;
                e.counters.reuses += 1;
                return Some(stream);
            }
        }
        None
    }

    /// Returns a connection whose last exchange completed cleanly.
    pub fn put(&mut self, key: Key, stream: Stream, now: Instant) {
        let list = &mut self.endpoints.entry(key).or_default().idle;
        // The oldest connection goes first: it is the one most likely to be closed remotely.
        if list.len() >= MAX_IDLE_PER_ENDPOINT {
            list.remove(0);
        }
        list.push((stream, now));
    }

    /// Counts a new connection to `key`.
    pub fn connected(&mut self, key: Key) {
        self.connects += 1;
        self.endpoints.entry(key).or_default().counters.connects += 1;
    }

    /// Counts a connection to `key` that could not be opened.
    pub fn connect_failed(&mut self, key: Key) {
        self.endpoints.entry(key).or_default().counters.connect_failures += 1;
    }

    /// Keeps only the endpoints `keep` accepts (after a reload removed backends).
    pub fn retain(&mut self, keep: impl Fn(&Key) -> bool) {
        self.endpoints.retain(|a, _| keep(a));
    }

    /// Idle connections held for `key`.
    pub fn idle(&self, key: Key) -> usize {
        self.endpoints.get(&key).map_or(0, |e| e.idle.len())
    }

    /// Every endpoint's counters and its idle connections now.
    pub fn endpoints(&self) -> impl Iterator<Item = (Key, Counters, usize)> + '_ {
        self.endpoints.iter().map(|(k, e)| (*k, e.counters, e.idle.len()))
    }
}

/// Opens a connection to `target` within `timeout`, the TLS handshake included.
pub async fn connect(target: &Target, timeout: Duration) -> std::io::Result<Stream> {
    let open = async {
        let s = TcpStream::connect(target.addr).await?;
        let _ = s.set_nodelay(true);
        match &target.tls {
            None => Ok(Stream::Plain(s)),
            Some(tls) => {
                let connector = monoio_rustls::TlsConnector::from(tls.config.clone());
                let s = connector
                    .connect(tls.name.clone(), s)
                    .await
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
                Ok(Stream::Tls(Box::new(s)))
            }
        }
    };
    match monoio::time::timeout(timeout, open).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")),
    }
}
