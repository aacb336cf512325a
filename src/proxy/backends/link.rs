//! How a request reaches a backend for a client without a session of its own (2026-07-28):
//! directly for a backend that speaks that revision, else over a gateway-owned session of the
//! caller ([`super::owned`]).

use crate::config::snapshot::{Backend, Server};
use crate::error::Error;
use crate::mcp::version::Generation;

use super::owned as links;
use super::wire::{answer, backend_error, Link, Verb, Wire};
use super::{exchange::*, init::*};

/// How this worker reaches `b` for the request's principal (see `proxy::links`): a 2026-07-28
/// backend (learned by `server/discover`) directly; any other through a gateway-owned session of
/// this principal and these identity headers, opened on first use.
pub(crate) async fn link(
    cx: &Cx<'_>,
    server: &Server,
    b: &Backend,
    fwd: &[(&[u8], &[u8])],
) -> Result<Link, Error> {
    // A caller with no credential for this backend is refused here, before a session of theirs
    // (or the backend's kind) is asked for.
    if let Some(Err(e)) = b.credential.as_ref().map(|c| c.for_principal(cx.principal)) {
        return Err(Error::client(crate::error::Kind::Denied, format!("backend {}: {e}", b.name)));
    }
    let owner = owner(cx, server, b, fwd);
    let now = std::time::Instant::now();
    let (known, idle) = {
        let mut l = cx.core.links.borrow_mut();
        l.renew(cx.snap.generation);
        let known = l.kind(at(server, b));
        match known {
            Some(Generation::Stateless) => return Ok(Link::Stateless),
            Some(Generation::Sessions) => match l.session(owner, now) {
                Ok(Some((version, session))) => return Ok(Link::Session { version, session }),
                Ok(None) => (known, None),
                Err(idle) => (known, Some(idle)),
            },
            None => (None, None),
        }
    };
    close_owned(cx, server, idle.into_iter().collect()).await;
    if known.is_none() {
        if let Some(caps) = discover(cx, b, fwd).await? {
            cx.core.links.borrow_mut().set_kind(at(server, b), Generation::Stateless, caps);
            return Ok(Link::Stateless);
        }
    }
    let (version, session, caps) =
        init_backend(cx, b, (crate::mcp::version::LATEST_HANDSHAKE.as_str(), cx.caps), fwd).await?;
    let (version, session): (std::rc::Rc<str>, std::rc::Rc<str>) = (version.into(), session.into());
    let closing = {
        let mut l = cx.core.links.borrow_mut();
        if known.is_none() {
            l.set_kind(at(server, b), Generation::Sessions, caps);
        }
        l.insert(owner, version.clone(), session.clone(), now)
    };
    close_owned(cx, server, closing).await;
    Ok(Link::Session { version, session })
}

/// Whether `b` speaks the 2026-07-28 revision, asked with `server/discover`: its capabilities,
/// or `None` (it answered otherwise).
pub(crate) async fn discover(
    cx: &Cx<'_>,
    b: &Backend,
    fwd: &[(&[u8], &[u8])],
) -> Result<Option<serde_json::Value>, Error> {
    let discover = format!(
        r#"{{"jsonrpc":"2.0","id":"portcullis-discover","method":"server/discover","params":{{{META_2026}}}}}"#
    );
    let discovered = match cx
        .send(b, discover.as_bytes(), Wire::stateless("server/discover", None), fwd)
        .await
    {
        Ok(r) if r.status == 200 => answer(&r, Some("portcullis-discover")).filter(|v| {
            v["result"]["supportedVersions"].as_array().is_some_and(|a| a.iter().any(|x| x == "2026-07-28"))
        }),
        Ok(_) => None,
        Err(e) => return Err(backend_error(b, &e)),
    };
    Ok(discovered.map(|mut v| v["result"]["capabilities"].take()))
}

/// Whose gateway-owned session of `b` a request uses: its principal, identity headers and
/// declared capabilities.
fn owner<'a>(
    cx: &Cx<'a>,
    server: &'a Server,
    b: &'a Backend,
    fwd: &'a [(&'a [u8], &'a [u8])],
) -> links::Owner<'a> {
    links::Owner {
        server: &server.name,
        backend: &b.name,
        principal: cx.owner,
        identity: fwd,
        capabilities: cx.caps,
    }
}

/// Ends gateway-owned sessions the worker let go of (best effort, like a client's DELETE), all
/// at once: a request that made room waits for the slowest, not the sum.
pub(crate) async fn close_owned(cx: &Cx<'_>, server: &Server, closing: Vec<links::Closing>) {
    let deletes = closing.iter().filter_map(|(_, backend, version, sid)| {
        let b = server.backends.iter().find(|b| *b.name == **backend)?;
        (!sid.is_empty()).then_some(async move {
            let wire = Wire { verb: Verb::Delete, ..Wire::session(version, sid) };
            if let Err(e) = cx.send(b, b"", wire, &[]).await {
                log::debug!("backend {}: closing an idle gateway-owned session failed ({e})", b.name);
            }
        })
    });
    futures_util::future::join_all(deletes).await;
}

/// The capabilities `b` declared when this worker linked to it.
pub(crate) fn link_caps(cx: &Cx<'_>, server: &Server, b: &Backend) -> Option<std::rc::Rc<serde_json::Value>> {
    cx.core.links.borrow().caps(at(server, b))
}

/// Where `b` (one of `server.backends`) is, for the worker's links.
fn at(server: &Server, b: &Backend) -> links::At {
    (server.index, b.index)
}

/// The backend forgot the principal's gateway-owned session (404): the next call opens another.
pub(crate) fn forget(cx: &Cx<'_>, server: &Server, b: &Backend, fwd: &[(&[u8], &[u8])], link: &Link) {
    if let Link::Session { session, .. } = link {
        cx.core.links.borrow_mut().forget(owner(cx, server, b, fwd), session);
    }
}
