//! `servers[].rateLimits`: token buckets per key (subject, claim, API key or peer address), kept
//! per worker with no lock and no shared counter.
//!
//! Each worker holds its own buckets and gets `1/workers` of each budget: `requests / per /
//! workers` tokens per second and `burst / workers` tokens of depth (at least one). Connections
//! are spread over workers by the kernel (SO_REUSEPORT), so a caller with many connections gets
//! about the configured rate in total; a caller on one connection reaches one worker and gets
//! its share, `1/workers` of it. The limit is never exceeded by more than the rounding of one
//! bucket per worker; the price of exactness (a shared atomic counter per key, its cache line
//! moving between cores on every call) is what the thread-per-core design avoids.
//!
//! Memory is bounded: at most [`MAX_KEYS`] buckets per limit per worker. A full bucket is the
//! same as no bucket, so those are dropped first; under a flood of more distinct keys than that,
//! the buckets touched longest ago go (a sixteenth of the table at once, so the flood costs one
//! pass per that many new keys), and their keys start again with a full bucket.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

/// Most keys one worker tracks per limit.
pub const MAX_KEYS: usize = 10_000;

/// Keys a full table frees at once (see `Table::evict`).
const EVICT_AT_ONCE: usize = MAX_KEYS / 16;

/// What identifies a caller for a limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyFrom {
    /// The JWT's `sub` claim.
    Sub,
    /// The principal's subject, whatever the authentication mode.
    Subject,
    /// A claim at a dotted path (nested objects only).
    Claim(Box<str>),
    /// The API key's id (callers authenticated otherwise have none).
    ApiKey,
    /// The client's IP address as the gateway sees it (the TCP peer).
    Peer,
}

impl KeyFrom {
    /// Parses `sub | subject | claim:<dotted path> | apiKey | peer`.
    pub fn parse(s: &str) -> Result<KeyFrom, String> {
        Ok(match s {
            "sub" => KeyFrom::Sub,
            "subject" => KeyFrom::Subject,
            "apiKey" => KeyFrom::ApiKey,
            "peer" => KeyFrom::Peer,
            _ => match s.strip_prefix("claim:") {
                Some(path) if !path.is_empty() && !path.split('.').any(str::is_empty) => {
                    KeyFrom::Claim(path.into())
                }
                _ => return Err("must be sub, subject, claim:<dotted path>, apiKey or peer".into()),
            },
        })
    }
}

/// One compiled `rateLimits[]` entry.
#[derive(Debug)]
pub struct Limit {
    /// `name`, else its index: the `rule` label of `portcullis_rate_limited_total`.
    pub label: Box<str>,
    /// `match.tools` (exposed names); `None` = every `tools/call` of the server.
    pub tools: Option<Vec<Box<str>>>,
    /// Whose budget a call spends.
    pub key: KeyFrom,
    /// `requests` per `per`.
    pub requests: u64,
    /// The period.
    pub per: Duration,
    /// Bucket depth (`burst`, default `requests`).
    pub burst: u64,
}

impl Limit {
    /// Whether a call of the exposed tool `tool` spends this limit's budget.
    pub fn applies(&self, tool: &str) -> bool {
        self.tools.as_ref().is_none_or(|t| t.iter().any(|x| **x == *tool))
    }

    /// This worker's share: (tokens per second, depth).
    fn share(&self, workers: usize) -> (f64, f64) {
        let w = workers.max(1) as f64;
        let rate = self.requests as f64 / self.per.as_secs_f64() / w;
        (rate, (self.burst as f64 / w).max(1.0))
    }
}

/// A limit's answer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// Within budget (a token was spent).
    Pass,
    /// Over budget: one token is back after this long.
    Limited(Duration),
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One limit's buckets: key -> bucket.
#[derive(Default)]
struct Table {
    buckets: FxHashMap<Box<[u8]>, Bucket>,
}

/// A worker's buckets: server -> limit index -> table. Forgotten on reload (a new snapshot
/// generation), when limits may have changed.
#[derive(Default)]
pub struct Buckets {
    generation: u64,
    tables: FxHashMap<Box<str>, Vec<Table>>,
}

