#!/usr/bin/env bash
# Fuzz smoke run: builds every cargo-fuzz target in fuzz/ and runs each for
# SECONDS (default 20), one after the other, then prints the executions per
# target. Exits non-zero when any target crashes (panic, failed assertion,
# timeout or out-of-memory); the crashing input is kept under
# fuzz/artifacts/<target>/ and the command to replay it is printed.
#
#   scripts/fuzz-smoke.sh [SECONDS]
#
# Installs what it needs, idempotently: cargo-fuzz (cargo install) and a C++
# compiler (libfuzzer-sys builds libFuzzer from source).
#
# The toolchain here is stable Rust. cargo-fuzz passes nightly-only -Z flags
# to rustc, which stable accepts with RUSTC_BOOTSTRAP=1 — set for the fuzz
# build only, never for the project's own build.
#
# Environment:
#   FUZZ_SANITIZER   none (default) | address. The targets are safe Rust, so
#                    the default is no sanitizer: many more executions/s.
#   FUZZ_JOBS        cargo build jobs (default 2).
set -euo pipefail

secs="${1:-20}"
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
    echo "usage: $0 [SECONDS]  (a positive whole number; default 20)" >&2
    exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sanitizer="${FUZZ_SANITIZER:-none}"
export CARGO_BUILD_JOBS="${FUZZ_JOBS:-2}"
export RUSTC_BOOTSTRAP=1

start=$(date +%s)

# ---- what the fuzz build needs ------------------------------------------
if ! command -v c++ >/dev/null 2>&1; then
    echo "fuzz-smoke: installing a C++ compiler (for libFuzzer)" >&2
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq g++ >/dev/null
    else
        echo "fuzz-smoke: no c++ compiler and no apt-get; install g++ or clang++" >&2
        exit 2
    fi
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

cd "$root/fuzz"
echo "fuzz-smoke: building targets (sanitizer: $sanitizer)" >&2
cargo fuzz build --sanitizer "$sanitizer" --debug-assertions

targets=$(cargo fuzz list)
logdir="$root/fuzz/target/smoke-logs"
mkdir -p "$logdir"

declare -a rows
failed=0
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    seeds=()
    [ -d "seeds/$t" ] && seeds=("seeds/$t")
    log="$logdir/$t.log"
    echo "fuzz-smoke: $t for ${secs}s" >&2
    set +e
    # corpus/<t> first: new inputs are written there, never into seeds/.
    cargo fuzz run --sanitizer "$sanitizer" --debug-assertions "$t" \
        "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -close_fd_mask=1 >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    if [ "$rc" -eq 0 ]; then
        result=ok
    else
        result="CRASH (exit $rc)"
        failed=1
        echo "---- $t: last lines of $log" >&2
        tail -n 40 "$log" >&2
        crash=$(ls -t "artifacts/$t"/* 2>/dev/null | head -n1 || true)
        if [ -n "$crash" ]; then
            echo "replay: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -s $sanitizer -a $t $crash)" >&2
        fi
    fi
    rows+=("$(printf '%-16s %14s %10s  %s' "$t" "${execs:-?}" "${speed:-?}" "$result")")
done

echo
printf '%-16s %14s %10s  %s\n' target executions "exec/s" result
for r in "${rows[@]}"; do
    echo "$r"
done
echo "fuzz-smoke: ${secs}s per target, $(( $(date +%s) - start ))s in all"
exit "$failed"
