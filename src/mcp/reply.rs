//! JSON-RPC result envelopes written into reused buffers: `{"jsonrpc":"2.0","id":..,"result":{`
//! before the result's members and `}}` after them.

use crate::mcp::envelope::Id;

pub(crate) mod scan;

use scan::Member;

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
/// when given. One validating pass that builds nothing ([`scan`]) locates the edits, and the
/// backend's bytes are copied as they are around them ([`splice`]). Where that pass declines (a
/// name written with escapes, many members, deep nesting), a tape parse over `decoder` decides
/// and every member is written from the tape ([`complete_from_tape`]). `false` (and `out`
/// unchanged) when `payload` is not a JSON-RPC response object.
pub fn complete_legacy_response(
    decoder: &mut crate::mcp::json::Decoder,
    payload: &[u8],
    (method, id): (&str, Option<&[u8]>),
    out: &mut Vec<u8>,
) -> bool {
    let start = out.len();
    let mut members = [scan::NONE; scan::MAX_MEMBERS];
    match scan::members(payload, &mut members) {
        scan::Scan::Object(n) => {
            let members = &members[..n];
            if !is_response(members.iter().map(|m| m.name)) {
                return false;
            }
            if splice(payload, members, (method, id), out).is_some() {
                return true;
            }
            out.truncate(start);
        }
        scan::Scan::NotObject | scan::Scan::Invalid => return false,
        scan::Scan::Declined => {}
    }
    complete_from_tape(decoder, payload, (method, id), out)
}

/// [`complete_legacy_response`] from a tape parse, every member written from the tape: what it
/// falls back on where the scan declines, and the reference its tests compare it to.
pub fn complete_from_tape(
    decoder: &mut crate::mcp::json::Decoder,
    payload: &[u8],
    (method, id): (&str, Option<&[u8]>),
    out: &mut Vec<u8>,
) -> bool {
    use crate::mcp::json::entries;
    let written = decoder.with_tape(payload, |tape| {
        let is_object = matches!(tape.first(), Some(simd_json::Node::Object { .. }));
        if !is_object || !is_response(entries(tape).map(|(k, _)| k.as_bytes())) {
            return false;
        }
        rewrite(tape, (method, id), out);
        true
    });
    written.unwrap_or(false)
}

/// Whether an object with the member names `names` is a JSON-RPC response (it has a `result` or
/// an `error`).
fn is_response<'a>(mut names: impl Iterator<Item = &'a [u8]>) -> bool {
    names.any(|k| k == b"result" || k == b"error")
}

