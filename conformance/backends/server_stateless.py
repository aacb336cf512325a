"""Backend MCP server WITHOUT sessions, written with the official Python SDK (mcp==2.3.0).

Usage: python server_stateless.py PORT

Streamable HTTP on http://127.0.0.1:PORT/mcp, `MCPServer.streamable_http_app(stateless_http=True,
json_response=True)`: no `Mcp-Session-Id` is issued, every request gets a fresh transport, and
answers are plain `application/json` bodies (the stateful backend answers with SSE, so the two
cover both relay paths of the gateway).

Tools: echo(text) -> text, add(a, b) -> a + b, hidden() (the gateway config excludes it).

This backend has no `security` in the gateway config, so the gateway must send it no
Authorization header at all; in particular the MCP client's own Authorization must never be
forwarded. A request with any Authorization header gets 401 and one `AUTH REJECTED ...` line on
stderr (run.sh counts those lines).
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp.server import MCPServer

mcp = MCPServer("stateless-backend", version="1.0.0")


@mcp.tool(description="Returns the text it was given.")
def echo(text: str) -> str:
    return text


@mcp.tool(description="Adds two integers.")
def add(a: int, b: int) -> int:
    return a + b


@mcp.tool(description="Must never be listed or callable through the gateway (excluded by toolSelector).")
def hidden() -> str:
    return "stateless hidden tool was reached"


class RejectAuthorization:
    """ASGI wrapper: 401 for any request that carries an Authorization header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            auth = [v for k, v in scope["headers"] if k == b"authorization"]
            if auth:
                print(f"AUTH REJECTED {scope['method']} {scope['path']} authorization={auth!r}",
                      file=sys.stderr, flush=True)
                body = b'{"error":"this backend expects no Authorization header"}'
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


if __name__ == "__main__":
    port = int(sys.argv[1])
    app = RejectAuthorization(
        mcp.streamable_http_app(stateless_http=True, json_response=True, host="127.0.0.1"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
