"""Procedural shapes world: scene sampling, captions, caption parsing and batched torch rendering.

The single source of truth for the vocabulary and geometry is spec.json next to this file (also read by
the C++ evaluator). Coordinates are normalized to [0,1], x right, y down; angles in degrees,
counter-clockwise on screen. Everything is deterministic for a given numpy Generator seed; rendering is
plain elementwise float arithmetic (bitwise reproducible on the CPU).

Usage (no install):  sys.path.insert(0, "tools/world"); import world
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field, asdict
from typing import Optional

import numpy as np
import torch

SPEC_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spec.json")

# --------------------------------------------------------------------------------------------------
# spec
# --------------------------------------------------------------------------------------------------

_SPEC_CACHE: dict = {}


def load_spec(path: Optional[str] = None) -> dict:
    """Reads spec.json (default: the one next to this file) and adds a few derived, underscore-prefixed keys."""
    path = os.path.abspath(path or SPEC_PATH)
    if path in _SPEC_CACHE:
        return _SPEC_CACHE[path]
    with open(path, "r", encoding="utf-8") as f:
        spec = json.load(f)
    spec["_position_by_name"] = {p["name"]: p for p in spec["positions"]}
    spec["_heldout_set"] = {tuple(p) for p in spec["heldout_pairs"]}
    _SPEC_CACHE[path] = spec
    return spec


def _spec(spec):
    return spec if spec is not None else load_spec()


# --------------------------------------------------------------------------------------------------
# data classes
# --------------------------------------------------------------------------------------------------


@dataclass
class Obj:
    shape: str
    color: str
    size: str          # small | medium | large
    position: str      # position name, e.g. "top left"
    cx: float          # centroid, normalized [0,1]
    cy: float
    diameter: float    # normalized (fraction of the image side), see spec size_definition
    angle: float = 0.0  # degrees, counter-clockwise on screen


@dataclass
class Scene:
    background: str
    texture: str       # plain | striped | dotted
    objects: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "Scene":
        return Scene(d["background"], d["texture"], [Obj(**o) for o in d["objects"]])


# --------------------------------------------------------------------------------------------------
# geometry (unit templates: diameter 1, y UP, centroid at the origin)
# --------------------------------------------------------------------------------------------------


def _star_vertices(inner_ratio: float) -> list:
    R = 0.5 / math.sin(math.radians(72.0))
    v = []
    for i in range(10):
        a = math.radians(90.0 + 36.0 * i)
        r = R if i % 2 == 0 else R * inner_ratio
        v.append((r * math.cos(a), r * math.sin(a)))
    return v


def _triangle_vertices() -> list:
    R = 1.0 / math.sqrt(3.0)  # circumradius of an equilateral triangle of side 1
    return [(R * math.cos(math.radians(a)), R * math.sin(math.radians(a))) for a in (90.0, 210.0, 330.0)]


def _square_vertices() -> list:
    return [(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)]


def _cross_vertices(w: float) -> list:
    a, h = 0.5, w / 2
    return [(h, a), (-h, a), (-h, h), (-a, h), (-a, -h), (-h, -h), (-h, -a), (h, -a), (h, -h), (a, -h), (a, h), (h, h)]


def shape_vertices(shape: str, spec=None) -> Optional[list]:
    """Unit-diameter outline (y up) of a polygonal shape; None for circle/ring."""
    spec = _spec(spec)
    if shape == "square":
        return _square_vertices()
    if shape == "triangle":
        return _triangle_vertices()
    if shape == "star":
        return _star_vertices(spec["shapes"]["star"]["inner_radius_ratio"])
    if shape == "cross":
        return _cross_vertices(spec["shapes"]["cross"]["arm_width_ratio"])
    return None


def half_extents(shape: str, diameter: float, angle_deg: float, spec=None) -> tuple:
    """Axis-aligned half extents (hx, hy) of the rotated shape around its centroid (max over both sides)."""
    v = shape_vertices(shape, spec)
    if v is None:
        return diameter / 2, diameter / 2
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    xs = [diameter * (c * x - s * y) for x, y in v]
    ys = [diameter * (s * x + c * y) for x, y in v]
    return max(abs(min(xs)), abs(max(xs))), max(abs(min(ys)), abs(max(ys)))


def enclosing_radius(shape: str, diameter: float, spec=None) -> float:
    spec = _spec(spec)
    return diameter * spec["shapes"][shape]["enclosing_circle_over_diameter"] / 2


def color_distance(a: str, b: str, spec=None) -> float:
    spec = _spec(spec)
    return math.dist(spec["colors"][a], spec["colors"][b])


def colors_compatible(obj_color: str, bg: str, spec=None) -> bool:
    spec = _spec(spec)
    return obj_color != bg and color_distance(obj_color, bg, spec) >= spec["min_color_distance"]


def size_of_diameter(d: float, spec=None) -> str:
    t = _spec(spec)["size_thresholds"]
    return "small" if d < t["small_medium"] else ("medium" if d < t["medium_large"] else "large")


def position_of_center(cx: float, cy: float, spec=None) -> str:
    spec = _spec(spec)
    col = min(2, max(0, int(cx * 3)))
    row = min(2, max(0, int(cy * 3)))
    for p in spec["positions"]:
        if p["cell"] == [row, col]:
            return p["name"]
    raise AssertionError


# --------------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------------


def _pairs(spec, split: str) -> list:
    held = spec["_heldout_set"]
    if split == "heldout":
        return [tuple(p) for p in spec["heldout_pairs"]]
    if split == "all":
        return [(c, s) for c in spec["colors"] for s in spec["shape_order"]]
    if split != "train":
        raise ValueError(f"split must be 'train', 'heldout' or 'all', got {split!r}")
    return [(c, s) for c in spec["colors"] for s in spec["shape_order"] if (c, s) not in held]


def _axis_range(cell_index: int, half: float, spec) -> tuple:
    f = spec["position_center_fraction"]
    m = spec["position_margin"]
    lo_cell, hi_cell = cell_index / 3.0, (cell_index + 1) / 3.0
    pad = (1.0 - f) / 2.0 / 3.0
    lo, hi = max(lo_cell + pad, half + m), min(hi_cell - pad, 1.0 - half - m)
    if lo > hi:  # object too big for the central region of a border cell: innermost allowed point
        if cell_index == 0:
            lo = hi = min(half + m, hi_cell - 0.03)
        elif cell_index == 2:
            lo = hi = max(1.0 - half - m, lo_cell + 0.03)
        else:
            lo = hi = 0.5
    return lo, hi


def sample_object(rng: np.random.Generator, spec, color: str, shape: str, size: str, position: str,
                  max_rotation_deg: Optional[float] = None) -> Obj:
    """One object with its continuous attributes drawn inside the given discrete ones."""
    spec = _spec(spec)
    sz = spec["sizes"][size]
    j = spec["size_jitter"]
    d = float(rng.uniform(sz["diameter"] * (1 - j), sz["diameter"] * (1 + j)))
    sh = spec["shapes"][shape]
    mr = sh["max_rotation_deg"] if max_rotation_deg is None else (max_rotation_deg if sh["rotates"] else 0.0)
    ang = float(rng.uniform(-mr, mr)) if mr > 0 else 0.0
    # extents for the worst rotation in the allowed band so the shape stays inside for any angle drawn
    hx, hy = half_extents(shape, d, ang, spec)
    row, col = spec["_position_by_name"][position]["cell"]
    xlo, xhi = _axis_range(col, hx, spec)
    ylo, yhi = _axis_range(row, hy, spec)
    cx = float(rng.uniform(xlo, xhi)) if xhi > xlo else xlo
    cy = float(rng.uniform(ylo, yhi)) if yhi > ylo else ylo
    g = spec.get("position_grid", 0)
    if g:
        cx, cy = _snap(cx, xlo, xhi, g), _snap(cy, ylo, yhi, g)
    return Obj(shape, color, size, position, cx, cy, d, ang)


def _snap(v: float, lo: float, hi: float, grid: int) -> float:
    """v moved to the nearest multiple of 1/grid inside [lo, hi]; v itself when there is none."""
    k = min(max(round(v * grid), math.ceil(lo * grid - 1e-9)), math.floor(hi * grid + 1e-9))
    return k / grid if lo - 1e-9 <= k / grid <= hi + 1e-9 else v


def _objects_ok(objs: list, spec) -> bool:
    g = spec["min_object_gap"]
    for i in range(len(objs)):
        for k in range(i + 1, len(objs)):
            a, b = objs[i], objs[k]
            if a.position == b.position:
                return False
            r = enclosing_radius(a.shape, a.diameter, spec) + enclosing_radius(b.shape, b.diameter, spec)
            if math.hypot(a.cx - b.cx, a.cy - b.cy) < r + g:
                return False
    return True


def _choose(rng, items):
    return items[int(rng.integers(len(items)))]


def sample_background(rng: np.random.Generator, spec, object_colors: list) -> tuple:
    spec = _spec(spec)
    bgs = [b for b in spec["backgrounds"]["colors"] if all(colors_compatible(c, b, spec) for c in object_colors)]
    if not bgs:
        return None
    bg = _choose(rng, bgs)
    tex = spec["backgrounds"]["textures"][int(rng.choice(len(spec["backgrounds"]["textures"]),
                                                         p=spec["backgrounds"]["texture_probs"]))]
    return bg, tex


def sample_scene(rng: np.random.Generator, spec=None, split: str = "train", n_objects: Optional[int] = None,
                 pairs: Optional[list] = None, sizes: Optional[list] = None, positions: Optional[list] = None,
                 background: Optional[str] = None, texture: Optional[str] = None) -> Scene:
    """Random scene. split='train' never uses held-out (color, shape) pairs; 'heldout' uses only them;
    'all' uses every pair (evaluator test samples only).

    Optional overrides (for balanced evaluation sets): pairs / sizes / positions are per-object lists
    (entries may be None = random), background / texture fix the background.
    """
    spec = _spec(spec)
    allowed = _pairs(spec, split)
    if n_objects is None:
        p = spec["n_objects_probs"]
        keys = sorted(p, key=int)
        n_objects = int(keys[int(rng.choice(len(keys), p=[p[k] for k in keys]))])
    pos_names = [p["name"] for p in spec["positions"]]
    for _attempt in range(1000):
        objs = []
        used = set()
        for i in range(n_objects):
            pair = pairs[i] if pairs is not None and pairs[i] is not None else _choose(rng, allowed)
            if pairs is not None and pairs[i] is not None and tuple(pair) not in allowed:
                raise ValueError(f"pair {pair} not allowed in split {split}")
            size = sizes[i] if sizes is not None and sizes[i] is not None else _choose(rng, spec["size_order"])
            if positions is not None and positions[i] is not None:
                pos = positions[i]
            else:
                free = [p for p in pos_names if p not in used]
                pos = _choose(rng, free)
            used.add(pos)
            objs.append(sample_object(rng, spec, pair[0], pair[1], size, pos))
        if not _objects_ok(objs, spec):
            continue
        if background is not None:
            if not all(colors_compatible(o.color, background, spec) for o in objs):
                raise ValueError(f"background {background} clashes with object colors")
            bg, tex = background, texture
            if tex is None:
                _, tex = sample_background(rng, spec, [])
        else:
            r = sample_background(rng, spec, [o.color for o in objs])
            if r is None:
                continue
            bg, tex = r
            if texture is not None:
                tex = texture
        return Scene(bg, tex, objs)
    raise RuntimeError("could not sample a valid scene (constraints too tight)")


# --------------------------------------------------------------------------------------------------
# captions
# --------------------------------------------------------------------------------------------------


def object_phrase(o: Obj, spec=None) -> str:
    spec = _spec(spec)
    ph = spec["_position_by_name"][o.position]["phrase"]
    return f"a {o.size} {o.color} {o.shape} {ph}"


def background_phrase(bg: str, texture: str, spec=None) -> str:
    spec = _spec(spec)
    return spec["backgrounds"]["caption"][texture].format(bg=bg)


def caption(scene: Scene, spec=None) -> str:
    """Deterministic caption (spec caption_grammar)."""
    spec = _spec(spec)
    return " and ".join(object_phrase(o, spec) for o in scene.objects) + " " + \
        background_phrase(scene.background, scene.texture, spec)


def _alt(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def parse_caption(text: str, spec=None) -> dict:
    """Inverse of caption(): {"background", "texture", "objects": [{"size","color","shape","position"}]}.

    Case-insensitive, tolerant of extra whitespace, a final period, "an" and color aliases (grey).
    Raises ValueError when the text does not follow the grammar.
    """
    spec = _spec(spec)
    t = " ".join(text.strip().lower().rstrip(".").split())
    for a, c in spec.get("color_aliases", {}).items():
        t = re.sub(rf"\b{re.escape(a)}\b", c, t)
    colors = list(spec["colors"])
    phrase_to_pos = {p["phrase"]: p["name"] for p in spec["positions"]}
    obj_re = (rf"an? ({_alt(spec['size_order'])}) ({_alt(colors)}) ({_alt(spec['shape_order'])}) "
              rf"({_alt(phrase_to_pos)})")
    tex_re = "(striped |dotted )?"
    m = re.fullmatch(rf"({obj_re}(?: and {obj_re})*) on an? {tex_re}({_alt(colors)}) background", t)
    if not m:
        raise ValueError(f"caption does not follow the grammar: {text!r}")
    objs_text, tex_word, bg = m.group(1), m.group(m.lastindex - 1), m.group(m.lastindex)
    objects = []
    for om in re.finditer(obj_re, objs_text):
        objects.append({"size": om.group(1), "color": om.group(2), "shape": om.group(3),
                        "position": phrase_to_pos[om.group(4)]})
    texture = tex_word.strip() if tex_word else "plain"
    return {"background": bg, "texture": texture, "objects": objects}


def scene_attributes(scene: Scene) -> dict:
    """The discrete attributes of a scene, in parse_caption's format."""
    return {"background": scene.background, "texture": scene.texture,
            "objects": [{"size": o.size, "color": o.color, "shape": o.shape, "position": o.position}
                        for o in scene.objects]}