/// What the member `key` with the tape value `value` is.
fn member(key: &str, value: &[simd_json::Node<'_>]) -> Member {
    match key {
        "id" => Member::Id,
        "result" if matches!(value.first(), Some(simd_json::Node::Object { .. })) => {
            Member::result(crate::mcp::json::entries(value).map(|(k, _)| k))
        }
        _ => Member::Other,
    }
}

/// What the 2026-07-28 revision adds to a `result` object of `members` members of which `has`
/// (`scan::HAS_*` bits) are already there, each only where the backend did not write it (a
/// comma goes first when the object has members).
fn add_members(method: &str, mut members: usize, has: u8, out: &mut Vec<u8>) {
    let mut add = |out: &mut Vec<u8>, bit: u8, member: &[u8]| {
        if has & bit == 0 {
            if members > 0 {
                out.push(b',');
            }
            members += 1;
            out.extend_from_slice(member);
        }
    };
    add(out, scan::HAS_RESULT_TYPE, br#""resultType":"complete""#);
    if method == "resources/read" {
        add(out, scan::HAS_TTL, br#""ttlMs":0"#);
        add(out, scan::HAS_CACHE_SCOPE, br#""cacheScope":"private""#);
    }
}

/// [`complete_legacy_response`] by copying the backend's bytes between the edits the scan
/// located: each `id` value replaced by `id` (when given), the additions inserted before each
/// `result` object's closing brace. `None` (never, for spans the scan gave) when a span is out
/// of order or bounds.
fn splice(
    payload: &[u8],
    members: &[scan::Top<'_>],
    (method, id): (&str, Option<&[u8]>),
    out: &mut Vec<u8>,
) -> Option<()> {
    let mut copied = 0;
    for m in members {
        match (m.member, id) {
            (Member::Id, Some(id)) => {
                out.extend_from_slice(payload.get(copied..m.value.0)?);
                out.extend_from_slice(id);
                copied = m.value.1;
            }
            (Member::Result { members, has, close }, _) => {
                out.extend_from_slice(payload.get(copied..close)?);
                add_members(method, members, has, out);
                copied = close;
            }
            _ => {}
        }
    }
    out.extend_from_slice(payload.get(copied..)?);
    Some(())
}

/// [`complete_legacy_response`] written from the tape, member by member.
fn rewrite(tape: &[simd_json::Node<'_>], (method, id): (&str, Option<&[u8]>), out: &mut Vec<u8>) {
    use crate::mcp::json::{entries, write_str, write_value};
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
        write_value(out, value);
        if let Member::Result { members, has, .. } = member(key, value) {
            // The result's members, then what the revision adds.
            out.pop();
            add_members(method, members, has, out);
            out.push(b'}');
        }
    }
    out.push(b'}');
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
    fn the_backend_bytes_are_copied_and_only_the_edits_written() {
        let replaced = |payload: &str, method: &str, id: Option<&[u8]>| {
            let mut out = Vec::new();
            assert!(complete_legacy_response(
                &mut Decoder::default(),
                payload.as_bytes(),
                (method, id),
                &mut out
            ));
            String::from_utf8(out).unwrap()
        };
        // Whitespace everywhere, braces and commas inside strings, the id after the result.
        let pretty = "{\n  \"jsonrpc\" : \"2.0\",\n  \"result\" : {\"content\": [{\"text\": \"a},\\\"b\\\": {\"}] } ,\n  \"id\"\t:  7\r\n}\n";
        assert_eq!(
            replaced(pretty, "tools/call", Some(b"\"r1\"")),
            "{\n  \"jsonrpc\" : \"2.0\",\n  \"result\" : {\"content\": [{\"text\": \"a},\\\"b\\\": {\"}] ,\"resultType\":\"complete\"} ,\n  \"id\"\t:  \"r1\"\r\n}\n"
        );
        assert_eq!(
            replaced(r#"{"id":1,"result":{ }}"#, "resources/read", None),
            r#"{"id":1,"result":{ "resultType":"complete","ttlMs":0,"cacheScope":"private"}}"#
        );
        // A name written with escapes is not where the tape has it: written from the tape.
        let escaped = r#"{"jsonrpc":"2.0","\u0069d":3,"result":{"a":1}}"#;
        let v: serde_json::Value =
            serde_json::from_str(&replaced(escaped, "tools/call", Some(b"9"))).unwrap();
        assert_eq!(v, serde_json::json!({"jsonrpc":"2.0","id":9,"result":{"a":1,"resultType":"complete"}}));
        // Both ways agree, member for member.
        for payload in [
            r#"{"jsonrpc":"2.0","id":"x","result":{"content":[{"type":"text","text":"hi \"x\""}],"isError":false}}"#,
            r#"{"result":{"resultType":"incomplete"},"id":null,"jsonrpc":"2.0"}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"no","data":{"}":"{"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"n":[1e300,-1,0.5e-3,{"":[]}]}}"#,
        ] {
            for method in ["tools/call", "resources/read"] {
                for id in [None, Some(&b"\"r2\""[..])] {
                    let fast: serde_json::Value =
                        serde_json::from_str(&replaced(payload, method, id)).unwrap();
                    let mut slow = Vec::new();
                    Decoder::default()
                        .with_tape(payload.as_bytes(), |t| rewrite(t, (method, id), &mut slow))
                        .unwrap();
                    let slow: serde_json::Value = serde_json::from_slice(&slow).unwrap();
                    assert_eq!(fast, slow, "{payload} {method} {id:?}");
                }
            }
        }
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
