//! What every part of the compiler shares: the collected errors, YAML values read as typed
//! raw config, and the TLS client configuration for https:// backends.

use serde::de::DeserializeOwned;
use yaml_serde::Value;

use crate::config::raw;

/// Collected errors, each `path: message`; the second list holds the errors that only stop a
/// gateway from serving (a pinning `enforce` backend whose pins file cannot be read) and not
/// `portcullis pins record`, which is how that file is made ([`Purpose`]).
#[derive(Default)]
pub(crate) struct Errors(pub(crate) Vec<String>, pub(crate) Vec<String>);

/// What a configuration is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Serving it (every check).
    Serve,
    /// Recording its pins (`portcullis pins record`): the pins file it names may not exist yet.
    RecordPins,
}

impl Errors {
    pub(crate) fn push(&mut self, path: impl AsRef<str>, msg: impl AsRef<str>) {
        self.0.push(format!("{}: {}", path.as_ref(), msg.as_ref()));
    }
}

pub(crate) fn parse_value<T: DeserializeOwned>(v: &Value, path: &str, errs: &mut Errors) -> Option<T> {
    raw::Deferred::<T>::from_value(v.clone()).parse(path).map_err(|e| errs.0.push(e)).ok()
}

/// The system's trust roots, read once per process (re-read on restart, not on reload).
pub(crate) fn system_roots() -> &'static [rustls::pki_types::CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<rustls::pki_types::CertificateDer<'static>>> =
        std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            log::warn!("system trust roots: {e}");
        }
        found.certs
    })
}

/// A rustls client configuration (ring provider) trusting the system roots plus `ca_file`.
pub(crate) fn client_tls(ca_file: Option<&str>) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in system_roots() {
        let _ = roots.add(c.clone());
    }
    if let Some(path) = ca_file {
        roots.roots.extend(crate::tls::read_roots(path)?.roots);
    }
    let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
