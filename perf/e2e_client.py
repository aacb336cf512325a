"""Sends N identical pre-serialised MCP tools/call requests (2026-07-28 wire) over one keep-alive
connection, reading each response fully. Used by perf/e2e_instructions.sh; loopback only."""
import os
import socket
import sys

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
session_mode = len(sys.argv) > 4 and sys.argv[4] == "session"
s = socket.create_connection((host, port), timeout=30)
buf = b""


def exchange(req):
    """Sends one request and returns (head, body) of the response."""
    global buf
    s.sendall(req)
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode()
            length = int(next((l.split(":")[1] for l in head.split("\r\n") if l.lower().startswith("content-length")), "0"))
            if len(buf) >= end + 4 + length:
                body, buf = buf[end + 4:end + 4 + length], buf[end + 4 + length:]
                return head, body
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection closed")
        buf += chunk


# perf/e2e_instructions.sh ... jwt sets MCP_AUTH to "Bearer <token>".
AUTH = (b"Authorization: " + os.environ["MCP_AUTH"].encode() + b"\r\n") if os.environ.get("MCP_AUTH") else b""


def post(body, extra=b""):
    return (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n"
            b"Content-Type: application/json\r\n" + AUTH + extra + b"Content-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


if session_mode:
    # 2025-11-25 within a session (the proxied path of perf/proxy.sh).
    head, _ = exchange(post(b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}'))
    sid = next(l.split(":", 1)[1].strip() for l in head.split("\r\n") if l.lower().startswith("mcp-session-id"))
    req = post(b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello","arguments":{"who":"Ada"}}}',
               b"MCP-Protocol-Version: 2025-11-25\r\nMcp-Session-Id: " + sid.encode() + b"\r\n")
else:
    body = (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello","arguments":{"who":"Ada"},'
            b'"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}')
    req = post(body, b"MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: hello\r\n")
for _ in range(n):
    head, _ = exchange(req)
    assert head.startswith("HTTP/1.1 200"), head
s.close()
