//! The only module that knows the order of the phases. `pipeline` is the driver, `conn` the
//! connection's I/O and buffers, `core` the per-core state, `local` the methods the gateway
//! answers itself, `observe` what phase 8 logs and counts (and the trace headers backends get),
//! `stats` the counters and `metrics` their Prometheus text. Leaves (`http`, `mcp`, `rest`, ...) never import this module.

pub(crate) mod audit;
pub mod authz;
pub mod backends;
pub mod caches;
pub mod conn;
pub mod core;
pub(crate) mod decide;
pub(crate) mod dispatch;
pub(crate) mod exit;
pub mod local;
pub(crate) mod message;
pub mod metrics;
pub(crate) mod mrtr;
pub mod names;
pub mod observe;
pub mod pipeline;
pub(crate) mod request;
pub(crate) mod session;
pub mod spans;
pub mod stats;
pub(crate) mod tasks;

use std::net::SocketAddr;
use std::rc::Rc;

use crate::proxy::conn::{ClientStream, Conn};
use crate::proxy::core::Core;
use crate::proxy::pipeline::Flow;

/// Serves one accepted connection until it closes.
pub async fn serve(core: Rc<Core>, stream: ClientStream, peer: SocketAddr) {
    let mut conn = Conn::new(stream, peer);
    while pipeline::process(&core, &mut conn).await == Flow::KeepAlive {}
    conn.close().await;
}
