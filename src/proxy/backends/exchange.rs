//! One exchange with a backend as a request sees it: the request's context ([`Cx`]: worker,
//! snapshot, owner, trace), the client headers each backend receives, and the time spent
//! waiting on backends ([`Tally`]).

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::config::snapshot::{Backend, Server, Snapshot};
use crate::error::Error;
use crate::proxy::conn::Conn;
use crate::proxy::core::Core;
use crate::proxy::observe::Trace;
use crate::upstream::client::{self, Response, UpstreamError};

use super::wire::{self as backend, Wire};

/// What one request's backend exchanges cost, for phase 8: the wall time during which at least
/// one exchange with a backend was in flight (the overlapping exchanges of a fan-out count
/// once), and the response bytes written to the client from within this module (relayed
/// streams). Cells: the exchanges of a fan-out share it on one task.
#[derive(Debug, Default)]
pub struct Tally {
    inflight: Cell<u32>,
    since: Cell<Option<Instant>>,
    waited: Cell<Duration>,
    reached: Cell<bool>,
    written: Cell<u64>,
    /// The request's trace (when it is traced): its ids and the CLIENT spans of its exchanges.
    pub trace: crate::proxy::spans::RequestTrace,
}

impl Tally {
    /// Starts waiting on a backend until the guard is dropped (cancellation included).
    pub(crate) fn wait(&self) -> Waiting<'_> {
        if self.inflight.get() == 0 {
            self.since.set(Some(Instant::now()));
        }
        self.inflight.set(self.inflight.get() + 1);
        self.reached.set(true);
        Waiting(self)
    }

    /// Time spent waiting on backends, microseconds; `None` when no backend was asked.
    pub fn backend_us(&self) -> Option<u64> {
        self.reached.get().then(|| self.waited.get().as_micros() as u64)
    }

    /// Response bytes written to the client from within this module.
    pub fn written(&self) -> u64 {
        self.written.get()
    }

    /// Writes `conn.out` to the client, counting the bytes.
    pub(crate) async fn flush(&self, conn: &mut Conn, limits: &crate::config::snapshot::Limits) -> bool {
        let n = conn.out.len() as u64;
        let ok = conn.flush(limits).await;
        if ok {
            self.written.set(self.written.get() + n);
        }
        ok
    }
}

/// An exchange with a backend in flight (see [`Tally::wait`]).
pub(crate) struct Waiting<'t>(&'t Tally);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let t = self.0;
        t.inflight.set(t.inflight.get().saturating_sub(1));
        if t.inflight.get() == 0 {
            if let Some(since) = t.since.take() {
                t.waited.set(t.waited.get() + since.elapsed());
            }
        }
    }
}

/// What the helpers below need of the worker, the snapshot and the request.
pub(crate) struct Cx<'a> {
    pub(crate) core: &'a Core,
    /// The principal's id: the owner of the gateway-owned backend sessions it uses.
    pub(crate) owner: &'a str,
    /// The caller (`None` for what the gateway asks on its own, such as recording pins): picks
    /// a per-principal backend credential.
    pub(crate) principal: Option<&'a crate::auth::Principal>,
    /// The caller's bearer token, as sent: the subject of a token exchange.
    pub(crate) bearer: Option<&'a [u8]>,
    pub(crate) snap: &'a Snapshot,
    /// Backend time and streamed bytes of the request.
    pub(crate) tally: &'a Tally,
    /// Request id and trace context, sent on every backend request.
    pub(crate) trace: Trace<'a>,
    /// What the client declared it can do (a JSON object; `{}` when it declared nothing or the
    /// gateway asks on its own): what a backend is told when the gateway opens a session with it
    /// for this caller, and part of whose session it is.
    pub(crate) caps: &'a [u8],
}

