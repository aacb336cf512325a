//! `subscriptions/listen` (2026-07-28) across backends: one client stream fanned in from a
//! subscription on every backend that can serve part of what the client asked for.
//!
//! - A 2026-07-28 backend offering list changes or resource subscriptions gets a
//!   `subscriptions/listen` of its own with the part of the client's filter it can serve (the
//!   resource URIs it serves, as its own).
//! - A 2025 backend reached over a gateway-owned session is listened to on that session's GET
//!   stream (after a `resources/subscribe` per URI it serves); what it sends is filtered the same
//!   way.
//!
//! The gateway acknowledges once every backend acknowledged (so a change made right after the
//! client saw the acknowledgement is not missed), with what they agreed to together, and then
//! relays only the notification types the client asked for, each tagged with the client's
//! subscription id (the id of its `subscriptions/listen`) and resource URIs exposed as the client
//! knows them. When every backend stream ended (or the worker drains) the stream ends with the
//! listen request's result.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::config::snapshot::{Server, Snapshot};
use crate::error::{Error, Kind};
use crate::http::response::{self, Extra};
use crate::mcp::sse;
use crate::proxy::conn::Conn;
use crate::proxy::core::Core;
use crate::proxy::exit::{error_exit, Rejection, To};
use crate::upstream::client::Streaming;

use super::exchange::*;
use super::link::{link, link_caps};
use super::stream::{fan_in, Fan};
use super::wire::{backend_error, Link, Verb, Wire};

/// At most this many resource URIs per subscription (each may cost a `resources/subscribe`).
pub const MAX_URIS: usize = 64;

/// How long the gateway waits for a backend's acknowledgement before going on without it.
const ACK_WAIT: Duration = Duration::from_secs(5);

/// What a client asked to be told (`params.notifications`), and what one backend serves of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    tools: bool,
    prompts: bool,
    resources: bool,
    /// Resource URIs: as the client exposed them (the client's filter), or the backend's own.
    uris: Vec<String>,
}

impl Filter {
    /// The client's `params.notifications`; `None` when it is not an object of the right shape
    /// (or names more than [`MAX_URIS`] resources).
    pub fn parse(v: &Value) -> Option<Filter> {
        let o = v.as_object()?;
        let flag = |k: &str| match o.get(k) {
            None => Some(false),
            Some(b) => b.as_bool(),
        };
        let uris: Vec<String> = match o.get("resourceSubscriptions") {
            None => Vec::new(),
            Some(a) => a.as_array()?.iter().map(|u| u.as_str().map(String::from)).collect::<Option<_>>()?,
        };
        if uris.len() > MAX_URIS {
            return None;
        }
        Some(Filter {
            tools: flag("toolsListChanged")?,
            prompts: flag("promptsListChanged")?,
            resources: flag("resourcesListChanged")?,
            uris,
        })
    }

    fn is_empty(&self) -> bool {
        !self.tools && !self.prompts && !self.resources && self.uris.is_empty()
    }

    fn to_json(&self) -> Value {
        let mut o = Map::new();
        for (k, on) in [("toolsListChanged", self.tools), ("promptsListChanged", self.prompts)] {
            if on {
                o.insert(k.into(), Value::Bool(true));
            }
        }
        if self.resources {
            o.insert("resourcesListChanged".into(), Value::Bool(true));
        }
        if !self.uris.is_empty() {
            o.insert("resourceSubscriptions".into(), json!(self.uris));
        }
        Value::Object(o)
    }

    /// What a backend with capabilities `caps` can serve of this filter (`uris`: its own).
    fn served(&self, caps: &Value, uris: Vec<String>) -> Filter {
        let on = |cap: &str, flag: &str| caps[cap][flag] == Value::Bool(true);
        Filter {
            tools: self.tools && on("tools", "listChanged"),
            prompts: self.prompts && on("prompts", "listChanged"),
            resources: self.resources && on("resources", "listChanged"),
            uris: if on("resources", "subscribe") { uris } else { Vec::new() },
        }
    }

    /// Whether a notification `method` (about `uri`, for resource updates) may be relayed.
    fn admits(&self, method: &str, uri: Option<&str>) -> bool {
        match method {
            "notifications/tools/list_changed" => self.tools,
            "notifications/prompts/list_changed" => self.prompts,
            "notifications/resources/list_changed" => self.resources,
            "notifications/resources/updated" => uri.is_some_and(|u| self.uris.iter().any(|x| x == u)),
            _ => false,
        }
    }
}

/// One backend's part of the subscription: its index, the filter it serves (its own URIs), its
/// stream and the events read while waiting for its acknowledgement.
struct Part {
    backend: usize,
    filter: Filter,
    stream: Streaming,
    events: sse::Events,
    early: Vec<Vec<u8>>,
}

