#!/usr/bin/env bash
# EXPERIMENT (session 25, diagnostic): where an FP8 P·V entry's time goes. DITRUN_QWS_TRACE=1 makes the
# sm90ws int8-fp8pv kernel record per-CTA timestamps (consumer warpgroup 0's first thread: entry, CTA
# barrier, Q, the first stage, steps 0-3, the loop's end, the last P·V, the store; globaltimer at both ends
# and the SM id), read back after every launch and printed as phase means in cycles plus the gap between
# consecutive CTAs on one SM. Timings printed by bench-attention under the trace are not comparable.
# Writes $OUT/trace.txt.
# Usage (repository root, on the device machine, carrying .devdeps and third_party/cudnn-frontend):
#   bash bench/quant_trace_h200.sh [OUT]
set -u
out=${1:-${OUT:-bench-results}}
mkdir -p "$out" third_party
[ -d third_party/cutlass ] || tar -xJf .devdeps/cutlass.tar.xz -C third_party
export LD_LIBRARY_PATH=/opt/ditrun-deps/usr/lib/x86_64-linux-gnu:/opt/ditrun-deps/usr/lib/x86_64-linux-gnu/openblas-pthread
t0=$SECONDS
log="$out/trace.txt"
BUILD_TARGETS="ditrun" OUT=/tmp/trace-build timeout 300 bash scripts/gpu_check.sh --only-build >/tmp/trace-build.txt 2>&1
echo "build rc $? at $((SECONDS - t0)) s" | tee "$log"
B=build-gpu/app/ditrun
for m in dense gna:window=1x40x40,stride=1x16x16 grat:variant=B,group=1x16x16 gna:window=1x64x64,stride=1x16x16; do
  echo "== flux2048 $m" | tee -a "$log"
  DITRUN_QWS_TRACE=1 timeout 60 "$B" bench-attention --grid 1x128x128 --text 512 --heads 24 --dim 128 \
    --quant int8-fp8pv --kernel sm90ws --method "$m" --repeat 3 --warmup 1 >/tmp/tr.txt 2>&1
  grep "qws trace" /tmp/tr.txt | tail -3 | tee -a "$log"
done
echo "== wan480 gna" | tee -a "$log"
DITRUN_QWS_TRACE=1 timeout 60 "$B" bench-attention --grid 21x30x52 --text 0 --heads 12 --dim 128 \
  --quant int8-fp8pv --kernel sm90ws --method gna:window=9x16x24,stride=1x8x8 --repeat 3 --warmup 1 >/tmp/tr.txt 2>&1
grep "qws trace" /tmp/tr.txt | tail -2 | tee -a "$log"
echo "all $((SECONDS - t0)) s" | tee -a "$log"
