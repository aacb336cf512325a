//! MCP over JSON-RPC: the envelope decoder ([`envelope`]), the JSON writer and tape helpers
//! ([`json`]), protocol versions ([`version`]), sealed stateless session ids ([`session`]) and
//! tool-definition digests ([`pins`]).
//! This module knows JSON-RPC and MCP, never sockets: it is driven by `proxy` and fuzzed directly.

pub mod envelope;
pub mod json;
pub mod pins;
pub mod reply;
pub mod session;
pub mod sse;
pub mod version;
