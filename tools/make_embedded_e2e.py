#!/usr/bin/env python3
"""End-to-end fixture for the embedded default model (models/ditrun-shapes).

Generates, with diffusers' FluxPipeline on the CPU in float32, exactly what `ditrun generate --prompt P
--seed S [--width W --height H] --out x.png` (no --model) makes with the model's defaults
(ditrun_defaults.json: 512x512, 20 steps, max_sequence_length 24, guidance 0), and stores the PNGs plus a
cases.json in tests/fixtures/e2e/embedded/. tests/app/test_embedded.cpp compares ditrun against them.

    /work/pyenv/bin/python tools/make_embedded_e2e.py

Guidance: the transformer has guidance_embeds=False, so FluxPipeline passes guidance=None to it and
guidance_scale has no effect; true_cfg_scale stays at its default 1.0 with no negative prompt, i.e. one
transformer pass per step (no CFG) -- the same as ditrun, which passes no guidance.
"""
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "ditrun-shapes"
OUT = ROOT / "tests" / "fixtures" / "e2e" / "embedded"

# (name, prompt, seed, size or None for the model default)
CASES = [
    ("red_circle_left", "a large red circle at the left on a blue background", 42, None),
    ("yellow_square_top_right", "a medium yellow square at the top right on a black background", 7, None),
    ("green_triangle_center", "a large green triangle in the center on a striped white background", 123, None),
    ("red_circle_left_256", "a large red circle at the left on a blue background", 42, 256),
]


def main():
    import diffusers
    import transformers
    from diffusers import FluxPipeline
    from PIL import Image

    torch.set_grad_enabled(False)
    defaults = json.loads((MODEL / "ditrun_defaults.json").read_text())
    pipe = FluxPipeline.from_pretrained(str(MODEL), torch_dtype=torch.float32).to("cpu")
    assert not pipe.transformer.config.guidance_embeds, "model unexpectedly has a guidance embedding"
    OUT.mkdir(parents=True, exist_ok=True)
    cases = []
    for name, prompt, seed, size in CASES:
        W = H = size or defaults["width"]
        if not size:
            assert defaults["width"] == defaults["height"]
        steps, msl = defaults["steps"], defaults["max_sequence_length"]
        img = pipe(prompt=prompt, width=W, height=H, num_inference_steps=steps,
                   guidance_scale=float(defaults.get("guidance", 0.0)), max_sequence_length=msl,
                   generator=torch.Generator("cpu").manual_seed(seed), output_type="np").images
        assert img.shape == (1, H, W, 3), img.shape
        u8 = (img[0] * 255).round().astype(np.uint8)  # diffusers' numpy_to_pil rounding
        png = OUT / f"{name}.png"
        Image.fromarray(u8).save(png)
        assert np.array_equal(np.asarray(Image.open(png)), u8)
        print(f"{name}: {prompt!r} seed {seed} {W}x{H} -> {png.relative_to(ROOT)}", flush=True)
        cases.append({"name": name, "prompt": prompt, "width": W, "height": H, "steps": steps, "seed": seed,
                      "max_sequence_length": msl, "guidance": defaults.get("guidance", 0),
                      "uses_model_default_size": size is None, "expected_png": png.name})
    doc = {
        "model_dir": "models/ditrun-shapes",
        "paths_relative_to": "tests/fixtures/e2e/embedded",
        "reference": "FluxPipeline.from_pretrained('models/ditrun-shapes', torch_dtype=torch.float32) on the CPU "
                     "(float16 weights upcast to float32), generator=torch.Generator('cpu').manual_seed(seed), "
                     "output_type='np', PNG = (x*255).round().astype(uint8)",
        "ditrun_command": "ditrun generate --prompt P --seed S [--width W --height H] --out x.png (no --model: "
                          "the embedded default model with ditrun_defaults.json)",
        "guidance_note": "transformer.config.guidance_embeds is False: FluxPipeline passes guidance=None, so "
                         "guidance_scale is ignored; true_cfg_scale=1 (no CFG)",
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "diffusers": diffusers.__version__, "transformers": transformers.__version__,
                     "numpy": np.__version__},
        "cases": cases,
    }
    (OUT / "cases.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}/cases.json ({len(cases)} cases)")


if __name__ == "__main__":
    sys.exit(main())
