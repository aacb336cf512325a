//! The parser: the lexer's tokens to the tree `render` walks (`ast`). Variables are resolved to
//! slots, function names to [`Func`], `.args`/`.config` paths at the root to direct roots, and
//! arities are checked, so rendering never looks anything up by name except JSON keys.
//! Follows Go's `text/template/parse` (lexing rules, trim markers, comments, scoping of
//! variables to the enclosing control structure); differences are listed on `Template`.

use super::ast::*;
use super::common::MAX_DEPTH;
use super::func::Func;
use super::lex::*;

/// Parses `src`.
pub(super) fn parse(src: &str) -> Result<Parsed, String> {
    let mut p = Parser {
        src,
        lines: std::iter::once(0).chain(src.match_indices('\n').map(|(i, _)| i + 1)).collect(),
        lx: Lexer { src, pos: 0, after_term: false },
        pos: 0,
        trim_next: false,
        scopes: vec![Vec::new()],
        slots: 1,
        range_depth: 0,
        depth: 0,
        dot_root: true,
        dynamic: false,
        actions: false,
    };
    let (nodes, end) = p.list()?;
    match end {
        End::Eof => {}
        End::Close(at) => return Err(p.err("unexpected {{end}}", at)),
        End::Else(at, _) => return Err(p.err("unexpected {{else}}", at)),
    }
    Ok(Parsed {
        nodes: nodes.into(),
        slots: p.slots as usize,
        is_static: !p.dynamic,
        is_constant: !p.actions,
    })
}

/// What ended an item list: the end of the source, `{{end}}` (`Close`) or an else.
#[derive(Debug)]
enum End {
    Eof,
    Close(usize),
    /// `{{else}}` (None), `{{else if ...}}` or `{{else with ...}}` with the keyword consumed.
    Else(usize, Option<Kind>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    If,
    With,
    Range,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::If => "if",
            Kind::With => "with",
            Kind::Range => "range",
        }
    }
}

/// An operand before it is placed in a command: a bare function name is a call only when it is
/// the first word.
enum Operand {
    Func(Func, usize),
    Arg(Arg),
}

struct Parser<'s> {
    src: &'s str,
    lines: Vec<usize>,
    lx: Lexer<'s>,
    /// Where text scanning resumes.
    pos: usize,
    /// The previous action ended with ` -}}`.
    trim_next: bool,
    /// Visible variables, innermost scope last.
    scopes: Vec<Vec<(&'s str, u16)>>,
    slots: u16,
    range_depth: usize,
    depth: usize,
    /// `.` is the root here (outside every `with`/`range` body).
    dot_root: bool,
    /// Something other than literals and `.config` is read.
    dynamic: bool,
    /// An action exists.
    actions: bool,
}

type PResult<T> = Result<T, String>;

/// The key and element variables of a range.
type RangeVars = (Option<u16>, Option<u16>);

impl<'s> Parser<'s> {
    fn loc(&self, pos: usize) -> Loc {
        let line = self.lines.partition_point(|&s| s <= pos).max(1);
        let start = self.lines[line - 1];
        let col = self.src.get(start..pos).map_or(0, |s| s.chars().count());
        Loc { line: line as u32, col: col as u32 + 1 }
    }

    fn err(&self, msg: impl std::fmt::Display, pos: usize) -> String {
        let l = self.loc(pos);
        format!("{msg} at {}:{}", l.line, l.col)
    }

    fn next(&mut self) -> PResult<(Tok<'s>, usize)> {
        match self.lx.next() {
            Ok((Tok::Eof, at)) => Err(self.err("unclosed action", at)),
            Ok(t) => Ok(t),
            Err((msg, at)) => Err(self.err(msg, at)),
        }
    }

    fn next_non_space(&mut self) -> PResult<(Tok<'s>, usize)> {
        loop {
            let t = self.next()?;
            if t.0 != Tok::Space {
                return Ok(t);
            }
        }
    }

