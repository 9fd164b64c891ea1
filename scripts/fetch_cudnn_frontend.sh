#!/usr/bin/env bash
# Unpacks the headers of NVIDIA's cuDNN frontend (header-only C++ API over cuDNN's graph backend) from its
# PyPI wheel into third_party/cudnn-frontend/include. Needed only for CUDA builds. Pinned version; the
# wheel's include/ folder is the same as the upstream release's.
# Usage: scripts/fetch_cudnn_frontend.sh   (idempotent; needs pip and unzip, or python3 to unzip)
set -euo pipefail
VERSION=1.32.0
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/third_party/cudnn-frontend"
if [ -f "$dest/include/cudnn_frontend.h" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$VERSION" ]; then
  echo "cudnn-frontend $VERSION: present"; exit 0
fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
  --platform manylinux_2_28_x86_64 -d "$tmp" "nvidia-cudnn-frontend==$VERSION"
rm -rf "$dest"; mkdir -p "$dest"
python3 - "$tmp"/*.whl "$dest" <<'PY'
import sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.startswith("include/")]
    if not any(n.endswith("cudnn_frontend.h") for n in names):
        sys.exit(f"{whl} carries no include/cudnn_frontend.h")
    for n in names: z.extract(n, dest)
PY
echo "$VERSION" > "$dest/VERSION"
echo "cudnn-frontend $VERSION: headers in $dest/include ($(find "$dest/include" -name '*.h' | wc -l) files)"
