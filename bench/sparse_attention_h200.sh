#!/usr/bin/env bash
# The sparse-attention sweep of docs/performance.md, on one GPU machine in one call: `ditrun bench-attention`
# (our block-sparse kernel per method, against cuDNN's dense SDPA on the same q/k/v) over the issue's
# attention-only problems: Flux 2048² and 4096² token grids (+512 text tokens before), Wan2.1 480p
# (21x30x52, no text, 12 heads) and HunyuanVideo 720p (33x45x80, 256 text tokens after, 56 of them real).
# Densities: GNA and GRAT settings from ../shared/docs/sparse-attention.md §6, plus dense (every tile full,
# which measures the kernel itself against cuDNN).
# Every row is timed after 2 s of running it (bench-attention --steady-seconds): the H200 runs these kernels
# at its 690 W limit, at a clock that depends on the kernel (docs/performance.md, session 12).
# usage: [WARM_SECONDS=60] bench/sparse_attention_h200.sh [REPEAT=10]; needs a CUDA build (default build-gpu/, DITRUN_BIN);
# results in $OUT (or bench-results/): a log per problem and summary.txt, every row on one line (also printed
# last, so that a device call's output tail holds the sweep). EXTRA: more bench-attention arguments for
# every problem, e.g. EXTRA="--quant int8-fp8pv --cudnn-fp8" adds the quantized kernel on every layout and
# cuDNN's FP8 dense attention (the yardstick of the INT8/FP8 target; docs/performance.md, session 14).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${DITRUN_BIN:-$root/build-gpu/app/ditrun}"
out="${OUT:-$root/bench-results}"
repeat="${1:-10}"
mkdir -p "$out"
run() {  # name, then bench-attention arguments
  local name="$1"
  shift
  echo "== $name"
  # shellcheck disable=SC2086  # EXTRA is a list of arguments
  "$bin" bench-attention --repeat "$repeat" --warmup 2 "$@" ${EXTRA:-} 2>&1 | tee "$out/sparse_$name.log" ||
    echo "== $name failed"
}
# Warm the GPU first: while it is cold, cuDNN's dense attention times 8-16% faster than once warm, and our
# kernel barely moves (docs/performance.md, session 22), so a sweep that starts cold divides its first rows
# by a cold cuDNN. WARM_SECONDS (default 60; 0: none) of cuDNN and our kernel on Flux 2048² dense, discarded.
if [ "${WARM_SECONDS:-60}" != 0 ]; then
  "$bin" bench-attention --grid 1x128x128 --text 512 --heads 24 --dim 128 --method dense --repeat 1 --warmup 0 \
    --steady-seconds "$(( ${WARM_SECONDS:-60} / 2 ))" >/dev/null 2>&1 || echo "== warm-up failed"
fi
run flux2048 --grid 1x128x128 --text 512 --heads 24 --dim 128 --method dense \
  --method gna:window=1x40x40,stride=1x16x16 --method gna:window=1x64x64,stride=1x16x16 \
  --method grat:variant=B,group=1x16x16 --method grat:variant=X,group=1x16x16
run flux4096 --grid 1x256x256 --text 512 --heads 24 --dim 128 --method dense \
  --method gna:window=1x80x80,stride=1x16x16 --method grat:variant=B,group=1x16x16 \
  --method grat:variant=X,group=1x32x32
run wan480 --grid 21x30x52 --text 0 --heads 12 --dim 128 --method dense \
  --method gna:window=9x16x24,stride=1x8x8 --method grat:variant=B,group=3x8x8
run hunyuan720 --grid 33x45x80 --text 256 --text-valid 56 --text-after --heads 24 --dim 128 --method dense \
  --method gna:window=18x24x24,stride=16x8x8 --method grat:variant=B,group=4x8x8 --method grat:variant=X,group=4x8x8
# Every row on one line (the logs above, condensed), also in $out/summary.txt.
echo "== summary"
awk -f "$root/bench/sparse_summary.awk" "$out"/sparse_flux2048.log "$out"/sparse_flux4096.log "$out"/sparse_wan480.log \
  "$out"/sparse_hunyuan720.log | tee "$out/summary.txt"