impl Buckets {
    /// Spends one token of `key`'s bucket for limit `index` of `server` at `now`, or says how
    /// long until one is back.
    #[allow(clippy::too_many_arguments)] // one call site; each value is distinct
    pub fn check(
        &mut self,
        generation: u64,
        server: &str,
        index: usize,
        limit: &Limit,
        workers: usize,
        key: &[u8],
        now: Instant,
    ) -> Verdict {
        if generation > self.generation {
            self.generation = generation;
            self.tables.clear();
        }
        let (rate, depth) = limit.share(workers);
        // Looked up by `&str`: no allocation once the server's tables exist.
        let tables = match self.tables.get_mut(server) {
            Some(t) => t,
            None => self.tables.entry(server.into()).or_default(),
        };
        if tables.len() <= index {
            tables.resize_with(index + 1, Table::default);
        }
        let table = &mut tables[index];
        let bucket = match table.buckets.get_mut(key) {
            Some(b) => {
                let refill = now.saturating_duration_since(b.at).as_secs_f64() * rate;
                b.tokens = (b.tokens + refill).min(depth);
                b.at = now;
                b
            }
            None => {
                if table.buckets.len() >= MAX_KEYS {
                    table.evict(now, rate, depth);
                }
                table.buckets.entry(key.into()).or_insert(Bucket { tokens: depth, at: now })
            }
        };
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Verdict::Pass
        } else {
            Verdict::Limited(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

impl Table {
    /// Makes room for at least [`EVICT_AT_ONCE`] keys, so that a flood of new keys pays one
    /// pass over the table per that many keys, not per key: drops the buckets that have refilled
    /// (the same as absent); when that is not enough, those touched longest ago.
    fn evict(&mut self, now: Instant, rate: f64, depth: f64) {
        self.buckets
            .retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < depth);
        let target = MAX_KEYS - EVICT_AT_ONCE;
        if self.buckets.len() > target {
            let mut times: Vec<Instant> = self.buckets.values().map(|b| b.at).collect();
            let excess = self.buckets.len() - target;
            let (_, cutoff, _) = times.select_nth_unstable(excess - 1);
            let cutoff = *cutoff;
            let mut left = excess;
            self.buckets.retain(|_, b| {
                let drop = left > 0 && b.at <= cutoff;
                left -= usize::from(drop);
                !drop
            });
        }
    }
}

/// Parses `per`: `1s`, `1m`, `1h` (any positive count of seconds, minutes or hours).
pub fn parse_period(s: &str) -> Result<Duration, String> {
    let err = || "must be a positive count of s, m or h (1s, 1m, 1h)".to_string();
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = n.parse().map_err(|_| err())?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60).ok_or_else(err)?,
        "h" => n.checked_mul(3600).ok_or_else(err)?,
        _ => return Err(err()),
    };
    if secs == 0 {
        return Err(err());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn limit(requests: u64, per: &str, burst: u64) -> Limit {
        Limit {
            label: "0".into(),
            tools: None,
            key: KeyFrom::Sub,
            requests,
            per: parse_period(per).unwrap(),
            burst,
        }
    }

    #[test]
    fn a_bucket_spends_its_burst_then_refills_at_the_rate() {
        let l = limit(10, "1s", 20);
        let mut b = Buckets::default();
        let t0 = Instant::now();
        for i in 0..20 {
            assert_eq!(b.check(1, "s", 0, &l, 1, b"alice", t0), Verdict::Pass, "call {i}");
        }
        let Verdict::Limited(wait) = b.check(1, "s", 0, &l, 1, b"alice", t0) else {
            panic!("over the burst")
        };
        assert_eq!(wait, Duration::from_millis(100), "10 per second: a token every 100 ms");
        assert_eq!(b.check(1, "s", 0, &l, 1, b"bob", t0), Verdict::Pass, "keys are separate");
        let t1 = t0 + Duration::from_millis(250);
        assert_eq!(b.check(1, "s", 0, &l, 1, b"alice", t1), Verdict::Pass);
        assert_eq!(b.check(1, "s", 0, &l, 1, b"alice", t1), Verdict::Pass);
        assert!(matches!(b.check(1, "s", 0, &l, 1, b"alice", t1), Verdict::Limited(_)));
    }

    #[test]
    fn workers_share_the_budget() {
        let l = limit(10, "1s", 10);
        let mut b = Buckets::default();
        let t0 = Instant::now();
        let passed = (0..20).filter(|_| b.check(1, "s", 0, &l, 2, b"k", t0) == Verdict::Pass).count();
        assert_eq!(passed, 5, "half the burst on each of two workers");
        let Verdict::Limited(wait) = b.check(1, "s", 0, &l, 2, b"k", t0) else { panic!() };
        assert_eq!(wait, Duration::from_millis(200), "5 per second on this worker");
        // A budget smaller than the worker count still lets one call through per worker.
        let tiny = limit(1, "1h", 1);
        assert_eq!(b.check(1, "s", 1, &tiny, 8, b"k", t0), Verdict::Pass);
        assert!(matches!(b.check(1, "s", 1, &tiny, 8, b"k", t0), Verdict::Limited(_)));
    }

    #[test]
    fn a_reload_starts_over_and_memory_is_bounded() {
        let l = limit(1, "1h", 1);
        let mut b = Buckets::default();
        let t0 = Instant::now();
        assert_eq!(b.check(1, "s", 0, &l, 1, b"k", t0), Verdict::Pass);
        assert!(matches!(b.check(1, "s", 0, &l, 1, b"k", t0), Verdict::Limited(_)));
        assert_eq!(b.check(2, "s", 0, &l, 1, b"k", t0), Verdict::Pass, "new generation");
        for i in 0..(MAX_KEYS + 50) {
            b.check(2, "s", 0, &l, 1, format!("key-{i}").as_bytes(), t0);
        }
        let table = &b.tables.get("s").unwrap()[0];
        assert!(table.buckets.len() <= MAX_KEYS, "{}", table.buckets.len());
        // The most recent keys survive an eviction; the oldest went.
        let t1 = t0 + Duration::from_secs(1);
        for i in 0..(2 * MAX_KEYS) {
            b.check(2, "s", 0, &l, 1, format!("late-{i}").as_bytes(), t1 + Duration::from_micros(i as u64));
        }
        let table = &b.tables.get("s").unwrap()[0];
        assert!(table.buckets.len() <= MAX_KEYS);
        assert!(table.buckets.contains_key(format!("late-{}", 2 * MAX_KEYS - 1).as_bytes()));
        assert!(!table.buckets.contains_key(&b"late-0"[..]));
    }

    #[test]
    fn keys_and_periods_parse() {
        assert_eq!(KeyFrom::parse("claim:org.id").unwrap(), KeyFrom::Claim("org.id".into()));
        for bad in ["claim:", "claim:a..b", "user", ""] {
            assert!(KeyFrom::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_period("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_period("2h").unwrap(), Duration::from_secs(7200));
        for bad in ["0s", "1d", "s", "", "-1s", "1.5s"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
    }
}
