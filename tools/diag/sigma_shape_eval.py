"""At which noise level does the embedded model lose an object's shape? Renders held-out scenes, noises their
latents to a start σ (diffusers' FluxImg2ImgPipeline: `strength` is the fraction of the schedule still to run)
and lets the model finish the denoising from there with the scene's own prompt. One folder of PNGs per
strength, each ready for `ditrun evaluate`. If shape survives from a mid σ but not from σ = 1, the model fails
at the composition stage (high σ); if it is lost even from a low σ, it fails at the detail stage.
(shape_img2img.py is the picture version: one row of six shapes per strength.) Session 7's numbers for the
shipped model: docs/quality.md.
usage: python tools/diag/sigma_shape_eval.py [--model models/ditrun-shapes] [--strengths 1,0.8,0.6,0.4]
           [--limit 99] [--plain] --out DIR
       then, per strength S: ditrun evaluate --prompts DIR/prompts.jsonl --images DIR/sS"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "world"))
import world  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/ditrun-shapes")
    ap.add_argument("--prompts", default="tests/fixtures/world/heldout_prompts.jsonl")
    ap.add_argument("--strengths", default="1,0.8,0.6,0.4")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--limit", type=int, default=99)
    ap.add_argument("--plain", action="store_true", help="only scenes with a plain background")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from diffusers import FluxImg2ImgPipeline
    from PIL import Image
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    spec = world.load_spec()
    pipe = FluxImg2ImgPipeline.from_pretrained(args.model, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    with open(os.path.join(args.model, "ditrun_defaults.json")) as f:
        msl = json.load(f).get("max_sequence_length", 24)
    lines = [line for line in open(args.prompts) if line.strip()]
    if args.plain:
        lines = [line for line in lines if json.loads(line)["scene"]["texture"] == "plain"]
    lines = lines[: args.limit]
    items = [json.loads(line) for line in lines]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "prompts.jsonl"), "w") as f:
        f.writelines(line if line.endswith("\n") else line + "\n" for line in lines)
    for s in [float(v) for v in args.strengths.split(",")]:
        d = os.path.join(args.out, "s%g" % s)
        os.makedirs(d, exist_ok=True)
        for it in items:
            x = world.render([world.Scene.from_dict(it["scene"])], args.size, spec)[0]
            gt = Image.fromarray(((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy())
            img = pipe(prompt=it["prompt"], image=gt, strength=s, num_inference_steps=args.steps, height=args.size,
                       width=args.size, max_sequence_length=msl, guidance_scale=1.0,
                       generator=torch.Generator().manual_seed(it["seed"])).images[0]
            img.save(os.path.join(d, it["image"]))
        print("strength %g: %d images in %s" % (s, len(items), d), flush=True)


if __name__ == "__main__":
    main()
