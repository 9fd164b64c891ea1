"""Weight-layout conversions for the parity fixtures: diffusers <-> BFL (original single-file) key names
of the Flux transformer and of the Flux AE decoder (models.md §1.10). Used by make_fixtures.py to write
`bfl` fixtures and to check them by converting back."""
import torch


# ---- Flux transformer: diffusers <-> BFL key conversion --------------------------------------

def _flux_bfl_plan(cfg):
    """List of (bfl_key_stem, [diffusers stems], op) with op in {'same', 'cat', 'swap'}."""
    plan = [("img_in", ["x_embedder"], "same"),
            ("txt_in", ["context_embedder"], "same"),
            ("time_in.in_layer", ["time_text_embed.timestep_embedder.linear_1"], "same"),
            ("time_in.out_layer", ["time_text_embed.timestep_embedder.linear_2"], "same"),
            ("vector_in.in_layer", ["time_text_embed.text_embedder.linear_1"], "same"),
            ("vector_in.out_layer", ["time_text_embed.text_embedder.linear_2"], "same")]
    if cfg.get("guidance_embeds"):
        plan += [("guidance_in.in_layer", ["time_text_embed.guidance_embedder.linear_1"], "same"),
                 ("guidance_in.out_layer", ["time_text_embed.guidance_embedder.linear_2"], "same")]
    for i in range(cfg["num_layers"]):
        b, d = f"double_blocks.{i}", f"transformer_blocks.{i}"
        plan += [
            (f"{b}.img_mod.lin", [f"{d}.norm1.linear"], "same"),
            (f"{b}.txt_mod.lin", [f"{d}.norm1_context.linear"], "same"),
            (f"{b}.img_attn.qkv", [f"{d}.attn.to_q", f"{d}.attn.to_k", f"{d}.attn.to_v"], "cat"),
            (f"{b}.txt_attn.qkv", [f"{d}.attn.add_q_proj", f"{d}.attn.add_k_proj", f"{d}.attn.add_v_proj"], "cat"),
            (f"{b}.img_attn.norm.query_norm.scale", [f"{d}.attn.norm_q.weight"], "leaf"),
            (f"{b}.img_attn.norm.key_norm.scale", [f"{d}.attn.norm_k.weight"], "leaf"),
            (f"{b}.txt_attn.norm.query_norm.scale", [f"{d}.attn.norm_added_q.weight"], "leaf"),
            (f"{b}.txt_attn.norm.key_norm.scale", [f"{d}.attn.norm_added_k.weight"], "leaf"),
            (f"{b}.img_attn.proj", [f"{d}.attn.to_out.0"], "same"),
            (f"{b}.txt_attn.proj", [f"{d}.attn.to_add_out"], "same"),
            (f"{b}.img_mlp.0", [f"{d}.ff.net.0.proj"], "same"),
            (f"{b}.img_mlp.2", [f"{d}.ff.net.2"], "same"),
            (f"{b}.txt_mlp.0", [f"{d}.ff_context.net.0.proj"], "same"),
            (f"{b}.txt_mlp.2", [f"{d}.ff_context.net.2"], "same"),
        ]
    for i in range(cfg["num_single_layers"]):
        b, d = f"single_blocks.{i}", f"single_transformer_blocks.{i}"
        plan += [
            (f"{b}.modulation.lin", [f"{d}.norm.linear"], "same"),
            (f"{b}.linear1", [f"{d}.attn.to_q", f"{d}.attn.to_k", f"{d}.attn.to_v", f"{d}.proj_mlp"], "cat"),
            (f"{b}.norm.query_norm.scale", [f"{d}.attn.norm_q.weight"], "leaf"),
            (f"{b}.norm.key_norm.scale", [f"{d}.attn.norm_k.weight"], "leaf"),
            (f"{b}.linear2", [f"{d}.proj_out"], "same"),
        ]
    plan += [("final_layer.adaLN_modulation.1", ["norm_out.linear"], "swap"),
             ("final_layer.linear", ["proj_out"], "same")]
    return plan


def _swap_halves(t):
    a, b = t.chunk(2, dim=0)
    return torch.cat([b, a], dim=0)


