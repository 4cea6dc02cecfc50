"""Interop: generic OAuth2 client libraries against Hangar's authorization server (spec 03).

Drives authlib (authlib.integrations.requests_client.OAuth2Session) and requests-oauthlib
(requests_oauthlib.OAuth2Session) through the authorization-code grant with PKCE S256 and an RFC 8707
`resource`, then refresh, RFC 7009 revocation, and the resource server's audience check.
The consent is given the way a logged-in browser would, except that the approval POST carries the
admin's `Coder-Session-Token` header (spec 03 §5.3: header-authenticated POSTs skip the CSRF token).

Env: HANGAR_URL (loopback). Every request has a timeout; nothing but HANGAR_URL is contacted.
"""

import http.cookiejar as _cookiejar
import os
import sys
import traceback
from urllib.parse import parse_qs, urlsplit

# oauthlib refuses plain http unless told otherwise; the server only listens on loopback here.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.base_client.errors import OAuthError as AuthlibOAuthError  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession  # noqa: E402
from oauthlib.oauth2.rfc6749.errors import OAuth2Error as OAuthlibError  # noqa: E402
from requests_oauthlib import OAuth2Session as RequestsOAuthlibSession  # noqa: E402

from checks import ADMIN, BASE, MCP, CheckFailed, check, origin, step  # noqa: E402

TIMEOUT = 10


def no_proxy_session(session):
    # Never route loopback traffic through an HTTP(S)_PROXY from the environment.
    session.trust_env = False
    return session


class GuardedSession(requests.Session):
    """requests.Session that only talks to HANGAR_URL and always has a timeout."""

    def request(self, method, url, *args, **kwargs):
        if origin(url) != origin(BASE):
            raise CheckFailed(f"refusing to contact {url}: only {BASE} is allowed")
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(method, url, *args, **kwargs)


class GuardedAuthlibSession(AuthlibSession):
    def request(self, method, url, *args, **kwargs):
        if origin(url) != origin(BASE):
            raise CheckFailed(f"refusing to contact {url}: only {BASE} is allowed")
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(method, url, *args, **kwargs)


class GuardedRequestsOAuthlibSession(RequestsOAuthlibSession):
    def request(self, method, url, *args, **kwargs):
        if origin(url) != origin(BASE):
            raise CheckFailed(f"refusing to contact {url}: only {BASE} is allowed")
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = TIMEOUT
        return super().request(method, url, *args, **kwargs)


