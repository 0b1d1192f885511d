#!/usr/bin/env bash
# Runs every language binding's tests: C++, Go, Ruby, Node.js. Each runner
# starts its own aiosmtpd servers. The library is built once here.
# Exit status: non-zero if any binding failed (all are run regardless).
#   bindings/test-all.sh [cpp|go|ruby|node ...]
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/testlib.sh"

langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(cpp go ruby node)

smtpc_build_lib || exit 1
export SMTPC_SKIP_BUILD=1

failed=()
for lang in "${langs[@]}"; do
    if [ ! -x "$HERE/$lang/test.sh" ]; then
        smtpc_log "unknown binding: $lang"
        failed+=("$lang")
        continue
    fi
    smtpc_log "==== $lang ===="
    if "$HERE/$lang/test.sh"; then
        smtpc_log "==== $lang: ok ===="
    else
        smtpc_log "==== $lang: FAILED ===="
        failed+=("$lang")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    smtpc_log "FAILED: ${failed[*]}"
    exit 1
fi
smtpc_log "all bindings passed: ${langs[*]}"
