//! Phase 5 helpers shared by the pipeline (calls) and the list merging (what a principal sees):
//! the CEL activation over the request, built from borrowed data, and the listing filter.

use crate::auth::{Principal, PrincipalKind};
use crate::config::snapshot::Server;
use crate::http::head::Head;
use crate::policy::cel::{Auth, HeaderPairs, Jwt, Mcp, Request, RequestActivation};

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
    let pairs: Vec<(&[u8], &[u8])> = head.headers.iter().map(|(n, v)| (n.of(buf), v.of(buf))).collect();
    let headers = HeaderPairs(&pairs);
    let jwt = (principal.kind == PrincipalKind::Jwt)
        .then(|| Jwt { claims: &principal.claims, scopes: &principal.scopes });
    let activation = RequestActivation {
        args,
        request: Request {
            method: head.method.as_str(),
            host: text(head.host.of(buf)),
            path: text(head.path.of(buf)),
            headers: Some(&headers),
            auth: Auth { jwt },
            mcp,
        },
    };
    f(&activation)
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
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
        let mcp = Mcp { method: Some("tools/call"), backend: Some(backend), tool: Some(tool), params: None };
        with_activation(self.head, self.buf, self.principal, None, mcp, |act| {
            policy.may_list(backend, tool, self.principal, act)
        })
    }
}
