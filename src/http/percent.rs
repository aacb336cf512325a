//! Percent-encoding (RFC 3986) for what the gateway writes into URLs and forms, and the decoding
//! of query values it reads (application/x-www-form-urlencoded: `+` is a space).

/// Whether `b` is an RFC 3986 unreserved character (never encoded).
pub fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Appends `bytes` with everything but unreserved characters as `%XX` (upper-case hex).
pub fn encode(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if unreserved(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

/// Decodes a query or form value: `%XX` escapes and `+` as a space. `None` for a malformed
/// escape.
pub fn decode_form(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'%' => {
                let hex = v.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
                let s = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(s, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut out = Vec::new();
        encode(&mut out, "a b&c=d/é~".as_bytes());
        assert_eq!(out, b"a%20b%26c%3Dd%2F%C3%A9~");
        assert_eq!(decode_form(&out).unwrap(), "a b&c=d/é~".as_bytes());
        assert_eq!(decode_form(b"x+y").unwrap(), b"x y");
        assert_eq!(decode_form(b"%zz"), None);
        assert_eq!(decode_form(b"%4"), None);
    }
}
