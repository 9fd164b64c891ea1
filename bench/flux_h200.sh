#!/usr/bin/env bash
# The Flux benchmark of docs/performance.md, on one GPU machine in one call: `ditrun bench` and diffusers
# (bench/diffusers_flux.py) on the same full-size random-weight Flux.1-dev, for each size, then one table
# (bench/compare_flux.py). Needs a CUDA build (default build-gpu/, see scripts/gpu_check.sh), torch on the
# machine and diffusers importable (PYTHONPATH, e.g. the .whl wheels of docs/performance.md).
# usage: bench/flux_h200.sh [SIZES...]   (default: 1024 2048); results in $OUT (or bench-results/)
# On the offline GPU machine diffusers travels as wheels made here, in the repository root:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 -d .whl diffusers==0.42.1 importlib_metadata zipp
# and each call starts with: pip install --no-index --no-deps --target /tmp/site .whl/*.whl; PYTHONPATH=/tmp/site
# (carry .whl, .devdeps and third_party; scripts/gpu_check.sh builds build-gpu/ and can run this as GPU_CHECK_EXTRA).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${DITRUN_BIN:-$root/build-gpu/app/ditrun}"
out="${OUT:-$root/bench-results}"
parts="${BENCH_PARTS:-dit,attention,gemm,vae,text}"
mkdir -p "$out"
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(1024 2048)
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader || true
for s in "${sizes[@]}"; do
  echo "== ditrun bench ${s}x${s}"
  "$bin" bench --random-weights --model flux-dev -W "$s" -H "$s" --device cuda --parts "$parts" \
    --json "$out/ditrun_$s.json" 2>&1 | tee "$out/ditrun_$s.log"
  echo "== diffusers ${s}x${s}"
  python3 "$root/bench/diffusers_flux.py" --size "$s" --parts "$parts" --json "$out/diffusers_$s.json" \
    > "$out/diffusers_$s.log" 2>&1 || { echo "diffusers bench failed:"; tail -20 "$out/diffusers_$s.log"; }
done
python3 "$root/bench/compare_flux.py" "$out" | tee "$out/table.txt"
