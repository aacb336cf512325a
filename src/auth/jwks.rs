//! Where a provider's keys come from, and how fetched keys reach every core without a reload.
//!
//! A [`KeySource`] holds the current [`KeySet`] behind arc-swap and an epoch that changes when
//! the keys do (cached tokens verified under an older epoch are verified again). Static sources
//! (`file`, `inline`) never change. A `uri` source is fetched by one `portcullis-jwks` thread per
//! gateway, off the request path, over the gateway's own upstream client: every
//! `refreshSeconds`, and when a request meets an unknown `kid` (at most once per 10 s per
//! source). A failed fetch keeps the last good keys. A source survives a reload when its URI is
//! unchanged ([`carry_over`]), so a reload never forgets fetched keys.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::auth::jwk::KeySet;
use crate::upstream::client::{self, Limits};
use crate::upstream::pool::Pool;
use crate::upstream::target::Target;

/// Least time between two refetches asked for by unknown `kid`s.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Wait after a failed fetch before the next attempt.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// Largest JWKS document accepted.
const MAX_JWKS: usize = 1024 * 1024;

/// A provider's keys.
pub struct KeySource {
    keys: ArcSwap<KeySet>,
    epoch: AtomicU64,
    /// Set for `uri` sources.
    pub remote: Option<Remote>,
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySource")
            .field("keys", &self.keys.load().keys.len())
            .field("uri", &self.remote.as_ref().map(|r| &r.uri))
            .finish()
    }
}

/// The fetch state of a `uri` source.
pub struct Remote {
    /// The JWKS URI (no secrets: a URI with userinfo is refused at load).
    pub uri: Box<str>,
    /// Where to fetch it.
    pub target: Target,
    /// Periodic refresh.
    pub refresh: Duration,
    /// A request met an unknown `kid`.
    refetch: AtomicBool,
    /// Unix millis of the last fetch attempt (0 = never).
    last_attempt: AtomicU64,
    /// Unix millis of the last successful fetch (0 = never).
    last_success: AtomicU64,
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl KeySource {
    /// A source that never changes.
    pub fn fixed(keys: KeySet) -> Arc<KeySource> {
        Arc::new(KeySource { keys: ArcSwap::from_pointee(keys), epoch: AtomicU64::new(0), remote: None })
    }

    /// A source fetched from `uri` (empty until the first fetch).
    pub fn remote(uri: &str, target: Target, refresh: Duration) -> Arc<KeySource> {
        Arc::new(KeySource {
            keys: ArcSwap::from_pointee(KeySet::default()),
            epoch: AtomicU64::new(0),
            remote: Some(Remote {
                uri: uri.into(),
                target,
                refresh,
                refetch: AtomicBool::new(false),
                last_attempt: AtomicU64::new(0),
                last_success: AtomicU64::new(0),
            }),
        })
    }

    /// The current keys and their epoch.
    #[inline]
    pub fn load(&self) -> (arc_swap::Guard<Arc<KeySet>>, u64) {
        (self.keys.load(), self.epoch.load(Ordering::Acquire))
    }

    /// The current epoch alone (a cache hit checks it).
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Asks the fetcher for a refetch (an unknown `kid`); rate-limited by the fetcher.
    pub fn request_refetch(&self) {
        if let Some(r) = &self.remote {
            r.refetch.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a `uri` source has keys from a successful fetch.
    pub fn fetched(&self) -> bool {
        self.remote.as_ref().is_none_or(|r| r.last_success.load(Ordering::Acquire) != 0)
    }

    /// Publishes `keys`; the epoch moves only when they differ from the current ones.
    pub fn publish(&self, keys: KeySet) {
        if !self.keys.load().same_keys(&keys) {
            self.keys.store(Arc::new(keys));
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Whether the fetcher should fetch now (unix millis `now`).
    fn due(&self, now: u64) -> bool {
        let Some(r) = &self.remote else { return false };
        let last = r.last_attempt.load(Ordering::Relaxed);
        if last == 0 {
            return true;
        }
        let since = Duration::from_millis(now.saturating_sub(last));
        let ok = r.last_success.load(Ordering::Relaxed) >= last;
        (ok && since >= r.refresh)
            || (!ok && since >= RETRY_AFTER_FAILURE)
            || (r.refetch.load(Ordering::Relaxed) && since >= REFETCH_INTERVAL)
    }
}

/// Makes `next` reuse the sources of `previous` whose URI is unchanged, so fetched keys carry
/// over a reload.
pub fn carry_over(next: &mut [Arc<KeySource>], previous: &[Arc<KeySource>]) {
    for n in next.iter_mut() {
        let Some(uri) = n.remote.as_ref().map(|r| &r.uri) else { continue };
        if let Some(p) = previous.iter().find(|p| p.remote.as_ref().is_some_and(|r| r.uri == *uri)) {
            *n = p.clone();
        }
    }
}

/// Fetches one source once; on success publishes the keys.
pub async fn fetch(source: &KeySource, pool: &RefCell<Pool>, limits: Limits) -> Result<usize, String> {
    let Some(r) = &source.remote else { return Ok(0) };
    r.last_attempt.store(now_millis().max(1), Ordering::Relaxed);
    r.refetch.store(false, Ordering::Relaxed);
    let mut req = Vec::with_capacity(128);
    req.extend_from_slice(b"GET ");
    req.extend_from_slice(r.target.path.as_bytes());
    req.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    req.extend_from_slice(r.target.authority.as_bytes());
    req.extend_from_slice(b"\r\naccept: application/json\r\nuser-agent: portcullis\r\n\r\n");
    let limits = Limits { max_body: MAX_JWKS, ..limits };
    let resp = client::exchange(pool, &r.target, req, limits).await.map_err(|e| e.to_string())?;
    if resp.status != 200 {
        return Err(format!("HTTP status {}", resp.status));
    }
    let (set, problems) = KeySet::parse(&resp.body)?;
    for p in &problems {
        log::warn!("jwks {}: key skipped: {p}", r.uri);
    }
    if set.keys.is_empty() {
        return Err("no usable keys in the document".into());
    }
    let n = set.keys.len();
    source.publish(set);
    r.last_success.store(now_millis().max(1), Ordering::Release);
    Ok(n)
}

/// The fetcher loop: every `tick`, fetches the sources `sources()` returns that are due, until
/// `stop` is set; `fetched_keys(authority, start, error)` hears of each fetch (a trace span). Runs on its own thread with its own monoio runtime and connection pool.
pub async fn run(
    sources: impl Fn() -> Vec<Arc<KeySource>>,
    fetched_keys: impl Fn(&str, std::time::SystemTime, Option<String>),
    limits: Limits,
    stop: Arc<AtomicBool>,
    tick: Duration,
) {
    let pool = RefCell::new(Pool::default());
    while !stop.load(Ordering::Relaxed) {
        let now = now_millis();
        for s in sources() {
            if s.due(now) {
                let uri = s.remote.as_ref().map_or("", |r| &r.uri);
                let started = Instant::now();
                let start = std::time::SystemTime::now();
                let fetched = fetch(&s, &pool, limits).await;
                match &fetched {
                    Ok(n) => log::info!("jwks {uri}: {n} key(s) in {:?}", started.elapsed()),
                    Err(e) => log::warn!("jwks {uri}: fetch failed, keeping the last good keys: {e}"),
                }
                if let Some(r) = s.remote.as_ref() {
                    fetched_keys(&r.target.authority, start, fetched.err());
                }
            }
        }
        monoio::time::sleep(tick).await;
    }
}
