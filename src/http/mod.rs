//! HTTP/1.1 as the gateway needs it: request heads parsed by `httparse` into spans over the
//! connection's read buffer ([`head`]), request body framing ([`body`]) and response heads
//! ([`response`]). Everything here is pure: no sockets, no runtime. The connection loop that
//! feeds bytes in lives in `proxy::conn`.

pub mod body;
pub mod head;
pub mod origin;
pub mod percent;
pub mod response;

#[cfg(test)]
mod tests;

/// Limits that apply while reading one request (from `limits` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head, request line and CRLFs included.
    pub max_header_bytes: usize,
    /// Most header fields in one head.
    pub max_headers: usize,
    /// Largest request body after de-chunking.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_header_bytes: 16 * 1024, max_headers: 100, max_body_bytes: 4 * 1024 * 1024 }
    }
}
