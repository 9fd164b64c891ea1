#!/usr/bin/env bash
# Builds the safetensors header fuzzer with clang (separate build dir) and runs it.
# Usage: tests/fuzz/run_fuzz.sh [SECONDS=60]   Exits non-zero when libFuzzer finds a crash; the
# reproducer is left in $BUILD/artifacts/ (replay: $BUILD/tests/fuzz/fuzz_safetensors_header FILE).
set -euo pipefail
seconds="${1:-60}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${DITRUN_FUZZ_BUILD:-$root/build-fuzz}"

command -v clang++ >/dev/null || { echo "run_fuzz: clang++ not found; run scripts/install_deps.sh" >&2; exit 2; }
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DDITRUN_FUZZ=ON -DDITRUN_TESTS=OFF -DDITRUN_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzz_safetensors_header -j"$(nproc)"

# Seeds: byte 0 even = JSON header only (the target adds prefix and 256 data bytes); odd = whole image.
corpus="$build/corpus"
mkdir -p "$corpus" "$build/artifacts"
seed() { printf '%b' "$2" > "$corpus/$1"; }
seed empty      '\x00{}'
seed one        '\x00{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}'
seed meta       '\x00{"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"F8_E4M3","shape":[2,2],"data_offsets":[8,12]}}'
seed kinds      '\x00{"i":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"h":{"dtype":"F16","shape":[0,5],"data_offsets":[8,8]}}'
seed image      '\x01\x13\x00\x00\x00\x00\x00\x00\x00{"__metadata__":{}}'
seed image_data '\x01\x3a\x00\x00\x00\x00\x00\x00\x00{"x":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}    \x00\x3c\x00\x40'

exec "$build/tests/fuzz/fuzz_safetensors_header" "$corpus" -dict="$root/tests/fuzz/safetensors.dict" \
  -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$build/artifacts/" \
  -print_final_stats=1
