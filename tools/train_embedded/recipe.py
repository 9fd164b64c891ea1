"""Pieces of train.py's training recipe: the log clock, the wall-clock budget and lr schedule, the transformer's
initialization (--adaln-zero), the auxiliary geometry probe (--mask-aux) and the world override
(--world-override)."""
import math
import time

import torch
import torch.nn.functional as F

T0 = time.time()


def log(*a):
    print("[%7.1fs]" % (time.time() - T0), *a, flush=True)


class Clock:
    """Wall-clock budget of one stage; lr schedule follows the elapsed fraction."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.start = time.time()

    def frac(self):
        return min(1.0, (time.time() - self.start) / max(self.seconds, 1e-6))

    def done(self):
        return self.frac() >= 1.0


def lr_at(frac, step, base, warmup_steps, final=0.1):
    w = min(1.0, (step + 1) / warmup_steps)
    return base * w * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * frac)))


def schedule_frac(args, clock):
    """Where this run is on the cosine: one schedule can span several device calls (each under the 10-minute
    limit) through --schedule-span (its total seconds) and --schedule-offset (seconds done by earlier calls)."""
    if not args.schedule_span:
        return clock.frac()
    done = args.schedule_offset + clock.frac() * clock.seconds
    return min(1.0, done / args.schedule_span)


def adaln_zero_(transformer):
    """DiT's adaLN-Zero initialization on a freshly made FluxTransformer2DModel: every modulation linear (shift,
    scale and gate of each block, the output norm's scale and shift) and the final proj_out start at zero, so
    each block starts as the identity and the model predicts 0. Why: diffusers' Flux uses PyTorch's default init,
    and DiT (Peebles & Xie, 2023, table 4) found adaLN-Zero trains markedly faster than plain adaLN; our budget is
    a few thousand steps, where that matters most. Only the initial weights change; the saved model is the same
    architecture."""
    from diffusers.models.normalization import AdaLayerNormContinuous, AdaLayerNormZero, AdaLayerNormZeroSingle
    n = 0
    for m in transformer.modules():
        if isinstance(m, (AdaLayerNormZero, AdaLayerNormZeroSingle, AdaLayerNormContinuous)):
            torch.nn.init.zeros_(m.linear.weight)
            if m.linear.bias is not None:
                torch.nn.init.zeros_(m.linear.bias)
            n += 1
    torch.nn.init.zeros_(transformer.proj_out.weight)
    torch.nn.init.zeros_(transformer.proj_out.bias)
    return n


class MaskProbe(torch.nn.Module):
    """--mask-aux: a linear head on the image tokens after the last double block that predicts each token's
    object coverage in 4x4 sub-cells of the clean image (BCE). Why: color and position are learned fast but the
    outline is not (session 6: the same 270 s recipe drew shapes 25% right on the full world and 29% on a
    one-object plain one); the flow loss carries the outline only through a few edge tokens and mostly at low
    noise, while this gives every object token, at every sigma, a direct geometry target (in the spirit of REPA's
    alignment of an intermediate layer). The head is dropped at save time: the model is unchanged."""

    def __init__(self, transformer, cells=4):
        super().__init__()
        self.cells = cells
        self.head = torch.nn.Linear(transformer.inner_dim, cells * cells)
        self.hidden = None
        transformer.transformer_blocks[-1].register_forward_hook(self._keep)

    def _keep(self, module, inputs, output):
        self.hidden = output[1]  # FluxTransformerBlock returns (encoder_hidden_states, hidden_states)

    def loss(self, cov, weight):
        logits = self.head(self.hidden.float())
        bce = F.binary_cross_entropy_with_logits(logits, cov, reduction="none").mean(-1)
        return (bce * weight).sum() / weight.sum()


def merge_spec(spec, override):
    """The world spec with `override` merged in, key by key (nested dicts merge, other values replace)."""
    out = dict(spec)
    for k, v in override.items():
        if k not in spec:
            raise SystemExit("--world-override: unknown world spec key %r (keys: %s)" % (k, ", ".join(sorted(spec))))
        out[k] = merge_spec(spec[k], v) if isinstance(v, dict) and isinstance(spec[k], dict) else v
    return out


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()

