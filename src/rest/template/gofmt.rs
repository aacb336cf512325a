//! Go's text formats that templates expose: `encoding/json` float output, `strconv.Quote`,
//! `fmt.Sprintf` verbs (`%v %s %d %q %f %e %g %x %t %c %%` and friends, flags, width,
//! precision, Go's `%!verb(type=value)` markers), `html` and `js` escapers. Pure functions over
//! byte buffers; the shortest-float path formats on the stack (no allocation).

use std::io::Write as _;

/// Widths and precisions above this print `%!(BADWIDTH)`/`%!(BADPREC)` (Go's limit is 10^6;
/// lower here so one verb cannot produce megabytes).
const MAX_WIDTH: usize = 10_000;

/// Shortest round-trip decimal digits of a finite, non-negative float: value =
/// 0.d1d2...dn x 10^dp (Go's `decimal` convention). Zero has no digits.
struct Shortest {
    buf: [u8; 32],
    len: usize,
    dp: i32,
}

impl Shortest {
    fn new(abs: f64) -> Shortest {
        let mut s = Shortest { buf: [0; 32], len: 0, dp: 0 };
        if abs == 0.0 {
            return s;
        }
        let mut tmp = [0u8; 40];
        let mut cur = std::io::Cursor::new(&mut tmp[..]);
        // `{:e}` prints the shortest digits that round-trip, e.g. "1.2345e3".
        let _ = write!(cur, "{abs:e}");
        let n = cur.position() as usize;
        let text = &tmp[..n];
        let e = text.iter().position(|&b| b == b'e').unwrap_or(n);
        for &b in &text[..e] {
            if b.is_ascii_digit() && s.len < s.buf.len() {
                s.buf[s.len] = b;
                s.len += 1;
            }
        }
        let exp: i32 =
            std::str::from_utf8(&text[(e + 1).min(n)..]).ok().and_then(|x| x.parse().ok()).unwrap_or(0);
        s.dp = exp + 1;
        s
    }

    fn digits(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Writes digits as %f would with `decimals` digits after the point (`decimals` >= what the
/// digits need, zeros appended).
fn layout_f(out: &mut Vec<u8>, d: &[u8], dp: i32, decimals: usize) {
    if dp <= 0 {
        out.push(b'0');
    } else {
        let dp = dp as usize;
        for i in 0..dp {
            out.push(d.get(i).copied().unwrap_or(b'0'));
        }
    }
    if decimals > 0 {
        out.push(b'.');
        for i in 0..decimals {
            let idx = dp as i64 + i as i64;
            out.push(if idx < 0 { b'0' } else { d.get(idx as usize).copied().unwrap_or(b'0') });
        }
    }
}

/// Writes digits as %e would: d.ddd e±XX (at least two exponent digits).
fn layout_e(out: &mut Vec<u8>, d: &[u8], dp: i32, decimals: usize, upper: bool) {
    out.push(d.first().copied().unwrap_or(b'0'));
    if decimals > 0 {
        out.push(b'.');
        for i in 1..=decimals {
            out.push(d.get(i).copied().unwrap_or(b'0'));
        }
    }
    out.push(if upper { b'E' } else { b'e' });
    let exp = if d.is_empty() { 0 } else { dp - 1 };
    out.push(if exp < 0 { b'-' } else { b'+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push(b'0');
    }
    let _ = write!(out, "{e}");
}

/// A float as Go's `encoding/json` writes it (and so as Higress prints numbers of arguments):
/// shortest digits, `%f` layout unless |f| < 1e-6 or >= 1e21, then `%e` with `e-07` cleaned
/// to `e-7`. Non-finite values, which JSON cannot carry, are written as `null`.
pub(super) fn write_float_json(out: &mut Vec<u8>, f: f64) {
    if !f.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    if f.is_sign_negative() {
        out.push(b'-');
    }
    let abs = f.abs();
    let s = Shortest::new(abs);
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let start = out.len();
        layout_e(out, s.digits(), s.dp, s.len.saturating_sub(1), false);
        // Go: "clean up e-09 to e-9".
        let n = out.len();
        if n - start >= 4 && out[n - 4] == b'e' && out[n - 3] == b'-' && out[n - 2] == b'0' {
            out[n - 2] = out[n - 1];
            out.truncate(n - 1);
        }
    } else {
        layout_f(out, s.digits(), s.dp, (s.len as i32 - s.dp).max(0) as usize);
    }
}

/// A float in text (template output): JSON form, with Go's spellings for non-finite values.
pub(super) fn write_float_text(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"+Inf" } else { b"-Inf" });
    } else {
        write_float_json(out, f);
    }
}

