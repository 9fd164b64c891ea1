#!/usr/bin/env bash
# EXPERIMENT (session 23): the bf16/f16 sm90ws kernel's mixed instance (TMA for the key tiles that are runs
# or whole grid boxes, row gathers for the others, per step) against its gathers, in one binary
# (DITRUN_WS_MIXED=0: gathers where the mixed instance would run; 1: descriptors a step ahead of the
# look-ups that branch on them; 2: every slot's look-ups with its descriptor). One device call: build, the
# block-sparse GPU tests (the sm90ws ones under 2 too), kernel times alternating on the layouts that change
# (Wan2.1, HunyuanVideo GRAT-B, Flux GNA 1x40x40). Writes $OUT/mixed.txt. The first version (call 1: the
# look-ups branched on a descriptor loaded right before them) ran the sweep after this.
# Usage (repository root, on the device machine, carrying .devdeps and third_party/cudnn-frontend):
#   bash bench/ws_mixed_h200.sh [OUT]
set -u
out=${1:-${OUT:-bench-results}}
mkdir -p "$out" third_party
[ -d third_party/cutlass ] || tar -xJf .devdeps/cutlass.tar.xz -C third_party
export LD_LIBRARY_PATH=/opt/ditrun-deps/usr/lib/x86_64-linux-gnu:/opt/ditrun-deps/usr/lib/x86_64-linux-gnu/openblas-pthread
t0=$SECONDS
log="$out/mixed.txt"
BUILD_TARGETS="ditrun test_cuda" OUT=/tmp/mx-check timeout 300 bash scripts/gpu_check.sh --only-build >/tmp/mx-build.txt 2>&1
echo "build rc $? at $((SECONDS - t0)) s" | tee "$log"
tail -3 /tmp/mx-build.txt | tee -a "$log"
(cd build-gpu && timeout 240 ctest -R "cuda.sparse_attention|cuda.sla|cuda.block_sparse_quant" --timeout 60 \
  --output-on-failure >/tmp/mx-tests.txt 2>&1)
echo "tests: $(grep -E 'tests passed|tests failed' /tmp/mx-tests.txt) at $((SECONDS - t0)) s" | tee -a "$log"
grep -E "\((Failed|Timeout|SEGFAULT|Subprocess)|with expansion|FAILED|gathered," /tmp/mx-tests.txt | sort -u | head -20 | tee -a "$log"
(cd build-gpu && DITRUN_WS_MIXED=2 timeout 120 ctest -R "cuda.sparse_attention.sm90ws" --timeout 60 --output-on-failure >/tmp/mx-tests2.txt 2>&1)
echo "sm90ws tests under DITRUN_WS_MIXED=2: $(grep -E 'tests passed|tests failed' /tmp/mx-tests2.txt) at $((SECONDS - t0)) s" | tee -a "$log"
B=build-gpu/app/ditrun
bench() {  # setting, grid args, methods
  DITRUN_WS_MIXED=$1 timeout 150 "$B" bench-attention $2 --dim 128 --kernel sm90ws --steady-seconds 1 --repeat 10 $3 >/tmp/mb.txt 2>&1
  echo "MIXED=$1 [$2] rc $?: ms $(awk '$2 == "sm90ws" {printf "%s ", $7}' /tmp/mb.txt)| /(d·cud) $(awk '$2 == "sm90ws" {printf "%s ", $10}' /tmp/mb.txt)| cuDNN $(grep -o 'cuDNN dense: [0-9.]*' /tmp/mb.txt | awk '{print $3}') | $(nvidia-smi --query-gpu=temperature.gpu,clocks.sm,power.draw --format=csv,noheader) at $((SECONDS - t0)) s" | tee -a "$log"
}
WAN="--grid 21x30x52 --text 0 --heads 12"
WM="--method gna:window=9x16x24,stride=1x8x8 --method grat:variant=B,group=3x8x8"
HY="--grid 33x45x80 --text 256 --text-valid 56 --text-after --heads 24"
HM="--method grat:variant=B,group=4x8x8"
FL="--grid 1x128x128 --text 512 --heads 24"
FM="--method gna:window=1x40x40,stride=1x16x16"
for round in 1 2; do for v in 0 1 2; do bench $v "$WAN" "$WM"; bench $v "$FL" "$FM"; done; done
for v in 0 1 2; do bench $v "$HY" "$HM"; done
echo "all $((SECONDS - t0)) s" | tee -a "$log"
