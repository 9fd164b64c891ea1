#!/usr/bin/env bash
# EXPERIMENT (session 23, call 3): why the mixed instance is slower. (1) issue rates of MUFU.EX2 and of the
# FP8 kernel's F2FP e4m3 pack (bench/pipe_rates.cu); (2) the mixed instance on a layout whose tiles are all
# boxes (Flux GRAT-B, GNA 1x64x64: DITRUN_WS_MIXED=3) against the TMA instance (1) and against gathers (a
# layout the TMA instance cannot take is not needed: 0 on these layouts is the TMA instance too). Writes
# $OUT/mixed2.txt.
set -u
out=${1:-${OUT:-bench-results}}
mkdir -p "$out" third_party
[ -d third_party/cutlass ] || tar -xJf .devdeps/cutlass.tar.xz -C third_party
export LD_LIBRARY_PATH=/opt/ditrun-deps/usr/lib/x86_64-linux-gnu:/opt/ditrun-deps/usr/lib/x86_64-linux-gnu/openblas-pthread
t0=$SECONDS
log="$out/mixed2.txt"
nvcc -arch=sm_90a -O3 -o /tmp/pr bench/pipe_rates.cu && /tmp/pr | tee "$log"
BUILD_TARGETS="ditrun" OUT=/tmp/mx-check timeout 300 bash scripts/gpu_check.sh --only-build >/tmp/mx-build.txt 2>&1
echo "build rc $? at $((SECONDS - t0)) s" | tee -a "$log"
B=build-gpu/app/ditrun
bench() {  # setting, grid args, methods
  DITRUN_WS_MIXED=$1 timeout 150 "$B" bench-attention $2 --dim 128 --kernel sm90ws --steady-seconds 1 --repeat 10 $3 >/tmp/mb.txt 2>&1
  echo "MIXED=$1 [$2] rc $?: ms $(awk '$2 == "sm90ws" {printf "%s ", $7}' /tmp/mb.txt)| cuDNN $(grep -o 'cuDNN dense: [0-9.]*' /tmp/mb.txt | awk '{print $3}') | $(nvidia-smi --query-gpu=temperature.gpu,clocks.sm,power.draw --format=csv,noheader) at $((SECONDS - t0)) s" | tee -a "$log"
}
FL="--grid 1x128x128 --text 512 --heads 24"
FM="--method grat:variant=B,group=1x16x16 --method gna:window=1x64x64,stride=1x16x16 --method dense"
for round in 1 2; do for v in 1 3; do bench $v "$FL" "$FM"; done; done
echo "all $((SECONDS - t0)) s" | tee -a "$log"
