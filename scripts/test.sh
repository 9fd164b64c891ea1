#!/usr/bin/env bash
# Builds ditrun and runs every CPU test (the README's test command; CI runs exactly this).
# Usage: scripts/test.sh [build-dir]     Env: FUZZ_SECONDS (default 60; 0 skips the fuzzer)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
jobs=$(nproc)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$jobs"
ctest --test-dir "$build" --output-on-failure -j"$jobs"
if [ "${FUZZ_SECONDS:-60}" != 0 ] && [ -x tests/fuzz/run_fuzz.sh ]; then
  tests/fuzz/run_fuzz.sh "${FUZZ_SECONDS:-60}"
fi
