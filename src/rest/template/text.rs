//! Text helpers of the template functions: Go's query escaping, case mapping, splitting and
//! replacing with Go's semantics.

use super::common::RenderError;
use super::func::Fail;

/// Go's `url.QueryEscape`: unreserved bytes stay, space becomes `+`, the rest `%XX`.
pub(super) fn query_escape(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b),
            b' ' => out.push(b'+'),
            _ => {
                out.push(b'%');
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
    }
}

/// Go's simple case mapping, approximated: a character whose full mapping is several
/// characters (ß) is kept, as Go's `unicode.ToUpper` keeps it.
pub(super) fn map_case(out: &mut Vec<u8>, c: char, upper: bool) {
    let mut b = [0; 4];
    let mapped = if upper {
        let mut it = c.to_uppercase();
        match (it.next(), it.next()) {
            (Some(m), None) => m,
            _ => c,
        }
    } else if c == '\u{130}' {
        'i'
    } else {
        let mut it = c.to_lowercase();
        match (it.next(), it.next()) {
            (Some(m), None) => m,
            _ => c,
        }
    };
    out.extend_from_slice(mapped.encode_utf8(&mut b).as_bytes());
}

/// `strings.Title`'s word separators.
pub(super) fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphanumeric() {
        return false;
    }
    c.is_whitespace()
}

/// The nearest character boundary at or below `i`.
pub(super) fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `strings.Split`: an empty separator splits into characters.
pub(super) fn split<'s>(s: &'s str, sep: &str) -> Vec<&'s str> {
    if sep.is_empty() {
        s.char_indices().map(|(i, c)| &s[i..i + c.len_utf8()]).collect()
    } else {
        s.split(sep).collect()
    }
}

/// `strings.Replace(src, old, new, -1)`, checking the size as it grows.
pub(super) fn replace(o: &mut Vec<u8>, src: &str, old: &str, new: &str, limit: usize) -> Result<(), Fail> {
    let too_big = |o: &Vec<u8>| o.len() > limit;
    if old.is_empty() {
        // Go inserts `new` before every character and at the end.
        for c in src.chars() {
            o.extend_from_slice(new.as_bytes());
            let mut b = [0; 4];
            o.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            if too_big(o) {
                return Err(RenderError::OutputTooLarge.into());
            }
        }
        o.extend_from_slice(new.as_bytes());
    } else {
        let mut last = 0;
        for (i, _) in src.match_indices(old) {
            o.extend_from_slice(&src.as_bytes()[last..i]);
            o.extend_from_slice(new.as_bytes());
            last = i + old.len();
            if too_big(o) {
                return Err(RenderError::OutputTooLarge.into());
            }
        }
        o.extend_from_slice(&src.as_bytes()[last..]);
    }
    if too_big(o) {
        return Err(RenderError::OutputTooLarge.into());
    }
    Ok(())
}