# --------------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------------


def _texture_color(bg: str, spec) -> list:
    c = spec["colors"][bg]
    luma = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
    tgt = 255.0 if luma < 128 else 0.0
    k = spec["backgrounds"]["texture_contrast"]
    return [v + (tgt - v) * k for v in c]


def _sdf_polygon(qx, qy, verts):
    """Signed distance (negative inside) to a closed polygon (any simple polygon); elementwise over tensors."""
    n = len(verts)
    d = (qx - verts[0][0]) ** 2 + (qy - verts[0][1]) ** 2
    s = torch.ones_like(qx)
    j = n - 1
    for i in range(n):
        vix, viy = verts[i]
        vjx, vjy = verts[j]
        ex, ey = vjx - vix, vjy - viy
        wx, wy = qx - vix, qy - viy
        ee = ex * ex + ey * ey
        h = ((wx * ex + wy * ey) / ee).clamp(0.0, 1.0)
        bx, by = wx - ex * h, wy - ey * h
        d = torch.minimum(d, bx * bx + by * by)
        c1 = qy >= viy
        c2 = qy < vjy
        c3 = (ex * wy) > (ey * wx)
        flip = (c1 & c2 & c3) | (~c1 & ~c2 & ~c3)
        s = torch.where(flip, -s, s)
        j = i
    return s * torch.sqrt(d)


