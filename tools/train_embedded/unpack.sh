#!/bin/bash
# Reassembles the device's model.tgz.part-* into models/ditrun-shapes/ (replacing it).
#   bash tools/train_embedded/unpack.sh DIR_WITH_PARTS [DEST=models/ditrun-shapes]
set -euo pipefail
SRC=${1:?usage: unpack.sh DIR_WITH_PARTS [DEST]}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEST=${2:-$ROOT/models/ditrun-shapes}
ls "$SRC"/model.tgz.part-* >/dev/null
TMP=$(mktemp -d)
cat $(ls "$SRC"/model.tgz.part-* | sort) | tar -xz -C "$TMP"
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$TMP/ditrun-shapes" "$DEST"
rmdir "$TMP"
du -sh "$DEST"
python3 -c "import json,sys; c=json.load(open(sys.argv[1])); print({k: c[k] for k in ('stage_a_autoencoder','sanity_eval','folder_mb')})" "$DEST/train_config.json" || true
