//! Inputs shared by the criterion benches and the instruction counter (`perf/instructions.rs`).

/// A realistic 1 KB head: what the Python and TypeScript SDKs send, plus a JWT bearer token.
pub fn mcp_head() -> Vec<u8> {
    let token = format!("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.{}.{}", "e".repeat(420), "s".repeat(342));
    format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:8080\r\naccept: application/json, text/event-stream\r\n\
content-type: application/json\r\nmcp-protocol-version: 2025-11-25\r\n\
mcp-session-id: AQllcGhlbWVyYWzlMxpiOgPDdUmJ9NBHtEneb0GMdv6kLTE0kh8exNaBu8FHeB7wIAmyr\r\n\
authorization: Bearer {token}\r\nuser-agent: python-httpx/0.28.1\r\naccept-encoding: gzip, deflate\r\n\
connection: keep-alive\r\ncontent-length: 178\r\n\r\n"
    )
    .into_bytes()
}

/// A 200 B tools/call body.
pub const TOOLS_CALL: &[u8] = br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"get-forecast","arguments":{"city":"Amsterdam","days":3,"units":"metric"},"_meta":{"progressToken":"tok-7f3a9c1e"}}}"#;
