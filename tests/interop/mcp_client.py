"""Interop: the official Python MCP SDK (PyPI `mcp`) against Hangar's MCP endpoint.

`mcp.client.auth.OAuthClientProvider` (an httpx2.Auth) on the httpx2 client handed to
`streamable_http_client`, with `ClientSession` on top. The SDK does the OAuth work itself: 401 ->
protected-resource metadata -> AS metadata -> dynamic client registration -> authorization URL (PKCE
S256 + resource) -> token. Only the browser is simulated: `redirect_handler` POSTs the consent to that
exact URL with the admin's Coder-Session-Token header (spec 03 §5.3) and captures code/state/iss from
the 302; `callback_handler` hands them back. Then initialize, tools/list, tools/call, and a refresh:
the provider refreshes when its access token has expired, so the test moves the provider's expiry
clock into the past (standing in for an hour passing) and calls the tool again.

Env: HANGAR_URL (loopback). Every request has a timeout; nothing but HANGAR_URL is contacted.
"""

import json
import os
import sys
import time
import traceback
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import httpx2
from pydantic import AnyUrl

from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from checks import ADMIN, BASE, MCP, CheckFailed, check, origin, step  # noqa: E402

REDIRECT = "http://localhost:8767/callback"
TIMEOUT = 10.0
TOOL = "coder_get_authenticated_user"


TRACE: list[str] = []


def describe(request) -> str:
    line = f"{request.method} {request.url.path}"
    if request.url.query:
        query = request.url.query
        line += "?" + "&".join(parse_qs(query.decode() if isinstance(query, bytes) else query))
    ctype = request.headers.get("content-type", "")
    try:
        body = request.content
    except Exception:  # noqa: BLE001 - a streamed body that was not read
        body = b""
    if body and "x-www-form-urlencoded" in ctype:
        form = parse_qs(body.decode())
        line += " form{" + ",".join(form) + "}"
        for k in ("grant_type", "resource", "redirect_uri", "scope"):
            if k in form:
                line += f" {k}={form[k][0]}"
    elif body and "json" in ctype:
        try:
            j = json.loads(body)
            line += f" jsonrpc {j['method']}" if isinstance(j, dict) and "method" in j else " json" + json.dumps(j, separators=(",", ":"))
        except ValueError:
            line += " body"
    if "authorization" in request.headers:
        line += " auth=" + request.headers["authorization"].split(" ")[0]
    if "coder-session-token" in request.headers:
        line += " Coder-Session-Token"
    return line


async def guard(request):
    if origin(request.url) != origin(BASE):
        raise CheckFailed(f"refusing to contact {request.url}: only {BASE} is allowed")


async def record(response):
    TRACE.append(f"{describe(response.request)} -> {response.status_code}")


class MemoryStorage:
    """TokenStorage kept in memory."""

    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self.token_writes = 0

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens
        self.token_writes += 1

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


class Browser:
    """The logged-in user who clicks Allow: a header-authenticated POST to the authorization URL."""

    def __init__(self, http: httpx.AsyncClient, admin_token: str):
        self.http = http
        self.admin_token = admin_token
        self.authorizations = 0
        self.result: AuthorizationCodeResult | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorizations += 1
        u = urlsplit(authorization_url)
        q = parse_qs(u.query)
        step(f"SDK asks to open {u.scheme}://{u.netloc}{u.path} ({', '.join(q)})")
        check(origin(authorization_url) == origin(BASE) and u.path == "/oauth2/authorize", "authorization URL is A/oauth2/authorize", authorization_url)
        check(q.get("response_type") == ["code"], "response_type=code")
        check(q.get("code_challenge_method") == ["S256"] and len(q.get("code_challenge", [""])[0]) >= 43, "PKCE S256 challenge")
        check(q.get("redirect_uri") == [REDIRECT], "redirect_uri is the registered one", q.get("redirect_uri"))
        check(q.get("resource") == [MCP], "resource is the MCP URL from the PRM", q.get("resource"))
        check(bool(q.get("state")), "state sent")
        r = await self.http.post(authorization_url, headers={"Coder-Session-Token": self.admin_token}, follow_redirects=False)
        check(r.status_code == 302, "consent POST -> 302", f"{r.status_code} {r.text[:300]}")
        location = r.headers.get("location", "")
        check(location.startswith(REDIRECT), "redirect to the callback", location)
        lq = parse_qs(urlsplit(location).query)
        check("error" not in lq, "no error in the redirect", location)
        check(lq.get("state") == q["state"], "state round-trips")
        check(lq.get("iss") == [BASE], "RFC 9207 iss = issuer", lq.get("iss"))
        check(bool(lq.get("code")), "code in the redirect")
        self.result = AuthorizationCodeResult(code=lq["code"][0], state=lq["state"][0], iss=lq["iss"][0])

    async def callback_handler(self) -> AuthorizationCodeResult:
        if self.result is None:
            raise CheckFailed("callback_handler called before the consent was given")
        result, self.result = self.result, None
        return result


