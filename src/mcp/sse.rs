//! Server-Sent Events as MCP uses them (Streamable HTTP): each event's `data:` lines, joined by
//! newlines, carry one JSON-RPC message. Used to read a backend's answer when it chose an SSE
//! response. Pure and bounded by its input.

/// The data payload of every event in `body`, in order. Comments (`:`), `event:`, `id:` and
/// `retry:` lines are skipped; events without data (priming events) yield nothing.
pub fn data_payloads(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut data: Option<Vec<u8>> = None;
    for raw in body.split(|&b| b == b'\n') {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            if let Some(d) = data.take() {
                out.push(d);
            }
            continue;
        }
        if let Some(v) = line.strip_prefix(b"data:") {
            let v = v.strip_prefix(b" ").unwrap_or(v);
            match &mut data {
                Some(d) => {
                    d.push(b'\n');
                    d.extend_from_slice(v);
                }
                None => data = Some(v.to_vec()),
            }
        }
    }
    if let Some(d) = data {
        out.push(d);
    }
    out
}

/// Where the gateway puts a backend's name in the id of a request that backend sends to the
/// client over an SSE stream, so the client's answer (which echoes the id) can be routed back:
/// `"<backend>\u{1f}<original id as JSON>"`. Unit separator: never part of a backend name.
pub const ID_TAG: char = '\u{1f}';

/// Splits a relayed SSE byte stream into whole events (each ending in a blank line), whatever
/// the boundaries of the pieces it arrives in.
#[derive(Default)]
pub struct Events {
    pending: Vec<u8>,
    /// Bytes of `pending` already searched for an event end: each push scans only new bytes
    /// (plus a 3-byte overlap), so a long unterminated event costs linear, not quadratic, time.
    scanned: usize,
}

impl Events {
    /// Adds `piece`; calls `each` with every event it completes (terminator included).
    pub fn push(&mut self, piece: &[u8], mut each: impl FnMut(&[u8])) {
        self.pending.extend_from_slice(piece);
        let mut start = 0;
        loop {
            let from = self.scanned.saturating_sub(3).max(start);
            let rest = &self.pending[from..];
            let end = [&b"\n\n"[..], b"\r\n\r\n"]
                .iter()
                .filter_map(|t| rest.windows(t.len()).position(|w| w == *t).map(|p| from + p + t.len()))
                .min();
            match end {
                Some(e) => {
                    each(&self.pending[start..e]);
                    start = e;
                    self.scanned = e;
                }
                None => break,
            }
        }
        self.pending.drain(..start);
        self.scanned = self.pending.len();
    }

    /// Bytes held for an unfinished event (a relay bounds it).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Bytes of an unfinished event (relayed as they are when the stream ends).
    pub fn rest(&mut self) -> Vec<u8> {
        self.scanned = 0;
        std::mem::take(&mut self.pending)
    }
}

/// If `event` carries a JSON-RPC *request* (it has `method` and `id`) sent by backend
/// `backend`, the event re-encoded with the id tagged (see [`ID_TAG`]); `None` for anything
/// else, which is relayed untouched.
pub fn tag_request(event: &[u8], backend: &str) -> Option<Vec<u8>> {
    let payloads = data_payloads(event);
    let [payload] = payloads.as_slice() else { return None };
    let mut msg: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let obj = msg.as_object_mut()?;
    if !obj.contains_key("method") {
        return None;
    }
    let id = obj.get("id")?.clone();
    obj.insert("id".into(), serde_json::Value::String(format!("{backend}{ID_TAG}{id}")));
    let mut out = b"event: message\ndata: ".to_vec();
    serde_json::to_writer(&mut out, &msg).ok()?;
    out.extend_from_slice(b"\n\n");
    Some(out)
}

/// Separates the backend's name from its own event id in the `id:` of a relayed event, so the
/// `Last-Event-ID` a client resumes with names the backend stream it continues. Backend names
/// never contain it.
pub const EVENT_ID_SEP: char = '/';

/// If `event` is a `notifications/resources/updated` from backend `backend`, the event with its
/// `params.uri` exposed as the client knows it, `<backend>+<uri>` (the gateway's resource
/// prefix when a server has several sources); `None` for anything else.
pub fn expose_updated_uri(event: &[u8], backend: &str) -> Option<Vec<u8>> {
    const METHOD: &[u8] = b"notifications/resources/updated";
    if !event.windows(METHOD.len()).any(|w| w == METHOD) {
        return None;
    }
    let payloads = data_payloads(event);
    let [payload] = payloads.as_slice() else { return None };
    let mut msg: serde_json::Value = serde_json::from_slice(payload).ok()?;
    if msg.get("method")?.as_str()? != "notifications/resources/updated" {
        return None;
    }
    let uri = msg.get_mut("params")?.get_mut("uri")?;
    let exposed = format!("{backend}+{}", uri.as_str()?);
    *uri = serde_json::Value::String(exposed);
    let mut out = b"event: message\ndata: ".to_vec();
    serde_json::to_writer(&mut out, &msg).ok()?;
    out.extend_from_slice(b"\n\n");
    Some(out)
}

