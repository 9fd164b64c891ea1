"""How far the reference implementations themselves land from the float32 fixture outputs when run in
bf16 on the GPU: every parity fixture's module rebuilt by make_fixtures.py's runners with bf16 weights and
inputs (ids stay as stored). This is the "naive same-precision implementation" of design.md's relative rule
for `ditrun parity --device cuda --dtype bf16`.

usage (a CUDA machine with torch, diffusers, transformers): python3 tools/fixture_bf16_baseline.py [FILES...]
"""
import glob
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402


def to_device(name, t):
    if not t.is_floating_point() or name.endswith("ids"):
        return t.to("cuda")
    return t.to("cuda", torch.bfloat16)


def main():
    files = sys.argv[1:] or sorted(glob.glob(str(Path(__file__).resolve().parents[1] / "tests/fixtures/parity/*.safetensors")))
    torch.set_default_device("cuda")
    torch.set_default_dtype(torch.bfloat16)
    for path in files:
        meta, cfg, w, inputs, outputs = mf.read_fixture(path)
        module = meta["module"]
        if module == "flow_match_schedule":
            continue
        w = {k: to_device(k, v) for k, v in w.items()}
        inputs = {k: to_device(k, v) for k, v in inputs.items()}
        try:
            with torch.no_grad():
                got = mf.RUNNERS[module](cfg, w, meta.get("weights_format"), inputs)
        except Exception as e:  # a runner that cannot run in bf16 is reported, not fatal
            print(f"{Path(path).name}  error: {type(e).__name__}: {str(e)[:120]}")
            continue
        for name, want in outputs.items():
            print(f"{Path(path).name}  {name}  reference bf16 rel_l2={mf.rel_l2(got[name].float().cpu(), want):.3e}")


if __name__ == "__main__":
    main()
