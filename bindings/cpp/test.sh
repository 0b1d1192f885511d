#!/usr/bin/env bash
# The C++ binding's tests, the way a user builds against it:
#   1. coverage.sh cpp (every function of smtpc.h bound or listed in UNBOUND.txt)
#   2. clang-tidy (.clang-tidy here; warnings are errors) on smtpc.hpp as
#      `make install` installed it, through tidy.cpp
#   3. test.cpp copied to a temporary directory outside the checkout and
#      built there with nothing but `pkg-config --cflags --libs smtpc` (the
#      installed smtpc.hpp beside smtpc.h), then run against the servers.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../testlib.sh"

missing=()
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v clang-tidy >/dev/null 2>&1 || missing+=(clang-tidy)
if [ ${#missing[@]} -gt 0 ]; then
    smtpc_log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${missing[@]}" >/dev/null || { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; }
fi
smtpc_build_lib
smtpc_coverage cpp
cmp -s "$SMTPC_PREFIX/include/smtpc.hpp" "$HERE/smtpc.hpp" \
    || { smtpc_log "ERROR: the installed smtpc.hpp is not bindings/cpp/smtpc.hpp"; exit 1; }
smtpc_start_servers

proj="$SMTPC_WORK/cpp-project"
mkdir -p "$proj"
cp "$HERE/test.cpp" "$HERE/tidy.cpp" "$HERE/.clang-tidy" "$proj/"
cd "$proj"
# clang-tidy and the compile of the test run side by side.
# shellcheck disable=SC2046
clang-tidy --quiet tidy.cpp -- -std=c++17 $(pkg-config --cflags smtpc) >tidy.log 2>&1 &
tidy_pid=$!
# shellcheck disable=SC2046
g++ -std=c++17 -Wall -Wextra -Werror -pedantic -O1 -g -pthread test.cpp -o cpp-test \
    $(pkg-config --cflags --libs smtpc)
if ! wait "$tidy_pid"; then
    grep -v '^[0-9]* warnings generated' tidy.log >&2
    smtpc_log "ERROR: clang-tidy reported problems in smtpc.hpp"
    exit 1
fi
smtpc_log "cpp: clang-tidy clean ($(clang-tidy --version | sed -n 's/.*LLVM version \([0-9.]*\).*/\1/p'))"
ldd ./cpp-test | grep -q "$SMTPC_PREFIX/lib/libsmtpc.so.0" \
    || { smtpc_log "ERROR: cpp-test does not load the installed libsmtpc"; exit 1; }
./cpp-test
