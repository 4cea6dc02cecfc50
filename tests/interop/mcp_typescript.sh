#!/usr/bin/env bash
# Official TypeScript MCP SDK (npm @modelcontextprotocol/sdk): OAuth discovery, DCR, PKCE + resource,
# tools/call, refresh. ESM resolves bare imports next to the importing file, so the script is copied
# into the cache's npm project and run from there.
set -euo pipefail
: "${HANGAR_URL:?}"
source "$(dirname "$0")/clients.env"
cp "$interop_dir/mcp_client.mjs" "$interop_node_dir/mcp_client.mjs"
cd "$interop_node_dir"
exec timeout 120 node mcp_client.mjs
