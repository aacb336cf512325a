"""Opens N TCP connections to HOST:PORT and holds them idle; with MODE "request" each first
sends one 2026-07-28 tools/call (the `hello` tool of perf/gateway.yaml) and reads its answer.
Touches READY_FILE when all are open (and answered), then holds them for 60 s (bounded).
Used by perf/idle.sh; loopback only."""
import socket
import sys
import time

host, port, n, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
mode = sys.argv[5] if len(sys.argv) > 5 else "open"
body = (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello","arguments":{"who":"Ada"},'
        b'"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}')
request = (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n"
           b"Mcp-Method: tools/call\r\nMcp-Name: hello\r\nContent-Length: " + str(len(body)).encode() +
           b"\r\n\r\n" + body)
socks = []
for _ in range(n):
    s = socket.create_connection((host, port))
    if mode == "request":
        s.settimeout(10)
        s.sendall(request)
        got = b""
        while b"\r\n\r\n" not in got or len(got) < got.index(b"\r\n\r\n") + 4 + int(
                [l for l in got.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1]):
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("the gateway closed a connection")
            got += chunk
    socks.append(s)
open(ready, "w").close()
time.sleep(60)
