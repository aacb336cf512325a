//! What every part of the template engine shares: its bounds, the escaping mode and the render
//! error.

/// Render steps (node visits, commands, range iterations) one render may take. Nested ranges
/// multiply: a 1,000-element range inside another is 10^6 iterations and fails here instead of
/// burning the worker. Typical request templates take 10-50 steps.
pub const MAX_STEPS: u64 = 100_000;

/// Bytes one render may copy, scan or produce in functions and output (64 MiB): bounds the
/// work of string functions over large arguments inside ranges (`contains` over a 1 MB argument
/// 100,000 times would otherwise scan 100 GB within the step budget).
pub const MAX_WORK: u64 = 64 << 20;

/// Largest output (and largest intermediate string) a render may produce: 4 MiB.
pub const MAX_OUTPUT: usize = 4 << 20;

/// Deepest nesting of control structures and parenthesised pipelines a template may have.
pub const MAX_DEPTH: usize = 64;

/// Who is calling, for `getRealIP` and `getSocketIP`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Client<'c> {
    /// The request's `X-Forwarded-For` header, as received.
    pub forwarded_for: Option<&'c [u8]>,
    /// The TCP peer's address.
    pub peer: Option<std::net::IpAddr>,
}

impl Client<'_> {
    /// `getRealIP`: the first `X-Forwarded-For` entry (its port or brackets removed, as Higress
    /// reads it) when that is an IP address, else the peer's address. Only an address is ever
    /// returned: the header is the client's to write, so a value that is not one (`1.2.3.4&x=y`)
    /// cannot reach a request through this function.
    pub fn real_ip(&self) -> Option<std::net::IpAddr> {
        let first = self
            .forwarded_for
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| h.split(',').next())
            .map(str::trim)
            .filter(|f| !f.is_empty());
        first.and_then(parse_ip).or(self.peer)
    }
}

/// An address as a forwarded-for entry writes it: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`.
fn parse_ip(s: &str) -> Option<std::net::IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    s.rsplit_once(':')
        .and_then(|(host, port)| port.bytes().all(|b| b.is_ascii_digit()).then_some(host)?.parse().ok())
}

/// How the text produced by each action is escaped before it joins the output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Escape {
    /// As produced.
    #[default]
    None,
    /// Percent-encoded, keeping only RFC 3986 unreserved characters (`A-Za-z0-9-._~`), so an
    /// argument cannot change the structure of a URL path or query. Literal template text is
    /// not touched, nor is an action whose pipeline ends in `urlquery` (already escaped).
    Url,
    /// For a URL path (Higress's `EscapedPath`): [`Escape::Url`] that also keeps `/` and the
    /// other characters a path segment may hold (`!$&'()*+,;=:@`), so `a/b` stays two segments;
    /// `?`, `#`, `%` and spaces are still encoded, so an argument cannot end the path.
    Path,
}

/// Why a render failed. The output buffer is left as it was before the call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// More than [`MAX_STEPS`] steps or [`MAX_WORK`] bytes of work.
    #[error("template render exceeded its budget ({MAX_STEPS} steps, {MAX_WORK} bytes of work)")]
    Budget,
    /// The output (or a string built on the way) would exceed [`MAX_OUTPUT`] bytes.
    #[error("template output exceeds {MAX_OUTPUT} bytes")]
    OutputTooLarge,
    /// A function or action failed (wrong argument type, index out of range, `fail`, ...).
    #[error("{msg} at {line}:{col}")]
    Eval {
        /// What went wrong.
        msg: String,
        /// 1-based line of the failing command in the template source.
        line: u32,
        /// 1-based column (in characters) of the failing command.
        col: u32,
    },
}
