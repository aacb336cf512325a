//! Backend sessions of 2025-revision clients: `initialize` of one backend, the capabilities
//! merged for the client, and the DELETE fan-out when the client's session ends.

use crate::config::snapshot::{Backend, Server, Snapshot};
use crate::mcp::session::Claims;
use crate::proxy::core::Core;
use crate::proxy::local;
use crate::proxy::observe::Trace;

use super::exchange::*;
use super::wire::{answer, decode_session, Verb, Wire};

/// Initializes `b` (then sends `notifications/initialized`): (negotiated version, session id).
/// A failure names the backend; one to get the backend's token keeps its kind.
/// `capabilities` (a JSON object) is what the backend is told the client can do: the client's own
/// for its session, `{}` for the gateway's own sessions.
pub(crate) async fn init_backend(
    cx: &Cx<'_>,
    b: &Backend,
    (version, capabilities): (&str, &[u8]),
    fwd: &[(&[u8], &[u8])],
) -> Result<(String, String, serde_json::Value), crate::error::Error> {
    let failed = |why: String| crate::error::Error::upstream(format!("backend {}: {why}", b.name));
    let capabilities = String::from_utf8_lossy(capabilities);
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":"portcullis-init","method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{capabilities},"clientInfo":{{"name":"portcullis","version":"{}"}}}}}}"#,
        local::VERSION
    );
    let resp = match cx.send(b, body.as_bytes(), Wire::default(), fwd).await {
        Ok(r) if r.status == 200 => r,
        Ok(r) => return Err(failed(format!("initialize answered HTTP {}", r.status))),
        Err(e @ crate::upstream::client::UpstreamError::Token(..)) => {
            return Err(super::wire::backend_error(b, &e))
        }
        Err(e) => return Err(failed(format!("initialize failed ({e})"))),
    };
    let result = answer(&resp, Some("portcullis-init"))
        .and_then(|v| v.get("result").cloned())
        .ok_or_else(|| failed("no initialize result".to_string()))?;
    let v = result.get("protocolVersion").and_then(|v| v.as_str()).unwrap_or(version).to_string();
    let sid =
        resp.header("mcp-session-id").map(|s| String::from_utf8_lossy(s).into_owned()).unwrap_or_default();
    let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    if let Err(e) = cx.send(b, note, Wire::session(&v, &sid), fwd).await {
        log::warn!("backend {}: notifications/initialized failed ({e})", b.name);
    }
    let caps = result.get("capabilities").cloned().unwrap_or(serde_json::Value::Null);
    Ok((v, sid, caps))
}

/// Adds a backend's capabilities to the merged set: a capability any backend has is offered
/// (the gateway routes it), with sub-flags OR-ed (e.g. `listChanged`). `tasks` (2025-11-25) is
/// for sessions only: `server/discover` offers the tasks extension instead.
pub(crate) fn merge_capabilities(into: &mut serde_json::Value, from: &serde_json::Value) {
    let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) else { return };
    for (k, v) in from {
        // Capabilities the gateway does not relay yet are not offered to the client.
        if !matches!(k.as_str(), "tools" | "prompts" | "resources" | "completions" | "logging" | "tasks") {
            continue;
        }
        let slot = into.entry(k.clone()).or_insert_with(|| serde_json::json!({}));
        if let (Some(slot), Some(flags)) = (slot.as_object_mut(), v.as_object()) {
            for (f, fv) in flags {
                if fv == &serde_json::Value::Bool(true) || !slot.contains_key(f) {
                    slot.insert(f.clone(), fv.clone());
                }
            }
        }
    }
}

/// Extensions the gateway relays on the 2026-07-28 wire (`server/discover`), when a backend
/// offers them: tasks (`proxy::tasks` routes their ids).
pub(crate) fn merge_extensions(into: &mut serde_json::Value, from: &serde_json::Value) {
    const RELAYED: [&str; 1] = ["io.modelcontextprotocol/tasks"];
    let Some(offered) = from.get("extensions").and_then(|e| e.as_object()) else { return };
    let Some(into) = into.as_object_mut() else { return };
    for name in RELAYED {
        if let Some(settings) = offered.get(name) {
            let slot = into.entry("extensions").or_insert_with(|| serde_json::json!({}));
            if let Some(slot) = slot.as_object_mut() {
                slot.entry(name).or_insert_with(|| settings.clone());
            }
        }
    }
}

/// DELETE fan-out: ends every backend session recorded in the client's (terminated) session.
/// Best effort: a backend that is down or answers 404/405 is logged, the client's DELETE
/// already succeeded.
pub async fn end_sessions(
    core: &Core,
    snap: &Snapshot,
    server: &Server,
    claims: &Claims,
    (principal, bearer): (&crate::auth::Principal, Option<&[u8]>),
    trace: Trace<'_>,
    tally: &Tally,
) {
    let cx = &Cx {
        core,
        owner: &claims.principal,
        principal: Some(principal),
        bearer,
        snap,
        tally,
        trace,
        caps: b"{}",
    };
    for (name, s) in &claims.backends {
        let (version, sid) = decode_session(s);
        let Some(b) = server.backends.iter().find(|b| &*b.name == name.as_str()) else { continue };
        // A 2026-07-28-only backend has no session to end.
        if sid.is_empty() || version == super::wire::MODERN {
            continue;
        }
        let wire = Wire { verb: Verb::Delete, ..Wire::session(version, sid) };
        match cx.send(b, b"", wire, &[]).await {
            Ok(r) if r.status < 300 || r.status == 404 || r.status == 405 => {}
            Ok(r) => log::warn!("backend {}: DELETE of its session answered HTTP {}", b.name, r.status),
            Err(e) => log::warn!("backend {}: DELETE of its session failed ({e})", b.name),
        }
    }
}
