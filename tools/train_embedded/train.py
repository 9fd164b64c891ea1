#!/usr/bin/env python3
"""Trains ditrun's embedded default model: a small Flux-architecture pipeline on the procedural shapes world.

The pipeline uses the very classes diffusers' FluxPipeline uses (CLIPTextModel + CLIPTokenizer, T5EncoderModel +
T5Tokenizer with a SentencePiece model trained on the world's captions, AutoencoderKL with Flux's 16-channel
latent and 8x downsampling, FluxTransformer2DModel, FlowMatchEulerDiscreteScheduler) and is saved with
save_pretrained in float16. See README.md next to this file.

Two phases:
  prepare (CPU, here):  python tools/train_embedded/train.py prepare --out models/ditrun-shapes-init
      tokenizers trained on world captions, every component's config, scheduler, model_index.json,
      ditrun_defaults.json. No weights.
  train (one GPU):      python tools/train_embedded/train.py train --init models/ditrun-shapes-init --out DIR
      stage A: the AutoencoderKL on rendered images (PSNR on held-out renders, latent shift/scale);
      stage B: FluxTransformer2DModel + T5 + CLIP from scratch, flow matching, mixed resolutions;
      both stop by wall clock (--seconds split by --ae-fraction); saves the EMA weights in float16 with
      train_config.json, then generates a sample grid with diffusers' FluxPipeline.
"""
import argparse
import json
import math
import os
import platform
import random
import shutil
import sys
import time

# HF fast tokenizers run in forked DataLoader workers (see SceneBatches): no thread pool in the parent to fork.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "world"))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import world  # noqa: E402
from scene_data import (LatentBank, SceneBatches, SceneSource, close_loader, default_data_workers,  # noqa: E402
                        foreground_tokens, pack, scene_loader)
from train_eval import eval_ae, flow_loss_eval, psnr, sample_grid  # noqa: E402

from prepare import ARCH, DEFAULT_STEPS, PREPARE_SEED, SCHEDULER, cmd_prepare  # noqa: E402
from recipe import (Clock, MaskProbe, adaln_zero_, log, lr_at, merge_spec, schedule_frac,  # noqa: E402
                    sync)



def train_ae(vae, args, dev, amp, spec, log_rows):
    src = SceneSource(spec, args.seed + 1)
    opt = torch.optim.AdamW(vae.parameters(), lr=args.ae_lr, betas=(0.9, 0.99), weight_decay=0.0)
    clock = Clock(args.seconds * args.ae_fraction)
    vae.train()
    step, ema_loss = 0, None
    while not clock.done():
        lr = lr_at(clock.frac(), step, args.ae_lr, 100)
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.no_grad():
            if step % 2 == 0 or args.ae_crop >= 512:
                x = world.render(src.scenes(args.ae_batch), args.ae_crop, spec, dev)
            else:  # random crops of 512 renders: thin features at the 512 scale (dots, stripes, edges)
                x = world.render(src.scenes(args.ae_batch), 512, spec, dev)
                i, j = np.random.randint(0, 512 - args.ae_crop + 1, size=2) // 8 * 8
                x = x[:, :, i:i + args.ae_crop, j:j + args.ae_crop]
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            post = vae.encode(x).latent_dist
            z = post.sample()
            rec = vae.decode(z).sample
        rec = rec.float()
        if args.ae_edge_weight > 0:
            # Pixels within one pixel of an edge (local range > 0.1 in any channel) weigh 1 + W. Why: the shipped
            # VAE rounds the corners of small stars and triangles at 256² (9 of 100 held-out reconstructions read
            # as another shape), while flat areas dominate the plain mean.
            x32 = x.float()
            edge = (F.max_pool2d(x32, 3, 1, 1) + F.max_pool2d(-x32, 3, 1, 1)).amax(1, keepdim=True) > 0.1
            w = 1 + args.ae_edge_weight * edge.float()
            err = rec - x32
            rec_loss = ((err.abs() + err ** 2) * w).mean() / w.mean()
        else:
            rec_loss = F.l1_loss(rec, x) + F.mse_loss(rec, x)
        kl = (0.5 * (post.mean.float() ** 2 + post.var.float() - 1 - post.logvar.float())).mean()
        loss = rec_loss + args.ae_kl * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        v = rec_loss.item() if step % 25 == 0 or clock.done() else None
        if v is not None:
            ema_loss = v if ema_loss is None else 0.7 * ema_loss + 0.3 * v
            log("ae step %5d  %.0fs  lr %.2e  rec %.5f  kl %.3f  psnr(batch) %.2f" % (
                step, time.time() - clock.start, lr, v, kl.item(), psnr(rec.detach(), x).mean().item()))
    sync(dev)
    vae.eval()
    return {"steps": step, "seconds": time.time() - clock.start, "final_rec_loss": ema_loss}


