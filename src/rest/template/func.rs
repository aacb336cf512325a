//! The function table: every Go builtin and sprig function Higress users write, resolved by
//! name when a template is compiled ([`Func`]), with its arity, and how a function's result or
//! failure is reported ([`Ret`], [`Fail`]). The implementations are in `funcs`.

use super::common::RenderError;
use super::value::{self, Val};

/// Why a function failed: a message (the caller adds the function name and position) or a
/// limit.
pub(super) enum Fail {
    Msg(String),
    Render(RenderError),
}

impl From<RenderError> for Fail {
    fn from(e: RenderError) -> Fail {
        Fail::Render(e)
    }
}

pub(super) fn werr(e: value::WriteErr) -> Fail {
    match e {
        value::WriteErr::Deep => Fail::Msg("value nested too deeply".into()),
        value::WriteErr::Large => Fail::Render(RenderError::OutputTooLarge),
    }
}

pub(super) fn too_deep() -> Fail {
    Fail::Msg(format!("lists nested deeper than {}", value::MAX_LIST_DEPTH))
}

pub(super) fn fail<T>(msg: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Msg(msg.into()))
}

/// A function's result: a value, or "already written to the output".
pub(super) enum Ret<'r> {
    Val(Val<'r>),
    Wrote,
}

impl<'r> Ret<'r> {
    /// The value (a result written to the output has none).
    pub fn val(self) -> Val<'r> {
        match self {
            Ret::Val(v) => v,
            Ret::Wrote => Val::Missing,
        }
    }
}

pub(super) const VAR: usize = usize::MAX;

/// The value of an absent argument.
pub(super) const MISSING: Val<'static> = Val::Missing;

macro_rules! functions {
    ($($variant:ident $min:literal $max:expr, $($name:literal)|+;)*) => {
        /// A template function.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(super) enum Func { $($variant,)* }

        /// Name (aliases included), function, fewest and most arguments (piped value counted).
        pub(super) const TABLE: &[(&str, Func, usize, usize)] = &[$($(($name, Func::$variant, $min, $max),)+)*];
    };
}

