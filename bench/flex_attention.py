#!/usr/bin/env python3
"""PyTorch FlexAttention on the masks of ditrun's block-sparse kernel (issue 5), beside cuDNN's dense SDPA.

Each method's mask is a FlexAttention mask_mod with exactly sparse_attention/mask_rule.h's semantics (text
before/after the [T, H, W] grid, padded text keys never attended, text queries see every valid key; GNA's
per-axis NATTEN rule; GRAT variants B and X). Problems and method spellings follow
bench/sparse_attention_h200.sh. bf16 q/k/v [1, H, L, 128]; block masks of 128x128; mean of --repeat calls
after 2 warmups, timed with CUDA events. "setup s" is create_block_mask plus the first (compiling) call.

usage: python3 bench/flex_attention.py [--repeat 10] [--only NAME] [--max-seconds 200]
       python3 bench/flex_attention.py --self-test   (CPU: the mask_mods against tools/make_attention_fixtures.py)
"""
import argparse
import functools
import inspect
import math
import operator
import sys
import time
from pathlib import Path

import torch

# name, grid (T, H, W), text tokens, text before the grid, valid text tokens, heads, methods
PROBLEMS = [
    ("flux2048", (1, 128, 128), 512, True, 512, 24, ["gna:window=1x40x40,stride=1x16x16",
                                                     "grat:variant=B,group=1x16x16", "grat:variant=X,group=1x16x16"]),
    ("flux4096", (1, 256, 256), 512, True, 512, 24, ["gna:window=1x80x80,stride=1x16x16",
                                                     "grat:variant=B,group=1x16x16"]),
    ("wan480", (21, 30, 52), 0, True, 0, 12, ["gna:window=9x16x24,stride=1x8x8", "grat:variant=B,group=3x8x8"]),
    ("hunyuan720", (33, 45, 80), 256, False, 56, 24, ["gna:window=18x24x24,stride=16x8x8",
                                                      "grat:variant=B,group=4x8x8"]),
]


def parse_method(spec):
    """'gna:window=1x40x40,stride=1x16x16' -> ('gna', {'window': [1, 40, 40], 'stride': [1, 16, 16]})."""
    kind, _, rest = spec.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, _, val = item.partition("=")
        params[key] = val if key == "variant" else [int(x) for x in val.split("x")]
    if "radius" in params:
        params["radius"] = params["radius"][0]
    return kind, params


