//! Runtime values: borrowed views over the arguments tape and serde values, plus the few owned
//! kinds functions produce. Truth, comparison, text output and JSON output are defined here so
//! every action and function agrees on them.

use std::cmp::Ordering;
use std::rc::Rc;

use serde_json::Value as Json;
use simd_json::{Node as TNode, StaticNode};

use super::gofmt;
use crate::mcp::json::value_len;

/// What the root of a template reads.
#[derive(Clone, Copy)]
pub(super) struct Cx<'r> {
    pub args: Option<&'r [TNode<'r>]>,
    pub config: Option<&'r Json>,
    pub data: Option<&'r Json>,
    pub client: super::common::Client<'r>,
}

impl<'r> Cx<'r> {
    /// `.` at the root, as a plain value: the data.
    pub fn data_val(&self) -> Val<'r> {
        self.data.map_or(Val::Missing, Val::from_json)
    }
}

/// A value during rendering. Cloning is cheap (no allocation): containers are borrowed slices
/// or reference-counted.
#[derive(Clone, Debug, Default)]
pub(super) enum Val<'r> {
    /// No such value (missing key, out of range, no data). Renders empty.
    #[default]
    Missing,
    /// JSON `null` or template `nil`. Renders empty.
    Null,
    Bool(bool),
    Int(i64),
    /// Integers above `i64::MAX` from JSON.
    Uint(u64),
    Float(f64),
    Str(&'r str),
    /// A string a function produced.
    Owned(Rc<str>),
    /// An array or object on the arguments tape.
    Tape(&'r [TNode<'r>]),
    /// An array or object of the config or data.
    Json(&'r Json),
    /// A list a function produced (`list`, `splitList`, `slice`) and how deeply lists nest in
    /// it (capped, so dropping a list built in a loop cannot recurse without bound).
    List(Rc<[Val<'r>]>, u32),
    /// The root (`$`, or `.` outside `with`/`range`): `.args` and `.config` resolve into the
    /// context, anything else into the data.
    Root,
}

/// A number of any width.
#[derive(Clone, Copy, Debug)]
pub(super) enum Num {
    I(i64),
    U(u64),
    F(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            Num::I(i) => i as f64,
            Num::U(u) => u as f64,
            Num::F(f) => f,
        }
    }

    pub fn cmp(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::I(a), Num::I(b)) => Some(a.cmp(&b)),
            (Num::U(a), Num::U(b)) => Some(a.cmp(&b)),
            (Num::I(a), Num::U(b)) => Some(i128::from(a).cmp(&i128::from(b))),
            (Num::U(a), Num::I(b)) => Some(i128::from(a).cmp(&i128::from(b))),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }
}

