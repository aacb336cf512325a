//! Replays the checked-in fuzz seed corpus and crash regressions (`fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/`) through the crate's fuzz entry points on stable Rust, so every
//! input the fuzzers ever found interesting keeps being exercised by plain `cargo test`.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

/// Regular files directly under `dir`, sorted; empty if the directory does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        // libFuzzer keeps bookkeeping in dot-files next to the corpus; they are not inputs.
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

/// Feeds every corpus and regression file of `target` to `run`; panics naming the first input
/// that panicked, and returns how many inputs were replayed.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for kind in ["corpus", "regressions"] {
        for path in inputs(&root.join(kind).join(target)) {
            let data = fs::read(&path).unwrap();
            if panic::catch_unwind(|| run(&data)).is_err() {
                panic!("{target}: input {} panicked", path.display());
            }
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn http_request_corpus() {
    let n = replay("http_request", portcullis::fuzzing::http_request);
    assert!(n > 0, "no http_request corpus files found under fuzz/");
}

#[test]
fn jsonrpc_envelope_corpus() {
    let n = replay("jsonrpc_envelope", portcullis::fuzzing::jsonrpc_envelope);
    assert!(n > 0, "no jsonrpc_envelope corpus files found under fuzz/");
}

#[test]
fn jwt_verify_corpus() {
    let n = replay("jwt_verify", portcullis::fuzzing::jwt_verify);
    assert!(n > 0, "no jwt_verify corpus files found under fuzz/");
}

#[test]
fn jwks_parse_corpus() {
    let n = replay("jwks_parse", portcullis::fuzzing::jwks_parse);
    assert!(n > 0, "no jwks_parse corpus files found under fuzz/");
}

#[test]
fn cel_eval_corpus() {
    let n = replay("cel_eval", portcullis::fuzzing::cel_eval);
    assert!(n > 0, "no cel_eval corpus files found under fuzz/");
}

#[test]
fn template_corpus() {
    let n = replay("template", portcullis::fuzzing::template);
    assert!(n > 0, "no template corpus files found under fuzz/");
}
