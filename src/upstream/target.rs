//! Backend addresses, resolved at config load: `http(s)://host[:port]/path` -> socket
//! address, the `Host` header to send, the request path and, for https, the TLS client
//! configuration and the name to verify. The runtime's watcher looks host names up again
//! ([`Target::lookup_name`]) and reloads when an address has gone away.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use rustls::pki_types::ServerName;

/// TLS to a backend: the client configuration (trust roots) and the server name to verify.
#[derive(Clone)]
pub struct Tls {
    /// rustls client configuration (ring provider), shared by every endpoint that uses it.
    pub config: Arc<rustls::ClientConfig>,
    /// The name the certificate must carry.
    pub name: ServerName<'static>,
}

/// A resolved backend endpoint.
#[derive(Clone)]
pub struct Target {
    /// Where to connect.
    pub addr: SocketAddr,
    /// `Host` header value (`host[:port]` as written in the URL).
    pub authority: Box<str>,
    /// Request path (with query), at least `/`.
    pub path: Box<str>,
    /// Present for `https://` targets.
    pub tls: Option<Tls>,
    /// What the per-core pool keys connections by: the address plus the TLS name (a connection
    /// verified for one name is never reused for another).
    pub pool_key: (SocketAddr, u64),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("authority", &self.authority)
            .field("path", &self.path)
            .field("tls", &self.tls.as_ref().map(|t| t.name.to_str().into_owned()))
            .finish()
    }
}

/// Why a backend URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    /// Neither `http://` nor `https://`.
    #[error("backend URLs must start with http:// or https://")]
    Scheme,
    /// No host, bad port, or userinfo.
    #[error("invalid backend URL: {0}")]
    Invalid(String),
    /// The host does not resolve (now).
    #[error("{0}")]
    Unresolved(String),
}

/// How long a name resolved at load is reused: a configuration with hundreds of tools on one
/// host resolves it once (a load, and a reload right after it), not once per tool.
const RESOLVED_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// `host:port` -> (when, address or why not).
type Resolved = std::collections::HashMap<String, (std::time::Instant, Result<SocketAddr, String>)>;

thread_local! {
    /// `host:port` -> (when, address or why not). Per thread: loads run on one thread at a time
    /// (start-up, the watcher, the admin), and nothing here is on the request path.
    static RESOLVED: std::cell::RefCell<Resolved> = std::cell::RefCell::default();
    /// Lookups actually made (for tests).
    static LOOKUPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Resolves `host:port` (`authority` as written, for messages), reusing an answer (or a failure)
/// of the last [`RESOLVED_FOR`].
fn resolve(with_port: &str, authority: &str) -> Result<SocketAddr, String> {
    let now = std::time::Instant::now();
    let cached = RESOLVED.with_borrow(|m| {
        m.get(with_port).filter(|(at, _)| now.duration_since(*at) < RESOLVED_FOR).map(|(_, r)| r.clone())
    });
    if let Some(r) = cached {
        return r;
    }
    LOOKUPS.set(LOOKUPS.get() + 1);
    let r = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))
        .and_then(|mut a| a.next().ok_or_else(|| format!("{authority} resolves to no address")));
    RESOLVED.with_borrow_mut(|m| {
        m.retain(|_, (at, _)| now.duration_since(*at) < RESOLVED_FOR);
        m.insert(with_port.to_string(), (now, r.clone()));
    });
    r
}

/// The longest a load waits for all of its names together ([`prefetch`]).
pub const RESOLVE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// Lookups [`prefetch`] runs at once (each blocks a thread in `getaddrinfo`).
const RESOLVE_THREADS: usize = 16;

