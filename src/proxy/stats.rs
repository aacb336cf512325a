//! Statistics one worker counts without locks (requests by server, method class, status and
//! tool; latency histograms; authentication failures by reason; decisions per rule; pools per
//! backend endpoint), merged across workers when `/metrics` is scraped.

use rustc_hash::FxHashMap;

/// MCP method classes counted in metrics (a bounded label set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodClass {
    /// Not an MCP POST (GET, DELETE, OPTIONS, errors before the body).
    None,
    /// initialize
    Initialize,
    /// server/discover
    Discover,
    /// ping
    Ping,
    /// tools/list
    ToolsList,
    /// tools/call
    ToolsCall,
    /// Any other request method.
    Other,
    /// A notification.
    Notification,
    /// A client response.
    Response,
    /// A batch (2025-03-26).
    Batch,
}

/// Number of [`MethodClass`] values.
pub const METHOD_CLASSES: usize = 10;

impl MethodClass {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            MethodClass::None => "-",
            MethodClass::Initialize => "initialize",
            MethodClass::Discover => "server/discover",
            MethodClass::Ping => "ping",
            MethodClass::ToolsList => "tools/list",
            MethodClass::ToolsCall => "tools/call",
            MethodClass::Other => "other",
            MethodClass::Notification => "notification",
            MethodClass::Response => "response",
            MethodClass::Batch => "batch",
        }
    }

    /// All classes, in index order.
    pub const ALL: [MethodClass; METHOD_CLASSES] = [
        MethodClass::None,
        MethodClass::Initialize,
        MethodClass::Discover,
        MethodClass::Ping,
        MethodClass::ToolsList,
        MethodClass::ToolsCall,
        MethodClass::Other,
        MethodClass::Notification,
        MethodClass::Response,
        MethodClass::Batch,
    ];

    /// The class of a JSON-RPC method name.
    pub fn of(method: &str) -> MethodClass {
        match method {
            "tools/call" => MethodClass::ToolsCall,
            "tools/list" => MethodClass::ToolsList,
            "initialize" => MethodClass::Initialize,
            "server/discover" => MethodClass::Discover,
            "ping" => MethodClass::Ping,
            _ => MethodClass::Other,
        }
    }
}

/// Status codes with their own metric slot; anything else lands in the last slot.
pub const STATUSES: [u16; 21] =
    [100, 200, 202, 204, 400, 401, 403, 404, 405, 406, 408, 413, 415, 417, 431, 500, 501, 502, 503, 504, 0];

pub(crate) fn status_slot(status: u16) -> usize {
    STATUSES.iter().position(|&s| s == status).unwrap_or(STATUSES.len() - 1)
}

/// Latency histogram bucket upper bounds, microseconds.
pub const LATENCY_BOUNDS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    5_000_000, 10_000_000,
];

/// Counters of one server: `[method class][status slot]`.
pub type ServerCounters = [[u64; STATUSES.len()]; METHOD_CLASSES];

/// A latency histogram over [`LATENCY_BOUNDS_US`]: per-bucket (not cumulative) counts, the last
/// bucket being +Inf, and the sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket (last = above every bound).
    pub buckets: [u64; LATENCY_BOUNDS_US.len() + 1],
    /// Sum of the observations, microseconds.
    pub sum_us: u64,
}

impl Histogram {
    /// Adds one observation.
    #[inline]
    pub fn observe(&mut self, micros: u64) {
        let b = LATENCY_BOUNDS_US.iter().position(|&ub| micros <= ub).unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[b] += 1;
        self.sum_us += micros;
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(o.buckets.iter()) {
            *a += b;
        }
        self.sum_us += o.sum_us;
    }
}