impl<'a> Cx<'a> {
    /// The context of a client's request: its principal (owner and credential), its bearer
    /// token, request id and trace context from `head` over `buf`, and the capabilities it
    /// declared (`{}` for none).
    pub(crate) fn for_request(
        (core, snap): (&'a Core, &'a Snapshot),
        (head, buf, request_id): (&crate::http::head::Head, &'a [u8], &'a [u8]),
        (principal, tally): (&'a crate::auth::Principal, &'a Tally),
        caps: &'a [u8],
    ) -> Cx<'a> {
        Cx {
            core,
            owner: principal.id(),
            principal: Some(principal),
            bearer: bearer(head, buf),
            snap,
            tally,
            trace: Trace::of(head, buf, request_id),
            caps: if caps.is_empty() { b"{}" } else { caps },
        }
    }
}

impl Cx<'_> {
    /// A request id for a message the gateway itself sends a backend. Unique per worker (ids
    /// must not repeat within a backend session, and concurrent requests share sessions).
    pub(crate) fn next_id(&self) -> String {
        let n = self.core.upstream_ids.get() + 1;
        self.core.upstream_ids.set(n);
        format!("portcullis-{}-{n}", self.core.worker)
    }

    pub(crate) async fn open(
        &self,
        b: &Backend,
        body: &[u8],
        wire: Wire<'_>,
        fwd: &[(&[u8], &[u8])],
    ) -> Result<client::Streaming, UpstreamError> {
        // A caller without a credential for this backend is refused before anything is sent
        // (not a backend failure); a token service's token is fetched (or taken from the
        // worker's cache) first.
        let fetched;
        let credential = match &b.credential {
            None => None,
            Some(c) => match c.for_principal(self.principal) {
                Ok(Some(c)) => Some(c),
                Ok(None) => match c {
                    crate::auth::credentials::Credential::Sts(sts) => {
                        fetched = self
                            .backend_token(sts)
                            .await
                            .map_err(|e| UpstreamError::Token(sts.scheme.clone(), e))?;
                        Some(&*fetched)
                    }
                    _ => None,
                },
                Err(e) => return Err(UpstreamError::NoCredential(e.0)),
            },
        };
        // A traced request's exchange is a CLIENT span, and the backend's `traceparent` names it.
        let span = self.tally.trace.client(&self.core.span_ids);
        let parent = span.as_ref().map(|s| crate::proxy::spans::traceparent(&s.trace, &s.id));
        let mut pairs: [(&[u8], &[u8]); 3] = [(b"", b""); 3];
        let trace: &[(&[u8], &[u8])] = match &parent {
            None => self.trace.headers(),
            Some(tp) => {
                let mut n = 0;
                for &(name, value) in self.trace.headers().iter().filter(|(n, _)| *n != b"traceparent") {
                    pairs[n] = (name, value);
                    n += 1;
                }
                pairs[n] = (b"traceparent", &tp[..]);
                &pairs[..n + 1]
            }
        };
        let r = {
            let _waiting = self.tally.wait();
            let headers = backend::Headers { forwarded: fwd, trace, credential };
            backend::open(
                (&self.core.upstream, &self.core.spare),
                &self.core.upstream_rr,
                &self.snap.limits,
                b,
                body,
                wire,
                headers,
            )
            .await
        };
        if let Some(open) = span {
            let verb = match wire.verb {
                backend::Verb::Post => "POST",
                backend::Verb::Get => "GET",
                backend::Verb::Delete => "DELETE",
            };
            let name = [wire.method.unwrap_or(verb).as_bytes(), b" ", b.name.as_bytes()];
            self.tally.trace.end(&self.core.spans, open, name, |w| {
                w.str("portcullis.backend", &b.name);
                w.kv(match wire.verb {
                    backend::Verb::Post => crate::proxy::spans::static_kv!("http.request.method", "POST"),
                    backend::Verb::Get => crate::proxy::spans::static_kv!("http.request.method", "GET"),
                    backend::Verb::Delete => crate::proxy::spans::static_kv!("http.request.method", "DELETE"),
                });
                if let Some(t) = b.targets.first() {
                    w.str("server.address", &t.authority);
                }
                if let Some(m) = wire.method {
                    w.str("mcp.method.name", m);
                }
                match &r {
                    Ok(s) => {
                        w.int("http.response.status_code", i64::from(s.status));
                        if s.status >= 500 {
                            w.fail_code(i64::from(s.status));
                        }
                    }
                    Err(e) => w.fail(&e.to_string()),
                }
            });
        }
        // Transport failures and server errors count; 4xx answers are protocol outcomes.
        if r.as_ref().map_or(true, |s| s.status >= 500) {
            self.core.stats.borrow_mut().backend_failed(&b.name);
        }
        r
    }

    pub(crate) async fn send(
        &self,
        b: &Backend,
        body: &[u8],
        wire: Wire<'_>,
        fwd: &[(&[u8], &[u8])],
    ) -> Result<Response, UpstreamError> {
        let r = self.collect(self.open(b, body, wire, fwd).await?).await;
        if r.is_err() {
            self.core.stats.borrow_mut().backend_failed(&b.name);
        }
        r
    }

    /// Reads the rest of a backend's answer (time counted as backend time).
    pub(crate) async fn collect(&self, r: client::Streaming) -> Result<Response, UpstreamError> {
        // A body that came with the head is not waited for (and its clock not read).
        let _waiting = (!r.complete()).then(|| self.tally.wait());
        client::collect(r, &self.core.upstream).await
    }
}

