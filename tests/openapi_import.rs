#![allow(clippy::unwrap_used)]
//! Golden tests of `portcullis import openapi` over the public descriptions in
//! `tests/data/openapi/` (sources and licenses in its README). For each `X.yaml` or `X.json` the
//! expected output, header comments included, is `X.expected.yaml`; `UPDATE_GOLDEN=1 cargo test
//! --test openapi_import` rewrites the expectations instead of failing. Every output must also
//! load as a raw `servers[]` entry and compile without errors into REST tools.

use std::path::{Path, PathBuf};

use portcullis::config::compile::compile_str;
use portcullis::config::raw;
use portcullis::import::openapi::{import, ImportOptions};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/openapi")
}

/// The descriptions: `*.yaml` and `*.json`, expectations excluded, sorted.
fn inputs() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name.ends_with(".yaml") || name.ends_with(".json")) && !name.ends_with(".expected.yaml")
        })
        .collect();
    out.sort();
    out
}

fn expected_path(input: &Path) -> PathBuf {
    let stem = input.file_stem().unwrap().to_string_lossy().to_string();
    input.with_file_name(format!("{stem}.expected.yaml"))
}

fn render(input: &Path) -> String {
    let name = input.file_name().unwrap().to_string_lossy().to_string();
    let spec = std::fs::read_to_string(input).unwrap();
    // With output schemas: the golden files cover their conversion too.
    let opts = ImportOptions { output_schemas: true, ..ImportOptions::default() };
    let imported = import(&spec, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    imported.to_yaml(&name).unwrap()
}

/// The first line where two texts differ, for the failure message.
fn first_difference(expected: &str, actual: &str) -> String {
    let (mut e, mut a) = (expected.lines(), actual.lines());
    for n in 1.. {
        match (e.next(), a.next()) {
            (None, None) => break,
            (x, y) if x != y => return format!("line {n}: expected {x:?}, got {y:?}"),
            _ => {}
        }
    }
    "trailing newline".into()
}

/// The output is one raw `servers[]` entry whose deferred blocks parse, and the compiler
/// accepts it: every operation becomes a REST tool.
fn assert_loads(name: &str, text: &str) {
    let entries: Vec<raw::Server> = yaml_serde::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(entries.len(), 1, "{name}");
    let entry = &entries[0];
    if let Some(server) = &entry.server {
        server.parse("server").unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (i, t) in entry.tools.iter().flatten().enumerate() {
        t.parse(&format!("tools[{i}]")).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let snap = compile_str(&format!("servers:\n{text}"), &|_| None)
        .unwrap_or_else(|errors| panic!("{name}: the config compiler refuses the output: {errors:#?}"));
    let tools = &snap.servers[0].tools;
    assert_eq!(tools.len(), entry.tools.as_ref().map_or(0, Vec::len), "{name}");
    assert!(
        tools.iter().all(|t| matches!(t.kind, portcullis::config::snapshot::ToolKind::Rest(_))),
        "{name}: every imported tool calls its REST operation"
    );
}

#[test]
fn golden_outputs() {
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let inputs = inputs();
    assert!(inputs.len() >= 3, "{inputs:?}");
    let mut failures = Vec::new();
    for input in &inputs {
        let name = input.file_name().unwrap().to_string_lossy().to_string();
        let actual = render(input);
        let path = expected_path(input);
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != actual {
            if update {
                std::fs::write(&path, &actual).unwrap();
            } else {
                failures.push(format!("{name}: {}", first_difference(&expected, &actual)));
            }
        }
        assert_loads(&name, &actual);
    }
    assert!(
        failures.is_empty(),
        "outputs differ from the *.expected.yaml files (UPDATE_GOLDEN=1 accepts them):\n{}",
        failures.join("\n")
    );
}

#[test]
fn output_is_deterministic() {
    for input in inputs() {
        assert_eq!(render(&input), render(&input), "{}", input.display());
    }
}

#[test]
fn every_expectation_has_its_description() {
    let inputs = inputs();
    for e in std::fs::read_dir(data_dir()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".expected.yaml") {
            assert!(
                inputs.iter().any(|i| i.file_stem().unwrap().to_string_lossy() == stem),
                "{name} has no description next to it"
            );
        }
    }
}

#[test]
fn base_url_and_name_options_apply_to_every_tool() {
    let spec = std::fs::read_to_string(data_dir().join("petstore.yaml")).unwrap();
    let opts = ImportOptions {
        name: Some("pets".into()),
        base_url: Some("https://pets.internal.example/api/".into()),
        output_schemas: false,
    };
    let imported = import(&spec, &opts).unwrap();
    assert_eq!(imported.json()["name"], "pets");
    let json = imported.json();
    let urls: Vec<&str> = json["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["requestTemplate"]["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            "https://pets.internal.example/api/pets",
            "https://pets.internal.example/api/pets",
            "https://pets.internal.example/api/pets/{petId}"
        ]
    );
    assert_loads("petstore.yaml with options", &imported.to_yaml("petstore.yaml").unwrap());
}
