"""Client authentication of the gateway, driven by the official Python MCP client (mcp==2.3.0).

Usage: python auth/client.py http://127.0.0.1:PORT/mcp AS_PORT

The gateway serves conformance/auth/gateway.yaml: JWT bearer authentication (HS256 with one
inline `oct` key), `resource` = the URL above, protected resource metadata naming the
authorization server http://127.0.0.1:AS_PORT. This script needs nothing but the standard
library and the packages `mcp` brings (httpx2, pydantic):

  tokens      HS256 JWTs minted here with hmac/hashlib/base64, never by the gateway's code.
  bearer      the official client with `Authorization: Bearer <token>` (modes auto and legacy):
              connect, tools/list, tools/call.
  refused     no token, a bad signature, alg "none", expired, wrong audience, wrong issuer, a
              token in the query string: the SDK's connect fails, and a raw POST gets 401 with the
              exact RFC 6750 / RFC 9728 `WWW-Authenticate` challenge. Also: the scheme name is
              case-insensitive, the PRM document, and a session bound to its principal.
  oauth       the SDK's `OAuthClientProvider` pointed at the gateway with no token, against a
              fake authorization server run by this script on 127.0.0.1:AS_PORT (RFC 8414
              metadata, RFC 7591 registration, authorization code + PKCE S256, RFC 9207 `iss`,
              RFC 8707 `resource`, a token endpoint minting the HS256 JWT). Every HTTP request the
              client makes is logged (a wrapping httpx2 transport) and printed as `REQ` lines; the
              checks assert that it fetched exactly the resource_metadata URL of the gateway's
              401, ran the whole flow, and then used the gateway with the issued token.

Each check prints a PASS or FAIL line. The last line is `N passed, M failed`; the exit status is
non-zero when M > 0.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx2

from mcp import Client, MCPError
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

# The HS256 secret; conformance/auth/gateway.yaml holds its base64url form as the `oct` key `hs`.
SECRET = b"portcullis-conformance-auth-leg-hs256-secret!"
KID = "hs"
SCOPE = "mcp.tools"
SECTION_TIMEOUT_S = 30.0
REDIRECT_URI = "http://127.0.0.1/callback"  # never contacted: redirect_handler reads the Location

# Loopback only: never send this traffic through a proxy, whatever the environment says.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"

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


def xfail(name: str, ok: bool, detail: str = "") -> None:
    """A known gateway deviation (described in conformance/README.md, auth leg): printed as XFAIL and
    not counted while it persists; once fixed it prints XPASS and counts as a failure, like a stale
    baseline entry, so that the entry is removed and the check becomes an ordinary one."""
    global failed
    if ok:
        failed += 1
        print(f"FAIL XPASS {name}: the known deviation is gone; make this an ordinary check", flush=True)
    else:
        print(f"XFAIL {name}{': ' + detail if detail else ''}", flush=True)


def texts(result: Any) -> list[str]:
    return [c.text for c in (result.content or []) if getattr(c, "type", None) == "text"]


# ---- tokens ---------------------------------------------------------------------------------------


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_json(obj: Any) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def mint(claims: dict[str, Any], *, key: bytes = SECRET, alg: str = "HS256", kid: str | None = KID) -> str:
    """A compact JWS: HMAC-SHA256 over `b64u(header).b64u(claims)` (alg "none": no signature)."""
    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{b64u_json(header)}.{b64u_json(claims)}"
    if alg == "none":
        return signing_input + "."
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64u(sig)}"


def claims_for(issuer: str, audience: str, sub: str, *, ttl: int = 600, scope: str = SCOPE) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": issuer, "aud": audience, "sub": sub, "iat": now, "exp": now + ttl, "scope": scope}


def parse_challenge(value: str) -> tuple[str, dict[str, str]] | None:
    """`Bearer k="v", k2=v2` -> ("Bearer", {k: v, k2: v2}); None if it does not parse as one challenge."""
    m = re.match(r"\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*(.*)$", value)
    if not m:
        return None
    scheme, rest = m.group(1), m.group(2)
    params: dict[str, str] = {}
    pos = 0
    param = re.compile(r'\s*([A-Za-z0-9!#$%&\'*+.^_`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))\s*(,|$)')
    while pos < len(rest):
        pm = param.match(rest, pos)
        if not pm:
            return None
        name = pm.group(1).lower()
        if name in params:
            return None
        params[name] = re.sub(r"\\(.)", r"\1", pm.group(2)) if pm.group(2) is not None else pm.group(3)
        pos = pm.end()
    return scheme, params


# ---- request log: a transport that records every request an httpx2 client sends -------------------


class LoggingTransport(httpx2.AsyncBaseTransport):
    def __init__(self, log: list[dict[str, Any]], tag: str) -> None:
        self._inner = httpx2.AsyncHTTPTransport(trust_env=False)
        self._log = log
        self._tag = tag

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        entry: dict[str, Any] = {
            "tag": self._tag,
            "method": request.method,
            "url": str(request.url),
            "authorization": request.headers.get("authorization"),
            "what": describe_body(request),
        }
        self._log.append(entry)
        try:
            response = await self._inner.handle_async_request(request)
        except Exception as e:
            entry["status"] = f"{type(e).__name__}"
            raise
        entry["status"] = response.status_code
        entry["www_authenticate"] = response.headers.get("www-authenticate")
        entry["location"] = response.headers.get("location")
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def describe_body(request: httpx2.Request) -> str:
    try:
        body = request.content
    except httpx2.RequestNotRead:
        return ""
    if not body:
        return ""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        try:
            msg = json.loads(body)
        except ValueError:
            return "json?"
        if isinstance(msg, dict) and "method" in msg:
            return f"jsonrpc {msg['method']}"
        if isinstance(msg, dict) and "redirect_uris" in msg:
            return "client registration " + json.dumps(
                {k: msg[k] for k in ("redirect_uris", "grant_types", "token_endpoint_auth_method", "scope") if k in msg}
            )
        return "json"
    if ctype.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode())
        shown = {k: v[0] for k, v in form.items() if k in ("grant_type", "resource", "redirect_uri")}
        return "form " + json.dumps(shown) + " + " + ",".join(sorted(k for k in form if k not in shown))
    return ctype


def print_log(title: str, log: list[dict[str, Any]], token_names: dict[str, str]) -> None:
    print(f"  request log ({title}):", flush=True)
    for i, e in enumerate(log, 1):
        auth = e["authorization"]
        if auth is None:
            shown = "no Authorization"
        elif auth.startswith("Bearer ") and auth[7:] in token_names:
            shown = f"Authorization: Bearer <{token_names[auth[7:]]}>"
        else:
            shown = "Authorization: " + (auth[:16] + "...")
        line = f"  REQ {i:2d} [{e['tag']}] {e['method']} {e['url']}"
        if e["what"]:
            line += f" ({e['what']})"
        line += f" [{shown}] -> {e.get('status')}"
        if e.get("www_authenticate"):
            line += f" WWW-Authenticate: {e['www_authenticate']}"
        if e.get("location"):
            loc = urlparse(e["location"])
            q = parse_qs(loc.query)
            line += f" Location: {loc.scheme}://{loc.netloc}{loc.path}?" + "&".join(
                f"{k}={'<' + k + '>' if k in ('code', 'state') else v[0]}" for k, v in q.items()
            )
        print(line, flush=True)


# ---- fake authorization server --------------------------------------------------------------------


class FakeAS:
    """RFC 8414 metadata, RFC 7591 registration, authorization code grant with PKCE S256 and RFC 8707
    resource indicators; the token endpoint mints an HS256 JWT the gateway accepts."""

    def __init__(self, port: int, resource: str) -> None:
        self.issuer = f"http://127.0.0.1:{port}"
        self.resource = resource
        self.clients: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.issued: list[dict[str, Any]] = []  # token responses: {token, client_id, scope, resource}
        self.errors: list[str] = []  # every request the AS refused, with the reason
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                fake.handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeAS:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "registration_endpoint": f"{self.issuer}/register",
            "scopes_supported": [SCOPE],
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }

    # -- plumbing
    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        length = int(h.headers.get("content-length") or 0)
        body = h.rfile.read(length) if length else b""
        try:
            route = {
                ("GET", "/.well-known/oauth-authorization-server"): self.get_metadata,
                ("POST", "/register"): self.register,
                ("GET", "/authorize"): self.authorize,
                ("POST", "/token"): self.token,
            }.get((method, url.path))
            if route is None:
                status, headers, payload = 404, {}, {"error": "not_found"}
            else:
                status, headers, payload = route(parse_qs(url.query), h.headers, body)
        except Exception as e:  # noqa: BLE001 - a bug here must show, not hang the client
            status, headers, payload = 500, {}, {"error": "server_error", "error_description": repr(e)}
        if status >= 400 and url.path != "/.well-known/openid-configuration":
            with self.lock:
                self.errors.append(f"{method} {url.path} -> {status} {payload}")
        data = json.dumps(payload).encode() if payload is not None else b""
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if payload is not None:
            h.send_header("Content-Type", "application/json")
            h.send_header("Cache-Control", "no-store")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def oauth_error(status: int, error: str, why: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        return status, {}, {"error": error, "error_description": why}

    # -- endpoints
    def get_metadata(self, _q: dict[str, list[str]], _h: Any, _b: bytes) -> tuple[int, dict[str, str], Any]:
        return 200, {}, self.metadata()

    def register(self, _q: dict[str, list[str]], _h: Any, body: bytes) -> tuple[int, dict[str, str], Any]:
        try:
            req = json.loads(body)
        except ValueError:
            return self.oauth_error(400, "invalid_client_metadata", "body is not JSON")
        uris = req.get("redirect_uris")
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
            return self.oauth_error(400, "invalid_redirect_uri", "redirect_uris must be a non-empty list")
        method = req.get("token_endpoint_auth_method") or "client_secret_basic"  # RFC 7591 default
        if method not in ("client_secret_post", "none"):
            return self.oauth_error(400, "invalid_client_metadata", f"token_endpoint_auth_method {method!r}")
        client = dict(req)
        client["client_id"] = "client-" + secrets.token_hex(8)
        client["client_id_issued_at"] = int(time.time())
        client["token_endpoint_auth_method"] = method
        if method == "client_secret_post":
            client["client_secret"] = secrets.token_urlsafe(24)
            client["client_secret_expires_at"] = 0
        with self.lock:
            self.clients[client["client_id"]] = client
        return 201, {}, client

    def authorize(self, q: dict[str, list[str]], _h: Any, _b: bytes) -> tuple[int, dict[str, str], Any]:
        p = {k: v[0] for k, v in q.items()}
        if any(len(v) != 1 for v in q.values()):
            return self.oauth_error(400, "invalid_request", "repeated parameter")
        client = self.clients.get(p.get("client_id", ""))
        if client is None:
            return self.oauth_error(400, "invalid_client", "unknown client_id")
        if p.get("redirect_uri") not in client["redirect_uris"]:
            return self.oauth_error(400, "invalid_request", "redirect_uri not registered")
        if p.get("response_type") != "code":
            return self.oauth_error(400, "unsupported_response_type", "response_type must be code")
        challenge = p.get("code_challenge", "")
        if p.get("code_challenge_method") != "S256" or not re.fullmatch(r"[A-Za-z0-9_-]{43}", challenge):
            return self.oauth_error(400, "invalid_request", "PKCE S256 code_challenge required")
        if p.get("resource") != self.resource:
            return self.oauth_error(400, "invalid_target", f"resource {p.get('resource')!r} != {self.resource!r}")
        scope = p.get("scope", "")
        if not scope or any(s != SCOPE for s in scope.split()):
            return self.oauth_error(400, "invalid_scope", f"scope {scope!r}")
        if not p.get("state"):
            return self.oauth_error(400, "invalid_request", "state required")
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {
                "client_id": client["client_id"],
                "redirect_uri": p["redirect_uri"],
                "challenge": challenge,
                "resource": p["resource"],
                "scope": scope,
                "expires": time.time() + 60,
            }
        location = p["redirect_uri"] + "?" + urlencode({"code": code, "state": p["state"], "iss": self.issuer})
        return 302, {"Location": location}, None

    def token(self, _q: dict[str, list[str]], headers: Any, body: bytes) -> tuple[int, dict[str, str], Any]:
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return self.oauth_error(400, "invalid_request", "form body required")
        form = parse_qs(body.decode())
        if any(len(v) != 1 for v in form.values()):
            return self.oauth_error(400, "invalid_request", "repeated parameter")
        p = {k: v[0] for k, v in form.items()}
        if p.get("grant_type") != "authorization_code":
            return self.oauth_error(400, "unsupported_grant_type", repr(p.get("grant_type")))
        client = self.clients.get(p.get("client_id", ""))
        if client is None:
            return self.oauth_error(401, "invalid_client", "unknown client_id")
        if client["token_endpoint_auth_method"] == "client_secret_post" and not hmac.compare_digest(
            p.get("client_secret", ""), client["client_secret"]
        ):
            return self.oauth_error(401, "invalid_client", "bad client_secret")
        with self.lock:
            grant = self.codes.pop(p.get("code", ""), None)  # single use
        if grant is None or grant["expires"] < time.time():
            return self.oauth_error(400, "invalid_grant", "unknown, used or expired code")
        if grant["client_id"] != client["client_id"] or grant["redirect_uri"] != p.get("redirect_uri"):
            return self.oauth_error(400, "invalid_grant", "code issued to another client or redirect_uri")
        verifier = p.get("code_verifier", "")
        if not re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier):
            return self.oauth_error(400, "invalid_grant", "code_verifier malformed (RFC 7636 4.1)")
        if not hmac.compare_digest(b64u(hashlib.sha256(verifier.encode("ascii")).digest()), grant["challenge"]):
            return self.oauth_error(400, "invalid_grant", "PKCE verification failed")
        if p.get("resource", grant["resource"]) != grant["resource"]:
            return self.oauth_error(400, "invalid_target", "resource differs from the authorization request")
        access = mint(claims_for(self.issuer, grant["resource"], client["client_id"], scope=grant["scope"]))
        with self.lock:
            self.issued.append({"token": access, "client_id": client["client_id"], "scope": grant["scope"],
                                "resource": grant["resource"]})
        return 200, {}, {"access_token": access, "token_type": "Bearer", "expires_in": 600, "scope": grant["scope"]}


class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


# ---- the checks ------------------------------------------------------------------------------------


class Ctx:
    def __init__(self, url: str, as_port: int) -> None:
        self.url = url
        u = urlparse(url)
        self.origin = f"{u.scheme}://{u.netloc}"
        self.prm_url = f"{self.origin}/.well-known/oauth-protected-resource{u.path}"
        self.issuer = f"http://127.0.0.1:{as_port}"
        self.as_port = as_port

    def token(self, sub: str = "alice", **kw: Any) -> str:
        return mint(claims_for(self.issuer, self.url, sub), **kw)


def raw_client() -> httpx2.AsyncClient:
    return httpx2.AsyncClient(trust_env=False, timeout=10.0)


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "auth-leg", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def section_config(ctx: Ctx) -> None:
    yaml = (Path(__file__).parent / "gateway.yaml").read_text()
    check("gateway.yaml's oct key `hs` is base64url of this script's SECRET (k: " + b64u(SECRET) + ")",
          f"kid: {KID}, k: {b64u(SECRET)}" in yaml, "the config and the script disagree; fix one of them")
    # The minted token is well-formed by an independent reading: three base64url parts, HS256 over the first two.
    t = ctx.token()
    h, c, s = t.split(".")
    pad = lambda x: x + "=" * (-len(x) % 4)  # noqa: E731
    header = json.loads(base64.urlsafe_b64decode(pad(h)))
    claims = json.loads(base64.urlsafe_b64decode(pad(c)))
    check("minted token: header {alg HS256, kid hs}, claims iss/aud/sub/exp/scope",
          header == {"alg": "HS256", "typ": "JWT", "kid": KID}
          and claims["iss"] == ctx.issuer and claims["aud"] == ctx.url and claims["scope"] == SCOPE
          and claims["exp"] > time.time(), f"header={header} claims={claims}")
    check("minted token: signature is HMAC-SHA256 of the signing input",
          base64.urlsafe_b64decode(pad(s)) == hmac.new(SECRET, f"{h}.{c}".encode(), hashlib.sha256).digest())


async def section_prm(ctx: Ctx) -> None:
    async with raw_client() as http:
        r = await http.get(ctx.prm_url)
        ok = check(f"GET {ctx.prm_url} without a token: 200 JSON", r.status_code == 200
                   and r.headers.get("content-type", "").startswith("application/json"),
                   f"{r.status_code} {r.headers.get('content-type')} {r.text[:200]}")
        if ok:
            doc = r.json()
            want = {"resource": ctx.url, "authorization_servers": [ctx.issuer], "scopes_supported": [SCOPE],
                    "bearer_methods_supported": ["header"]}
            got = {k: doc.get(k) for k in want}
            check("PRM document: resource, authorization_servers, scopes_supported, bearer_methods_supported",
                  got == want, f"got {doc}")
            check("PRM document: CORS Access-Control-Allow-Origin: * (a public document)",
                  r.headers.get("access-control-allow-origin") == "*", f"{dict(r.headers)}")
        # One server: the root well-known URL (the SDK's last fallback) serves the same document.
        root = f"{ctx.origin}/.well-known/oauth-protected-resource"
        r2 = await http.get(root)
        check(f"GET {root}: the same document", r2.status_code == 200 and ok and r2.json() == r.json(),
              f"{r2.status_code} {r2.text[:200]}")
        # A browser-based client's PRM fetch carries MCP-Protocol-Version (the SDKs send it), a
        # header that is not CORS-safelisted, so the browser preflights it; the preflight must allow it.
        r = await http.options(ctx.prm_url, headers={"Origin": "http://localhost:6274",
                                                     "Access-Control-Request-Method": "GET",
                                                     "Access-Control-Request-Headers": "mcp-protocol-version"})
        allowed = [h.strip().lower() for h in r.headers.get("access-control-allow-headers", "").split(",")]
        check("PRM CORS preflight: 2xx with Access-Control-Allow-Origin",
              200 <= r.status_code < 300 and r.headers.get("access-control-allow-origin") in ("*", "http://localhost:6274"),
              f"{r.status_code} {dict(r.headers)}")
        check("PRM CORS preflight for mcp-protocol-version: Access-Control-Allow-Headers allows it",
              "mcp-protocol-version" in allowed or "*" in allowed,
              f"{r.status_code}, response headers {dict(r.headers)}")


async def section_bearer(ctx: Ctx, mode: str) -> None:
    p = f"[bearer {mode}]"
    token = ctx.token()
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http, Client(streamable_http_client(ctx.url, http_client=http), mode=mode) as client:
        want = "2026-07-28" if mode == "auto" else "2025-11-25"
        check(f"{p} connected, protocol version {want}", client.protocol_version == want,
              f"got {client.protocol_version!r}")
        listing = await client.list_tools()
        names = sorted(t.name for t in listing.tools)
        check(f"{p} tools/list is echo, hello, secret_word", names == ["echo", "hello", "secret_word"], f"got {names}")
        r = await client.call_tool("hello", {"who": "token holder"})
        check(f"{p} hello returns 'Hello, token holder!'", texts(r) == ["Hello, token holder!"] and not r.is_error,
              f"content: {r.content!r} isError={r.is_error!r}")
        r = await client.call_tool("secret_word", {})
        check(f"{p} secret_word returns 'portcullis'", texts(r) == ["portcullis"] and not r.is_error,
              f"content: {r.content!r}")


def leaf_exceptions(e: BaseException) -> Any:
    if isinstance(e, BaseExceptionGroup):
        for inner in e.exceptions:
            yield from leaf_exceptions(inner)
    else:
        yield e


async def sdk_refused(ctx: Ctx, label: str, headers: dict[str, str] | None, mode: str) -> None:
    name = f"[refused {mode}] SDK connect with {label} fails"
    http = create_mcp_http_client(headers=headers)
    try:
        async with http, Client(streamable_http_client(ctx.url, http_client=http), mode=mode) as client:
            await client.list_tools()
    except Exception as e:  # noqa: BLE001
        # The connect fails inside the Client's task group, so the error arrives wrapped in an
        # ExceptionGroup; the gateway's 401 carries a JSON-RPC error body, which the SDK's
        # transport surfaces as MCPError with the gateway's code and message.
        errs = list(leaf_exceptions(e))
        detail = "; ".join(f"{type(x).__name__}: {x}" for x in errs)
        check(name, True)
        check(f"[refused {mode}] with {label}: the SDK reports the gateway's JSON-RPC error (MCPError -32600)",
              len(errs) == 1 and isinstance(errs[0], MCPError) and errs[0].code == -32600, detail)
    else:
        check(name, False, "connected and listed tools")


async def section_refused(ctx: Ctx) -> None:
    bad_sig = ctx.token(key=b"another-secret-another-secret-another-secret!")
    for mode in ("legacy", "auto"):
        await sdk_refused(ctx, "no token", None, mode)
        await sdk_refused(ctx, "a token with a bad signature", {"Authorization": f"Bearer {bad_sig}"}, mode)

    no_error = f'Bearer resource_metadata="{ctx.prm_url}", scope="{SCOPE}"'
    async with raw_client() as http:
        r = await http.post(ctx.url, json=INIT, headers=MCP_HEADERS)
        check("[raw] POST without a token: 401", r.status_code == 401, f"{r.status_code} {r.text[:200]}")
        got = r.headers.get("www-authenticate")
        check(f"[raw] no token: WWW-Authenticate is exactly {no_error}", got == no_error, f"got {got!r}")
        check("[raw] no token: exactly one WWW-Authenticate header",
              len(r.headers.get_list("www-authenticate")) == 1, f"{r.headers.get_list('www-authenticate')}")
        check("[raw] no token: the body is a JSON-RPC error", _is_jsonrpc_error(r), f"{r.text[:200]}")

        now = int(time.time())
        refused = [
            ("a bad signature", bad_sig),
            ("alg none", ctx.token(alg="none")),
            ("an expired token", mint({**claims_for(ctx.issuer, ctx.url, "alice"), "exp": now - 300, "iat": now - 900})),
            ("a wrong audience", mint(claims_for(ctx.issuer, "http://127.0.0.1:1/other", "alice"))),
            ("a wrong issuer", mint(claims_for("http://127.0.0.1:1", ctx.url, "alice"))),
            ("an unknown kid", ctx.token(kid="nope")),
            ("not a JWT", "not-a-jwt"),
        ]
        for label, token in refused:
            r = await http.post(ctx.url, json=INIT, headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"})
            got = r.headers.get("www-authenticate", "")
            parsed = parse_challenge(got)
            ok = (
                r.status_code == 401
                and parsed is not None
                and parsed[0] == "Bearer"
                and parsed[1].get("error") == "invalid_token"
                and parsed[1].get("resource_metadata") == ctx.prm_url
                and parsed[1].get("scope") == SCOPE
                and set(parsed[1]) <= {"error", "error_description", "resource_metadata", "scope"}
                and got.startswith('Bearer error="invalid_token"')
            )
            check(f'[raw] {label}: 401, Bearer error="invalid_token", resource_metadata="{ctx.prm_url}", '
                  f'scope="{SCOPE}"', ok, f"{r.status_code} WWW-Authenticate: {got!r}")
            check(f"[raw] {label}: the token is not echoed back", token not in r.text and token not in got,
                  r.text[:200])

        # More claim rules: nbf in the future is refused (RFC 7519 4.1.5); an aud array that
        # contains the resource is accepted (RFC 7519 4.1.3).
        r = await http.post(ctx.url, json=INIT, headers={**MCP_HEADERS, "Authorization": "Bearer " + mint(
            {**claims_for(ctx.issuer, ctx.url, "alice"), "nbf": now + 600})})
        check("[raw] a token with nbf 10 minutes ahead: 401 invalid_token", r.status_code == 401
              and 'error="invalid_token"' in r.headers.get("www-authenticate", ""),
              f"{r.status_code} {r.headers.get('www-authenticate')!r}")
        r = await http.post(ctx.url, json=INIT, headers={**MCP_HEADERS, "Authorization": "Bearer " + mint(
            {**claims_for(ctx.issuer, ctx.url, "alice"), "aud": ["http://127.0.0.1:1/other", ctx.url]})})
        check("[raw] a token whose aud is an array containing the resource: 200", r.status_code == 200,
              f"{r.status_code} {r.headers.get('www-authenticate')!r}")

        # RFC 6750 3.1: a request that "attempted using an unsupported authentication method"
        # lacks authentication information, and the challenge SHOULD NOT carry an error code.
        r = await http.post(ctx.url, json=INIT, headers={**MCP_HEADERS, "Authorization": "Basic YWxpY2U6cHc="})
        got = r.headers.get("www-authenticate")
        check("[raw] Authorization: Basic ...: 401 naming the resource metadata",
              r.status_code == 401 and f'resource_metadata="{ctx.prm_url}"' in (got or ""), f"{r.status_code} {got!r}")
        check("[raw] Authorization: Basic ...: the no-token challenge, without error= (RFC 6750 3.1 SHOULD NOT)",
              got == no_error, f"got {got!r}")

        # Browser-based clients: the preflight needs no token, and the 401 exposes its challenge.
        origin = {"Origin": ctx.origin}
        r = await http.options(ctx.url, headers={**origin, "Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "authorization, content-type"})
        allowed = [h.strip().lower() for h in r.headers.get("access-control-allow-headers", "").split(",")]
        check("[raw] CORS preflight of the MCP endpoint without a token: 204 allowing authorization",
              r.status_code == 204 and "authorization" in allowed, f"{r.status_code} {dict(r.headers)}")
        r = await http.post(ctx.url, json=INIT, headers={**MCP_HEADERS, **origin})
        exposed = [h.strip().lower() for h in r.headers.get("access-control-expose-headers", "").split(",")]
        check("[raw] a 401 to an allowed Origin exposes WWW-Authenticate (Access-Control-Expose-Headers)",
              r.status_code == 401 and r.headers.get("access-control-allow-origin") == ctx.origin
              and "www-authenticate" in exposed, f"{r.status_code} {dict(r.headers)}")

        # GET (stream) and DELETE need the token too.
        for method in ("GET", "DELETE"):
            r = await http.request(method, ctx.url, headers={"Accept": "text/event-stream"})
            check(f"[raw] {method} {ctx.url} without a token: 401 with the no-token challenge",
                  r.status_code == 401 and r.headers.get("www-authenticate") == no_error,
                  f"{r.status_code} {r.headers.get('www-authenticate')!r}")

        # A token in the query string is no credential (bearer_methods_supported: [header]): the
        # challenge is the no-token one.
        good = ctx.token()
        r = await http.post(ctx.url + "?" + urlencode({"access_token": good}), json=INIT, headers=MCP_HEADERS)
        check("[raw] a valid token in the query string only: 401 with the no-token challenge",
              r.status_code == 401 and r.headers.get("www-authenticate") == no_error,
              f"{r.status_code} {r.headers.get('www-authenticate')!r}")

        # RFC 9110 11.1: the auth scheme is case-insensitive.
        for scheme in ("Bearer", "bearer", "BEARER"):
            r = await http.post(ctx.url, json=INIT, headers={**MCP_HEADERS, "Authorization": f"{scheme} {good}"})
            check(f"[raw] Authorization: {scheme} <valid token>: 200", r.status_code == 200,
                  f"{r.status_code} {r.headers.get('www-authenticate')!r} {r.text[:200]}")

        # A session is bound to its principal, and its id is no credential.
        r = await http.post(ctx.url, json=INIT, headers={**MCP_HEADERS, "Authorization": f"Bearer {good}"})
        sid = r.headers.get("mcp-session-id")
        if check("[raw] initialize with a valid token: 200 with Mcp-Session-Id", r.status_code == 200 and bool(sid),
                 f"{r.status_code} {dict(r.headers)}"):
            base = {**MCP_HEADERS, "Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            await http.post(ctx.url, json=note, headers={**base, "Authorization": f"Bearer {good}"})
            listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
            r = await http.post(ctx.url, json=listing, headers={**base, "Authorization": f"Bearer {good}"})
            check("[raw] same session, same principal: tools/list 200", r.status_code == 200, f"{r.status_code}")
            r = await http.post(ctx.url, json=listing, headers=base)
            check("[raw] same session, no token: 401 with the no-token challenge",
                  r.status_code == 401 and r.headers.get("www-authenticate") == no_error,
                  f"{r.status_code} {r.headers.get('www-authenticate')!r}")
            other = ctx.token("mallory")
            r = await http.post(ctx.url, json=listing, headers={**base, "Authorization": f"Bearer {other}"})
            check("[raw] same session, another principal's valid token: refused (404, session not found)",
                  r.status_code == 404, f"{r.status_code} {r.text[:200]}")
            r = await http.delete(ctx.url, headers=base)
            check("[raw] DELETE of the session without a token: 401", r.status_code == 401, f"{r.status_code}")
            r = await http.delete(ctx.url, headers={**base, "Authorization": f"Bearer {other}"})
            check("[raw] DELETE of the session with another principal's token: refused (404)",
                  r.status_code == 404, f"{r.status_code}")
            r = await http.post(ctx.url, json=listing, headers={**base, "Authorization": f"Bearer {good}"})
            check("[raw] the session survived both DELETEs", r.status_code == 200, f"{r.status_code} {r.text[:200]}")
            r = await http.delete(ctx.url, headers={**base, "Authorization": f"Bearer {good}"})
            check("[raw] DELETE by its own principal: 204", r.status_code == 204, f"{r.status_code}")


def _is_jsonrpc_error(r: httpx2.Response) -> bool:
    try:
        body = r.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("jsonrpc") == "2.0" and isinstance(body.get("error"), dict)


async def section_oauth(ctx: Ctx, fake: FakeAS, mode: str) -> None:
    """One fresh OAuthClientProvider, then a second session reusing its stored token."""
    p = f"[oauth {mode}]"
    log: list[dict[str, Any]] = []
    pending: dict[str, AuthorizationCodeResult] = {}
    seen_auth_urls: list[str] = []

    async def redirect_handler(authorization_url: str) -> None:
        # The "browser": GET the authorization endpoint (which approves at once) and read the redirect.
        seen_auth_urls.append(authorization_url)
        async with httpx2.AsyncClient(transport=LoggingTransport(log, "redirect_handler"), trust_env=False,
                                      timeout=10.0) as browser:
            r = await browser.get(authorization_url, follow_redirects=False)
        if r.status_code != 302:
            raise RuntimeError(f"authorization endpoint answered {r.status_code}: {r.text}")
        loc = urlparse(r.headers["location"])
        q = {k: v[0] for k, v in parse_qs(loc.query).items()}
        pending["result"] = AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))

    async def callback_handler() -> AuthorizationCodeResult:
        return pending.pop("result")

    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=ctx.url,
        client_metadata=OAuthClientMetadata(
            client_name="portcullis conformance auth leg",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code"],
            response_types=["code"],
            token_endpoint_auth_method="client_secret_post",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    issued_before = len(fake.issued)
    errors_before = len(fake.errors)

    def http_client(tag: str) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(auth=provider, transport=LoggingTransport(log, tag), trust_env=False,
                                  timeout=httpx2.Timeout(30.0, read=300.0))

    tools: list[str] = []
    call_text: list[str] = []
    error: str | None = None
    try:
        http = http_client("mcp client")
        async with http, Client(streamable_http_client(ctx.url, http_client=http), mode=mode) as client:
            tools = sorted(t.name for t in (await client.list_tools()).tools)
            call_text = texts(await client.call_tool("secret_word", {}))
    except Exception as e:  # noqa: BLE001
        error = f"{type(e).__name__}: {e}"
        if not isinstance(e, MCPError):
            error += "\n" + traceback.format_exc()

    issued = fake.issued[issued_before:]
    token_names = {t["token"]: "token issued by the fake AS" for t in issued}
    print_log(f"OAuthClientProvider, fresh, mode={mode}", log, token_names)
    for e in fake.errors[errors_before:]:
        print(f"  fake AS refused: {e}", flush=True)

    check(f"{p} the OAuth-authenticated session ran (tools/list, tools/call)", error is None, error or "")
    check(f"{p} tools/list through the gateway is echo, hello, secret_word",
          tools == ["echo", "hello", "secret_word"], f"got {tools}")
    check(f"{p} secret_word returns 'portcullis'", call_text == ["portcullis"], f"got {call_text}")

    gw = [e for e in log if e["url"].startswith(ctx.url)]
    first = log[0] if log else None
    check(f"{p} first request: POST {ctx.url} without Authorization answered 401",
          first is not None and first["method"] == "POST" and first["url"] == ctx.url
          and first["authorization"] is None and first["status"] == 401, f"first: {first}")
    challenge = parse_challenge(first["www_authenticate"] or "") if first else None
    rm = challenge[1].get("resource_metadata") if challenge else None
    check(f"{p} that 401 named resource_metadata={ctx.prm_url}", rm == ctx.prm_url, f"challenge: {first and first['www_authenticate']!r}")
    nxt = log[1] if len(log) > 1 else None
    check(f"{p} next request: GET of exactly the resource_metadata URL from the 401, answered 200",
          nxt is not None and rm is not None and nxt["method"] == "GET" and nxt["url"] == rm and nxt["status"] == 200,
          f"next: {nxt}")

    def find(method: str, url: str) -> int | None:
        for i, e in enumerate(log):
            if e["method"] == method and e["url"].split("?")[0] == url:
                return i
        return None

    steps = [
        ("GET", f"{fake.issuer}/.well-known/oauth-authorization-server", 200, "RFC 8414 metadata"),
        ("POST", f"{fake.issuer}/register", 201, "dynamic client registration"),
        ("GET", f"{fake.issuer}/authorize", 302, "authorization (redirect_handler)"),
        ("POST", f"{fake.issuer}/token", 200, "token"),
    ]
    last = 1
    for method, url, status, what in steps:
        i = find(method, url)
        check(f"{p} then {what}: {method} {url} -> {status}",
              i is not None and i > last and log[i]["status"] == status,
              f"index {i} after {last}: {log[i] if i is not None else 'not requested'}")
        last = i if i is not None else last
    check(f"{p} the fake AS refused nothing (PKCE S256, resource, redirect_uri, client secret all verified)",
          len(fake.errors) == errors_before, "; ".join(fake.errors[errors_before:]))
    check(f"{p} exactly one token issued, for resource {ctx.url} and scope {SCOPE}",
          len(issued) == 1 and issued[0]["resource"] == ctx.url and issued[0]["scope"] == SCOPE, f"{issued}")
    if seen_auth_urls:
        q = {k: v[0] for k, v in parse_qs(urlparse(seen_auth_urls[0]).query).items()}
        check(f"{p} authorization request: scope from the 401 challenge ({SCOPE}), resource {ctx.url}, S256",
              q.get("scope") == SCOPE and q.get("resource") == ctx.url and q.get("code_challenge_method") == "S256",
              f"{q}")
    after = [e for e in gw if log.index(e) > (last or 0)]
    token = issued[0]["token"] if issued else None
    check(f"{p} after the token: every gateway request carried it and none was refused",
          bool(after) and all(e["authorization"] == f"Bearer {token}" and e["status"] not in (401, 403) for e in after),
          f"{[(e['method'], e['what'], e['status'], bool(e['authorization'])) for e in after]}")
    check(f"{p} the first retried request is the one that got 401 (same JSON-RPC method)",
          bool(after) and first is not None and after[0]["what"] == first["what"] and after[0]["status"] == 200,
          f"first={first and first['what']} retried={after[0]['what'] if after else None}")

    # A second session with the same provider: the stored token is reused, no 401, no AS traffic.
    if token is None:
        return
    reuse_log_start = len(log)
    error = None
    try:
        http = http_client("mcp client, 2nd session")
        other = "legacy" if mode == "auto" else "auto"
        async with http, Client(streamable_http_client(ctx.url, http_client=http), mode=other) as client:
            tools = sorted(t.name for t in (await client.list_tools()).tools)
    except Exception as e:  # noqa: BLE001
        error = f"{type(e).__name__}: {e}"
    again = log[reuse_log_start:]
    print_log(f"same provider, second session, mode={other}", again, token_names)
    check(f"{p} second session with the stored token: tools listed, no 401, no request to the AS",
          error is None and tools == ["echo", "hello", "secret_word"]
          and all(e["url"].startswith(ctx.url) and e["status"] not in (401, 403)
                  and e["authorization"] == f"Bearer {token}" for e in again),
          error or f"{[(e['method'], e['url'], e['status']) for e in again]}")


async def section_pkce_selftest(fake: FakeAS, ctx: Ctx) -> None:
    """The fake AS's own PKCE check is real: a wrong verifier is refused (so the flow above proves S256)."""
    before = len(fake.errors)
    async with raw_client() as http:
        reg = (await http.post(f"{fake.issuer}/register", json={"redirect_uris": [REDIRECT_URI],
                                                                  "token_endpoint_auth_method": "none"})).json()
        verifier = secrets.token_urlsafe(48)
        challenge = b64u(hashlib.sha256(verifier.encode()).digest())
        q = {"response_type": "code", "client_id": reg["client_id"], "redirect_uri": REDIRECT_URI, "state": "s",
             "code_challenge": challenge, "code_challenge_method": "S256", "resource": ctx.url, "scope": SCOPE}
        results = []
        for v in (secrets.token_urlsafe(48), verifier):
            r = await http.get(f"{fake.issuer}/authorize", params=q)
            code = parse_qs(urlparse(r.headers.get("location", "")).query).get("code", [""])[0]
            t = await http.post(f"{fake.issuer}/token", data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                "client_id": reg["client_id"], "code_verifier": v, "resource": ctx.url})
            results.append(t.status_code)
        check("fake AS self-test: a wrong PKCE verifier is refused, the right one accepted",
              results == [400, 200], f"token statuses {results}; AS refusals: {fake.errors[before:]}")
        del fake.errors[before:]  # the deliberate refusal is not an error of the flows below


