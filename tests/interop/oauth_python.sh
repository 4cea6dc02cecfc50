#!/usr/bin/env bash
# authlib and requests-oauthlib: authorization code + PKCE S256 + resource, refresh, audience, RFC 7009 revoke.
set -euo pipefail
: "${HANGAR_URL:?}"
source "$(dirname "$0")/clients.env"
exec timeout 120 "$interop_python" "$interop_dir/oauth_clients.py"
