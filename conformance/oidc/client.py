"""The oidc leg: portcullis between the official Python MCP client (mcp==2.3.0) and a real
authorization server, `oidc-provider` (oidc/provider.mjs), with RFC 8693 token exchange to a
backend written with the Python SDK (oidc/backend.py).

Usage: OIDC_STS_SECRET=... python oidc/client.py GATEWAY_URL ISSUER BACKEND_URL

The gateway serves oidc/gateway.yaml: JWT authentication with ISSUER's JWKS (`uri`), RFC 9728
metadata naming ISSUER, and one backend reached with a `tokenExchange` scheme (client
`portcullis`, secret OIDC_STS_SECRET, audience and resource BACKEND_URL). Sections:

  discovery    no token: 401 and its challenge; the PRM document; the provider's RFC 8414
               metadata (token exchange grant listed) and JWKS; the gateway fetched that JWKS.
  oauth        the SDK's OAuthClientProvider with no token, against the real provider: every
               request of the flow is logged (a wrapping httpx2 transport, printed as REQ lines)
               and checked in order (401, PRM, AS metadata, registration, authorization through
               the provider's login and consent interactions, token), then MCP calls with the
               issued token. A second session reuses the stored token.
  exchange     what the backend saw through the gateway (its `whoami` tool): the caller's `sub`,
               the backend's `aud`, the gateway's client and `act`, a token that is not the
               caller's own (jti and SHA-256 differ), matched jti by jti to the exchange the
               provider recorded for this caller token; one exchange per caller token.
  sts          the provider's exchange grant itself, called directly with the gateway's client:
               a good exchange, and refusals (bad secret, tampered subject token, a subject token
               for another audience, an unknown target, a wrong subject_token_type), so that the
               checks above do not rest on a grant that accepts anything.
  backend      the backend's own check refuses the caller's token (a marked probe).
  rotation     POST /admin/rotate on the provider (new signing key first, old key kept): a new
               OAuth flow gets a token signed by the new key; the gateway refuses it only until it
               fetched the JWKS again (polled, bounded), then it and the old token both work, and
               the backend's token is signed by the new key.
  retirement   rotate again and drop the first key: a token from the third key is accepted after
               the gateway's refetch, and the first token is then refused (401 invalid_token): the
               gateway dropped the retired key and its cached verification.
  sts down     POST /admin/exchanges?refuse=1, and a new caller token: on the 2026-07-28 wire the
               backend is left out of tools/list and a call to whoami is an isError result naming
               the scheme and the provider's error; on the 2025 wire initialize is a 502 JSON-RPC
               error; neither leaks the token or the secret. Once exchanges are allowed again the
               same caller gets through.
  census       every request the backend accepted carried a token issued by an exchange for
               the gateway (jti in the provider's record), none was refused, the caller's own
               token never reached it; the provider refused no exchange of the gateway.

Each check prints a PASS or FAIL line. The last line is `N passed, M failed`; the exit status is
non-zero when M > 0.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote_plus, urljoin, urlparse

import httpx2

from mcp import Client, MCPError
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"

USER = "alice"
SCOPE = "mcp.tools"
GATEWAY_CLIENT_ID = "portcullis"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
REDIRECT_URI = "http://127.0.0.1/callback"  # never contacted: the redirect handler stops at it
SECTION_TIMEOUT_S = 30.0
ROTATION_TIMEOUT_S = 45.0
REFETCH_BOUND_S = 25.0  # the gateway refetches on an unknown kid at most once per 10 s
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "oidc-leg-probe", "version": "1"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}

passed = 0
failed = 0


def check(name: str, ok: bool, detail: Any = "") -> bool:
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name}{': ' + str(detail) if detail != '' else ''}", flush=True)
    return ok


def info(line: str) -> None:
    print(f"  {line}", flush=True)


def texts(result: Any) -> list[str]:
    return [c.text for c in (result.content or []) if getattr(c, "type", None) == "text"]


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, payload) of a compact JWS, unverified (the verifiers are the gateway and backend)."""
    def seg(s: str) -> dict[str, Any]:
        return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    h, p, _ = token.split(".")
    return seg(h), seg(p)


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def challenge_params(value: str | None) -> dict[str, str] | None:
    """`Bearer k="v", k2="v2"` -> {k: v, k2: v2} (quoted values without escapes, as the gateway writes them)."""
    if not value or not value.startswith("Bearer"):
        return None
    out: dict[str, str] = {}
    for part in value[len("Bearer"):].split(","):
        k, sep, v = part.strip().partition("=")
        if not sep:
            return None
        out[k.strip().lower()] = v.strip().strip('"')
    return out


# ---- a transport that records every request an httpx2 client sends ------------------------------


class LoggingTransport(httpx2.AsyncBaseTransport):
    def __init__(self, log: list[dict[str, Any]], tag: str) -> None:
        self._inner = httpx2.AsyncHTTPTransport(trust_env=False)
        self._log = log
        self._tag = tag

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        entry: dict[str, Any] = {"tag": self._tag, "method": request.method, "url": str(request.url),
                                 "authorization": request.headers.get("authorization"), "what": _what(request)}
        self._log.append(entry)
        try:
            response = await self._inner.handle_async_request(request)
        except Exception as e:
            entry["status"] = type(e).__name__
            raise
        entry["status"] = response.status_code
        entry["www_authenticate"] = response.headers.get("www-authenticate")
        entry["location"] = response.headers.get("location")
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _what(request: httpx2.Request) -> str:
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
            return "registration " + json.dumps({k: msg[k] for k in ("grant_types", "token_endpoint_auth_method", "scope")
                                                 if k in msg})
        return "json"
    if ctype.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode())
        shown = {k: v[0] for k, v in form.items() if k in ("grant_type", "resource")}
        return "form " + json.dumps(shown)
    return ctype


