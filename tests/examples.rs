//! Every configuration in `examples/` loads as shipped (environment references given a value),
//! so the files a new user starts from never rot.
#![allow(clippy::unwrap_used)] // test harness

use portcullis::config::compile::compile_str;

#[test]
fn every_example_compiles() {
    // examples/governance.yaml writes under /tmp/portcullis and pins with a recorded file.
    std::fs::create_dir_all("/tmp/portcullis").unwrap();
    let pins = std::path::Path::new("/tmp/portcullis/pins.json");
    if !pins.exists() {
        std::fs::write(pins, "{}").unwrap();
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let env = |_: &str| Some("example-secret-value-0123456789abcdef".to_string());
        if let Err(errors) = compile_str(&text, &env) {
            panic!("{}: {errors:#?}", path.display());
        }
        seen += 1;
    }
    assert!(seen >= 3, "{seen} examples");
}