    /// Peeks at the next token without consuming it.
    fn peek(&mut self, skip_space: bool) -> PResult<Tok<'s>> {
        let (pos, after) = (self.lx.pos, self.lx.after_term);
        let t = if skip_space { self.next_non_space() } else { self.next() };
        self.lx.pos = pos;
        self.lx.after_term = after;
        t.map(|t| t.0)
    }

    /// Expects the end of the action (`}}` or ` -}}`).
    fn close(&mut self, what: &str) -> PResult<()> {
        match self.next_non_space()? {
            (Tok::Close { trim }, _) => {
                self.trim_next = trim;
                self.pos = self.lx.pos;
                Ok(())
            }
            (t, at) => Err(self.err(format!("unexpected {} in {what}", describe(&t)), at)),
        }
    }

    fn push_text(&mut self, nodes: &mut Vec<Node>, text: &str, trim_end: bool) {
        let mut t = text;
        if std::mem::take(&mut self.trim_next) {
            t = t.trim_start_matches(is_space);
        }
        if trim_end {
            t = t.trim_end_matches(is_space);
        }
        if !t.is_empty() {
            nodes.push(Node::Text(t.into()));
        }
    }

    /// Text and actions up to `{{end}}`, `{{else}}` or the end of the source.
    fn list(&mut self) -> PResult<(Vec<Node>, End)> {
        let mut nodes = Vec::new();
        loop {
            let rest = &self.src[self.pos..];
            let Some(i) = rest.find("{{") else {
                self.push_text(&mut nodes, rest, false);
                self.pos = self.src.len();
                return Ok((nodes, End::Eof));
            };
            let open = self.pos + i;
            let after = &self.src[open + 2..];
            let ltrim = after.starts_with('-') && after[1..].starts_with(is_space);
            self.push_text(&mut nodes, &rest[..i], ltrim);
            let start = open + 2 + if ltrim { 2 } else { 0 };
            if self.src[start..].starts_with("/*") {
                let body = &self.src[start + 2..];
                let end = body.find("*/").ok_or_else(|| self.err("unclosed comment", open))?;
                let p = start + 2 + end + 2;
                let tail = &self.src[p..];
                if tail.starts_with("}}") {
                    self.pos = p + 2;
                } else if tail.starts_with(is_space) && tail[1..].starts_with("-}}") {
                    self.pos = p + 4;
                    self.trim_next = true;
                } else {
                    return Err(self.err("comment ends before closing delimiter", open));
                }
                continue;
            }
            self.lx.pos = start;
            self.lx.after_term = false;
            if let Some(end) = self.action(open, &mut nodes)? {
                return Ok((nodes, end));
            }
        }
    }

    /// One action; returns `Some` when it ends the current list.
    fn action(&mut self, open: usize, nodes: &mut Vec<Node>) -> PResult<Option<End>> {
        let (tok, at) = self.next_non_space()?;
        match tok {
            Tok::Ident("end") => {
                self.close("{{end}}")?;
                Ok(Some(End::Close(open)))
            }
            Tok::Ident("else") => {
                let kind = match self.peek(true)? {
                    Tok::Ident("if") => Some(Kind::If),
                    Tok::Ident("with") => Some(Kind::With),
                    _ => None,
                };
                if kind.is_some() {
                    self.next_non_space()?;
                } else {
                    self.close("{{else}}")?;
                }
                Ok(Some(End::Else(open, kind)))
            }
            Tok::Ident(kw @ ("if" | "with" | "range")) => {
                let kind = match kw {
                    "if" => Kind::If,
                    "with" => Kind::With,
                    _ => Kind::Range,
                };
                self.actions = true;
                nodes.push(self.control(kind, open)?);
                Ok(None)
            }
            Tok::Ident(kw @ ("break" | "continue")) => {
                if self.range_depth == 0 {
                    return Err(self.err(format!("{{{{{kw}}}}} outside {{{{range}}}}"), open));
                }
                self.close(kw)?;
                nodes.push(if kw == "break" { Node::Break } else { Node::Continue });
                Ok(None)
            }
            Tok::Ident(kw @ ("define" | "template" | "block")) => {
                Err(self.err(format!("{{{{{kw}}}}} is not supported (one template per field)"), open))
            }
            Tok::Close { .. } => Err(self.err("empty action", open)),
            _ => {
                self.lx.pos = at;
                self.lx.after_term = false;
                self.actions = true;
                let (pipe, _) = self.pipeline("command", None)?;
                let escaped =
                    matches!(pipe.cmds.last(), Some(Cmd { kind: CmdKind::Call(Func::Urlquery, _), .. }));
                nodes.push(Node::Action { pipe, escaped });
                Ok(None)
            }
        }
    }

    fn enter(&mut self, at: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(format!("template nesting deeper than {MAX_DEPTH}"), at));
        }
        Ok(())
    }

    /// `{{if}}`, `{{with}}` or `{{range}}` through its `{{end}}` (the keyword is consumed).
    fn control(&mut self, kind: Kind, open: usize) -> PResult<Node> {
        self.enter(open)?;
        let scopes = self.scopes.len();
        self.scopes.push(Vec::new());
        if kind == Kind::Range {
            self.range_depth += 1;
        }
        let (pipe, range_vars) = self.pipeline(kind.name(), Some(kind))?;
        let root = self.dot_root;
        if kind != Kind::If {
            self.dot_root = false;
        }
        let (body, mut end) = self.list()?;
        self.dot_root = root;
        let mut arms = vec![Arm { with: kind == Kind::With, pipe, body: body.into() }];
        let mut otherwise = None;
        loop {
            match end {
                End::Close(_) => break,
                End::Eof => return Err(self.err(format!("unclosed {{{{{}}}}} opened", kind.name()), open)),
                End::Else(_, None) => {
                    let (body, e) = self.list()?;
                    match e {
                        End::Close(_) => {}
                        End::Eof => {
                            return Err(self.err(format!("unclosed {{{{{}}}}} opened", kind.name()), open))
                        }
                        End::Else(at, _) => return Err(self.err("unexpected {{else}} after {{else}}", at)),
                    }
                    otherwise = Some(body.into());
                    break;
                }
                End::Else(at, Some(k)) => {
                    if k != kind {
                        return Err(
                            self.err(format!("{{{{else {}}}}} inside {{{{{}}}}}", k.name(), kind.name()), at)
                        );
                    }
                    self.scopes.push(Vec::new());
                    let (pipe, _) = self.pipeline(k.name(), Some(k))?;
                    if k == Kind::With {
                        self.dot_root = false;
                    }
                    let (body, e) = self.list()?;
                    self.dot_root = root;
                    arms.push(Arm { with: k == Kind::With, pipe, body: body.into() });
                    end = e;
                }
            }
        }
        self.scopes.truncate(scopes);
        self.depth -= 1;
        if kind == Kind::Range {
            self.range_depth -= 1;
            let Some(Arm { pipe, body, .. }) = arms.pop() else {
                return Err(self.err("internal error: range without body", open));
            };
            let (key, elem) = range_vars;
            return Ok(Node::Range(Box::new(Range {
                pipe,
                key,
                elem,
                body,
                otherwise,
                loc: self.loc(open),
            })));
        }
        Ok(Node::Cond { arms: arms.into(), otherwise })
    }

    /// Declares a new variable in the innermost scope.
    fn declare(&mut self, name: &'s str, at: usize) -> PResult<u16> {
        let slot = self.slots;
        self.slots = self.slots.checked_add(1).ok_or_else(|| self.err("too many variables", at))?;
        if let Some(s) = self.scopes.last_mut() {
            s.push((name, slot));
        }
        Ok(slot)
    }

    fn resolve(&self, name: &str, at: usize) -> PResult<u16> {
        self.scopes
            .iter()
            .rev()
            .flat_map(|s| s.iter().rev())
            .find(|(n, _)| *n == name)
            .map(|&(_, slot)| slot)
            .ok_or_else(|| self.err(format!("undefined variable {name:?}"), at))
    }

    /// A pipeline up to `}}` (when `control` or top level) or `)` (when `ctx` is a paren).
    /// Range declarations are returned separately as (key, element) slots.
    fn pipeline(&mut self, ctx: &str, control: Option<Kind>) -> PResult<(Pipe, RangeVars)> {
        let paren = ctx == "parenthesized pipeline";
        // Declarations: `$x :=`, `$x =`, and in range `$i, $e :=`.
        let mut decl: Vec<(&'s str, usize)> = Vec::new();
        let mut assign = false;
        let (save, save_after) = (self.lx.pos, self.lx.after_term);
        if let (Tok::Var(v), at) = self.next_non_space()? {
            match self.next_non_space()? {
                (Tok::Declare, _) => decl.push((v, at)),
                (Tok::Assign, _) => {
                    decl.push((v, at));
                    assign = true;
                }
                (Tok::Comma, cat) if control == Some(Kind::Range) => {
                    let (Tok::Var(v2), at2) = self.next_non_space()? else {
                        return Err(self.err("range can only initialize variables", cat));
                    };
                    match self.next_non_space()? {
                        (Tok::Declare, _) => {}
                        (Tok::Assign, _) => assign = true,
                        (_, p) => return Err(self.err("expected := or = after range variables", p)),
                    }
                    decl.push((v, at));
                    decl.push((v2, at2));
                }
                (Tok::Comma, cat) => return Err(self.err("too many declarations", cat)),
                _ => {
                    self.lx.pos = save;
                    self.lx.after_term = save_after;
                }
            }
        } else {
            self.lx.pos = save;
            self.lx.after_term = save_after;
        }
        if decl.iter().any(|(v, _)| *v == "$") {
            return Err(self.err("cannot assign to $", decl[0].1));
        }
        let mut cmds = Vec::new();
        loop {
            let (cmd, end, at) = self.command(ctx)?;
            cmds.push(cmd);
            match end {
                Tok::Pipe => continue,
                Tok::Close { trim } if !paren => {
                    self.trim_next = trim;
                    self.pos = self.lx.pos;
                    break;
                }
                Tok::RParen if paren => break,
                t => return Err(self.err(format!("unexpected {} in {ctx}", describe(&t)), at)),
            }
        }
        // Stages after the first receive the previous value: they must be calls; arity counts it.
        for (i, cmd) in cmds.iter().enumerate() {
            match &cmd.kind {
                CmdKind::Call(f, args) => {
                    let n = args.len() + usize::from(i > 0);
                    f.check_arity(n).map_err(|m| format!("{m} at {}:{}", cmd.loc.line, cmd.loc.col))?;
                }
                CmdKind::Value(_) if i > 0 => {
                    return Err(format!(
                        "pipeline stage {} is not a function call at {}:{}",
                        i + 1,
                        cmd.loc.line,
                        cmd.loc.col
                    ))
                }
                CmdKind::Value(_) => {}
            }
        }
        // Declared variables become visible after their pipeline.
        let mut slots = Vec::with_capacity(decl.len());
        for &(name, at) in &decl {
            slots.push(if assign { self.resolve(name, at)? } else { self.declare(name, at)? });
        }
        let pipe = Pipe { decl: Box::new([]), cmds: cmds.into() };
        if control == Some(Kind::Range) {
            let vars = match slots.as_slice() {
                [] => (None, None),
                [e] => (None, Some(*e)),
                [k, e] => (Some(*k), Some(*e)),
                _ => return Err(self.err("too many range variables", decl[0].1)),
            };
            return Ok((pipe, vars));
        }
        Ok((Pipe { decl: slots.into(), ..pipe }, (None, None)))
    }

    /// One command: operands separated by spaces; returns it, the token that ended it and
    /// where that token is.
    fn command(&mut self, ctx: &str) -> PResult<(Cmd, Tok<'s>, usize)> {
        let mut operands: Vec<(Operand, usize)> = Vec::new();
        let mut need_space = false;
        let (end, end_at) = loop {
            let (tok, at) = self.next()?;
            match tok {
                Tok::Space => need_space = false,
                Tok::Pipe | Tok::Close { .. } | Tok::RParen => break (tok, at),
                _ if need_space => {
                    return Err(
                        self.err(format!("unexpected {} in operand (missing space?)", describe(&tok)), at)
                    )
                }
                tok => {
                    let op = self.operand(tok, at)?;
                    operands.push((op, at));
                    need_space = true;
                }
            }
        };
        let mut ops = operands.into_iter();
        let Some((first, at)) = ops.next() else {
            return Err(self.err(format!("missing value for {ctx}"), end_at));
        };
        let loc = self.loc(at);
        let kind = match first {
            Operand::Func(f, _) => {
                let args = ops.map(|(op, _)| self.arg_of(op)).collect::<PResult<Vec<_>>>()?;
                CmdKind::Call(f, args.into())
            }
            Operand::Arg(a) => {
                if let Some((_, p)) = ops.next() {
                    return Err(self.err("can't give argument to non-function", p));
                }
                if a == Arg::Nil {
                    return Err(self.err("nil is not a command", at));
                }
                CmdKind::Value(a)
            }
        };
        Ok((Cmd { kind, loc }, end, end_at))
    }

    /// An operand in argument position: a bare function name is a call without arguments.
    fn arg_of(&self, op: Operand) -> PResult<Arg> {
        match op {
            Operand::Arg(a) => Ok(a),
            Operand::Func(f, at) => {
                f.check_arity(0).map_err(|m| self.err(m, at))?;
                Ok(Arg::Call(f, self.loc(at)))
            }
        }
    }

    /// Collects `.a.b` right after a term.
    fn chain(&mut self) -> PResult<Vec<Seg>> {
        let mut segs = Vec::new();
        while let Tok::Field(_) = self.peek(false)? {
            if let (Tok::Field(name), _) = self.next()? {
                segs.push(Seg { name: name.into(), index: index_of(name) });
            }
        }
        Ok(segs)
    }

    fn no_chain(&mut self, what: &str, at: usize) -> PResult<()> {
        if let Tok::Field(_) = self.peek(false)? {
            return Err(self.err(format!("unexpected . after {what}"), at));
        }
        Ok(())
    }

    /// A path from the root: `.args...` and `.config...` get direct bases.
    fn root_path(&mut self, segs: Vec<Seg>) -> Arg {
        let mut it = segs.into_iter();
        match it.next() {
            None => {
                self.dynamic = true;
                Arg::Root
            }
            Some(first) if &*first.name == "config" => Arg::Field(Base::Config, it.collect()),
            Some(first) if &*first.name == "args" => {
                self.dynamic = true;
                Arg::Field(Base::Args, it.collect())
            }
            Some(first) => {
                self.dynamic = true;
                Arg::Field(Base::Data, std::iter::once(first).chain(it).collect())
            }
        }
    }

    fn operand(&mut self, tok: Tok<'s>, at: usize) -> PResult<Operand> {
        let arg = match tok {
            Tok::Dot => {
                self.no_chain("dot", at)?;
                if self.dot_root {
                    self.dynamic = true;
                    Arg::Root
                } else {
                    Arg::Dot
                }
            }
            Tok::Field(name) => {
                let mut segs = vec![Seg { name: name.into(), index: index_of(name) }];
                segs.extend(self.chain()?);
                if self.dot_root {
                    self.root_path(segs)
                } else {
                    Arg::Field(Base::Dot, segs.into())
                }
            }
            Tok::Var(name) => {
                let segs = self.chain()?;
                if name == "$" {
                    self.root_path(segs)
                } else {
                    let slot = self.resolve(name, at)?;
                    if segs.is_empty() {
                        Arg::Var(slot)
                    } else {
                        Arg::Field(Base::Var(slot), segs.into())
                    }
                }
            }
            Tok::LParen => {
                self.enter(at)?;
                let (pipe, _) = self.pipeline("parenthesized pipeline", None)?;
                self.depth -= 1;
                let segs = self.chain()?;
                if segs.is_empty() {
                    Arg::Pipe(Box::new(pipe))
                } else {
                    Arg::Field(Base::Pipe(Box::new(pipe)), segs.into())
                }
            }
            Tok::Ident(name) => {
                if matches!(
                    name,
                    "if" | "else"
                        | "end"
                        | "range"
                        | "with"
                        | "break"
                        | "continue"
                        | "define"
                        | "template"
                        | "block"
                ) {
                    return Err(self.err(format!("unexpected keyword {name:?} in operand"), at));
                }
                let f =
                    Func::lookup(name).ok_or_else(|| self.err(format!("unknown function {name:?}"), at))?;
                if f.is_impure() {
                    self.dynamic = true;
                }
                let segs = self.chain()?;
                if segs.is_empty() {
                    return Ok(Operand::Func(f, at));
                }
                f.check_arity(0).map_err(|m| self.err(m, at))?;
                Arg::Field(Base::Call(f, self.loc(at)), segs.into())
            }
            Tok::Str(s) => {
                self.no_chain("string", at)?;
                Arg::Str(s.into())
            }
            Tok::Char(c) => {
                self.no_chain("character constant", at)?;
                Arg::Int(i64::from(u32::from(c)))
            }
            Tok::Bool(b) => {
                self.no_chain("boolean", at)?;
                Arg::Bool(b)
            }
            Tok::Nil => {
                self.no_chain("nil", at)?;
                Arg::Nil
            }
            Tok::Num(text) => {
                self.no_chain("number", at)?;
                number(text).map_err(|m| self.err(m, at))?
            }
            t => return Err(self.err(format!("unexpected {} in operand", describe(&t)), at)),
        };
        Ok(Operand::Arg(arg))
    }
}

