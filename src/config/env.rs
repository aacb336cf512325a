//! `${NAME}` and `${NAME:-default}` substitution in every string of the parsed YAML tree, before
//! any typed parsing, so a missing variable is reported with the path of the field that used it.

use serde_yaml::Value;

/// Replaces variables in every string under `v`. `lookup` reads the environment (injectable for
/// tests). Errors name the path and the variable, never its value.
pub fn substitute(
    v: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    errs: &mut Vec<String>,
) {
    match v {
        Value::String(s) if s.contains("${") => match expand(s, lookup) {
            Ok(new) => *s = new,
            Err(e) => errs.push(format!("{}: {e}", display(path))),
        },
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                substitute(item, &format!("{path}[{i}]"), lookup, errs);
            }
        }
        Value::Mapping(map) => {
            for (k, item) in map.iter_mut() {
                let key = match k {
                    Value::String(k) => k.clone(),
                    other => format!("{other:?}"),
                };
                let child = if path.is_empty() { key } else { format!("{path}.{key}") };
                substitute(item, &child, lookup, errs);
            }
        }
        Value::Tagged(t) => substitute(&mut t.value, path, lookup, errs),
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
        let mut v: Value =
            serde_yaml::from_str("servers: [{name: a, server: {config: {k: '${NOPE}'}}}]").unwrap();
        let mut errs = Vec::new();
        substitute(&mut v, "", &env, &mut errs);
        assert_eq!(errs, vec!["servers[0].server.config.k: environment variable NOPE is not set"]);
    }
}
