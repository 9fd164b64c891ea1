#!/usr/bin/env python3
"""Writes a diffusers FluxPipeline folder with Flux.1-dev's shapes and seeded random weights (bf16), for
throughput benchmarks that need a model on disk (`ditrun batch`, diffusers' FluxPipeline) where the real
checkpoint cannot be downloaded. The tokenizers are the embedded model's (models/ditrun-shapes): every id
they produce is inside T5-XXL's and CLIP-L's vocabularies, and CLIP's config takes their bos/eos/pad ids so
that the pooled output picks the eos token as it should. The images are noise; only the time means
something. About 34 GB (transformer 23.8, T5-XXL 9.5); the weights are made on the GPU when there is one.

    python3 tools/make_random_flux.py --out /tmp/flux-dev-random [--seed 0]
    python3 tools/make_random_flux.py --out /tmp/tiny --tiny      # small shapes, CPU check of the path
"""
import argparse
import json
import os
import shutil

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
EMBEDDED = os.path.join(HERE, "..", "models", "ditrun-shapes")

# Flux.1-dev (models.md §1): transformer, T5-XXL encoder, CLIP-L text tower, the 16-channel AE.
DEV = {
    "transformer": dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                        num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768,
                        guidance_embeds=True, axes_dims_rope=(16, 56, 56)),
    "t5": dict(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
               relative_attention_num_buckets=32, relative_attention_max_distance=128, feed_forward_proj="gated-gelu",
               dropout_rate=0.0, is_encoder_decoder=False, use_cache=False, tie_word_embeddings=False),
    "clip": dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768),
    "vae": dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512], layers_per_block=2,
                latent_channels=16, norm_num_groups=32, sample_size=1024, scaling_factor=0.3611, shift_factor=0.1159,
                use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=True, force_upcast=True),
}


def tiny(cfg):
    c = json.loads(json.dumps(cfg))
    c["transformer"].update(num_layers=1, num_single_layers=1, attention_head_dim=32, num_attention_heads=2,
                            joint_attention_dim=64, pooled_projection_dim=32, axes_dims_rope=(4, 14, 14))
    c["t5"].update(d_model=64, d_kv=16, d_ff=128, num_layers=1, num_heads=4)
    c["clip"].update(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                     projection_dim=32)
    c["vae"].update(block_out_channels=[16, 16, 16, 16], layers_per_block=1, norm_num_groups=8)
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tiny", action="store_true", help="small shapes (a CPU check of the folder's format)")
    args = ap.parse_args()
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel

    cfg = tiny(DEV) if args.tiny else DEV
    clip_ids = json.load(open(os.path.join(EMBEDDED, "text_encoder", "config.json")))
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        cfg["clip"][k] = clip_ids[k]
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(args.seed)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # made in bf16 on the device: an f32 CPU init of 17B parameters is slow
    try:
        with torch.device(dev):
            transformer = FluxTransformer2DModel(**cfg["transformer"])
            t5 = T5EncoderModel(T5Config(**cfg["t5"]))
            clip = CLIPTextModel(CLIPTextConfig(**cfg["clip"]))
            vae = AutoencoderKL(**cfg["vae"])
    finally:
        torch.set_default_dtype(prev)
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(os.path.join(EMBEDDED, "scheduler"))
    pipe = FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=clip, tokenizer=CLIPTokenizer.from_pretrained(
        os.path.join(EMBEDDED, "tokenizer")), text_encoder_2=t5, tokenizer_2=AutoTokenizer.from_pretrained(
        os.path.join(EMBEDDED, "tokenizer_2")), transformer=transformer)
    if os.path.exists(args.out):
        raise SystemExit("%s exists; remove it first" % args.out)
    pipe.save_pretrained(args.out, safe_serialization=True, max_shard_size="10GB")
    for d in ("tokenizer", "tokenizer_2"):  # the verified files (transformers 5's save_pretrained drops some)
        shutil.rmtree(os.path.join(args.out, d))
        shutil.copytree(os.path.join(EMBEDDED, d), os.path.join(args.out, d))
    # transformers 5 saves the CLIP text tower without the canonical `text_model.` prefix; ditrun needs it.
    from safetensors.torch import load_file, save_file
    te = os.path.join(args.out, "text_encoder")
    for f in os.listdir(te):
        if f.endswith(".safetensors"):
            sd = load_file(os.path.join(te, f))
            sd = {(k if k.startswith("text_model.") else "text_model." + k): v
                  for k, v in sd.items()}
            save_file(sd, os.path.join(te, f), metadata={"format": "pt"})
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(args.out) for f in fs)
    print("wrote %s: %.1f GB (%s shapes, seed %d)" % (args.out, size / 1e9, "tiny" if args.tiny else "Flux.1-dev",
                                                     args.seed))


if __name__ == "__main__":
    main()
