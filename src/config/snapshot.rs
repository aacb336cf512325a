//! The compiled configuration: immutable, built once by `compile`, published to every core with
//! arc-swap. Everything a request needs is precomputed here (routes, tool indexes, tool lists
//! already serialised, compiled templates, derived session keys), so the request path only looks
//! things up.

use rustc_hash::FxHashMap as HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::http::origin::OriginPolicy;
use crate::mcp::session;
use crate::rest::template::Template;

/// Limits of docs/config.md `limits`, in the units the runtime uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Head and body limits for the parser.
    pub http: crate::http::Limits,
    /// Time to receive a complete request head.
    pub header_timeout: Duration,
    /// Keep-alive idle time between requests.
    pub idle_timeout: Duration,
    /// Upstream connect timeout (backends issue).
    pub upstream_connect_timeout: Duration,
    /// Upstream response timeout (backends issue).
    pub upstream_timeout: Duration,
    /// Open connections per worker before new ones are refused.
    pub max_connections_per_worker: usize,
}

impl Limits {
    /// One exchange with a backend (MCP or REST): the configured timeouts, and answers up to
    /// four times the request body limit.
    pub fn upstream(&self) -> crate::upstream::client::Limits {
        crate::upstream::client::Limits {
            connect: self.upstream_connect_timeout,
            response: self.upstream_timeout,
            max_body: self.http.max_body_bytes.saturating_mul(4),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            http: crate::http::Limits::default(),
            header_timeout: Duration::from_millis(10_000),
            idle_timeout: Duration::from_millis(60_000),
            upstream_connect_timeout: Duration::from_millis(2_000),
            upstream_timeout: Duration::from_millis(30_000),
            max_connections_per_worker: 50_000,
        }
    }
}

/// How log lines are written (`log.format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// env_logger's `[time LEVEL target] message` lines; access lines as `key=value` pairs.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The `log` block: level, format, and whether one access line is written per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSettings {
    /// Most verbose level written (`RUST_LOG`, when set, overrides it).
    pub level: log::LevelFilter,
    /// Line format.
    pub format: LogFormat,
    /// Whether access lines are written (at level info, target `access`).
    pub access: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { level: log::LevelFilter::Info, format: LogFormat::Text, access: true }
    }
}

/// A tool answered by the gateway itself (a Higress tool without `requestTemplate.url`).
#[derive(Debug)]
pub struct LocalTool {
    /// Exposed name.
    pub name: Box<str>,
    /// This tool's entry of a `tools/list` result, serialised at load.
    pub listing: Box<[u8]>,
    /// Whether `allowTools` (when present) names this tool.
    pub allowed: bool,
    /// What a call does.
    pub kind: ToolKind,
}

/// A local tool renders a template, or calls a REST backend.
#[derive(Debug)]
pub enum ToolKind {
    /// No `requestTemplate.url`: `responseTemplate.body` rendered over the arguments.
    Template {
        /// `responseTemplate.body`.
        body: Template,
        /// Declared arguments.
        args: Vec<crate::rest::args::ArgRule>,
    },
    /// A REST backend call.
    Rest(Box<crate::rest::tool::RestTool>),
}

impl LocalTool {
    /// Declared arguments.
    pub fn args(&self) -> &[crate::rest::args::ArgRule] {
        match &self.kind {
            ToolKind::Template { args, .. } => args,
            ToolKind::Rest(r) => &r.args,
        }
    }
}

/// `tracing`, compiled.
pub struct Tracing {
    /// The OTLP/HTTP traces endpoint.
    pub endpoint: crate::upstream::target::Target,
    /// Extra request headers (values may be secrets).
    pub headers: Vec<(String, String)>,
    /// Ratio of requests without a sampled parent that are traced, 0 to 1.
    pub sampling: f64,
    /// `service.name`.
    pub service_name: String,
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tracing({}{}, sampling {}, headers <redacted>)",
            self.endpoint.authority, self.endpoint.path, self.sampling
        )
    }
}

/// A backend's `toolSelector`, compiled: exclude wins over include; with no include rule every
/// tool is included.
#[derive(Debug, Default)]
pub struct ToolSelector {
    /// Exact names to include.
    pub include: Vec<Box<str>>,
    /// Patterns to include (unanchored search, as Go's `regexp.MatchString`).
    pub include_regex: Vec<regex::Regex>,
    /// Exact names to exclude.
    pub exclude: Vec<Box<str>>,
    /// Patterns to exclude (unanchored search).
    pub exclude_regex: Vec<regex::Regex>,
}

