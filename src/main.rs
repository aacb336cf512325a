//! The `portcullis` binary: `portcullis` (embedded demo), `portcullis --config FILE`,
//! `portcullis check --config FILE`, `portcullis import openapi SPEC`, `portcullis import mcproute FILE`,
//! `portcullis pins record --config FILE`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use portcullis::config::watch::{Reloader, Source};
use portcullis::runtime::Gateway;
use sd_notify::NotifyState;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// MCP gateway data plane.
#[derive(Parser)]
#[command(version, about, after_help = "Without a command, `run`: `portcullis --config FILE` serves FILE.")]
struct Cli {
    /// Configuration file (YAML or JSON) to serve. Without it, the embedded demo is served.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Bind `listen` ports another process already serves (see `run --help`).
    #[arg(long)]
    takeover: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

/// What `run --help` says beyond its one line.
const RUN_HELP: &str = "Serves the configuration until SIGTERM or SIGINT (drain, then exit); SIGHUP reloads it, as does a change to the file or to a file it names. Without --config, the embedded demo configuration is served on 127.0.0.1:8080.

The admin listener (`admin:` in the configuration, keep it on loopback) serves GET /healthz, GET /readyz, GET /metrics (Prometheus), GET /config (the effective configuration, secrets redacted), POST /reload and POST /pins/record.

Logs go to stderr: the configuration's `log` block sets level, format and access lines; RUST_LOG (e.g. RUST_LOG=info,authz=debug) overrides the level per target.";

#[derive(Subcommand)]
enum Command {
    /// Serve a configuration (the default command).
    #[command(long_about = RUN_HELP)]
    Run {
        /// Configuration file (YAML or JSON). Without it, the embedded demo is served.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Bind `listen` ports another process already serves (an upgrade: the old process
        /// drains while this one starts). Also PORTCULLIS_TAKEOVER=1.
        #[arg(long)]
        takeover: bool,
    },
    /// Compile a configuration, print every error with its path, exit non-zero if any.
    Check {
        /// Configuration file (YAML or JSON) to check. Without it, the embedded demo is checked.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Convert an API description into configuration, printed as YAML on stdout.
    Import {
        #[command(subcommand)]
        format: ImportFormat,
    },
    /// GET an http:// URL (the admin /readyz, for a container HEALTHCHECK without curl): exit 0
    /// on a 2xx answer within 3 seconds, 1 otherwise.
    Probe {
        /// e.g. http://127.0.0.1:9901/readyz
        url: String,
    },
    /// Tool-definition pins of backends with `pinning` (warn or enforce).
    Pins {
        #[command(subcommand)]
        action: PinsAction,
    },
}

#[derive(Subcommand)]
enum PinsAction {
    /// Ask every pinned backend for its tools and write their digests to each server's `pins`
    /// file (what is listed now becomes what is approved).
    Record {
        /// Configuration file (YAML or JSON) whose pinned backends are recorded.
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum ImportFormat {
    /// OpenAPI 3.0/3.1 (JSON or YAML) -> one `servers[]` entry of REST tools.
    Openapi {
        /// The description file.
        spec: PathBuf,
        /// Server name (default: info.title, sanitised).
        #[arg(long)]
        name: Option<String>,
        /// Absolute URL the API is served at; replaces the description's `servers`.
        #[arg(long)]
        base_url: Option<String>,
        /// Give each tool the `outputSchema` of its first 2xx JSON response (clients then
        /// validate results against it: only for APIs that answer as described).
        #[arg(long)]
        output_schemas: bool,
    },
    /// Envoy AI Gateway `MCPRoute` manifest (with the ConfigMaps and Backends beside it) -> one
    /// `servers[]` entry: OAuth as JWT authentication, authorization rules as written, backendRefs
    /// as backends.
    Mcproute {
        /// The manifest file (YAML, several documents allowed).
        manifest: PathBuf,
        /// URL of a backendRef, NAME=URL (repeatable). Without it, a Backend of the file gives the
        /// address, or a Service its cluster DNS name.
        #[arg(long = "backend", value_name = "NAME=URL", value_parser = name_equals_url)]
        backends: Vec<(String, String)>,
        /// Where the route's keys are when it has no `jwks` (Envoy discovers them from the issuer).
        #[arg(long)]
        jwks_uri: Option<String>,
        /// Which MCPRoute, when the file holds several.
        #[arg(long)]
        route: Option<String>,
    },
}

fn name_equals_url(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, u)) if !n.is_empty() && (u.starts_with("http://") || u.starts_with("https://")) => {
            Ok((n.to_string(), u.to_string()))
        }
        _ => Err(format!("{s:?}: expected NAME=http(s)://host:port/path")),
    }
}

fn main() -> std::process::ExitCode {
    portcullis::runtime::logging::init();
    let cli = Cli::parse();
    // `portcullis --config FILE <command>` still names the file of `run` and `check`.
    let source = |own: Option<PathBuf>| match own.or_else(|| cli.config.clone()) {
        Some(p) => Source::File(p),
        None => Source::Demo,
    };
    let takeover = cli.takeover || std::env::var("PORTCULLIS_TAKEOVER").is_ok_and(|v| v == "1");
    let result = match cli.command {
        None => run(source(None), takeover),
        Some(Command::Run { config, takeover: t }) => run(source(config), takeover || t),
        Some(Command::Check { config }) => check(&source(config)),
        Some(Command::Import { format }) => import(format),
        Some(Command::Pins { action: PinsAction::Record { config } }) => record_pins(&Source::File(config)),
        Some(Command::Probe { url }) => probe(&url),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn check(source: &Source) -> anyhow::Result<std::process::ExitCode> {
    match source.compile() {
        Ok(snap) => {
            let mut text = format!("configuration OK\n{}", snap.summary());
            for w in &snap.warnings {
                text.push_str(&format!("warning: {w}\n"));
            }
            emit(&text)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("configuration has {} error(s):", errors.len());
            for e in &errors {
                eprintln!("  {e}");
            }
            Ok(std::process::ExitCode::FAILURE)
        }
    }
}

fn record_pins(source: &Source) -> anyhow::Result<std::process::ExitCode> {
    let snap = source
        .compile_for(portcullis::config::compile::Purpose::RecordPins)
        .map_err(|errors| anyhow::anyhow!("invalid configuration:\n  {}", errors.join("\n  ")))?;
    let report = portcullis::runtime::pins::record_pins_blocking(snap).map_err(|e| anyhow::anyhow!(e))?;
    let mut text = String::new();
    if report.is_empty() {
        text.push_str("no backend has pinning (warn or enforce): nothing recorded\n");
    }
    let mut failed = false;
    for (server, backend, outcome) in report {
        match outcome {
            Ok(n) => text.push_str(&format!("{server}/{backend}: {n} tool(s) pinned\n")),
            Err(why) => {
                failed = true;
                text.push_str(&format!(
                    "{server}/{backend}: not recorded, its previous pins are kept: {why}\n"
                ));
            }
        }
    }
    emit(&text)?;
    Ok(if failed { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS })
}

/// `portcullis probe URL`: one GET over plain HTTP/1.1, bounded to 3 seconds.
fn probe(url: &str) -> anyhow::Result<std::process::ExitCode> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let rest = url.strip_prefix("http://").context("probe takes an http:// URL")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let with_port = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    let addr = with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {authority}"))?
        .next()
        .with_context(|| format!("{authority} resolves to no address"))?;
    let limit = std::time::Duration::from_secs(3);
    let status = (|| -> std::io::Result<u16> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, limit)?;
        s.set_read_timeout(Some(limit))?;
        s.set_write_timeout(Some(limit))?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        let code = std::str::from_utf8(&head[9..12]).ok().and_then(|c| c.parse().ok());
        code.ok_or_else(|| std::io::Error::other("not an HTTP answer"))
    })();
    match status {
        Ok(code) if (200..300).contains(&code) => Ok(std::process::ExitCode::SUCCESS),
        Ok(code) => {
            eprintln!("portcullis probe: {url} answered {code}");
            Ok(std::process::ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("portcullis probe: {url}: {e}");
            Ok(std::process::ExitCode::FAILURE)
        }
    }
}

/// Writes `text` to stdout. A reader that went away (`portcullis import ... | head`) is not an
/// error: the output was wanted only in part.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn import(format: ImportFormat) -> anyhow::Result<std::process::ExitCode> {
    let (spec, name, base_url, output_schemas) = match format {
        ImportFormat::Openapi { spec, name, base_url, output_schemas } => {
            (spec, name, base_url, output_schemas)
        }
        ImportFormat::Mcproute { manifest, backends, jwks_uri, route } => {
            let text = std::fs::read_to_string(&manifest)
                .with_context(|| format!("cannot read {}", manifest.display()))?;
            let opts = portcullis::import::mcproute::McpRouteOptions { backends, jwks_uri, route };
            let imported = portcullis::import::mcproute::import(&text, &opts)
                .with_context(|| format!("cannot import {}", manifest.display()))?;
            emit(&imported.to_yaml(&manifest.display().to_string())?)?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
    };
    let text = std::fs::read_to_string(&spec).with_context(|| format!("cannot read {}", spec.display()))?;
    let opts = portcullis::import::openapi::ImportOptions { name, base_url, output_schemas };
    let imported = portcullis::import::openapi::import(&text, &opts)
        .with_context(|| format!("cannot import {}", spec.display()))?;
    emit(&imported.to_yaml(&spec.display().to_string())?)?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Tells the service manager about a state change (nothing without `NOTIFY_SOCKET`).
fn notify(state: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        log::warn!("sd_notify: {e}");
    }
}

fn run(source: Source, takeover: bool) -> anyhow::Result<std::process::ExitCode> {
    let snap = source
        .compile()
        .map_err(|errors| anyhow::anyhow!("invalid configuration:\n  {}", errors.join("\n  ")))?;
    portcullis::runtime::logging::apply(&snap.log);
    for w in &snap.warnings {
        log::warn!("{w}");
    }
    if matches!(source, Source::Demo) {
        log::info!("no --config given: serving the embedded demo configuration");
    }
    // Handlers first: a SIGHUP that arrived between "listening" and their installation would
    // take the default action and kill the process (seen as a flaky reload test under load).
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("installing signal handlers")?;
    // Sockets from systemd socket activation (or any supervisor speaking LISTEN_FDS): shared
    // with the process that replaces this one, so an upgrade loses no queued connection.
    let inherited =
        portcullis::runtime::listen::inherited().context("taking inherited sockets (LISTEN_FDS)")?;
    if !inherited.is_empty() {
        log::info!("{} listening socket(s) inherited from the supervisor", inherited.len());
    }
    let reloader = Arc::new(Reloader::new(source, snap));
    let gateway =
        Gateway::start_with(reloader.clone(), inherited, takeover).context("starting the gateway")?;
    let snap = reloader.current.load();
    let driver = if monoio::utils::detect_uring() { "io_uring" } else { "epoll" };
    if driver == "epoll" && std::env::var_os("MONOIO_FORCE_LEGACY_DRIVER").is_none() {
        log::warn!(
            "io_uring is unavailable (an old kernel, a seccomp profile, or kernel.io_uring_disabled): \
             serving with epoll, which is slower"
        );
    }
    log::info!(
        "portcullis {} listening on {} ({} worker(s), {driver}); admin {}",
        env!("CARGO_PKG_VERSION"),
        gateway.addrs().iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "),
        snap.workers,
        gateway.admin_addr().map(|a| a.to_string()).unwrap_or_else(|| "off".into())
    );
    for s in &snap.servers {
        log::info!("server {:?} at {}", s.name, s.path);
    }
    drop(snap);
    // systemd Type=notify: the ports are bound and served from here on.
    notify(&[NotifyState::Ready]);
    for sig in signals.forever() {
        match sig {
            SIGHUP => {
                log::info!("SIGHUP: reloading configuration");
                let reloading = NotifyState::monotonic_usec_now().ok();
                notify(&[NotifyState::Reloading].into_iter().chain(reloading).collect::<Vec<_>>());
                let _ = reloader.reload();
                notify(&[NotifyState::Ready]);
            }
            _ => {
                log::info!("shutting down: draining in-flight requests");
                notify(&[NotifyState::Stopping]);
                gateway.shutdown();
                log::info!("stopped");
                return Ok(std::process::ExitCode::SUCCESS);
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
