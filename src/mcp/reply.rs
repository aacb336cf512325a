//! JSON-RPC result envelopes written into reused buffers: `{"jsonrpc":"2.0","id":..,"result":{`
//! before the result's members and `}}` after them.

use crate::mcp::envelope::Id;

/// Opens a result for the request `id` (`null` when there is none).
pub fn begin_result(body: &mut Vec<u8>, id: Option<&Id<'_>>) {
    body.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    match id {
        Some(id) => crate::mcp::envelope::write_id(body, id),
        None => body.extend_from_slice(b"null"),
    }
    body.extend_from_slice(b",\"result\":{");
}

/// [`begin_result`] for an id kept as the JSON text it was sent as.
pub fn begin_raw(body: &mut Vec<u8>, id: &[u8]) {
    begin_result(body, Some(&Id::Raw(id)));
}

/// Closes what [`begin_result`] opened.
pub fn end_result(body: &mut Vec<u8>) {
    body.extend_from_slice(b"}}");
}
