#!/usr/bin/env bash
# Runs the Node.js binding's tests (node --test) against private aiosmtpd
# servers. Installs koffi from package-lock.json (npm ci) when missing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../testlib.sh"

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
    || { smtpc_log "ERROR: node and npm are needed (scripts/install-deps.sh needs them too)"; exit 1; }
cd "$HERE"
if ! node -e "require('koffi')" 2>/dev/null \
    || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    smtpc_log "npm ci in bindings/node"
    npm ci --no-audit --no-fund --loglevel=error
fi
smtpc_build_lib
smtpc_start_servers

node --test test/
