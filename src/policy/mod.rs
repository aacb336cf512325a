//! Authorization policy: the pieces phase 5 (authorize) evaluates per message.
//!
//! Owns the rule languages only: compiled once at config load (by `config::compile`) into
//! immutable, `Send + Sync` programs, then evaluated on a worker over data borrowed from the
//! request. It never reads sockets, config files or the snapshot, and never decides what a
//! failed rule means on the wire: the caller decides (rules fail closed).
//! `limits` also holds the per-worker token buckets of rate limits: plain state, no locks, owned
//! by the worker that calls it.

pub mod cel;
pub mod limits;
pub mod rules;
