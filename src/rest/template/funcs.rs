//! The implementations of the function table (`func`). Functions that produce text write it
//! straight into the output when they are the last command of a printing action, and build an
//! owned string only when their result feeds another command.

use std::rc::Rc;

use serde_json::Value as Json;

use super::common::{RenderError, MAX_OUTPUT};
use super::func::*;
use super::gofmt::{self, PArg};
use super::render::{Ev, SCAN_COST};
use super::text::*;
use super::value::{self, JsonMode, Val};

/// `strconv.ParseInt(s, 0, 64)`: sign, `0x`/`0o`/`0b`/leading-`0` octal, `_` with a prefix.
fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    let digits = if prefixed { digits.replace('_', "") } else { digits };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let u = u64::from_str_radix(&digits, radix).ok()?;
    let v = if neg { 0i128 - i128::from(u) } else { i128::from(u) };
    i64::try_from(v).ok()
}

/// `cast.ToInt64` (what sprig's `int`, `add`, `sub`... apply): failures are 0.
pub(super) fn to_i64(v: &Val<'_>) -> i64 {
    match v {
        Val::Bool(b) => i64::from(*b),
        Val::Int(i) => *i,
        Val::Uint(u) => *u as i64,
        Val::Float(f) => *f as i64,
        Val::Str(_) | Val::Owned(_) => {
            let s = v.as_str().unwrap_or("");
            // cast trims a zero fraction ("12.00") before parsing.
            let s = match s.split_once('.') {
                Some((int, frac)) if !frac.is_empty() && frac.bytes().all(|b| b == b'0') => int,
                _ => s,
            };
            parse_go_int(s).unwrap_or(0)
        }
        _ => 0,
    }
}

/// `cast.ToFloat64`: failures are 0.
fn to_f64(v: &Val<'_>) -> f64 {
    match v {
        Val::Bool(b) => f64::from(u8::from(*b)),
        Val::Int(i) => *i as f64,
        Val::Uint(u) => *u as f64,
        Val::Float(f) => *f,
        Val::Str(_) | Val::Owned(_) => v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0.0),
        _ => 0.0,
    }
}

/// An integer argument where Go's signature wants `int`.
pub(super) fn int_arg(v: &Val<'_>, what: &str) -> Result<i64, Fail> {
    match v.int() {
        Some(i) => Ok(i),
        None => fail(format!("{what} must be an integer, not {}", v.kind())),
    }
}

