#!/usr/bin/env python3
"""Make the `attention` parity fixtures (docs: parity-fixtures.md, "The attention module").

Each fixture holds q, k, v [B, S, H, D] and out = softmax(q·kᵀ/√D + mask)·v, where the mask is built here,
in Python, from the written contract alone (sparse-attention.md §1 GRAT, §2.1 NATTEN's per-axis rule), not
from ditrun's code: the fixtures check ditrun's mask and kernels against an independent reading of the
spec. Computed in float64 on the CPU, stored as float32. Deterministic (seeded torch.Generator).

Usage:
    python tools/make_attention_fixtures.py            # writes tests/fixtures/parity/attention_*.safetensors
    python tools/make_attention_fixtures.py --verify   # re-checks the committed attention fixtures

It reuses make_fixtures.py's writer (byte-deterministic safetensors) and registers its own runner there,
so make_fixtures' verification also covers these files when this module is imported.
"""

import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402


# ---- the mask, from the contract's text -------------------------------------------------------

def natten_keys(i, length, window, stride, dilation, causal):
    """Coordinates an axis coordinate i may attend (NATTEN, sparse-attention.md §2.1)."""
    group = i % dilation
    # Dilation: the axis splits into `dilation` interleaved sub-grids; work inside i's sub-grid.
    sub_len = length // dilation + 1 - (group + dilation - length % dilation) // dilation
    idx = i // dilation
    left = window // 2
    right = window // 2 + window % 2 - 1
    if causal:
        leader = min(idx // stride * stride + stride - 1, sub_len - 1)
        start = max(leader - left - right, 0)
        end = min(idx + 1, sub_len)
    else:
        leader = min(idx // stride * stride + stride // 2, sub_len - 1)
        start = max(leader - left, 0)
        if leader + right >= sub_len:
            start += sub_len - right - leader - 1
        end = start + window
    return {group + m * dilation for m in range(start, end)}


def grid_allows(cfg, qc, kc):
    method, p, grid = cfg["method"], cfg.get("params", {}), cfg["grid"]
    if method == "dense":
        return True
    if method == "gna":
        return all(kc[a] in natten_keys(qc[a], grid[a], p["window"][a], p.get("stride", [1] * 3)[a],
                                        p.get("dilation", [1] * 3)[a], bool(p.get("causal", [0] * 3)[a]))
                   for a in range(3))
    g = p["group"]
    qg = [qc[a] // g[a] for a in range(3)]
    kg = [kc[a] // g[a] for a in range(3)]
    if p.get("variant", "B") == "B":
        b = p.get("radius", 1)
        return all(abs(qg[a] - kg[a]) <= b for a in range(3))
    # X: the same group index on at least one axis that has more than one group.
    axes = [a for a in range(3) if math.ceil(grid[a] / g[a]) > 1]
    assert axes, "criss-cross needs an axis with more than one group (the contract says nothing else)"
    return any(qg[a] == kg[a] for a in axes)


def build_mask(cfg):
    """[S, S] bool: may query i attend key j (natural token order)."""
    t, h, w = cfg["grid"]
    n_grid, n_text, valid = t * h * w, cfg["text_len"], cfg["text_valid"]
    text_first = 0 if cfg["text_position"] == "before" else n_grid
    grid_first = n_text if cfg["text_position"] == "before" else 0
    tokens = []  # ("text", index in text) or ("grid", (t, h, w))
    for s in range(n_grid + n_text):
        if text_first <= s < text_first + n_text:
            tokens.append(("text", s - text_first))
        else:
            g = s - grid_first
            tokens.append(("grid", (g // (h * w), g // w % h, g % w)))
    S = len(tokens)
    mask = torch.zeros(S, S, dtype=torch.bool)
    for i, (qk, qv) in enumerate(tokens):
        for j, (kk, kv) in enumerate(tokens):
            if kk == "text":
                mask[i, j] = kv < valid  # padded text keys: never; valid ones: every query
            elif qk == "text":
                mask[i, j] = True
            else:
                mask[i, j] = grid_allows(cfg, qv, kv)
    return mask


def run_attention(cfg, weights, weights_format, inputs):
    q, k, v = (inputs[n].double() for n in ("q", "k", "v"))
    mask = build_mask(cfg)
    scores = torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask, float("-inf"))
    prob = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # a query with no allowed key outputs zeros
    return {"out": torch.einsum("bhij,bjhd->bihd", prob, v).float()}


mf.RUNNERS["attention"] = run_attention


# ---- the cases ----------------------------------------------------------------------------------

def case(name, method, grid, text_len=0, text_position="before", text_valid=None, params=None, b=1, h=2, d=64):
    return name, {"method": method, "grid": grid, "text_len": text_len, "text_position": text_position,
                  "text_valid": text_len if text_valid is None else text_valid, "params": params or {}}, (b, h, d)


CASES = [
    case("dense_plain_b2", "dense", [1, 5, 6], b=2, d=16),
    case("dense_text_before_pad", "dense", [1, 6, 7], text_len=10, text_valid=6, b=2, d=16),
    case("gna2d_stride_text_after_pad", "gna", [1, 9, 11], text_len=6, text_position="after", text_valid=4,
         params={"window": [1, 5, 7], "stride": [1, 2, 3], "dilation": [1, 1, 1], "causal": [0, 0, 0]}),
    case("gna2d_dilation_causal_text_before", "gna", [1, 10, 12], text_len=5,
         params={"window": [1, 3, 4], "stride": [1, 1, 2], "dilation": [1, 2, 3], "causal": [0, 1, 0]}),
    case("gna3d_stride_dilation_causal_pad", "gna", [4, 6, 7], text_len=5, text_valid=2,
         params={"window": [3, 3, 5], "stride": [2, 3, 1], "dilation": [1, 2, 1], "causal": [1, 0, 0]}),
    case("gna2d_blocked_b2", "gna", [1, 8, 8], b=2, d=16,
         params={"window": [1, 4, 4], "stride": [1, 4, 4]}),
    case("grat_b2d_text_before_pad", "grat", [1, 10, 13], text_len=7, text_valid=5,
         params={"variant": "B", "group": [1, 4, 4], "radius": 1}),
    case("grat_b3d_radius0", "grat", [3, 6, 6], params={"variant": "B", "group": [1, 3, 3], "radius": 0}),
    case("grat_x2d_text_after", "grat", [1, 12, 9], text_len=4, text_position="after",
         params={"variant": "X", "group": [1, 4, 3]}),
    case("grat_x3d_text_after_pad", "grat", [4, 6, 8], text_len=6, text_position="after", text_valid=3,
         params={"variant": "X", "group": [2, 3, 4]}),
]


def make(name, cfg, shape):
    b, h, d = shape
    t, gh, gw = cfg["grid"]
    S = t * gh * gw + cfg["text_len"]
    g = mf.gen("attention/" + name)
    inputs = {n: mf.randn([b, S, h, d], g) for n in ("q", "k", "v")}
    out = run_attention(cfg, {}, "diffusers", inputs)
    mask = build_mask(cfg)
    # Every query attends something, and every method case masks something.
    assert mask.any(dim=1).all(), name
    assert cfg["method"] == "dense" and cfg["text_valid"] == cfg["text_len"] or not mask.all(), name
    path = mf.PARITY / f"attention_{name}.safetensors"
    meta = {"provenance": f"tools/make_attention_fixtures.py; torch {torch.__version__}; explicit mask in "
                          "Python from parity-fixtures.md; float64 softmax, stored float32"}
    mf.save_fixture(path, "attention", cfg, "diffusers", {}, inputs, out, extra_meta=meta)
    return path, float(mask.double().mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verify", action="store_true", help="only re-verify the committed attention fixtures")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    if args.verify:
        for p in sorted(mf.PARITY.glob("attention_*.safetensors")):
            mf.verify_file(p)
            print(f"ok {p.relative_to(mf.ROOT)}")
        return
    for name, cfg, shape in CASES:
        path, density = make(name, cfg, shape)
        print(f"{path.relative_to(mf.ROOT)}  mask density {density:.3f}  {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