/// Authentication failure reasons, the `reason` label of
/// `portcullis_authentication_failures_total` (a fixed set: the label never carries client data).
pub const AUTH_REASONS: [&str; 21] = [
    "missing",
    "token_too_large",
    "malformed",
    "encrypted",
    "base64",
    "json",
    "algorithm",
    "unsupported",
    "issuer",
    "unknown_kid",
    "key_mismatch",
    "signature",
    "no_expiry",
    "expired",
    "not_yet_valid",
    "bad_time",
    "audience",
    "invalid_credential",
    "repeated_credential",
    "client_certificate",
    "subject",
];

/// The [`AUTH_REASONS`] slot of a failure: the label set is fixed and short.
pub fn auth_reason(f: crate::auth::Failure) -> usize {
    use crate::auth::jwt::Reject as R;
    use crate::auth::Failure;
    match f {
        Failure::Missing => 0,
        Failure::Token(r) => match r {
            R::TooLarge => 1,
            R::Malformed => 2,
            R::Encrypted => 3,
            R::Base64 => 4,
            R::Json => 5,
            R::Alg => 6,
            R::Unsupported => 7,
            R::Issuer => 8,
            R::UnknownKid => 9,
            R::KeyMismatch => 10,
            R::Signature => 11,
            R::NoExpiry => 12,
            R::Expired => 13,
            R::NotYetValid => 14,
            R::BadTime => 15,
            R::Audience => 16,
            R::Subject => 20,
        },
        Failure::Credential(_) => 17,
        Failure::Repeated(_) => 18,
        Failure::Certificate(_) => 19,
    }
}

/// Status counters of one tool: `[status slot]`.
pub type ToolCounters = [u64; STATUSES.len()];

/// One server's figures.
#[derive(Clone, Debug)]
pub struct ServerStats {
    /// Requests by method class and status.
    pub counters: ServerCounters,
    /// `tools/call` by backend label, then tool label (configured names or `other`), then
    /// status. Nested so counting looks up borrowed names (no allocation once seen).
    pub tools: FxHashMap<Box<str>, FxHashMap<Box<str>, ToolCounters>>,
    /// Whole request: complete head to response written.
    pub total: Histogram,
    /// The part of `total` not spent waiting on backends (what the gateway adds).
    pub gateway: Histogram,
    /// Time waiting on backends, for requests that reached one.
    pub backend: Histogram,
    /// Authentication failures by [`AUTH_REASONS`] slot.
    pub auth_failures: [u64; AUTH_REASONS.len()],
    /// Verified-token cache hits.
    pub token_cache_hits: u64,
    /// Verified-token cache misses (the token was verified, or refused, in full).
    pub token_cache_misses: u64,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            counters: [[0; STATUSES.len()]; METHOD_CLASSES],
            tools: FxHashMap::default(),
            total: Histogram::default(),
            gateway: Histogram::default(),
            backend: Histogram::default(),
            auth_failures: [0; AUTH_REASONS.len()],
            token_cache_hits: 0,
            token_cache_misses: 0,
        }
    }
}

impl ServerStats {
    fn merge(&mut self, o: &ServerStats) {
        for (m, row) in o.counters.iter().enumerate() {
            for (s, n) in row.iter().enumerate() {
                self.counters[m][s] += n;
            }
        }
        for (backend, tools) in &o.tools {
            let mine = self.tools.entry(backend.clone()).or_default();
            for (tool, row) in tools {
                let slot = mine.entry(tool.clone()).or_insert([0; STATUSES.len()]);
                for (a, b) in slot.iter_mut().zip(row.iter()) {
                    *a += b;
                }
            }
        }
        self.total.merge(&o.total);
        self.gateway.merge(&o.gateway);
        self.backend.merge(&o.backend);
        for (a, b) in self.auth_failures.iter_mut().zip(o.auth_failures.iter()) {
            *a += b;
        }
        self.token_cache_hits += o.token_cache_hits;
        self.token_cache_misses += o.token_cache_misses;
    }
}

