"""An OTLP/HTTP sink for perf runs (issue "Observability and packaging"): answers every POST
with 200 and counts the bytes. Loopback only; exits after `--seconds` (bounded)."""
import argparse
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=18096)
    p.add_argument("--seconds", type=int, default=900)
    a = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    threading.Timer(a.seconds, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
