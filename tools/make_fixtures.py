#!/usr/bin/env python3
"""Make the project's parity fixtures with the reference libraries (CPU, float32).

Contract: docs/parity-fixtures.md (shared docs). Each fixture is one .safetensors file holding
`weight.<checkpoint key>`, `input.<name>` and `output.<name>` tensors plus string metadata
(`module`, `config`, `weights_format`, `provenance`, ...).

Usage:
    python tools/make_fixtures.py                 # all module fixtures + rng (not e2e)
    python tools/make_fixtures.py --e2e           # also the end-to-end tiny FluxPipeline
    python tools/make_fixtures.py --only t5_encoder,rng
    python tools/make_fixtures.py --verify        # only re-verify existing parity files

Everything is seeded; tiny random configurations; weights drawn so activations stay sane
(linear/conv weights ~ N(0, 1/fan_in), norm weights ~ 1 + 0.1 N(0,1), biases ~ 0.05 N(0,1),
embeddings ~ N(0, 0.5^2)); modulation / adaLN linears are random too (not zero-initialised).
"""

import argparse
import json
import math
import os
import shutil
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import diffusers
import transformers
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
from diffusers.pipelines.flux.pipeline_flux import calculate_shift
from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

from fixture_layouts import (flux_bfl_to_diffusers, flux_diffusers_to_bfl, vae_decoder_bfl_to_diffusers,
                             vae_decoder_diffusers_to_bfl)

ROOT = Path(__file__).resolve().parent.parent
PARITY = ROOT / "tests" / "fixtures" / "parity"
RNG_DIR = ROOT / "tests" / "fixtures" / "rng"
E2E_DIR = ROOT / "tests" / "fixtures" / "e2e"
TOK_DIR = ROOT / "tests" / "fixtures" / "tokenizers"

torch.set_grad_enabled(False)


_ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
              torch.int32: "I32", torch.uint8: "U8"}