impl<'r> Val<'r> {
    /// The value at `t[0]` on the tape.
    pub fn from_tape(t: &'r [TNode<'r>]) -> Val<'r> {
        match t.first() {
            None => Val::Missing,
            Some(TNode::String(s)) => Val::Str(s),
            Some(TNode::Static(s)) => match *s {
                StaticNode::Null => Val::Null,
                StaticNode::Bool(b) => Val::Bool(b),
                StaticNode::I64(i) => Val::Int(i),
                StaticNode::U64(u) => i64::try_from(u).map_or(Val::Uint(u), Val::Int),
                StaticNode::F64(f) => Val::Float(f),
                #[allow(unreachable_patterns)]
                _ => Val::Null,
            },
            Some(TNode::Array { .. } | TNode::Object { .. }) => Val::Tape(&t[..value_len(t).min(t.len())]),
        }
    }

    /// A config or data value.
    pub fn from_json(j: &'r Json) -> Val<'r> {
        match j {
            Json::Null => Val::Null,
            Json::Bool(b) => Val::Bool(*b),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Val::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Val::Uint(u)
                } else {
                    Val::Float(n.as_f64().unwrap_or(0.0))
                }
            }
            Json::String(s) => Val::Str(s),
            Json::Array(_) | Json::Object(_) => Val::Json(j),
        }
    }

    /// The string, when the value is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            Val::Owned(s) => Some(s),
            _ => None,
        }
    }

    /// Missing or null.
    pub fn is_nil(&self) -> bool {
        matches!(self, Val::Missing | Val::Null)
    }

    pub fn num(&self) -> Option<Num> {
        match *self {
            Val::Int(i) => Some(Num::I(i)),
            Val::Uint(u) => Some(Num::U(u)),
            Val::Float(f) => Some(Num::F(f)),
            _ => None,
        }
    }

    /// An integer value: integers, and floats with no fraction (how Higress passes numbers).
    pub fn int(&self) -> Option<i64> {
        match *self {
            Val::Int(i) => Some(i),
            Val::Uint(u) => i64::try_from(u).ok(),
            Val::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(f as i64),
            _ => None,
        }
    }

    pub fn is_array(&self) -> bool {
        match self {
            Val::Tape(t) => matches!(t.first(), Some(TNode::Array { .. })),
            Val::Json(j) => j.is_array(),
            Val::List(..) => true,
            _ => false,
        }
    }

    pub fn is_object(&self) -> bool {
        match self {
            Val::Tape(t) => matches!(t.first(), Some(TNode::Object { .. })),
            Val::Json(j) => j.is_object(),
            _ => false,
        }
    }

    /// Number of elements or entries of a container.
    pub fn container_len(&self) -> Option<usize> {
        match self {
            Val::Tape(t) => match t.first() {
                Some(TNode::Array { len, .. } | TNode::Object { len, .. }) => Some(*len),
                _ => None,
            },
            Val::Json(Json::Array(a)) => Some(a.len()),
            Val::Json(Json::Object(o)) => Some(o.len()),
            Val::List(l, _) => Some(l.len()),
            _ => None,
        }
    }

    /// Go's truth: false, 0, "", null/missing, empty array or object are false.
    pub fn truth(&self, cx: &Cx<'r>) -> bool {
        match self {
            Val::Missing | Val::Null => false,
            Val::Bool(b) => *b,
            Val::Int(i) => *i != 0,
            Val::Uint(u) => *u != 0,
            Val::Float(f) => *f != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::Owned(s) => !s.is_empty(),
            Val::Tape(_) | Val::Json(_) | Val::List(..) => self.container_len().is_some_and(|n| n > 0),
            Val::Root => cx.data_val().truth(cx),
        }
    }

    /// A short name of the kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Val::Missing => "missing value",
            Val::Null => "null",
            Val::Bool(_) => "boolean",
            Val::Int(_) | Val::Uint(_) | Val::Float(_) => "number",
            Val::Str(_) | Val::Owned(_) => "string",
            Val::List(..) => "array",
            Val::Root => "object",
            v if v.is_array() => "array",
            _ => "object",
        }
    }
}

/// Deepest nesting of lists built by functions (`list (list ...)` in a loop).
pub(super) const MAX_LIST_DEPTH: u32 = 64;

/// A list of `items`, or `None` when it would nest lists deeper than [`MAX_LIST_DEPTH`].
pub(super) fn list<'r>(items: Rc<[Val<'r>]>) -> Option<Val<'r>> {
    let depth = 1 + items.iter().map(|v| if let Val::List(_, d) = v { *d } else { 0 }).max().unwrap_or(0);
    (depth <= MAX_LIST_DEPTH).then_some(Val::List(items, depth))
}

