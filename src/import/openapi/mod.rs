//! `portcullis import openapi`: turns an OpenAPI 3.0/3.1 description (JSON or YAML) into one
//! `servers[]` entry of Higress-style REST tools (`server.securitySchemes` and `tools[]`), returned
//! as JSON with the warnings an operator should read before pasting it into a configuration.
//!
//! It owns the reading of OpenAPI documents only: it never touches the network, never reads
//! other files (external `$ref`s are refused) and never imports credentials. The output is raw
//! configuration (docs/config.md shape); the config compiler remains the only judge of it. A cold-path
//! tool: it allocates freely, but every input is bounded (document size, `$ref` hops, schema depth
//! and size), so no document can make it panic or loop.
//!
//! What the runtime must do with the result (the contract the REST tool caller implements):
//! `requestTemplate.url` keeps OpenAPI's `{name}` placeholders, one per `position: path` argument;
//! `position` says where each argument travels (`path`, `query`, `header`, `cookie`, `body`); a
//! `requestTemplate.body` template, when present, is the whole request body.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

mod cx;
mod document;
mod error;
mod operations;
mod params;
mod schema;
mod security;

use cx::*;
use document::*;
pub use error::ImportError;

/// What the caller may choose instead of the description.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The server entry's `name` (default: `info.title`, sanitised).
    pub name: Option<String>,
    /// The absolute URL every operation path is appended to, replacing the description's
    /// `servers` (required when those are missing or relative).
    pub base_url: Option<String>,
}

/// A converted description.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    /// One `servers[]` object: `name`, `server` (`name`, `securitySchemes`), `tools`.
    pub entry: Value,
    /// What was skipped or approximated, each naming where (shown as `# warning:` lines).
    pub warnings: Vec<String>,
}

/// Converts `spec` (OpenAPI 3.0 or 3.1, JSON or YAML) into one `servers[]` entry.
pub fn import(spec: &str, opts: &ImportOptions) -> Result<Import, ImportError> {
    if spec.len() > MAX_SPEC_BYTES {
        return Err(ImportError::Syntax(format!("larger than {} MiB", MAX_SPEC_BYTES >> 20)));
    }
    let root = parse(spec)?;
    let mut cx = Cx { root: &root, warnings: Vec::new(), seen: HashSet::new() };
    cx.check_version()?;
    let base = opts.base_url.as_deref().map(check_base_url).transpose()?;
    let name = cx.server_name(opts.name.as_deref());
    let schemes = cx.security_schemes()?;
    let tools = cx.tools(&schemes, base.as_deref())?;

    let mut server = Map::new();
    server.insert("name".into(), json!(name));
    if !schemes.entries.is_empty() {
        server.insert("securitySchemes".into(), Value::Array(schemes.entries));
    }
    let mut entry = Map::new();
    entry.insert("name".into(), json!(name));
    entry.insert("server".into(), Value::Object(server));
    entry.insert("tools".into(), Value::Array(tools));
    let mut entry = Value::Object(entry);
    cx.neutralise_env_syntax(&mut entry, "");
    Ok(Import { entry, warnings: cx.warnings })
}

impl Import {
    /// The entry as a one-element YAML list, ready to paste under `servers:`, after a `#` header
    /// naming `source` and one `# warning:` line per warning.
    pub fn to_yaml(&self, source: &str) -> Result<String, ImportError> {
        let body = serde_yaml::to_string(&[&self.entry]).map_err(|e| ImportError::Output(e.to_string()))?;
        let mut out = format!(
            "# Imported by `portcullis import openapi` from {}.\n\
             # One servers[] entry: paste it under `servers:`. Credentials are never imported.\n",
            one_line(source)
        );
        for w in &self.warnings {
            out.push_str("# warning: ");
            out.push_str(&one_line(w));
            out.push('\n');
        }
        out.push_str(&body);
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