/// The client headers each backend receives, by backend index (empty when none forwards any):
/// its `forwardHeaders`, `Mcp-Param-*`, and the principal's claim headers. Borrowed from the
/// request's read buffer, not copied.
pub(crate) fn forwarded<'b>(
    server: &Server,
    principal: &'b crate::auth::Principal,
    head: &crate::http::head::Head,
    buf: &'b [u8],
) -> Vec<Vec<(&'b [u8], &'b [u8])>> {
    // `Mcp-Param-*` (2026-07-28 custom parameter headers) belong to the request itself: an
    // intermediary MUST forward them.
    let is_param = |n: &[u8]| n.len() > 10 && n[..10].eq_ignore_ascii_case(b"mcp-param-");
    let any_param = head.headers.iter().any(|(n, _)| is_param(n.of(buf)));
    // Headers set from verified claims replace any the client sent under the same name, and
    // the proxy identity header never leaves (`Authenticator::strips`).
    if any_param || principal.has_headers() || server.backends.iter().any(|b| !b.forward_headers.is_empty()) {
        let forwarded = |b: &Backend| -> Vec<(&[u8], &[u8])> {
            head.headers
                .iter()
                .filter(|(n, _)| {
                    let n = n.of(buf);
                    // The allow-list header narrows what this gateway exposes: consumed here,
                    // never forwarded (Higress/Envoy behaviour).
                    !server.auth.strips(n)
                        && !n.eq_ignore_ascii_case(b"x-envoy-allow-mcp-tools")
                        // Set by the gateway itself (`observe::Trace`), once.
                        && !crate::proxy::observe::TRACE_HEADERS.iter().any(|t| n.eq_ignore_ascii_case(t.as_bytes()))
                        && (is_param(n)
                            || b.forward_headers.iter().any(|f| n.eq_ignore_ascii_case(f.as_bytes())))
                })
                .map(|(n, v)| (n.of(buf), v.of(buf)))
                .chain(principal.headers().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
                .collect()
        };
        server.backends.iter().map(forwarded).collect()
    } else {
        Vec::new()
    }
}

/// Backend `i`'s forwarded headers (none when no backend forwards any).
pub(crate) fn fwd_for<'a>(all: &'a [Vec<(&'a [u8], &'a [u8])>], i: usize) -> &'a [(&'a [u8], &'a [u8])] {
    all.get(i).map_or(&[], Vec::as_slice)
}

