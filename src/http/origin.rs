//! DNS-rebinding protection: the `Origin` and `Host` checks of the MCP Streamable HTTP transport
//! ("Servers MUST validate the Origin header on all incoming connections to prevent DNS
//! rebinding attacks"). Compiled once from `allowedOrigins` (and the extension `allowedHosts`);
//! checked per request with no allocation.

/// One allowed origin: scheme, host and optional port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    scheme: String,
    host: String,
    port: Option<u16>,
}

/// The compiled Origin/Host policy.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OriginPolicy {
    any_origin: bool,
    origins: Vec<Entry>,
    /// Empty: no Host restriction. Otherwise Host's name must be one of these (lower case).
    hosts: Vec<String>,
    /// Names the gateway knows as its own: loopback names, `allowedHosts`, concrete listen IPs.
    /// Without `allowedOrigins`, an Origin must name one of these *and* match Host: comparing
    /// Origin with Host alone proves nothing, since a rebinding page controls both.
    own: Vec<String>,
}

const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Splits `scheme://host[:port]` (an Origin value or a configured entry).
fn parse_origin(s: &str) -> Option<(String, String, Option<u16>)> {
    let (scheme, rest) = s.split_once("://")?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = split_host_port(rest)?;
    Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase(), port))
}

/// Splits `host[:port]`, with IPv6 literals in brackets.
pub fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host, port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h, Some(p.parse().ok()?))),
        None => Some((s, None)),
    }
}

impl OriginPolicy {
    /// Compiles the policy. `allowed_origins: None` means same-host only; `loopback_only` says
    /// every listener is on a loopback address, in which case Host must name loopback (or a
    /// configured host), which defeats DNS rebinding even for clients that send no Origin.
    pub fn compile(
        allowed_origins: Option<&[String]>,
        allowed_hosts: Option<&[String]>,
        loopback_only: bool,
        listen_ips: &[std::net::IpAddr],
    ) -> Result<OriginPolicy, Vec<(usize, String)>> {
        let mut p = OriginPolicy::default();
        let mut errs = Vec::new();
        for (i, o) in allowed_origins.unwrap_or(&[]).iter().enumerate() {
            if o == "*" {
                p.any_origin = true;
                continue;
            }
            match parse_origin(o) {
                Some((scheme, host, port)) => p.origins.push(Entry { scheme, host, port }),
                None => errs.push((i, format!("{o:?} is not an origin (scheme://host[:port])"))),
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        if loopback_only || allowed_hosts.is_some() {
            p.hosts = LOOPBACK_NAMES.iter().map(|s| s.to_string()).collect();
            p.hosts.extend(p.origins.iter().map(|e| e.host.clone()));
            p.hosts.extend(allowed_hosts.unwrap_or(&[]).iter().map(|h| h.to_ascii_lowercase()));
        }
        p.own = LOOPBACK_NAMES.iter().map(|s| s.to_string()).collect();
        p.own.extend(allowed_hosts.unwrap_or(&[]).iter().map(|h| h.to_ascii_lowercase()));
        p.own.extend(listen_ips.iter().filter(|ip| !ip.is_unspecified()).map(|ip| ip.to_string()));
        if allowed_origins.is_none() {
            p.origins.clear();
        }
        Ok(p)
    }

    fn origins_configured(&self) -> bool {
        self.any_origin || !self.origins.is_empty()
    }

    /// Checks one request. `Err` carries the reason, for a 403 body.
    pub fn check(&self, origin: Option<&[u8]>, host: &[u8]) -> Result<(), &'static str> {
        let host = std::str::from_utf8(host).map_err(|_| "Host header is not valid")?;
        let host_name = split_host_port(host).map(|(h, _)| h).unwrap_or(host);
        if !self.hosts.is_empty() && !self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host_name)) {
            return Err("Host not allowed (DNS rebinding protection)");
        }
        let Some(origin) = origin else { return Ok(()) };
        let origin = std::str::from_utf8(origin).map_err(|_| "Origin header is not valid")?;
        if self.any_origin {
            return Ok(());
        }
        let Some((scheme, o_host, o_port)) = parse_origin(origin) else {
            return Err("Origin not allowed");
        };
        let ok = if self.origins_configured() {
            self.origins
                .iter()
                .any(|e| e.scheme == scheme && e.host == o_host && (e.port.is_none() || e.port == o_port))
        } else {
            // Same-host only: the Origin names this gateway and the Host it was sent to.
            o_host.eq_ignore_ascii_case(host_name.trim_start_matches('[').trim_end_matches(']'))
                && self.own.iter().any(|h| h.eq_ignore_ascii_case(&o_host))
        };
        if ok {
            Ok(())
        } else {
            Err("Origin not allowed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance_rebinding_probe_is_refused_on_loopback() {
        let p = OriginPolicy::compile(None, None, true, &[]).unwrap();
        assert!(p.check(Some(b"http://evil.example.com"), b"evil.example.com").is_err());
        assert!(p.check(None, b"evil.example.com").is_err());
        assert!(p.check(None, b"127.0.0.1:8080").is_ok());
        assert!(p.check(Some(b"http://localhost:8080"), b"localhost:8080").is_ok());
        assert!(p.check(None, b"[::1]:8080").is_ok());
    }

    #[test]
    fn configured_origins() {
        let list = vec!["http://localhost".to_string(), "https://app.example.com:8443".to_string()];
        let p = OriginPolicy::compile(Some(&list), None, false, &[]).unwrap();
        assert!(p.check(Some(b"http://localhost:3000"), b"gw.example.com").is_ok());
        assert!(p.check(Some(b"https://app.example.com:8443"), b"gw").is_ok());
        assert!(p.check(Some(b"https://app.example.com"), b"gw").is_err());
        assert!(p.check(Some(b"http://evil.example.com"), b"evil.example.com").is_err());
        assert!(p.check(Some(b"null"), b"gw").is_err());
        assert!(OriginPolicy::compile(Some(&["nope".to_string()]), None, false, &[]).is_err());
    }

    #[test]
    fn same_host_on_a_public_listener_needs_a_known_name() {
        // Regression: on 0.0.0.0 without allowedOrigins, Origin == Host passed, and a rebinding
        // page controls both.
        let any: std::net::IpAddr = "0.0.0.0".parse().unwrap();
        let p = OriginPolicy::compile(None, None, false, &[any]).unwrap();
        assert!(p.check(Some(b"http://evil.example.com"), b"evil.example.com").is_err());
        assert!(p.check(None, b"evil.example.com").is_ok(), "non-browser clients send no Origin");
        assert!(p.check(Some(b"http://localhost:8080"), b"localhost:8080").is_ok());
        let hosts = vec!["mcp.example.com".to_string()];
        let p = OriginPolicy::compile(None, Some(&hosts), false, &[any]).unwrap();
        assert!(p.check(Some(b"https://mcp.example.com"), b"mcp.example.com").is_ok());
        assert!(p.check(Some(b"http://evil.example.com"), b"evil.example.com").is_err());
        let ip: std::net::IpAddr = "10.1.2.3".parse().unwrap();
        let p = OriginPolicy::compile(None, None, false, &[ip]).unwrap();
        assert!(p.check(Some(b"http://10.1.2.3:8080"), b"10.1.2.3:8080").is_ok());
    }
}