@torch.no_grad()
def latent_stats(vae, spec, dev, n=512):
    src = SceneSource(spec, 4242)
    zs = []
    for _ in range(n // 64):
        x = world.render(src.scenes(64), 256, spec, dev)
        zs.append(vae.encode(x).latent_dist.mode().float())
    z = torch.cat(zs)
    return float(z.mean()), float(z.std())


def mu_for(seq_len):
    s = SCHEDULER
    m = (s["max_shift"] - s["base_shift"]) / (s["max_image_seq_len"] - s["base_image_seq_len"])
    return seq_len * m + s["base_shift"] - m * s["base_image_seq_len"]


class TextEncoders(torch.nn.Module):
    """Exactly what FluxPipeline.encode_prompt computes (CLIP pooled at 77 tokens, unmasked T5 at L tokens)."""

    def __init__(self, clip, t5, clip_tok, t5_tok, L):
        super().__init__()
        self.clip, self.t5 = clip, t5
        self.clip_tok, self.t5_tok, self.L = clip_tok, t5_tok, L

    def tokenize(self, prompts, dev):
        c = self.clip_tok(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        t = self.t5_tok(prompts, padding="max_length", max_length=self.L, truncation=True, return_tensors="pt")
        return c.input_ids.to(dev, non_blocking=True), t.input_ids.to(dev, non_blocking=True)

    def forward(self, clip_ids, t5_ids):
        pooled = self.clip(clip_ids, output_hidden_states=False).pooler_output
        emb = self.t5(t5_ids, output_hidden_states=False)[0]
        return pooled, emb


def train_dit(transformer, text, vae, shift, scale, args, dev, amp, spec):
    from diffusers import FluxPipeline
    gen = torch.Generator(dev).manual_seed(args.seed + 3)
    probe = MaskProbe(transformer).to(dev) if args.mask_aux > 0 else None
    params = [p for p in list(transformer.parameters()) + list(text.parameters()) if p.requires_grad]
    if probe is not None:
        params += list(probe.head.parameters())
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.99), fused=dev.type == "cuda")
    ema = [p.detach().clone().float() for p in params]
    res = [int(r) for r in args.resolutions.split(",")]
    probs = np.array([float(p) for p in args.res_probs.split(",")])
    probs = probs / probs.sum()
    reuse = max(1, args.reuse)
    if args.batch % reuse:
        raise SystemExit("--batch %d must be a multiple of --reuse %d" % (args.batch, reuse))
    # With --reuse K the workers make B/K fresh scenes per step (token-equal per resolution, like the batch).
    ds = SceneBatches(spec, args.seed + 2, args.batch // reuse, res, probs, text.clip_tok, text.t5_tok, text.L,
                      args.caption_dropout)
    banks = {r: LatentBank(max(1, int(args.bank * (256 / r) ** 2))) for r in res}
    loader = scene_loader(ds, args.data_workers, pin=dev.type == "cuda")
    batches = iter(loader)
    txt_ids = torch.zeros(text.L, 3, device=dev)
    ids_cache = {}
    clock = Clock(args.seconds * (1 - args.ae_fraction))
    # torch.compile fuses the many small elementwise kernels of a hidden-256 model (norms, modulation, RoPE,
    # GELU), which dominate its step; one compile per resolution (static shapes), eager if compiling fails.
    model = transformer
    if args.compile:
        torch._dynamo.config.automatic_dynamic_shapes = False
        torch._dynamo.config.cache_size_limit = 16
        model = torch.compile(transformer)
    transformer.train()
    text.train()
    step, per_res, loss_ema, t_data, t_wait = 0, {r: 0 for r in res}, None, 0.0, 0.0
    compile_failed = False
    prof, prof_first = None, 20  # --profile-steps: steps [20, 20 + N) under torch.profiler (after warm-up)
    while not clock.done():
        if args.profile_steps and step == prof_first:
            sync(dev)
            acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if dev.type == "cuda" else [])
            prof = torch.profiler.profile(activities=acts)
            prof.__enter__()
            prof_t0 = time.time()
        if prof is not None and step == prof_first + args.profile_steps:
            sync(dev)
            prof.__exit__(None, None, None)
            log("profile: %d steps in %.1f ms each (wall, synchronized)" % (
                args.profile_steps, 1000 * (time.time() - prof_t0) / args.profile_steps))
            key = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
            print(prof.key_averages().table(sort_by=key, row_limit=25))
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
            sys.stdout.flush()
            prof = None
        frac = schedule_frac(args, clock)
        lr = lr_at(frac, step, args.lr, args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        td = time.time()
        r, rparams, clip_ids, t5_ids = next(batches)  # sampled, captioned and tokenized ahead by the workers
        t_wait += time.time() - td
        b = rparams["B"]
        per_res[r] += 1
        clip_ids, t5_ids = clip_ids.to(dev, non_blocking=True), t5_ids.to(dev, non_blocking=True)
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            x = world.render_from_params(rparams, r, dev, spec=spec)
            z0 = (vae.encode(x).latent_dist.mode().float() - shift) * scale
            fg, cov = None, None
            if probe is not None or args.fg_weight > 0 or args.fg_sigma_weight > 0:
                fg, cov = foreground_tokens(rparams, x, r, dev, spec, cells=probe.cells if probe is not None else 0)
        x0 = pack(z0)
        if reuse > 1:
            fresh = dict(x0=x0.to(torch.bfloat16), clip_ids=clip_ids, t5_ids=t5_ids)
            if fg is not None:
                fresh["fg"] = fg.to(torch.bfloat16)
            if cov is not None:
                fresh["cov"] = cov.to(torch.bfloat16)
            banks[r].add(**fresh)
            b *= reuse
            drawn = banks[r].sample(b, gen)
            x0, clip_ids, t5_ids = drawn["x0"].float(), drawn["clip_ids"], drawn["t5_ids"]
            fg = drawn["fg"].float() if fg is not None else None
            cov = drawn["cov"].float() if cov is not None else None
        t_data += time.time() - td
        h = r // 8
        if r not in ids_cache:
            ids_cache[r] = FluxPipeline._prepare_latent_image_ids(b, h // 2, h // 2, dev, torch.float32)
        img_ids = ids_cache[r]
        noise = torch.randn(x0.shape, device=dev, generator=gen)
        u = torch.sigmoid(torch.randn(b, device=dev, generator=gen) * args.logit_std + args.logit_mean)
        em = math.exp(mu_for(x0.shape[1]))
        sigma = em / (em + (1 / u - 1))  # the scheduler's exponential time shift at this resolution
        s = sigma.view(b, 1, 1)
        xt = (1 - s) * x0 + s * noise
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            pooled, emb = text(clip_ids, t5_ids)
            kw = dict(hidden_states=xt, timestep=sigma, pooled_projections=pooled, encoder_hidden_states=emb,
                      txt_ids=txt_ids, img_ids=img_ids, guidance=None, return_dict=False)
            try:
                pred = model(**kw)[0]
            except Exception as e:  # noqa: BLE001 (any compiler failure: train on eagerly)
                if model is transformer:
                    raise
                log("torch.compile failed (%s: %s); eager from here" % (type(e).__name__, str(e)[:300]))
                model, compile_failed = transformer, True
                pred = model(**kw)[0]
        if fg is None:
            loss = F.mse_loss(pred.float(), noise - x0)
        else:
            # Objects cover 2-25% of an image; the plain mean lets the background (and the noise it cannot
            # predict) drown the few tokens where shape and size are decided.
            w = 1 + fg * (args.fg_weight + args.fg_sigma_weight * s.view(b, 1))
            loss = (((pred.float() - (noise - x0)) ** 2).mean(-1) * w).sum() / w.sum()
        aux = None
        if probe is not None:  # object tokens (and their neighbours) count 10x the background ones
            aux = probe.loss(cov, 0.1 + fg)
            loss = loss + args.mask_aux * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(params, args.clip_grad)
        opt.step()
        d = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach().float() for p in params], 1 - d)
        step += 1
        if step % 50 == 0 or clock.done():
            v = loss.item()
            loss_ema = v if loss_ema is None else 0.8 * loss_ema + 0.2 * v
            el = time.time() - clock.start
            log("dit step %5d  %.0fs  res %d x%d  lr %.2e  loss %.4f (avg %.4f)  gnorm %.2f  data %.0f%% "
                "(wait %.0f%%)%s" % (step, el, r, b, lr, v, loss_ema, float(gn), 100 * t_data / el, 100 * t_wait / el,
                                     "  mask-aux %.4f" % aux.item() if aux is not None else ""))
    sync(dev)
    close_loader(batches)
    seconds = time.time() - clock.start
    with torch.no_grad():
        for p, e in zip(params, ema):
            p.copy_(e)
    transformer.eval()
    text.eval()
    return {"steps": step, "steps_per_resolution": per_res, "seconds": seconds,
            "compiled": bool(args.compile and not compile_failed),
            "final_loss_avg": loss_ema, "data_workers": args.data_workers,
            "data_seconds": t_data, "data_share": t_data / max(seconds, 1e-9),
            "data_wait_seconds": t_wait, "data_wait_share": t_wait / max(seconds, 1e-9),
            "data_note": "data = wait for the next CPU batch (scene sampling, captions, tokenization in "
                         "data_workers DataLoader processes; 0 = in the loop) + id upload + GPU render + VAE encode"}


