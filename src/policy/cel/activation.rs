//! Activations: what the top-level identifiers of an expression refer to, borrowed from the
//! request. [`RequestActivation`] is the gateway's: a struct of references the authorize phase
//! fills field by field, without copying or converting anything.

use simd_json::Node;

use super::value::{List, Map, MapView, Str, Value};

/// The variables an expression can read. `var` runs once per top-level identifier occurrence,
/// so it should be a match or a short scan, not a conversion.
pub trait Activation {
    /// The value of top-level variable `name`, or `None` if it is not bound (an evaluation
    /// error where it is used).
    fn var(&self, name: &str) -> Option<Value<'_>>;
}

/// An activation from a list of (name, value) bindings (tests, tools, ad-hoc evaluation).
#[derive(Clone, Copy)]
pub struct Bindings<'s, 'v>(pub &'s [(&'s str, Value<'v>)]);

impl Activation for Bindings<'_, '_> {
    fn var(&self, name: &str) -> Option<Value<'_>> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
    }
}

/// The gateway's activation for authorization rules: `args` and `request`, as in Envoy AI
/// Gateway's MCPRoute rules (BEHAVIOUR.md section 3).
#[derive(Clone, Copy)]
pub struct RequestActivation<'a> {
    /// `args`: the tool call's `params.arguments`; unbound when the message has none.
    pub args: Option<&'a [Node<'a>]>,
    /// `request`.
    pub request: Request<'a>,
}

impl RequestActivation<'_> {
    /// The top-level variables, for `Options::variables` (unknown ones fail at load).
    pub const VARIABLES: &'static [&'static str] = &["args", "request"];
}

impl Activation for RequestActivation<'_> {
    fn var(&self, name: &str) -> Option<Value<'_>> {
        match name {
            "args" => self.args.map(Value::from_tape),
            "request" => Some(Value::Map(Map::view(&self.request))),
            _ => None,
        }
    }
}

/// `request`: the HTTP request and what the gateway has established about it.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// `request.method` (`POST`).
    pub method: &'a str,
    /// `request.host` (the Host header), as sent: read as UTF-8 only when a condition asks.
    pub host: &'a [u8],
    /// `request.path` (without the query), as sent: read as UTF-8 only when a condition asks.
    pub path: &'a [u8],
    /// `request.headers`: lower-cased name to its value (lines of a repeated header combined with
    /// ", "). `None` is an empty map.
    pub headers: Option<&'a dyn MapView>,
    /// `request.auth`.
    pub auth: Auth<'a>,
    /// `request.mcp`.
    pub mcp: Mcp<'a>,
}

/// `request.auth`.
#[derive(Clone, Copy, Default)]
pub struct Auth<'a> {
    /// `request.auth.jwt`, present when the client authenticated with a verified JWT.
    pub jwt: Option<Jwt<'a>>,
    /// `request.auth.subject`: JWT `sub`, API key id, basic or proxy user; absent when anonymous.
    pub subject: Option<&'a str>,
    /// `request.auth.mode`: `jwt`, `apiKey`, `basic`, `proxy` or `mtls`; absent when anonymous.
    pub mode: Option<&'a str>,
}

/// `request.auth.jwt`.
#[derive(Clone, Copy)]
pub struct Jwt<'a> {
    /// Whose: `request.auth.jwt.claims` are its verified claims, `request.auth.jwt.scopes` its
    /// granted scopes (from `scope` or `scp`); read when an expression asks.
    pub principal: &'a crate::auth::Principal,
}

/// `request.mcp`: the JSON-RPC message. Absent fields are absent keys (`has()` is false).
#[derive(Clone, Copy, Default)]
pub struct Mcp<'a> {
    /// `request.mcp.method` (`tools/call`).
    pub method: Option<&'a str>,
    /// `request.mcp.backend`: the backend the call routes to.
    pub backend: Option<&'a str>,
    /// `request.mcp.tool`: the tool name as the backend knows it.
    pub tool: Option<&'a str>,
    /// `request.mcp.params`: the whole `params` value (with `arguments` and `_meta`).
    pub params: Params<'a>,
}