http = no_proxy_session(GuardedSession())
# Keep no cookies: the login's session cookie comes first in Coder's token order and would
# stand in for the bearer tokens this script checks.
http.cookies.set_policy(_cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def body_of(resp):
    try:
        return resp.json()
    except ValueError:
        return resp.text[:500]


def api(method, path, token=None, **kwargs):
    headers = kwargs.pop("headers", {})
    if token:
        headers["Coder-Session-Token"] = token
    return http.request(method, BASE + path, headers=headers, allow_redirects=False, **kwargs)


def bearer_me(access_token):
    return http.get(BASE + "/api/v2/users/me", headers={"Authorization": f"Bearer {access_token}"}, allow_redirects=False)


def setup_admin():
    step("create the first user and log in")
    r = api("POST", "/api/v2/users/first", json=ADMIN)
    check(r.status_code == 201, "POST /api/v2/users/first -> 201", f"{r.status_code} {body_of(r)}")
    r = api("POST", "/api/v2/users/login", json={"email": ADMIN["email"], "password": ADMIN["password"]})
    check(r.status_code == 201 or r.status_code == 200, "POST /api/v2/users/login", f"{r.status_code} {body_of(r)}")
    return r.json()["session_token"]


def discover():
    step("RFC 8414 authorization server metadata")
    r = api("GET", "/.well-known/oauth-authorization-server")
    check(r.status_code == 200, "GET /.well-known/oauth-authorization-server -> 200", f"{r.status_code} {body_of(r)}")
    meta = r.json()
    check(meta.get("issuer") == BASE, "issuer is the access URL", meta.get("issuer"))
    for key in ("authorization_endpoint", "token_endpoint", "revocation_endpoint"):
        check(isinstance(meta.get(key), str) and meta[key].startswith(BASE + "/"), f"{key} under the access URL", meta.get(key))
    check("S256" in meta.get("code_challenge_methods_supported", []), "S256 advertised", meta.get("code_challenge_methods_supported"))
    return meta


def create_app(admin, name, callback_url):
    step(f"create OAuth2 app {name!r} with the management API")
    r = api("POST", "/api/v2/oauth2-provider/apps", admin, json={"name": name, "callback_url": callback_url, "icon": ""})
    check(r.status_code == 201, "POST /api/v2/oauth2-provider/apps -> 201", f"{r.status_code} {body_of(r)}")
    app_id = r.json()["id"]
    r = api("POST", f"/api/v2/oauth2-provider/apps/{app_id}/secrets", admin)
    check(r.status_code == 201, "POST /api/v2/oauth2-provider/apps/{id}/secrets -> 201", f"{r.status_code} {body_of(r)}")
    secret = r.json().get("client_secret_full", "")
    check(secret.startswith("coder_"), "client_secret_full is a coder_ secret", secret[:6])
    return app_id, secret


def approve(admin, authorize_url, meta, callback_url, state):
    """Give consent: POST to the exact authorize URL the library built, header-authenticated."""
    check(authorize_url.startswith(meta["authorization_endpoint"] + "?"), "library built the URL on authorization_endpoint", authorize_url)
    q = parse_qs(urlsplit(authorize_url).query)
    missing = [k for k in ("client_id", "response_type", "redirect_uri", "state", "code_challenge", "code_challenge_method", "resource") if k not in q]
    check(not missing, "authorize URL has client_id, response_type, redirect_uri, state, code_challenge(_method), resource", missing)
    check(q["code_challenge_method"] == ["S256"], "code_challenge_method=S256", q["code_challenge_method"])
    r = http.post(authorize_url, headers={"Coder-Session-Token": admin}, allow_redirects=False)
    check(r.status_code == 302, "consent POST -> 302", f"{r.status_code} {body_of(r)}")
    location = r.headers.get("Location", "")
    lq = parse_qs(urlsplit(location).query)
    check(location.startswith(callback_url) and "error" not in lq and lq.get("code", [""])[0],
          "302 to the callback URL with a code", location)
    check(lq.get("state") == [state], "state round-trips", location)
    check(lq.get("iss") == [meta["issuer"]], "RFC 9207 iss = issuer", location)
    return location


def expect_401(resp, what, needle=None):
    check(resp.status_code == 401, f"{what} -> 401", f"{resp.status_code} {body_of(resp)}")
    if needle:
        www = resp.headers.get("WWW-Authenticate", "")
        check(needle in www, f"{what}: WWW-Authenticate has {needle}", www)


def flow_authlib(admin, meta):
    step("authlib: authorization code + PKCE S256 + resource, client_secret_basic")
    callback = "http://127.0.0.1:8765/authlib/callback"
    app_id, secret = create_app(admin, "interop-authlib", callback)
    sess = no_proxy_session(GuardedAuthlibSession(
        client_id=app_id,
        client_secret=secret,
        redirect_uri=callback,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        revocation_endpoint_auth_method="client_secret_basic",
        default_timeout=TIMEOUT,
    ))
    verifier = generate_token(64)
    url, state = sess.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, resource=BASE)
    location = approve(admin, url, meta, callback, state)
    token = sess.fetch_token(meta["token_endpoint"], authorization_response=location, state=state,
                             code_verifier=verifier, resource=BASE)
    check(token.get("token_type", "").lower() == "bearer", "token_type Bearer", token.get("token_type"))
    check(isinstance(token.get("expires_in"), int) and token["expires_in"] > 0, "expires_in is a positive integer", token.get("expires_in"))
    check(bool(token.get("refresh_token")), "refresh_token issued")
    check("scope" not in token, "no scope in the token response", token.get("scope"))

    step("authlib: the access token authenticates the API")
    r = sess.get(BASE + "/api/v2/users/me")  # the library adds the bearer header itself
    check(r.status_code == 200, "GET /api/v2/users/me via the authlib session -> 200", f"{r.status_code} {body_of(r)}")
    check(r.json().get("username") == ADMIN["username"], "username matches", r.json().get("username"))

    step("authlib: refresh")
    old = dict(token)
    new = sess.refresh_token(meta["token_endpoint"], refresh_token=old["refresh_token"], resource=BASE)
    check(new["access_token"] != old["access_token"], "new access token differs")
    check(new.get("refresh_token") and new["refresh_token"] != old["refresh_token"], "refresh token rotated")
    expect_401(bearer_me(old["access_token"]), "old access token on /api/v2/users/me")
    r = bearer_me(new["access_token"])
    check(r.status_code == 200 and r.json().get("username") == ADMIN["username"], "new access token -> 200 admin", f"{r.status_code} {body_of(r)}")

    step("authlib: RFC 7009 revoke the refresh token (client_secret_basic)")
    r = sess.revoke_token(meta["revocation_endpoint"], token=new["refresh_token"], token_type_hint="refresh_token")
    check(r.status_code == 200, "POST /oauth2/revoke -> 200", f"{r.status_code} {body_of(r)}")
    expect_401(bearer_me(new["access_token"]), "access token of the revoked pair")
    try:
        sess.refresh_token(meta["token_endpoint"], refresh_token=new["refresh_token"], resource=BASE)
        raise CheckFailed("refresh with a revoked refresh token succeeded")
    except AuthlibOAuthError as e:
        check(e.error == "invalid_grant", "revoked refresh token -> invalid_grant", e.error)
    return app_id, secret, callback


