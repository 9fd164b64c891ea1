"""How far the autoencoder alone limits the evaluator's scores: renders the held-out scenes of a prompts file,
round-trips them through a model folder's VAE (encode mean, decode; diffusers on the CPU) and writes the PNGs
and a copy of the prompts, ready for `ditrun evaluate`. The shipped VAE scores 91% on shape at 256² (small
stars and triangles lose their corners) and 100% at 512² (docs/quality.md, session 6).
usage: python tools/diag/ae_shape_eval.py [--model models/ditrun-shapes] [--size 256] [--limit 100] --out DIR
       then: ditrun evaluate --prompts DIR/prompts.jsonl --images DIR"""
import argparse
import json
import os
import sys

import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "world"))
import world  # noqa: E402

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/ditrun-shapes")
    ap.add_argument("--prompts", default="tests/fixtures/world/heldout_prompts.jsonl")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from diffusers import AutoencoderKL
    spec = world.load_spec()
    vae = AutoencoderKL.from_pretrained(os.path.join(args.model, "vae"), torch_dtype=torch.float32).eval()
    lines = [line for line in open(args.prompts) if line.strip()][: args.limit]
    items = [json.loads(line) for line in lines]
    scenes = [world.Scene.from_dict(d["scene"]) for d in items]
    os.makedirs(args.out, exist_ok=True)
    for i in range(0, len(scenes), 10):
        x = world.render(scenes[i:i + 10], args.size, spec)  # [-1, 1]
        with torch.no_grad():
            rec = vae.decode(vae.encode(x).latent_dist.mean).sample
        for j in range(rec.shape[0]):
            rgb = ((rec[j].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
            Image.fromarray(rgb).save(os.path.join(args.out, items[i + j]["image"]))
    with open(os.path.join(args.out, "prompts.jsonl"), "w") as f:
        f.writelines(line if line.endswith("\n") else line + "\n" for line in lines)
    print("wrote %d reconstructions at %d² to %s" % (len(items), args.size, args.out))


if __name__ == "__main__":
    main()
