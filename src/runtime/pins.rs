//! Recording pins outside the workers: the admin thread (`POST /pins/record`) and the CLI
//! (`portcullis pins record`) read the backends' tools with a worker state of their own, so the
//! running workers' caches, pools and sessions are not touched.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::snapshot::Snapshot;
use crate::proxy::backends::pins::{record, Recorded};
use crate::proxy::caches::RevocationBus;
use crate::proxy::core::Core;

/// Records every pinned backend's tools of `snapshot` into the pins files, on the calling
/// thread's monoio runtime.
pub async fn record_pins(snapshot: Arc<ArcSwap<Snapshot>>) -> Result<Recorded, String> {
    let (bus, mut rxs) = RevocationBus::new(1);
    let rx = rxs.pop().ok_or("no revocation channel")?;
    let core = Core::new(0, snapshot.clone(), bus, rx);
    let snap = snapshot.load_full();
    record(&core, &snap).await
}

/// [`record_pins`] on a runtime of its own (the CLI).
pub fn record_pins_blocking(snapshot: Snapshot) -> Result<Recorded, String> {
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    rt.block_on(record_pins(Arc::new(ArcSwap::from_pointee(snapshot))))
}