/// Scans the entries of a tape object for `key` (first occurrence, as the rest of the gateway
/// reads arguments). Returns the value and the number of entries scanned.
pub(super) fn tape_get<'r>(t: &'r [TNode<'r>], key: &str) -> (Option<&'r [TNode<'r>]>, usize) {
    let mut scanned = 0;
    for (k, v) in crate::mcp::json::entries(t) {
        scanned += 1;
        if k == key {
            return (Some(v), scanned);
        }
    }
    (None, scanned)
}

/// Element `i` of a tape array (skipping is one addition per element).
pub(super) fn tape_index<'r>(t: &'r [TNode<'r>], i: usize) -> Option<&'r [TNode<'r>]> {
    crate::mcp::json::elements(t).nth(i)
}

/// Element `i` of any array value.
pub(super) fn index<'r>(v: &Val<'r>, i: usize) -> Val<'r> {
    match v {
        Val::Tape(t) if v.is_array() => tape_index(t, i).map_or(Val::Missing, Val::from_tape),
        Val::Json(Json::Array(a)) => a.get(i).map_or(Val::Missing, Val::from_json),
        Val::List(l, _) => l.get(i).cloned().unwrap_or_default(),
        _ => Val::Missing,
    }
}

/// Equality as `eq` defines it; `Err` for kinds Go cannot compare.
pub(super) fn equal(a: &Val<'_>, b: &Val<'_>) -> Result<bool, String> {
    if a.is_nil() || b.is_nil() {
        return Ok(a.is_nil() && b.is_nil());
    }
    if let (Some(x), Some(y)) = (a.num(), b.num()) {
        return Ok(x.cmp(y) == Some(Ordering::Equal));
    }
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        return Ok(x == y);
    }
    // Higress compares a number with a numeric string by value.
    let mixed = match (a.num(), b.as_str(), a.as_str(), b.num()) {
        (Some(n), Some(s), _, _) | (_, _, Some(s), Some(n)) => Some((n, s)),
        _ => None,
    };
    if let Some((n, s)) = mixed {
        return Ok(s.trim().parse::<f64>().is_ok_and(|f| n.cmp(Num::F(f)) == Some(Ordering::Equal)));
    }
    match (a, b) {
        (Val::Bool(x), Val::Bool(y)) => Ok(x == y),
        (x, y)
            if x.container_len().is_some()
                || y.container_len().is_some()
                || matches!(x, Val::Root)
                || matches!(y, Val::Root) =>
        {
            Err(format!("incomparable types for eq: {} and {}", x.kind(), y.kind()))
        }
        (x, y) => Err(format!("incompatible types for comparison: {} and {}", x.kind(), y.kind())),
    }
}

/// Ordering for `lt`/`le`/`gt`/`ge`: numbers numerically, strings bytewise, else an error.
pub(super) fn order(a: &Val<'_>, b: &Val<'_>) -> Result<Ordering, String> {
    if let (Some(x), Some(y)) = (a.num(), b.num()) {
        return x.cmp(y).ok_or_else(|| "cannot compare NaN".to_string());
    }
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        return Ok(x.as_bytes().cmp(y.as_bytes()));
    }
    let basic = |v: &Val<'_>| v.num().is_some() || v.as_str().is_some();
    if basic(a) && basic(b) {
        Err(format!("incompatible types for comparison: {} and {}", a.kind(), b.kind()))
    } else {
        Err(format!("invalid type for comparison: {} and {}", a.kind(), b.kind()))
    }
}

/// Why writing a value stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WriteErr {
    /// Nested deeper than [`MAX_JSON_DEPTH`].
    Deep,
    /// The buffer passed its limit (a list built by sharing can be exponentially large, so
    /// this is checked while writing, not after).
    Large,
}

/// How JSON is written.
#[derive(Clone, Copy, Debug)]
pub(super) struct JsonMode {
    /// Escape `<`, `>` and `&` as Go's `json.Marshal` does (`toJson`); `toRawJson` does not.
    pub html: bool,
    /// Two-space indentation (`toPrettyJson`).
    pub pretty: bool,
}

impl JsonMode {
    pub const RAW: JsonMode = JsonMode { html: false, pretty: false };
}

