"""Render throughput:  python tools/world/bench.py [--device cuda] [--size 512] [--batch 64] [--iters 5]"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--device", default="cpu")
ap.add_argument("--size", type=int, default=512)
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--iters", type=int, default=5)
a = ap.parse_args()
spec = world.load_spec()
rng = np.random.default_rng(0)
t0 = time.time()
scenes = [world.sample_scene(rng, spec) for _ in range(a.batch)]
ts = time.time() - t0
world.render(scenes, a.size, spec, device=a.device)
sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
sync()
t0 = time.time()
for _ in range(a.iters):
    world.render(scenes, a.size, spec, device=a.device)
sync()
dt = (time.time() - t0) / a.iters
print(f"device={a.device} threads={torch.get_num_threads()} size={a.size} batch={a.batch}: "
      f"{dt * 1000:.1f} ms/batch, {a.batch / dt:.1f} images/s render; sampling {a.batch / ts:.0f} scenes/s")
