"""The baseline side of bench/flux_h200.sh: diffusers' Flux.1-dev (random full-size weights, bf16, default
attention, no torch.compile) on the same GPU and shapes as `ditrun bench`. Times one transformer step,
PyTorch SDPA (cuDNN and flash backends) on the step's attention shape, the VAE decode and the text
encoders, each the median of N runs after warm-up with CUDA events, and the peak GPU memory of each
part (weights included, as ditrun reports it). Writes JSON and prints a table.

usage: python3 bench/diffusers_flux.py --size 1024 --json out.json
"""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F


def median_ms(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times), min(times)


def build(ctor):
    # Weights are made on the GPU directly in bf16: a CPU f32 init of 12B parameters takes minutes.
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            m = ctor()
    finally:
        torch.set_default_dtype(prev)
    return m.eval().requires_grad_(False)


def bench_dit(size, text_len, warmup, runs):
    from diffusers import FluxTransformer2DModel
    model = build(lambda: FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
        num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True,
        axes_dims_rope=(16, 56, 56)))
    n = (size // 16) ** 2
    g = torch.Generator("cuda").manual_seed(0)
    hs = torch.randn(1, n, 64, device="cuda", dtype=torch.bfloat16, generator=g)
    enc = torch.randn(1, text_len, 4096, device="cuda", dtype=torch.bfloat16, generator=g)
    pooled = torch.randn(1, 768, device="cuda", dtype=torch.bfloat16, generator=g)
    t = torch.full((1,), 0.5, device="cuda", dtype=torch.bfloat16)
    guid = torch.full((1,), 3.5, device="cuda", dtype=torch.bfloat16)
    h = size // 16
    img_ids = torch.zeros(h, h, 3, device="cuda")
    img_ids[..., 1] = torch.arange(h, device="cuda")[:, None]
    img_ids[..., 2] = torch.arange(h, device="cuda")[None, :]
    img_ids = img_ids.reshape(n, 3)
    txt_ids = torch.zeros(text_len, 3, device="cuda")

    def step():
        with torch.inference_mode():
            model(hidden_states=hs, encoder_hidden_states=enc, pooled_projections=pooled, timestep=t,
                  img_ids=img_ids, txt_ids=txt_ids, guidance=guid, return_dict=False)
    ms, mn = median_ms(step, warmup, runs)
    peak = torch.cuda.max_memory_allocated()
    del model
    return {"ms": ms, "min_ms": mn, "peak_bytes": peak, "tokens": n + text_len}


def bench_sdpa(seq, warmup, runs):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    q, k, v = (torch.randn(1, 24, seq, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    out = {}
    for name, backend in [("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)]:
        try:
            with sdpa_kernel(backend):
                ms, mn = median_ms(lambda: F.scaled_dot_product_attention(q, k, v), warmup, runs * 4)
            out[name] = {"ms": ms, "min_ms": mn, "tflops": 4 * seq * seq * 128 * 24 / (ms * 1e-3) / 1e12}
        except RuntimeError as e:
            out[name] = {"error": str(e)[:200]}
    return out


def bench_gemm(size, text_len, warmup, runs):
    # the step's linear layers as torch runs them (F.linear = cuBLAS addmm), weighted by count per step
    n, t, c, m = (size // 16) ** 2, text_len, 3072, 12288
    shapes = [(n, c, 3 * c, 19), (n, c, c, 19), (n, c, m, 19), (n, m, c, 19),
              (t, c, 3 * c, 19), (t, c, c, 19), (t, c, m, 19), (t, m, c, 19),
              (n + t, c, 3 * c, 38), (n + t, c, m, 38), (n + t, c + m, c, 38)]
    total = flops = 0.0
    for rows, k, out, count in shapes:
        x = torch.randn(1, rows, k, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(out, k, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(out, device="cuda", dtype=torch.bfloat16)
        ms, _ = median_ms(lambda: [F.linear(x, w, b) for _ in range(5)], 1, runs)
        total += ms / 5 * count
        flops += 2 * rows * k * out * count
    return {"ms": total, "min_ms": total, "tflops": flops / (total * 1e-3) / 1e12}


def bench_vae(size, warmup, runs):
    from diffusers import AutoencoderKL
    vae = build(lambda: AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512], layers_per_block=2,
        latent_channels=16, use_quant_conv=False, use_post_quant_conv=False, scaling_factor=0.3611,
        shift_factor=0.1159))
    z = torch.randn(1, 16, size // 8, size // 8, device="cuda", dtype=torch.bfloat16)
    try:
        def dec():
            with torch.inference_mode():
                vae.decode(z, return_dict=False)
        ms, mn = median_ms(dec, 1, max(1, runs // 2))
        r = {"ms": ms, "min_ms": mn, "peak_bytes": torch.cuda.max_memory_allocated()}
    except torch.OutOfMemoryError as e:
        r = {"error": "out of memory: " + str(e)[:120], "peak_bytes": torch.cuda.max_memory_allocated()}
    del vae
    torch.cuda.empty_cache()
    return r


def bench_text(text_len, warmup, runs):
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel
    t5 = build(lambda: T5EncoderModel(T5Config(
        vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
        relative_attention_num_buckets=32, relative_attention_max_distance=128, feed_forward_proj="gated-gelu")))
    clip = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                        num_attention_heads=12, max_position_embeddings=77,
                                        hidden_act="quick_gelu")).to("cuda", torch.bfloat16).eval()
    ids = torch.randint(0, 32128, (1, text_len), device="cuda")
    cids = torch.randint(0, 49408, (1, 77), device="cuda")

    def enc():
        with torch.inference_mode():
            t5(input_ids=ids)
            clip(input_ids=cids)
    ms, mn = median_ms(enc, 1, runs)
    r = {"ms": ms, "min_ms": mn, "peak_bytes": torch.cuda.max_memory_allocated()}
    del t5, clip
    torch.cuda.empty_cache()
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--text-len", type=int, default=512)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--parts", default="dit,attention,gemm,vae,text")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    parts = a.parts.split(",")
    import diffusers
    res = {"size": a.size, "torch": torch.__version__, "diffusers": diffusers.__version__,
           "gpu": torch.cuda.get_device_name(), "parts": {}}
    seq = (a.size // 16) ** 2 + a.text_len
    if "attention" in parts:
        res["parts"]["sdpa"] = bench_sdpa(seq, a.warmup, a.runs)
    if "gemm" in parts:
        res["parts"]["linear/step"] = bench_gemm(a.size, a.text_len, a.warmup, a.runs)
    if "dit" in parts:
        res["parts"]["dit step"] = bench_dit(a.size, a.text_len, a.warmup, a.runs)
    if "vae" in parts:
        res["parts"]["vae decode"] = bench_vae(a.size, a.warmup, a.runs)
    if "text" in parts:
        res["parts"]["text encode"] = bench_text(a.text_len, a.warmup, a.runs)
    print(json.dumps(res, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
