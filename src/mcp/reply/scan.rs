//! One validating pass over a backend's answer that learns only what
//! [`super::complete_legacy_response`] edits: where each top-level member's value starts and
//! ends, which member is the `id`, and, for a `result` object, how many members it has, which of
//! the members the 2026-07-28 revision adds it already carries, and where it closes. Everything
//! else is checked against RFC 8259's grammar and skipped; nothing is built or allocated. On the
//! ~110-byte answer of the headline benchmark a simd-json tape cost ~2,300 instructions (serde_json
//! with visitors, tried, slightly more); this pass costs ~1,300, nearly all of it per token.
//!
//! The pass declines ([`Scan::Declined`]) whatever it need not be sure of: a name written with
//! escapes at the top level or in `result` (its bytes are not its text), more than
//! [`MAX_MEMBERS`] members, nesting deeper than [`MAX_DEPTH`]. The caller then takes the tape
//! path. The fuzz target `jsonrpc_envelope` holds the pass to serde_json's verdict on every input.

/// Top-level members the scan records; a JSON-RPC response has three or four.
pub const MAX_MEMBERS: usize = 8;
/// Nesting the scan follows below the top-level object and `result` (under serde_json's limit
/// of 128, which the fuzz differential compares it to).
pub const MAX_DEPTH: u32 = 100;

/// `result` carries `resultType`.
pub const HAS_RESULT_TYPE: u8 = 1;
/// `result` carries `ttlMs`.
pub const HAS_TTL: u8 = 2;
/// `result` carries `cacheScope`.
pub const HAS_CACHE_SCOPE: u8 = 4;

/// What the scan learned of one top-level member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member {
    /// The `id`.
    Id,
    /// `result` when it is an object: how many members it has, which of the added ones (`HAS_*`
    /// bits), and where its closing brace is (0 when the tape found it).
    Result { members: usize, has: u8, close: usize },
    /// Anything else (also a `result` that is not an object).
    Other,
}

impl Member {
    /// What a `result` object with the member names `names` (unescaped) is.
    pub fn result<'a>(names: impl Iterator<Item = &'a str>) -> Member {
        let (mut members, mut has) = (0, 0);
        for name in names {
            members += 1;
            has |= added(name.as_bytes());
        }
        Member::Result { members, has, close: 0 }
    }
}

/// The `HAS_*` bit of a result member's name (0 for other names).
fn added(name: &[u8]) -> u8 {
    match name {
        b"resultType" => HAS_RESULT_TYPE,
        b"ttlMs" => HAS_TTL,
        b"cacheScope" => HAS_CACHE_SCOPE,
        _ => 0,
    }
}

/// One top-level member: its name (as written in the payload, without escapes), where its value
/// starts and ends in the payload, and what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Top<'p> {
    pub name: &'p [u8],
    pub value: (usize, usize),
    pub member: Member,
}

/// Room for the top-level members of an answer, in order.
pub type Members<'p> = [Top<'p>; MAX_MEMBERS];

/// An empty member, to fill [`Members`] with.
pub const NONE: Top<'static> = Top { name: b"", value: (0, 0), member: Member::Other };

/// The verdict of [`members`].
#[derive(Debug)]
pub enum Scan {
    /// A JSON object of this many members (the first ones of the [`Members`] given).
    Object(usize),
    /// Valid JSON that is not an object.
    NotObject,
    /// Not JSON.
    Invalid,
    /// Not decided here (module doc).
    Declined,
}

/// Why the scan stopped early.
enum Stop {
    Invalid,
    Declined,
}

/// Bytes a string holds without escaping: not `"`, `\`, or a control character.
static PLAIN: [bool; 256] = {
    let mut t = [true; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = false;
        c += 1;
    }
    t[b'"' as usize] = false;
    t[b'\\' as usize] = false;
    t
};

/// The bytes of `word` (little-endian) that a string cannot hold as they are (`"`, `\`, a
/// control character): the high bit of the first such byte is the lowest bit set (bits above it
/// may be set spuriously by borrows, never bits below).
/// The writer's `json::clean_prefix` tests the same bytes; the scan keeps its own copy because it
/// also gathers the words' high bits (the UTF-8 check) in the same loop and stays inline: calling
/// `clean_prefix` plus an `is_ascii` pass cost +516 instructions per proxied call (measured).
#[inline(always)]
fn special(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    control | zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\')))
}

