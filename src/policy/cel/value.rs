//! CEL values over borrowed data: scalars, strings, lists and maps that are either built by
//! the expression or views into request data left where it is - a simd-json tape, a
//! `serde_json` tree, a verified token's claims tape and scopes (`auth::claims`,
//! `auth::principal`), or a computed map behind [`MapView`].
//!
//! JSON mapping (a documented departure from cel-spec, which maps every JSON number to
//! `double`): a JSON number written without fraction or exponent is an `int` when it fits
//! `i64` (a `uint` above that), any other number a `double`. Rules then read the way they are
//! written: `args.count + 1`, `args.n % 2 == 0` and `args.limit <= 100` all work, and because
//! CEL compares numbers across types by value, `args.count == 3.0` still holds as the spec's
//! mapping would have it.

use std::cmp::Ordering;
use std::fmt;
use std::rc::Rc;

use simd_json::{Node, StaticNode};

use super::common::ErrorKind;
use super::parse::Lit;
use crate::auth::claims::{Claim, Items, Json, Members};
use crate::auth::principal::Scopes;
use crate::mcp::json;

/// A CEL value. Strings, lists and maps may borrow from the program or the request.
#[derive(Clone)]
pub enum Value<'a> {
    /// `null`.
    Null,
    /// `bool`.
    Bool(bool),
    /// `int` (64-bit signed).
    Int(i64),
    /// `uint` (64-bit unsigned).
    Uint(u64),
    /// `double`.
    Double(f64),
    /// `string`.
    String(Str<'a>),
    /// `list`.
    List(List<'a>),
    /// `map`.
    Map(Map<'a>),
}

/// A string, borrowed or built during evaluation (concatenation, `string()`).
#[derive(Clone)]
pub enum Str<'a> {
    /// Borrowed from the program or the request.
    Borrowed(&'a str),
    /// Built by the expression.
    Shared(Rc<str>),
}

impl std::ops::Deref for Str<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Str::Borrowed(s) => s,
            Str::Shared(s) => s,
        }
    }
}

/// A map computed by the host rather than stored as JSON (request headers, the `request`
/// variable itself). Keys are strings. Implementations should be cheap to query: `get` runs
/// on every selection, `len` and `entry` only for `size()`, iteration and equality.
pub trait MapView {
    /// Number of entries.
    fn len(&self) -> usize;

    /// Whether there are no entries.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value under `key`.
    fn get(&self, key: &str) -> Option<Value<'_>>;

    /// The entry at `index` (`0..len()`), for iteration; keys must be distinct.
    fn entry(&self, index: usize) -> Option<(Value<'_>, Value<'_>)>;
}

/// A list value.
#[derive(Clone)]
pub struct List<'a>(ListRepr<'a>);

