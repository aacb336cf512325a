//! The import's context: the document, the warnings for the operator (each once), and the
//! checks of the document as a whole (version, server name).

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::Value;

use super::document::*;
use super::error::*;
use super::schema::*;

pub(super) struct Cx<'a> {
    pub(super) root: &'a Value,
    pub(super) warnings: Vec<String>,
    pub(super) seen: HashSet<String>,
    /// `ImportOptions::output_schemas`.
    pub(super) output_schemas: bool,
}

impl<'a> Cx<'a> {
    pub(super) fn warn(&mut self, w: String) {
        if self.seen.insert(w.clone()) {
            self.warnings.push(w);
        }
    }

    pub(super) fn deref<'v>(&self, v: &'v Value, path: &str) -> Result<(Cow<'v, Value>, String), ImportError>
    where
        'a: 'v,
    {
        deref(self.root, v, path)
    }

    /// Inlines a schema for one side of the API, reporting cuts as warnings.
    pub(super) fn inline(&mut self, v: &Value, path: &str, dir: Dir) -> Result<Value, ImportError> {
        let mut inl = Inliner::new(self.root, dir);
        let out = inl.schema(v, path, 0)?;
        for c in inl.cycles {
            self.warn(format!(
                "{c}: recursive schema; its nested occurrences are cut to a bare type (the first level is kept)"
            ));
        }
        if inl.truncated {
            self.warn(format!(
                "{}: schema deeper than {MAX_SCHEMA_DEPTH} levels or larger than {SCHEMA_NODE_BUDGET} nodes once \
                 inlined; the rest is cut to {{type: object}}",
                display_path(path)
            ));
        }
        Ok(out)
    }

    pub(super) fn check_version(&mut self) -> Result<(), ImportError> {
        let Some(doc) = self.root.as_object() else {
            return Err(ImportError::Version(
                "not an OpenAPI description: the document is not a mapping".into(),
            ));
        };
        if let Some(v) = doc.get("swagger") {
            return Err(ImportError::Version(format!(
                "this is a Swagger / OpenAPI 2.0 description (swagger: {:?}); only OpenAPI 3.0 and 3.1 are \
                 supported: convert it first (e.g. `npx swagger2openapi FILE` or https://converter.swagger.io)",
                scalar_text(v)
            )));
        }
        let Some(v) = doc.get("openapi") else {
            return Err(ImportError::Version(
                "not an OpenAPI description: no `openapi` version field (OpenAPI 3.0 and 3.1 are supported)"
                    .into(),
            ));
        };
        let version = scalar_text(v);
        if !version.starts_with("3.") {
            return Err(ImportError::Version(format!(
                "openapi: {version:?} is not supported (OpenAPI 3.0 and 3.1 are)"
            )));
        }
        if !(version.starts_with("3.0") || version.starts_with("3.1")) {
            self.warn(format!(
                "openapi: {version:?} is newer than 3.1; read as 3.1, newer features are ignored"
            ));
        }
        Ok(())
    }

    pub(super) fn server_name(&mut self, requested: Option<&str>) -> String {
        if let Some(n) = requested {
            let s = sanitise_server_name(n, false);
            if !s.is_empty() {
                if s != n {
                    self.warn(format!("--name {n:?} is not 1-128 characters of [A-Za-z0-9_-]; using {s:?}"));
                }
                return s;
            }
            self.warn(format!("--name {n:?} has no usable character; using the title"));
        }
        let title = self.root.pointer("/info/title").and_then(Value::as_str).unwrap_or("");
        let s = sanitise_server_name(title, true);
        if s.is_empty() {
            self.warn("info.title gives no usable server name; using \"openapi\" (pass --name)".into());
            return "openapi".into();
        }
        s
    }
}

/// Server names: "1-128 characters of [A-Za-z0-9_-]".
pub(super) const MAX_SERVER_NAME: usize = 128;

/// `[A-Za-z0-9_-]`, other runs as one `-`, trimmed, at most 128 characters.
pub(super) fn sanitise_server_name(s: &str, lowercase: bool) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(if lowercase { c.to_ascii_lowercase() } else { c });
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches('-');
    trimmed.chars().take(MAX_SERVER_NAME).collect::<String>().trim_end_matches('-').to_string()
}
