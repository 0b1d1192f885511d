#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with the Rust toolchain:
# installs what the tests need (apt packages, a Python venv, npm packages,
# Go, Ruby), then runs every test. Exit status non-zero on any failure.
#
#   scripts/test.sh           everything (CI runs this)
#   scripts/test.sh --quick   Rust tests only (no C, bindings, fuzz, bench)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

section() { printf '\n=== %s ===\n' "$*"; }

section "install test dependencies"
scripts/install-deps.sh

section "format, lint"
cargo fmt --check
cargo clippy --all-targets -- -D warnings

section "build the library (release)"
cargo build --release

section "Rust tests: unit, real servers, scripted faults, header"
cargo test --release -- --test-threads=4

[ "$quick" = 1 ] && exit 0

section "C tests: contract, examples (valgrind, ASan/UBSan)"
tests/c/run.sh

section "packaging: make install, pkg-config, exported symbols"
tests/packaging.sh

section "sanitizers (ASan/UBSan, helgrind) and threads"
tests/sanitizers.sh

section "bindings: C++, Go, Ruby, Node.js"
bindings/test-all.sh

section "fuzzing smoke run"
scripts/fuzz-smoke.sh 10

section "benchmark smoke run (figures only; targets are in the README)"
scripts/bench.sh --smoke

section "all tests passed"