/// Appends `event` (one whole event from [`Events`]) to `out` as the gateway relays it from
/// backend `backend`: a request's id tagged ([`tag_request`]), with `prefixed` (the server
/// exposes `<backend>+<uri>`) a resource update's URI exposed ([`expose_updated_uri`]), and the
/// event id, if any, written as `<backend>/<id>` ([`EVENT_ID_SEP`]).
pub fn relay_event(event: &[u8], backend: &str, prefixed: bool, out: &mut Vec<u8>) {
    let is_id = |l: &&[u8]| l.starts_with(b"id:");
    // The line's own end (`\r` of a CRLF stream) is kept; the newline is the caller's.
    let write_id = |out: &mut Vec<u8>, line: &[u8]| {
        let v = &line[3..];
        let v = v.strip_prefix(b" ").unwrap_or(v);
        let (v, cr) = match v.strip_suffix(b"\r") {
            Some(v) => (v, true),
            None => (v, false),
        };
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(backend.as_bytes());
        out.push(EVENT_ID_SEP as u8);
        out.extend_from_slice(v);
        if cr {
            out.push(b'\r');
        }
    };
    let lines = event.split(|&b| b == b'\n');
    let rewritten = tag_request(event, backend)
        .or_else(|| prefixed.then(|| expose_updated_uri(event, backend)).flatten());
    match (rewritten, lines.clone().find(is_id)) {
        (Some(tagged), id) => {
            if let Some(line) = id {
                write_id(out, line);
                out.push(b'\n');
            }
            out.extend_from_slice(&tagged);
        }
        (None, None) => out.extend_from_slice(event),
        (None, Some(_)) => {
            for (k, line) in lines.enumerate() {
                if k > 0 {
                    out.push(b'\n');
                }
                if is_id(&line) {
                    write_id(out, line);
                } else {
                    out.extend_from_slice(line);
                }
            }
        }
    }
}

/// Splits a client's `Last-Event-ID` written by [`relay_event`]: (backend, its own event id).
pub fn split_event_id(id: &str) -> Option<(&str, &str)> {
    id.split_once(EVENT_ID_SEP).filter(|(b, e)| !b.is_empty() && !e.is_empty())
}

/// Reverses [`tag_request`] for the id a client answers with: (backend, original id as JSON).
pub fn untag(id: &str) -> Option<(&str, &str)> {
    id.split_once(ID_TAG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_across_piece_boundaries() {
        let mut e = Events::default();
        let mut seen = Vec::new();
        for piece in [&b"data: a\n"[..], b"\ndata: b\r\n", b"\r\ndata: c", b"\n\n"] {
            e.push(piece, |ev| seen.push(ev.to_vec()));
        }
        assert_eq!(seen, vec![b"data: a\n\n".to_vec(), b"data: b\r\n\r\n".to_vec(), b"data: c\n\n".to_vec()]);
    }

    #[test]
    fn requests_are_tagged_and_untagged() {
        let ev =
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"sampling/createMessage\"}\n\n";
        let tagged = tag_request(ev, "b1").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&data_payloads(&tagged)[0]).unwrap();
        let id = v["id"].as_str().unwrap();
        assert_eq!(untag(id), Some(("b1", "5")));
        let note = b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n";
        assert!(tag_request(note, "b1").is_none(), "notifications pass untouched");
        let resp = b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";
        assert!(tag_request(resp, "b1").is_none(), "the answer passes untouched");
    }

    #[test]
    fn relayed_events_name_their_backend_in_the_event_id() {
        let mut out = Vec::new();
        relay_event(b"id: 42\nevent: message\ndata: {}\n\n", "b1", true, &mut out);
        assert_eq!(out, b"id: b1/42\nevent: message\ndata: {}\n\n");
        out.clear();
        relay_event(b"data: {}\r\nid:7\r\n\r\n", "b1", true, &mut out);
        assert_eq!(out, b"data: {}\r\nid: b1/7\r\n\r\n");
        out.clear();
        relay_event(b"data: {}\n\n", "b1", true, &mut out);
        assert_eq!(out, b"data: {}\n\n", "no id: untouched");
        out.clear();
        let req = b"id: 9\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"roots/list\"}\n\n";
        relay_event(req, "b2", true, &mut out);
        assert!(out.starts_with(b"id: b2/9\nevent: message\ndata: "), "{}", String::from_utf8_lossy(&out));
        let v: serde_json::Value = serde_json::from_slice(&data_payloads(&out)[0]).unwrap();
        assert_eq!(untag(v["id"].as_str().unwrap()), Some(("b2", "1")));
        let updated = b"id: 3\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/updated\",\"params\":{\"uri\":\"file:///a\"}}\n\n";
        out.clear();
        relay_event(updated, "b2", true, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&data_payloads(&out)[0]).unwrap();
        assert_eq!(v["params"]["uri"], "b2+file:///a");
        assert!(out.starts_with(b"id: b2/3\n"));
        out.clear();
        relay_event(updated, "b2", false, &mut out);
        assert_eq!(out, b"id: b2/3\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/updated\",\"params\":{\"uri\":\"file:///a\"}}\n\n", "one source: URIs are not prefixed");
        assert_eq!(split_event_id("b2/9"), Some(("b2", "9")));
        assert_eq!(split_event_id("b2/a/b"), Some(("b2", "a/b")));
        assert_eq!(split_event_id("/9"), None);
        assert_eq!(split_event_id("9"), None);
    }

    #[test]
    fn events() {
        let body = b"id: 0\ndata:\n\n: comment\nevent: message\ndata: {\"a\":\r\ndata: 1}\n\ndata: {\"b\":2}";
        let p = data_payloads(body);
        assert_eq!(p, vec![b"".to_vec(), b"{\"a\":\n1}".to_vec(), b"{\"b\":2}".to_vec()]);
    }
}
