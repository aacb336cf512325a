//! TLS termination end to end: certificates minted here with rcgen, the gateway started
//! in-process from a config file (so its watcher reloads changed certificates), clients written
//! with rustls over std sockets: handshake and ALPN, SNI selection, certificate reload (and a bad
//! certificate that keeps the old one), mTLS accept and reject, principals in rules.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_types)] // test bookkeeping

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portcullis::config::watch::{Reloader, Source};
use portcullis::runtime::Gateway;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A CA that signs leaf certificates.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let cert = p.self_signed(&key).unwrap();
    Ca { der: cert.der().clone(), pem: cert.pem(), issuer: Issuer::new(p, key) }
}

/// A leaf for `names` (DNS SANs) with common name `cn`: (cert PEM, key PEM, cert DER, key DER).
fn leaf(
    ca: &Ca,
    cn: &str,
    names: &[&str],
) -> (String, String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    let der = cert.der().clone();
    (cert.pem(), key.serialize_pem(), der, PrivateKeyDer::Pkcs8(key.serialize_der().into()))
}

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("portcullis-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        // Write then rename: the watcher never reads a half-written file.
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_file(config: &Path) -> (Gateway, Arc<Reloader>) {
    let source = Source::File(config.to_path_buf());
    let reloader =
        Arc::new(Reloader::new(source.clone(), source.compile().unwrap_or_else(|e| panic!("{e:#?}"))));
    (Gateway::start(reloader.clone()).unwrap(), reloader)
}

fn client(
    roots: &[&CertificateDer<'static>],
    cert: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> Arc<rustls::ClientConfig> {
    client_speaking(rustls::DEFAULT_VERSIONS, roots, cert)
}

/// [`client`] limited to the given TLS versions.
fn client_speaking(
    versions: &[&'static rustls::SupportedProtocolVersion],
    roots: &[&CertificateDer<'static>],
    cert: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add((*r).clone()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(store);
    let mut c = match cert {
        Some((c, k)) => b.with_client_auth_cert(vec![c], k).unwrap(),
        None => b.with_no_client_auth(),
    };
    c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(c)
}

/// What a TLS exchange gave: status, body, the server's leaf certificate, the ALPN protocol,
/// the TLS version.
struct Got {
    status: u16,
    body: String,
    server_cert: CertificateDer<'static>,
    alpn: Option<Vec<u8>>,
    version: Option<rustls::ProtocolVersion>,
}

/// Sends `raw` (with `Connection: close`) over TLS to `addr` asking for `sni`.
fn exchange(addr: SocketAddr, sni: &str, cfg: &Arc<rustls::ClientConfig>, raw: &str) -> Result<Got, String> {
    let name = ServerName::try_from(sni.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(cfg.clone(), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    s.write_all(raw.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("no response: {text:?}"))?;
    Ok(Got {
        status: head[9..12].parse().unwrap(),
        body: body.to_string(),
        server_cert: s.conn.peer_certificates().unwrap()[0].clone(),
        alpn: s.conn.alpn_protocol().map(<[u8]>::to_vec),
        version: s.conn.protocol_version(),
    })
}

fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: gw.test\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n\
MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: hi\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hi","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;

fn metrics(admin: SocketAddr) -> String {
    let mut s = TcpStream::connect(admin).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn cn_of(der: &CertificateDer<'_>) -> String {
    portcullis::tls::identity(der).unwrap().common_name.unwrap()
}

fn config(dir: &Dir, client_ca: Option<&Path>) -> String {
    let a = dir.0.join("a.pem");
    let ak = dir.0.join("a.key");
    let b = dir.0.join("b.pem");
    let bk = dir.0.join("b.key");
    let mut c = format!(
        "listen:\n  - address: 127.0.0.1:0\n    tls:\n      - {{cert: {}, key: {}}}\n      - {{cert: {}, key: {}}}\n\
workers: 1\nadmin: 127.0.0.1:0\nallowedHosts: [gw.test]\nservers:\n  - name: open\n    path: /mcp\n    tools:\n      - name: hi\n        responseTemplate: {{body: hello}}\n",
        a.display(),
        ak.display(),
        b.display(),
        bk.display()
    );
    if let Some(ca) = client_ca {
        let secure = [
            "  - name: secure",
            "    path: /secure",
            "    authentication: {mode: mtls, mtls: {caFile: CA}}",
            "    authorization:",
            "      defaultAction: deny",
            "      rules:",
            "        - source: {jwt: {claims: [{name: sub, values: [alice]}]}}",
            "          target: {tools: [{backend: secure, tool: hi}]}",
            "        - cel: 'request.auth.mode == \"mtls\" && request.auth.jwt.claims.cn == \"carol\"'",
            "          target: {tools: [{backend: secure, tool: hi}]}",
            "    tools:",
            "      - name: hi",
            "        responseTemplate: {body: secret}",
            "",
        ];
        c.push_str(&secure.join("\n").replace("CA", &ca.display().to_string()));
    }
    c
}

#[test]
fn handshake_alpn_sni_and_certificate_reload() {
    let dir = Dir::new("sni");
    let server_ca = ca("server-ca");
    let (a_pem, a_key, _, _) = leaf(&server_ca, "a-one", &["a.test"]);
    let (b_pem, b_key, _, _) = leaf(&server_ca, "b-one", &["*.b.test", "b.test"]);
    dir.write("a.pem", &a_pem);
    dir.write("a.key", &a_key);
    dir.write("b.pem", &b_pem);
    dir.write("b.key", &b_key);
    let file = dir.write("gw.yaml", &config(&dir, None));
    let (gw, reloader) = start_file(&file);
    let addr = gw.addrs()[0];
    let cfg = client(&[&server_ca.der], None);

    // Handshake, ALPN http/1.1, an MCP call over it.
    let got = exchange(addr, "a.test", &cfg, &post("/mcp", CALL)).unwrap();
    assert_eq!(got.status, 200, "{}", got.body);
    assert!(got.body.contains("hello"), "{}", got.body);
    assert_eq!(got.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(cn_of(&got.server_cert), "a-one");
    assert_eq!(got.version, Some(rustls::ProtocolVersion::TLSv1_3));
    // A client that speaks only TLS 1.2 is served too, with the same certificate and ALPN.
    let tls12 = client_speaking(&[&rustls::version::TLS12], &[&server_ca.der], None);
    let got = exchange(addr, "a.test", &tls12, &post("/mcp", CALL)).unwrap();
    assert_eq!((got.status, got.version), (200, Some(rustls::ProtocolVersion::TLSv1_2)), "{}", got.body);
    assert_eq!(got.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(cn_of(&got.server_cert), "a-one");
    // SNI: exact, wildcard, and the default for an unknown name (which the client then refuses:
    // the default certificate does not name it).
    assert_eq!(cn_of(&exchange(addr, "b.test", &cfg, &post("/mcp", CALL)).unwrap().server_cert), "b-one");
    assert_eq!(cn_of(&exchange(addr, "x.b.test", &cfg, &post("/mcp", CALL)).unwrap().server_cert), "b-one");
    let err = exchange(addr, "nobody.test", &cfg, &post("/mcp", CALL)).err().unwrap();
    assert!(err.contains("certificate") || err.contains("Certificate"), "{err}");

    // Plain HTTP on a TLS port gets no answer (the handshake fails), and it is counted.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    plain.write_all(b"GET /mcp HTTP/1.1\r\nHost: gw.test\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("HTTP/1.1 "), "no plaintext answer");
    let metrics = metrics(gw.admin_addr().unwrap());
    let count = |result: &str| -> u64 {
        let line = format!("portcullis_tls_handshakes_total{{result=\"{result}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(&line)).unwrap().parse().unwrap()
    };
    assert!(count("ok") >= 3 && count("failed") >= 2, "{metrics}");

    // A new certificate for a.test is picked up from the file, without a restart.
    let (a2_pem, a2_key, _, _) = leaf(&server_ca, "a-two", &["a.test"]);
    dir.write("a.key", &a2_key);
    dir.write("a.pem", &a2_pem);
    let mut now = String::new();
    for _ in 0..100 {
        now = cn_of(&exchange(addr, "a.test", &cfg, &post("/mcp", CALL)).unwrap().server_cert);
        if now == "a-two" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(now, "a-two", "the changed certificate file was reloaded");

    // A broken certificate keeps the one in service and says why.
    let failed = reloader.failed.load(std::sync::atomic::Ordering::SeqCst);
    dir.write("a.pem", "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n");
    for _ in 0..100 {
        if reloader.failed.load(std::sync::atomic::Ordering::SeqCst) > failed {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        reloader.failed.load(std::sync::atomic::Ordering::SeqCst) > failed,
        "the bad file was tried and refused"
    );
    let errors = reloader.reload().unwrap_err();
    assert!(errors.iter().any(|e| e.contains("listen[0].tls")), "{errors:?}");
    assert_eq!(cn_of(&exchange(addr, "a.test", &cfg, &post("/mcp", CALL)).unwrap().server_cert), "a-two");
    gw.shutdown();
}

#[test]
fn mutual_tls_names_the_principal_and_refuses_strangers() {
    let dir = Dir::new("mtls");
    let server_ca = ca("server-ca");
    let client_ca = ca("client-ca");
    let other_ca = ca("other-ca");
    let (a_pem, a_key, _, _) = leaf(&server_ca, "a", &["a.test"]);
    let (b_pem, b_key, _, _) = leaf(&server_ca, "b", &["b.test"]);
    dir.write("a.pem", &a_pem);
    dir.write("a.key", &a_key);
    dir.write("b.pem", &b_pem);
    dir.write("b.key", &b_key);
    let ca_file = dir.write("client-ca.pem", &client_ca.pem);
    let file = dir.write("gw.yaml", &config(&dir, Some(&ca_file)));
    let (gw, _reloader) = start_file(&file);
    let addr = gw.addrs()[0];
    let with = |cn: &str, by: &Ca| {
        let (_, _, der, key) = leaf(by, cn, &[]);
        client(&[&server_ca.der], Some((der, key)))
    };

    // alice: verified, named by her common name, allowed by the rule on `sub`.
    let got = exchange(addr, "a.test", &with("alice", &client_ca), &post("/secure", CALL)).unwrap();
    assert_eq!(got.status, 200, "{}", got.body);
    assert!(got.body.contains("secret"), "{}", got.body);
    // bob: verified too, but the rule denies him.
    let got = exchange(addr, "a.test", &with("bob", &client_ca), &post("/secure", CALL)).unwrap();
    assert_eq!(got.status, 403, "{}", got.body);
    // carol: allowed by a CEL rule over the certificate's claims (`request.auth.jwt.claims`).
    let got = exchange(addr, "a.test", &with("carol", &client_ca), &post("/secure", CALL)).unwrap();
    assert_eq!(got.status, 200, "{}", got.body);
    // The same over TLS 1.2, where the client certificate travels in the clear handshake.
    let (_, _, der, key) = leaf(&client_ca, "alice", &[]);
    let tls12 = client_speaking(&[&rustls::version::TLS12], &[&server_ca.der], Some((der, key)));
    let got = exchange(addr, "a.test", &tls12, &post("/secure", CALL)).unwrap();
    assert_eq!((got.status, got.version), (200, Some(rustls::ProtocolVersion::TLSv1_2)), "{}", got.body);
    // No certificate: 401 on the mtls endpoint, while the open endpoint on the same port works.
    let anonymous = client(&[&server_ca.der], None);
    let got = exchange(addr, "a.test", &anonymous, &post("/secure", CALL)).unwrap();
    assert_eq!(got.status, 401, "{}", got.body);
    assert_eq!(exchange(addr, "a.test", &anonymous, &post("/mcp", CALL)).unwrap().status, 200);
    // A certificate from another CA: the handshake itself is refused.
    let err = exchange(addr, "a.test", &with("mallory", &other_ca), &post("/secure", CALL)).err();
    assert!(err.is_some(), "a stranger's certificate must not get through");
    gw.shutdown();
}
