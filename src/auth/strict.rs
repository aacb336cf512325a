//! Strict JSON for security decisions (JOSE headers, JWT claims, JWKS): a duplicate member name
//! anywhere is an error (RFC 7515 4: "MUST reject" or last-wins - we reject, so two parsers can
//! never disagree about which `alg` or `sub` a token carries), and nesting is bounded.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parses `bytes` as one JSON value, rejecting duplicate members and nesting deeper than
/// `max_depth` objects/arrays.
pub fn parse(bytes: &[u8], max_depth: u32) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Strict { depth: max_depth }.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

struct Strict {
    depth: u32,
}

impl Strict {
    fn inner<E: de::Error>(&self) -> Result<Strict, E> {
        match self.depth.checked_sub(1) {
            Some(depth) => Ok(Strict { depth }),
            None => Err(E::custom("nested too deeply")),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.inner()?)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // Sized for a token's claims up front (JSON gives no size hint): growing from empty
        // reallocates the entries and the index on the way.
        let mut out = Map::with_capacity(map.size_hint().unwrap_or(8).min(64));
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(de::Error::custom(format_args!("duplicate member {k:?}")));
            }
            let v = map.next_value_seed(self.inner()?)?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// What the gateway reads of a JOSE header, borrowed from it where no escape forces a copy.
#[derive(Debug, Default)]
pub struct Header<'a> {
    /// `alg`: `Err` when present and not a string.
    pub alg: Option<Result<Cow<'a, str>, ()>>,
    /// `kid`: `Err` when present and not a string.
    pub kid: Option<Result<Cow<'a, str>, ()>>,
    /// `crit` or `b64` is present (JWS extensions the gateway refuses).
    pub extension: bool,
}

/// Parses a JOSE header under the same rules as [`parse`] (one object, no duplicate member at
/// any depth, nesting bounded by `max_depth`) without building it: the usual header, string and
/// number members only, is read without allocating.
pub fn header(bytes: &[u8], max_depth: u32) -> Result<Header<'_>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let h = de::Deserializer::deserialize_map(&mut de, HeaderVisitor(Strict { depth: max_depth }))?;
    de.end()?;
    Ok(h)
}

struct HeaderVisitor(Strict);

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Header<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header<'de>, A::Error> {
        let mut h = Header::default();
        let mut names = Names::default();
        while let Some(k) = map.next_key_seed(Text)? {
            let inner = Check(self.0.inner()?);
            match &*k {
                "alg" => h.alg = Some(map.next_value_seed(MaybeText(inner))?),
                "kid" => h.kid = Some(map.next_value_seed(MaybeText(inner))?),
                "crit" | "b64" => {
                    h.extension = true;
                    map.next_value_seed(inner)?;
                }
                _ => map.next_value_seed(inner)?,
            }
            names.add(k)?;
        }
        Ok(h)
    }
}

/// Member names of one object seen so far: the first 16 inline (a header has a handful), the
/// rest in a hash set, so a hostile object of thousands of members costs linear time.
#[derive(Default)]
struct Names<'de> {
    inline: [Cow<'de, str>; 16],
    len: usize,
    spill: HashSet<Cow<'de, str>>,
}

impl<'de> Names<'de> {
    /// Records `k`; a name seen before is an error.
    fn add<E: de::Error>(&mut self, k: Cow<'de, str>) -> Result<(), E> {
        let inline = self.inline.get(..self.len).unwrap_or_default();
        if inline.contains(&k) || self.spill.contains(&k) {
            return Err(E::custom(format_args!("duplicate member {k:?}")));
        }
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = k;
                self.len += 1;
            }
            None => {
                self.spill.insert(k);
            }
        }
        Ok(())
    }
}

/// A string, borrowed from the input when it has no escapes.
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

/// Any value, checked like [`parse`] does and kept only when it is a string.
struct MaybeText(Check);

impl<'de> DeserializeSeed<'de> for MaybeText {
    type Value = Result<Cow<'de, str>, ()>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MaybeText {
    type Value = Result<Cow<'de, str>, ()>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Ok(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Ok(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Ok(Cow::Owned(v)))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(()))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(()))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(()))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(()))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(seq).map(|()| Err(()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(map).map(|()| Err(()))
    }
}

/// Any value, checked like [`parse`] does (duplicates, depth) and not kept.
struct Check(Strict);

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Check(self.0.inner()?))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut names = Names::default();
        while let Some(k) = map.next_key_seed(Text)? {
            map.next_value_seed(Check(self.0.inner()?))?;
            names.add(k)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn duplicates_are_rejected_at_any_depth() {
        assert!(parse(br#"{"a":1,"a":2}"#, 8).is_err());
        assert!(parse(br#"{"x":{"a":1,"b":{"c":1,"c":1}}}"#, 8).is_err());
        assert!(parse(br#"[{"a":1},{"a":2}]"#, 8).is_ok());
    }

    #[test]
    fn depth_is_bounded() {
        assert!(parse(b"[[[[1]]]]", 4).is_ok());
        assert!(parse(b"[[[[[1]]]]]", 4).is_err());
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse(deep.as_bytes(), 32).is_err());
    }

    #[test]
    fn a_header_is_read_under_the_same_rules() {
        let h = header(br#"{"alg":"RS256","kid":"k\u0031","typ":"JWT","n":[1,{"a":true}]}"#, 4).unwrap();
        assert!(matches!(h.alg, Some(Ok(Cow::Borrowed("RS256")))));
        assert!(matches!(h.kid.as_ref(), Some(Ok(k)) if k == "k1"));
        assert!(!h.extension);
        let h = header(br#"{"alg":1,"kid":{"x":1},"crit":["exp"]}"#, 4).unwrap();
        assert_eq!((h.alg, h.kid, h.extension), (Some(Err(())), Some(Err(())), true));
        assert!(header(br#"{"b64":false}"#, 4).unwrap().extension);
        assert!(header(br#"{}"#, 4).unwrap().alg.is_none());
        // What `parse` refuses, `header` refuses.
        for bad in [
            &br#"{"alg":"RS256","alg":"none"}"#[..],
            br#"{"alg":"RS256","al\u0067":"none"}"#,
            br#"{"x":{"a":1,"a":2}}"#,
            br#"{"x":[{"a":1,"a":2}]}"#,
            br#"{"x":[[[[1]]]]}"#,
            br#"{"alg":"RS256"} x"#,
            br#"{"alg":"RS256""#,
        ] {
            assert!(parse(bad, 4).is_err(), "{}", String::from_utf8_lossy(bad));
            assert!(header(bad, 4).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        // A header is an object (`parse` leaves that to its caller).
        assert!(header(br#"["alg"]"#, 4).is_err());
        assert!(header(br#""alg""#, 4).is_err());
        let many: Vec<String> = (0..40).map(|i| format!("\"m{i}\":{i}")).collect();
        let wide = format!("{{{},\"m39\":0}}", many.join(","));
        assert!(header(wide.as_bytes(), 4).is_err(), "a duplicate past the inline names");
        let wide = format!("{{{}}}", many.join(","));
        assert!(header(wide.as_bytes(), 4).is_ok());
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        assert!(parse(br#"{"a":1} x"#, 4).is_err());
        assert_eq!(parse(br#" {"a":1.5} "#, 4).unwrap()["a"], 1.5);
    }
}
