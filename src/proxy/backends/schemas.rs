//! The argument rules of backend MCP tools, learned from the `inputSchema` of the `tools/list`
//! answers this worker relays, so phase 5 judges a backend tool's arguments as the backend will
//! read them (a numeric string coerced to the declared number, a default filled in) and the
//! backend receives exactly what was judged.
//!
//! Per worker, no locks. A list refreshes the rules of the tools it names; a backend's
//! `notifications/tools/list_changed` forgets that backend's rules until it is listed again; a
//! reload (new snapshot generation) forgets everything. Bounded by [`MAX_TOOLS`]. A call to a
//! tool this worker has not seen listed is judged as sent (a value of the wrong type then fails
//! the condition that reads it, which denies under a deny rule and does not allow under an
//! allow rule).

use std::rc::Rc;

use rustc_hash::FxHashMap;

use crate::rest::args::{rules_from_schema, ArgRule};

/// Most backend tools whose rules one worker keeps.
pub const MAX_TOOLS: usize = 16_384;

/// tool -> its rules.
type Tools = FxHashMap<Box<str>, Rc<[ArgRule]>>;

/// A worker's learned rules: server -> backend -> tool (the backend's own name) -> rules.
#[derive(Default)]
pub struct Schemas {
    generation: u64,
    by_server: FxHashMap<Box<str>, FxHashMap<Box<str>, Tools>>,
    count: usize,
}

impl Schemas {
    /// Forgets everything learned under an older snapshot.
    pub fn renew(&mut self, generation: u64) {
        if generation != self.generation {
            self.generation = generation;
            self.by_server.clear();
            self.count = 0;
        }
    }

    /// Records `tool`'s rules from its `inputSchema` (none: an empty rule set).
    pub fn learn(&mut self, server: &str, backend: &str, tool: &str, schema: Option<&serde_json::Value>) {
        let rules: Rc<[ArgRule]> = schema.map(rules_from_schema).unwrap_or_default().into();
        let tools = self.by_server.entry(server.into()).or_default().entry(backend.into()).or_default();
        if let Some(slot) = tools.get_mut(tool) {
            *slot = rules;
        } else if self.count < MAX_TOOLS {
            tools.insert(tool.into(), rules);
            self.count += 1;
        }
    }

    /// `tool`'s rules, when this worker has seen it listed.
    pub fn get(&self, server: &str, backend: &str, tool: &str) -> Option<Rc<[ArgRule]>> {
        self.by_server.get(server)?.get(backend)?.get(tool).cloned()
    }

    /// Forgets `backend`'s tools (its tool list changed).
    pub fn forget(&mut self, server: &str, backend: &str) {
        if let Some(tools) = self.by_server.get_mut(server).and_then(|b| b.remove(backend)) {
            self.count -= tools.len();
        }
    }
}

/// Whether an SSE event from a backend says its tool list changed (a cheap byte search: a
/// false positive only makes the worker learn the list again).
pub fn lists_changed(event: &[u8]) -> bool {
    memchr::memmem::find(event, b"notifications/tools/list_changed").is_some()
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
        s.learn("srv", "b1", "pay", Some(&schema));
        let rules = s.get("srv", "b1", "pay").unwrap();
        let names: Vec<(&str, ArgType)> = rules.iter().map(|r| (&*r.name, r.kind)).collect();
        assert_eq!(
            names,
            [("amount", ArgType::Number), ("n", ArgType::Integer)],
            "a type union is left alone"
        );
        assert_eq!(rules[1].default.as_deref(), Some(&b"3"[..]));
        assert!(s.get("srv", "b2", "pay").is_none());
        s.learn("srv", "b1", "pay", None);
        assert!(s.get("srv", "b1", "pay").unwrap().is_empty());
        s.forget("srv", "b1");
        assert!(s.get("srv", "b1", "pay").is_none());
        assert_eq!(s.count, 0);
        s.learn("srv", "b1", "pay", None);
        s.renew(9);
        assert!(s.get("srv", "b1", "pay").is_none());
    }
}