def prefix_clip_keys(folder):
    """transformers 5 saves CLIPTextModel without the `text_model.` prefix; the canonical layout (openai's and
    Flux's text_encoder/) has it, transformers loads both, and ditrun recognises CLIP by it."""
    from safetensors.torch import load_file, save_file
    path = os.path.join(folder, "model.safetensors")
    sd = load_file(path)
    save_file({(k if k.startswith("text_model.") else "text_model." + k): v for k, v in sd.items()}, path,
              metadata={"format": "pt"})


def cmd_train(args):
    import diffusers
    import transformers
    from diffusers import (AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline,
                           FluxTransformer2DModel)
    from transformers import AutoTokenizer, CLIPTextModel, CLIPTokenizer, T5EncoderModel

    wall0 = time.time()
    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    amp = dev.type == "cuda" and not args.no_amp
    if args.smoke:
        args.ae_batch, args.batch, args.ae_crop = 4, 4, 128
    if args.data_workers is None:
        args.data_workers = default_data_workers(dev)
    if dev.type == "cuda":
        # torch 2.11's cuDNN SDPA backward fails on this model's bf16 joint attention
        # (mha_graph.execute ... is_good() false, seen on an H200); flash/efficient SDPA work.
        torch.backends.cuda.enable_cudnn_sdp(False)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    spec = world.load_spec()
    if args.world_override:
        spec = merge_spec(spec, json.loads(args.world_override))
        log("world override: %s" % args.world_override)
    init, out = os.path.abspath(args.init), os.path.abspath(args.out)
    with open(os.path.join(init, "ditrun_defaults.json")) as f:
        defaults = json.load(f)
    L = defaults["max_sequence_length"]
    if os.path.exists(out):
        shutil.rmtree(out)
    log("device %s (%s), amp %s, torch %s, diffusers %s, transformers %s" % (
        dev, torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor(), amp,
        torch.__version__, diffusers.__version__, transformers.__version__))

    if args.resume and args.keep_ae:
        raise SystemExit("--resume and --keep-ae exclude each other (--resume keeps the autoencoder already)")
    if args.resume:
        # Continue from a trained folder: its autoencoder is kept as is (stage A is skipped) and the
        # transformer and text encoders train on from their saved (EMA) weights.
        res = os.path.abspath(args.resume)
        f32 = dict(torch_dtype=torch.float32)
        vae = AutoencoderKL.from_pretrained(os.path.join(res, "vae"), **f32).to(dev)
        transformer = FluxTransformer2DModel.from_pretrained(os.path.join(res, "transformer"), **f32).to(dev)
        clip = CLIPTextModel.from_pretrained(os.path.join(res, "text_encoder"), **f32).to(dev)
        t5 = T5EncoderModel.from_pretrained(os.path.join(res, "text_encoder_2"), **f32).to(dev)
        with open(os.path.join(res, "train_config.json")) as f:
            previous = json.load(f)
        args.ae_fraction = 0.0
    else:
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(os.path.join(init, "vae"))).to(dev)
        transformer = FluxTransformer2DModel.from_config(
            FluxTransformer2DModel.load_config(os.path.join(init, "transformer"))).to(dev)
        clip = CLIPTextModel._from_config(transformers.AutoConfig.from_pretrained(os.path.join(init, "text_encoder"))).to(dev)
        t5 = T5EncoderModel._from_config(transformers.AutoConfig.from_pretrained(os.path.join(init, "text_encoder_2"))).to(dev)
        previous = None
        if args.adaln_zero:
            log("adaLN-Zero init: %d modulation layers and proj_out zeroed" % adaln_zero_(transformer))
    kept_ae = None
    if args.keep_ae:
        # A new transformer and new text encoders on a finished autoencoder (its training record is copied):
        # the DiT's GPU time then goes to the DiT.
        ka = os.path.abspath(args.keep_ae)
        vae = AutoencoderKL.from_pretrained(os.path.join(ka, "vae"), torch_dtype=torch.float32).to(dev)
        with open(os.path.join(ka, "train_config.json")) as f:
            kept_ae = json.load(f)["stage_a_autoencoder"]
        args.ae_fraction = 0.0
    clip_tok = CLIPTokenizer.from_pretrained(os.path.join(init, "tokenizer"))
    t5_tok = AutoTokenizer.from_pretrained(os.path.join(init, "tokenizer_2"))
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(os.path.join(init, "scheduler"))
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in
              (("transformer", transformer), ("vae", vae), ("text_encoder", clip), ("text_encoder_2", t5))}
    log("parameters", counts)

    # ---- stage A: autoencoder
    if previous is None and kept_ae is None:
        log("stage A: AutoencoderKL for %.0fs" % (args.seconds * args.ae_fraction))
        ae_info = train_ae(vae, args, dev, amp, spec, None)
        vae.requires_grad_(False)
        ae_eval = eval_ae(vae, spec, dev, amp, n=8 if args.smoke else 128)
        mean, std = latent_stats(vae, spec, dev, n=64 if args.smoke else 1024)
        shift, scale = mean, 1.0 / std
        vae.register_to_config(shift_factor=shift, scaling_factor=scale)
        log("stage A done: %d steps, %s; latent mean %.4f std %.4f" % (ae_info["steps"], ae_eval, mean, std))
    else:
        vae.requires_grad_(False)
        prev_a = previous["stage_a_autoencoder"] if previous is not None else kept_ae
        ae_info = {k: prev_a[k] for k in ("steps", "seconds", "final_rec_loss") if k in prev_a}
        ae_eval = {k: v for k, v in prev_a.items() if k.startswith("psnr")}
        mean, std = prev_a["latent_mean"], prev_a["latent_std"]
        shift, scale = vae.config.shift_factor, vae.config.scaling_factor
        log("stage A skipped: autoencoder of %s (%s)" % (args.resume or args.keep_ae, ae_eval))

    # ---- stage B: transformer + text encoders
    text = TextEncoders(clip, t5, clip_tok, t5_tok, L)
    if args.freeze_text:
        text.requires_grad_(False)
    log("stage B: FluxTransformer2DModel + text encoders for %.0fs" % (args.seconds * (1 - args.ae_fraction)))
    dit_info = train_dit(transformer, text, vae, shift, scale, args, dev, amp, spec)
    flow_eval = {"heldout": flow_loss_eval(transformer, text, vae, shift, scale, spec, dev, amp,
                                           n=8 if args.smoke else 128),
                 "train": flow_loss_eval(transformer, text, vae, shift, scale, spec, dev, amp,
                                         n=8 if args.smoke else 128, split="train")}
    log("stage B done: %d steps %s; held-out flow loss %s" % (dit_info["steps"], dit_info["steps_per_resolution"],
                                                            flow_eval))
    train_wall = time.time() - wall0

    # ---- save (float16)
    pipe = FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=clip, tokenizer=clip_tok, text_encoder_2=t5,
                        tokenizer_2=t5_tok, transformer=transformer)
    pipe.to(torch.float16)
    pipe.save_pretrained(out, safe_serialization=True)
    prefix_clip_keys(os.path.join(out, "text_encoder"))
    for extra in ("ditrun_defaults.json", "prepare_config.json"):
        shutil.copy(os.path.join(init, extra), os.path.join(out, extra))
    for d in ("tokenizer", "tokenizer_2"):  # the verified files of `prepare` (save_pretrained drops spiece.model,
        shutil.rmtree(os.path.join(out, d))  # vocab.json and merges.txt in transformers 5)
        shutil.copytree(os.path.join(init, d), os.path.join(out, d))
    size_mb = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(out) for f in fs) / 2 ** 20
    cfg = {
        "generator": "tools/train_embedded/train.py train",
        "command": " ".join(sys.argv),
        "args": vars(args),
        "seeds": {"global": args.seed, "ae_scenes": args.seed + 1,
                  "dit_data": "numpy SeedSequence([seed+2, worker id]).spawn(3) -> resolution, scenes, caption "
                              "dropout; worker batches taken round-robin",
                  "dit_noise": args.seed + 3, "prepare": PREPARE_SEED},
        "data": {"world_spec": "tools/world/spec.json", "world_spec_version": spec["version"], "split": "train",
                 "note": "scenes sampled with numpy default_rng(seed), rendered on the fly with world.render",
                 "dit_data_workers": args.data_workers,
                 "dit_data_share": dit_info["data_share"], "dit_data_wait_share": dit_info["data_wait_share"]},
        "arch": ARCH, "scheduler": SCHEDULER, "parameters": counts,
        "max_sequence_length": L, "default_steps": DEFAULT_STEPS,
        "stage_a_autoencoder": dict(ae_info, **ae_eval, latent_mean=mean, latent_std=std,
                                    scaling_factor=scale, shift_factor=shift,
                                    **({"kept_from": args.keep_ae} if args.keep_ae else {})),
        "stage_b_transformer": dict(dit_info, flow_loss_fixed_sigmas=flow_eval,
                                    text_encoders="frozen random" if args.freeze_text else "trained from scratch, jointly"),
        "objective": "rectified flow: x_t=(1-s)x0+s*eps, target eps-x0, s=shift_mu(sigmoid(N(%g,%g))) with mu as "
                     "FlowMatchEulerDiscreteScheduler's dynamic shift for the image's token count; per-token MSE "
                     "weighted 1 + %g on tokens within one token of an object" % (
                         args.logit_mean, args.logit_std, args.fg_weight),
        "ema": args.ema, "saved_weights": "EMA of transformer + text encoders; float16",
        "wall_seconds": {"training_total": train_wall},
        "folder_mb": size_mb,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "resumed_from": previous,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "diffusers": diffusers.__version__, "transformers": transformers.__version__,
                     "numpy": np.__version__},
    }
    del pipe

    # ---- sanity eval with diffusers' FluxPipeline on the saved folder
    t = time.time()
    n256, n512 = (2, 1) if args.smoke else (args.eval_n, 4)
    cfg["sanity_eval"] = sample_grid(out, spec, dev, defaults["steps"], L, n256, n512,
                                     args.eval_cfg) if args.eval_n else {}
    cfg["wall_seconds"]["sanity_eval"] = time.time() - t
    cfg["wall_seconds"]["total"] = time.time() - wall0
    with open(os.path.join(out, "train_config.json"), "w") as f:
        json.dump(cfg, f, indent=1, default=str)
        f.write("\n")

    rows = [("AE steps", ae_info["steps"]), ("AE seconds", "%.0f" % ae_info["seconds"]),
            ("AE final rec loss", "%.5f" % (ae_info["final_rec_loss"] or float("nan")))]
    rows += [("AE " + k, "%.2f dB" % v) for k, v in ae_eval.items()]
    rows += [("DiT steps", "%d %s" % (dit_info["steps"], dit_info["steps_per_resolution"])),
             ("DiT seconds", "%.0f (data %.0f, of it waiting for CPU batches %.0f; %d workers)" % (
                 dit_info["seconds"], dit_info["data_seconds"], dit_info["data_wait_seconds"],
                 dit_info["data_workers"])),
             ("DiT final loss (avg)", "%.4f" % (dit_info["final_loss_avg"] or float("nan")))]
    rows += [("flow loss %s %s" % (sp, k), "%.4f" % v) for sp, d in flow_eval.items() for k, v in d.items()]
    rows += [("sanity %d %s" % (s, k), "%.2f" % v) for s, d in cfg["sanity_eval"].items() for k, v in d.items()]
    rows += [("folder MB", "%.1f" % size_mb), ("wall total s", "%.0f" % cfg["wall_seconds"]["total"])]
    print("\n==== summary (%s) ====" % out)
    for k, v in rows:
        print("%-28s %s" % (k, v))
    sys.stdout.flush()


