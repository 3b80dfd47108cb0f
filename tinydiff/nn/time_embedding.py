"""Sinusoidal embedding of the diffusion timestep (Ho et al. 2020, after Vaswani et al. 2017)."""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Tensor
from .module import Module


def timestep_embedding(t, dim: int, dtype=np.float32) -> Tensor:
    """``concat([sin(t f), cos(t f)])`` with ``f_i = exp(-ln(10000) i / (half - 1))``,
    ``half = dim // 2``, on the 0-based integer timesteps ``t`` (shape (B,)); a
    constant, computed in float64 and returned in ``dtype``."""
    t = np.asarray(t.data if isinstance(t, Tensor) else t)
    if t.ndim != 1:
        raise ValueError(f"timesteps must be a 1-D array (one per sample), got shape {t.shape}")
    half = dim // 2
    if half < 2:
        raise ValueError(f"timestep embedding dim must be at least 4, got {dim}")
    freqs = np.exp(-math.log(10000.0) * np.arange(half) / (half - 1))
    args = t.astype(np.float64)[:, None] * freqs[None]
    emb = np.concatenate([np.sin(args), np.cos(args)], axis=1)
    if dim % 2:
        emb = np.pad(emb, ((0, 0), (0, 1)))
    return Tensor(emb.astype(dtype))


class SinusoidalTimeEmbedding(Module):
    """``timestep_embedding`` as a module (no parameters); ``dtype`` follows the caller
    (a model in float64 asks for float64)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t, dtype=np.float32):
        return timestep_embedding(t, self.dim, dtype)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
