"""Does the embedded model keep a true shape it is given half-noised? diffusers' FluxImg2ImgPipeline (CPU) on a
render of each shape ("a large <color> <shape> in the center on a white background") at strength 0.6 and 0.8
(12 steps, seed 1); one row per strength, columns circle, square, triangle, star, ring, cross.
usage: python tools/diag/shape_img2img.py [MODEL=models/ditrun-shapes] [OUT=shape_img2img.png]"""
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, "tools/world")
import world  # noqa: E402


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else "models/ditrun-shapes"
    out = sys.argv[2] if len(sys.argv) > 2 else "shape_img2img.png"
    from diffusers import FluxImg2ImgPipeline
    spec = world.load_spec()
    pipe = FluxImg2ImgPipeline.from_pretrained(model, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    rows = []
    for strength in (0.6, 0.8):
        row = []
        for shape in spec["shape_order"]:
            color = "blue" if shape == "star" else "red"
            prompt = f"a large {color} {shape} in the center on a white background"
            obj = world.sample_object(np.random.default_rng(5), spec, color, shape, "large", "center")
            render = world.render([world.Scene("white", "plain", [obj])], 256, spec, "cpu")[0]
            img = pipe(prompt=prompt, image=Image.fromarray(world.to_uint8(render)), strength=strength,
                       num_inference_steps=12, guidance_scale=0.0, max_sequence_length=24,
                       generator=torch.Generator().manual_seed(1)).images[0]
            row.append(np.array(img))
        rows.append(np.concatenate(row, 1))
    Image.fromarray(np.concatenate(rows, 0)).resize((768, 256)).save(out)
    print(out)


if __name__ == "__main__":
    main()
