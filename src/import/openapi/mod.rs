//! `portcullis import openapi`: turns an OpenAPI 3.0/3.1 description (JSON or YAML) into one
//! `servers[]` entry of Higress-style REST tools (`server.securitySchemes` and `tools[]`), built
//! from the configuration's own raw types ([`Entry`]), with the warnings an operator should read
//! before pasting it into a configuration.
//!
//! It owns the reading of OpenAPI documents only: it never touches the network, never reads
//! other files (external `$ref`s are refused) and never imports credentials. The output is raw
//! configuration, typed (docs/config.md shape); the config compiler remains the only judge of
//! it. A cold-path tool: it allocates freely, but every input is bounded (document size, `$ref` hops, schema depth
//! and size), so no document can make it panic or loop.
//!
//! What the runtime must do with the result (the contract the REST tool caller implements):
//! `requestTemplate.url` keeps OpenAPI's `{name}` placeholders, one per `position: path` argument;
//! `position` says where each argument travels (`path`, `query`, `header`, `cookie`, `body`); a
//! `requestTemplate.body` template, when present, is the whole request body.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::config::raw::{HigressServer, Tool};

mod cx;
mod document;
mod error;
mod operations;
mod params;
mod schema;
mod security;

use cx::*;
pub(crate) use document::yaml_to_json;
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
    /// Give each tool the `outputSchema` of its first 2xx JSON response. Off by default: MCP
    /// clients validate results against it, and a real API that answers otherwise than its
    /// description says would then fail every call.
    pub output_schemas: bool,
}

/// One `servers[]` entry of REST tools: the configuration's own raw types, so what the importer
/// writes is what the configuration reads.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The entry's `name`.
    pub name: String,
    /// The Higress `server` block: `name` and `securitySchemes`.
    pub server: HigressServer,
    /// The tools, one per operation.
    pub tools: Vec<Tool>,
}

/// A converted description.
#[derive(Clone, Debug)]
pub struct Import {
    /// The `servers[]` entry.
    pub entry: Entry,
    /// What was skipped or approximated, each naming where (shown as `# warning:` lines).
    pub warnings: Vec<String>,
}

/// Converts `spec` (OpenAPI 3.0 or 3.1, JSON or YAML) into one `servers[]` entry.
pub fn import(spec: &str, opts: &ImportOptions) -> Result<Import, ImportError> {
    if spec.len() > MAX_SPEC_BYTES {
        return Err(ImportError::Syntax(format!("larger than {} MiB", MAX_SPEC_BYTES >> 20)));
    }
    let root = parse(spec)?;
    let mut cx =
        Cx { root: &root, warnings: Vec::new(), seen: HashSet::new(), output_schemas: opts.output_schemas };
    cx.check_version()?;
    let base = opts.base_url.as_deref().map(check_base_url).transpose()?;
    let name = cx.server_name(opts.name.as_deref());
    let schemes = cx.security_schemes()?;
    let tools = cx.tools(&schemes, base.as_deref())?;
    let server = HigressServer {
        name: Some(name.clone()),
        security_schemes: (!schemes.entries.is_empty()).then_some(schemes.entries),
        ..HigressServer::default()
    };
    let mut entry = Entry { name, server, tools };
    cx.neutralise_env_syntax(&mut entry);
    Ok(Import { entry, warnings: cx.warnings })
}

impl Import {
    /// The entry as JSON (as it is written, in the configuration's shape).
    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(&self.entry).unwrap_or_default()
    }

    /// The entry as a one-element YAML list, ready to paste under `servers:`, after a `#` header
    /// naming `source` and one `# warning:` line per warning.
    pub fn to_yaml(&self, source: &str) -> Result<String, ImportError> {
        let body = yaml_serde::to_string(&[&self.entry]).map_err(|e| ImportError::Output(e.to_string()))?;
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
