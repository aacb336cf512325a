"""Opens N idle TCP connections to HOST:PORT, touches READY_FILE, holds them for 60 s (bounded).
Used by perf/idle.sh; loopback only."""
import socket
import sys
import time

host, port, n, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
socks = []
for _ in range(n):
    s = socket.create_connection((host, port))
    socks.append(s)
open(ready, "w").close()
time.sleep(60)
