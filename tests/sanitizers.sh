#!/usr/bin/env bash
# sanitizers.sh - the C tests of libsmtpc under AddressSanitizer +
# UndefinedBehaviorSanitizer (with LeakSanitizer), helgrind and
# ThreadSanitizer. Run after `cargo build --release` (scripts/test.sh does).
#
#  1. builds tests/c/contract.c, tests/c/abuse.c, tests/c/threads.c and the
#     examples (examples-c/*.c) with -fsanitize=address,undefined
#     -fno-omit-frame-pointer -fno-sanitize-recover=all (gcc's libasan and
#     libubsan), linked against the release target/release/libsmtpc.so;
#  2. runs contract and abuse, the examples against a local aiosmtpd
#     (tests/c/examples.sh with EXAMPLES_DIR pointing at the sanitized
#     builds), and threads (64 threads x 100 messages) against an
#     smtp-sink whose -v log must count every message;
#  3. runs threads under valgrind --tool=helgrind (8 x 10) and, built with
#     -fsanitize=thread, under ThreadSanitizer (16 x 50);
#  4. checks the checkers: a program that leaks one session must be caught
#     by LeakSanitizer, so "no leak" above means something.
#
# The library itself (Rust) is not instrumented: ASan sees its heap use
# through the intercepted malloc/free (leaks, double frees, frees of foreign
# pointers, and overflows of buffers the C side allocated when the library
# writes them with intercepted memcpy/memset), and UBSan only checks the C
# side. helgrind sees every memory access of every thread, the library's
# included; TSan sees only the C side's accesses plus pthread/malloc
# interception, so it proves the test and the library's use of pthreads
# and the heap race-free from C's view, not the Rust code's internals.
#
# Environment: SAN_THREADS / SAN_MESSAGES (64/100), HELGRIND_THREADS /
# HELGRIND_MESSAGES (8/10), TSAN_THREADS / TSAN_MESSAGES (16/50),
# SKIP_INSTALL=1 (do not apt-get missing packages).
# Prints "sanitizers: N passed, M failed" last; exit status 1 on any failure.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
LIBDIR="$REPO/target/release"
OUT="$REPO/target/sanitizers"
CC="${CC:-gcc}"
STRICT=(-std=c99 -Wall -Wextra -Werror -pedantic -g -O1)
SAN=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
LINK=(-L"$LIBDIR" -Wl,-rpath,"$LIBDIR" -lsmtpc)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
HELGRIND=(valgrind -q --tool=helgrind --error-exitcode=99
          --suppressions="$REPO/tests/c/helgrind.supp")

passed=0
failed=0
failures=()
step() { # NAME COMMAND...: runs one step, output indented, and times it
    local name="$1" rc start
    shift
    echo "--- $name"
    start=$SECONDS
    "$@" 2>&1 | sed 's/^/    /'
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "ok   $name ($((SECONDS - start)) s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "FAIL $name (exit $rc, $((SECONDS - start)) s)"
    fi
    return "$rc"
}
finish() {
    echo
    for name in "${failures[@]+"${failures[@]}"}"; do
        echo "failed: $name"
    done
    echo "sanitizers: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

if [ ! -f "$LIBDIR/libsmtpc.so" ] || [ ! -f include/smtpc.h ]; then
    echo "sanitizers.sh: $LIBDIR/libsmtpc.so is missing; run 'cargo build --release' first" >&2
    failed=1
    finish
fi
mkdir -p "$OUT/examples"

# --- tools (idempotent: apt-get only when something is missing) -------------
need_pkgs() {
    local missing=() p
    # libgcc-12-dev has the link-time libasan.so/libubsan.so/libtsan.so.
    for p in gcc libgcc-12-dev libasan8 libubsan1 libtsan2 valgrind postfix; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ -n "${SKIP_INSTALL:-}" ]; then
        echo "missing packages: ${missing[*]} (SKIP_INSTALL set)"
        return 1
    fi
    echo "installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" ||
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
            --no-install-recommends "${missing[@]}"; }
}
step "sanitizer runtimes, valgrind, smtp-sink installed" need_pkgs || finish
step "scripts/install-deps.sh (aiosmtpd for the examples)" bash scripts/install-deps.sh