def _sdf_box(qx, qy, hx, hy):
    dx = qx.abs() - hx
    dy = qy.abs() - hy
    outside = torch.sqrt(dx.clamp(min=0) ** 2 + dy.clamp(min=0) ** 2)
    inside = torch.maximum(dx, dy).clamp(max=0)
    return outside + inside


def shape_sdf(shape: str, qx, qy, spec=None):
    """Signed distance in unit-diameter local coordinates (y up), negative inside."""
    spec = _spec(spec)
    if shape == "circle":
        return torch.sqrt(qx * qx + qy * qy) - 0.5
    if shape == "ring":
        ri = 0.5 * spec["shapes"]["ring"]["inner_diameter_ratio"]  # inner radius
        mid, half = (0.5 + ri) / 2, (0.5 - ri) / 2
        return (torch.sqrt(qx * qx + qy * qy) - mid).abs() - half
    if shape == "square":
        return _sdf_box(qx, qy, 0.5, 0.5)
    if shape == "cross":
        w = spec["shapes"]["cross"]["arm_width_ratio"] / 2
        return torch.minimum(_sdf_box(qx, qy, 0.5, w), _sdf_box(qx, qy, w, 0.5))
    if shape == "star":
        R = 0.5 / math.sin(math.radians(72.0))
        return _sdf_star(qx, qy, 5, R, R * spec["shapes"]["star"]["inner_radius_ratio"])
    if shape == "triangle":
        R = 1.0 / math.sqrt(3.0)
        return _sdf_star(qx, qy, 3, R, R * 0.5)  # equilateral triangle = 3-star whose inner points are edge midpoints
    return _sdf_polygon(qx, qy, shape_vertices(shape, spec))


