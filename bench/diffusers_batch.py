"""The baseline side of bench/batch_h200.sh: diffusers' FluxPipeline on a model folder (e.g. the random-weight
Flux.1-dev of tools/make_random_flux.py), generating the same prompts as `ditrun batch` in calls of
--batch-size prompts (a list of prompts per call, one generator per image), each image saved as a PNG like
ditrun's. Prints and writes (--json) images per minute (after --warmup untimed calls; the load is not timed).

usage: python3 bench/diffusers_batch.py --model DIR --prompts FILE --batch-size 4 --size 1024 --steps 10 \
           --out-dir DIR [--json out.json]
"""
import argparse
import json
import os
import time

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", required=True, help="plain text, one prompt per line")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=28)
    ap.add_argument("--guidance", type=float, default=3.5)
    ap.add_argument("--max-sequence-length", type=int, default=512)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--warmup", type=int, default=1, help="untimed calls first (0: the first call is timed)")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    from diffusers import FluxPipeline

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    pipe = FluxPipeline.from_pretrained(args.model, torch_dtype=dtype).to(dev)
    pipe.set_progress_bar_config(disable=True)
    prompts = [line.strip() for line in open(args.prompts) if line.strip()]
    os.makedirs(args.out_dir, exist_ok=True)

    def run(batch):
        gens = [torch.Generator("cpu").manual_seed(args.seed) for _ in batch]  # ditrun draws noise on the CPU too
        return pipe(prompt=batch, height=args.size, width=args.size, num_inference_steps=args.steps,
                    guidance_scale=args.guidance, max_sequence_length=args.max_sequence_length,
                    generator=gens).images

    for _ in range(args.warmup):  # cuDNN/cuBLAS plans, allocator
        run(prompts[: args.batch_size])
    if dev == "cuda":
        torch.cuda.synchronize()
    t0 = time.time()
    n, calls = 0, []  # calls: seconds of each call with its PNG writes (the first one is cold without --warmup)
    for i in range(0, len(prompts), args.batch_size):
        tc = time.time()
        for k, img in enumerate(run(prompts[i: i + args.batch_size])):
            img.save(os.path.join(args.out_dir, "%04d.png" % (i + k)))
            n += 1
        calls.append(time.time() - tc)
    seconds = time.time() - t0
    res = {"tool": "diffusers", "batch_size": args.batch_size, "images": n, "seconds": seconds, "calls": calls,
           "images_per_minute": 60.0 * n / seconds, "size": args.size, "steps": args.steps,
           "peak_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if dev == "cuda" else None}
    print("diffusers batch %d: %d images in %.1f s, %.2f images/min" % (args.batch_size, n, seconds,
                                                                      res["images_per_minute"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
