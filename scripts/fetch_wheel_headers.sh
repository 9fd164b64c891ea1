#!/usr/bin/env bash
# Unpacks header folders from one pinned NVIDIA PyPI wheel into third_party/NAME/include (idempotent: a present
# MARKER at the same VERSION is kept). The wrappers fetch_cudnn_frontend.sh and fetch_cutlass.sh name what
# to take; only headers are used, no wheel code runs.
# Usage: scripts/fetch_wheel_headers.sh NAME PACKAGE VERSION PREFIX MARKER DIR...
#   PREFIX: the folder inside the wheel that plays include/; DIR...: its subfolders to take ("." = all of it);
#   MARKER: a file (relative to include/) that must be there afterwards. Needs pip and python3.
set -euo pipefail
name=$1 package=$2 version=$3 prefix=$4 marker=$5
shift 5
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/third_party/$name"
if [ -f "$dest/include/$marker" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$version" ]; then
  echo "$name $version: present"; exit 0
fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
  --platform manylinux_2_28_x86_64 -d "$tmp" "$package==$version"
rm -rf "$dest"; mkdir -p "$dest/include"
python3 - "$tmp"/*.whl "$dest/include" "$prefix" "$marker" "$@" <<'PY'
import os, sys, zipfile
whl, dest, prefix, marker, dirs = sys.argv[1], sys.argv[2], sys.argv[3].rstrip("/") + "/", sys.argv[4], sys.argv[5:]
keep = tuple(prefix if d == "." else prefix + d.rstrip("/") + "/" for d in dirs)
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.startswith(keep) and not n.endswith("/")]
    if prefix + marker not in names:
        sys.exit(f"{whl} carries no {prefix}{marker}")
    for n in names:
        out = os.path.join(dest, n[len(prefix):])
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(n) as src, open(out, "wb") as dst:
            dst.write(src.read())
PY
echo "$version" > "$dest/VERSION"
echo "$name $version: headers in $dest/include ($(find "$dest/include" -type f | wc -l) files)"
