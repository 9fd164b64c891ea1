#!/usr/bin/env bash
# EXPERIMENT (session 25): the FP8 P·V kernel's epilogue staged through shared memory and stored in 16-byte
# chunks (kStaged, DITRUN_QWS_STAGED=1; call 4's trace: the 4-byte stores from registers took about 4,500
# cycles a CTA) against the landed kernel (0), in one binary. One device call: build, the quantized GPU tests
# under 1, kernel times alternating 0/1. Writes $OUT/staged.txt.
# Usage (repository root, on the device machine, carrying .devdeps and third_party/cudnn-frontend):
#   bash bench/quant_staged_h200.sh [OUT]
set -u
out=${1:-${OUT:-bench-results}}
mkdir -p "$out" third_party
[ -d third_party/cutlass ] || tar -xJf .devdeps/cutlass.tar.xz -C third_party
export LD_LIBRARY_PATH=/opt/ditrun-deps/usr/lib/x86_64-linux-gnu:/opt/ditrun-deps/usr/lib/x86_64-linux-gnu/openblas-pthread
t0=$SECONDS
log="$out/staged.txt"
BUILD_TARGETS="ditrun test_cuda" OUT=/tmp/staged-build timeout 300 bash scripts/gpu_check.sh --only-build >/tmp/staged-build.txt 2>&1
echo "build rc $? at $((SECONDS - t0)) s" | tee "$log"
(cd build-gpu && DITRUN_QWS_STAGED=1 timeout 150 ctest -V -R "cuda.block_sparse_quant|per_head_perms_quantized" \
  --timeout 90 >/tmp/staged-tests.txt 2>&1)
echo "tests: $(grep -E 'tests passed|tests failed' /tmp/staged-tests.txt) at $((SECONDS - t0)) s" | tee -a "$log"
grep -E "\((Failed|Timeout|SEGFAULT|Subprocess)" /tmp/staged-tests.txt | head -20 | tee -a "$log"
grep -E "int8-fp8pv.*vs CPU quant reference|per-head perms, int8-fp8pv" /tmp/staged-tests.txt | sed 's/^[0-9]*: //' |
  sed 's/; vs f32.*//' | head -40 | tee -a "$log"
cp /tmp/staged-tests.txt "$out/tests.txt"
B=build-gpu/app/ditrun
rm -f /tmp/sum0 /tmp/sum1
bench() {  # setting, grid args, methods
  DITRUN_QWS_STAGED=$1 timeout 90 "$B" bench-attention $2 --dim 128 --quant int8-fp8pv --kernel sm90ws \
    --steady-seconds 1 $3 >/tmp/pb.txt 2>&1
  grep -o 'kernel [0-9.]* (' /tmp/pb.txt | awk '{print $2}' >>/tmp/sum$1
  echo "STAGED=$1 [$2] rc $?: kernel ms $(grep -o 'kernel [0-9.]* (' /tmp/pb.txt | awk '{print $2}' | tr '\n' ' ')|" \
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
echo "kernel ms summed: STAGED=0 $s0, 1 $s1 at $((SECONDS - t0)) s" | tee -a "$log"
echo "all $((SECONDS - t0)) s" | tee -a "$log"