/// What authentication did for one request, as counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthEvent {
    /// Nothing worth counting (anonymous, or authentication was not reached).
    #[default]
    None,
    /// A bearer token found in the verified-token cache.
    CacheHit,
    /// A bearer token not in the cache (verified or refused in full).
    CacheMiss,
    /// Refused, with its [`AUTH_REASONS`] slot.
    Failed(usize),
    /// Refused after a cache miss (a token that did not verify).
    MissFailed(usize),
}

/// One request as phase 8 counts it.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// Server name (`-` when no server matched).
    pub server: &'a str,
    /// MCP method class.
    pub method: MethodClass,
    /// HTTP status.
    pub status: u16,
    /// Complete head to response written, microseconds.
    pub total_us: u64,
    /// Time waiting on backends, when the request reached one.
    pub backend_us: Option<u64>,
    /// (backend, tool) labels of a `tools/call`.
    pub tool: Option<(&'a str, &'a str)>,
    /// What authentication did.
    pub auth: AuthEvent,
}

/// Per-endpoint figures of the upstream pool (keyed by the pool key; labelled with backend
/// names at scrape time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// New connections opened.
    pub connects: u64,
    /// Requests served on a pooled connection.
    pub reuses: u64,
    /// Connections that could not be opened (refused, timed out, TLS handshake failed).
    pub connect_failures: u64,
    /// Idle connections held now (a gauge).
    pub idle: u64,
}

impl EndpointStats {
    fn merge(&mut self, o: &EndpointStats) {
        self.connects += o.connects;
        self.reuses += o.reuses;
        self.connect_failures += o.connect_failures;
        self.idle += o.idle;
    }
}

/// One worker's statistics; summed across workers at scrape time.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Requests and their latencies by server name (`-` when no server matched).
    pub requests: FxHashMap<Box<str>, ServerStats>,
    /// Connections currently open.
    pub connections_open: u64,
    /// Connections accepted.
    pub connections_total: u64,
    /// Connections refused at `maxConnectionsPerWorker`.
    pub connections_rejected: u64,
    /// New upstream connections opened.
    pub upstream_connects: u64,
    /// Upstream requests served on a pooled connection.
    pub upstream_reuses: u64,
    /// Upstream pool figures by endpoint (filled at scrape time from the pool).
    pub upstream: FxHashMap<crate::upstream::pool::Key, EndpointStats>,
    /// Backend failures (refused, timed out, bad answer, error status) by backend name.
    pub backend_failures: FxHashMap<Box<str>, u64>,
    /// Authorization decisions by server, then (deciding rule index or -1 for the default,
    /// allowed). Keyed by server first so counting looks up a borrowed name (no allocation).
    pub decisions: FxHashMap<Box<str>, FxHashMap<(i64, bool), u64>>,
    /// Rule conditions that failed to evaluate (missing field, wrong type, cost bound).
    pub condition_errors: u64,
    /// Sessions handed out by `initialize`.
    pub sessions_opened: u64,
    /// Sessions ended by `DELETE`.
    pub sessions_closed: u64,
    /// `InputRequiredResult`s the MRTR bridge answered for a 2025 backend's requests.
    pub input_asked: u64,
    /// Retries with `inputResponses` (the MRTR bridge) and clients' answers (the reverse bridge)
    /// handed to the worker holding their call.
    pub input_handoffs: u64,
    /// TLS handshakes completed on `tls` listeners.
    pub tls_handshakes: u64,
    /// TLS handshakes that failed (bad client hello, no shared cipher, refused client
    /// certificate, timeout).
    pub tls_handshake_failures: u64,
    /// Calls refused by a rate limit: (server, limit label) -> count.
    pub rate_limited: FxHashMap<(Box<str>, Box<str>), u64>,
    /// Listed tools whose definition did not match its pin: (server, backend, tool) -> count.
    pub pin_mismatches: FxHashMap<ToolKey, u64>,
    /// Token requests to an STS: (scheme, outcome) -> count.
    pub backend_token_requests: FxHashMap<(Box<str>, &'static str), u64>,
    /// Backend tokens served from the worker's cache: scheme -> count.
    pub backend_token_hits: FxHashMap<Box<str>, u64>,
}