def _sdf_star(qx, qy, n: int, R: float, ri: float):
    """Exact SDF of a regular n-pointed star (one point up, outer radius R, inner radius ri) by folding the plane
    into one half-wedge (same result as _sdf_polygon on the star's outline, far fewer operations)."""
    an = math.pi / n
    th = torch.atan2(qx, qy)  # angle from +y (the top point)
    bn = torch.remainder(th + an, 2 * an) - an  # [-an, an): 0 on a point's axis
    rr = torch.sqrt(qx * qx + qy * qy)
    # frame: point axis = +x, fold to the upper half
    px = rr * torch.cos(bn)
    py = rr * torch.sin(bn).abs()
    # distance to the segment tip A=(R,0) -> inner vertex Bv=(ri cos an, ri sin an)
    ex, ey = ri * math.cos(an) - R, ri * math.sin(an)
    wx = px - R
    h = ((wx * ex + py * ey) / (ex * ex + ey * ey)).clamp(0.0, 1.0)
    bx, by = wx - ex * h, py - ey * h
    d = torch.sqrt(bx * bx + by * by)
    inside = (ex * py - ey * wx) > 0
    return torch.where(inside, -d, d)


def _host_colors(rgb_rows) -> np.ndarray:
    """[n,3] float64 in [-1,1] from 0..255 rows (same float64 arithmetic as the device tensors get cast from)."""
    return np.asarray(rgb_rows, dtype=np.float64).reshape(-1, 3) / 255.0 * 2.0 - 1.0


