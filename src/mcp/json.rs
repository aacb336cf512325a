//! JSON for the hot path: a writer that appends to reused buffers (strings escaped per RFC 8259,
//! integers without allocation) and helpers that walk a simd-json tape without building a tree.
//!
//! A tape is a flat `[Node]`: containers carry the number of nodes below them (`count`), so
//! skipping a value is one addition and looking up a key is a scan of that object's keys only.

use simd_json::{Node, StaticNode};

/// Number of tape nodes the value at `v[0]` occupies (itself and everything under it).
#[inline]
pub fn value_len(v: &[Node<'_>]) -> usize {
    match v.first() {
        Some(Node::Object { count, .. }) | Some(Node::Array { count, .. }) => count + 1,
        _ => 1,
    }
}

/// Whether any object within the value at `v[0]`, at any depth, has a key twice. Parsers
/// differ on which copy wins (the first here, the last in Python's `json`), so a value with a
/// repeated key would be judged on one copy and acted on with another. Linear in the tape, no
/// recursion (depth comes from the client); allocates only for objects of more than 8 keys.
pub fn has_duplicate_key(v: &[Node<'_>]) -> bool {
    let v = &v[..value_len(v).min(v.len())];
    v.iter().enumerate().any(|(i, n)| match n {
        Node::Object { len, .. } if *len > 1 => {
            let keys = entries(&v[i..]).map(|(k, _)| k);
            if *len <= 8 {
                let mut seen: [&str; 8] = [""; 8];
                for (j, k) in keys.enumerate() {
                    if seen[..j].contains(&k) {
                        return true;
                    }
                    seen[j] = k;
                }
                false
            } else {
                let mut all: Vec<&str> = keys.collect();
                all.sort_unstable();
                all.windows(2).any(|w| w[0] == w[1])
            }
        }
        _ => false,
    })
}

/// Iterates the (key, value) pairs of the object at `v[0]`; empty if it is not an object.
pub fn entries<'t, 'a>(v: &'t [Node<'a>]) -> Entries<'t, 'a> {
    match v.first() {
        Some(Node::Object { len, .. }) => Entries { tape: v, pos: 1, left: *len },
        _ => Entries { tape: v, pos: 0, left: 0 },
    }
}

/// Iterator over an object's entries on the tape.
pub struct Entries<'t, 'a> {
    tape: &'t [Node<'a>],
    pos: usize,
    left: usize,
}

impl<'t, 'a> Iterator for Entries<'t, 'a> {
    type Item = (&'a str, &'t [Node<'a>]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let key = match self.tape.get(self.pos) {
            Some(Node::String(k)) => *k,
            _ => return None,
        };
        let vstart = self.pos + 1;
        let rest = self.tape.get(vstart..)?;
        let n = value_len(rest);
        self.pos = vstart + n;
        Some((key, rest.get(..n)?))
    }
}

/// Iterates the elements of the array at `v[0]`; empty if it is not an array.
pub fn elements<'t, 'a>(v: &'t [Node<'a>]) -> impl Iterator<Item = &'t [Node<'a>]> {
    let mut left = match v.first() {
        Some(Node::Array { len, .. }) => *len,
        _ => 0,
    };
    let mut pos = 1;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        left -= 1;
        let rest = v.get(pos..)?;
        let n = value_len(rest);
        pos += n;
        rest.get(..n)
    })
}

/// The value of `key` in the object at `v[0]` (first occurrence).
pub fn get<'t, 'a>(v: &'t [Node<'a>], key: &str) -> Option<&'t [Node<'a>]> {
    entries(v).find(|(k, _)| *k == key).map(|(_, val)| val)
}

/// The string at `v[0]`, if it is one.
pub fn as_str<'a>(v: &[Node<'a>]) -> Option<&'a str> {
    match v.first() {
        Some(Node::String(s)) => Some(*s),
        _ => None,
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_escaped(out, s);
    out.push(b'"');
}

