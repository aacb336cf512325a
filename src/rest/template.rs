//! Go-template syntax as Higress users write it, compiled once at config load into literal and
//! field-path parts, rendered per call without re-parsing. This version supports field paths
//! (`{{.args.city}}`, `{{.config.key}}`, `{{.some.field}}` into backend JSON) and the `{{-`/`-}}`
//! trim markers; any other action is a config error naming the template, never a silent
//! mis-render. Missing values render empty; objects and arrays render as JSON.

use simd_json::Node;

use crate::mcp::json;

/// Where a field path starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Root {
    /// `.args.*`: the tool call arguments.
    Args,
    /// `.config.*`: the server's free-form `server.config`.
    Config,
    /// Any other `.x`: the data being rendered (backend JSON); `.` alone is all of it.
    Data,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(Box<str>),
    Field(Root, Box<[Box<str>]>),
}

/// A compiled template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// What a template renders from.
#[derive(Clone, Copy, Default)]
pub struct Context<'t, 'a, 'c> {
    /// The call's arguments (tape of `params.arguments`).
    pub args: Option<&'t [Node<'a>]>,
    /// `server.config`.
    pub config: Option<&'c serde_json::Value>,
    /// The data (backend response), when there is one.
    pub data: Option<&'c serde_json::Value>,
}

impl Template {
    /// Compiles `src`; the error says what was not understood.
    pub fn compile(src: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = src;
        let mut trim_next = false;
        while let Some(open) = rest.find("{{") {
            let mut lit = &rest[..open];
            if trim_next {
                lit = lit.trim_start();
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed action at byte {}", src.len() - rest.len() + open))?;
            let mut action = &after[..close];
            if let Some(a) = action.strip_prefix('-') {
                lit = lit.trim_end();
                action = a;
            }
            trim_next = false;
            if let Some(a) = action.strip_suffix('-') {
                trim_next = true;
                action = a;
            }
            if !lit.is_empty() {
                parts.push(Part::Lit(lit.into()));
            }
            parts.push(compile_action(action.trim())?);
            rest = &after[close + 2..];
        }
        let lit = if trim_next { rest.trim_start() } else { rest };
        if !lit.is_empty() {
            parts.push(Part::Lit(lit.into()));
        }
        Ok(Template { parts })
    }

    /// Whether the template has no actions (renders to a constant).
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// Whether the template reads nothing but literals and `.config` (it may be rendered once
    /// at load).
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_) | Part::Field(Root::Config, _)))
    }

    /// Renders into `out`, percent-encoding what each action produces when `escape` is
    /// [`Escape::Url`] (literal text is copied as written).
    pub fn render_escaped(&self, out: &mut Vec<u8>, cx: &Context<'_, '_, '_>, escape: Escape) {
        if escape == Escape::None {
            return self.render(out, cx);
        }
        let mut tmp = Vec::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.extend_from_slice(s.as_bytes()),
                p => {
                    tmp.clear();
                    Template { parts: vec![p.clone()] }.render(&mut tmp, cx);
                    url_escape(out, &tmp);
                }
            }
        }
    }

    /// Renders into `out`.
    pub fn render(&self, out: &mut Vec<u8>, cx: &Context<'_, '_, '_>) {
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.extend_from_slice(s.as_bytes()),
                Part::Field(Root::Args, path) => {
                    let mut v = cx.args;
                    for seg in path.iter() {
                        v = v.and_then(|v| json::get(v, seg));
                    }
                    if let Some(v) = v {
                        render_tape(out, v);
                    }
                }
                Part::Field(Root::Config, path) => render_json(out, walk(cx.config, path)),
                Part::Field(Root::Data, path) => render_json(out, walk(cx.data, path)),
            }
        }
    }
}

/// How [`Template::render_escaped`] treats what actions produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// As it is.
    None,
    /// Percent-encoded: only RFC 3986 unreserved characters stay.
    Url,
}

/// Appends `bytes` percent-encoded (RFC 3986 unreserved characters kept).
pub fn url_escape(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

fn compile_action(action: &str) -> Result<Part, String> {
    let unsupported = || {
        format!("unsupported template action {{{{{action}}}}}: this version renders field paths such as {{{{.args.name}}}} and {{{{.config.key}}}}")
    };
    if action == "." {
        return Ok(Part::Field(Root::Data, Box::new([])));
    }
    let path = action.strip_prefix('.').ok_or_else(unsupported)?;
    let segs: Vec<&str> = path.split('.').collect();
    if segs.iter().any(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')) {
        return Err(unsupported());
    }
    let (root, rest) = match segs[0] {
        "args" => (Root::Args, &segs[1..]),
        "config" => (Root::Config, &segs[1..]),
        _ => (Root::Data, &segs[..]),
    };
    Ok(Part::Field(root, rest.iter().map(|s| Box::<str>::from(*s)).collect()))
}

fn walk<'c>(mut v: Option<&'c serde_json::Value>, path: &[Box<str>]) -> Option<&'c serde_json::Value> {
    for seg in path {
        v = v.and_then(|v| match v {
            serde_json::Value::Object(m) => m.get(&**seg),
            serde_json::Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        });
    }
    v
}

fn render_tape(out: &mut Vec<u8>, v: &[Node<'_>]) {
    match v.first() {
        Some(Node::String(s)) => out.extend_from_slice(s.as_bytes()),
        Some(Node::Static(simd_json::StaticNode::Null)) | None => {}
        _ => json::write_value(out, v),
    }
}

fn render_json(out: &mut Vec<u8>, v: Option<&serde_json::Value>) {
    match v {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(s)) => out.extend_from_slice(s.as_bytes()),
        Some(other) => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::json::Decoder;

    fn render(src: &str, args: &str, config: serde_json::Value) -> String {
        let t = Template::compile(src).unwrap();
        let mut out = Vec::new();
        Decoder::default()
            .with_tape(args.as_bytes(), |tape| {
                t.render(&mut out, &Context { args: Some(tape), config: Some(&config), data: None })
            })
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn field_paths() {
        let cfg = serde_json::json!({"greeting": "Hi", "n": {"x": 1}});
        assert_eq!(
            render("{{.config.greeting}}, {{ .args.who }}!", r#"{"who":"Ada"}"#, cfg.clone()),
            "Hi, Ada!"
        );
        assert_eq!(render("[{{.args.missing}}]", r#"{}"#, cfg.clone()), "[]");
        assert_eq!(
            render("{{.args.o}} {{.config.n}}", r#"{"o":{"a":[1,true]}}"#, cfg.clone()),
            r#"{"a":[1,true]} {"x":1}"#
        );
        assert_eq!(render("a  {{- .args.n -}}  b", r#"{"n":3}"#, cfg), "a3b");
    }

    #[test]
    fn unsupported_actions_are_errors() {
        assert!(Template::compile("{{if .args.x}}y{{end}}").unwrap_err().contains("unsupported"));
        assert!(Template::compile("{{.args.x").unwrap_err().contains("unclosed"));
        assert!(Template::compile("{{.args..x}}").is_err());
        assert!(Template::compile("plain").unwrap().is_constant());
    }
}