async def main(url: str, as_port: int) -> None:
    ctx = Ctx(url, as_port)
    sections: list[tuple[str, Any]] = [
        ("config and minted tokens", lambda: section_config(ctx)),
        ("protected resource metadata", lambda: section_prm(ctx)),
        ("bearer auto", lambda: section_bearer(ctx, "auto")),
        ("bearer legacy", lambda: section_bearer(ctx, "legacy")),
        ("refused", lambda: section_refused(ctx)),
    ]
    for name, run in sections:
        await run_section(name, run)
    with FakeAS(as_port, url) as fake:
        await run_section("fake AS self-test", lambda: section_pkce_selftest(fake, ctx))
        for mode in ("legacy", "auto"):
            await run_section(f"oauth {mode}", lambda m=mode: section_oauth(ctx, fake, m))


async def run_section(name: str, run: Any) -> None:
    try:
        await asyncio.wait_for(run(), SECTION_TIMEOUT_S)
    except Exception as e:  # noqa: BLE001 - any crash of a section is one failed check
        detail = f"{type(e).__name__}: {e}"
        if not isinstance(e, (MCPError, asyncio.TimeoutError)):
            detail += "\n" + traceback.format_exc()
        check(f"[{name}] section ran to completion", False, detail)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: auth/client.py URL AS_PORT")
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
