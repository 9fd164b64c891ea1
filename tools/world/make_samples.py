"""Renders ground-truth samples for the C++ evaluator's tests (deterministic):

  tests/fixtures/world/samples/NNN.png        40 scenes at 256x256 (36 one-object, 4 two-object; every shape,
                                               color, size, position, background color and texture),
                                               8 at 512x512, 3 "generated-looking" variants (Gaussian blur
                                               sigma 1.5 + Gaussian noise std 6/255) of 256 scenes
  tests/fixtures/world/samples/prompts.jsonl  {"prompt", "image", "size", "variant": "clean"|"blur_noise",
                                               "source" (for variants), "scene"}

Samples use split="all": held-out pairs included (the evaluator must recognize every pair).

    python tools/world/make_samples.py [--out tests/fixtures/world/samples]
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def scenes_256(spec):
    colors = list(spec["colors"])
    shapes = spec["shape_order"]
    sizes = spec["size_order"]
    positions = [p["name"] for p in spec["positions"]]
    textures = spec["backgrounds"]["textures"]
    out = []
    for i in range(36):
        r = np.random.default_rng([7, i])
        # shape i%6, color i%10 (lcm 30: 30 distinct pairs), size (i//2)%3 (decoupled from shape), position i%9
        out.append(world.sample_scene(r, spec, split="all", n_objects=1,
                                      pairs=[[colors[i % 10], shapes[i % 6]]], sizes=[sizes[(i // 2) % 3]],
                                      positions=[positions[i % 9]], texture=textures[(i // 3) % 3]))
    for i in range(4):
        r = np.random.default_rng([8, i])
        out.append(world.sample_scene(r, spec, split="all", n_objects=2, texture=textures[i % 3]))
    return out


def scenes_512(spec):
    out = []
    for i in range(8):
        r = np.random.default_rng([9, i])
        out.append(world.sample_scene(r, spec, split="all", n_objects=1 + (i % 2)))
    return out


def blur_noise(img, sigma=1.5, noise=6.0 / 255.0 * 2.0, seed=0):
    """img [3,H,W] in [-1,1] -> separable Gaussian blur (reflect padding) + Gaussian noise, clamped."""
    rad = int(math.ceil(3 * sigma))
    x = torch.arange(-rad, rad + 1, dtype=torch.float64)
    k = torch.exp(-x * x / (2 * sigma * sigma))
    k = (k / k.sum()).to(img.dtype)
    t = img[None]
    t = torch.nn.functional.pad(t, (rad, rad, 0, 0), mode="reflect")
    t = torch.nn.functional.conv2d(t, k.view(1, 1, 1, -1).repeat(3, 1, 1, 1), groups=3)
    t = torch.nn.functional.pad(t, (0, 0, rad, rad), mode="reflect")
    t = torch.nn.functional.conv2d(t, k.view(1, 1, -1, 1).repeat(3, 1, 1, 1), groups=3)
    g = torch.Generator().manual_seed(seed)
    t = t + noise * torch.randn(t.shape, generator=g, dtype=t.dtype)
    return t[0].clamp(-1, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "world", "samples"))
    a = ap.parse_args()
    spec = world.load_spec()
    os.makedirs(a.out, exist_ok=True)
    recs = []
    s256 = scenes_256(spec)
    img256 = world.render(s256, 256, spec)
    for i, (sc, im) in enumerate(zip(s256, img256)):
        name = f"{i:03d}.png"
        world.save_png(im, os.path.join(a.out, name))
        recs.append({"prompt": world.caption(sc, spec), "image": name, "size": 256, "variant": "clean",
                     "scene": sc.to_dict()})
    s512 = scenes_512(spec)
    img512 = world.render(s512, 512, spec)
    for j, (sc, im) in enumerate(zip(s512, img512)):
        name = f"{100 + j:03d}.png"
        world.save_png(im, os.path.join(a.out, name))
        recs.append({"prompt": world.caption(sc, spec), "image": name, "size": 512, "variant": "clean",
                     "scene": sc.to_dict()})
    for j, src in enumerate([1, 9, 37]):  # two one-object scenes and one two-object scene
        name = f"{200 + j:03d}.png"
        world.save_png(blur_noise(img256[src], seed=j), os.path.join(a.out, name))
        recs.append({"prompt": world.caption(s256[src], spec), "image": name, "size": 256,
                     "variant": "blur_noise", "source": f"{src:03d}.png", "blur_sigma": 1.5,
                     "noise_std_255": 6.0, "scene": s256[src].to_dict()})
    with open(os.path.join(a.out, "prompts.jsonl"), "w", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    total = sum(os.path.getsize(os.path.join(a.out, n)) for n in os.listdir(a.out))
    print(f"wrote {len(recs)} images + prompts.jsonl to {a.out}: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
