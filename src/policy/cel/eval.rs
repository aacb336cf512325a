//! The evaluator: walks the checked AST over an activation, charging every step to a budget.
//!
//! Recursion follows the AST only, whose depth the parser bounded; data recursion (equality of
//! nested JSON) is bounded separately in `value::equal`. Errors are small `Copy` values with
//! the position of the node that failed, so the error-absorbing operators (`false && error`)
//! cost nothing when they discard one.

use super::activation::Activation;
use super::common::{ErrorKind, EvalError};
use super::parse::{BinOp, Comp, CompKind, Expr, Func, Kind};
use super::value::{compare, equal, format_double, Budget, List, ListIter, Map, MapIter, Str, Value};

pub(super) struct Eval<'a> {
    pub(super) act: &'a dyn Activation,
    /// Comprehension variables, indexed by slot.
    pub(super) locals: Vec<Value<'a>>,
    pub(super) budget: Budget,
}

type R<'a> = Result<Value<'a>, EvalError>;

/// What a comprehension ranges over, without boxing an iterator.
enum Items<'a> {
    List(ListIter<'a>),
    Keys(MapIter<'a>),
}

impl<'a> Iterator for Items<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        match self {
            Items::List(it) => it.next(),
            Items::Keys(it) => it.next().map(|(k, _)| k),
        }
    }
}

/// Strings cost one step per this many bytes scanned or copied, on top of the node's step.
const BYTES_PER_STEP: u64 = 64;
/// Tape objects and literal maps are scanned linearly: one step per this many keys.
const KEYS_PER_STEP: u64 = 16;

fn str_cost(s: &str) -> u64 {
    s.len() as u64 / BYTES_PER_STEP
}

/// Which of `&&` (`false` decides) or `||` (`true` decides).
fn logical<'a>(ev: &mut Eval<'a>, l: &'a Expr, r: &'a Expr, decisive: bool) -> R<'a> {
    // cel-spec "Logical operators": commutative; an error or a non-bool on one side is
    // absorbed when the other side decides the result, and reported otherwise.
    let left = match ev.eval(l) {
        Ok(Value::Bool(b)) if b == decisive => return Ok(Value::Bool(b)),
        Ok(Value::Bool(_)) => None,
        Ok(_) => Some(EvalError { kind: ErrorKind::NoSuchOverload, pos: l.pos }),
        Err(e) => Some(e),
    };
    match ev.eval(r) {
        Ok(Value::Bool(b)) if b == decisive => Ok(Value::Bool(b)),
        Ok(Value::Bool(b)) => match left {
            None => Ok(Value::Bool(b)),
            Some(e) => Err(e),
        },
        Ok(_) => Err(left.unwrap_or(EvalError { kind: ErrorKind::NoSuchOverload, pos: r.pos })),
        Err(e) => Err(left.unwrap_or(e)),
    }
}

