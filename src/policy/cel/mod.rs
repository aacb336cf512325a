//! The CEL subset of authorization rules: compiled once at config load ([`compile`]), then
//! evaluated per request ([`Program::eval`], [`Program::matches`]) over data borrowed where it
//! already lies - the simd-json tape of the request body, the verified JWT claims, the header
//! spans - through an [`Activation`]. Nothing is converted or copied per call beyond what an
//! expression itself builds (a concatenated string, a list literal with variables in it).
//!
//! It must not panic, recurse without bound or run without bound on any input: sources are
//! limited in length, nesting and node count at compile time, and every evaluation step is
//! charged to a budget ([`Limits`]). An [`EvalError`] is the caller's "no match" (and a
//! metric); it never carries request data, so it is `Copy` and free to discard.
//!
//! # The language
//!
//! cel-spec langdef.md, restricted to: literals (`1`, `0x1F`, `1u`, `1.5`, `"s"`, `'s'`,
//! `"""s"""`, `r"\d"`, `true`, `null`, `[..]`, `{k: v}`), top-level variables, field selection
//! `a.b`, indexing `a[0]` / `a["k"]`, `has(a.b)`, `in`, `== != < <= > >=`, `&& || !`, `? :`,
//! `+ - * / %`, unary `-`, `size`, `startsWith`, `endsWith`, `contains`, `matches` (RE2 syntax;
//! the pattern must be a string literal, compiled here), the macros `all`, `exists`,
//! `exists_one`, `map` (2 and 3 arguments), `filter`, and the conversions `int`, `uint`,
//! `double`, `string`, `dyn`. Not supported: bytes, timestamps, durations, protobuf messages,
//! `type()`, optional syntax, extension libraries. Anything outside the subset is a
//! [`CompileError`], never a runtime surprise.
//!
//! Semantics follow cel-spec where it speaks: heterogeneous equality is `false`, numbers
//! compare across int/uint/double by value, `&&`/`||` and `all`/`exists` absorb errors when
//! the other operands decide, integer overflow and division by zero are errors, strings
//! measure code points. Two choices are ours and documented where they are made: JSON
//! integers are CEL `int`s (`value`), and a JSON object that repeats a key is an error when
//! that key is read (`Map::get_str`).

mod activation;
mod common;
mod eval;
mod lex;
mod parse;
mod value;

impl Options {
    /// The gateway's options: default limits, variables `args` and `request`.
    pub fn gateway() -> Self {
        Options { limits: Limits::default(), variables: Some(RequestActivation::VARIABLES) }
    }
}

#[cfg(test)]
mod tests;

use std::fmt;

pub use activation::{Activation, Auth, Bindings, HeaderPairs, Jwt, Mcp, Params, Request, RequestActivation};
pub use common::{CompileError, ErrorKind, EvalError, Limits, Options};
pub use value::{List, ListIter, Map, MapIter, MapView, Str, Value};

/// A compiled expression: immutable, `Send + Sync`, shared by every core.
pub struct Program {
    source: Box<str>,
    root: parse::Expr,
    max_cost: u64,
    reads_arguments: bool,
}

// Programs live in the published config snapshot.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Program>();
};

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Program").field(&self.source).finish()
    }
}

/// Compiles `src` with default [`Options`] (any top-level variable name accepted).
pub fn compile(src: &str) -> Result<Program, CompileError> {
    compile_with(src, &Options::default())
}

/// Compiles `src`.
pub fn compile_with(src: &str, opts: &Options) -> Result<Program, CompileError> {
    let max = opts.limits.max_source_len;
    if src.len() > max {
        return Err(CompileError { pos: max, message: format!("expression longer than {max} bytes") });
    }
    let root = parse::parse(src, opts)?;
    let reads_arguments = reads_arguments(&root);
    Ok(Program { source: src.into(), root, max_cost: opts.limits.max_cost, reads_arguments })
}

impl Program {
    /// The source it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression reads a call's arguments (`args`, or a member `arguments` as in
    /// `request.mcp.params.arguments`): a listing, which has none, cannot decide it.
    pub fn reads_arguments(&self) -> bool {
        self.reads_arguments
    }

    /// Evaluates over `act`. The result may borrow from both.
    pub fn eval<'a>(&'a self, act: &'a dyn Activation) -> Result<Value<'a>, EvalError> {
        self.eval_metered(act).0
    }

    /// [`Program::eval`], also returning the steps it cost.
    pub fn eval_metered<'a>(&'a self, act: &'a dyn Activation) -> (Result<Value<'a>, EvalError>, u64) {
        let mut ev = eval::Eval { act, locals: Vec::new(), budget: value::Budget { left: self.max_cost } };
        let r = ev.eval(&self.root);
        (r, self.max_cost - ev.budget.left)
    }

    /// Evaluates a rule: `Ok(true)`/`Ok(false)`, or an error (a non-bool result is one).
    pub fn matches(&self, act: &dyn Activation) -> Result<bool, EvalError> {
        match self.eval(act)? {
            Value::Bool(b) => Ok(b),
            _ => Err(EvalError { kind: ErrorKind::NotBool, pos: self.root.pos }),
        }
    }
}

/// Whether any node of `root` reads arguments (see [`Program::reads_arguments`]). Iterative:
/// the depth of the tree is bounded at parse, but no recursion is needed.
fn reads_arguments(root: &parse::Expr) -> bool {
    use parse::{Kind, Lit};
    let mut stack = vec![root];
    while let Some(e) = stack.pop() {
        match &e.kind {
            Kind::Global(name) if &**name == "args" => return true,
            Kind::Select(_, field) | Kind::Has(_, field) if &**field == "arguments" => return true,
            Kind::Index(_, key) if matches!(&key.kind, Kind::Lit(Lit::Str(k)) if &**k == "arguments") => {
                return true
            }
            _ => {}
        }
        match &e.kind {
            Kind::Lit(_) | Kind::Global(_) | Kind::Local(_) | Kind::ConstList(_) => {}
            Kind::Select(x, _) | Kind::Has(x, _) | Kind::Not(x) | Kind::Neg(x) | Kind::Matches(x, _) => {
                stack.push(x)
            }
            Kind::Index(a, b) | Kind::And(a, b) | Kind::Or(a, b) | Kind::Binary(_, a, b) => {
                stack.push(a);
                stack.push(b);
            }
            Kind::Cond(a, b, c) => stack.extend([&**a, &**b, &**c]),
            Kind::List(items) | Kind::Call(_, items) => stack.extend(items.iter()),
            Kind::Map(pairs) => {
                for (k, v) in pairs {
                    stack.push(k);
                    stack.push(v);
                }
            }
            Kind::Comp(c) => {
                stack.push(&c.range);
                stack.push(&c.body);
                stack.extend(c.filter.as_ref());
            }
        }
    }
    false
}
