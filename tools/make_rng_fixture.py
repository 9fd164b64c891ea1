#!/usr/bin/env python3
"""Writes tests/fixtures/rng/randn_reference.json: torch.randn reference values for rt::TorchGenerator.

Each case seeds one CPU torch.Generator and makes several consecutive randn calls on it, so the test
also checks that generator state (including the cached Box-Muller sample of the numel < 16 path)
advances exactly as torch's does. Values are stored as float32 bit patterns (hex) for bit-exact
comparison, plus repr() for humans, plus the float64 sum of the whole tensor.

Run with the project's Python (torch CPU):  /work/pyenv/bin/python tools/make_rng_fixture.py
The vectorized path (numel >= 16) differs between torch's DEFAULT CPU kernel and its AVX2/AVX512
kernels; we reproduce the AVX2/AVX512 one (every x86-64 machine diffusers users run on), so the script
refuses to run under ATEN_CPU_CAPABILITY=default.
"""
import json
import math
import os
import struct
import sys

import torch

CASES = [
    # (seed, [shape per consecutive call])
    (0, [[1], [1], [7]]),                 # second [1] comes from the cached sin sample
    (42, [[15], [16], [17]]),             # scalar path, exactly 16, 16 + redrawn tail
    (1234567, [[31], [33], [1000]]),
    (0, [[1, 3, 32, 32]]),                # 3072
    (42, [[7], [3072], [1]]),             # cache survives a vectorized call in between
    (2**32 + 5, [[33]]),                  # only the low 32 bits of the seed matter
    (5, [[33]]),
    (1234567, [[1, 16, 128, 128]]),       # Flux 1024px latent size (packed later), sampled only
]

FULL_LIMIT = 64  # store every value of tensors up to this size


def f32_bits(v: float) -> str:
    return "0x%08x" % struct.unpack("<I", struct.pack("<f", v))[0]


def sample_indices(n: int) -> list:
    if n <= FULL_LIMIT:
        return list(range(n))
    idx = set(range(16)) | set(range(n - 32, n)) | set(range(0, n, max(97, n // 256)))
    return sorted(idx)


def main() -> int:
    cap = torch.backends.cpu.get_cpu_capability()
    if cap not in ("AVX2", "AVX512"):
        print(f"torch CPU capability is {cap}; run on x86-64 without ATEN_CPU_CAPABILITY=default",
              file=sys.stderr)
        return 1
    cases = []
    for seed, shapes in CASES:
        g = torch.Generator().manual_seed(seed)
        calls = []
        for shape in shapes:
            x = torch.randn(shape, generator=g, dtype=torch.float32)
            flat = x.flatten().tolist()
            idx = sample_indices(len(flat))
            calls.append({
                "shape": shape,
                "numel": len(flat),
                "indices": idx,
                "bits": [f32_bits(flat[i]) for i in idx],
                "values": [float("%.9g" % flat[i]) for i in idx],
                "sum": math.fsum(flat),
            })
        cases.append({"seed": seed, "calls": calls})
    out = {
        "generator": "torch.Generator().manual_seed(seed); torch.randn(shape, generator=g, dtype=float32)",
        "torch_version": torch.__version__,
        "cpu_capability": cap,
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "rng",
                        "randn_reference.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", os.path.normpath(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