# --- build ----------------------------------------------------------------
for name in contract abuse threads cancel; do
    step "build $name (ASan+UBSan)" "$CC" "${STRICT[@]}" "${SAN[@]}" -Iinclude \
        -o "$OUT/$name" "tests/c/$name.c" "${LINK[@]}"
done
for src in examples-c/*.c; do
    name="$(basename "$src" .c)"
    step "build examples-c/$name (ASan+UBSan)" "$CC" "${STRICT[@]}" "${SAN[@]}" -Iinclude \
        -o "$OUT/examples/$name" "$src" "${LINK[@]}"
done
step "build threads (plain, for helgrind)" "$CC" "${STRICT[@]}" -Iinclude \
    -o "$OUT/threads-plain" tests/c/threads.c "${LINK[@]}"
step "build threads (TSan)" "$CC" "${STRICT[@]}" -fsanitize=thread -Iinclude \
    -o "$OUT/threads-tsan" tests/c/threads.c "${LINK[@]}"
step "build cancel (plain, for helgrind)" "$CC" "${STRICT[@]}" -Iinclude \
    -o "$OUT/cancel-plain" tests/c/cancel.c "${LINK[@]}"
step "build cancel (TSan)" "$CC" "${STRICT[@]}" -fsanitize=thread -Iinclude \
    -o "$OUT/cancel-tsan" tests/c/cancel.c "${LINK[@]}"
cat >"$OUT/leak_canary.c" <<'EOF'
/* Leaks one session on purpose: LeakSanitizer must
 * report it, or the clean runs above prove nothing about the library. */
#include <smtpc.h>
int main(void)
{
    smtp_session *s = smtp_session_new();
    smtp_session_set_local_hostname(s, "leak.example");
    s = 0;
    return s != 0;
}
EOF
step "build leak canary (ASan)" "$CC" "${STRICT[@]}" "${SAN[@]}" -Iinclude \
    -o "$OUT/leak_canary" "$OUT/leak_canary.c" "${LINK[@]}"

# --- ASan + UBSan ------------------------------------------------------------
[ -x "$OUT/contract" ] && step "contract (ASan+UBSan)" "$OUT/contract"
[ -x "$OUT/abuse" ] && step "abuse (ASan+UBSan)" "$OUT/abuse"
# smtp_session_cancel from a second thread, against a server that never
# answers: ASan, helgrind (every access of both threads, the library's
# included) and TSan.
[ -x "$OUT/cancel" ] && step "cancel (ASan+UBSan)" "$OUT/cancel" 10
[ -x "$OUT/cancel-plain" ] && step "cancel under helgrind" "${HELGRIND[@]}" "$OUT/cancel-plain" 3
[ -x "$OUT/cancel-tsan" ] && step "cancel under ThreadSanitizer" \
    env ASAN_OPTIONS= TSAN_OPTIONS="halt_on_error=1" "$OUT/cancel-tsan" 10
if ls "$OUT/examples/"* >/dev/null 2>&1; then
    step "examples.sh (ASan+UBSan)" env EXAMPLES_DIR="$OUT/examples" bash tests/c/examples.sh
fi
if [ -x "$OUT/leak_canary" ]; then
    canary() {
        local log="$OUT/leak_canary.log"
        "$OUT/leak_canary" >"$log" 2>&1 && { echo "the leak went unnoticed"; return 1; }
        grep -q 'ERROR: LeakSanitizer: detected memory leaks' "$log" ||
            { cat "$log"; return 1; }
        grep -E 'Direct leak|smtp_session_new' "$log" | head -n 3
        echo "LeakSanitizer caught the deliberately leaked session"
    }
    step "LeakSanitizer sees a leaked session (self-check)" canary