/// %g (and %v) of a finite non-negative float; `prec` None is the shortest form.
fn write_g(out: &mut Vec<u8>, abs: f64, prec: Option<usize>, upper: bool) {
    let (digits, dp): (Vec<u8>, i32) = match prec {
        None => {
            let s = Shortest::new(abs);
            (s.digits().to_vec(), s.dp)
        }
        Some(p) => rounded(abs, p.max(1)),
    };
    let nd = digits.len() as i32;
    if nd == 0 {
        out.push(b'0');
        return;
    }
    let mut eprec = match prec {
        None => 6,
        Some(p) => p.max(1) as i32,
    };
    if prec.is_some() && eprec > nd && nd >= dp {
        eprec = nd;
    }
    let exp = dp - 1;
    if exp < -4 || exp >= eprec {
        layout_e(out, &digits, dp, (nd - 1) as usize, upper);
    } else {
        layout_f(out, &digits, dp, (nd - dp).max(0) as usize);
    }
}

/// `sig` significant digits of `abs`, correctly rounded, trailing zeros trimmed.
fn rounded(abs: f64, sig: usize) -> (Vec<u8>, i32) {
    if abs == 0.0 {
        return (Vec::new(), 0);
    }
    let text = format!("{:.*e}", sig - 1, abs);
    let (mant, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let mut digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    (digits, exp.parse::<i32>().unwrap_or(0) + 1)
}

/// Go's `unicode.IsPrint`, approximated without Unicode tables: control, non-ASCII space,
/// line/paragraph separators, common format characters and private use are not printable.
fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    !matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E
        | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF
        | 0xE0001 | 0xE0020..=0xE007F)
}

fn escape_rune(out: &mut Vec<u8>, c: char, quote: char) {
    match c {
        '\x07' => out.extend_from_slice(b"\\a"),
        '\x08' => out.extend_from_slice(b"\\b"),
        '\x0c' => out.extend_from_slice(b"\\f"),
        '\n' => out.extend_from_slice(b"\\n"),
        '\r' => out.extend_from_slice(b"\\r"),
        '\t' => out.extend_from_slice(b"\\t"),
        '\x0b' => out.extend_from_slice(b"\\v"),
        '\\' => out.extend_from_slice(b"\\\\"),
        c if c == quote => {
            out.push(b'\\');
            out.push(c as u8);
        }
        c if (c as u32) < 0x20 || c == '\x7f' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if !is_print(c) => {
            let u = c as u32;
            if u < 0x10000 {
                let _ = write!(out, "\\u{u:04x}");
            } else {
                let _ = write!(out, "\\U{u:08x}");
            }
        }
        c => {
            let mut b = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        }
    }
}

/// `strconv.Quote`: a double-quoted Go string literal.
pub(super) fn quote(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        escape_rune(out, c, '"');
    }
    out.push(b'"');
}

/// `strconv.QuoteRune`.
fn quote_rune(out: &mut Vec<u8>, c: char) {
    out.push(b'\'');
    escape_rune(out, c, '\'');
    out.push(b'\'');
}