impl<'a> Eval<'a> {
    pub(super) fn eval(&mut self, e: &'a Expr) -> R<'a> {
        let pos = e.pos;
        let at = |kind: ErrorKind| EvalError { kind, pos };
        self.budget.charge(1).map_err(at)?;
        match &e.kind {
            Kind::Lit(l) => Ok(l.value()),
            Kind::Global(name) => self.act.var(name).ok_or(at(ErrorKind::UnknownVariable)),
            Kind::Local(slot) => self.locals.get(*slot).cloned().ok_or(at(ErrorKind::UnknownVariable)),
            Kind::Select(x, field) => match self.eval(x)? {
                Value::Map(m) => {
                    self.budget.charge(m.scan_len() as u64 / KEYS_PER_STEP).map_err(at)?;
                    m.get_str(field).map_err(at)?.ok_or(at(ErrorKind::NoSuchKey))
                }
                _ => Err(at(ErrorKind::NoSuchOverload)),
            },
            Kind::Has(x, field) => match self.eval(x)? {
                Value::Map(m) => {
                    self.budget.charge(m.scan_len() as u64 / KEYS_PER_STEP).map_err(at)?;
                    Ok(Value::Bool(m.contains_key(&Value::str(field))))
                }
                _ => Err(at(ErrorKind::NoSuchOverload)),
            },
            Kind::Index(x, i) => {
                let v = self.eval(x)?;
                let k = self.eval(i)?;
                self.index(v, &k).map_err(at)
            }
            Kind::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item)?);
                }
                Ok(Value::List(List::from_values(out)))
            }
            Kind::ConstList(lits) => Ok(Value::List(List::lits(lits))),
            Kind::Map(entries) => {
                let mut out: Vec<(Value<'a>, Value<'a>)> = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let key = self.eval(k)?;
                    if !matches!(key, Value::Int(_) | Value::Uint(_) | Value::Bool(_) | Value::String(_)) {
                        return Err(EvalError { kind: ErrorKind::NoSuchOverload, pos: k.pos });
                    }
                    let val = self.eval(v)?;
                    self.budget.charge(out.len() as u64 / KEYS_PER_STEP).map_err(at)?;
                    for (seen, _) in &out {
                        if equal(seen, &key, &mut self.budget, 0).map_err(at)? {
                            return Err(EvalError { kind: ErrorKind::DuplicateKey, pos: k.pos });
                        }
                    }
                    out.push((key, val));
                }
                Ok(Value::Map(Map::owned(out)))
            }
            Kind::Not(x) => match self.eval(x)? {
                Value::Bool(b) => Ok(Value::Bool(!b)),
                _ => Err(at(ErrorKind::NoSuchOverload)),
            },
            Kind::Neg(x) => match self.eval(x)? {
                Value::Int(n) => n.checked_neg().map(Value::Int).ok_or(at(ErrorKind::Overflow)),
                Value::Double(d) => Ok(Value::Double(-d)),
                _ => Err(at(ErrorKind::NoSuchOverload)),
            },
            Kind::And(l, r) => logical(self, l, r, false),
            Kind::Or(l, r) => logical(self, l, r, true),
            Kind::Cond(c, t, f) => match self.eval(c)? {
                Value::Bool(true) => self.eval(t),
                Value::Bool(false) => self.eval(f),
                _ => Err(at(ErrorKind::NoSuchOverload)),
            },
            Kind::Binary(op, l, r) => {
                let a = self.eval(l)?;
                let b = self.eval(r)?;
                self.binary(*op, a, b).map_err(at)
            }
            Kind::Call(func, args) => {
                let mut vals = [Value::Null, Value::Null];
                for (slot, arg) in vals.iter_mut().zip(args) {
                    *slot = self.eval(arg)?;
                }
                let [a, b] = vals;
                self.call(*func, a, b).map_err(at)
            }
            Kind::Matches(x, re) => match self.eval(x)? {
                Value::String(s) => {
                    self.budget.charge(str_cost(&s)).map_err(at)?;
                    Ok(Value::Bool(re.is_match(&s)))
                }
                _ => Err(at(ErrorKind::NoSuchOverload)),
            },
            Kind::Comp(c) => {
                let r = self.comprehension(c, pos);
                // Errors inside may be absorbed by an enclosing `&&`/`||`: the scope must be
                // left in every case.
                self.locals.truncate(c.slot);
                r
            }
        }
    }

    fn index(&mut self, v: Value<'a>, k: &Value<'_>) -> Result<Value<'a>, ErrorKind> {
        match v {
            Value::List(l) => {
                let i = match *k {
                    Value::Int(i) => i,
                    Value::Uint(u) => i64::try_from(u).map_err(|_| ErrorKind::IndexOutOfRange)?,
                    // cel-go accepts a double index that is a whole number.
                    Value::Double(d) if d.fract() == 0.0 && d.abs() < 9.0e15 => d as i64,
                    _ => return Err(ErrorKind::NoSuchOverload),
                };
                let i = usize::try_from(i).map_err(|_| ErrorKind::IndexOutOfRange)?;
                if i >= l.len() {
                    return Err(ErrorKind::IndexOutOfRange);
                }
                self.budget.charge(i as u64 / KEYS_PER_STEP)?;
                l.get(i).ok_or(ErrorKind::IndexOutOfRange)
            }
            Value::Map(m) => {
                self.budget.charge(m.scan_len() as u64 / KEYS_PER_STEP)?;
                m.get(k)?.ok_or(ErrorKind::NoSuchKey)
            }
            _ => Err(ErrorKind::NoSuchOverload),
        }
    }

    fn binary(&mut self, op: BinOp, a: Value<'a>, b: Value<'a>) -> Result<Value<'a>, ErrorKind> {
        use Value::{Double, Int, Uint};
        let budget = &mut self.budget;
        let ord = |a: &Value<'_>, b: &Value<'_>| compare(a, b);
        Ok(match op {
            BinOp::Eq => Value::Bool(equal(&a, &b, budget, 0)?),
            BinOp::Ne => Value::Bool(!equal(&a, &b, budget, 0)?),
            BinOp::Lt => Value::Bool(ord(&a, &b)?.is_lt()),
            BinOp::Le => Value::Bool(ord(&a, &b)?.is_le()),
            BinOp::Gt => Value::Bool(ord(&a, &b)?.is_gt()),
            BinOp::Ge => Value::Bool(ord(&a, &b)?.is_ge()),
            BinOp::In => match &b {
                Value::List(l) => {
                    for item in l.iter() {
                        budget.charge(1)?;
                        if equal(&a, &item, budget, 0)? {
                            return Ok(Value::Bool(true));
                        }
                    }
                    Value::Bool(false)
                }
                Value::Map(m) => {
                    budget.charge(m.scan_len() as u64 / KEYS_PER_STEP)?;
                    Value::Bool(m.contains_key(&a))
                }
                _ => return Err(ErrorKind::NoSuchOverload),
            },
            BinOp::Add => match (a, b) {
                (Int(x), Int(y)) => Int(x.checked_add(y).ok_or(ErrorKind::Overflow)?),
                (Uint(x), Uint(y)) => Uint(x.checked_add(y).ok_or(ErrorKind::Overflow)?),
                (Double(x), Double(y)) => Double(x + y),
                (Value::String(x), Value::String(y)) => {
                    budget.charge(str_cost(&x) + str_cost(&y))?;
                    let mut s = String::with_capacity(x.len() + y.len());
                    s.push_str(&x);
                    s.push_str(&y);
                    Value::String(Str::Shared(s.into()))
                }
                (Value::List(x), Value::List(y)) => {
                    budget.charge((x.len() + y.len()) as u64)?;
                    let mut v = Vec::with_capacity(x.len() + y.len());
                    v.extend(x.iter());
                    v.extend(y.iter());
                    Value::List(List::from_values(v))
                }
                _ => return Err(ErrorKind::NoSuchOverload),
            },
            BinOp::Sub => match (a, b) {
                (Int(x), Int(y)) => Int(x.checked_sub(y).ok_or(ErrorKind::Overflow)?),
                (Uint(x), Uint(y)) => Uint(x.checked_sub(y).ok_or(ErrorKind::Overflow)?),
                (Double(x), Double(y)) => Double(x - y),
                _ => return Err(ErrorKind::NoSuchOverload),
            },
            BinOp::Mul => match (a, b) {
                (Int(x), Int(y)) => Int(x.checked_mul(y).ok_or(ErrorKind::Overflow)?),
                (Uint(x), Uint(y)) => Uint(x.checked_mul(y).ok_or(ErrorKind::Overflow)?),
                (Double(x), Double(y)) => Double(x * y),
                _ => return Err(ErrorKind::NoSuchOverload),
            },
            BinOp::Div => match (a, b) {
                (Int(_), Int(0)) | (Uint(_), Uint(0)) => return Err(ErrorKind::DivisionByZero),
                (Int(x), Int(y)) => Int(x.checked_div(y).ok_or(ErrorKind::Overflow)?),
                (Uint(x), Uint(y)) => Uint(x / y),
                // IEEE 754: division by zero is an infinity, not an error.
                (Double(x), Double(y)) => Double(x / y),
                _ => return Err(ErrorKind::NoSuchOverload),
            },
            BinOp::Rem => match (a, b) {
                (Int(_), Int(0)) | (Uint(_), Uint(0)) => return Err(ErrorKind::DivisionByZero),
                (Int(x), Int(y)) => Int(x.checked_rem(y).ok_or(ErrorKind::Overflow)?),
                (Uint(x), Uint(y)) => Uint(x % y),
                _ => return Err(ErrorKind::NoSuchOverload),
            },
        })
    }

    /// A built-in; `b` is `Null` for one-argument functions.
    fn call(&mut self, func: Func, a: Value<'a>, b: Value<'a>) -> Result<Value<'a>, ErrorKind> {
        use Value::{Bool, Double, Int, Uint};
        let strs = |a: &Value<'a>, b: &Value<'a>| match (a, b) {
            (Value::String(x), Value::String(y)) => Ok((x.clone(), y.clone())),
            _ => Err(ErrorKind::NoSuchOverload),
        };
        Ok(match func {
            Func::Size => match &a {
                Value::String(s) => {
                    self.budget.charge(str_cost(s))?;
                    Int(s.chars().count() as i64)
                }
                Value::List(l) => Int(l.len() as i64),
                Value::Map(m) => Int(m.len() as i64),
                _ => return Err(ErrorKind::NoSuchOverload),
            },
            Func::StartsWith | Func::EndsWith | Func::Contains => {
                let (s, p) = strs(&a, &b)?;
                self.budget.charge(str_cost(&s))?;
                Bool(match func {
                    Func::StartsWith => s.starts_with(&*p),
                    Func::EndsWith => s.ends_with(&*p),
                    _ => s.contains(&*p),
                })
            }
            Func::Int => match a {
                Int(n) => Int(n),
                Uint(u) => Int(i64::try_from(u).map_err(|_| ErrorKind::Overflow)?),
                Double(d) => {
                    // cel-go's doubleToInt64Checked: NaN, infinities and anything from -2^63
                    // (inclusive) or 2^63 outward are errors; the rest truncates toward zero.
                    if !(d > -9_223_372_036_854_775_808.0 && d < 9_223_372_036_854_775_808.0) {
                        return Err(ErrorKind::Overflow);
                    }
                    Int(d.trunc() as i64)
                }
                Value::String(s) => Int(s.parse().map_err(|_| ErrorKind::InvalidConversion)?),
                _ => return Err(ErrorKind::NoSuchOverload),
            },
            Func::Uint => match a {
                Uint(u) => Uint(u),
                Int(n) => Uint(u64::try_from(n).map_err(|_| ErrorKind::Overflow)?),
                Double(d) => {
                    // doubleToUint64Checked: negative (even -0.5), NaN, or 2^64 and up fail.
                    if !(0.0..18_446_744_073_709_551_616.0).contains(&d) {
                        return Err(ErrorKind::Overflow);
                    }
                    Uint(d.trunc() as u64)
                }
                Value::String(s) => Uint(s.parse().map_err(|_| ErrorKind::InvalidConversion)?),
                _ => return Err(ErrorKind::NoSuchOverload),
            },
            Func::Double => match a {
                Double(d) => Double(d),
                Int(n) => Double(n as f64),
                Uint(u) => Double(u as f64),
                Value::String(s) => Double(s.parse().map_err(|_| ErrorKind::InvalidConversion)?),
                _ => return Err(ErrorKind::NoSuchOverload),
            },
            Func::String => {
                let s = match a {
                    Value::String(s) => return Ok(Value::String(s)),
                    Int(n) => n.to_string(),
                    Uint(u) => u.to_string(),
                    Double(d) => format_double(d),
                    Bool(b) => return Ok(Value::str(if b { "true" } else { "false" })),
                    _ => return Err(ErrorKind::NoSuchOverload),
                };
                Value::String(Str::Shared(s.into()))
            }
            Func::Dyn => a,
        })
    }

    fn comprehension(&mut self, c: &'a Comp, pos: u32) -> R<'a> {
        let at = |kind: ErrorKind| EvalError { kind, pos };
        let range = self.eval(&c.range)?;
        // A map's iteration variable ranges over its keys.
        let mut items = match range {
            Value::List(l) => Items::List(l.iter()),
            Value::Map(m) => Items::Keys(m.iter()),
            _ => return Err(EvalError { kind: ErrorKind::NoSuchOverload, pos: c.range.pos }),
        };
        self.locals.truncate(c.slot);
        self.locals.push(Value::Null);
        // all/exists: the first error is kept and reported only if no element decides.
        let mut deferred: Option<EvalError> = None;
        let mut count = 0usize;
        let mut out = Vec::new();
        for item in &mut items {
            self.budget.charge(1).map_err(at)?;
            if let Some(slot) = self.locals.get_mut(c.slot) {
                *slot = item.clone();
            }
            match c.kind {
                CompKind::All | CompKind::Exists => {
                    let decisive = c.kind == CompKind::Exists;
                    match self.eval(&c.body) {
                        Ok(Value::Bool(b)) if b == decisive => return Ok(Value::Bool(b)),
                        Ok(Value::Bool(_)) => {}
                        Ok(_) => {
                            let e = EvalError { kind: ErrorKind::NoSuchOverload, pos: c.body.pos };
                            deferred.get_or_insert(e);
                        }
                        Err(e) if e.kind == ErrorKind::CostExceeded => return Err(e),
                        Err(e) => {
                            deferred.get_or_insert(e);
                        }
                    }
                }
                CompKind::ExistsOne => match self.eval(&c.body)? {
                    Value::Bool(true) => count += 1,
                    Value::Bool(false) => {}
                    _ => return Err(EvalError { kind: ErrorKind::NoSuchOverload, pos: c.body.pos }),
                },
                CompKind::Filter => match self.eval(&c.body)? {
                    Value::Bool(true) => out.push(item),
                    Value::Bool(false) => {}
                    _ => return Err(EvalError { kind: ErrorKind::NoSuchOverload, pos: c.body.pos }),
                },
                CompKind::Map => {
                    if let Some(f) = &c.filter {
                        match self.eval(f)? {
                            Value::Bool(true) => {}
                            Value::Bool(false) => continue,
                            _ => return Err(EvalError { kind: ErrorKind::NoSuchOverload, pos: f.pos }),
                        }
                    }
                    out.push(self.eval(&c.body)?);
                }
            }
        }
        match c.kind {
            CompKind::All | CompKind::Exists => match deferred {
                Some(e) => Err(e),
                None => Ok(Value::Bool(c.kind == CompKind::All)),
            },
            CompKind::ExistsOne => Ok(Value::Bool(count == 1)),
            CompKind::Filter | CompKind::Map => Ok(Value::List(List::from_values(out))),
        }
    }
}