pub(crate) const META_2026: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

/// Who asked, and how the answer must be framed for them.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'p> {
    /// Whether the client connection stays open.
    pub keep_alive: bool,
    /// The request's allowed `Origin` (echoed for CORS).
    pub cors: Option<crate::http::head::Span>,
    /// The authenticated principal (its claim headers go to backends).
    pub principal: &'p crate::auth::Principal,
    /// Where the request's backend time and streamed bytes are counted.
    pub tally: &'p Tally,
}

pub(crate) fn is_sse(r: &client::Streaming) -> bool {
    r.header("content-type").is_some_and(|c| c.starts_with(b"text/event-stream"))
}

/// An answer: HTTP status, body, the session id to hand out (initialize), content type.
pub(crate) type Answer = (u16, Vec<u8>, Option<String>, &'static str);

/// Whether `body` is a JSON-RPC error message: a backend's own protocol error (e.g. -32602 with
/// `data`, sent with HTTP 400 on the 2026 wire) is relayed as it is, status included.
pub(crate) fn is_jsonrpc_error(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v.get("error").is_some_and(|e| e.is_object()))
}

/// A failure and the client's id to echo.
pub(crate) type Failure = (Error, Option<Vec<u8>>);

/// Takes every credential the gateway sent `b` out of `body`, relayed to the client: a backend
/// that echoes its request (in an error, a tool result, an event) must not hand the client the
/// gateway's credential. Costs a byte search per body when `b` has a credential, nothing else.
pub(crate) fn redact(b: &Backend, principal: Option<&crate::auth::Principal>, body: &mut Vec<u8>) {
    if let Some(Ok(Some(c))) = b.credential.as_ref().map(|c| c.for_principal(principal)) {
        c.redact_from(body);
    }
}