/// Go's `template.HTMLEscapeString`.
pub(super) fn html_escape(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"&#34;"),
            '\'' => out.extend_from_slice(b"&#39;"),
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '\0' => out.extend_from_slice("\u{FFFD}".as_bytes()),
            c => {
                let mut b = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

/// Go's `template.JSEscapeString`.
pub(super) fn js_escape(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\'' => out.extend_from_slice(b"\\'"),
            '"' => out.extend_from_slice(b"\\\""),
            '<' => out.extend_from_slice(b"\\u003C"),
            '>' => out.extend_from_slice(b"\\u003E"),
            '&' => out.extend_from_slice(b"\\u0026"),
            '=' => out.extend_from_slice(b"\\u003D"),
            c if (c as u32) < 0x20 || (!c.is_ascii() && !is_print(c)) => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let mut b = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

/// A `printf` operand as Higress hands it to Go: integral numbers are ints, objects and arrays
/// their JSON text.
#[derive(Clone, Copy, Debug)]
pub(super) enum PArg<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(&'a str),
}

#[derive(Default, Clone, Copy)]
struct Flags {
    sharp: bool,
    zero: bool,
    plus: bool,
    minus: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Pads `body` (already formatted) to the width in runes.
fn pad(out: &mut Vec<u8>, body: &[u8], f: &Flags) {
    let runes = std::str::from_utf8(body).map_or(body.len(), |s| s.chars().count());
    let fill = f.width.unwrap_or(0).saturating_sub(runes);
    if f.minus {
        out.extend_from_slice(body);
        out.resize(out.len() + fill, b' ');
    } else {
        out.resize(out.len() + fill, b' ');
        out.extend_from_slice(body);
    }
}

fn type_name(a: &PArg<'_>) -> &'static str {
    match a {
        PArg::Nil => "<nil>",
        PArg::Bool(_) => "bool",
        PArg::Int(_) => "int",
        PArg::Uint(_) => "uint64",
        PArg::Float(_) => "float64",
        PArg::Str(_) => "string",
    }
}

/// `%v` of an operand, no flags.
fn plain_v(out: &mut Vec<u8>, a: &PArg<'_>) {
    let f = Flags::default();
    match a {
        PArg::Nil => out.extend_from_slice(b"<nil>"),
        other => one(out, 'v', other, &f),
    }
}

fn bad_verb(out: &mut Vec<u8>, verb: char, a: &PArg<'_>) {
    out.extend_from_slice(b"%!");
    let mut b = [0; 4];
    out.extend_from_slice(verb.encode_utf8(&mut b).as_bytes());
    out.push(b'(');
    if let PArg::Nil = a {
        out.extend_from_slice(b"<nil>");
    } else {
        out.extend_from_slice(type_name(a).as_bytes());
        out.push(b'=');
        plain_v(out, a);
    }
    out.push(b')');
}

fn integer(out: &mut Vec<u8>, neg: bool, u: u64, verb: char, f: &Flags) {
    let (base, upper) = match verb {
        'b' => (2, false),
        'o' | 'O' => (8, false),
        'x' => (16, false),
        'X' => (16, true),
        _ => (10, false),
    };
    let mut digits: Vec<u8> = Vec::with_capacity(24);
    let mut v = u;
    loop {
        let d = (v % base) as u8;
        digits.push(match d {
            0..=9 => b'0' + d,
            _ if upper => b'A' + d - 10,
            _ => b'a' + d - 10,
        });
        v /= base;
        if v == 0 {
            break;
        }
    }
    if f.prec == Some(0) && u == 0 {
        digits.clear();
    }
    let mut prec = f.prec.unwrap_or(0);
    if f.prec.is_none() && f.zero && !f.minus {
        if let Some(w) = f.width {
            prec = w;
            if neg || f.plus || f.space {
                prec = prec.saturating_sub(1);
            }
        }
    }
    while digits.len() < prec {
        digits.push(b'0');
    }
    let mut body = Vec::with_capacity(digits.len() + 4);
    if neg {
        body.push(b'-');
    } else if f.plus {
        body.push(b'+');
    } else if f.space {
        body.push(b' ');
    }
    match verb {
        'b' if f.sharp => body.extend_from_slice(b"0b"),
        'o' if f.sharp && digits.last() != Some(&b'0') => body.push(b'0'),
        'O' => body.extend_from_slice(b"0o"),
        'x' if f.sharp => body.extend_from_slice(b"0x"),
        'X' if f.sharp => body.extend_from_slice(b"0X"),
        _ => {}
    }
    body.extend(digits.iter().rev());
    pad(out, &body, f);
}

fn float(out: &mut Vec<u8>, v: f64, verb: char, f: &Flags) {
    let mut body = Vec::with_capacity(32);
    if v.is_nan() {
        body.extend_from_slice(if f.plus {
            b"+NaN"
        } else if f.space {
            b" NaN"
        } else {
            b"NaN"
        });
        return pad(out, &body, &Flags { zero: false, ..*f });
    }
    if v.is_sign_negative() {
        body.push(b'-');
    } else if f.plus || v.is_infinite() {
        body.push(if f.space && !f.plus && !v.is_infinite() { b' ' } else { b'+' });
    } else if f.space {
        body.push(b' ');
    }
    let sign_len = body.len();
    let abs = v.abs();
    if abs.is_infinite() {
        body.extend_from_slice(b"Inf");
        return pad(out, &body, &Flags { zero: false, ..*f });
    }
    match verb {
        'e' | 'E' => {
            let p = f.prec.unwrap_or(6);
            let (d, dp) = rounded(abs, p + 1);
            layout_e(&mut body, &d, if d.is_empty() { 1 } else { dp }, p, verb == 'E');
        }
        'f' | 'F' => {
            let _ = write!(body, "{:.*}", f.prec.unwrap_or(6), abs);
        }
        'g' | 'G' => write_g(&mut body, abs, f.prec, verb == 'G'),
        _ => write_g(&mut body, abs, None, false),
    }
    if f.zero && !f.minus {
        if let Some(w) = f.width {
            let len = body.len();
            if w > len {
                let zeros = w - len;
                body.splice(sign_len..sign_len, std::iter::repeat_n(b'0', zeros));
            }
        }
    }
    pad(out, &body, f);
}

fn string(out: &mut Vec<u8>, s: &str, verb: char, f: &Flags) {
    let s = match f.prec {
        Some(p) => s.char_indices().nth(p).map_or(s, |(i, _)| &s[..i]),
        None => s,
    };
    match verb {
        'q' => {
            let mut body = Vec::with_capacity(s.len() + 2);
            quote(&mut body, s);
            pad(out, &body, f);
        }
        'x' | 'X' => {
            let mut body = Vec::with_capacity(s.len() * 2);
            for (i, b) in s.bytes().enumerate() {
                if f.space && i > 0 {
                    body.push(b' ');
                }
                let _ = if verb == 'x' { write!(body, "{b:02x}") } else { write!(body, "{b:02X}") };
            }
            pad(out, &body, f);
        }
        _ => pad(out, s.as_bytes(), f),
    }
}

/// One verb applied to one operand.
fn one(out: &mut Vec<u8>, verb: char, a: &PArg<'_>, f: &Flags) {
    match (*a, verb) {
        (PArg::Nil, 'v') => pad(out, b"<nil>", f),
        (PArg::Bool(b), 'v' | 't') => pad(out, if b { b"true" } else { b"false" }, f),
        (PArg::Int(i), 'v' | 'd' | 'b' | 'o' | 'O' | 'x' | 'X') => {
            integer(out, i < 0, i.unsigned_abs(), verb, f)
        }
        (PArg::Uint(u), 'v' | 'd' | 'b' | 'o' | 'O' | 'x' | 'X') => integer(out, false, u, verb, f),
        (PArg::Int(i), 'c' | 'q' | 'U') => {
            let c = u32::try_from(i).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
            let mut body = Vec::new();
            match verb {
                'c' => {
                    let mut b = [0; 4];
                    body.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                }
                'q' => quote_rune(&mut body, c),
                _ => {
                    let _ = write!(body, "U+{:04X}", i);
                }
            }
            pad(out, &body, f);
        }
        (PArg::Int(i), 'e' | 'E' | 'f' | 'F' | 'g' | 'G') => float(out, i as f64, verb, f),
        (PArg::Uint(u), 'e' | 'E' | 'f' | 'F' | 'g' | 'G') => float(out, u as f64, verb, f),
        (PArg::Float(x), 'v' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G') => float(out, x, verb, f),
        (PArg::Str(s), 'v' | 's' | 'q' | 'x' | 'X') => string(out, s, verb, f),
        _ => bad_verb(out, verb, a),
    }
}

/// Go's `fmt.Sprintf(format, args...)`. Output is checked against `limit` (absolute length of
/// `out`) after every verb; `Err(())` when it would exceed it.
pub(super) fn sprintf(out: &mut Vec<u8>, format: &str, args: &[PArg<'_>], limit: usize) -> Result<(), ()> {
    let b = format.as_bytes();
    let mut i = 0;
    let mut next = 0;
    while i < b.len() {
        let lit_end = b[i..].iter().position(|&c| c == b'%').map_or(b.len(), |p| i + p);
        out.extend_from_slice(&b[i..lit_end]);
        if out.len() > limit {
            return Err(());
        }
        i = lit_end;
        if i >= b.len() {
            break;
        }
        i += 1;
        let mut f = Flags::default();
        while i < b.len() {
            match b[i] {
                b'#' => f.sharp = true,
                b'0' => f.zero = true,
                b'+' => f.plus = true,
                b'-' => f.minus = true,
                b' ' => f.space = true,
                _ => break,
            }
            i += 1;
        }
        let number = |i: &mut usize, next: &mut usize| -> Option<usize> {
            if b.get(*i) == Some(&b'*') {
                *i += 1;
                let a = args.get(*next);
                *next += 1;
                return match a {
                    Some(PArg::Int(n)) => usize::try_from(*n).ok(),
                    _ => None,
                };
            }
            let start = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            match std::str::from_utf8(&b[start..*i]) {
                Ok("") => Some(0),
                Ok(s) => s.parse().ok(),
                Err(_) => None,
            }
        };
        if b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'*') {
            match number(&mut i, &mut next) {
                Some(w) if w <= MAX_WIDTH => f.width = Some(w),
                _ => out.extend_from_slice(b"%!(BADWIDTH)"),
            }
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            match number(&mut i, &mut next) {
                Some(p) if p <= MAX_WIDTH => f.prec = Some(p),
                _ => out.extend_from_slice(b"%!(BADPREC)"),
            }
        }
        if f.minus {
            f.zero = false;
        }
        let Some(verb) = format[i..].chars().next() else {
            out.extend_from_slice(b"%!(NOVERB)");
            break;
        };
        i += verb.len_utf8();
        if verb == '%' {
            out.push(b'%');
            continue;
        }
        let Some(a) = args.get(next) else {
            out.extend_from_slice(b"%!");
            let mut tmp = [0; 4];
            out.extend_from_slice(verb.encode_utf8(&mut tmp).as_bytes());
            out.extend_from_slice(b"(MISSING)");
            continue;
        };
        next += 1;
        one(out, verb, a, &f);
        if out.len() > limit {
            return Err(());
        }
    }
    if next < args.len() {
        out.extend_from_slice(b"%!(EXTRA ");
        for (k, a) in args[next..].iter().enumerate() {
            if k > 0 {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(type_name(a).as_bytes());
            if !matches!(a, PArg::Nil) {
                out.push(b'=');
                plain_v(out, a);
            }
        }
        out.push(b')');
    }
    if out.len() > limit {
        return Err(());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(f: f64) -> String {
        let mut o = Vec::new();
        write_float_json(&mut o, f);
        String::from_utf8(o).unwrap()
    }

    fn pf(fmt: &str, args: &[PArg<'_>]) -> String {
        let mut o = Vec::new();
        sprintf(&mut o, fmt, args, usize::MAX).unwrap();
        String::from_utf8(o).unwrap()
    }

    #[test]
    fn floats_as_go_json() {
        for (f, want) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (1.5, "1.5"),
            (100.0, "100"),
            (0.000001, "0.000001"),
            (0.0000001, "1e-7"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (-2.5e-10, "-2.5e-10"),
            (123456.789, "123456.789"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(json(f), want, "{f}");
        }
    }

    #[test]
    fn printf_verbs() {
        use PArg::*;
        assert_eq!(
            pf(
                "%04d|%-4d|%+d|%x|%X|%o|%b|%#x",
                &[Int(42), Int(7), Int(3), Int(255), Int(255), Int(8), Int(5), Int(255)]
            ),
            "0042|7   |+3|ff|FF|10|101|0xff"
        );
        assert_eq!(
            pf(
                "%s|%q|%v|%5s|%-5s|%.2s",
                &[Str("a"), Str("b\"\n"), Str("c"), Str("d"), Str("e"), Str("héllo")]
            ),
            "a|\"b\\\"\\n\"|c|    d|e    |hé"
        );
        assert_eq!(
            pf(
                "%f|%.2f|%e|%g|%v|%G",
                &[Float(1.5), Float(2.345), Float(1234.5678), Float(0.00001), Float(1e6), Float(1e-7)]
            ),
            "1.500000|2.35|1.234568e+03|1e-05|1e+06|1E-07"
        );
        assert_eq!(
            pf(
                "%.3g|%g|%8.3f|%08.3f|%v",
                &[Float(1234.5678), Float(100000.0), Float(3.14259), Float(-3.14259), Float(123456.5)]
            ),
            "1.23e+03|100000|   3.143|-003.143|123456.5"
        );
        assert_eq!(pf("%t|%v|%d", &[Bool(true), Nil, Str("x")]), "true|<nil>|%!d(string=x)");
        assert_eq!(pf("%d %d", &[Int(1)]), "1 %!d(MISSING)");
        assert_eq!(pf("%d", &[Int(1), Str("x"), Nil]), "1%!(EXTRA string=x, <nil>)");
        assert_eq!(
            pf("100%%|%c|%q|%U|%", &[Int(65), Int(66), Int(0x1F600)]),
            "100%|A|'B'|U+1F600|%!(NOVERB)"
        );
        assert_eq!(pf("%s", &[Int(5)]), "%!s(int=5)");
        assert_eq!(pf("%.0f|%.1f|%5.1f%%", &[Float(2.5), Float(0.05), Float(99.5)]), "2|0.1| 99.5%");
        assert_eq!(pf("%*d|%-*d|", &[Int(4), Int(7), Int(3), Int(8)]), "   7|8  |");
        assert_eq!(pf("%99999d", &[Int(1)]), "%!(BADWIDTH)1");
    }

    #[test]
    fn quoting() {
        let mut o = Vec::new();
        quote(&mut o, "a\"b\\c\n\t\x01\x7fé\u{200b}😀");
        assert_eq!(String::from_utf8(o).unwrap(), "\"a\\\"b\\\\c\\n\\t\\x01\\x7fé\\u200b😀\"");
        let mut o = Vec::new();
        html_escape(&mut o, "<a href='x'>&\"</a>");
        assert_eq!(String::from_utf8(o).unwrap(), "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;");
        let mut o = Vec::new();
        js_escape(&mut o, "a'b\"c<d>&=\\\n");
        assert_eq!(String::from_utf8(o).unwrap(), "a\\'b\\\"c\\u003Cd\\u003E\\u0026\\u003D\\\\\\u000A");
    }
}
