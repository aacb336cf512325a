//! Why a request is not authenticated.

use crate::auth::jwt;

/// Why a request is not authenticated. Every text is static: no client data is echoed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No credential was presented.
    Missing,
    /// A bearer token was presented and refused.
    Token(jwt::Reject),
    /// An API key, password or identity header was presented and refused; the text says why.
    Credential(&'static str),
    /// A credential header or parameter came more than once: refused with 400, never judged
    /// on one of its copies.
    Repeated(&'static str),
    /// The client certificate was refused; the text says why.
    Certificate(&'static str),
}

impl Failure {
    /// The JSON-RPC error message.
    pub fn message(self) -> &'static str {
        match self {
            Failure::Missing => "Unauthorized: this endpoint requires authentication",
            Failure::Token(r) => r.describe(),
            Failure::Credential(why) | Failure::Repeated(why) | Failure::Certificate(why) => why,
        }
    }

    /// Whether a credential was presented and refused (`error="invalid_token"` for bearer).
    pub fn presented(self) -> bool {
        !matches!(self, Failure::Missing)
    }
}
