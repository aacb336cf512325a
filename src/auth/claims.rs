//! A verified token's claims as a compact tape, parsed once under the strict rules of
//! [`super::strict`] and read in place: rules, CEL, rate-limit keys and `claimToHeaders` all read
//! the same tape, which lives in the principal's one allocation (see [`super::principal`]).
//!
//! The tape is a sequence of nodes of three words, `[tag, a, b]`, each word a `u32` written as
//! five bytes of seven bits (little end first): the tape is ASCII, so a record holding it and the
//! claims' text is one `str`, and reading a string from it is a boundary check, not a UTF-8
//! validation. Scalars carry their value in `a`/`b` (64 bits), a string its offset and length in
//! the text (unescaped UTF-8), an array or object its length and the index of the node after it.
//! An object's members follow it as a key (a string node) then the value, in document order, as
//! simd-json's tape has them. Duplicate member names are refused at any depth while parsing.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

const NULL: u32 = 0;
const TRUE: u32 = 1;
const FALSE: u32 = 2;
const INT: u32 = 3;
const UINT: u32 = 4;
const DOUBLE: u32 = 5;
const STR: u32 = 6;
const ARR: u32 = 7;
const OBJ: u32 = 8;

/// Bytes per word.
pub(crate) const WORD: usize = 5;
/// Bytes per node.
const NODE: usize = 3 * WORD;

/// Appends `w` as a word.
pub(crate) fn put_word(out: &mut Vec<u8>, w: u32) {
    out.extend_from_slice(&word_bytes(w));
}

/// `w` as a word's five ASCII bytes.
fn word_bytes(w: u32) -> [u8; WORD] {
    [0, 7, 14, 21, 28].map(|shift| ((w >> shift) & 0x7f) as u8)
}

/// The word at byte `at` of `bytes` (0 past the end).
pub(crate) fn word_at(bytes: &[u8], at: usize) -> u32 {
    match bytes.get(at..at + WORD) {
        Some(&[a, b, c, d, e]) => {
            a as u32 | (b as u32) << 7 | (c as u32) << 14 | (d as u32) << 21 | (e as u32) << 28
        }
        _ => 0,
    }
}

/// Where claims are parsed: the tape's words and text, and the member names of the objects
/// being parsed (to refuse duplicates). Reused: parsing into a warm tape does not allocate.
#[derive(Default)]
pub struct Tape {
    pub(crate) words: Vec<u8>,
    pub(crate) text: String,
    keys: Vec<(u32, u32)>,
}

impl Tape {
    /// Parses `bytes` as one JSON value under [`super::strict::parse`]'s rules (duplicate
    /// members refused at any depth, nesting bounded by `max_depth`), replacing what the tape
    /// held.
    pub fn parse(&mut self, bytes: &[u8], max_depth: u32) -> Result<(), serde_json::Error> {
        self.words.clear();
        self.text.clear();
        self.keys.clear();
        let mut de = serde_json::Deserializer::from_slice(bytes);
        Build { tape: self, depth: max_depth }.deserialize(&mut de)?;
        de.end()
    }

    /// The parsed value.
    pub fn root(&self) -> Claim<'_> {
        Claim { doc: Doc { words: &self.words, text: &self.text }, at: 0 }
    }

    fn push(&mut self, tag: u32, a: u32, b: u32) -> u32 {
        let at = (self.words.len() / NODE) as u32;
        for w in [tag, a, b] {
            put_word(&mut self.words, w);
        }
        at
    }

    fn patch(&mut self, at: u32, a: u32, b: u32) {
        let i = at as usize * NODE;
        if let Some(w) = self.words.get_mut(i + WORD..i + NODE) {
            w[..WORD].copy_from_slice(&word_bytes(a));
            w[WORD..].copy_from_slice(&word_bytes(b));
        }
    }

    fn nodes(&self) -> u32 {
        (self.words.len() / NODE) as u32
    }

    fn text<E: de::Error>(&mut self, s: &str) -> Result<(u32, u32), E> {
        let off = u32::try_from(self.text.len()).map_err(|_| E::custom("too large"))?;
        let len = u32::try_from(s.len()).map_err(|_| E::custom("too large"))?;
        self.text.push_str(s);
        Ok((off, len))
    }
}

fn split(v: u64) -> (u32, u32) {
    (v as u32, (v >> 32) as u32)
}

