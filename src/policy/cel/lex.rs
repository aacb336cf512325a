//! The CEL lexer: source text to tokens with byte positions (cel-spec langdef.md, "Syntax").
//!
//! Runs once per rule at config load over at most `Limits::max_source_len` bytes, so it
//! tokenises the whole source up front into a `Vec` the parser indexes.

use super::common::CompileError;

/// One token. Integer literals keep their magnitude as `u64` so that the parser can accept
/// `-9223372036854775808` (the magnitude alone does not fit `i64`).
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok<'s> {
    Int(u64),
    Uint(u64),
    Double(f64),
    Str(String),
    Ident(&'s str),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Dot,
    Comma,
    Colon,
    Question,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Bang,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    AndAnd,
    OrOr,
    Eof,
}

impl Tok<'_> {
    /// How the token reads in an error message.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Int(n) => format!("integer {n}"),
            Tok::Uint(n) => format!("unsigned integer {n}u"),
            Tok::Double(f) => format!("number {f}"),
            Tok::Str(_) => "string literal".to_owned(),
            Tok::Ident(s) => format!("\"{s}\""),
            Tok::Eof => "end of expression".to_owned(),
            other => format!("\"{}\"", other.punct()),
        }
    }

    fn punct(&self) -> &'static str {
        match self {
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Dot => ".",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::Question => "?",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Bang => "!",
            Tok::EqEq => "==",
            Tok::NotEq => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::AndAnd => "&&",
            Tok::OrOr => "||",
            _ => "?",
        }
    }
}

fn err(pos: usize, msg: impl Into<String>) -> CompileError {
    CompileError { pos, message: msg.into() }
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Tokenises `src`; the last token is always `Eof` at `src.len()`.
pub(super) fn tokens(src: &str) -> Result<Vec<(Tok<'_>, usize)>, CompileError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        // Whitespace per the grammar: [\t\n\f\r ]; comments run from `//` to the end of line.
        if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0c) {
            i += 1;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let (tok, end) = number(src, i)?;
            out.push((tok, start));
            i = end;
            continue;
        }
        if is_ident_start(c) {
            // String prefixes: r/R (raw), b/B (bytes), in either order.
            let mut j = i;
            let (mut raw, mut bytes) = (false, false);
            while j < b.len() && j - i < 2 {
                match b[j] {
                    b'r' | b'R' if !raw => raw = true,
                    b'b' | b'B' if !bytes => bytes = true,
                    _ => break,
                }
                j += 1;
            }
            if j > i && matches!(b.get(j), Some(b'"' | b'\'')) {
                if bytes {
                    return Err(err(start, "bytes literals are not supported"));
                }
                let (s, end) = string(src, j, raw)?;
                out.push((Tok::Str(s), start));
                i = end;
                continue;
            }
            while i < b.len() && is_ident_char(b[i]) {
                i += 1;
            }
            out.push((Tok::Ident(&src[start..i]), start));
            continue;
        }
        if c == b'"' || c == b'\'' {
            let (s, end) = string(src, i, false)?;
            out.push((Tok::Str(s), start));
            i = end;
            continue;
        }
        let two = b.get(i + 1).copied();
        let (tok, len) = match (c, two) {
            (b'=', Some(b'=')) => (Tok::EqEq, 2),
            (b'!', Some(b'=')) => (Tok::NotEq, 2),
            (b'<', Some(b'=')) => (Tok::Le, 2),
            (b'>', Some(b'=')) => (Tok::Ge, 2),
            (b'&', Some(b'&')) => (Tok::AndAnd, 2),
            (b'|', Some(b'|')) => (Tok::OrOr, 2),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b'[', _) => (Tok::LBracket, 1),
            (b']', _) => (Tok::RBracket, 1),
            (b'{', _) => (Tok::LBrace, 1),
            (b'}', _) => (Tok::RBrace, 1),
            (b'.', _) => (Tok::Dot, 1),
            (b',', _) => (Tok::Comma, 1),
            (b':', _) => (Tok::Colon, 1),
            (b'?', _) => (Tok::Question, 1),
            (b'+', _) => (Tok::Plus, 1),
            (b'-', _) => (Tok::Minus, 1),
            (b'*', _) => (Tok::Star, 1),
            (b'/', _) => (Tok::Slash, 1),
            (b'%', _) => (Tok::Percent, 1),
            (b'!', _) => (Tok::Bang, 1),
            (b'<', _) => (Tok::Lt, 1),
            (b'>', _) => (Tok::Gt, 1),
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(err(start, format!("unexpected character {ch:?}")));
            }
        };
        out.push((tok, start));
        i += len;
    }
    out.push((Tok::Eof, b.len()));
    Ok(out)
}

