//! The Prometheus text exposition of a worker's counters (`proxy::stats`), summed over the
//! workers at scrape time by the admin listener. Labels come from the configuration (server,
//! backend, tool and rule names) or fixed tables, never from requests.

use std::fmt::Write as _;

use crate::config::snapshot::{Snapshot, ToolKind};
use crate::proxy::stats::{
    EndpointStats, Histogram, MethodClass, Stats, AUTH_REASONS, LATENCY_BOUNDS_US, STATUSES,
};
use crate::upstream::pool::Key;

/// Figures of the process rather than of the workers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Process {
    /// Successful configuration reloads.
    pub reloads: u64,
    /// Rejected configuration reloads.
    pub reload_failures: u64,
    /// Worker threads.
    pub workers: u64,
    /// Audit lines dropped (queue full, or the file could not be opened).
    pub audit_dropped: u64,
    /// Trace spans dropped (queues full, or the collector did not take them).
    pub spans_dropped: u64,
    /// Trace spans the collector took.
    pub spans_exported: u64,
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label(v: &str) -> std::borrow::Cow<'_, str> {
    if v.contains(['\\', '"', '\n']) {
        v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").into()
    } else {
        v.into()
    }
}

fn family(s: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One histogram family over [`LATENCY_BOUNDS_US`], a series per server.
fn histogram<'a>(
    s: &mut String,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (&'a str, &'a Histogram)>,
) {
    family(s, name, "histogram", help);
    for (server, h) in series {
        let server = label(server);
        let mut cumulative = 0u64;
        for (i, ub) in LATENCY_BOUNDS_US.iter().enumerate() {
            cumulative += h.buckets[i];
            let _ =
                writeln!(s, "{name}_bucket{{server=\"{server}\",le=\"{}\"}} {cumulative}", *ub as f64 / 1e6);
        }
        cumulative += h.buckets[LATENCY_BOUNDS_US.len()];
        let _ = writeln!(s, "{name}_bucket{{server=\"{server}\",le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(s, "{name}_sum{{server=\"{server}\"}} {}", h.sum_us as f64 / 1e6);
        let _ = writeln!(s, "{name}_count{{server=\"{server}\"}} {cumulative}");
    }
}

fn status_label(slot: usize) -> String {
    if STATUSES[slot] == 0 {
        "other".to_string()
    } else {
        STATUSES[slot].to_string()
    }
}

/// Prometheus text exposition of the summed statistics. Labels come from the configuration
/// (server, backend and tool names, rule names) or fixed tables, never from requests.
pub fn render(st: &Stats, snap: &Snapshot, process: &Process) -> String {
    let mut s = String::with_capacity(8192);
    let mut servers: Vec<_> = st.requests.iter().collect();
    servers.sort_by(|a, b| a.0.cmp(b.0));

    family(&mut s, "portcullis_requests_total", "counter", "Requests by server, MCP method and HTTP status.");
    for (server, ss) in &servers {
        for (m, row) in ss.counters.iter().enumerate() {
            for (si, &n) in row.iter().enumerate() {
                if n == 0 {
                    continue;
                }
                let _ = writeln!(
                    s,
                    "portcullis_requests_total{{server=\"{}\",method=\"{}\",status=\"{}\"}} {n}",
                    label(server),
                    MethodClass::ALL[m].as_str(),
                    status_label(si)
                );
            }
        }
    }
    family(
        &mut s,
        "portcullis_tool_calls_total",
        "counter",
        "tools/call requests by server, backend (the server itself for its own tools), tool and HTTP status; tools the configuration does not name are counted as \"other\".",
    );
    for (server, ss) in &servers {
        let mut tools: Vec<_> =
            ss.tools.iter().flat_map(|(b, m)| m.iter().map(move |(t, row)| (b, t, row))).collect();
        tools.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (backend, tool, row) in tools {
            for (si, &n) in row.iter().enumerate() {
                if n > 0 {
                    let _ = writeln!(
                        s,
                        "portcullis_tool_calls_total{{server=\"{}\",backend=\"{}\",tool=\"{}\",status=\"{}\"}} {n}",
                        label(server),
                        label(backend),
                        label(tool),
                        status_label(si)
                    );
                }
            }
        }
    }
    histogram(
        &mut s,
        "portcullis_request_duration_seconds",
        "Time from complete request head to response written, by server.",
        servers.iter().map(|(n, ss)| (&***n, &ss.total)),
    );
    histogram(
        &mut s,
        "portcullis_gateway_duration_seconds",
        "The part of each request's time not spent waiting on backends (what the gateway adds), by server.",
        servers.iter().map(|(n, ss)| (&***n, &ss.gateway)),
    );
    histogram(
        &mut s,
        "portcullis_backend_duration_seconds",
        "Time spent waiting on backends (wall time with at least one exchange in flight), by server, for requests that reached a backend.",
        servers.iter().filter(|(_, ss)| ss.backend.count() > 0).map(|(n, ss)| (&***n, &ss.backend)),
    );
    family(
        &mut s,
        "portcullis_authentication_failures_total",
        "counter",
        "Requests refused by authentication (401), by server and reason.",
    );
    for (server, ss) in &servers {
        for (i, &n) in ss.auth_failures.iter().enumerate() {
            if n > 0 {
                let _ = writeln!(
                    s,
                    "portcullis_authentication_failures_total{{server=\"{}\",reason=\"{}\"}} {n}",
                    label(server),
                    AUTH_REASONS[i]
                );
            }
        }
    }
    family(
        &mut s,
        "portcullis_token_cache_hits_total",
        "counter",
        "Bearer tokens found in the per-worker verified-token cache, by server.",
    );
    for (server, ss) in servers.iter().filter(|(_, ss)| ss.token_cache_hits + ss.token_cache_misses > 0) {
        let _ = writeln!(
            s,
            "portcullis_token_cache_hits_total{{server=\"{}\"}} {}",
            label(server),
            ss.token_cache_hits
        );
    }
    family(
        &mut s,
        "portcullis_token_cache_misses_total",
        "counter",
        "Bearer tokens not in the verified-token cache (verified or refused in full), by server.",
    );
    for (server, ss) in servers.iter().filter(|(_, ss)| ss.token_cache_hits + ss.token_cache_misses > 0) {
        let _ = writeln!(
            s,
            "portcullis_token_cache_misses_total{{server=\"{}\"}} {}",
            label(server),
            ss.token_cache_misses
        );
    }
    if !st.backend_token_requests.is_empty() {
        family(
            &mut s,
            "portcullis_backend_token_requests_total",
            "counter",
            "Token requests to a token service (oauth2 schemes), by scheme and outcome (ok, refused, unreachable, malformed, no_subject).",
        );
        let mut requests: Vec<_> = st.backend_token_requests.iter().collect();
        requests.sort();
        for ((scheme, outcome), n) in requests {
            let _ = writeln!(
                s,
                "portcullis_backend_token_requests_total{{scheme=\"{}\",outcome=\"{outcome}\"}} {n}",
                label(scheme)
            );
        }
    }
    if !st.backend_token_hits.is_empty() {
        family(
            &mut s,
            "portcullis_backend_token_cache_hits_total",
            "counter",
            "Backend tokens (oauth2 schemes) served from a worker's cache, by scheme.",
        );
        let mut hits: Vec<_> = st.backend_token_hits.iter().collect();
        hits.sort();
        for (scheme, n) in hits {
            let _ =
                writeln!(s, "portcullis_backend_token_cache_hits_total{{scheme=\"{}\"}} {n}", label(scheme));
        }
    }
    if !st.rate_limited.is_empty() {
        family(
            &mut s,
            "portcullis_rate_limited_total",
            "counter",
            "tools/call refused by a rate limit, by server and limit (its name, else its index).",
        );
        let mut limited: Vec<_> = st.rate_limited.iter().collect();
        limited.sort();
        for ((server, rule), n) in limited {
            let _ = writeln!(
                s,
                "portcullis_rate_limited_total{{server=\"{}\",rule=\"{}\"}} {n}",
                label(server),
                label(rule)
            );
        }
    }
    if !st.pin_mismatches.is_empty() {
        family(
            &mut s,
            "portcullis_tool_pin_mismatches_total",
            "counter",
            "Listed backend tools whose definition did not match its pin (or had none), by server, backend and tool.",
        );
        let mut mismatches: Vec<_> = st.pin_mismatches.iter().collect();
        mismatches.sort();
        for ((server, backend, tool), n) in mismatches {
            let _ = writeln!(
                s,
                "portcullis_tool_pin_mismatches_total{{server=\"{}\",backend=\"{}\",tool=\"{}\"}} {n}",
                label(server),
                label(backend),
                label(tool)
            );
        }
    }
    if !st.backend_failures.is_empty() {
        family(
            &mut s,
            "portcullis_backend_failures_total",
            "counter",
            "Failed backend exchanges by backend.",
        );
        let mut failures: Vec<_> = st.backend_failures.iter().collect();
        failures.sort();
        for (b, n) in failures {
            let _ = writeln!(s, "portcullis_backend_failures_total{{backend=\"{}\"}} {n}", label(b));
        }
    }
    family(
        &mut s,
        "portcullis_authorization_decisions_total",
        "counter",
        "tools/call authorization decisions by server and deciding rule (its index, or \"default\" for defaultAction; rule_name when the rule has a name in the current configuration).",
    );
    let mut decisions: Vec<_> =
        st.decisions.iter().flat_map(|(s, m)| m.iter().map(move |((r, a), n)| (s, *r, *a, *n))).collect();
    decisions.sort();
    for (server, rule, allowed, n) in decisions {
        let d = if allowed { "allow" } else { "deny" };
        let name = usize::try_from(rule).ok().and_then(|i| {
            let srv = snap.servers.iter().find(|x| *x.name == **server)?;
            srv.policy.rules().get(i)?.name.as_deref()
        });
        let rule = if rule < 0 { "default".to_string() } else { rule.to_string() };
        let name = name.map(|n| format!(",rule_name=\"{}\"", label(n))).unwrap_or_default();
        let _ = writeln!(
            s,
            "portcullis_authorization_decisions_total{{server=\"{}\",rule=\"{rule}\"{name},decision=\"{d}\"}} {n}",
            label(server)
        );
    }
    family(
        &mut s,
        "portcullis_authorization_condition_errors_total",
        "counter",
        "Rule conditions that failed to evaluate (a deny rule denied, an allow rule did not allow).",
    );
    let _ = writeln!(s, "portcullis_authorization_condition_errors_total {}", st.condition_errors);

    // Pool figures are kept by endpoint; the configuration says which backends use it.
    let mut users: rustc_hash::FxHashMap<Key, (Vec<&str>, &str)> = Default::default();
    for srv in &snap.servers {
        let rest = srv.tools.iter().filter_map(|t| match &t.kind {
            ToolKind::Rest(r) => r.target.as_ref().ok().map(|target| (&*t.name, target)),
            ToolKind::Template { .. } => None,
        });
        let mcp = srv.backends.iter().flat_map(|b| b.targets.iter().map(move |t| (&*b.name, t)));
        for (name, t) in mcp.chain(rest) {
            let entry = users.entry(t.pool_key).or_insert_with(|| (Vec::new(), &t.authority));
            if !entry.0.contains(&name) {
                entry.0.push(name);
            }
        }
    }
    let mut endpoints: Vec<_> = st
        .upstream
        .iter()
        .map(|(k, e)| {
            let (backend, endpoint) = match users.get(k) {
                Some((names, authority)) => (names.join(","), authority.to_string()),
                None => ("-".to_string(), k.0.to_string()),
            };
            (backend, endpoint, *e)
        })
        .collect();
    endpoints.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    type Pick = fn(&EndpointStats) -> u64;
    let pool: [(&str, &str, &str, Pick); 4] = [
        (
            "portcullis_upstream_pool_idle_connections",
            "gauge",
            "Idle pooled connections by backend endpoint.",
            |e| e.idle,
        ),
        (
            "portcullis_upstream_pool_connects_total",
            "counter",
            "Connections opened by backend endpoint.",
            |e| e.connects,
        ),
        (
            "portcullis_upstream_pool_reuses_total",
            "counter",
            "Requests sent on a pooled connection, by backend endpoint.",
            |e| e.reuses,
        ),
        (
            "portcullis_upstream_connect_failures_total",
            "counter",
            "Connections to a backend endpoint that could not be opened (refused, timed out, TLS failed).",
            |e| e.connect_failures,
        ),
    ];
    for (name, kind, help, pick) in pool {
        family(&mut s, name, kind, help);
        for (backend, endpoint, e) in &endpoints {
            let _ = writeln!(
                s,
                "{name}{{backend=\"{}\",endpoint=\"{}\"}} {}",
                label(backend),
                label(endpoint),
                pick(e)
            );
        }
    }
    family(
        &mut s,
        "portcullis_tls_handshakes_total",
        "counter",
        "TLS handshakes on tls listeners by result.",
    );
    let _ = writeln!(s, "portcullis_tls_handshakes_total{{result=\"ok\"}} {}", st.tls_handshakes);
    let _ = writeln!(s, "portcullis_tls_handshakes_total{{result=\"failed\"}} {}", st.tls_handshake_failures);

    let gauges: [(&str, &str, &str, u64); 15] = [
        (
            "portcullis_upstream_connections_total",
            "counter",
            "Upstream connections opened.",
            st.upstream_connects,
        ),
        (
            "portcullis_upstream_reused_total",
            "counter",
            "Upstream requests on a pooled connection.",
            st.upstream_reuses,
        ),
        ("portcullis_connections_open", "gauge", "Client connections open.", st.connections_open),
        ("portcullis_connections_total", "counter", "Client connections accepted.", st.connections_total),
        (
            "portcullis_connections_rejected_total",
            "counter",
            "Connections refused at maxConnectionsPerWorker.",
            st.connections_rejected,
        ),
        (
            "portcullis_sessions_opened_total",
            "counter",
            "Sessions handed out by initialize.",
            st.sessions_opened,
        ),
        ("portcullis_sessions_closed_total", "counter", "Sessions ended by DELETE.", st.sessions_closed),
        (
            "portcullis_input_required_bridged_total",
            "counter",
            "InputRequiredResults made of a 2025 backend's requests to a 2026-07-28 client.",
            st.input_asked,
        ),
        (
            "portcullis_input_handoffs_total",
            "counter",
            "Retries with inputResponses, and clients' answers, handed to the worker holding their call.",
            st.input_handoffs,
        ),
        ("portcullis_config_reloads_total", "counter", "Successful configuration reloads.", process.reloads),
        (
            "portcullis_config_reload_failures_total",
            "counter",
            "Rejected configuration reloads.",
            process.reload_failures,
        ),
        ("portcullis_workers", "gauge", "Worker threads.", process.workers),
        (
            "portcullis_audit_dropped_total",
            "counter",
            "Audit lines dropped: the writer's queue was full or the audit file could not be opened.",
            process.audit_dropped,
        ),
        (
            "portcullis_trace_spans_dropped_total",
            "counter",
            "Trace spans dropped: a worker's or the exporter's buffer was full, or the collector did not take them.",
            process.spans_dropped,
        ),
        (
            "portcullis_trace_spans_exported_total",
            "counter",
            "Trace spans the OTLP collector accepted.",
            process.spans_exported,
        ),
    ];
    for (name, kind, help, v) in gauges {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
    }
    s
}