struct Build<'t> {
    tape: &'t mut Tape,
    depth: u32,
}

impl Build<'_> {
    /// The seed for a nested value (the same rule as `strict::Strict::inner`).
    fn inner<E: de::Error>(&mut self) -> Result<Build<'_>, E> {
        match self.depth.checked_sub(1) {
            Some(depth) => Ok(Build { tape: self.tape, depth }),
            None => Err(E::custom("nested too deeply")),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Build<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Build<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.tape.push(if v { TRUE } else { FALSE }, 0, 0);
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        let (a, b) = split(v as u64);
        self.tape.push(INT, a, b);
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        let (a, b) = split(v);
        self.tape.push(UINT, a, b);
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        // As `strict::parse`: a number serde_json cannot hold is null.
        match v.is_finite() {
            true => {
                let (a, b) = split(v.to_bits());
                self.tape.push(DOUBLE, a, b)
            }
            false => self.tape.push(NULL, 0, 0),
        };
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let (off, len) = self.tape.text(v)?;
        self.tape.push(STR, off, len);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.tape.push(NULL, 0, 0);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let at = self.tape.push(ARR, 0, 0);
        let mut len = 0u32;
        while seq.next_element_seed(self.inner()?)?.is_some() {
            len += 1;
        }
        let end = self.tape.nodes();
        self.tape.patch(at, len, end);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let at = self.tape.push(OBJ, 0, 0);
        let base = self.tape.keys.len();
        let mut len = 0u32;
        while map.next_key_seed(Key(&mut *self.tape))?.is_some() {
            map.next_value_seed(self.inner()?)?;
            len += 1;
        }
        // Duplicates, by sorting this object's names (the top of the stack).
        let Tape { keys, text, .. } = &mut *self.tape;
        let name = |&(off, len): &(u32, u32)| text.get(off as usize..off as usize + len as usize);
        let mine = keys.get_mut(base..).unwrap_or_default();
        mine.sort_unstable_by(|a, b| name(a).cmp(&name(b)));
        if let Some(w) = mine.windows(2).find(|w| name(&w[0]) == name(&w[1])) {
            let dup = name(&w[0]).unwrap_or_default().to_owned();
            return Err(de::Error::custom(format_args!("duplicate member {dup:?}")));
        }
        keys.truncate(base);
        let end = self.tape.nodes();
        self.tape.patch(at, len, end);
        Ok(())
    }
}

/// A member name: a string node on the tape, remembered for the duplicate check.
struct Key<'t>(&'t mut Tape);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let span = self.0.text(v)?;
        self.0.push(STR, span.0, span.1);
        self.0.keys.push(span);
        Ok(())
    }
}

/// A tape and its text, wherever they are stored.
#[derive(Clone, Copy)]
pub(crate) struct Doc<'a> {
    pub(crate) words: &'a [u8],
    pub(crate) text: &'a str,
}

impl<'a> Doc<'a> {
    /// Node `i` (a missing node reads as null: a tape is always whole, this keeps reads total).
    fn node(self, i: u32) -> [u32; 3] {
        let at = i as usize * NODE;
        [0, 1, 2].map(|k| word_at(self.words, at + k * WORD))
    }

    fn str(self, off: u32, len: u32) -> &'a str {
        self.text.get(off as usize..off as usize + len as usize).unwrap_or_default()
    }

    /// The node after the value at `i`.
    fn next(self, i: u32) -> u32 {
        match self.node(i) {
            [ARR | OBJ, _, end] => end.max(i + 1),
            _ => i + 1,
        }
    }
}

/// One value of a claims tape, read in place.
#[derive(Clone, Copy)]
pub struct Claim<'a> {
    pub(crate) doc: Doc<'a>,
    pub(crate) at: u32,
}

