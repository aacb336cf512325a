//! Backend addresses, resolved once at config load: `http://host[:port]/path` -> socket address,
//! the `Host` header to send and the request path.

use std::net::{SocketAddr, ToSocketAddrs};

/// A resolved backend endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// Where to connect.
    pub addr: SocketAddr,
    /// `Host` header value (`host[:port]` as written in the URL).
    pub authority: Box<str>,
    /// Request path (with query), at least `/`.
    pub path: Box<str>,
}

/// Why a backend URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    /// Not `http://` (https arrives with the backends issue).
    #[error("only http:// backend URLs are supported by this build")]
    Scheme,
    /// No host, bad port, userinfo, or unresolvable.
    #[error("invalid backend URL: {0}")]
    Invalid(String),
}

impl Target {
    /// Parses and resolves `url`.
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        let rest = url.strip_prefix("http://").ok_or(TargetError::Scheme)?;
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
        let with_port = if authority.ends_with(']') || !authority.contains(':') {
            format!("{authority}:80")
        } else {
            authority.to_string()
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| TargetError::Invalid(format!("cannot resolve {authority}: {e}")))?
            .next()
            .ok_or_else(|| TargetError::Invalid(format!("{authority} resolves to no address")))?;
        Ok(Target { addr, authority: authority.into(), path: path.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let t = Target::parse("http://127.0.0.1:9001/mcp?x=1").unwrap();
        assert_eq!((t.addr.port(), &*t.authority, &*t.path), (9001, "127.0.0.1:9001", "/mcp?x=1"));
        assert_eq!(Target::parse("http://127.0.0.1").unwrap().addr.port(), 80);
        assert_eq!(&*Target::parse("http://[::1]:8/").unwrap().authority, "[::1]:8");
        assert_eq!(Target::parse("https://a/"), Err(TargetError::Scheme));
        assert!(Target::parse("http://u:p@a/").is_err());
        assert!(Target::parse("http:///x").is_err());
    }
}