/// Past the string whose contents start at `i` (after its opening quote): the index after its
/// closing quote, and whether it has escapes. Plain bytes are skipped eight at a time; a string
/// with bytes above ASCII is checked to be UTF-8 (the only place JSON allows them).
#[inline(always)]
fn string(p: &[u8], start: usize) -> Result<(usize, bool), Stop> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = start;
    let mut escaped = false;
    let mut seen = 0u64;
    loop {
        while let Some(word) = p.get(i..i + 8) {
            let word =
                u64::from_le_bytes([word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7]]);
            // Bytes past the first special one may be counted too: a spurious check at worst.
            seen |= word;
            let hit = special(word);
            if hit != 0 {
                i += (hit.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        while let Some(&c) = p.get(i).filter(|&&c| PLAIN[c as usize]) {
            seen |= u64::from(c);
            i += 1;
        }
        match p.get(i) {
            Some(b'"') => {
                if seen & HIGH != 0 && std::str::from_utf8(&p[start..i]).is_err() {
                    return Err(Stop::Invalid);
                }
                return Ok((i + 1, escaped));
            }
            Some(b'\\') => {
                escaped = true;
                i = match p.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i + 2,
                    Some(b'u')
                        if p.get(i + 2..i + 6).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                    {
                        i + 6
                    }
                    _ => return Err(Stop::Invalid),
                };
            }
            _ => return Err(Stop::Invalid),
        }
    }
}

/// Past the number that starts at `i`:
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
#[inline(always)]
fn number(p: &[u8], mut i: usize) -> Result<usize, Stop> {
    let digits = |mut i: usize| {
        let start = i;
        while p.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(Stop::Invalid);
        }
        Ok(i)
    };
    if p.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match p.get(i) {
        Some(b'0') => i + 1,
        Some(b'1'..=b'9') => digits(i)?,
        _ => return Err(Stop::Invalid),
    };
    if p.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
    }
    if let Some(b'e' | b'E') = p.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = p.get(i) {
            i += 1;
        }
        i = digits(i)?;
    }
    Ok(i)
}

/// Past any whitespace at `i`.
#[inline(always)]
fn ws(p: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = p.get(i) {
        i += 1;
    }
    i
}

/// Scans `payload` (module doc) into `top`: one loop over its tokens, containers followed with
/// a bit per open level (object or array), nothing recursive.
pub fn members<'p>(payload: &'p [u8], top: &mut Members<'p>) -> Scan {
    match scan(payload, top) {
        Ok(Some(found)) => Scan::Object(found),
        Ok(None) => Scan::NotObject,
        Err(Stop::Invalid) => Scan::Invalid,
        Err(Stop::Declined) => Scan::Declined,
    }
}

fn scan<'p>(p: &'p [u8], top: &mut Members<'p>) -> Result<Option<usize>, Stop> {
    let mut n = 0;
    // Open containers: bit 0 is the innermost (1: object); `depth` of them.
    let mut open: u128 = 0;
    let mut depth: u32 = 0;
    // The top-level member whose value is being read, and whether it is `result` (its object's
    // members are counted at depth 2).
    let mut reading: Option<usize> = None;
    let mut in_result = false;
    let mut i = ws(p, 0);
    let is_object = p.get(i) == Some(&b'{');
    loop {
        // A value at `i`: a scalar, or a container's opening up to its first member or element.
        i = ws(p, i);
        match p.get(i) {
            Some(&c @ (b'{' | b'[')) => {
                i = ws(p, i + 1);
                let object = c == b'{';
                if p.get(i) == Some(if object { &b'}' } else { &b']' }) {
                    if depth == 1 && object {
                        if let Some((_, _, close)) = result_at(top, reading) {
                            *close = i;
                        }
                    }
                    i += 1;
                } else {
                    if depth == MAX_DEPTH + 2 {
                        return Err(Stop::Declined);
                    }
                    open = open << 1 | u128::from(object);
                    depth += 1;
                    if depth == 2 && object {
                        in_result = reading.is_some_and(|m| top[m].name == b"result");
                    }
                    if object {
                        i = name(p, i, depth, in_result, (top, &mut n, &mut reading))?;
                    }
                    continue;
                }
            }
            Some(b'"') => i = string(p, i + 1)?.0,
            Some(b'-' | b'0'..=b'9') => i = number(p, i)?,
            Some(b't') if p.get(i..i + 4) == Some(b"true") => i += 4,
            Some(b'f') if p.get(i..i + 5) == Some(b"false") => i += 5,
            Some(b'n') if p.get(i..i + 4) == Some(b"null") => i += 4,
            _ => return Err(Stop::Invalid),
        }
        // After a value: close what ends here, up to the next member or element.
        loop {
            if depth == 1 {
                if let Some(m) = reading.take() {
                    top[m].value.1 = i;
                }
            }
            if depth == 0 {
                return if ws(p, i) == p.len() { Ok(is_object.then_some(n)) } else { Err(Stop::Invalid) };
            }
            i = ws(p, i);
            let object = open & 1 == 1;
            match p.get(i) {
                Some(b',') => {
                    i = if object {
                        name(p, i + 1, depth, in_result, (top, &mut n, &mut reading))?
                    } else {
                        i + 1
                    };
                    break;
                }
                Some(b'}') if object => {
                    if depth == 2 && in_result {
                        if let Some((_, _, close)) = result_at(top, reading) {
                            *close = i;
                        }
                        in_result = false;
                    }
                }
                Some(b']') if !object => {}
                _ => return Err(Stop::Invalid),
            }
            i += 1;
            open >>= 1;
            depth -= 1;
        }
    }
}