def flow_requests_oauthlib(admin, meta):
    step("requests-oauthlib: authorization code + PKCE S256 + resource, client_secret_post")
    callback = "http://localhost:8766/requests-oauthlib/callback"
    app_id, secret = create_app(admin, "interop-requests-oauthlib", callback)
    sess = no_proxy_session(GuardedRequestsOAuthlibSession(client_id=app_id, redirect_uri=callback, pkce="S256"))
    url, state = sess.authorization_url(meta["authorization_endpoint"], resource=BASE)
    location = approve(admin, url, meta, callback, state)
    token = sess.fetch_token(meta["token_endpoint"], authorization_response=location, include_client_id=True,
                             client_secret=secret, resource=BASE)
    check(bool(token.get("access_token")) and bool(token.get("refresh_token")), "access and refresh tokens issued")

    step("requests-oauthlib: the access token authenticates the API")
    r = sess.get(BASE + "/api/v2/users/me")
    check(r.status_code == 200, "GET /api/v2/users/me via the requests-oauthlib session -> 200", f"{r.status_code} {body_of(r)}")
    check(r.json().get("username") == ADMIN["username"], "username matches", r.json().get("username"))

    step("requests-oauthlib: refresh (client_secret_basic)")
    old = dict(token)
    new = sess.refresh_token(meta["token_endpoint"], refresh_token=old["refresh_token"],
                             auth=requests.auth.HTTPBasicAuth(app_id, secret), resource=BASE)
    check(new["access_token"] != old["access_token"], "new access token differs")
    check(new.get("refresh_token") and new["refresh_token"] != old["refresh_token"], "refresh token rotated")
    expect_401(bearer_me(old["access_token"]), "old access token on /api/v2/users/me")
    r = sess.get(BASE + "/api/v2/users/me")  # the session now holds the refreshed token
    check(r.status_code == 200 and r.json().get("username") == ADMIN["username"], "refreshed session -> 200 admin", f"{r.status_code} {body_of(r)}")

    step("RFC 7009 revoke the access token (client_secret_post)")
    r = http.post(meta["revocation_endpoint"], data={
        "token": new["access_token"], "token_type_hint": "access_token", "client_id": app_id, "client_secret": secret,
    }, allow_redirects=False)
    check(r.status_code == 200, "POST /oauth2/revoke -> 200", f"{r.status_code} {body_of(r)}")
    expect_401(bearer_me(new["access_token"]), "revoked access token")
    try:
        sess.refresh_token(meta["token_endpoint"], refresh_token=new["refresh_token"],
                           auth=requests.auth.HTTPBasicAuth(app_id, secret), resource=BASE)
        raise CheckFailed("refresh after revoking its access token succeeded")
    except OAuthlibError as e:
        check(e.error == "invalid_grant", "refresh token of the revoked pair -> invalid_grant", e.error)


def flow_audience(admin, meta, app_id, secret, callback):
    step("audience: a token for the MCP resource is refused by the REST API")
    sess = no_proxy_session(GuardedAuthlibSession(
        client_id=app_id, client_secret=secret, redirect_uri=callback, code_challenge_method="S256",
        default_timeout=TIMEOUT,
    ))
    verifier = generate_token(64)
    url, state = sess.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, resource=MCP)
    location = approve(admin, url, meta, callback, state)
    token = sess.fetch_token(meta["token_endpoint"], authorization_response=location, state=state,
                             code_verifier=verifier, resource=MCP)
    r = bearer_me(token["access_token"])
    expect_401(r, "MCP-bound token on /api/v2/users/me", "invalid_token")
    check("audience" in r.headers.get("WWW-Authenticate", ""), "challenge mentions the audience", r.headers.get("WWW-Authenticate"))
    body = body_of(r)
    check(isinstance(body, dict) and body.get("message") == "Token audience validation failed", "audience error message", body)

    step("audience: the same token is accepted by the MCP endpoint")
    r = http.post(MCP, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "interop", "version": "0"}},
    }, headers={"Authorization": f"Bearer {token['access_token']}", "Accept": "application/json, text/event-stream"}, allow_redirects=False)
    check(r.status_code == 200, "POST MCP initialize with the MCP-bound token -> 200", f"{r.status_code} {body_of(r)}")


def main():
    admin = setup_admin()
    meta = discover()
    app_id, secret, callback = flow_authlib(admin, meta)
    flow_requests_oauthlib(admin, meta)
    flow_audience(admin, meta, app_id, secret, callback)
    print("oauth_clients: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    except requests.RequestException as e:
        print(f"FAIL: HTTP error talking to {BASE}: {e}", file=sys.stderr)
        sys.exit(1)
    except (AuthlibOAuthError, OAuthlibError) as e:
        print(f"FAIL: OAuth error from the library: {type(e).__name__}: {e}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
    except Exception as e:  # noqa: BLE001
        print(f"FAIL: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
