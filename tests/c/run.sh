#!/usr/bin/env bash
# run.sh - the C-side test suite of libsmtpc. Run after `cargo build --release`.
#
#  1. compiles tests/c/*.c and examples-c/ with -std=c99 -Wall -Wextra -Werror
#     -pedantic, and every C file (and the bare header) as C++ too;
#  2. runs tests/c/contract and tests/c/examples.sh, normally and under
#     valgrind (errors and definite/indirect leaks fail the run).
# Prints "c-tests: N passed, M failed" last; exit status 1 on any failure.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
LIBDIR="$REPO/target/release"
OUT="$REPO/target/c-tests"
CC="${CC:-gcc}"
CXX="${CXX:-g++}"
CFLAGS=(-std=c99 -Wall -Wextra -Werror -pedantic -g -O1)
CXXFLAGS=(-Wall -Wextra -Werror -g)
VALGRIND=(valgrind -q --error-exitcode=99 --leak-check=full
          --errors-for-leak-kinds=definite,indirect)

for f in include/smtpc.h "$LIBDIR/libsmtpc.so"; do
    if [ ! -f "$f" ]; then
        echo "run.sh: $f is missing; run 'cargo build --release' first" >&2
        echo "c-tests: 0 passed, 1 failed"
        exit 1
    fi
done
mkdir -p "$OUT"

passed=0
failed=0
failures=()
# step NAME COMMAND...: runs one step, its output indented.
step() {
    local name="$1" rc=0
    shift
    echo "--- $name"
    "$@" 2>&1 | sed 's/^/    /'
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "FAIL $name (exit $rc)"
    fi
    return "$rc"
}

# --- build -----------------------------------------------------------------
printf '#include <smtpc.h>\nint main(void) { return smtpc_version() == 0; }\n' >"$OUT/header_only.c"
step "header compiles alone as C99" \
    "$CC" "${CFLAGS[@]}" -Iinclude -c "$OUT/header_only.c" -o "$OUT/header_only.o"
step "header compiles alone as C89 (-pedantic)" \
    "$CC" -std=c89 -pedantic -Wall -Wextra -Werror -Iinclude -c "$OUT/header_only.c" -o "$OUT/header_only89.o"
# clang-14 comes from scripts/install-deps.sh.
step "header passes clang -Wdocumentation" \
    clang-14 -std=c99 -pedantic -Wall -Wextra -Werror -Wdocumentation -Iinclude \
    -c "$OUT/header_only.c" -o "$OUT/header_only_clang.o"
step "header compiles alone as C++" \
    "$CXX" -x c++ "${CXXFLAGS[@]}" -Iinclude -c "$OUT/header_only.c" -o "$OUT/header_only_cxx.o"

# The abuse matrix covers every export: a function the header declares and
# abuse.c never calls fails here, so a new export cannot be forgotten.
abuse_covers_every_export() {
    local missing
    missing=$(grep -oE '\b(smtp_session|smtp_message|smtpc)_[a-z0-9_]+\(' include/smtpc.h \
        | tr -d '(' | sort -u | while read -r fn; do
            grep -q "\b$fn(" tests/c/abuse.c || echo "$fn"
        done)
    [ -z "$missing" ] || { echo "not in tests/c/abuse.c: $missing"; return 1; }
    echo "$(grep -oE '\b(smtp_session|smtp_message|smtpc)_[a-z0-9_]+\(' include/smtpc.h | sort -u | wc -l) exports covered"
}
step "abuse.c calls every function of the header" abuse_covers_every_export

built_tests=()
for src in tests/c/*.c; do
    name="$(basename "$src" .c)"
    if step "compile $src" "$CC" "${CFLAGS[@]}" -Iinclude -o "$OUT/$name" "$src" \
        -L"$LIBDIR" -Wl,-rpath,"$LIBDIR" -lsmtpc; then
        built_tests+=("$name")
    fi
    step "compile $src as C++" "$CXX" -x c++ "${CXXFLAGS[@]}" -Iinclude -fsyntax-only "$src"
done

# The static library too: native-tls needs OpenSSL, the Rust std pthreads,
# dl and libm (`cargo rustc -- --print native-static-libs` lists them).
if [ -f "$LIBDIR/libsmtpc.a" ] && step "link tests/c/contract.c with libsmtpc.a" \
    "$CC" "${CFLAGS[@]}" -Iinclude -o "$OUT/contract-static" tests/c/contract.c \
    "$LIBDIR/libsmtpc.a" -lssl -lcrypto -lpthread -ldl -lm; then
    step "run contract (static)" "$OUT/contract-static"
fi

step "make -C examples-c" make -B -C examples-c
step "make -C examples-c cxx-check" make -C examples-c cxx-check

# --- run -------------------------------------------------------------------
for name in "${built_tests[@]}"; do
    # threads needs a server: tests/sanitizers.sh runs it against smtp-sink.
    [ "$name" = threads ] && continue
    step "run $name" "$OUT/$name"
    step "run $name under valgrind" "${VALGRIND[@]}" "$OUT/$name"
done

# The examples talk to aiosmtpd from the harness's venv.
if step "scripts/install-deps.sh" bash scripts/install-deps.sh; then
    step "examples.sh" bash tests/c/examples.sh
    step "examples.sh under valgrind" env RUNNER="${VALGRIND[*]}" bash tests/c/examples.sh
fi

echo
for name in "${failures[@]+"${failures[@]}"}"; do
    echo "failed: $name"
done
echo "c-tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