/// The open containers of [`write_value`]: the first 16 levels inline, deeper ones spilled to
/// the heap (deep nesting is legal JSON and must not overflow the stack).
#[derive(Default)]
struct Open {
    inline: [(usize, bool, bool); 16],
    len: usize,
    spill: Vec<(usize, bool, bool)>,
}

impl Open {
    fn push(&mut self, v: (usize, bool, bool)) {
        match self.inline.get_mut(self.len) {
            Some(slot) if self.spill.is_empty() => {
                *slot = v;
                self.len += 1;
            }
            _ => self.spill.push(v),
        }
    }

    fn last_mut(&mut self) -> Option<&mut (usize, bool, bool)> {
        if self.spill.is_empty() {
            self.len.checked_sub(1).and_then(|i| self.inline.get_mut(i))
        } else {
            self.spill.last_mut()
        }
    }

    fn pop(&mut self) {
        if self.spill.pop().is_none() {
            self.len = self.len.saturating_sub(1);
        }
    }
}

/// Appends the JSON-escaped content of `s` (no quotes).
pub fn write_escaped(out: &mut Vec<u8>, s: &str) {
    write_escaped_bytes(out, s.as_bytes())
}

/// Appends the JSON-escaped content of UTF-8 `bytes` (no quotes). Bytes >= 0x80 pass through, so
/// valid UTF-8 stays valid; only `"`, `\\` and control characters are escaped.
pub fn write_escaped_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Names, ids and most values have nothing to escape: find the first byte that needs it
    // eight at a time, copy what precedes it in one go, and walk bytewise only from there.
    let clean = clean_prefix(bytes);
    out.extend_from_slice(&bytes[..clean]);
    let bytes = &bytes[clean..];
    if bytes.is_empty() {
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// The length of the longest prefix of `bytes` without `"`, `\\` or a control character, found
/// eight bytes per step (SWAR: a byte below `n` sets its high bit in `(w - n*ONES) & !w & HIGH`;
/// the first flagged byte is exact, later ones may be false alarms, which the caller rechecks).
fn clean_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH;
    let mut done = 0;
    for chunk in bytes.chunks_exact(8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else { break };
        let w = u64::from_le_bytes(word);
        let flagged =
            below(w, 0x20) | below(w ^ (ONES * u64::from(b'"')), 1) | below(w ^ (ONES * u64::from(b'\\')), 1);
        if flagged != 0 {
            // Little-endian: the lowest flagged bit is the first such byte, and it is exact
            // (borrows only run toward higher bytes).
            return done + (flagged.trailing_zeros() / 8) as usize;
        }
        done += 8;
    }
    done + bytes[done..]
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .unwrap_or(bytes.len() - done)
}

/// Appends a signed integer.
pub fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    crate::http::response::write_u64(out, n.unsigned_abs());
}