#[derive(Clone)]
enum ListRepr<'a> {
    /// A tape slice whose first node is an array.
    Tape(&'a [Node<'a>]),
    Serde(&'a [serde_json::Value]),
    Scopes(Scopes<'a>),
    /// A claims tape node that is an array.
    Claims(Claim<'a>),
    Lits(&'a [Lit]),
    Owned(Rc<Vec<Value<'a>>>),
}

/// A map value.
#[derive(Clone)]
pub struct Map<'a>(MapRepr<'a>);

#[derive(Clone)]
enum MapRepr<'a> {
    /// A tape slice whose first node is an object.
    Tape(&'a [Node<'a>]),
    Serde(&'a serde_json::Map<String, serde_json::Value>),
    View(&'a dyn MapView),
    /// A claims tape node that is an object (no duplicate names: refused when parsed).
    Claims(Claim<'a>),
    /// Built by a map literal; keys are distinct.
    Owned(Rc<Vec<(Value<'a>, Value<'a>)>>),
}

impl<'a> Value<'a> {
    /// A borrowed string.
    pub fn str(s: &'a str) -> Self {
        Value::String(Str::Borrowed(s))
    }

    /// The JSON value at `v[0]` of a simd-json tape, read in place (an empty slice is null).
    pub fn from_tape(v: &'a [Node<'a>]) -> Self {
        match v.first() {
            None | Some(Node::Static(StaticNode::Null)) => Value::Null,
            Some(Node::Static(StaticNode::Bool(b))) => Value::Bool(*b),
            Some(Node::Static(StaticNode::I64(n))) => Value::Int(*n),
            Some(Node::Static(StaticNode::U64(n))) => match i64::try_from(*n) {
                Ok(i) => Value::Int(i),
                Err(_) => Value::Uint(*n),
            },
            Some(Node::Static(StaticNode::F64(f))) => Value::Double(*f),
            Some(Node::String(s)) => Value::str(s),
            Some(Node::Array { .. }) => Value::List(List(ListRepr::Tape(v))),
            Some(Node::Object { .. }) => Value::Map(Map(MapRepr::Tape(v))),
        }
    }

    /// A claim of a verified token, read in place.
    pub fn from_claim(c: Claim<'a>) -> Self {
        match c.json() {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Int(i) => Value::Int(i),
            Json::Uint(u) => match i64::try_from(u) {
                Ok(i) => Value::Int(i),
                Err(_) => Value::Uint(u),
            },
            Json::Double(f) => Value::Double(f),
            Json::Str(s) => Value::str(s),
            Json::Array(a) => Value::List(List(ListRepr::Claims(a))),
            Json::Object(o) => Value::Map(Map(MapRepr::Claims(o))),
        }
    }

    /// A `serde_json` value, read in place.
    pub fn from_serde(v: &'a serde_json::Value) -> Self {
        use serde_json::Value as J;
        match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Value::Uint(u)
                } else {
                    Value::Double(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            J::String(s) => Value::str(s),
            J::Array(a) => Value::List(List(ListRepr::Serde(a))),
            J::Object(m) => Value::Map(Map::serde(m)),
        }
    }

    /// The CEL type name (`int`, `string`, `map`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null_type",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint",
            Value::Double(_) => "double",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bool, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl Lit {
    /// The constant as a value borrowing the program.
    pub(super) fn value(&self) -> Value<'_> {
        match self {
            Lit::Null => Value::Null,
            Lit::Bool(b) => Value::Bool(*b),
            Lit::Int(n) => Value::Int(*n),
            Lit::Uint(n) => Value::Uint(*n),
            Lit::Double(f) => Value::Double(*f),
            Lit::Str(s) => Value::str(s),
        }
    }
}

impl<'a> List<'a> {
    /// The array at `v[0]` of a tape; `None` if it is not an array.
    pub fn tape(v: &'a [Node<'a>]) -> Option<Self> {
        matches!(v.first(), Some(Node::Array { .. })).then_some(List(ListRepr::Tape(v)))
    }

    /// A `serde_json` array.
    pub fn serde(v: &'a [serde_json::Value]) -> Self {
        List(ListRepr::Serde(v))
    }

    /// A principal's scopes.
    pub fn scopes(v: Scopes<'a>) -> Self {
        List(ListRepr::Scopes(v))
    }

    /// A list built from values.
    pub fn from_values(v: Vec<Value<'a>>) -> Self {
        List(ListRepr::Owned(Rc::new(v)))
    }

    pub(super) fn lits(v: &'a [Lit]) -> Self {
        List(ListRepr::Lits(v))
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.0 {
            ListRepr::Tape(v) => match v.first() {
                Some(Node::Array { len, .. }) => *len,
                _ => 0,
            },
            ListRepr::Serde(v) => v.len(),
            ListRepr::Scopes(v) => v.len(),
            ListRepr::Claims(c) => c.len(),
            ListRepr::Lits(v) => v.len(),
            ListRepr::Owned(v) => v.len(),
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element at `i` (on a tape this skips `i` elements, each skip O(1)).
    pub fn get(&self, i: usize) -> Option<Value<'a>> {
        match &self.0 {
            ListRepr::Tape(_) => self.iter().nth(i),
            ListRepr::Serde(v) => v.get(i).map(Value::from_serde),
            ListRepr::Scopes(v) => v.get(i).map(Value::str),
            ListRepr::Claims(c) => c.items().nth(i).map(Value::from_claim),
            ListRepr::Lits(v) => v.get(i).map(Lit::value),
            ListRepr::Owned(v) => v.get(i).cloned(),
        }
    }

    /// Iterates the elements.
    pub fn iter(&self) -> ListIter<'a> {
        let claims = match &self.0 {
            ListRepr::Claims(c) => Some(c.items()),
            _ => None,
        };
        ListIter { list: self.0.clone(), idx: 0, pos: 1, len: self.len(), claims }
    }
}

/// Iterator over a [`List`].
pub struct ListIter<'a> {
    list: ListRepr<'a>,
    idx: usize,
    /// Next node on the tape.
    pos: usize,
    len: usize,
    claims: Option<Items<'a>>,
}

impl<'a> Iterator for ListIter<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        if self.idx >= self.len {
            return None;
        }
        let i = self.idx;
        self.idx += 1;
        match &self.list {
            ListRepr::Tape(v) => {
                let v: &'a [Node<'a>] = v;
                let rest = v.get(self.pos..)?;
                let n = json::value_len(rest);
                self.pos += n;
                Some(Value::from_tape(rest.get(..n)?))
            }
            ListRepr::Serde(v) => v.get(i).map(Value::from_serde),
            ListRepr::Scopes(v) => v.get(i).map(Value::str),
            ListRepr::Claims(_) => self.claims.as_mut()?.next().map(Value::from_claim),
            ListRepr::Lits(v) => {
                let v: &'a [Lit] = v;
                v.get(i).map(Lit::value)
            }
            ListRepr::Owned(v) => v.get(i).cloned(),
        }
    }
}

