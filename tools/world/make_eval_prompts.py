"""Writes the held-out evaluation prompt sets (deterministic):

  tests/fixtures/world/heldout_prompts.jsonl       200 one-object prompts from spec heldout_pairs
  tests/fixtures/world/heldout_prompts_2obj.jsonl   50 two-object prompts (both objects held-out pairs)

Each line: {"id", "prompt", "seed", "image", "scene"}; "seed" is the generation seed to use, "image" the file
name a generator should write, "scene" the ground-truth discrete attributes (same format as
world.parse_caption) plus the reference scene's continuous values (for rendering a reference image).
One-object set: balanced over shapes (33-34 each) and positions (22-23 each), every (shape, position)
combination 3-4 times, a shape's held-out colors alternate, sizes balanced (67/67/66, shuffled),
background/texture random (color-compatible).

    python tools/world/make_eval_prompts.py [--out tests/fixtures/world]
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def _pairs_by_shape(spec):
    by = {}
    for c, s in spec["heldout_pairs"]:
        by.setdefault(s, []).append([c, s])
    return [(s, by[s]) for s in spec["shape_order"] if s in by]


def one_object(spec, n=200, base_seed=20250):
    """(shape, position) combinations cycle through all of them (shape k % S, position (k // S + k % S) % 9),
    so shapes and positions are balanced; a shape's held-out colors alternate; sizes balanced and shuffled."""
    rng = np.random.default_rng(base_seed)
    shapes = _pairs_by_shape(spec)
    positions = [p["name"] for p in spec["positions"]]
    S, P = len(shapes), len(positions)
    sizes = (spec["size_order"] * (n // 3 + 1))[:n]
    sizes = [sizes[k] for k in rng.permutation(n)]
    used = {s: 0 for s, _ in shapes}
    out = []
    for i in range(n):
        k = i % (S * P)
        s, plist = shapes[k % S]
        pos = positions[(k // S + k % S) % P]
        pair = plist[used[s] % len(plist)]
        used[s] += 1
        r = np.random.default_rng([base_seed, i])
        out.append(world.sample_scene(r, spec, split="heldout", n_objects=1, pairs=[pair], sizes=[sizes[i]],
                                      positions=[pos]))
    return out


def two_objects(spec, n=50, base_seed=20251):
    """First object's shape cycles over the shapes, second object a different random held-out pair."""
    shapes = _pairs_by_shape(spec)
    pairs = spec["heldout_pairs"]
    out = []
    for i in range(n):
        r = np.random.default_rng([base_seed, i])
        s, plist = shapes[i % len(shapes)]
        a = plist[(i // len(shapes)) % len(plist)]
        others = [p for p in pairs if p != a]
        b = others[int(r.integers(len(others)))]
        out.append(world.sample_scene(r, spec, split="heldout", n_objects=2, pairs=[a, b]))
    return out


def write(path, scenes, spec, seed0):
    with open(path, "w", encoding="utf-8") as f:
        for i, sc in enumerate(scenes):
            rec = {"id": i, "prompt": world.caption(sc, spec), "seed": seed0 + i, "image": f"{i:04d}.png",
                   "scene": sc.to_dict()}
            f.write(json.dumps(rec) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "world"))
    a = ap.parse_args()
    spec = world.load_spec()
    os.makedirs(a.out, exist_ok=True)
    write(os.path.join(a.out, "heldout_prompts.jsonl"), one_object(spec), spec, 1000)
    write(os.path.join(a.out, "heldout_prompts_2obj.jsonl"), two_objects(spec), spec, 5000)
    print("wrote", os.path.join(a.out, "heldout_prompts.jsonl"), "and heldout_prompts_2obj.jsonl")


if __name__ == "__main__":
    main()
