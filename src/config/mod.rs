//! Configuration: `raw` (serde types of the configuration contract (docs/config.md)) -> `compile` (every rule, every
//! error with its path) -> `snapshot` (immutable, what requests read). `env` substitutes
//! `${NAME}`, `redact` prepares the admin dump, `watch` publishes reloads through arc-swap.

pub mod compile;
pub mod env;
pub mod raw;
pub mod redact;
pub mod snapshot;
pub mod watch;

/// The embedded demo configuration served when no `--config` is given.
pub const DEMO: &str = include_str!("demo.yaml");
