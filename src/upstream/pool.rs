//! The per-core keep-alive pool: idle connections by endpoint, most recently used first (they are
//! the least likely to have been closed by the backend). Bounded per endpoint; connections idle
//! past the TTL are dropped instead of reused. Owned by one worker; no locks.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;
use rustc_hash::FxHashMap;

/// Idle connections one worker keeps per endpoint.
pub const MAX_IDLE_PER_ENDPOINT: usize = 64;
/// How long an idle connection may wait for reuse (backends commonly close after 60-75 s).
pub const IDLE_TTL: Duration = Duration::from_secs(30);

/// A worker's upstream connections.
#[derive(Default)]
pub struct Pool {
    idle: FxHashMap<SocketAddr, Vec<(TcpStream, Instant)>>,
    /// New connections opened (for the reuse figure).
    pub connects: u64,
    /// Requests served on a pooled connection.
    pub reuses: u64,
}

impl Pool {
    /// A warm idle connection to `addr`, if one is young enough.
    pub fn take(&mut self, addr: SocketAddr, now: Instant) -> Option<TcpStream> {
        let list = self.idle.get_mut(&addr)?;
        while let Some((stream, since)) = list.pop() {
            if now.duration_since(since) < IDLE_TTL {
                self.reuses += 1;
                return Some(stream);
            }
        }
        None
    }

    /// Returns a connection whose last exchange completed cleanly.
    pub fn put(&mut self, addr: SocketAddr, stream: TcpStream, now: Instant) {
        let list = self.idle.entry(addr).or_default();
        // The oldest connection goes first: it is the one most likely to be closed remotely.
        if list.len() >= MAX_IDLE_PER_ENDPOINT {
            list.remove(0);
        }
        list.push((stream, now));
    }

    /// Keeps only the endpoints `keep` accepts (after a reload removed backends).
    pub fn retain(&mut self, keep: impl Fn(&SocketAddr) -> bool) {
        self.idle.retain(|a, _| keep(a));
    }

    /// Idle connections held for `addr`.
    pub fn idle(&self, addr: SocketAddr) -> usize {
        self.idle.get(&addr).map_or(0, Vec::len)
    }
}

/// Opens a connection within `timeout`.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    match monoio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")),
    }
}