def flux_diffusers_to_bfl(sd, cfg, prefix=""):
    out, used = {}, set()
    for bfl, dif, op in _flux_bfl_plan(cfg):
        suffixes = [""] if op == "leaf" else [".weight", ".bias"]
        for s in suffixes:
            src = [sd[d + s] for d in dif]
            used.update(d + s for d in dif)
            if op in ("same", "leaf"):
                v = src[0]
            elif op == "cat":
                v = torch.cat(src, dim=0)
            else:
                v = _swap_halves(src[0])
            out[prefix + bfl + s] = v.clone()
    missing = set(sd) - used
    assert not missing, f"unconverted diffusers keys: {sorted(missing)}"
    return out


def flux_bfl_to_diffusers(bsd, cfg):
    """Inverse conversion (used only to verify the BFL files)."""
    pfx = "model.diffusion_model."
    bsd = {(k[len(pfx):] if k.startswith(pfx) else k): v for k, v in bsd.items()}
    out, used = {}, set()
    for bfl, dif, op in _flux_bfl_plan(cfg):
        suffixes = [""] if op == "leaf" else [".weight", ".bias"]
        for s in suffixes:
            v = bsd[bfl + s]
            used.add(bfl + s)
            if op in ("same", "leaf"):
                out[dif[0] + s] = v
            elif op == "swap":
                out[dif[0] + s] = _swap_halves(v)
            else:
                sizes = [out_features_of(d, cfg) for d in dif]
                for d, part in zip(dif, torch.split(v, sizes, dim=0)):
                    out[d + s] = part
    extra = set(bsd) - used
    assert not extra, f"unknown BFL keys: {sorted(extra)}"
    return out


def out_features_of(dstem, cfg):
    inner = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    if dstem.endswith("proj_mlp"):
        return int(inner * cfg.get("mlp_ratio", 4.0))
    return inner


# ---- VAE decoder: diffusers <-> BFL -----------------------------------------------------------

def vae_decoder_diffusers_to_bfl(sd, cfg):
    n = len(cfg["block_out_channels"])
    out = {}
    for k, v in sd.items():
        assert k.startswith("decoder."), k
        r = k[len("decoder."):]
        parts = r.split(".")
        if parts[0] == "up_blocks":
            kk = int(parts[1])
            bi = n - 1 - kk
            if parts[2] == "resnets":
                rest = ".".join(parts[4:]).replace("conv_shortcut", "nin_shortcut")
                nk = f"up.{bi}.block.{parts[3]}.{rest}"
            elif parts[2] == "upsamplers":
                assert parts[3] == "0"
                nk = f"up.{bi}.upsample." + ".".join(parts[4:])
            else:
                raise KeyError(k)
        elif parts[0] == "mid_block":
            if parts[1] == "resnets":
                nk = f"mid.block_{int(parts[2]) + 1}." + ".".join(parts[3:])
            elif parts[1] == "attentions":
                assert parts[2] == "0"
                sub = ".".join(parts[3:])
                m = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
                stem, leaf = sub.rsplit(".", 1)
                nk = f"mid.attn_1.{m[stem]}.{leaf}"
                if stem != "group_norm" and leaf == "weight":
                    v = v.reshape(v.shape[0], v.shape[1], 1, 1)
            else:
                raise KeyError(k)
        elif parts[0] == "conv_norm_out":
            nk = "norm_out." + ".".join(parts[1:])
        elif parts[0] in ("conv_in", "conv_out"):
            nk = r
        else:
            raise KeyError(k)
        out["decoder." + nk] = v.clone()
    return out


def vae_decoder_bfl_to_diffusers(bsd, cfg):
    n = len(cfg["block_out_channels"])
    out = {}
    for k, v in bsd.items():
        r = k[len("decoder."):]
        parts = r.split(".")
        if parts[0] == "up":
            kk = n - 1 - int(parts[1])
            if parts[2] == "block":
                rest = ".".join(parts[4:]).replace("nin_shortcut", "conv_shortcut")
                nk = f"up_blocks.{kk}.resnets.{parts[3]}.{rest}"
            else:
                nk = f"up_blocks.{kk}.upsamplers.0." + ".".join(parts[3:])
        elif parts[0] == "mid":
            if parts[1].startswith("block_"):
                nk = f"mid_block.resnets.{int(parts[1][6:]) - 1}." + ".".join(parts[2:])
            else:
                m = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
                nk = f"mid_block.attentions.0.{m[parts[2]]}.{parts[3]}"
                if parts[2] != "norm" and parts[3] == "weight":
                    v = v.reshape(v.shape[0], v.shape[1])
        elif parts[0] == "norm_out":
            nk = "conv_norm_out." + ".".join(parts[1:])
        else:
            nk = r
        out["decoder." + nk] = v
    return out
