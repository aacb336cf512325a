"""Sends N identical pre-serialised MCP tools/call requests (2026-07-28 wire) over one keep-alive
connection, reading each response fully. Used by perf/e2e_instructions.sh; loopback only."""
import socket
import sys

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
body = (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello","arguments":{"who":"Ada"},'
        b'"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}')
req = (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n"
       b"Content-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\n"
       b"Mcp-Name: hello\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
s = socket.create_connection((host, port), timeout=30)
buf = b""
for _ in range(n):
    s.sendall(req)
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode()
            length = int(next(l.split(":")[1] for l in head.split("\r\n") if l.lower().startswith("content-length")))
            if len(buf) >= end + 4 + length:
                assert head.startswith("HTTP/1.1 200"), head
                buf = buf[end + 4 + length:]
                break
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection closed")
        buf += chunk
s.close()
