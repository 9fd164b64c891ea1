#!/usr/bin/env bash
# Generates every prompt of a world prompts file with ditrun (CPU) and scores the images with
# `ditrun evaluate`. The numbers in docs/quality.md come from this script.
#   tools/eval_embedded.sh [PROMPTS=tests/fixtures/world/heldout_prompts.jsonl] [OUT=out/eval] [EXTRA generate flags...]
# Env: DITRUN (binary, default build/app/ditrun), LIMIT (first N prompts only), JOBS (parallel generations, default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
prompts=${1:-tests/fixtures/world/heldout_prompts.jsonl}
out=${2:-out/eval}
shift $(( $# > 2 ? 2 : $# ))
bin=${DITRUN:-build/app/ditrun}
mkdir -p "$out"
limit=${LIMIT:-0}
python3 - "$prompts" "$limit" "$out" <<'PY'
import json, sys
n, out = int(sys.argv[2]), sys.argv[3]
lines = [l for l in open(sys.argv[1]) if l.strip()][: int(sys.argv[2]) or None]
with open(f"{out}/jobs.tsv", "w") as jobs, open(f"{out}/prompts.jsonl", "w") as prompts:
    for l in lines:
        d = json.loads(l)
        jobs.write(f"{d['seed']}\t{d['image']}\t{d['prompt']}\n")
        prompts.write(l if l.endswith("\n") else l + "\n")
PY
start=$(date +%s.%N)
export bin out
# shellcheck disable=SC2016
xargs -P "${JOBS:-1}" -d '\n' -I{} bash -c 'IFS=$'"'"'\t'"'"' read -r seed image prompt <<< "{}"; \
  "$bin" generate -q --threads 1 --seed "$seed" --prompt "$prompt" --out "$out/$image" --overwrite '"$*"' >/dev/null' < "$out/jobs.tsv"
end=$(date +%s.%N)
n=$(wc -l < "$out/jobs.tsv")
echo "generated $n images in $(python3 -c "print(round($end - $start, 1))") s"
"$bin" evaluate --prompts "$out/prompts.jsonl" --images "$out" --json "$out/eval.json"
