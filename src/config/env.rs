//! `${NAME}` and `${NAME:-default}` substitution in every string of the parsed YAML tree, before
//! any typed parsing, so a missing variable is reported with the path of the field that used it.
//!
//! Two steps, because `${...}` is not valid in every YAML position (docs/config.md writes
//! `config: { apiKey: ${WEATHER_KEY} }`, and braces end a flow mapping): [`protect`] replaces each
//! occurrence in the raw text by a plain-scalar placeholder before parsing, and [`substitute`]
//! expands the placeholders in the parsed tree. Values are inserted into strings after parsing,
//! never into YAML text, so an environment value can never change the structure of the config.

use yaml_serde::Value;

const MARK: &str = "__portcullis_env_";

/// Replaces every `${...}` in `text` with a placeholder; returns the text and the expressions.
pub fn protect(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut exprs = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else { break };
        let expr = &rest[start..start + len + 1];
        if expr.contains('\n') {
            break;
        }
        out.push_str(&rest[..start]);
        out.push_str(&format!("{MARK}{}__", exprs.len()));
        exprs.push(expr.to_string());
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    (out, exprs)
}

/// Puts the original `${...}` expressions back into `s` (for strings that are then expanded).
fn restore(s: &str, exprs: &[String]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find(MARK) {
        out.push_str(&rest[..start]);
        let after = &rest[start + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match (
            after[..digits].parse::<usize>().ok().and_then(|i| exprs.get(i)),
            after[digits..].strip_prefix("__"),
        ) {
            (Some(expr), Some(tail)) => {
                out.push_str(expr);
                rest = tail;
            }
            _ => {
                out.push_str(MARK);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether an environment variable's name says it holds a secret (`API_KEY`, `GITHUB_TOKEN`,
/// `DB_PASSWORD`, ...): what it fills in is redacted from the admin `/config` dump.
pub fn names_secret(var: &str) -> bool {
    let v = var.to_ascii_uppercase();
    ["SECRET", "TOKEN", "KEY", "PASSWORD", "PASSWD", "PASS", "CREDENTIAL", "AUTH", "PRIVATE", "CERT"]
        .iter()
        .any(|w| v.contains(w))
}

/// The variable names a string references (`${NAME}`, `${NAME:-default}`).
fn referenced(s: &str) -> impl Iterator<Item = &str> {
    s.match_indices("${").filter_map(move |(i, _)| {
        let rest = &s[i + 2..];
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
        Some(&rest[..end])
    })
}

/// Replaces variables in every string under `v`. `lookup` reads the environment (injectable for
/// tests). Errors name the path and the variable, never its value. The paths of strings filled
/// from a variable whose name [`names_secret`] go to `secret_paths`.
pub fn substitute(
    v: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    exprs: &[String],
    errs: &mut Vec<String>,
    secret_paths: &mut Vec<String>,
) {
    match v {
        Value::String(s) if s.contains("${") || s.contains(MARK) => {
            let source = restore(s, exprs);
            if referenced(&source).any(names_secret) {
                secret_paths.push(path.to_string());
            }
            match expand(&source, lookup) {
                Ok(new) => *s = new,
                Err(e) => errs.push(format!("{}: {e}", display(path))),
            }
        }
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                substitute(item, &format!("{path}[{i}]"), lookup, exprs, errs, secret_paths);
            }
        }
        Value::Mapping(map) => {
            for (k, item) in map.iter_mut() {
                let key = match k {
                    Value::String(k) => k.clone(),
                    other => format!("{other:?}"),
                };
                let child = if path.is_empty() { key } else { format!("{path}.{key}") };
                substitute(item, &child, lookup, exprs, errs, secret_paths);
            }
        }
        Value::Tagged(t) => substitute(&mut t.value, path, lookup, exprs, errs, secret_paths),
        _ => {}
    }
}

fn display(path: &str) -> &str {
    if path.is_empty() {
        "(top level)"
    } else {
        path
    }
}

/// Expands one string.
pub fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| "unterminated ${ in value".to_string())?;
        let expr = &after[..end];
        let (name, default) = match expr.find(":-") {
            Some(i) => (&expr[..i], Some(&expr[i + 2..])),
            None => (expr, None),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("invalid environment variable name {name:?}"));
        }
        match (lookup(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SET").then(|| "v".to_string())
    }

    #[test]
    fn forms() {
        assert_eq!(expand("a${SET}b", &env).unwrap(), "avb");
        assert_eq!(expand("${UNSET:-d}", &env).unwrap(), "d");
        assert_eq!(expand("${SET:-d}", &env).unwrap(), "v");
        assert!(expand("${UNSET}", &env).unwrap_err().contains("UNSET"));
        assert!(expand("${SET", &env).is_err());
    }

    #[test]
    fn errors_name_the_path() {
        let (text, exprs) = protect("servers: [{name: a, server: {config: {k: ${NOPE}, j: x${SET}y}}}]");
        let mut v: Value = yaml_serde::from_str(&text).unwrap();
        let mut errs = Vec::new();
        substitute(&mut v, "", &env, &exprs, &mut errs, &mut Vec::new());
        assert_eq!(errs, vec!["servers[0].server.config.k: environment variable NOPE is not set"]);
        assert_eq!(v["servers"][0]["server"]["config"]["j"], Value::String("xvy".into()));
    }

    #[test]
    fn values_cannot_inject_structure() {
        let (text, exprs) = protect("a: ${EVIL}\nb: 1\n");
        let mut v: Value = yaml_serde::from_str(&text).unwrap();
        let evil = |_: &str| Some("x\nb: 2\nc: {d: 1}".to_string());
        substitute(&mut v, "", &evil, &exprs, &mut Vec::new(), &mut Vec::new());
        assert_eq!(v["b"], Value::Number(1.into()));
        assert!(v.get("c").is_none());
    }
}
