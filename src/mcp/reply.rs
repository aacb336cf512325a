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

/// A 2025-revision response `payload` as the 2026-07-28 revision requires it, into `out`: its
/// members in order, the `result` object (when there is one) completed with `"resultType":
/// "complete"` and, for `resources/read`, the cache members `ttlMs: 0` and `cacheScope:
/// "private"`, each only where the backend did not write it; its `id` replaced by `id` (JSON)
/// when given. One tape parse and one write, no tree. `false` (and `out` unchanged) when
/// `payload` is not a JSON-RPC response object.
pub fn complete_legacy_response(
    decoder: &mut crate::mcp::json::Decoder,
    payload: &[u8],
    (method, id): (&str, Option<&[u8]>),
    out: &mut Vec<u8>,
) -> bool {
    use crate::mcp::json::{entries, get, write_str, write_value};
    use simd_json::Node;
    let start = out.len();
    let written = decoder.with_tape(payload, |tape| {
        if !matches!(tape.first(), Some(Node::Object { .. }))
            || (get(tape, "result").is_none() && get(tape, "error").is_none())
        {
            return false;
        }
        out.push(b'{');
        for (n, (key, value)) in entries(tape).enumerate() {
            if n > 0 {
                out.push(b',');
            }
            write_str(out, key);
            out.push(b':');
            if let Some(id) = id.filter(|_| key == "id") {
                out.extend_from_slice(id);
                continue;
            }
            if key != "result" || !matches!(value.first(), Some(Node::Object { .. })) {
                write_value(out, value);
                continue;
            }
            // The result's members, then what the revision adds.
            write_value(out, value);
            out.pop();
            let mut members = entries(value).count();
            let mut add = |out: &mut Vec<u8>, key: &str, json: &str| {
                if get(value, key).is_none() {
                    if members > 0 {
                        out.push(b',');
                    }
                    members += 1;
                    write_str(out, key);
                    out.push(b':');
                    out.extend_from_slice(json.as_bytes());
                }
            };
            add(out, "resultType", "\"complete\"");
            if method == "resources/read" {
                add(out, "ttlMs", "0");
                add(out, "cacheScope", "\"private\"");
            }
            out.push(b'}');
        }
        out.push(b'}');
        true
    });
    let ok = written.unwrap_or(false);
    if !ok {
        out.truncate(start);
    }
    ok
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::mcp::json::Decoder;

    fn complete(payload: &str, method: &str) -> Option<serde_json::Value> {
        let mut out = b"prefix".to_vec();
        let ok =
            complete_legacy_response(&mut Decoder::default(), payload.as_bytes(), (method, None), &mut out);
        if !ok {
            assert_eq!(out, b"prefix", "nothing written on failure");
            return None;
        }
        Some(serde_json::from_slice(&out[6..]).unwrap())
    }

    #[test]
    fn legacy_results_gain_what_the_2026_revision_requires() {
        let v = complete(
            r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi \"x\""}]}}"#,
            "tools/call",
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi \"x\""}],"resultType":"complete"}})
        );
        let v = complete(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#, "resources/read").unwrap();
        assert_eq!(
            v["result"],
            serde_json::json!({"resultType":"complete","ttlMs":0,"cacheScope":"private"})
        );
        let v =
            complete(r#"{"id":1,"result":{"resultType":"incomplete","ttlMs":5}}"#, "resources/read").unwrap();
        assert_eq!(
            v["result"],
            serde_json::json!({"resultType":"incomplete","ttlMs":5,"cacheScope":"private"})
        );
        let v = complete(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"no"}}"#, "tools/call")
            .unwrap();
        assert_eq!(v, serde_json::json!({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"no"}}));
    }

    #[test]
    fn what_is_not_a_response_is_refused() {
        assert!(complete(r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#, "tools/call").is_none());
        assert!(complete("[1,2]", "tools/call").is_none());
        assert!(complete("{\"result\":", "tools/call").is_none());
        assert!(complete("", "tools/call").is_none());
    }

    #[test]
    fn the_id_is_replaced_when_asked() {
        let mut out = Vec::new();
        let payload = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#;
        assert!(complete_legacy_response(
            &mut Decoder::default(),
            payload,
            ("tools/call", Some(b"\"r2\"")),
            &mut out
        ));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"jsonrpc":"2.0","id":"r2","result":{"content":[],"resultType":"complete"}})
        );
    }
}