fi

# --- threads against smtp-sink ---------------------------------------------
SINK_PID=
SINK_LOG=
start_sink() { # starts smtp-sink -v on a free port: SINK_PORT, SINK_PID, SINK_LOG
    local sink attempt i
    sink="$(command -v smtp-sink || echo /usr/sbin/smtp-sink)"
    SINK_LOG="$(mktemp "${TMPDIR:-/tmp}/smtpc-sink.XXXXXX")"
    for attempt in 1 2 3 4 5; do
        SINK_PORT="$("$REPO/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
            python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
        "$sink" -u nobody -v -m 1024 "127.0.0.1:$SINK_PORT" 1024 >"$SINK_LOG" 2>&1 &
        SINK_PID=$!
        for i in $(seq 1 100); do
            if ! kill -0 "$SINK_PID" 2>/dev/null; then break; fi
            if (exec 3<>"/dev/tcp/127.0.0.1/$SINK_PORT") 2>/dev/null; then return 0; fi
            sleep 0.05
        done
        stop_sink
    done
    echo "smtp-sink did not start; its log:" >&2
    cat "$SINK_LOG" >&2
    return 1
}
stop_sink() {
    if [ -n "$SINK_PID" ]; then
        kill "$SINK_PID" 2>/dev/null
        wait "$SINK_PID" 2>/dev/null
        SINK_PID=
    fi
}
trap 'stop_sink; [ -n "$SINK_LOG" ] && rm -f "$SINK_LOG"' EXIT

# run_threads NAME MESSAGES_WANTED COMMAND...: runs COMMAND against a fresh
# smtp-sink, then checks its -v log: one "." (end of data) line and one
# MAIL FROM per message (the probe connection above sends none).
run_threads() {
    local want="$1" dots mails i
    shift
    start_sink || return 1
    "$@" "$SINK_PORT"
    local rc=$?
    for i in $(seq 1 100); do # the log may trail the last reply slightly
        dots=$(grep -c 'smtp-sink: \.$' "$SINK_LOG")
        [ "$dots" -ge "$want" ] && break
        sleep 0.1
    done
    mails=$(grep -ci 'smtp-sink: mail from:' "$SINK_LOG")
    stop_sink
    echo "smtp-sink counted $dots messages ($mails MAIL FROM), wanted $want"
    [ "$rc" -eq 0 ] && [ "$dots" -eq "$want" ] && [ "$mails" -eq "$want" ]
}
T=${SAN_THREADS:-64} M=${SAN_MESSAGES:-100}
if [ -x "$OUT/threads" ]; then
    # threads takes PORT first: a wrapper puts it there.
    san_threads() { "$OUT/threads" "$1" "$T" "$M"; }
    step "threads ${T}x$M (ASan+UBSan) against smtp-sink" run_threads $((T * M)) san_threads
fi
HT=${HELGRIND_THREADS:-8} HM=${HELGRIND_MESSAGES:-10}
if [ -x "$OUT/threads-plain" ]; then
    plain_threads() { "$OUT/threads-plain" "$1" "$T" "$M"; }
    step "threads ${T}x$M (no sanitizer) against smtp-sink" run_threads $((T * M)) plain_threads
    helgrind_threads() { "${HELGRIND[@]}" "$OUT/threads-plain" "$1" "$HT" "$HM"; }
    step "threads ${HT}x$HM under helgrind" run_threads $((HT * HM)) helgrind_threads
fi
TT=${TSAN_THREADS:-16} TM=${TSAN_MESSAGES:-50}
if [ -x "$OUT/threads-tsan" ]; then
    tsan_threads() {
        TSAN_OPTIONS="halt_on_error=1:abort_on_error=1:second_deadlock_stack=1" \
            ASAN_OPTIONS= "$OUT/threads-tsan" "$1" "$TT" "$TM"
    }
    step "threads ${TT}x$TM under ThreadSanitizer" run_threads $((TT * TM)) tsan_threads
fi

finish
