#!/usr/bin/env bash
# EXPERIMENT (session 24), second call: the P codes (DITRUN_QWS_CODES=1) against the new CPU reference
# (quant_attention_cpu with p_codes): every block-sparse, SLA and quantized GPU test with CODES=1; then the
# embedded trained model's images with int8-fp8pv GNA and GRAT-X under CODES=0 (exp2, P rounded to nearest)
# and CODES=1, PSNR against full attention. Writes $OUT/check.txt and the compare reports.
# Usage (repository root, on the device machine, carrying .devdeps and third_party/cudnn-frontend):
#   bash bench/quant_codes_check_h200.sh [OUT]
set -u
out=${1:-${OUT:-bench-results}}
mkdir -p "$out" third_party
[ -d third_party/cutlass ] || tar -xJf .devdeps/cutlass.tar.xz -C third_party
export LD_LIBRARY_PATH=/opt/ditrun-deps/usr/lib/x86_64-linux-gnu:/opt/ditrun-deps/usr/lib/x86_64-linux-gnu/openblas-pthread
t0=$SECONDS
log="$out/check.txt"
BUILD_TARGETS="ditrun test_cuda" OUT=/tmp/check-build timeout 300 bash scripts/gpu_check.sh --only-build >/tmp/check-build.txt 2>&1
echo "build rc $? at $((SECONDS - t0)) s" | tee "$log"
(cd build-gpu && DITRUN_QWS_CODES=1 timeout 240 ctest -R "cuda.sparse_attention|cuda.sla|cuda.block_sparse_quant" \
  --timeout 90 --output-on-failure >/tmp/check-tests.txt 2>&1)
echo "CODES=1 tests: $(grep -E 'tests passed|tests failed' /tmp/check-tests.txt) at $((SECONDS - t0)) s" | tee -a "$log"
grep -E "\((Failed|Timeout|SEGFAULT|Subprocess)" /tmp/check-tests.txt | head -20 | tee -a "$log"
grep -E "int8-fp8pv.*rel|per-head perms" /tmp/check-tests.txt | head -20 | tee -a "$log"
cp /tmp/check-tests.txt "$out/tests.txt"
M="gna:window=1x10x10,gna:window=1x10x10,quant=int8-fp8pv,grat:variant=X,group=1x2x2,grat:variant=X,group=1x2x2,quant=int8-fp8pv"
for c in 0 1; do
  DITRUN_QWS_CODES=$c timeout 170 build-gpu/app/ditrun compare --device cuda -W 512 -H 512 --dense-steps 6 \
    --prompts tests/fixtures/world/heldout_prompts.jsonl --limit 48 --attention "$M" --out-dir /tmp/cmp$c -q \
    >"$out/compare$c.txt" 2>&1
  echo "compare CODES=$c rc $? at $((SECONDS - t0)) s" | tee -a "$log"
  tail -8 "$out/compare$c.txt" | tee -a "$log"
  cp /tmp/cmp$c/report.json "$out/report$c.json" 2>/dev/null
done
echo "all $((SECONDS - t0)) s" | tee -a "$log"
