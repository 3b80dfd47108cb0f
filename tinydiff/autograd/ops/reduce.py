"""Reductions along axes: sum, mean, var, max (NumPy's ``axis``/``keepdims``,
PyTorch's ``dim``/``keepdim`` accepted too)."""

from __future__ import annotations

import math

import numpy as np

from ..function import Function
from ..tensor import Tensor
from ._util import axis_arg, normalize_axes


def _expand(grad, axes, keepdims, shape):
    """Bring a reduced gradient back to ``shape`` (a broadcast view, never written to)."""
    if not keepdims:
        grad = np.expand_dims(grad, axes)
    return np.broadcast_to(grad, shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return np.asarray(x.sum(axis=axes, keepdims=keepdims))

    @staticmethod
    def backward(ctx, grad):
        return _expand(grad, ctx.axes, ctx.keepdims, ctx.shape), None, None


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        ctx.count = math.prod(x.shape[a] for a in axes)
        return np.asarray(x.mean(axis=axes, keepdims=keepdims))

    @staticmethod
    def backward(ctx, grad):
        return _expand(grad / ctx.count, ctx.axes, ctx.keepdims, ctx.shape), None, None


class Var(Function):
    """Variance, ``sum((x - mean)^2) / (n - ddof)``; d/dx = 2 (x - mean) / (n - ddof)."""

    @staticmethod
    def forward(ctx, x, axes, keepdims, ddof):
        n = math.prod(x.shape[a] for a in axes)
        centered = x - x.mean(axis=axes, keepdims=True)
        ctx.save_for_backward(centered)
        ctx.axes, ctx.keepdims, ctx.denom = axes, keepdims, n - ddof
        return np.asarray((centered * centered).sum(axis=axes, keepdims=keepdims) / (n - ddof))

    @staticmethod
    def backward(ctx, grad):
        (centered,) = ctx.saved_arrays
        if not ctx.keepdims:
            grad = np.expand_dims(grad, ctx.axes)
        return grad * centered * (2 / ctx.denom), None, None, None


class Max(Function):
    """Maximum; the gradient is shared equally between tied maxima."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        y = x.max(axis=axes, keepdims=True)
        ctx.save_for_backward(x == y)
        ctx.axes, ctx.keepdims = axes, keepdims
        return np.asarray(y if keepdims else np.squeeze(y, axis=axes))

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_arrays
        if not ctx.keepdims:
            grad = np.expand_dims(grad, ctx.axes)
        ties = mask.sum(axis=ctx.axes, keepdims=True)
        return grad * mask / ties.astype(grad.dtype), None, None


def _reduce(fn, x, axis, keepdims, dim, keepdim, *extra):
    axis, keepdims = axis_arg(axis, keepdims, dim, keepdim)
    axes = normalize_axes(axis, x.ndim)
    return fn.apply(x, axes, keepdims, *extra)


def sum(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:  # noqa: A001
    return _reduce(Sum, x, axis, keepdims, dim, keepdim)


def mean(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    return _reduce(Mean, x, axis, keepdims, dim, keepdim)


def var(x, axis=None, keepdims=False, ddof=0, *, dim=None, keepdim=None) -> Tensor:
    """Biased (``ddof=0``, NumPy's default) or unbiased (``ddof=1``) variance."""
    return _reduce(Var, x, axis, keepdims, dim, keepdim, ddof)


def max(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:  # noqa: A001
    if x.size == 0:
        raise ValueError(f"max() of an empty tensor of shape {x.shape}")
    return _reduce(Max, x, axis, keepdims, dim, keepdim)