impl<'a> Map<'a> {
    /// The object at `v[0]` of a tape; `None` if it is not an object.
    pub fn tape(v: &'a [Node<'a>]) -> Option<Self> {
        matches!(v.first(), Some(Node::Object { .. })).then_some(Map(MapRepr::Tape(v)))
    }

    /// A `serde_json` object.
    pub fn serde(m: &'a serde_json::Map<String, serde_json::Value>) -> Self {
        Map(MapRepr::Serde(m))
    }

    /// A claims object (a principal's claims, or a member of them).
    pub fn claims(c: Claim<'a>) -> Self {
        Map(MapRepr::Claims(c))
    }

    /// A host-computed map.
    pub fn view(m: &'a dyn MapView) -> Self {
        Map(MapRepr::View(m))
    }

    /// A map from distinct keys (the caller checks).
    pub(super) fn owned(entries: Vec<(Value<'a>, Value<'a>)>) -> Self {
        Map(MapRepr::Owned(Rc::new(entries)))
    }

    /// Number of entries. A JSON object that repeats a key counts each occurrence.
    pub fn len(&self) -> usize {
        match &self.0 {
            MapRepr::Tape(v) => match v.first() {
                Some(Node::Object { len, .. }) => *len,
                _ => 0,
            },
            MapRepr::Serde(m) => m.len(),
            MapRepr::View(m) => m.len(),
            MapRepr::Claims(c) => c.len(),
            MapRepr::Owned(m) => m.len(),
        }
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries a lookup may scan (for the cost bound): tape objects and literals are scanned
    /// linearly, the others are hashed or host-indexed.
    pub(super) fn scan_len(&self) -> usize {
        match &self.0 {
            MapRepr::Tape(_) | MapRepr::Owned(_) | MapRepr::Claims(_) => self.len(),
            MapRepr::Serde(_) | MapRepr::View(_) => 1,
        }
    }

    /// The value under string `key`.
    ///
    /// A tape object that holds `key` twice is an error, not its first value: JSON parsers
    /// disagree on which duplicate wins, and a rule must not approve a value the backend
    /// will not read.
    pub fn get_str(&self, key: &str) -> Result<Option<Value<'a>>, ErrorKind> {
        match &self.0 {
            MapRepr::Tape(v) => {
                let v: &'a [Node<'a>] = v;
                let mut found = None;
                for (k, val) in json::entries(v) {
                    if k == key && found.replace(val).is_some() {
                        return Err(ErrorKind::DuplicateKey);
                    }
                }
                Ok(found.map(Value::from_tape))
            }
            MapRepr::Serde(m) => {
                let m: &'a serde_json::Map<String, serde_json::Value> = m;
                Ok(m.get(key).map(Value::from_serde))
            }
            MapRepr::View(m) => {
                let m: &'a dyn MapView = *m;
                Ok(m.get(key))
            }
            MapRepr::Claims(c) => Ok(c.get(key).map(Value::from_claim)),
            MapRepr::Owned(m) => Ok(m.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v.clone())),
        }
    }

    /// The value under `key`; keys of other types than the map holds find nothing. Numeric
    /// keys match across int, uint and double by value, as CEL's equality does.
    pub fn get(&self, key: &Value<'_>) -> Result<Option<Value<'a>>, ErrorKind> {
        match (&self.0, key) {
            (MapRepr::Owned(m), _) => Ok(m.iter().find(|(k, _)| key_eq(k, key)).map(|(_, v)| v.clone())),
            (_, Value::String(s)) => self.get_str(s),
            _ => Ok(None),
        }
    }

    /// Whether `key` is present (a repeated JSON key is present).
    pub fn contains_key(&self, key: &Value<'_>) -> bool {
        match (&self.0, key) {
            (MapRepr::Tape(v), Value::String(s)) => json::entries(v).any(|(k, _)| k == &**s),
            (MapRepr::Owned(m), _) => m.iter().any(|(k, _)| key_eq(k, key)),
            _ => self.get(key).ok().flatten().is_some(),
        }
    }

    /// Iterates (key, value) entries in order.
    pub fn iter(&self) -> MapIter<'a> {
        let claims = match &self.0 {
            MapRepr::Claims(c) => Some(c.members()),
            _ => None,
        };
        MapIter { map: self.0.clone(), idx: 0, pos: 1, len: self.len(), serde: None, claims }
    }
}

