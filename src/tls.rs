//! TLS termination for `listen` entries with `tls`: certificates read from PEM files at config
//! load and chosen by SNI ([`Listener`]), rustls with the ring provider, TLS 1.2 and 1.3, ALPN
//! `http/1.1`; the handshake and records driven on the worker's own monoio socket
//! ([`TlsStream`]: no second runtime, no thread hop). Client certificates are requested when an
//! endpoint authenticates with `mtls`; their identity ([`Identity`]) is read here and judged in
//! `auth`.
//!
//! Why an own stream type rather than `monoio-rustls` (which the upstream side uses): the server
//! side needs the client's verified certificate chain and the SNI name after the handshake, and
//! that crate's server stream does not expose its rustls connection.

use std::io::{self, Read, Write};
use std::sync::Arc;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustc_hash::FxHashMap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

/// The ring provider, the only one this build uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in the PEM file at `path` (at least one).
pub fn read_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {path:?}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{path:?} is not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path:?} holds no certificate"));
    }
    Ok(certs)
}

/// A root store of the certificates in the PEM file at `path`.
pub fn read_roots(path: &str) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in read_certs(path)? {
        roots.add(c).map_err(|e| format!("{path:?}: {e}"))?;
    }
    Ok(roots)
}

/// A certificate chain and its key, from PEM files; the key must match the certificate.
fn certified_key(cert: &str, key: &str) -> Result<(CertifiedKey, Vec<String>), String> {
    let chain = read_certs(cert)?;
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{key:?}: no usable private key ({e})"))?;
    let ck = CertifiedKey::from_der(chain, key_der, &provider())
        .map_err(|e| format!("{cert:?} with {key:?}: {e}"))?;
    let names = identity(&ck.cert[0]).map(|id| id.server_names()).unwrap_or_default();
    Ok((ck, names))
}

/// A TLS listener's compiled configuration.
#[derive(Debug)]
pub struct Listener {
    /// The rustls configuration every handshake on this listener uses.
    pub config: Arc<rustls::ServerConfig>,
    /// The names each certificate serves, in configuration order (the first is the default).
    pub names: Vec<Vec<String>>,
}

/// Builds a listener from `(cert file, key file)` pairs. `client_roots`: the CAs whose client
/// certificates are requested and verified (an `mtls` endpoint behind this listener); a client
/// without one still connects (other endpoints on the same port do not need one).
pub fn listener(
    pairs: &[(String, String)],
    client_roots: Option<rustls::RootCertStore>,
) -> Result<Listener, String> {
    let mut keys = Vec::new();
    let mut names = Vec::new();
    for (cert, key) in pairs {
        let (ck, n) = certified_key(cert, key)?;
        keys.push(Arc::new(ck));
        names.push(n);
    }
    if keys.is_empty() {
        return Err("at least one certificate is required".into());
    }
    let resolver = BySni::new(keys, &names);
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?;
    let builder = match client_roots {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("client CA: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Listener { config: Arc::new(config), names })
}

/// Chooses a certificate by the client's SNI name: an exact name, then a wildcard one level up,
/// else the first certificate (clients without SNI, unknown names).
#[derive(Debug)]
struct BySni {
    keys: Vec<Arc<CertifiedKey>>,
    exact: FxHashMap<String, usize>,
    /// `*.example.com` stored as `example.com`.
    wildcard: FxHashMap<String, usize>,
}

impl BySni {
    fn new(keys: Vec<Arc<CertifiedKey>>, names: &[Vec<String>]) -> BySni {
        let (mut exact, mut wildcard) = (FxHashMap::default(), FxHashMap::default());
        for (i, list) in names.iter().enumerate() {
            for n in list {
                let n = n.to_ascii_lowercase();
                // The first certificate naming a host wins, as configured.
                match n.strip_prefix("*.") {
                    Some(parent) => wildcard.entry(parent.to_string()).or_insert(i),
                    None => exact.entry(n).or_insert(i),
                };
            }
        }
        BySni { keys, exact, wildcard }
    }

    fn pick(&self, sni: Option<&str>) -> usize {
        let Some(name) = sni else { return 0 };
        let name = name.to_ascii_lowercase();
        let name = name.trim_end_matches('.');
        self.exact
            .get(name)
            .or_else(|| name.split_once('.').and_then(|(_, parent)| self.wildcard.get(parent)))
            .copied()
            .unwrap_or(0)
    }
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.keys.get(self.pick(hello.server_name())).cloned()
    }
}

/// What a certificate says about its subject.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The subject's first common name.
    pub common_name: Option<String>,
    /// The subject distinguished name (RFC 4514 style, as `x509-parser` prints it).
    pub subject: String,
    /// DNS names of the subject alternative names.
    pub dns: Vec<String>,
    /// URIs (e.g. SPIFFE ids) of the subject alternative names.
    pub uris: Vec<String>,
    /// E-mail addresses of the subject alternative names.
    pub emails: Vec<String>,
}