def brief(e: dict[str, Any] | None) -> str:
    """A request log entry for a FAIL line, without its token."""
    if not e:
        return "no request"
    auth = e.get("authorization")
    kind = "no Authorization" if auth is None else auth.split(" ")[0] + " <...>"
    return f"{e['method']} {e['url'].split('?')[0]} ({e['what']}) [{kind}] -> {e.get('status')}"


def print_log(title: str, log: list[dict[str, Any]], names: dict[str, str]) -> None:
    info(f"request log ({title}):")
    for i, e in enumerate(log, 1):
        auth = e["authorization"]
        if auth is None:
            shown = "no Authorization"
        elif auth.startswith("Bearer ") and auth[7:] in names:
            shown = f"Bearer <{names[auth[7:]]}>"
        else:
            shown = auth.split(" ")[0] + " <...>"
        line = f"REQ {i:2d} [{e['tag']}] {e['method']} {e['url'].split('?')[0]}"
        if e["what"]:
            line += f" ({e['what']})"
        line += f" [{shown}] -> {e.get('status')}"
        if e.get("www_authenticate"):
            line += f" WWW-Authenticate: {e['www_authenticate']}"
        if e.get("location"):
            line += f" Location: {e['location'].split('?')[0]}"
        info(line)


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


# ---- shared state --------------------------------------------------------------------------------


@dataclass
class Ctx:
    url: str
    issuer: str
    backend: str
    secret: str
    tokens: dict[str, str] = field(default_factory=dict)  # label -> caller token (T1, T2, T3)
    kids: dict[str, str] = field(default_factory=dict)  # label -> signing kid when it was issued
    whoami: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> whoami result
    selftest_jtis: set[str] = field(default_factory=set)  # exchanges made by the sts section
    deliberate_refusals: int = 0  # exchanges the sts section expects the grant to refuse
    probes: int = 0

    @property
    def prm_url(self) -> str:
        u = urlparse(self.url)
        return f"{u.scheme}://{u.netloc}/.well-known/oauth-protected-resource{u.path}"

    def names(self) -> dict[str, str]:
        return {t: f"caller token {label}" for label, t in self.tokens.items()}


def raw_client() -> httpx2.AsyncClient:
    return httpx2.AsyncClient(trust_env=False, timeout=10.0)


async def op_state(ctx: Ctx) -> dict[str, Any]:
    async with raw_client() as http:
        r = await http.get(f"{ctx.issuer}/admin/state")
        r.raise_for_status()
        return r.json()


async def rotate(ctx: Ctx, retire: list[str]) -> dict[str, Any]:
    async with raw_client() as http:
        r = await http.post(f"{ctx.issuer}/admin/rotate", params=[("retire", k) for k in retire])
        r.raise_for_status()
        return r.json()


async def whoami_with_token(ctx: Ctx, token: str, mode: str) -> dict[str, Any]:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http, Client(streamable_http_client(ctx.url, http_client=http), mode=mode) as client:
        return json.loads(texts(await client.call_tool("whoami", {}))[0])


async def post_init(token: str | None, url: str, extra: dict[str, str] | None = None) -> httpx2.Response:
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    headers.update(extra or {})
    async with raw_client() as http:
        return await http.post(url, json=INIT, headers=headers)


# ---- the SDK's OAuth client against the real provider --------------------------------------------


@dataclass
class Flow:
    log: list[dict[str, Any]]
    provider: OAuthClientProvider
    storage: MemoryStorage
    tools: list[str]
    who: dict[str, Any] | None
    error: str | None
    auth_urls: list[str]

    @property
    def token(self) -> str | None:
        return self.storage.tokens.access_token if self.storage.tokens else None


