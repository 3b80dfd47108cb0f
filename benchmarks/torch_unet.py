"""The U-Net of shared/DESIGN.md written in PyTorch: tinydiff's twin, for benchmarks only.

Never imported by the library or the tests.  The module tree and parameter names
mirror ``tinydiff.nn.UNet`` exactly (``down.0.res.1.conv2.weight``, ...), so
``load_tinydiff_state(torch_model, tinydiff_model)`` copies every weight across and
the two networks compute the same function (``bench_unet.py --check`` compares them).

    from torch_unet import TorchUNet
    m = TorchUNet(1, 8, base_channels=32, channel_mults=(1, 2), num_res_blocks=1, attn_resolutions=(4,))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, dtype=torch.float32) -> torch.Tensor:
    """``concat([sin(t f), cos(t f)])``, ``f_i = exp(-ln(10000) i / (half - 1))``, on 0-based t."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / (half - 1))
    args = t.to(torch.float64)[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb.to(dtype)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb_dim: int, dropout: float = 0.0, num_groups: int = 8):
        super().__init__()
        self.cout = cout
        self.norm1 = nn.GroupNorm(num_groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb_proj = nn.Linear(temb_dim, cout)
        self.norm2 = nn.GroupNorm(num_groups, cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (x if self.skip is None else self.skip(x)) + h


class AttnBlock(nn.Module):
    def __init__(self, c: int, num_groups: int = 8):
        super().__init__()
        self.norm = nn.GroupNorm(num_groups, c)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x):
        b, c, hgt, wid = x.shape
        h = self.norm(x)
        q = self.q(h).reshape(b, c, hgt * wid)
        k = self.k(h).reshape(b, c, hgt * wid)
        v = self.v(h).reshape(b, c, hgt * wid)
        w = torch.softmax((q.transpose(1, 2) @ k) * (1.0 / math.sqrt(c)), dim=-1)  # (b, query, key)
        out = (v @ w.transpose(1, 2)).reshape(b, c, hgt, wid)
        return x + self.proj_out(out)


class Upsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Downsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class _Level(nn.Module):
    def __init__(self):
        super().__init__()
        self.res = nn.ModuleList()
        self.attn = nn.ModuleList()
        self.resample = None


class TorchUNet(nn.Module):
    """Same arguments and same architecture as ``tinydiff.nn.UNet`` (DESIGN.md)."""

    def __init__(self, in_channels, image_size, out_channels=None, base_channels=32, channel_mults=(1, 2, 2),
                 num_res_blocks=2, attn_resolutions=(), dropout=0.0, num_groups=8, num_classes=None):
        super().__init__()
        ch, tdim = base_channels, 4 * base_channels
        self.base_channels, self.num_classes = ch, num_classes
        out_channels = out_channels or in_channels
        levels = len(channel_mults)
        self.temb_dense0 = nn.Linear(ch, tdim)
        self.temb_dense1 = nn.Linear(tdim, tdim)
        self.class_embed = nn.Embedding(num_classes + 1, tdim) if num_classes else None
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)

        skips, res, cur = [ch], image_size, ch
        self.down = nn.ModuleList()
        for i, mult in enumerate(channel_mults):
            level = _Level()
            for _ in range(num_res_blocks):
                level.res.append(ResBlock(cur, ch * mult, tdim, dropout, num_groups))
                cur = ch * mult
                if res in attn_resolutions:
                    level.attn.append(AttnBlock(cur, num_groups))
                skips.append(cur)
            if i != levels - 1:
                level.resample = Downsample(cur)
                res //= 2
                skips.append(cur)
            self.down.append(level)

        self.mid_res1 = ResBlock(cur, cur, tdim, dropout, num_groups)
        self.mid_attn = AttnBlock(cur, num_groups)
        self.mid_res2 = ResBlock(cur, cur, tdim, dropout, num_groups)

        self.up = nn.ModuleList()
        for i, mult in reversed(list(enumerate(channel_mults))):
            level = _Level()
            for _ in range(num_res_blocks + 1):
                level.res.append(ResBlock(cur + skips.pop(), ch * mult, tdim, dropout, num_groups))
                cur = ch * mult
                if res in attn_resolutions:
                    level.attn.append(AttnBlock(cur, num_groups))
            if i != 0:
                level.resample = Upsample(cur)
                res *= 2
            self.up.append(level)
        assert not skips

        self.norm_out = nn.GroupNorm(num_groups, cur)
        self.conv_out = nn.Conv2d(cur, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x, t, y=None):
        temb = self.temb_dense1(F.silu(self.temb_dense0(timestep_embedding(t, self.base_channels, x.dtype))))
        if self.class_embed is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.num_classes, dtype=torch.long)
            temb = temb + self.class_embed(y)
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
                h = block(torch.cat([h, hs.pop()], dim=1), temb)
                if len(level.attn):
                    h = level.attn[j](h)
            if level.resample is not None:
                h = level.resample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_tinydiff_state(torch_model: nn.Module, td_model) -> None:
    """Copy every weight of a ``tinydiff.nn.UNet`` into its twin (same names, same shapes)."""
    td = dict(td_model.named_parameters())
    mine = dict(torch_model.named_parameters())
    if set(td) != set(mine):
        raise KeyError(f"parameter names differ: only tinydiff {sorted(set(td) - set(mine))}, "
                       f"only torch {sorted(set(mine) - set(td))}")
    with torch.no_grad():
        for name, p in mine.items():
            src = td[name].data
            if tuple(src.shape) != tuple(p.shape):
                raise ValueError(f"{name}: tinydiff {src.shape} vs torch {tuple(p.shape)}")
            p.copy_(torch.from_numpy(src.copy()))


class TorchEMA:
    """A hand-written EMA, ``shadow <- decay * shadow + (1 - decay) * param`` (foreach, in place)."""

    def __init__(self, model: nn.Module, decay: float = 0.9999):
        self.decay = decay
        self.params = [p for p in model.parameters()]
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self):
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - self.decay)