def render_params(scenes: list, spec=None) -> dict:
    """Host side of render(): every per-scene / per-object number as numpy arrays (picklable, no torch, no size).

    DataLoader workers can build these ahead of the training loop; render_from_params() then needs one pinned
    host->device copy. Objects are sorted into render groups (object slot k, then spec shape_order): group g is
    rows groups[g] = (shape, start, stop) of the obj_* arrays; within a group every scene appears at most once.
    """
    spec = _spec(spec)
    colors = spec["colors"]
    B = len(scenes)
    textures = []
    for tex in ("striped", "dotted"):
        idx = [i for i, s in enumerate(scenes) if s.texture == tex]
        if idx:
            textures.append((tex, np.asarray(idx, dtype=np.int64),
                             _host_colors([_texture_color(scenes[i].background, spec) for i in idx])))
    scene_idx, geom, cols, er, groups = [], [], [], [], []
    K = max((len(s.objects) for s in scenes), default=0)
    for k in range(K):
        for shape in spec["shape_order"]:
            idx = [i for i, s in enumerate(scenes) if len(s.objects) > k and s.objects[k].shape == shape]
            if not idx:
                continue
            start = len(scene_idx)
            for i in idx:
                o = scenes[i].objects[k]
                a = math.radians(o.angle)
                scene_idx.append(i)
                geom.append((o.cx, o.cy, o.diameter, math.cos(a), math.sin(a)))
                cols.append(colors[o.color])
                er.append(enclosing_radius(shape, o.diameter, spec))
            groups.append((shape, start, len(scene_idx)))
    return {"B": B,
            "bg": _host_colors([colors[s.background] for s in scenes]),        # [B,3]
            "textures": textures,                                              # [(name, scene idx [n], color [n,3])]
            "obj_scene": np.asarray(scene_idx, dtype=np.int64),                # [N]
            "obj_geom": np.asarray(geom, dtype=np.float64).reshape(-1, 5),     # [N,5] cx, cy, diameter, cos, sin
            "obj_color": _host_colors(cols),                                   # [N,3]
            "obj_radius": np.asarray(er, dtype=np.float64),                    # [N] enclosing radius (normalized)
            "groups": groups}


_DEVICE_CACHE: dict = {}


def _cached(key, make):
    t = _DEVICE_CACHE.get(key)
    if t is None:
        if len(_DEVICE_CACHE) > 64:
            _DEVICE_CACHE.clear()
        t = _DEVICE_CACHE[key] = make()
    return t


