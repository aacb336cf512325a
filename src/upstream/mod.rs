//! Upstream HTTP/1.1: where backends are (`target`), the per-core keep-alive pool (`pool`) and one
//! request/response exchange over a pooled connection (`client`). This module knows bytes and
//! HTTP heads, never MCP (ARCHITECTURE.md direction rules); `proxy` decides what to send.
//!
//! Status: the building block of the backends issue. Pools are per core and lock-free by
//! construction (`!Send` state owned by one worker); plain `http://` only for now - `https://`
//! (rustls on ring, driven on the same monoio runtime) comes with the aggregation work.

pub mod client;
pub mod pool;
pub mod target;