impl ToolSelector {
    /// Whether the backend tool `name` is exposed.
    pub fn selects(&self, name: &str) -> bool {
        if self.exclude.iter().any(|e| &**e == name) || self.exclude_regex.iter().any(|r| r.is_match(name)) {
            return false;
        }
        let no_include = self.include.is_empty() && self.include_regex.is_empty();
        no_include
            || self.include.iter().any(|e| &**e == name)
            || self.include_regex.iter().any(|r| r.is_match(name))
    }
}

/// An MCP server aggregated behind an endpoint.
#[derive(Debug)]
pub struct Backend {
    /// Unique within the server; the tool-name prefix.
    pub name: Box<str>,
    /// Position in its server's `backends` (per-core tables index by it).
    pub index: usize,
    /// Endpoints (`url`, or `endpoints` when given), resolved at load.
    pub targets: Vec<crate::upstream::target::Target>,
    /// Which of its tools are exposed.
    pub selector: ToolSelector,
    /// Credential put on every request to it (`backends[].security`): one for all callers, or
    /// one per caller.
    pub credential: Option<crate::auth::credentials::Credential>,
    /// Client headers forwarded to it (lower case).
    pub forward_headers: Vec<Box<str>>,
    /// `pinning`: whether its tool definitions are checked against the server's pins.
    pub pinning: Pinning,
    /// Its tools' approved digests (tool -> digest), from the server's pins file.
    pub pins: HashMap<Box<str>, Box<str>>,
}

/// `backends[].pinning`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pinning {
    /// Definitions are not checked.
    #[default]
    Off,
    /// A changed or unpinned definition is logged and counted, and still served.
    Warn,
    /// A changed or unpinned definition is left out of `tools/list` and its calls refused.
    Enforce,
}

/// One MCP endpoint.
#[derive(Debug)]
pub struct Server {
    /// Unique name.
    pub name: Box<str>,
    /// Position in `Snapshot::servers` (per-core tables index by it).
    pub index: usize,
    /// Endpoint path.
    pub path: Box<str>,
    /// Canonical resource URI, when configured.
    pub resource: Option<Box<str>>,
    /// Sent as `instructions` from initialize / server/discover.
    pub instructions: Option<Box<str>>,
    /// Local tools in configuration order.
    pub tools: Vec<LocalTool>,
    /// Exposed tool name -> index into `tools`.
    pub tool_index: HashMap<Box<str>, usize>,
    /// Higress `allowTools`: when present, only these tools are listed or callable.
    pub allow_tools: Option<Vec<Box<str>>>,
    /// `server.config`, visible to templates as `.config`.
    pub config: serde_json::Value,
    /// Whether clients are anonymous (no `authentication`, or `mode: none`).
    pub anonymous: bool,
    /// Authentication (phase 3): how clients authenticate, and the metadata document.
    pub auth: crate::auth::Authenticator,
    /// Authorization (phase 5): the compiled rule table.
    pub policy: crate::policy::rules::Policy,
    /// `pins`: where `portcullis pins record` writes this server's approved tool digests.
    pub pins_file: Option<std::path::PathBuf>,
    /// `rateLimits`, in order: every one that applies to a call spends from its budget.
    pub rate_limits: Vec<crate::policy::limits::Limit>,
    /// Aggregated MCP backends.
    pub backends: Vec<Backend>,
    /// `toolNameSeparator` (default `__`).
    pub separator: Box<str>,
}

impl Server {
    /// Every upstream endpoint this server calls: its backends' and its REST tools'.
    pub fn upstream_targets(&self) -> impl Iterator<Item = &crate::upstream::target::Target> {
        let rest = self.tools.iter().filter_map(|t| match &t.kind {
            ToolKind::Rest(r) => r.target.as_ref().ok(),
            ToolKind::Template { .. } => None,
        });
        self.backends.iter().flat_map(|b| &b.targets).chain(rest)
    }

    /// Whether a tool may be listed or called given `allowTools` and the client's
    /// `x-envoy-allow-mcp-tools` list (intersected, as Higress does).
    pub fn tool_allowed(&self, tool: &LocalTool, header_list: Option<&[u8]>) -> bool {
        tool.allowed
            && header_list
                .is_none_or(|list| list.split(|&b| b == b',').any(|t| t.trim_ascii() == tool.name.as_bytes()))
    }

    /// Whether backend tools are exposed as `<backend><sep><tool>` (docs/config.md: with more than one
    /// source - local tools and a backend, or several backends).
    pub fn prefixed(&self) -> bool {
        self.backends.len() > 1 || (!self.backends.is_empty() && !self.tools.is_empty())
    }

    /// `allowTools` and the header list applied to an exposed (backend) tool name.
    pub fn name_allowed(&self, name: &str, header_list: Option<&[u8]>) -> bool {
        self.allow_tools.as_ref().is_none_or(|a| a.iter().any(|t| &**t == name))
            && header_list
                .is_none_or(|list| list.split(|&b| b == b',').any(|t| t.trim_ascii() == name.as_bytes()))
    }

