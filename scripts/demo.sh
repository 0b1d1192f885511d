#!/usr/bin/env bash
# demo.sh - build libsmtpc and its C examples, start a local SMTP server
# (aiosmtpd with STARTTLS and AUTH) and run the three examples against it,
# showing the SMTP transcripts and the messages the server received.
#
# Usage: scripts/demo.sh        (from a clean clone; installs what it needs)
# Exit status: non-zero if any build step or any example fails.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
# shellcheck source=../tests/c/aiosmtpd.sh
. "$REPO/tests/c/aiosmtpd.sh"

banner() { printf '\n=== %s ===\n' "$*"; }

banner "building libsmtpc (cargo build --release)"
cargo build --release

banner "building the C examples"
make -C examples-c

banner "installing the test servers' dependencies"
bash scripts/install-deps.sh

WORK="$(mktemp -d "${TMPDIR:-/tmp}/smtpc-demo.XXXXXX")"
cleanup() {
    stop_aiosmtpd
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

banner "starting aiosmtpd"
# --known-user makes VRFY answer 250 for that address and 550 for others.
start_aiosmtpd "$WORK" --known-user recipient@example.org
echo "aiosmtpd listening on 127.0.0.1:$SMTP_PORT (pid $AIOSMTPD_PID)"

failed=0
run() { # name command...: runs one example, transcript (stderr) included
    local name="$1" rc=0
    shift
    banner "$name"
    echo "\$ $*"
    "$@" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "*** $name failed with exit status $rc" >&2
        failed=1
    fi
}

run sendmail examples-c/sendmail 127.0.0.1 "$SMTP_PORT"
# localhost matches the test certificate's name; SMTP_CA_FILE trusts its CA.
run authenticated env SMTP_CA_FILE="$CERT_DIR/ca.pem" SMTP_PASSWORD=demo-password \
    examples-c/authenticated localhost "$SMTP_PORT" demo
run verify examples-c/verify 127.0.0.1 "$SMTP_PORT" recipient@example.org nobody@example.org

banner "messages received by the server"
shopt -s nullglob
emls=("$CAPTURE_DIR"/*.eml)
if [ "${#emls[@]}" -eq 0 ]; then
    echo "*** no message was captured" >&2
    failed=1
fi
for f in "${emls[@]}"; do
    echo "--- $(basename "$f") (envelope: $(cat "${f%.eml}.json" 2>/dev/null || echo '?'))"
    cat "$f"
done

if [ "$failed" -ne 0 ]; then
    banner "demo FAILED"
    exit 1
fi
banner "demo OK"
