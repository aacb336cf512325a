//! Data-plane listening sockets, and how a worker stops accepting without losing a connection.
//!
//! A `listen` address is served in one of two ways:
//!
//! - **Bound** (the default): every worker binds the address itself with `SO_REUSEPORT`, so the
//!   kernel spreads connections over the workers, and a second gateway process can bind the
//!   same ports while the first drains. Each such socket has its own accept queue, which closes
//!   with it: connections the kernel completed on it but nobody accepted would be reset. A
//!   draining worker therefore cancels its pending accept (the io_uring operation would
//!   otherwise keep the socket open and take one more connection nobody serves), then
//!   [`Listener::close`] takes what is already queued without waiting and closes the socket
//!   right after. What arrives in the microseconds between the last look and the close is
//!   still reset, unless the kernel migrates it (`net.ipv4.tcp_migrate_req=1`).
//! - **Inherited**: a supervisor passed the listening socket (systemd socket activation,
//!   `LISTEN_FDS`; see [`inherited`]). All workers accept from that one socket and queue, and
//!   every process it was passed to shares them; a draining process just stops accepting, and
//!   whatever is queued is accepted by the next process. This is the loss-free upgrade path.

use std::net::{SocketAddr, TcpListener};

/// How a worker gets its listener for one `listen` entry.
#[derive(Debug)]
pub enum Source {
    /// Bind this address with `SO_REUSEPORT` (port 0 is resolved by the first worker).
    Bind(SocketAddr),
    /// A socket handed over by a supervisor, shared by every worker (each gets a duplicate).
    Shared(TcpListener),
}

impl Source {
    /// The source for one more worker: the same address, or a duplicate of the shared socket.
    pub fn for_worker(&self) -> std::io::Result<Source> {
        Ok(match self {
            Source::Bind(a) => Source::Bind(*a),
            Source::Shared(l) => Source::Shared(l.try_clone()?),
        })
    }
}

/// One worker's listening socket: the monoio listener it accepts on, and a second handle on the
/// same socket for the final non-blocking sweep.
pub struct Listener {
    /// Accepts on the worker's runtime.
    pub io: monoio::net::TcpListener,
    /// `None` for an inherited socket: it stays open elsewhere, so nothing queued is lost.
    sweep: Option<TcpListener>,
    /// The bound address (port 0 resolved).
    pub addr: SocketAddr,
}

/// Most connections one sweep takes: a bound socket's backlog (the queue cannot hold more).
pub const BACKLOG: i32 = 1024;

impl Listener {
    /// Binds or adopts the socket. Both kinds are non-blocking (the epoll driver needs it; the
    /// io_uring one does not mind, and the sweep relies on it).
    pub fn open(source: Source) -> std::io::Result<Listener> {
        let (std, shared) = match source {
            Source::Bind(addr) => (bind(addr)?, false),
            Source::Shared(l) => (l, true),
        };
        std.set_nonblocking(true)?;
        let addr = std.local_addr()?;
        let sweep = if shared { None } else { Some(std.try_clone()?) };
        Ok(Listener { io: monoio::net::TcpListener::from_std(std)?, sweep, addr })
    }

    /// Stops listening, once the accept loop has ended: closes the runtime's descriptor, then
    /// takes the connections already queued (without waiting; at most [`BACKLOG`]) and closes
    /// the socket at once, so that nothing can queue in between. Returns what it took (nothing
    /// for an inherited socket, which stays open in the processes it was passed to).
    pub async fn close(self) -> Vec<(monoio::net::TcpStream, SocketAddr)> {
        let Listener { io, sweep, addr } = self;
        drop(io);
        let Some(sweep) = sweep else { return Vec::new() };
        // io_uring closes the dropped descriptor at the runtime's next submission; after it,
        // `sweep` holds the socket's last reference and its close below takes effect at once.
        monoio::time::sleep(std::time::Duration::from_millis(1)).await;
        let taken = Self::take_queued(&sweep, addr);
        drop(sweep);
        taken
    }

    /// Connections in `l`'s accept queue, taken without waiting (at most [`BACKLOG`]).
    fn take_queued(l: &TcpListener, addr: SocketAddr) -> Vec<(monoio::net::TcpStream, SocketAddr)> {
        let mut taken = Vec::new();
        while taken.len() < BACKLOG as usize {
            match l.accept() {
                Ok((s, peer)) => {
                    // accept(2) does not pass O_NONBLOCK on; the epoll driver needs it.
                    let adopted = s.set_nonblocking(true).and_then(|()| monoio::net::TcpStream::from_std(s));
                    match adopted {
                        Ok(s) => taken.push((s, peer)),
                        Err(e) => log::warn!("adopting a queued connection from {peer} failed: {e}"),
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log::warn!("taking the accept queue of {addr}: {e}");
                    break;
                }
            }
        }
        taken
    }
}

/// Refuses to share `addr` with another process by accident: a socket without `SO_REUSEPORT`
/// cannot bind an address on which some socket listens, so a failed probe means another
/// process (or another gateway) already serves it. `SO_REUSEPORT` would otherwise let both
/// bind, and the kernel would spread connections over two configurations. Port 0 is skipped.
pub fn ensure_free(addr: SocketAddr) -> std::io::Result<()> {
    use socket2::{Domain, Protocol, Socket, Type};
    if addr.port() == 0 {
        return Ok(());
    }
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?; // a connection in TIME_WAIT is not a listener
    match s.bind(&addr.into()) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!(
                "{addr} is already in use by another process; to take it over during an upgrade, \
                 start with --takeover (or PORTCULLIS_TAKEOVER=1)"
            ),
        )),
        Err(e) => Err(e),
        Ok(()) => Ok(()),
    }
}

