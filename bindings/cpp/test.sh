#!/usr/bin/env bash
# Builds bindings/cpp/test.cpp against libsmtpc and runs it against private
# aiosmtpd servers. Exit status: non-zero on any failure.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../testlib.sh"

if ! command -v g++ >/dev/null 2>&1; then
    smtpc_log "installing g++"
    apt-get install -y -qq g++ >/dev/null || { apt-get update -qq && apt-get install -y -qq g++; }
fi
smtpc_build_lib
smtpc_start_servers

BIN="$SMTPC_WORK/cpp-test"
g++ -std=c++17 -Wall -Wextra -Werror -pedantic -O1 -g \
    -I"$REPO/include" -I"$HERE" "$HERE/test.cpp" -o "$BIN" \
    -L"$REPO/target/release" -lsmtpc -Wl,-rpath,"$REPO/target/release"
"$BIN"