/// `subscriptions/listen` of a 2026-07-28 client (`id` its JSON id, `filter` its
/// `params.notifications`), answered as an SSE stream.
pub(crate) async fn listen(
    (core, snap, server): (&Core, &Snapshot, &Server),
    conn: &mut Conn,
    caller: Caller<'_>,
    id: &[u8],
    filter: Filter,
) -> (u16, bool) {
    let Caller { keep_alive, cors, principal, tally } = caller;
    let (opened, failure) = {
        let Conn { buf, head, request_id, caps, .. } = &*conn;
        let cx = &Cx::for_request((core, snap), (head, buf, request_id), (principal, tally), caps);
        let fwd = forwarded(server, principal, head, buf);
        let opens = (0..server.backends.len()).map(|i| open_part(cx, server, i, &filter, fwd_for(&fwd, i)));
        let mut parts = Vec::new();
        let mut failure = None;
        for r in futures_util::future::join_all(opens).await {
            match r {
                Ok(Some(p)) => parts.push(p),
                Ok(None) => {}
                Err(e) => {
                    log::warn!("{}; left out of the subscription", e.message);
                    failure.get_or_insert(e);
                }
            }
        }
        (parts, failure)
    };
    let Conn { buf, out, scratch, request_id, .. } = &mut *conn;
    if opened.is_empty() {
        if let Some(err) = failure {
            let o = error_exit(To { out, scratch, buf, request_id, cors, keep_alive }, &Rejection::of(&err));
            return (o.status, o.close);
        }
    }
    // Acknowledged once, for every backend, with what they agreed to (URIs as the client knows
    // them); then what each backend sent meanwhile.
    let prefixed = server.prefixed();
    let mut agreed = Filter::default();
    for p in &opened {
        agreed.tools |= p.filter.tools;
        agreed.prompts |= p.filter.prompts;
        agreed.resources |= p.filter.resources;
        let name = &server.backends[p.backend].name;
        agreed.uris.extend(p.filter.uris.iter().map(|u| exposed(name, u, prefixed)));
    }
    let origin = cors.map(|o| o.of(buf)).filter(|o| !o.is_empty());
    let extra = Extra { cors_origin: origin, request_id: Some(request_id), ..Extra::default() };
    response::write_stream_head(out, 200, response::SSE, keep_alive, &extra);
    let meta = json!({"io.modelcontextprotocol/subscriptionId": serde_json::from_slice::<Value>(id).unwrap_or(Value::Null)});
    let ack = json!({"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged",
        "params":{"notifications": agreed.to_json(), "_meta": meta}});
    super::stream::write_chunk(out, &event(&ack));
    let filters: Vec<(usize, Filter)> = opened.iter().map(|p| (p.backend, p.filter.clone())).collect();
    let relay = |i: usize, ev: &[u8], chunk: &mut Vec<u8>| {
        let Some((_, f)) = filters.iter().find(|(b, _)| *b == i) else { return };
        for payload in sse::data_payloads(ev) {
            relay_payload(core, server, i, f, &meta, &payload, chunk);
        }
    };
    let mut streams = Vec::with_capacity(opened.len());
    for p in opened {
        for payload in &p.early {
            let mut chunk = Vec::new();
            relay_payload(core, server, p.backend, &p.filter, &meta, payload, &mut chunk);
            super::stream::write_chunk(&mut conn.out, &chunk);
        }
        streams.push((p.backend, p.stream, p.events));
    }
    let mut last = Vec::with_capacity(128);
    crate::mcp::reply::begin_raw(&mut last, id);
    last.extend_from_slice(b"\"resultType\":\"complete\",\"_meta\":");
    last.extend_from_slice(meta.to_string().as_bytes());
    last.extend_from_slice(b"}}");
    let last = event_bytes(&last);
    let fan = Fan { core, snap, server, principal, tally, keep_alive };
    fan_in(&fan, conn, streams, &relay, &last).await
}

fn event(v: &Value) -> Vec<u8> {
    event_bytes(v.to_string().as_bytes())
}

fn event_bytes(json: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(json.len() + 24);
    e.extend_from_slice(b"event: message\ndata: ");
    e.extend_from_slice(json);
    e.extend_from_slice(b"\n\n");
    e
}

/// A backend's resource URI as the client knows it.
fn exposed(backend: &str, uri: &str, prefixed: bool) -> String {
    if prefixed {
        format!("{backend}+{uri}")
    } else {
        uri.to_string()
    }
}

/// One message of backend `i`'s stream, relayed when the client asked for its kind: tagged with
/// the client's subscription id, a resource URI exposed. Acknowledgements, answers and anything
/// not asked for are dropped.
fn relay_payload(
    core: &Core,
    server: &Server,
    i: usize,
    f: &Filter,
    meta: &Value,
    payload: &[u8],
    chunk: &mut Vec<u8>,
) {
    let Ok(Value::Object(mut msg)) = serde_json::from_slice::<Value>(payload) else { return };
    let Some(method) = msg.get("method").and_then(Value::as_str).map(String::from) else { return };
    if msg.contains_key("id") {
        return;
    }
    let uri = msg.get("params").and_then(|p| p.get("uri")).and_then(Value::as_str).map(String::from);
    if !f.admits(&method, uri.as_deref()) {
        return;
    }
    let name = &server.backends[i].name;
    if method.ends_with("/list_changed") {
        core.schemas.borrow_mut().forget(&server.name, name);
    }
    let params = msg.entry("params").or_insert_with(|| json!({}));
    if let Some(p) = params.as_object_mut() {
        if let Some(u) = &uri {
            p.insert("uri".into(), Value::String(exposed(name, u, server.prefixed())));
        }
        let m = p.entry("_meta").or_insert_with(|| json!({}));
        if let (Some(m), Some(tag)) = (m.as_object_mut(), meta.as_object()) {
            m.extend(tag.clone());
        }
    }
    chunk.extend_from_slice(&event(&Value::Object(msg)));
}

