"""render() vs the frozen pre-rewrite implementation (_render_reference.py), plus a count of host->device copies
and device kernels per call.  Run:  python tools/world/test_render_equivalence.py [--count]

--count renders on the "meta" device under a TorchDispatchMode: a host->device copy is an op that reads a CPU
tensor and writes a meta one (or a factory op fed host data, torch.tensor(..., device=)); a kernel is any other
op producing a meta tensor except views (an upper bound on CUDA launches; the CPU work is not counted).
"""
import os
import sys
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import world  # noqa: E402
import _render_reference as ref  # noqa: E402

SPEC = world.load_spec()


def _scenes(seed=123, n=50):
    rng = np.random.default_rng(seed)
    return [world.sample_scene(rng, SPEC, split=["train", "heldout", "all"][i % 3], n_objects=[None, 1, 2, 3][i % 4])
            for i in range(n)]


class TestRenderEquivalence(unittest.TestCase):
    def check(self, scenes, size):
        a = ref.render(scenes, size, SPEC)
        b = world.render(scenes, size, SPEC)
        self.assertEqual(a.shape, b.shape)
        self.assertLessEqual((a - b).abs().max().item(), 1e-5)
        for x, y in zip(a, b):
            self.assertTrue(np.array_equal(world.to_uint8(x), world.to_uint8(y)))
        return a, b

    def test_50_scenes(self):
        sc = _scenes()
        for size in (128, 256):
            a, b = self.check(sc, size)
            self.assertTrue(torch.equal(a, b))  # in fact bitwise identical on the CPU
        self.check(sc[:9], 512)
        self.check(sc[3:4], 96)

    def test_params_roundtrip(self):
        import pickle
        sc = _scenes(7, 16)
        p = pickle.loads(pickle.dumps(world.render_params(sc, SPEC)))
        self.assertTrue(torch.equal(world.render_from_params(p, 128, "cpu", spec=SPEC), ref.render(sc, 128, SPEC)))

    def test_float64(self):
        sc = _scenes(9, 8)
        self.assertTrue(torch.equal(world.render(sc, 64, SPEC, dtype=torch.float64),
                                    ref.render(sc, 64, SPEC, dtype=torch.float64)))


def count(fn, scenes, size):
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class Counter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.copies, self.kernels = 0, 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            ins = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
            outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
            on_meta = any(t.device.type == "meta" for t in outs)
            if not on_meta:
                return out
            if any(t.device.type == "cpu" and t.dim() > 0 for t in ins) or func.__name__.startswith("lift_fresh"):
                self.copies += 1  # lift_fresh on meta: torch.tensor(data, device=...) (data from the host)
            elif not (func.is_view or func.__name__.startswith(("detach", "view", "_unsafe_view"))):
                self.kernels += 1
            return out

    with Counter() as c:
        fn(scenes, size, SPEC, device="meta")
    return c.copies, c.kernels


def main_count():
    world._DEVICE_CACHE.clear()
    for n, size in ((64, 256), (128, 128), (16, 512)):
        sc = _scenes(1, n)
        groups = len(world.render_params(sc, SPEC)["groups"])
        old = count(ref.render, sc, size)
        world._DEVICE_CACHE.clear()
        first = count(world.render, sc, size)
        warm = count(world.render, sc, size)
        print(f"batch {n} at {size} ({groups} (slot, shape) groups): old {old[0]} H2D copies / {old[1]} kernels; "
              f"new {first[0]} / {first[1]} (first call at this size), {warm[0]} / {warm[1]} (cached textures)")


if __name__ == "__main__":
    if "--count" in sys.argv:
        main_count()
    else:
        unittest.main()
