//! MCP over JSON-RPC: the envelope decoder ([`envelope`]), the JSON writer and tape helpers
//! ([`json`]), protocol versions ([`version`]) and sealed stateless session ids ([`session`]).
//! This module knows JSON-RPC and MCP, never sockets: it is driven by `proxy` and fuzzed directly.

pub mod envelope;
pub mod json;
pub mod reply;
pub mod session;
pub mod sse;
pub mod version;
