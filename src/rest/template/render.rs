//! The evaluator: walks the compiled tree over borrowed values, writing into the caller's
//! buffer. Every node visit, command and iteration costs a step and every byte copied, scanned
//! or produced costs work, so a hostile argument cannot make a render hang or grow without
//! bound; recursion depth is the template's nesting, capped at compile time.

use serde_json::Value as Json;
use simd_json::Node as TNode;

use super::ast::{Arg, Base, Cmd, CmdKind, Loc, Node, Pipe, Range, Seg};
use super::common::{Escape, RenderError, MAX_OUTPUT, MAX_STEPS, MAX_WORK};
use super::func::{Fail, Func, Ret};
use super::value::{self, Cx, Val};

/// Variables and call arguments live on the stack up to these counts.
const INLINE_VARS: usize = 8;
const INLINE_ARGS: usize = 6;

/// Work charged per object entry or array element skipped on the tape (a few compares and an
/// addition each; 16 keeps a scan of 4 million entries within [`MAX_WORK`]).
pub(super) const SCAN_COST: usize = 16;

/// Renders `nodes` into `out`.
pub(super) fn run<'r>(
    nodes: &'r [Node],
    slots: usize,
    cx: Cx<'r>,
    out: &mut Vec<u8>,
    escape: Escape,
) -> Result<(), RenderError> {
    let mut inline: [Val<'r>; INLINE_VARS] = Default::default();
    let mut heap: Vec<Val<'r>>;
    let vars: &mut [Val<'r>] = if slots <= INLINE_VARS {
        &mut inline[..slots]
    } else {
        heap = vec![Val::Missing; slots];
        &mut heap
    };
    if let Some(root) = vars.first_mut() {
        *root = Val::Root;
    }
    let mut ev = Ev {
        cx,
        vars,
        steps: MAX_STEPS,
        work: MAX_WORK,
        limit: out.len().saturating_add(MAX_OUTPUT),
        escape,
    };
    ev.walk(nodes, &Val::Root, out)?;
    Ok(())
}

/// What a walked list asks of its enclosing range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// Evaluation state of one render.
pub(super) struct Ev<'r, 'v> {
    pub cx: Cx<'r>,
    vars: &'v mut [Val<'r>],
    steps: u64,
    work: u64,
    /// Largest length `out` may reach.
    pub limit: usize,
    escape: Escape,
}

fn eval_err(msg: impl Into<String>, loc: Loc) -> RenderError {
    RenderError::Eval { msg: msg.into(), line: loc.line, col: loc.col }
}

/// Percent-encodes `out[start..]` in place (RFC 3986 unreserved bytes stay), growing the
/// buffer once and filling it from the back.
fn percent_encode(out: &mut Vec<u8>, start: usize, escape: Escape) {
    let keep = |b: u8| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            // A path keeps its separators and the characters RFC 3986 allows in a segment.
            || (escape == Escape::Path && matches!(b, b'/' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b':' | b'@'))
    };
    let extra = 2 * out[start..].iter().filter(|&&b| !keep(b)).count();
    if extra == 0 {
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let old = out.len();
    out.resize(old + extra, 0);
    let mut w = out.len();
    let mut r = old;
    while r > start {
        r -= 1;
        let b = out[r];
        if keep(b) {
            w -= 1;
            out[w] = b;
        } else {
            w -= 3;
            out[w] = b'%';
            out[w + 1] = HEX[usize::from(b >> 4)];
            out[w + 2] = HEX[usize::from(b & 0xf)];
        }
    }
}