impl Identity {
    /// The host names a server certificate serves: its DNS names, else its common name.
    fn server_names(&self) -> Vec<String> {
        if self.dns.is_empty() {
            self.common_name.iter().cloned().collect()
        } else {
            self.dns.clone()
        }
    }
}

/// Reads the identity of a DER certificate; `None` when it does not parse.
pub fn identity(der: &[u8]) -> Option<Identity> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let mut id = Identity {
        common_name: subject.iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_string),
        subject: subject.to_string(),
        ..Identity::default()
    };
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => id.dns.push(d.to_string()),
                GeneralName::URI(u) => id.uris.push(u.to_string()),
                GeneralName::RFC822Name(e) => id.emails.push(e.to_string()),
                _ => {}
            }
        }
    }
    Some(id)
}

/// A server-side TLS connection over a monoio socket. Reads and writes move whole buffers, as
/// monoio does; ciphertext buffers are reused for the connection's life.
pub struct TlsStream {
    io: TcpStream,
    tls: rustls::ServerConnection,
    /// Ciphertext read from the socket; `inbuf[inpos..]` not yet given to rustls.
    inbuf: Vec<u8>,
    inpos: usize,
    /// Ciphertext rustls produced, being written.
    outbuf: Vec<u8>,
}

/// Socket reads of ciphertext take up to this much (a TLS record is at most ~16.7 KB).
const CIPHER_READ: usize = 17 * 1024;

