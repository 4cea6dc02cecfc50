#!/usr/bin/env bash
# Official Python MCP SDK (PyPI `mcp`): OAuth discovery, DCR, PKCE + resource, tools/call, refresh.
set -euo pipefail
: "${HANGAR_URL:?}"
source "$(dirname "$0")/clients.env"
exec timeout 120 "$interop_python" "$interop_dir/mcp_client.py"
