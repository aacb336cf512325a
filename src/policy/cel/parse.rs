//! The CEL parser: tokens to a checked AST, once per rule at config load.
//!
//! Recursive descent over the grammar of cel-spec langdef.md. Everything that can be decided
//! without request data is decided here: identifiers are resolved to comprehension slots or
//! top-level variables, functions to built-ins (an unknown name is a compile error), `matches`
//! patterns compiled, constant lists kept as constants. Nesting is bounded twice: the parser's
//! own recursion by `max_depth`, and every node's depth by the same limit (left-leaning chains
//! such as `a + b + c ...` are parsed in a loop but still make a deep tree), so that the
//! recursive evaluator can never go deeper than `max_depth` frames. Chains of `&&` and `||`
//! are built as balanced trees, as cel-go does, which is sound because CEL's logical operators
//! are commutative.

use regex::Regex;

use super::common::{CompileError, Options};
use super::lex::{self, Tok};

/// A node of the checked AST.
#[derive(Debug)]
pub(super) struct Expr {
    pub(super) kind: Kind,
    /// Byte offset in the source, reported in errors.
    pub(super) pos: u32,
    /// Height of the subtree (a leaf is 1).
    pub(super) depth: u16,
}

/// A constant.
#[derive(Debug, Clone)]
pub(super) enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    Str(Box<str>),
}

/// Binary operators evaluated strictly (both operands first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// Built-in functions; receiver-style calls put the receiver first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
    Size,
    StartsWith,
    EndsWith,
    Contains,
    Int,
    Uint,
    Double,
    String,
    Dyn,
}

/// The comprehension macros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CompKind {
    All,
    Exists,
    ExistsOne,
    Map,
    Filter,
}

#[derive(Debug)]
pub(super) struct Comp {
    pub(super) kind: CompKind,
    pub(super) range: Expr,
    /// Index of the iteration variable among the comprehension variables in scope.
    pub(super) slot: usize,
    /// `map(x, filter, transform)`'s filter.
    pub(super) filter: Option<Expr>,
    /// The predicate (all, exists, exists_one, filter) or the transform (map).
    pub(super) body: Expr,
}

