#!/usr/bin/env bash
# EXPERIMENT (session 22): the bf16/f16 sm90ws kernel loading its tiles by TMA (tile_boxes.h) against its
# row gathers, in one binary (DITRUN_WS_TMA=0: gathers; 3: TMA for runs only, grid boxes gathered). One device call: build, the block-sparse GPU tests
# then kernel times alternating on grid layouts, then the sweep under the faster setting. Writes $OUT/tma.txt.
# Usage (repository root, on the device machine, carrying .devdeps and third_party/cudnn-frontend):
#   bash bench/ws_tma_h200.sh [OUT]
set -u
out=${1:-${OUT:-bench-results}}
mkdir -p "$out" third_party
[ -d third_party/cutlass ] || tar -xJf .devdeps/cutlass.tar.xz -C third_party
export LD_LIBRARY_PATH=/opt/ditrun-deps/usr/lib/x86_64-linux-gnu:/opt/ditrun-deps/usr/lib/x86_64-linux-gnu/openblas-pthread
t0=$SECONDS
log="$out/tma.txt"
BUILD_TARGETS="ditrun test_cuda" OUT=/tmp/tma-check timeout 300 bash scripts/gpu_check.sh --only-build >/tmp/tma-build.txt 2>&1
echo "build rc $? at $((SECONDS - t0)) s" | tee "$log"
tail -3 /tmp/tma-build.txt | tee -a "$log"
(cd build-gpu && timeout 200 ctest -R "cuda.sparse_attention|cuda.sla|cuda.block_sparse_quant" --timeout 60 \
  --output-on-failure >/tmp/tma-tests1.txt 2>&1)
echo "tests: $(grep -E 'tests passed|tests failed' /tmp/tma-tests1.txt) at $((SECONDS - t0)) s" | tee -a "$log"
grep -E "\((Failed|Timeout|SEGFAULT|Subprocess)|with expansion|FAILED" /tmp/tma-tests1.txt | head -10 | tee -a "$log"
B=build-gpu/app/ditrun
bench() {  # setting, grid args, methods; appends the sparse ms to /tmp/sum$1
  DITRUN_WS_TMA=$1 timeout 120 "$B" bench-attention $2 --dim 128 --kernel sm90ws --steady-seconds 1 --repeat 10 $3 >/tmp/tb.txt 2>&1
  awk '$2 == "sm90ws" {print $7}' /tmp/tb.txt >>/tmp/sum$1
  echo "WS_TMA=$1 [$2] rc $?: ms $(awk '$2 == "sm90ws" {printf "%s ", $7}' /tmp/tb.txt)| /(d·cud) $(awk '$2 == "sm90ws" {printf "%s ", $10}' /tmp/tb.txt)| cuDNN $(grep -o 'cuDNN dense: [0-9.]*' /tmp/tb.txt | awk '{print $3}') | $(nvidia-smi --query-gpu=temperature.gpu,clocks.sm,power.draw --format=csv,noheader) at $((SECONDS - t0)) s" | tee -a "$log"
}
rm -f /tmp/sum0 /tmp/sum1
FLUX="--grid 1x128x128 --text 512 --heads 24"
FM="--method gna:window=1x64x64,stride=1x16x16 --method grat:variant=B,group=1x16x16 --method grat:variant=X,group=1x16x16"
F4="--grid 1x256x256 --text 512 --heads 24"
F4M="--method grat:variant=B,group=1x16x16 --method gna:window=1x80x80,stride=1x16x16"
for round in 1 2; do for v in 0 1; do bench $v "$FLUX" "$FM"; bench $v "$F4" "$F4M"; done; done
# The sweep with grid boxes by TMA (1) if that was faster in sum over the sparse rows above, else runs only (3).
s0=$(awk '{s += $1} END {print s}' /tmp/sum0); s1=$(awk '{s += $1} END {print s}' /tmp/sum1)
choice=$(awk -v a="$s0" -v b="$s1" 'BEGIN {print (b < a) ? 1 : 3}')
echo "sparse sum: gathers $s0 ms, TMA $s1 ms: sweep with DITRUN_WS_TMA=$choice" | tee -a "$log"
DITRUN_WS_TMA=$choice OUT="$out/sweep" EXTRA="--quant int8-fp8pv --steady-seconds 1" timeout 300 \
  bash bench/sparse_attention_h200.sh 10 >/tmp/sweep.txt 2>&1
echo "sweep rc $?" | tee -a "$log"
cat "$out/sweep/summary.txt" | tee -a "$log"
tar -czf "$out/sweep.tgz" -C "$out" sweep && rm -rf "$out/sweep"
echo "all $((SECONDS - t0)) s" | tee -a "$log"
