//! The one error type of the data plane: a [`Kind`] that decides how the error reaches the wire
//! (see `respond.rs`, the only table that maps kinds to statuses and codes), the [`Side`] that
//! caused it (for logs and metrics), and a message written for the client. Messages must never
//! contain credentials or another client's data: they are built from static text and from the
//! offending client input only.

use std::borrow::Cow;
use std::fmt;

/// What went wrong, at the granularity the wire needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Malformed HTTP framing (RFC 9112 MUST-reject rules); the connection is closed.
    BadRequest,
    /// Request head over `limits.maxHeaderBytes` or `limits.maxHeaders`.
    HeadTooLarge,
    /// Request body over `limits.maxBodyBytes`.
    BodyTooLarge,
    /// The head did not arrive within `limits.headerTimeoutMs`.
    HeadTimeout,
    /// An `Expect` value other than `100-continue`.
    ExpectationFailed,
    /// A transfer coding other than chunked (RFC 9112 6.1: 501).
    NotImplemented,
    /// No route for the path, or an unknown/terminated/tampered session (MCP: 404 MUST).
    NotFound,
    /// The path exists but not for this HTTP method.
    MethodNotAllowed,
    /// `Accept` does not admit the media types the endpoint answers with.
    NotAcceptable,
    /// `Content-Type` is not `application/json`.
    UnsupportedMediaType,
    /// `Origin` or `Host` failed the DNS-rebinding check.
    Forbidden,
    /// No credential, or one that was refused (401 with a challenge).
    Unauthorized,
    /// Authenticated, but the authorization rules deny the call (403).
    Denied,
    /// The worker is at `limits.maxConnectionsPerWorker` or draining.
    Overloaded,
    /// The caller spent its `rateLimits` budget (429 with `Retry-After`).
    RateLimited,
    /// A pinned tool's definition does not match its approved digest (`pinning: enforce`).
    NotApproved,
    /// `MCP-Protocol-Version` names a version this gateway does not speak.
    UnsupportedProtocolVersion,
    /// A request that needs `Mcp-Session-Id` came without one.
    SessionRequired,
    /// The session id is unknown, expired, terminated or not ours.
    SessionNotFound,
    /// `Mcp-Method` / `Mcp-Name` headers disagree with the body (2026-07-28).
    HeaderMismatch,
    /// The body is not JSON.
    Parse,
    /// The body is JSON but not a valid JSON-RPC message (or a batch where none is allowed).
    InvalidRequest,
    /// The JSON-RPC method is unknown.
    MethodNotFound,
    /// The params are wrong for the method (unknown tool, missing field).
    InvalidParams,
    /// `resources/read` of a URI nobody serves (-32002 before 2026-07-28, -32602 from it on).
    ResourceNotFound,
    /// A backend refused or reset the connection, or answered something that is not a usable
    /// answer (502).
    BadGateway,
    /// A backend did not answer within the response timeout (504).
    GatewayTimeout,
    /// The token service of a backend's oauth2 scheme gave no token (502; a `tools/call` gets
    /// an `isError` result instead).
    TokenService,
    /// A bug or resource failure inside the gateway.
    Internal,
}

/// Who caused the error: decides log level and which metric counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client sent something wrong.
    Client,
    /// A backend failed or misbehaved.
    Upstream,
    /// The gateway itself failed.
    Internal,
}

/// An error on its way to the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// How it maps to the wire.
    pub kind: Kind,
    /// Who caused it.
    pub side: Side,
    /// Client-facing description of what was wrong.
    pub message: Cow<'static, str>,
}

impl Error {
    /// A client-side error with a message.
    pub fn client(kind: Kind, message: impl Into<Cow<'static, str>>) -> Self {
        Error { kind, side: Side::Client, message: message.into() }
    }

    /// A backend's failure (502): it refused, reset, or answered garbage.
    pub fn upstream(message: impl Into<Cow<'static, str>>) -> Self {
        Error { kind: Kind::BadGateway, side: Side::Upstream, message: message.into() }
    }

    /// A gateway-internal error.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Error { kind: Kind::Internal, side: Side::Internal, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

/// Shorthand for results in the data plane.
pub type Result<T, E = Error> = std::result::Result<T, E>;
