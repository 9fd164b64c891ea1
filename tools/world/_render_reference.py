"""Frozen copy of world.render() as it was before the one-copy rewrite (commit 0ba8f73), for
test_render_equivalence.py only: every parameter is uploaded with its own blocking torch.tensor(..., device=) /
.to(device) copy. Geometry helpers (shape_sdf, enclosing_radius, _texture_color) come from world.py."""
import math

import torch

from world import _spec, _texture_color, enclosing_radius, shape_sdf


def _color_tensor(names, spec, device, dtype):
    c = torch.tensor([spec["colors"][n] for n in names], dtype=torch.float64)
    return (c / 255.0 * 2.0 - 1.0).to(device=device, dtype=dtype)


def render(scenes: list, size: int, spec=None, device="cpu", dtype=torch.float32) -> torch.Tensor:
    """Renders scenes to a [B,3,size,size] tensor in [-1,1]. Anti-aliased: coverage = clamp(0.5 - sdf_px, 0, 1).

    Objects are drawn in order (later over earlier) as img = img * (1 - cov) + color * cov, so fully covered
    pixels hold exactly the spec color. Each object's SDF is evaluated only in a square window around it
    (its enclosing circle + 2 px), vectorized over all scenes that share (object slot, shape).
    """
    spec = _spec(spec)
    B = len(scenes)
    H = W = int(size)
    dev = torch.device(device)
    pix = (torch.arange(W, device=dev, dtype=dtype) + 0.5) / W  # pixel centers, normalized
    # internal layout [B,H,W,3]
    img = _color_tensor([s.background for s in scenes], spec, dev, dtype)[:, None, None, :].expand(B, H, W, 3).clone()

    # background textures (full frame)
    bgs = spec["backgrounds"]
    X = pix.view(1, W)
    Y = pix.view(H, 1)
    for tex in ("striped", "dotted"):
        idx = [i for i, s in enumerate(scenes) if s.texture == tex]
        if not idx:
            continue
        tcol = torch.tensor([_texture_color(scenes[i].background, spec) for i in idx], dtype=torch.float64)
        tcol = (tcol / 255.0 * 2.0 - 1.0).to(dev, dtype)
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
        it = torch.tensor(idx, device=dev)
        img[it] = img[it] * (1.0 - cov) + tcol[:, None, None, :] * cov

    # objects, in drawing order; vectorized over the scenes that share (slot, shape)
    K = max((len(s.objects) for s in scenes), default=0)
    for k in range(K):
        for shape in spec["shape_order"]:
            idx = [i for i, s in enumerate(scenes) if len(s.objects) > k and s.objects[k].shape == shape]
            if not idx:
                continue
            objs = [scenes[i].objects[k] for i in idx]
            n = len(objs)
            # window: enclosing circle + 2 px, same size for the whole group
            rpx = max(enclosing_radius(shape, o.diameter, spec) for o in objs) * W
            win = min(W, 2 * int(math.ceil(rpx)) + 4)
            x0 = [min(max(int(round(o.cx * W)) - win // 2, 0), W - win) for o in objs]
            y0 = [min(max(int(round(o.cy * H)) - win // 2, 0), H - win) for o in objs]
            ar = torch.arange(win, device=dev)
            cols = torch.tensor(x0, device=dev).view(n, 1) + ar.view(1, win)  # [n,win]
            rows = torch.tensor(y0, device=dev).view(n, 1) + ar.view(1, win)
            p = torch.tensor([[o.cx, o.cy, o.diameter, math.radians(o.angle)] for o in objs], dtype=torch.float64)
            cx = p[:, 0].to(dev, dtype).view(-1, 1, 1)
            cy = p[:, 1].to(dev, dtype).view(-1, 1, 1)
            dm = p[:, 2].to(dev, dtype).view(-1, 1, 1)
            ca = torch.cos(p[:, 3]).to(dev, dtype).view(-1, 1, 1)
            sa = torch.sin(p[:, 3]).to(dev, dtype).view(-1, 1, 1)
            Xw = pix[cols].view(n, 1, win)
            Yw = pix[rows].view(n, win, 1)
            dx = (Xw - cx) / dm
            dy = (cy - Yw) / dm  # y up
            # rotate by -angle into the shape's frame
            qx = ca * dx + sa * dy
            qy = ca * dy - sa * dx
            sdf = shape_sdf(shape, qx, qy, spec) * (dm * W)  # in pixels
            cov = (0.5 - sdf).clamp(0.0, 1.0).unsqueeze(-1)  # [n,win,win,1]
            col = _color_tensor([o.color for o in objs], spec, dev, dtype)[:, None, None, :]
            bi = torch.tensor(idx, device=dev).view(n, 1, 1)
            ri = rows.view(n, win, 1)
            ci = cols.view(n, 1, win)
            patch = img[bi, ri, ci]  # [n,win,win,3]
            img[bi, ri, ci] = patch * (1.0 - cov) + col * cov
    return img.permute(0, 3, 1, 2).contiguous()
