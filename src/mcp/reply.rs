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
/// when given. One tape parse (which also validates the backend's bytes), no tree; the
/// backend's bytes are copied as they are and only the id and the additions are written
/// ([`splice`]), unless a member name was written with escapes (then every member is written
/// from the tape). `false` (and `out` unchanged) when `payload` is not a JSON-RPC response
/// object.
pub fn complete_legacy_response(
    decoder: &mut crate::mcp::json::Decoder,
    payload: &[u8],
    (method, id): (&str, Option<&[u8]>),
    out: &mut Vec<u8>,
) -> bool {
    use crate::mcp::json::get;
    use simd_json::Node;
    let start = out.len();
    let written = decoder.with_tape_at(payload, |tape, base| {
        if !matches!(tape.first(), Some(Node::Object { .. }))
            || (get(tape, "result").is_none() && get(tape, "error").is_none())
        {
            return false;
        }
        if splice(payload, base, tape, (method, id), out).is_none() {
            out.truncate(start);
            rewrite(tape, (method, id), out);
        }
        true
    });
    let ok = written.unwrap_or(false);
    if !ok {
        out.truncate(start);
    }
    ok
}

/// What the 2026-07-28 revision adds to a `result` object whose members are `value`, each only
/// where the backend did not write it; `members`: how many it has (a comma goes first).
fn add_members(value: &[simd_json::Node<'_>], method: &str, mut members: usize, out: &mut Vec<u8>) {
    let mut add = |out: &mut Vec<u8>, key: &str, json: &str| {
        if crate::mcp::json::get(value, key).is_none() {
            if members > 0 {
                out.push(b',');
            }
            members += 1;
            crate::mcp::json::write_str(out, key);
            out.push(b':');
            out.extend_from_slice(json.as_bytes());
        }
    };
    add(out, "resultType", "\"complete\"");
    if method == "resources/read" {
        add(out, "ttlMs", "0");
        add(out, "cacheScope", "\"private\"");
    }
}

/// [`complete_legacy_response`] by copying the backend's bytes between the edits: the id's
/// value replaced, the additions inserted before each `result` object's closing brace. Each
/// member's value is located from where its name sits in `payload` (a name that needed no
/// unescaping is at the same offset in the decoder's copy at `base`) up to the comma before the
/// next name, or the object's closing brace; the bytes around are checked to read
/// `"name" : value ,`. `None` when a check fails (a name written with escapes): the caller then
/// writes the answer from the tape.
fn splice(
    payload: &[u8],
    base: usize,
    tape: &[simd_json::Node<'_>],
    (method, id): (&str, Option<&[u8]>),
    out: &mut Vec<u8>,
) -> Option<()> {
    use crate::mcp::json::entries;
    use simd_json::Node;
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    // The offset of a member name's first byte in `payload`, checked.
    let name_at = |name: &str| -> Option<usize> {
        let at = (name.as_ptr() as usize).checked_sub(base)?;
        let end = at.checked_add(name.len())?;
        (at > 0
            && payload.get(at - 1) == Some(&b'"')
            && payload.get(at..end) == Some(name.as_bytes())
            && payload.get(end) == Some(&b'"'))
        .then_some(at)
    };
    // The end of the value that precedes `at` (a comma before a name's quote, or the object's
    // closing brace), past any whitespace, when the byte before it is `sep`.
    let value_end = |at: usize, sep: u8| -> Option<usize> {
        let before = payload.get(..at)?;
        let sep_at = before.iter().rposition(|b| !ws(b))?;
        (before[sep_at] == sep).then_some(())?;
        Some(before[..sep_at].iter().rposition(|b| !ws(b))? + 1)
    };
    let mut copied = 0;
    let mut members = entries(tape).peekable();
    while let Some((key, value)) = members.next() {
        let at = name_at(key)?;
        let end = match members.peek() {
            Some((next, _)) => value_end(name_at(next)? - 1, b',')?,
            None => value_end(payload.iter().rposition(|b| !ws(b))? + 1, b'}')?,
        };
        // `"name"`, whitespace, `:`, whitespace, then the value.
        let after = at + key.len() + 1;
        let colon = after + payload.get(after..)?.iter().position(|b| !ws(b))?;
        (payload[colon] == b':').then_some(())?;
        let value_start = colon + 1 + payload.get(colon + 1..)?.iter().position(|b| !ws(b))?;
        match (key, id) {
            ("id", Some(id)) => {
                out.extend_from_slice(payload.get(copied..value_start)?);
                out.extend_from_slice(id);
                copied = end;
            }
            ("result", _) if matches!(value.first(), Some(Node::Object { .. })) => {
                let close = end.checked_sub(1)?;
                (payload.get(close) == Some(&b'}')).then_some(())?;
                out.extend_from_slice(payload.get(copied..close)?);
                add_members(value, method, entries(value).count(), out);
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
    use simd_json::Node;
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
        if key == "result" && matches!(value.first(), Some(Node::Object { .. })) {
            // The result's members, then what the revision adds.
            out.pop();
            add_members(value, method, entries(value).count(), out);
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
