"""Prints one table from the JSON files of `ditrun bench --json` and bench/diffusers_flux.py --json:
ours vs diffusers per part and size, as ratios (ours / theirs; < 1 is faster or smaller).

usage: python3 bench/compare_flux.py DIR   (reads DIR/ditrun_<size>.json and DIR/diffusers_<size>.json)
"""
import glob
import json
import os
import sys

d = sys.argv[1]
rows = []
for path in sorted(glob.glob(os.path.join(d, "ditrun_*.json"))):
    size = path.rsplit("_", 1)[1].split(".")[0]
    ours = json.load(open(path))["parts"]
    other = os.path.join(d, f"diffusers_{size}.json")
    theirs = json.load(open(other))["parts"] if os.path.exists(other) else {}
    for part in ["dit step", "attention/step", "linear/step", "vae decode", "text encode"]:
        o = ours.get(part)
        if part == "attention/step":
            s = theirs.get("sdpa", {}).get("cudnn", {})
            # sdpa is timed per call; ours per step (57 calls): compare per call
            t = {"ms": s["ms"] * 57} if "ms" in s else {}
        else:
            t = theirs.get(part, {})
        if not o:
            continue
        gib = lambda b: f"{b / 2**30:.1f}" if b else "-"
        ratio = f"{o['ms'] / t['ms']:.3f}" if t.get("ms") else "-"
        mem = f"{o['peak_bytes'] / t['peak_bytes']:.2f}" if t.get("peak_bytes") and o.get("peak_bytes") else "-"
        rows.append((size, part, f"{o['ms']:.2f}", f"{t['ms']:.2f}" if t.get("ms") else t.get("error", "-")[:30],
                     ratio, gib(o.get("peak_bytes")), gib(t.get("peak_bytes")), mem))
hdr = ("size", "part", "ditrun ms", "baseline ms", "ratio", "ours GiB", "theirs GiB", "mem ratio")
w = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
for r in [hdr] + rows:
    print("  ".join(str(x).ljust(w[i]) for i, x in enumerate(r)))
print("baseline: diffusers (dit, vae, text), PyTorch SDPA cuDNN backend x 57 calls (attention), torch F.linear (linear)")