/// What a [`Claim`] is.
#[derive(Clone, Copy)]
pub enum Json<'a> {
    /// `null` (also what an empty claims set's root reads as).
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    Uint(u64),
    /// Any other number.
    Double(f64),
    /// A string.
    Str(&'a str),
    /// An array.
    Array(Claim<'a>),
    /// An object.
    Object(Claim<'a>),
}

fn join(a: u32, b: u32) -> u64 {
    a as u64 | (b as u64) << 32
}

impl<'a> Claim<'a> {
    /// What this value is.
    pub fn json(self) -> Json<'a> {
        match self.doc.node(self.at) {
            [TRUE, ..] => Json::Bool(true),
            [FALSE, ..] => Json::Bool(false),
            [INT, a, b] => Json::Int(join(a, b) as i64),
            [UINT, a, b] => Json::Uint(join(a, b)),
            [DOUBLE, a, b] => Json::Double(f64::from_bits(join(a, b))),
            [STR, off, len] => Json::Str(self.doc.str(off, len)),
            [ARR, ..] => Json::Array(self),
            [OBJ, ..] => Json::Object(self),
            _ => Json::Null,
        }
    }

    /// The string, if this is one.
    pub fn as_str(self) -> Option<&'a str> {
        match self.json() {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if it is a non-negative integer.
    pub fn as_u64(self) -> Option<u64> {
        match self.json() {
            Json::Uint(u) => Some(u),
            _ => None,
        }
    }

    /// Where a string's text starts in the tape's text (0 for anything else).
    pub(crate) fn str_offset(self) -> usize {
        match self.doc.node(self.at) {
            [STR, off, _] => off as usize,
            _ => 0,
        }
    }

    /// The number as serde_json holds it (for formatting it exactly as JSON).
    pub fn number(self) -> Option<serde_json::Number> {
        match self.json() {
            Json::Int(i) => Some(i.into()),
            Json::Uint(u) => Some(u.into()),
            Json::Double(f) => serde_json::Number::from_f64(f),
            _ => None,
        }
    }

    /// Entries of an array or object (0 for anything else).
    pub fn len(self) -> usize {
        match self.doc.node(self.at) {
            [ARR | OBJ, len, _] => len as usize,
            _ => 0,
        }
    }

    /// Whether this has no entries (scalars have none).
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The elements of an array (none for anything else).
    pub fn items(self) -> Items<'a> {
        let len = match self.doc.node(self.at) {
            [ARR, len, _] => len,
            _ => 0,
        };
        Items { doc: self.doc, next: self.at + 1, left: len }
    }

    /// The members of an object in document order (none for anything else).
    pub fn members(self) -> Members<'a> {
        let len = match self.doc.node(self.at) {
            [OBJ, len, _] => len,
            _ => 0,
        };
        Members { doc: self.doc, next: self.at + 1, left: len }
    }

    /// The member `name` of an object.
    pub fn get(self, name: &str) -> Option<Claim<'a>> {
        self.members().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// The claim at a dotted path (`org.id`): each part names a member of the object before
    /// it. A top-level member whose name itself is `org.id` is not found (a token cannot stand
    /// in for a nested claim with a flat one). A path that is a URL
    /// (`https://corp.example/roles`: the namespaced claims OpenID Connect providers issue)
    /// names one top-level claim, dots and all.
    pub fn at_path(self, path: &str) -> Option<Claim<'a>> {
        if path.contains("://") {
            return self.get(path);
        }
        path.split('.').try_fold(self, |cur, part| cur.get(part))
    }

    /// The value as a `serde_json` tree (tests, the fuzz differential).
    pub fn to_serde(self) -> serde_json::Value {
        use serde_json::Value as J;
        match self.json() {
            Json::Null => J::Null,
            Json::Bool(b) => J::Bool(b),
            Json::Int(_) | Json::Uint(_) | Json::Double(_) => self.number().map_or(J::Null, J::Number),
            Json::Str(s) => J::String(s.into()),
            Json::Array(a) => J::Array(a.items().map(Claim::to_serde).collect()),
            Json::Object(o) => J::Object(o.members().map(|(k, v)| (k.to_string(), v.to_serde())).collect()),
        }
    }
}

/// Written as the JSON it was parsed from would be by `serde_json` (members in document order).
impl serde::Serialize for Claim<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.json() {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(b),
            Json::Int(i) => s.serialize_i64(i),
            Json::Uint(u) => s.serialize_u64(u),
            Json::Double(f) => s.serialize_f64(f),
            Json::Str(v) => s.serialize_str(v),
            Json::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for item in a.items() {
                    seq.serialize_element(&item)?;
                }
                seq.end()
            }
            Json::Object(o) => {
                let mut map = s.serialize_map(Some(o.len()))?;
                for (k, v) in o.members() {
                    map.serialize_entry(k, &v)?;
                }
                map.end()
            }
        }
    }
}

/// The elements of an array claim.
#[derive(Clone)]
pub struct Items<'a> {
    doc: Doc<'a>,
    next: u32,
    left: u32,
}

