"""Backend MCP server WITH sessions, written with the official Python SDK (mcp==2.3.0).

Usage: python server_stateful.py PORT

Streamable HTTP on http://127.0.0.1:PORT/mcp, `MCPServer.streamable_http_app(stateless_http=False)`:
the SDK issues an `Mcp-Session-Id` on `initialize` and requires it on every later request, and
answers requests with SSE streams (json_response=False, the SDK default).

Tools: echo(text) -> text, add(a, b) -> a + b, hidden() (the gateway config excludes it), greet()
(asks the client for a name by elicitation, then greets it).

It speaks the 2025 revisions only, as servers written before 2026-07-28 do: a request naming that
revision in its MCP-Protocol-Version header (the gateway's `server/discover` probe) gets 400 with
a JSON-RPC error, so the gateway reaches it over gateway-owned sessions for 2026-07-28 clients, and
its elicitation reaches those clients as an InputRequiredResult (the gateway's MRTR bridge).

Every HTTP request must carry `Authorization: Bearer backend-token` (the gateway's backend
credential, `server.securitySchemes` + `backends[].security`). Anything else gets 401 before the
SDK sees it and one `AUTH REJECTED ...` line on stderr (run.sh counts those lines).
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from pydantic import BaseModel

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

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


class Name(BaseModel):
    name: str


@mcp.tool(description="Asks the client for a name (elicitation) and greets it.")
async def greet(ctx: Context) -> str:
    answer = await ctx.elicit("What is your name?", Name)
    if answer.action == "accept" and answer.data is not None:
        return f"Hello, {answer.data.name}!"
    return f"no name ({answer.action})"


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
            versions = [v for k, v in scope["headers"] if k == b"mcp-protocol-version"]
            if versions and versions[0] not in (b"2025-11-25", b"2025-06-18", b"2025-03-26"):
                body = (b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,'
                        b'"message":"Bad Request: Unsupported protocol version"}}')
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


if __name__ == "__main__":
    port = int(sys.argv[1])
    app = RequireBearer(mcp.streamable_http_app(stateless_http=False, host="127.0.0.1"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
