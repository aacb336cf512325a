//! The layout rules of docs/architecture.md, checked on the source tree: no import cycles between
//! files of `src/` (a file's references to other modules: `use crate::`/`super::`/`self::` paths,
//! `crate::` paths in code, and a parent's uses of the child modules it declares), and no file
//! over 800 lines other than tests.
#![allow(clippy::unwrap_used)] // test harness

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Most lines a source file may have (tests excepted).
const MAX_LINES: usize = 800;

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file (`proxy::backends::list`; `""` for lib.rs and main.rs).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts.join("::")
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The source without `#[cfg(test)] mod tests { ... }` blocks and comments.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Paths named by one `use` tree, e.g. `a::{b, c::{d, e}}` -> `a::b`, `a::c::d`, `a::c::e`.
fn expand(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(inner) = tree.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(prefix, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(prefix, &inner[start..], out);
        return;
    }
    if tree.is_empty() {
        return;
    }
    if let Some((head, rest)) = tree.split_once("::") {
        let mut p = prefix.to_vec();
        p.push(head.trim().to_string());
        expand(&p, rest, out);
        return;
    }
    let name = tree.split(" as ").next().unwrap().trim();
    let mut p = prefix.to_vec();
    if name != "self" && name != "*" {
        p.push(name.to_string());
    }
    out.push(p);
}

/// Identifier paths following `anchor` (`crate::a::b::C` -> `a::b::C`) in code.
fn paths_after(code: &str, anchor: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(i) = code[from..].find(anchor) {
        let at = from + i;
        from = at + anchor.len();
        if at > 0 && (is_ident(bytes[at - 1]) || bytes[at - 1] == b':') {
            continue;
        }
        let mut segs = Vec::new();
        let mut j = from;
        loop {
            let s = j;
            while j < bytes.len() && is_ident(bytes[j]) {
                j += 1;
            }
            if j == s {
                break;
            }
            segs.push(code[s..j].to_string());
            if code[j..].starts_with("::") {
                j += 2;
            } else {
                break;
            }
        }
        // `crate::a::{b, c}` and `crate::a::*` are use groups, read by the `use` parser.
        let group = code[j..].starts_with('{') || code[j..].starts_with('*');
        if !segs.is_empty() && !group {
            out.push(segs);
        }
    }
    out
}

/// The longest prefix of `path` (relative to `base`) that is a module of `modules`.
fn resolve(modules: &BTreeSet<String>, base: &[String], path: &[String]) -> Option<String> {
    let full: Vec<String> = base.iter().chain(path).cloned().collect();
    (1..=full.len()).rev().map(|n| full[..n].join("::")).find(|m| modules.contains(m))
}

#[test]
fn no_import_cycles_between_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut by_module: BTreeMap<String, String> = BTreeMap::new();
    for f in &all {
        let m = module_of(&src, f);
        if m.rsplit("::").next() == Some("tests") || m == "main" {
            continue;
        }
        by_module.insert(m, code_of(&std::fs::read_to_string(f).unwrap()));
    }
    let modules: BTreeSet<String> = by_module.keys().cloned().collect();
    let mut graph: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (m, code) in &by_module {
        let me: Vec<String> =
            if m.is_empty() { Vec::new() } else { m.split("::").map(String::from).collect() };
        let parent: Vec<String> = me[..me.len().saturating_sub(1)].to_vec();
        let mut refs: Vec<(Vec<String>, Vec<String>)> = Vec::new();
        for stmt in code.split(';') {
            let Some(u) = stmt.trim().strip_prefix("use ").or_else(|| stmt.trim().strip_prefix("pub use "))
            else {
                continue;
            };
            let u = u.trim_start_matches("pub(crate) ").trim_start_matches("pub(super) ");
            let (base, tree) = if let Some(t) = u.strip_prefix("crate::") {
                (Vec::new(), t)
            } else if let Some(t) = u.strip_prefix("super::") {
                (parent.clone(), t)
            } else if let Some(t) = u.strip_prefix("self::") {
                (me.clone(), t)
            } else {
                continue;
            };
            let mut paths = Vec::new();
            expand(&[], tree, &mut paths);
            refs.extend(paths.into_iter().map(|p| (base.clone(), p)));
        }
        refs.extend(paths_after(code, "crate::").into_iter().map(|p| (Vec::new(), p)));
        refs.extend(paths_after(code, "super::").into_iter().map(|p| (parent.clone(), p)));
        // A parent using a child module it declares (`mod x;` then `x::...`).
        for line in code.lines() {
            let l = line.trim().trim_start_matches("pub ").trim_start_matches("pub(crate) ");
            if let Some(kid) = l.strip_prefix("mod ").and_then(|k| k.strip_suffix(';')) {
                if !paths_after(code, &format!("{kid}::")).is_empty() || code.contains(&format!(" {kid}::")) {
                    refs.push((me.clone(), vec![kid.to_string()]));
                }
            }
        }
        let edges = graph.entry(m).or_default();
        for (base, path) in refs {
            if let Some(t) = resolve(&modules, &base, &path) {
                if t != *m {
                    edges.insert(t);
                }
            }
        }
    }
    // Tarjan's strongly connected components: any of more than one file is a cycle.
    struct T<'g> {
        graph: &'g BTreeMap<&'g str, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on: BTreeSet<&'g str>,
        cycles: Vec<Vec<&'g str>>,
    }
    fn visit<'g>(t: &mut T<'g>, v: &'g str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.graph.get(v).into_iter().flatten() {
            let w = t.graph.get_key_value(w.as_str()).map(|(k, _)| *k).unwrap_or("");
            if w.is_empty() {
                continue;
            }
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.cycles.push(comp);
            }
        }
    }
    let mut t = T {
        graph: &graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        cycles: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    let report: Vec<String> = t
        .cycles
        .iter()
        .map(|c| {
            let edges: Vec<String> = c
                .iter()
                .map(|a| {
                    let to: Vec<&str> =
                        graph[a].iter().map(String::as_str).filter(|b| c.contains(b)).collect();
                    format!("{a} -> {to:?}")
                })
                .collect();
            edges.join("; ")
        })
        .collect();
    assert!(report.is_empty(), "import cycles between files of src/:\n{}", report.join("\n"));
    assert!(graph.len() > 50, "the scan found the modules ({})", graph.len());
    assert!(graph["proxy::pipeline"].contains("proxy::message"), "the scan sees uses");
}

#[test]
fn no_source_file_is_too_long_to_read() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let long: Vec<String> = all
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs"))
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            // A file's own unit tests do not count against it.
            let code = text.find("#[cfg(test)]\nmod tests {").map_or(&text[..], |i| &text[..i]);
            let n = code.lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.strip_prefix(&src).unwrap().display()))
        })
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:?}");
}
