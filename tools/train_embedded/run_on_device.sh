#!/bin/bash
# Device side of the embedded-model training: one command on one H200, from the repo root, with the
# diffusers wheel (and its two pure-python deps) carried in .whl/. Extra arguments go to `train.py train`.
#   bash tools/train_embedded/run_on_device.sh [--seconds 480 ...]
# Leaves in $OUT: model.tgz.part-00.. (the trained folder, tar.gz split in 15 MB parts), train.log,
# train_config.json and the sample grids. Reassemble here with tools/train_embedded/unpack.sh.
set -uo pipefail
OUT=${OUT:-/tmp/out}
WORK=/tmp/ditrun-train
mkdir -p "$OUT" "$WORK"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 tools/train_embedded/train.py train --init models/ditrun-shapes-init --out "$WORK/ditrun-shapes" "$@" \
  2>&1 | grep --line-buffered -v "Warning\|^\[transformers\]" | tee "$OUT/train.log"
rc=${PIPESTATUS[0]}
if [ -d "$WORK/ditrun-shapes" ]; then
  tar -C "$WORK" -czf "$WORK/model.tgz" ditrun-shapes
  split -b 15M -d "$WORK/model.tgz" "$OUT/model.tgz.part-"
  cp "$WORK/ditrun-shapes/train_config.json" "$OUT/" 2>/dev/null
  cp "$WORK/ditrun-shapes/samples/"*.png "$OUT/" 2>/dev/null
  ls -l "$OUT"
fi
exit $rc