impl Cx<'_> {
    /// [`redact`] for this request's caller, a token service's token included.
    pub(crate) fn redact(&self, b: &Backend, body: &mut Vec<u8>) {
        match &b.credential {
            Some(crate::auth::credentials::Credential::Sts(sts)) => self.redact_token(sts, body),
            _ => redact(b, self.principal, body),
        }
    }

    /// Takes this caller's cached token of `sts` out of `body`.
    pub(crate) fn redact_token(&self, sts: &crate::upstream::sts::Sts, body: &mut Vec<u8>) {
        let who = if sts.exchange { self.bearer.unwrap_or_default() } else { &[] };
        let token = self.core.backend_tokens.borrow().peek(sts, who);
        if let Some(c) = token {
            c.redact_from(body);
        }
    }

    /// The token of `sts` for this request (the caller's exchanged token, or the scheme's own):
    /// from the worker's cache, from the fetch another request has in flight, or fetched now.
    pub(crate) async fn backend_token(
        &self,
        sts: &crate::upstream::sts::Sts,
    ) -> Result<std::rc::Rc<crate::auth::scheme::BackendCredential>, crate::upstream::sts::StsError> {
        use super::tokens::Begin;
        use crate::upstream::sts::StsError;
        let subject = if sts.exchange {
            match self.subject() {
                Some(s) => Some(s),
                None => {
                    self.core
                        .stats
                        .borrow_mut()
                        .backend_token_request(&sts.scheme, StsError::NoSubject.outcome());
                    return Err(StsError::NoSubject);
                }
            }
        } else {
            None
        };
        let (scheme, who): (&str, &[u8]) = (&sts.cache_key, subject.map_or(&[][..], |(t, _)| t));
        loop {
            let begun = self.core.backend_tokens.borrow_mut().begin(scheme, who);
            match begun {
                Begin::Hit(c) => {
                    self.core.stats.borrow_mut().backend_token_hit(&sts.scheme);
                    return Ok(c);
                }
                Begin::Wait(rx) => match rx.await {
                    Ok(answer) => return answer,
                    Err(_) => continue, // the fetching request went away: fetch anew
                },
                Begin::Fetch => break,
            }
        }
        /// Gives the fetch up if this request goes away before it ends.
        struct Abandon<'t>(&'t std::cell::RefCell<super::tokens::Tokens>, Option<(&'t str, &'t [u8])>);
        impl Drop for Abandon<'_> {
            fn drop(&mut self) {
                if let Some((scheme, who)) = self.1.take() {
                    self.0.borrow_mut().abandon(scheme, who);
                }
            }
        }
        let mut guard = Abandon(&self.core.backend_tokens, Some((scheme, who)));
        let answer = self.fetch_token(sts, subject).await;
        guard.1 = None;
        self.core.backend_tokens.borrow_mut().finish(scheme, who, &answer);
        answer.map(|(c, _)| c)
    }

    /// One token request to `sts`: the credential and until when it is served.
    async fn fetch_token(
        &self,
        sts: &crate::upstream::sts::Sts,
        subject: Option<(&[u8], Option<u64>)>,
    ) -> Result<(std::rc::Rc<crate::auth::scheme::BackendCredential>, Instant), crate::upstream::sts::StsError>
    {
        use crate::upstream::sts::StsError;
        let request = sts.request(subject.map(|(t, _)| t));
        let started = Instant::now();
        let span = self.tally.trace.client(&self.core.span_ids);
        let answer = {
            let _waiting = self.tally.wait();
            client::exchange(&self.core.upstream, &sts.target, request, self.snap.limits.upstream()).await
        };
        if let Some(open) = span {
            self.tally.trace.end(&self.core.spans, open, [b"token ", sts.scheme.as_bytes(), b""], |w| {
                w.str("portcullis.scheme", &sts.scheme);
                w.kv(crate::proxy::spans::static_kv!("http.request.method", "POST"));
                w.str("server.address", &sts.target.authority);
                match &answer {
                    Ok(r) => {
                        w.int("http.response.status_code", i64::from(r.status));
                        if r.status != 200 {
                            w.fail_code(i64::from(r.status));
                        }
                    }
                    Err(e) => w.fail(&e.to_string()),
                }
            });
        }
        let outcome = match answer {
            Err(e) => Err(StsError::Unreachable(e.to_string())),
            Ok(r) => crate::upstream::sts::parse(r.status, &r.body).map_err(|(e, description)| {
                if let Some(d) = description {
                    log::debug!("scheme {}: the token service said: {d}", sts.scheme);
                }
                e
            }),
        };
        let label = match &outcome {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        self.core.stats.borrow_mut().backend_token_request(&sts.scheme, label);
        let issued = outcome?;
        let subject_left = subject.and_then(|(_, exp)| exp).map(|exp| {
            let now_unix =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            Duration::from_secs(exp.saturating_sub(now_unix))
        });
        let fresh_until = started + super::tokens::served_for(issued.lifetime, subject_left);
        let credential = crate::auth::scheme::BackendCredential::new(
            crate::auth::scheme::SchemeKind::Bearer,
            "",
            &issued.token,
        );
        Ok((std::rc::Rc::new(credential), fresh_until))
    }

    /// The subject of a token exchange: the caller's bearer token and its `exp`.
    pub(crate) fn subject(&self) -> Option<(&[u8], Option<u64>)> {
        let exp = self.principal.and_then(|p| p.claims().get("exp")).and_then(|c| c.as_u64());
        self.bearer.map(|t| (t, exp))
    }
}

/// The bearer token of a request's `Authorization` header, as sent.
pub(crate) fn bearer<'b>(head: &crate::http::head::Head, buf: &'b [u8]) -> Option<&'b [u8]> {
    let v = head.header(buf, "authorization")?;
    (v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer "))
        .then(|| v[7..].trim_ascii())
        .filter(|t| !t.is_empty())
}
