//! The template tree `render` walks, as `parse` builds it: actions, pipelines, commands and
//! their arguments, with variables resolved to slots and functions to [`Func`].

use super::func::Func;

/// Where a command sits in the source, for render errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Loc {
    pub line: u32,
    pub col: u32,
}

/// A node of the compiled tree.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Node {
    /// Literal text.
    Text(Box<str>),
    /// `{{pipeline}}`: prints its value unless the pipeline declares variables.
    Action {
        pipe: Pipe,
        /// The last command is `urlquery`: its output is already URL-escaped.
        escaped: bool,
    },
    /// `{{if}}`/`{{with}}` chains: the first arm whose value is true runs.
    Cond { arms: Box<[Arm]>, otherwise: Option<Box<[Node]>> },
    /// `{{range}}`.
    Range(Box<Range>),
    /// `{{break}}`.
    Break,
    /// `{{continue}}`.
    Continue,
}

/// One `if`/`else if`/`with`/`else with` arm.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Arm {
    /// `with` rebinds dot to the value.
    pub with: bool,
    pub pipe: Pipe,
    pub body: Box<[Node]>,
}

/// `{{range [$k,] [$v :=] pipeline}} body {{else}} otherwise {{end}}`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Range {
    pub pipe: Pipe,
    pub key: Option<u16>,
    pub elem: Option<u16>,
    pub body: Box<[Node]>,
    pub otherwise: Option<Box<[Node]>>,
    pub loc: Loc,
}

/// Commands joined by `|`, optionally assigned to variables.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Pipe {
    pub decl: Box<[u16]>,
    pub cmds: Box<[Cmd]>,
}

/// One command of a pipeline.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Cmd {
    pub kind: CmdKind,
    pub loc: Loc,
}

/// A function call (with its explicit arguments; a piped value is appended at render time) or
/// a plain operand (first command of a pipeline only).
#[derive(Clone, Debug, PartialEq)]
pub(super) enum CmdKind {
    Call(Func, Box<[Arg]>),
    Value(Arg),
}

/// An operand.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Arg {
    Str(Box<str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// `.` below the root (inside `with`/`range`).
    Dot,
    /// `$`, or `.` at the root.
    Root,
    /// `$x`.
    Var(u16),
    /// A path of fields from a base.
    Field(Base, Box<[Seg]>),
    /// A function called without arguments.
    Call(Func, Loc),
    /// `(pipeline)`.
    Pipe(Box<Pipe>),
}

/// Where a field path starts.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Base {
    Dot,
    Args,
    Config,
    Data,
    Var(u16),
    Pipe(Box<Pipe>),
    Call(Func, Loc),
}

/// One path segment; `index` is set when it is all digits (it then also indexes arrays).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Seg {
    pub name: Box<str>,
    pub index: Option<usize>,
}

/// A parsed template.
pub(super) struct Parsed {
    pub nodes: Box<[Node]>,
    pub slots: usize,
    pub is_static: bool,
    pub is_constant: bool,
}
