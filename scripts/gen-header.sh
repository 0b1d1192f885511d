#!/usr/bin/env bash
# Regenerates include/smtpc.h from src/ffi (cbindgen runs in build.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
gen=$(ls -t target/debug/build/smtpc-*/out/smtpc.h | head -n 1)
cp "$gen" include/smtpc.h
echo "include/smtpc.h updated from $gen"