/// Lexes a number at `i`: `0x` hex or decimal integers with an optional `u`, or a double
/// (`1.5`, `.5`, `1e3`, `1.5e-3`; a dot must be followed by a digit, as in the grammar).
fn number(src: &str, i: usize) -> Result<(Tok<'static>, usize), CompileError> {
    let b = src.as_bytes();
    let digits_end = |mut j: usize, hex: bool| {
        while j < b.len() && (if hex { b[j].is_ascii_hexdigit() } else { b[j].is_ascii_digit() }) {
            j += 1;
        }
        j
    };
    let out_of_range = || err(i, "integer literal out of range");
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        let end = digits_end(i + 2, true);
        if end == i + 2 {
            return Err(err(i, "malformed hexadecimal literal"));
        }
        let n = u64::from_str_radix(&src[i + 2..end], 16).map_err(|_| out_of_range())?;
        if matches!(b.get(end), Some(b'u' | b'U')) {
            return Ok((Tok::Uint(n), end + 1));
        }
        return Ok((Tok::Int(n), end));
    }
    let mut j = digits_end(i, false);
    let mut float = false;
    if b.get(j) == Some(&b'.') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
        float = true;
        j = digits_end(j + 1, false);
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        let e = digits_end(k, false);
        if e == k {
            return Err(err(i, "malformed exponent"));
        }
        float = true;
        j = e;
    }
    let text = &src[i..j];
    if float {
        let f: f64 = text.parse().map_err(|_| err(i, "malformed number"))?;
        return Ok((Tok::Double(f), j));
    }
    let n: u64 = text.parse().map_err(|_| out_of_range())?;
    if matches!(b.get(j), Some(b'u' | b'U')) {
        return Ok((Tok::Uint(n), j + 1));
    }
    Ok((Tok::Int(n), j))
}

/// Lexes a string literal whose opening quote is at `q` (after any prefix). Handles `"`, `'`,
/// their triple forms (which may span lines) and the escapes of the grammar; raw strings keep
/// backslashes as written.
fn string(src: &str, q: usize, raw: bool) -> Result<(String, usize), CompileError> {
    let b = src.as_bytes();
    let quote = b[q];
    let triple = b.get(q + 1) == Some(&quote) && b.get(q + 2) == Some(&quote);
    let mut i = q + if triple { 3 } else { 1 };
    let mut out = String::new();
    loop {
        let Some(&c) = b.get(i) else {
            return Err(err(q, "unterminated string literal"));
        };
        if c == quote {
            if !triple {
                return Ok((out, i + 1));
            }
            if b.get(i + 1) == Some(&quote) && b.get(i + 2) == Some(&quote) {
                return Ok((out, i + 3));
            }
        }
        if !triple && (c == b'\n' || c == b'\r') {
            return Err(err(q, "newline in string literal"));
        }
        if c == b'\\' && !raw {
            let (ch, next) = escape(src, i)?;
            out.push(ch);
            i = next;
            continue;
        }
        // Raw strings have no escapes at all (grammar: RAW '"' ~('"'|'\n'|'\r')* '"').
        let ch = src[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
}

/// One escape sequence at `i` (the backslash): returns the character and the index after it.
fn escape(src: &str, i: usize) -> Result<(char, usize), CompileError> {
    let b = src.as_bytes();
    let bad = || err(i, "invalid escape sequence");
    let Some(&e) = b.get(i + 1) else { return Err(bad()) };
    let simple = match e {
        b'a' => Some('\u{7}'),
        b'b' => Some('\u{8}'),
        b'f' => Some('\u{c}'),
        b'n' => Some('\n'),
        b'r' => Some('\r'),
        b't' => Some('\t'),
        b'v' => Some('\u{b}'),
        b'\\' => Some('\\'),
        b'\'' => Some('\''),
        b'"' => Some('"'),
        b'`' => Some('`'),
        b'?' => Some('?'),
        _ => None,
    };
    if let Some(ch) = simple {
        return Ok((ch, i + 2));
    }
    let hex = |from: usize, n: usize| -> Result<u32, CompileError> {
        let s = src.get(from..from + n).ok_or_else(bad)?;
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        u32::from_str_radix(s, 16).map_err(|_| bad())
    };
    let (code, next) = match e {
        b'x' | b'X' => (hex(i + 2, 2)?, i + 4),
        b'u' => (hex(i + 2, 4)?, i + 6),
        b'U' => (hex(i + 2, 8)?, i + 10),
        b'0'..=b'3' => {
            let s = src.get(i + 1..i + 4).ok_or_else(bad)?;
            if !s.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
                return Err(bad());
            }
            (u32::from_str_radix(s, 8).map_err(|_| bad())?, i + 4)
        }
        _ => return Err(bad()),
    };
    let ch = char::from_u32(code).ok_or_else(|| err(i, "escape is not a valid code point"))?;
    Ok((ch, next))
}
