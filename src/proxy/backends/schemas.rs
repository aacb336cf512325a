//! The argument rules of backend MCP tools, learned from the `inputSchema` of the `tools/list`
//! answers this worker relays, so phase 5 judges a backend tool's arguments as the backend will
//! read them (a numeric string coerced to the declared number, a default filled in) and the
//! backend receives exactly what was judged.
//!
//! Per worker, no locks. A list refreshes the rules of the tools it names; a backend's
//! `notifications/tools/list_changed` forgets that backend's rules until it is listed again; a
//! reload (new snapshot generation) forgets everything. Bounded by [`MAX_TOOLS`] per backend.
//! Before phase 5 decides a call to a tool whose rules are unknown here, the driver reads the
//! backend's list once (`backends::learn`); a tool the backend does not list is judged as sent.

use std::rc::Rc;

use rustc_hash::FxHashMap;

use crate::rest::args::{rules_from_schema, ArgRule};

/// Most tools of one backend whose rules one worker keeps.
pub const MAX_TOOLS: usize = 4_096;

/// tool -> its rules, and whether its definition matches its pin (always, unpinned backends).
type Tools = FxHashMap<Box<str>, (Rc<[ArgRule]>, bool)>;

/// What a worker knows of one backend tool's argument rules.
pub enum Learned {
    /// The tool was listed: its rules, and whether its definition is approved (see
    /// [`approved`]).
    Tool(Rc<[ArgRule]>, bool),
    /// The backend's list was read since it last changed (or could not be) and does not name
    /// the tool: asking again would only repeat the answer.
    NotListed,
    /// The backend's list was not read.
    Unknown,
}

/// A worker's learned rules: server -> backend -> tool (the backend's own name) -> rules.
#[derive(Default)]
pub struct Schemas {
    generation: u64,
    by_server: FxHashMap<Box<str>, FxHashMap<Box<str>, Tools>>,
}

impl Schemas {
    /// Forgets everything learned under an older snapshot.
    pub fn renew(&mut self, generation: u64) {
        if generation > self.generation {
            self.generation = generation;
            self.by_server.clear();
        }
    }

    /// Records `tool`'s rules from its `inputSchema` (none: an empty rule set), and whether its
    /// definition is `approved` (it matches its pin, or the backend is not pinned).
    pub fn learn(
        &mut self,
        server: &str,
        backend: &str,
        tool: &str,
        schema: Option<&serde_json::Value>,
        approved: bool,
    ) {
        let rules: Rc<[ArgRule]> = schema.map(rules_from_schema).unwrap_or_default().into();
        let tools = self.by_server.entry(server.into()).or_default().entry(backend.into()).or_default();
        if let Some(slot) = tools.get_mut(tool) {
            *slot = (rules, approved);
        } else if tools.len() < MAX_TOOLS {
            tools.insert(tool.into(), (rules, approved));
        }
    }

    /// `tool`'s rules, when this worker has seen it listed.
    pub fn get(&self, server: &str, backend: &str, tool: &str) -> Option<Rc<[ArgRule]>> {
        match self.lookup(server, backend, tool) {
            Learned::Tool(r, _) => Some(r),
            _ => None,
        }
    }

    /// What this worker knows of `tool`'s rules, in one walk of the maps.
    pub fn lookup(&self, server: &str, backend: &str, tool: &str) -> Learned {
        match self.by_server.get(server).and_then(|b| b.get(backend)) {
            None => Learned::Unknown,
            Some(tools) => {
                tools.get(tool).map_or(Learned::NotListed, |(r, ok)| Learned::Tool(r.clone(), *ok))
            }
        }
    }

    /// Records that `backend`'s list was read (whatever it held, or if it could not be read:
    /// a backend that does not list is not asked again on every call).
    pub fn mark_listed(&mut self, server: &str, backend: &str) {
        self.by_server.entry(server.into()).or_default().entry(backend.into()).or_default();
    }

    /// Forgets `backend`'s tools (its tool list changed).
    pub fn forget(&mut self, server: &str, backend: &str) {
        if let Some(backends) = self.by_server.get_mut(server) {
            backends.remove(backend);
        }
    }
}

/// Whether a `tools/list` entry of `backend` is the definition that was approved: it matches
/// its pin (`backends[].pinning` warn or enforce), or the backend is not pinned.
pub fn approved(backend: &crate::config::snapshot::Backend, name: &str, item: &serde_json::Value) -> bool {
    use crate::config::snapshot::Pinning;
    backend.pinning == Pinning::Off
        || backend.pins.get(name).is_some_and(|pin| **pin == *crate::mcp::pins::digest(item))
}

/// Whether an SSE event from a backend is the notification that its tool list changed: a byte
/// search first (most events are not), then the event's `data` read as a JSON-RPC message whose
/// `method` says so (a tool result that merely contains the words does not count).
pub fn lists_changed(event: &[u8]) -> bool {
    const METHOD: &str = "notifications/tools/list_changed";
    if memchr::memmem::find(event, METHOD.as_bytes()).is_none() {
        return false;
    }
    crate::mcp::sse::data_payloads(event).iter().any(|data| {
        serde_json::from_slice::<serde_json::Value>(data)
            .is_ok_and(|m| m.get("method").and_then(|v| v.as_str()) == Some(METHOD) && m.get("id").is_none())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::rest::args::ArgType;

    #[test]
    fn learned_refreshed_forgotten() {
        let mut s = Schemas::default();
        let schema = serde_json::json!({"type": "object", "properties": {
            "amount": {"type": "number"}, "note": {"type": ["string", "null"]}, "n": {"type": "integer", "default": 3}
        }});
        s.learn("srv", "b1", "pay", Some(&schema), true);
        let rules = s.get("srv", "b1", "pay").unwrap();
        let names: Vec<(&str, ArgType)> = rules.iter().map(|r| (&*r.name, r.kind)).collect();
        assert_eq!(
            names,
            [("amount", ArgType::Number), ("n", ArgType::Integer)],
            "a type union is left alone"
        );
        assert_eq!(rules[1].default.as_deref(), Some(&b"3"[..]));
        assert!(s.get("srv", "b2", "pay").is_none());
        s.learn("srv", "b1", "pay", None, true);
        assert!(s.get("srv", "b1", "pay").unwrap().is_empty());
        s.forget("srv", "b1");
        assert!(s.get("srv", "b1", "pay").is_none());
        s.learn("srv", "b1", "pay", None, true);
        s.renew(9);
        assert!(s.get("srv", "b1", "pay").is_none());
        s.learn("srv", "b1", "pay", None, true);
        s.renew(8);
        assert!(s.get("srv", "b1", "pay").is_some(), "a request on an older snapshot forgets nothing");
    }

    #[test]
    fn only_the_notification_says_the_list_changed() {
        assert!(lists_changed(b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n"));
        let result = br#"data: {"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"notifications/tools/list_changed"}]}}"#;
        assert!(!lists_changed(result), "a tool result with the words");
        assert!(!lists_changed(b"data: {\"method\":\"notifications/progress\"}\n\n"));
    }
}