/// (server, backend, tool).
pub type ToolKey = (Box<str>, Box<str>, Box<str>);

/// Most (server, backend, tool) series of `portcullis_tool_pin_mismatches_total` a worker keeps.
pub const MAX_PIN_SERIES: usize = 1024;

impl Stats {
    /// Counts a failed backend exchange.
    pub fn backend_failed(&mut self, backend: &str) {
        match self.backend_failures.get_mut(backend) {
            Some(n) => *n += 1,
            None => {
                self.backend_failures.insert(backend.into(), 1);
            }
        }
    }

    /// Counts a token request of `scheme` to its STS and how it ended (`ok`, `refused`, ...).
    pub fn backend_token_request(&mut self, scheme: &str, outcome: &'static str) {
        match self.backend_token_requests.iter_mut().find(|((s, o), _)| **s == *scheme && *o == outcome) {
            Some((_, n)) => *n += 1,
            None => {
                self.backend_token_requests.insert((scheme.into(), outcome), 1);
            }
        }
    }

    /// Counts a backend token of `scheme` served from the cache.
    pub fn backend_token_hit(&mut self, scheme: &str) {
        match self.backend_token_hits.get_mut(scheme) {
            Some(n) => *n += 1,
            None => {
                self.backend_token_hits.insert(scheme.into(), 1);
            }
        }
    }

    /// Counts a call refused by the rate limit `label` of `server`.
    pub fn rate_limited(&mut self, server: &str, label: &str) {
        let hit = self.rate_limited.iter_mut().find(|((s, l), _)| **s == *server && **l == *label);
        match hit {
            Some((_, n)) => *n += 1,
            None => {
                self.rate_limited.insert((server.into(), label.into()), 1);
            }
        }
    }

    /// Counts a listed tool whose definition did not match its pin.
    /// Tool names come from backends: past [`MAX_PIN_SERIES`] series, new tools are counted as
    /// `other`, so a backend listing ever-new names cannot grow the table (or the scrape).
    pub fn pin_mismatch(&mut self, server: &str, backend: &str, tool: &str) {
        let key = (Box::from(server), Box::from(backend), Box::from(tool));
        let key = if self.pin_mismatches.len() < MAX_PIN_SERIES || self.pin_mismatches.contains_key(&key) {
            key
        } else {
            (key.0, key.1, Box::from("other"))
        };
        *self.pin_mismatches.entry(key).or_insert(0) += 1;
    }

    /// Counts a TLS handshake on a `tls` listener.
    pub fn tls_handshake(&mut self, ok: bool) {
        if ok {
            self.tls_handshakes += 1;
        } else {
            self.tls_handshake_failures += 1;
        }
    }

    /// Counts one authorization decision and the conditions that failed to evaluate for it.
    pub fn authorized(&mut self, server: &str, d: &crate::policy::rules::Decision, errors: u64) {
        use crate::policy::rules::Decision;
        let (rule, allowed) = match d {
            Decision::Allow { rule } => (*rule, true),
            Decision::Deny { rule, .. } => (*rule, false),
        };
        let rule = rule.map_or(-1, |r| r as i64);
        let per_server = match self.decisions.get_mut(server) {
            Some(m) => m,
            None => self.decisions.entry(server.into()).or_default(),
        };
        *per_server.entry((rule, allowed)).or_insert(0) += 1;
        self.condition_errors += errors;
    }

    /// Counts one request (no backend, tool or authentication detail).
    pub fn record(&mut self, server: &str, method: MethodClass, status: u16, micros: u64) {
        self.count(&Record {
            server,
            method,
            status,
            total_us: micros,
            backend_us: None,
            tool: None,
            auth: AuthEvent::None,
        });
    }