#[derive(Debug)]
pub(super) enum Kind {
    Lit(Lit),
    /// A top-level variable, looked up in the activation.
    Global(Box<str>),
    /// A comprehension variable.
    Local(usize),
    Select(Box<Expr>, Box<str>),
    /// `has(e.f)`.
    Has(Box<Expr>, Box<str>),
    Index(Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    /// A list literal whose elements are all constants: no allocation per evaluation.
    ConstList(Box<[Lit]>),
    Map(Vec<(Expr, Expr)>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
    /// `s.matches("re")` with the pattern compiled here.
    Matches(Box<Expr>, Box<Regex>),
    Comp(Box<Comp>),
}

/// Words the grammar reserves (langdef.md, "Syntax"): never identifiers.
const RESERVED: &[&str] = &[
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "in",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// Patterns are config, not client input, but a pathological one must still fail at load
/// rather than hold megabytes per rule: 1 MiB of compiled program is far above any real rule.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn err(pos: usize, msg: impl Into<String>) -> CompileError {
    CompileError { pos, message: msg.into() }
}

/// Parses `src` into a checked AST within `opts`' limits.
pub(super) fn parse(src: &str, opts: &Options) -> Result<Expr, CompileError> {
    let toks = lex::tokens(src)?;
    let mut p = Parser { toks, i: 0, nest: 0, nodes: 0, opts, scopes: Vec::new() };
    let e = p.expr()?;
    if !matches!(p.peek(), Tok::Eof) {
        return Err(err(p.pos(), format!("unexpected {}", p.peek().describe())));
    }
    Ok(e)
}

struct Parser<'s, 'o> {
    toks: Vec<(Tok<'s>, usize)>,
    i: usize,
    /// Current recursion depth of `expr`.
    nest: usize,
    nodes: usize,
    opts: &'o Options,
    /// Comprehension variables in scope, outermost first; the index is the slot.
    scopes: Vec<&'s str>,
}

fn child_depth(kind: &Kind) -> u16 {
    let d = |e: &Expr| e.depth;
    match kind {
        Kind::Lit(_) | Kind::Global(_) | Kind::Local(_) | Kind::ConstList(_) => 0,
        Kind::Select(e, _) | Kind::Has(e, _) | Kind::Not(e) | Kind::Neg(e) | Kind::Matches(e, _) => d(e),
        Kind::Index(a, b) | Kind::And(a, b) | Kind::Or(a, b) | Kind::Binary(_, a, b) => d(a).max(d(b)),
        Kind::Cond(a, b, c) => d(a).max(d(b)).max(d(c)),
        Kind::List(v) | Kind::Call(_, v) => v.iter().map(d).max().unwrap_or(0),
        Kind::Map(v) => v.iter().map(|(k, x)| d(k).max(d(x))).max().unwrap_or(0),
        Kind::Comp(c) => d(&c.range).max(d(&c.body)).max(c.filter.as_ref().map(d).unwrap_or(0)),
    }
}

impl<'s> Parser<'s, '_> {
    fn peek(&self) -> &Tok<'s> {
        self.toks.get(self.i).map(|t| &t.0).unwrap_or(&Tok::Eof)
    }

    fn peek2(&self) -> &Tok<'s> {
        self.toks.get(self.i + 1).map(|t| &t.0).unwrap_or(&Tok::Eof)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.i).or(self.toks.last()).map(|t| t.1).unwrap_or(0)
    }

    /// Takes the current token (Eof stays in place).
    fn next(&mut self) -> (Tok<'s>, usize) {
        let pos = self.pos();
        match self.toks.get_mut(self.i) {
            Some(t) if !matches!(t.0, Tok::Eof) => {
                self.i += 1;
                (std::mem::replace(&mut t.0, Tok::Eof), pos)
            }
            _ => (Tok::Eof, pos),
        }
    }

    fn eat(&mut self, t: &Tok<'_>) -> bool {
        if self.peek() == t {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Tok<'_>, what: &str) -> Result<(), CompileError> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(err(self.pos(), format!("expected {what}, found {}", self.peek().describe())))
        }
    }

    /// Builds a node, enforcing the node-count and depth limits.
    fn mk(&mut self, kind: Kind, pos: usize) -> Result<Expr, CompileError> {
        self.nodes += 1;
        let limits = &self.opts.limits;
        if self.nodes > limits.max_nodes {
            return Err(err(pos, format!("expression too large (limit {} nodes)", limits.max_nodes)));
        }
        let depth = child_depth(&kind).saturating_add(1);
        if usize::from(depth) > limits.max_depth {
            return Err(err(pos, format!("expression nested too deeply (limit {})", limits.max_depth)));
        }
        Ok(Expr { kind, pos: pos as u32, depth })
    }

    fn expr(&mut self) -> Result<Expr, CompileError> {
        self.nest += 1;
        if self.nest > self.opts.limits.max_depth {
            let limit = self.opts.limits.max_depth;
            return Err(err(self.pos(), format!("expression nested too deeply (limit {limit})")));
        }
        let r = self.ternary();
        self.nest -= 1;
        r
    }

    fn ternary(&mut self) -> Result<Expr, CompileError> {
        let c = self.logical(true)?;
        let pos = self.pos();
        if !self.eat(&Tok::Question) {
            return Ok(c);
        }
        let t = self.logical(true)?;
        self.expect(&Tok::Colon, "\":\"")?;
        let f = self.expr()?;
        self.mk(Kind::Cond(Box::new(c), Box::new(t), Box::new(f)), pos)
    }

    /// `a || b || ...` (or) and `a && b && ...` (and), built balanced.
    fn logical(&mut self, or: bool) -> Result<Expr, CompileError> {
        let op = if or { Tok::OrOr } else { Tok::AndAnd };
        let mut terms = vec![if or { self.logical(false)? } else { self.relation()? }];
        while self.eat(&op) {
            terms.push(if or { self.logical(false)? } else { self.relation()? });
        }
        while terms.len() > 1 {
            let mut next = Vec::with_capacity(terms.len().div_ceil(2));
            let mut it = terms.into_iter();
            while let Some(a) = it.next() {
                match it.next() {
                    Some(b) => {
                        let pos = a.pos as usize;
                        let kind = if or {
                            Kind::Or(Box::new(a), Box::new(b))
                        } else {
                            Kind::And(Box::new(a), Box::new(b))
                        };
                        next.push(self.mk(kind, pos)?);
                    }
                    None => next.push(a),
                }
            }
            terms = next;
        }
        terms.pop().ok_or_else(|| err(self.pos(), "empty expression"))
    }

    fn relation(&mut self) -> Result<Expr, CompileError> {
        let mut lhs = self.addition()?;
        loop {
            let op = match self.peek() {
                Tok::EqEq => BinOp::Eq,
                Tok::NotEq => BinOp::Ne,
                Tok::Lt => BinOp::Lt,
                Tok::Le => BinOp::Le,
                Tok::Gt => BinOp::Gt,
                Tok::Ge => BinOp::Ge,
                Tok::Ident("in") => BinOp::In,
                _ => return Ok(lhs),
            };
            let (_, pos) = self.next();
            let rhs = self.addition()?;
            lhs = self.mk(Kind::Binary(op, Box::new(lhs), Box::new(rhs)), pos)?;
        }
    }

    fn addition(&mut self) -> Result<Expr, CompileError> {
        let mut lhs = self.multiplication()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(lhs),
            };
            let (_, pos) = self.next();
            let rhs = self.multiplication()?;
            lhs = self.mk(Kind::Binary(op, Box::new(lhs), Box::new(rhs)), pos)?;
        }
    }

    fn multiplication(&mut self) -> Result<Expr, CompileError> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                Tok::Percent => BinOp::Rem,
                _ => return Ok(lhs),
            };
            let (_, pos) = self.next();
            let rhs = self.unary()?;
            lhs = self.mk(Kind::Binary(op, Box::new(lhs), Box::new(rhs)), pos)?;
        }
    }

    /// Unary = Member | "!" {"!"} Member | "-" {"-"} Member.
    fn unary(&mut self) -> Result<Expr, CompileError> {
        let neg = match self.peek() {
            Tok::Bang => false,
            Tok::Minus => true,
            _ => return self.member(),
        };
        let op = if neg { Tok::Minus } else { Tok::Bang };
        let mut ops = Vec::new();
        while matches!(self.peek(), t if *t == op) {
            ops.push(self.pos());
            self.i += 1;
        }
        // `-9223372036854775808` is an int literal: the magnitude alone does not fit, so a
        // minus directly before an integer literal (with no member access after it) is folded.
        let mut e = match (neg, self.peek(), self.peek2()) {
            (true, Tok::Int(n), after) if !matches!(after, Tok::Dot | Tok::LBracket) => {
                let n = *n;
                let lit_pos = self.pos();
                self.i += 1;
                let v = i64::try_from(-i128::from(n))
                    .map_err(|_| err(lit_pos, "integer literal out of range"))?;
                let pos = ops.pop().unwrap_or(lit_pos);
                self.mk(Kind::Lit(Lit::Int(v)), pos)?
            }
            _ => self.member()?,
        };
        while let Some(pos) = ops.pop() {
            let b = Box::new(e);
            e = self.mk(if neg { Kind::Neg(b) } else { Kind::Not(b) }, pos)?;
        }
        Ok(e)
    }

    fn member(&mut self) -> Result<Expr, CompileError> {
        let mut e = self.primary()?;
        loop {
            match self.peek() {
                Tok::Dot => {
                    let pos = self.pos();
                    self.i += 1;
                    let name = self.selector()?;
                    if self.eat(&Tok::LParen) {
                        e = self.method(e, name, pos)?;
                    } else {
                        e = self.mk(Kind::Select(Box::new(e), name.into()), pos)?;
                    }
                }
                Tok::LBracket => {
                    let pos = self.pos();
                    self.i += 1;
                    let idx = self.expr()?;
                    self.expect(&Tok::RBracket, "\"]\"")?;
                    e = self.mk(Kind::Index(Box::new(e), Box::new(idx)), pos)?;
                }
                _ => return Ok(e),
            }
        }
    }

    /// A field name after `.`.
    fn selector(&mut self) -> Result<&'s str, CompileError> {
        match self.next() {
            (Tok::Ident(name), _) if !matches!(name, "true" | "false" | "null" | "in") => Ok(name),
            (t, pos) => Err(err(pos, format!("expected a field name, found {}", t.describe()))),
        }
    }

    /// Arguments after `(` up to and including `)`.
    fn args(&mut self) -> Result<Vec<Expr>, CompileError> {
        let mut args = Vec::new();
        if self.eat(&Tok::RParen) {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat(&Tok::RParen) {
                return Ok(args);
            }
            self.expect(&Tok::Comma, "\",\" or \")\"")?;
        }
    }

    /// `recv.name(...)`, the `(` consumed.
    fn method(&mut self, recv: Expr, name: &'s str, pos: usize) -> Result<Expr, CompileError> {
        let kind = match name {
            "all" => Some(CompKind::All),
            "exists" => Some(CompKind::Exists),
            "exists_one" => Some(CompKind::ExistsOne),
            "map" => Some(CompKind::Map),
            "filter" => Some(CompKind::Filter),
            _ => None,
        };
        if let Some(kind) = kind {
            return self.comprehension(kind, recv, name, pos);
        }
        let args = self.args()?;
        let arity = |n: usize| -> Result<(), CompileError> {
            if args.len() == n {
                Ok(())
            } else {
                let s = if n == 1 { "" } else { "s" };
                Err(err(pos, format!("method \"{name}\" takes {n} argument{s}, got {}", args.len())))
            }
        };
        let func = match name {
            "size" => {
                arity(0)?;
                Func::Size
            }
            "startsWith" => {
                arity(1)?;
                Func::StartsWith
            }
            "endsWith" => {
                arity(1)?;
                Func::EndsWith
            }
            "contains" => {
                arity(1)?;
                Func::Contains
            }
            "matches" => {
                arity(1)?;
                let re = self.pattern(args.into_iter().next())?;
                return self.mk(Kind::Matches(Box::new(recv), re), pos);
            }
            _ => return Err(err(pos, format!("unknown function \"{name}\""))),
        };
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(recv);
        all.extend(args);
        self.mk(Kind::Call(func, all), pos)
    }

    /// A `matches` pattern: must be a string literal, compiled now.
    fn pattern(&mut self, arg: Option<Expr>) -> Result<Box<Regex>, CompileError> {
        match arg {
            Some(Expr { kind: Kind::Lit(Lit::Str(p)), pos, .. }) => regex::RegexBuilder::new(&p)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map(Box::new)
                .map_err(|e| err(pos as usize, format!("invalid regular expression: {e}"))),
            Some(e) => Err(err(e.pos as usize, "the pattern of matches() must be a string literal")),
            None => Err(err(self.pos(), "matches() needs a pattern")),
        }
    }

    /// `range.all(x, p)` and friends, after `(`.
    fn comprehension(
        &mut self,
        kind: CompKind,
        range: Expr,
        name: &str,
        pos: usize,
    ) -> Result<Expr, CompileError> {
        let var = match self.next() {
            (Tok::Ident(v), _) if is_plain_ident(v) => v,
            (_, p) => return Err(err(p, format!("the first argument of {name}() must be an identifier"))),
        };
        self.expect(&Tok::Comma, "\",\"")?;
        let slot = self.scopes.len();
        self.scopes.push(var);
        let rest = self.args();
        self.scopes.pop();
        let mut rest = rest?;
        let (filter, body) = match (kind, rest.len()) {
            (CompKind::Map, 2) => {
                let body = rest.pop();
                (rest.pop(), body)
            }
            (_, 1) => (None, rest.pop()),
            _ => (None, None),
        };
        let Some(body) = body else {
            let n = if kind == CompKind::Map { "2 or 3" } else { "2" };
            return Err(err(pos, format!("{name}() takes {n} arguments")));
        };
        self.mk(Kind::Comp(Box::new(Comp { kind, range, slot, filter, body })), pos)
    }

    /// `name(...)` at the top level, the `(` consumed.
    fn global_call(&mut self, name: &str, pos: usize) -> Result<Expr, CompileError> {
        let args = self.args()?;
        let one = |args: Vec<Expr>| -> Result<Expr, CompileError> {
            let n = args.len();
            let mut it = args.into_iter();
            match (it.next(), n) {
                (Some(a), 1) => Ok(a),
                _ => Err(err(pos, format!("function \"{name}\" takes 1 argument, got {n}"))),
            }
        };
        let func = match name {
            "has" => {
                let arg = one(args)?;
                return match arg.kind {
                    Kind::Select(e, f) => self.mk(Kind::Has(e, f), pos),
                    _ => Err(err(arg.pos as usize, "has() needs a field selection, as in has(a.b)")),
                };
            }
            "matches" => {
                if args.len() != 2 {
                    return Err(err(
                        pos,
                        format!("function \"matches\" takes 2 arguments, got {}", args.len()),
                    ));
                }
                let mut it = args.into_iter();
                let (Some(s), p) = (it.next(), it.next()) else {
                    return Err(err(pos, "matches() needs a string and a pattern"));
                };
                let re = self.pattern(p)?;
                return self.mk(Kind::Matches(Box::new(s), re), pos);
            }
            "size" => Func::Size,
            "int" => Func::Int,
            "uint" => Func::Uint,
            "double" => Func::Double,
            "string" => Func::String,
            "dyn" => Func::Dyn,
            _ => return Err(err(pos, format!("unknown function \"{name}\""))),
        };
        let arg = one(args)?;
        self.mk(Kind::Call(func, vec![arg]), pos)
    }

    fn primary(&mut self) -> Result<Expr, CompileError> {
        let (tok, pos) = self.next();
        match tok {
            Tok::Int(n) => {
                let v = i64::try_from(n).map_err(|_| err(pos, "integer literal out of range"))?;
                self.mk(Kind::Lit(Lit::Int(v)), pos)
            }
            Tok::Uint(n) => self.mk(Kind::Lit(Lit::Uint(n)), pos),
            Tok::Double(f) => self.mk(Kind::Lit(Lit::Double(f)), pos),
            Tok::Str(s) => self.mk(Kind::Lit(Lit::Str(s.into())), pos),
            Tok::Ident("true") => self.mk(Kind::Lit(Lit::Bool(true)), pos),
            Tok::Ident("false") => self.mk(Kind::Lit(Lit::Bool(false)), pos),
            Tok::Ident("null") => self.mk(Kind::Lit(Lit::Null), pos),
            Tok::Ident(name) => self.ident(name, pos, false),
            Tok::Dot => match self.next() {
                (Tok::Ident(name), p) if is_plain_ident(name) => self.ident(name, p, true),
                (t, p) => Err(err(p, format!("expected an identifier, found {}", t.describe()))),
            },
            Tok::LParen => {
                let e = self.expr()?;
                self.expect(&Tok::RParen, "\")\"")?;
                Ok(e)
            }
            Tok::LBracket => {
                let mut items = Vec::new();
                while !self.eat(&Tok::RBracket) {
                    items.push(self.expr()?);
                    if !self.eat(&Tok::Comma) {
                        self.expect(&Tok::RBracket, "\",\" or \"]\"")?;
                        break;
                    }
                }
                if items.iter().all(|e| matches!(e.kind, Kind::Lit(_))) {
                    let lits = items
                        .into_iter()
                        .filter_map(|e| match e.kind {
                            Kind::Lit(l) => Some(l),
                            _ => None,
                        })
                        .collect();
                    return self.mk(Kind::ConstList(lits), pos);
                }
                self.mk(Kind::List(items), pos)
            }
            Tok::LBrace => {
                let mut entries = Vec::new();
                while !self.eat(&Tok::RBrace) {
                    let k = self.expr()?;
                    self.expect(&Tok::Colon, "\":\"")?;
                    let v = self.expr()?;
                    entries.push((k, v));
                    if !self.eat(&Tok::Comma) {
                        self.expect(&Tok::RBrace, "\",\" or \"}\"")?;
                        break;
                    }
                }
                self.mk(Kind::Map(entries), pos)
            }
            t => Err(err(pos, format!("unexpected {}", t.describe()))),
        }
    }

    /// An identifier in expression position: a call, a comprehension variable or a top-level
    /// variable (`.name` skips comprehension variables, as in CEL).
    fn ident(&mut self, name: &'s str, pos: usize, rooted: bool) -> Result<Expr, CompileError> {
        if !is_plain_ident(name) {
            return Err(err(pos, format!("\"{name}\" is a reserved word")));
        }
        if self.eat(&Tok::LParen) {
            return self.global_call(name, pos);
        }
        if matches!(self.peek(), Tok::LBrace) {
            return Err(err(pos, "message construction is not supported"));
        }
        if !rooted {
            if let Some(slot) = self.scopes.iter().rposition(|v| *v == name) {
                return self.mk(Kind::Local(slot), pos);
            }
        }
        if let Some(vars) = self.opts.variables {
            if !vars.contains(&name) {
                return Err(err(pos, format!("undeclared variable \"{name}\"")));
            }
        }
        self.mk(Kind::Global(name.into()), pos)
    }
}

fn is_plain_ident(s: &str) -> bool {
    !RESERVED.contains(&s) && !matches!(s, "true" | "false" | "null")
}