/// `request.mcp.params`: the `params` value as sent, with `arguments` replaced by the arguments
/// phase 5 judged when it normalized them, so a rule reading `request.mcp.params.arguments`
/// sees what `args` sees and what the backend receives.
#[derive(Clone, Copy, Default)]
pub struct Params<'a> {
    /// `params` as the client sent it.
    pub sent: Option<&'a [Node<'a>]>,
    /// The normalized arguments, when they differ from `params.arguments` as sent.
    pub arguments: Option<&'a [Node<'a>]>,
}

impl<'a> Params<'a> {
    /// `params` as sent, nothing normalized.
    pub fn sent(tape: &'a [Node<'a>]) -> Self {
        Params { sent: Some(tape), arguments: None }
    }

    fn value(&self) -> Option<Value<'_>> {
        let sent = self.sent?;
        Some(match self.arguments {
            None => Value::from_tape(sent),
            Some(_) => Value::Map(Map::view(self)),
        })
    }

    /// The members as sent, `arguments` replaced (or added last when it was not sent).
    fn members(&self) -> impl Iterator<Item = (&'a str, &'a [Node<'a>])> + '_ {
        let sent = self.sent.into_iter().flat_map(crate::mcp::json::entries);
        let had = self.sent.is_some_and(|s| crate::mcp::json::get(s, "arguments").is_some());
        let args = self.arguments;
        sent.map(move |(k, v)| if k == "arguments" { (k, args.unwrap_or(v)) } else { (k, v) })
            .chain(args.filter(|_| !had).map(|a| ("arguments", a)))
    }
}

impl MapView for Params<'_> {
    fn len(&self) -> usize {
        self.members().count()
    }
    fn get(&self, key: &str) -> Option<Value<'_>> {
        self.members().find(|(k, _)| *k == key).map(|(_, v)| Value::from_tape(v))
    }
    fn entry(&self, index: usize) -> Option<(Value<'_>, Value<'_>)> {
        self.members().nth(index).map(|(k, v)| (Value::str(k), Value::from_tape(v)))
    }
}

/// An empty map, for absent header sets.
struct NoEntries;

impl MapView for NoEntries {
    fn len(&self) -> usize {
        0
    }
    fn get(&self, _: &str) -> Option<Value<'_>> {
        None
    }
    fn entry(&self, _: usize) -> Option<(Value<'_>, Value<'_>)> {
        None
    }
}

/// Fields of a struct view: (name, value if present), in a fixed order.
fn present<'v, const N: usize>(
    fields: [(&'static str, Option<Value<'v>>); N],
) -> impl Iterator<Item = (&'static str, Value<'v>)> {
    fields.into_iter().filter_map(|(k, v)| v.map(|v| (k, v)))
}

impl Request<'_> {
    fn fields(&self) -> impl Iterator<Item = (&'static str, Value<'_>)> {
        let headers: &dyn MapView = self.headers.unwrap_or(&NoEntries);
        present([
            ("method", Some(Value::str(self.method))),
            ("host", Some(Value::String(text(self.host)))),
            ("path", Some(Value::String(text(self.path)))),
            ("headers", Some(Value::Map(Map::view(headers)))),
            ("auth", Some(Value::Map(Map::view(&self.auth)))),
            ("mcp", Some(Value::Map(Map::view(&self.mcp)))),
        ])
    }
}

impl MapView for Request<'_> {
    fn len(&self) -> usize {
        6
    }
    fn get(&self, key: &str) -> Option<Value<'_>> {
        match key {
            "method" => Some(Value::str(self.method)),
            "host" => Some(Value::String(text(self.host))),
            "path" => Some(Value::String(text(self.path))),
            "headers" => Some(Value::Map(Map::view(self.headers.unwrap_or(&NoEntries)))),
            "auth" => Some(Value::Map(Map::view(&self.auth))),
            "mcp" => Some(Value::Map(Map::view(&self.mcp))),
            _ => None,
        }
    }
    fn entry(&self, index: usize) -> Option<(Value<'_>, Value<'_>)> {
        self.fields().nth(index).map(|(k, v)| (Value::str(k), v))
    }
}

impl Auth<'_> {
    fn fields(&self) -> impl Iterator<Item = (&'static str, Value<'_>)> {
        present([
            ("jwt", self.jwt.as_ref().map(|j| Value::Map(Map::view(j)))),
            ("subject", self.subject.map(Value::str)),
            ("mode", self.mode.map(Value::str)),
        ])
    }
}

