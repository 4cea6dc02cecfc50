#!/usr/bin/env bash
# curl: first user, login with the session cookie, every token source, error envelopes.
set -euo pipefail
: "${HANGAR_URL:?}"
jar=$(mktemp)
trap 'rm -f "$jar"' EXIT
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
expect() { if [ "$1" != "$2" ]; then echo "expected [$2], got [$1] ($3)"; exit 1; fi; }

code=$(curl -s -o /dev/null -w '%{http_code}' "$HANGAR_URL/healthz")
expect "$code" 200 healthz

curl -sf -X POST "$HANGAR_URL/api/v2/users/first" -H 'Content-Type: application/json' \
  -d '{"email":"admin@example.com","username":"admin","password":"SomeSecurePassword!"}' >/dev/null

# Login sets the cookie; the cookie alone authenticates.
token=$(curl -sf -c "$jar" -X POST "$HANGAR_URL/api/v2/users/login" -H 'Content-Type: application/json' \
  -d '{"email":"admin@example.com","password":"SomeSecurePassword!"}' | json '["session_token"]')
grep -q coder_session_token "$jar" || { echo "no cookie stored"; exit 1; }
me=$(curl -sf -b "$jar" "$HANGAR_URL/api/v2/users/me" | json '["username"]')
expect "$me" admin cookie

# Header, bearer and query sources.
expect "$(curl -sf -H "Coder-Session-Token: $token" "$HANGAR_URL/api/v2/users/me" | json '["username"]')" admin header
expect "$(curl -sf -H "Authorization: Bearer $token" "$HANGAR_URL/api/v2/users/me" | json '["username"]')" admin bearer
expect "$(curl -sf "$HANGAR_URL/api/v2/users/me?access_token=$token" | json '["username"]')" admin access_token

# 401 carries the challenge; malformed JSON is a 400 envelope.
hdr=$(curl -s -D - -o /dev/null "$HANGAR_URL/api/v2/users/me" | tr -d '\r' | grep -i '^www-authenticate:')
case "$hdr" in *'Bearer realm="coder", resource_metadata="'*'/.well-known/oauth-protected-resource"'*) ;; *) echo "bad challenge: $hdr"; exit 1;; esac
msg=$(curl -s -X POST "$HANGAR_URL/api/v2/organizations" -H "Coder-Session-Token: $token" -H 'Content-Type: application/json' -d '{"name":' | json '["message"]')
expect "$msg" "Request body must be valid JSON." malformed

# Token round trip.
tok=$(curl -sf -X POST "$HANGAR_URL/api/v2/users/me/keys/tokens" -H "Coder-Session-Token: $token" \
  -H 'Content-Type: application/json' -d '{"token_name":"curl","lifetime":3600000000000}' | json '["key"]')
expect "$(curl -sf -H "Coder-Session-Token: $tok" "$HANGAR_URL/api/v2/users/me" | json '["username"]')" admin token
curl -sf -X POST -b "$jar" -c "$jar" "$HANGAR_URL/api/v2/users/logout" -H "Coder-Session-Token: $token" >/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Coder-Session-Token: $token" "$HANGAR_URL/api/v2/users/me")
expect "$code" 401 logout
