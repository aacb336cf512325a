//! Go `text/template` with the sprig functions Higress users write, compiled once at config load
//! into a tree that is walked per call without re-parsing. It owns template syntax and
//! semantics only: it never performs I/O and never allocates on the hot path beyond the output
//! buffer (field paths, `default`, `urlquery`, `toJson` over borrowed values write straight into
//! it). `config::compile` compiles; `proxy::local` and the REST request builder render with the
//! call's arguments tape, `server.config` and, for response templates, the backend's JSON.
//!
//! What a template sees: `.args.x` is the call's arguments, `.config.x` is `server.config`, any
//! other `.x` (and `.` alone) is the data; `$` is always that root. Missing values render empty,
//! strings raw, numbers as JSON text, objects and arrays as compact JSON (Higress behaviour, not
//! Go's `<no value>`). Every byte of the arguments comes from a hostile client, so rendering runs
//! under a step budget and an output cap ([`RenderError`]), and nesting is capped at compile time.
//!
//! Where Higress (github.com/higress-group/gjson_template) and Go disagree, the choices are
//! documented on [`Template`].

mod ast;
mod clock;
mod common;
mod func;
mod funcs;
mod gofmt;
mod lex;
mod parse;
mod render;
mod sprig_ext;
mod text;
mod value;

#[cfg(test)]
mod tests;

use simd_json::Node;

pub use common::{Client, Escape, RenderError, MAX_OUTPUT};

/// A compiled template.
///
/// # Syntax
///
/// Go `text/template`: `{{pipeline}}`, `{{if}}`/`{{else if}}`/`{{else}}`/`{{end}}`,
/// `{{range}}` (arrays, objects, integers; `{{else}}` when empty; `{{break}}`, `{{continue}}`),
/// `{{with}}`/`{{else with}}`, variables (`{{$x := ...}}`, `{{$x = ...}}`,
/// `{{range $i, $e := ...}}`, `$x.field`), `{{/* comments */}}`, trim markers `{{- ` and ` -}}`,
/// string literals (`"..."` with Go escapes, raw `` `...` ``), character constants, numbers,
/// `true`/`false`/`nil`, parenthesised pipelines and `|`, where the piped value is the last
/// argument. `{{define}}`, `{{template}}` and `{{block}}` are refused at compile time.
///
/// # Functions
///
/// Go builtins: `and`, `or` (short-circuit, returning the deciding value), `not`, `len`,
/// `index`, `slice`, `eq` (any number of alternatives), `ne`, `lt`, `le`, `gt`, `ge`, `print`,
/// `println`, `printf`, `urlquery`, `html`, `js`. Sprig, with sprig's argument order:
/// `default`, `empty`, `coalesce`, `ternary`, `all`, `any`, `fail`, `toJson`, `toPrettyJson`,
/// `toRawJson` (and their `must` forms), `toString`, `upper`, `lower`, `title`, `untitle`,
/// `trim`, `trimAll`, `trimPrefix`, `trimSuffix`, `replace`, `contains`, `hasPrefix`,
/// `hasSuffix`, `repeat`, `substr`, `trunc`, `nospace`, `indent`, `nindent`, `cat`, `quote`,
/// `squote`, `join`, `splitList`, `list`, `first`, `last`, `has`, `hasKey`, `get`, `b64enc`,
/// `b64dec`, `sha256sum`, `int`, `int64`, `float64`, `atoi`, `add`, `add1`, `sub`, `mul`,
/// `div`, `mod`, `max`, `min`, `addf`, `subf`, `mulf`, `divf`, `floor`, `ceil`; random
/// `uuidv4`, `randAlphaNum`, `randAlpha`, `randNumeric`, `randAscii`; dates `now`, `date`,
/// `dateInZone` (`date_in_zone`), `htmlDate`, `htmlDateInZone`, `unixEpoch`, `dateModify`
/// (Go reference layouts, IANA zones, see `clock`); regular expressions (RE2 syntax, as Go's)
/// `regexMatch`, `regexFind`, `regexFindAll`, `regexReplaceAll`, `regexReplaceAllLiteral`,
/// `regexSplit`. Higress's own: `getRealIP` (the first `X-Forwarded-For` entry when it is an
/// address, else the peer's) and `getSocketIP` (the peer's). Any other name is a compile error.
///
/// # Decisions where Higress and Go differ
///
/// - Missing values and JSON `null` render empty (Go prints `<no value>`; Higress prints
///   `null` for an explicit null). `toJson` of either is `null`.
/// - Numeric path segments index arrays (`.items.0`, gjson style as Higress allows); on an
///   object they are keys. A field of a non-object is missing, not an error (Higress).
/// - `range` over an object visits keys in sorted byte order (Go's map order, and what Higress
///   produces for `.args` and `.config`, which it round-trips through Go maps). Printing an
///   object and `toJson` keep its document order (same JSON, no sort allocation; Higress
///   prints `.args` objects with sorted keys).
/// - Numbers print as JSON text: integers exactly (Higress rounds arguments through float64),
///   floats in Go's `encoding/json` form, also for float results of `addf`/`mulf`/`floor`...
///   (`3`, where Higress prints `3.000000`; sprig computes those in decimal, here in binary
///   floating point).
/// - Numbers compare numerically whatever their JSON form (`eq 3 3.0` is true); `eq`/`ne`
///   between a number and a numeric string compare the numbers (Higress); `lt` and friends on
///   mixed or non-basic kinds are errors (Go). `eq` on objects or arrays is an error (Go).
/// - `len` of a missing value is 0 (Higress); of a number or boolean an error (Go).
/// - Integral floats act as integers in `printf`/`print` (Higress converts them); `%f`/`%e`/`%g`
///   also accept integers instead of printing `%!f(int=3)`.
/// - `b64dec` of invalid base64 (or of bytes that are not UTF-8) is a render error, not sprig's
///   error-text-as-result. `substr` and `trunc` cut on the nearest character boundary below the
///   byte offset, so output stays UTF-8.
/// - String functions accept any value and use its rendered text (Go would reject a number
///   passed to `upper`); objects passed to sprig functions are values, not Higress's raw JSON
///   strings (so `toJson` of an object is that object, not a quoted string).
/// - Raw strings are plain strings (gjson_template treats a leading raw string as a gjson
///   query); the `gjson` function is not provided, nor are sprig's dictionary, crypto
///   (beyond `sha256sum`), semver, path, network, reflection and OS functions, `env`, or `split`
///   (use `splitList`). `trimSpace` and `toJSON` are not sprig names and are compile errors, as
///   in Higress.
/// - Times travel between functions as text (`now` is Go's `time.Time` string form, in UTC), as
///   in Higress; `date`, `htmlDate` and `Local` zones are UTC, whatever the host's zone. A time
///   argument that is not a time (Higress always passes `now` as a string) means now.
/// - `join`'s separator must be a string: `join ','` (a character constant, a number in Go)
///   fails the call, as in Go and Higress, instead of joining with "44".
/// - `getRealIP` returns only an address: an `X-Forwarded-For` entry that is not one is
///   ignored (the header is the client's), never copied into a request.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    nodes: Box<[ast::Node]>,
    slots: usize,
    is_static: bool,
    is_constant: bool,
}

