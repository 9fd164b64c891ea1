#!/usr/bin/env bash
# Session 24, last call: the landed P codes (quant_p_codes) against their CPU reference (every block-sparse,
# SLA and quantized GPU test), then the sweep (kernel only, bf16 against int8-fp8pv, after a 30 s warm-up).
# Writes $OUT/final.txt and $OUT/sweep.tgz.
# Usage (repository root, on the device machine, carrying .devdeps and third_party/cudnn-frontend):
#   bash bench/quant_codes_final_h200.sh [OUT]
set -u
out=${1:-${OUT:-bench-results}}
mkdir -p "$out" third_party
[ -d third_party/cutlass ] || tar -xJf .devdeps/cutlass.tar.xz -C third_party
export LD_LIBRARY_PATH=/opt/ditrun-deps/usr/lib/x86_64-linux-gnu:/opt/ditrun-deps/usr/lib/x86_64-linux-gnu/openblas-pthread
t0=$SECONDS
log="$out/final.txt"
BUILD_TARGETS="ditrun test_cuda" OUT=/tmp/final-build timeout 300 bash scripts/gpu_check.sh --only-build >/tmp/final-build.txt 2>&1
echo "build rc $? at $((SECONDS - t0)) s" | tee "$log"
(cd build-gpu && timeout 200 ctest -R "cuda.sparse_attention|cuda.sla|cuda.block_sparse_quant" \
  --timeout 90 --output-on-failure >/tmp/final-tests.txt 2>&1)
echo "tests: $(grep -E 'tests passed|tests failed' /tmp/final-tests.txt) at $((SECONDS - t0)) s" | tee -a "$log"
grep -E "\((Failed|Timeout|SEGFAULT|Subprocess)" /tmp/final-tests.txt | head -20 | tee -a "$log"
grep -E "int8-fp8pv.*rel|per-head perms" /tmp/final-tests.txt | head -20 | tee -a "$log"
cp /tmp/final-tests.txt "$out/tests.txt"
left=$((560 - (SECONDS - t0)))
WARM_SECONDS=30 OUT="$out/sweep" EXTRA="--quant int8-fp8pv --steady-seconds 1" timeout "$left" \
  bash bench/sparse_attention_h200.sh 10 >/tmp/sweep.txt 2>&1
echo "sweep rc $? at $((SECONDS - t0)) s" | tee -a "$log"
cat "$out/sweep/summary.txt" | tee -a "$log"
tar -czf "$out/sweep.tgz" -C "$out" sweep && rm -rf "$out/sweep"
echo "all $((SECONDS - t0)) s" | tee -a "$log"
