#!/usr/bin/env bash
# Python's standard-library HTTP client (urllib) checking the API's JSON shapes and errors.
set -euo pipefail
: "${HANGAR_URL:?}"
python3 - "$HANGAR_URL" <<'PY'
import json, sys, urllib.request, urllib.error
base = sys.argv[1]
def call(method, path, body=None, token=None):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Coder-Session-Token", token)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
s, _ = call("POST", "/api/v2/users/first", {"email": "a@example.com", "username": "admin", "password": "SomeSecurePassword!"})
assert s == 201, s
s, r = call("POST", "/api/v2/users/login", {"email": "a@example.com", "password": "SomeSecurePassword!"})
tok = r["session_token"]
s, u = call("GET", "/api/v2/users/me", token=tok)
for f in ["id", "username", "name", "email", "avatar_url", "created_at", "updated_at", "last_seen_at", "status", "login_type", "organization_ids", "roles"]:
    assert f in u, f
s, o = call("POST", "/api/v2/organizations", {"name": "py"}, tok)
assert s == 201 and o["display_name"] == "py", (s, o)
s, e = call("POST", "/api/v2/organizations", {"name": "PY"}, tok)
assert s == 409 and e["message"] == "Organization already exists with that name.", (s, e)
s, e = call("POST", "/api/v2/users", {"email": "x@example.com", "username": "me", "password": "SomeSecurePassword!", "organization_ids": [o["id"]]}, tok)
assert s == 400 and e["validations"][0]["field"] == "username", (s, e)
s, d = call("DELETE", "/api/v2/organizations/py", token=tok)
assert s == 200 and d["message"] == "Organization has been deleted.", (s, d)
print("python ok")
PY