    /// Counts one request. Allocates only the first time a server, backend or tool label is
    /// seen (the label sets are bounded by the configuration).
    pub fn count(&mut self, r: &Record<'_>) {
        let s = match self.requests.get_mut(r.server) {
            Some(s) => s,
            None => self.requests.entry(r.server.into()).or_default(),
        };
        let slot = status_slot(r.status);
        s.counters[r.method as usize][slot] += 1;
        s.total.observe(r.total_us);
        s.gateway.observe(r.total_us.saturating_sub(r.backend_us.unwrap_or(0)));
        if let Some(b) = r.backend_us {
            s.backend.observe(b);
        }
        if let Some((backend, tool)) = r.tool {
            let tools = match s.tools.get_mut(backend) {
                Some(t) => t,
                None => s.tools.entry(backend.into()).or_default(),
            };
            let row = match tools.get_mut(tool) {
                Some(row) => row,
                None => tools.entry(tool.into()).or_insert([0; STATUSES.len()]),
            };
            row[slot] += 1;
        }
        match r.auth {
            AuthEvent::None => {}
            AuthEvent::CacheHit => s.token_cache_hits += 1,
            AuthEvent::CacheMiss => s.token_cache_misses += 1,
            AuthEvent::Failed(reason) => s.auth_failures[reason.min(AUTH_REASONS.len() - 1)] += 1,
            AuthEvent::MissFailed(reason) => {
                s.token_cache_misses += 1;
                s.auth_failures[reason.min(AUTH_REASONS.len() - 1)] += 1;
            }
        }
    }

    /// Adds another worker's figures.
    pub fn merge(&mut self, o: &Stats) {
        for (name, st) in &o.requests {
            self.requests.entry(name.clone()).or_default().merge(st);
        }
        self.connections_open += o.connections_open;
        self.connections_total += o.connections_total;
        self.connections_rejected += o.connections_rejected;
        self.upstream_connects += o.upstream_connects;
        self.upstream_reuses += o.upstream_reuses;
        for (k, e) in &o.upstream {
            self.upstream.entry(*k).or_default().merge(e);
        }
        for (b, n) in &o.backend_failures {
            *self.backend_failures.entry(b.clone()).or_insert(0) += n;
        }
        for (server, m) in &o.decisions {
            let mine = self.decisions.entry(server.clone()).or_default();
            for (k, n) in m {
                *mine.entry(*k).or_insert(0) += n;
            }
        }
        self.condition_errors += o.condition_errors;
        self.sessions_opened += o.sessions_opened;
        self.input_asked += o.input_asked;
        self.input_handoffs += o.input_handoffs;
        self.sessions_closed += o.sessions_closed;
        self.tls_handshakes += o.tls_handshakes;
        self.tls_handshake_failures += o.tls_handshake_failures;
        for (k, n) in &o.pin_mismatches {
            *self.pin_mismatches.entry(k.clone()).or_insert(0) += n;
        }
        for (k, n) in &o.rate_limited {
            *self.rate_limited.entry(k.clone()).or_insert(0) += n;
        }
        for (k, n) in &o.backend_token_requests {
            *self.backend_token_requests.entry(k.clone()).or_insert(0) += n;
        }
        for (k, n) in &o.backend_token_hits {
            *self.backend_token_hits.entry(k.clone()).or_insert(0) += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_mismatch_series_are_bounded() {
        let mut st = Stats::default();
        for i in 0..(MAX_PIN_SERIES + 500) {
            st.pin_mismatch("s", "b", &format!("tool-{i}"));
        }
        st.pin_mismatch("s", "b", "tool-0");
        assert_eq!(st.pin_mismatches.len(), MAX_PIN_SERIES + 1, "the cap, plus `other`");
        assert_eq!(st.pin_mismatches[&("s".into(), "b".into(), "other".into())], 500);
        assert_eq!(
            st.pin_mismatches[&("s".into(), "b".into(), "tool-0".into())],
            2,
            "known series still count"
        );
    }
}
