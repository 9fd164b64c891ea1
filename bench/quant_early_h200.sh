#!/usr/bin/env bash
# EXPERIMENT (session 25): the FP8 P·V kernel taking an entry's first loads and its epilogue's look-ups
# early (kEarly, DITRUN_QWS_EARLY=1: Q's and step 0's loads before the CTA barrier, the rows' tokens and
# v_scale's lines at the consumers' start) against the landed kernel (0), in one binary. One device call:
# build, the quantized GPU tests under 1, kernel times alternating 0/1, then the sweep with 1 if it is
# faster. Writes $OUT/early.txt (and $OUT/sweep.tgz).
# Usage (repository root, on the device machine, carrying .devdeps and third_party/cudnn-frontend):
#   bash bench/quant_early_h200.sh [OUT]
set -u
out=${1:-${OUT:-bench-results}}
mkdir -p "$out" third_party
[ -d third_party/cutlass ] || tar -xJf .devdeps/cutlass.tar.xz -C third_party
export LD_LIBRARY_PATH=/opt/ditrun-deps/usr/lib/x86_64-linux-gnu:/opt/ditrun-deps/usr/lib/x86_64-linux-gnu/openblas-pthread
t0=$SECONDS
log="$out/early.txt"
BUILD_TARGETS="ditrun test_cuda" OUT=/tmp/early-build timeout 300 bash scripts/gpu_check.sh --only-build >/tmp/early-build.txt 2>&1
echo "build rc $? at $((SECONDS - t0)) s" | tee "$log"
(cd build-gpu && DITRUN_QWS_EARLY=1 timeout 150 ctest -V -R "cuda.block_sparse_quant|per_head_perms_quantized" \
  --timeout 90 >/tmp/early-tests.txt 2>&1)
echo "tests: $(grep -E 'tests passed|tests failed' /tmp/early-tests.txt) at $((SECONDS - t0)) s" | tee -a "$log"
grep -E "\((Failed|Timeout|SEGFAULT|Subprocess)" /tmp/early-tests.txt | head -20 | tee -a "$log"
grep -E "int8-fp8pv.*vs CPU quant reference|per-head perms, int8-fp8pv" /tmp/early-tests.txt | sed 's/^[0-9]*: //' |
  sed 's/; vs f32.*//' | head -40 | tee -a "$log"
cp /tmp/early-tests.txt "$out/tests.txt"
B=build-gpu/app/ditrun
rm -f /tmp/sum0 /tmp/sum1
bench() {  # setting, grid args, methods
  DITRUN_QWS_EARLY=$1 timeout 90 "$B" bench-attention $2 --dim 128 --quant int8-fp8pv --kernel sm90ws \
    --steady-seconds 1 $3 >/tmp/pb.txt 2>&1
  grep -o 'kernel [0-9.]* (' /tmp/pb.txt | awk '{print $2}' >>/tmp/sum$1
  echo "EARLY=$1 [$2] rc $?: kernel ms $(grep -o 'kernel [0-9.]* (' /tmp/pb.txt | awk '{print $2}' | tr '\n' ' ')|" \
    "bf16/quant $(grep -o 'kernel = [0-9.]*x' /tmp/pb.txt | awk '{print $3}' | tr '\n' ' ')|" \
    "dist $(grep -o 'relative L2 distance to the bf16 kernel [0-9.e+-]*' /tmp/pb.txt | awk '{print $NF}' | tr '\n' ' ')" |
    tee -a "$log"
}
FLUX="--grid 1x128x128 --text 512 --heads 24"
FM="--method gna:window=1x40x40,stride=1x16x16 --method gna:window=1x64x64,stride=1x16x16 --method grat:variant=B,group=1x16x16 --method dense"
WAN="--grid 21x30x52 --text 0 --heads 12"
WM="--method gna:window=9x16x24,stride=1x8x8 --method grat:variant=B,group=3x8x8"
for round in 1 2; do for p in 0 1; do bench $p "$FLUX" "$FM"; done; done
for p in 0 1; do bench $p "$WAN" "$WM"; done
s0=$(awk '{s += $1} END {print s}' /tmp/sum0); s1=$(awk '{s += $1} END {print s}' /tmp/sum1)
echo "kernel ms summed: EARLY=0 $s0, 1 $s1 at $((SECONDS - t0)) s" | tee -a "$log"
if awk -v a="$s0" -v b="$s1" 'BEGIN {exit !(b < 0.99 * a)}'; then :; else echo "no sweep: EARLY=1 not 1% faster" | tee -a "$log"; exit 0; fi
left=$((585 - (SECONDS - t0)))
if [ "$left" -lt 235 ]; then echo "no sweep: $left s left" | tee -a "$log"; exit 0; fi
DITRUN_QWS_EARLY=1 WARM_SECONDS=30 OUT="$out/sweep" EXTRA="--quant int8-fp8pv --steady-seconds 1" timeout "$left" \
  bash bench/sparse_attention_h200.sh 10 >/tmp/sweep.txt 2>&1
echo "sweep rc $? at $((SECONDS - t0)) s" | tee -a "$log"
cat "$out/sweep/summary.txt" | tee -a "$log"
tar -czf "$out/sweep.tgz" -C "$out" sweep && rm -rf "$out/sweep"
echo "all $((SECONDS - t0)) s" | tee -a "$log"