/// The counts and closing brace of the top-level member being read (`reading`), when it is a
/// `result` object.
#[inline(always)]
fn result_at<'t>(
    top: &'t mut [Top<'_>; MAX_MEMBERS],
    reading: Option<usize>,
) -> Option<(&'t mut usize, &'t mut u8, &'t mut usize)> {
    match reading.map(|m| &mut top[m].member) {
        Some(Member::Result { members, has, close }) => Some((members, has, close)),
        _ => None,
    }
}

/// A member name at `i` (after whitespace) and its colon, at `depth`: recorded when it is a
/// top-level one, counted when it is a `result` object's (`in_result`). Past the colon and
/// the whitespace after it.
#[inline(always)]
fn name<'p>(
    p: &'p [u8],
    i: usize,
    depth: u32,
    in_result: bool,
    (top, n, reading): (&mut [Top<'p>; MAX_MEMBERS], &mut usize, &mut Option<usize>),
) -> Result<usize, Stop> {
    let i = ws(p, i);
    if p.get(i) != Some(&b'"') {
        return Err(Stop::Invalid);
    }
    let (end, escaped) = string(p, i + 1)?;
    let colon = ws(p, end);
    if p.get(colon) != Some(&b':') {
        return Err(Stop::Invalid);
    }
    let value = ws(p, colon + 1);
    if depth == 1 {
        if escaped {
            return Err(Stop::Declined);
        }
        let name = &p[i + 1..end - 1];
        let member = match name {
            b"id" => Member::Id,
            b"result" if p.get(value) == Some(&b'{') => Member::Result { members: 0, has: 0, close: 0 },
            _ => Member::Other,
        };
        *top.get_mut(*n).ok_or(Stop::Declined)? = Top { name, value: (value, value), member };
        *reading = Some(*n);
        *n += 1;
    } else if depth == 2 && in_result {
        if escaped {
            return Err(Stop::Declined);
        }
        if let Some((members, has, _)) = result_at(top, *reading) {
            *members += 1;
            *has |= added(&p[i + 1..end - 1]);
        }
    }
    Ok(value)
}

/// Whether `payload` is one JSON value per RFC 8259 (UTF-8 included); `None` when the scan
/// declines. For the fuzz differential.
pub fn is_json(payload: &[u8]) -> Option<bool> {
    match members(payload, &mut [NONE; MAX_MEMBERS]) {
        Scan::Object(_) | Scan::NotObject => Some(true),
        Scan::Invalid => Some(false),
        Scan::Declined => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn scanned(payload: &str) -> Vec<Top<'_>> {
        let mut top = [NONE; MAX_MEMBERS];
        match members(payload.as_bytes(), &mut top) {
            Scan::Object(n) => top[..n].to_vec(),
            other => panic!("{payload}: {other:?}"),
        }
    }

    #[test]
    fn the_grammar_is_rfc_8259s() {
        for ok in [
            "{}",
            " [ ] ",
            "0",
            "-0.5e+3",
            "1E9",
            "\"\\u00e9\\n\\/\\\"\"",
            "[1,[2,[3,{\"a\":[]}]],true,false,null]",
            "{\"a\" : {\"b\":{}} , \"c\":[{}]}\r\n",
            "\"é and a longer string of more than eight bytes ✓\"",
        ] {
            assert_eq!(is_json(ok.as_bytes()), Some(true), "{ok}");
            assert!(serde_json::from_str::<serde::de::IgnoredAny>(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "{",
            "}",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\"}",
            "{a:1}",
            "01",
            "1.",
            ".5",
            "+1",
            "-",
            "1e",
            "tru",
            "nul",
            "\"\\x\"",
            "\"\\u12g4\"",
            "\"a\nb\"",
            "[1 2]",
            "{} {}",
            "{\"a\":1 \"b\":2}",
            "[}",
            "{]",
            "\"unterminated",
            "{\"a\":1}}",
            "[1]]",
            "{\"a\":[}",
            "\"a\u{1}bcdefghij\"",
        ] {
            assert_eq!(is_json(bad.as_bytes()), Some(false), "{bad:?}");
            assert!(serde_json::from_str::<serde::de::IgnoredAny>(bad).is_err(), "{bad:?}");
        }
        // Bytes above ASCII: only UTF-8, only inside strings.
        for bad in [&b"\"\xff\""[..], b"\"abcdefgh\xc3\"", b"[\xc3\xa9]", b"\"\xed\xa0\x80\""] {
            assert_eq!(is_json(bad), Some(false), "{bad:?}");
        }
    }

    #[test]
    fn the_special_byte_found_first_is_the_first() {
        // Every special byte at every offset of a word, after plain ASCII and non-ASCII bytes.
        for special_byte in [b'"', b'\\', 0u8, 0x1f, b'\n'] {
            for filler in [b'a', 0xc3, 0x7f, b' '] {
                for at in 0..8 {
                    let mut word = [filler; 8];
                    word[at] = special_byte;
                    let hit = special(u64::from_le_bytes(word));
                    assert_eq!(hit.trailing_zeros() / 8, at as u32, "{word:?}");
                }
                assert_eq!(special(u64::from_le_bytes([filler; 8])), 0);
            }
        }
    }

    #[test]
    fn members_are_found_where_they_are_written() {
        let payload =
            r#"{"jsonrpc":"2.0", "id" : 7 ,"result":{"content":[{"text":"}"}],"resultType":"x"},"x":{}}"#;
        let found = scanned(payload);
        let text = |t: &Top<'_>| &payload[t.value.0..t.value.1];
        assert_eq!(found.len(), 4);
        assert_eq!((found[1].name, found[1].member, text(&found[1])), (&b"id"[..], Member::Id, "7"));
        let Member::Result { members: 2, has: HAS_RESULT_TYPE, close } = found[2].member else { panic!() };
        assert_eq!(text(&found[2]), r#"{"content":[{"text":"}"}],"resultType":"x"}"#);
        assert_eq!(close, found[2].value.1 - 1);
        assert_eq!((found[3].name, found[3].member, text(&found[3])), (&b"x"[..], Member::Other, "{}"));
        // An empty result object's closing brace, and a result that is not an object.
        let found = scanned(r#"{"result":{ },"id":"a"}"#);
        assert_eq!(found[0].member, Member::Result { members: 0, has: 0, close: 12 });
        assert_eq!(scanned(r#"{"result":[{"a":1}]}"#)[0].member, Member::Other);
        let mut top = [NONE; MAX_MEMBERS];
        assert!(matches!(members(b"[1]", &mut top), Scan::NotObject));
    }

    #[test]
    fn what_the_scan_need_not_decide_it_declines() {
        let declined =
            |payload: &str| matches!(members(payload.as_bytes(), &mut [NONE; MAX_MEMBERS]), Scan::Declined);
        assert!(declined(r#"{"\u0069d":1,"result":{}}"#));
        assert!(declined(r#"{"result":{"ttl\u004ds":1}}"#));
        let many = format!("{{{}}}", (0..9).map(|n| format!("\"m{n}\":{n}")).collect::<Vec<_>>().join(","));
        assert!(declined(&many));
        let deep = format!("{{\"result\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(declined(&deep));
        let deep_ok = format!("{{\"result\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(!declined(&deep_ok));
    }
}
