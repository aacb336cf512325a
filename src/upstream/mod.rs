//! Upstream HTTP/1.1: where backends are (`target`), the per-core keep-alive pool (`pool`) and one
//! request/response exchange over a pooled connection (`client`). This module knows bytes and
//! HTTP heads, never MCP (ARCHITECTURE.md direction rules); `proxy` decides what to send.
//!
//! Pools are per core and lock-free by construction (`!Send` state owned by one worker).
//! `https://` runs rustls (ring provider) over the same monoio sockets through monoio-rustls:
//! no second runtime, no thread hop.

pub mod client;
pub mod pool;
pub mod sts;
pub mod target;