/// Appends a float the way JavaScript would print it (shortest round-trip form); non-finite
/// values, which JSON cannot carry, become `null`.
pub fn write_f64(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        use std::io::Write;
        // `{}` never uses an exponent: 1e300 would be 301 digits, and anything past u64 would
        // not read back as a number. Exponent form keeps it short and a float.
        let _ = if f.abs() >= 1e16 { write!(out, "{f:e}") } else { write!(out, "{f}") };
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Re-serialises the value at `v[0]` as compact JSON.
///
/// Iterative, with an explicit stack: nesting depth comes from the client (arguments are
/// rendered by templates), and recursion would let a 4 MB `[[[[...` overflow the worker's stack.
pub fn write_value(out: &mut Vec<u8>, v: &[Node<'_>]) {
    let Some(first) = v.first() else {
        out.extend_from_slice(b"null");
        return;
    };
    // A scalar (most arguments' values) needs no stack of open containers.
    match first {
        Node::String(s) => return write_str(out, s),
        Node::Static(st) => return write_static(out, st),
        Node::Object { .. } | Node::Array { .. } => {}
    }
    // Open containers: (elements left, is object, next is the first). The tape lists object
    // members as key, value. Shallow values (the usual) never touch the heap.
    let mut stack = Open::default();
    let mut pos: usize = 0;
    let end = value_len(v).min(v.len());
    let mut node = first;
    loop {
        match node {
            Node::String(s) => write_str(out, s),
            Node::Static(st) => write_static(out, st),
            Node::Object { len, .. } => {
                out.push(b'{');
                stack.push((*len, true, true));
            }
            Node::Array { len, .. } => {
                out.push(b'[');
                stack.push((*len, false, true));
            }
        }
        pos += 1;
        // Close every container that has no elements left, then separate the next element.
        loop {
            let Some(top) = stack.last_mut() else { return };
            if top.0 == 0 {
                out.push(if top.1 { b'}' } else { b']' });
                stack.pop();
                continue;
            }
            if !top.2 {
                out.push(b',');
            }
            top.2 = false;
            top.0 -= 1;
            if top.1 {
                // Object member: key, colon, then the value node is processed by the outer loop.
                match v.get(pos) {
                    Some(Node::String(k)) => write_str(out, k),
                    _ => return,
                }
                out.push(b':');
                pos += 1;
            }
            break;
        }
        if pos >= end {
            return;
        }
        node = &v[pos];
    }
}

/// Appends a scalar.
pub fn write_static(out: &mut Vec<u8>, s: &StaticNode) {
    match s {
        StaticNode::Null => out.extend_from_slice(b"null"),
        StaticNode::Bool(true) => out.extend_from_slice(b"true"),
        StaticNode::Bool(false) => out.extend_from_slice(b"false"),
        StaticNode::I64(n) => write_i64(out, *n),
        StaticNode::U64(n) => crate::http::response::write_u64(out, *n),
        StaticNode::F64(f) => write_f64(out, *f),
    }
}

/// Bodies above this size leave the decoder's buffers to be freed rather than reused.
const SHRINK_ABOVE: usize = 256 * 1024;

/// Per-core JSON decoder: simd-json buffers, a tape and an input copy, all reused, so decoding a
/// request allocates nothing once they have grown to the working size.
///
/// simd-json unescapes strings in place, so the client's bytes are copied into `input` first:
/// the original body stays intact for forwarding.
pub struct Decoder {
    buffers: simd_json::Buffers,
    tape: simd_json::Tape<'static>,
    input: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            buffers: simd_json::Buffers::new(4096),
            tape: simd_json::Tape(Vec::new()),
            input: Vec::new(),
        }
    }
}