fn index_of(name: &str) -> Option<usize> {
    if name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

fn describe(t: &Tok<'_>) -> String {
    match t {
        Tok::Space => "space".into(),
        Tok::Close { .. } => "}}".into(),
        Tok::Pipe => "|".into(),
        Tok::LParen => "(".into(),
        Tok::RParen => ")".into(),
        Tok::Comma => ",".into(),
        Tok::Declare => ":=".into(),
        Tok::Assign => "=".into(),
        Tok::Dot => ".".into(),
        Tok::Field(f) => format!(".{f}"),
        Tok::Var(v) => (*v).into(),
        Tok::Ident(i) => format!("{i:?}"),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Num(n) => (*n).into(),
        Tok::Char(c) => format!("{c:?}"),
        Tok::Bool(b) => b.to_string(),
        Tok::Nil => "nil".into(),
        Tok::Eof => "end of template".into(),
    }
}

/// A number literal: an integer when the text is one (Go's base prefixes, `_`), else a float.
fn number(text: &str) -> Result<Arg, String> {
    let bad = || format!("bad number syntax: {text:?}");
    if text.ends_with('i') {
        return Err(format!("complex number {text:?} is not supported"));
    }
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, &clean[..]),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(h) = lower.strip_prefix("0x") {
        if h.contains(['.', 'p']) {
            return Err(format!("hexadecimal floating-point {text:?} is not supported"));
        }
        (16, h)
    } else if let Some(o) = lower.strip_prefix("0o") {
        (8, o)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b)
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit()) {
        (8, &lower[1..])
    } else {
        (10, &lower[..])
    };
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        if let Ok(u) = u64::from_str_radix(digits, radix) {
            let v = if neg { 0i128 - i128::from(u) } else { i128::from(u) };
            if let Ok(i) = i64::try_from(v) {
                return Ok(Arg::Int(i));
            }
        }
        if radix != 10 && radix != 8 {
            return Err(format!("number {text:?} out of range"));
        }
    }
    let f: f64 = clean.parse().map_err(|_| bad())?;
    if !f.is_finite() {
        return Err(format!("number {text:?} out of range"));
    }
    Ok(Arg::Float(f))
}