impl MapView for Auth<'_> {
    fn len(&self) -> usize {
        self.fields().count()
    }
    fn get(&self, key: &str) -> Option<Value<'_>> {
        self.fields().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
    fn entry(&self, index: usize) -> Option<(Value<'_>, Value<'_>)> {
        self.fields().nth(index).map(|(k, v)| (Value::str(k), v))
    }
}

impl MapView for Jwt<'_> {
    fn len(&self) -> usize {
        2
    }
    fn get(&self, key: &str) -> Option<Value<'_>> {
        match key {
            "claims" => Some(Value::Map(Map::claims(self.principal.claims()))),
            "scopes" => Some(Value::List(List::scopes(self.principal.scopes()))),
            _ => None,
        }
    }
    fn entry(&self, index: usize) -> Option<(Value<'_>, Value<'_>)> {
        let key = ["claims", "scopes"].get(index)?;
        Some((Value::str(key), self.get(key)?))
    }
}

impl Mcp<'_> {
    fn fields(&self) -> impl Iterator<Item = (&'static str, Value<'_>)> {
        present([
            ("method", self.method.map(Value::str)),
            ("backend", self.backend.map(Value::str)),
            ("tool", self.tool.map(Value::str)),
            ("params", self.params.value()),
        ])
    }
}

impl MapView for Mcp<'_> {
    fn len(&self) -> usize {
        self.fields().count()
    }
    fn get(&self, key: &str) -> Option<Value<'_>> {
        match key {
            "method" => self.method.map(Value::str),
            "backend" => self.backend.map(Value::str),
            "tool" => self.tool.map(Value::str),
            "params" => self.params.value(),
            _ => None,
        }
    }
    fn entry(&self, index: usize) -> Option<(Value<'_>, Value<'_>)> {
        self.fields().nth(index).map(|(k, v)| (Value::str(k), v))
    }
}

/// Request headers as `(name, value)` pairs in arrival order, viewed as CEL's
/// `request.headers`: names match ASCII case-insensitively (rules write them lower-case), the
/// first occurrence of a name wins, and a value that is not UTF-8 (obs-text) is read with
/// U+FFFD in place of the bad bytes, so it can never equal a string a rule wrote. Iterating it
/// rescans for first occurrences on every entry (quadratic per entry): meant for small, fixed
/// header sets; the gateway's request path uses its own view, which finds them once.
pub struct HeaderPairs<'a, N, V>(pub &'a [(N, V)]);

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> HeaderPairs<'_, N, V> {
    fn is_first(&self, index: usize) -> bool {
        let Some((name, _)) = self.0.get(index) else { return false };
        let name = name.as_ref();
        !self.0[..index].iter().any(|(n, _)| n.as_ref().eq_ignore_ascii_case(name))
    }
}

fn text(bytes: &[u8]) -> Str<'_> {
    match String::from_utf8_lossy(bytes) {
        std::borrow::Cow::Borrowed(s) => Str::Borrowed(s),
        std::borrow::Cow::Owned(s) => Str::Shared(s.into()),
    }
}

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> MapView for HeaderPairs<'_, N, V> {
    fn len(&self) -> usize {
        (0..self.0.len()).filter(|&i| self.is_first(i)).count()
    }
    fn get(&self, key: &str) -> Option<Value<'_>> {
        self.0
            .iter()
            .find(|(n, _)| n.as_ref().eq_ignore_ascii_case(key.as_bytes()))
            .map(|(_, v)| Value::String(text(v.as_ref())))
    }
    fn entry(&self, index: usize) -> Option<(Value<'_>, Value<'_>)> {
        let i = (0..self.0.len()).filter(|&i| self.is_first(i)).nth(index)?;
        let (n, v) = self.0.get(i)?;
        let n = n.as_ref();
        let name = if n.iter().any(u8::is_ascii_uppercase) {
            Str::Shared(String::from_utf8_lossy(&n.to_ascii_lowercase()).into())
        } else {
            text(n)
        };
        Some((Value::String(name), Value::String(text(v.as_ref()))))
    }
}
