"""The small U-Net of Ho et al. 2020 (their Appendix B), scaled by its arguments.

With ``UNet(3, 32, base_channels=128, channel_mults=(1, 2, 2, 2), num_res_blocks=2,
attn_resolutions=(16,), dropout=0.1, num_groups=32)`` it is exactly their CIFAR-10
model (35,746,307 parameters). See ``shared/DESIGN.md`` / ``docs/`` for the spec.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Tensor
from ..autograd.functional import concat
from . import functional as F
from .init import as_rng
from .layers import Conv2d, Downsample, Dropout, Embedding, GroupNorm, Linear, ModuleList, Upsample
from .module import Module
from .time_embedding import SinusoidalTimeEmbedding


class ResBlock(Module):
    """``h = conv3x3(silu(GN(x)))``; ``h += linear(silu(temb))`` per channel;
    ``h = conv3x3(dropout(silu(GN(h))))``; ``out = skip(x) + h`` with ``skip`` the
    identity, or a 1x1 conv when the channel count changes. The second conv starts at zero,
    so every block starts as the identity on its skip path."""

    def __init__(self, in_channels: int, out_channels: int, temb_dim: int, dropout: float = 0.0,
                 num_groups: int = 8, rng=None, dtype=np.float32):
        super().__init__()
        rng = as_rng(rng)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = GroupNorm(num_groups, in_channels, dtype=dtype)
        self.conv1 = Conv2d(in_channels, out_channels, 3, padding=1, rng=rng, dtype=dtype)
        self.temb_proj = Linear(temb_dim, out_channels, rng=rng, dtype=dtype)
        self.norm2 = GroupNorm(num_groups, out_channels, dtype=dtype)
        self.dropout = Dropout(dropout, rng=rng)
        self.conv2 = Conv2d(out_channels, out_channels, 3, padding=1, rng=rng, dtype=dtype).zero_()
        self.skip = (
            Conv2d(in_channels, out_channels, 1, rng=rng, dtype=dtype) if in_channels != out_channels else None
        )

    def forward(self, x, temb):
        h = self.conv1(self.norm1.forward_silu(x))
        h = h + self.temb_proj(F.silu(temb)).reshape(*temb.shape[:1], self.out_channels, 1, 1)
        h = self.conv2(self.dropout(self.norm2.forward_silu(h)))
        return (x if self.skip is None else self.skip(x)) + h

    def extra_repr(self) -> str:
        return f"{self.in_channels} -> {self.out_channels}"


class AttnBlock(Module):
    """Self-attention over the H*W positions: ``h = GN(x)``; q, k, v by 1x1 convs;
    ``A = softmax(q^T k / sqrt(C))`` over the keys; ``out = x + conv1x1(v A^T)``
    (the output conv starts at zero)."""

    def __init__(self, channels: int, num_groups: int = 8, rng=None, dtype=np.float32):
        super().__init__()
        rng = as_rng(rng)
        self.channels = channels
        self.norm = GroupNorm(num_groups, channels, dtype=dtype)
        self.q = Conv2d(channels, channels, 1, rng=rng, dtype=dtype)
        self.k = Conv2d(channels, channels, 1, rng=rng, dtype=dtype)
        self.v = Conv2d(channels, channels, 1, rng=rng, dtype=dtype)
        self.proj_out = Conv2d(channels, channels, 1, rng=rng, dtype=dtype).zero_()

    def forward(self, x):
        b, c, hgt, wid = x.shape
        h = self.norm(x)
        q = self.q(h).reshape(b, c, hgt * wid)
        k = self.k(h).reshape(b, c, hgt * wid)
        v = self.v(h).reshape(b, c, hgt * wid)
        weights = F.softmax((q.swapaxes(1, 2) @ k) * (1.0 / math.sqrt(c)), axis=-1)  # (b, query, key)
        out = (v @ weights.swapaxes(1, 2)).reshape(b, c, hgt, wid)
        return x + self.proj_out(out)

    def extra_repr(self) -> str:
        return f"{self.channels}"


class _Level(Module):
    """One resolution of the U-Net: its ResBlocks, their attention, and the resampler."""

    def __init__(self):
        super().__init__()
        self.res = ModuleList()
        self.attn = ModuleList()  # empty where the resolution has no attention


class UNet(Module):
    """``eps_theta(x_t, t[, y])``: the DDPM noise-prediction network.

    Arguments as in ``shared/DESIGN.md``: ``UNet(in_channels, image_size,
    out_channels=None, base_channels=32, channel_mults=(1, 2, 2), num_res_blocks=2,
    attn_resolutions=(), dropout=0.0, num_groups=8, num_classes=None)``, plus ``rng``
    (a seed or Generator for every initial weight) and ``dtype``. With ``num_classes``,
    label ``num_classes`` is the "no label" token of classifier-free guidance.
    """

    def __init__(self, in_channels: int, image_size: int, out_channels: int | None = None,
                 base_channels: int = 32, channel_mults=(1, 2, 2), num_res_blocks: int = 2,
                 attn_resolutions=(), dropout: float = 0.0, num_groups: int = 8,
                 num_classes: int | None = None, rng=None, dtype=np.float32):
        super().__init__()
        rng = as_rng(rng)
        levels = len(channel_mults)
        if image_size % (2 ** (levels - 1)):
            raise ValueError(
                f"image_size {image_size} cannot be halved {levels - 1} times (channel_mults={channel_mults})"
            )
        for m in channel_mults:
            if (base_channels * m) % num_groups:
                raise ValueError(f"num_groups={num_groups} does not divide {base_channels * m} channels")
        self.config = dict(
            in_channels=in_channels, image_size=image_size, out_channels=out_channels or in_channels,
            base_channels=base_channels, channel_mults=tuple(channel_mults), num_res_blocks=num_res_blocks,
            attn_resolutions=tuple(attn_resolutions), dropout=dropout, num_groups=num_groups,
            num_classes=num_classes,
        )
        ch, tdim = base_channels, 4 * base_channels
        kw = dict(rng=rng, dtype=dtype)

        # timestep (and label) embedding
        self.time_embed = SinusoidalTimeEmbedding(ch)
        self.temb_dense0 = Linear(ch, tdim, **kw)
        self.temb_dense1 = Linear(tdim, tdim, **kw)
        self.class_embed = Embedding(num_classes + 1, tdim, **kw) if num_classes else None

        self.conv_in = Conv2d(in_channels, ch, 3, padding=1, **kw)

        # down path: remember every skip's channel count
        skips, res = [ch], image_size
        self.down = ModuleList()
        cur = ch
        for i, mult in enumerate(channel_mults):
            level = _Level()
            for _ in range(num_res_blocks):
                level.res.append(ResBlock(cur, ch * mult, tdim, dropout, num_groups, **kw))
                cur = ch * mult
                if res in attn_resolutions:
                    level.attn.append(AttnBlock(cur, num_groups, **kw))
                skips.append(cur)
            level.resample = Downsample(cur, **kw) if i != levels - 1 else None
            if i != levels - 1:
                res //= 2
                skips.append(cur)
            self.down.append(level)

        self.mid_res1 = ResBlock(cur, cur, tdim, dropout, num_groups, **kw)
        self.mid_attn = AttnBlock(cur, num_groups, **kw)
        self.mid_res2 = ResBlock(cur, cur, tdim, dropout, num_groups, **kw)

        self.up = ModuleList()
        for i, mult in reversed(list(enumerate(channel_mults))):
            level = _Level()
            for _ in range(num_res_blocks + 1):
                level.res.append(ResBlock(cur + skips.pop(), ch * mult, tdim, dropout, num_groups, **kw))
                cur = ch * mult
                if res in attn_resolutions:
                    level.attn.append(AttnBlock(cur, num_groups, **kw))
            level.resample = Upsample(cur, **kw) if i != 0 else None
            if i != 0:
                res *= 2
            self.up.append(level)
        assert not skips

        self.norm_out = GroupNorm(num_groups, cur, dtype=dtype)
        self.conv_out = Conv2d(cur, self.config["out_channels"], 3, padding=1, **kw).zero_()

    def forward(self, x: Tensor, t, y=None) -> Tensor:
        """Predict the noise in ``x`` (B, C, H, W) at 0-based timesteps ``t`` (B,);
        ``y`` (B,) are class labels, ``num_classes`` meaning "no label" (also the default)."""
        cfg = self.config
        if x.ndim != 4 or x.shape[1] != cfg["in_channels"] or x.shape[2:] != (cfg["image_size"],) * 2:
            raise ValueError(
                f"UNet expects input (B, {cfg['in_channels']}, {cfg['image_size']}, {cfg['image_size']}), "
                f"got shape {x.shape}"
            )
        t = np.asarray(t.data if isinstance(t, Tensor) else t)
        t = np.full(x.shape[0], t) if t.ndim == 0 else t
        if t.shape != (x.shape[0],):
            raise ValueError(f"UNet: timesteps of shape {t.shape} for a batch of {x.shape[0]}")

        temb = self.temb_dense1(F.silu(self.temb_dense0(self.time_embed(t, x.dtype))))
        if self.class_embed is not None:
            y = np.full(x.shape[0], cfg["num_classes"]) if y is None else np.asarray(getattr(y, "data", y))
            temb = temb + self.class_embed(y.astype(np.int64))
        elif y is not None:
            raise ValueError("this UNet was built without num_classes; it takes no labels")

        h = self.conv_in(x)
        hs = [h]
        for level in self.down:
            for j, block in enumerate(level.res):
                h = block(h, temb)
                if len(level.attn):
                    h = level.attn[j](h)
                hs.append(h)
            if level.resample is not None:
                h = level.resample(h)
                hs.append(h)

        h = self.mid_res2(self.mid_attn(self.mid_res1(h, temb)), temb)

        for level in self.up:
            for j, block in enumerate(level.res):
                h = block(concat([h, hs.pop()], axis=1), temb)
                if len(level.attn):
                    h = level.attn[j](h)
            if level.resample is not None:
                h = level.resample(h)

        return self.conv_out(self.norm_out.forward_silu(h))

    def summary(self) -> str:
        """A table: each block's output shape (per sample) and parameter count."""
        cfg = self.config
        rows = [("time embedding", (4 * cfg["base_channels"],), self.temb_dense0, self.temb_dense1, self.class_embed)]
        ch, res = cfg["base_channels"], cfg["image_size"]
        rows.append(("conv_in", (ch, res, res), self.conv_in))

        def level_rows(path, levels, res, resample_name, factor):
            for i, level in enumerate(levels):
                attn = "+attn" if len(level.attn) else ""
                for j, block in enumerate(level.res):
                    mods = [block] + ([level.attn[j]] if attn else [])
                    rows.append((f"{path}[{i}].res[{j}]{attn}", (block.out_channels, res, res), *mods))
                if level.resample is not None:
                    res = int(res * factor)
                    rows.append((f"{path}[{i}].{resample_name}", (block.out_channels, res, res), level.resample))
            return res

        res = level_rows("down", self.down, res, "downsample", 0.5)
        rows.append(("middle res+attn+res", (self.mid_res1.out_channels, res, res), self.mid_res1, self.mid_attn, self.mid_res2))
        res = level_rows("up", self.up, res, "upsample", 2)
        rows.append(("out (GN, SiLU, conv)", (cfg["out_channels"], res, res), self.norm_out, self.conv_out))
        lines = [f"  {'block':<26}{'output (C, H, W)':<20}{'parameters':>12}"]
        for name, shape, *mods in rows:
            n = sum(m.num_parameters() for m in mods if m is not None)
            lines.append(f"  {name:<26}{str(shape):<20}{n:>12,}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.config.items())
        return f"UNet({args})\n{self.summary()}\n  total: {self.num_parameters():,} parameters"