impl TlsStream {
    /// Runs the server handshake on `io`. The caller bounds it with a timeout.
    pub async fn accept(io: TcpStream, config: Arc<rustls::ServerConfig>) -> io::Result<TlsStream> {
        let tls = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        let mut s = TlsStream { io, tls, inbuf: Vec::new(), inpos: 0, outbuf: Vec::new() };
        while s.tls.is_handshaking() {
            s.flush().await?;
            if !s.tls.is_handshaking() {
                break;
            }
            if s.tls.wants_read() && !s.read_tls().await? {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "client left during the handshake"));
            }
        }
        s.flush().await?;
        Ok(s)
    }

    /// The client's certificate chain (end entity first), when it presented one that the
    /// listener's verifier accepted.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.tls.peer_certificates()
    }

    /// The SNI name the client asked for.
    pub fn server_name(&self) -> Option<&str> {
        self.tls.server_name()
    }

    /// Writes out everything rustls has queued (handshake messages, records, alerts).
    async fn flush(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            self.outbuf.clear();
            self.tls.write_tls(&mut self.outbuf)?;
            let out = std::mem::take(&mut self.outbuf);
            let (r, out) = self.io.write_all(out).await;
            self.outbuf = out;
            r?;
        }
        Ok(())
    }

    /// Gives rustls more ciphertext (reading the socket when nothing is pending) and processes
    /// it. `false` when the socket reached EOF.
    async fn read_tls(&mut self) -> io::Result<bool> {
        if self.inpos >= self.inbuf.len() {
            self.inbuf.clear();
            self.inpos = 0;
            self.inbuf.reserve(CIPHER_READ);
            let buf = std::mem::take(&mut self.inbuf);
            let (r, slice) = self.io.read(buf.slice_mut(0..)).await;
            self.inbuf = slice.into_inner();
            if r? == 0 {
                return Ok(false);
            }
        }
        let mut rd = &self.inbuf[self.inpos..];
        let n = self.tls.read_tls(&mut rd)?;
        self.inpos += n;
        if let Err(e) = self.tls.process_new_packets() {
            // Tell the peer why (the alert rustls queued), then fail.
            let _ = self.flush().await;
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(true)
    }

    /// Reads plaintext, appending to `buf` (at most its spare capacity, at least 4 KiB).
    /// `Ok(0)`: the client closed.
    pub async fn read_append(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        loop {
            let start = buf.len();
            let room = (buf.capacity() - start).max(4096);
            buf.resize(start + room, 0);
            let r = self.tls.reader().read(&mut buf[start..]);
            match r {
                Ok(n) => {
                    buf.truncate(start + n);
                    return (Ok(n), buf);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => buf.truncate(start),
                Err(e) => {
                    buf.truncate(start);
                    return (Err(e), buf);
                }
            }
            match self.read_tls().await {
                Ok(false) => return (Ok(0), buf),
                Ok(true) => {}
                Err(e) => return (Err(e), buf),
            }
            // Post-handshake messages (session tickets, key updates) may want an answer.
            if let Err(e) = self.flush().await {
                return (Err(e), buf);
            }
        }
    }

    /// Encrypts and writes all of `data`.
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let mut rest = data;
        while !rest.is_empty() {
            let n = self.tls.writer().write(rest)?;
            self.flush().await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "TLS send buffer refused data"));
            }
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Sends `close_notify` (a clean end the client can tell from a truncation).
    pub async fn close(&mut self) {
        self.tls.send_close_notify();
        let _ = self.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> Arc<CertifiedKey> {
        let kp = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec![format!("h{n}.test")]).unwrap().self_signed(&kp).unwrap();
        let key = PrivateKeyDer::Pkcs8(kp.serialize_der().into());
        Arc::new(CertifiedKey::from_der(vec![cert.der().clone()], key, &provider()).unwrap())
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_the_first() {
        let names = vec![
            vec!["a.example.com".to_string()],
            vec!["*.example.com".to_string(), "B.example.org".to_string()],
        ];
        let r = BySni::new(vec![key(0), key(1)], &names);
        assert_eq!(r.pick(Some("a.example.com")), 0);
        assert_eq!(r.pick(Some("A.Example.COM.")), 0, "case and a trailing dot do not matter");
        assert_eq!(r.pick(Some("x.example.com")), 1, "wildcard");
        assert_eq!(r.pick(Some("y.x.example.com")), 0, "a wildcard covers one label only");
        assert_eq!(r.pick(Some("b.example.org")), 1);
        assert_eq!(r.pick(Some("other.test")), 0, "unknown names get the default");
        assert_eq!(r.pick(None), 0, "no SNI: the default");
    }

    #[test]
    fn identity_reads_subject_and_alternative_names() {
        let kp = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["svc.internal".to_string()]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, "alice");
        p.distinguished_name.push(rcgen::DnType::OrganizationName, "corp");
        p.subject_alt_names.push(rcgen::SanType::URI("spiffe://corp/alice".try_into().unwrap()));
        p.subject_alt_names.push(rcgen::SanType::Rfc822Name("alice@corp.test".try_into().unwrap()));
        let cert = p.self_signed(&kp).unwrap();
        let id = identity(cert.der()).unwrap();
        assert_eq!(id.common_name.as_deref(), Some("alice"));
        assert!(id.subject.contains("CN=alice") && id.subject.contains("O=corp"), "{}", id.subject);
        assert_eq!(id.dns, vec!["svc.internal"]);
        assert_eq!(id.uris, vec!["spiffe://corp/alice"]);
        assert_eq!(id.emails, vec!["alice@corp.test"]);
        assert_eq!(identity(b"not a certificate"), None);
    }
}
