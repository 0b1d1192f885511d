#!/usr/bin/env bash
# Runs every language binding's tests: C++, Go, Ruby, Node.js. The library
# is built once here (`make`: cargo, then the symbol-versioned libsmtpc.so)
# and installed once into a temporary prefix (`make install PREFIX=...`);
# every binding is then installed from its own package into a temporary
# project outside the checkout and loads the library from that prefix. Each
# runner starts its own servers (see testlib.sh).
# Exit status: non-zero if any binding failed (all are run regardless).
#   bindings/test-all.sh [cpp|go|ruby|node ...]
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/testlib.sh"

langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(cpp go ruby node)

start=$SECONDS
smtpc_build_lib || exit 1
export SMTPC_SKIP_BUILD=1

failed=()
times=()
for lang in "${langs[@]}"; do
    if [ ! -x "$HERE/$lang/test.sh" ]; then
        smtpc_log "unknown binding: $lang"
        failed+=("$lang")
        continue
    fi
    smtpc_log "==== $lang ===="
    t0=$SECONDS
    if "$HERE/$lang/test.sh"; then
        smtpc_log "==== $lang: ok ($((SECONDS - t0)) s) ===="
    else
        smtpc_log "==== $lang: FAILED ($((SECONDS - t0)) s) ===="
        failed+=("$lang")
    fi
    times+=("$lang $((SECONDS - t0)) s")
done

smtpc_log "times: ${times[*]}; total $((SECONDS - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
    smtpc_log "FAILED: ${failed[*]}"
    exit 1
fi
smtpc_log "all bindings passed: ${langs[*]}"
