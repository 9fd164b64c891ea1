"""Tests for the procedural world.  Run:  python tools/world/test_world.py   or   cd tools/world && python -m unittest"""
import json
import math
import os
import sys
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import world  # noqa: E402

SPEC = world.load_spec()


def _scenes(seed, n, split="train", n_objects=None):
    rng = np.random.default_rng(seed)
    return [world.sample_scene(rng, SPEC, split=split, n_objects=n_objects) for _ in range(n)]


class TestSpec(unittest.TestCase):
    def test_spec_consistent(self):
        s = SPEC
        self.assertEqual(s["image_size_default"], 256)
        for c in s["backgrounds"]["colors"]:
            self.assertIn(c, s["colors"])
        for c, sh in s["heldout_pairs"]:
            self.assertIn(c, s["colors"])
            self.assertIn(sh, s["shapes"])
        self.assertEqual(set(s["shape_order"]), set(s["shapes"]))
        th = s["size_thresholds"]
        self.assertLess(s["sizes"]["small"]["max"], th["small_medium"])
        self.assertLess(th["small_medium"], s["sizes"]["medium"]["min"])
        self.assertLess(s["sizes"]["medium"]["max"], th["medium_large"])
        self.assertLess(th["medium_large"], s["sizes"]["large"]["min"])
        cells = sorted(tuple(p["cell"]) for p in s["positions"])
        self.assertEqual(cells, [(r, c) for r in range(3) for c in range(3)])
        # enclosing-circle ratios match the geometry
        for sh in s["shape_order"]:
            v = world.shape_vertices(sh, s)
            r = 0.5 if v is None else max(math.hypot(x, y) for x, y in v)
            self.assertAlmostEqual(2 * r, s["shapes"][sh]["enclosing_circle_over_diameter"], places=4)
        # every color and shape stays in training
        train = world._pairs(s, "train")
        self.assertEqual({c for c, _ in train}, set(s["colors"]))
        self.assertEqual({sh for _, sh in train}, set(s["shapes"]))


class TestSampling(unittest.TestCase):
    def test_determinism(self):
        a = _scenes(123, 50)
        b = _scenes(123, 50)
        self.assertEqual([x.to_dict() for x in a], [x.to_dict() for x in b])
        ra = world.render(a[:8], 64, SPEC)
        rb = world.render(b[:8], 64, SPEC)
        self.assertTrue(torch.equal(ra, rb))
        va = world.render_video(world.sample_video(np.random.default_rng(5), SPEC), 32, 6, SPEC)
        vb = world.render_video(world.sample_video(np.random.default_rng(5), SPEC), 32, 6, SPEC)
        self.assertTrue(torch.equal(va, vb))

    def test_heldout_split(self):
        held = {tuple(p) for p in SPEC["heldout_pairs"]}
        n1 = 0
        for sc in _scenes(0, 10000, "train"):
            n1 += len(sc.objects) == 1
            for o in sc.objects:
                self.assertNotIn((o.color, o.shape), held)
        self.assertTrue(5400 < n1 < 6600, n1)  # n_objects 1 with p 0.6
        for sc in _scenes(1, 2000, "heldout"):
            for o in sc.objects:
                self.assertIn((o.color, o.shape), held)
        rng = np.random.default_rng(2)
        for _ in range(2000):
            v = world.sample_video(rng, SPEC, split="train")
            for o in v.objects:
                self.assertNotIn((o.start.color, o.shape), held)
                self.assertNotIn((o.end.color, o.shape), held)

    def test_scene_constraints(self):
        for sc in _scenes(3, 3000):
            pos = [o.position for o in sc.objects]
            self.assertEqual(len(pos), len(set(pos)))
            for o in sc.objects:
                self.assertTrue(world.colors_compatible(o.color, sc.background, SPEC))
                # centroid in the named cell, size class from the diameter, shape inside the image
                self.assertEqual(world.position_of_center(o.cx, o.cy, SPEC), o.position)
                self.assertEqual(world.size_of_diameter(o.diameter, SPEC), o.size)
                hx, hy = world.half_extents(o.shape, o.diameter, o.angle, SPEC)
                self.assertGreaterEqual(o.cx - hx, 0.0)
                self.assertLessEqual(o.cx + hx, 1.0)
                self.assertGreaterEqual(o.cy - hy, 0.0)
                self.assertLessEqual(o.cy + hy, 1.0)
                self.assertLessEqual(abs(o.angle), SPEC["shapes"][o.shape]["max_rotation_deg"])
            if len(sc.objects) == 2:
                a, b = sc.objects
                r = world.enclosing_radius(a.shape, a.diameter, SPEC) + world.enclosing_radius(b.shape, b.diameter, SPEC)
                self.assertGreaterEqual(math.hypot(a.cx - b.cx, a.cy - b.cy), r)