functions! {
    And 1 VAR, "and";
    Or 1 VAR, "or";
    Not 1 1, "not";
    Len 1 1, "len";
    Index 1 VAR, "index";
    Slice 1 4, "slice";
    Print 0 VAR, "print";
    Println 0 VAR, "println";
    Printf 1 VAR, "printf";
    Urlquery 0 VAR, "urlquery";
    Html 0 VAR, "html";
    Js 0 VAR, "js";
    Eq 2 VAR, "eq";
    Ne 2 2, "ne";
    Lt 2 2, "lt";
    Le 2 2, "le";
    Gt 2 2, "gt";
    Ge 2 2, "ge";
    Default 1 VAR, "default";
    Empty 1 1, "empty";
    Coalesce 0 VAR, "coalesce";
    Ternary 3 3, "ternary";
    All 0 VAR, "all";
    Any 0 VAR, "any";
    Fail 1 1, "fail";
    ToJson 1 1, "toJson" | "mustToJson";
    ToPrettyJson 1 1, "toPrettyJson" | "mustToPrettyJson";
    ToRawJson 1 1, "toRawJson" | "mustToRawJson";
    ToString 1 1, "toString";
    Upper 1 1, "upper";
    Lower 1 1, "lower";
    Title 1 1, "title";
    Untitle 1 1, "untitle";
    Trim 1 1, "trim";
    TrimAll 2 2, "trimAll" | "trimall";
    TrimPrefix 2 2, "trimPrefix";
    TrimSuffix 2 2, "trimSuffix";
    Replace 3 3, "replace";
    Contains 2 2, "contains";
    HasPrefix 2 2, "hasPrefix";
    HasSuffix 2 2, "hasSuffix";
    Repeat 2 2, "repeat";
    Substr 3 3, "substr";
    Trunc 2 2, "trunc";
    Nospace 1 1, "nospace";
    Indent 2 2, "indent";
    Nindent 2 2, "nindent";
    Cat 0 VAR, "cat";
    Quote 0 VAR, "quote";
    Squote 0 VAR, "squote";
    Join 2 2, "join";
    SplitList 2 2, "splitList";
    List 0 VAR, "list" | "tuple";
    First 1 1, "first" | "mustFirst";
    Last 1 1, "last" | "mustLast";
    Has 2 2, "has" | "mustHas";
    HasKey 2 2, "hasKey";
    Get 2 2, "get";
    B64enc 1 1, "b64enc";
    B64dec 1 1, "b64dec";
    Sha256sum 1 1, "sha256sum";
    Int 1 1, "int" | "int64";
    Float64 1 1, "float64";
    Atoi 1 1, "atoi";
    Add 0 VAR, "add";
    Add1 1 1, "add1";
    Sub 2 2, "sub";
    Mul 1 VAR, "mul";
    Div 2 2, "div";
    Mod 2 2, "mod";
    Max 1 VAR, "max" | "biggest";
    Min 1 VAR, "min";
    Addf 0 VAR, "addf";
    Subf 1 VAR, "subf";
    Mulf 1 VAR, "mulf";
    Divf 1 VAR, "divf";
    Floor 1 1, "floor";
    Ceil 1 1, "ceil";
    Uuidv4 0 0, "uuidv4";
    RandAlphaNum 1 1, "randAlphaNum";
    RandAlpha 1 1, "randAlpha";
    RandNumeric 1 1, "randNumeric";
    RandAscii 1 1, "randAscii";
    Now 0 0, "now";
    Date 2 2, "date";
    DateInZone 3 3, "dateInZone" | "date_in_zone";
    HtmlDate 1 1, "htmlDate";
    HtmlDateInZone 2 2, "htmlDateInZone";
    UnixEpoch 1 1, "unixEpoch";
    DateModify 2 2, "dateModify" | "mustDateModify";
    GetRealIp 0 0, "getRealIP";
    GetSocketIp 0 0, "getSocketIP";
    RegexMatch 2 2, "regexMatch" | "mustRegexMatch";
    RegexFind 2 2, "regexFind" | "mustRegexFind";
    RegexFindAll 3 3, "regexFindAll" | "mustRegexFindAll";
    RegexReplaceAll 3 3, "regexReplaceAll" | "mustRegexReplaceAll";
    RegexReplaceAllLiteral 3 3, "regexReplaceAllLiteral" | "mustRegexReplaceAllLiteral";
    RegexSplit 3 3, "regexSplit" | "mustRegexSplit";
}

impl Func {
    /// The function called `name`.
    pub fn lookup(name: &str) -> Option<Func> {
        TABLE.iter().find(|(n, ..)| *n == name).map(|&(_, f, ..)| f)
    }

    /// Whether the result depends on more than the arguments (the clock, randomness, the
    /// caller): a template using one is never rendered once at load.
    pub fn is_impure(self) -> bool {
        matches!(
            self,
            Func::Uuidv4
                | Func::RandAlphaNum
                | Func::RandAlpha
                | Func::RandNumeric
                | Func::RandAscii
                | Func::Now
                | Func::Date
                | Func::DateInZone
                | Func::HtmlDate
                | Func::HtmlDateInZone
                | Func::UnixEpoch
                | Func::DateModify
                | Func::GetRealIp
                | Func::GetSocketIp
        )
    }

    /// The function's (first) name.
    pub fn name(self) -> &'static str {
        TABLE.iter().find(|(_, f, ..)| *f == self).map_or("?", |(n, ..)| n)
    }

    /// Checks that `n` arguments (piped value included) suit the function.
    pub fn check_arity(self, n: usize) -> Result<(), String> {
        let Some(&(name, _, min, max)) = TABLE.iter().find(|(_, f, ..)| *f == self) else {
            return Ok(());
        };
        if n < min || n > max {
            let want = if min == max {
                format!("{min}")
            } else if max == VAR {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(format!("wrong number of arguments for {name:?}: want {want}, got {n}"));
        }
        Ok(())
    }
}
