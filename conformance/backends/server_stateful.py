"""Backend MCP server WITH sessions, written with the official Python SDK (mcp==2.3.0).

Usage: python server_stateful.py PORT

Streamable HTTP on http://127.0.0.1:PORT/mcp, `MCPServer.streamable_http_app(stateless_http=False)`:
the SDK issues an `Mcp-Session-Id` on `initialize` and requires it on every later request, and
answers requests with SSE streams (json_response=False, the SDK default).

Tools: echo(text) -> text, add(a, b) -> a + b, hidden() (the gateway config excludes it).

Every HTTP request must carry `Authorization: Bearer backend-token` (the gateway's backend
credential, `server.securitySchemes` + `backends[].security`). Anything else gets 401 before the
SDK sees it and one `AUTH REJECTED ...` line on stderr (run.sh counts those lines).
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp.server import MCPServer

EXPECTED_AUTHORIZATION = b"Bearer backend-token"

mcp = MCPServer("stateful-backend", version="1.0.0")


@mcp.tool(description="Returns the text it was given.")
def echo(text: str) -> str:
    return text


@mcp.tool(description="Adds two integers.")
def add(a: int, b: int) -> int:
    return a + b


@mcp.tool(description="Must never be listed or callable through the gateway (excluded by toolSelector).")
def hidden() -> str:
    return "stateful hidden tool was reached"


class RequireBearer:
    """ASGI wrapper: 401 unless the request has exactly the expected Authorization header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            auth = [v for k, v in scope["headers"] if k == b"authorization"]
            if auth != [EXPECTED_AUTHORIZATION]:
                print(f"AUTH REJECTED {scope['method']} {scope['path']} authorization={auth!r}",
                      file=sys.stderr, flush=True)
                body = b'{"error":"missing or wrong bearer token"}'
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode()),
                                        (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


if __name__ == "__main__":
    port = int(sys.argv[1])
    app = RequireBearer(mcp.streamable_http_app(stateless_http=False, host="127.0.0.1"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