/// Iterator over a [`Map`]'s entries.
pub struct MapIter<'a> {
    map: MapRepr<'a>,
    idx: usize,
    /// Next node on the tape.
    pos: usize,
    len: usize,
    serde: Option<serde_json::map::Iter<'a>>,
    claims: Option<Members<'a>>,
}

impl<'a> Iterator for MapIter<'a> {
    type Item = (Value<'a>, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.idx >= self.len {
            return None;
        }
        let i = self.idx;
        self.idx += 1;
        match &self.map {
            MapRepr::Tape(v) => {
                let v: &'a [Node<'a>] = v;
                let key = match v.get(self.pos)? {
                    Node::String(k) => *k,
                    _ => return None,
                };
                let rest = v.get(self.pos + 1..)?;
                let n = json::value_len(rest);
                self.pos += 1 + n;
                Some((Value::str(key), Value::from_tape(rest.get(..n)?)))
            }
            MapRepr::Serde(m) => {
                let m: &'a serde_json::Map<String, serde_json::Value> = m;
                let it = self.serde.get_or_insert_with(|| m.iter());
                it.next().map(|(k, v)| (Value::str(k), Value::from_serde(v)))
            }
            MapRepr::View(m) => {
                let m: &'a dyn MapView = *m;
                m.entry(i)
            }
            MapRepr::Claims(_) => {
                self.claims.as_mut()?.next().map(|(k, v)| (Value::str(k), Value::from_claim(v)))
            }
            MapRepr::Owned(m) => m.get(i).cloned(),
        }
    }
}

/// Key equality for map literals: strings, bools, and numbers across types.
fn key_eq(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => **x == **y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        _ => num_cmp(a, b) == Some(Some(Ordering::Equal)),
    }
}

/// The evaluation budget: every step of work is charged, and running out is an error.
pub(super) struct Budget {
    pub(super) left: u64,
}

impl Budget {
    #[inline]
    pub(super) fn charge(&mut self, n: u64) -> Result<(), ErrorKind> {
        match self.left.checked_sub(n) {
            Some(l) => {
                self.left = l;
                Ok(())
            }
            None => {
                self.left = 0;
                Err(ErrorKind::CostExceeded)
            }
        }
    }
}

/// How deep equality follows nested lists and maps. Request JSON can nest far deeper (the
/// envelope decoder accepts any depth), and the comparison recurses.
const MAX_DATA_DEPTH: u32 = 64;

/// 2^63 and 2^64 as doubles (both exact).
const TWO_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_64: f64 = 18_446_744_073_709_551_616.0;

fn cmp_int_double(i: i64, d: f64) -> Option<Ordering> {
    if d.is_nan() {
        return None;
    }
    if d >= TWO_63 {
        return Some(Ordering::Less);
    }
    if d < -TWO_63 {
        return Some(Ordering::Greater);
    }
    let t = d.trunc();
    // In range, so the conversion is exact.
    Some(i.cmp(&(t as i64)).then_with(|| 0.0_f64.partial_cmp(&(d - t)).unwrap_or(Ordering::Equal)))
}

fn cmp_uint_double(u: u64, d: f64) -> Option<Ordering> {
    if d.is_nan() {
        return None;
    }
    if d < 0.0 {
        return Some(Ordering::Greater);
    }
    if d >= TWO_64 {
        return Some(Ordering::Less);
    }
    let t = d.trunc();
    Some(u.cmp(&(t as u64)).then_with(|| 0.0_f64.partial_cmp(&(d - t)).unwrap_or(Ordering::Equal)))
}

/// Orders two numbers of any numeric types exactly. Outer `None`: not both numbers; inner
/// `None`: unordered (NaN).
fn num_cmp(a: &Value<'_>, b: &Value<'_>) -> Option<Option<Ordering>> {
    use Value::{Double, Int, Uint};
    Some(match (a, b) {
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (Uint(x), Uint(y)) => Some(x.cmp(y)),
        (Double(x), Double(y)) => x.partial_cmp(y),
        (Int(x), Uint(y)) => Some(if *x < 0 { Ordering::Less } else { (*x as u64).cmp(y) }),
        (Uint(x), Int(y)) => Some(if *y < 0 { Ordering::Greater } else { x.cmp(&(*y as u64)) }),
        (Int(x), Double(y)) => cmp_int_double(*x, *y),
        (Double(x), Int(y)) => cmp_int_double(*y, *x).map(Ordering::reverse),
        (Uint(x), Double(y)) => cmp_uint_double(*x, *y),
        (Double(x), Uint(y)) => cmp_uint_double(*y, *x).map(Ordering::reverse),
        _ => return None,
    })
}

