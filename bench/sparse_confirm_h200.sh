#!/usr/bin/env bash
# Session 25, confirming call for issue 5's targets on the landed kernels (HEAD, no experiment switches):
#   1. every block-sparse, SLA and quantized GPU test, verbose, so the passing tests' distances to their CPU
#      reference are on record too;
#   2. the embedded trained model: full attention against GNA 1x10x10 and GRAT-X 1x2x2, bf16 and int8-fp8pv,
#      48 held-out prompts, PSNR against full;
#   3. the sweep (bench/sparse_attention_h200.sh: our bf16 kernel against cuDNN dense, and int8-fp8pv against
#      our bf16 kernel, kernel only and end to end) after 30 s of warm-up.
# Writes $OUT/confirm.txt, $OUT/tests.txt, $OUT/compare.txt, $OUT/report.json and $OUT/sweep.tgz.
# Usage (repository root, on the device machine, carrying .devdeps and third_party/cudnn-frontend):
#   bash bench/sparse_confirm_h200.sh [OUT]
set -u
out=${1:-${OUT:-bench-results}}
mkdir -p "$out" third_party
[ -d third_party/cutlass ] || tar -xJf .devdeps/cutlass.tar.xz -C third_party
export LD_LIBRARY_PATH=/opt/ditrun-deps/usr/lib/x86_64-linux-gnu:/opt/ditrun-deps/usr/lib/x86_64-linux-gnu/openblas-pthread
t0=$SECONDS
log="$out/confirm.txt"
BUILD_TARGETS="ditrun test_cuda" OUT=/tmp/confirm-build timeout 300 bash scripts/gpu_check.sh --only-build >/tmp/confirm-build.txt 2>&1
echo "build rc $? at $((SECONDS - t0)) s" | tee "$log"
(cd build-gpu && timeout 200 ctest -V -R "cuda.sparse_attention|cuda.sla|cuda.block_sparse_quant" \
  --timeout 90 >/tmp/confirm-tests.txt 2>&1)
echo "tests: $(grep -E 'tests passed|tests failed' /tmp/confirm-tests.txt) at $((SECONDS - t0)) s" | tee -a "$log"
grep -E "\((Failed|Timeout|SEGFAULT|Subprocess)" /tmp/confirm-tests.txt | head -20 | tee -a "$log"
grep -E "vs CPU quant reference|per-head perms" /tmp/confirm-tests.txt | sed 's/^[0-9]*: //' | head -40 | tee -a "$log"
cp /tmp/confirm-tests.txt "$out/tests.txt"
M="gna:window=1x10x10,gna:window=1x10x10,quant=int8-fp8pv,grat:variant=X,group=1x2x2,grat:variant=X,group=1x2x2,quant=int8-fp8pv"
timeout 120 build-gpu/app/ditrun compare --device cuda -W 512 -H 512 --dense-steps 6 \
  --prompts tests/fixtures/world/heldout_prompts.jsonl --limit 48 --attention "$M" --out-dir /tmp/cmp -q \
  >"$out/compare.txt" 2>&1
echo "compare rc $? at $((SECONDS - t0)) s" | tee -a "$log"
tail -8 "$out/compare.txt" | tee -a "$log"
cp /tmp/cmp/report.json "$out/report.json" 2>/dev/null
left=$((575 - (SECONDS - t0)))
WARM_SECONDS=30 OUT="$out/sweep" EXTRA="--quant int8-fp8pv --steady-seconds 1" timeout "$left" \
  bash bench/sparse_attention_h200.sh 10 >/tmp/sweep.txt 2>&1
echo "sweep rc $? at $((SECONDS - t0)) s" | tee -a "$log"
cat "$out/sweep/summary.txt" | tee -a "$log"
tar -czf "$out/sweep.tgz" -C "$out" sweep && rm -rf "$out/sweep"
echo "all $((SECONDS - t0)) s" | tee -a "$log"
