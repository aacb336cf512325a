//! `listen` entries: addresses resolved, TLS listeners with their certificates by SNI.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use yaml_serde::Value;

use crate::config::raw;
use crate::config::snapshot::Server;

use super::common::*;

pub(crate) fn resolve_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.to_socket_addrs()
        .map_err(|e| format!("{s:?} is not a host:port address ({e})"))?
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// A TLS listener's `(cert, key)` files, with the entry's path for errors.
pub(crate) type TlsPairs = (String, Vec<(String, String)>);

/// The listen addresses and, for each, its TLS certificate files (`None`: plain).
pub(crate) fn compile_listen(
    v: Option<&Value>,
    errs: &mut Errors,
) -> (Vec<SocketAddr>, Vec<Option<TlsPairs>>) {
    let Some(v) = v else {
        return (vec![SocketAddr::from(([127, 0, 0, 1], 8080))], vec![None]);
    };
    // Parsed entry by entry (not as an untagged enum) so errors name the entry and the field.
    let entries: Vec<(String, &Value)> = match v {
        Value::Sequence(items) => {
            items.iter().enumerate().map(|(i, e)| (format!("listen[{i}]"), e)).collect()
        }
        single => vec![("listen".to_string(), single)],
    };
    let mut out = Vec::new();
    let mut tls = Vec::new();
    for (path, entry) in entries {
        let (addr, pairs) = match entry {
            Value::String(a) => (a.clone(), None),
            Value::Mapping(_) => {
                let Some(f) = parse_value::<raw::ListenFull>(entry, &path, errs) else { continue };
                let pairs = f.tls.map(|t| {
                    let list = t.into_vec().into_iter().map(|t| (t.cert, t.key)).collect::<Vec<_>>();
                    (format!("{path}.tls"), list)
                });
                (f.address, pairs)
            }
            _ => {
                errs.push(&path, "must be \"host:port\" or {address, tls}");
                continue;
            }
        };
        match resolve_addr(&addr) {
            Ok(a) => {
                out.push(a);
                tls.push(pairs);
            }
            Err(e) => errs.push(&path, e),
        }
    }
    if out.is_empty() && errs.0.is_empty() {
        errs.push("listen", "at least one address is required");
    }
    (out, tls)
}

/// Builds the TLS listeners once the servers are known: the client certificates they ask for
/// are those of the `mtls` servers' CAs (none: no client certificate is requested).
pub(crate) fn compile_tls_listeners(
    pairs: &[Option<TlsPairs>],
    servers: &[Server],
    errs: &mut Errors,
) -> Vec<Option<Arc<crate::tls::Listener>>> {
    let mtls: Vec<(usize, &str)> = servers
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match &s.auth.mode {
            crate::auth::Mode::Mtls(m) => Some((i, &*m.ca_file)),
            _ => None,
        })
        .collect();
    if !mtls.is_empty() && pairs.iter().all(Option::is_none) {
        for (i, _) in &mtls {
            errs.push(
                format!("servers[{i}].authentication.mode"),
                "mode mtls needs a listen entry with tls (client certificates come with the TLS handshake)",
            );
        }
    }
    let client_roots = || {
        let mut roots = rustls::RootCertStore::empty();
        for (_, ca) in &mtls {
            // Read before, by the server's own block: errors were reported there.
            for c in crate::tls::read_certs(ca).unwrap_or_default() {
                let _ = roots.add(c);
            }
        }
        Some(roots).filter(|r| !r.is_empty())
    };
    pairs
        .iter()
        .map(|p| {
            let (path, list) = p.as_ref()?;
            match crate::tls::listener(list, client_roots()) {
                Ok(l) => Some(Arc::new(l)),
                Err(e) => {
                    errs.push(path, e);
                    None
                }
            }
        })
        .collect()
}
