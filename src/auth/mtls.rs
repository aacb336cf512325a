//! `mode: mtls`: the client is who its TLS client certificate says, when that certificate chains
//! to the endpoint's own CA (`mtls.caFile`). The listener asks for and checks certificates
//! against every mtls endpoint's CA; this module checks the chain again against *this*
//! endpoint's CA (so one endpoint's clients cannot use another's), once per connection, and
//! names the principal from the subject or a subject alternative name.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use serde_json::{Map, Value};

use crate::auth::failure::Failure;
use crate::auth::principal::{Principal, PrincipalKind};

/// Which part of the certificate names the principal (`mtls.principal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertName {
    /// The subject's common name (the default).
    CommonName,
    /// The whole subject distinguished name.
    Subject,
    /// The first DNS subject alternative name.
    DnsName,
    /// The first URI subject alternative name (e.g. a SPIFFE id).
    Uri,
    /// The first e-mail subject alternative name.
    Email,
}

impl CertName {
    /// The configuration word.
    pub fn parse(s: &str) -> Option<CertName> {
        Some(match s {
            "commonName" => CertName::CommonName,
            "subject" => CertName::Subject,
            "dnsName" => CertName::DnsName,
            "uri" => CertName::Uri,
            "email" => CertName::Email,
            _ => return None,
        })
    }

    fn refusal(self) -> &'static str {
        match self {
            CertName::CommonName => "The client certificate has no subject common name",
            CertName::Subject => "The client certificate has no subject",
            CertName::DnsName => "The client certificate has no DNS subject alternative name",
            CertName::Uri => "The client certificate has no URI subject alternative name",
            CertName::Email => "The client certificate has no e-mail subject alternative name",
        }
    }
}

/// A connection's client certificate and its last verdict.
#[derive(Debug)]
pub struct ClientCert {
    /// The chain the listener verified, end entity first.
    pub chain: Vec<CertificateDer<'static>>,
    /// (id of the [`Mtls`] that judged it, the verdict): later requests on the connection to
    /// the same endpoint skip the signature checks.
    verdict: Option<(u64, Result<Principal, Failure>)>,
}

impl ClientCert {
    /// A chain not yet judged by any endpoint.
    pub fn new(chain: Vec<CertificateDer<'static>>) -> ClientCert {
        ClientCert { chain, verdict: None }
    }
}

/// One endpoint's compiled `mtls` block.
pub struct Mtls {
    verifier: Arc<dyn ClientCertVerifier>,
    name: CertName,
    /// The CA file (the listener's verifier trusts the union of every endpoint's).
    pub ca_file: Box<str>,
    /// Unique per compiled block in this process: a verdict cached on a connection is only
    /// reused by the block that made it (not by one compiled from a reloaded file).
    id: u64,
}

impl std::fmt::Debug for Mtls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mtls")
            .field("name", &self.name)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl Mtls {
    /// Compiles a block: the CA file must hold at least one usable CA certificate.
    pub fn new(ca_file: &str, name: CertName) -> Result<Mtls, String> {
        static IDS: AtomicU64 = AtomicU64::new(1);
        let roots = crate::tls::read_roots(ca_file)?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            crate::tls::provider(),
        )
        .build()
        .map_err(|e| format!("{ca_file:?}: {e}"))?;
        Ok(Mtls { verifier, name, ca_file: ca_file.into(), id: IDS.fetch_add(1, Ordering::Relaxed) })
    }

    /// Authentication (phase 3) of a request on a connection with (`Some`) or without a client certificate.
    pub fn authenticate(&self, cert: Option<&mut ClientCert>) -> Result<Principal, Failure> {
        let Some(cert) = cert else { return Err(Failure::Missing) };
        if let Some((id, verdict)) = &cert.verdict {
            if *id == self.id {
                return verdict.clone();
            }
        }
        let verdict = self.judge(&cert.chain);
        cert.verdict = Some((self.id, verdict.clone()));
        verdict
    }

    fn judge(&self, chain: &[CertificateDer<'static>]) -> Result<Principal, Failure> {
        let (end_entity, intermediates) = chain.split_first().ok_or(Failure::Missing)?;
        self.verifier.verify_client_cert(end_entity, intermediates, UnixTime::now()).map_err(|_| {
            Failure::Certificate("The client certificate is not issued by this endpoint's CA")
        })?;
        let id = crate::tls::identity(end_entity)
            .ok_or(Failure::Certificate("The client certificate cannot be read"))?;
        let name = match self.name {
            CertName::CommonName => id.common_name.clone(),
            CertName::Subject => Some(id.subject.clone()).filter(|s| !s.is_empty()),
            CertName::DnsName => id.dns.first().cloned(),
            CertName::Uri => id.uris.first().cloned(),
            CertName::Email => id.emails.first().cloned(),
        }
        .filter(|n| n.len() <= 1024 && !n.bytes().any(|b| b < 0x20 || b == 0x7f))
        .ok_or(Failure::Certificate(self.name.refusal()))?;
        // What the certificate says, for `claims` rules and CEL (`request.auth.jwt.claims` is
        // JWT-only; rules' `claims` match any principal's).
        let list = |v: &[String]| Value::Array(v.iter().map(|s| Value::String(s.clone())).collect());
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::String(name.clone()));
        claims.insert("subject".into(), Value::String(id.subject.clone()));
        if let Some(cn) = &id.common_name {
            claims.insert("cn".into(), Value::String(cn.clone()));
        }
        claims.insert("dns".into(), list(&id.dns));
        claims.insert("uri".into(), list(&id.uris));
        claims.insert("email".into(), list(&id.emails));
        Ok(Principal::with_claims(PrincipalKind::Mtls, &name, &Value::Object(claims)))
    }
}
