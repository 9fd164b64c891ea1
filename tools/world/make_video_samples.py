"""Renders ground-truth videos for the C++ evaluator's video tests (deterministic):

  tests/fixtures/world/videos/vNN/0000.png ...  12 clean videos, 8 frames of 128x128 each: one object for
                                                every motion in world.MOTIONS (spin twice: square and star),
                                                three two-object videos; all textures
  tests/fixtures/world/videos/nNN/...           2 "generated-looking" variants, per frame: Gaussian blur
                                                sigma 0.75 (= 1.5 at 256 px) + Gaussian noise std 4/255 with
                                                a 2x2-pixel grain (full-resolution noise would not compress:
                                                ~25 KB a frame, over the fixtures' 400 KB budget)
  tests/fixtures/world/videos/prompts.jsonl     {"prompt", "video", "frames", "size", "variant", "source"?,
                                                 "motions": [per object]}

Videos come from world.sample_video (split="all"); the motion mix is chosen by trying seeds [11, i, k] in
order until the sampled video has the wanted motions and shapes, so the set is fixed by the code.

    python tools/world/make_video_samples.py [--out tests/fixtures/world/videos]
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402
from make_samples import blur_noise  # noqa: E402
import torch  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FRAMES, SIZE = 8, 128

# (motions per object, shape of the first object or None, texture or None)
WANTED = [
    (["move_right"], None, "plain"),
    (["move_left"], None, "striped"),
    (["move_up"], None, "dotted"),
    (["move_down"], None, "plain"),
    (["grow"], None, "plain"),
    (["shrink"], None, "striped"),
    (["spin"], "square", "plain"),
    (["spin"], "star", "dotted"),
    (["recolor"], None, "plain"),
    (["move_left", "spin"], None, "plain"),
    (["grow", "move_down"], None, "plain"),
    (["recolor", "shrink"], None, "plain"),
]
NOISY = [(0, 0), (9, 1)]  # (source index, noise seed)


def find_video(spec, i, motions, shape, texture):
    for k in range(20000):
        rng = np.random.default_rng([11, i, k])
        v = world.sample_video(rng, spec, frames=FRAMES, split="all", n_objects=len(motions))
        if [o.motion for o in v.objects] != motions:
            continue
        if shape is not None and v.objects[0].shape != shape:
            continue
        if texture is not None and v.texture != texture:
            continue
        return v
    raise RuntimeError(f"no video with motions {motions}")


def degrade(im, seed, sigma=0.75, noise_std_255=4.0, grain=2):
    """[3,H,W] in [-1,1] -> blurred, plus Gaussian noise drawn at 1/grain resolution (blocky grain)."""
    x = blur_noise(im, sigma=sigma, noise=0.0, seed=seed)
    g = torch.Generator().manual_seed(seed)
    h, w = x.shape[1] // grain, x.shape[2] // grain
    n = torch.randn(3, h, w, generator=g, dtype=x.dtype) * (noise_std_255 / 255.0 * 2.0)
    n = n.repeat_interleave(grain, 1).repeat_interleave(grain, 2)
    return (x + n).clamp(-1, 1)


def write_frames(frames, folder):
    os.makedirs(folder, exist_ok=True)
    for f, im in enumerate(frames):
        world.save_png(im, os.path.join(folder, f"{f:04d}.png"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "world", "videos"))
    a = ap.parse_args()
    spec = world.load_spec()
    os.makedirs(a.out, exist_ok=True)
    recs, videos, renders = [], [], []
    for i, (motions, shape, texture) in enumerate(WANTED):
        v = find_video(spec, i, motions, shape, texture)
        frames = world.render_video(v, SIZE, FRAMES, spec)
        name = f"v{i:02d}"
        write_frames(frames, os.path.join(a.out, name))
        videos.append(v)
        renders.append(frames)
        recs.append({"prompt": world.video_caption(v, spec), "video": name, "frames": FRAMES, "size": SIZE,
                     "variant": "clean", "motions": motions})
    for j, (src, seed) in enumerate(NOISY):
        name = f"n{j:02d}"
        noisy = [degrade(im, seed=100 * seed + f)
                 for f, im in enumerate(renders[src])]
        write_frames(noisy, os.path.join(a.out, name))
        recs.append({"prompt": world.video_caption(videos[src], spec), "video": name, "frames": FRAMES,
                     "size": SIZE, "variant": "blur_noise", "source": f"v{src:02d}", "blur_sigma": 0.75,
                     "noise_std_255": 4.0, "noise_grain": 2, "motions": WANTED[src][0]})
    with open(os.path.join(a.out, "prompts.jsonl"), "w", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(a.out) for n in ns)
    print(f"wrote {len(recs)} videos + prompts.jsonl to {a.out}: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