def make_provider(ctx: Ctx, log: list[dict[str, Any]], auth_urls: list[str], storage: MemoryStorage) -> OAuthClientProvider:
    pending: dict[str, AuthorizationCodeResult] = {}

    async def redirect_handler(authorization_url: str) -> None:
        # The "browser": follows the provider's redirects (its login and consent interactions,
        # which complete at once for the test user) until the redirect to REDIRECT_URI; keeps
        # the provider's cookies between hops.
        auth_urls.append(authorization_url)
        url = authorization_url
        async with httpx2.AsyncClient(transport=LoggingTransport(log, "browser"), trust_env=False,
                                      timeout=10.0) as browser:
            for _ in range(12):
                r = await browser.get(url, follow_redirects=False)
                if r.status_code not in (302, 303):
                    raise RuntimeError(f"{url.split('?')[0]} answered {r.status_code}: {r.text[:300]}")
                url = urljoin(url, r.headers["location"])
                if url.startswith(REDIRECT_URI + "?"):
                    q = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
                    if "error" in q:
                        raise RuntimeError(f"authorization error {q}")
                    pending["result"] = AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))
                    return
        raise RuntimeError("no redirect to the client after 12 hops")

    async def callback_handler() -> AuthorizationCodeResult:
        return pending.pop("result")

    return OAuthClientProvider(
        server_url=ctx.url,
        client_metadata=OAuthClientMetadata(
            client_name="portcullis conformance oidc leg",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code"],
            response_types=["code"],
            token_endpoint_auth_method="none",  # a public client: PKCE is its proof
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )


def sdk_http(provider: OAuthClientProvider, log: list[dict[str, Any]], tag: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(auth=provider, transport=LoggingTransport(log, tag), trust_env=False,
                              timeout=httpx2.Timeout(30.0, read=60.0))


async def sdk_session(provider: OAuthClientProvider, log: list[dict[str, Any]], url: str, mode: str, tag: str
                      ) -> tuple[list[str], dict[str, Any] | None, str | None]:
    tools: list[str] = []
    who = None
    error = None
    try:
        http = sdk_http(provider, log, tag)
        async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            tools = sorted(t.name for t in (await client.list_tools()).tools)
            who = json.loads(texts(await client.call_tool("whoami", {}))[0])
    except Exception as e:  # noqa: BLE001
        error = f"{type(e).__name__}: {e}"
        if not isinstance(e, MCPError):
            error += "\n" + traceback.format_exc(limit=3)
    return tools, who, error


async def oauth_flow(ctx: Ctx, mode: str) -> Flow:
    log: list[dict[str, Any]] = []
    auth_urls: list[str] = []
    storage = MemoryStorage()
    provider = make_provider(ctx, log, auth_urls, storage)
    tools, who, error = await sdk_session(provider, log, ctx.url, mode, "mcp client")
    return Flow(log, provider, storage, tools, who, error, auth_urls)


async def poll_accepted(ctx: Ctx, token: str) -> tuple[bool, float, list[str]]:
    """POST initialize with `token` until the gateway accepts it (bounded)."""
    start = time.monotonic()
    seen: list[str] = []
    while time.monotonic() - start < REFETCH_BOUND_S:
        r = await post_init(token, ctx.url)
        if r.status_code == 200:
            return True, time.monotonic() - start, seen
        params = challenge_params(r.headers.get("www-authenticate")) or {}
        desc = f"{r.status_code} error={params.get('error')}"
        if not seen or seen[-1] != desc:
            seen.append(desc)
        await asyncio.sleep(0.25)
    return False, time.monotonic() - start, seen


# ---- sections ------------------------------------------------------------------------------------


async def section_discovery(ctx: Ctx) -> None:
    r = await post_init(None, ctx.url)
    params = challenge_params(r.headers.get("www-authenticate"))
    check("[discovery] POST without a token: 401 with Bearer resource_metadata=<PRM URL>, scope=mcp.tools, no error",
          r.status_code == 401 and params is not None and params.get("resource_metadata") == ctx.prm_url
          and params.get("scope") == SCOPE and "error" not in params,
          f"{r.status_code} {r.headers.get('www-authenticate')!r}")
    async with raw_client() as http:
        r = await http.get(ctx.prm_url)
        prm = r.json() if r.status_code == 200 else {}
        check("[discovery] PRM: resource is the endpoint, authorization_servers is the provider, scope mcp.tools",
              prm.get("resource") == ctx.url and prm.get("authorization_servers") == [ctx.issuer]
              and prm.get("scopes_supported") == [SCOPE] and prm.get("bearer_methods_supported") == ["header"],
              f"{r.status_code} {prm}")
        r = await http.get(f"{ctx.issuer}/.well-known/oauth-authorization-server")
        meta = r.json() if r.status_code == 200 else {}
        check("[discovery] provider's RFC 8414 metadata: issuer, jwks_uri, registration, S256, RFC 9207 iss, "
              "token exchange grant",
              meta.get("issuer") == ctx.issuer and meta.get("jwks_uri") == f"{ctx.issuer}/jwks"
              and bool(meta.get("registration_endpoint")) and "S256" in meta.get("code_challenge_methods_supported", [])
              and meta.get("authorization_response_iss_parameter_supported") is True
              and TOKEN_EXCHANGE in meta.get("grant_types_supported", []),
              f"{r.status_code} {meta}")
        r = await http.get(f"{ctx.issuer}/jwks")
        keys = r.json().get("keys", []) if r.status_code == 200 else []
    # The gateway fetches the JWKS on its own thread at start-up, off the request path: wait for
    # that fetch (bounded) before any token is presented.
    deadline = time.monotonic() + 10.0
    while True:
        st = await op_state(ctx)
        if any("portcullis" in f["userAgent"] for f in st["jwksFetches"]) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    info(f"oidc-provider {st['version']}, signing key {st['signingKid']}")
    check("[discovery] JWKS: exactly the signing key, RSA RS256, public members only",
          [k.get("kid") for k in keys] == [st["signingKid"]] and keys[0].get("kty") == "RSA"
          and keys[0].get("alg") == "RS256" and not any(p in keys[0] for p in ("d", "p", "q", "dp", "dq", "qi")),
          f"{keys}")
    gw = [f for f in st["jwksFetches"] if "portcullis" in f["userAgent"]]
    check("[discovery] the gateway fetched the provider's JWKS at start-up (user-agent portcullis)",
          len(gw) >= 1 and gw[0]["kids"] == [st["signingKid"]], f"{st['jwksFetches']}")


async def section_oauth(ctx: Ctx) -> None:
    p = "[oauth]"
    before = await op_state(ctx)
    flow = await oauth_flow(ctx, "legacy")
    after = await op_state(ctx)
    token = flow.token
    if token:
        ctx.tokens["T1"] = token
        ctx.kids["T1"] = before["signingKid"]
    print_log("OAuthClientProvider, fresh, mode=legacy", flow.log, ctx.names())
    check(f"{p} the OAuth-authenticated session ran (tools/list, tools/call whoami)", flow.error is None, flow.error or "")
    check(f"{p} tools/list through the gateway is [whoami] (the backend's tool, unprefixed)", flow.tools == ["whoami"],
          flow.tools)

    log = flow.log
    first = log[0] if log else {}
    check(f"{p} first request: POST {ctx.url} without Authorization, answered 401",
          first.get("method") == "POST" and first.get("url") == ctx.url and first.get("authorization") is None
          and first.get("status") == 401, brief(first))
    rm = (challenge_params(first.get("www_authenticate")) or {}).get("resource_metadata")
    nxt = log[1] if len(log) > 1 else {}
    check(f"{p} next: GET of exactly the 401's resource_metadata URL, 200",
          rm == ctx.prm_url and nxt.get("method") == "GET" and nxt.get("url") == rm and nxt.get("status") == 200,
          brief(nxt))

    def find(method: str, path: str, tag: str | None = None) -> int | None:
        for i, e in enumerate(log):
            if e["method"] == method and e["url"].split("?")[0] == f"{ctx.issuer}{path}" and (tag is None or e["tag"] == tag):
                return i
        return None

    steps = [("GET", "/.well-known/oauth-authorization-server", 200, "RFC 8414 metadata of the provider"),
             ("POST", "/reg", 201, "dynamic client registration (public client, token_endpoint_auth_method none)"),
             ("GET", "/auth", 303, "authorization request (redirect handler)"),
             ("POST", "/token", 200, "authorization code exchanged at the token endpoint")]
    last = 1
    for method, path, status, what in steps:
        i = find(method, path)
        check(f"{p} then {what}: {method} {ctx.issuer}{path} -> {status}",
              i is not None and i > last and log[i]["status"] == status,
              f"index {i} after {last}: {brief(log[i]) if i is not None else 'not requested'}")
        last = i if i is not None else last

    browser = [e for e in log if e["tag"] == "browser"]
    paths = [urlparse(e["url"]).path.split("/")[1] for e in browser]
    interactions = after["interactions"][len(before["interactions"]):]
    client_id = flow.storage.client_info.client_id if flow.storage.client_info else None
    check(f"{p} the browser went through the provider's login and consent interactions (auth, interaction, auth, "
          "interaction, auth), all 303",
          paths == ["auth", "interaction", "auth", "interaction", "auth"] and all(e["status"] == 303 for e in browser),
          [(urlparse(e["url"]).path, e["status"]) for e in browser])
    check(f"{p} the provider recorded login then consent for {USER} and the registered client",
          [(i["prompt"], i["accountId"], i["clientId"]) for i in interactions]
          == [("login", USER, client_id), ("consent", USER, client_id)], interactions)
    if flow.auth_urls:
        q = {k: v[0] for k, v in parse_qs(urlparse(flow.auth_urls[0]).query).items()}
        check(f"{p} authorization request: scope {SCOPE} (from the 401), resource {ctx.url}, PKCE S256",
              q.get("scope") == SCOPE and q.get("resource") == ctx.url and q.get("code_challenge_method") == "S256", q)
    if not check(f"{p} the SDK stored an access token", token is not None):
        return
    header, claims = peek(token)
    check(f"{p} the provider's token: JWT typ at+jwt, RS256, kid = the signing key",
          header.get("typ") == "at+jwt" and header.get("alg") == "RS256" and header.get("kid") == before["signingKid"],
          header)
    check(f"{p} its claims: iss the provider, aud the gateway's resource, sub {USER}, scope {SCOPE}, client_id the "
          "registered client",
          claims.get("iss") == ctx.issuer and claims.get("aud") == ctx.url and claims.get("sub") == USER
          and claims.get("scope") == SCOPE and claims.get("client_id") == client_id,
          {k: claims.get(k) for k in ("iss", "aud", "sub", "scope", "client_id")})
    i_token = find("POST", "/token")
    later = [e for e in log[(i_token or 0) + 1:] if e["url"].startswith(ctx.url)]
    check(f"{p} after the token: every gateway request carried it and none was refused",
          bool(later) and all(e["authorization"] == f"Bearer {token}" and e["status"] not in (401, 403) for e in later),
          [(e["method"], e["what"], e["status"]) for e in later])
    if flow.who:
        ctx.whoami["T1"] = flow.who

    # A second session with the same provider: the stored token, no 401, no request to the provider.
    log2: list[dict[str, Any]] = []
    tools, who, error = await sdk_session(flow.provider, log2, ctx.url, "auto", "mcp client, 2nd session")
    print_log("same OAuthClientProvider, second session, mode=auto", log2, ctx.names())
    check(f"{p} second session (mode auto) with the stored token: whoami ran, no 401, nothing sent to the provider",
          error is None and tools == ["whoami"] and who is not None
          and all(e["url"].startswith(ctx.url) and e["status"] not in (401, 403)
                  and e["authorization"] == f"Bearer {token}" for e in log2),
          error or [(e["method"], e["url"], e["status"]) for e in log2])
    if who:
        ctx.whoami["T1 again"] = who


def exchanges_for(st: dict[str, Any], ctx: Ctx, jti: str) -> list[dict[str, Any]]:
    return [x for x in st["exchanges"] if x["subjectJti"] == jti and x["issuedJti"] not in ctx.selftest_jtis]


async def section_exchange(ctx: Ctx) -> None:
    p = "[exchange]"
    token = ctx.tokens.get("T1")
    who = ctx.whoami.get("T1")
    if not check(f"{p} the backend's whoami answered through the gateway", token is not None and who is not None):
        return
    _, caller = peek(token)
    info(f"backend saw: {json.dumps({k: who.get(k) for k in ('sub', 'aud', 'client_id', 'act', 'kid', 'jti')})}")
    check(f"{p} the backend verified the token (signature by the provider's JWKS, iss, aud, exp)", who.get("verified") is True,
          who)
    check(f"{p} sub is the caller's ({USER})", who.get("sub") == USER == caller.get("sub"), who.get("sub"))
    check(f"{p} aud is the backend ({ctx.backend}), not the gateway", who.get("aud") == ctx.backend, who.get("aud"))
    check(f"{p} issued to the gateway's client by the exchange: client_id {GATEWAY_CLIENT_ID}, act.sub {GATEWAY_CLIENT_ID}",
          who.get("client_id") == GATEWAY_CLIENT_ID and who.get("act") == {"sub": GATEWAY_CLIENT_ID},
          {k: who.get(k) for k in ("client_id", "act")})
    check(f"{p} not the caller's own token: another jti and another SHA-256",
          who.get("jti") != caller.get("jti") and who.get("token_sha256") != sha256(token),
          {"backend jti": who.get("jti"), "caller jti": caller.get("jti")})
    check(f"{p} signed by the provider's signing key of the time ({ctx.kids['T1']})", who.get("kid") == ctx.kids["T1"],
          who.get("kid"))
    st = await op_state(ctx)
    mine = exchanges_for(st, ctx, caller["jti"])
    check(f"{p} the provider recorded exactly one exchange of this caller token, by {GATEWAY_CLIENT_ID}, for "
          f"{ctx.backend}, and it issued the jti the backend saw",
          len(mine) == 1 and mine[0]["clientId"] == GATEWAY_CLIENT_ID and mine[0]["aud"] == ctx.backend
          and mine[0]["sub"] == USER and mine[0]["issuedJti"] == who.get("jti"), mine)
    again = ctx.whoami.get("T1 again", {})
    check(f"{p} the second session's backend token is the same exchanged token (the gateway's cache: one exchange "
          "per caller token)", again.get("jti") == who.get("jti"), {"first": who.get("jti"), "second": again.get("jti")})


async def section_sts(ctx: Ctx) -> None:
    """The exchange grant on oidc-provider, called directly with the gateway's client."""
    p = "[sts]"
    token = ctx.tokens.get("T1")
    if not check(f"{p} a caller token to exchange", token is not None):
        return
    st = await op_state(ctx)
    token_url = f"{ctx.issuer}/token"

    def form(**over: str) -> dict[str, str]:
        base = {"grant_type": TOKEN_EXCHANGE, "subject_token": token, "subject_token_type": ACCESS_TOKEN_TYPE,
                "requested_token_type": ACCESS_TOKEN_TYPE, "audience": ctx.backend}
        base.update(over)
        return base

    # client_secret_basic as RFC 6749 2.3.1 says: id and secret form-encoded, then Basic (the
    # secret run.sh makes has reserved characters on purpose).
    basic = "Basic " + base64.b64encode(f"{quote_plus(GATEWAY_CLIENT_ID)}:{quote_plus(ctx.secret)}".encode()).decode()
    async with raw_client() as http:
        r = await http.post(token_url, data=form(), headers={"Authorization": basic})
        body = r.json()
        issued = body.get("access_token")
        if check(f"{p} a good exchange: 200, issued_token_type access_token, token_type Bearer, expires_in <= 300",
                 r.status_code == 200 and body.get("issued_token_type") == ACCESS_TOKEN_TYPE
                 and body.get("token_type") == "Bearer" and 0 < body.get("expires_in", 0) <= 300,
                 f"{r.status_code} {({k: v for k, v in body.items() if k != 'access_token'})}"):
            h, c = peek(issued)
            ctx.selftest_jtis.add(c["jti"])
            check(f"{p} the issued token: aud {ctx.backend}, sub {USER}, client_id {GATEWAY_CLIENT_ID}, "
                  f"act.sub {GATEWAY_CLIENT_ID}, exp <= the subject's, kid the signing key",
                  c.get("aud") == ctx.backend and c.get("sub") == USER and c.get("client_id") == GATEWAY_CLIENT_ID
                  and c.get("act") == {"sub": GATEWAY_CLIENT_ID} and c.get("exp", 1 << 40) <= peek(token)[1]["exp"]
                  and h.get("kid") == st["signingKid"], {"header": h, "claims": c})

        bad = "Basic " + base64.b64encode(f"{GATEWAY_CLIENT_ID}:wrong-secret".encode()).decode()
        r = await http.post(token_url, data=form(), headers={"Authorization": bad})
        check(f"{p} a wrong client secret: 401 invalid_client", r.status_code == 401 and r.json().get("error") == "invalid_client",
              f"{r.status_code} {r.text[:200]}")

        hs, ps, sig = token.split(".")
        claims = peek(token)[1] | {"sub": "mallory"}
        forged = hs + "." + base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode() + "." + sig
        cases = [
            ("a subject token with a changed sub (signature no longer verifies)", form(subject_token=forged),
             "invalid_grant"),
            ("a subject token issued for another audience (the backend's exchanged token)",
             form(subject_token=issued or "x.y.z"), "invalid_grant"),
            ("an audience the provider does not know", form(audience="http://127.0.0.1:9/elsewhere"), "invalid_target"),
            ("two different targets (audience and resource)", form(resource="http://127.0.0.1:9/elsewhere"),
             "invalid_target"),
            ("subject_token_type id_token", form(subject_token_type="urn:ietf:params:oauth:token-type:id_token"),
             "invalid_request"),
        ]
        for what, data, error in cases:
            r = await http.post(token_url, data=data, headers={"Authorization": basic})
            ctx.deliberate_refusals += 1
            got = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            check(f"{p} refused: {what}: 400 {error}", r.status_code == 400 and got.get("error") == error,
                  f"{r.status_code} {got}")
    after = await op_state(ctx)
    check(f"{p} the provider recorded every deliberate refusal ({ctx.deliberate_refusals}) and no other",
          len(after["refusedExchanges"]) == ctx.deliberate_refusals, after["refusedExchanges"])


async def section_backend(ctx: Ctx) -> None:
    p = "[backend]"
    token = ctx.tokens.get("T1")
    if not check(f"{p} a caller token to probe with", token is not None):
        return
    r = await post_init(token, ctx.backend, {"X-Conformance-Probe": "caller-token"})
    ctx.probes += 1
    reason = r.json().get("reason", "") if r.status_code == 401 else r.text[:200]
    check(f"{p} the backend refuses the caller's own token sent to it directly (401, caller token recognised)",
          r.status_code == 401 and reason.startswith("CALLER TOKEN SEEN"), f"{r.status_code} {reason}")
    r = await post_init(None, ctx.backend, {"X-Conformance-Probe": "no-token"})
    ctx.probes += 1
    check(f"{p} the backend refuses a request without a token (401)", r.status_code == 401, r.status_code)


async def new_key_leg(ctx: Ctx, label: str, retire: list[str], mode: str) -> tuple[str | None, dict[str, Any]]:
    """Rotates the provider's key, runs a fresh OAuth flow, polls the gateway until it accepts the new token."""
    p = f"[{'retirement' if retire else 'rotation'}]"
    before = await op_state(ctx)
    rot = await rotate(ctx, retire)
    info(f"rotated: signing key {rot['signingKid']}, published {rot['kids']}, retired {rot['retired']}")
    check(f"{p} the provider now signs with a new key and publishes {rot['kids']}",
          rot["signingKid"] not in before["kids"] and rot["kids"][0] == rot["signingKid"]
          and rot["kids"][1:] == [k for k in before["kids"] if k not in retire], rot)
    async with raw_client() as http:
        jwks = (await http.get(f"{ctx.issuer}/jwks")).json()
    check(f"{p} the provider's JWKS is now {rot['kids']}", [k["kid"] for k in jwks["keys"]] == rot["kids"], jwks)

    rotated_at = time.time() * 1000
    flow = await oauth_flow(ctx, mode)
    token = flow.token
    if token:
        ctx.tokens[label] = token
        ctx.kids[label] = rot["signingKid"]
    print_log(f"OAuthClientProvider, fresh, after the rotation, mode={mode}", flow.log, ctx.names())
    if not check(f"{p} the SDK's OAuth flow got a new token from the provider", token is not None, flow.error or ""):
        return None, rot
    header, claims = peek(token)
    check(f"{p} {label} is signed by the new key ({rot['signingKid']}), sub {USER}, aud the gateway",
          header.get("kid") == rot["signingKid"] and claims.get("sub") == USER and claims.get("aud") == ctx.url, header)
    if flow.error:
        # The gateway had not fetched the new key yet when the SDK first used the token.
        refused = [e for e in flow.log if e["url"].startswith(ctx.url) and e["authorization"] == f"Bearer {token}"]
        info(f"the SDK's session with {label} failed at first ({flow.error.splitlines()[0]}); gateway answers: "
             f"{[(e['status'], (challenge_params(e.get('www_authenticate')) or {}).get('error')) for e in refused]}")
        check(f"{p} the gateway refused {label} only as an unknown key (401 invalid_token), nothing else",
              bool(refused) and all(e["status"] == 401 and (challenge_params(e.get("www_authenticate")) or {})
                                    .get("error") == "invalid_token" for e in refused),
              [(e["status"], e.get("www_authenticate")) for e in refused])
    else:
        info(f"the SDK's session with {label} ran at once (the gateway already had the new key)")
    ok, waited, seen = await poll_accepted(ctx, token)
    info(f"gateway accepted {label} after {waited:.1f} s of polling; answers before: {seen}")
    check(f"{p} the gateway accepts {label} within {REFETCH_BOUND_S:.0f} s of the rotation", ok, seen)
    st = await op_state(ctx)
    refetch = [f for f in st["jwksFetches"] if "portcullis" in f["userAgent"] and f["at"] >= rotated_at]
    check(f"{p} the gateway fetched the JWKS again after the rotation and got {rot['kids']}",
          bool(refetch) and refetch[0]["kids"] == rot["kids"], st["jwksFetches"])

    log2: list[dict[str, Any]] = []
    tools, who, error = await sdk_session(flow.provider, log2, ctx.url, "legacy" if mode == "auto" else "auto",
                                          "mcp client, 2nd session")
    check(f"{p} an SDK session with the stored {label}: whoami ran", error is None and who is not None, error or "")
    if who:
        ctx.whoami[label] = who
        mine = exchanges_for(st, ctx, claims["jti"]) or exchanges_for(await op_state(ctx), ctx, claims["jti"])
        check(f"{p} the backend saw {USER} with its own audience, in a token exchanged for {label} and signed by "
              f"the new key, never {label} itself",
              who.get("sub") == USER and who.get("aud") == ctx.backend and who.get("kid") == rot["signingKid"]
              and who.get("token_sha256") != sha256(token) and len(mine) == 1 and mine[0]["issuedJti"] == who.get("jti"),
              {"who": {k: who.get(k) for k in ("sub", "aud", "kid", "jti")}, "exchanges": mine})
    return token, rot


async def section_rotation(ctx: Ctx) -> None:
    token, _ = await new_key_leg(ctx, "T2", [], "auto")
    t1 = ctx.tokens.get("T1")
    if t1:
        try:
            who = await whoami_with_token(ctx, t1, "legacy")
            err = None
        except Exception as e:  # noqa: BLE001
            who, err = None, f"{type(e).__name__}: {e}"
        check("[rotation] T1 (the old key, still published) still works: whoami as alice",
              who is not None and who.get("sub") == USER and who.get("aud") == ctx.backend, err or who)


async def section_retirement(ctx: Ctx) -> None:
    first_kid = ctx.kids.get("T1")
    if not check("[retirement] T1's key is known", first_kid is not None):
        return
    token, rot = await new_key_leg(ctx, "T3", [first_kid], "legacy")
    if token is None:
        return
    t1, t2 = ctx.tokens.get("T1"), ctx.tokens.get("T2")
    if t1:
        r = await post_init(t1, ctx.url)
        params = challenge_params(r.headers.get("www-authenticate")) or {}
        check("[retirement] T1, signed by the retired key, is now refused: 401 invalid_token with the challenge",
              r.status_code == 401 and params.get("error") == "invalid_token"
              and params.get("resource_metadata") == ctx.prm_url, f"{r.status_code} {r.headers.get('www-authenticate')!r}")
    if t2:
        try:
            who = await whoami_with_token(ctx, t2, "auto")
            err = None
        except Exception as e:  # noqa: BLE001
            who, err = None, f"{type(e).__name__}: {e}"
        check("[retirement] T2 (the second key, still published) still works: whoami as alice",
              who is not None and who.get("sub") == USER, err or who)


async def set_exchanges_refused(ctx: Ctx, refuse: bool) -> None:
    async with raw_client() as http:
        r = await http.post(f"{ctx.issuer}/admin/exchanges", params={"refuse": "1" if refuse else "0"})
        r.raise_for_status()


async def section_sts_down(ctx: Ctx) -> None:
    """The token service refuses every exchange: the gateway must fail closed, say why, leak nothing."""
    p = "[sts down]"
    before = len((await op_state(ctx))["refusedExchanges"])
    await set_exchanges_refused(ctx, True)
    token = None
    try:
        flow = await oauth_flow(ctx, "auto")
        token = flow.token
        if not check(f"{p} the SDK's OAuth flow got a new caller token (T4)", token is not None, flow.error or ""):
            return
        ctx.tokens["T4"] = token
        # 2026-07-28 wire (stateless): the backend is left out of the lists, and a call to its tool
        # is an isError result naming the scheme and the provider's error.
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with http, Client(streamable_http_client(ctx.url, http_client=http), mode="auto") as client:
            tools = [t.name for t in (await client.list_tools()).tools]
            result = await client.call_tool("whoami", {})
        text = " ".join(texts(result))
        info(f"2026 wire: tools/list {tools}; tools/call whoami is_error={result.is_error}: {text!r}")
        check(f"{p} 2026 wire: tools/list leaves the backend out ([])", tools == [], tools)
        check(f"{p} 2026 wire: tools/call whoami is an isError result naming the scheme (onBehalf) and the "
              "provider's error (invalid_grant)",
              result.is_error is True and "onBehalf" in text and "invalid_grant" in text, text)
        # 2025 wire: initialize cannot initialize the only backend.
        r = await post_init(token, ctx.url)
        info(f"2025 wire: initialize answered {r.status_code}: {r.text[:200]}")
        check(f"{p} 2025 wire: initialize is 502 with a JSON-RPC error naming the scheme (onBehalf) and the "
              "provider's error (invalid_grant)",
              r.status_code == 502 and _is_jsonrpc_error(r) and "onBehalf" in r.text and "invalid_grant" in r.text,
              f"{r.status_code} {r.text[:300]}")
        check(f"{p} neither answer holds the caller's token or the client secret",
              all(token not in x and ctx.secret not in x for x in (text, r.text)))
    finally:
        await set_exchanges_refused(ctx, False)
        refused = len((await op_state(ctx))["refusedExchanges"]) - before
        ctx.deliberate_refusals += refused
    check(f"{p} the provider did refuse the gateway's exchanges ({refused})", refused >= 1, refused)
    ok, waited, seen = await poll_accepted(ctx, token)
    info(f"after exchanges were allowed again: initialize accepted after {waited:.1f} s; answers before: {seen}")
    check(f"{p} once the provider exchanges again, the same caller gets through (no failure kept)", ok, seen)
    try:
        who = await whoami_with_token(ctx, token, "legacy")
        err = None
    except Exception as e:  # noqa: BLE001
        who, err = None, f"{type(e).__name__}: {e}"
    check(f"{p} and whoami reports {USER} with the backend's audience", who is not None and who.get("sub") == USER
          and who.get("aud") == ctx.backend, err or who)


def _is_jsonrpc_error(r: httpx2.Response) -> bool:
    try:
        body = r.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("jsonrpc") == "2.0" and isinstance(body.get("error"), dict)


async def section_census(ctx: Ctx) -> None:
    p = "[census]"
    async with raw_client() as http:
        seen = (await http.get(f"{ctx.backend.rsplit('/', 1)[0]}/seen")).json()
    st = await op_state(ctx)
    gateway_issued = {x["issuedJti"] for x in st["exchanges"] if x["issuedJti"] not in ctx.selftest_jtis}
    caller_jtis = {peek(t)[1]["jti"] for t in ctx.tokens.values()}
    accepted = seen["accepted"]
    info(f"backend accepted {len(accepted)} request(s): "
         f"{sorted({(a['method'], a['rpc']) for a in accepted}, key=str)}; exchanges by the gateway: {len(gateway_issued)}")
    check(f"{p} the backend refused no request of the gateway and never saw a caller token "
          f"(its {ctx.probes} probes refused as expected)",
          seen["rejected"] == 0 and seen["caller_token_seen"] == 0 and seen["probes_rejected"] == ctx.probes, seen | {"accepted": len(accepted)})
    check(f"{p} every request the backend accepted (initialize, notifications, tools/list, tools/call) carried a "
          "token the provider issued to the gateway by exchange",
          bool(accepted) and all(a["jti"] in gateway_issued and a["sub"] == USER for a in accepted)
          and {"initialize", "tools/list", "tools/call"} <= {a["rpc"] for a in accepted},
          [a for a in accepted if a["jti"] not in gateway_issued])
    check(f"{p} none of them was a caller token", not any(a["jti"] in caller_jtis for a in accepted))
    by_subject = {label: len(exchanges_for(st, ctx, peek(t)[1]["jti"])) for label, t in ctx.tokens.items()}
    check(f"{p} one exchange per caller token (T1 to T4), all by {GATEWAY_CLIENT_ID} for {ctx.backend}",
          sorted(by_subject) == ["T1", "T2", "T3", "T4"] and all(n == 1 for n in by_subject.values())
          and all(x["clientId"] == GATEWAY_CLIENT_ID and x["aud"] == ctx.backend for x in st["exchanges"]),
          by_subject)
    check(f"{p} the provider refused no exchange of the gateway",
          len(st["refusedExchanges"]) == ctx.deliberate_refusals, st["refusedExchanges"])


async def run_section(name: str, run: Any, timeout: float = SECTION_TIMEOUT_S) -> None:
    started = time.monotonic()
    try:
        await asyncio.wait_for(run(), timeout)
    except Exception as e:  # noqa: BLE001 - a crashed section is one failed check
        detail = f"{type(e).__name__}: {e}"
        if not isinstance(e, (MCPError, asyncio.TimeoutError)):
            detail += "\n" + traceback.format_exc()
        check(f"[{name}] section ran to completion", False, detail)
    info(f"section {name}: {time.monotonic() - started:.1f} s")


async def main(url: str, issuer: str, backend: str, secret: str) -> None:
    ctx = Ctx(url, issuer, backend, secret)
    await run_section("discovery", lambda: section_discovery(ctx))
    await run_section("oauth", lambda: section_oauth(ctx))
    await run_section("exchange", lambda: section_exchange(ctx))
    await run_section("sts", lambda: section_sts(ctx))
    await run_section("backend", lambda: section_backend(ctx))
    await run_section("rotation", lambda: section_rotation(ctx), ROTATION_TIMEOUT_S)
    await run_section("retirement", lambda: section_retirement(ctx), ROTATION_TIMEOUT_S)
    await run_section("sts down", lambda: section_sts_down(ctx))
    await run_section("census", lambda: section_census(ctx))


if __name__ == "__main__":
    if len(sys.argv) != 4 or not os.environ.get("OIDC_STS_SECRET"):
        sys.exit("usage: OIDC_STS_SECRET=... oidc/client.py GATEWAY_URL ISSUER BACKEND_URL")
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], os.environ["OIDC_STS_SECRET"]))
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
