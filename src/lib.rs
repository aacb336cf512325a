//! portcullis: an MCP gateway data plane.
//!
//! MCP clients connect over Streamable HTTP; the gateway authenticates them (stage 1), authorizes
//! every tool call (stage 2) and reaches each backend with the right credential (stage 3). It runs
//! one monoio event loop per core, parses HTTP with httparse and JSON-RPC with simd-json over
//! reused buffers, and applies a configuration compiled once and published with arc-swap.
//!
//! # The request, phase by phase
//!
//! `proxy::pipeline::process` is the single driver; each phase is a function documented where it
//! is defined:
//!
//! 1. read head (`proxy::conn`, limits from `http`) -> 2. route and admit (`config::snapshot`,
//!    `http::origin`) -> 3. authenticate (`auth::Authenticator`: JWT with a per-core
//!    verified-token cache, API key, basic, trusted proxy; 401 with the RFC 9728 challenge) ->
//!    4. read body and decode the envelope (`mcp::envelope`)
//!    -> 5. authorize (`allowTools`, and `policy::rules` with `policy::cel` conditions for
//!    `tools/call` and list filtering) -> 6. dispatch (`proxy::local`: initialize, server/discover,
//!    ping, lists, template tools) -> 7. respond (`respond` is the only error-to-wire table) ->
//!    8. log and count (`proxy::observe` access line through `runtime::logging`,
//!    `proxy::core::Stats`, admin `/metrics`).
//!
//! # Direction rules
//!
//! `proxy` calls the leaves (`http`, `mcp`, `rest`, `auth`, `policy`, `upstream`); leaves never
//! import `proxy`, `runtime`, `config::raw` or `admin`; only `config::compile` sees raw config;
//! `mcp` knows JSON-RPC, never sockets. Only `runtime` (and the admin thread it starts) creates threads.
//!
//! # Layout
//!
//! The layout follows ARCHITECTURE.md. `upstream/` (pools, HTTP/1.1 client) and `auth/` (client
//! authentication, JWKS fetching, backend credentials) exist; `proxy::aggregate` carries out
//! requests that need backends. `policy/` holds the rule tables and the CEL subset. `tls` is a
//! leaf added to the layout: server-side TLS (listener certificates by SNI, the TLS stream over
//! the worker's socket, certificate identities); `auth::mtls` judges client certificates.
//! The JWKS fetcher is a `runtime` thread with its own monoio runtime and connection pool; keys
//! reach the workers through arc-swap.

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
pub mod tls;
pub mod upstream;

#[cfg(feature = "count-allocs")]
pub mod alloc_count;
