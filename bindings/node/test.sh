#!/usr/bin/env bash
# The Node.js binding's tests, the way a user gets it:
#   1. coverage.sh node (every function of smtpc.h bound or listed in UNBOUND.txt)
#   2. `npm pack` the package (libsmtpc) and `npm install` the tarball into
#      a temporary project outside the checkout
#   3. there: `tsc --strict` on test/types.ts against the installed
#      index.d.ts, then `node --test` on the test files, which
#      require('libsmtpc') from that project; the library comes from the
#      temporary prefix through $SMTPC_LIB (testlib.sh).
# The dev dependencies (typescript, @types/node, nodemailer for the
# event-loop comparison) come from package-lock.json (npm ci).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../testlib.sh"

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
    || { smtpc_log "ERROR: node and npm are needed (scripts/install-deps.sh needs them too)"; exit 1; }
cd "$HERE"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
    || ! node -e "require('koffi'); require('nodemailer'); require('typescript')" 2>/dev/null; then
    smtpc_log "npm ci in bindings/node"
    npm ci --no-audit --no-fund --loglevel=error
fi
smtpc_build_lib
smtpc_coverage node
smtpc_start_servers

proj="$SMTPC_WORK/node-project"
mkdir -p "$proj/test"
tarball="$(npm pack --silent --pack-destination "$proj" "$HERE" | tail -n 1)"
smtpc_log "node: npm pack -> $tarball; installing it into $proj"
(cd "$proj" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error --prefer-offline "./$tarball")
cp "$HERE"/test/*.test.js "$HERE/test/types.ts" "$proj/test/"
cat >"$proj/tsconfig.json" <<EOM
{
  "compilerOptions": {
    "strict": true, "noEmit": true, "target": "es2022", "lib": ["es2022", "esnext.disposable"],
    "module": "commonjs", "moduleResolution": "node", "types": ["node"],
    "typeRoots": ["$HERE/node_modules/@types"]
  },
  "files": ["test/types.ts"]
}
EOM
(cd "$proj" && "$HERE/node_modules/.bin/tsc" -p tsconfig.json)
smtpc_log "node: tsc --strict: test/types.ts type-checks against the installed index.d.ts"

cd "$proj"
node -e "const p = require.resolve('libsmtpc'); if (!p.startsWith('$proj/node_modules/')) { console.error('libsmtpc from ' + p); process.exit(1); }
         console.error('bindings: node: libsmtpc ' + require('libsmtpc/package.json').version + ' from ' + require('path').dirname(p) + ', library ' + require('libsmtpc').version())"
# nodemailer (the event-loop comparison) is a dev dependency of bindings/node.
NODE_PATH="$HERE/node_modules" node --expose-gc --test --test-concurrency=1 test/ 2>&1 | tee "$SMTPC_WORK/node-test.log"
status=${PIPESTATUS[0]}
grep -o 'FIGURE.*' "$SMTPC_WORK/node-test.log" >&2 || true
exit "$status"
