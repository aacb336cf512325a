//! Metrics scrapes: the admin thread asks every worker for its statistics over a channel and
//! sums the answers (no shared counters on the request path).

use std::sync::mpsc;
use std::time::Duration;

use crate::proxy::stats::Stats;

/// A request for one worker's statistics; the worker answers on the enclosed channel.
pub type ScrapeRequest = mpsc::Sender<Stats>;

/// Asks every worker for its statistics and sums them (admin `/metrics`).
pub struct Scraper {
    pub(crate) senders: Vec<futures_channel::mpsc::UnboundedSender<ScrapeRequest>>,
}

impl Scraper {
    /// Sum of every worker's statistics; a worker that does not answer within a second is
    /// left out (and logged) rather than stalling the scrape.
    pub fn scrape(&self) -> Stats {
        let mut total = Stats::default();
        let mut pending = Vec::new();
        for s in &self.senders {
            let (tx, rx) = mpsc::channel();
            if s.unbounded_send(tx).is_ok() {
                pending.push(rx);
            }
        }
        for rx in pending {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(st) => total.merge(&st),
                Err(_) => log::warn!("metrics: a worker did not answer the scrape in time"),
            }
        }
        total
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.senders.len()
    }
}