async def call_whoami(session: ClientSession, what: str):
    result = await session.call_tool(TOOL, {})
    check(not result.is_error, f"{what}: tools/call {TOOL} succeeded", result)
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    check(len(texts) >= 1, f"{what}: result has a text item", result)
    user = json.loads(texts[0])
    check(user.get("username") == ADMIN["username"], f"{what}: result is the admin user", user.get("username"))


async def main():
    hooks = {"request": [guard], "response": [record]}
    async with httpx.AsyncClient(timeout=TIMEOUT, trust_env=False, event_hooks=hooks) as http:
        step("create the first user and log in")
        r = await http.post(BASE + "/api/v2/users/first", json=ADMIN)
        check(r.status_code == 201, "POST /api/v2/users/first -> 201", f"{r.status_code} {r.text[:300]}")
        r = await http.post(BASE + "/api/v2/users/login", json={"email": ADMIN["email"], "password": ADMIN["password"]})
        check(r.status_code in (200, 201), "POST /api/v2/users/login", f"{r.status_code} {r.text[:300]}")
        admin_token = r.json()["session_token"]

        storage = MemoryStorage()
        browser = Browser(http, admin_token)
        provider = OAuthClientProvider(
            server_url=MCP,
            client_metadata=OAuthClientMetadata(
                client_name="hangar-interop-python",
                redirect_uris=[AnyUrl(REDIRECT)],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
            ),
            storage=storage,
            redirect_handler=browser.redirect_handler,
            callback_handler=browser.callback_handler,
        )
        mcp_http = httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(TIMEOUT), trust_env=False, event_hooks=hooks)

        step("connect: 401 -> PRM -> AS metadata -> DCR -> authorize -> token, all inside the SDK")
        async with mcp_http, streamable_http_client(MCP, http_client=mcp_http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                check(init.server_info.name == "hangar", "server name is hangar", init.server_info)
                check(storage.client_info is not None and bool(storage.client_info.client_id), "dynamic client registration stored a client_id")
                check(storage.client_info.token_endpoint_auth_method in (None, "client_secret_basic"),
                      "DCR without a method -> server default client_secret_basic", storage.client_info.token_endpoint_auth_method)
                check(bool(storage.client_info.client_secret), "confidential client got a secret")
                first = storage.tokens
                check(first is not None and bool(first.access_token) and bool(first.refresh_token), "access and refresh tokens stored")
                check(browser.authorizations == 1, "one consent", browser.authorizations)

                tools = await session.list_tools()
                names = [t.name for t in tools.tools]
                check(TOOL in names, f"tools/list includes {TOOL}", names)
                await call_whoami(session, "first token")

                step("refresh: the provider's access token expires (expiry moved into the past)")
                ctx = getattr(provider, "context", None)
                check(ctx is not None and hasattr(ctx, "token_expiry_time"), "provider exposes context.token_expiry_time (SDK internals)")
                ctx.token_expiry_time = time.time() - 1
                await call_whoami(session, "after refresh")
                second = storage.tokens
                check(second.access_token != first.access_token, "SDK stored a new access token")
                check(second.refresh_token and second.refresh_token != first.refresh_token, "refresh token rotated")
                check(browser.authorizations == 1, "no second consent", browser.authorizations)

                r = await http.post(MCP, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
                                    headers={"Authorization": f"Bearer {first.access_token}", "Accept": "application/json, text/event-stream"})
                check(r.status_code == 401, "old access token on MCP -> 401", r.status_code)
                check("invalid_token" in r.headers.get("www-authenticate", ""), "old token challenge says invalid_token", r.headers.get("www-authenticate"))
                await call_whoami(session, "refreshed token")
    print("HTTP requests made, in order:")
    for line in TRACE:
        print("  " + line)
    print("mcp_client.py: all checks passed")


def flatten(exc):
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            yield from flatten(sub)
    else:
        yield exc


async def bounded():
    with anyio.fail_after(100):
        await main()


if __name__ == "__main__":
    try:
        anyio.run(bounded)
    except BaseException as top:  # noqa: BLE001
        if isinstance(top, SystemExit):
            raise
        errors = list(flatten(top))
        for e in errors:
            if isinstance(e, CheckFailed):
                print(f"FAIL: {e}", file=sys.stderr)
            elif isinstance(e, TimeoutError):
                print("FAIL: mcp_client.py did not finish within 100 s", file=sys.stderr)
            else:
                print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
                traceback.print_exception(e, file=sys.stderr)
        print("HTTP requests made, in order:", file=sys.stderr)
        for line in TRACE:
            print("  " + line, file=sys.stderr)
        sys.exit(1)