/// Opens backend `i`'s part of the subscription and reads its acknowledgement; `None` when it
/// serves nothing of `filter`.
async fn open_part(
    cx: &Cx<'_>,
    server: &Server,
    i: usize,
    filter: &Filter,
    fwd: &[(&[u8], &[u8])],
) -> Result<Option<Part>, Error> {
    let b = &server.backends[i];
    let own: Vec<String> = filter
        .uris
        .iter()
        .filter_map(|u| {
            crate::proxy::names::route(server, u, "+")
                .filter(|(j, _)| *j == i)
                .map(|(_, own)| own.to_string())
        })
        .collect();
    let l = link(cx, server, b, fwd).await?;
    let caps = link_caps(cx, server, b).map_or(Value::Null, |c| (*c).clone());
    let served = filter.served(&caps, own);
    if served.is_empty() {
        return Ok(None);
    }
    let stream = match &l {
        Link::Stateless => {
            let body = json!({"jsonrpc":"2.0","id":cx.next_id(),"method":"subscriptions/listen",
                "params":{"notifications": served.to_json(), "_meta":{
                    "io.modelcontextprotocol/protocolVersion":"2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": serde_json::from_slice::<Value>(cx.caps).unwrap_or(json!({}))}}});
            let wire = Wire::stateless("subscriptions/listen", None);
            cx.open(b, body.to_string().as_bytes(), wire, fwd).await.map_err(|e| backend_error(b, &e))?
        }
        Link::Session { version, session } => {
            for uri in &served.uris {
                let body = json!({"jsonrpc":"2.0","id":cx.next_id(),"method":"resources/subscribe","params":{"uri":uri}});
                match cx.send(b, body.to_string().as_bytes(), Wire::session(version, session), fwd).await {
                    Ok(r) if r.status < 300 => {}
                    Ok(r) => log::warn!("backend {}: resources/subscribe answered HTTP {}", b.name, r.status),
                    Err(e) => log::warn!("backend {}: resources/subscribe failed ({e})", b.name),
                }
            }
            let wire = Wire { verb: Verb::Get, ..Wire::session(version, session) };
            cx.open(b, b"", wire, fwd).await.map_err(|e| backend_error(b, &e))?
        }
    };
    if stream.status != 200 || !is_sse(&stream) {
        let why = format!("backend {}: its subscription stream answered HTTP {}", b.name, stream.status);
        return Err(Error { kind: Kind::BadGateway, ..Error::upstream(why) });
    }
    let mut part =
        Part { backend: i, filter: served, stream, events: sse::Events::default(), early: Vec::new() };
    if matches!(l, Link::Stateless) {
        wait_for_ack(cx, &mut part).await;
    }
    Ok(Some(part))
}

/// Reads a 2026-07-28 backend's stream up to its acknowledgement (bounded by [`ACK_WAIT`]),
/// narrowing the part's filter to what it agreed to; messages read before it are kept.
async fn wait_for_ack(cx: &Cx<'_>, part: &mut Part) {
    part.stream.endless();
    part.stream.wait_at_most(ACK_WAIT);
    loop {
        let piece = {
            let _waiting = cx.tally.wait();
            part.stream.next().await
        };
        let Ok(Some(piece)) = piece else { return };
        let mut payloads = Vec::new();
        part.events.push(piece, |ev| payloads.extend(sse::data_payloads(ev)));
        let mut acked = false;
        for payload in payloads {
            let msg: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
            if !acked && msg["method"] == "notifications/subscriptions/acknowledged" {
                acked = true;
                if let Some(agreed) = Filter::parse(&msg["params"]["notifications"]) {
                    let keep: Vec<String> =
                        part.filter.uris.iter().filter(|u| agreed.uris.contains(u)).cloned().collect();
                    part.filter = Filter {
                        tools: part.filter.tools && agreed.tools,
                        prompts: part.filter.prompts && agreed.prompts,
                        resources: part.filter.resources && agreed.resources,
                        uris: keep,
                    };
                }
                continue;
            }
            // Read with it (or before it): relayed after the gateway's acknowledgement.
            part.early.push(payload);
        }
        if acked {
            return;
        }
        if part.events.pending() > cx.snap.limits.http.max_body_bytes {
            return;
        }
    }
}
