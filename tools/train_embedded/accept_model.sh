#!/usr/bin/env bash
# After unpack.sh put a newly trained folder in models/ditrun-shapes: everything that must follow it before it
# can be committed, on the CPU. (1) the end-to-end fixture against diffusers (tools/make_embedded_e2e.py),
# (2) the three README images at the default settings (their prompts and seeds are in the PNGs' parameters),
# (3) `ditrun evaluate` on all 200 held-out prompts at 256² and at 512², one table at the end for
# docs/quality.md. About 6 + 27 minutes on 2 cores (512² is ~15 s per image); SKIP_512=1 leaves it out.
#   tools/train_embedded/accept_model.sh [OUT=out/accept]
# Env: DITRUN (default build/app/ditrun; needs OpenCV for evaluate), PYTHON (default /work/pyenv/bin/python:
# torch, diffusers, PIL), JOBS (default 2). Then: the CPU tests (the e2e and "follows the prompt" cases),
# docs/quality.md's results table and the README's description of the model.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-out/accept}
bin=${DITRUN:-build/app/ditrun}
py=${PYTHON:-/work/pyenv/bin/python}
[ -x "$bin" ] || { echo "accept_model: no ditrun binary at $bin (set DITRUN)" >&2; exit 1; }
mkdir -p "$out"
"$py" tools/make_embedded_e2e.py
gen() {  # <file> <seed> <prompt>
  "$bin" generate -q --seed "$2" --prompt "$3" --out "docs/images/$1.png" --overwrite > /dev/null
}
gen embedded_circle 42 "a large red circle at the left on a blue background"
gen embedded_square 1013 "a medium purple square at the left on a green background"
gen embedded_two_objects 42 "a large blue ring at the top right and a small orange square at the bottom left on a white background"
echo "accept_model: README images regenerated in docs/images/embedded_*.png"
sizes=(256)
[ "${SKIP_512:-0}" = 1 ] || sizes+=(512)
for s in "${sizes[@]}"; do
  JOBS=${JOBS:-2} DITRUN="$bin" bash tools/eval_embedded.sh tests/fixtures/world/heldout_prompts.jsonl "$out/eval$s" \
    -W "$s" -H "$s" > "$out/eval$s.txt"
done
python3 - "$out" "${sizes[@]}" <<'PY'
import json, os, sys
out, sizes = sys.argv[1], sys.argv[2:]
rows = {s: json.load(open(os.path.join(out, "eval%s" % s, "eval.json")))["summary"] for s in sizes}
print("| attribute | " + " | ".join("%s²" % s for s in sizes) + " |")
print("|---|" + "---|" * len(sizes))
for k in rows[sizes[0]]:
    print("| %s | " % k + " | ".join("%.1f%%" % (100 * rows[s][k]["accuracy"]) for s in sizes) + " |")
PY
