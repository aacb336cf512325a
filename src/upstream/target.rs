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

    fn no_tls() -> Result<Arc<rustls::ClientConfig>, String> {
        Err("no TLS in this test".into())
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