/// What a template renders from.
#[derive(Clone, Copy, Default)]
pub struct Context<'t, 'a, 'c> {
    /// The call's arguments (tape of `params.arguments`).
    pub args: Option<&'t [Node<'a>]>,
    /// `server.config`.
    pub config: Option<&'c serde_json::Value>,
    /// The data (backend response), when there is one.
    pub data: Option<&'c serde_json::Value>,
    /// Who is calling (`getRealIP`, `getSocketIP`).
    pub client: Client<'c>,
}

impl Template {
    /// Compiles `src`. The error says what was wrong and where (`line:col`), e.g.
    /// `unexpected {{end}} at 1:14` or `unknown function "foo" at 2:3`.
    pub fn compile(src: &str) -> Result<Template, String> {
        let p = parse::parse(src)?;
        Ok(Template { nodes: p.nodes, slots: p.slots, is_static: p.is_static, is_constant: p.is_constant })
    }

    /// Whether the template has no actions (renders to a constant).
    pub fn is_constant(&self) -> bool {
        self.is_constant
    }

    /// Whether the template reads nothing but literals and `.config`, so its output depends only
    /// on `server.config` and may be rendered once at load.
    pub fn is_static(&self) -> bool {
        self.is_static
    }

    /// Renders into `out` (appending). On error `out` is truncated back to its length at entry.
    pub fn render(&self, out: &mut Vec<u8>, cx: &Context<'_, '_, '_>) -> Result<(), RenderError> {
        self.render_escaped(out, cx, Escape::None)
    }

    /// [`Template::render`] with the text of every action escaped as `escape` says.
    pub fn render_escaped(
        &self,
        out: &mut Vec<u8>,
        cx: &Context<'_, '_, '_>,
        escape: Escape,
    ) -> Result<(), RenderError> {
        let start = out.len();
        let cx = value::Cx { args: cx.args, config: cx.config, data: cx.data, client: cx.client };
        let res = render::run(&self.nodes, self.slots, cx, out, escape);
        if res.is_err() {
            out.truncate(start);
        }
        res
    }
}
