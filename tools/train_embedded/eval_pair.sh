#!/usr/bin/env bash
# The CPU side of run_pair_on_device.sh: unpacks modelA / modelB from a device call's files and scores both
# with ditrun on the same held-out prompts (default: the 99 plain-background ones of
# tests/fixtures/world/heldout_prompts.jsonl, the set of docs/quality.md "Session 6"), then prints one line per
# attribute side by side.
#   tools/train_embedded/eval_pair.sh DEVICE_FILES_DIR [OUT=out/pair] [PROMPTS]
# Env: DITRUN (default build/app/ditrun; needs OpenCV for evaluate), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
files=${1:?usage: eval_pair.sh DEVICE_FILES_DIR [OUT] [PROMPTS]}
out=${2:-out/pair}
prompts=${3:-}
mkdir -p "$out"
if [ -z "$prompts" ]; then
  prompts="$out/heldout_plain.jsonl"
  python3 - "$prompts" <<'PY'
import json, sys
lines = [l for l in open("tests/fixtures/world/heldout_prompts.jsonl") if json.loads(l)["scene"]["texture"] == "plain"]
open(sys.argv[1], "w").writelines(lines)
PY
fi
for r in A B; do
  ls "$files"/model$r.tgz.part-* > /dev/null || { echo "eval_pair: no model$r.tgz.part-* in $files" >&2; exit 1; }
  rm -rf "$out/model$r" && mkdir -p "$out/model$r"
  cat "$files"/model$r.tgz.part-* | tar xzf - -C "$out/model$r"
  JOBS=${JOBS:-2} bash tools/eval_embedded.sh "$prompts" "$out/eval$r" --model "$out/model$r/ditrun-shapes" > "$out/eval$r.txt"
done
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = {r: json.load(open(os.path.join(out, "eval%s" % r, "eval.json")))["summary"] for r in "AB"}
print("%-12s %8s %8s" % ("attribute", "A", "B"))
for k in rows["A"]:
    print("%-12s %7.1f%% %7.1f%%" % (k, 100 * rows["A"][k]["accuracy"], 100 * rows["B"][k]["accuracy"]))
PY