def save_file(tensors, path, metadata=None):
    """safetensors writer with a byte-deterministic header (sorted metadata and tensor names; the
    library's own writer orders metadata keys randomly, which makes every regeneration a git diff).
    The result is an ordinary .safetensors file (checked by reading it back with the library)."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(metadata[k]) for k in sorted(metadata)}
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        b = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)
    back = load_file(str(path))
    assert set(back) == set(tensors) and all(torch.equal(back[k], tensors[k].cpu()) for k in tensors), path


def provenance():
    import safetensors
    return (f"tools/make_fixtures.py; torch {torch.__version__}, diffusers {diffusers.__version__}, "
            f"transformers {transformers.__version__}, safetensors {safetensors.__version__}, "
            f"numpy {np.__version__}; CPU float32")


def seed_of(name):
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def gen(name):
    return torch.Generator("cpu").manual_seed(seed_of(name))


def randn(shape, g, std=1.0):
    return torch.randn(tuple(shape), generator=g, dtype=torch.float32) * std


# ----------------------------------------------------------------------------------------------
# weight init
# ----------------------------------------------------------------------------------------------

def _is_norm(mod):
    return isinstance(mod, (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.RMSNorm)) or \
        "Norm" in type(mod).__name__


def init_weights(model, name, emb_std=0.5):
    g = gen("weights/" + name)
    for _, mod in model.named_modules():
        for pname, p in mod.named_parameters(recurse=False):
            if isinstance(mod, torch.nn.Embedding):
                v = randn(p.shape, g, emb_std)
            elif p.ndim >= 2:
                v = randn(p.shape, g, 1.0 / math.sqrt(p[0].numel()))
            elif _is_norm(mod) and pname == "weight":
                v = 1.0 + randn(p.shape, g, 0.1)
            else:
                v = randn(p.shape, g, 0.05)
            p.data.copy_(v)
    model.eval()
    return model


def clean_config(cfg):
    return {k: v for k, v in dict(cfg).items() if not k.startswith("_")}


def to_json(cfg):
    return json.dumps(cfg, sort_keys=True, default=lambda o: list(o) if isinstance(o, tuple) else str(o))


# ----------------------------------------------------------------------------------------------
# saving / reading / verification
# ----------------------------------------------------------------------------------------------

SUMMARY = []


def save_fixture(path, module, config, weights_format, weights, inputs, outputs, extra_meta=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for k, v in weights.items():
        tensors["weight." + k] = v.detach().to(torch.float32).contiguous().clone()
    for k, v in inputs.items():
        tensors["input." + k] = v.detach().contiguous().clone()
    for k, v in outputs.items():
        tensors["output." + k] = v.detach().to(torch.float32).contiguous().clone()
    meta = {"module": module, "config": to_json(config), "weights_format": weights_format,
            "provenance": provenance()}
    for k, v in (extra_meta or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    save_file(tensors, str(path), metadata=meta)
    verify_file(path)
    size_kb = path.stat().st_size / 1024.0
    assert size_kb < 1900, f"{path} too big: {size_kb:.0f} KB"
    SUMMARY.append((str(path.relative_to(ROOT)), module, size_kb))
    return path


def read_fixture(path):
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    t = load_file(str(path))
    w = {k[len("weight."):]: v for k, v in t.items() if k.startswith("weight.")}
    i = {k[len("input."):]: v for k, v in t.items() if k.startswith("input.")}
    o = {k[len("output."):]: v for k, v in t.items() if k.startswith("output.")}
    return meta, json.loads(meta["config"]), w, i, o


def rel_l2(a, b):
    a = a.double()
    b = b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


# ---- reference runners (used both to make and to verify) -------------------------------------

def run_flux_transformer(cfg, weights, weights_format, inp):
    model = FluxTransformer2DModel(**cfg).eval()
    sd = flux_bfl_to_diffusers(weights, cfg) if weights_format == "bfl" else weights
    model.load_state_dict(sd, strict=True)
    out = model(hidden_states=inp["hidden_states"], encoder_hidden_states=inp["encoder_hidden_states"],
                pooled_projections=inp["pooled_projections"], timestep=inp["timestep"],
                guidance=inp.get("guidance"), img_ids=inp["img_ids"], txt_ids=inp["txt_ids"],
                return_dict=False)[0]
    return {"sample": out}


def run_t5(cfg, weights, weights_format, inp):
    model = T5EncoderModel(T5Config(**cfg)).eval()
    w = dict(weights)
    emb = w.get("shared.weight", w.get("encoder.embed_tokens.weight"))
    w["shared.weight"] = emb
    w["encoder.embed_tokens.weight"] = emb
    missing, unexpected = model.load_state_dict(w, strict=False)
    assert not unexpected and not missing, (missing, unexpected)
    out = model(input_ids=inp["input_ids"]).last_hidden_state
    return {"last_hidden_state": out}


def run_clip(cfg, weights, weights_format, inp):
    model = CLIPTextModel(CLIPTextConfig(**cfg)).eval()
    # real checkpoints (openai, FLUX text_encoder/) name keys `text_model.*`; transformers >= 5 has no
    # `text_model` submodule in CLIPTextModel and strips that prefix when loading (saves without it)
    weights = {(k[len("text_model."):] if k.startswith("text_model.") else k): v for k, v in weights.items()}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    assert not unexpected and not missing, (missing, unexpected)
    o = model(input_ids=inp["input_ids"])
    return {"last_hidden_state": o.last_hidden_state, "pooler_output": o.pooler_output}


def run_vae_decoder(cfg, weights, weights_format, inp):
    vae = AutoencoderKL(**cfg).eval()
    sd = vae_decoder_bfl_to_diffusers(weights, cfg) if weights_format == "bfl" else weights
    missing, unexpected = vae.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    bad = [m for m in missing if not m.startswith(("encoder.", "quant_conv."))]
    assert not bad, bad
    return {"sample": vae.decode(inp["latent"]).sample}


def _scheduler_from(cfg):
    import inspect
    keys = set(inspect.signature(FlowMatchEulerDiscreteScheduler.__init__).parameters) - {"self"}
    sched = FlowMatchEulerDiscreteScheduler(**{k: v for k, v in cfg.items() if k in keys})
    for k in keys & set(cfg):
        assert sched.config[k] == cfg[k], (k, sched.config[k], cfg[k])
    return sched


def run_schedule(cfg, weights, weights_format, inp):
    sched = _scheduler_from(cfg)
    n = cfg["num_inference_steps"]
    sigmas = np.linspace(1.0, 1 / n, n)  # exactly FluxPipeline.__call__
    mu = calculate_shift(cfg["image_seq_len"],
                         sched.config.get("base_image_seq_len", 256),
                         sched.config.get("max_image_seq_len", 4096),
                         sched.config.get("base_shift", 0.5),
                         sched.config.get("max_shift", 1.15))
    # retrieve_timesteps(scheduler, n, device, sigmas=sigmas, mu=mu) -> this call:
    sched.set_timesteps(sigmas=sigmas, device="cpu", mu=mu)
    return {"sigmas": sched.sigmas.clone(), "timesteps": sched.timesteps.clone()}


def run_denoise(cfg, weights, weights_format, inp, grid=None):
    tcfg = cfg["transformer"]
    tr = FluxTransformer2DModel(**tcfg).eval()
    tr.load_state_dict(weights, strict=True)
    sched = _scheduler_from(cfg["scheduler"])
    pipe = FluxPipeline(scheduler=sched, vae=None, text_encoder=None, tokenizer=None,
                        text_encoder_2=None, tokenizer_2=None, transformer=tr)
    pipe.set_progress_bar_config(disable=True)
    img_ids = inp["img_ids"]
    gh = int(img_ids[:, 1].max().item()) + 1
    gw = int(img_ids[:, 2].max().item()) + 1
    assert gh * gw == inp["latents"].shape[1] == cfg["image_seq_len"]
    vsf = pipe.vae_scale_factor  # 8 without a VAE
    height, width = gh * vsf * 2, gw * vsf * 2
    lat = pipe(prompt_embeds=inp["encoder_hidden_states"], pooled_prompt_embeds=inp["pooled_projections"],
               latents=inp["latents"], height=height, width=width,
               num_inference_steps=cfg["num_inference_steps"], guidance_scale=cfg["guidance_scale"],
               output_type="latent", return_dict=False)[0]
    # the pipeline builds its own ids; make sure they are the ones stored in the fixture
    ids = FluxPipeline._prepare_latent_image_ids(1, gh, gw, "cpu", torch.float32)
    assert torch.equal(ids, img_ids)
    assert torch.count_nonzero(inp["txt_ids"]) == 0
    return {"latents": lat}


def crosscheck_bfl_with_diffusers(module, cfg, w):
    """Independent check of our BFL key conversion: diffusers' own single-file converters must give the
    same diffusers state dict (their Flux converter hard-codes inner_dim = 3072; patched to the tiny size)."""
    import inspect
    from diffusers.loaders import single_file_utils as sfu
    if module == "flux_transformer":
        src = inspect.getsource(sfu.convert_flux_transformer_checkpoint_to_diffusers)
        assert "inner_dim = 3072" in src
        ns = dict(vars(sfu))
        exec(src.replace("inner_dim = 3072", "inner_dim = kwargs['inner_dim']"), ns)
        theirs = ns["convert_flux_transformer_checkpoint_to_diffusers"](
            dict(w), inner_dim=cfg["num_attention_heads"] * cfg["attention_head_dim"])
        ours = flux_bfl_to_diffusers(w, cfg)
    else:
        theirs = sfu.convert_ldm_vae_checkpoint(dict(w), cfg)
        ours = vae_decoder_bfl_to_diffusers(w, cfg)
    assert set(theirs) == set(ours), set(theirs) ^ set(ours)
    for k in ours:
        assert torch.equal(theirs[k].reshape(ours[k].shape), ours[k]), k


RUNNERS = {"flux_transformer": run_flux_transformer, "t5_encoder": run_t5, "clip_text_encoder": run_clip,
           "flux_vae_decoder": run_vae_decoder, "flow_match_schedule": run_schedule,
           "flux_denoise": run_denoise,
           # imported when used: make_attention_fixtures imports this module for its helpers
           "attention": lambda *a: __import__("make_attention_fixtures").run_attention(*a)}


def verify_file(path):
    """Rebuild the reference from the file alone (config + weights) and compare the outputs."""
    meta, cfg, w, i, o = read_fixture(path)
    if meta["weights_format"] == "bfl":
        crosscheck_bfl_with_diffusers(meta["module"], cfg, w)
    got = RUNNERS[meta["module"]](cfg, w, meta["weights_format"], i)
    assert set(got) == set(o), (path, set(got), set(o))
    for k in o:
        assert got[k].shape == o[k].shape, (path, k, got[k].shape, o[k].shape)
        e = rel_l2(got[k], o[k])
        assert e < 1e-6, f"{path}: output {k} rel err {e}"
        assert torch.isfinite(o[k]).all()
    return True


# ----------------------------------------------------------------------------------------------
# module fixtures
# ----------------------------------------------------------------------------------------------

def flux_tiny_config(guidance, in_channels=16, joint_attention_dim=32, pooled_projection_dim=24):
    return dict(patch_size=1, in_channels=in_channels, out_channels=None, num_layers=2, num_single_layers=2,
                attention_head_dim=16, num_attention_heads=2, joint_attention_dim=joint_attention_dim,
                pooled_projection_dim=pooled_projection_dim, guidance_embeds=guidance, axes_dims_rope=(4, 6, 6))


def image_ids(gh, gw):
    # FluxPipeline._prepare_latent_image_ids(batch, gh, gw, ...) -> [gh*gw, 3] = (0, row, col), float32
    return FluxPipeline._prepare_latent_image_ids(1, gh, gw, "cpu", torch.float32)


def make_flux_transformer():
    T = 8
    variants = [
        # (weights_format, prefix, guidance, B, gh, gw)
        ("diffusers", "", True, 1, 4, 4),
        ("diffusers", "", True, 2, 6, 4),
        ("diffusers", "", False, 1, 6, 4),
        ("diffusers", "", False, 2, 4, 4),
        ("bfl", "", True, 2, 6, 4),
        ("bfl", "", False, 1, 4, 4),
        ("bfl", "model.diffusion_model.", True, 1, 4, 6),
    ]
    for fmt, prefix, guidance, B, gh, gw in variants:
        cfg_in = flux_tiny_config(guidance)
        model = FluxTransformer2DModel(**cfg_in)
        init_weights(model, f"flux_transformer_g{int(guidance)}")
        cfg = clean_config(model.config)
        sd = {k: v.clone() for k, v in model.state_dict().items()}
        tag = "guidance" if guidance else "noguidance"
        name = f"flux_transformer_{fmt}{'_prefixed' if prefix else ''}_{tag}_b{B}_{gh}x{gw}"
        g = gen("inputs/" + name)
        L = gh * gw
        inp = {
            "hidden_states": randn([B, L, cfg["in_channels"]], g),
            "encoder_hidden_states": randn([B, T, cfg["joint_attention_dim"]], g),
            "pooled_projections": randn([B, cfg["pooled_projection_dim"]], g),
            "timestep": torch.rand(B, generator=g) * 0.9 + 0.05 if B > 1 else torch.tensor([0.7]),
        }
        if guidance:
            inp["guidance"] = torch.full([B], 3.5) if B == 1 else torch.tensor([3.5, 1.25])[:B]
        inp["img_ids"] = image_ids(gh, gw)
        inp["txt_ids"] = torch.zeros(T, 3)
        out = model(hidden_states=inp["hidden_states"], encoder_hidden_states=inp["encoder_hidden_states"],
                    pooled_projections=inp["pooled_projections"], timestep=inp["timestep"],
                    guidance=inp.get("guidance"), img_ids=inp["img_ids"], txt_ids=inp["txt_ids"],
                    return_dict=False)[0]
        if fmt == "bfl":
            weights = flux_diffusers_to_bfl(sd, cfg, prefix)
            back = flux_bfl_to_diffusers(weights, cfg)
            assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)
        else:
            weights = sd
        save_fixture(PARITY / f"{name}.safetensors", "flux_transformer", cfg, fmt, weights, inp,
                     {"sample": out},
                     {"grid": [gh, gw], "description": f"B={B}, packed grid {gh} rows x {gw} cols (L={L}), T={T}"
                      + (f", keys prefixed '{prefix}'" if prefix else "")})


def t5_tiny_config(vocab_size=100):
    return T5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
                    relative_attention_num_buckets=32, relative_attention_max_distance=128,
                    feed_forward_proj="gated-gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6,
                    is_encoder_decoder=False, use_cache=False, tie_word_embeddings=False,
                    pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)


def make_t5():
    config = t5_tiny_config()
    model = T5EncoderModel(config)
    init_weights(model, "t5_encoder", emb_std=1.0)
    cfg = config.to_dict()
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    assert torch.equal(sd["shared.weight"], sd["encoder.embed_tokens.weight"])
    for B, T, emb_key in [(1, 12, "shared.weight"), (2, 12, "encoder.embed_tokens.weight"), (2, 20, "shared.weight")]:
        name = f"t5_encoder_{emb_key.split('.')[0] if emb_key == 'shared.weight' else 'embed_tokens'}_b{B}_t{T}"
        g = gen("inputs/" + name)
        ids = torch.zeros(B, T, dtype=torch.int64)  # pad id 0
        for b in range(B):
            n = [5, 9, 3][b % 3] if T <= 12 else [14, 7][b % 2]
            ids[b, :n] = torch.randint(3, config.vocab_size, (n,), generator=g)
            ids[b, n] = 1  # </s>
        w = {k: v for k, v in sd.items() if k not in ("shared.weight", "encoder.embed_tokens.weight")}
        w[emb_key] = sd[emb_key]
        out = model(input_ids=ids).last_hidden_state
        save_fixture(PARITY / f"{name}.safetensors", "t5_encoder", cfg, "diffusers", w, {"input_ids": ids},
                     {"last_hidden_state": out},
                     {"description": f"B={B}, T={T}, pad id 0 present, no attention mask; embedding stored as {emb_key}"})


def clip_tiny_config(vocab_size=100, eos_token_id=2, bos_token_id=0, pad_token_id=1, max_pos=16):
    return CLIPTextConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                          num_attention_heads=4, max_position_embeddings=max_pos, hidden_act="quick_gelu",
                          layer_norm_eps=1e-5, projection_dim=32, eos_token_id=eos_token_id,
                          bos_token_id=bos_token_id, pad_token_id=pad_token_id, attention_dropout=0.0)


def make_clip():
    T = 16
    for legacy in (True, False):
        if legacy:
            # like openai/clip-vit-large-patch14: config eos_token_id=2, real BOS/EOS are the two largest ids
            bos, eos = 98, 99
            config = clip_tiny_config(eos_token_id=2, bos_token_id=0, pad_token_id=1)
        else:
            bos, eos = 96, 97
            config = clip_tiny_config(eos_token_id=eos, bos_token_id=bos, pad_token_id=eos)
        model = CLIPTextModel(config)
        init_weights(model, f"clip_text_encoder_legacy{int(legacy)}")
        cfg = config.to_dict()
        sd = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("position_ids")}
        if legacy:  # key names as in openai/clip-vit-large-patch14 and FLUX text_encoder/ files
            sd = {"text_model." + k: v for k, v in sd.items()}
        B = 2
        name = f"clip_text_encoder_{'legacy_eos2' if legacy else 'eos97'}_b{B}_t{T}"
        g = gen("inputs/" + name)
        ids = torch.full((B, T), eos, dtype=torch.int64)  # CLIP pads with EOS
        for b, n in enumerate([6, 11]):
            ids[b, 0] = bos
            ids[b, 1:1 + n] = torch.randint(3, 96, (n,), generator=g)
            ids[b, 1 + n] = eos
        if not legacy:
            ids[0, 2] = 99  # a token id above EOS: argmax pooling and first-EOS pooling now differ
            ids[1, 4] = 98
            first_eos = (ids == eos).int().argmax(-1)
            assert not torch.equal(first_eos, ids.argmax(-1))
        o = model(input_ids=ids)
        save_fixture(PARITY / f"{name}.safetensors", "clip_text_encoder", cfg, "diffusers", sd, {"input_ids": ids},
                     {"last_hidden_state": o.last_hidden_state, "pooler_output": o.pooler_output},
                     {"description": ("eos_token_id=2 (legacy): pooled at argmax(input_ids)" if legacy else
                                      "eos_token_id=97: pooled at the first id == 97 (ids 98/99 present)")
                      + f"; B={B}, T={T}, padded with EOS; keys "
                      + ("`text_model.*` (as real checkpoints)" if legacy else
                         "without `text_model.` (as transformers >= 5 save_pretrained writes them)")})


def vae_tiny_config(latent_channels=16, block_out_channels=(8, 16, 32, 32), layers_per_block=2, groups=4):
    n = len(block_out_channels)
    return dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * n,
                up_block_types=["UpDecoderBlock2D"] * n, block_out_channels=list(block_out_channels),
                layers_per_block=layers_per_block, act_fn="silu", latent_channels=latent_channels,
                norm_num_groups=groups, sample_size=64, scaling_factor=0.3611, shift_factor=0.1159,
                use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=True, force_upcast=True)


def make_vae():
    vae = AutoencoderKL(**vae_tiny_config())
    init_weights(vae, "flux_vae_decoder")
    cfg = clean_config(vae.config)
    sd = {k: v.clone() for k, v in vae.state_dict().items() if k.startswith(("decoder.", "post_quant_conv."))}
    for fmt, B, h, w in [("diffusers", 1, 4, 4), ("diffusers", 2, 6, 4), ("bfl", 1, 6, 4), ("bfl", 2, 4, 4)]:
        name = f"flux_vae_decoder_{fmt}_b{B}_{h}x{w}"
        g = gen("inputs/" + name)
        lat = randn([B, cfg["latent_channels"], h, w], g)
        out = vae.decode(lat).sample
        if fmt == "bfl":
            weights = vae_decoder_diffusers_to_bfl(sd, cfg)
            back = vae_decoder_bfl_to_diffusers(weights, cfg)
            assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)
        else:
            weights = sd
        save_fixture(PARITY / f"{name}.safetensors", "flux_vae_decoder", cfg, fmt, weights, {"latent": lat},
                     {"sample": out}, {"description": f"B={B}, latent {h}x{w} (HxW) -> image {8*h}x{8*w}"})


FLUX_DEV_SCHEDULER = dict(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5,
                          max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096)
FLUX_SCHNELL_SCHEDULER = dict(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False, base_shift=0.5,
                              max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096)


def scheduler_config(kind):
    s = FlowMatchEulerDiscreteScheduler(**(FLUX_DEV_SCHEDULER if kind == "dev" else FLUX_SCHNELL_SCHEDULER))
    return clean_config(s.config)


def make_schedule():
    for kind, cases in [("dev", [(4, 256), (28, 4096), (50, 1024), (8, 16896), (1, 4080)]),
                        ("schnell", [(4, 4096), (1, 256), (28, 1024)])]:
        for n, seq in cases:
            cfg = dict(scheduler_config(kind), num_inference_steps=n, image_seq_len=seq)
            out = run_schedule(cfg, {}, "diffusers", {})
            s = np.linspace(1.0, 1 / n, n)
            if cfg["use_dynamic_shifting"]:
                mu = calculate_shift(seq, 256, 4096, 0.5, 1.15)
                s = math.exp(mu) / (math.exp(mu) + (1 / s - 1))
            want = torch.tensor(np.append(s, 0.0), dtype=torch.float64)
            assert (out["sigmas"].double() - want).abs().max() < 1e-6, (out["sigmas"], want)
            assert out["sigmas"].dtype == torch.float32 and out["timesteps"].dtype == torch.float32
            save_fixture(PARITY / f"flow_match_schedule_{kind}_n{n}_seq{seq}.safetensors", "flow_match_schedule",
                         cfg, "diffusers", {}, {}, out, {"description": f"Flux {kind} scheduler, N={n}, "
                                                         f"image_seq_len={seq}"})


def make_denoise():
    T = 8
    for guidance, steps, B, gh, gw in [(True, 4, 1, 4, 6), (False, 3, 1, 4, 4), (True, 3, 2, 4, 4)]:
        tcfg_in = flux_tiny_config(guidance)
        tr = FluxTransformer2DModel(**tcfg_in)
        init_weights(tr, f"flux_denoise_g{int(guidance)}")
        tcfg = clean_config(tr.config)
        kind = "dev" if guidance else "schnell"
        L = gh * gw
        cfg = {"transformer": tcfg, "scheduler": scheduler_config(kind), "num_inference_steps": steps,
               "guidance_scale": 3.5 if guidance else 0.0, "image_seq_len": L}
        name = f"flux_denoise_{kind}_b{B}_{gh}x{gw}_n{steps}"
        g = gen("inputs/" + name)
        inp = {"latents": randn([B, L, tcfg["in_channels"]], g),
               "encoder_hidden_states": randn([B, T, tcfg["joint_attention_dim"]], g),
               "pooled_projections": randn([B, tcfg["pooled_projection_dim"]], g),
               "img_ids": image_ids(gh, gw), "txt_ids": torch.zeros(T, 3)}
        sd = {k: v.clone() for k, v in tr.state_dict().items()}
        out = run_denoise(cfg, sd, "diffusers", inp)
        assert out["latents"].shape == inp["latents"].shape
        save_fixture(PARITY / f"{name}.safetensors", "flux_denoise", cfg, "diffusers", sd, inp, out,
                     {"description": f"FluxPipeline loop ({kind} scheduler), B={B}, packed grid {gh}x{gw}, "
                                     f"{steps} steps, guidance_scale {cfg['guidance_scale']}"})


def make_rng():
    RNG_DIR.mkdir(parents=True, exist_ok=True)
    shapes = [[5], [15], [16], [17], [1, 16, 12, 8], [2, 16, 16, 16]]
    for seed in (0, 42, 1234567):
        for shape in shapes:
            t = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)
            numel = int(np.prod(shape))
            path = RNG_DIR / f"randn_seed{seed}_n{numel}.safetensors"
            save_file({"randn": t.contiguous()}, str(path), metadata={
                "seed": str(seed), "shape": json.dumps(shape), "dtype": "float32",
                "call": f"torch.randn({shape}, generator=torch.Generator('cpu').manual_seed({seed}), "
                        f"dtype=torch.float32)",
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "note": "numel >= 16 uses torch's vectorized CPU normal kernel (AVX2/AVX512 path)",
                "provenance": provenance()})
            back = load_file(str(path))["randn"]
            assert torch.equal(back, t)
            SUMMARY.append((str(path.relative_to(ROOT)), "rng", path.stat().st_size / 1024.0))


# ----------------------------------------------------------------------------------------------
# end-to-end tiny pipeline
# ----------------------------------------------------------------------------------------------

E2E_CASES = [
    dict(name="case0_cat", prompt="a photo of a cat sitting on a red chair", width=64, height=64, seed=0),
    dict(name="case1_unicode", prompt="Café crème brûlée, naïve façade — 東京 at night ✨", width=96, height=64,
         seed=42),
    dict(name="case2_tall", prompt="A tall lighthouse on a rocky coast, stormy sky, oil painting", width=64,
         height=128, seed=7),
]


def wait_for_tokenizers(timeout_s):
    need = [TOK_DIR / "t5" / "spiece.model", TOK_DIR / "clip" / "vocab.json", TOK_DIR / "clip" / "merges.txt"]
    t0 = time.time()
    while not all(p.exists() for p in need):
        if time.time() - t0 > timeout_s:
            raise SystemExit(f"tokenizer assets missing: {[str(p) for p in need if not p.exists()]}")
        print("waiting for tokenizer assets ...", flush=True)
        time.sleep(60)
    time.sleep(2)  # let a concurrent writer finish


def build_t5_tokenizer(spiece_path, max_len=512):
    """T5TokenizerFast whose ids equal sentencepiece's encode(text) + [</s>]."""
    import sentencepiece as spm
    from transformers import T5Tokenizer, T5TokenizerFast
    sp = spm.SentencePieceProcessor(model_file=str(spiece_path))
    probe = ["a photo of a cat", "Café crème brûlée, 東京 ✨", "hello world 123"]
    want = [sp.encode(t) + [1] for t in probe]

    def ok(tok):
        return all(tok(t).input_ids == w for t, w in zip(probe, want))

    tok = T5TokenizerFast(vocab_file=str(spiece_path), extra_ids=0, model_max_length=max_len)
    if ok(tok):
        return tok, "T5TokenizerFast(vocab_file=...)"
    # explicit construction from the model's pieces (see parity-fixtures.md pitfall)
    from sentencepiece import sentencepiece_model_pb2 as pb
    m = pb.ModelProto()
    m.ParseFromString(Path(spiece_path).read_bytes())
    tok = T5TokenizerFast(vocab=[(p.piece, p.score) for p in m.pieces],
                          _spm_precompiled_charsmap=m.normalizer_spec.precompiled_charsmap, extra_ids=0,
                          model_max_length=max_len)
    if ok(tok):
        return tok, "T5TokenizerFast(vocab=<pieces of spiece.model>, _spm_precompiled_charsmap=...)"
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    m = pb.ModelProto()
    m.ParseFromString(Path(spiece_path).read_bytes())
    vocab = [(p.piece, p.score) for p in m.pieces]
    unk_id = m.trainer_spec.unk_id
    tk = Tokenizer(Unigram(vocab, unk_id=unk_id, byte_fallback=m.trainer_spec.byte_fallback))
    norms = []
    if m.normalizer_spec.precompiled_charsmap:
        norms.append(normalizers.Precompiled(m.normalizer_spec.precompiled_charsmap))
    norms.append(normalizers.Replace(tokenizers_regex_ws(), " "))
    tk.normalizer = normalizers.Sequence(norms)
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    eos = m.pieces[1].piece
    tk.post_processor = processors.TemplateProcessing(single=f"$A {eos}", pair=f"$A {eos} $B {eos}",
                                                      special_tokens=[(eos, 1)])
    tok = T5TokenizerFast(tokenizer_object=tk, eos_token=eos, unk_token=m.pieces[unk_id].piece,
                          pad_token=m.pieces[0].piece, extra_ids=0, model_max_length=max_len)
    if ok(tok):
        return tok, "T5TokenizerFast(tokenizer_object=explicit Unigram)"
    tok = T5Tokenizer(vocab_file=str(spiece_path), extra_ids=0, model_max_length=max_len)
    if ok(tok):
        return tok, "T5Tokenizer (slow)"
    raise RuntimeError("no T5 tokenizer matches sentencepiece")


