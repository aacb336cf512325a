//! Recording pins (`portcullis pins record`, admin `POST /pins/record`): every pinned
//! backend's tools read over the link a worker would use (same credential, same protocol
//! negotiation), their definitions digested (`mcp::pins::digest`) and written to the server's
//! pins file. Backends that cannot be listed keep the pins they had.

use crate::config::snapshot::{Pinning, Snapshot};
use crate::mcp::pins::{self, PinsFile};
use crate::proxy::core::Core;
use crate::proxy::observe::Trace;

use super::exchange::{Cx, Tally};
use super::list::{list_over_link, ListKind};

/// Most `tools/list` pages read per backend.
const MAX_PAGES: usize = 100;

/// What recording did: per (server, backend), the number of tools pinned, or why it could not
/// be listed.
pub type Recorded = Vec<(String, String, Result<usize, String>)>;

/// Records the pins of every pinned backend of `snap` (one worker's `core`, any thread with a
/// monoio runtime) into each server's pins file. `Err` when a file could not be written.
pub async fn record(core: &Core, snap: &Snapshot) -> Result<Recorded, String> {
    let tally = Tally::default();
    let cx = Cx {
        core,
        owner: "portcullis-pins",
        principal: None,
        bearer: None,
        snap,
        tally: &tally,
        trace: Trace::none(),
        caps: b"{}",
    };
    let mut report = Recorded::new();
    for server in &snap.servers {
        let Some(file) = &server.pins_file else { continue };
        let pinned: Vec<_> = server.backends.iter().filter(|b| b.pinning != Pinning::Off).collect();
        if pinned.is_empty() {
            continue;
        }
        let mut all: PinsFile = if file.exists() { pins::load(file)? } else { PinsFile::new() };
        let entry = all.entry(server.name.to_string()).or_default();
        for b in pinned {
            let mut tools = std::collections::BTreeMap::new();
            let mut cursor: Option<String> = None;
            let mut failed = None;
            for _ in 0..MAX_PAGES {
                let cursor_json =
                    cursor.as_ref().map(|c| format!(r#""cursor":{},"#, serde_json::Value::String(c.clone())));
                let page = list_over_link(
                    &cx,
                    server,
                    b,
                    ListKind::Tools,
                    cursor_json.as_deref().unwrap_or(""),
                    &[],
                )
                .await;
                let Some(result) = page else {
                    failed = Some("its tool list could not be read (see the log)".to_string());
                    break;
                };
                for item in result.get("tools").and_then(|t| t.as_array()).into_iter().flatten() {
                    let Some(name) = item.get("name").and_then(|n| n.as_str()) else { continue };
                    if b.selector.selects(name) {
                        tools.insert(name.to_string(), pins::digest(item));
                    }
                }
                cursor = result.get("nextCursor").and_then(|c| c.as_str()).map(str::to_string);
                if cursor.is_none() {
                    break;
                }
            }
            let outcome = match failed {
                Some(why) => Err(why),
                None => {
                    let n = tools.len();
                    entry.insert(b.name.to_string(), tools);
                    Ok(n)
                }
            };
            report.push((server.name.to_string(), b.name.to_string(), outcome));
        }
        pins::store(file, &all)?;
    }
    Ok(report)
}
