"""The basic layers: each holds its parameters and calls one functional op."""

from __future__ import annotations

import numpy as np

from . import functional as F
from .init import as_rng, fan_in_uniform, kaiming_uniform
from .module import Module
from .parameter import Parameter


class Linear(Module):
    """``y = x W^T + b``; W (out, in) and b drawn as PyTorch does."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rng=None, dtype=np.float32):
        super().__init__()
        rng = as_rng(rng)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(kaiming_uniform((out_features, in_features), in_features, rng, dtype=dtype))
        self.bias = Parameter(fan_in_uniform((out_features,), in_features, rng, dtype)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution, OIHW weight, PyTorch's initialisation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 0, bias: bool = True, rng=None, dtype=np.float32):
        super().__init__()
        rng = as_rng(rng)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        fan_in = in_channels * kernel_size * kernel_size
        self.weight = Parameter(
            kaiming_uniform((out_channels, in_channels, kernel_size, kernel_size), fan_in, rng, dtype=dtype)
        )
        self.bias = Parameter(fan_in_uniform((out_channels,), fan_in, rng, dtype)) if bias else None

    def zero_(self) -> "Conv2d":
        """Zero weight and bias (Ho et al. start the last conv of each block at zero)."""
        self.weight.data[...] = 0
        if self.bias is not None:
            self.bias.data[...] = 0
        return self

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class GroupNorm(Module):
    """Group normalisation (Wu & He 2018) with a per-channel affine map (weight 1, bias 0)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, dtype=np.float32):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: {num_groups} groups do not divide {num_channels} channels")
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.weight = Parameter(np.ones(num_channels, dtype=dtype))
        self.bias = Parameter(np.zeros(num_channels, dtype=dtype))

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def forward_silu(self, x):
        """``silu(self(x))`` through the fused kernel."""
        return F.group_norm_silu(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}"


class SiLU(Module):
    def forward(self, x):
        return F.silu(x)


class Dropout(Module):
    """Inverted dropout, active in ``train()`` mode only; masks come from ``rng``."""

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = as_rng(rng)

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Embedding(Module):
    """A lookup table of ``num_embeddings`` rows, drawn from N(0, 1) as PyTorch does."""

    def __init__(self, num_embeddings: int, embedding_dim: int, rng=None, dtype=np.float32):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(as_rng(rng).standard_normal((num_embeddings, embedding_dim)).astype(dtype))

    def forward(self, indices):
        return F.embedding(indices, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Upsample(Module):
    """Nearest-neighbour x2, then a 3x3 conv (Ho et al.'s upsampling with a conv)."""

    def __init__(self, channels: int, rng=None, dtype=np.float32):
        super().__init__()
        self.conv = Conv2d(channels, channels, 3, padding=1, rng=rng, dtype=dtype)

    def forward(self, x):
        return self.conv(F.upsample_nearest2d(x, 2))


class Downsample(Module):
    """A 3x3 conv with stride 2 and padding 1: halves the resolution."""

    def __init__(self, channels: int, rng=None, dtype=np.float32):
        super().__init__()
        self.conv = Conv2d(channels, channels, 3, stride=2, padding=1, rng=rng, dtype=dtype)

    def forward(self, x):
        return self.conv(x)


class _Container(Module):
    """Sub-modules registered (and named) by position."""

    def _add(self, module: Module) -> None:
        setattr(self, str(len(self._modules)), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(_Container):
    """Modules applied one after another."""

    def __init__(self, *modules: Module):
        super().__init__()
        for m in modules:
            self._add(m)

    def forward(self, x):
        for m in self:
            x = m(x)
        return x


class ModuleList(_Container):
    """A list of modules (no forward of its own)."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self._add(m)

    def append(self, module: Module) -> "ModuleList":
        self._add(module)
        return self
