#!/usr/bin/env bash
# EXPERIMENT (session 24): the FP8 P·V kernel making P's e4m3 codes without exp2 (softmax_rows_codes,
# DITRUN_QWS_CODES=1) against the landed kernel (0), in one binary. One device call: build, the quantized GPU
# tests under both settings (1 changes P's rounding, so its failures measure how far it is from the CPU
# reference), kernel times alternating with each run's distance to the bf16 kernel (landed: 3.7e-2), then
# the sweep with CODES=1. Writes $OUT/codes.txt.
# Usage (repository root, on the device machine, carrying .devdeps and third_party/cudnn-frontend):
#   bash bench/quant_codes_h200.sh [OUT]
set -u
out=${1:-${OUT:-bench-results}}
mkdir -p "$out" third_party
[ -d third_party/cutlass ] || tar -xJf .devdeps/cutlass.tar.xz -C third_party
export LD_LIBRARY_PATH=/opt/ditrun-deps/usr/lib/x86_64-linux-gnu:/opt/ditrun-deps/usr/lib/x86_64-linux-gnu/openblas-pthread
t0=$SECONDS
log="$out/codes.txt"
BUILD_TARGETS="ditrun test_cuda" OUT=/tmp/codes-check timeout 300 bash scripts/gpu_check.sh --only-build >/tmp/codes-build.txt 2>&1
echo "build rc $? at $((SECONDS - t0)) s" | tee "$log"
ok=1
for p in 0 1; do
  (cd build-gpu && DITRUN_QWS_CODES=$p timeout 120 ctest -R "cuda.block_sparse_quant|per_head_perms_quantized" \
    --timeout 60 --output-on-failure >/tmp/codes-tests$p.txt 2>&1)
  echo "CODES=$p tests: $(grep -E 'tests passed|tests failed' /tmp/codes-tests$p.txt) at $((SECONDS - t0)) s" | tee -a "$log"
  grep -q "100% tests passed" /tmp/codes-tests$p.txt || ok=0
  grep -E "\((Failed|Timeout|SEGFAULT|Subprocess)|with expansion|relative" /tmp/codes-tests$p.txt | head -24 | tee -a "$log"
done
B=build-gpu/app/ditrun
rm -f /tmp/sum0 /tmp/sum1
bench() {  # setting, grid args, methods
  DITRUN_QWS_CODES=$1 timeout 90 "$B" bench-attention $2 --dim 128 --quant int8-fp8pv --kernel sm90ws \
    --steady-seconds 1 $3 >/tmp/pb.txt 2>&1
  grep -o 'kernel [0-9.]* (' /tmp/pb.txt | awk '{print $2}' >>/tmp/sum$1
  echo "CODES=$1 [$2] rc $?: kernel ms $(grep -o 'kernel [0-9.]* (' /tmp/pb.txt | awk '{print $2}' | tr '\n' ' ')|" \
    "bf16/quant $(grep -o 'kernel = [0-9.]*x' /tmp/pb.txt | awk '{print $3}' | tr '\n' ' ')|" \
    "dist $(grep -o 'relative L2 distance to the bf16 kernel [0-9.e+-]*' /tmp/pb.txt | awk '{print $NF}' | tr '\n' ' ')" |
    tee -a "$log"
}
FLUX="--grid 1x128x128 --text 512 --heads 24"
FM="--method dense --method grat:variant=B,group=1x16x16 --method gna:window=1x40x40,stride=1x16x16 --method gna:window=1x64x64,stride=1x16x16 --method grat:variant=X,group=1x16x16"
WAN="--grid 21x30x52 --text 0 --heads 12"
WM="--method dense --method gna:window=9x16x24,stride=1x8x8 --method grat:variant=B,group=3x8x8"
for round in 1 2; do for p in 0 1; do bench $p "$FLUX" "$FM"; done; done
for p in 0 1; do bench $p "$WAN" "$WM"; done
s0=$(awk '{s += $1} END {print s}' /tmp/sum0); s1=$(awk '{s += $1} END {print s}' /tmp/sum1)
echo "kernel ms summed: CODES=0 $s0, 1 $s1 at $((SECONDS - t0)) s" | tee -a "$log"
if awk -v a="$s0" -v b="$s1" 'BEGIN {exit !(b < 0.97 * a)}'; then choice=1; else echo "no sweep: CODES=1 not 3% faster" | tee -a "$log"; exit 0; fi
left=$((580 - (SECONDS - t0)))
if [ "$left" -lt 240 ]; then echo "no sweep: $left s left" | tee -a "$log"; exit 0; fi
DITRUN_QWS_CODES=$choice WARM_SECONDS=30 OUT="$out/sweep" EXTRA="--quant int8-fp8pv --steady-seconds 1" timeout "$left" \
  bash bench/sparse_attention_h200.sh 10 >/tmp/sweep.txt 2>&1
echo "sweep rc $?" | tee -a "$log"
cat "$out/sweep/summary.txt" | tee -a "$log"
tar -czf "$out/sweep.tgz" -C "$out" sweep && rm -rf "$out/sweep"
echo "all $((SECONDS - t0)) s" | tee -a "$log"
