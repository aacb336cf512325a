//! The arguments of a tool whose arguments the gateway knows: declared (template and REST tools'
//! `args`) or learned (a backend tool's `inputSchema`), and their normalization - defaults
//! filled, the documented coercions applied, a value of another type refused - which phase 5
//! runs before the rules judge them, so the backend acts on exactly what was judged.

use simd_json::{Node, StaticNode};

use crate::mcp::json;

/// Where an argument goes on the backend request (`args[].position`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// A query parameter.
    Query,
    /// Substituted for `{name}` in the URL path.
    Path,
    /// A request header of the argument's name.
    Header,
    /// A cookie of the argument's name.
    Cookie,
    /// A member of the JSON (or form) body.
    Body,
    /// None given: used by templates, and by `argsToJsonBody`/`argsToFormBody`/`argsToUrlParam`.
    Unset,
}

/// The JSON Schema type an argument declares (`string` when absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    /// `string`
    String,
    /// `number`: a numeric string is converted.
    Number,
    /// `integer`: a numeric string or a float is converted.
    Integer,
    /// `boolean`: `"true"`/`"false"` are converted.
    Boolean,
    /// `array`
    Array,
    /// `object`
    Object,
}

impl ArgType {
    /// The type with its article, for error messages ("an integer").
    pub fn described(self) -> &'static str {
        match self {
            ArgType::String => "a string",
            ArgType::Number => "a number",
            ArgType::Integer => "an integer",
            ArgType::Boolean => "a boolean",
            ArgType::Array => "an array",
            ArgType::Object => "an object",
        }
    }

    /// Parses a declared `type`.
    pub fn parse(s: &str) -> Option<ArgType> {
        Some(match s {
            "string" => ArgType::String,
            "number" => ArgType::Number,
            "integer" => ArgType::Integer,
            "boolean" => ArgType::Boolean,
            "array" => ArgType::Array,
            "object" => ArgType::Object,
            _ => return None,
        })
    }
}

/// One declared argument.
#[derive(Debug)]
pub struct ArgRule {
    /// Name.
    pub name: Box<str>,
    /// Declared type.
    pub kind: ArgType,
    /// `default`, as JSON text.
    pub default: Option<Box<[u8]>>,
    /// `required`.
    pub required: bool,
    /// `position`.
    pub position: Position,
    /// The `x-mcp-header` a backend tool's property declares (SEP-2243): the name `H` of the
    /// `Mcp-Param-H` request header that carries this argument's value.
    pub header: Option<Box<str>>,
}

/// A call refused before the backend is asked; its text is the `isError` result's.
#[derive(Debug, PartialEq, Eq)]
pub struct ToolError(pub String);

/// Why arguments could not be normalized.
#[derive(Debug, PartialEq, Eq)]
pub enum ArgError {
    /// A required argument is missing: the tool's failure, reported to the model as an
    /// `isError` result (as MCP asks for input validation failures, and as Higress does).
    Missing(ToolError),
    /// A value's JSON type disagrees with its declared type and is none of the documented
    /// coercions: the request is refused (JSON-RPC -32602) with this message, which names the
    /// argument, before any rule judges it.
    Type(String),
}

/// Per-core scratch for normalized arguments: their JSON text and a decoder for it, both reused.
#[derive(Default)]
pub struct ArgScratch {
    json: Vec<u8>,
    decoder: crate::mcp::json::Decoder,
}