class TestCaptions(unittest.TestCase):
    def test_round_trip(self):
        for sc in _scenes(4, 2000) + _scenes(5, 200, "heldout"):
            cap = world.caption(sc, SPEC)
            self.assertEqual(world.parse_caption(cap, SPEC), world.scene_attributes(sc))
            self.assertEqual(cap, cap.strip().lower())

    def test_examples(self):
        p = world.parse_caption("A small red circle at the top left on a blue background.", SPEC)
        self.assertEqual(p, {"background": "blue", "texture": "plain",
                             "objects": [{"size": "small", "color": "red", "shape": "circle", "position": "top left"}]})
        p = world.parse_caption("a medium yellow star at the bottom and a small grey ring at the top right "
                                "on a dotted black background", SPEC)
        self.assertEqual(p["texture"], "dotted")
        self.assertEqual([o["position"] for o in p["objects"]], ["bottom", "top right"])
        self.assertEqual(p["objects"][1]["color"], "gray")
        for ex in SPEC["caption_grammar"]["examples"]:
            world.parse_caption(ex, SPEC)
        for bad in ["a red circle on a blue background", "a small red circle at the top left",
                    "a small red blob at the top on a blue background"]:
            with self.assertRaises(ValueError):
                world.parse_caption(bad, SPEC)

    def test_video_caption(self):
        rng = np.random.default_rng(6)
        seen = set()
        for _ in range(300):
            v = world.sample_video(rng, SPEC, frames=8)
            c = world.video_caption(v, SPEC)
            self.assertTrue(c.endswith("background"))
            seen.update(o.motion for o in v.objects)
        self.assertEqual(seen, set(world.MOTIONS))


class TestRender(unittest.TestCase):
    def test_shape_range(self):
        sc = _scenes(7, 12)
        img = world.render(sc, 96, SPEC)
        self.assertEqual(tuple(img.shape), (12, 3, 96, 96))
        self.assertEqual(img.dtype, torch.float32)
        self.assertGreaterEqual(img.min().item(), -1.0)
        self.assertLessEqual(img.max().item(), 1.0)
        v = world.sample_video(np.random.default_rng(0), SPEC, frames=5)
        self.assertEqual(tuple(world.render_video(v, 48, 5, SPEC).shape), (5, 3, 48, 48))

    def test_object_pixels(self):
        """Pixels well inside an object have exactly the spec color (after 8-bit conversion), the border of the
        image is background, and the object's coverage centroid/extent match its parameters."""
        size = 128
        rng = np.random.default_rng(8)
        scenes = []
        for sh in SPEC["shape_order"]:
            for c in SPEC["colors"]:
                scenes.append(world.sample_scene(rng, SPEC, split="all", n_objects=1, pairs=[[c, sh]]))
        img = world.render(scenes, size, SPEC)
        pix = (torch.arange(size, dtype=torch.float64) + 0.5) / size
        Y, X = torch.meshgrid(pix, pix, indexing="ij")
        for sc, im in zip(scenes, img):
            o = sc.objects[0]
            u8 = torch.from_numpy(world.to_uint8(im)).long()  # H,W,3
            col = torch.tensor(SPEC["colors"][o.color])
            bgc = torch.tensor(SPEC["colors"][sc.background])
            # local coordinates -> exact sdf in pixels
            a = math.radians(o.angle)
            dx = (X - o.cx) / o.diameter
            dy = (o.cy - Y) / o.diameter
            qx = math.cos(a) * dx + math.sin(a) * dy
            qy = math.cos(a) * dy - math.sin(a) * dx
            sdf = world.shape_sdf(o.shape, qx, qy, SPEC) * o.diameter * size
            inner = sdf < -1.0
            self.assertGreater(int(inner.sum()), 10, o)
            self.assertTrue(bool((u8[inner] == col).all()), (o, sc.background))
            # coverage mask from color distance: centroid and extent
            m = (u8 - bgc).abs().sum(-1).double() / max(1, (col - bgc).abs().sum().item())
            if sc.texture != "plain":
                m = (sdf < 0).double()  # textured background: use the analytic mask
            m = m.clamp(0, 1)
            area = m.sum().item()
            if o.shape != "ring" and sc.texture == "plain":
                ccx = (m * X).sum().item() / area
                ccy = (m * Y).sum().item() / area
                self.assertAlmostEqual(ccx, o.cx, delta=1.0 / size)
                self.assertAlmostEqual(ccy, o.cy, delta=1.0 / size)
            # object fully inside: nothing of it on the outermost pixel ring
            edge = torch.cat([m[0], m[-1], m[:, 0], m[:, -1]])
            self.assertLess(edge.max().item(), 0.05, o)

    def test_batch_independent(self):
        sc = _scenes(9, 6)
        full = world.render(sc, 64, SPEC)
        for i in range(6):
            self.assertTrue(torch.equal(full[i], world.render([sc[i]], 64, SPEC)[0]))

    def test_save_png(self):
        import tempfile
        from PIL import Image
        sc = _scenes(10, 1)
        img = world.render(sc, 32, SPEC)[0]
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.png")
            world.save_png(img, p)
            a = np.asarray(Image.open(p))
        ref = ((img / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        self.assertTrue(np.array_equal(a, ref))


class TestFixtures(unittest.TestCase):
    def test_eval_prompts(self):
        root = os.path.join(HERE, "..", "..", "tests", "fixtures", "world")
        held = {tuple(p) for p in SPEC["heldout_pairs"]}
        for name, n, k in [("heldout_prompts.jsonl", 200, 1), ("heldout_prompts_2obj.jsonl", 50, 2)]:
            path = os.path.join(root, name)
            if not os.path.exists(path):
                self.skipTest("fixtures not generated")
            with open(path, encoding="utf-8") as f:
                lines = [json.loads(l) for l in f]
            self.assertEqual(len(lines), n)
            for i, r in enumerate(lines):
                self.assertEqual(r["id"], i)
                p = world.parse_caption(r["prompt"], SPEC)
                self.assertEqual(len(p["objects"]), k)
                for o in p["objects"]:
                    self.assertIn((o["color"], o["shape"]), held)
                self.assertEqual(p, world.scene_attributes(world.Scene.from_dict(r["scene"])))


if __name__ == "__main__":
    unittest.main()
