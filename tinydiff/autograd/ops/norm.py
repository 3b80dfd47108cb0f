"""Group normalisation (Wu & He 2018) as an autograd op, plain and fused with SiLU.

The statistics, normalisation and the closed-form backward run in one numba
kernel each (``autograd/kernels/group_norm.py``, twin beside it).
"""

from __future__ import annotations

import numpy as np

from ..function import Function
from ..kernels import (
    group_norm_backward,
    group_norm_forward,
    group_norm_silu_backward,
    group_norm_silu_forward,
)
from ..tensor import Tensor


class GroupNorm(Function):
    """y = (x - mean_g) / sqrt(var_g + eps) * weight + bias (Wu & He 2018, Eq. 1-2)."""

    @staticmethod
    def forward(ctx, x, weight, bias, num_groups, eps):
        x = np.ascontiguousarray(x)
        y, mean, rstd = group_norm_forward(x, num_groups, weight, bias, eps)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.num_groups = num_groups
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, rstd = ctx.saved_arrays
        dx, dw, db = group_norm_backward(grad, x, mean, rstd, ctx.num_groups, weight)
        return dx, dw, db, None, None


class GroupNormSiLU(Function):
    """silu(group_norm(x)) in one pass: the pair that opens every ResBlock branch."""

    @staticmethod
    def forward(ctx, x, weight, bias, num_groups, eps):
        x = np.ascontiguousarray(x)
        y, mean, rstd = group_norm_silu_forward(x, num_groups, weight, bias, eps)
        ctx.save_for_backward(x, weight, bias, mean, rstd)
        ctx.num_groups = num_groups
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, bias, mean, rstd = ctx.saved_arrays
        dx, dw, db = group_norm_silu_backward(
            grad, x, mean, rstd, ctx.num_groups, weight, bias
        )
        return dx, dw, db, None, None


def _check(x, num_groups, weight, bias):
    if not isinstance(x, Tensor):
        raise TypeError("group_norm: input must be a Tensor")
    if x.ndim < 2:
        raise ValueError(f"group_norm: input must be (N, C, ...), got shape {x.shape}")
    c = x.shape[1]
    if int(num_groups) != num_groups or num_groups < 1 or c % num_groups:
        raise ValueError(
            f"group_norm: num_groups={num_groups} does not divide the {c} channels of input shape {x.shape}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is None:
            continue
        if not isinstance(t, Tensor) or t.shape != (c,):
            raise ValueError(f"group_norm: {name} must have shape ({c},), got {getattr(t, 'shape', t)}")
        if t.dtype != x.dtype:
            raise TypeError(f"group_norm: {name} dtype {t.dtype} differs from input dtype {x.dtype}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"group_norm works in float32 or float64, got {x.dtype}")


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:  # noqa: A002
    """Per-sample, per-group mean and biased variance over (C/G, H, W), then a
    per-channel affine map (PyTorch's signature)."""
    _check(input, num_groups, weight, bias)
    return GroupNorm.apply(input, weight, bias, int(num_groups), float(eps))


def group_norm_silu(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:  # noqa: A002
    """``silu(group_norm(input, ...))`` fused into one kernel, forward and backward."""
    _check(input, num_groups, weight, bias)
    return GroupNormSiLU.apply(input, weight, bias, int(num_groups), float(eps))
