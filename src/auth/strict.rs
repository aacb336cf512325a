//! Strict JSON for security decisions (JOSE headers, JWT claims, JWKS): a duplicate member name
//! anywhere is an error (RFC 7515 4: "MUST reject" or last-wins - we reject, so two parsers can
//! never disagree about which `alg` or `sub` a token carries), and nesting is bounded.

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
    fn trailing_garbage_is_rejected() {
        assert!(parse(br#"{"a":1} x"#, 4).is_err());
        assert_eq!(parse(br#" {"a":1.5} "#, 4).unwrap()["a"], 1.5);
    }
}
