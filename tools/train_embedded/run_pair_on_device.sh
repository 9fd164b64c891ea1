#!/bin/bash
# Two training recipes side by side on one H200, for comparing them at equal GPU time (session 6: two runs
# sharing the GPU take 165 ms per step each against 94 ms alone, 1.14x the steps of one run). Each gets the
# common arguments, then its own; both write their folder under /tmp.
#   bash tools/train_embedded/run_pair_on_device.sh "COMMON ARGS" "ARGS OF A" "ARGS OF B"
# e.g. "--keep-ae models/ditrun-shapes --seconds 470 --batch 512 --reuse 4 --compile --eval-n 0" "--seed 41"
#      "--seed 42 --world-override '{\"size_jitter\": 0.0}'"  (quotes inside an argument string group words)
# Leaves in $OUT: modelA.tgz.part-*, modelB.tgz.part-* (15 MB parts), trainA.log, trainB.log (6 files of the
# device's 8). Unpack here: cat DIR/modelA.tgz.part-* | tar xzf - -C DEST
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
common=$1
workers=$(( $(nproc) / 2 - 1 ))
run() {  # <name> <args>: the argument strings are parsed like a shell line, so quotes in them group words
  eval "python3 tools/train_embedded/train.py train --init models/ditrun-shapes-init --out /tmp/pair$1/ditrun-shapes \
    $common --data-workers $workers $2" 2>&1 | grep --line-buffered -v "Warning\|^\[transformers\]" > "$OUT/train$1.log"
}
run A "$2" &
run B "$3" &
wait
rc=0
for r in A B; do
  if [ -d "/tmp/pair$r/ditrun-shapes" ]; then
    tar -C "/tmp/pair$r" -czf "/tmp/pair$r.tgz" ditrun-shapes && split -b 15M -d "/tmp/pair$r.tgz" "$OUT/model$r.tgz.part-"
  else
    echo "run $r left no model folder (see train$r.log)"; rc=1
  fi
  echo "== $r"; tail -14 "$OUT/train$r.log"
done
exit $rc