/// Resolves every distinct `host:port` of `authorities` (`(host:port, as written)`) at once, on
/// up to [`RESOLVE_THREADS`] threads, and waits at most `deadline` for all of them together; what
/// has not answered by then counts as unresolved ("no answer within ..."). The answers are
/// remembered as [`resolve`]'s are, so the load that follows finds them. Names answered in the
/// last [`RESOLVED_FOR`] and IP literals are not looked up. A lookup still running at the
/// deadline finishes on its own thread, which then ends; nothing waits for it.
pub fn prefetch<I>(
    authorities: I,
    deadline: std::time::Duration,
    lookup: fn(&str) -> std::io::Result<Vec<SocketAddr>>,
) where
    I: IntoIterator<Item = (String, String)>,
{
    let now = std::time::Instant::now();
    let mut wanted: Vec<(String, String)> = Vec::new();
    RESOLVED.with_borrow(|m| {
        for (with_port, written) in authorities {
            let fresh = m.get(&with_port).is_some_and(|(at, _)| now.duration_since(*at) < RESOLVED_FOR);
            if !fresh
                && with_port.parse::<SocketAddr>().is_err()
                && !wanted.iter().any(|(w, _)| *w == with_port)
            {
                wanted.push((with_port, written));
            }
        }
    });
    if wanted.is_empty() {
        return;
    }
    // The threads take names in turn through one shared index (load time: no lock needed).
    let queue = Arc::new((wanted.clone(), std::sync::atomic::AtomicUsize::new(0)));
    let (tx, rx) = std::sync::mpsc::channel::<(String, Result<SocketAddr, String>)>();
    for _ in 0..wanted.len().min(RESOLVE_THREADS) {
        let (queue, tx) = (queue.clone(), tx.clone());
        let spawned = std::thread::Builder::new().name("portcullis-dns".into()).spawn(move || loop {
            let next = queue.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some((with_port, written)) = queue.0.get(next).cloned() else { return };
            let r = lookup(&with_port).map_err(|e| format!("cannot resolve {written}: {e}")).and_then(|a| {
                a.into_iter().next().ok_or_else(|| format!("{written} resolves to no address"))
            });
            if tx.send((with_port, r)).is_err() {
                return;
            }
        });
        if spawned.is_err() {
            break; // the lookups left are made one by one by `resolve`, as before
        }
    }
    drop(tx);
    let until = now + deadline;
    let mut answered = Vec::with_capacity(wanted.len());
    while answered.len() < wanted.len() {
        let Some(left) = until.checked_duration_since(std::time::Instant::now()) else { break };
        match rx.recv_timeout(left) {
            Ok(answer) => answered.push(answer),
            Err(_) => break,
        }
    }
    LOOKUPS.set(LOOKUPS.get() + answered.len() as u64);
    let at = std::time::Instant::now();
    RESOLVED.with_borrow_mut(|m| {
        for (with_port, r) in answered {
            m.insert(with_port, (at, r));
        }
        for (with_port, written) in wanted {
            m.entry(with_port).or_insert_with(|| {
                (at, Err(format!("cannot resolve {written}: no answer within {} s", deadline.as_secs_f32())))
            });
        }
    });
}

/// The system resolver, for [`prefetch`].
pub fn system_lookup(host_port: &str) -> std::io::Result<Vec<SocketAddr>> {
    host_port.to_socket_addrs().map(Iterator::collect)
}

/// `(host:port, authority as written)` of an `http(s)://` URL, when its authority is a plain
/// name or address (templated hosts such as `{{.config.host}}` are not).
pub fn url_authority(url: &str) -> Option<(String, String)> {
    let (rest, port) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(r), _) => (r, 80),
        (_, Some(r)) => (r, 443),
        _ => return None,
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']');
    if authority.is_empty() || !authority.chars().all(plain) {
        return None;
    }
    let has_port =
        if authority.starts_with('[') { authority.contains("]:") } else { authority.contains(':') };
    let with_port = if has_port { authority.to_string() } else { format!("{authority}:{port}") };
    Some((with_port, authority.to_string()))
}

/// Name lookups made by this thread so far (tests count them).
pub fn lookups() -> u64 {
    LOOKUPS.get()
}

/// Records `result` as the resolution of `host_port` (tests: a name that will not resolve,
/// without asking DNS).
#[cfg(test)]
pub(crate) fn seed_resolution(host_port: &str, result: Result<SocketAddr, String>) {
    RESOLVED.with_borrow_mut(|m| {
        m.insert(host_port.to_string(), (std::time::Instant::now(), result));
    });
}