impl Decoder {
    /// Decodes `body` and calls `f` with its tape; `Err` carries simd-json's description.
    pub fn with_tape<R>(
        &mut self,
        body: &[u8],
        f: impl FnOnce(&[Node<'_>]) -> R,
    ) -> Result<R, simd_json::Error> {
        self.with_tape_at(body, |t, _| f(t))
    }

    /// [`Decoder::with_tape`], also passing the address of the decoder's copy of `body`: a string
    /// on the tape that needed no unescaping sits at the same offset there as in `body`, which
    /// is how the proxy rewrites one string (a tool name) and forwards the rest unchanged.
    pub fn with_tape_at<R>(
        &mut self,
        body: &[u8],
        f: impl FnOnce(&[Node<'_>], usize) -> R,
    ) -> Result<R, simd_json::Error> {
        // JSON has no raw NUL byte (not even in a string), but simd-json ends a number at one and
        // skips what follows up to the next structural character: `{"id":1\0junk}` would be read
        // as `{"id":1}` and the bytes forwarded as they are. Refused here, one SIMD search.
        if memchr::memchr(0, body).is_some() {
            return Err(simd_json::Error::generic(simd_json::ErrorType::UnexpectedCharacter));
        }
        self.input.clear();
        self.input.extend_from_slice(body);
        let mut tape = std::mem::replace(&mut self.tape, simd_json::Tape(Vec::new())).reset();
        let base = self.input.as_ptr() as usize;
        let res =
            simd_json::fill_tape(&mut self.input, &mut self.buffers, &mut tape).map(|()| f(&tape.0, base));
        self.tape = tape.reset();
        // A rare huge body must not pin its buffers (tens of MB for a 4 MB array) to the core
        // for the life of the process.
        if body.len() > SHRINK_ABOVE {
            *self = Decoder::default();
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_byte_anywhere_is_not_json() {
        let mut d = Decoder::default();
        for body in
            [&b"{\"jsonrpc\":\"2.0\",\"id\":-922\0zz,\"method\":\"ping\"}"[..], b"{\"a\":\"x\0\"}", b"[1]\0"]
        {
            assert!(d.with_tape(body, |_| ()).is_err(), "{}", String::from_utf8_lossy(body));
        }
        assert!(d.with_tape(b"{\"id\":-922}", |_| ()).is_ok());
    }

    #[test]
    fn escaping_finds_every_byte_that_needs_it_at_any_offset() {
        // The word-at-a-time scan against the definition, for every special byte at every
        // position of strings of up to three words, between plain and non-ASCII bytes.
        let naive = |bytes: &[u8]| {
            let mut out = Vec::new();
            for &b in bytes {
                match b {
                    b'"' => out.extend_from_slice(b"\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                    _ => out.push(b),
                }
            }
            out
        };
        let specials = [b'"', b'\\', 0, 0x1f, b'\n', 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']', 0x21, 0x5d];
        for len in 0..24 {
            for pos in 0..len.max(1) {
                for &sp in &specials {
                    for fill in [b'a', 0xe9, b' '] {
                        let mut v = vec![fill; len];
                        if len > 0 {
                            v[pos] = sp;
                        }
                        let mut out = Vec::new();
                        write_escaped_bytes(&mut out, &v);
                        assert_eq!(out, naive(&v), "{v:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn large_floats_keep_an_exponent_and_read_back() {
        for (f, text) in
            [(1e20, "1e20"), (-2.5e300, "-2.5e300"), (1234.5, "1234.5"), (1e15, "1000000000000000")]
        {
            let mut out = Vec::new();
            write_f64(&mut out, f);
            assert_eq!(out, text.as_bytes());
            let back: f64 = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, f);
            Decoder::default().with_tape(&out, |_| ()).unwrap();
        }
    }

    #[test]
    fn walks_nested_values() {
        let mut d = Decoder::default();
        let body = br#"{"a":{"b":[1,{"c":2}],"d":"x"},"e":[[],{}],"f":null}"#;
        d.with_tape(body, |t| {
            let a = get(t, "a").unwrap();
            assert_eq!(as_str(get(a, "d").unwrap()), Some("x"));
            assert_eq!(elements(get(a, "b").unwrap()).count(), 2);
            assert_eq!(elements(get(t, "e").unwrap()).count(), 2);
            assert!(get(t, "f").is_some());
            let mut out = Vec::new();
            write_value(&mut out, t);
            assert_eq!(out, body.to_vec());
        })
        .unwrap();
    }

    #[test]
    fn round_trips_and_survives_deep_nesting() {
        let mut d = Decoder::default();
        for body in [
            &br#"[]"#[..],
            br#"{}"#,
            br#"[[],{},[{}],{"a":[]}]"#,
            br#"{"a":{"b":{"c":[1,2,{"d":null}]}},"e":"x"}"#,
            br#""s""#,
            br#"[1,[2,[3,[4]]],5]"#,
        ] {
            d.with_tape(body, |t| {
                let mut out = Vec::new();
                write_value(&mut out, t);
                assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8(body.to_vec()).unwrap());
            })
            .unwrap();
        }
        // Regression: recursion here overflowed the stack for deeply nested client arguments.
        let depth = 200_000;
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        d.with_tape(deep.as_bytes(), |t| {
            let mut out = Vec::new();
            write_value(&mut out, t);
            assert_eq!(out.len(), 2 * depth);
        })
        .unwrap();
    }

    #[test]
    fn escapes_control_characters() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\n\u{1}é");
        assert_eq!(String::from_utf8(out).unwrap(), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
