"""The denoiser for 2-D toy data: an MLP with the U-Net's timestep embedding."""

from __future__ import annotations

import numpy as np

from ..autograd import Tensor
from . import functional as F
from .init import as_rng
from .layers import Embedding, Linear
from .module import Module
from .time_embedding import SinusoidalTimeEmbedding


class MLPDenoiser(Module):
    """``eps_theta(x_t, t)`` for points in R^d: three hidden layers of ``hidden`` units
    with SiLU; the embedded timestep (sinusoidal, then Linear-SiLU-Linear, as in the
    U-Net) is added to the first hidden layer before its activation."""

    def __init__(self, data_dim: int = 2, hidden: int = 128, num_classes: int | None = None,
                 rng=None, dtype=np.float32):
        super().__init__()
        rng = as_rng(rng)
        kw = dict(rng=rng, dtype=dtype)
        self.data_dim, self.hidden, self.num_classes = data_dim, hidden, num_classes
        self.time_embed = SinusoidalTimeEmbedding(hidden)
        self.temb_dense0 = Linear(hidden, hidden, **kw)
        self.temb_dense1 = Linear(hidden, hidden, **kw)
        self.class_embed = Embedding(num_classes + 1, hidden, **kw) if num_classes else None
        self.fc1 = Linear(data_dim, hidden, **kw)
        self.fc2 = Linear(hidden, hidden, **kw)
        self.fc3 = Linear(hidden, hidden, **kw)
        self.out = Linear(hidden, data_dim, **kw)

    def forward(self, x: Tensor, t, y=None) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.data_dim:
            raise ValueError(f"MLPDenoiser expects input (B, {self.data_dim}), got shape {x.shape}")
        t = np.asarray(t.data if isinstance(t, Tensor) else t)
        t = np.full(x.shape[0], t) if t.ndim == 0 else t
        temb = self.temb_dense1(F.silu(self.temb_dense0(self.time_embed(t, x.dtype))))
        if self.class_embed is not None:
            y = np.full(x.shape[0], self.num_classes) if y is None else np.asarray(getattr(y, "data", y))
            temb = temb + self.class_embed(y.astype(np.int64))
        h = F.silu(self.fc1(x) + temb)
        h = F.silu(self.fc2(h))
        h = F.silu(self.fc3(h))
        return self.out(h)

    def extra_repr(self) -> str:
        return f"data_dim={self.data_dim}, hidden={self.hidden}"
