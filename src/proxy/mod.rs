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
pub(crate) mod idle;
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

use std::rc::Rc;

use crate::proxy::conn::{Conn, Link};
use crate::proxy::core::Core;
use crate::proxy::pipeline::Flow;

/// Serves one accepted connection until it closes; `guard` is dropped when it has.
///
/// While requests come, they are served by [`busy`], a boxed future (the pipeline's state is
/// over 10 KiB). A plain connection quiet for [`conn::IDLE_HOLD`] leaves it: the box and the
/// buffers are freed and the task waits in [`Link::wait`] holding only the [`Link`] (see
/// [`idle`]).
// Not an `async fn`: its arguments would be copied into locals and the task would hold the
// `Link` twice; the block below moves out of (and back into) its captured `link` instead.
#[allow(clippy::manual_async_fn)]
pub fn serve<G>(core: Rc<Core>, mut link: Link, guard: G) -> impl std::future::Future<Output = ()> {
    async move {
        loop {
            let (back, flow) = Box::pin(busy(&core, link)).await;
            link = back;
            let left = core.current().limits.idle_timeout.saturating_sub(conn::IDLE_HOLD);
            if flow == Flow::Close || !link.wait(left, &core.deadlines, &core.drain).await {
                break;
            }
        }
        drop(guard);
    }
}

/// Serves requests on `link` until it closes (`Close`) or goes quiet (`Idle`).
async fn busy(core: &Core, link: Link) -> (Link, Flow) {
    let mut conn = Conn::new(link, &core.spare, core.deadlines.clone());
    let flow = loop {
        match pipeline::process(core, &mut conn).await {
            Flow::KeepAlive => {}
            flow => break flow,
        }
    };
    if flow == Flow::Close {
        conn.close().await;
    }
    (conn.into_link(&core.spare), flow)
}