impl Target {
    /// Parses and resolves `url`; `tls` supplies the client configuration for `https://`.
    pub fn parse(
        url: &str,
        tls: impl FnOnce() -> Result<Arc<rustls::ClientConfig>, String>,
    ) -> Result<Target, TargetError> {
        let (rest, https) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(r), _) => (r, false),
            (_, Some(r)) => (r, true),
            _ => return Err(TargetError::Scheme),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(TargetError::Invalid("missing host (or userinfo, which is not allowed)".into()));
        }
        if path.contains(['#', ' ']) {
            return Err(TargetError::Invalid("path must not contain spaces or a fragment".into()));
        }
        let default_port = if https { 443 } else { 80 };
        let has_port =
            if authority.starts_with('[') { authority.contains("]:") } else { authority.contains(':') };
        let with_port = if has_port { authority.to_string() } else { format!("{authority}:{default_port}") };
        let addr = resolve(&with_port, authority).map_err(TargetError::Unresolved)?;
        let tls = if https {
            let host = crate::http::origin::split_host_port(authority).map_or(authority, |(h, _)| h);
            let name = ServerName::try_from(host.to_string())
                .map_err(|_| TargetError::Invalid(format!("{host:?} is not a valid TLS server name")))?;
            Some(Tls { config: tls().map_err(TargetError::Invalid)?, name })
        } else {
            None
        };
        let name_hash = tls.as_ref().map_or(0, |t| {
            use std::hash::{Hash, Hasher};
            let mut h = rustc_hash::FxHasher::default();
            t.name.to_str().hash(&mut h);
            h.finish() | 1
        });
        Ok(Target { addr, authority: authority.into(), path: path.into(), tls, pool_key: (addr, name_hash) })
    }

    /// `host:port` to look up again, when the URL names its host (`None` for an IP literal).
    pub fn lookup_name(&self) -> Option<String> {
        let host = crate::http::origin::split_host_port(&self.authority).map_or(&*self.authority, |(h, _)| h);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<std::net::IpAddr>().is_ok() {
            return None;
        }
        Some(format!("{host}:{}", self.addr.port()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn no_tls() -> Result<Arc<rustls::ClientConfig>, String> {
        Err("no TLS in this test".into())
    }

    fn names(hosts: &[&str]) -> Vec<(String, String)> {
        hosts.iter().map(|h| url_authority(&format!("http://{h}/x")).unwrap()).collect()
    }

    #[test]
    fn prefetch_asks_every_host_at_once() {
        // Each lookup waits until all three are being made: answered only if they run together.
        static TOGETHER: std::sync::Barrier = std::sync::Barrier::new(3);
        fn lookup(h: &str) -> std::io::Result<Vec<SocketAddr>> {
            TOGETHER.wait();
            Ok(vec![if h.starts_with("a.") { "127.0.0.1:80" } else { "127.0.0.2:80" }.parse().unwrap()])
        }
        prefetch(
            names(&["a.together.test", "b.together.test", "c.together.test"]),
            Duration::from_secs(60),
            lookup,
        );
        assert_eq!(resolve("a.together.test:80", "a.together.test"), Ok("127.0.0.1:80".parse().unwrap()));
        assert_eq!(resolve("c.together.test:80", "c.together.test"), Ok("127.0.0.2:80".parse().unwrap()));
    }

    #[test]
    fn prefetch_waits_one_deadline_for_hosts_that_do_not_answer() {
        fn lookup(h: &str) -> std::io::Result<Vec<SocketAddr>> {
            if h.starts_with("slow") {
                std::thread::sleep(Duration::from_secs(30));
            }
            if h.starts_with("gone") {
                return Err(std::io::Error::other("no such host"));
            }
            Ok(vec!["127.0.0.3:80".parse().unwrap()])
        }
        let hosts = names(&["slow1.test", "slow2.test", "gone.test", "fine.test"]);
        prefetch(hosts, Duration::from_millis(300), lookup);
        let slow = resolve("slow2.test:80", "slow2.test").unwrap_err();
        assert!(slow.contains("cannot resolve slow2.test: no answer within 0.3 s"), "{slow}");
        assert_eq!(
            resolve("gone.test:80", "gone.test"),
            Err("cannot resolve gone.test: no such host".into())
        );
        assert_eq!(resolve("fine.test:80", "fine.test"), Ok("127.0.0.3:80".parse().unwrap()));
    }

    #[test]
    fn prefetch_asks_each_name_once_and_skips_addresses_and_fresh_answers() {
        static ASKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        fn lookup(_: &str) -> std::io::Result<Vec<SocketAddr>> {
            ASKED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(vec!["127.0.0.4:80".parse().unwrap()])
        }
        seed_resolution("known.test:80", Ok("127.0.0.5:80".parse().unwrap()));
        let hosts =
            names(&["once.test", "once.test", "once.test:80", "127.0.0.1:9", "[::1]:9", "known.test"]);
        prefetch(hosts, Duration::from_secs(60), lookup);
        assert_eq!(ASKED.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(resolve("known.test:80", "known.test"), Ok("127.0.0.5:80".parse().unwrap()));
    }

    #[test]
    fn url_authorities() {
        assert_eq!(
            url_authority("https://api.example.com/v1?q"),
            Some(("api.example.com:443".into(), "api.example.com".into()))
        );
        assert_eq!(url_authority("http://[::1]:81"), Some(("[::1]:81".into(), "[::1]:81".into())));
        assert_eq!(url_authority("http://h:8080?x"), Some(("h:8080".into(), "h:8080".into())));
        assert_eq!(url_authority("https://{{.config.host}}/x"), None);
        assert_eq!(url_authority("/relative"), None);
        assert_eq!(url_authority("http:///x"), None);
    }

    #[test]
    fn only_names_are_looked_up_again() {
        let ip = Target::parse("http://127.0.0.1:9001/mcp", no_tls).unwrap();
        assert_eq!(ip.lookup_name(), None);
        let v6 = Target::parse("http://[::1]:9001/mcp", no_tls).unwrap();
        assert_eq!(v6.lookup_name(), None);
        let name = Target::parse("http://localhost/mcp", no_tls).unwrap();
        assert_eq!(name.lookup_name().as_deref(), Some("localhost:80"));
    }

    #[test]
    fn forms() {
        let t = Target::parse("http://127.0.0.1:9001/mcp?x=1", no_tls).unwrap();
        assert_eq!((t.addr.port(), &*t.authority, &*t.path), (9001, "127.0.0.1:9001", "/mcp?x=1"));
        assert!(t.tls.is_none());
        assert_eq!(Target::parse("http://127.0.0.1", no_tls).unwrap().addr.port(), 80);
        assert_eq!(&*Target::parse("http://[::1]:8/", no_tls).unwrap().authority, "[::1]:8");
        assert_eq!(Target::parse("ftp://a/", no_tls).unwrap_err(), TargetError::Scheme);
        assert!(Target::parse("http://u:p@a/", no_tls).is_err());
        assert!(Target::parse("http:///x", no_tls).is_err());
        assert!(Target::parse("https://127.0.0.1/", no_tls).is_err(), "https needs a TLS configuration");
    }
}
