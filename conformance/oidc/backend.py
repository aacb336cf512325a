"""The backend MCP server of the oidc leg, written with the official Python SDK (mcp==2.3.0).

Usage: python oidc/backend.py PORT ISSUER GATEWAY_RESOURCE

Streamable HTTP on http://127.0.0.1:PORT/mcp without sessions (`stateless_http=True`, JSON
answers). Its audience is that URL. The gateway reaches it with a `type: oauth2` scheme whose
`tokenExchange` flow asks oidc-provider (ISSUER) for a token for this audience on behalf of the
caller, so every request must carry `Authorization: Bearer <exchanged token>`:

  - a JWT signed RS256 by a key of ISSUER's JWKS (fetched from ISSUER/jwks with httpx2, fetched
    again when a kid is unknown; verified with PyJWT, which `mcp` depends on);
  - `iss` = ISSUER, `aud` = this backend's URL, `exp`, `iat`, `sub`, `jti` present;
  - `client_id` = `portcullis` and `act` = {"sub": "portcullis"}: issued by the exchange grant
    to the gateway's client, not by the authorization code flow to an MCP client.

Any other request is answered 401 and logged as `AUTH REJECTED <reason>`; a token whose `aud` is
GATEWAY_RESOURCE (the caller's own token, forwarded) is also logged as `CALLER TOKEN SEEN`.
run.sh counts both. A request carrying `X-Conformance-Probe` is a deliberate probe of the client
script: it is refused the same way but logged as `PROBE REJECTED`, and counted apart.

Tool: whoami() -> JSON of the verified token's claims (sub, aud, iss, client_id, act, jti, exp),
its header kid, and the SHA-256 of the token (so the client can tell it from its own token
without the token ever being echoed).

GET /seen (no MCP, no auth; loopback test plumbing): every accepted request (method, JSON-RPC
method, jti, sub, kid) and the rejection counters, as JSON. Tokens are never logged or returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from typing import Any

import httpx2
import jwt
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp.server.mcpserver import Context, MCPServer

os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"

GATEWAY_CLIENT_ID = "portcullis"


def log(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)


class Rejected(Exception):
    pass


class Verifier:
    """Verifies exchanged tokens against the issuer's JWKS."""

    def __init__(self, issuer: str, audience: str, gateway_resource: str) -> None:
        self.issuer = issuer
        self.audience = audience
        self.gateway_resource = gateway_resource
        self.keys: dict[str, jwt.PyJWK] = {}
        self.lock = asyncio.Lock()
        self.jwks_fetches = 0

    async def _fetch(self) -> None:
        async with httpx2.AsyncClient(trust_env=False, timeout=5.0) as http:
            r = await http.get(f"{self.issuer}/jwks")
        r.raise_for_status()
        self.keys = {k["kid"]: jwt.PyJWK(k) for k in r.json()["keys"] if "kid" in k}
        self.jwks_fetches += 1
        log(f"JWKS fetched: {sorted(self.keys)}")

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        if not kid:
            raise Rejected("token without kid")
        if kid not in self.keys:
            async with self.lock:
                if kid not in self.keys:
                    await self._fetch()
        if kid not in self.keys:
            raise Rejected(f"kid {kid} not in the issuer's JWKS")
        return self.keys[kid]

    async def verify(self, authorization: str | None) -> tuple[dict[str, Any], dict[str, Any], str]:
        """-> (claims, header, sha256 of the token); raises Rejected with the reason."""
        if not authorization:
            raise Rejected("no Authorization header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Rejected("Authorization is not a bearer token")
        digest = hashlib.sha256(token.encode()).hexdigest()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as e:
            raise Rejected(f"not a JWT ({e})") from None
        if self.gateway_resource in _as_list(unverified.get("aud")):
            raise Rejected("CALLER TOKEN SEEN: the token's aud is the gateway (the caller's own token)")
        key = await self.key_for(header.get("kid"))
        try:
            claims = jwt.decode(
                token, key.key, algorithms=["RS256"], audience=self.audience, issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
            )
        except jwt.PyJWTError as e:
            raise Rejected(f"{type(e).__name__}: {e}") from None
        if claims.get("client_id") != GATEWAY_CLIENT_ID:
            raise Rejected(f"client_id {claims.get('client_id')!r} is not the gateway's")
        if claims.get("act") != {"sub": GATEWAY_CLIENT_ID}:
            raise Rejected(f"act {claims.get('act')!r} does not name the gateway")
        return claims, header, digest


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


VERIFIER: Verifier
SEEN: dict[str, Any] = {"accepted": [], "rejected": 0, "caller_token_seen": 0, "probes_rejected": 0}

mcp = MCPServer("oidc-backend", version="1.0.0")


@mcp.tool(description="Returns who the gateway says is calling: the verified claims of the exchanged token.")
async def whoami(ctx: Context) -> str:
    headers = ctx.headers or {}
    claims, header, digest = await VERIFIER.verify(headers.get("authorization"))
    return json.dumps({
        "verified": True,
        "sub": claims["sub"],
        "aud": claims["aud"],
        "iss": claims["iss"],
        "client_id": claims.get("client_id"),
        "act": claims.get("act"),
        "jti": claims["jti"],
        "exp": claims["exp"],
        "kid": header.get("kid"),
        "token_sha256": digest,
    })


class RequireExchangedToken:
    """ASGI wrapper: 401 unless the request carries a valid exchanged token; GET /seen reports."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/seen" and scope["method"] == "GET":
            await respond(send, 200, json.dumps(SEEN).encode())
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        probe = "x-conformance-probe" in headers
        try:
            claims, header, _ = await VERIFIER.verify(headers.get("authorization"))
        except Rejected as e:
            reason = str(e)
            if probe:
                SEEN["probes_rejected"] += 1
                log(f"PROBE REJECTED {scope['method']} {scope['path']}: {reason}")
            else:
                SEEN["rejected"] += 1
                if reason.startswith("CALLER TOKEN SEEN"):
                    SEEN["caller_token_seen"] += 1
                log(f"AUTH REJECTED {scope['method']} {scope['path']}: {reason}")
            await respond(send, 401, json.dumps({"error": "invalid_token", "reason": reason}).encode(),
                          [(b"www-authenticate", b'Bearer error="invalid_token"')])
            return
        # Read the body to record the JSON-RPC method, then replay it to the app.
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            rpc = json.loads(body).get("method") if body else None
        except (ValueError, AttributeError):
            rpc = None
        SEEN["accepted"].append({"method": scope["method"], "rpc": rpc, "jti": claims["jti"],
                                 "sub": claims["sub"], "kid": header.get("kid")})
        log(f"ACCEPTED {scope['method']} {rpc or ''} sub={claims['sub']} jti={claims['jti']} kid={header.get('kid')}")
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def respond(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: oidc/backend.py PORT ISSUER GATEWAY_RESOURCE")
    port, issuer, gateway_resource = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    VERIFIER = Verifier(issuer, f"http://127.0.0.1:{port}/mcp", gateway_resource)
    app = RequireExchangedToken(
        mcp.streamable_http_app(stateless_http=True, json_response=True, host="127.0.0.1"))
    log(f"oidc backend on http://127.0.0.1:{port}/mcp, issuer {issuer}")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