/// `SO_REUSEPORT` + `SO_REUSEADDR` listener on `addr`.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_port(true)?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    Ok(s.into())
}

/// Listening sockets passed by a supervisor with the systemd socket-activation protocol
/// (`LISTEN_FDS`, descriptors from 3; `LISTEN_PID`, when set, must be this process). The
/// variables are removed so that child processes do not see them. Empty when there are none.
pub fn inherited() -> std::io::Result<Vec<TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    let mut out = Vec::with_capacity(fds.len());
    for i in 0..fds.len() {
        match fds.take_tcp_listener(i)? {
            Some(l) => out.push(l),
            None => return Err(std::io::Error::other(format!("inherited descriptor {} is gone", i + 3))),
        }
    }
    Ok(out)
}

/// Pairs `listen` entries with inherited sockets: a socket serves the entry with its exact
/// address, or with the same port when both addresses are wildcards (`0.0.0.0`/`[::]`, which
/// systemd's `ListenStream=8080` binds). Entries without a socket are bound by the workers. A
/// socket that matches no entry is an error: connections would queue on it unanswered.
pub fn plan(listen: &[SocketAddr], inherited: Vec<TcpListener>) -> std::io::Result<Vec<Source>> {
    let mut left: Vec<(SocketAddr, TcpListener)> =
        inherited.into_iter().map(|l| Ok((l.local_addr()?, l))).collect::<std::io::Result<_>>()?;
    let mut out = Vec::with_capacity(listen.len());
    for want in listen {
        let matches = |have: &SocketAddr| {
            have == want
                || (have.port() == want.port() && have.ip().is_unspecified() && want.ip().is_unspecified())
        };
        match left.iter().position(|(have, _)| matches(have)) {
            Some(i) => out.push(Source::Shared(left.swap_remove(i).1)),
            None => out.push(Source::Bind(*want)),
        }
    }
    if let Some((addr, _)) = left.first() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("inherited socket {addr} matches no `listen` address"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn std_listener() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").unwrap()
    }

    #[test]
    fn a_port_another_process_listens_on_is_not_free() {
        let taken = std_listener();
        let err = ensure_free(taken.local_addr().unwrap()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains("--takeover"), "{err}");
        // Even when the other listener uses SO_REUSEPORT, as a running gateway does.
        let gateway = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(ensure_free(gateway.local_addr().unwrap()).is_err());
        let free = std_listener().local_addr().unwrap(); // dropped: free again
        ensure_free(free).unwrap();
        ensure_free("127.0.0.1:0".parse().unwrap()).unwrap();
    }

    #[test]
    fn plan_pairs_inherited_sockets_by_address_and_binds_the_rest() {
        let l = std_listener();
        let a = l.local_addr().unwrap();
        let other: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let p = plan(&[other, a], vec![l]).unwrap();
        assert!(matches!(p[0], Source::Bind(x) if x == other));
        assert!(matches!(&p[1], Source::Shared(s) if s.local_addr().unwrap() == a));
    }

    #[test]
    fn an_inherited_socket_no_entry_wants_is_an_error() {
        let l = std_listener();
        let a = l.local_addr().unwrap();
        let err = plan(&["127.0.0.1:1".parse().unwrap()], vec![l]).unwrap_err();
        assert!(err.to_string().contains(&a.to_string()), "{err}");
    }

    #[test]
    fn wildcards_match_across_families_by_port() {
        let l = TcpListener::bind("0.0.0.0:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let want: SocketAddr = format!("[::]:{port}").parse().unwrap();
        assert!(matches!(plan(&[want], vec![l]).unwrap()[0], Source::Shared(_)));
    }

    #[test]
    fn closing_takes_what_is_queued_and_then_refuses() {
        let rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new().enable_timer().build();
        rt.unwrap().block_on(async {
            use monoio::io::AsyncReadRent;
            use std::io::Write;
            let l = Listener::open(Source::Bind("127.0.0.1:0".parse().unwrap())).unwrap();
            let addr = l.addr;
            let clients: Vec<_> = (0..3).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
            let taken = l.close().await;
            assert_eq!(taken.len(), 3);
            for (c, (s, _)) in clients.iter().zip(taken) {
                (&*c).write_all(b"x").unwrap();
                let mut s = s;
                let r =
                    monoio::time::timeout(std::time::Duration::from_secs(2), s.read(Vec::with_capacity(8)))
                        .await;
                assert_eq!(r.unwrap().0.unwrap(), 1, "the taken connection reads");
            }
            assert!(std::net::TcpStream::connect(addr).is_err(), "the socket is closed");
            drop(clients);

            let inherited = std_listener();
            let addr = inherited.local_addr().unwrap();
            let shared = Listener::open(Source::Shared(inherited.try_clone().unwrap())).unwrap();
            let _c = std::net::TcpStream::connect(addr).unwrap();
            assert!(
                shared.close().await.is_empty(),
                "an inherited socket's queue is left to the next process"
            );
            assert!(inherited.accept().is_ok(), "the queued connection is still there for the next process");
        });
    }
}
