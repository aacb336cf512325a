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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events() {
        let body = b"id: 0\ndata:\n\n: comment\nevent: message\ndata: {\"a\":\r\ndata: 1}\n\ndata: {\"b\":2}";
        let p = data_payloads(body);
        assert_eq!(p, vec![b"".to_vec(), b"{\"a\":\n1}".to_vec(), b"{\"b\":2}".to_vec()]);
    }
}
