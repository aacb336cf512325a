//! What makes a description impossible to import, with the JSON pointer to where.

/// Why a description could not be converted. Paths are written like config paths
/// (`paths./pets/{id}.get.parameters[2]`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Neither JSON nor YAML (or over the size limit).
    #[error("not a YAML or JSON document: {0}")]
    Syntax(String),
    /// Not OpenAPI 3.x (Swagger 2.0 included).
    #[error("{0}")]
    Version(String),
    /// A `$ref` to another file or URL.
    #[error(
        "{path}: external $ref {reference:?} is not supported: bundle the description into one \
         file first (e.g. `redocly bundle` or `swagger-cli bundle`)"
    )]
    ExternalRef {
        /// Where the `$ref` is.
        path: String,
        /// Its value.
        reference: String,
    },
    /// A local `$ref` that does not resolve.
    #[error("{path}: $ref {reference:?} {reason}")]
    BrokenRef {
        /// Where the `$ref` is.
        path: String,
        /// Its value.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No usable absolute base URL for an operation.
    #[error("{path}: {message}")]
    BaseUrl {
        /// The server entry (or option) at fault.
        path: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A structural error in the description.
    #[error("{path}: {message}")]
    Invalid {
        /// Where.
        path: String,
        /// What.
        message: String,
    },
    /// A manifest (`import mcproute`) that cannot be converted, and what to do.
    #[error("{0}")]
    Manifest(String),
    /// The entry could not be written as YAML.
    #[error("cannot write YAML: {0}")]
    Output(String),
}

pub(super) fn invalid(path: &str, message: impl Into<String>) -> ImportError {
    ImportError::Invalid { path: display_path(path).to_string(), message: message.into() }
}

pub(super) fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "(top level)"
    } else {
        path
    }
}