def _texture_keep_cov(tex: str, W: int, spec, dev, dtype):
    """(1 - cov, cov) of a full-frame texture, [1,H,W,1]; depends only on (texture, size): cached per device."""
    def make():
        bgs = spec["backgrounds"]
        pix = (torch.arange(W, device=dev, dtype=dtype) + 0.5) / W
        X = pix.view(1, W)
        Y = pix.view(W, 1)
        if tex == "striped":
            P = bgs["stripe_period"]
            u = (X + Y) * (1.0 / math.sqrt(2.0)) / P
            sdf = ((u - torch.floor(u) - 0.5).abs() - 0.25) * P  # stripe = half of each period
        else:
            P = bgs["dot_period"]
            fx = X / P
            fy = Y / P
            dx = fx - torch.floor(fx) - 0.5
            dy = fy - torch.floor(fy) - 0.5
            sdf = (torch.sqrt(dx * dx + dy * dy) - 0.25) * P
        cov = (0.5 - sdf * W).clamp(0.0, 1.0)[None, :, :, None]
        return 1.0 - cov, cov
    b = spec["backgrounds"]
    return _cached(("tex", tex, W, str(dev), dtype, b["stripe_period"], b["dot_period"]), make)


def render_from_params(params: dict, size: int, device="cpu", dtype=torch.float32, spec=None) -> torch.Tensor:
    """Device side of render(): the output of render_params(scenes, spec) drawn at size x size (see render()).

    All numbers go to the device in ONE copy (a float64 buffer, pinned and non_blocking on CUDA, so the host
    never waits for the GPU here); indices are exact in float64 and cast back on the device."""
    spec = _spec(spec)
    B = int(params["B"])
    H = W = int(size)
    dev = torch.device(device)
    geom, radius = params["obj_geom"], params["obj_radius"]
    # host: size-dependent windows (enclosing circle + 2 px, same size for a whole group), clamped to the frame
    wins, x0, y0 = [], np.zeros(len(radius), np.float64), np.zeros(len(radius), np.float64)
    for shape, a, b in params["groups"]:
        rpx = float(radius[a:b].max()) * W
        win = min(W, 2 * int(math.ceil(rpx)) + 4)
        wins.append(win)
        x0[a:b] = np.minimum(np.maximum(np.rint(geom[a:b, 0] * W) - win // 2, 0), W - win)
        y0[a:b] = np.minimum(np.maximum(np.rint(geom[a:b, 1] * H) - win // 2, 0), H - win)
    parts = [params["bg"].ravel()]
    for _tex, idx, tcol in params["textures"]:
        parts += [idx.astype(np.float64), tcol.ravel()]
    N = len(radius)
    parts += [params["obj_scene"].astype(np.float64), x0, y0, geom.ravel(), params["obj_color"].ravel()]
    host = torch.from_numpy(np.concatenate(parts))
    if dev.type == "cuda":
        host = host.pin_memory()
    buf = host.to(dev, non_blocking=True)  # the only host->device copy
    fbuf = buf.to(dtype)
    ibuf = buf.to(torch.int64)

    # internal layout [B,H,W,3]
    o = 3 * B
    img = fbuf[:o].view(B, 1, 1, 3).expand(B, H, W, 3).clone()

    # background textures (full frame)
    for tex, idx, _tcol in params["textures"]:
        n = len(idx)
        it = ibuf[o:o + n]
        tcol = fbuf[o + n:o + 4 * n].view(n, 1, 1, 3)
        o += 4 * n
        keep, cov = _texture_keep_cov(tex, W, spec, dev, dtype)
        img[it] = img[it] * keep + tcol * cov

    # objects, in drawing order; vectorized over the scenes that share (slot, shape)
    oscene = ibuf[o:o + N]
    ox0 = ibuf[o + N:o + 2 * N]
    oy0 = ibuf[o + 2 * N:o + 3 * N]
    o += 3 * N
    ogeom = fbuf[o:o + 5 * N].view(N, 5)
    ocol = fbuf[o + 5 * N:o + 8 * N].view(N, 3)
    pix = _cached(("pix", W, str(dev), dtype), lambda: (torch.arange(W, device=dev, dtype=dtype) + 0.5) / W)
    arw = _cached(("ar", W, str(dev)), lambda: torch.arange(W, device=dev))
    for (shape, a, b), win in zip(params["groups"], wins):
        n = b - a
        ar = arw[:win]
        cols = ox0[a:b].view(n, 1) + ar.view(1, win)  # [n,win]
        rows = oy0[a:b].view(n, 1) + ar.view(1, win)
        g = ogeom[a:b]
        cx = g[:, 0].view(-1, 1, 1)
        cy = g[:, 1].view(-1, 1, 1)
        dm = g[:, 2].view(-1, 1, 1)
        ca = g[:, 3].view(-1, 1, 1)
        sa = g[:, 4].view(-1, 1, 1)
        Xw = pix[cols].view(n, 1, win)
        Yw = pix[rows].view(n, win, 1)
        dx = (Xw - cx) / dm
        dy = (cy - Yw) / dm  # y up
        # rotate by -angle into the shape's frame
        qx = ca * dx + sa * dy
        qy = ca * dy - sa * dx
        sdf = shape_sdf(shape, qx, qy, spec) * (dm * W)  # in pixels
        cov = (0.5 - sdf).clamp(0.0, 1.0).unsqueeze(-1)  # [n,win,win,1]
        col = ocol[a:b].view(n, 1, 1, 3)
        bi = oscene[a:b].view(n, 1, 1)
        ri = rows.view(n, win, 1)
        ci = cols.view(n, 1, win)
        patch = img[bi, ri, ci]  # [n,win,win,3]
        img[bi, ri, ci] = patch * (1.0 - cov) + col * cov
    return img.permute(0, 3, 1, 2).contiguous()


def render(scenes: list, size: int, spec=None, device="cpu", dtype=torch.float32) -> torch.Tensor:
    """Renders scenes to a [B,3,size,size] tensor in [-1,1]. Anti-aliased: coverage = clamp(0.5 - sdf_px, 0, 1).

    Objects are drawn in order (later over earlier) as img = img * (1 - cov) + color * cov, so fully covered
    pixels hold exactly the spec color. Each object's SDF is evaluated only in a square window around it
    (its enclosing circle + 2 px), vectorized over all scenes that share (object slot, shape).
    Same as render_from_params(render_params(scenes, spec), size, device, dtype, spec): all parameters are
    built on the host and reach the device in one (pinned, non-blocking on CUDA) copy.
    """
    spec = _spec(spec)
    return render_from_params(render_params(scenes, spec), size, device, dtype, spec)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """[3,H,W] in [-1,1] -> HxWx3 uint8 with diffusers' rule round(clamp(x/2+0.5,0,1)*255)."""
    x = (t.detach().to("cpu", torch.float32) / 2 + 0.5).clamp(0, 1)
    return (x * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def save_png(t: torch.Tensor, path: str) -> None:
    from PIL import Image
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    Image.fromarray(to_uint8(t)).save(path, optimize=True)


# --------------------------------------------------------------------------------------------------
# videos
# --------------------------------------------------------------------------------------------------

MOTIONS = ["move_right", "move_left", "move_up", "move_down", "grow", "shrink", "spin", "recolor"]


@dataclass
class VideoObj:
    shape: str
    motion: str
    start: Obj         # attributes at frame 0 (cx, cy, diameter, angle, color, size)
    end: Obj           # attributes at the last frame


@dataclass
class VideoScene:
    background: str
    texture: str
    objects: list = field(default_factory=list)


def _video_object(rng, spec, pair_list, used_rows, bg_hint=None):
    color, shape = _choose(rng, pair_list)
    motion = _choose(rng, [m for m in MOTIONS if not (m == "spin" and not spec["shapes"][shape]["rotates"])])
    size = _choose(rng, spec["size_order"])
    if motion in ("grow", "shrink"):
        s0, s1 = ("small", "large") if motion == "grow" else ("large", "small")
        d0, d1 = spec["sizes"][s0]["diameter"], spec["sizes"][s1]["diameter"]
        size = s0
    else:
        d0 = d1 = float(rng.uniform(spec["sizes"][size]["min"], spec["sizes"][size]["max"]))
    rmax = enclosing_radius(shape, max(d0, d1), spec) + spec["position_margin"]
    travel = 0.3
    lo, hi = rmax, 1.0 - rmax
    cx0 = float(rng.uniform(lo, hi))
    cy0 = float(rng.uniform(lo, hi))
    cx1, cy1 = cx0, cy0
    if motion == "move_right":
        cx0 = float(rng.uniform(lo, max(lo, hi - travel))); cx1 = min(hi, cx0 + travel)
    elif motion == "move_left":
        cx0 = float(rng.uniform(min(hi, lo + travel), hi)); cx1 = max(lo, cx0 - travel)
    elif motion == "move_down":
        cy0 = float(rng.uniform(lo, max(lo, hi - travel))); cy1 = min(hi, cy0 + travel)
    elif motion == "move_up":
        cy0 = float(rng.uniform(min(hi, lo + travel), hi)); cy1 = max(lo, cy0 - travel)
    a0 = float(rng.uniform(-15, 15)) if spec["shapes"][shape]["rotates"] else 0.0
    a1 = a0 + (float(rng.choice([-1, 1])) * 90.0 if motion == "spin" else 0.0)
    color1 = color
    if motion == "recolor":
        others = [c for (c, s) in pair_list if s == shape and c != color]
        if not others:
            return None
        color1 = _choose(rng, others)
    size1 = size_of_diameter(d1, spec) if motion in ("grow", "shrink") else size
    start = Obj(shape, color, size, position_of_center(cx0, cy0, spec), cx0, cy0, d0, a0)
    end = Obj(shape, color1, size1, position_of_center(cx1, cy1, spec), cx1, cy1, d1, a1)
    return VideoObj(shape, motion, start, end)


def _interp(vo: VideoObj, t: float) -> Obj:
    a, b = vo.start, vo.end
    L = lambda u, v: u + (v - u) * t
    return Obj(vo.shape, a.color, a.size, a.position, L(a.cx, b.cx), L(a.cy, b.cy), L(a.diameter, b.diameter),
               L(a.angle, b.angle))


def sample_video(rng: np.random.Generator, spec=None, frames: int = 16, split: str = "train",
                 n_objects: Optional[int] = None) -> VideoScene:
    """One or two objects, each with one motion (see MOTIONS). Objects never overlap in any frame."""
    spec = _spec(spec)
    pair_list = _pairs(spec, split)
    if n_objects is None:
        n_objects = 1 if rng.random() < 0.6 else 2
    for _attempt in range(1000):
        objs = [_video_object(rng, spec, pair_list, None) for _ in range(n_objects)]
        if any(o is None for o in objs):
            continue
        ok = True
        if n_objects == 2:
            for f in range(frames):
                t = f / max(1, frames - 1)
                a, b = _interp(objs[0], t), _interp(objs[1], t)
                r = enclosing_radius(a.shape, a.diameter, spec) + enclosing_radius(b.shape, b.diameter, spec)
                if math.hypot(a.cx - b.cx, a.cy - b.cy) < r + spec["min_object_gap"]:
                    ok = False
                    break
        if not ok:
            continue
        cols = [c for o in objs for c in (o.start.color, o.end.color)]
        r = sample_background(rng, spec, cols)
        if r is None:
            continue
        return VideoScene(r[0], r[1], objs)
    raise RuntimeError("could not sample a valid video")


def video_object_phrase(vo: VideoObj, spec=None) -> str:
    spec = _spec(spec)
    m = spec["caption_grammar"]["video"]["motions"][vo.motion]
    s, e = vo.start, vo.end
    if vo.motion in ("grow", "shrink"):
        return m.format(color=s.color, shape=vo.shape, size0=s.size, size1=e.size)
    if vo.motion == "recolor":
        return m.format(size=s.size, shape=vo.shape, color0=s.color, color1=e.color)
    return f"a {s.size} {s.color} {vo.shape} {m}"


def video_caption(video: VideoScene, spec=None) -> str:
    spec = _spec(spec)
    return " and ".join(video_object_phrase(o, spec) for o in video.objects) + " " + \
        background_phrase(video.background, video.texture, spec)


def video_frame_scenes(video: VideoScene, frames: int) -> list:
    """Per-frame Scenes (recolor objects get their color blended at render time; see render_video)."""
    out = []
    for f in range(frames):
        t = f / max(1, frames - 1)
        out.append(Scene(video.background, video.texture, [_interp(o, t) for o in video.objects]))
    return out


def render_video(video: VideoScene, size: int, frames: int, spec=None, device="cpu",
                 dtype=torch.float32) -> torch.Tensor:
    """[F,3,H,W] in [-1,1]. A recolor object cross-fades from its start to its end color."""
    spec = _spec(spec)
    scenes = video_frame_scenes(video, frames)
    out = render(scenes, size, spec, device, dtype)
    rec = [k for k, o in enumerate(video.objects) if o.motion == "recolor"]
    if rec:
        for k in rec:
            # draw the same frames with the end color and blend by t, only where this object is
            alt = [Scene(s.background, s.texture, [Obj(**{**asdict(o), "color": video.objects[k].end.color})
                                                    if j == k else o for j, o in enumerate(s.objects)])
                   for s in scenes]
            out2 = render(alt, size, spec, device, dtype)
            t = torch.linspace(0, 1, frames, device=out.device, dtype=dtype).view(-1, 1, 1, 1)
            out = out * (1 - t) + out2 * t
    return out
