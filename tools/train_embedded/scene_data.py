"""Stage B's training data for train.py: scenes sampled from the procedural world, captioned and tokenized in
DataLoader workers (SceneBatches), the object-token mask of a rendered batch, FluxPipeline's latent packing, and
the GPU ring of encoded scenes (LatentBank, --reuse)."""
import os

import numpy as np
import torch
import torch.nn.functional as F

import world  # tools/world, on sys.path (train.py puts it there)


class SceneSource:
    def __init__(self, spec, seed, split="train"):
        self.spec, self.split = spec, split
        self.rng = np.random.default_rng(seed)

    def scenes(self, n):
        return [world.sample_scene(self.rng, self.spec, self.split) for _ in range(n)]


class SceneBatches(torch.utils.data.IterableDataset):
    """Endless stream of the CPU side of stage B's batches: (resolution, render params, clip_ids, t5_ids).

    Everything that needs no GPU runs here, so that with --data-workers N it runs ahead of the training loop in
    N DataLoader worker processes: the resolution draw (p = res_probs, batch = batch * (256/r)^2 to keep tokens
    per step constant), train-split scene sampling, captions, caption dropout, the CLIP (77) / T5 (L)
    tokenization to int64 id tensors and world.render_params (the scenes as numpy arrays). Rendering
    (world.render_from_params: one pinned non-blocking upload) and VAE encoding stay on the GPU in the main process.
    Worker k draws from numpy generators spawned from SeedSequence([seed, k]); the DataLoader returns the
    workers' batches round-robin, so the stream depends only on (seed, number of workers); 0 workers (in
    process) gives worker 0's stream, the same as 1 worker.
    """

    def __init__(self, spec, seed, batch, res, probs, clip_tok, t5_tok, L, caption_dropout=0.0, split="train"):
        super().__init__()
        self.spec, self.seed, self.batch, self.split = spec, seed, batch, split
        self.res, self.probs = list(res), np.asarray(probs, dtype=np.float64)
        self.clip_tok, self.t5_tok, self.L, self.caption_dropout = clip_tok, t5_tok, L, caption_dropout

    def batch_size(self, r):
        return max(1, int(round(self.batch * (256 / r) ** 2)))

    def make(self, rngs, r=None):
        res_rng, scene_rng, drop_rng = rngs
        if r is None:
            r = int(res_rng.choice(self.res, p=self.probs))
        b = self.batch_size(r)
        scenes = [world.sample_scene(scene_rng, self.spec, self.split) for _ in range(b)]
        prompts = [world.caption(sc, self.spec) for sc in scenes]
        if self.caption_dropout > 0:
            drop = drop_rng.random(b) < self.caption_dropout
            prompts = ["" if d else p for d, p in zip(drop, prompts)]
        c = self.clip_tok(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        t = self.t5_tok(prompts, padding="max_length", max_length=self.L, truncation=True, return_tensors="pt")
        return r, world.render_params(scenes, self.spec), c.input_ids, t.input_ids

    def rngs(self, worker_id):
        return [np.random.default_rng(s) for s in np.random.SeedSequence([self.seed, worker_id]).spawn(3)]

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rngs = self.rngs(info.id if info is not None else 0)
        while True:
            yield self.make(rngs)


def _as_is(x):
    return x


def default_data_workers(dev):
    if dev.type != "cuda":
        return 0
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(8, n - 2))


def scene_loader(ds, workers, pin, prefetch=4):
    kw = dict(num_workers=workers, persistent_workers=True, prefetch_factor=prefetch) if workers > 0 else {}
    return torch.utils.data.DataLoader(ds, batch_size=None, collate_fn=_as_is, pin_memory=pin, **kw)


def foreground_tokens(rparams, x, r, dev, spec, cells=0):
    """(fg, cov): fg [B, N] is 1 where a transformer token (16x16 pixels) or its 8 neighbours shows an object,
    from the difference between the scene and its background-only render (same params without objects); cov is
    None, or with cells = c > 0 the object coverage of each token's c x c sub-cells, [B, N, c*c] in [0, 1]
    (row-major within the token): the target of train.py's --mask-aux probe."""
    empty = {k: v[:0] for k, v in rparams.items() if k.startswith("obj_")}
    xb = world.render_from_params(dict(rparams, groups=[], **empty), r, dev, spec=spec)
    m = ((x.float() - xb.float()).abs().sum(1, keepdim=True) > 0.05).float()  # [B, 1, r, r]
    fg = F.max_pool2d(F.max_pool2d(m, 16), 3, stride=1, padding=1).flatten(1)  # row-major, like _pack_latents
    if not cells:
        return fg, None
    t, c = r // 16, cells
    cov = F.avg_pool2d(m, 16 // c).view(m.shape[0], t, c, t, c).permute(0, 1, 3, 2, 4).reshape(m.shape[0], t * t, c * c)
    return fg, cov


def close_loader(it):
    if hasattr(it, "_shutdown_workers"):
        it._shutdown_workers()

def pack(z):
    from diffusers import FluxPipeline
    b, c, h, w = z.shape
    return FluxPipeline._pack_latents(z, b, c, h, w)

class LatentBank:
    """A ring of encoded training scenes of one resolution on the GPU (packed latents, object-token masks, token
    ids). Why: rendering and VAE-encoding the batch was about half of a step's GPU time (torch.profiler, batch
    1024 at 256²), while the transformer is tiny; with --reuse K a step encodes B/K fresh scenes and trains on B
    drawn uniformly from the ring, so each scene is seen K times on average, at K different noises and sigmas."""

    def __init__(self, capacity):
        self.capacity, self.filled, self.head = capacity, 0, 0
        self.fields = None

    def add(self, **fields):
        n = next(iter(fields.values())).shape[0]
        if self.fields is None:
            self.fields = {k: torch.empty((self.capacity,) + tuple(v.shape[1:]), dtype=v.dtype, device=v.device)
                           for k, v in fields.items()}
        idx = (self.head + torch.arange(n, device=self.fields["x0"].device)) % self.capacity
        for k, v in fields.items():
            self.fields[k].index_copy_(0, idx, v)
        self.head = (self.head + n) % self.capacity
        self.filled = min(self.capacity, self.filled + n)

    def sample(self, n, gen):
        i = torch.randint(self.filled, (n,), device=self.fields["x0"].device, generator=gen)
        return {k: v.index_select(0, i) for k, v in self.fields.items()}