def neighborhood_axis(i, j, L, w, s, d, causal):
    """mask_rule.h neighborhood_axis on index tensors (L, w, s, d: Python ints)."""
    same_subgrid = None
    if d > 1:
        same_subgrid = i % d == j % d
        L = L // d + 1 - (i % d + d - L % d) // d  # the length of i's dilation sub-grid
        i, j = i // d, j // d
    left, right = w // 2, w // 2 + w % 2 - 1
    lead = (i // s) * s + (s - 1 if causal else s // 2)
    lead = torch.where(lead > L - 1, L - 1, lead)
    start = lead - left - (right if causal else 0)
    start = torch.where(start < 0, 0, start)
    if causal:
        end = torch.where(i + 1 < L, i + 1, L)
    else:
        start = start + torch.where(lead + right >= L, L - right - lead - 1, 0)
        end = start + w
    ok = (j >= start) & (j < end)
    return ok if same_subgrid is None else ok & same_subgrid


def make_mask_mod(grid, text_len, text_before, text_valid, kind, p):
    n_grid, first = grid[0] * grid[1] * grid[2], text_len if text_before else 0

    def coords(idx):
        g = idx - first
        return g // (grid[1] * grid[2]), g // grid[2] % grid[1], g % grid[2]

    def grid_rule(q_idx, kv_idx):
        qc, kc, terms = coords(q_idx), coords(kv_idx), []
        # Axes of one token (or one group) always pass their test; dropping them keeps the rule exact.
        if kind == "gna":
            stride, dil, causal = p.get("stride", [1] * 3), p.get("dilation", [1] * 3), p.get("causal", [0] * 3)
            terms = [neighborhood_axis(qc[a], kc[a], grid[a], p["window"][a], stride[a], dil[a], bool(causal[a]))
                     for a in range(3) if grid[a] > 1]
        elif kind == "grat":
            g = p["group"]
            axes = [a for a in range(3) if -(-grid[a] // g[a]) > 1]
            if p.get("variant", "B") == "B":
                r = p.get("radius", 1)
                diffs = [qc[a] // g[a] - kc[a] // g[a] for a in axes]
                terms = [(dd <= r) & (dd >= -r) for dd in diffs]
            elif axes:  # X: the same group index on at least one axis with more than one group
                same = [qc[a] // g[a] == kc[a] // g[a] for a in axes]
                terms = [functools.reduce(operator.or_, same)]
        elif kind != "dense":
            raise ValueError(f"unknown method {kind}")
        if not terms:
            return torch.ones_like(q_idx + kv_idx, dtype=torch.bool)
        return functools.reduce(operator.and_, terms)

    def mask_mod(b, h, q_idx, kv_idx):
        ok = grid_rule(q_idx, kv_idx)
        if text_len:
            q_grid = (q_idx >= first) & (q_idx < first + n_grid)
            k_grid = (kv_idx >= first) & (kv_idx < first + n_grid)
            ok = ok | ~q_grid | ~k_grid
            if text_valid < text_len:  # padded text keys: never
                ok = ok & (k_grid | (kv_idx - (0 if text_before else n_grid) < text_valid))
        return ok

    return mask_mod


def block_density(bm, length, block=128):
    """(visited blocks, partial blocks) / all blocks of a BlockMask."""
    total = bm.kv_num_blocks.numel() * -(-length // block)
    partial = int(bm.kv_num_blocks.sum())
    full = int(bm.full_kv_num_blocks.sum()) if bm.full_kv_num_blocks is not None else 0
    return (partial + full) / total, partial / total


def self_test():
    """The mask_mods against tools/make_attention_fixtures.py's explicit masks (an independent reading of the
    contract): whole masks on small layouts, then sampled pairs of this benchmark's own problems."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import make_attention_fixtures as fx
    from torch.nn.attention.flex_attention import create_block_mask, create_mask

    gna = lambda w, s, d=(1, 1, 1), c=(0, 0, 0): {"window": list(w), "stride": list(s), "dilation": list(d),
                                                   "causal": list(c)}
    extra = [
        fx.case("gna_text_before_pad", "gna", [1, 7, 9], 5, "before", 3, gna((1, 3, 4), (1, 2, 3))),
        fx.case("gna_text_after_pad", "gna", [1, 7, 9], 5, "after", 3, gna((1, 4, 3), (1, 3, 2))),
        fx.case("gna3d_even", "gna", [3, 5, 6], params=gna((2, 4, 4), (2, 3, 2))),
        fx.case("gna3d_full_window", "gna", [3, 5, 6], 4, "after", 2, gna((3, 5, 6), (1, 2, 3))),
        fx.case("gna3d_dil_causal", "gna", [3, 5, 6], 5, "before", 3, gna((2, 3, 3), (1, 3, 1), (1, 1, 2), (1, 0, 1))),
        fx.case("grat_b_pad_after", "grat", [3, 5, 6], 5, "after", 3, {"variant": "B", "group": [2, 2, 4]}),
        fx.case("grat_b_r0_before", "grat", [1, 7, 9], 5, "before", 3, {"variant": "B", "group": [1, 3, 4],
                                                                           "radius": 0}),
        fx.case("grat_b_r2", "grat", [3, 5, 6], params={"variant": "B", "group": [1, 2, 2], "radius": 2}),
        fx.case("grat_x_before_pad", "grat", [3, 5, 6], 5, "before", 3, {"variant": "X", "group": [2, 3, 4]}),
        fx.case("grat_x_one_group_axis", "grat", [1, 7, 9], params={"variant": "X", "group": [1, 7, 4]}),
    ]
    failures = 0
    for name, cfg, _ in fx.CASES + extra:
        t, h, w = cfg["grid"]
        S = t * h * w + cfg["text_len"]
        mm = make_mask_mod(cfg["grid"], cfg["text_len"], cfg["text_position"] == "before", cfg["text_valid"],
                           cfg["method"], cfg["params"])
        want = fx.build_mask(cfg)
        got = create_mask(mm, 1, 1, S, S, device="cpu")[0, 0]
        nb = -(-S // 8)  # block level: BlockMask density against the reference's 8x8 tiles
        tiles = torch.zeros(nb * 8, nb * 8, dtype=torch.bool)
        tiles[:S, :S] = want
        want_density = float(tiles.view(nb, 8, nb, 8).any(3).any(1).double().mean())
        density = block_density(create_block_mask(mm, 1, 1, S, S, device="cpu", BLOCK_SIZE=8), S, 8)[0]
        ok = torch.equal(got, want) and abs(density - want_density) < 1e-12
        failures += not ok
        print(f"{'ok' if ok else 'FAIL'} {name}: {int((got != want).sum())} of {S * S} differ, "
              f"element density {float(want.double().mean()):.3f}, block density {density:.3f}/{want_density:.3f}")
    gen = torch.Generator().manual_seed(0)
    for name, grid, text_len, before, valid, _, methods in PROBLEMS:
        n_grid, S = math.prod(grid), math.prod(grid) + text_len
        q = torch.randint(0, S, (4000,), generator=gen)
        spans = [torch.randint(-min(g, 90), min(g, 90) + 1, (4000,), generator=gen) for g in grid]
        k = (q + spans[0] * grid[1] * grid[2] + spans[1] * grid[2] + spans[2]).clamp(0, S - 1)
        k[:1000] = torch.randint(0, S, (1000,), generator=gen)
        first, text_first = (text_len, 0) if before else (0, n_grid)
        if text_len:  # text queries and keys, padded ones included
            q[:300] = torch.randint(text_first, text_first + text_len, (300,), generator=gen)
            k[1000:1300] = torch.randint(text_first, text_first + text_len, (300,), generator=gen)

        def token(s):
            if not first <= s < first + n_grid:
                return "text", s - text_first
            g = s - first
            return "grid", (g // (grid[1] * grid[2]), g // grid[2] % grid[1], g % grid[2])

        for spec in methods:
            kind, params = parse_method(spec)
            cfg = {"method": kind, "grid": list(grid), "params": params}
            want = []
            for qi, ki in zip(q.tolist(), k.tolist()):
                (qt, qv), (kt, kv) = token(qi), token(ki)
                want.append(kv < valid if kt == "text" else qt == "text" or fx.grid_allows(cfg, qv, kv))
            got = make_mask_mod(grid, text_len, before, valid, kind, params)(0, 0, q, k)
            ok = got.tolist() == want
            failures += not ok
            print(f"{'ok' if ok else 'FAIL'} {name} {spec}: {sum(want)} of 4000 sampled pairs allowed, "
                  f"{sum(a != b for a, b in zip(got.tolist(), want))} differ")
    print("self-test", "FAILED" if failures else "passed")
    return 1 if failures else 0


def time_ms(fn, repeat):
    for _ in range(2):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeat):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / repeat


def bench(args):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    for knob in ("recompile_limit", "cache_size_limit"):  # one recompilation per mask_mod and shape
        if hasattr(torch._dynamo.config, knob):
            setattr(torch._dynamo.config, knob, 64)
    flex = torch.compile(flex_attention, dynamic=False)
    if "_compile" in inspect.signature(create_block_mask).parameters:
        make_block_mask = functools.partial(create_block_mask, _compile=True)
    else:  # a torch that dropped the deprecated flag: compile the whole call instead
        make_block_mask = torch.compile(create_block_mask)
    t0, rows, skipped = time.time(), [], []
    for name, grid, text_len, before, valid, heads, methods in PROBLEMS:
        if args.only and name != args.only:
            continue
        if time.time() - t0 > args.max_seconds:
            skipped.append(name)
            continue
        try:
            L = math.prod(grid) + text_len
            q, k, v = (torch.randn(1, heads, L, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
            try:
                with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                    sdpa = time_ms(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v), args.repeat)
                sdpa = f"{sdpa:.3f}"
            except Exception as e:  # noqa: BLE001 - the flex rows are still worth printing
                print(f"{name}: cuDNN SDPA failed: {type(e).__name__}: {e}", file=sys.stderr)
                sdpa = "failed"
            for spec in methods:
                try:
                    t1 = time.time()
                    mm = make_mask_mod(grid, text_len, before, valid, *parse_method(spec))
                    bm = make_block_mask(mm, None, None, L, L, device="cuda", BLOCK_SIZE=128)
                    flex(q, k, v, block_mask=bm)
                    torch.cuda.synchronize()
                    setup = time.time() - t1
                    density, partial = block_density(bm, L)
                    ms = time_ms(lambda: flex(q, k, v, block_mask=bm), args.repeat)
                    rows.append((name, spec, f"{density:.4f}", f"{partial:.4f}", f"{ms:.3f}", sdpa, f"{setup:.1f}"))
                except Exception as e:  # noqa: BLE001 - one failure (OOM, compile) must not end the sweep
                    print(f"{name} {spec} failed: {type(e).__name__}: {str(e)[:300]}", file=sys.stderr)
                    rows.append((name, spec, "-", "-", "failed", sdpa, "-"))
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
                torch.cuda.empty_cache()
            del q, k, v
            torch.cuda.empty_cache()
        except Exception as e:  # noqa: BLE001
            print(f"{name} failed: {type(e).__name__}: {str(e)[:300]}", file=sys.stderr)
            torch.cuda.empty_cache()
    head = ("problem", "method", "density", "partial", "flex ms", "sdpa-cudnn ms", "setup s")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, bf16, D=128, repeat {args.repeat}; "
          "density/partial: visited/partial 128x128 blocks of the BlockMask")
    for r in [head] + rows:
        print("  ".join(c.ljust(wd) for c, wd in zip(r, widths)))
    if skipped:
        print(f"skipped (over --max-seconds {args.max_seconds}): {', '.join(skipped)}")
    print(f"total {time.time() - t0:.0f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--only", help="run one problem (flux2048, flux4096, wan480, hunyuan720)")
    ap.add_argument("--max-seconds", type=float, default=200, help="start no new problem after this wall time")
    ap.add_argument("--self-test", action="store_true", help="CPU check of the mask_mods; needs no GPU")
    args = ap.parse_args()
    if args.self_test:
        sys.exit(self_test())
    torch.set_grad_enabled(False)
    bench(args)


if __name__ == "__main__":
    main()
