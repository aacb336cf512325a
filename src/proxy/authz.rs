//! Phase 5 helpers shared by the pipeline (calls) and the list merging (what a principal sees):
//! the CEL activation over the request, built from borrowed data, and the listing filter.

use crate::auth::{Principal, PrincipalKind};
use crate::config::snapshot::Server;
use crate::http::head::Head;
use crate::policy::cel::{Auth, Jwt, MapView, Mcp, Request, RequestActivation, Str, Value};

/// `request.headers` read straight from the parsed head: names match ASCII case-insensitively;
/// a header sent on several lines is judged on its combined value, the lines joined with ", "
/// in order (RFC 9110 5.3), never on one of them; a value that is not UTF-8 reads with U+FFFD
/// in place of the bad bytes. A header sent once is borrowed, not copied.
///
/// Iteration (`size()`, macros over the map) needs each name once; that list is built once per
/// activation, on first use, so iterating costs O(headers^2) once instead of per entry (a rule
/// walking the headers of a request with hundreds of them stays cheap).
struct HeadHeaders<'a> {
    head: &'a Head,
    buf: &'a [u8],
    names: std::cell::OnceCell<Vec<&'a [u8]>>,
}

impl<'a> HeadHeaders<'a> {
    fn new(head: &'a Head, buf: &'a [u8]) -> Self {
        HeadHeaders { head, buf, names: std::cell::OnceCell::new() }
    }

    fn names(&self) -> &[&'a [u8]] {
        self.names.get_or_init(|| {
            let all = &self.head.headers;
            let buf = self.buf;
            all.iter()
                .enumerate()
                .filter(|(i, (n, _))| {
                    !all[..*i].iter().any(|(m, _)| m.of(buf).eq_ignore_ascii_case(n.of(buf)))
                })
                .map(|(_, (n, _))| n.of(buf))
                .collect()
        })
    }

    /// The combined value of every line named `name`.
    fn combined(&self, name: &[u8]) -> Option<Value<'a>> {
        let buf = self.buf;
        let mut lines = self
            .head
            .headers
            .iter()
            .filter(|(n, _)| n.of(buf).eq_ignore_ascii_case(name))
            .map(|(_, v)| v.of(buf));
        let first = lines.next()?;
        let Some(second) = lines.next() else { return Some(string(first)) };
        let mut joined = first.to_vec();
        for line in std::iter::once(second).chain(lines) {
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(line);
        }
        Some(Value::String(Str::Shared(String::from_utf8_lossy(&joined).into())))
    }
}

fn string(bytes: &[u8]) -> Value<'_> {
    Value::String(match String::from_utf8_lossy(bytes) {
        std::borrow::Cow::Borrowed(s) => Str::Borrowed(s),
        std::borrow::Cow::Owned(s) => Str::Shared(s.into()),
    })
}

impl MapView for HeadHeaders<'_> {
    fn len(&self) -> usize {
        self.names().len()
    }

    fn get(&self, key: &str) -> Option<Value<'_>> {
        self.combined(key.as_bytes())
    }

    fn entry(&self, index: usize) -> Option<(Value<'_>, Value<'_>)> {
        let n = *self.names().get(index)?;
        let name = if n.iter().any(u8::is_ascii_uppercase) {
            Value::String(Str::Shared(String::from_utf8_lossy(&n.to_ascii_lowercase()).into()))
        } else {
            string(n)
        };
        Some((name, self.combined(n)?))
    }
}

/// Runs `f` with the activation of a request: `args` and `mcp` as given, the rest from the head
/// and the principal.
pub fn with_activation<R>(
    head: &Head,
    buf: &[u8],
    principal: &Principal,
    args: Option<&[simd_json::Node<'_>]>,
    mcp: Mcp<'_>,
    f: impl FnOnce(&RequestActivation<'_>) -> R,
) -> R {
    let headers = HeadHeaders::new(head, buf);
    // A client certificate's claims (`cn`, `subject`, `dns`...) are read as a token's are
    // (docs/config.md, CEL conditions).
    let jwt = matches!(principal.kind, PrincipalKind::Jwt | PrincipalKind::Mtls).then(|| Jwt { principal });
    let mode = match principal.kind {
        PrincipalKind::Anonymous => None,
        PrincipalKind::Jwt => Some("jwt"),
        PrincipalKind::ApiKey => Some("apiKey"),
        PrincipalKind::Basic => Some("basic"),
        PrincipalKind::Proxy => Some("proxy"),
        PrincipalKind::Mtls => Some("mtls"),
    };
    let activation = RequestActivation {
        args,
        request: Request {
            method: head.method.as_str(),
            host: head.host.of(buf),
            path: head.path.of(buf),
            headers: Some(&headers),
            auth: Auth { jwt, subject: Some(principal.subject()).filter(|s| !s.is_empty()), mode },
            mcp,
        },
    };
    f(&activation)
}

/// Which tools a `tools/list` shows: those some call by this principal could be allowed.
pub struct Visible<'a> {
    /// The server.
    pub server: &'a Server,
    /// The caller.
    pub principal: &'a Principal,
    /// The request head and its buffer.
    pub head: &'a Head,
    /// The buffer the head's spans point into.
    pub buf: &'a [u8],
}

impl Visible<'_> {
    /// Whether `tool` of `backend` (the server's own name for its tools) is shown.
    pub fn tool(&self, backend: &str, tool: &str) -> bool {
        let policy = &self.server.policy;
        if policy.is_open() {
            return true;
        }
        // Asked as "could a call of this tool be allowed": the request seen as that call.
        let mcp = Mcp {
            method: Some("tools/call"),
            backend: Some(backend),
            tool: Some(tool),
            params: Default::default(),
        };
        with_activation(self.head, self.buf, self.principal, None, mcp, |act| {
            policy.may_list(backend, tool, self.principal, act)
        })
    }

    /// Whether a resource, resource template or prompt of `backend` is shown: some read of it
    /// could be allowed (rules with `target.resources` / `target.prompts`).
    pub fn other(&self, backend: &str, what: crate::policy::rules::Other<'_>) -> bool {
        use crate::policy::rules::Other;
        let policy = &self.server.policy;
        if policy.is_open() || !policy.judges(what) {
            return true;
        }
        let method = match what {
            Other::Prompt(_) => "prompts/get",
            Other::Resource(_) | Other::Template(_) => "resources/read",
        };
        let mcp =
            Mcp { method: Some(method), backend: Some(backend), tool: None, params: Default::default() };
        with_activation(self.head, self.buf, self.principal, None, mcp, |act| {
            policy.may_list_other(backend, what, self.principal, act)
        })
    }
}