def cmd_bench_data(args):
    """Per-batch CPU cost of the old in-loop path vs the training loop's wait for a batch with workers."""
    from transformers import AutoTokenizer, CLIPTokenizer
    spec = world.load_spec()
    with open(os.path.join(args.init, "ditrun_defaults.json")) as f:
        L = json.load(f)["max_sequence_length"]
    clip_tok = CLIPTokenizer.from_pretrained(os.path.join(args.init, "tokenizer"))
    t5_tok = AutoTokenizer.from_pretrained(os.path.join(args.init, "tokenizer_2"))
    res, probs = [256, 512, 768], [0.6, 0.3, 0.1]
    ds = SceneBatches(spec, args.seed + 2, args.batch, res, probs, clip_tok, t5_tok, L)
    rngs = ds.rngs(0)
    ds.make(rngs, 256)  # warm-up
    parts = {"sample": 0.0, "caption": 0.0, "tokenize": 0.0}
    for _ in range(args.n):  # the old path, in the loop, at 256 (b = batch)
        t = time.time()
        scenes = [world.sample_scene(rngs[1], spec, "train") for _ in range(args.batch)]
        parts["sample"] += time.time() - t
        t = time.time()
        prompts = [world.caption(sc, spec) for sc in scenes]
        parts["caption"] += time.time() - t
        t = time.time()
        clip_tok(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        t5_tok(prompts, padding="max_length", max_length=L, truncation=True, return_tensors="pt")
        parts["tokenize"] += time.time() - t
    per = {k: 1000 * v / args.n for k, v in parts.items()}
    serial = sum(per.values())
    t = time.time()
    for _ in range(args.n):
        ds.make(rngs)
    mixed = 1000 * (time.time() - t) / args.n
    print("CPUs %d, batch %d at 256" % (len(os.sched_getaffinity(0)), args.batch))
    print("in-loop path (old): %.1f ms / batch at 256 (sample %.1f, caption %.1f, tokenize %.1f); "
          "%.1f ms / batch over the resolution mix" % (serial, per["sample"], per["caption"], per["tokenize"], mixed))
    for ms in [float(x) for x in args.step_ms.split(",")]:
        for w in sorted({0, args.data_workers}):
            it = iter(scene_loader(ds, w, pin=False))
            next(it)  # start-up (worker fork) not counted
            for _ in range(min(4, args.n)):  # let the workers' prefetch fill as it would during training
                time.sleep(ms / 1000)
                next(it)
            wait, t0 = 0.0, time.time()
            for _ in range(args.n):
                time.sleep(ms / 1000)  # the GPU step: the main process is idle (waiting on CUDA)
                t = time.time()
                next(it)
                wait += time.time() - t
            total = time.time() - t0
            close_loader(it)
            print("simulated step %4.0f ms, %d workers: loop waits %6.1f ms / batch; %.1f ms / step; "
                  "data-wait share %.0f%%" % (ms, w, 1000 * wait / args.n, 1000 * total / args.n, 100 * wait / total))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="tokenizers + configs (CPU)")
    p.add_argument("--out", default=os.path.join(ROOT, "models", "ditrun-shapes-init"))
    t = sub.add_parser("train", help="train the weights (one GPU)")
    t.add_argument("--init", default=os.path.join(ROOT, "models", "ditrun-shapes-init"))
    t.add_argument("--out", required=True)
    t.add_argument("--seconds", type=float, default=480, help="wall-clock training budget of both stages")
    t.add_argument("--ae-fraction", type=float, default=0.22, help="share of --seconds for the autoencoder")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--resume", default=None, help="a trained folder: keep its autoencoder, train its transformer "
                   "and text encoders further (stage A skipped)")
    t.add_argument("--keep-ae", default=None, help="a trained folder: take its autoencoder as is (stage A skipped) "
                   "and train a new transformer and new text encoders")
    t.add_argument("--schedule-span", type=float, default=0.0, help="seconds the lr cosine spans, over several "
                   "runs (0: this run's --seconds)")
    t.add_argument("--schedule-offset", type=float, default=0.0, help="seconds of the span done by earlier runs")
    t.add_argument("--eval-cfg", type=float, default=1.0, help="true CFG scale (negative prompt \"\") of the "
                   "sample grid")
    t.add_argument("--device", default=None)
    t.add_argument("--no-amp", action="store_true", help="float32 instead of bf16 autocast on the GPU")
    t.add_argument("--smoke", action="store_true", help="tiny batches (CPU check of the whole path)")
    t.add_argument("--ae-batch", type=int, default=48)
    t.add_argument("--ae-crop", type=int, default=256, help="AE training image side (256 renders / 512 crops)")
    t.add_argument("--ae-lr", type=float, default=1e-3)
    t.add_argument("--ae-edge-weight", type=float, default=0.0, help="extra reconstruction weight of pixels next "
                   "to an edge (keeps small shapes' corners)")
    t.add_argument("--ae-kl", type=float, default=1e-5, help="weight of the per-element KL")
    t.add_argument("--batch", type=int, default=128, help="transformer batch at 256x256 (scaled by tokens)")
    t.add_argument("--resolutions", default="256,512,768")
    t.add_argument("--res-probs", default="0.6,0.3,0.1")
    t.add_argument("--lr", type=float, default=6e-4)
    t.add_argument("--warmup", type=int, default=200)
    t.add_argument("--wd", type=float, default=0.01)
    t.add_argument("--clip-grad", type=float, default=1.0)
    t.add_argument("--ema", type=float, default=0.998)
    t.add_argument("--logit-mean", type=float, default=0.0)
    t.add_argument("--logit-std", type=float, default=1.0)
    t.add_argument("--caption-dropout", type=float, default=0.0)
    t.add_argument("--fg-weight", type=float, default=0.0, help="extra loss weight of tokens on or next to an "
                   "object (1 + w there, 1 elsewhere; 0: plain mean)")
    t.add_argument("--fg-sigma-weight", type=float, default=0.0, help="more object-token weight the noisier the "
                   "sample: 1 + fg * (fg_weight + this * sigma). Why: the shipped model keeps a half-noised true shape "
                   "(tools/diag/shape_img2img.py) but does not choose one at high sigma, where the layout forms")
    t.add_argument("--reuse", type=int, default=1, help="train each encoded scene this many times on average "
                   "(a GPU ring of encoded scenes, see LatentBank; 1: every scene fresh)")
    t.add_argument("--bank", type=int, default=200000, help="LatentBank capacity at 256x256 (scaled by tokens)")
    t.add_argument("--compile", action="store_true", help="torch.compile the transformer's training step")
    t.add_argument("--profile-steps", type=int, default=0, help="profile this many training steps (from step 20) "
                   "with torch.profiler and print where the time goes (GPU kernels and host ops)")
    t.add_argument("--freeze-text", action="store_true", help="keep the text encoders at their random init")
    t.add_argument("--mask-aux", type=float, default=0.0, help="weight of an auxiliary loss: a linear probe after the "
                   "last double block predicts each token's object coverage (4x4 sub-cells) of the clean image; the "
                   "probe is not saved (see MaskProbe)")
    t.add_argument("--adaln-zero", action="store_true", help="start the transformer with DiT's adaLN-Zero init "
                   "(modulation layers and proj_out at zero) instead of PyTorch's default")
    t.add_argument("--world-override", default="", help="JSON merged into the world spec for training scenes, "
                   "e.g. '{\"n_objects_probs\": {\"1\": 1.0, \"2\": 0.0}}' (a simpler world, for experiments)")
    t.add_argument("--eval-n", type=int, default=16, help="held-out prompts generated at 256 after training (0: none)")
    t.add_argument("--data-workers", type=int, default=None,
                   help="DataLoader processes that sample/caption/tokenize stage B's batches ahead of the loop "
                        "(default: min(8, cpus-2) on CUDA, 0 = in the loop on the CPU)")
    bd = sub.add_parser("bench-data", help="CPU cost of stage B's data vs the loop's wait with workers (CPU)")
    bd.add_argument("--init", default=os.path.join(ROOT, "models", "ditrun-shapes-init"))
    bd.add_argument("--batch", type=int, default=128)
    bd.add_argument("--n", type=int, default=12, help="batches per measurement")
    bd.add_argument("--data-workers", type=int, default=2)
    bd.add_argument("--step-ms", default="0,400", help="simulated GPU step times (ms, sleep) of the loop")
    bd.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    {"prepare": cmd_prepare, "train": cmd_train, "bench-data": cmd_bench_data}[args.cmd](args)


if __name__ == "__main__":
    main()
