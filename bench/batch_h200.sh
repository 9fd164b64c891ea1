#!/usr/bin/env bash
# Issue 6's throughput proof in one GPU call: images per minute of `ditrun batch` against diffusers'
# FluxPipeline (bench/diffusers_batch.py: a list of prompts per call) on the same random-weight Flux.1-dev
# folder (tools/make_random_flux.py, ~34 GB, written to $MODEL_DIR first), same prompts, size, steps and
# guidance, at batch sizes 1, 4 and 8. Both sides start cold in each run (ditrun's plans and CUDA graph
# capture, diffusers' first call) and write every image as a PNG; the model load is not timed.
# Needs a CUDA build (default build-gpu/) and diffusers importable; about 8 minutes on an H200 besides the
# build (writing the 34 GB folder ~2, loading it six times, 16 images per run).
# usage: bench/batch_h200.sh [SIZE=1024] [STEPS=10] [IMAGES=16]; results in $OUT (or bench-results/)
# DIFFUSERS_WARMUP=N gives diffusers N untimed calls first (default 0: both sides cold). RUN_TIMEOUT (default
# 200 s) bounds each run so that one stall does not take the whole call; full logs stay in $OUT.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${DITRUN_BIN:-$root/build-gpu/app/ditrun}"
out="${OUT:-$root/bench-results}"
model="${MODEL_DIR:-/tmp/flux-dev-random}"
size="${1:-1024}" steps="${2:-10}" images="${3:-16}"
mkdir -p "$out"
# A binary built by scripts/gpu_check.sh links the bundled libraries under $DITRUN_DEPS (the GPU machine has none
# of ditrun's -dev packages); the GPU_CHECK_EXTRA step has them on the path already, a later command does not.
lib="${DITRUN_DEPS:-/opt/ditrun-deps}/usr/lib/x86_64-linux-gnu"
[ -d "$lib" ] && export LD_LIBRARY_PATH="$lib:$lib/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$bin" --version > /dev/null || { echo "batch_h200: $bin does not run (see above)" >&2; exit 1; }
t0=$SECONDS
[ -d "$model" ] || python3 "$root/tools/make_random_flux.py" --out "$model"
echo "== model folder ready after $((SECONDS - t0)) s"
prompts="$out/batch_prompts.txt"
python3 - "$root/tests/fixtures/world/heldout_prompts.jsonl" "$images" > "$prompts" <<'PY'
import json, sys
for line in open(sys.argv[1]).readlines()[: int(sys.argv[2])]:
    print(json.loads(line)["prompt"])
PY
for bs in 1 4 8; do
  echo "== ditrun batch $bs"
  rm -rf "/tmp/ditrun_batch_$bs"
  timeout "${RUN_TIMEOUT:-200}" "$bin" batch --model "$model" --device cuda --prompts "$prompts" \
    --out-dir "/tmp/ditrun_batch_$bs" -W "$size" -H "$size" --steps "$steps" --batch-size "$bs" \
    --log-json > "$out/ditrun_batch_$bs.jsonl" 2> "$out/ditrun_batch_$bs.log" || echo "ditrun batch $bs: exit $?"
  tr '\r' '\n' < "$out/ditrun_batch_$bs.log" | grep -v '^\s*$' | tail -4
  grep -E '"(finished|group_done)"' "$out/ditrun_batch_$bs.jsonl" | tail -2
  echo "== diffusers batch $bs"
  timeout "${RUN_TIMEOUT:-200}" python3 "$root/bench/diffusers_batch.py" --model "$model" --prompts "$prompts" --batch-size "$bs" --size "$size" \
    --steps "$steps" --warmup "${DIFFUSERS_WARMUP:-0}" --out-dir "/tmp/diffusers_batch_$bs" --json "$out/diffusers_batch_$bs.json" 2>&1 | tail -1 |
    tee "$out/diffusers_batch_$bs.log"
done
# The table of docs/performance.md: whole-run images per minute (cold start included) and the steady state
# (passes / calls after the first), from ditrun's --log-json events and diffusers_batch.py's per-call seconds.
python3 - "$out" <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
print("| batch | ditrun img/min | diffusers img/min | ratio | ditrun pass (steady) | diffusers call (steady) |")
print("|---|---|---|---|---|---|")
for bs in (1, 4, 8):
    try:
        ev = [json.loads(l) for l in open(os.path.join(out, "ditrun_batch_%d.jsonl" % bs)) if l.startswith("{")]
        fin = [e for e in ev if e["event"] == "finished"][-1]
        starts = {e["pass"]: e["seconds"] for e in ev if e["event"] == "stage" and e["stage"] == "encode" and e["done"] == 0}
        ends = {e["pass"]: e["seconds"] for e in ev if e["event"] == "stage" and e["stage"] == "decode" and e["done"] == 1}
        steady = [ends[p] - starts[p] for p in sorted(ends) if p > 1 and p in starts]
        dif = json.load(open(os.path.join(out, "diffusers_batch_%d.json" % bs)))
        d_ipm, t_ipm = dif["images_per_minute"], fin["images_per_minute"]
        print("| %d | %.1f | %.1f | %.2fx | %s | %s |" % (
            bs, t_ipm, d_ipm, t_ipm / d_ipm, "%.2f s" % statistics.median(steady) if steady else "-",
            "%.2f s" % statistics.median(dif["calls"][1:]) if len(dif.get("calls", [])) > 1 else "-"))
    except (OSError, IndexError, KeyError, ValueError) as e:
        print("| %d | (no result: %s) |" % (bs, e))
PY