impl ArgScratch {
    /// [`normalize`]s `args` against `rules` and calls `f` with the result's tape.
    pub fn with_normalized<R>(
        &mut self,
        rules: &[ArgRule],
        args: Option<&[Node<'_>]>,
        f: impl FnOnce(&[Node<'_>]) -> R,
    ) -> Result<R, ArgError> {
        self.with(rules, args, Shape::Declared, f)
    }

    /// [`normalize`]s `args` against `rules` in `shape` and calls `f` with the result's tape.
    pub fn with<R>(
        &mut self,
        rules: &[ArgRule],
        args: Option<&[Node<'_>]>,
        shape: Shape,
        f: impl FnOnce(&[Node<'_>]) -> R,
    ) -> Result<R, ArgError> {
        normalize_as(rules, args, shape, &mut self.json)?;
        self.decoder
            .with_tape(&self.json, f)
            .map_err(|_| ArgError::Missing(ToolError("the arguments could not be normalized".into())))
    }
}

/// Which members normalized arguments keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Declared arguments only, in declaration order (template and REST tools: what Higress
    /// renders).
    Declared,
    /// Declared arguments first, then every other member as sent (a backend MCP tool: its
    /// schema may allow more than it lists).
    Open,
}

/// The argument rules of a backend MCP tool, from the `inputSchema` its `tools/list` gave: each
/// property with a single simple `type` and its `default`. `required` is the backend's to
/// enforce (it answers with its own error); types and defaults are what the rules must see.
pub fn rules_from_schema(schema: &serde_json::Value) -> Vec<ArgRule> {
    let Some(props) = schema.get("properties").and_then(|p| p.as_object()) else { return Vec::new() };
    props
        .iter()
        .filter_map(|(name, p)| {
            let kind = ArgType::parse(p.get("type")?.as_str()?)?;
            let default =
                p.get("default").and_then(|d| serde_json::to_vec(d).ok()).map(Vec::into_boxed_slice);
            // Only primitive values travel in headers; an empty name declares nothing.
            let header = p
                .get("x-mcp-header")
                .and_then(|h| h.as_str())
                .filter(|h| {
                    !h.is_empty() && matches!(kind, ArgType::String | ArgType::Integer | ArgType::Boolean)
                })
                .map(Into::into);
            Some(ArgRule {
                name: name.as_str().into(),
                kind,
                default,
                required: false,
                position: Position::Unset,
                header,
            })
        })
        .collect()
}

/// Whether `args` change under `rules`: `Ok(false)` when every declared value already has its
/// type and no default is to be filled (the arguments are judged and forwarded as sent, with no
/// copy); `Err` for a value of another type that no coercion converts. Only for [`Shape::Open`].
pub fn needs_normalizing(rules: &[ArgRule], args: Option<&[Node<'_>]>) -> Result<bool, ArgError> {
    let mut change = false;
    for r in rules {
        match args.and_then(|a| json::get(a, &r.name)) {
            None => change |= r.default.is_some(),
            Some(v) => match fits(r.kind, v) {
                Fit::Exact => {}
                Fit::Coerced => change = true,
                Fit::No => return Err(type_error(r)),
            },
        }
    }
    Ok(change)
}

enum Fit {
    Exact,
    Coerced,
    No,
}

fn fits(kind: ArgType, v: &[Node<'_>]) -> Fit {
    let mut probe = Vec::new();
    match (kind, v.first()) {
        (_, Some(Node::Static(StaticNode::Null))) => Fit::Exact,
        (ArgType::String, Some(Node::String(_)))
        | (ArgType::Boolean, Some(Node::Static(StaticNode::Bool(_))))
        | (ArgType::Integer, Some(Node::Static(StaticNode::I64(_) | StaticNode::U64(_))))
        | (
            ArgType::Number,
            Some(Node::Static(StaticNode::I64(_) | StaticNode::U64(_) | StaticNode::F64(_))),
        )
        | (ArgType::Array, Some(Node::Array { .. }))
        | (ArgType::Object, Some(Node::Object { .. })) => Fit::Exact,
        _ if coerce(&mut probe, kind, v) => Fit::Coerced,
        _ => Fit::No,
    }
}

fn type_error(r: &ArgRule) -> ArgError {
    ArgError::Type(format!("Invalid arguments: {} must be {}", r.name, r.kind.described()))
}

/// Writes the normalized arguments as a JSON object into `out`: declared arguments only, in
/// declaration order, defaults filled and strings coerced to declared scalar types (Higress
/// behaviour). A required argument that is still missing is [`ArgError::Missing`]; a value of
/// another JSON type that no coercion converts is [`ArgError::Type`]. `null` stands for "no
/// value" under any declared type.
pub fn normalize(rules: &[ArgRule], args: Option<&[Node<'_>]>, out: &mut Vec<u8>) -> Result<(), ArgError> {
    normalize_as(rules, args, Shape::Declared, out)
}

fn normalize_as(
    rules: &[ArgRule],
    args: Option<&[Node<'_>]>,
    shape: Shape,
    out: &mut Vec<u8>,
) -> Result<(), ArgError> {
    out.clear();
    out.push(b'{');
    let mut first = true;
    for r in rules {
        let given = args.and_then(|a| json::get(a, &r.name));
        if given.is_none() && r.default.is_none() {
            if r.required {
                return Err(ArgError::Missing(ToolError(format!("missing required argument: {}", r.name))));
            }
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        json::write_str(out, &r.name);
        out.push(b':');
        match given {
            Some(v) => {
                if !coerce(out, r.kind, v) {
                    return Err(type_error(r));
                }
            }
            None => out.extend_from_slice(r.default.as_deref().unwrap_or(b"null")),
        }
    }
    if shape == Shape::Open {
        for (k, v) in args.into_iter().flat_map(json::entries) {
            if rules.iter().any(|r| *r.name == *k) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            json::write_str(out, k);
            out.push(b':');
            json::write_value(out, v);
        }
    }
    out.push(b'}');
    Ok(())
}

/// Writes `v` as `kind`, converted where the documented coercions convert: `"true"`/`"false"`
/// to a boolean, a numeric string to a number or integer, a finite float to an integer (Go's
/// `int(float64)`: truncation toward zero, saturating). `false` when `v` is of another type.
fn coerce(out: &mut Vec<u8>, kind: ArgType, v: &[Node<'_>]) -> bool {
    let Some(node) = v.first() else { return false };
    let number = |n: &Node<'_>| {
        matches!(n, Node::Static(StaticNode::I64(_) | StaticNode::U64(_) | StaticNode::F64(_)))
    };
    match (kind, node) {
        (_, Node::Static(StaticNode::Null)) => out.extend_from_slice(b"null"),
        (ArgType::String, Node::String(_)) => json::write_value(out, v),
        (ArgType::Boolean, Node::Static(StaticNode::Bool(_))) => json::write_value(out, v),
        (ArgType::Boolean, Node::String(s)) if *s == "true" || *s == "false" => {
            out.extend_from_slice(s.as_bytes())
        }
        (ArgType::Integer, Node::Static(StaticNode::I64(_) | StaticNode::U64(_))) => {
            json::write_value(out, v)
        }
        (ArgType::Integer, Node::Static(StaticNode::F64(f))) if f.is_finite() => {
            json::write_i64(out, *f as i64)
        }
        (ArgType::Integer, Node::String(s)) => match s.trim().parse::<i64>() {
            Ok(i) => json::write_i64(out, i),
            Err(_) => return false,
        },
        (ArgType::Number, n) if number(n) => json::write_value(out, v),
        (ArgType::Number, Node::String(s)) => match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => json::write_f64(out, f),
            _ => return false,
        },
        (ArgType::Array, Node::Array { .. }) | (ArgType::Object, Node::Object { .. }) => {
            json::write_value(out, v)
        }
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::mcp::json::Decoder;

    fn rule(name: &str, kind: ArgType, default: Option<&str>, required: bool) -> ArgRule {
        ArgRule {
            name: name.into(),
            kind,
            default: default.map(|d| d.as_bytes().into()),
            required,
            position: Position::Unset,
            header: None,
        }
    }

    fn normalized(rules: &[ArgRule], args: &str) -> Result<String, ArgError> {
        let mut out = Vec::new();
        Decoder::default().with_tape(args.as_bytes(), |t| normalize(rules, Some(t), &mut out)).unwrap()?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn normalization_follows_higress() {
        let rules = [
            rule("b", ArgType::Boolean, None, false),
            rule("i", ArgType::Integer, Some("7"), false),
            rule("n", ArgType::Number, None, false),
            rule("s", ArgType::String, Some("\"dflt\""), false),
            rule("o", ArgType::Object, None, false),
        ];
        let cases = [
            // declared order, undeclared dropped, defaults filled
            (r#"{"zz":1,"n":1.5}"#, r#"{"i":7,"n":1.5,"s":"dflt"}"#),
            // strings coerced to the declared scalar type
            (r#"{"b":"true","i":"42","n":"2.5"}"#, r#"{"b":true,"i":42,"n":2.5,"s":"dflt"}"#),
            // Go's int(float64) truncates
            (r#"{"i":3.9}"#, r#"{"i":3,"s":"dflt"}"#),
            (r#"{"i":-3.9}"#, r#"{"i":-3,"s":"dflt"}"#),
            // a given value beats the default, even null; objects are copied
            (r#"{"s":null,"o":{"a":[1]}}"#, r#"{"i":7,"s":null,"o":{"a":[1]}}"#),
        ];
        for (args, want) in cases {
            assert_eq!(normalized(&rules, args).unwrap(), want, "{args}");
        }
    }

    #[test]
    fn values_of_another_type_are_refused_naming_the_argument() {
        let rules = [
            rule("b", ArgType::Boolean, None, false),
            rule("i", ArgType::Integer, None, false),
            rule("n", ArgType::Number, None, false),
            rule("s", ArgType::String, None, false),
            rule("a", ArgType::Array, None, false),
            rule("o", ArgType::Object, None, false),
        ];
        let refused = [
            (r#"{"b":"yes"}"#, "b must be a boolean"),
            (r#"{"b":1}"#, "b must be a boolean"),
            (r#"{"i":"x"}"#, "i must be an integer"),
            (r#"{"i":"4.5"}"#, "i must be an integer"),
            (r#"{"i":true}"#, "i must be an integer"),
            (r#"{"n":"NaN"}"#, "n must be a number"),
            (r#"{"n":"1e999"}"#, "n must be a number"),
            (r#"{"n":[1]}"#, "n must be a number"),
            (r#"{"s":5}"#, "s must be a string"),
            (r#"{"s":{"x":1}}"#, "s must be a string"),
            (r#"{"a":"[1]"}"#, "a must be an array"),
            (r#"{"o":[]}"#, "o must be an object"),
        ];
        for (args, why) in refused {
            assert_eq!(
                normalized(&rules, args),
                Err(ArgError::Type(format!("Invalid arguments: {why}"))),
                "{args}"
            );
        }
        let accepted = [
            (r#"{"n":5}"#, r#"{"n":5}"#),
            (r#"{"n":"5000"}"#, r#"{"n":5000}"#),
            (r#"{"i":"5000"}"#, r#"{"i":5000}"#),
            (r#"{"a":[1,"x"],"o":{"k":null}}"#, r#"{"a":[1,"x"],"o":{"k":null}}"#),
            (r#"{"b":null,"s":null}"#, r#"{"b":null,"s":null}"#),
        ];
        for (args, want) in accepted {
            assert_eq!(normalized(&rules, args).unwrap(), want, "{args}");
        }
    }

    #[test]
    fn required_arguments_are_enforced_after_defaults() {
        let rules =
            [rule("city", ArgType::String, None, true), rule("days", ArgType::Integer, Some("3"), true)];
        assert_eq!(
            normalized(&rules, "{}").unwrap_err(),
            ArgError::Missing(ToolError("missing required argument: city".into()))
        );
        assert_eq!(normalized(&rules, r#"{"city":"Oslo"}"#).unwrap(), r#"{"city":"Oslo","days":3}"#);
    }
}
