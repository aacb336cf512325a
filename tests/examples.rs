//! Every configuration in `examples/` loads as shipped (environment references given a value),
//! so the files a new user starts from never rot.
#![allow(clippy::unwrap_used)] // test harness

use std::path::Path;

use portcullis::config::compile::compile_str;

/// The certificate files examples/tls.yaml and examples/mtls.yaml name, as the openssl commands
/// in mtls.yaml's header make them: a private CA (`clients-ca.pem`) and a certificate for
/// 127.0.0.1 and localhost signed by it (`server.pem`, its key `server.key`). Written only when
/// one of them is missing, so files a user made stay; all three together, so the key always
/// matches the certificate.
fn example_tls_files() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let dir = Path::new("/tmp/portcullis/tls");
    let files = ["clients-ca.pem", "server.pem", "server.key"];
    if files.iter().all(|f| dir.join(f).exists()) {
        return;
    }
    std::fs::create_dir_all(dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "portcullis example CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let srv_key = KeyPair::generate().unwrap();
    let mut srv_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    srv_params.distinguished_name.push(DnType::CommonName, "localhost");
    let srv_cert = srv_params.signed_by(&srv_key, &issuer).unwrap();
    for (name, pem) in [
        ("clients-ca.pem", ca_cert.pem()),
        ("server.pem", srv_cert.pem()),
        ("server.key", srv_key.serialize_pem()),
    ] {
        // Written aside and renamed: a reader never sees half a file.
        let part = dir.join(format!("{name}.{}.part", std::process::id()));
        std::fs::write(&part, pem).unwrap();
        std::fs::rename(&part, dir.join(name)).unwrap();
    }
}

#[test]
fn every_example_compiles() {
    // examples/governance.yaml writes under /tmp/portcullis and pins with a recorded file.
    std::fs::create_dir_all("/tmp/portcullis").unwrap();
    let pins = Path::new("/tmp/portcullis/pins.json");
    if !pins.exists() {
        std::fs::write(pins, "{}").unwrap();
    }
    // examples/tls.yaml and examples/mtls.yaml serve TLS with files under /tmp/portcullis/tls.
    example_tls_files();
    // examples/openapi.yaml names its description relative to the working directory
    // (examples/openapi/petstore.yaml), which for `cargo test` is the package root. The loop
    // below reads only top-level *.yaml files, so the description itself is not compiled as a
    // configuration.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // A distinct value per variable: API keys and passwords must differ from one another
        // (examples/api-key.yaml takes two keys from the environment).
        let env = |name: &str| Some(format!("example-secret-value-0123456789abcdef-{name}"));
        match compile_str(&text, &env) {
            Err(errors) => panic!("{}: {errors:#?}", path.display()),
            // A scheme the example declares itself (with its credential) is not reported as
            // imported without one.
            Ok(snap) => assert!(
                !snap.warnings.iter().any(|w| w.contains("no credential imported")),
                "{}: {:#?}",
                path.display(),
                snap.warnings
            ),
        }
        seen += 1;
    }
    assert!(seen >= 11, "{seen} examples");
}
