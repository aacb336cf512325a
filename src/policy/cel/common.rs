//! What the CEL compiler and evaluator share: limits, options and errors.

/// Compile-time and run-time bounds of one program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted source, in bytes.
    pub max_source_len: usize,
    /// Deepest nesting: of the parser's recursion and of the AST (and so of the evaluator).
    pub max_depth: usize,
    /// Most AST nodes.
    pub max_nodes: usize,
    /// Most evaluation steps per call: one per node evaluated, one per comprehension
    /// iteration or element scanned by `in`/`==`/`+`, one per 64 string bytes scanned.
    pub max_cost: u64,
}

impl Default for Limits {
    /// 4 KiB and 1024 nodes hold any hand-written rule (a 300-name allow-list is ~300 nodes);
    /// depth 64 keeps the recursive parser and evaluator well inside a 2 MiB test-thread stack
    /// even unoptimised. 100 000 steps is a comprehension over 25 000 tape elements; running
    /// out of it took 1.4-1.7 ms in a release build here (2-core dev machine), in proportion
    /// to decoding the 4 MB body that could carry such a list, while a typical three-clause
    /// rule (tool in a list, a tape path, a claim) costs 24 steps and 0.5 us.
    fn default() -> Self {
        Limits { max_source_len: 4096, max_depth: 64, max_nodes: 1024, max_cost: 100_000 }
    }
}

/// How to compile.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Bounds.
    pub limits: Limits,
    /// When set, the only top-level variables an expression may name; others fail to compile.
    pub variables: Option<&'static [&'static str]>,
}

/// Why a source did not compile, and where (byte offset).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at {pos}: {message}")]
pub struct CompileError {
    /// Byte offset in the source.
    pub pos: usize,
    /// What is wrong.
    pub message: String,
}

/// What went wrong during an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// A top-level variable the activation does not bind.
    #[error("unbound variable")]
    UnknownVariable,
    /// A missing field or map key.
    #[error("no such key")]
    NoSuchKey,
    /// An operator or function applied to types it is not defined for.
    #[error("no matching overload")]
    NoSuchOverload,
    /// A list index outside the list.
    #[error("index out of range")]
    IndexOutOfRange,
    /// Integer division or remainder by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// Integer overflow, or a conversion out of the target's range.
    #[error("integer overflow")]
    Overflow,
    /// A string that does not parse as the requested number.
    #[error("invalid conversion")]
    InvalidConversion,
    /// A map literal repeating a key, or a JSON object holding the key read twice.
    #[error("duplicate key")]
    DuplicateKey,
    /// An ordering comparison with NaN.
    #[error("NaN values cannot be ordered")]
    NaN,
    /// Data nested too deeply to compare.
    #[error("data nested too deeply")]
    TooDeep,
    /// The result of a rule is not a bool.
    #[error("result is not a bool")]
    NotBool,
    /// The evaluation ran out of budget.
    #[error("cost limit exceeded")]
    CostExceeded,
}

/// An evaluation error: what, and the byte offset of the expression that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at {pos}: {kind}")]
pub struct EvalError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Byte offset in the source.
    pub pos: u32,
}
