//! portcullis: an MCP gateway data plane.
//!
//! MCP clients connect over Streamable HTTP; the gateway authenticates them, authorizes every
//! message and reaches each backend (MCP servers, REST APIs exposed as tools) with the right
//! backend credential. It runs one monoio event loop per core, parses HTTP with httparse and
//! JSON-RPC with simd-json over reused buffers, and applies a configuration compiled once and
//! published with arc-swap.
//!
//! # The request, phase by phase
//!
//! `proxy::pipeline::process` is the driver; it runs each phase once, top to bottom:
//!
//! 1. read head: `proxy::conn` (limits from `http`)
//! 2. route and admit: `config::snapshot` (path -> server), `http::origin` (Origin/Host)
//! 3. authenticate: `auth::Authenticator` (JWT with a per-core verified-token cache, API key,
//!    basic, trusted proxy) or `auth::mtls`; 401 with the RFC 9728 challenge
//! 4. read and decode the body: `proxy::message` (one message type for every revision, a
//!    2025-03-26 batch element by element; the revision's rules), `proxy::session` (2025
//!    sessions: sealed, opened, bound to the principal)
//! 5. authorize, once per message: `proxy::decide` (arguments normalized by `rest::args`; a
//!    pinned tool's definition checked; then `policy::rules` with `policy::cel` conditions over
//!    the activation of `proxy::authz`; then the rate limits of `policy::limits`)
//! 6. dispatch what phase 5 allowed: `proxy::dispatch` and `proxy::local` answer here;
//!    `proxy::backends` carries out a plan over MCP backends and REST tools
//! 7. respond: `respond` (the only error-to-wire table), `proxy::conn`
//! 8. log and count: `proxy::observe` (access line through `runtime::logging`), `proxy::audit`
//!    (the audit line through `runtime::audit`), `proxy::stats` (scraped by admin `/metrics`)
//!
//! # Direction rules
//!
//! `proxy` calls the leaves (`http`, `mcp`, `rest`, `auth`, `policy`, `upstream`); leaves never
//! import `proxy`, `runtime`, `config::raw` or `admin`; only `config::compile` sees raw config;
//! `mcp` knows JSON-RPC, never sockets; `import` (OpenAPI) is a cold path that produces raw
//! configuration. No two files of `src/` import each other, directly or around a cycle
//! (`tests/layout.rs` checks it). Only `runtime` (and the admin thread it starts) creates
//! threads. `docs/architecture.md` has the layout file by file.

#![deny(unsafe_code, rust_2018_idioms)]
#![warn(missing_docs)]

pub mod admin;
pub mod auth;
pub mod config;
pub mod error;
pub mod fuzzing;
pub mod http;
pub mod import;
pub mod mcp;
pub mod policy;
pub mod proxy;
pub mod respond;
pub mod rest;
pub mod runtime;
pub mod timer;
pub mod tls;
pub mod upstream;

#[cfg(feature = "count-allocs")]
pub mod alloc_count;
