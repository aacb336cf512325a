"""Drive the gateway with the official Python MCP client (mcp==2.3.0).

Usage: python python_sdk.py http://127.0.0.1:PORT/mcp

For each client mode ("auto": server/discover at 2026-07-28; "legacy": the initialize
handshake at 2025-11-25) this connects, checks the negotiated version, lists the tools,
calls `hello`, calls an unknown tool, and calls `hello` without its required argument.
Each check prints a PASS or FAIL line. The last line is `N passed, M failed`; the exit
status is non-zero when M > 0.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from typing import Any

from mcp import Client, MCPError

EXPECTED_VERSION = {"auto": "2026-07-28", "legacy": "2025-11-25"}
# Whole-mode bound: a hung gateway must not hang the suite.
MODE_TIMEOUT_S = 60.0
UNKNOWN_TOOL = "no_such_tool_for_conformance"

passed = 0
failed = 0


def check(name: str, ok: bool, detail: str = "") -> bool:
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name}{': ' + detail if detail else ''}", flush=True)
    return ok


def texts(result: Any) -> list[str]:
    return [c.text for c in (result.content or []) if getattr(c, "type", None) == "text"]


async def run_mode(url: str, mode: str) -> None:
    p = f"[{mode}]"
    async with Client(url, mode=mode) as client:
        version = client.protocol_version
        check(f"{p} negotiated protocol version {EXPECTED_VERSION[mode]}",
              version == EXPECTED_VERSION[mode], f"got {version!r}")
        info = client.server_info
        check(f"{p} server identifies itself (serverInfo name and version)",
              info is not None and bool(info.name) and bool(info.version), f"got {info!r}")

        # tools/list
        listing = await client.list_tools()
        tools = {t.name: t for t in listing.tools}
        for name, arg in (("hello", "who"), ("echo", "text")):
            tool = tools.get(name)
            if not check(f"{p} tools/list has {name}", tool is not None, f"tools: {sorted(tools)}"):
                continue
            schema = tool.input_schema or {}
            props = schema.get("properties") or {}
            check(f"{p} {name} inputSchema is an object schema with property {arg!r} (required)",
                  schema.get("type") == "object" and arg in props and arg in (schema.get("required") or []),
                  f"inputSchema: {schema!r}")
            check(f"{p} {name} has a description", bool(tool.description), f"tool: {tool!r}")

        # tools/call hello
        r = await client.call_tool("hello", {"who": "x"})
        check(f"{p} hello(who=x) returns text 'Hello, x!'", texts(r) == ["Hello, x!"], f"content: {r.content!r}")
        check(f"{p} hello(who=x) is not an error", not r.is_error, f"isError: {r.is_error!r}")

        # tools/call echo, with characters that need JSON escaping
        text = 'quote " backslash \\ newline \n unicode \u00e9\u4e2d'
        r = await client.call_tool("echo", {"text": text})
        check(f"{p} echo round-trips escaped/unicode text", texts(r) == [text] and not r.is_error,
              f"content: {r.content!r}")

        # tools/call of an unknown tool: a protocol error (-32602, as the spec's example) or, at
        # least, a tool result flagged isError. Anything that looks like success is a failure.
        try:
            r = await client.call_tool(UNKNOWN_TOOL, {})
        except MCPError as e:
            check(f"{p} unknown tool is reported as JSON-RPC error -32602 naming the tool",
                  e.code == -32602 and UNKNOWN_TOOL in e.message, f"code={e.code} message={e.message!r}")
        else:
            check(f"{p} unknown tool is reported as an error", False,
                  f"got a result: isError={r.is_error!r} content={r.content!r}")

        # tools/call hello without its required argument: input validation failures are tool
        # results with isError: true (not protocol errors), per the 2025-11-25 tools spec.
        try:
            r = await client.call_tool("hello", {})
        except MCPError as e:
            check(f"{p} hello() without 'who' returns an isError result", False,
                  f"raised MCPError code={e.code} message={e.message!r}")
        else:
            check(f"{p} hello() without 'who' returns an isError result", r.is_error is True,
                  f"isError={r.is_error!r} content={r.content!r}")
            check(f"{p} hello() without 'who' error text names the argument",
                  any("who" in t for t in texts(r)), f"content: {r.content!r}")

        # The connection is still usable after errors.
        r = await client.call_tool("hello", {"who": "again"})
        check(f"{p} connection still works after errors", texts(r) == ["Hello, again!"], f"content: {r.content!r}")


async def main(url: str) -> None:
    for mode in ("auto", "legacy"):
        try:
            await asyncio.wait_for(run_mode(url, mode), MODE_TIMEOUT_S)
        except Exception as e:  # noqa: BLE001 - any crash of a mode is one failed check
            detail = f"{type(e).__name__}: {e}"
            if not isinstance(e, (MCPError, asyncio.TimeoutError)):
                detail += "\n" + traceback.format_exc()
            check(f"[{mode}] session ran to completion", False, detail)
        else:
            check(f"[{mode}] session ran to completion", True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python_sdk.py URL")
    asyncio.run(main(sys.argv[1]))
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