    /// For `tools/list` under an `x-envoy-allow-mcp-tools` header: which tools (by index) the
    /// header names, computed in one pass over the header instead of one pass per tool.
    pub fn header_mask(&self, header_list: &[u8]) -> Vec<bool> {
        let mut mask = vec![false; self.tools.len()];
        for t in header_list.split(|&b| b == b',') {
            let t = t.trim_ascii();
            if let Some(&i) = std::str::from_utf8(t).ok().and_then(|t| self.tool_index.get(t)) {
                mask[i] = true;
            }
        }
        mask
    }
}

/// The whole compiled configuration.
pub struct Snapshot {
    /// Unique per compiled snapshot in this process (per-core caches key on it).
    pub generation: u64,
    /// Data-plane listen addresses.
    pub listen: Vec<SocketAddr>,
    /// For each listen address, its TLS configuration (`None`: plain HTTP).
    pub listen_tls: Vec<Option<std::sync::Arc<crate::tls::Listener>>>,
    /// Files the configuration reads besides itself; the watcher reloads when one changes.
    pub files: Vec<std::path::PathBuf>,
    /// Worker threads.
    pub workers: usize,
    /// Drain deadline on shutdown.
    pub shutdown_grace: Duration,
    /// Admin listener.
    pub admin: Option<SocketAddr>,
    /// Limits.
    pub limits: Limits,
    /// Logging (`log`).
    pub log: LogSettings,
    /// `audit.file`: where the audit trail goes (none: no trail).
    pub audit: Option<std::path::PathBuf>,
    /// `tracing`: OTLP span export (none: no spans).
    pub tracing: Option<std::sync::Arc<Tracing>>,
    /// Session keys (first seals, all open) and TTL.
    pub sessions: session::Keys,
    /// Origin/Host policy.
    pub origins: OriginPolicy,
    /// Endpoints.
    pub servers: Vec<Server>,
    /// Path -> index into `servers`.
    pub routes: HashMap<Box<[u8]>, usize>,
    /// RFC 9728 metadata path -> index into `servers`.
    pub well_known: HashMap<Box<[u8]>, usize>,
    /// Things worth a warning at start-up or reload (anonymous endpoints off loopback, ...).
    pub warnings: Vec<String>,
    /// The effective configuration as JSON, secrets redacted (admin `/config`).
    pub effective: String,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("listen", &self.listen)
            .field("workers", &self.workers)
            .field("servers", &self.servers.iter().map(|s| &*s.name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// Every upstream endpoint of every server (what per-core pools may keep connections to).
    pub fn upstream_targets(&self) -> impl Iterator<Item = &crate::upstream::target::Target> {
        self.servers.iter().flat_map(Server::upstream_targets)
    }

    /// The server whose endpoint is `path`.
    #[inline]
    pub fn route(&self, path: &[u8]) -> Option<&Server> {
        self.routes.get(path).and_then(|&i| self.servers.get(i))
    }

    /// The server whose protected resource metadata lives at `path`.
    #[inline]
    pub fn metadata(&self, path: &[u8]) -> Option<&Server> {
        self.well_known.get(path).and_then(|&i| self.servers.get(i))
    }

    /// Every fetched JWKS source (the fetcher thread's work list).
    pub fn key_sources(&self) -> Vec<std::sync::Arc<crate::auth::jwks::KeySource>> {
        self.servers
            .iter()
            .flat_map(|s| s.auth.providers())
            .filter(|p| p.keys.remote.is_some())
            .map(|p| p.keys.clone())
            .collect()
    }

    /// Reuses `previous`'s fetched JWKS sources whose URI is unchanged, so a reload keeps the
    /// keys it already has.
    pub fn carry_over(&mut self, previous: &Snapshot) {
        let old = previous.key_sources();
        for s in &mut self.servers {
            if let crate::auth::Mode::Jwt { providers, .. } = &mut s.auth.mode {
                let mut sources: Vec<_> = providers.iter().map(|p| p.keys.clone()).collect();
                crate::auth::jwks::carry_over(&mut sources, &old);
                for (p, k) in providers.iter_mut().zip(sources) {
                    p.keys = k;
                }
            }
        }
    }

    /// One-paragraph summary for `portcullis check`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "listen {} | workers {} | admin {} | {} server(s)\n",
            self.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "),
            self.workers,
            self.admin.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
            self.servers.len()
        );
        for srv in &self.servers {
            s.push_str(&format!(
                "  {} at {}: {} local tool(s), authentication {}\n",
                srv.name,
                srv.path,
                srv.tools.len(),
                if srv.anonymous { "none" } else { "on" }
            ));
        }
        s
    }
}