impl<'r> Ev<'r, '_> {
    /// The text of `v`: borrowed when it is a string, else rendered into `tmp`.
    pub(super) fn text<'a>(&mut self, v: &'a Val<'r>, tmp: &'a mut Vec<u8>) -> Result<&'a str, Fail> {
        if let Some(s) = v.as_str() {
            self.charge(s.len())?;
            return Ok(s);
        }
        tmp.clear();
        value::write_text(tmp, v, &self.cx, MAX_OUTPUT).map_err(werr)?;
        if tmp.len() > MAX_OUTPUT {
            return Err(RenderError::OutputTooLarge.into());
        }
        self.charge(tmp.len())?;
        std::str::from_utf8(tmp).map_err(|_| Fail::Msg("value is not UTF-8".into()))
    }

    /// Runs a text-producing function: into `out` when given (checked against the output
    /// cap), else into a new string value.
    pub(super) fn emit(
        &mut self,
        out: Option<&mut Vec<u8>>,
        w: impl FnOnce(&mut Self, &mut Vec<u8>, usize) -> Result<(), Fail>,
    ) -> Result<Ret<'r>, Fail> {
        match out {
            Some(o) => {
                let (start, limit) = (o.len(), self.limit);
                w(self, o, limit)?;
                self.wrote(o, start, limit)?;
                Ok(Ret::Wrote)
            }
            None => {
                let mut buf = Vec::new();
                w(self, &mut buf, MAX_OUTPUT)?;
                self.wrote(&buf, 0, MAX_OUTPUT)?;
                let s = String::from_utf8(buf).map_err(|_| Fail::Msg("produced invalid UTF-8".into()))?;
                Ok(Ret::Val(Val::Owned(Rc::from(s))))
            }
        }
    }

    /// Go's `fmt.Sprint`: operands' text, a space between two operands when neither is a
    /// string.
    fn sprint(
        &mut self,
        o: &mut Vec<u8>,
        a: &[Val<'r>],
        always_space: bool,
        limit: usize,
    ) -> Result<(), Fail> {
        let mut prev_string = false;
        for (i, v) in a.iter().enumerate() {
            let is_string = v.as_str().is_some();
            if i > 0 && (always_space || (!is_string && !prev_string)) {
                o.push(b' ');
            }
            let start = o.len();
            value::write_text(o, v, &self.cx, limit).map_err(werr)?;
            self.charge(o.len() - start)?;
            prev_string = is_string;
        }
        Ok(())
    }

    /// The elements of an array value.
    fn elements(&mut self, v: &Val<'r>) -> Result<Vec<Val<'r>>, Fail> {
        let out: Vec<Val<'r>> = match v {
            Val::Tape(t) => crate::mcp::json::elements(t).map(Val::from_tape).collect(),
            Val::Json(Json::Array(a)) => a.iter().map(Val::from_json).collect(),
            Val::List(l, _) => l.to_vec(),
            _ => return fail(format!("{} is not an array", v.kind())),
        };
        self.charge(out.len() * SCAN_COST)?;
        Ok(out)
    }

    /// Looks `key` up in an object value (missing when absent).
    fn lookup(&mut self, obj: &Val<'r>, key: &str) -> Result<Option<Val<'r>>, Fail> {
        Ok(match obj {
            Val::Tape(t) if obj.is_object() => {
                let (found, scanned) = value::tape_get(t, key);
                self.charge(scanned * SCAN_COST)?;
                found.map(Val::from_tape)
            }
            Val::Json(Json::Object(m)) => m.get(key).map(Val::from_json),
            _ => return fail(format!("cannot look up a key in {}", obj.kind())),
        })
    }

    fn json(&mut self, out: Option<&mut Vec<u8>>, v: &Val<'r>, mode: JsonMode) -> Result<Ret<'r>, Fail> {
        self.emit(out, |ev, o, limit| value::write_json(o, v, &ev.cx, mode, 0, limit).map_err(werr))
    }

    /// A function over one string producing text.
    fn map_text(
        &mut self,
        out: Option<&mut Vec<u8>>,
        v: &Val<'r>,
        f: impl FnOnce(&mut Vec<u8>, &str),
    ) -> Result<Ret<'r>, Fail> {
        let mut tmp = Vec::new();
        self.emit(out, |ev, o, _| {
            let s = ev.text(v, &mut tmp)?;
            f(o, s);
            Ok(())
        })
    }

    /// Applies `f` to evaluated arguments `a` (arity already checked at compile time).
    pub(super) fn apply(
        &mut self,
        f: Func,
        a: &[Val<'r>],
        out: Option<&mut Vec<u8>>,
    ) -> Result<Ret<'r>, Fail> {
        // Borrowed: cloning the arguments on every call costs more than the common functions.
        let arg = |i: usize| a.get(i).unwrap_or(&MISSING);
        let (a0, a1, a2) = (arg(0), arg(1), arg(2));
        let val = |v: Val<'r>| Ok(Ret::Val(v));
        match f {
            // Handled lazily by the caller; kept total here.
            Func::And => val(a.iter().find(|v| !v.truth(&self.cx)).or(a.last()).cloned().unwrap_or_default()),
            Func::Or => val(a.iter().find(|v| v.truth(&self.cx)).or(a.last()).cloned().unwrap_or_default()),
            Func::Not => val(Val::Bool(!a0.truth(&self.cx))),
            Func::Len => match a0 {
                Val::Missing | Val::Null => val(Val::Int(0)),
                v => match v.as_str().map(str::len).or_else(|| v.container_len()) {
                    Some(n) => val(Val::Int(n as i64)),
                    None => fail(format!("len of {}", v.kind())),
                },
            },
            Func::Index => {
                let mut v = a0.clone();
                for k in a.iter().skip(1) {
                    v = self.index(v, k)?;
                }
                val(v)
            }
            Func::Slice => self.slice(a0, &a[1..], out),
            Func::Print => self.emit(out, |ev, o, limit| ev.sprint(o, a, false, limit)),
            Func::Println => self.emit(out, |ev, o, limit| {
                ev.sprint(o, a, true, limit)?;
                o.push(b'\n');
                Ok(())
            }),
            Func::Printf => self.printf(a, out),
            Func::Urlquery | Func::Html | Func::Js => {
                let mut joined = Vec::new();
                let s: &str = match a {
                    [v] if v.as_str().is_some() => v.as_str().unwrap_or(""),
                    _ => {
                        self.sprint(&mut joined, a, false, MAX_OUTPUT)?;
                        std::str::from_utf8(&joined).unwrap_or("")
                    }
                };
                self.emit(out, |ev, o, _| {
                    ev.charge(s.len())?;
                    match f {
                        Func::Urlquery => query_escape(o, s),
                        Func::Html => gofmt::html_escape(o, s),
                        _ => gofmt::js_escape(o, s),
                    }
                    Ok(())
                })
            }
            Func::Eq => {
                for b in a.iter().skip(1) {
                    if value::equal(a0, b).map_err(Fail::Msg)? {
                        return val(Val::Bool(true));
                    }
                }
                val(Val::Bool(false))
            }
            Func::Ne => val(Val::Bool(!value::equal(a0, a1).map_err(Fail::Msg)?)),
            Func::Lt | Func::Le | Func::Gt | Func::Ge => {
                use std::cmp::Ordering::*;
                let o = value::order(a0, a1).map_err(Fail::Msg)?;
                val(Val::Bool(match f {
                    Func::Lt => o == Less,
                    Func::Le => o != Greater,
                    Func::Gt => o == Greater,
                    _ => o != Less,
                }))
            }
            Func::Default => val(if a.len() >= 2 && a1.truth(&self.cx) { a1 } else { a0 }.clone()),
            Func::Empty => val(Val::Bool(!a0.truth(&self.cx))),
            Func::Coalesce => val(a.iter().find(|v| v.truth(&self.cx)).cloned().unwrap_or_default()),
            Func::Ternary => val(if a2.truth(&self.cx) { a0 } else { a1 }.clone()),
            Func::All => val(Val::Bool(a.iter().all(|v| v.truth(&self.cx)))),
            Func::Any => val(Val::Bool(a.iter().any(|v| v.truth(&self.cx)))),
            Func::Fail => {
                let mut tmp = Vec::new();
                let msg = self.text(a0, &mut tmp)?.to_string();
                fail(msg)
            }
            Func::ToJson => self.json(out, a0, JsonMode { html: true, pretty: false }),
            Func::ToPrettyJson => self.json(out, a0, JsonMode { html: true, pretty: true }),
            Func::ToRawJson => self.json(out, a0, JsonMode::RAW),
            Func::ToString => match a0 {
                v @ (Val::Str(_) | Val::Owned(_)) => val(v.clone()),
                v => self.map_text(out, v, |o, s| o.extend_from_slice(s.as_bytes())),
            },
            Func::Upper | Func::Lower => {
                let upper = f == Func::Upper;
                self.map_text(out, a0, |o, s| {
                    for c in s.chars() {
                        map_case(o, c, upper);
                    }
                })
            }
            Func::Title | Func::Untitle => {
                let title = f == Func::Title;
                self.map_text(out, a0, |o, s| {
                    let mut start = true;
                    for c in s.chars() {
                        if start && !(if title { is_separator(c) } else { c.is_whitespace() }) {
                            map_case(o, c, title);
                        } else {
                            let mut b = [0; 4];
                            o.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                        }
                        start = if title { is_separator(c) } else { c.is_whitespace() };
                    }
                })
            }
            Func::Trim => self.map_text(out, a0, |o, s| o.extend_from_slice(s.trim().as_bytes())),
            Func::Nospace => self.map_text(out, a0, |o, s| {
                for c in s.chars().filter(|c| !c.is_whitespace()) {
                    let mut b = [0; 4];
                    o.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                }
            }),
            Func::B64enc => self.map_text(out, a0, |o, s| base64_simd::STANDARD.encode_append(s, o)),
            Func::Sha256sum => self.map_text(out, a0, |o, s| {
                let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
                for b in d.as_ref() {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    o.push(HEX[usize::from(b >> 4)]);
                    o.push(HEX[usize::from(b & 0xf)]);
                }
            }),
            Func::B64dec => {
                let mut tmp = Vec::new();
                self.emit(out, |ev, o, _| {
                    let s = ev.text(a0, &mut tmp)?;
                    let start = o.len();
                    if base64_simd::STANDARD.decode_append(s, o).is_err() {
                        o.truncate(start);
                        return fail("illegal base64 data");
                    }
                    if std::str::from_utf8(&o[start..]).is_err() {
                        o.truncate(start);
                        return fail("decoded bytes are not UTF-8 text");
                    }
                    Ok(())
                })
            }
            Func::TrimAll | Func::TrimPrefix | Func::TrimSuffix => {
                let (mut t0, mut t1) = (Vec::new(), Vec::new());
                self.emit(out, |ev, o, _| {
                    let cut = ev.text(a0, &mut t0)?;
                    let s = ev.text(a1, &mut t1)?;
                    let r = match f {
                        Func::TrimAll => s.trim_matches(|c| cut.contains(c)),
                        Func::TrimPrefix => s.strip_prefix(cut).unwrap_or(s),
                        _ => s.strip_suffix(cut).unwrap_or(s),
                    };
                    o.extend_from_slice(r.as_bytes());
                    Ok(())
                })
            }
            Func::Contains | Func::HasPrefix | Func::HasSuffix => {
                let (mut t0, mut t1) = (Vec::new(), Vec::new());
                let needle = self.text(a0, &mut t0)?;
                let s = self.text(a1, &mut t1)?;
                val(Val::Bool(match f {
                    Func::Contains => s.contains(needle),
                    Func::HasPrefix => s.starts_with(needle),
                    _ => s.ends_with(needle),
                }))
            }
            Func::Replace => {
                let (mut t0, mut t1, mut t2) = (Vec::new(), Vec::new(), Vec::new());
                self.emit(out, |ev, o, limit| {
                    let old = ev.text(a0, &mut t0)?;
                    let new = ev.text(a1, &mut t1)?;
                    let src = ev.text(a2, &mut t2)?;
                    replace(o, src, old, new, limit)
                })
            }
            Func::Repeat => {
                let n = int_arg(a0, "count")?;
                let Ok(n) = usize::try_from(n) else { return fail("negative repeat count") };
                let mut tmp = Vec::new();
                self.emit(out, |ev, o, limit| {
                    let s = ev.text(a1, &mut tmp)?;
                    if s.len().saturating_mul(n) > limit.saturating_sub(o.len()) {
                        return Err(RenderError::OutputTooLarge.into());
                    }
                    for _ in 0..n {
                        o.extend_from_slice(s.as_bytes());
                    }
                    Ok(())
                })
            }
            Func::Substr => {
                let (start, end) = (int_arg(a0, "start")?, int_arg(a1, "end")?);
                let mut tmp = Vec::new();
                self.emit(out, |ev, o, _| {
                    let s = ev.text(a2, &mut tmp)?;
                    let len = s.len() as i64;
                    // sprig: start < 0 takes s[:end]; end < 0 or past the end takes s[start:].
                    let (lo, hi) = if start < 0 {
                        (0, end)
                    } else if end < 0 || end > len {
                        (start, len)
                    } else {
                        (start, end)
                    };
                    if lo < 0 || hi < lo || hi > len {
                        return fail(format!("slice bounds out of range [{lo}:{hi}] with length {len}"));
                    }
                    let (lo, hi) = (floor_boundary(s, lo as usize), floor_boundary(s, hi as usize));
                    o.extend_from_slice(&s.as_bytes()[lo..hi]);
                    Ok(())
                })
            }
            Func::Trunc => {
                let n = int_arg(a0, "length")?;
                let mut tmp = Vec::new();
                self.emit(out, |ev, o, _| {
                    let s = ev.text(a1, &mut tmp)?;
                    let len = s.len() as i64;
                    let r = if n < 0 && len + n > 0 {
                        let from = (len + n) as usize;
                        let mut i = from;
                        while !s.is_char_boundary(i) {
                            i += 1;
                        }
                        &s[i..]
                    } else if n >= 0 && len > n {
                        &s[..floor_boundary(s, n as usize)]
                    } else {
                        s
                    };
                    o.extend_from_slice(r.as_bytes());
                    Ok(())
                })
            }
            Func::Indent | Func::Nindent => {
                let n = int_arg(a0, "width")?;
                let Ok(n) = usize::try_from(n) else { return fail("negative indent") };
                let mut tmp = Vec::new();
                self.emit(out, |ev, o, limit| {
                    let s = ev.text(a1, &mut tmp)?;
                    let lines = s.bytes().filter(|&b| b == b'\n').count() + 1;
                    let need = lines.saturating_mul(n).saturating_add(s.len()).saturating_add(1);
                    if need > limit.saturating_sub(o.len()) {
                        return Err(RenderError::OutputTooLarge.into());
                    }
                    if f == Func::Nindent {
                        o.push(b'\n');
                    }
                    for (i, line) in s.split('\n').enumerate() {
                        if i > 0 {
                            o.push(b'\n');
                        }
                        o.resize(o.len() + n, b' ');
                        o.extend_from_slice(line.as_bytes());
                    }
                    Ok(())
                })
            }
            Func::Cat | Func::Quote | Func::Squote => {
                let mut tmp = Vec::new();
                self.emit(out, |ev, o, _| {
                    let mut first = true;
                    for v in a.iter().filter(|v| !v.is_nil()) {
                        if !first {
                            o.push(b' ');
                        }
                        first = false;
                        let s = ev.text(v, &mut tmp)?;
                        match f {
                            Func::Quote => gofmt::quote(o, s),
                            Func::Squote => {
                                o.push(b'\'');
                                o.extend_from_slice(s.as_bytes());
                                o.push(b'\'');
                            }
                            _ => o.extend_from_slice(s.as_bytes()),
                        }
                    }
                    Ok(())
                })
            }
            Func::Join => {
                // sprig's `join(sep string, list)`: a number is a type error in Go, and a
                // character constant such as ',' is a number there (Higress fails the call too).
                if a0.as_str().is_none() && !matches!(a0, Val::Missing | Val::Null) {
                    return fail(format!(
                        "the separator must be a string, not {} (a character constant such as ',' is a \
                         number in Go templates: write \",\")",
                        a0.kind()
                    ));
                }
                let items = match a1 {
                    Val::Missing | Val::Null => Vec::new(),
                    v if v.is_array() => self.elements(v)?,
                    v => vec![v.clone()],
                };
                let (mut t0, mut t1) = (Vec::new(), Vec::new());
                self.emit(out, |ev, o, limit| {
                    let sep = ev.text(a0, &mut t0)?;
                    let mut first = true;
                    for v in items.iter().filter(|v| !v.is_nil()) {
                        if !first {
                            o.extend_from_slice(sep.as_bytes());
                        }
                        first = false;
                        let s = ev.text(v, &mut t1)?;
                        o.extend_from_slice(s.as_bytes());
                        if o.len() > limit {
                            return Err(RenderError::OutputTooLarge.into());
                        }
                    }
                    Ok(())
                })
            }
            Func::SplitList => self.split_list(a0, a1),
            Func::List => {
                self.charge(a.len() * SCAN_COST)?;
                val(value::list(Rc::from(a)).ok_or_else(too_deep)?)
            }
            Func::First | Func::Last => {
                if !a0.is_array() {
                    return fail(format!("cannot find {} on {}", f.name(), a0.kind()));
                }
                let n = a0.container_len().unwrap_or(0);
                if n == 0 {
                    return val(Val::Missing);
                }
                let i = if f == Func::First { 0 } else { n - 1 };
                self.charge(i * SCAN_COST)?;
                val(value::index(a0, i))
            }
            Func::Has => match a1 {
                Val::Missing | Val::Null => val(Val::Bool(false)),
                v if v.is_array() => {
                    let items = self.elements(v)?;
                    val(Val::Bool(items.iter().any(|x| value::equal(a0, x).unwrap_or(false))))
                }
                v => fail(format!("cannot find has on {}", v.kind())),
            },
            Func::HasKey | Func::Get => {
                let mut tmp = Vec::new();
                let key = self.text(a1, &mut tmp)?;
                let found = if a0.is_nil() { None } else { self.lookup(a0, key)? };
                match f {
                    Func::HasKey => val(Val::Bool(found.is_some())),
                    _ => val(found.unwrap_or(Val::Str(""))),
                }
            }
            Func::Int => val(Val::Int(to_i64(a0))),
            Func::Float64 => val(Val::Float(to_f64(a0))),
            Func::Atoi => val(Val::Int(a0.as_str().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0))),
            Func::Add => val(Val::Int(a.iter().fold(0i64, |acc, v| acc.wrapping_add(to_i64(v))))),
            Func::Add1 => val(Val::Int(to_i64(a0).wrapping_add(1))),
            Func::Sub => val(Val::Int(to_i64(a0).wrapping_sub(to_i64(a1)))),
            Func::Mul => {
                val(Val::Int(a.iter().skip(1).fold(to_i64(a0), |acc, v| acc.wrapping_mul(to_i64(v)))))
            }
            Func::Div | Func::Mod => {
                let (x, y) = (to_i64(a0), to_i64(a1));
                if y == 0 {
                    return fail("integer divide by zero");
                }
                val(Val::Int(if f == Func::Div { x.wrapping_div(y) } else { x.wrapping_rem(y) }))
            }
            Func::Max => val(Val::Int(a.iter().map(to_i64).max().unwrap_or(0))),
            Func::Min => val(Val::Int(a.iter().map(to_i64).min().unwrap_or(0))),
            Func::Addf => val(Val::Float(a.iter().map(to_f64).sum())),
            Func::Subf => val(Val::Float(a.iter().skip(1).fold(to_f64(a0), |acc, v| acc - to_f64(v)))),
            Func::Mulf => val(Val::Float(a.iter().skip(1).fold(to_f64(a0), |acc, v| acc * to_f64(v)))),
            Func::Divf => val(Val::Float(a.iter().skip(1).fold(to_f64(a0), |acc, v| acc / to_f64(v)))),
            Func::Floor => val(Val::Float(to_f64(a0).floor())),
            Func::Ceil => val(Val::Float(to_f64(a0).ceil())),
            // The rest (random, dates, caller, regex) live in `sprig_ext`.
            _ => self.apply_ext(f, a, out),
        }
    }

    /// One step of `index`.
    fn index(&mut self, v: Val<'r>, k: &Val<'r>) -> Result<Val<'r>, Fail> {
        if v.is_array() {
            let n = v.container_len().unwrap_or(0);
            let Some(i) = k.int() else { return fail(format!("cannot index an array with {}", k.kind())) };
            let Some(i) = usize::try_from(i).ok().filter(|&i| i < n) else {
                return fail(format!("index out of range: {i}"));
            };
            if let Val::Tape(_) = v {
                self.charge(i * SCAN_COST)?;
            }
            return Ok(value::index(&v, i));
        }
        if v.is_object() {
            let Some(key) = k.as_str() else {
                return fail(format!("cannot index an object with {}", k.kind()));
            };
            return Ok(self.lookup(&v, key)?.unwrap_or_default());
        }
        if let Some(s) = v.as_str() {
            let Some(i) = k.int() else { return fail(format!("cannot index a string with {}", k.kind())) };
            return match usize::try_from(i).ok().and_then(|i| s.as_bytes().get(i)) {
                Some(&b) => Ok(Val::Int(i64::from(b))),
                None => fail(format!("index out of range: {i}")),
            };
        }
        if v.is_nil() {
            return fail("index of nil");
        }
        fail(format!("can't index item of type {}", v.kind()))
    }

    /// Go's `slice x i j`: strings by byte offset (on character boundaries), arrays.
    fn slice(&mut self, v: &Val<'r>, idx: &[Val<'r>], out: Option<&mut Vec<u8>>) -> Result<Ret<'r>, Fail> {
        let len = if let Some(s) = v.as_str() {
            s.len()
        } else if v.is_array() {
            v.container_len().unwrap_or(0)
        } else {
            return fail(format!("can't slice item of type {}", v.kind()));
        };
        if v.as_str().is_some() && idx.len() == 3 {
            return fail("cannot 3-index slice a string");
        }
        let mut bounds = [0usize, len, len];
        for (slot, k) in bounds.iter_mut().zip(idx) {
            let Some(i) = k.int() else { return fail(format!("cannot slice with {}", k.kind())) };
            *slot = usize::try_from(i)
                .ok()
                .filter(|&i| i <= len)
                .ok_or_else(|| Fail::Msg(format!("index out of range: {i}")))?;
        }
        let (lo, hi) = (bounds[0], bounds[1]);
        if lo > hi || (idx.len() == 3 && hi > bounds[2]) {
            return fail(format!("invalid slice index: {lo} > {hi}"));
        }
        if let Some(s) = v.as_str() {
            if !s.is_char_boundary(lo) || !s.is_char_boundary(hi) {
                return fail("slice would split a UTF-8 character");
            }
            return match v {
                Val::Str(s) => Ok(Ret::Val(Val::Str(&s[lo..hi]))),
                _ => self.emit(out, |_, o, _| {
                    o.extend_from_slice(&s.as_bytes()[lo..hi]);
                    Ok(())
                }),
            };
        }
        let items = self.elements(v)?;
        Ok(Ret::Val(value::list(Rc::from(&items[lo..hi])).ok_or_else(too_deep)?))
    }

    fn split_list(&mut self, sep: &Val<'r>, s: &Val<'r>) -> Result<Ret<'r>, Fail> {
        let mut tmp = Vec::new();
        let sep = self.text(sep, &mut tmp)?.to_string();
        let pieces: Vec<Val<'r>> = match s {
            Val::Str(s) => split(s, &sep).into_iter().map(Val::Str).collect(),
            other => {
                let mut t = Vec::new();
                let text = self.text(other, &mut t)?;
                split(text, &sep).into_iter().map(|p| Val::Owned(Rc::from(p))).collect()
            }
        };
        self.charge(pieces.len() * SCAN_COST)?;
        Ok(Ret::Val(value::list(Rc::from(pieces)).ok_or_else(too_deep)?))
    }

    fn printf(&mut self, a: &[Val<'r>], out: Option<&mut Vec<u8>>) -> Result<Ret<'r>, Fail> {
        let mut tmp = Vec::new();
        let format: &str = match a.first() {
            Some(v) => self.text(v, &mut tmp)?,
            None => "",
        };
        let rest = a.get(1..).unwrap_or(&[]);
        // Objects and arrays are formatted as their JSON text (Higress passes raw JSON).
        let mut texts: Vec<(usize, String)> = Vec::new();
        for (i, v) in rest.iter().enumerate() {
            if let Val::Tape(_) | Val::Json(_) | Val::List(..) = v {
                let mut t = Vec::new();
                value::write_json(&mut t, v, &self.cx, JsonMode::RAW, 0, MAX_OUTPUT).map_err(werr)?;
                self.charge(t.len())?;
                texts.push((i, String::from_utf8(t).map_err(|_| Fail::Msg("invalid UTF-8".into()))?));
            }
        }
        let mut inline = [PArg::Nil; 8];
        let heap: Vec<PArg<'_>>;
        let pargs: &[PArg<'_>] = if rest.len() <= inline.len() {
            for (i, v) in rest.iter().enumerate() {
                inline[i] = printf_arg(i, v, &texts);
            }
            &inline[..rest.len()]
        } else {
            heap = rest.iter().enumerate().map(|(i, v)| printf_arg(i, v, &texts)).collect();
            &heap
        };
        self.emit(out, |_, o, limit| {
            gofmt::sprintf(o, format, pargs, limit).map_err(|()| Fail::Render(RenderError::OutputTooLarge))
        })
    }
}

/// A `printf` operand; `texts` holds the JSON text of container operands by position.
fn printf_arg<'x>(i: usize, v: &'x Val<'_>, texts: &'x [(usize, String)]) -> PArg<'x> {
    match v {
        Val::Bool(b) => PArg::Bool(*b),
        Val::Int(i) => PArg::Int(*i),
        Val::Uint(u) => PArg::Uint(*u),
        Val::Float(f) => v.int().map_or(PArg::Float(*f), PArg::Int),
        Val::Str(s) => PArg::Str(s),
        Val::Owned(s) => PArg::Str(s),
        Val::Tape(_) | Val::Json(_) | Val::List(..) => {
            texts.iter().find(|(j, _)| *j == i).map_or(PArg::Nil, |(_, t)| PArg::Str(t))
        }
        Val::Missing | Val::Null | Val::Root => PArg::Nil,
    }
}

#[cfg(test)]
pub(super) fn names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(n, ..)| *n)
}