impl<'r> Ev<'r, '_> {
    fn step(&mut self) -> Result<(), RenderError> {
        if self.steps == 0 {
            return Err(RenderError::Budget);
        }
        self.steps -= 1;
        Ok(())
    }

    /// Charges `bytes` of work.
    pub fn charge(&mut self, bytes: usize) -> Result<(), RenderError> {
        let b = bytes as u64;
        if b > self.work {
            self.work = 0;
            return Err(RenderError::Budget);
        }
        self.work -= b;
        Ok(())
    }

    /// Checks what was written to `out` since `start` against the cap and charges it.
    pub fn wrote(&mut self, out: &[u8], start: usize, limit: usize) -> Result<(), RenderError> {
        if out.len() > limit {
            return Err(RenderError::OutputTooLarge);
        }
        self.charge(out.len().saturating_sub(start))
    }

    fn put(&mut self, out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), RenderError> {
        if out.len() + bytes.len() > self.limit {
            return Err(RenderError::OutputTooLarge);
        }
        self.charge(bytes.len())?;
        out.extend_from_slice(bytes);
        Ok(())
    }

    /// `$` and the root `.` as plain values are the data.
    pub fn deroot(&self, v: Val<'r>) -> Val<'r> {
        match v {
            Val::Root => self.cx.data_val(),
            v => v,
        }
    }

    fn set(&mut self, slot: u16, v: Val<'r>) {
        if let Some(s) = self.vars.get_mut(usize::from(slot)) {
            *s = v;
        }
    }

    fn walk(&mut self, nodes: &'r [Node], dot: &Val<'r>, out: &mut Vec<u8>) -> Result<Flow, RenderError> {
        for node in nodes {
            self.step()?;
            match node {
                Node::Text(t) => self.put(out, t.as_bytes())?,
                Node::Action { pipe, escaped } => {
                    if pipe.decl.is_empty() {
                        let start = out.len();
                        self.pipe_out(pipe, dot, out)?;
                        if self.escape != Escape::None && !escaped {
                            percent_encode(out, start, self.escape);
                            if out.len() > self.limit {
                                return Err(RenderError::OutputTooLarge);
                            }
                        }
                    } else {
                        self.pipe(pipe, dot)?;
                    }
                }
                Node::Cond { arms, otherwise } => {
                    let mut chosen = None;
                    for arm in arms.iter() {
                        let v = self.pipe(&arm.pipe, dot)?;
                        if v.truth(&self.cx) {
                            chosen = Some((&arm.body, if arm.with { v } else { dot.clone() }));
                            break;
                        }
                    }
                    let flow = match (chosen, otherwise) {
                        (Some((body, d)), _) => self.walk(body, &d, out)?,
                        (None, Some(o)) => self.walk(o, dot, out)?,
                        (None, None) => Flow::Normal,
                    };
                    if flow != Flow::Normal {
                        return Ok(flow);
                    }
                }
                Node::Range(r) => self.range(r, dot, out)?,
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    /// Evaluates a pipeline to a value and assigns its declared variables.
    fn pipe(&mut self, pipe: &'r Pipe, dot: &Val<'r>) -> Result<Val<'r>, RenderError> {
        let mut v: Option<Val<'r>> = None;
        for cmd in pipe.cmds.iter() {
            v = Some(self.cmd(cmd, dot, v.take(), None)?.val());
        }
        let v = v.unwrap_or_default();
        for &slot in pipe.decl.iter() {
            self.set(slot, v.clone());
        }
        Ok(v)
    }

    /// Evaluates a printing pipeline; a final function that produces text writes straight
    /// into `out`.
    fn pipe_out(&mut self, pipe: &'r Pipe, dot: &Val<'r>, out: &mut Vec<u8>) -> Result<(), RenderError> {
        let Some((last, first)) = pipe.cmds.split_last() else { return Ok(()) };
        let mut v: Option<Val<'r>> = None;
        for cmd in first {
            v = Some(self.cmd(cmd, dot, v.take(), None)?.val());
        }
        let start = out.len();
        match self.cmd(last, dot, v, Some(out))? {
            Ret::Wrote => Ok(()),
            Ret::Val(v) => {
                let limit = self.limit;
                value::write_text(out, &v, &self.cx, limit).map_err(|e| match e {
                    value::WriteErr::Deep => eval_err("value nested too deeply", last.loc),
                    value::WriteErr::Large => RenderError::OutputTooLarge,
                })?;
                self.wrote(out, start, limit)
            }
        }
    }

    fn cmd(
        &mut self,
        cmd: &'r Cmd,
        dot: &Val<'r>,
        last: Option<Val<'r>>,
        out: Option<&mut Vec<u8>>,
    ) -> Result<Ret<'r>, RenderError> {
        self.step()?;
        match &cmd.kind {
            CmdKind::Value(a) => Ok(Ret::Val(self.arg(a, dot)?)),
            CmdKind::Call(f, args) => self.call(*f, args, dot, last, cmd.loc, out),
        }
    }

    /// Calls `f` with `args` (evaluated here, `and`/`or` lazily) and the piped value last.
    fn call(
        &mut self,
        f: Func,
        args: &'r [Arg],
        dot: &Val<'r>,
        last: Option<Val<'r>>,
        loc: Loc,
        out: Option<&mut Vec<u8>>,
    ) -> Result<Ret<'r>, RenderError> {
        if matches!(f, Func::And | Func::Or) {
            // Go: evaluation stops at the first argument that decides, which is the result.
            let stop_on = f == Func::Or;
            let mut result = Val::Missing;
            for a in args {
                let v = self.arg(a, dot)?;
                result = self.deroot(v);
                if result.truth(&self.cx) == stop_on {
                    return Ok(Ret::Val(result));
                }
            }
            if let Some(v) = last {
                result = self.deroot(v);
            }
            return Ok(Ret::Val(result));
        }
        let n = args.len() + usize::from(last.is_some());
        let res = if n <= INLINE_ARGS {
            let mut buf: [Val<'r>; INLINE_ARGS] = Default::default();
            for (slot, a) in buf.iter_mut().zip(args) {
                let v = self.arg(a, dot)?;
                *slot = self.deroot(v);
            }
            if let Some(v) = last {
                buf[args.len()] = self.deroot(v);
            }
            self.apply(f, &buf[..n], out)
        } else {
            let mut buf = Vec::with_capacity(n);
            for a in args {
                let v = self.arg(a, dot)?;
                buf.push(self.deroot(v));
            }
            if let Some(v) = last {
                buf.push(self.deroot(v));
            }
            self.apply(f, &buf, out)
        };
        res.map_err(|e| match e {
            Fail::Render(e) => e,
            Fail::Msg(m) => eval_err(format!("{}: {m}", f.name()), loc),
        })
    }

    fn arg(&mut self, a: &'r Arg, dot: &Val<'r>) -> Result<Val<'r>, RenderError> {
        Ok(match a {
            Arg::Str(s) => Val::Str(s),
            Arg::Int(i) => Val::Int(*i),
            Arg::Float(f) => Val::Float(*f),
            Arg::Bool(b) => Val::Bool(*b),
            Arg::Nil => Val::Null,
            Arg::Dot => dot.clone(),
            Arg::Root => Val::Root,
            Arg::Var(s) => self.vars.get(usize::from(*s)).cloned().unwrap_or_default(),
            Arg::Call(f, loc) => self.call(*f, &[], dot, None, *loc, None)?.val(),
            Arg::Pipe(p) => self.pipe(p, dot)?,
            Arg::Field(base, segs) => {
                let mut v = match base {
                    Base::Dot => dot.clone(),
                    Base::Args => self.cx.args.map_or(Val::Missing, Val::from_tape),
                    Base::Config => self.cx.config.map_or(Val::Missing, Val::from_json),
                    Base::Data => self.cx.data_val(),
                    Base::Var(s) => self.vars.get(usize::from(*s)).cloned().unwrap_or_default(),
                    Base::Pipe(p) => self.pipe(p, dot)?,
                    Base::Call(f, loc) => self.call(*f, &[], dot, None, *loc, None)?.val(),
                };
                for seg in segs.iter() {
                    if v.is_nil() {
                        return Ok(Val::Missing);
                    }
                    v = self.field(v, seg)?;
                }
                v
            }
        })
    }

    /// `v.seg`: an object key, an array index for numeric segments, missing otherwise.
    fn field(&mut self, v: Val<'r>, seg: &Seg) -> Result<Val<'r>, RenderError> {
        Ok(match v {
            Val::Tape(t) => match t.first() {
                Some(TNode::Object { .. }) => {
                    let (found, scanned) = value::tape_get(t, &seg.name);
                    self.charge(scanned * SCAN_COST)?;
                    found.map_or(Val::Missing, Val::from_tape)
                }
                Some(TNode::Array { len, .. }) => match seg.index {
                    Some(i) if i < *len => {
                        self.charge(i * SCAN_COST)?;
                        value::tape_index(t, i).map_or(Val::Missing, Val::from_tape)
                    }
                    _ => Val::Missing,
                },
                _ => Val::Missing,
            },
            Val::Json(Json::Object(m)) => m.get(&*seg.name).map_or(Val::Missing, Val::from_json),
            Val::Json(Json::Array(a)) => {
                seg.index.and_then(|i| a.get(i)).map_or(Val::Missing, Val::from_json)
            }
            Val::List(l, _) => seg.index.and_then(|i| l.get(i)).cloned().unwrap_or_default(),
            Val::Root => match &*seg.name {
                "args" => self.cx.args.map_or(Val::Missing, Val::from_tape),
                "config" => self.cx.config.map_or(Val::Missing, Val::from_json),
                _ => {
                    let data = self.cx.data_val();
                    self.field(data, seg)?
                }
            },
            _ => Val::Missing,
        })
    }

    /// One iteration: binds the variables, walks the body with dot = element.
    fn iteration(
        &mut self,
        r: &'r Range,
        key: Val<'r>,
        elem: Val<'r>,
        out: &mut Vec<u8>,
    ) -> Result<Flow, RenderError> {
        self.step()?;
        if let Some(k) = r.key {
            self.set(k, key);
        }
        if let Some(e) = r.elem {
            self.set(e, elem.clone());
        }
        self.walk(&r.body, &elem, out)
    }

    fn range(&mut self, r: &'r Range, dot: &Val<'r>, out: &mut Vec<u8>) -> Result<(), RenderError> {
        let v = self.pipe(&r.pipe, dot)?;
        let v = self.deroot(v);
        let mut ran = false;
        match v {
            Val::Tape(t) if matches!(t.first(), Some(TNode::Array { .. })) => {
                for (i, el) in crate::mcp::json::elements(t).enumerate() {
                    ran = true;
                    if self.iteration(r, Val::Int(i as i64), Val::from_tape(el), out)? == Flow::Break {
                        break;
                    }
                }
            }
            Val::Tape(t) => {
                // Go visits map keys in sorted order; Higress's `.args` went through a Go map.
                let mut entries: Vec<(&'r str, &'r [TNode<'r>])> = crate::mcp::json::entries(t).collect();
                self.charge(entries.len() * SCAN_COST * 2)?;
                entries.sort_by(|a, b| a.0.cmp(b.0));
                for (k, el) in entries {
                    ran = true;
                    if self.iteration(r, Val::Str(k), Val::from_tape(el), out)? == Flow::Break {
                        break;
                    }
                }
            }
            Val::Json(Json::Array(a)) => {
                for (i, el) in a.iter().enumerate() {
                    ran = true;
                    if self.iteration(r, Val::Int(i as i64), Val::from_json(el), out)? == Flow::Break {
                        break;
                    }
                }
            }
            Val::Json(Json::Object(m)) => {
                let mut entries: Vec<(&'r String, &'r Json)> = m.iter().collect();
                self.charge(entries.len() * SCAN_COST * 2)?;
                entries.sort_by(|a, b| a.0.cmp(b.0));
                for (k, el) in entries {
                    ran = true;
                    if self.iteration(r, Val::Str(k), Val::from_json(el), out)? == Flow::Break {
                        break;
                    }
                }
            }
            Val::List(l, _) => {
                for (i, el) in l.iter().enumerate() {
                    ran = true;
                    if self.iteration(r, Val::Int(i as i64), el.clone(), out)? == Flow::Break {
                        break;
                    }
                }
            }
            Val::Missing | Val::Null => {}
            ref n @ (Val::Int(_) | Val::Uint(_) | Val::Float(_)) => {
                let Some(count) = n.int() else {
                    return Err(eval_err("range can't iterate over a non-integer number", r.loc));
                };
                if r.key.is_some() {
                    return Err(eval_err("can't use a number to iterate over more than one variable", r.loc));
                }
                for i in 0..count.max(0) {
                    ran = true;
                    if self.iteration(r, Val::Int(i), Val::Int(i), out)? == Flow::Break {
                        break;
                    }
                }
            }
            other => return Err(eval_err(format!("range can't iterate over {}", other.kind()), r.loc)),
        }
        if !ran {
            if let Some(o) = &r.otherwise {
                self.walk(o, dot, out)?;
            }
        }
        Ok(())
    }
}