impl<'a> Iterator for Items<'a> {
    type Item = Claim<'a>;

    fn next(&mut self) -> Option<Claim<'a>> {
        self.left = self.left.checked_sub(1)?;
        let at = self.next;
        self.next = self.doc.next(at);
        Some(Claim { doc: self.doc, at })
    }
}

/// The members of an object claim: (name, value).
#[derive(Clone)]
pub struct Members<'a> {
    doc: Doc<'a>,
    next: u32,
    left: u32,
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, Claim<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        self.left = self.left.checked_sub(1)?;
        let key = match self.doc.node(self.next) {
            [STR, off, len] => self.doc.str(off, len),
            _ => return None,
        };
        let at = self.next + 1;
        self.next = self.doc.next(at);
        Some((key, Claim { doc: self.doc, at }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::auth::strict;

    fn same(text: &str) {
        let mut t = Tape::default();
        let ours = t.parse(text.as_bytes(), 8).map(|()| t.root().to_serde());
        let theirs = strict::parse(text.as_bytes(), 8);
        match (ours, theirs) {
            (Ok(a), Ok(b)) => {
                assert_eq!(serde_json::to_string(&t.root()).unwrap(), b.to_string(), "{text}");
                assert_eq!(a, b, "{text}");
            }
            (Err(_), Err(_)) => {}
            (a, b) => panic!("{text}: tape {a:?}, strict {b:?}"),
        }
    }

    #[test]
    fn reads_what_strict_parse_reads() {
        for text in [
            r#"{"iss":"https://idp","sub":"alice","exp":1700000000,"n":-3,"f":0.5,"big":18446744073709551615}"#,
            r#"{"a":{"b":[1,{"c":null}],"d":true},"e":false,"s":"caf\u00e9 \"q\""}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"o":{"x":1,"y":{"x":2,"x":3}}}"#,
            r#"[[[[[[[[[]]]]]]]]]"#,
            r#"[[[[[[[[]]]]]]]]"#,
            r#"{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{}}}}}}}}}"#,
            r#"{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":1}}}}}}}}}"#,
            r#"{} x"#,
            r#"{"a":1e400}"#,
            r#"{"a":"\ud800"}"#,
            r#"{}"#,
            r#"[]"#,
            r#""s""#,
            r#"{"k":[],"l":{},"m":[{},[]]}"#,
        ] {
            same(text);
        }
    }

    #[test]
    fn paths_lookups_and_order() {
        let mut t = Tape::default();
        t.parse(br#"{"z":1,"org":{"id":"acme","n":[1,2]},"org.id":"evil","https://x/roles":["a"]}"#, 8)
            .unwrap();
        let root = t.root();
        assert_eq!(root.at_path("org.id").unwrap().as_str(), Some("acme"));
        assert_eq!(root.at_path("https://x/roles").unwrap().items().count(), 1);
        assert!(root.at_path("org.n.x").is_none());
        assert_eq!(
            root.members().map(|(k, _)| k).collect::<Vec<_>>(),
            ["z", "org", "org.id", "https://x/roles"]
        );
        let n: Vec<_> = root.get("org").unwrap().get("n").unwrap().items().map(|c| c.to_serde()).collect();
        assert_eq!(n, [1, 2]);
        assert_eq!(root.len(), 4);
        assert!(Tape::default().root().get("x").is_none(), "an empty tape reads as null");
    }

    #[test]
    fn words_are_ascii_and_read_back() {
        for w in [0, 1, 0x7f, 0x80, 0x3fff, 0x4000, 0xdead_beef, u32::MAX] {
            let bytes = word_bytes(w);
            assert!(bytes.is_ascii());
            assert_eq!(word_at(&bytes, 0), w);
        }
        assert_eq!(word_at(&[1, 2, 3], 0), 0, "a short word reads as 0");
    }

    #[test]
    fn a_warm_tape_is_reused() {
        let mut t = Tape::default();
        t.parse(br#"{"a":"xyz","b":[1,2,3]}"#, 8).unwrap();
        let (w, x) = (t.words.capacity(), t.text.capacity());
        t.parse(br#"{"b":"xy","a":[3,2,1]}"#, 8).unwrap();
        assert_eq!((t.words.capacity(), t.text.capacity()), (w, x));
        assert_eq!(t.root().get("a").unwrap().items().count(), 3);
    }
}