/// Appends `s` as a JSON string literal the way Go's encoder does (`\b \f \n \r \t`, other
/// controls as `\u00XX`, U+2028/U+2029 escaped, `<>&` when `html`).
pub(super) fn write_json_str(out: &mut Vec<u8>, s: &str, html: bool) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            b'<' if html => b"\\u003c",
            b'>' if html => b"\\u003e",
            b'&' if html => b"\\u0026",
            0xE2 if bytes.get(i + 1) == Some(&0x80) && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9)) => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(if bytes[i + 2] == 0xA8 { b"\\u2028" } else { b"\\u2029" });
                i += 3;
                start = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn newline(out: &mut Vec<u8>, level: usize) {
    out.push(b'\n');
    out.resize(out.len() + 2 * level, b' ');
}

fn write_static(out: &mut Vec<u8>, s: &StaticNode) {
    match *s {
        StaticNode::F64(f) => gofmt::write_float_json(out, f),
        ref other => crate::mcp::json::write_static(out, other),
    }
}

/// One open container while writing a tape value.
#[derive(Clone, Copy, Default)]
struct Frame {
    left: usize,
    obj: bool,
    first: bool,
}

/// Writes a tape value iteratively (client nesting can be 100,000 deep); frames live on the
/// stack up to 32 levels, deeper ones spill to the heap.
fn write_tape(
    out: &mut Vec<u8>,
    v: &[TNode<'_>],
    mode: JsonMode,
    base: usize,
    limit: usize,
) -> Result<(), WriteErr> {
    let mut inline = [Frame::default(); 32];
    let mut spill: Vec<Frame> = Vec::new();
    let mut depth = 0usize;
    let end = value_len(v).min(v.len());
    let mut pos = 0usize;
    loop {
        if out.len() > limit {
            return Err(WriteErr::Large);
        }
        let Some(node) = v.get(pos) else { return Ok(()) };
        pos += 1;
        match node {
            TNode::String(s) => write_json_str(out, s, mode.html),
            TNode::Static(s) => write_static(out, s),
            TNode::Object { len, .. } | TNode::Array { len, .. } => {
                let obj = matches!(node, TNode::Object { .. });
                if *len == 0 {
                    out.extend_from_slice(if obj { b"{}" } else { b"[]" });
                } else {
                    out.push(if obj { b'{' } else { b'[' });
                    let f = Frame { left: *len, obj, first: true };
                    if depth < inline.len() {
                        inline[depth] = f;
                    } else {
                        spill.push(f);
                    }
                    depth += 1;
                }
            }
        }
        // Close finished containers, then start the next element.
        loop {
            if depth == 0 {
                return Ok(());
            }
            let top = if depth <= inline.len() {
                &mut inline[depth - 1]
            } else {
                spill.last_mut().unwrap_or(&mut inline[0])
            };
            if top.left == 0 {
                let close = if top.obj { b'}' } else { b']' };
                if depth > inline.len() {
                    spill.pop();
                }
                depth -= 1;
                if mode.pretty {
                    newline(out, base + depth);
                }
                out.push(close);
                continue;
            }
            if !top.first {
                out.push(b',');
            }
            top.first = false;
            top.left -= 1;
            let obj = top.obj;
            if mode.pretty {
                newline(out, base + depth);
            }
            if obj {
                match v.get(pos) {
                    Some(TNode::String(k)) => write_json_str(out, k, mode.html),
                    _ => return Ok(()),
                }
                out.extend_from_slice(if mode.pretty { b": " } else { b":" });
                pos += 1;
            }
            break;
        }
        if pos >= end {
            return Ok(());
        }
    }
}

/// Config and data values come from serde parsers whose recursion limit is 128; this guard
/// keeps a hand-built deep value from overflowing the stack.
const MAX_JSON_DEPTH: usize = 512;

fn write_serde(
    out: &mut Vec<u8>,
    j: &Json,
    mode: JsonMode,
    level: usize,
    limit: usize,
) -> Result<(), WriteErr> {
    if level > MAX_JSON_DEPTH {
        return Err(WriteErr::Deep);
    }
    if out.len() > limit {
        return Err(WriteErr::Large);
    }
    match j {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                crate::mcp::json::write_i64(out, i);
            } else if let Some(u) = n.as_u64() {
                crate::http::response::write_u64(out, u);
            } else {
                gofmt::write_float_json(out, n.as_f64().unwrap_or(0.0));
            }
        }
        Json::String(s) => write_json_str(out, s, mode.html),
        Json::Array(a) => {
            if a.is_empty() {
                out.extend_from_slice(b"[]");
                return Ok(());
            }
            out.push(b'[');
            for (i, el) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if mode.pretty {
                    newline(out, level + 1);
                }
                write_serde(out, el, mode, level + 1, limit)?;
            }
            if mode.pretty {
                newline(out, level);
            }
            out.push(b']');
        }
        Json::Object(m) => {
            if m.is_empty() {
                out.extend_from_slice(b"{}");
                return Ok(());
            }
            out.push(b'{');
            for (i, (k, el)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if mode.pretty {
                    newline(out, level + 1);
                }
                write_json_str(out, k, mode.html);
                out.extend_from_slice(if mode.pretty { b": " } else { b":" });
                write_serde(out, el, mode, level + 1, limit)?;
            }
            if mode.pretty {
                newline(out, level);
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Appends `v` as JSON.
pub(super) fn write_json(
    out: &mut Vec<u8>,
    v: &Val<'_>,
    cx: &Cx<'_>,
    mode: JsonMode,
    level: usize,
    limit: usize,
) -> Result<(), WriteErr> {
    if level > MAX_JSON_DEPTH {
        return Err(WriteErr::Deep);
    }
    if out.len() > limit {
        return Err(WriteErr::Large);
    }
    match v {
        Val::Missing | Val::Null => out.extend_from_slice(b"null"),
        Val::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Val::Int(i) => crate::mcp::json::write_i64(out, *i),
        Val::Uint(u) => crate::http::response::write_u64(out, *u),
        Val::Float(f) => gofmt::write_float_json(out, *f),
        Val::Str(s) => write_json_str(out, s, mode.html),
        Val::Owned(s) => write_json_str(out, s, mode.html),
        Val::Tape(t) => write_tape(out, t, mode, level, limit)?,
        Val::Json(j) => write_serde(out, j, mode, level, limit)?,
        Val::List(l, _) => {
            if l.is_empty() {
                out.extend_from_slice(b"[]");
                return Ok(());
            }
            out.push(b'[');
            for (i, el) in l.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if mode.pretty {
                    newline(out, level + 1);
                }
                write_json(out, el, cx, mode, level + 1, limit)?;
            }
            if mode.pretty {
                newline(out, level);
            }
            out.push(b']');
        }
        Val::Root => match cx.data {
            Some(d) => write_serde(out, d, mode, level, limit)?,
            None => out.extend_from_slice(b"null"),
        },
    }
    Ok(())
}

/// Appends the text form of `v`: strings raw, numbers as JSON text, booleans, containers as
/// compact JSON, missing and null as nothing.
pub(super) fn write_text(out: &mut Vec<u8>, v: &Val<'_>, cx: &Cx<'_>, limit: usize) -> Result<(), WriteErr> {
    match v {
        Val::Missing | Val::Null => {}
        Val::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Val::Int(i) => crate::mcp::json::write_i64(out, *i),
        Val::Uint(u) => crate::http::response::write_u64(out, *u),
        Val::Float(f) => gofmt::write_float_text(out, *f),
        Val::Str(s) => out.extend_from_slice(s.as_bytes()),
        Val::Owned(s) => out.extend_from_slice(s.as_bytes()),
        Val::Tape(_) | Val::Json(_) | Val::List(..) => write_json(out, v, cx, JsonMode::RAW, 0, limit)?,
        Val::Root => write_text(out, &cx.data_val(), cx, limit)?,
    }
    Ok(())
}