def tokenizers_regex_ws():
    from tokenizers import Regex
    return Regex(" {2,}")


def round_fp16(model):
    for p in model.parameters():
        p.data.copy_(p.data.half().float())
    return model


def diagnose(a, b, prompt, msl):
    for name in ("text_encoder", "text_encoder_2", "transformer", "vae"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        bad = [k for k in sa if k not in sb or not torch.equal(sa[k], sb[k])]
        print(name, "differing/missing keys:", bad[:10], "extra:", sorted(set(sb) - set(sa))[:10])
        if hasattr(getattr(a, name).config, "to_dict"):
            ca, cb = getattr(a, name).config.to_dict(), getattr(b, name).config.to_dict()
        else:
            ca, cb = dict(getattr(a, name).config), dict(getattr(b, name).config)
        print(name, "config diffs:", {k: (ca.get(k), cb.get(k)) for k in set(ca) | set(cb)
                                      if ca.get(k) != cb.get(k) and not k.startswith("_")})
    ea = a.encode_prompt(prompt=prompt, prompt_2=None, device="cpu", max_sequence_length=msl)
    eb = b.encode_prompt(prompt=prompt, prompt_2=None, device="cpu", max_sequence_length=msl)
    for x, y in zip(ea, eb):
        print("encode_prompt max diff", (x - y).abs().max().item())


def finish_saved_pipeline(out_dir, spiece):
    """Make the saved folder look like the real FLUX.1 repos: spiece.model next to tokenizer.json, and the
    CLIP text encoder's keys under `text_model.` (transformers >= 5 saves them without it; it strips the
    prefix again when loading, which the reload check below exercises)."""
    if not (out_dir / "tokenizer_2" / "spiece.model").exists():
        shutil.copy(spiece, out_dir / "tokenizer_2" / "spiece.model")
    f = out_dir / "text_encoder" / "model.safetensors"
    with safe_open(str(f), "pt") as h:
        meta = h.metadata()
    t = {k: v.clone() for k, v in load_file(str(f)).items()}  # detach from the file before overwriting it
    save_file({(k if k.startswith("text_model.") else "text_model." + k): v for k, v in t.items()}, f, meta)


def make_e2e(wait_s):
    from transformers import CLIPTokenizer
    import sentencepiece as spm
    wait_for_tokenizers(wait_s)
    spiece = TOK_DIR / "t5" / "spiece.model"
    sp = spm.SentencePieceProcessor(model_file=str(spiece))
    t5_tok, t5_how = build_t5_tokenizer(spiece)
    clip_tok = CLIPTokenizer(vocab=str(TOK_DIR / "clip" / "vocab.json"),
                             merges=str(TOK_DIR / "clip" / "merges.txt"), model_max_length=77)
    # cross-check both tokenizers against the tokenizer helper's reference ids
    tok_cases = json.loads((TOK_DIR / "cases.json").read_text())["cases"]
    for tc in tok_cases:
        assert clip_tok(tc["text"], padding="max_length", max_length=77, truncation=True).input_ids == tc["clip_77"]
        t5_ids = t5_tok(tc["text"], padding="max_length", max_length=32, truncation=True).input_ids
        if t5_ids != tc["t5_32"]:
            print(f"note: T5 ids differ from sentencepiece for {tc['text']!r}: {t5_ids} vs {tc['t5_32']}")
    clip_vocab = json.loads((TOK_DIR / "clip" / "vocab.json").read_text())
    clip_eos = clip_tok.eos_token_id
    clip_bos = clip_tok.bos_token_id
    legacy = clip_eos == max(clip_vocab.values())

    t5_cfg = t5_tiny_config(vocab_size=sp.get_piece_size())
    t5 = round_fp16(init_weights(T5EncoderModel(t5_cfg), "e2e/t5", emb_std=1.0))
    clip_cfg = clip_tiny_config(vocab_size=len(clip_vocab), eos_token_id=2 if legacy else clip_eos,
                                bos_token_id=clip_bos, pad_token_id=clip_tok.pad_token_id, max_pos=77)
    clip = round_fp16(init_weights(CLIPTextModel(clip_cfg), "e2e/clip"))
    tr = FluxTransformer2DModel(**flux_tiny_config(True, in_channels=64, joint_attention_dim=32,
                                                   pooled_projection_dim=32))
    tr = round_fp16(init_weights(tr, "e2e/transformer"))
    vae = round_fp16(init_weights(AutoencoderKL(**vae_tiny_config()), "e2e/vae"))
    sched = FlowMatchEulerDiscreteScheduler(**FLUX_DEV_SCHEDULER)
    pipe = FluxPipeline(scheduler=sched, vae=vae, text_encoder=clip, tokenizer=clip_tok, text_encoder_2=t5,
                        tokenizer_2=t5_tok, transformer=tr)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.vae_scale_factor == 8

    out_dir = E2E_DIR / "tiny-flux"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    pipe.save_pretrained(str(out_dir), safe_serialization=True)
    finish_saved_pipeline(out_dir, spiece)
    total = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    if total > 3 * 1024 * 1024:
        # weights were rounded to fp16 above, so storing them as fp16 is exact
        shutil.rmtree(out_dir)
        pipe.to(torch.float16).save_pretrained(str(out_dir), safe_serialization=True)
        pipe.to(torch.float32)
        finish_saved_pipeline(out_dir, spiece)
        total = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    assert total <= 3 * 1024 * 1024, total

    exp_dir = E2E_DIR / "expected"
    exp_dir.mkdir(parents=True, exist_ok=True)
    msl, steps, guidance = 32, 4, 3.5
    cases = []
    reloaded = FluxPipeline.from_pretrained(str(out_dir), torch_dtype=torch.float32)
    reloaded.set_progress_bar_config(disable=True)
    ref = reloaded
    for c in E2E_CASES:
        W, H, seed = c["width"], c["height"], c["seed"]
        # token ids (check the T5 tokenizer against sentencepiece itself)
        t5_ids = t5_tok(c["prompt"], padding="max_length", max_length=msl, truncation=True).input_ids
        sp_full = sp.encode(c["prompt"])
        sp_ids = sp_full[:msl - 1] + [1]
        assert t5_ids[:len(sp_ids)] == sp_ids, (t5_ids, sp_ids)
        assert all(i == 0 for i in t5_ids[len(sp_ids):])
        clip_ids = clip_tok(c["prompt"], padding="max_length", max_length=77, truncation=True).input_ids
        # the reference is the pipeline as loaded back from tiny-flux/ (what anyone reproducing gets);
        # the in-memory pipeline agrees to ~1e-6 (float reordering), i.e. a few 8-bit values may differ by 1
        pe, ppe, _ = ref.encode_prompt(prompt=c["prompt"], prompt_2=None, device="cpu", max_sequence_length=msl)
        # initial noise exactly as FluxPipeline.prepare_latents draws it, then packed
        g = torch.Generator("cpu").manual_seed(seed)
        h8, w8 = 2 * (H // 16), 2 * (W // 16)
        noise = diffusers.utils.torch_utils.randn_tensor((1, 16, h8, w8), generator=g, dtype=torch.float32)
        packed = FluxPipeline._pack_latents(noise, 1, 16, h8, w8)
        kw = dict(prompt=c["prompt"], width=W, height=H, num_inference_steps=steps, guidance_scale=guidance,
                  max_sequence_length=msl)
        img = ref(generator=torch.Generator("cpu").manual_seed(seed), output_type="np", **kw).images
        img2 = ref(latents=packed.clone(), output_type="np", **kw).images
        assert np.array_equal(img, img2), "injected latents differ from the generator's"
        final = ref(latents=packed.clone(), output_type="latent", **kw).images
        img3 = pipe(generator=torch.Generator("cpu").manual_seed(seed), output_type="np", **kw).images
        d = float(np.abs(img - img3).max())
        n8 = int(((img3 * 255).round() != (img * 255).round()).sum())
        print(f"{c['name']}: in-memory vs reloaded pipeline: max abs diff {d:.3g} (float reordering), "
              f"8-bit values that differ: {n8}")
        if d > 1e-5:
            diagnose(pipe, reloaded, c["prompt"], msl)
            raise AssertionError("saved pipeline does not reproduce")
        assert img.shape == (1, H, W, 3)
        pil = FluxPipeline.numpy_to_pil(img)[0]  # (images * 255).round().astype("uint8")
        png = exp_dir / f"{c['name']}.png"
        pil.save(png)
        from PIL import Image
        assert np.array_equal(np.asarray(Image.open(png)), (img[0] * 255).round().astype(np.uint8))
        lat_path = exp_dir / f"{c['name']}_latents.safetensors"
        save_file({"latents": packed.contiguous(), "noise": noise.contiguous(),
                   "prompt_embeds": pe.contiguous(), "pooled_prompt_embeds": ppe.contiguous(),
                   "t5_input_ids": torch.tensor([t5_ids], dtype=torch.int64),
                   "clip_input_ids": torch.tensor([clip_ids], dtype=torch.int64),
                   "final_latents": final.contiguous()}, str(lat_path),
                  metadata={"seed": str(seed), "prompt": c["prompt"], "provenance": provenance(),
                            "description": "latents = packed initial noise [1, L, 64] (what the pipeline draws "
                                           "from torch.Generator('cpu').manual_seed(seed)); noise = the same "
                                           "unpacked [1,16,H/8,W/8]; final_latents = packed latents after the "
                                           "last step; prompt embeddings and token ids for debugging"})
        cases.append({"name": c["name"], "prompt": c["prompt"], "width": W, "height": H, "steps": steps,
                      "guidance": guidance, "seed": seed, "max_sequence_length": msl,
                      "expected_png": str(png.relative_to(E2E_DIR)),
                      "latents": str(lat_path.relative_to(E2E_DIR)),
                      "prompt_embeds_shape": list(pe.shape), "pooled_prompt_embeds_shape": list(ppe.shape),
                      "packed_latents_shape": list(packed.shape),
                      "t5_truncated": len(sp_full) + 1 > msl, "t5_input_ids": t5_ids,
                      "clip_input_ids": clip_ids})
        SUMMARY.append((str(png.relative_to(ROOT)), "e2e png", png.stat().st_size / 1024.0))
        SUMMARY.append((str(lat_path.relative_to(ROOT)), "e2e latents", lat_path.stat().st_size / 1024.0))
    doc = {"model_dir": "tiny-flux", "paths_relative_to": "tests/fixtures/e2e",
           "pipeline": "diffusers FluxPipeline, CPU float32, output_type='np' then numpy_to_pil "
                       "((x*255).round().astype(uint8))",
           "reference": "FluxPipeline.from_pretrained('tiny-flux', torch_dtype=torch.float32) on the CPU",
           "comparison_note": "float32 reruns of the same pipeline with differently laid-out weights differ by "
                              "~1e-6, so a handful of 8-bit values can differ by 1; compare with |diff| <= 1 per "
                              "value (or a PSNR threshold), not bit-exactly",
           "t5_tokenizer": t5_how, "clip_eos_pooling": "legacy argmax (eos_token_id=2)" if legacy else
           f"first id == {clip_eos}", "provenance": provenance(), "cases": cases}
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    import re
    text = re.sub(r"\[\s*([-0-9.,\s]+?)\s*\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text)
    assert json.loads(text) == doc
    (E2E_DIR / "cases.json").write_text(text + "\n")
    SUMMARY.append((str(out_dir.relative_to(ROOT)) + "/", "e2e pipeline", total / 1024.0))


# ----------------------------------------------------------------------------------------------

MAKERS = {"flux_transformer": make_flux_transformer, "t5_encoder": make_t5, "clip_text_encoder": make_clip,
          "flux_vae_decoder": make_vae, "flow_match_schedule": make_schedule, "flux_denoise": make_denoise,
          "rng": make_rng}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated subset of: " + ",".join(list(MAKERS) + ["e2e"]))
    ap.add_argument("--e2e", action="store_true", help="also make the end-to-end tiny pipeline fixture")
    ap.add_argument("--wait", type=int, default=3600, help="seconds to wait for tokenizer assets (e2e)")
    ap.add_argument("--verify", action="store_true", help="only re-verify existing parity fixtures")
    args = ap.parse_args()
    if args.verify:
        for p in sorted(PARITY.glob("*.safetensors")):
            verify_file(p)
            print(f"ok {p.relative_to(ROOT)}")
        return
    only = [s for s in args.only.split(",") if s]
    todo = only or list(MAKERS)
    for name in todo:
        if name == "e2e":
            continue
        MAKERS[name]()
    if args.e2e or "e2e" in only:
        make_e2e(args.wait)
    print(f"\n{'file':<78} {'module':<20} {'KB':>8}")
    for f, m, kb in SUMMARY:
        print(f"{f:<78} {m:<20} {kb:8.1f}")


if __name__ == "__main__":
    main()
