"""What train.py measures: PSNR of the autoencoder on held-out renders, the held-out flow-matching loss at fixed
sigmas, and the sample grid (diffusers' FluxPipeline on held-out prompts, with a crude color/position check)."""
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import world  # tools/world, on sys.path (train.py puts it there)
from scene_data import SceneSource, pack


def psnr(a, b):
    """PSNR in dB of images in [-1,1], per image, on the [0,1] scale after clamping (as saved PNGs are)."""
    a = (a.float().clamp(-1, 1) + 1) / 2
    b = (b.float().clamp(-1, 1) + 1) / 2
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return -10 * torch.log10(mse)

@torch.no_grad()
def eval_ae(vae, spec, dev, amp, n=64, sizes=(256, 512)):
    src = SceneSource(spec, 999, "heldout")
    res = {}
    for s in sizes:
        vals = []
        for _ in range(max(1, n // (8 if s > 256 else 32))):
            x = world.render(src.scenes(8 if s > 256 else 32), s, spec, dev)
            z = vae.encode(x).latent_dist.mode()
            # measured as the pipeline uses it: float16 weights are decoded in float32 by ditrun, so float32 here
            rec = vae.decode(z).sample
            vals.append(psnr(rec, x))
        res["psnr_heldout_%d" % s] = float(torch.cat(vals).mean())
        res["psnr_heldout_%d_min" % s] = float(torch.cat(vals).min())
    return res

@torch.no_grad()
def flow_loss_eval(transformer, text, vae, shift, scale, spec, dev, amp, n=64, r=256, split="heldout"):
    """Held-out flow-matching loss at fixed sigmas (comparable between runs)."""
    from diffusers import FluxPipeline
    src = SceneSource(spec, 777, split)
    gen = torch.Generator(dev).manual_seed(5)
    scenes = src.scenes(n)
    clip_ids, t5_ids = text.tokenize([world.caption(s, spec) for s in scenes], dev)
    x = world.render(scenes, r, spec, dev)
    x0 = pack((vae.encode(x).latent_dist.mode().float() - shift) * scale)
    img_ids = FluxPipeline._prepare_latent_image_ids(n, r // 16, r // 16, dev, torch.float32)
    out = {}
    for sg in (0.25, 0.5, 0.75, 0.9):
        noise = torch.randn(x0.shape, device=dev, generator=gen)
        xt = (1 - sg) * x0 + sg * noise
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            pooled, emb = text(clip_ids, t5_ids)
            pred = transformer(hidden_states=xt, timestep=torch.full((n,), sg, device=dev), pooled_projections=pooled,
                               encoder_hidden_states=emb, txt_ids=torch.zeros(text.L, 3, device=dev),
                               img_ids=img_ids, return_dict=False)[0]
        out["sigma_%.2f" % sg] = float(F.mse_loss(pred.float(), noise - x0))
    return out


def nearest(rgb, names, spec):
    cols = np.array([spec["colors"][c] for c in names], dtype=np.float64)
    return names[int(np.argmin(((cols - rgb) ** 2).sum(1)))]


def crude_check(img, scene, spec):
    """A rough stand-in for the OpenCV evaluator: background color from the border, object color and cell
    from the pixels far from the background. Single-object scenes only. img: HxWx3 uint8."""
    a = img.astype(np.float64)
    border = np.concatenate([a[:4].reshape(-1, 3), a[-4:].reshape(-1, 3), a[:, :4].reshape(-1, 3),
                             a[:, -4:].reshape(-1, 3)])
    bgc = np.median(border, 0)
    bg = nearest(bgc, spec["backgrounds"]["colors"], spec)
    mask = np.sqrt(((a - np.array(spec["colors"][bg])) ** 2).sum(-1)) > 90
    o = scene.objects[0]
    r = {"bg": bg == scene.background}
    if mask.sum() < 20:
        return dict(r, color=False, position=False)
    col = nearest(np.median(a[mask], 0), list(spec["colors"]), spec)
    ys, xs = np.nonzero(mask)
    cell = (min(2, int(3 * ys.mean() / a.shape[0])), min(2, int(3 * xs.mean() / a.shape[1])))
    return dict(r, color=col == o.color, position=list(cell) == spec["_position_by_name"][o.position]["cell"])


def sample_grid(out, spec, dev, steps, L, n256=16, n512=4, cfg=1.0):
    from diffusers import FluxPipeline
    pipe = FluxPipeline.from_pretrained(out, torch_dtype=torch.float32).to(dev)
    pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(31337)
    os.makedirs(os.path.join(out, "samples"), exist_ok=True)
    report = {}
    for size, n in ((256, n256), (512, n512)):
        if n == 0:
            continue
        scenes = [world.sample_scene(rng, spec, "heldout", n_objects=1) for _ in range(n)]
        prompts = [world.caption(s, spec) for s in scenes]
        t = time.time()
        imgs = []
        for i, p in enumerate(prompts):
            g = torch.Generator("cpu").manual_seed(i)
            neg = dict(negative_prompt="", true_cfg_scale=cfg) if cfg > 1 else {}
            imgs.append(pipe(p, height=size, width=size, num_inference_steps=steps, guidance_scale=0.0,
                             max_sequence_length=L, generator=g, output_type="np", **neg).images[0])
        imgs = [(np.clip(im, 0, 1) * 255).round().astype(np.uint8) for im in imgs]
        checks = [crude_check(im, s, spec) for im, s in zip(imgs, scenes)]
        ref = world.render(scenes, size, spec, "cpu")
        refs = [world.to_uint8(r) for r in ref]
        cols = 4
        rows = (n + cols - 1) // cols
        grid = np.zeros((rows * 2 * size, cols * size, 3), np.uint8)  # generated row, then the reference render
        for i, (im, rf) in enumerate(zip(imgs, refs)):
            y, x = (i // cols) * 2 * size, (i % cols) * size
            grid[y:y + size, x:x + size] = im
            grid[y + size:y + 2 * size, x:x + size] = rf
        if size > 256:
            grid = grid[::2, ::2]
        from PIL import Image
        Image.fromarray(grid).save(os.path.join(out, "samples", "heldout_%d.png" % size), optimize=True)
        with open(os.path.join(out, "samples", "heldout_%d.txt" % size), "w") as f:
            f.write("\n".join("%2d %s %s" % (i, p, json.dumps(c)) for i, (p, c) in enumerate(zip(prompts, checks))) + "\n")
        report[size] = {k: sum(c[k] for c in checks) / n for k in ("bg", "color", "position")}
        report[size]["seconds_per_image"] = (time.time() - t) / n
    return report