/// CEL equality (cel-spec "Equality"): values of different kinds are unequal rather than an
/// error, numbers compare by value across types, NaN equals nothing, lists element-wise, maps
/// by key set and values. Errors only when the budget runs out, when data nests deeper than
/// [`MAX_DATA_DEPTH`], or on a repeated JSON key.
pub(super) fn equal(
    a: &Value<'_>,
    b: &Value<'_>,
    budget: &mut Budget,
    depth: u32,
) -> Result<bool, ErrorKind> {
    if depth > MAX_DATA_DEPTH {
        return Err(ErrorKind::TooDeep);
    }
    Ok(match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::String(x), Value::String(y)) => {
            budget.charge(x.len() as u64 / 64)?;
            **x == **y
        }
        (Value::List(x), Value::List(y)) => {
            if x.len() != y.len() {
                return Ok(false);
            }
            for (p, q) in x.iter().zip(y.iter()) {
                budget.charge(1)?;
                if !equal(&p, &q, budget, depth + 1)? {
                    return Ok(false);
                }
            }
            true
        }
        (Value::Map(x), Value::Map(y)) => {
            if x.len() != y.len() {
                return Ok(false);
            }
            for (k, v) in x.iter() {
                budget.charge(1 + y.scan_len() as u64 / 16)?;
                match y.get(&k)? {
                    Some(w) if equal(&v, &w, budget, depth + 1)? => {}
                    _ => return Ok(false),
                }
            }
            true
        }
        _ => num_cmp(a, b) == Some(Some(Ordering::Equal)),
    })
}

/// CEL ordering for `<`, `<=`, `>`, `>=`: numbers across types, strings by code point, bools;
/// other kinds have no overload, and NaN cannot be ordered (an error, as in cel-go's
/// `Double.Compare`: "NaN values cannot be ordered").
pub(super) fn compare(a: &Value<'_>, b: &Value<'_>) -> Result<Ordering, ErrorKind> {
    match (a, b) {
        // UTF-8 byte order is code point order.
        (Value::String(x), Value::String(y)) => Ok(x.as_bytes().cmp(y.as_bytes())),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        _ => num_cmp(a, b).ok_or(ErrorKind::NoSuchOverload)?.ok_or(ErrorKind::NaN),
    }
}

/// Formats a double as cel-go's `string(double)` does, which is Go's `%g`: the shortest digits
/// that round-trip, in exponent form (`1e+06`, two exponent digits at least) when the decimal
/// exponent is below -4 or at least 6 (Go's `strconv`: "if precision was the shortest
/// possible, use precision 6 for this decision").
pub(super) fn format_double(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e6", "0e0".
    let sci = format!("{f:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let mut out = String::with_capacity(digits.len() + 8);
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_value(self, f, 0)
    }
}

/// CEL-like rendering, cut off below a fixed depth (request data may nest arbitrarily).
fn fmt_value(v: &Value<'_>, f: &mut fmt::Formatter<'_>, depth: u32) -> fmt::Result {
    if depth > 16 {
        return f.write_str("...");
    }
    match v {
        Value::Null => f.write_str("null"),
        Value::Bool(b) => write!(f, "{b}"),
        Value::Int(n) => write!(f, "{n}"),
        Value::Uint(n) => write!(f, "{n}u"),
        Value::Double(d) => write!(f, "{d:?}"),
        Value::String(s) => write!(f, "{:?}", &**s),
        Value::List(l) => {
            f.write_str("[")?;
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                fmt_value(&e, f, depth + 1)?;
            }
            f.write_str("]")
        }
        Value::Map(m) => {
            f.write_str("{")?;
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                fmt_value(&k, f, depth + 1)?;
                f.write_str(": ")?;
                fmt_value(&e, f, depth + 1)?;
            }
            f.write_str("}")
        }
    }
}

impl fmt::Debug for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_value(&Value::List(self.clone()), f, 0)
    }
}

impl fmt::Debug for Map<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_value(&Value::Map(self.clone()), f, 0)
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &**self)
    }
}
